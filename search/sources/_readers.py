"""The readers behind ``--data``: ``digits`` (scikit-learn's, the offline default), ``cifar10:PATH``,
``mnist:PATH``, ``imagefolder:PATH`` and ``pkg.module:function``, each turned into the same
:class:`DataSplits`.

The digits are scikit-learn's bundled handwritten digits (1,797 real 8x8 images), resized and
repeated to 3 channels so every image model takes them unchanged.

Input shape and class count come from the data. Data that fits in ``--data-memory-gb`` once
decoded (2 GB by default; the small benchmarks always do) is decoded once and held as tensors.
An image folder or a user's dataset that does not fit is streamed: read in batches through a
DataLoader with ``--data-workers`` processes, so a search holds only the batches it is using.
"""

from __future__ import annotations

import gzip
import io
import pickle
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from search._errors import UsageError
from search.sources._splits import (
    DEFAULT_STREAMING,
    DataSplits,
    StreamedSplit,
    Streaming,
    TensorSplit,
    decoded_bytes,
    stratified_splits,
)

_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
# MNIST's IDX files (Fashion-MNIST and KMNIST use the same names and format), each maybe gzipped.
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# What a CIFAR python batch may reference when unpickled: numpy arrays, nothing that runs code.
_NUMPY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                  ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; refuses any other global (which could run
    code), so a planted file cannot execute anything."""

    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: loading it could run code")
        if module.startswith("numpy.core."):
            module = "numpy._core." + module.removeprefix("numpy.core.")
            if not hasattr(np, "_core"):  # numpy 1.x
                module = module.replace("numpy._core.", "numpy.core.")
        return super().find_class(module, name)


def digits(*, image_size: int | None = 16, seed: int = 0) -> DataSplits:
    """scikit-learn's digits, 60/20/20 stratified train/val/test, normalised by train statistics.

    Example:
        >>> splits = digits(image_size=16)
        >>> splits.input_shape, splits.num_classes, len(splits.test)
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
    return DataSplits.from_tensors(images[train], labels[train], images[val], labels[val],
                                   images[test], labels[test], num_classes=10)


# digit-sums: pairs drawn from each split of digits (every pair's two digits from that split).
DIGIT_SUMS_PAIRS = {"train": 3000, "val": 600, "test": 600}


