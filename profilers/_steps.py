"""Width steps: how a layer's latency moves with its channel count on this device.

Hardware computes in tiles (vector lanes on CPUs, tensor-core tiles on GPUs), so a layer with 65
output channels often costs what one with 80 costs. A search that may pick any width then wastes
its budget on widths that buy nothing. This module measures, for each kind of layer in a model
(at the input shape it really gets), latency against output channels, and recommends the channel
multiple (``--round-to``) whose widths sit at the ends of those plateaus.

Written here rather than taken from a library: no profiling library sweeps widths of a model's own
layers; the timing itself is :func:`profilers.compare` (interleaved, so the curve is not bent by
the machine's drift during the sweep).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from profilers._context import Context
from profilers._latency import MEASURE_SECONDS, LatencySettings, compare

ALIGNMENTS = (1, 2, 4, 8, 16, 32)  # the channel multiples a recommendation chooses from
_PLATEAU_TOLERANCE = 0.015  # widths within 1.5% cost "the same": about the ratio's measured noise
_ACCEPTABLE_WASTE = 0.02  # a multiple whose widths give away under 2% of channels on average is fine
_HEAVY_SHARE = 0.2  # layer kinds with at least this share of the model's MACs decide --round-to auto


@dataclass(frozen=True)
class WidthCurve:
    """One layer kind's latency at a sweep of output widths, and the multiple it recommends."""

    kind: str
    layer: str
    macs_share: float
    widths: tuple[int, ...]
    latency_ms: tuple[float, ...]
    waste: dict[int, float]
    recommended: int
    flat: bool

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "layer": self.layer, "macs_share": self.macs_share,
                "widths": list(self.widths),
                "latency_ms": list(self.latency_ms), "waste": self.waste,
                "recommended": self.recommended, "flat": self.flat}


def waste_by_alignment(widths: Sequence[int], latency_ms: Sequence[float],
                       alignments: Sequence[int] = ALIGNMENTS) -> dict[int, float]:
    """For each channel multiple: the mean share of channels its widths give away, i.e. how much
    wider a layer could be at the same latency (within the plateau tolerance).

    Example:
        >>> widths = list(range(4, 68, 4))  # steps of 4: multiples of 1 and 2 are those of 4
        >>> staircase = [1.0 + (w + 15) // 16 for w in widths]  # a step every 16 channels
        >>> waste = waste_by_alignment(widths, staircase)
        >>> waste[16], waste[4] > 0.1, 32 in waste
        (0.0, True, True)
    """
    waste = {}
    for alignment in alignments:
        shares = []
        for i, (w, t) in enumerate(zip(widths, latency_ms, strict=True)):
            if w % alignment:
                continue
            # The widest width that costs no more than w (within the measurement's noise): the
            # channels w gives away. Not only contiguous ones: on CPUs a multiple of 4 often costs
            # less than the odd width just below it.
            free = max(v for v, u in zip(widths[i:], latency_ms[i:], strict=True)
                       if u <= t * (1 + _PLATEAU_TOLERANCE))
            shares.append((free - w) / free)
        if len(shares) >= 2:  # one width is no evidence about a multiple
            waste[alignment] = sum(shares) / len(shares)
    return waste


def recommend(waste: dict[int, float]) -> int:
    """The smallest multiple (the most freedom for the search) that wastes little; else the one
    that wastes least."""
    fine = [a for a in sorted(waste) if waste[a] <= _ACCEPTABLE_WASTE]
    return fine[0] if fine else min(waste, key=lambda a: (waste[a], a))


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.Conv2d):
        k = "x".join(map(str, module.kernel_size))
        if module.groups == module.in_channels == module.out_channels and module.groups > 1:
            return f"depthwise conv {k}"
        return f"conv {k}" if module.groups == 1 else None
    if isinstance(module, nn.Linear):
        return "linear"
    return None


