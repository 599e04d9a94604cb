"""``python -m search``: the command line. The only place that prints or configures logging.

Exit codes: 0 done; 1 a bug; 2 bad input; 3 budget unreachable; 4 most of the first trials
failed; 5 disk full or the study's storage failed or is damaged; 6 nightly: tonight's front is
worse than last night's or the device changed; 130 Ctrl-C; 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
import traceback

from profilers import PRECISIONS, RUNTIMES
from search._config import BACKENDS, SAMPLERS, SPACES, SearchConfig
from search._errors import (
    BudgetUnreachable,
    SearchInterrupted,
    StorageFailed,
    Terminated,
    TooManyFailures,
    UsageError,
    raise_terminated,
)
from spaces import IMPORTANCES

_SUBCOMMANDS = ("run", "nightly", "profile", "pick", "report", "inspect")


class _Parser(argparse.ArgumentParser):
    """Says what is wrong in one line (argparse's default prints the whole usage first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _round_to(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of channels or 'auto', "
                                         f"got {text!r}") from None


def _add_run_flags(run: argparse.ArgumentParser) -> None:
    """The flags of a search: the same for run and nightly."""
    d = SearchConfig.__dataclass_fields__
    budget = run.add_argument_group("budget (exactly one)")
    budget.add_argument("--budget-ms", type=_positive_float, metavar="MS",
                        help="latency budget in milliseconds on --device")
    budget.add_argument("--budget-ratio", type=_positive_float, metavar="R",
                        help="latency budget as a fraction of the dense model's measured latency")
    run.add_argument("--device", default=d["device"].default, help="cpu, cuda or cuda:N")
    run.add_argument("--model", default=d["model"].default,
                     help="vgg16_bn|resnet20|resnet32|resnet56|mobilenetv2, torchvision:NAME, "
                          "timm:NAME or pkg.module:factory (default %(default)s)")
    run.add_argument("--data", default=d["data"].default,
                     help="digits (default; offline), cifar10:PATH (the python batches), "
                          "imagefolder:PATH (CLASS/IMAGE files, optionally under train/ val/ "
                          "test/) or pkg.module:function returning (train, val[, test])")
    run.add_argument("--checkpoint", help="state dict of the trained model (weights_only load); "
                                          "without it a dense baseline is trained and cached")
    run.add_argument("--image-size", type=int, metavar="PX",
                     help="resize images to PX x PX (default: 16 for digits, else the data's "
                          "own size)")
    run.add_argument("--space", default=d["space"].default,
                     help="per-layer (one keep fraction per group), per-stage (one per output "
                          "resolution), uniform (one for all), or a spaces file PATH.toml "
                          "(default %(default)s)")
    run.add_argument("--importance", default=d["importance"].default,
                     choices=(*IMPORTANCES, "search"),
                     help="which channels a group keeps: the largest by L2 or L1 magnitude, by "
                          "batch-norm scale, by first-order Taylor score (gradients of 2 training "
                          "batches), random (a baseline), or search: the sampler chooses among "
                          "l2, l1, bn and taylor per trial (default %(default)s)")
    run.add_argument("--trials", type=int, default=d["trials"].default,
                     help="trials to add in this run (default %(default)s)")
    run.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                     help="stop starting trials after this long")
    run.add_argument("--trial-timeout", type=_positive_float, metavar="SECONDS",
                     help="a candidate still fine-tuning after this long is recorded as failed "
                          "and the search goes on")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="N processes on the same study on this machine; with --backend ray, "
                          "N Ray trials at a time (default 1)")
    run.add_argument("--backend", default=d["backend"].default, choices=BACKENDS,
                     help="local: trials in this process (and --workers helpers); ray: trials "
                          "as Ray Tune trials (pip install 'hwprune[ray]') (default %(default)s)")
    run.add_argument("--ray-address", metavar="ADDR",
                     help="with --backend ray: the cluster to join ('auto' or HOST:PORT; "
                          "default: start a local Ray instance)")
    run.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                     help="score each trial in a worker process, so a candidate that crashes or "
                          "poisons CUDA ends the worker, not the search (default: on CUDA only)")
    run.add_argument("--sampler", default=d["sampler"].default, choices=SAMPLERS)
    _add_context_flags(run)
    run.add_argument("--no-latency-cache", dest="latency_cache", action="store_false",
                     help="measure every candidate, even ones an earlier run measured here")
    run.add_argument("--finetune-steps", type=int, default=d["finetune_steps"].default,
                     help="SGD steps of each candidate's quick fine-tune (default %(default)s)")
    run.add_argument("--final-finetune-steps", type=int,
                     default=d["final_finetune_steps"].default, metavar="N",
                     help="at the end, the front's models get N more steps and are scored "
                          "again; 0 skips it (default %(default)s)")
    run.add_argument("--round-to", type=_round_to, default=d["round_to"].default,
                     help="kept channels are multiples of this, or 'auto': the multiple the "
                          "device's measured width steps recommend (default %(default)s)")
    run.add_argument("--storage",
                     help="Optuna storage URL, e.g. postgresql://... (default: the journal "
                          "file study.journal in the run folder)")
    run.add_argument("--study-name", help="resumes the study of that name (default "
                                          "MODEL-DATA-DEVICE)")
    run.add_argument("--seed", type=int, default=d["seed"].default)
    run.add_argument("--out", help="run folder (default results/STUDY-NAME)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m search",
                     description="Hardware-aware pruning search: the Pareto front of accuracy and "
                                 "measured latency. The bare form is 'run'.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="search for the Pareto-optimal pruned models (default)",
                         description="Search per-layer channel allocations; write results/<study>/.")
    _add_run_flags(run)
    nightly = sub.add_parser("nightly", help="resume the study for a time budget and compare "
                                             "with last night (for cron/CI)",
                             description="Resume the study, re-evaluate last night's front, "
                                         "add trials for --hours, append a row to "
                                         "history.csv, and exit 6 when tonight is worse "
                                         "than last night or the device changed.")
    _add_run_flags(nightly)
    nightly.add_argument("--hours", type=_positive_float, required=True, metavar="H",
                         help="time budget for new trials")
    prof = sub.add_parser("profile", help="measure models' latency interleaved, each against the "
                                           "first", description="Latency (median, p90, IQR), MACs, "
                          "params and each model's latency ratio to the first, measured "
                          "interleaved in one process.")
    prof.add_argument("--model", action="append", required=True, metavar="NAME",
                      help="a model name as for run, or a saved pruned model (.json); repeat it")
    prof.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    _add_context_flags(prof)
    prof.add_argument("--image-size", type=int, metavar="PX",
                      default=16,
                      help="input size for named models (saved models bring their own)")
    prof.add_argument("--num-classes", type=int, default=10)
    prof.add_argument("--steps", action="store_true",
                      help="measure how each layer kind's latency moves with its width and "
                           "recommend --round-to (one model)")
    prof.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pick = sub.add_parser("pick", help="take the best front model under one constraint",
                          description="The best point of a run's Pareto front under one "
                                      "constraint; prints its row, and with --out writes the "
                                      "model (widths JSON + state dict, and ONNX with --onnx).")
    pick.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (results/STUDY-NAME)")
    constraint = pick.add_mutually_exclusive_group(required=True)
    constraint.add_argument("--max-latency-ms", type=_positive_float, metavar="X",
                            help="the most accurate model that runs within X ms")
    constraint.add_argument("--min-accuracy", type=_positive_float, metavar="A",
                            help="the fastest model with at least this validation accuracy "
                                 "(0.975 or 97.5)")
    pick.add_argument("--out", metavar="DIR", help="write model.json + model.pt here")
    pick.add_argument("--onnx", action="store_true",
                      help="also write model.onnx, checked with ONNX Runtime against PyTorch on "
                           "the test split, and measure it against eager (needs --out)")
    insp = sub.add_parser("inspect", help="what a search would prune in a model, and why not "
                                           "the rest", description="The channel groups of a model "
                          "with their widths, allowed widths and coupled layers; groups left dense "
                          "and why; free parameters and modules torch-pruning cannot follow; the "
                          "dense and smallest candidates' MACs and params. Takes seconds.")
    insp.add_argument("--model", required=True, help="a model name as for run")
    insp.add_argument("--data", default=SearchConfig.__dataclass_fields__["data"].default,
                      help="the data, as for run: gives the input shape and class count "
                           "(default %(default)s)")
    insp.add_argument("--image-size", type=int, metavar="PX",
                      help="as for run (default: 16 for digits, else the data's own size)")
    insp.add_argument("--space", default="per-layer",
                      help="per-layer, per-stage, uniform or a spaces file PATH.toml")
    insp.add_argument("--round-to", type=int, default=8, metavar="N",
                      help="kept channels are multiples of N (default %(default)s)")
    insp.add_argument("--json", action="store_true", help="print JSON instead of text")
    report = sub.add_parser("report", help="rebuild a run's reports, or compare several runs",
                            description="With one run folder: rewrite its report.md, pareto.png "
                                        "and report.html (also while the search is going). With "
                                        "several: one page comparing their fronts.")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run folders (results/STUDY-NAME)")
    report.add_argument("--out", metavar="FILE",
                        help="where the comparison page goes (several runs; default "
                             "compare.html here)")
    for p in (parser, run, nightly, prof, pick, report, insp):
        p.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _add_context_flags(parser: argparse.ArgumentParser) -> None:
    """The deployment context latency is measured in: the same flags for run and profile."""
    d = SearchConfig.__dataclass_fields__
    group = parser.add_argument_group("deployment context (what latency is measured in)")
    group.add_argument("--batch-size", type=int, default=d["batch_size"].default,
                       help="samples per call (default %(default)s)")
    group.add_argument("--threads", type=int, default=d["threads"].default,
                       help="CPU threads for inference (default %(default)s)")
    group.add_argument("--precision", default=d["precision"].default, choices=PRECISIONS,
                       help="fp16/bf16 on CUDA only (default %(default)s)")
    group.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    group.add_argument("--runtime", default=d["runtime"].default, choices=RUNTIMES,
                       help="eager, torch.compile, or ONNX Runtime (pip install 'hwprune[onnx]') "
                            "(default %(default)s)")
    group.add_argument("--cuda-graphs", action="store_true",
                       help="replay each model as a CUDA graph (CUDA only)")


