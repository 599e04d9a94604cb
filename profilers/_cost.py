"""MACs and parameters of a model, counted by fvcore (the only importer of fvcore).

fvcore's ``FlopCountAnalysis`` counts one fused multiply-add as one "flop"; we call them MACs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
