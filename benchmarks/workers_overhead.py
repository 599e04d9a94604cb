"""What several local worker processes cost and give: the same search with --workers 1, 2, 4.

For each worker count it runs `python -m search` (ResNet-20, 16 px, 2 fine-tune steps, journal
storage) with the same number of trials, then reads the study back and prints, per trial, the
time spent scoring the candidate (pruning, measuring, fine-tuning) and the time around it that
belongs to the search loop: sampling, recording the worker and heartbeat, telling the result,
rewriting trials.csv, until the same worker's next trial starts. Prints a table and writes it to
benchmarks/results/.

    python benchmarks/workers_overhead.py                   # 12 trials x workers 1, 2, 4
    python benchmarks/workers_overhead.py --trials 6 --workers 1 2
    python benchmarks/workers_overhead.py --backend ray --workers 1 2   # Ray Tune trials

With --backend ray a "worker" is a Ray trial running at a time (one CPU each; a local Ray
instance with this machine's CPUs), and the loop time also holds Ray's scheduling and reporting.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import torch

from profilers import fingerprint
from search.study import open_storage

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--model", "resnet20", "--image-size", "16", "--finetune-steps", "2", "--budget-ratio",
        "1", "--no-latency-cache"]


def _search(workdir: Path, name: str, trials: int, workers: int, backend: str) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "search", *ARGS, "--trials", str(trials), "--workers",
                    str(workers), "--backend", backend, "--study-name", name], cwd=workdir,
                   check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    return time.perf_counter() - began


def _per_trial(run_dir: Path, name: str) -> pd.DataFrame:
    study = optuna.load_study(study_name=name, storage=open_storage(str(run_dir / "study.journal")))
    rows = []
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        rows.append({"pid": t.user_attrs["worker"]["pid"], "start": t.datetime_start,
                     "end": t.datetime_complete, "scoring_s": t.user_attrs["seconds"]})
    frame = pd.DataFrame(rows).sort_values(["pid", "start"])
    span = (frame["end"] - frame["start"]).dt.total_seconds()
    gap = (frame.groupby("pid")["start"].shift(-1) - frame["end"]).dt.total_seconds()
    frame["loop_s"] = span - frame["scoring_s"] + gap.fillna(0)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _search(workdir, "warm-up", 1, 1, "local")  # trains and caches the dense baseline once
        for workers in args.workers:
            name = f"w{workers}"
            wall = _search(workdir, name, args.trials, workers, args.backend)
            trials = _per_trial(workdir / "results" / name, name)
            rows.append({"workers": workers, "trials": len(trials), "wall_s": round(wall, 1),
                         "trials_per_min": round(60 * len(trials) / wall, 1),
                         "scoring_s_median": round(trials["scoring_s"].median(), 2),
                         "loop_ms_median": round(1000 * trials["loop_s"].median()),
                         "loop_ms_max": round(1000 * trials["loop_s"].max())})
    table = pd.DataFrame(rows)
    env = fingerprint(torch.device("cpu"), 1)
    header = (f"# workers_overhead, {datetime.date.today()}, {env['cpu_model']} "
              f"({env['cpu_count']} CPUs), torch {env['torch']}, optuna {optuna.__version__}\n"
              f"# python benchmarks/workers_overhead.py --trials {args.trials} --workers "
              f"{' '.join(map(str, args.workers))} --backend {args.backend}\n")
    text = header + table.to_string(index=False) + "\n"
    print(text)
    suffix = "" if args.backend == "local" else f"-{args.backend}"
    out = ROOT / "benchmarks" / "results" / (
        f"workers_overhead{suffix}-{datetime.date.today()}-cpu.txt")
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
