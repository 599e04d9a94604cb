"""The search-quality benchmark's --quick mode: every strategy runs through the real search with
the same number of evaluations, and the table it prints is consistent with the runs."""

import math
import re

import pandas as pd
import pytest

from tests.search.runs import benchmark


@pytest.mark.slow
def test_quick_mode_runs_every_strategy_on_the_same_evaluation_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench = benchmark("search_quality")
    out = tmp_path / "quality.txt"
    table = bench.main(["--quick", "--out", str(out)])
    assert table["strategy"].tolist() == list(bench.STRATEGIES)
    assert (table["evaluations"] <= bench.QUICK_EVALUATIONS).all() and (table["evaluations"] >= 1).all()
    assert (table["fine_tuned"] <= table["evaluations"]).all()
    # No front beats the ideal point of all of them; the best one's share of it is what is left.
    assert ((table["of_ceiling"] >= 0) & (table["of_ceiling"] <= 1 + 1e-9)).all()
    for _, row in table.iterrows():
        assert row["hypervolume"] >= 0
        if row["front_size"] == 0:
            assert row["hypervolume"] == 0
        # The best accuracy within a looser budget is never below that within a tighter one.
        columns = [c for c in table.columns if c.startswith("acc@")]
        assert len(columns) == len(bench.BUDGETS)
        known = [row[c] for c in columns if not math.isnan(row[c])]
        assert known == sorted(known)
    # The stricter reference's box lies inside the fixed one's: it can only count less.
    assert (table["hv_strict"] <= table["hypervolume"] + 1e-12).all()
    # Every front's points are kept beside the table, so other references can be scored later.
    points = pd.read_csv(tmp_path / "quality-fronts.csv")
    kept = points[points["within_budget"]].groupby("strategy").size()
    assert {name: int(kept.get(name, 0)) for name in table["strategy"]} == dict(
        zip(table["strategy"], table["front_size"], strict=True))
    text = out.read_text()
    assert "reference point: latency ratio 0.85" in text and "resnet20" in text
    ceiling = float(re.search(r"# ceiling ([\d.]+)", text).group(1))
    # The bound (100% accuracy at the fastest measured candidate) is above every front and the
    # ceiling; it says whether the 1.10x target can be met at all.
    bound = float(re.search(r"# bound ([\d.]+)", text).group(1))
    assert bound >= ceiling - 1e-9 and (table["hypervolume"] <= bound + 1e-9).all()
    assert ((table["smallest_ratio"] > 0) & (table["smallest_ratio"] < 1)).all()
    assert re.search(r"target, 1.10 x the best other strategy, is [\d.]+ \(\d+% of the "
                     r"ceiling\): (above|within) the bound", text)


@pytest.mark.slow
def test_netadapt_proposes_one_cut_per_group_that_removes_the_target_share(tmp_path,
                                                                             tiny_baselines):
    strategies = benchmark("width_strategies")
    from search import SearchConfig

    config = SearchConfig(budget_ratio=0.5, model="resnet20", finetune_steps=0,
                          results_dir=str(tmp_path / "results"))
    setup = strategies.setup_for(config, baselines=tiny_baselines)  # loaded, not trained
    dense = {g.name: 1.0 for g in setup.space.searchable}
    proposals = strategies.netadapt_proposals(setup, dense, 0.05)
    assert len(proposals) == len(setup.space.searchable)
    for group, proposal in zip(setup.space.searchable, proposals, strict=True):
        changed = [name for name, f in proposal.items() if f != dense[name]]
        assert changed == [group.name]  # one group cut at a time
