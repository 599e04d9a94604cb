"""The resolved configuration of a search: one dataclass, validated once, saved with every run.

Every option is declared here once, as a field with its help, group, checks and place in the
study's identity (:mod:`search._options`); the command line, ``--config`` files, ``config.json``
replay and the CLI reference are built from these fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from profilers import MEASURE_SECONDS, PRECISIONS, RUNTIMES, Context
from search._errors import UsageError
from search._options import (
    at_least,
    before_identity,
    check_options,
    identity_fields,
    in_unit_interval,
    number,
    option,
    positive,
)
from search._registry import Registry
from search.backends import BACKENDS
from search.candidates import IMPORTANCE_CHOICES, SPACES, TRACE_TIMEOUT_S, check_space
from search.runfolder import JOURNAL, LEGACY_SQLITE
from search.sources import DATA, MODELS, Streaming, checkpoint_digest
from search.study import SAMPLERS, WARM_STARTS, StudyKey

# The default second fidelity's steps, as a multiple of the first's (--finetune-steps): measured
# on CIFAR-10 at 10 and 40 (docs/benchmarks/cifar10-history.md).
PROMOTE_FACTOR = 4
# How much better (in the score's units) an earlier candidate at most as slow must have scored
# after the quick fine-tune to keep a candidate from the second: about the quick score's own
# seed-to-seed spread on CIFAR-10 (docs/benchmarks/cifar10-history.md).
PROMOTE_MARGIN = 0.02
# --trials for a run that a timeout ends instead (the nightly): more than any night runs.
UNLIMITED_TRIALS = 10**6
# --runtime: the profilers package's runtimes, as a registry of the command line's.
RUNTIME_CHOICES = Registry("--runtime", RUNTIMES)

# The --help groups, in the order --help lists them.
MODEL = "model and data"
BUDGET = "budget (exactly one)"
SEARCH = "search"
FINETUNE = "fine-tuning"
MEASURE = "device and measurement"
CONTEXT = "deployment context (what latency is measured in)"
PARALLEL = "parallel, isolation and storage"
OUTPUT = "output and replay"
GROUPS = (MODEL, BUDGET, SEARCH, FINETUNE, MEASURE, CONTEXT, PARALLEL, OUTPUT)

_AT_LEAST_ONE = (at_least(1), "must be at least 1")
_NONE_OR_MORE = (at_least(0), "must be 0 or more")
_SECONDS = (lambda value: value > 0, "must be a positive number of seconds")


def _round_to(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of channels or 'auto', "
                                         f"got {text!r}") from None


@dataclass(frozen=True)
class SearchConfig:
    """Everything a search needs; every field has a CLI flag of the same name (``--budget-ms``).

    Exactly one of ``budget_ms`` and ``budget_ratio`` is given. Errors name the flag to fix.

    ``promote_steps`` left at None becomes ``PROMOTE_FACTOR`` (4) x ``finetune_steps`` when the
    config is made, and is a number from then on: ``dataclasses.replace`` keeps that number, so
    pass ``promote_steps=None`` with a new ``finetune_steps`` to have it follow.

    Example:
        >>> SearchConfig(budget_ratio=0.6).study
        'vgg16_bn-digits-cpu'
        >>> config = SearchConfig(budget_ratio=0.6)
        >>> config.finetune_steps, config.promote_steps
        (10, 40)
        >>> from dataclasses import replace
        >>> replace(config, finetune_steps=5).promote_steps
        40
        >>> replace(config, finetune_steps=5, promote_steps=None).promote_steps
        20
    """

    budget_ms: float | None = option(
        None, group=BUDGET, metavar="MS", parse=number,
        checks=[(positive, "must be a positive number of milliseconds")],
        help="latency budget in milliseconds on --device")
    budget_ratio: float | None = option(
        None, group=BUDGET, metavar="R", parse=number, checks=[(in_unit_interval, "must lie in (0, 1]")],
        help="latency budget as a fraction of the dense model's measured latency")

    model: str = option(
        "vgg16_bn", group=MODEL, identity=True,
        help=lambda: f"{MODELS.help()} (default %(default)s)")
    data: str = option("digits", group=MODEL, identity=True, help=DATA.help)
    checkpoint: str | None = option(
        None, group=MODEL, identity=True,
        help="state dict of the trained model (weights_only load); without it a dense baseline "
             "is trained and cached")
    image_size: int | None = option(
        None, group=MODEL, identity=True, metavar="PX",
        checks=[(at_least(8), "must be at least 8 pixels")],
        help="resize images to PX x PX (default: 16 for digits and digit-sums, else the data's "
             "own size)")
    data_memory_gb: float = option(
        2.0, group=MODEL, metavar="GB", checks=[(at_least(0), "must be 0 (stream all) or more GB")],
        help="an image folder or a dataset from Python that fits in GB once decoded is held in "
             "memory; a larger one is streamed from disk in batches (default %(default)s; 0 "
             "streams all)")
    data_workers: int | None = option(
        None, group=MODEL, metavar="N",
        checks=[(at_least(0), "must be 0 (read in the search's process) or more")],
        help="DataLoader processes that decode streamed data (default: one per core beyond the "
             "first, at most 4; 0: in the search's process)")

    space: str = option(
        "per-layer", group=SEARCH, identity=True,
        help=lambda: f"{SPACES.help()} (default %(default)s)")
    importance: str = option(
        "l2", group=SEARCH, identity=True, choices=IMPORTANCE_CHOICES,
        help=lambda: f"which channels a group keeps: {IMPORTANCE_CHOICES.help()} "
                     f"(default %(default)s)")
    trials: int = option(40, group=SEARCH, checks=[_AT_LEAST_ONE],
                         help="trials to add in this run (default %(default)s)")
    timeout: float | None = option(
        None, group=SEARCH, metavar="SECONDS", parse=number, checks=[_SECONDS],
        help="stop starting trials after this long")
    trial_timeout: float | None = option(
        None, group=SEARCH, metavar="SECONDS", parse=number, checks=[_SECONDS],
        help="a candidate still fine-tuning after this long is recorded as failed and the "
             "search goes on")
    sampler: str = option("gaps", group=SEARCH, choices=SAMPLERS, help=SAMPLERS.help)
    warm_start: str = option(
        "aimed", group=SEARCH, choices=WARM_STARTS,
        help=lambda: f"the candidates a new study starts with: {WARM_STARTS.help()} (default "
                     f"%(default)s)")
    max_accuracy_drop: float | None = option(
        None, group=SEARCH, metavar="POINTS", parse=number,
        checks=[(lambda v: 0 < v <= 100, "must be percentage points in (0, 100]")],
        help="steer the sampler away from candidates whose quick fine-tune leaves them more "
             "than POINTS percentage points below the dense model's validation accuracy (they "
             "are still recorded, and may still be on the front); default: no floor")
    round_to: int | str = option(
        8, group=SEARCH, identity=True, parse=_round_to,
        checks=[(lambda v: v == "auto" or isinstance(v, int),
                 "must be a number of channels or 'auto'"),
                (lambda v: v == "auto" or v >= 1, "must be at least 1")],
        help="kept channels are multiples of this, or 'auto': the multiple the device's "
             "measured width steps recommend (default %(default)s)")
    trace_timeout: float = option(
        TRACE_TIMEOUT_S, group=SEARCH, metavar="S", parse=number,
        checks=[(lambda v: v >= 0, "must be 0 (no limit) or more seconds")],
        help="seconds torch-pruning may take to build the model's dependency graph before the "
             "command stops with exit 2; it takes hours on a few models (0: no limit; default "
             "%(default)s)")
    seed: int = option(0, group=SEARCH, identity=True,
                       help="seeds the sampler, the data's splits and the fine-tunes "
                            "(default %(default)s)")

    finetune_steps: int = option(
        10, group=FINETUNE, identity=True, before=20, checks=[_NONE_OR_MORE],
        help="SGD steps of each candidate's quick fine-tune (default %(default)s)")
    promote_steps: int | None = option(  # None: PROMOTE_FACTOR x finetune_steps
        None, group=FINETUNE, identity=True, before=0, metavar="N",
        checks=[(at_least(0), "must be 0 (none) or more")],
        help="a candidate whose quick fine-tune puts it on the front found so far (within "
             "--promote-margin) is fine-tuned N steps more and scored again; 0: every candidate "
             f"gets the quick fine-tune only (default {PROMOTE_FACTOR} x --finetune-steps)")
    promote_margin: float = option(
        PROMOTE_MARGIN, group=FINETUNE, identity=True, before=0.0, metavar="M", parse=number,
        checks=[(at_least(0), "must be 0 or more (in the score's units)")],
        help="how much better (in the score's units; accuracy: 0.02 is two points) an earlier "
             "candidate at most as slow must have scored after its quick fine-tune to keep a "
             "candidate from the longer one; never less than one validation image (default "
             "%(default)s)")
    finetune_lr: float = option(
        0.02, group=FINETUNE, identity=True, metavar="LR", parse=number,
        checks=[(positive, "must be a positive learning rate")],
        help="peak learning rate of the candidates' fine-tunes, cosine to zero (default "
             "%(default)s)")
    distill: bool = option(
        False, group=FINETUNE, identity=True,
        help="fine-tunes also learn the dense model's outputs (knowledge distillation: "
             "cross-entropy plus soft targets at T=4); each step costs a dense forward pass more")
    final_finetune_steps: int = option(
        100, group=FINETUNE, metavar="N", checks=[_NONE_OR_MORE],
        help="at the end, the front's models get N more steps and are scored again; 0 skips it "
             "(default %(default)s)")
    final_layers: int = option(
        2, group=FINETUNE, metavar="N", checks=[(at_least(1), "must be 1 (the front only) or more")],
        help="the final stage takes the front and the N-1 fronts behind it (the near misses of "
             "the quick fine-tune, which ranks candidates of one size poorly); the final front is "
             "chosen from all of them after it; 1: the front only (default %(default)s)")

    device: str = option("cpu", group=MEASURE, identity=True, help="cpu, cuda or cuda:N")
    latency_cache: bool = option(
        True, group=MEASURE,
        help="measure every candidate, even ones an earlier run measured here")
    measure_seconds: float = option(
        MEASURE_SECONDS, group=MEASURE, metavar="S", parse=number,
        checks=[(positive, "must be a positive number of seconds")],
        help="time cap of one latency comparison (a candidate against the dense model), which "
             "stops earlier once its spread is tight and always runs 15 rounds; the dense "
             "reference and the final re-measurement get 3x (default %(default)s)")

    batch_size: int = option(1, group=CONTEXT, identity=True, checks=[_AT_LEAST_ONE],
                             help="samples per call (default %(default)s)")
    threads: int = option(1, group=CONTEXT, identity=True, checks=[_AT_LEAST_ONE],
                          help="CPU threads for inference (default %(default)s)")
    precision: str = option("fp32", group=CONTEXT, identity=True, choices=tuple(PRECISIONS),
                            help="fp16/bf16 on CUDA only (default %(default)s)")
    channels_last: bool = option(False, group=CONTEXT, identity=True, help="NHWC memory format")
    runtime: str = option(
        "eager", group=CONTEXT, identity=True, choices=RUNTIME_CHOICES,
        help=lambda: f"{RUNTIME_CHOICES.help()} (default %(default)s)")
    cuda_graphs: bool = option(False, group=CONTEXT, identity=True,
                               help="replay each model as a CUDA graph (CUDA only)")

    workers: int = option(
        1, group=PARALLEL, metavar="N", checks=[_AT_LEAST_ONE],
        help="N processes on the same study on this machine; with --backend ray, N Ray trials "
             "at a time (default %(default)s)")
    backend: str = option("local", group=PARALLEL, choices=BACKENDS,
                          help=lambda: f"{BACKENDS.help()} (default %(default)s)")
    ray_address: str | None = option(
        None, group=PARALLEL, metavar="ADDR",
        help="with --backend ray: the cluster to join ('auto' or HOST:PORT; default: start a "
             "local Ray instance)")
    isolate: bool | None = option(
        None, group=PARALLEL,
        help="score each trial in a worker process, so a candidate that crashes or poisons CUDA "
             "ends the worker, not the search (default: on CUDA only)")
    storage: str | None = option(
        None, group=PARALLEL,
        help="Optuna storage URL, e.g. postgresql://... (default: the journal file "
             "study.journal in the run folder)")
    study_name: str | None = option(
        None, group=PARALLEL,
        checks=[(lambda v: re.fullmatch(r"[\w.-]+", v) is not None,
                 "must be letters, digits, '.', '_' and '-'")],
        help="resumes the study of that name (default MODEL-DATA-DEVICE)")

    out: str | None = option(None, group=OUTPUT,
                             help="run folder (default RESULTS_DIR/STUDY-NAME)")
    results_dir: str = option(
        "results", group=OUTPUT,
        help="where run folders, the dense baselines and the latency cache go (default "
             "%(default)s)")

    def __post_init__(self) -> None:
        if (self.budget_ms is None) == (self.budget_ratio is None):
            raise UsageError("give exactly one of --budget-ms MS or --budget-ratio R "
                             "(fraction of the dense model's latency)")
        check_options(self)
        check_space(self.space)
        if self.image_size is None and self.data in ("digits", "digit-sums"):
            object.__setattr__(self, "image_size", 16)  # digits are 8 px; 16 is the default
        if self.promote_steps is None:  # two fidelities: the second 4x the first (10, then 40)
            object.__setattr__(self, "promote_steps", PROMOTE_FACTOR * self.finetune_steps)
        if self.ray_address is not None and self.backend != "ray":
            raise UsageError("--ray-address needs --backend ray")
        needs = SAMPLERS[self.sampler].needs_warm_start
        if needs is not None and self.warm_start != needs:
            raise UsageError(f"--sampler {self.sampler} draws from the catalogue of --warm-start "
                             f"{needs}, not {self.warm_start}; use --warm-start {needs}, or "
                             f"another --sampler (tpe) with --warm-start {self.warm_start}")

    @property
    def streaming(self) -> Streaming:
        """When an image folder or a user's dataset is streamed rather than held."""
        return Streaming(memory_gb=self.data_memory_gb, workers=self.data_workers)

    @property
    def study(self) -> str:
        """The study name: ``--study-name``, else model-data-device, so a repeated command resumes."""
        if self.study_name:
            return self.study_name
        name = f"{self.model}-{self.data}-{self.device}"
        return re.sub(r"[^\w.-]+", "_", name).strip("_")

    @property
    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path(self.results_dir) / self.study

    @property
    def storage_url(self) -> str:
        """``--storage``, else the run folder's journal file (``study.db`` of older runs is kept)."""
        if self.storage:
            return self.storage
        legacy = self.run_dir / LEGACY_SQLITE
        if legacy.is_file():
            return f"sqlite:///{legacy.as_posix()}"
        return (self.run_dir / JOURNAL).as_posix()

    @property
    def isolated(self) -> bool:
        """Whether trials run in a worker process: ``--isolate``, by default on CUDA only."""
        return self.device.startswith("cuda") if self.isolate is None else self.isolate

    @property
    def context(self) -> Context:
        """The deployment context latency is measured in (checked against the device in run)."""
        return Context(batch_size=self.batch_size, precision=self.precision,
                       channels_last=self.channels_last, runtime=self.runtime,
                       cuda_graphs=self.cuda_graphs, threads=self.threads)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, object]:
        """What a resumed study must match; with a spaces file, its content too. A checkpoint
        is identified by its content, not its path: a corrected or moved path to the same
        weights resumes the study."""
        identity = {name: getattr(self, name) for name in identity_fields(type(self))}
        if self.checkpoint:
            identity["checkpoint"] = checkpoint_digest(self.checkpoint)
        if self.space.endswith(".toml"):
            from spaces import read_space_file

            try:
                identity["space_file"] = read_space_file(self.space).digest
            except ValueError as exc:
                raise UsageError(f"--space {exc}") from None
        return identity

    def study_key(self) -> StudyKey:
        """The study this configuration adds trials to, and what must match to resume it."""
        identity = self.identity()
        before = before_identity(type(self))
        return StudyKey(name=self.study, storage_url=self.storage_url, sampler=self.sampler,
                        seed=self.seed, identity=identity, space=self.space,
                        defaults={k: before[k] for k in identity if k in before},
                        # Studies made before checkpoints were identified by content stored
                        # the path: the same path still matches them.
                        also_matches={"checkpoint": self.checkpoint})
