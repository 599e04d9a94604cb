"""Warm-start candidates aimed at latencies across the budget (``--warm-start aimed``).

The default warm start queues candidates at fixed channel shares (a quarter, a half, three
quarters kept), wherever their latency falls: on a budget of 0.7 x the dense latency, the
three-quarter candidates are measured only to be found over it, and nothing is aimed between the
smallest candidate and the budget, where the front is.

Before any trial, the search has measured the dense model and the smallest candidate the space
allows. Between those two points latency is taken as affine in MACs (a fixed cost per call plus
a cost per MAC): crude, but it ranks this run's candidates as the device does far better than
MACs alone place them, since it starts from two measurements. With it, for each of a few latency
targets spread evenly from the smallest candidate to the budget, three families propose the
largest candidate predicted to fit:

- one keep fraction for every group (uniform; not in a ranked space, which cannot express it);
- one ranking of channels across the model by L2 magnitude (torch-pruning's global pruning);
- the same ranking with each channel's score divided by the MACs it costs: a greedy knapsack of
  importance under a MAC cost, as HALP solves it under a latency cost.

Hand-written because no library builds it: torch-pruning ranks channels but knows nothing of a
latency budget, and Optuna's samplers know nothing of the candidates' structure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from torch import Tensor, nn

from profilers import count_cost
from spaces import Ranking, SearchSpace, prune

TARGETS = 4  # latency targets, evenly from the smallest candidate to the budget (included)
_SHARES = tuple(i / 20 for i in range(2, 20))  # shares of all channels the rankings keep


@dataclass(frozen=True)
class LatencyLine:
    """Latency as affine in MACs, through the dense model's and the smallest candidate's
    measurements."""

    dense_macs: float
    dense_ms: float
    smallest_macs: float
    smallest_ms: float

    def predict(self, macs: float) -> float:
        span = self.dense_macs - self.smallest_macs
        slope = (self.dense_ms - self.smallest_ms) / span if span > 0 else 0.0
        return self.smallest_ms + slope * (macs - self.smallest_macs)


@dataclass(frozen=True)
class Aim:
    """What the warm start aims with: the dense model's and the smallest candidate's measured
    latencies, and the budget (ms)."""

    dense_ms: float
    smallest_ms: float
    budget_ms: float


def aimed_params(dense: nn.Module, example: Tensor, space: SearchSpace, aim: Aim,
                 ranking: Ranking | None) -> list[dict[str, float]]:
    """The warm-start candidates (the space's params), for each latency target the largest
    uniform, ranked and knapsack candidate predicted within it; without a ``ranking`` (the
    channels could not be scored), uniform only."""
    example = example[:1]
    macs_cache: dict[str, float] = {}

    def allocation_macs(allocation: dict[str, int]) -> float:
        key = json.dumps(allocation, sort_keys=True)
        if key not in macs_cache:
            macs_cache[key] = count_cost(prune(dense, example, allocation), example).macs
        return macs_cache[key]

    line = LatencyLine(allocation_macs(space.dense()), aim.dense_ms,
                       allocation_macs(space.smallest()), aim.smallest_ms)
    families = [] if space.kind == "ranked" else [
        [space.params_at(f) for f in space.fractions if f < 1.0]]
    if ranking is not None:
        families += [ranked_params(space, ranking, _SHARES, cost) for cost in (0.0, 1.0)]
    top = min(aim.budget_ms, line.dense_ms)
    targets = [line.smallest_ms + (top - line.smallest_ms) * (i + 1) / TARGETS
               for i in range(TARGETS)]
    chosen: dict[str, dict[str, float]] = {}
    for family in families:
        predicted = [(line.predict(allocation_macs(space.decode(p))), p) for p in family]
        for target in targets:
            fitting = [(ms, p) for ms, p in predicted if ms <= target]
            if fitting:
                params = max(fitting, key=lambda item: item[0])[1]
                chosen.setdefault(json.dumps(params, sort_keys=True), params)
    chosen.pop(json.dumps(space.params_for({}), sort_keys=True), None)  # the dense model is known
    return list(chosen.values())


def ranked_params(space: SearchSpace, ranking: Ranking, shares: tuple[float, ...],
                  cost_exponent: float) -> list[dict[str, float]]:
    """The space's params for the ranking keeping each of ``shares`` of all channels, by score
    / channel cost ** ``cost_exponent``: in a ranked space its own coordinates (stage weights 1),
    in another the nearest choice to each group's share."""
    if space.kind == "ranked":
        return [{**space.params_at(share), "cost": cost_exponent} for share in shares]
    return [space.params_for(ranking.fractions(share, cost_exponent)) for share in shares]
