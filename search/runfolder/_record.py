"""The trial record: one name for each thing a trial records (an Optuna user attribute of the
study, and the trials.csv column of the same name), and the one rule for whether a trial lies
within the budget.

Within the budget is decided here and nowhere else: the evaluator (whether to fine-tune), the
trials table's ``feasible`` column, the ``gaps`` sampler's front and the final stage all ask
:func:`within_budget` or :func:`counts_for_front`. The rule reads the measured latency against
the budget of the run asking, not the constraint stored when the trial was scored: a run
resumed with another ``--budget-ms`` judges its earlier trials by the new budget (and re-scores
those the larger budget now admits), while the stored constraint keeps the budget they were
scored under.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ALLOCATION = "allocation"  # the widths, as sorted JSON
LATENCY_MS = "latency_ms"  # measured median
LATENCY_IQR_MS = "latency_iqr_ms"
MACS = "macs"
PARAMS = "params"
FEASIBLE = "feasible"  # trials.csv: fine-tuned and within the budget
ACCURACY = "accuracy"  # validation accuracy; None when not fine-tuned (over the budget, failed)
SECONDS = "seconds"
FAIL_REASON = "fail_reason"  # present only on a candidate that broke
REPEAT_OF = "repeat_of"  # the earlier trial whose scores a repeat reused
IMPORTANCE = "importance"  # the criterion, when the search draws it
LATENCY_CACHED = "latency_cached"
DENSE_MS_NOW = "dense_ms_now"
RUNG0_ACCURACY = "rung0_accuracy"  # the accuracy after the quick fine-tune (--promote-steps)
PROMOTED = "promoted"  # whether the trial got the longer fine-tune
REEVALUATES = "reevaluates"  # the earlier trial whose widths this one scores again (nightly)
SOURCE = "source"  # what proposed the candidate: "warm start: FAMILY", "gaps: FAMILY", a sampler
# Set once everything else of the trial is recorded: a trial that has it can be told its values
# (by whoever finds it untold). Studies written before it carry the budget constraint instead.
SCORED = "scored"


def within_budget(latency_ms: float | None, budget_ms: float) -> bool:
    """The one rule: a measured latency at or under the budget. Nothing measured is not within."""
    return latency_ms is not None and latency_ms <= budget_ms


def failed(attrs: Mapping[str, Any]) -> bool:
    """Whether the candidate broke (its ``fail_reason`` says why)."""
    return FAIL_REASON in attrs


def counts_for_front(attrs: Mapping[str, Any], budget_ms: float) -> bool:
    """Whether a scored trial's record can stand on the front: it did not break, it was
    fine-tuned (has an accuracy), and its latency is within the budget."""
    return (not failed(attrs) and attrs.get(ACCURACY) is not None
            and within_budget(attrs.get(LATENCY_MS), budget_ms))
