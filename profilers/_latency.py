"""Latency of models on a device, measured so that machine drift cancels.

Why by hand and not ``torch.utils.benchmark.Timer``: the Timer measures one statement at a time and
times CUDA with the host clock around a synchronize. Here several models must be measured
*interleaved*, round by round, so that a slow phase of a shared machine hits every model alike and
the per-round ratio cancels it; on CUDA each call is timed with CUDA events.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from profilers._context import Context, Runner, prepare
from profilers._gpu import read_gpu_state

log = logging.getLogger(__name__)


MEASURE_SECONDS = 3.0  # one comparison's default time cap after the warm-up (s)


@dataclass(frozen=True)
class LatencyStats:
    """Spread of single-call latencies: never one bare number."""

    median_ms: float
    p90_ms: float
    iqr_ms: float
    repeats: int

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        if not samples_ms:
            raise ValueError("no latency samples")
        if len(samples_ms) == 1:
            return cls(samples_ms[0], samples_ms[0], 0.0, 1)
        q = statistics.quantiles(samples_ms, n=20, method="inclusive")  # 5% steps
        return cls(statistics.median(samples_ms), q[17], q[14] - q[4], len(samples_ms))


@dataclass(frozen=True)
class Comparison:
    """Models measured interleaved, each against the first.

    Attributes:
        stats: per model, the spread of its single-call latencies.
        ratios: per model, the median over rounds of (its median / the first model's median).
        ratio_iqrs: per model, the interquartile range of those per-round ratios.
        rounds: how many rounds were run.
        stable: whether every ratio's relative IQR ended below the requested spread.
        seconds: wall time the comparison took.
        peak_memory_bytes: per model on CUDA, its weights plus the peak memory its calls allocated
            (activations, workspaces); None on CPU.
        gpu_slowdowns: NVML clock slowdowns seen around the measurement (after one repeat); empty
            when the clocks were at full speed or could not be read.
    """

    stats: tuple[LatencyStats, ...]
    ratios: tuple[float, ...]
    ratio_iqrs: tuple[float, ...]
    rounds: int
    stable: bool
    seconds: float
    peak_memory_bytes: tuple[int | None, ...] = ()
    gpu_slowdowns: tuple[str, ...] = ()


@dataclass(frozen=True)
class LatencySettings:
    """How hard to try: the budget of one comparison (what is measured is the :class:`Context`).

    Attributes:
        warmup_s: minimum warm-up per model; on CUDA also at least ``warmup_calls`` calls, which
            covers cuDNN autotuning of the model's shapes.
        block_ms: target time of one model's block of calls within a round.
        min_rounds: rounds always run.
        max_seconds: time cap; rounds stop once spent even when the spread is still wide.
        rel_spread: target relative IQR of every ratio; wider measurements get more rounds.
    """

    warmup_s: float = 0.1
    warmup_calls: int = 10
    block_ms: float = 10.0
    min_rounds: int = 15
    max_seconds: float = MEASURE_SECONDS
    rel_spread: float = 0.10

    def __post_init__(self) -> None:
        if self.min_rounds < 1 or self.max_seconds <= 0:
            raise ValueError("min_rounds must be at least 1 and max_seconds positive")

    def scaled(self, factor: float) -> LatencySettings:
        """The same settings with ``factor`` times the rounds and time (for careful re-measurement)."""
        return LatencySettings(self.warmup_s * factor, self.warmup_calls, self.block_ms,
                               int(self.min_rounds * factor), self.max_seconds * factor,
                               self.rel_spread)


@contextlib.contextmanager
def _measurement_context(device: torch.device, threads: int) -> Iterator[None]:
    previous_threads = torch.get_num_threads()
    previous_benchmark = torch.backends.cudnn.benchmark
    torch.set_num_threads(threads)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # autotune, as deployments do
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.backends.cudnn.benchmark = previous_benchmark


def _time_calls(runner: Runner, calls: int, device: torch.device) -> list[float]:
    """Milliseconds of each of ``calls`` runs: CUDA events on CUDA, else the host clock."""
    if device.type == "cuda" and not runner.host_timed:
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(calls)]
        for start, end in events:
            start.record()
            runner.call()
            end.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) for start, end in events]
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        runner.call()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _warm_up(runner: Runner, device: torch.device, settings: LatencySettings) -> tuple[float, int | None]:
    """Runs until warm; returns the median call time in ms and, on CUDA, the peak memory (bytes)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    calls, deadline, times = 0, time.perf_counter() + settings.warmup_s, []
    while calls < settings.warmup_calls or time.perf_counter() < deadline:
        times += _time_calls(runner, 1, device)
        calls += 1
    peak = None
    if device.type == "cuda":
        peak = runner.weight_bytes + torch.cuda.max_memory_allocated(device) - base
    return statistics.median(times[len(times) // 2:]), peak


def compare(models: Sequence[nn.Module | Runner], example_input: Tensor, *,
            device: torch.device | str, settings: LatencySettings | None = None,
            context: Context | None = None) -> Comparison:
    """Measures ``models`` interleaved, round by round, and each one's latency ratio to the first.

    Args:
        models: the first is the reference; all must take ``example_input``. A :class:`Runner`
            from :func:`prepare` is used as it is (prepare the reference once when it is compared
            often: compiling or exporting it is the slow part).
        example_input: one batch in fp32 NCHW; ``context`` converts it.
        device: where to run; models are moved there.
        settings: rounds, warm-up and spread target.
        context: batch size, precision, memory format, runtime and threads (default: fp32 eager,
            one thread). Its batch size must match ``example_input``.

    Returns:
        A :class:`Comparison`; ``ratios[0]`` is 1. On CUDA a comparison during which the GPU
        throttled its clocks is run once more, and flagged if it throttled again.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3))
        >>> result = compare([net, net], torch.randn(1, 3, 16, 16), device="cpu",
        ...                  settings=LatencySettings(min_rounds=3, max_seconds=0.2))
        >>> result.ratios[0], len(result.stats)
        (1.0, 2)
    """
    settings = settings or LatencySettings()
    context = context or Context(batch_size=example_input.shape[0])
    device = torch.device(device)
    if example_input.shape[0] != context.batch_size:
        raise ValueError(f"example input has batch {example_input.shape[0]}, the context "
                         f"{context.batch_size}")
    with _measurement_context(device, context.threads):
        runners = [m if isinstance(m, Runner) else prepare(m, example_input, device, context)
                   for m in models]
        for attempt in range(2):
            before = read_gpu_state(device)
            result = _interleaved(runners, device, settings)
            after = read_gpu_state(device)
            slowdowns = tuple(sorted({s for state in (before, after) if state
                                      for s in state.slowdowns}))
            if not slowdowns:
                return result
            log.warning("GPU clocks slowed (%s) while measuring%s", ", ".join(slowdowns),
                        ": measuring again" if attempt == 0 else "; result flagged")
    return dataclasses.replace(result, gpu_slowdowns=slowdowns)


def _interleaved(runners: Sequence[Runner], device: torch.device,
                 settings: LatencySettings) -> Comparison:
    began = time.perf_counter()
    samples: list[list[float]] = [[] for _ in runners]
    round_ratios: list[list[float]] = [[] for _ in runners]
    warm = [_warm_up(r, device, settings) for r in runners]
    calls = [max(1, round(settings.block_ms / max(t, 1e-3))) for t, _ in warm]
    rounds, stable = 0, False
    while True:
        # Alternate the order so neither model always runs right after the other's cache use.
        order = range(len(runners)) if rounds % 2 == 0 else reversed(range(len(runners)))
        medians = [0.0] * len(runners)
        for i in order:
            times = _time_calls(runners[i], calls[i], device)
            samples[i] += times
            medians[i] = statistics.median(times)
        for i, m in enumerate(medians):
            round_ratios[i].append(m / medians[0])
        rounds += 1
        if rounds < settings.min_rounds:
            continue
        stable = all(_relative_iqr(r) <= settings.rel_spread for r in round_ratios)
        if stable or time.perf_counter() - began > settings.max_seconds:
            break
    if not stable:
        log.debug("latency spread stayed above %.0f%% after %d rounds", 100 * settings.rel_spread,
                  rounds)
    ratios = tuple(statistics.median(r) for r in round_ratios)
    iqrs = tuple(LatencyStats.from_samples(r).iqr_ms for r in round_ratios)
    stats = tuple(LatencyStats.from_samples(s) for s in samples)
    return Comparison(stats, ratios, iqrs, rounds, stable, time.perf_counter() - began,
                      peak_memory_bytes=tuple(peak for _, peak in warm))


def measure(model: nn.Module, example_input: Tensor, *, device: torch.device | str,
            settings: LatencySettings | None = None, context: Context | None = None) -> LatencyStats:
    """Latency of one model alone (no reference to cancel drift against)."""
    return compare([model], example_input, device=device, settings=settings,
                   context=context).stats[0]


def _relative_iqr(values: Sequence[float]) -> float:
    if len(values) < 4:
        return 0.0
    stats = LatencyStats.from_samples(values)
    return stats.iqr_ms / stats.median_ms if stats.median_ms else 0.0
