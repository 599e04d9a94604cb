"""Peak memory of a search on an image folder too large to hold: streamed, it stays small.

Writes an ImageFolder tree of JPEG files (10 classes; ``train/`` with the rest, ``val/`` and
``test/`` with 500 images each, so each candidate's score reads 500), then runs `python -m
search --data imagefolder:DIR` on it as a user would (ResNet-20 from an untrained checkpoint,
since the figure is memory, not accuracy; 2 trials, 1 fine-tune step) and samples the memory of
the search and its DataLoader workers every 0.2 s: the sum of their proportional set sizes (PSS,
shared pages counted once) from /proc. It runs the search twice: with the default
``--data-memory-gb 2`` (what does not fit is streamed; ``--quick`` streams everything) and with
everything held (``--data-memory-gb 1000``), unless that would not fit this machine's memory.

    python benchmarks/data_memory.py                      # 100,000 images at 224 px
    python benchmarks/data_memory.py --images 20000 --size 128
    python benchmarks/data_memory.py --memory-gb 0      # stream val and test too
    python benchmarks/data_memory.py --quick              # 1,000 images at 32 px, all streamed

Prints a table and writes it to benchmarks/results/data_memory-DATE.txt (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 10
HELD_OUT = 500  # val and test images each
QUICK = {"images": 1_000, "size": 32, "held_out": 100}
SEARCH = ["--model", "resnet20", "--budget-ratio", "1", "--trials", "2", "--finetune-steps", "1",
          "--final-finetune-steps", "1", "--measure-seconds", "0.3", "--no-latency-cache"]


def _write_one(job: tuple[Path, int, int, int]) -> None:
    from PIL import Image

    path, label, seed, size = job
    rng = np.random.default_rng(seed)
    # A smooth picture per class (a coloured gradient and a bright square at a random place):
    # small JPEG files, as photographs of this size are not, but decoding costs the same.
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    colour = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256], np.float32)
    image = ramp[None, :, None] * colour[None, None, :] * 0.8 + rng.uniform(0, 40)
    x, y = rng.integers(0, size // 2, 2)
    image[y:y + size // 4, x:x + size // 4] = 255
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path, quality=85)


def write_folder(root: Path, images: int, size: int, held_out: int = HELD_OUT) -> None:
    """``images`` JPEG files of ``size`` px under ``root/{train,val,test}/CLASS/``, ``held_out``
    each in val and test."""
    jobs = []
    counts = {"val": held_out, "test": held_out, "train": images - 2 * held_out}
    for k, (split, n) in enumerate(counts.items()):
        for c in range(CLASSES):
            (root / split / f"class{c}").mkdir(parents=True, exist_ok=True)
        jobs += [(root / split / f"class{i % CLASSES}" / f"{i}.jpg", i % CLASSES, 3 * i + k, size)
                 for i in range(n)]
    with multiprocessing.Pool(os.cpu_count()) as pool:
        pool.map(_write_one, jobs, chunksize=256)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def _pss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:  # it ended between the listing and the reading
            continue
    return total


def measure(folder: Path, workdir: Path, size: int, extra: list[str]) -> dict:
    """Runs one search on ``folder``; its peak memory (PSS of the process tree), its peak
    process count and its wall time."""
    checkpoint = workdir / "resnet20-untrained.pt"
    if not checkpoint.exists():
        from search.sources import build_model

        torch.manual_seed(0)
        torch.save(build_model("resnet20", CLASSES).state_dict(), checkpoint)
    args = [sys.executable, "-m", "search", *SEARCH, "--data", f"imagefolder:{folder}",
            "--image-size", str(size), "--checkpoint", str(checkpoint), *extra]
    began, peak, processes = time.perf_counter(), 0, 0
    with open(workdir / "search.log", "w") as log:
        proc = subprocess.Popen(args, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        while proc.poll() is None:
            pids = _tree(proc.pid)
            peak, processes = max(peak, _pss_bytes(pids)), max(processes, len(pids))
            time.sleep(0.2)
    if proc.returncode != 0:
        sys.exit(f"error: the search failed (exit {proc.returncode}); see {workdir / 'search.log'}")
    said = re.search(r"data: streamed from the files: ([\w, ]+) \(", (workdir / "search.log")
                     .read_text())
    return {"peak_gb": peak / 1024 ** 3, "processes": processes, "streamed":
            said.group(1).replace(", ", "+") if said else "-", "wall_s": time.perf_counter() - began}


def _available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024 ** 2
    return float("inf")


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=224, help="image size on disk and searched")
    parser.add_argument("--quick", action="store_true",
                        help="1,000 images at 32 px (100 each in val and test)")
    parser.add_argument("--memory-gb", type=float,
                        help="the streamed run's --data-memory-gb (default 2; --quick: 0)")
    parser.add_argument("--folder", type=Path, help="keep the image folder here (reused if there)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    held_out = QUICK["held_out"] if args.quick else HELD_OUT
    if args.quick:
        args.images, args.size = QUICK["images"], QUICK["size"]
    if args.images < 2 * held_out + CLASSES:
        parser.error(f"--images must be at least {2 * held_out + CLASSES}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "images"
        began = time.perf_counter()
        if not (folder / "test").is_dir():
            write_folder(folder, args.images, args.size, held_out)
        written_s = time.perf_counter() - began
        decoded_gb = args.images * 3 * args.size ** 2 * 4 / 1024 ** 3
        limit = args.memory_gb if args.memory_gb is not None else 0 if args.quick else 2
        # (the quick folder fits 2 GB: it is streamed whole)
        runs = {f"streamed (--data-memory-gb {limit:g})": ["--data-memory-gb", f"{limit:g}"]}
        if decoded_gb * 1.5 < _available_gb():
            runs["held (--data-memory-gb 1000)"] = ["--data-memory-gb", "1000"]
        rows = []
        for name, extra in runs.items():
            workdir = Path(tmp) / name.split()[0]
            workdir.mkdir()
            row = measure(folder, workdir, args.size, extra)
            rows.append({"data": name, **row})
            print(f"{name}: peak {row['peak_gb']:.2f} GB over {row['processes']} processes, "
                  f"{row['wall_s']:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    header = (f"# data_memory, {datetime.date.today()}, {os.cpu_count()} CPUs, torch "
              f"{torch.__version__}: {args.images:,} JPEG images at {args.size} px "
              f"({decoded_gb:.1f} GB as float32 once decoded; written in {written_s:.0f} s); "
              f"ResNet-20, 2 trials, 1 fine-tune step; peak = the sum of the search's and its "
              f"DataLoader workers' PSS, sampled every 0.2 s\n"
              f"# python benchmarks/data_memory.py {' '.join(argv if argv is not None else sys.argv[1:])}\n")
    text = header + table.to_string(index=False, float_format=lambda v: f"{v:.2f}") + "\n"
    if len(runs) == 1:
        text += (f"# held: not run, {decoded_gb:.1f} GB would not fit the "
                 f"{_available_gb():.0f} GB available\n")
    print(text)
    out = args.out or ROOT / "benchmarks" / "results" / f"data_memory-{datetime.date.today()}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return table


if __name__ == "__main__":
    main()
