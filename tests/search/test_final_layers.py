"""The final stage takes the front's near misses (--final-layers): a real search's front and the
Pareto layer behind it are fine-tuned again, and only they keep their weights."""

import pandas as pd
import pytest

from search.runfolder import current, pareto_layers, pareto_mask
from tests.search.runs import TINY, main_in_process


@pytest.mark.slow
def test_the_front_and_the_layer_behind_it_go_through_the_final_stage(seeded):
    counts = {}
    for layers, trials in ((2, 8), (1, 4)):
        result = main_in_process(seeded, "--budget-ratio", "1", "--trials", str(trials),
                                 "--final-layers", str(layers), "--study-name", f"l{layers}",
                                 *TINY)
        assert result.returncode == 0, result.stderr
        run_dir = seeded / "results" / f"l{layers}"
        scored = current(pd.read_csv(run_dir / "trials.csv"))
        front = pareto_mask(scored["latency_ms"], scored["accuracy"])
        taken = pareto_layers(scored["latency_ms"], scored["accuracy"], layers)
        counts[layers] = (int(front.sum()), int(taken.sum()))
        assert f"final stage: fine-tuning {int(taken.sum())} models for 10 more steps" \
            in result.stderr
        # Weights are kept for what the final stage took, and deleted behind it.
        kept = {int(p.stem.split("-")[1]) for p in (run_dir / "models").glob("trial-*.json")}
        assert kept == set(scored.loc[taken, "trial"])
        # The final front is chosen from all of them.
        pareto = pd.read_csv(run_dir / "pareto.csv")
        assert set(pareto["trial"]) <= kept
        if layers == 2:
            near = int(taken.sum()) - int(front.sum())
            assert near >= 1  # of 8 candidates, some lie behind the front
            assert f"the front and {near} near miss(es) behind it" in result.stderr
    assert counts[1][0] == counts[1][1]  # --final-layers 1: the front alone
