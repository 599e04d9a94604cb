"""The model registry: every name ``--model`` takes, and the model it builds.

Names are the built-ins (:data:`MODELS`: the CIFAR-style zoo and the test-pattern models),
``PREFIX:NAME`` for a model hub (:data:`MODEL_HUBS`: torchvision, timm, when installed), and any
other ``pkg.module:factory`` (called as ``factory(num_classes=N)``). Validation, ``--help`` and
the error for an unknown name are built from these, so a new model is one entry.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from search._errors import UsageError
from search._registry import Registry
from search.sources._names import import_attr
from search.sources._test_models import TEST_MODELS
from search.sources._zoo import ZOO
from spaces import convert_attention


@dataclass(frozen=True)
class ModelHub:
    """``PREFIX:NAME``: a model of an installed library, built untrained."""

    package: str
    build: Callable[[object, str, int], nn.Module]  # (the package, NAME, num_classes)
    help: str


MODEL_HUBS: Registry[ModelHub] = Registry("model hub", {
    "torchvision": ModelHub("torchvision", lambda lib, name, n: lib.models.get_model(
        name, weights=None, num_classes=n), "torchvision's models, untrained"),
    "timm": ModelHub("timm", lambda lib, name, n: lib.create_model(name, pretrained=False,
                                                                   num_classes=n),
                     "timm's models, untrained"),
}, describe=lambda prefix, hub: f"{prefix}:NAME", joiner=", ")
USER_MODEL = "pkg.module:factory"
# Every built-in name: the zoo's are listed in --help, the test patterns' only in errors.
MODELS: Registry[Callable[..., nn.Module]] = Registry(
    "model", ZOO, hidden=TEST_MODELS, closest_first=True, joiner="|",
    describe=lambda name, factory: name, forms=lambda: [MODEL_HUBS.help(), USER_MODEL])
PYTHON_PREFIX = "python:"  # the name of a model handed to search.run as an nn.Module


def model_digest(model: nn.Module) -> str:
    """The first 12 hex digits of a SHA-256 of the model's architecture (its printed form) and
    weights: what identifies a model handed over from Python, which has no name."""
    digest = hashlib.sha256(repr(model).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


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
    if name.startswith(PYTHON_PREFIX):
        raise UsageError(f"--model {name}: this run's model was handed to search.run from "
                         f"Python and has no factory to build it; load its models in Python with "
                         f"search.load_pruned(path, base=model) or run.load(trial)")
    if name in MODELS:
        return MODELS[name](num_classes=num_classes)
    prefix, sep, rest = name.partition(":")
    if sep and prefix in MODEL_HUBS:
        return _hub_model(prefix, rest, num_classes)
    if sep and rest:
        return _user_model(name, num_classes)
    raise MODELS.unknown(name)


def _hub_model(prefix: str, name: str, num_classes: int) -> nn.Module:
    hub = MODEL_HUBS[prefix]
    try:
        lib = importlib.import_module(hub.package)
    except ImportError:
        raise UsageError(
            f"--model {prefix}:{name} needs {hub.package}: pip install 'hwprune[vision]'") from None
    try:
        return hub.build(lib, name, num_classes)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise UsageError(f"--model {prefix}:{name}: {exc}") from None


def _user_model(name: str, num_classes: int) -> nn.Module:
    factory = import_attr(name, "--model", MODEL_HUBS.help())
    try:
        model = factory(num_classes=num_classes)
    except Exception as exc:  # a user's factory may raise anything; say which and why
        raise UsageError(
            f"--model {name}: the factory raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"--model {name}: the factory returned {type(model).__name__}, "
                         "not an nn.Module")
    return model
