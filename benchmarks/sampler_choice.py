"""Which Optuna sampler should be the default? Same model, data, budget and trial count for each.

Runs the default search once per (sampler, seed) and compares the fronts by hypervolume in
(latency ratio to dense, validation accuracy), with one fixed reference point, so drift of the
machine between runs does not move the score. Prints a table and writes it to benchmarks/results/.

    python benchmarks/sampler_choice.py                 # 4 samplers x 2 seeds x 40 trials, ~15 min
    python benchmarks/sampler_choice.py --trials 10 --seeds 0 --samplers tpe random   # quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import tempfile
from pathlib import Path

import pandas as pd
import torch

from profilers import fingerprint
from search import SearchConfig, run

REFERENCE_POINT = {"latency_ratio": 0.5, "accuracy": 0.95}


def hypervolume(latency_ratio: pd.Series, accuracy: pd.Series, reference: dict) -> float:
    """Area dominated by the front inside the reference box (lower latency, higher accuracy)."""
    points = sorted(zip(latency_ratio, accuracy, strict=True))
    area, best = 0.0, reference["accuracy"]
    edges = [p[0] for p in points[1:]] + [reference["latency_ratio"]]
    for (latency, acc), next_latency in zip(points, edges, strict=True):
        best = max(best, acc)
        if latency < reference["latency_ratio"]:
            area += (min(next_latency, reference["latency_ratio"]) - latency) * (best - reference["accuracy"])
    return area


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "gp", "random"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--trials", type=int, default=SearchConfig.trials)
    parser.add_argument("--budget-ratio", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for sampler in args.samplers:
                out = Path(tmp) / f"{sampler}-{seed}"
                config = SearchConfig(budget_ratio=args.budget_ratio, trials=args.trials,
                                      sampler=sampler, seed=seed, study_name=f"{sampler}-{seed}",
                                      out=str(out))
                front = run(config)
                dense_ms = json.loads((out / "reference.json").read_text())["latency_ms"]
                trials = pd.read_csv(out / "trials.csv")
                ratio = front["latency_ms"] / dense_ms
                rows.append({
                    "sampler": sampler, "seed": seed, "trials": args.trials,
                    "hypervolume": hypervolume(ratio, front["accuracy"], REFERENCE_POINT),
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
