"""The nightly command as cron runs it: resume, score last night's front again, history.csv, and
exit 6 when tonight is worse or the device changed."""

import pandas as pd
import pytest

import search
from search.runfolder import hypervolume
from tests.search.runs import TINY, main_in_process

# A longer final stage than TINY's: a front's accuracy must clear the reference point (dense -
# 0.2), which 2 quick steps plus a 10-step final stage do not always give. Each night adds trials
# for 10.8 s: the first night must get through the warm start's queued candidates (at 5.4 s a
# loaded machine left one queued, and the second night ran it before its re-scoring).
NIGHT = ["nightly", "--hours", "0.003", "--budget-ratio", "1", "--study-name", "nightly", *TINY,
         "--final-finetune-steps", "25"]


@pytest.mark.slow
def test_nights_append_history_rescore_the_last_front_and_flag_regressions(workdir):
    run_dir = workdir / "results" / "nightly"
    first = main_in_process(workdir, *NIGHT)
    assert first.returncode == 0, first.stderr
    front_1 = pd.read_csv(run_dir / "pareto.csv")["trial"].tolist()
    night_1 = len(pd.read_csv(run_dir / "trials.csv"))
    history = pd.read_csv(run_dir / "history.csv")
    assert len(history) == 1 and history.loc[0, "hypervolume"] > 0
    fingerprint = history.loc[0, "fingerprint"]
    # Whether tonight's measured front really beats last night's is up to a noisy 2-core machine,
    # so last night's row is made one that every front is worse than (more than the whole box),
    # measured on another device: tonight must say both and exit 6. (That a night no worse exits
    # 0 is the comparison's unit test below, and the first night's exit code.)
    history.loc[0, "hypervolume"] = 1.01 * history.loc[0, "hv_ref_latency_ms"] * (
        1 - history.loc[0, "hv_ref_accuracy"])
    history.loc[0, "fingerprint"] = "0123456789ab"
    history.to_csv(run_dir / "history.csv", index=False)
    second = main_in_process(workdir, *NIGHT)
    assert second.returncode == 6, second.stderr
    assert "warning: nightly: tonight's front is worse than on" in second.stderr
    assert "the device or its software changed since" in second.stderr
    report = (run_dir / "report.md").read_text()
    assert "nightly: tonight's front is worse" in report and "fingerprint 0123456789ab" in report
    history = pd.read_csv(run_dir / "history.csv")
    assert len(history) == 2 and history["trials"].is_monotonic_increasing
    # One reference point for every night, stored with the study.
    assert history["hv_ref_latency_ms"].nunique() == 1
    # Tonight's row is its final front's hypervolume against that stored point.
    pareto = pd.read_csv(run_dir / "pareto.csv")
    tonight = history.iloc[1]
    assert tonight["front_size"] == len(pareto) > 0
    assert tonight["hypervolume"] == pytest.approx(hypervolume(
        pareto["latency_ms"], pareto["accuracy"], tonight["hv_ref_latency_ms"],
        tonight["hv_ref_accuracy"]), rel=1e-9, abs=1e-12)
    assert tonight["fingerprint"] == fingerprint  # the same machine as the first night
    # Tonight began by scoring last night's front again; those new scores supersede the old.
    trials = pd.read_csv(run_dir / "trials.csv")
    rescored = trials.dropna(subset=["reevaluates"])
    assert sorted(rescored["reevaluates"].astype(int)) == sorted(front_1)
    assert rescored["trial"].tolist() == list(range(night_1, night_1 + len(front_1)))
    assert (rescored["source"] == "re-evaluation").all()
    assert not set(front_1) & set(search.load_run(run_dir).pareto["trial"])
    # Scored again with the same fine-tune seed: the same accuracy; only latency is new.
    old = trials.set_index("trial")["accuracy"]
    assert [old[int(n)] for n in rescored["reevaluates"]] == rescored["accuracy"].tolist()


def _night(hypervolume: float, noise: float, fingerprint: str = "f") -> dict:
    return {"date": "then", "hypervolume": hypervolume, "noise": noise,
            "fingerprint": fingerprint, "torch": "2"}


def test_a_night_is_worse_only_beyond_both_nights_noise():
    from search.flow._nightly import _compare
    reference = {"latency_ms": 2.0, "accuracy": 0.5}
    front = pd.DataFrame({"latency_ms": [1.0], "accuracy": [0.9]})  # hypervolume 0.4
    tonight = _night(0.4, 0.05)
    # 10% lower latencies give 0.44: beaten by a last night of 0.43 only if last night's noise
    # does not count.
    assert _compare(_night(0.43, 0.0), tonight, front, reference)
    assert not _compare(_night(0.43, 0.05), tonight, front, reference)
    # Unrecorded noise counts as none, and the 2% floor still holds.
    assert not _compare(_night(0.405, float("nan")), _night(0.4, None), front, reference)
    # However large the noise, no front beats the whole box (2 ms x 0.5): latencies stop at 0.
    assert _compare(_night(1.01, 0.9), _night(0.4, 0.9), front, reference)
    problems = _compare(_night(0.5, 0.05, "g"), tonight, front, reference)
    assert len(problems) == 2 and "fingerprint g -> f" in problems[0]


def test_a_night_with_an_empty_front_scores_zero_and_is_worse():
    from search.flow._nightly import _compare
    reference = {"latency_ms": 2.0, "accuracy": 0.5}
    empty = pd.DataFrame({"latency_ms": [], "accuracy": []})
    assert hypervolume(empty["latency_ms"], empty["accuracy"], 2.0, 0.5) == 0.0
    problems = _compare(_night(0.4, 0.05), _night(0.0, None), empty, reference)
    assert len(problems) == 1 and "tonight's front is worse" in problems[0]
