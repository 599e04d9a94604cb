"""How well does the quick accuracy proxy rank candidates? Rank correlation against a longer
fine-tune, on random per-group allocations of the default search.

Each candidate is pruned from the trained dense model once; copies of it then get each proxy and
the long fine-tune, all from the same pruned weights and seed:

- adaptive BN: batch-norm statistics re-estimated, no training (EagleEye's proxy);
- quick-5, quick-20: that plus 5 or 20 SGD steps (20 is the search's default ``--finetune-steps``,
  at its peak learning rate 0.02, cosine to zero);
- quick-20 lr/4: the same 20 steps at a quarter of the learning rate;
- distill-20, distill-20 lr/4: 20 steps that also learn the dense model's outputs (cross-entropy
  plus Hinton's soft targets at T=4, ``search.training._train.distillation_loss``);
- long: BN re-estimated plus ``--long-steps`` steps (default 200), the reference ranking;
- long, other seed: the same with another seed (other batches). Its correlation with ``long`` is
  the reference's own repeatability, which bounds what any proxy can reach against it; the
  ``*_mean_long`` columns rank against the mean of the two long fine-tunes instead.

Prints Spearman's and Kendall's rank correlation of each proxy with the long fine-tune, and the
seconds each costs per candidate; writes the table to benchmarks/results/.

    python benchmarks/proxy_correlation.py                     # 24 candidates, VGG-16-BN, ~6 min
    python benchmarks/proxy_correlation.py --candidates 6 --long-steps 40 --model resnet20
    python benchmarks/proxy_correlation.py --data mnist:benchmarks/data/fashion-mnist \
        --image-size 16 --space benchmarks/deep_space.toml    # where the strategies separate
"""

from __future__ import annotations

import argparse
import copy
import datetime
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from width_strategies import BASELINES, setup_for  # noqa: E402  (the benchmarks share their set-up)

from profilers import fingerprint  # noqa: E402
from search import SearchConfig  # noqa: E402
from search.training import accuracy, finetune  # noqa: E402
from spaces import prune  # noqa: E402

# name: (SGD steps, share of the fine-tune's learning rate, distilled from the dense model)
PROXIES = {"adaptive BN": (0, 1.0, False), "quick-5": (5, 1.0, False), "quick-20": (20, 1.0, False),
           "quick-20 lr/4": (20, 0.25, False), "distill-20": (20, 1.0, True),
           "distill-20 lr/4": (20, 0.25, True)}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=24)
    parser.add_argument("--long-steps", type=int, default=200)
    parser.add_argument("--model", default=SearchConfig.model)
    parser.add_argument("--data", default=SearchConfig.data,
                        help="as the search's --data; mnist:benchmarks/data/fashion-mnist after "
                             "python benchmarks/fashion_mnist.py is a harder task than digits")
    parser.add_argument("--image-size", type=int, default=SearchConfig.image_size)
    parser.add_argument("--space", default=SearchConfig.space,
                        help="as the search's --space; benchmarks/deep_space.toml keeps down to 1/16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baselines", type=Path, default=BASELINES,
                        help="where trained dense baselines are kept between runs (keyed by "
                             "model, --data, size and seed: delete it after changing data files)")
    parser.add_argument("--out", type=Path, help="results file (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    runs = {**{name: (*proxy, 0) for name, proxy in PROXIES.items()},  # ..., seed offset
            "long": (args.long_steps, 1.0, False, 0),
            "long, other seed": (args.long_steps, 1.0, False, 50_021)}
    rows, seconds = [], {name: 0.0 for name in runs}
    with tempfile.TemporaryDirectory() as tmp:
        config = SearchConfig(budget_ratio=1.0, model=args.model, seed=args.seed, data=args.data,
                              image_size=args.image_size, space=args.space,
                              results_dir=str(Path(tmp) / "results"))
        setup = setup_for(config, args.baselines)
        rng = random.Random(args.seed)
        for number in range(args.candidates):
            fractions = {g.name: rng.choice(setup.space.fractions) for g in setup.space.searchable}
            pruned = prune(setup.dense, setup.example[:1], setup.space.allocation(fractions))
            row = {"candidate": number}
            for name, (steps, lr, distill, offset) in runs.items():
                model = copy.deepcopy(pruned)
                began = time.perf_counter()
                recipe = replace(setup.recipe, finetune_steps=steps,
                                 finetune_lr=lr * setup.recipe.finetune_lr)
                finetune(model, setup.data, recipe, seed=args.seed * 100_003 + number + offset,
                         teacher=setup.dense if distill else None)
                row[name] = accuracy(model, setup.data.val)
                seconds[name] += time.perf_counter() - began
            rows.append(row)
            print(row, flush=True)
    scores = pd.DataFrame(rows)
    mean_long = (scores["long"] + scores["long, other seed"]) / 2
    table = pd.DataFrame([
        {"proxy": name,
         "spearman": scores[name].corr(scores["long"], method="spearman"),
         "kendall": scores[name].corr(scores["long"], method="kendall"),
         "spearman_mean_long": scores[name].corr(mean_long, method="spearman"),
         "kendall_mean_long": scores[name].corr(mean_long, method="kendall"),
         "seconds_per_candidate": seconds[name] / len(scores)}
        for name in runs])
    env = fingerprint(torch.device("cpu"), 1)
    stamp = datetime.date.today().isoformat()
    text = (f"# proxy_correlation, {stamp}, {env['cpu_model']} ({env['cpu_count']} CPUs), torch "
            f"{env['torch']}, model {args.model}, {args.data} {setup.data.input_shape[-1]} px, "
            f"{len(setup.data.val)} validation images, space {args.space}, {len(scores)} random "
            f"candidates, "
            f"long = {args.long_steps} steps\n"
            f"# python benchmarks/proxy_correlation.py "
            f"{' '.join(sys.argv[1:] if argv is None else argv)}\n"
            + table.round(3).to_string(index=False) + "\n\n"
            + scores.round(4).to_string(index=False) + "\n")
    print(text)
    data = "" if args.data == SearchConfig.data else "-" + Path(args.data.split(":")[-1]).name
    data += "" if args.space == SearchConfig.space else "-" + Path(args.space).stem
    data += "" if args.seed == 0 else f"-seed{args.seed}"
    out = args.out or Path(__file__).parent / "results" / (
        f"proxy_correlation-{stamp}-{args.model}{data}.txt")
    out.write_text(text)
    print(f"wrote {out}")
    return table


if __name__ == "__main__":
    main()
