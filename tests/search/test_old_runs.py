"""A run folder and study written by an earlier version still load, report, pick and resume.

The fixture (``fixtures/run-written-2026-12-02``, see its README) was written before ``search/``
was reorganised into subpackages; it is never regenerated.
"""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import search
from tests.search.runs import main_in_process

FIXTURE = Path(__file__).parent / "fixtures" / "run-written-2026-12-02"
# The flags it was written with: a resumed study must match them. (Not the budget, which is not
# part of a study's identity: at 0.8 the smallest candidate sits just under it, and a noisy
# measurement can put it over.)
WRITTEN_WITH = ["--model", "pattern-concat", "--budget-ratio", "1", "--finetune-steps", "2",
                "--final-finetune-steps", "2", "--measure-seconds", "0.3", "--study-name",
                "old-run", "--out", "results/old-run"]


@pytest.fixture
def old(tmp_path):
    shutil.copytree(FIXTURE / "results", tmp_path / "results")
    return tmp_path


def test_an_old_run_loads_with_its_front_and_reference(old):
    run = search.load_run(old / "results" / "old-run")
    assert run.final
    assert len(run.trials) == 5 and run.trials["state"].eq("COMPLETE").all()
    assert run.pareto["trial"].tolist() == [0]
    assert run.pareto.loc[0, "model_path"] == "models/final-0.json"
    assert run.reference["budget_ms"] == pytest.approx(0.8 * run.reference["latency_ms"])
    assert run.config["model"] == "pattern-concat"
    model = search.load_pruned(old / "results" / "old-run" / "models" / "final-0.json")
    assert model.training is False


def test_an_old_run_reports_and_picks(old):
    report = main_in_process(old, "report", "results/old-run")
    assert report.returncode == 0, report.stderr
    for name in ("report.md", "pareto.png", "report.html"):
        assert (old / "results" / "old-run" / name).is_file()
    picked = main_in_process(old, "pick", "results/old-run", "--max-latency-ms", "100", "--out",
                             "picked")
    assert picked.returncode == 0, picked.stderr
    widths = json.loads((old / "picked" / "model.json").read_text())
    saved = json.loads((old / "results" / "old-run" / "models" / "final-0.json").read_text())
    assert widths["allocation"] == saved["allocation"]


@pytest.mark.slow
def test_an_old_study_resumes_where_it_stopped(old):
    # Its command, rerun as it was written, now means two fidelities (the default since
    # 2026-12-04) with a margin (since 2026-12-05): refused with the flags that resume it, all
    # in one line, and nothing written.
    refused = main_in_process(old, *WRITTEN_WITH, "--trials", "2")
    assert refused.returncode == 2
    assert ("was run with --promote-steps 0, not 8 and --promote-margin 0.0, not 0.02; pass "
            "--promote-steps 0 --promote-margin 0.0 to resume it" in refused.stderr)
    resumed = main_in_process(old, *WRITTEN_WITH, "--promote-steps", "0", "--promote-margin",
                              "0", "--trials", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "dense baseline: loaded" in resumed.stderr  # the old cache key still finds it
    trials = pd.read_csv(old / "results" / "old-run" / "trials.csv")
    assert trials["trial"].tolist() == list(range(7))
    # The first five are the old run's, as it recorded them.
    before = pd.read_csv(FIXTURE / "results" / "old-run" / "trials.csv")
    assert trials.loc[:4, "allocation"].tolist() == before["allocation"].tolist()
    # A changed identity is still refused with the flag to fix.
    changed = main_in_process(old, *WRITTEN_WITH, "--promote-steps", "0", "--promote-margin",
                              "0", "--finetune-steps", "3", "--trials", "1")
    assert changed.returncode == 2
    assert "was run with --finetune-steps 2, not 3" in changed.stderr


def test_report_from_python_rebuilds_one_run_or_compares_several(old):
    run_dir = old / "results" / "old-run"
    (run_dir / "report.md").unlink()
    written = search.report(run_dir)
    assert [p.name for p in written] == ["report.md", "pareto.png", "report.html"]
    assert "MACs against measured latency: Kendall tau" in (run_dir / "report.md").read_text()
    shutil.copytree(run_dir, old / "results" / "again")
    page = old / "cmp.html"
    assert search.report(run_dir, old / "results" / "again", out=page) == [page]
    assert page.stat().st_size > 100_000  # plotly inlined: it opens offline
    with pytest.raises(search.UsageError, match="not a run folder"):
        search.report(old)
    with pytest.raises(search.UsageError, match="--out names the page"):
        search.report(run_dir, out=page)


# The second kept run: written on 2026-12-07 by the code before options, trial records and
# registries were declared once (issue 43), with today's defaults: two fidelities, promotion and
# the aimed warm start with the gaps sampler. Its config.json replays it.
KEPT = Path(__file__).parent / "fixtures" / "run-written-2026-12-07"


@pytest.fixture
def kept(tmp_path):
    shutil.copytree(KEPT / "results", tmp_path / "results")
    return tmp_path


def test_the_kept_run_loads_reports_and_picks(kept):
    run_dir = kept / "results" / "kept-run"
    run = search.load_run(run_dir)
    assert run.final and len(run.trials) == 10
    assert run.trials["promoted"].eq(True).sum() == 7  # two fidelities, as written
    assert run.trials["source"].str.startswith("warm start: ").sum() == 8  # the aimed start
    assert run.pareto["trial"].tolist() == [0, 4, 5, 6, 9]
    assert main_in_process(kept, "report", "results/kept-run").returncode == 0
    assert (run_dir / "report.html").is_file()
    picked = main_in_process(kept, "pick", "results/kept-run", "--min-accuracy", "0.95",
                             "--out", "picked")
    assert picked.returncode == 0, picked.stderr
    assert json.loads((kept / "picked" / "model.json").read_text())["allocation"] == \
        json.loads((run_dir / "models" / "final-6.json").read_text())["allocation"]


def test_the_kept_run_replays_from_its_config_and_resumes_its_study(kept):
    before = pd.read_csv(KEPT / "results" / "kept-run" / "trials.csv")
    resumed = main_in_process(kept, "--config", "results/kept-run/config.json", "--trials", "2",
                              "--final-finetune-steps", "0")
    assert resumed.returncode == 0, resumed.stderr
    assert "dense baseline: loaded" in resumed.stderr
    assert "warm start aimed" not in resumed.stderr  # a study with trials is not started again
    trials = pd.read_csv(kept / "results" / "kept-run" / "trials.csv")
    assert trials["trial"].tolist() == list(range(12))
    assert trials.loc[:9, "allocation"].tolist() == before["allocation"].tolist()
    assert trials.loc[:9, "accuracy"].tolist() == pytest.approx(before["accuracy"].tolist(),
                                                               nan_ok=True)
