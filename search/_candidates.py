"""Scoring one candidate: prune, measure its cost on the device, and only then fine-tune it.

Latency is measured interleaved with the dense model and reported as ratio x the reference's
carefully measured median, so a slow phase of the machine does not make a candidate look slow.
A candidate over the budget is never fine-tuned: that is where most of a search's time would go.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from profilers import Comparison, LatencySettings, compare, count_cost
from search._data import DataSplits
from search._runfolder import save_pruned
from search._train import Recipe, accuracy, finetune
from spaces import Allocation, PrunedSpec, prune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """The dense model's measured cost: every candidate's latency is a ratio to ``latency_ms``."""

    latency_ms: float
    latency_iqr_ms: float
    latency_p90_ms: float
    repeats: int
    macs: int
    params: int
    smallest_latency_ms: float | None

    def latencies(self, comparison: Comparison) -> list[tuple[float, float]]:
        """(latency_ms, latency_iqr_ms) of each model after the first (the dense one) in
        ``comparison``: its ratio times this reference's median, and its single-call spread scaled
        by the same factor, so both refer to this careful measurement rather than to the machine's
        state during that comparison."""
        scale = self.latency_ms / comparison.stats[0].median_ms
        return [(ratio * self.latency_ms, stats.iqr_ms * scale)
                for ratio, stats in zip(comparison.ratios[1:], comparison.stats[1:], strict=True)]


@dataclass
class CandidateResult:
    """What one trial found; ``accuracy`` is None when the candidate was not fine-tuned."""

    allocation: Allocation
    latency_ms: float
    latency_iqr_ms: float
    macs: int
    params: int
    feasible: bool
    accuracy: float | None = None
    seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


def measure_reference(dense: nn.Module, smallest: nn.Module | None, example: Tensor,
                      device: torch.device, settings: LatencySettings) -> Reference:
    """The dense model's latency, measured with 3x the usual effort, and the smallest candidate's
    (``None`` when that candidate could not be built)."""
    models = [dense] if smallest is None else [dense, smallest]
    comparison = compare(models, example, device=device, settings=settings.scaled(3))
    stats = comparison.stats[0]
    cost = count_cost(dense, example)
    smallest_ms = None if smallest is None else comparison.ratios[1] * stats.median_ms
    return Reference(stats.median_ms, stats.iqr_ms, stats.p90_ms, stats.repeats, cost.macs,
                     cost.params, smallest_ms)


@dataclass
class CandidateEvaluator:
    """Everything a trial needs besides its allocation; the dense model is never changed."""

    dense: nn.Module
    model_name: str
    data: DataSplits
    example: Tensor
    device: torch.device
    latency: LatencySettings
    reference: Reference
    budget_ms: float
    recipe: Recipe
    seed: int
    models_dir: Path

    def measure(self, allocation: Allocation) -> tuple[nn.Module, CandidateResult]:
        """The pruned model and its measured cost (no fine-tune yet)."""
        pruned = prune(self.dense, self.example[:1], allocation)
        cost = count_cost(pruned, self.example)
        comparison = compare([self.dense, pruned], self.example, device=self.device,
                             settings=self.latency)
        ((latency_ms, latency_iqr_ms),) = self.reference.latencies(comparison)
        result = CandidateResult(
            allocation=dict(allocation),
            latency_ms=latency_ms,
            latency_iqr_ms=latency_iqr_ms,
            macs=cost.macs,
            params=cost.params,
            feasible=latency_ms <= self.budget_ms,
            extra={"latency_ratio": comparison.ratios[1], "latency_rounds": comparison.rounds,
                   "latency_stable": comparison.stable},
        )
        return pruned.cpu(), result

    def evaluate(self, number: int, allocation: Allocation) -> CandidateResult:
        """Scores one candidate; a feasible one is fine-tuned, validated and saved as trial-N."""
        began = time.perf_counter()
        pruned, result = self.measure(allocation)
        if result.feasible:
            finetune(pruned, self.data, self.recipe, seed=self.seed * 100_003 + number)
            result.accuracy = accuracy(pruned, self.data.val_x, self.data.val_y)
            spec = PrunedSpec(self.model_name, self.data.num_classes, tuple(self.example[:1].shape),
                              dict(allocation), weights=f"trial-{number}.pt")
            save_pruned(pruned, spec, self.models_dir / f"trial-{number}.json")
        result.seconds = time.perf_counter() - began
        return result