def digit_sums(*, image_size: int | None = 16, seed: int = 0) -> DataSplits:
    """Two of scikit-learn's digits side by side, each squeezed to half the width; the label is
    their sum (19 classes). Made here, offline, as a task on which a pruned network's width
    costs accuracy (on the digits themselves a network a quarter as wide recovers all of it).
    Each split's pairs come from the same split of :func:`digits`, drawn with ``seed``.

    Example:
        >>> splits = digit_sums(seed=0)
        >>> splits.input_shape, splits.num_classes, len(splits.val)
        ((3, 16, 16), 19, 600)
    """
    size = image_size or 16
    single = digits(image_size=size, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    made = []
    for split, count in zip((single.train, single.val, single.test), DIGIT_SUMS_PAIRS.values(),
                            strict=True):
        halves = F.interpolate(split.x, size=(size, size // 2), mode="bilinear",
                               align_corners=False)
        left, right = (torch.randint(0, len(split.y), (count,), generator=generator)
                       for _ in range(2))
        made += [torch.cat([halves[left], halves[right]], dim=3).contiguous(),
                 split.y[left] + split.y[right]]
    return DataSplits.from_tensors(*made, num_classes=19)


def _normalise(train: Tensor, *others: Tensor) -> list[Tensor]:
    """Scales to zero mean, unit variance per channel, by the training images' statistics."""
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return [((x - mean) / std).contiguous() for x in (train, *others)]


def _resized(images: Tensor, size: int | None) -> Tensor:
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def _cifar_batch(path: Path, what: str) -> tuple[Tensor, Tensor]:
    try:
        with path.open("rb") as f:
            batch = _ArraysOnly(io.BufferedReader(f), encoding="bytes").load()
    except FileNotFoundError:
        raise UsageError(f"{what}: {path.name} is missing; expected the CIFAR-10 python batches "
                         f"(data_batch_1..5, test_batch)") from None
    except Exception as exc:  # damaged or foreign files raise anything from pickle or numpy
        raise UsageError(f"{what}: {path.name} is not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(batch, dict):
        raise UsageError(f"{what}: {path.name} is not a CIFAR-10 python batch (no dict inside)")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or labels is None or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise UsageError(f"{what}: {path.name} lacks 'data' (N x 3072 uint8) and N 'labels'")
    images = torch.from_numpy(np.asarray(data, dtype=np.uint8)).view(-1, 3, 32, 32).float() / 255
    return images, torch.as_tensor(np.asarray(labels), dtype=torch.long)


def cifar10(path: str, *, image_size: int | None = None, seed: int = 0) -> DataSplits:
    """CIFAR-10 from its python batches: ``data_batch_1..5`` give train and val (a stratified
    tenth, by ``seed``), ``test_batch`` the test split. ``path`` is the ``cifar-10-batches-py``
    folder or the one holding it. Native size is 32 px."""
    what = f"--data cifar10:{path}"
    root = Path(path).expanduser()
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not root.is_dir():
        raise UsageError(f"{what}: no such folder")
    parts = [_cifar_batch(root / name, what) for name in _CIFAR_TRAIN]
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    test_x, test_y = _cifar_batch(root / "test_batch", what)
    if labels.min() < 0 or max(labels.max(), test_y.max()) > 9:
        raise UsageError(f"{what}: labels must lie in 0..9")
    train, val = stratified_splits(labels, (0.9, 0.1), seed)
    train_x, val_x, test_x = _normalise(*(_resized(x, image_size)
                                          for x in (images[train], images[val], test_x)))
    return DataSplits.from_tensors(train_x, labels[train], val_x, labels[val], test_x, test_y,
                                   num_classes=10)


def _idx(root: Path, name: str, what: str) -> np.ndarray:
    """One IDX file (``name`` or ``name.gz`` under ``root``) as an array of its shape."""
    plain, packed = root / name, root / f"{name}.gz"
    path = plain if plain.exists() else packed
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{what}: {name}[.gz] is missing; expected MNIST's IDX files "
                         f"({', '.join(n for pair in _IDX_FILES.values() for n in pair)})") from None
    except (OSError, EOFError) as exc:  # a damaged gzip
        raise UsageError(f"{what}: {path.name} cannot be read ({exc})") from None
    # The header: two zero bytes, the type (0x08: unsigned bytes), the number of dimensions, then
    # each dimension as a big-endian int32.
    dims = raw[3] if len(raw) >= 4 else 0
    header = 4 + 4 * dims
    if raw[:3] != b"\x00\x00\x08" or dims not in (1, 3) or len(raw) < header:
        raise UsageError(f"{what}: {path.name} is not an IDX file of unsigned bytes")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=dims, offset=4))
    if len(raw) - header != int(np.prod(shape)):
        raise UsageError(f"{what}: {path.name} holds {len(raw) - header} bytes after its header, "
                         f"not the {int(np.prod(shape))} its shape {shape} needs")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _idx_split(root: Path, split: str, what: str) -> tuple[Tensor, Tensor]:
    images, labels = (_idx(root, name, what) for name in _IDX_FILES[split])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UsageError(f"{what}: {_IDX_FILES[split][0]} must hold N images (N x H x W) and "
                         f"{_IDX_FILES[split][1]} their N labels")
    # Grey to three channels, as digits: every built-in model takes RGB input.
    x = torch.from_numpy(images.copy()).float().div(255).unsqueeze(1).repeat(1, 3, 1, 1)
    return x, torch.from_numpy(labels.astype(np.int64))


def mnist(path: str, *, image_size: int | None = None, seed: int = 0) -> DataSplits:
    """MNIST, Fashion-MNIST or KMNIST from their IDX files (gzipped or not): ``train-*`` give
    train and val (a stratified tenth, by ``seed``), ``t10k-*`` the test split. Native size is
    28 px; grey images are repeated to three channels."""
    what = f"--data mnist:{path}"
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UsageError(f"{what}: no such folder")
    images, labels = _idx_split(root, "train", what)
    test_x, test_y = _idx_split(root, "test", what)
    num_classes = int(max(labels.max(), test_y.max())) + 1
    if num_classes < 2 or len(labels.unique()) < num_classes:
        raise UsageError(f"{what}: the training labels must name every class 0..{num_classes - 1}")
    train, val = stratified_splits(labels, (0.9, 0.1), seed)
    train_x, val_x, test_x = _normalise(*(_resized(x, image_size)
                                          for x in (images[train], images[val], test_x)))
    return DataSplits.from_tensors(train_x, labels[train], val_x, labels[val], test_x, test_y,
                                   num_classes=num_classes)


def _image_files(root: Path) -> list[tuple[Path, str]]:
    return sorted((f, d.name) for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                  for f in d.rglob("*") if f.suffix.lower() in _IMAGE_SUFFIXES)


