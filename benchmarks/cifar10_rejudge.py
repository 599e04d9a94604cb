"""Measures the final fronts of a kept CIFAR-10 benchmark run side by side again: how far does the
judge move, and what do the strategies score under a quieter one?

``cifar10_quality.py --keep DIR`` keeps every strategy's run folder (``DIR/MODEL-seedN/STRATEGY``).
This script loads those fronts' saved models and measures them again in one interleaved comparison
with the dense model, ``--repeats`` times at ``--scale`` times a search's effort, and prints each
strategy's final hypervolume and accuracy at each share of the dense latency per measurement
(accuracies are the run's own final-stage figures; only the latency ratios are measured again).

    python benchmarks/cifar10_rejudge.py DIR/resnet20-seed1 --repeats 3 --scale 3
    python benchmarks/cifar10_rejudge.py DIR/resnet20-seed0 DIR/plain20-seed0 --out FILE.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import cifar10_dense as dense_models  # noqa: E402  (sibling scripts)
import cifar10_quality as cifar  # noqa: E402
import search_quality as quality  # noqa: E402
import width_strategies as strategies  # noqa: E402


def rejudge(folder: Path, args: argparse.Namespace) -> list[dict]:
    """Rows of (model, seed, repeat, strategy, hv_final, acc@r, test@r) for one kept seed."""
    found = re.fullmatch(r"(.+)-seed(\d+)", folder.name)
    if not found or not folder.is_dir():
        sys.exit(f"error: {folder} is not a kept seed's folder (MODEL-seedN from "
                 f"cifar10_quality.py --keep)")
    model, seed = found[1], int(found[2])
    names = sorted(p.parent.name for p in folder.glob("*/pareto.csv"))
    if not names:
        sys.exit(f"error: {folder} holds no strategy's run folder (STRATEGY/pareto.csv)")
    args.budget_ratio = json.loads((folder / names[0] / "config.json").read_text())["budget_ratio"]
    at = cifar.readouts(args.budget_ratio)
    setup = strategies.setup_for(cifar.config_for(model, seed, args, folder / "rejudge"))
    reference = {"ratio": args.budget_ratio, "accuracy": 1 / setup.data.num_classes}
    fronts = {name: quality.final_front(folder / name) for name in names}
    rows = []
    for repeat in range(args.repeats):
        began = time.perf_counter()
        measured, _ = quality.side_by_side(setup, fronts, folder, args.scale)
        for name, front in measured.items():
            rows.append({"model": model, "seed": seed, "repeat": repeat, "strategy": name,
                         **cifar.final_scores(front, reference, at)})
        print(f"{model} seed {seed} repeat {repeat}: {time.perf_counter() - began:.0f} s, "
              + ", ".join(f"{r['strategy']} {r['hv_final']:.4f}" for r in rows[-len(names):]),
              flush=True)
    return rows


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="kept seeds' folders (MODEL-seedN)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--scale", type=float, default=quality.JUDGE_SCALE,
                        help="effort as a multiple of one search's comparison (default %(default)s)")
    parser.add_argument("--measure-seconds", type=float, default=cifar.MEASURE_SECONDS,
                        help="the run's --measure-seconds (default %(default)s, as there)")
    parser.add_argument("--data", type=Path, default=dense_models.DATA)
    parser.add_argument("--out", type=Path, help="also write the rows to this CSV file")
    args = parser.parse_args(argv)
    args.quick = False  # the config's recipe is not used: nothing trains
    args.finetune_steps = cifar.SearchConfig.finetune_steps
    dense_models.ensure_batches(args.data)
    logging.basicConfig(level=logging.WARNING)
    table = pd.DataFrame([row for folder in args.folders for row in rejudge(folder, args)])
    print(table.round(4).to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)
    return table


if __name__ == "__main__":
    main()