def _profile(args: argparse.Namespace) -> None:
    import json

    from profilers import Context
    from search._profile import profile

    context = Context(batch_size=args.batch_size, precision=args.precision,
                      channels_last=args.channels_last, runtime=args.runtime,
                      cuda_graphs=args.cuda_graphs, threads=args.threads)
    if args.steps:
        _steps(args, context)
        return
    table, about = profile(args.model, device=args.device, context=context,
                           image_size=args.image_size, num_classes=args.num_classes)
    if args.json:
        print(json.dumps({"context": about, "models": table.to_dict(orient="records")},
                         indent=2))
        return
    print(f"{about['device']}, {about['context']}, input {about['input_shape']}, "
          f"{about['rounds']} interleaved rounds"
          + ("" if about["stable"] else " (spread above 10%: treat with care)")
          + (f"; GPU clocks slowed: {', '.join(about['gpu_slowdowns'])}"
             if about["gpu_slowdowns"] else ""))
    shown = table.assign(MMACs=table["macs"] / 1e6).drop(columns="macs")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _steps(args: argparse.Namespace, context) -> None:
    import json

    from search._profile import profile_steps

    if len(args.model) != 1:
        raise UsageError("profile --steps measures one --model at a time")
    curves, round_to, about = profile_steps(args.model[0], device=args.device, context=context,
                                            image_size=args.image_size,
                                            num_classes=args.num_classes)
    if args.json:
        print(json.dumps({"context": about, "round_to": round_to,
                          "curves": [c.to_dict() for c in curves]}, indent=2))
        return
    print(f"{args.model[0]} on {about['device']}, {about['context']}: latency against output "
          f"channels, per layer kind")
    for c in curves:
        waste = "  ".join(f"x{a}: {100 * w:.1f}%" for a, w in c.waste.items())
        print(f"- {c.kind} ({100 * c.macs_share:.0f}% of MACs; swept {c.layer} at widths "
              f"{c.widths[0]}..{c.widths[-1]}, {c.latency_ms[0]:.3f}..{c.latency_ms[-1]:.3f} ms)"
              f"{'  flat: its width barely changes latency' if c.flat else ''}")
        print(f"    channels given away by widths that are multiples of: {waste}  -> "
              f"{c.recommended}")
    print(f"recommended: --round-to {round_to} (or --round-to auto, which measures this)")


