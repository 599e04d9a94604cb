"""The data a search trains and scores on: in-memory train/val/test tensors, split once by seed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DataSplits:
    """Normalised images and integer labels, split once; ``input_shape`` excludes the batch."""

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    notes: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def label(self) -> str:
        """What a run's ``data`` field says for splits handed over from Python: ``python@``
        and a digest of every tensor, so a study knows its data by content, not by a name."""
        digest = hashlib.sha256()
        for tensor in (self.train_x, self.train_y, self.val_x, self.val_y, self.test_x,
                       self.test_y):
            digest.update(tensor.contiguous().numpy().tobytes())
        return f"python@{digest.hexdigest()[:12]}"

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple]:
        """Endless shuffled training batches (a new permutation each epoch)."""
        while True:
            order = torch.randperm(len(self.train_y), generator=generator)
            for start in range(0, len(order) - batch_size + 1, batch_size):
                idx = order[start:start + batch_size]
                yield self.train_x[idx], self.train_y[idx]


def stratified_splits(labels: Tensor, shares: Sequence[float], seed: int) -> list[list[int]]:
    """Indices of ``labels`` split into parts of the given ``shares`` (summing to 1), each with
    the same class proportions, reproducibly by ``seed``."""
    from sklearn.model_selection import train_test_split

    parts, rest, left = [], list(range(len(labels))), 1.0
    for share in shares[:-1]:
        part, rest = train_test_split(rest, train_size=share / left, random_state=seed,
                                      stratify=labels[rest])
        parts.append(part)
        left -= share
    return [*parts, rest]
