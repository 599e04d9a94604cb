"""What the model and data registries share: importing ``pkg.module:attr`` that a user typed."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from search._errors import UsageError


def import_attr(path: str, what: str, known: str = "") -> Callable:
    """The attribute ``pkg.module:attr`` names; UsageError naming ``what`` (the flag) if the
    module cannot be imported or has no such attribute. ``known`` lists the registered names:
    a prefix that is neither registered nor importable (``imagenet:/data``) may be either."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if known and "." not in module_name:
            raise UsageError(f"{what} {path!r}: {module_name!r} is not a known prefix (valid: "
                             f"{known}), and cannot import {module_name!r} as a module "
                             f"either ({exc})") from None
        raise UsageError(f"{what} {path!r}: cannot import {module_name!r} ({exc})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{what} {path!r}: module {module_name!r} has no {attr!r}") from None
