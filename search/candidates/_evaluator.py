"""Scoring one candidate: prune, measure its cost on the device, and only then fine-tune it.

Latency is measured interleaved with the dense model and reported as ratio x the reference's
carefully measured median, so a slow phase of the machine does not make a candidate look slow.
A candidate over the budget is never fine-tuned: that is where most of a search's time would go.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from profilers import (
    Context,
    LatencyCache,
    LatencySettings,
    Runner,
    compare,
    count_cost,
    prepare,
)
from search._guards import MemoryLimitReached, memory_ceiling, memory_limit
from search.candidates._promotion import Promotion
from search.candidates._reference import context_key, scaled_latencies
from search.candidates._space import TRACE_MEMORY_SHARE
from search.runfolder import (
    PROMOTED,
    RUNG0_ACCURACY,
    Reference,
    model_json,
    save_pruned,
    trial_weights,
    within_budget,
)
from search.sources import DataSplits
from search.training import Recipe, finetune, score
from spaces import Allocation, PrunedSpec, prune

log = logging.getLogger(__name__)


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


@dataclass(kw_only=True)
class CandidateEvaluator:
    """Everything a trial needs besides its allocation; the dense model is never changed.

    With a ``cache``, a candidate's latency ratio measured by an earlier run on this device and
    context is reused (scaled by this run's reference) instead of being measured again.
    """

    dense: nn.Module
    model_name: str
    data: DataSplits
    example: Tensor
    device: torch.device
    latency: LatencySettings
    context: Context
    reference: Reference
    budget_ms: float
    recipe: Recipe
    seed: int
    run_dir: Path  # the run folder: the candidate's model is saved in its models/
    cache: LatencyCache | None = None
    trial_timeout: float | None = None
    importance: str = "l2"
    max_rss: int | None = None  # resident bytes a trial may grow to; None: memory_ceiling
    accuracy_floor: float | None = None  # below it, a candidate is infeasible to the sampler
    _dense_runner: Runner | None = field(default=None, init=False, repr=False)

    @property
    def teacher(self) -> nn.Module | None:
        """The dense model when fine-tunes learn its outputs too (``--distill``), else None."""
        return self.dense if self.recipe.distill else None

    def dense_runner(self) -> Runner:
        """The dense model prepared once (compiling or exporting it is the slow part)."""
        if self._dense_runner is None:
            self._dense_runner = prepare(self.dense, self.example, self.device, self.context)
        return self._dense_runner

    def _cache_key(self, allocation: Allocation) -> dict[str, object]:
        return {"architecture": {"model": self.model_name, "num_classes": self.data.num_classes,
                                 "input_shape": list(self.example.shape[1:]),
                                 "dense_macs": self.reference.macs,
                                 "allocation": dict(sorted(allocation.items()))},
                "context": context_key(self.context)}

    def measure(self, allocation: Allocation,
                importance: str | None = None) -> tuple[nn.Module, CandidateResult]:
        """The pruned model and its measured cost (no fine-tune yet); ``importance`` overrides
        the evaluator's criterion (the trial's choice with ``--importance search``)."""
        importance = importance or self.importance
        batches = None
        if importance == "taylor":  # the same two training batches for every candidate
            size = self.recipe.batch_size
            batches = list(itertools.islice(self.data.train.batches(size), 2))
        pruned = prune(self.dense, self.example[:1], allocation, importance=importance,
                       batches=batches)
        cost = count_cost(pruned, self.example)
        key = self._cache_key(allocation)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            ratio = cached["ratio"]
            latency_ms = ratio * self.reference.latency_ms
            latency_iqr_ms = cached["relative_iqr"] * latency_ms
            extra = {"latency_ratio": ratio, "latency_cached": True}
        else:
            comparison = compare([self.dense_runner(), pruned], self.example, device=self.device,
                                 settings=self.latency, context=self.context)
            ((latency_ms, latency_iqr_ms),) = scaled_latencies(self.reference, comparison)
            ratio = comparison.ratios[1]
            extra = {"latency_ratio": ratio, "latency_rounds": comparison.rounds,
                     "latency_stable": comparison.stable, "latency_cached": False,
                     "dense_ms_now": comparison.stats[0].median_ms}
            if comparison.peak_memory_bytes[1] is not None:
                extra["peak_memory_bytes"] = comparison.peak_memory_bytes[1]
            if comparison.gpu_slowdowns:
                extra["gpu_slowdowns"] = ",".join(comparison.gpu_slowdowns)
            if self.cache is not None and not comparison.gpu_slowdowns:
                self.cache.put(key, {"ratio": ratio,
                                     "relative_iqr": latency_iqr_ms / latency_ms,
                                     "rounds": comparison.rounds, "stable": comparison.stable,
                                     "macs": cost.macs, "params": cost.params})
        result = CandidateResult(
            allocation=dict(allocation),
            latency_ms=latency_ms,
            latency_iqr_ms=latency_iqr_ms,
            macs=cost.macs,
            params=cost.params,
            feasible=within_budget(latency_ms, self.budget_ms),
            extra=extra,
        )
        return pruned.cpu(), result

    def finetune_seed(self, number: int) -> int:
        """The fine-tune's seed for trial ``number`` (the search's and the final stage's alike):
        distinct per trial and per run seed."""
        return self.seed * 100_003 + number

    def evaluate(self, number: int, allocation: Allocation, seed_number: int | None = None,
                 importance: str | None = None,
                 promotion: Promotion | None = None) -> CandidateResult:
        """Scores one candidate; a feasible one is fine-tuned, validated and saved as trial-N.

        The fine-tune is seeded by ``seed_number`` (default ``number``): scoring trial M's
        widths again with M's seed gives M's accuracy again, so only latency is measured anew.
        With ``recipe.promote_steps``, a candidate that ``promotion`` promotes is fine-tuned that
        many steps more and scored again.

        A trial that grows this process past ``max_rss`` resident bytes (by default its memory
        now plus TRACE_MEMORY_SHARE of what the machine has available) is stopped with a
        MemoryError, which the study records as the trial's failure."""
        began = time.perf_counter()
        deadline = None if self.trial_timeout is None else began + self.trial_timeout
        with self._memory_guard("pruning and measuring"):
            pruned, result = self.measure(allocation, importance)
        if result.feasible:
            with self._memory_guard("fine-tuning"):
                seed = self.finetune_seed(number if seed_number is None else seed_number)
                finetune(pruned, self.data, self.recipe, seed=seed, deadline=deadline,
                         teacher=self.teacher)
                result.accuracy = score(pruned, self.data.val, self.recipe)
                if self.recipe.promote_steps:
                    self._promote(pruned, result, promotion or Promotion(), seed, deadline)
                spec = PrunedSpec(self.model_name, self.data.num_classes,
                                  tuple(self.example[:1].shape), dict(allocation),
                                  weights=trial_weights(number))
                save_pruned(pruned, spec, model_json(self.run_dir, number))
        result.seconds = time.perf_counter() - began
        return result

    @contextlib.contextmanager
    def _memory_guard(self, step: str) -> Iterator[None]:
        """The block under ``max_rss`` (default: ``memory_ceiling``), a MemoryError naming
        ``step`` past it. torch-pruning's index mappings can grow without end on some models at
        some widths (the probe tried only a few): one failed trial, not the out-of-memory
        killer ending the search."""
        try:
            with memory_limit(self.max_rss or memory_ceiling(TRACE_MEMORY_SHARE)):
                yield
        except MemoryLimitReached as reached:
            raise MemoryError(f"the candidate grew this process to {reached.rss / 2**30:.1f} GB "
                              f"while {step} it; stopped before the machine ran out of "
                              f"memory") from None

    def _promote(self, pruned: nn.Module, result: CandidateResult, promotion: Promotion,
                 seed: int, deadline: float | None) -> None:
        """The second rung: more steps from the quick fine-tune's weights (batch-norm statistics
        are already this candidate's), when its quick accuracy puts it near the front."""
        quick = result.accuracy
        promoted = promotion.promotes(quick, result.latency_ms, len(self.data.val),
                                      margin=self.recipe.promote_margin)
        if promoted:
            longer = replace(self.recipe, finetune_steps=self.recipe.promote_steps, bn_batches=0)
            finetune(pruned, self.data, longer, seed=seed + 7_919, deadline=deadline,
                     teacher=self.teacher)
            result.accuracy = score(pruned, self.data.val, self.recipe)
        result.extra.update({RUNG0_ACCURACY: quick, PROMOTED: promoted})
