"""The readers behind ``--data``: ``digits`` (scikit-learn's, the offline default), ``cifar10:PATH``,
``mnist:PATH``, ``imagefolder:PATH`` and ``pkg.module:function``, each turned into the same
in-memory :class:`DataSplits`.

The digits are scikit-learn's bundled handwritten digits (1,797 real 8x8 images), resized and
repeated to 3 channels so every image model takes them unchanged.

Input shape and class count come from the data. Images are held in memory as float tensors (the
quick fine-tune samples batches from them), so a data set must fit in memory; pass a subset
through ``pkg.module:function`` when it does not.
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
from search.sources._splits import DataSplits, stratified_splits

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
    return DataSplits(train_x, labels[train], val_x, labels[val], test_x, test_y, num_classes=10)


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
    return DataSplits(train_x, labels[train], val_x, labels[val], test_x, test_y,
                      num_classes=num_classes)


def _image_files(root: Path) -> list[tuple[Path, str]]:
    return sorted((f, d.name) for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                  for f in d.rglob("*") if f.suffix.lower() in _IMAGE_SUFFIXES)


def _load_images(files: list[Path], size: int, what: str) -> Tensor:
    from PIL import Image, UnidentifiedImageError

    images = torch.empty(len(files), 3, size, size)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                image = image.convert("RGB")
                scale = size / min(image.size)  # shorter side to size, then the centre square
                w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
                image = image.resize((w, h), Image.BILINEAR)
                left, top = (w - size) // 2, (h - size) // 2
                image = image.crop((left, top, left + size, top + size))
                array = np.asarray(image, dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as exc:
            raise UsageError(f"{what}: cannot read {file} ({exc})") from None
        images[i] = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255
    return images


def imagefolder(path: str, *, image_size: int | None = None, seed: int = 0) -> DataSplits:
    """An image tree, one folder per class (torchvision's ImageFolder layout). With ``train/`` and
    ``val/`` (and ``test/``) subfolders those are the splits; otherwise one tree is split 60/20/20
    stratified by ``seed``. Images are resized (shorter side) and centre-cropped to
    ``image_size``, by default the shorter side of the first image."""
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
    loaded = {name: (_load_images([f for f, _ in found], image_size, what),
                     torch.tensor([index[label] for _, label in found]))
              for name, found in files.items()}
    notes: tuple[str, ...] = ()
    if "all" in loaded:
        images, labels = loaded["all"]
        rare = [c for c, n in Counter(labels.tolist()).items() if n < 5]
        if rare:
            raise UsageError(f"{what}: class {classes[rare[0]]!r} has fewer than 5 images; a "
                             f"60/20/20 split needs at least 5 per class")
        parts = stratified_splits(labels, (0.6, 0.2, 0.2), seed)
        loaded = {name: (images[idx], labels[idx]) for name, idx in zip(("train", "val", "test"),
                                                                           parts, strict=True)}
    if "test" not in loaded:
        loaded["test"] = loaded["val"]
        notes = ("the data has no test/ split: test accuracy is measured on val/",)
    xs = _normalise(loaded["train"][0], loaded["val"][0], loaded["test"][0])
    return DataSplits(xs[0], loaded["train"][1], xs[1], loaded["val"][1], xs[2],
                      loaded["test"][1], num_classes=len(classes), notes=notes)


def _materialise(split: object, what: str, name: str) -> tuple[Tensor, Tensor]:
    """A split as (images, labels) tensors: a (x, y) pair of tensors, a DataLoader of (x, y)
    batches, or a map-style dataset of (x, y) items."""
    if isinstance(split, tuple | list) and len(split) == 2 and all(isinstance(t, Tensor) for t in split):
        x, y = split
    elif isinstance(split, torch.utils.data.DataLoader):
        try:
            batches = [(torch.as_tensor(bx, dtype=torch.float32), torch.as_tensor(by))
                       for bx, by in split]
            x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        except Exception as exc:  # a user's loader may fail in any way; say where
            raise UsageError(f"{what}: the {name} loader does not give (images, labels) "
                             f"batches ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    else:
        try:
            items = [split[i] for i in range(len(split))]  # type: ignore[index,arg-type]
            x = torch.stack([torch.as_tensor(item[0], dtype=torch.float32) for item in items])
            y = torch.tensor([int(item[1]) for item in items])
        except Exception as exc:  # a user's dataset may fail in any way; say where
            raise UsageError(f"{what}: the {name} split is neither (images, labels) tensors nor "
                             f"a dataset of (image, label) items ({type(exc).__name__}: {exc})"
                             .splitlines()[0]) from None
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y).long().flatten()
    if x.ndim != 4 or len(x) != len(y) or len(y) == 0:
        raise UsageError(f"{what}: the {name} split must hold N images of shape C x H x W and N "
                         f"labels; got images {tuple(x.shape)} and {len(y)} labels")
    return x, y


def splits_from(train: object, val: object, test: object | None = None, *,
                image_size: int | None = None) -> DataSplits:
    """Splits handed over from Python (``search.run(train=..., val=..., test=...)``): each a
    map-style dataset of (image, label), a DataLoader of such batches, or an (images, labels)
    pair of tensors; without ``test``, test accuracy is measured on ``val``.

    Example:
        >>> x, y = torch.randn(8, 3, 8, 8), torch.arange(8) % 2
        >>> splits_from((x, y), (x, y)).num_classes
        2
    """
    splits = (train, val) if test is None else (train, val, test)
    return from_function(lambda: splits, "train=/val=/test=", image_size=image_size)


def from_function(function: Callable[[], object], path: str, *, image_size: int | None = None,
                  seed: int = 0) -> DataSplits:
    """``pkg.module:function`` (``path``, imported by the registry): ``function()`` returns
    (train, val) or (train, val, test), each a map-style dataset of (image, label) or an
    (images, labels) pair of tensors. Images are used as given (normalise them in the function),
    resized only when ``--image-size`` is set; the class count is ``len(train.classes)`` if the
    data set says, else the largest label + 1."""
    what = f"--data {path}"
    try:
        returned = function()
    except Exception as exc:  # a user's function may raise anything; say which and why
        raise UsageError(f"{what}: the function raised {type(exc).__name__}: {exc}"
                         .splitlines()[0]) from None
    if not isinstance(returned, tuple | list) or len(returned) not in (2, 3):
        raise UsageError(f"{what}: the function must return (train, val) or (train, val, test), "
                         f"got {type(returned).__name__}")
    names = ("train", "val", "test")
    splits = [_materialise(s, what, n) for s, n in zip(returned, names, strict=False)]
    notes: tuple[str, ...] = ()
    if len(splits) == 2:
        splits.append(splits[1])
        notes = ("the data function returns no test split: test accuracy is measured on val",)
    shapes = {tuple(x.shape[1:]) for x, _ in splits}
    if len(shapes) > 1 and image_size is None:
        raise UsageError(f"{what}: the splits' images differ in shape ({sorted(shapes)}); "
                         f"give --image-size PX to resize them")
    labels = torch.cat([y for _, y in splits])
    classes = getattr(returned[0], "classes", None)
    num_classes = len(classes) if classes is not None else int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= num_classes or num_classes < 2:
        raise UsageError(f"{what}: labels must lie in 0..{num_classes - 1} and name 2 or more "
                         f"classes; got {int(labels.min())}..{int(labels.max())}")
    (tx, ty), (vx, vy), (sx, sy) = ((_resized(x, image_size).contiguous(), y) for x, y in splits)
    return DataSplits(tx, ty, vx, vy, sx, sy, num_classes=num_classes, notes=notes)

