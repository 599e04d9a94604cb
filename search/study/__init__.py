"""The Optuna study: where it is stored, opening or resuming it, what its sampler draws, the trial
loop that scores and records candidates, and which trials still have a live process."""

from search.study._aimed import Aim, Catalogue, LatencyLine, aimed_params, catalogue
from search.study._gaps import GapSampler, propose
from search.study._liveness import WORKER_ATTR, claim, fail_abandoned, heartbeat
from search.study._optuna_internals import live_trial, stored_state
from search.study._samplers import SAMPLERS, Sampler, make_sampler
from search.study._sampling import WARM_STARTS, Start, WarmStart, suggest, suggest_importance, warm_start
from search.study._storage import open_storage, redacted, scrub
from search.study._study import (
    StudyKey,
    enqueue_reevaluation,
    load_study,
    open_study,
    optuna_quiet,
)
from search.study._trials import (
    Evaluator,
    check_early_failures,
    completed_by_allocation,
    give_up,
    record_failure,
    recorded_values,
    run_trials,
    score,
    trials_frame,
    write_trials,
)

__all__ = ["Aim", "Catalogue", "Evaluator", "GapSampler", "LatencyLine", "SAMPLERS", "Sampler", "Start",
           "StudyKey", "WARM_STARTS", "WORKER_ATTR", "WarmStart", "aimed_params", "catalogue",
           "check_early_failures", "claim", "completed_by_allocation", "enqueue_reevaluation",
           "fail_abandoned", "give_up", "heartbeat", "live_trial", "load_study", "make_sampler",
           "open_storage", "open_study", "optuna_quiet", "propose", "record_failure", "recorded_values",
           "redacted", "run_trials", "score", "scrub", "stored_state", "suggest", "suggest_importance",
           "trials_frame", "warm_start", "write_trials"]