def _representatives(model: nn.Module, example: Tensor) -> list[tuple[str, float, str, nn.Module,
                                                                      Tensor]]:
    """Per layer kind: its share of the model's conv/linear MACs, and the layer with the most MACs
    with the input it gets in ``model``; heaviest kind first."""
    inputs: dict[str, Tensor] = {}
    outputs: dict[str, Tensor] = {}
    hooks = []
    for name, m in model.named_modules():
        if _kind(m):
            hooks.append(m.register_forward_pre_hook(
                lambda m, args, name=name: inputs.setdefault(name, args[0].detach())))
            hooks.append(m.register_forward_hook(
                lambda m, args, out, name=name: outputs.setdefault(name, out)))
    try:
        with torch.inference_mode():
            result = model.eval()(example)
    finally:
        for hook in hooks:
            hook.remove()
    # The layer that makes the model's output (the classifier) is never pruned: not a kind to sweep.
    inputs = {name: x for name, x in inputs.items() if outputs.get(name) is not result}
    best: dict[str, tuple[float, str, nn.Module, Tensor]] = {}
    totals: dict[str, float] = {}
    for name, x in inputs.items():
        module = model.get_submodule(name)
        out_width = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        spatial = x[0, 0].numel() if x.dim() == 4 else 1
        macs = out_width * spatial * module.weight[0].numel()
        kind = _kind(module)
        totals[kind] = totals.get(kind, 0.0) + macs
        if kind not in best or macs > best[kind][0]:
            best[kind] = (macs, name, module, x)
    everything = sum(totals.values()) or 1.0
    return sorted(((kind, totals[kind] / everything, name, module, x)
                   for kind, (_, name, module, x) in best.items()), key=lambda r: -r[1])


def _resized(module: nn.Module, width: int) -> nn.Module:
    """A fresh layer like ``module`` with ``width`` output channels (depthwise: in and out)."""
    if isinstance(module, nn.Linear):
        return nn.Linear(module.in_features, width)
    depthwise = module.groups > 1
    return nn.Conv2d(width if depthwise else module.in_channels, width, module.kernel_size,
                     module.stride, module.padding, module.dilation,
                     groups=width if depthwise else 1, bias=module.bias is not None)


class _FirstChannels(nn.Module):
    """A depthwise layer fed the first ``width`` channels of a wider input (a view, no copy)."""

    def __init__(self, layer: nn.Module, width: int) -> None:
        super().__init__()
        self.layer, self.width = layer, width

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x[:, :self.width])


SWEEP_FACTOR = 20.0 / 3.0  # a layer kind's sweep against one comparison's time cap: 20 s at 3 s


def sweep_settings(measure_seconds: float = MEASURE_SECONDS) -> LatencySettings:
    """A width sweep's settings when one latency comparison may take ``measure_seconds``: at
    least 10 rounds, and ``SWEEP_FACTOR`` times as long per layer kind (20 s at the default 3 s),
    as its dozens of widths need.

    Example:
        >>> sweep_settings(0.6).max_seconds
        4.0
    """
    return LatencySettings(min_rounds=10, max_seconds=SWEEP_FACTOR * measure_seconds)


def width_steps(model: nn.Module, example: Tensor, *, device: torch.device | str,
                context: Context | None = None, step: int = 1, max_widths: int = 48,
                settings: LatencySettings | None = None) -> list[WidthCurve]:
    """Measures each layer kind's latency against its output width, on ``device`` in ``context``.

    Widths are multiples of ``step`` up to the layer's own width, at most ``max_widths`` of them
    (the widest ones, where a search spends most of its time). Returns one curve per kind, the
    kinds with the most MACs first. ``settings``: :func:`sweep_settings` by default.
    """
    device = torch.device(device)
    context = context or Context()
    settings = settings or sweep_settings()
    curves = []
    for kind, share, name, module, x in _representatives(model, example[:1]):
        dense = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        widths = list(range(step, dense + 1, step))[-max_widths:]
        if len(widths) < 4:  # too narrow to prune (a classifier's outputs, say)
            continue
        layers = [_resized(module, w) for w in widths]
        if "depthwise" in kind:  # a depthwise layer takes as many channels as it gives
            layers = [_FirstChannels(layer, w) for layer, w in zip(layers, widths, strict=True)]
            x = torch.randn(1, widths[-1], *x.shape[2:])
        layer_input = x.expand(context.batch_size, *x.shape[1:]).contiguous().float()
        comparison = compare(layers, layer_input, device=device, settings=settings,
                             context=context)
        result = [r * comparison.stats[0].median_ms for r in comparison.ratios]
        waste = waste_by_alignment(widths, result)
        flat = max(result) <= min(result) * (1 + 2 * _PLATEAU_TOLERANCE)
        curves.append(WidthCurve(kind, name, share, tuple(widths), tuple(result), waste,
                                 recommend(waste), flat))
    return curves


def recommended_round_to(curves: Sequence[WidthCurve]) -> int:
    """One multiple for a whole model: the largest any of its heavy layer kinds (a fifth of its
    MACs or more) recommends, among kinds whose latency depends on width at all; else the finest.
    The largest, so that no heavy kind is left on widths that cost more than they give."""
    heavy = [c.recommended for c in curves if not c.flat and c.macs_share >= _HEAVY_SHARE]
    return max(heavy, default=ALIGNMENTS[0])
