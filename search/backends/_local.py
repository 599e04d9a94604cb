"""The local loop: trials scored one after another in this process."""

from __future__ import annotations

from collections.abc import Callable

import optuna

from search.backends._backend import Backend, TrialsJob
from search.study import run_trials


class LocalLoop(Backend):
    """Each trial scored here, by the evaluator the prepare step built."""

    def run_trials(self, study: optuna.Study, job: TrialsJob,
                   on_trial: Callable[[], None]) -> None:
        run_trials(study, job.space, job.evaluator, trials=job.trials, timeout=job.timeout,
                   on_trial=on_trial)
