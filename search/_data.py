"""Data sets as in-memory tensors, split once into train/val/test by seed.

The offline default is scikit-learn's bundled handwritten digits (1,797 real 8x8 images), resized
and repeated to 3 channels so every image model takes them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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


def digits(*, image_size: int | None = 16, seed: int = 0) -> DataSplits:
    """scikit-learn's digits, 60/20/20 stratified train/val/test, normalised by train statistics.

    Example:
        >>> splits = digits(image_size=16)
        >>> splits.input_shape, splits.num_classes, len(splits.test_y)
        ((3, 16, 16), 10, 360)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=image_size or 16, mode="bilinear", align_corners=False)
    labels = torch.tensor(bunch.target, dtype=torch.long)
    index = list(range(len(labels)))
    # Two train_test_split calls (not stratified_splits): the splits of runs made before it.
    rest, test = train_test_split(index, test_size=0.2, random_state=seed, stratify=labels)
    train, val = train_test_split(rest, test_size=0.25, random_state=seed, stratify=labels[rest])
    mean, std = images[train].mean(), images[train].std()
    images = ((images - mean) / std).repeat(1, 3, 1, 1).contiguous()
    return DataSplits(images[train], labels[train], images[val], labels[val], images[test],
                      labels[test], num_classes=10)


DATASETS = {"digits": digits}
