"""Which Optuna sampler should be the default? Same model, data, budget and trial count for each.

Runs the default search once per (sampler, seed) and compares the fronts by hypervolume in
(latency ratio to dense, validation accuracy), with one fixed reference point, so drift of the
machine between runs does not move the score. Prints a table and writes it to benchmarks/results/.

    python benchmarks/sampler_choice.py                 # 4 samplers x 2 seeds x 40 trials, ~15 min
    python benchmarks/sampler_choice.py --trials 10 --seeds 0 --samplers tpe random   # quick
    python benchmarks/sampler_choice.py --overhead-only     # each sampler's own time per trial
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import random
import tempfile
import time
import warnings
from pathlib import Path

import optuna
import pandas as pd
import torch

from profilers import fingerprint
from search import SearchConfig, run
from search.runfolder import hypervolume  # noqa: E402
from search.study import make_sampler

REFERENCE_POINT = {"latency_ratio": 0.5, "accuracy": 0.95}


def sampler_overhead(name: str, trials: int, groups: int = 12) -> list[float]:
    """Seconds each ``study.ask()`` takes on a study shaped like the default search's (stepped
    keep fractions per group, accuracy and latency, a budget constraint), with synthetic scores."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(name, 0))
    rng, seconds = random.Random(0), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(trials):
            began = time.perf_counter()
            trial = study.ask()
            fractions = [trial.suggest_float(f"g{j}", 0.25, 1.0, step=0.125) for j in range(groups)]
            seconds.append(time.perf_counter() - began)
            latency = sum(fractions) / groups
            trial.set_constraint("latency_over_budget", latency - 0.5)
            study.tell(trial, [0.9 + 0.1 * latency + rng.gauss(0, 0.01), latency])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "gp", "random"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--trials", type=int, default=SearchConfig.trials)
    parser.add_argument("--budget-ratio", type=float, default=0.5)
    parser.add_argument("--overhead-only", action="store_true",
                        help="only time each sampler's own work per trial")
    args = parser.parse_args()
    overhead = {name: sampler_overhead(name, args.trials) for name in args.samplers}
    for name, seconds in overhead.items():
        print(f"{name}: {sum(seconds):.2f} s choosing {args.trials} trials, "
              f"{sum(seconds[-10:]) / 10:.3f} s per trial over the last 10")
    if args.overhead_only:
        return
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for sampler in args.samplers:
                out = Path(tmp) / f"{sampler}-{seed}"
                config = SearchConfig(budget_ratio=args.budget_ratio, trials=args.trials,
                                      sampler=sampler, seed=seed, study_name=f"{sampler}-{seed}",
                                      out=str(out))
                front = run(config).pareto
                dense_ms = json.loads((out / "reference.json").read_text())["latency_ms"]
                trials = pd.read_csv(out / "trials.csv")
                ratio = front["latency_ms"] / dense_ms
                rows.append({
                    "sampler": sampler, "seed": seed, "trials": args.trials,
                    "hypervolume": hypervolume(ratio, front["accuracy"], REFERENCE_POINT["latency_ratio"],
                                               REFERENCE_POINT["accuracy"]),
                    "front_size": len(front),
                    "feasible": int(trials["feasible"].sum()),
                    "fastest_ratio": ratio.min(),
                    "best_accuracy": front["accuracy"].max(),
                    "seconds": trials["seconds"].sum(),
                })
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("sampler")[["hypervolume", "front_size", "feasible", "seconds"]].mean()
    summary = summary.sort_values("hypervolume", ascending=False)
    print(table.to_string(index=False))
    print(summary.to_string())
    stamp = datetime.date.today().isoformat()
    env = fingerprint(torch.device("cpu"), threads=1)
    path = Path(__file__).parent / "results" / f"sampler_choice-{stamp}-{SearchConfig.model}.md"
    path.write_text(
        f"# Sampler choice, {stamp}\n\nMachine: {env['cpu_model']}, {env['cpu_count']} cores, "
        f"{env['threads']} inference thread(s), torch {env['torch']}; reference point "
        f"{REFERENCE_POINT}; budget ratio {args.budget_ratio}; {args.trials} trials per run.\n\n"
        f"{table.to_markdown(index=False)}\n\nMean over seeds:\n\n{summary.to_markdown()}\n")
    print(f"written {path}")


if __name__ == "__main__":
    main()