def _load_image(file: Path, size: int, what: str) -> Tensor:
    """One image file as a 3 x size x size float tensor in [0, 1]: the shorter side resized to
    ``size``, then the centre square."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image = image.convert("RGB")
            scale = size / min(image.size)
            w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
            image = image.resize((w, h), Image.BILINEAR)
            left, top = (w - size) // 2, (h - size) // 2
            image = image.crop((left, top, left + size, top + size))
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise UsageError(f"{what}: cannot read {file} ({exc})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255


class _ImageFiles(torch.utils.data.Dataset):
    """Image files and their labels, decoded when an item is read (a DataLoader's workers)."""

    def __init__(self, files: list[Path], labels: Tensor, size: int, what: str) -> None:
        self.files, self.labels, self.size, self.what = files, labels, size, what

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return _load_image(self.files[i], self.size, self.what), int(self.labels[i])


class _Normalise:
    """Per-channel (x - mean) / std on a batch: a streamed split's transform (picklable)."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        self.mean, self.std = mean, std

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


_STATISTICS_SAMPLE = 512  # training images a streamed folder's normalisation is estimated from


def imagefolder(path: str, *, image_size: int | None = None, seed: int = 0,
                streaming: Streaming = DEFAULT_STREAMING) -> DataSplits:
    """An image tree, one folder per class (torchvision's ImageFolder layout). With ``train/`` and
    ``val/`` (and ``test/``) subfolders those are the splits; otherwise one tree is split 60/20/20
    stratified by ``seed``. Images are resized (shorter side) and centre-cropped to
    ``image_size``, by default the shorter side of the first image, and normalised per channel
    by the training images' statistics. A tree that does not fit ``streaming.memory_gb`` once
    decoded is streamed (statistics from 512 training images chosen by ``seed``)."""
    what = f"--data imagefolder:{path}"
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UsageError(f"{what}: no such folder")
    split_dirs = {name: root / name for name in ("train", "val", "test") if (root / name).is_dir()}
    if "train" in split_dirs and "val" not in split_dirs:
        raise UsageError(f"{what}: has train/ but no val/; add val/ (and test/) or use one tree")
    trees = split_dirs or {"all": root}
    files = {name: _image_files(tree) for name, tree in trees.items()}
    for name, found in files.items():
        if not found:
            raise UsageError(f"{what}: no images in {trees[name]}; expected CLASS/IMAGE files "
                             f"({', '.join(sorted(_IMAGE_SUFFIXES))})")
    classes = sorted({label for found in files.values() for _, label in found})
    if len(classes) < 2:
        raise UsageError(f"{what}: found {len(classes)} class folder; a classifier needs two or more")
    index = {label: i for i, label in enumerate(classes)}
    if image_size is None:
        from PIL import Image

        with Image.open(next(iter(files.values()))[0][0]) as first:
            image_size = min(first.size)
    listed = {name: ([f for f, _ in found], torch.tensor([index[label] for _, label in found]))
              for name, found in files.items()}
    if "all" in listed:
        paths, labels = listed.pop("all")
        rare = [c for c, n in Counter(labels.tolist()).items() if n < 5]
        if rare:
            raise UsageError(f"{what}: class {classes[rare[0]]!r} has fewer than 5 images; a "
                             f"60/20/20 split needs at least 5 per class")
        parts = stratified_splits(labels, (0.6, 0.2, 0.2), seed)
        listed = {name: ([paths[i] for i in idx], labels[idx])
                  for name, idx in zip(("train", "val", "test"), parts, strict=True)}
    notes: tuple[str, ...] = ()
    if "test" not in listed:
        notes = ("the data has no test/ split: test accuracy is measured on val/",)
    held = streaming.held({n: decoded_bytes(len(files), (3, image_size, image_size))
                           for n, (files, _) in listed.items()})
    decoded = {n: torch.stack([_load_image(f, image_size, what) for f in listed[n][0]])
               for n in listed if n in held}
    if "train" in decoded:  # statistics of every training image
        sample = decoded["train"]
    else:  # of a sample of them, chosen by seed
        train_files = listed["train"][0]
        pick = torch.randperm(len(train_files), generator=torch.Generator().manual_seed(seed))
        sample = torch.stack([_load_image(train_files[i], image_size, what)
                              for i in pick[:_STATISTICS_SAMPLE].tolist()])
    mean = sample.mean(dim=(0, 2, 3), keepdim=True)
    std = sample.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    normalise = _Normalise(mean, std)
    splits: dict[str, TensorSplit | StreamedSplit] = {}
    for n in ("train", "val", "test"):
        if n not in listed:
            continue
        if n in decoded:  # normalised in place: no second copy of what is held
            splits[n] = TensorSplit(decoded[n].sub_(mean).div_(std), listed[n][1])
        else:
            splits[n] = StreamedSplit(_ImageFiles(*listed[n], image_size, what),
                                      streaming.loader_workers, normalise)
    streamed = [n for n, split in splits.items() if split.streamed]
    if streamed:
        notes = (*notes, f"streamed from the files: {', '.join(streamed)} (they do not fit "
                         f"--data-memory-gb {streaming.memory_gb:g} once decoded)")
    return DataSplits(splits["train"], splits["val"], splits.get("test", splits["val"]),
                      num_classes=len(classes), notes=notes)


def _held(x: object, y: object, what: str, name: str) -> TensorSplit:
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y).long().flatten()
    if x.ndim != 4 or len(x) != len(y) or len(y) == 0:
        raise UsageError(f"{what}: the {name} split must hold N images of shape C x H x W and N "
                         f"labels; got images {tuple(x.shape)} and {len(y)} labels")
    return TensorSplit(x, y)


def _not_items(what: str, name: str, exc: Exception, loader: bool) -> UsageError:
    """The one line for a split that does not give (image, label) items, saying what it raised."""
    kind = (f"the {name} loader does not give (images, labels) batches" if loader else
            f"the {name} split is neither (images, labels) tensors nor a dataset of "
            f"(image, label) items")
    return UsageError(f"{what}: {kind} ({type(exc).__name__}: {exc})".splitlines()[0])


def _from_loader(loader: torch.utils.data.DataLoader, what: str, name: str) -> TensorSplit:
    try:
        batches = [(torch.as_tensor(bx, dtype=torch.float32), torch.as_tensor(by))
                   for bx, by in loader]
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    except Exception as exc:  # a user's loader may fail in any way; say where
        raise _not_items(what, name, exc, loader=True) from None
    return _held(x, y, what, name)


class _Resize:
    """A streamed split's transform: batches resized to ``size`` (picklable)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, x: Tensor) -> Tensor:
        return _resized(x, self.size)


def _dataset_of(split: object, what: str, name: str,
                default_workers: int) -> tuple[object, int, Callable | None, tuple[int, ...]]:
    """A map-style dataset handed over (or a DataLoader's): the dataset, its loader workers and
    collate function, and its first input's shape."""
    workers, collate, loader = default_workers, None, isinstance(split, torch.utils.data.DataLoader)
    if loader:
        workers, collate, split = split.num_workers, split.collate_fn, split.dataset  # type: ignore[union-attr]
    try:
        n = len(split)  # type: ignore[arg-type]
        first = split[0]  # type: ignore[index]
        shape = tuple(torch.as_tensor(first[0]).shape)
        int(first[1])
    except Exception as exc:  # a user's dataset may fail in any way; say where
        raise _not_items(what, name, exc, loader) from None
    if len(shape) != 3 or n == 0:
        raise UsageError(f"{what}: the {name} split must hold N images of shape C x H x W and N "
                         f"labels; got {n} items of shape {shape}")
    return split, workers, collate, shape


def _splits_of(returned: list, what: str, image_size: int | None,
               streaming: Streaming) -> list[TensorSplit | StreamedSplit]:
    """The splits as handed over: (x, y) pairs of tensors (held as they are), DataLoaders of
    (x, y) batches or map-style datasets of (x, y) items. A dataset (a loader's too) is read
    once and held while the splits fit ``streaming.memory_gb`` (validation first); one that does
    not is streamed."""
    names = ("train", "val", "test")
    done: dict[str, TensorSplit | StreamedSplit] = {}
    datasets: dict[str, tuple] = {}
    for split, name in zip(returned, names, strict=False):
        if isinstance(split, tuple | list) and len(split) == 2 and all(isinstance(t, Tensor)
                                                                        for t in split):
            done[name] = _held(_resized(torch.as_tensor(split[0], dtype=torch.float32),
                                        image_size), split[1], what, name)
        elif isinstance(split, torch.utils.data.DataLoader) and isinstance(
                split.dataset, torch.utils.data.IterableDataset):  # no indexing: read once, held
            held = _from_loader(split, what, name)
            done[name] = TensorSplit(_resized(held.x, image_size), held.y)
        else:
            datasets[name] = _dataset_of(split, what, name, streaming.loader_workers)

    def size(name: str) -> int:
        dataset, _, _, shape = datasets[name]
        if image_size is not None:
            shape = (shape[0], image_size, image_size)
        return decoded_bytes(len(dataset), shape)
    held = streaming.held({name: size(name) for name in datasets})
    for name, (dataset, workers, collate, _) in datasets.items():
        resize = None if image_size is None else _Resize(image_size)
        streamed = StreamedSplit(dataset, workers, resize, collate)  # type: ignore[arg-type]
        if name not in held:
            done[name] = streamed
            continue
        try:
            batches = list(streamed.batches(256))
        except Exception as exc:  # a user's dataset may fail in any way; say where
            raise _not_items(what, name, exc, loader=False) from None
        done[name] = _held(torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]),
                           what, name)
    return [done[name] for name in names if name in done]


