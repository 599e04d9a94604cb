"""Trains the dense CIFAR-10 models the CIFAR-10 benchmark prunes, and writes them to
``benchmarks/checkpoints/MODEL-cifar10-16px.pt`` with their test accuracy in
``benchmarks/checkpoints/README.md``.

Each model is trained at 16 px (the benchmark's resolution: CIFAR-10 downsampled 2x, so that a
40-evaluation search fits in minutes on 2 cores) with the usual CIFAR recipe: random crops
(2 px padding) and horizontal flips, SGD with momentum 0.9 and weight decay 5e-4, a one-cycle
learning rate peaking at 0.1, batch 128.

It trains only on the training images that no benchmark seed's validation split holds (the
search splits ``data_batch_1..5`` 90/10 by ``--seed``; seeds 0-2 are left out, about 36,500
images), so that every seed's validation accuracy is measured on images the dense model never
saw. The test accuracy is on ``test_batch`` (10,000 images).

The data: ``python ../shared/tools/cifar10-batches.py benchmarks/data/cifar10`` writes the python
batches from the JPEG archive (this script runs it when the folder is missing; it needs pillow).
JPEG is lossy, so accuracies can differ from the original release's by a fraction of a point.

    python benchmarks/cifar10_dense.py                     # resnet20 and plain20, 30 epochs each
    python benchmarks/cifar10_dense.py --models plain20 --epochs 5
"""

from __future__ import annotations

import argparse
import datetime
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from profilers import fingerprint
from search.runfolder import save_state
from search.sources import build_model, stratified_splits

HERE = Path(__file__).parent
DATA = HERE / "data" / "cifar10"
CHECKPOINTS = HERE / "checkpoints"
SHARED_TOOL = HERE.parent.parent / "shared" / "tools" / "cifar10-batches.py"
IMAGE_SIZE = 16
SEEDS = (0, 1, 2)  # the benchmark's seeds, whose validation images the dense models never see
MODELS = ("resnet20", "plain20")


def checkpoint_path(model: str) -> Path:
    return CHECKPOINTS / f"{model}-cifar10-{IMAGE_SIZE}px.pt"


def ensure_batches(path: Path = DATA) -> Path:
    """The CIFAR-10 python batches at ``path``, written from ``../shared`` when missing."""
    if not (path / "test_batch").exists():
        if not SHARED_TOOL.exists():
            sys.exit(f"error: no CIFAR-10 batches in {path} and no {SHARED_TOOL} to write them; "
                     f"put the python batches (data_batch_1..5, test_batch) there")
        subprocess.run([sys.executable, str(SHARED_TOOL), str(path)], check=True)
    return path


def _batches(path: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for name in names:
        with (path / name).open("rb") as f:
            batch = pickle.load(f, encoding="bytes")  # our own files, written by the shared tool
        images.append(np.asarray(batch[b"data"], dtype=np.uint8))
        labels += list(batch[b"labels"])
    x = torch.from_numpy(np.concatenate(images)).view(-1, 3, 32, 32).float() / 255
    x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return x, torch.tensor(labels)


def training_images(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training images outside every benchmark seed's validation split, and the test split,
    normalised by the training images' per-channel statistics (as the search's reader does)."""
    x, y = _batches(path, [f"data_batch_{i}" for i in range(1, 6)])
    held = set()
    for seed in SEEDS:
        held.update(stratified_splits(y, (0.9, 0.1), seed)[1])
    keep = torch.tensor(sorted(set(range(len(y))) - held))
    test_x, test_y = _batches(path, ["test_batch"])
    train_x = x[keep]
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), keepdim=True)
    return (train_x - mean) / std, y[keep], (test_x - mean) / std, test_y


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 2-px-padded crops and horizontal flips, per image."""
    n, pad = len(x), 2
    padded = F.pad(x, (pad, pad, pad, pad))
    dx, dy = (torch.randint(0, 2 * pad + 1, (n,), generator=generator) for _ in range(2))
    rows = (dy[:, None] + torch.arange(IMAGE_SIZE))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(IMAGE_SIZE))[:, None, None, :]
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(3)[None, :, None, None],
                 rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def test_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        correct = sum(int((model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum())
                      for i in range(0, len(y), 500))
    return correct / len(y)


def train(name: str, data: tuple, epochs: int, seed: int = 0) -> tuple[torch.nn.Module, float]:
    train_x, train_y, test_x, test_y = data
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_model(name, 10)
    batch = 128
    steps = epochs * (len(train_y) // batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4,
                                nesterov=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        began = time.perf_counter()
        order = torch.randperm(len(train_y), generator=generator)
        for start in range(0, len(order) - batch + 1, batch):
            index = order[start:start + batch]
            loss = F.cross_entropy(model(_augment(train_x[index], generator)), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"{name} epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, "
              f"{time.perf_counter() - began:.0f} s", flush=True)
    return model, test_accuracy(model, test_x, test_y)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--data", type=Path, default=DATA, help="the CIFAR-10 python batches")
    args = parser.parse_args(argv)
    data = training_images(ensure_batches(args.data))
    CHECKPOINTS.mkdir(exist_ok=True)
    env = fingerprint(torch.device("cpu"), torch.get_num_threads())
    for name in args.models:
        began = time.perf_counter()
        model, accuracy = train(name, data, args.epochs)
        save_state(model, checkpoint_path(name))
        line = (f"- `{checkpoint_path(name).name}`: {name}, test accuracy {accuracy:.4f} "
                f"(10,000 test images at {IMAGE_SIZE} px), {args.epochs} epochs on "
                f"{len(data[1])} images, {time.perf_counter() - began:.0f} s on {env['cpu_model']} "
                f"({torch.get_num_threads()} threads), torch {env['torch']}, "
                f"{datetime.date.today().isoformat()}: "
                f"`python benchmarks/cifar10_dense.py --models {name} --epochs {args.epochs}`")
        print(line, flush=True)
        readme = CHECKPOINTS / "README.md"
        lines = readme.read_text().splitlines() if readme.exists() else [
            "# Dense CIFAR-10 checkpoints", "",
            "Trained by `benchmarks/cifar10_dense.py` (its docstring gives the recipe) and pruned "
            "by `benchmarks/search_quality.py --cifar10`.", ""]
        lines = [x for x in lines if not x.startswith(f"- `{checkpoint_path(name).name}`")]
        readme.write_text("\n".join([*lines, line]) + "\n")


if __name__ == "__main__":
    main()
