"""The flags of ``python -m search`` and its subcommands. Those of a search (``run``,
``nightly``) are built from :class:`SearchConfig`'s fields (:mod:`search._options`), so the
command line and the API cannot disagree; the other subcommands take their defaults from it."""

from __future__ import annotations

import argparse
import dataclasses
import difflib

from search._config import CONTEXT, GROUPS, OUTPUT, SearchConfig
from search._errors import UsageError
from search._options import flag_of, number, option_of
from search.candidates import SPACES
from search.commands._argparse_internals import Group, actions, subcommands

SUBCOMMANDS = ("run", "nightly", "profile", "pick", "report", "inspect")
# The flags of run and nightly that set no field of SearchConfig (and -q, -v, --debug, which
# every subcommand has).
NOT_FIELDS = ("config", "hours")


RUN_EXAMPLES = [
    ("the default: VGG-16-BN on the bundled digits, half the dense latency",
     "--budget-ratio 0.5"),
    ("your model and checkpoint, 10 ms on the first GPU",
     "--model mymodels:net --checkpoint net.pt --data imagefolder:/data --budget-ms 10 "
     "--device cuda"),
    ("as it is deployed: batch 8, fp16, ONNX Runtime",
     "--budget-ratio 0.5 --device cuda --batch-size 8 --precision fp16 --runtime onnxruntime"),
    ("4 processes on one study; settings from a file", "--config search.toml --workers 4"),
    ("replay a run", "--config results/resnet20-digits-cpu/config.json"),
]
NIGHTLY_EXAMPLES = [("3 hours a night, from cron",
                     "nightly --hours 3 --budget-ms 10 --device cuda")]