def _labels(split: TensorSplit | StreamedSplit, name: str) -> Tensor:
    """The labels the class count is checked on: held ones as they are; a streamed dataset's
    ``targets`` when it has them; else, read through its batches, those of a streamed val or
    test split but not of a streamed train split (reading all of it would decode it all; its
    labels must lie in the range the others show)."""
    if isinstance(split, TensorSplit):
        return split.y
    targets = getattr(split.dataset, "targets", None)
    if targets is not None:
        return torch.as_tensor(targets).long().flatten()
    if name == "train":
        return torch.empty(0, dtype=torch.long)
    return torch.cat([y for _, y in split.batches(256)])


def splits_from(train: object, val: object, test: object | None = None, *,
                image_size: int | None = None, streaming: Streaming = DEFAULT_STREAMING) -> DataSplits:
    """Splits handed over from Python (``search.run(train=..., val=..., test=...)``): each a
    map-style dataset of (image, label), a DataLoader of such batches, or an (images, labels)
    pair of tensors; without ``test``, test accuracy is measured on ``val``. A dataset that does
    not fit ``streaming.memory_gb`` is streamed through a DataLoader (a loader's own workers).

    Example:
        >>> x, y = torch.randn(8, 3, 8, 8), torch.arange(8) % 2
        >>> splits_from((x, y), (x, y)).num_classes
        2
    """
    splits = (train, val) if test is None else (train, val, test)
    return from_function(lambda: splits, "train=/val=/test=", image_size=image_size,
                         streaming=streaming)


