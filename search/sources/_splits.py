"""The data a search trains and scores on: train/val/test splits, each read in batches.

A split is held in memory (:class:`TensorSplit`) when it fits, or streamed from its dataset
through a DataLoader with workers (:class:`StreamedSplit`), so that only the batches a fine-tune
or an evaluation uses are decoded. Both give the same batches for the same seed: the shuffled
order is drawn over indices, whatever holds the items. :class:`Streaming` decides which splits
are held (``--data-memory-gb``) and how many loader processes stream the rest.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

Batch = tuple[Tensor, Tensor]


def _shuffled_indices(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Endless batches of indices: a new permutation each epoch, the last partial batch left out
    (a split smaller than one batch gives batches of all of it)."""
    batch_size = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


class TensorSplit:
    """A split held in memory: ``x`` (N inputs) and ``y`` (N labels)."""

    streamed = False

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """Every item once, in order."""
        for start in range(0, len(self.y), batch_size):
            yield self.x[start:start + batch_size], self.y[start:start + batch_size]

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Endless shuffled batches (a new permutation each epoch)."""
        for idx in _shuffled_indices(len(self.y), batch_size, generator):
            yield self.x[idx], self.y[idx]

    def inputs(self, n: int) -> Tensor:
        """The first ``n`` inputs (fewer when the split is smaller)."""
        return self.x[:n].clone()

    def _digest(self, digest: hashlib._Hash) -> None:
        for tensor in (self.x, self.y):
            digest.update(tensor.contiguous().numpy().tobytes())


def _collate(items: list) -> Batch:
    x = torch.stack([torch.as_tensor(item[0], dtype=torch.float32) for item in items])
    y = torch.tensor([int(item[1]) for item in items])
    return x, y


class StreamedSplit:
    """A split read from a map-style ``dataset`` of (input, label) items in batches, by a
    DataLoader with ``workers`` processes; ``transform`` (optional) maps each batch of inputs
    (resizing, normalising). Nothing is kept between batches."""

    streamed = True

    def __init__(self, dataset: Dataset, workers: int = 0,
                 transform: Callable[[Tensor], Tensor] | None = None,
                 collate: Callable[[list], Batch] | None = None) -> None:
        self.dataset, self.workers, self.transform = dataset, workers, transform
        self.collate = collate or _collate

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _read(self, index_batches: Iterator[list[int]] | list[list[int]],
              workers: int | None = None) -> Iterator[Batch]:
        loader = DataLoader(self.dataset, batch_sampler=index_batches,  # type: ignore[arg-type]
                            num_workers=self.workers if workers is None else workers,
                            collate_fn=self.collate)
        for x, y in loader:
            x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y).long().flatten()
            yield (self.transform(x) if self.transform else x), y

    def batches(self, batch_size: int) -> Iterator[Batch]:
        n = len(self)
        yield from self._read([list(range(s, min(s + batch_size, n)))
                               for s in range(0, n, batch_size)])

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        yield from self._read(_IndexBatches(len(self), batch_size, generator))

    def inputs(self, n: int) -> Tensor:
        # A few items: read here, not by worker processes started for them.
        return next(self._read([list(range(min(n, len(self))))], workers=0))[0]

    def _digest(self, digest: hashlib._Hash) -> None:
        # Streamed data is known by its size and a sample of items, not by reading all of it.
        n = len(self)
        digest.update(f"{type(self.dataset).__qualname__}:{n}".encode())
        sample = sorted({*range(min(n, 8)), *range(max(0, n - 8), n)})
        x, y = next(self._read([sample], workers=0))
        digest.update(x.contiguous().numpy().tobytes() + y.numpy().tobytes())


class _IndexBatches:
    """A DataLoader batch sampler over the endless shuffled index batches (an iterable whose
    ``len`` DataLoader does not need)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __iter__(self) -> Iterator[list[int]]:
        for idx in _shuffled_indices(self.n, self.batch_size, self.generator):
            yield idx.tolist()


Split = TensorSplit | StreamedSplit


@dataclass(frozen=True)
class Streaming:
    """When data is streamed rather than held, and by how many loader processes.

    Attributes:
        memory_gb: decoded data up to this size (float32, all splits together) is held in
            memory; more is streamed (``--data-memory-gb``).
        workers: DataLoader processes that decode streamed batches (``--data-workers``); None:
            one per core beyond the first, at most 4.
    """

    memory_gb: float = 2.0
    workers: int | None = None

    @property
    def loader_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        return max(0, min(4, (os.cpu_count() or 1) - 1))

    def held(self, sizes: dict[str, int]) -> set[str]:
        """Which splits (by name, with their decoded size in bytes) are held in memory:
        validation first (every candidate is scored on it), then test, then train, while they
        fit together in ``memory_gb``."""
        left, held = self.memory_gb * 1024 ** 3, set()
        for name in ("val", "test", "train"):
            if name in sizes and sizes[name] <= left:
                held.add(name)
                left -= sizes[name]
        return held


def decoded_bytes(items: int, shape: tuple[int, ...]) -> int:
    """The bytes of ``items`` float32 inputs of ``shape``."""
    return items * 4 * math.prod(shape)


DEFAULT_STREAMING = Streaming()


@dataclass(frozen=True)
class DataSplits:
    """The train, val and test splits; ``input_shape`` excludes the batch."""

    train: Split
    val: Split
    test: Split
    num_classes: int
    notes: tuple[str, ...] = ()

    @classmethod
    def from_tensors(cls, train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor,
                     test_x: Tensor, test_y: Tensor, *, num_classes: int,
                     notes: tuple[str, ...] = ()) -> DataSplits:
        return cls(TensorSplit(train_x, train_y), TensorSplit(val_x, val_y),
                   TensorSplit(test_x, test_y), num_classes=num_classes, notes=notes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.val.inputs(1).shape[1:])

    @property
    def streamed(self) -> bool:
        return any(s.streamed for s in (self.train, self.val, self.test))

    def label(self) -> str:
        """What a run's ``data`` field says for splits handed over from Python: ``python@``
        and a digest of the data (every tensor held in memory; of a streamed split, its size and
        first and last items), so a study knows its data by content, not by a name."""
        digest = hashlib.sha256()
        for split in (self.train, self.val, self.test):
            split._digest(digest)
        return f"python@{digest.hexdigest()[:12]}"


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
