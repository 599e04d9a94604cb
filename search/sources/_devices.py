"""``--device``: the device a name stands for, checked together with the deployment context."""

from __future__ import annotations

import torch

from profilers import Context, resolve_device
from search._errors import UsageError


def device_for(name: str, context: Context) -> torch.device:
    """The device ``name`` stands for, checked to exist and to run ``context``; else UsageError."""
    try:
        device = resolve_device(name)
        context.check(device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return device
