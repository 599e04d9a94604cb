"""The trial record: one rule for within the budget, and an explicit mark that a trial was scored
(read on a real in-memory Optuna study)."""

import optuna

from search.runfolder import (
    ACCURACY,
    FAIL_REASON,
    LATENCY_MS,
    SCORED,
    counts_for_front,
    within_budget,
)
from search.study import record_failure, recorded_values

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_budget_rule_counts_equal_as_within_and_nothing_measured_as_not():
    assert within_budget(2.0, 2.0)
    assert not within_budget(2.0001, 2.0)
    assert not within_budget(None, 2.0)


def test_a_trial_counts_for_the_front_only_fine_tuned_unbroken_and_within_the_budget():
    assert counts_for_front({LATENCY_MS: 1.0, ACCURACY: 0.9}, budget_ms=1.5)
    assert not counts_for_front({LATENCY_MS: 1.0, ACCURACY: None}, budget_ms=1.5)
    assert not counts_for_front({LATENCY_MS: 2.0, ACCURACY: 0.9}, budget_ms=1.5)
    assert not counts_for_front({LATENCY_MS: 1.0, ACCURACY: 0.9, FAIL_REASON: "x"}, 1.5)


def test_a_trial_is_told_only_once_marked_scored_and_old_studies_by_their_constraint():
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    trial.set_user_attr(LATENCY_MS, 1.0)
    assert recorded_values(study.trials[0], dense_ms=5.0) is None  # still being scored
    record_failure(trial, "ValueError: bad widths", None, budget_ms=2.0, dense_ms=5.0)
    frozen = study.trials[0]
    assert frozen.user_attrs[SCORED] is True
    assert recorded_values(frozen, dense_ms=5.0) == [0.0, 5.0]

    # A study written before the mark: its budget constraint (recorded last then) stands for it.
    old = study.ask()
    old.set_user_attr(LATENCY_MS, 1.5)
    old.set_user_attr(ACCURACY, 0.8)
    assert recorded_values(study.trials[1], dense_ms=5.0) is None
    old.set_constraint("latency_over_budget_ms", -0.5)
    assert SCORED not in study.trials[1].user_attrs
    assert recorded_values(study.trials[1], dense_ms=5.0) == [0.8, 1.5]
