"""Writing a run folder's files, each atomically so that readers never see half of one; and
the pruned models it saves, written and loaded back."""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from search.runfolder._layout import MODELS_DIR, REFERENCE, ReferenceRecord, model_json
from search.sources import build_model, load_weights
from spaces import PrunedSpec, convert_attention, rebuild


def atomic_write_bytes(path: Path, write) -> None:
    """Calls ``write(tmp_path)`` and renames into place, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_state(model: nn.Module, path: Path) -> None:
    """``torch.save`` of the state dict through Python's file API, so a full disk raises OSError
    (ENOSPC) rather than torch's RuntimeError, and is told apart from a broken candidate."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    path.write_bytes(buffer.getvalue())


def save_pruned(model: nn.Module, spec: PrunedSpec, json_path: Path) -> None:
    """Writes the widths JSON and the state dict beside it (``spec.weights``)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(json_path.with_name(spec.weights), lambda p: save_state(model, p))
    atomic_write_bytes(json_path, lambda p: p.write_text(spec.to_json()))


def load_pruned(json_path: str | Path, base: nn.Module | None = None) -> nn.Module:
    """The pruned model a run saved, rebuilt from its widths JSON and state dict, in eval mode.

    Nothing is unpickled: the architecture comes from the JSON and the base model's factory (or
    ``base``, the model a search from Python was handed, which is not changed), the weights from
    a state dict loaded with ``weights_only=True``.

    Example:
        >>> model = load_pruned("results/vgg16_bn-digits-cpu/models/trial-3.json")  # doctest: +SKIP
        >>> model(torch.randn(1, 3, 16, 16)).shape  # doctest: +SKIP
        torch.Size([1, 10])
    """
    return load_pruned_with_spec(json_path, base)[1]


def load_pruned_with_spec(json_path: str | Path,
                          base: nn.Module | None = None) -> tuple[PrunedSpec, nn.Module]:
    """``load_pruned``, with the widths JSON it read: reading the JSON a second time could find
    it gone (another worker on the study removes models it finds dominated)."""
    json_path = Path(json_path)
    spec = PrunedSpec.read(json_path)
    state = load_weights(json_path.with_name(spec.weights), f"{json_path.with_name(spec.weights)}")
    if base is None:
        base = build_model(spec.model, spec.num_classes)
    else:  # the same swap of attention modules as build_model's, on a copy
        base = copy.deepcopy(base)
        convert_attention(base)
    return spec, rebuild(base, torch.zeros(spec.input_shape), spec.allocation, state)


class RunFolder:
    """Writers of one run's files (their names and columns: ``search.runfolder._layout``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.models = self.path / MODELS_DIR

    def create(self) -> None:
        self.models.mkdir(parents=True, exist_ok=True)

    def write_json(self, name: str, data: object) -> None:
        text = json.dumps(data, indent=2, default=str) + "\n"
        atomic_write_bytes(self.path / name, lambda p: p.write_text(text))

    def write_reference(self, record: ReferenceRecord) -> None:
        self.write_json(REFERENCE, record.to_json())

    def write_csv(self, name: str, frame: pd.DataFrame) -> None:
        """Writes ``name`` (CSV) and a Parquet copy with the same columns beside it."""
        atomic_write_bytes(self.path / name, lambda p: frame.to_csv(p, index=False))
        parquet = (self.path / name).with_suffix(".parquet")
        atomic_write_bytes(parquet, lambda p: frame.to_parquet(p, index=False))

    def model_json(self, trial: int, final: bool = False) -> Path:
        """The trial's saved widths JSON (``layout.model_json``)."""
        return model_json(self.path, trial, final)

    def remove_models(self, trials: set[int], final_only: bool = False) -> list[int]:
        """Deletes the saved models of these trials (search-time and final, or only the final
        ones); returns the trial numbers whose search-time model was removed."""
        removed = []
        for number in sorted(trials):
            for final in (True,) if final_only else (False, True):
                json_path = model_json(self.path, number, final)
                if json_path.exists():
                    json_path.with_suffix(".pt").unlink(missing_ok=True)
                    json_path.unlink(missing_ok=True)
                    if not final:
                        removed.append(number)
        return removed