def _pick(args: argparse.Namespace) -> None:
    import pandas as pd

    from search._pick import pick
    from search._report import front_table

    row, done = pick(args.run_dir, max_latency_ms=args.max_latency_ms,
                     min_accuracy=args.min_accuracy, out=args.out, onnx=args.onnx)
    print(front_table(pd.DataFrame([row])).to_string(index=False))
    if "model" in done:
        print(f"wrote {done['model']} (+ model.pt)")
    if "onnx" in done:
        print(f"wrote {done['onnx']}: outputs match PyTorch on {done['onnx_test_inputs']} test "
              f"inputs within {done['onnx_tolerance']} (max abs diff "
              f"{done['onnx_max_abs_diff']:.1e}; same prediction on "
              f"{100 * done['onnx_same_predictions']:.1f}%)")
        print(f"latency on this CPU, batch 1, 1 thread: eager {done['eager_cpu_ms']:.3f} ms, "
              f"ONNX Runtime {done['onnxruntime_cpu_ms']:.3f} ms")


def _report(args: argparse.Namespace) -> None:
    from pathlib import Path

    from search._report import write_reports
    from search._report_html import comparison_table, write_comparison_html
    from search._runs import load_run

    runs = [load_run(path) for path in args.run_dirs]
    if len(runs) == 1:
        if args.out:
            raise UsageError("--out names the page comparing several runs; one run's reports "
                             "are written into its folder")
        for path in write_reports(runs[0]):
            print(f"wrote {path}")
        return
    for run in runs:
        if not run.reference.get("budget_ms"):
            raise UsageError(f"{run.path}: the search has not measured its dense reference yet; "
                             f"leave it out of the comparison")
    out = Path(args.out or "compare.html")
    write_comparison_html(out, runs)
    print(comparison_table(runs).to_string(index=False))
    print(f"wrote {out}")


