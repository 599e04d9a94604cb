"""The flags of ``python -m search`` and its subcommands, with their defaults from
:class:`SearchConfig`, so the command line and the API cannot disagree."""

from __future__ import annotations

import argparse
import difflib

from profilers import PRECISIONS, RUNTIMES
from search._config import PROMOTE_FACTOR, SearchConfig
from search._errors import UsageError
from search.backends import BACKENDS, backend_help
from search.candidates import space_help
from search.sources import data_help, model_help
from search.study import SAMPLERS, WARM_STARTS, sampler_help
from spaces import IMPORTANCES

SUBCOMMANDS = ("run", "nightly", "profile", "pick", "report", "inspect")
TRACE_TIMEOUT_HELP = ("seconds torch-pruning may take to build the model's dependency graph "
                      "before the command stops with exit 2; it takes hours on a few models "
                      "(0: no limit; default %(default)s)")


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
        flags = sorted({option for parser in self._parsers() for action in parser._actions
                        for option in action.option_strings if option.startswith("--")})
        for token in message.split(":", 1)[1].split():
            if token.startswith("--"):
                # Compared without the dashes, which every flag shares.
                names = {flag[2:]: flag for flag in flags}
                close = difflib.get_close_matches(token.split("=", 1)[0][2:], names, n=1,
                                                  cutoff=0.75)
                if close:
                    return f"; did you mean {names[close[0]]}?"
        return ""

    def _parsers(self) -> list[argparse.ArgumentParser]:
        """This parser and its subcommands' parsers."""
        subs = [action for action in self._actions
                if isinstance(action, argparse._SubParsersAction)]
        return [self, *(p for action in subs for p in action.choices.values())]


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
    # --help lists the groups in this order (the deployment context's after measurement).
    model = run.add_argument_group("model and data")
    budget = run.add_argument_group("budget (exactly one)")
    search = run.add_argument_group("search")
    finetune = run.add_argument_group("fine-tuning")
    measure = run.add_argument_group("device and measurement")
    _add_context_flags(run)
    parallel = run.add_argument_group("parallel, isolation and storage")
    output = run.add_argument_group("output and replay")
    output.add_argument("--config", metavar="FILE",
                           help="settings from a TOML file (keys: these flags' names, budget_ratio "
                                "= 0.5), or a run folder's config.json to replay that run; flags "
                                "given here override it")
    budget.add_argument("--budget-ms", type=_positive_float, metavar="MS",
                        help="latency budget in milliseconds on --device")
    budget.add_argument("--budget-ratio", type=_positive_float, metavar="R",
                        help="latency budget as a fraction of the dense model's measured latency")
    measure.add_argument("--device", default=d["device"].default, help="cpu, cuda or cuda:N")
    model.add_argument("--model", default=d["model"].default,
                       help=f"{model_help()} (default %(default)s)")
    model.add_argument("--data", default=d["data"].default, help=data_help())
    model.add_argument("--checkpoint", help="state dict of the trained model (weights_only load); "
                                            "without it a dense baseline is trained and cached")
    model.add_argument("--image-size", type=int, metavar="PX",
                       help="resize images to PX x PX (default: 16 for digits, else the data's "
                            "own size)")
    model.add_argument("--data-memory-gb", type=float, metavar="GB",
                       default=d["data_memory_gb"].default,
                       help="an image folder or a dataset from Python that fits in GB once "
                            "decoded is held in memory; a larger one is streamed from disk in "
                            "batches (default %(default)s; 0 streams all)")
    model.add_argument("--data-workers", type=int, metavar="N",
                       help="DataLoader processes that decode streamed data (default: one per "
                            "core beyond the first, at most 4; 0: in the search's process)")
    search.add_argument("--space", default=d["space"].default,
                        help=f"{space_help()} (default %(default)s)")
    search.add_argument("--importance", default=d["importance"].default,
                        choices=(*IMPORTANCES, "search"),
                        help="which channels a group keeps: the largest by L2 or L1 magnitude, by "
                             "batch-norm scale, by first-order Taylor score (gradients of 2 training "
                             "batches), random (a baseline), or search: the sampler chooses among "
                             "l2, l1, bn and taylor per trial (default %(default)s)")
    search.add_argument("--trials", type=int, default=d["trials"].default,
                        help="trials to add in this run (default %(default)s)")
    search.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                        help="stop starting trials after this long")
    search.add_argument("--trial-timeout", type=_positive_float, metavar="SECONDS",
                        help="a candidate still fine-tuning after this long is recorded as failed "
                             "and the search goes on")
    parallel.add_argument("--workers", type=int, default=1, metavar="N",
                          help="N processes on the same study on this machine; with --backend ray, "
                               "N Ray trials at a time (default 1)")
    parallel.add_argument("--backend", default=d["backend"].default, choices=list(BACKENDS),
                          help=f"{backend_help()} (default %(default)s)")
    parallel.add_argument("--ray-address", metavar="ADDR",
                          help="with --backend ray: the cluster to join ('auto' or HOST:PORT; "
                               "default: start a local Ray instance)")
    parallel.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                          help="score each trial in a worker process, so a candidate that crashes or "
                               "poisons CUDA ends the worker, not the search (default: on CUDA only)")
    search.add_argument("--sampler", default=d["sampler"].default, choices=list(SAMPLERS),
                        help=sampler_help())
    search.add_argument("--warm-start", default=d["warm_start"].default, choices=list(WARM_STARTS),
                        help="the candidates a new study starts with: "
                             + "; ".join(f"{k}: {v}" for k, v in WARM_STARTS.items())
                             + " (default %(default)s)")
    search.add_argument("--max-accuracy-drop", type=_positive_float, metavar="POINTS",
                        help="steer the sampler away from candidates whose quick fine-tune leaves "
                             "them more than POINTS percentage points below the dense model's "
                             "validation accuracy (they are still recorded, and may still be on "
                             "the front); default: no floor")
    measure.add_argument("--no-latency-cache", dest="latency_cache", action="store_false",
                         help="measure every candidate, even ones an earlier run measured here")
    finetune.add_argument("--finetune-steps", type=int, default=d["finetune_steps"].default,
                          help="SGD steps of each candidate's quick fine-tune (default %(default)s)")
    finetune.add_argument("--promote-steps", type=int, default=d["promote_steps"].default, metavar="N",
                          help="a candidate whose quick fine-tune puts it on the front found so far "
                               "(within --promote-margin) is fine-tuned N steps more and scored "
                               "again; 0: every candidate gets the quick fine-tune only "
                               f"(default {PROMOTE_FACTOR} x --finetune-steps)")
    finetune.add_argument("--promote-margin", type=float, default=d["promote_margin"].default,
                          metavar="M",
                          help="how much better (in the score's units; accuracy: 0.02 is two "
                               "points) an earlier candidate at most as slow must have scored "
                               "after its quick fine-tune to keep a candidate from the longer one; "
                               "never less than one validation image (default %(default)s)")
    finetune.add_argument("--distill", action="store_true",
                          help="fine-tunes also learn the dense model's outputs (knowledge "
                               "distillation: cross-entropy plus soft targets at T=4); each step "
                               "costs a dense forward pass more")
    finetune.add_argument("--final-finetune-steps", type=int,
                          default=d["final_finetune_steps"].default, metavar="N",
                          help="at the end, the front's models get N more steps and are scored "
                               "again; 0 skips it (default %(default)s)")
    finetune.add_argument("--final-layers", type=int, default=d["final_layers"].default,
                          metavar="N",
                          help="the final stage takes the front and the N-1 fronts behind it (the "
                               "near misses of the quick fine-tune, which ranks candidates of one "
                               "size poorly); the final front is chosen from all of them after "
                               "it; 1: the front only (default %(default)s)")
    measure.add_argument("--measure-seconds", type=_positive_float,
                         default=d["measure_seconds"].default, metavar="S",
                         help="time cap of one latency comparison (a candidate against the dense "
                              "model), which stops earlier once its spread is tight and always runs "
                              "15 rounds; the dense reference and the final re-measurement get 3x "
                              "(default %(default)s)")
    search.add_argument("--round-to", type=_round_to, default=d["round_to"].default,
                        help="kept channels are multiples of this, or 'auto': the multiple the "
                             "device's measured width steps recommend (default %(default)s)")
    search.add_argument("--trace-timeout", type=_positive_float,
                        default=d["trace_timeout"].default, metavar="S",
                        help=TRACE_TIMEOUT_HELP)
    parallel.add_argument("--storage",
                          help="Optuna storage URL, e.g. postgresql://... (default: the journal "
                               "file study.journal in the run folder)")
    parallel.add_argument("--study-name", help="resumes the study of that name (default "
                                               "MODEL-DATA-DEVICE)")
    search.add_argument("--seed", type=int, default=d["seed"].default)
    output.add_argument("--out", help="run folder (default results/STUDY-NAME)")


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
    prof.add_argument("--measure-seconds", type=_positive_float, metavar="S",
                      default=SearchConfig.__dataclass_fields__["measure_seconds"].default,
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
    insp.add_argument("--space", default="per-layer", help=space_help())
    insp.add_argument("--round-to", type=int, default=8, metavar="N",
                      help="kept channels are multiples of N (default %(default)s)")
    insp.add_argument("--trace-timeout", type=_positive_float,
                      default=SearchConfig.__dataclass_fields__["trace_timeout"].default,
                      metavar="S", help=TRACE_TIMEOUT_HELP)
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
    group.add_argument("--runtime", default=d["runtime"].default, choices=list(RUNTIMES),
                       help="; ".join(f"{name}: {r.help}" for name, r in RUNTIMES.items())
                            + " (default %(default)s)")
    group.add_argument("--cuda-graphs", action="store_true",
                       help="replay each model as a CUDA graph (CUDA only)")
