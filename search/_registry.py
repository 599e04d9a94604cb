"""Names users type for models, data and devices, and what they resolve to.

Models: the built-ins, ``torchvision:NAME`` and ``timm:NAME`` when installed, and
``pkg.module:factory`` (called as ``factory(num_classes=N)``). Data: ``digits`` (offline default),
``cifar10:PATH``, ``mnist:PATH``, ``imagefolder:PATH`` and ``pkg.module:function``.
Devices: ``cpu``, ``cuda``, ``cuda:N``, checked together with the deployment context.
"""

from __future__ import annotations

import difflib
import importlib
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from profilers import Context, resolve_device
from search._data import DATASETS, DataSplits
from search._datasets import DATA_PREFIXES, from_function
from search._errors import UsageError
from search._patterns import PATTERN_MODELS
from search._zoo import BUILTIN_MODELS
from spaces import convert_attention


def device_for(name: str, context: Context) -> torch.device:
    """The device ``name`` stands for, checked to exist and to run ``context``; else UsageError."""
    try:
        device = resolve_device(name)
        context.check(device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return device


def _closest_first(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=len(valid), cutoff=0.0)
    return ", ".join(close)


def _import_attr(path: str, what: str) -> Callable:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"{what} {path!r}: cannot import {module_name!r} ({exc})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{what} {path!r}: module {module_name!r} has no {attr!r}") from None


def _hub_model(prefix: str, name: str, num_classes: int) -> nn.Module:
    package = {"torchvision": "torchvision", "timm": "timm"}[prefix]
    try:
        lib = importlib.import_module(package)
    except ImportError:
        raise UsageError(
            f"--model {prefix}:{name} needs {package}: pip install 'hwprune[vision]'") from None
    try:
        if prefix == "timm":
            return lib.create_model(name, pretrained=False, num_classes=num_classes)
        return lib.models.get_model(name, weights=None, num_classes=num_classes)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise UsageError(f"--model {prefix}:{name}: {exc}") from None


def build_model(name: str, num_classes: int) -> nn.Module:
    """A freshly initialised model by the name a user typed (``--model``), with every
    ``nn.MultiheadAttention`` swapped for the equivalent ``HeadsAttention`` whose heads can be
    pruned (it loads the original's state dict names too).

    Example:
        >>> build_model("resnet20", 10).fc.out_features
        10
    """
    model = _model(name, num_classes)
    convert_attention(model)
    return model


def _model(name: str, num_classes: int) -> nn.Module:
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name](num_classes=num_classes)
    if name in PATTERN_MODELS:
        return PATTERN_MODELS[name](num_classes=num_classes)
    prefix, sep, rest = name.partition(":")
    if sep and prefix in ("torchvision", "timm"):
        return _hub_model(prefix, rest, num_classes)
    if sep and rest:
        factory = _import_attr(name, "--model")
        try:
            model = factory(num_classes=num_classes)
        except Exception as exc:  # a user's factory may raise anything; say which and why
            raise UsageError(
                f"--model {name}: the factory raised {type(exc).__name__}: {exc}") from None
        if not isinstance(model, nn.Module):
            raise UsageError(f"--model {name}: the factory returned {type(model).__name__}, "
                             "not an nn.Module")
        return model
    raise UsageError(f"unknown model {name!r}; valid: "
                     f"{_closest_first(name, [*BUILTIN_MODELS, *PATTERN_MODELS])}, "
                     f"torchvision:NAME, timm:NAME, or pkg.module:factory")


def load_weights(path: str | Path, what: str) -> object:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only. A file that
    needs code unpickled to load (a pickled module or object) is refused, never loaded."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"{what}: no such file") from None
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        raise UsageError(
            f"{what}: refused: loading it would unpickle code"
            + (f" ({found.group(1)})" if found else "")
            + "; only state dicts are loaded (save model.state_dict(), not the model)") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, ... for damaged files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{what}: not a loadable state dict ({reason})") from None


def load_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Loads a state dict (``weights_only=True``, never unpickling code) into ``model``."""
    state = load_weights(path, f"--checkpoint {path}")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UsageError(f"--checkpoint {path}: holds a {type(state).__name__}, not a state dict")
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        first = [f"missing {k}" for k in result.missing_keys[:2]]
        first += [f"unexpected {k}" for k in result.unexpected_keys[:2]]
        raise UsageError(f"--checkpoint {path} does not fit this model: {', '.join(first)}")


def load_data(name: str, *, image_size: int | None, seed: int) -> DataSplits:
    """Train/val/test splits by the name a user typed (``--data``); ``image_size`` None keeps
    the data's own size."""
    if name in DATASETS:
        return DATASETS[name](image_size=image_size, seed=seed)
    prefix, sep, rest = name.partition(":")
    if sep and rest and prefix in DATA_PREFIXES:
        return DATA_PREFIXES[prefix](rest, image_size=image_size, seed=seed)
    if sep and rest and prefix:
        return from_function(_import_attr(name, "--data"), name, image_size=image_size,
                             seed=seed)
    raise UsageError(f"unknown data {name!r}; valid: {_closest_first(name, list(DATASETS))}, "
                     f"cifar10:PATH, mnist:PATH, imagefolder:PATH, or pkg.module:function")
