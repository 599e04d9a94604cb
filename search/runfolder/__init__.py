"""The run folder: its files and columns (one contract), writing them, reading them back as a
:class:`Run`, and the front computed from its trials."""

from search.runfolder._files import (
    RunFolder,
    atomic_write_bytes,
    load_pruned,
    load_pruned_with_spec,
    save_pruned,
    save_state,
)
from search.runfolder._front import current, hypervolume, pareto_layers, pareto_mask
from search.runfolder._layout import (
    CONFIG,
    ENV,
    HISTORY,
    JOURNAL,
    LEGACY_SQLITE,
    MODELS_DIR,
    NOTES,
    PARETO,
    PARETO_EXTRA_COLUMNS,
    PLOT,
    REFERENCE,
    REPORT_HTML,
    REPORT_MD,
    TRIAL_COLUMNS,
    TRIAL_EXTRA_COLUMNS,
    TRIALS,
    Reference,
    ReferenceRecord,
    model_json,
    trial_weights,
)
from search.runfolder._macs import MacsLatency, MacsPick, macs_latency
from search.runfolder._read import Run, choose, load_run
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
    SCORED,
    SECONDS,
    SOURCE,
    counts_for_front,
    failed,
    within_budget,
)

__all__ = ["ACCURACY", "ALLOCATION", "CONFIG", "DENSE_MS_NOW", "ENV", "FAIL_REASON", "FEASIBLE",
           "HISTORY", "IMPORTANCE", "JOURNAL", "LATENCY_CACHED", "LATENCY_IQR_MS", "LATENCY_MS",
           "LEGACY_SQLITE", "MACS", "MODELS_DIR", "MacsLatency", "MacsPick", "NOTES", "PARAMS",
           "PARETO", "PARETO_EXTRA_COLUMNS", "PLOT", "PROMOTED", "REEVALUATES", "REFERENCE",
           "REPEAT_OF", "REPORT_HTML", "REPORT_MD", "RUNG0_ACCURACY", "Reference",
           "ReferenceRecord", "Run", "RunFolder", "SCORED", "SECONDS", "SOURCE", "TRIALS",
           "TRIAL_COLUMNS", "TRIAL_EXTRA_COLUMNS", "atomic_write_bytes", "choose",
           "counts_for_front", "current", "failed", "hypervolume", "load_pruned",
           "load_pruned_with_spec", "load_run", "macs_latency", "model_json", "pareto_layers",
           "pareto_mask", "save_pruned", "save_state", "trial_weights", "within_budget"]
