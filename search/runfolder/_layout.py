"""The run folder's contract: every file a run writes, its columns, and the record of
``reference.json``. Writers (:mod:`._files`, the study's trials table) and readers
(:mod:`._read`, reports, ``pick``) take names from here and nowhere else.

A run folder (``results/STUDY-NAME`` or ``--out``)::

    config.json   the resolved configuration, with the study name and the width rounding used
    env.json      the device and software the latencies were measured with
    reference.json  the dense model measured (ReferenceRecord)
    trials.csv    one row per trial (TRIAL_COLUMNS, then TRIAL_EXTRA_COLUMNS; .parquet beside it)
    pareto.csv    the front, fastest first (TRIAL_COLUMNS + PARETO_EXTRA_COLUMNS; .parquet too)
    notes.json    what the report must say (groups left dense, trials left off, early stops)
    report.md, pareto.png, report.html   the reports, rebuilt from the files above
    models/trial-N.json + .pt    a candidate's widths and state dict, as the search saved it
    models/final-N.json + .pt    after the final stage's longer fine-tune
    study.journal the Optuna study (unless --storage names a database)
    history.csv   one row per night (``nightly``)
    ray/          Ray Tune's experiments (``--backend ray``)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from search.runfolder._record import (
    ACCURACY,
    ALLOCATION,
    DENSE_MS_NOW,
    FAIL_REASON,
    FEASIBLE,
    IMPORTANCE,
    LATENCY_CACHED,
    LATENCY_IQR_MS,
    LATENCY_MS,
    MACS,
    PARAMS,
    PROMOTED,
    REEVALUATES,
    REPEAT_OF,
    RUNG0_ACCURACY,
    SECONDS,
    SOURCE,
)

CONFIG, ENV, REFERENCE, NOTES = "config.json", "env.json", "reference.json", "notes.json"
TRIALS, PARETO, HISTORY = "trials.csv", "pareto.csv", "history.csv"
REPORT_MD, PLOT, REPORT_HTML = "report.md", "pareto.png", "report.html"
MODELS_DIR = "models"
JOURNAL, LEGACY_SQLITE = "study.journal", "study.db"

TRIAL_COLUMNS = ["trial", "state", FEASIBLE, LATENCY_MS, LATENCY_IQR_MS, MACS, PARAMS, ACCURACY,
                 SECONDS, ALLOCATION]
# After the contract columns trials.csv carries these: which earlier trial it repeats, why a trial
# failed, whether its latency came from the cache, the dense model's median measured with it (the
# reference's drift during the run), which earlier trial's widths it scored again (a nightly run's
# first trials), the criterion, with --promote-steps the quick fine-tune's accuracy and whether
# the longer one followed, and what proposed the candidate. Older runs lack some: readers see
# them empty.
TRIAL_EXTRA_COLUMNS = [REPEAT_OF, FAIL_REASON, LATENCY_CACHED, DENSE_MS_NOW, REEVALUATES,
                       IMPORTANCE, RUNG0_ACCURACY, PROMOTED, SOURCE]
PARETO_EXTRA_COLUMNS = ["test_accuracy", "model_path", "quick_accuracy"]


def model_json(run_dir: Path, trial: int, final: bool = False) -> Path:
    """``models/trial-N.json`` as the search saved it, or ``models/final-N.json`` after the
    final stage's longer fine-tune; its state dict is beside it (``.pt``)."""
    return Path(run_dir) / MODELS_DIR / f"{'final' if final else 'trial'}-{trial}.json"


def trial_weights(trial: int, final: bool = False) -> str:
    """The state dict's file name, as a widths JSON refers to it (beside it in ``models/``)."""
    return model_json(Path("."), trial, final).with_suffix(".pt").name


@dataclass(frozen=True)
class Reference:
    """The dense model's measured cost: every candidate's latency is a ratio to ``latency_ms``."""

    latency_ms: float
    latency_iqr_ms: float
    latency_p90_ms: float
    repeats: int
    macs: int
    params: int
    smallest_latency_ms: float | None


@dataclass(frozen=True, kw_only=True)
class ReferenceRecord:
    """``reference.json``: the dense model as measured (:class:`Reference`), the budget decided
    from it, and what the run learned of it later. Fields a run has not reached yet are None
    (a run stopped by an unreachable budget writes only ``reference`` and ``budget_ms``)."""

    reference: Reference
    budget_ms: float
    accuracy: float | None = None
    test_accuracy: float | None = None
    dense_widths: dict[str, int] | None = None
    remeasured_latency_ms: float | None = None  # at the final stage
    final_finetune_steps: int | None = None
    drift: dict | None = None  # search.flow: how the dense latency moved during the run

    def to_json(self) -> dict[str, object]:
        """The file's flat form: the reference's fields, then the rest that are known."""
        more = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "reference" and getattr(self, f.name) is not None}
        return {**dataclasses.asdict(self.reference), **more}

    @classmethod
    def from_json(cls, data: dict) -> ReferenceRecord:
        """Reads the flat form back (unknown keys of later versions are ignored)."""
        measured = {f.name: data.get(f.name) for f in dataclasses.fields(Reference)}
        known = {f.name for f in dataclasses.fields(cls)} - {"reference"}
        return cls(reference=Reference(**measured),
                   **{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, run_dir: str | Path) -> ReferenceRecord:
        return cls.from_json(json.loads((Path(run_dir) / REFERENCE).read_text()))
