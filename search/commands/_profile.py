"""``python -m search profile``: several models measured interleaved, each against the first."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from profilers import (
    MEASURE_SECONDS,
    Context,
    LatencySettings,
    WidthCurve,
    compare,
    count_cost,
    recommended_round_to,
    sweep_settings,
    width_steps,
)
from search._errors import UsageError
from search.runfolder import load_pruned
from search.sources import build_model, device_for
from spaces import PrunedSpec

PROFILE_COLUMNS = ["model", "median_ms", "p90_ms", "iqr_ms", "repeats", "ratio", "ratio_iqr",
                   "macs", "params"]


def _load(name: str, num_classes: int, image_size: int) -> tuple[nn.Module, tuple[int, ...]]:
    """The model a NAME stands for and the shape of one input sample."""
    if name.endswith(".json"):
        if not Path(name).is_file():
            raise UsageError(f"--model {name}: no such file")
        try:
            spec = PrunedSpec.read(name)
            return load_pruned(name), tuple(spec.input_shape[1:])
        except (ValueError, OSError, RuntimeError) as exc:
            raise UsageError(f"--model {name}: {str(exc).splitlines()[0]}") from None
    return build_model(name, num_classes).eval(), (3, image_size, image_size)


def _runs_on(name: str, model: nn.Module, example: torch.Tensor) -> None:
    try:
        with torch.inference_mode():
            model(example[:1])
    except Exception as exc:  # a user's model may fail in any way on this input
        raise UsageError(f"--model {name} fails on a {tuple(example[:1].shape)} input: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def profile_steps(name: str, *, device: str = "cpu", context: Context | None = None,
                  image_size: int = 16, num_classes: int = 10, measure_seconds: float = MEASURE_SECONDS,
                  ) -> tuple[list[WidthCurve], int, dict]:
    """``profile --steps``: each layer kind's latency against its width, and ``--round-to``
    (each kind's sweep capped at :func:`profilers.sweep_settings` of ``measure_seconds``)."""
    context = context or Context()
    torch_device = device_for(device, context)
    model, shape = _load(name, num_classes, image_size)
    example = torch.randn(1, *shape)
    _runs_on(name, model, example)
    curves = width_steps(model, example, device=torch_device, context=context,
                         settings=sweep_settings(measure_seconds))
    return curves, recommended_round_to(curves), {"device": str(torch_device),
                                                  **context.to_dict(),
                                                  "context": context.describe()}


def profile(names: list[str], *, device: str = "cpu", context: Context | None = None,
            image_size: int = 16, num_classes: int = 10,
            measure_seconds: float = MEASURE_SECONDS) -> tuple[pd.DataFrame, dict]:
    """Measures the named models interleaved in one process (for at most ``measure_seconds``
    after the warm-up, fewer once the spread is tight); returns the table and its context.

    Example:
        >>> table, context = profile(["vgg16_bn", "resnet20"])  # doctest: +SKIP
        >>> table[["model", "median_ms", "ratio"]]  # doctest: +SKIP
    """
    context = context or Context()
    torch_device = device_for(device, context)
    loaded = [(name, *_load(name, num_classes, image_size)) for name in names]
    shapes = {shape for _, _, shape in loaded}
    if len(shapes) > 1:
        raise UsageError(f"the models take different inputs ({', '.join(map(str, shapes))}); "
                         "profile models of one input shape together")
    example = torch.randn(context.batch_size, *shapes.pop())
    for name, model, _ in loaded:
        _runs_on(name, model, example)
    models = [model for _, model, _ in loaded]
    result = compare(models, example, device=torch_device,
                     settings=LatencySettings(max_seconds=measure_seconds), context=context)
    costs = [count_cost(model.cpu(), example.cpu()) for model in models]
    table = pd.DataFrame([
        {"model": name, "median_ms": s.median_ms, "p90_ms": s.p90_ms, "iqr_ms": s.iqr_ms,
         "repeats": s.repeats, "ratio": ratio, "ratio_iqr": ratio_iqr, "macs": cost.macs,
         "params": cost.params}
        for (name, _, _), s, ratio, ratio_iqr, cost in zip(
            loaded, result.stats, result.ratios, result.ratio_iqrs, costs, strict=True)
    ], columns=PROFILE_COLUMNS)
    if any(p is not None for p in result.peak_memory_bytes):
        table["peak_memory_mb"] = [p / 2**20 for p in result.peak_memory_bytes]
    about = {"device": str(torch_device), **context.to_dict(), "context": context.describe(),
             "input_shape": list(example.shape), "rounds": result.rounds,
             "stable": result.stable, "gpu_slowdowns": list(result.gpu_slowdowns),
             "seconds": round(result.seconds, 3)}
    return table, about