def from_function(function: Callable[[], object], path: str, *, image_size: int | None = None,
                  seed: int = 0, streaming: Streaming = DEFAULT_STREAMING) -> DataSplits:
    """``pkg.module:function`` (``path``, imported by the registry): ``function()`` returns
    (train, val) or (train, val, test), each a map-style dataset of (image, label), a DataLoader
    of such batches, or an (images, labels) pair of tensors. Images are used as given (normalise
    them in the function), resized only when ``--image-size`` is set; the class count is
    ``len(train.classes)`` if the data set says, else the largest label + 1. A dataset that does
    not fit ``--data-memory-gb`` is streamed."""
    what = f"--data {path}"
    try:
        returned = function()
    except Exception as exc:  # a user's function may raise anything; say which and why
        raise UsageError(f"{what}: the function raised {type(exc).__name__}: {exc}"
                         .splitlines()[0]) from None
    if not isinstance(returned, tuple | list) or len(returned) not in (2, 3):
        raise UsageError(f"{what}: the function must return (train, val) or (train, val, test), "
                         f"got {type(returned).__name__}")
    splits = _splits_of(list(returned), what, image_size, streaming)
    notes: tuple[str, ...] = ()
    if len(splits) == 2:
        splits.append(splits[1])
        notes = ("the data function returns no test split: test accuracy is measured on val",)
    shapes = {tuple(s.inputs(1).shape[1:]) for s in splits}
    if len(shapes) > 1:
        raise UsageError(f"{what}: the splits' images differ in shape ({sorted(shapes)}); "
                         f"give --image-size PX to resize them")
    classes = getattr(returned[0], "classes", None)
    if classes is None and isinstance(returned[0], torch.utils.data.DataLoader):
        classes = getattr(returned[0].dataset, "classes", None)
    labels = torch.cat([_labels(s, n) for s, n in zip(splits, ("train", "val", "test"),
                                                      strict=True)])
    num_classes = len(classes) if classes is not None else int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= num_classes or num_classes < 2:
        raise UsageError(f"{what}: labels must lie in 0..{num_classes - 1} and name 2 or more "
                         f"classes; got {int(labels.min())}..{int(labels.max())}")
    streamed = [n for n, s in zip(("train", "val", "test"), splits, strict=False) if s.streamed]
    if streamed:
        notes = (*notes, f"streamed through a DataLoader: {', '.join(streamed)} (they do not fit "
                         f"--data-memory-gb {streaming.memory_gb:g} once decoded)")
    return DataSplits(*splits, num_classes=num_classes, notes=notes)
