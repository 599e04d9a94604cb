"""Weights users hand in (``--checkpoint``) and weights a run saved: state dicts only, loaded with
``weights_only=True``, so that no file can run code when it is loaded."""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from search._errors import UsageError


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


def checkpoint_digest(path: str | Path) -> str:
    """``sha256:`` and the first 16 hex digits of the file's SHA-256: what identifies a
    checkpoint in a study. UsageError when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise UsageError(f"--checkpoint {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--checkpoint {path}: cannot read it ({exc.strerror or exc})") from None
    return f"sha256:{digest.hexdigest()[:16]}"


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
