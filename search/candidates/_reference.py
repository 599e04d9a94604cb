"""The dense model measured as the reference every candidate's latency is a ratio to, and the
deployment context as a measurement is keyed by."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from profilers import RUNTIMES, Comparison, Context, LatencySettings, compare, count_cost
from search.runfolder import Reference


def measure_reference(dense: nn.Module, smallest: nn.Module | None, example: Tensor,
                      device: torch.device, settings: LatencySettings,
                      context: Context) -> Reference:
    """The dense model's latency, measured with 3x the usual effort, and the smallest candidate's
    (``None`` when that candidate could not be built)."""
    models = [dense] if smallest is None else [dense, smallest]
    comparison = compare(models, example, device=device, settings=settings.scaled(3),
                         context=context)
    stats = comparison.stats[0]
    cost = count_cost(dense, example)
    smallest_ms = None if smallest is None else comparison.ratios[1] * stats.median_ms
    return Reference(stats.median_ms, stats.iqr_ms, stats.p90_ms, stats.repeats, cost.macs,
                     cost.params, smallest_ms)


def scaled_latencies(reference: Reference, comparison: Comparison) -> list[tuple[float, float]]:
    """(latency_ms, latency_iqr_ms) of each model after the first (the dense one) in
    ``comparison``: its ratio times the reference's median, and its single-call spread scaled by
    the same factor, so both refer to the careful measurement rather than to the machine's state
    during that comparison."""
    scale = reference.latency_ms / comparison.stats[0].median_ms
    return [(ratio * reference.latency_ms, stats.iqr_ms * scale)
            for ratio, stats in zip(comparison.ratios[1:], comparison.stats[1:], strict=True)]


def context_key(context: Context) -> dict[str, object]:
    """The context as stored with a measurement, with the runtime's own version where it has one
    (``profilers.RUNTIMES``)."""
    key = context.to_dict()
    version = RUNTIMES[context.runtime].version()
    if version is not None:
        key[context.runtime] = version
    return key
