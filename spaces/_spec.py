"""A pruned architecture as data: which base model, which input, how many channels per group."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT = "hwprune.pruned-model/1"


@dataclass(frozen=True)
class PrunedSpec:
    """Everything needed to rebuild a pruned model except its weights.

    Attributes:
        model: the base model's name as the model registry knows it (e.g. ``resnet20``).
        num_classes: the classifier's output count the base model was built with.
        input_shape: one example input's shape, batch dimension included.
        allocation: kept output channels per channel-group name.
        weights: file name of the state dict, relative to the JSON file.
    """

    model: str
    num_classes: int
    input_shape: tuple[int, ...]
    allocation: dict[str, int]
    weights: str
    format: str = field(default=FORMAT)

    def to_json(self) -> str:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "pruned-model JSON") -> PrunedSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{source} is not a hwprune pruned-model description ({FORMAT})")
        missing = {"model", "num_classes", "input_shape", "allocation", "weights"} - set(data)
        if missing:
            raise ValueError(f"{source} lacks {', '.join(sorted(missing))}")
        return cls(
            model=str(data["model"]),
            num_classes=int(data["num_classes"]),
            input_shape=tuple(int(d) for d in data["input_shape"]),
            allocation={str(k): int(v) for k, v in data["allocation"].items()},
            weights=str(data["weights"]),
        )

    @classmethod
    def read(cls, path: str | Path) -> PrunedSpec:
        path = Path(path)
        return cls.from_json(path.read_text(), source=str(path))
