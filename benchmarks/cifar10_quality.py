"""Search quality on CIFAR-10, where pruning costs accuracy: our search against the published
strategies, for ResNet-20 and its plain counterpart, over several seeds.

Every strategy runs through the same search code with the same number of evaluations and the
same fine-tune recipe (``search_quality.py`` describes the strategies and how each one runs). The
dense models are the committed checkpoints in ``benchmarks/checkpoints/`` (``cifar10_dense.py``
trains them), at 16 px, and latency is measured at batch 32 on one thread (a batch-inference
deployment: at batch 1 this small a network is dominated by per-layer overheads, and no
candidate of ResNet-20's space gets below 0.7 x the dense latency).

For each model and seed it reports:

- **anytime hypervolume** after 10, 20 and 40 evaluations (what each strategy has found by then:
  its trials' quick-fine-tune validation accuracy against their measured latency / the dense
  latency, reference point (budget ratio, chance accuracy));
- **sample efficiency**: the evaluations ours needed to reach the best other strategy's
  hypervolume at 40 (``>N``: not within N);
- **accuracy at 0.3, 0.5, 0.6 and 0.7 x the dense latency** (``--at``; the budget is 0.7 x,
  ``--budget-ratio``) after the same final stage (each front
  fine-tuned longer and measured again, all strategies' fronts side by side in one comparison):
  the best validation accuracy within that latency, and the test accuracy of that model;
- **MACs against measured latency** over every candidate any strategy measured: Kendall's tau,
  and at each of those budgets what a MAC-steered choice (the largest candidate within that share
  of the dense MACs) measured;
- **the judge's own noise**: the first strategy's front measured a second time in the same
  side-by-side comparison (the same models and accuracies), with how far its final hypervolume
  and its readouts moved. On 2026-12-05 (run 15) one readout of the same models moved by up to
  6.2 points: a difference between two strategies no larger than this one's is noise.

Then the mean over seeds, with every seed's figures in the results file.

    python benchmarks/cifar10_quality.py                     # both models, seeds 0-2 (~60 min)
    python benchmarks/cifar10_quality.py --models resnet20 --seeds 0
    python benchmarks/cifar10_quality.py --quick             # resnet20, 3 evaluations (~2 min)
    python benchmarks/cifar10_quality.py --models plain20 --budget-ratio 0.55 --at 0.45 0.5 0.55

The data: ``python ../shared/tools/cifar10-batches.py benchmarks/data/cifar10`` (run for you when
the folder is missing). JPEG-decoded CIFAR-10 can differ from the original release by a fraction
of a point of accuracy.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from profilers import fingerprint
from search import SearchConfig
from search.runfolder import hypervolume, macs_latency, pareto_mask
from search.sources import TensorSplit
from search.training import accuracy

sys.path.insert(0, str(Path(__file__).parent))
import cifar10_dense as dense_models  # noqa: E402  (sibling scripts)
import search_quality as quality  # noqa: E402
import width_strategies as strategies  # noqa: E402

STRATEGIES = ("ours", "uniform", "tp-global", "eagleeye")
MODELS = ("resnet20", "plain20")
AT = (0.3, 0.5, 0.6, 0.7)  # shares of the dense latency (and of its MACs, for the MAC-steered pick)
ANYTIME = (10, 20, 40)
BUDGET_RATIO = 0.7  # the searches' budget (--budget-ratio): every share in AT lies within it
MEASURE_SECONDS = 1.5  # per latency comparison: at batch 32 a dense call takes about 10 ms here
QUICK = {"evaluations": 3, "finetune_steps": 2, "final_finetune_steps": 5, "measure_seconds": 0.5}
# Every strategy's final front as measured side by side, so that accuracy at any other share can
# be read afterwards (own_ratio: the run's own measurement).
FRONT_COLUMNS = ["model", "seed", "strategy", "trial", "ratio", "own_ratio", "accuracy",
                 "test_accuracy", "quick_accuracy"]
QUICK_IMAGES = 1000  # validation and test images in the quick run (of 5,000 and 10,000)


def _trials(out: Path) -> tuple[pd.DataFrame, dict]:
    """A strategy's trials in the order it evaluated them, with each latency as a ratio to the
    dense latency its run measured, and its reference record."""
    trials = pd.read_csv(out / "trials.csv").sort_values("trial")
    reference = json.loads((out / "reference.json").read_text())
    trials = trials[trials["repeat_of"].isna()]
    return trials.assign(ratio=trials["latency_ms"] / reference["latency_ms"]), reference


def anytime(trials: pd.DataFrame, evaluations: int, reference: dict[str, float]) -> float:
    """The hypervolume of what a strategy had found after its first ``evaluations``: scored
    candidates within the budget, by their quick-fine-tune accuracy."""
    first = trials.head(evaluations)
    scored = first[first["accuracy"].notna() & (first["ratio"] <= reference["ratio"])]
    return hypervolume(scored["ratio"], scored["accuracy"], reference["ratio"],
                       reference["accuracy"])


def evaluations_to_reach(trials: pd.DataFrame, target: float, reference: dict[str, float]) -> int | None:
    """The fewest evaluations after which the anytime hypervolume reaches ``target``."""
    for n in range(1, len(trials) + 1):
        if anytime(trials, n, reference) >= target - 1e-12:
            return n
    return None


def _at(front: pd.DataFrame, ratio: float) -> tuple[float, float]:
    """The best final validation accuracy within ``ratio`` of the dense latency, and that model's
    test accuracy (NaN, NaN: no front point that fast)."""
    within = front[front["ratio"] <= ratio]
    if not len(within):
        return float("nan"), float("nan")
    best = within.loc[within["accuracy"].idxmax()]
    return float(best["accuracy"]), float(best["test_accuracy"])


def config_for(model: str, seed: int, args: argparse.Namespace, root: Path) -> SearchConfig:
    """The search every strategy of one model and seed runs through (``args``: this script's
    ``--quick``, ``--data``, ``--budget-ratio``, ``--finetune-steps`` and ``--measure-seconds``)."""
    recipe = {"finetune_steps": args.finetune_steps, "measure_seconds": args.measure_seconds}
    if args.quick:
        recipe = {k: v for k, v in QUICK.items() if k != "evaluations"}
    return SearchConfig(model=model, data=f"cifar10:{args.data}",
                        image_size=dense_models.IMAGE_SIZE,
                        checkpoint=str(dense_models.checkpoint_path(model)),
                        budget_ratio=args.budget_ratio, batch_size=32, round_to=4, seed=seed,
                        results_dir=str(root / "results"), **recipe)


def readouts(budget_ratio: float, at: list[float] | None = None) -> tuple[float, ...]:
    """The shares of the dense latency the final fronts are read at, ascending: ``at`` when
    given, else those of ``AT`` within the budget, and the budget.

    Example:
        >>> readouts(0.55)
        (0.3, 0.5, 0.55)
    """
    chosen = set(at) if at else {r for r in AT if r <= budget_ratio} | {budget_ratio}
    return tuple(sorted(chosen))


def final_scores(front: pd.DataFrame, reference: dict[str, float],
                 at: tuple[float, ...] = AT) -> dict[str, float]:
    """A final front's hypervolume within the budget (``reference["ratio"]``) and its best
    accuracy at each share in ``at`` (with that model's test accuracy), by its side-by-side
    ``ratio``."""
    within = front[front["ratio"] <= reference["ratio"]]
    within = within[pareto_mask(within["ratio"], within["accuracy"])]
    row = {"hv_final": hypervolume(within["ratio"], within["accuracy"], reference["ratio"],
                                   reference["accuracy"])}
    for ratio in at:
        row[f"acc@{ratio}"], row[f"test@{ratio}"] = _at(within, ratio)
    return row


@dataclass(frozen=True)
class JudgeNoise:
    """One front's scores from two copies of its models measured in the same side-by-side
    comparison: the same models and accuracies, so what differs is the judge's own noise, the
    floor under any difference between two strategies of that run. ``moved``: the readouts (best
    accuracy within a share of the dense latency) that differ, as (share, points)."""

    strategy: str
    hv: tuple[float, float]
    moved: tuple[tuple[float, float], ...]
    readouts: int

    def text(self) -> str:
        first, second = self.hv
        change = f" ({second / first - 1:+.1%})" if first > 0 else ""
        moved = ", ".join(f"at {share:g}: {points:+.1f}" for share, points in self.moved)
        return (f"judge's noise: {self.strategy}'s front measured twice in the same comparison: "
                f"final hypervolume {first:.4f} and {second:.4f}{change}; "
                f"{len(self.moved)} of {self.readouts} readouts moved"
                + (f" ({moved} points)" if moved else ""))


def judge_noise(first: dict[str, float], second: dict[str, float], strategy: str) -> JudgeNoise:
    """The difference between two ``final_scores`` of the same front (see :class:`JudgeNoise`);
    a readout with a model in one copy and none in the other moved by all of it.

    Example:
        >>> judge_noise({"hv_final": 0.04, "acc@0.5": 0.40, "acc@0.55": 0.51},
        ...             {"hv_final": 0.05, "acc@0.5": 0.40, "acc@0.55": 0.47}, "ours").text()
        "judge's noise: ours's front measured twice in the same comparison: final hypervolume \
0.0400 and 0.0500 (+25.0%); 1 of 2 readouts moved (at 0.55: -4.0 points)"
    """
    shares = [key for key in first if key.startswith("acc@")]
    moved = []
    for key in shares:
        a, b = (0.0 if pd.isna(x) else x for x in (first[key], second[key]))
        if abs(b - a) > 1e-9:
            moved.append((float(key.removeprefix("acc@")), round(100 * (b - a), 1)))
    return JudgeNoise(strategy, (first["hv_final"], second["hv_final"]), tuple(moved), len(shares))


def one_seed(model: str, seed: int, args: argparse.Namespace, root: Path) -> dict:
    """Every strategy on one model and seed: per-strategy rows, the anytime curves and the
    MACs-against-latency figures."""
    n = args.evaluations
    checkpoint = dense_models.checkpoint_path(model)
    if not checkpoint.exists():
        sys.exit(f"error: no dense checkpoint {checkpoint}; train it with "
                 f"python benchmarks/cifar10_dense.py --models {model}")
    setup = strategies.setup_for(config_for(model, seed, args, root))
    setup = replace(setup, eagleeye_pool=3)
    if args.quick:  # a smoke run: the first validation and test images score every model
        data, k = setup.data, QUICK_IMAGES
        setup = replace(setup, data=replace(data, val=TensorSplit(data.val.x[:k], data.val.y[:k]),
                                            test=TensorSplit(data.test.x[:k], data.test.y[:k])))
    dense_accuracy = accuracy(setup.dense, setup.data.val)
    # The reference accuracy is chance: with the dense model's minus 20 points (the digits
    # benchmark's), no quick-fine-tuned candidate within 0.7 x the dense latency scored above it
    # on either model (the first run of 2026-12-03), and every anytime hypervolume was 0.
    reference = {"ratio": args.budget_ratio, "accuracy": 1 / setup.data.num_classes}
    fronts, counts, trials = {}, {}, {}
    for name in args.strategies:
        fronts[name], counts[name] = quality.run_strategy(name, setup, n, root)
        trials[name], _ = _trials(root / name)
        print(f"{model} seed {seed} {name}: {counts[name]}", flush=True)
    first = args.strategies[0]
    fronts, smallest = quality.side_by_side(
        setup, fronts, root, quality.QUICK_JUDGE_SCALE if args.quick else quality.JUDGE_SCALE,
        repeat=first)
    again = fronts.pop(first + quality.AGAIN)
    judge = judge_noise(final_scores(fronts[first], reference, args.at),
                        final_scores(again, reference, args.at), first)
    curves = {name: [anytime(t, k, reference) for k in range(1, n + 1)]
              for name, t in trials.items()}
    others = [name for name in fronts if not name.startswith("ours")]
    best_other = max((curves[o][-1] for o in others), default=0.0)
    rows = []
    for name, front in fronts.items():
        row = {"model": model, "seed": seed, "strategy": name}
        row.update({f"hv@{k}": curves[name][min(k, n) - 1] for k in ANYTIME if k <= n})
        row.update(final_scores(front, reference, args.at))
        row.update(evaluations=counts[name]["evaluations"], wall_s=counts[name]["wall_s"])
        if name.startswith("ours") and others:
            reached = evaluations_to_reach(trials[name], best_other, reference)
            row["to_reach_best_other"] = "n/a" if best_other <= 0 else (
                str(reached) if reached is not None else f">{n}")
        rows.append(row)
    pooled = pd.concat([t.assign(strategy=s) for s, t in trials.items()], ignore_index=True)
    dense_macs = json.loads((root / args.strategies[0] / "reference.json").read_text())["macs"]
    macs = macs_latency(pooled.assign(latency_ms=pooled["ratio"]), dense_macs, 1.0, args.at)
    points = pd.concat([front.assign(model=model, seed=seed, strategy=name)
                        for name, front in fronts.items()], ignore_index=True)
    return {"rows": rows, "curves": curves, "smallest": smallest, "macs": macs,
            "dense_accuracy": dense_accuracy, "reference": reference, "fronts": points,
            "judge": judge}


def _macs_text(result: dict) -> str:
    macs = result["macs"]
    picks = "; ".join(
        f"at {p.budget:g}: none that small" if p.trial is None else
        f"at {p.budget:g}: {p.macs_ratio:.2f} of the MACs measured {p.latency_ratio:.2f} "
        f"({p.over_budget:+.0%})" for p in macs.picks)
    return (f"MACs against measured latency over {macs.candidates} candidates: Kendall tau "
            f"{macs.tau:.3f}; MAC-steered picks (largest candidate within the share of the dense "
            f"MACs) measured, as a share of the dense latency: {picks}")


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="resnet20, seed 0, "
                        f"{QUICK['evaluations']} evaluations, {QUICK['finetune_steps']} fine-tune "
                        "steps, 0.5 s latency comparisons")
    parser.add_argument("--models", nargs="+", choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--evaluations", type=int, help="per strategy (default 40)")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES),
                        choices=quality.STRATEGIES + quality.VARIANTS)
    parser.add_argument("--budget-ratio", type=float, default=BUDGET_RATIO,
                        help="the searches' budget as a share of the dense latency (default "
                        "%(default)s)")
    parser.add_argument("--at", type=float, nargs="+", help="shares of the dense latency to read "
                        "the final fronts' accuracy at, each within the budget (default: those "
                        f"of {', '.join(map(str, AT))} within it, and the budget)")
    parser.add_argument("--finetune-steps", type=int, default=SearchConfig.finetune_steps)
    parser.add_argument("--measure-seconds", type=float, default=MEASURE_SECONDS, help="per latency "
                        "comparison (the search's --measure-seconds; at batch 32 a dense call "
                        "takes about 10 ms here)")
    parser.add_argument("--data", type=Path, default=dense_models.DATA,
                        help="the CIFAR-10 python batches (written from ../shared when missing)")
    parser.add_argument("--out", help="results file (default benchmarks/results/...)")
    parser.add_argument("--keep", type=Path, help="keep the run folders under this folder "
                        "(MODEL-seedN/STRATEGY; it must not hold them already)")
    args = parser.parse_args(argv)
    if not 0 < args.budget_ratio < 1:
        parser.error(f"--budget-ratio {args.budget_ratio:g} is not between 0 and 1 (a share of "
                     f"the dense latency)")
    args.at = readouts(args.budget_ratio, args.at)
    if args.at[-1] > args.budget_ratio:
        parser.error(f"--at {args.at[-1]:g} is over the budget ratio {args.budget_ratio:g}: no "
                     f"front model is that slow")
    args.models = args.models or (["resnet20"] if args.quick else list(MODELS))
    args.seeds = args.seeds or ([0] if args.quick else list(dense_models.SEEDS))
    args.evaluations = args.evaluations or (QUICK["evaluations"] if args.quick else max(ANYTIME))
    if args.keep:  # checked before anything runs: a clash found after an hour loses the hour
        taken = [f"{m}-seed{s}" for m in args.models for s in args.seeds
                 if (args.keep / f"{m}-seed{s}").exists()]
        if taken:
            parser.error(f"--keep {args.keep} already holds {', '.join(taken)}; give an empty "
                         f"or new folder")
    dense_models.ensure_batches(args.data)
    logging.basicConfig(level=logging.WARNING)
    began = time.perf_counter()
    results = []
    for model in args.models:
        for seed in args.seeds:
            if args.keep:  # every strategy's run folder, to look into afterwards
                root = args.keep / f"{model}-seed{seed}"
                root.mkdir(parents=True, exist_ok=False)
                results.append(one_seed(model, seed, args, root))
                continue
            with tempfile.TemporaryDirectory() as tmp:
                results.append(one_seed(model, seed, args, Path(tmp)))
    table = pd.DataFrame([row for r in results for row in r["rows"]])
    numeric = [c for c in table.columns if c not in ("model", "seed", "strategy",
                                                     "to_reach_best_other")]
    mean = table.groupby(["model", "strategy"], sort=False)[numeric].mean().reset_index()
    if "to_reach_best_other" in table:
        mean["to_reach_best_other"] = table.groupby(["model", "strategy"], sort=False)[
            "to_reach_best_other"].agg(lambda s: " ".join(s.dropna())).to_numpy()
    env = fingerprint(torch.device("cpu"), 1)
    stamp = datetime.date.today().isoformat()
    command = f"python benchmarks/cifar10_quality.py {' '.join(sys.argv[1:] if argv is None else argv)}"
    quick = args.finetune_steps if not args.quick else QUICK["finetune_steps"]
    lines = [f"# cifar10_quality, {stamp}, {env['cpu_model']} ({env['cpu_count']} CPUs), torch "
             f"{env['torch']}; CIFAR-10 at {dense_models.IMAGE_SIZE} px, latency at batch 32 on 1 "
             f"thread, budget ratio {args.budget_ratio}, {args.evaluations} evaluations per strategy, "
             f"{quick} + {SearchConfig(budget_ratio=1, finetune_steps=quick).promote_steps} "
             f"fine-tune steps (the second for candidates near the front; ours-one-fidelity: "
             f"{2 * quick}), {QUICK['measure_seconds'] if args.quick else args.measure_seconds} s per "
             f"latency comparison; {time.perf_counter() - began:.0f} s in all",
             f"# {command}",
             "# hv@N: anytime hypervolume after N evaluations (quick-fine-tune accuracy, latency "
             "ratio by each run's own measurement); hv_final and acc@r/test@r: after the final "
             "stage, every front measured again side by side; to_reach_best_other: evaluations "
             "ours needed to reach the best other strategy's hypervolume after all of its "
             "evaluations", ""]
    for result in results:
        row = result["rows"][0]
        lines.append(f"# {row['model']} seed {row['seed']}: dense validation accuracy "
                     f"{result['dense_accuracy']:.4f}, reference accuracy "
                     f"{result['reference']['accuracy']:.4f}; smallest allowed candidate "
                     f"{result['smallest']:.3f} x the dense latency; {_macs_text(result)}")
        lines.append(f"# {row['model']} seed {row['seed']}: {result['judge'].text()}")
    lines += ["", "## mean over seeds", mean.round(4).to_string(index=False), "",
              "## every seed", table.round(4).to_string(index=False), ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick or args.out:
        out = Path(args.out) if args.out else Path(__file__).parent / "results" / (
            f"cifar10_quality-{stamp}-{'-'.join(args.models)}.txt")
        out.write_text(text)
        curves = pd.DataFrame([{"model": r["rows"][0]["model"], "seed": r["rows"][0]["seed"],
                                "strategy": name, "evaluations": k + 1, "hypervolume": hv}
                               for r in results for name, curve in r["curves"].items()
                               for k, hv in enumerate(curve)])
        curves.to_csv(out.with_name(f"{out.stem}-anytime.csv"), index=False)
        table.to_csv(out.with_name(f"{out.stem}-seeds.csv"), index=False)
        fronts = pd.concat([r["fronts"] for r in results], ignore_index=True)
        fronts[FRONT_COLUMNS].to_csv(out.with_name(f"{out.stem}-fronts.csv"), index=False)
        print(f"wrote {out}, {out.stem}-anytime.csv, -seeds.csv and -fronts.csv")
    return table


if __name__ == "__main__":
    main()
