"""The Optuna study: where it is stored, opening or resuming it, what its sampler draws, the trial
loop that scores and records candidates, and which trials still have a live process."""

from search.study._aimed import Aim, Catalogue, LatencyLine, aimed_params, catalogue
from search.study._gaps import GapSampler, propose
from search.study._liveness import WORKER_ATTR, claim, fail_abandoned, heartbeat
from search.study._samplers import SAMPLERS, Sampler, make_sampler, sampler_help
from search.study._sampling import WARM_STARTS, suggest, suggest_importance, warm_start
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

__all__ = ["Aim", "Catalogue", "Evaluator", "GapSampler", "LatencyLine", "SAMPLERS", "Sampler",
           "StudyKey", "WARM_STARTS", "WORKER_ATTR", "aimed_params", "catalogue",
           "check_early_failures", "claim", "completed_by_allocation", "enqueue_reevaluation",
           "fail_abandoned", "give_up", "heartbeat", "load_study", "make_sampler", "open_storage",
           "open_study", "optuna_quiet", "propose", "record_failure", "recorded_values", "redacted",
           "run_trials", "sampler_help", "score", "scrub", "suggest", "suggest_importance",
           "trials_frame", "warm_start", "write_trials"]