def _examples(prog: str, examples: list[tuple[str, str]]) -> str:
    lines = ["examples:"]
    for what, flags in examples:
        lines += [f"  # {what}", f"  {prog} {flags}"]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """Says what is wrong in one line (argparse's default prints the whole usage first), with
    the closest flag for a misspelt one."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}{self._did_you_mean(message)} (see --help)")

    def _did_you_mean(self, message: str) -> str:
        if not message.startswith("unrecognized arguments:"):
            return ""
        flags = sorted({option for parser in (self, *subcommands(self).values())
                        for action in actions(parser) for option in action.option_strings
                        if option.startswith("--")})
        for token in message.split(":", 1)[1].split():
            if token.startswith("--"):
                # Compared without the dashes, which every flag shares.
                names = {flag[2:]: flag for flag in flags}
                close = difflib.get_close_matches(token.split("=", 1)[0][2:], names, n=1,
                                                  cutoff=0.75)
                if close:
                    return f"; did you mean {names[close[0]]}?"
        return ""


def _add_option_flags(parser: argparse.ArgumentParser,
                      names: set[str] | None = None) -> dict[str, Group]:
    """A flag for each of SearchConfig's fields (those in ``names``), in its group, the groups
    in their order; returns the groups by title."""
    fields = [f for f in dataclasses.fields(SearchConfig)
              if option_of(f).flag and (names is None or f.name in names)]
    groups = {title: parser.add_argument_group(title) for title in GROUPS
              if any(option_of(f).group == title for f in fields)}
    for field in fields:
        _add_flag(groups[option_of(field).group], field)
    return groups


def _add_flag(group: Group, field: dataclasses.Field) -> None:
    """The field's flag: ``--name VALUE`` parsed as the field's type; for a boolean, a switch
    (``--name`` when it defaults to False, ``--no-name`` when to True, both when to None)."""
    declared = option_of(field)
    flag, kind = flag_of(field.name), str(field.type)
    help_text = declared.help_text()
    if kind == "bool":
        if field.default:
            group.add_argument(f"--no-{flag[2:]}", dest=field.name, action="store_false",
                               help=help_text)
        else:
            group.add_argument(flag, action="store_true", help=help_text)
        return
    if kind == "bool | None":
        group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
        return
    parse = declared.parse or (int if kind.startswith("int") else
                               number if kind.startswith("float") else None)
    choices = declared.choices
    group.add_argument(flag, type=parse, default=field.default, metavar=declared.metavar,
                       choices=list(choices) if choices is not None else None, help=help_text)


def _add_run_flags(run: argparse.ArgumentParser) -> None:
    """The flags of a search: the same for run and nightly."""
    groups = _add_option_flags(run)
    groups[OUTPUT].add_argument(
        "--config", metavar="FILE",
        help="settings from a TOML file (keys: these flags' names, budget_ratio = 0.5), or a "
             "run folder's config.json to replay that run; flags given here override it")


def _default(name: str) -> object:
    return SearchConfig.__dataclass_fields__[name].default


def build_parser(prog: str = "python -m search") -> argparse.ArgumentParser:
    """The command line's parser; ``prog`` is the name it was called by (``hwprune`` or
    ``python -m search``)."""
    parser = _Parser(prog=prog,
                     description="Hardware-aware pruning search: the Pareto front of accuracy and "
                                 "measured latency. The bare form is 'run'.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="search for the Pareto-optimal pruned models (default)",
                         description="Search per-layer channel allocations; write "
                                     "results/<study>/.",
                         epilog=_examples(prog, RUN_EXAMPLES),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_flags(run)
    nightly = sub.add_parser("nightly", help="resume the study for a time budget and compare "
                                             "with last night (for cron/CI)",
                             description="Resume the study, re-evaluate last night's front, "
                                         "add trials for --hours, append a row to "
                                         "history.csv, and exit 6 when tonight is worse "
                                         "than last night or the device changed.",
                             epilog=_examples(prog, NIGHTLY_EXAMPLES),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_flags(nightly)
    nightly.add_argument("--hours", type=number, required=True, metavar="H",
                         help="time budget for new trials")
    prof = sub.add_parser("profile", help="measure models' latency interleaved, each against the "
                                           "first", description="Latency (median, p90, IQR), MACs, "
                          "params and each model's latency ratio to the first, measured "
                          "interleaved in one process.")
    prof.add_argument("--model", action="append", required=True, metavar="NAME",
                      help="a model name as for run, or a saved pruned model (.json); repeat it")
    _add_option_flags(prof, {"device"} | {f.name for f in dataclasses.fields(SearchConfig)
                                          if option_of(f).group == CONTEXT})
    prof.add_argument("--image-size", type=int, metavar="PX",
                      default=16,
                      help="input size for named models (saved models bring their own)")
    prof.add_argument("--num-classes", type=int, default=10)
    prof.add_argument("--steps", action="store_true",
                      help="measure how each layer kind's latency moves with its width and "
                           "recommend --round-to (one model)")
    prof.add_argument("--measure-seconds", type=number, metavar="S",
                      default=_default("measure_seconds"),
                      help="time cap of the comparison, which stops earlier once its spread is "
                           "tight; with --steps each layer kind's sweep gets 20/3 x this, as a "
                           "search's --round-to auto does (default %(default)s)")
    prof.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pick = sub.add_parser("pick", help="take the best front model under one constraint",
                          description="The best point of a run's Pareto front under one "
                                      "constraint; prints its row, and with --out writes the "
                                      "model (widths JSON + state dict, and ONNX with --onnx).")
    pick.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (results/STUDY-NAME)")
    constraint = pick.add_mutually_exclusive_group(required=True)
    constraint.add_argument("--max-latency-ms", type=number, metavar="X",
                            help="the most accurate model that runs within X ms")
    constraint.add_argument("--min-accuracy", type=number, metavar="A",
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
    insp.add_argument("--data", default=_default("data"),
                      help="the data, as for run: gives the input shape and class count "
                           "(default %(default)s)")
    insp.add_argument("--image-size", type=int, metavar="PX",
                      help="as for run (default: 16 for digits, else the data's own size)")
    insp.add_argument("--space", default=_default("space"),
                      help=f"{SPACES.help()} (default %(default)s)")
    insp.add_argument("--round-to", type=int, default=_default("round_to"), metavar="N",
                      help="kept channels are multiples of N (default %(default)s)")
    insp.add_argument("--trace-timeout", type=number, default=_default("trace_timeout"),
                      metavar="S", help=option_of(SearchConfig.__dataclass_fields__[
                          "trace_timeout"]).help_text())
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
        talk = p.add_mutually_exclusive_group()
        talk.add_argument("-q", "--quiet", action="store_true",
                          help="log warnings and errors only (results are still printed)")
        talk.add_argument("-v", "--verbose", action="store_true",
                          help="log this tool's debug messages too")
    return parser
