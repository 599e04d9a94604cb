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


def test_a_trials_log_line_says_each_number_in_the_order_it_happened():
    from search.candidates import CandidateResult
    from search.runfolder import PROMOTED, RUNG0_ACCURACY
    from search.study._trials import _progress

    def line(**kw):
        result = CandidateResult(allocation={}, latency_ms=1.455, latency_iqr_ms=0.379,
                                 macs=10_100_000, params=1, seconds=5.3, **kw)
        return _progress(0, result, budget_ms=6.1)

    promoted = line(feasible=True, accuracy=0.989,
                    extra={PROMOTED: True, RUNG0_ACCURACY: 0.947})
    assert promoted == ("trial   0    1.455 ms ±0.379    10.10 MMACs  quick fine-tune: val  94.7%, "
                        "promoted to the longer one: val  98.9%    5.3 s")
    kept = line(feasible=True, accuracy=0.947, extra={PROMOTED: False, RUNG0_ACCURACY: 0.947})
    assert "quick fine-tune: val  94.7%, not promoted" in kept
    assert "fine-tuned: val  94.7%" in line(feasible=True, accuracy=0.947)  # one fidelity
    assert "over the 6.100 ms budget: not fine-tuned" in line(feasible=False)
