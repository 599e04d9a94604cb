"""Is the interleaved latency ratio steadier than a plain median? The same pair, many processes.

Each of N fresh processes builds the dense model and its uniformly pruned version (keep 0.5), then
measures (a) the pair interleaved, as the search does, giving the pruned model's latency ratio, and
(b) the pruned model alone, its plain median: what a naive profiler reports. Across processes, the
coefficient of variation (std / mean) of each says how far a number moves between runs on this
machine. Prints both CVs and the measurement cost per candidate.

    python benchmarks/latency_repeatability.py                   # vgg16_bn at 16 px, 10 processes
    python benchmarks/latency_repeatability.py --model resnet20 --image-size 32
    python benchmarks/latency_repeatability.py --load     # another process keeps a core busy
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from profilers import compare, fingerprint, measure
from search.sources import build_model
from spaces import SearchSpace, discover_groups, prune


def one_process(model_name: str, image_size: int, keep: float) -> dict:
    dense = build_model(model_name, 10).eval()
    x = torch.randn(1, 3, image_size, image_size)
    groups, _ = discover_groups(dense, x)
    pruned = prune(dense, x, SearchSpace(tuple(groups)).uniform(keep))
    began = time.perf_counter()
    pair = compare([dense, pruned], x, device="cpu")
    pair_seconds = time.perf_counter() - began
    alone = measure(pruned, x, device="cpu")
    return {"ratio": pair.ratios[1], "dense_ms": pair.stats[0].median_ms,
            "naive_ms": alone.median_ms, "pair_seconds": pair_seconds, "rounds": pair.rounds}


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16_bn")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--load", action="store_true",
                        help="run a CPU-bound process beside the measurements, as on a shared machine")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_process(args.model, args.image_size, args.keep)))
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    try:
        rows = _measure_in_processes(args)
    finally:
        if hog is not None:
            hog.kill()
    env = fingerprint(torch.device("cpu"), threads=1)
    ratios = [r["ratio"] for r in rows]
    naive = [r["naive_ms"] for r in rows]
    dense = [r["dense_ms"] for r in rows]
    print(f"\n{args.model} at {args.image_size} px, keep {args.keep}, {args.processes} processes, "
          f"{'another core busy, ' if args.load else ''}{env['cpu_model']}, 1 thread, "
          f"torch {env['torch']}")
    print(f"interleaved ratio:      mean {statistics.mean(ratios):.4f}  CV {100 * cv(ratios):.2f}%")
    print(f"naive pruned median:    mean {statistics.mean(naive):.4f} ms  CV {100 * cv(naive):.2f}%")
    print(f"dense median (in pair): mean {statistics.mean(dense):.4f} ms  CV {100 * cv(dense):.2f}%")
    print(f"cost of one interleaved measurement: mean "
          f"{statistics.mean(r['pair_seconds'] for r in rows):.2f} s, max "
          f"{max(r['pair_seconds'] for r in rows):.2f} s")


def _measure_in_processes(args: argparse.Namespace) -> list[dict]:
    rows = []
    for i in range(args.processes):
        out = subprocess.run([sys.executable, __file__, "--child", "--model", args.model,
                              "--image-size", str(args.image_size), "--keep", str(args.keep)],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"process {i}: {rows[-1]}", flush=True)
    return rows


if __name__ == "__main__":
    main()
