"""How far pruning can move each built-in model's latency: uniform keep fractions against dense.

Measures, interleaved in one process, each model dense and uniformly pruned to keep 0.75, 0.5 and
0.25 of every searchable group (input layer and classifier left dense, as the search does), and
prints the latency ratios to dense. A model whose ratios stay high has a structural floor that no
allocation can get under.

    python benchmarks/uniform_latency.py                          # all built-ins at 16 and 32 px
    python benchmarks/uniform_latency.py --models resnet20 vgg16_bn --sizes 32 16
"""

from __future__ import annotations

import argparse

import torch

from profilers import compare, count_cost, fingerprint
from search.sources import ZOO
from spaces import SearchSpace, discover_groups, prune

FRACTIONS = (0.75, 0.5, 0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=sorted(ZOO))
    parser.add_argument("--sizes", nargs="+", type=int, default=[16, 32])
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    env = fingerprint(torch.device("cpu"), threads=1)
    print(f"# {env['cpu_model']}, 1 thread, torch {env['torch']}, batch {args.batch_size}")
    print("model        px  dense_ms  MMACs   " + "  ".join(f"keep {f:<4}" for f in FRACTIONS))
    for name in args.models:
        for size in args.sizes:
            model = ZOO[name]().eval()
            x = torch.randn(args.batch_size, 3, size, size)
            groups, _ = discover_groups(model, x[:1])
            space = SearchSpace(tuple(groups))
            pruned = [prune(model, x[:1], space.uniform(f)) for f in FRACTIONS]
            result = compare([model, *pruned], x, device="cpu")
            ratios = "  ".join(f"{r:9.3f}" for r in result.ratios[1:])
            print(f"{name:<12} {size:>3} {result.stats[0].median_ms:9.3f} "
                  f"{count_cost(model, x).macs / 1e6:6.1f}  {ratios}")


if __name__ == "__main__":
    main()
