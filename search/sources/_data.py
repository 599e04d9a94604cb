"""The data registry: every name ``--data`` takes, what reads it, and its help.

An entry is a name used alone (``digits``) or, with ``takes_path``, as ``name:PATH``; any other
``pkg.module:function`` is a user's function (:func:`from_function`). Validation, ``--help`` and
the error for an unknown name are all built from :data:`DATA`, so a new source is one entry here
plus its reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from search._registry import Registry
from search.sources._names import import_attr
from search.sources._readers import (
    cifar10,
    digit_sums,
    digits,
    from_function,
    imagefolder,
    mnist,
)
from search.sources._splits import DEFAULT_STREAMING, DataSplits, Streaming


@dataclass(frozen=True)
class DataSource:
    """One entry of the registry: ``read(image_size=, seed=)`` or, with ``takes_path``,
    ``read(path, image_size=, seed=)``; with ``streams``, also ``streaming=`` (data that may not
    fit in memory)."""

    read: Callable[..., DataSplits]
    help: str
    takes_path: bool = False
    streams: bool = False

    def syntax(self, name: str) -> str:
        return f"{name}:PATH" if self.takes_path else name


USER_DATA = "pkg.module:function"  # any other name with a colon: a user's function
DATA: Registry[DataSource] = Registry("data", {
    "digits": DataSource(digits, "scikit-learn's handwritten digits (offline; the default)"),
    "digit-sums": DataSource(digit_sums, "the sum of two of those digits side by side, 19 "
                                         "classes (offline; a task where width costs accuracy)"),
    "cifar10": DataSource(cifar10, "the CIFAR-10 python batches", takes_path=True),
    "mnist": DataSource(mnist, "MNIST/Fashion-MNIST IDX files", takes_path=True),
    "imagefolder": DataSource(imagefolder, "CLASS/IMAGE files, optionally under train/ val/ "
                                           "test/", takes_path=True, streams=True),
}, forms=(f"{USER_DATA} returning (train, val[, test])",), closest_first=True,
    describe=lambda name, source: f"{source.syntax(name)} ({source.help})",
    shown=lambda name, source: source.syntax(name), joiner=", ")


def load_data(name: str, *, image_size: int | None, seed: int,
              streaming: Streaming = DEFAULT_STREAMING) -> DataSplits:
    """Train/val/test splits by the name a user typed (``--data``); ``image_size`` None keeps
    the data's own size; ``streaming``: when an image folder or a user's dataset is streamed
    rather than held (``--data-memory-gb``, ``--data-workers``).

    Example:
        >>> load_data("digits", image_size=16, seed=0).num_classes
        10
    """
    prefix, sep, rest = name.partition(":")
    source = DATA.get(prefix)
    extra = {"streaming": streaming} if source is not None and source.streams else {}
    if source is not None and not source.takes_path and not sep:
        return source.read(image_size=image_size, seed=seed, **extra)
    if source is not None and source.takes_path and sep and rest:
        return source.read(rest, image_size=image_size, seed=seed, **extra)
    if sep and rest and prefix:
        known = ", ".join(s.syntax(n) for n, s in DATA.items() if s.takes_path)
        return from_function(import_attr(name, "--data", known), name, image_size=image_size,
                             seed=seed, streaming=streaming)
    raise DATA.unknown(name)
