"""MACs against measured latency: Kendall's tau over a run's candidates and the MAC-steered pick
at a budget, in the reports too."""

import doctest
import json
import math

import pandas as pd
import pytest

from search.runfolder import _macs, macs_latency


def test_tau_follows_the_order_of_macs_and_latency():
    trials = pd.DataFrame({"macs": [1, 2, 3, 4], "latency_ms": [1.0, 2.0, 3.0, 4.0]})
    assert macs_latency(trials, 4, 4.0).tau == pytest.approx(1.0)
    reversed_ = trials.assign(latency_ms=trials["latency_ms"][::-1].to_numpy())
    assert macs_latency(reversed_, 4, 4.0).tau == pytest.approx(-1.0)


def test_the_pick_is_the_largest_candidate_within_the_mac_budget():
    trials = pd.DataFrame({"trial": [7, 8, 9, 10], "macs": [20.0, 45.0, 50.0, 80.0],
                           "latency_ms": [3.0, 8.0, 7.0, 9.0], "repeat_of": [None] * 4})
    result = macs_latency(trials, 100.0, 10.0, budgets=(0.5, 0.1))
    pick, none = result.picks
    assert (pick.trial, pick.macs_ratio, pick.latency_ratio) == (9, 0.5, 0.7)
    assert pick.over_budget == pytest.approx(0.4)  # measured 40% over the budget it was given
    assert none.trial is None and math.isnan(none.over_budget)


def test_unmeasured_trials_and_repeats_are_left_out():
    trials = pd.DataFrame({"trial": [0, 1, 2, 3], "macs": [1.0, 2.0, 2.0, 3.0],
                           "latency_ms": [1.0, 2.0, 2.1, None],
                           "repeat_of": [None, None, 1.0, None]})
    result = macs_latency(trials, 4.0, 4.0)
    assert result.candidates == 2 and result.tau == pytest.approx(1.0)
    assert math.isnan(macs_latency(trials.iloc[:1], 4.0, 4.0).tau)


def test_the_docstring_example_runs():
    assert doctest.testmod(_macs).failed == 0


def test_both_reports_state_it(run_copy):
    trials = pd.read_csv(run_copy / "trials.csv")
    reference = json.loads((run_copy / "reference.json").read_text())
    result = macs_latency(trials, reference["macs"], reference["latency_ms"])
    assert result.candidates >= 2
    line = f"Kendall tau {result.tau:.2f} over {result.candidates} measured candidates"
    assert line in (run_copy / "report.md").read_text()
    assert line in (run_copy / "report.html").read_text()
