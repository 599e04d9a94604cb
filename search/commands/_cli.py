"""``python -m search``: the command line. The only place that prints or configures logging.

Exit codes: 0 done; 1 a bug; 2 bad input; 3 budget unreachable; 4 most of the first trials
failed; 5 disk full or the study's storage failed or is damaged; 6 nightly: tonight's front is
worse than last night's or the device changed; 130 Ctrl-C; 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import select
import signal
import sys
import threading
import traceback

from search._config import SearchConfig
from search._errors import (
    BudgetUnreachable,
    SearchInterrupted,
    StorageFailed,
    Terminated,
    TooManyFailures,
    UsageError,
    raise_terminated,
)
from search.commands._flags import SUBCOMMANDS, build_parser
from search.commands._progress_bars import show_progress


def _profile(args: argparse.Namespace) -> None:
    import json

    from profilers import Context
    from search.commands._profile import profile

    context = Context(batch_size=args.batch_size, precision=args.precision,
                      channels_last=args.channels_last, runtime=args.runtime,
                      cuda_graphs=args.cuda_graphs, threads=args.threads)
    if args.steps:
        _steps(args, context)
        return
    table, about = profile(args.model, device=args.device, context=context,
                           image_size=args.image_size, num_classes=args.num_classes,
                           measure_seconds=args.measure_seconds)
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

    from search.commands._profile import profile_steps

    if len(args.model) != 1:
        raise UsageError("profile --steps measures one --model at a time")
    curves, round_to, about = profile_steps(args.model[0], device=args.device, context=context,
                                            image_size=args.image_size,
                                            num_classes=args.num_classes,
                                            measure_seconds=args.measure_seconds)
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

    from search.commands._pick import pick
    from search.reports import front_table

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
    from search.commands._report import report
    from search.reports import comparison_table
    from search.runfolder import load_run

    runs = [load_run(path) for path in args.run_dirs]  # once: the table reads them too
    paths = report(*runs, out=args.out)
    if len(runs) > 1:
        print(comparison_table(runs).to_string(index=False))
    for path in paths:
        print(f"wrote {path}")


def _inspect(args: argparse.Namespace) -> None:
    import json

    from search.candidates import check_space
    from search.commands._inspect import inspect_model, render

    if args.round_to < 1:
        raise UsageError(f"--round-to must be at least 1, got {args.round_to}")
    if args.trace_timeout < 0:
        raise UsageError(f"--trace-timeout must be 0 (no limit) or more seconds, got "
                         f"{args.trace_timeout}")
    check_space(args.space)
    report = inspect_model(model=args.model, data=args.data, image_size=args.image_size,
                           space=args.space, round_to=args.round_to,
                           trace_timeout=args.trace_timeout)
    print(json.dumps(report, indent=2) if args.json else render(report))


def _nightly(args: argparse.Namespace) -> int:
    from search.flow import REGRESSION_EXIT, nightly

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
    from search.commands._config_file import config_from

    return config_from(args, args.argv)


def _print_front(pareto) -> None:
    from search.reports import front_table

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


_OWN_LOGGERS = ("search", "profilers", "spaces")  # this project's packages


def _prog() -> str:
    """The name this command was called by: ``hwprune``, else ``python -m search``."""
    called = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "hwprune" if called == "hwprune" else "python -m search"


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help"):
        argv = ["run", *argv]
    debug = "--debug" in argv
    # `python -m search` can import a user's pkg.module:factory from the current folder; the
    # hwprune script too.
    here = os.getcwd()
    added = "" not in sys.path and here not in sys.path
    if added:
        sys.path.insert(0, here)
    level = logging.WARNING if {"-q", "--quiet"} & set(argv) else logging.INFO
    # -v: this tool's own debug messages, not those of every library it loads (matplotlib's
    # font search alone is hundreds of lines).
    ours = [logging.getLogger(name) for name in _OWN_LOGGERS] \
        if {"-v", "--verbose"} & set(argv) else []
    root = logging.getLogger()
    handler = show_progress(sys.stderr, logging.Formatter("%(asctime)s %(message)s",
                                                          datefmt="%H:%M:%S"))
    previous = root.level, [logger.level for logger in ours]
    root.addHandler(handler)
    root.setLevel(level)
    for logger in ours:
        logger.setLevel(logging.DEBUG)
    try:
        return _command(argv, debug)
    finally:  # main() in a process of its own or not: its logging goes with it
        if added and here in sys.path:
            sys.path.remove(here)
        root.removeHandler(handler)
        root.setLevel(previous[0])
        for logger, was in zip(ours, previous[1], strict=True):
            logger.setLevel(was)
        handler.close()


def _command(argv: list[str], debug: bool) -> int:
    try:
        parser = build_parser(_prog())
        args = parser.parse_args(argv)
        args.argv = argv  # --config needs to know which flags were given
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
        from search.flow import run

        config = _config(args)
        pareto = run(config).pareto
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
        from search.candidates import is_machine_error, machine_message

        if isinstance(exc, BrokenPipeError) and _stdout_closed():
            return _PIPE_CLOSED

        if is_machine_error(exc):
            return _fail(StorageFailed(machine_message(exc)), StorageFailed.exit_code, debug)
        line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return _fail(RuntimeError(f"unexpected {line} (rerun with --debug for the traceback)"),
                     1, debug)


_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a program whose reader went away


def _stdout_closed() -> bool:
    """Whether stdout's reader went away (``... | head``): then the command stops quietly, and
    stdout is pointed at /dev/null so Python's own flush at exit does not complain again."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLERR)
        gone = bool(poller.poll(0))  # a pipe with no reader left reports an error
    except (AttributeError, OSError, ValueError):  # no poll here, or stdout is not a file
        return False
    if gone:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return gone


def _fail(exc: BaseException, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    # One line whatever the user typed: control characters in echoed values are escaped.
    line = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], str(exc))
    print(f"error: {line}", file=sys.stderr)
    return code
