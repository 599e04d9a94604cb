"""The resolved configuration of a search: one dataclass, validated once, saved with every run."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

from profilers import MEASURE_SECONDS, Context
from search._errors import UsageError
from search.backends import BACKENDS
from search.candidates import TRACE_TIMEOUT_S, check_space
from search.runfolder import JOURNAL, LEGACY_SQLITE
from search.sources import Streaming, checkpoint_digest
from search.study import SAMPLERS, WARM_STARTS, StudyKey
from spaces import IMPORTANCES

# Fields that define what a study searches: resuming a study with any of them changed would mix
# trials that are not comparable, so it is refused.
STUDY_IDENTITY = ("model", "data", "checkpoint", "image_size", "space", "round_to", "importance",
                  "device",
                  "batch_size", "threads", "precision", "channels_last", "runtime", "cuda_graphs",
                  "finetune_steps", "promote_steps", "promote_margin", "distill", "seed")

# The fine-tune of studies stored before these keys were part of their identity: one fidelity of
# 20 steps (the default until two fidelities became it, 2026-12-04), promoted past a lead of one
# validation image (the margin until 2026-12-05).
BEFORE_IDENTITY = {"finetune_steps": 20, "promote_steps": 0, "promote_margin": 0.0}
# The default second fidelity's steps, as a multiple of the first's (--finetune-steps): measured
# on CIFAR-10 at 10 and 40 (docs/benchmarks/cifar10.md).
PROMOTE_FACTOR = 4
# How much better (in the score's units) an earlier candidate at most as slow must have scored
# after the quick fine-tune to keep a candidate from the second: about the quick score's own
# seed-to-seed spread on CIFAR-10 (docs/benchmarks/cifar10.md, run 13).
PROMOTE_MARGIN = 0.02
# --trials for a run that a timeout ends instead (the nightly): more than any night runs.
UNLIMITED_TRIALS = 10**6


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

    budget_ms: float | None = None
    budget_ratio: float | None = None
    device: str = "cpu"
    model: str = "vgg16_bn"
    data: str = "digits"
    checkpoint: str | None = None
    image_size: int | None = None
    data_memory_gb: float = 2.0
    data_workers: int | None = None
    space: str = "per-layer"
    importance: str = "l2"
    trials: int = 40
    timeout: float | None = None
    trial_timeout: float | None = None
    isolate: bool | None = None
    workers: int = 1
    backend: str = "local"
    ray_address: str | None = None
    sampler: str = "gaps"
    warm_start: str = "aimed"
    max_accuracy_drop: float | None = None
    batch_size: int = 1
    threads: int = 1
    precision: str = "fp32"
    channels_last: bool = False
    runtime: str = "eager"
    cuda_graphs: bool = False
    latency_cache: bool = True
    finetune_steps: int = 10
    promote_steps: int | None = None  # None: PROMOTE_FACTOR x finetune_steps
    promote_margin: float = PROMOTE_MARGIN
    distill: bool = False
    final_finetune_steps: int = 100
    final_layers: int = 2
    measure_seconds: float = MEASURE_SECONDS
    round_to: int | str = 8
    trace_timeout: float = TRACE_TIMEOUT_S
    storage: str | None = None
    study_name: str | None = None
    seed: int = 0
    out: str | None = None
    results_dir: str = "results"

    def __post_init__(self) -> None:
        if (self.budget_ms is None) == (self.budget_ratio is None):
            raise UsageError("give exactly one of --budget-ms MS or --budget-ratio R "
                             "(fraction of the dense model's latency)")
        if self.budget_ms is not None and not (self.budget_ms > 0 and math.isfinite(self.budget_ms)):
            raise UsageError(f"--budget-ms must be a positive number of milliseconds, "
                             f"got {self.budget_ms}")
        if self.budget_ratio is not None and not 0 < self.budget_ratio <= 1:
            raise UsageError(f"--budget-ratio must lie in (0, 1], got {self.budget_ratio}")
        if isinstance(self.round_to, str) and self.round_to != "auto":
            raise UsageError(f"--round-to must be a number of channels or 'auto', "
                             f"got {self.round_to!r}")
        if self.image_size is None and self.data == "digits":
            object.__setattr__(self, "image_size", 16)  # digits are 8 px; 16 is the default
        positive = {"trials": self.trials, "batch_size": self.batch_size, "threads": self.threads}
        if self.round_to != "auto":
            positive["round_to"] = self.round_to
        for name, value in positive.items():
            if value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.finetune_steps < 0:
            raise UsageError(f"--finetune-steps must be 0 or more, got {self.finetune_steps}")
        if self.promote_steps is None:  # two fidelities: the second 4x the first (10, then 40)
            object.__setattr__(self, "promote_steps", PROMOTE_FACTOR * self.finetune_steps)
        elif self.promote_steps < 0:
            raise UsageError(f"--promote-steps must be 0 (none) or more, got {self.promote_steps}")
        if not (self.promote_margin >= 0 and math.isfinite(self.promote_margin)):
            raise UsageError(f"--promote-margin must be 0 or more (in the score's units), got "
                             f"{self.promote_margin}")
        if not self.trace_timeout >= 0:
            raise UsageError(f"--trace-timeout must be 0 (no limit) or more seconds, got "
                             f"{self.trace_timeout}")
        if self.final_finetune_steps < 0:
            raise UsageError(f"--final-finetune-steps must be 0 or more, got "
                             f"{self.final_finetune_steps}")
        if self.final_layers < 1:
            raise UsageError(f"--final-layers must be 1 (the front only) or more, got "
                             f"{self.final_layers}")
        if not (self.measure_seconds > 0 and math.isfinite(self.measure_seconds)):
            raise UsageError(f"--measure-seconds must be a positive number of seconds, "
                             f"got {self.measure_seconds}")
        if not (self.data_memory_gb >= 0 and math.isfinite(self.data_memory_gb)):
            raise UsageError(f"--data-memory-gb must be 0 (stream all) or more GB, got "
                             f"{self.data_memory_gb}")
        if self.data_workers is not None and self.data_workers < 0:
            raise UsageError(f"--data-workers must be 0 (read in the search's process) or more, "
                             f"got {self.data_workers}")
        if self.image_size is not None and self.image_size < 8:
            raise UsageError(f"--image-size must be at least 8 pixels, got {self.image_size}")
        if self.timeout is not None and not self.timeout > 0:
            raise UsageError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        if self.trial_timeout is not None and not self.trial_timeout > 0:
            raise UsageError(f"--trial-timeout must be a positive number of seconds, got "
                             f"{self.trial_timeout}")
        if self.max_accuracy_drop is not None and not 0 < self.max_accuracy_drop <= 100:
            raise UsageError(f"--max-accuracy-drop must be percentage points in (0, 100], got "
                             f"{self.max_accuracy_drop}")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown --backend {self.backend!r}; valid: {', '.join(BACKENDS)}")
        if self.ray_address is not None and self.backend != "ray":
            raise UsageError("--ray-address needs --backend ray")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown --sampler {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
        if self.warm_start not in WARM_STARTS:
            raise UsageError(f"unknown --warm-start {self.warm_start!r}; valid: "
                             f"{', '.join(WARM_STARTS)}")
        check_space(self.space)
        if self.importance not in (*IMPORTANCES, "search"):
            raise UsageError(f"unknown --importance {self.importance!r}; valid: "
                             f"{', '.join(IMPORTANCES)}, search")
        if self.study_name is not None and not re.fullmatch(r"[\w.-]+", self.study_name):
            raise UsageError(f"--study-name {self.study_name!r}: use letters, digits, '.', '_', '-'")

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
        identity = {name: getattr(self, name) for name in STUDY_IDENTITY}
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
        fields = type(self).__dataclass_fields__
        identity = self.identity()
        return StudyKey(name=self.study, storage_url=self.storage_url, sampler=self.sampler,
                        seed=self.seed, identity=identity, space=self.space,
                        defaults={k: BEFORE_IDENTITY.get(k, fields[k].default)
                                  for k in identity if k in fields},
                        # Studies made before checkpoints were identified by content stored
                        # the path: the same path still matches them.
                        also_matches={"checkpoint": self.checkpoint})
