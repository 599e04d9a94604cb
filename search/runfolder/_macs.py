"""MACs against measured latency over a run's candidates: how well the count a MAC-steered tool
budgets by ranks what the device measured, and what such a tool would have picked at a budget.

This is the field's most common complaint about pruning ("pruned, but not faster"): a model with
half the MACs can measure far more than half the latency (small layers are dominated by overheads,
odd channel counts fall off the fast kernels). Each report states it for its own candidates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class MacsPick:
    """What a MAC-steered choice picks at ``budget`` (a share of the dense model): the largest
    candidate whose MACs are within that share of the dense MACs, and its measured latency
    as a share of the dense latency. ``trial`` is None when no candidate was that small."""

    budget: float
    trial: int | None
    macs_ratio: float
    latency_ratio: float

    @property
    def over_budget(self) -> float:
        """How far its measured latency lies from the budget, as a share of the budget
        (0.4: 40% slower than asked; negative: faster)."""
        return self.latency_ratio / self.budget - 1 if self.trial is not None else math.nan


@dataclass(frozen=True)
class MacsLatency:
    """Kendall's tau between candidates' MACs and their measured latency (1: MACs order them
    exactly as the device does), over ``candidates`` measured candidates, and the MAC-steered
    picks at the budgets asked for."""

    tau: float
    candidates: int
    picks: tuple[MacsPick, ...]


def macs_latency(trials: pd.DataFrame, dense_macs: float, dense_ms: float,
                 budgets: tuple[float, ...] = ()) -> MacsLatency:
    """MACs against measured latency over every measured candidate in ``trials`` (a run's
    trials table: ``macs`` and ``latency_ms`` columns; rows without a latency are left out, and a
    repeat measurement of the same widths counts once). ``budgets`` are shares of the dense
    model's latency, and, for the MAC-steered pick, of its MACs.

    Example:
        >>> trials = pd.DataFrame({"macs": [1e6, 2e6, 3e6], "latency_ms": [1.0, 0.9, 2.0]})
        >>> result = macs_latency(trials, dense_macs=4e6, dense_ms=2.5, budgets=(0.5,))
        >>> round(result.tau, 3), result.picks[0].trial, result.picks[0].latency_ratio
        (0.333, 1, 0.36)
    """
    measured = trials[trials["latency_ms"].notna() & trials["macs"].notna()]
    if "repeat_of" in measured:
        measured = measured[measured["repeat_of"].isna()]
    tau = (float(measured["macs"].corr(measured["latency_ms"], method="kendall"))
           if len(measured) >= 2 else math.nan)
    picks = []
    for budget in budgets:
        within = measured[measured["macs"] <= budget * dense_macs]
        if not len(within):
            picks.append(MacsPick(budget, None, math.nan, math.nan))
            continue
        row = within.loc[within["macs"].idxmax()]
        picks.append(MacsPick(budget, int(row.get("trial", row.name)),
                              float(row["macs"] / dense_macs), float(row["latency_ms"] / dense_ms)))
    return MacsLatency(tau, len(measured), tuple(picks))