def _inspect(args: argparse.Namespace) -> None:
    import json

    from search._inspect import inspect_model, render

    if args.round_to < 1:
        raise UsageError(f"--round-to must be at least 1, got {args.round_to}")
    if args.space not in SPACES and not args.space.endswith(".toml"):
        raise UsageError(f"unknown --space {args.space!r}; valid: {', '.join(SPACES)}, or a "
                         f"spaces file PATH.toml")
    report = inspect_model(model=args.model, data=args.data, image_size=args.image_size,
                           space=args.space, round_to=args.round_to)
    print(json.dumps(report, indent=2) if args.json else render(report))


def _nightly(args: argparse.Namespace) -> int:
    from search._nightly import REGRESSION_EXIT, nightly

    config = _config(args)
    night = nightly(config, args.hours)
    print(f"\nPareto front ({len(night.pareto)} models) in {config.run_dir}:")
    _print_front(night.pareto)
    row = night.row
    print(f"history.csv: {row['trials']} trials, hypervolume {row['hypervolume']:.4g}, "
          f"fingerprint {row['fingerprint']}")
    for problem in night.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return REGRESSION_EXIT if night.problems else 0


def _config(args: argparse.Namespace) -> SearchConfig:
    fields = SearchConfig.__dataclass_fields__
    return SearchConfig(**{k: v for k, v in vars(args).items() if k in fields})


def _print_front(pareto) -> None:
    from search._report import front_table

    if len(pareto):
        print(front_table(pareto).to_string(index=False))
    else:
        print("no feasible trial yet: raise the budget or add trials")


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    # SIGTERM (a scheduler, `kill`) stops the search as Ctrl-C does: results written, exit 143.
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*_SUBCOMMANDS, "-h", "--help"):
        argv = ["run", *argv]
    debug = "--debug" in argv
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "profile":
            _profile(args)
            return 0
        if args.command == "pick":
            _pick(args)
            return 0
        if args.command == "report":
            _report(args)
            return 0
        if args.command == "inspect":
            _inspect(args)
            return 0
        if args.command == "nightly":
            return _nightly(args)
        from search._run import run

        config = _config(args)
        pareto = run(config)
        print(f"\nPareto front ({len(pareto)} models) in {config.run_dir}:")
        _print_front(pareto)
        return 0
    except (UsageError, BudgetUnreachable, TooManyFailures, StorageFailed) as exc:
        return _fail(exc, exc.exit_code, debug)
    except SearchInterrupted as exc:
        print("interrupted: finished trials and the partial front were written", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # outside a search: nothing to write
        print("interrupted", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:  # the last line of defence: one line, traceback only with --debug
        from search._faults import is_machine_error, machine_message

        if is_machine_error(exc):
            return _fail(StorageFailed(machine_message(exc)), StorageFailed.exit_code, debug)
        line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return _fail(RuntimeError(f"unexpected {line} (rerun with --debug for the traceback)"),
                     1, debug)


def _fail(exc: BaseException, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    # One line whatever the user typed: control characters in echoed values are escaped.
    line = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], str(exc))
    print(f"error: {line}", file=sys.stderr)
    return code
