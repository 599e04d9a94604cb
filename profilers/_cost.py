"""MACs and parameters of a model, counted by fvcore (the only importer of fvcore).

fvcore's ``FlopCountAnalysis`` counts one fused multiply-add as one "flop"; we call them MACs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from fvcore.nn import FlopCountAnalysis, parameter_count
from torch import Tensor, nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cost:
    """Compute and size of a model for one input sample."""

    macs: int
    params: int


def count_cost(model: nn.Module, example_input: Tensor) -> Cost:
    """MACs for one sample (the first of ``example_input``) and the parameter count.

    Example:
        >>> import torch
        >>> count_cost(torch.nn.Linear(4, 3), torch.randn(5, 4))
        Cost(macs=12, params=15)
    """
    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, example_input[:1])
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        macs = int(analysis.total())
        skipped = analysis.unsupported_ops()
    finally:
        model.train(was_training)
    if skipped:
        log.debug("fvcore counted no MACs for ops %s", dict(skipped))
    return Cost(macs=macs, params=int(parameter_count(model)[""]))


_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class LayerMacs:
    """MACs of a model's convolutions and linear layers, counted from their shapes and the
    output size each had in one run of a reference model (:meth:`of`), without running the model
    counted. Pruning channels leaves every layer's output size as it was, so this counts pruned
    copies of the reference without running them: a candidate that would crash its process (a
    broken extension, a poisoned CUDA context) cannot crash this one. Other ops (attention's
    matrix products, norms) are left out; for comparing candidates with an affine model of
    latency, as the warm start does, a constant left out changes nothing.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(6, 2))
        >>> counter = LayerMacs.of(net, torch.randn(1, 3, 8, 8))
        >>> counter(net) == count_cost(net, torch.randn(1, 3, 8, 8)).macs
        True
    """

    positions: dict[str, int]  # output positions per sample, by layer name

    @classmethod
    def of(cls, model: nn.Module, example_input: Tensor) -> LayerMacs:
        positions: dict[str, int] = {}
        handles = []
        for name, module in model.named_modules():
            if isinstance(module, _LAYERS):
                width = module.out_features if isinstance(module, nn.Linear) else module.out_channels

                def record(_module, _inputs, output, name=name, width=width):
                    positions[name] = output.numel() // width

                handles.append(module.register_forward_hook(record))
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                model(example_input[:1])
        finally:
            for handle in handles:
                handle.remove()
            model.train(was_training)
        return cls(positions)

    def __call__(self, model: nn.Module) -> int:
        total = 0
        for name, module in model.named_modules():
            if name not in self.positions or not isinstance(module, _LAYERS):
                continue
            if isinstance(module, nn.Linear):
                per_position = module.in_features * module.out_features
            else:
                per_position = (math.prod(module.kernel_size) * module.out_channels
                                * (module.in_channels // module.groups))
            total += self.positions[name] * per_position
        return total
