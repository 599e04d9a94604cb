"""Warm-start candidates aimed at latencies across the budget (``--warm-start aimed``).

The grid warm start queues candidates at fixed channel shares (a quarter, a half, three quarters
kept), wherever their latency falls: on a tight budget the larger ones are measured only to be
found over it, and nothing is aimed between the smallest candidate and the budget, where the
front is. What the aimed start gained over it: docs/benchmarks/cifar10-history.md.

Before any trial, the search has measured the dense model and the smallest candidate the space
allows. Between those two points latency is taken as affine in MACs (a fixed cost per call plus
a cost per MAC): crude, but it ranks this run's candidates as the device does far better than
MACs alone place them, since it starts from two measurements. With it, for latency targets
spread evenly from the smallest candidate to the budget, three families propose the largest
candidate predicted to fit, in this order:

- one ranking of channels across the model by L2 magnitude (torch-pruning's global pruning), at
  10 targets: a sweep of the range where the front is (a sweep of pruning ratios, as
  Torch-Pruning's users make, lands many candidates over the budget or far under it);
- one keep fraction for every group (uniform), at 4 targets;
- the magnitude ranking with each channel's score divided by the MACs it costs, at 4 targets: a
  greedy knapsack of importance under a MAC cost, as HALP solves it under a latency cost.

The families' members (the rankings at shares of all channels in steps of 1/80, the uniform
fractions), with their MACs, make the study's catalogue (:class:`Catalogue`), which the ``gaps``
sampler goes on choosing from after the warm start (``._gaps``).

The candidates are pruned here but never run: their MACs are counted from their layers' shapes
(``profilers.LayerMacs``), since a candidate may crash the process that runs it, and this is
the search's own process, not a trial's worker.

Hand-written because no library builds it: torch-pruning ranks channels but knows nothing of a
latency budget, and Optuna's samplers know nothing of the candidates' structure.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from profilers import LayerMacs
from spaces import Allocation, Ranking, SearchSpace, prune

# Latency targets, evenly from the smallest candidate to the budget (included): for the sweep of
# the magnitude ranking, and for each other family.
SWEEP_TARGETS = 10
TARGETS = 4
# A pruned copy is left in reference cycles (torch-pruning's graph and the model's modules) that
# only the full cyclic collection frees: without it, VGG-16-BN's catalogue (91 prunes) grew the
# process to 2.1 GB peak in 9.1 s; collecting every 20 prunes, 1.06 GB in 11.3 s (every 10:
# 0.86 GB in 12.6 s; a young-generation collection frees nothing).
_COLLECT_EVERY = 20
_SHARES = tuple(i / 80 for i in range(8, 80))  # shares of all channels the rankings keep


@dataclass(frozen=True)
class LatencyLine:
    """Latency as affine in MACs, through the dense model's and the smallest candidate's
    measurements."""

    dense_macs: float
    dense_ms: float
    smallest_macs: float
    smallest_ms: float

    @property
    def slope(self) -> float:
        """Milliseconds per MAC (0 when the two points have the same MACs)."""
        span = self.dense_macs - self.smallest_macs
        return (self.dense_ms - self.smallest_ms) / span if span > 0 else 0.0

    def predict(self, macs: float) -> float:
        return self.smallest_ms + self.slope * (macs - self.smallest_macs)


@dataclass(frozen=True)
class Aim:
    """What the warm start aims with: the dense model's and the smallest candidate's measured
    latencies, and the budget (ms)."""

    dense_ms: float
    smallest_ms: float
    budget_ms: float


@dataclass(frozen=True)
class Catalogue:
    """The aimed families' candidates, each with its MACs (counted from its layers' shapes), and
    the MACs of the dense model and the smallest candidate: what the warm start chooses from, and
    what the ``gaps`` sampler (``._gaps``) goes on choosing from as the front fills. Stored in the
    study (:data:`CATALOGUE_ATTR`) so that every process adding trials to it reads the same.

    Attributes:
        families: family name -> [(the space's params, MACs)], ascending in MACs.
    """

    families: dict[str, list[tuple[dict[str, float], float]]]
    dense_macs: float
    smallest_macs: float

    def to_json(self) -> dict:
        return {"families": {name: [[params, macs] for params, macs in members]
                             for name, members in self.families.items()},
                "dense_macs": self.dense_macs, "smallest_macs": self.smallest_macs}

    @classmethod
    def from_json(cls, stored: dict) -> Catalogue:
        return cls({name: [(params, macs) for params, macs in members]
                    for name, members in stored["families"].items()},
                   stored["dense_macs"], stored["smallest_macs"])

    def line(self, aim: Aim) -> LatencyLine:
        return LatencyLine(self.dense_macs, aim.dense_ms, self.smallest_macs, aim.smallest_ms)


def catalogue(dense: nn.Module, example: Tensor, space: SearchSpace,
              scores: Mapping[str, Tensor]) -> Catalogue:
    """The families' candidates with their MACs: one fraction for every group (uniform) and, given
    the groups' channel ``scores``, the magnitude ranking and the knapsack (score per MAC) at
    shares of all channels in steps of 1/80. The candidates are pruned here but never run."""
    example = example[:1]
    macs_cache: dict[str, float] = {}
    counter = LayerMacs.of(dense, example)  # candidates are counted, never run, in this process

    def allocation_macs(allocation: dict[str, int]) -> float:
        key = json.dumps(allocation, sort_keys=True)
        if key not in macs_cache:
            macs_cache[key] = counter(prune(dense, example, allocation))
            if len(macs_cache) % _COLLECT_EVERY == 0:
                gc.collect()
        return macs_cache[key]

    families = {"uniform": [space.params_at(f) for f in space.fractions if f < 1.0]}
    if scores:
        ranking = Ranking(scores, _channel_costs(space, allocation_macs))
        families["magnitude"] = ranked_params(space, ranking, _SHARES, 0.0)
        families["knapsack"] = ranked_params(space, ranking, _SHARES, 1.0)
    dense_key = json.dumps(space.params_for({}), sort_keys=True)  # the dense model is known
    measured = {}
    for name, members in families.items():
        distinct = {json.dumps(p, sort_keys=True): p for p in members}
        distinct.pop(dense_key, None)
        measured[name] = sorted(((p, allocation_macs(space.decode(p)))
                                 for p in distinct.values()), key=lambda item: item[1])
    return Catalogue(measured, allocation_macs(space.dense()), allocation_macs(space.smallest()))


# The warm start's families in the order they are queued, with their number of latency targets.
_WARM_START = (("magnitude", SWEEP_TARGETS), ("uniform", TARGETS), ("knapsack", TARGETS))


def aimed_params(found: Catalogue, aim: Aim) -> list[tuple[str, dict[str, float]]]:
    """The warm-start candidates, each with the family that chose it first (the space's params):
    for each of a family's latency targets, its largest candidate predicted within it; the
    magnitude ranking first."""
    line = found.line(aim)
    top = min(aim.budget_ms, line.dense_ms)
    chosen: dict[str, tuple[str, dict[str, float]]] = {}
    for name, count in _WARM_START:
        predicted = [(line.predict(macs), p) for p, macs in found.families.get(name, [])]
        for i in range(count):
            target = line.smallest_ms + (top - line.smallest_ms) * (i + 1) / count
            fitting = [(ms, p) for ms, p in predicted if ms <= target]
            if fitting:
                params = max(fitting, key=lambda item: item[0])[1]
                chosen.setdefault(json.dumps(params, sort_keys=True), (name, params))
    return list(chosen.values())


def ranked_params(space: SearchSpace, ranking: Ranking, shares: tuple[float, ...],
                  cost_exponent: float) -> list[dict[str, float]]:
    """The space's params (each dimension's nearest choice) for the ranking keeping each of
    ``shares`` of all channels, by score / channel cost ** ``cost_exponent``."""
    return [space.params_for(ranking.fractions(share, cost_exponent)) for share in shares]


def _channel_costs(space: SearchSpace,
                   macs: Callable[[Allocation], float]) -> dict[str, float]:
    """MACs one channel of each group costs: what cutting the group alone to its smallest width
    saves, per channel cut (the layers it feeds included)."""
    full = macs(space.dense())
    costs = {}
    for group in space.searchable:
        smallest = space.widths(group)[0]
        saved = full - macs({**space.dense(), group.name: smallest})
        costs[group.name] = max(saved, 1.0) / max(group.width - smallest, 1)
    return costs
