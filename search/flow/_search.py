"""One search, as a straight line: prepare → run trials (the backend) → finish.

The steps are :func:`search.flow.prepare`, a backend's ``run_trials`` (``search.backends``) and
:func:`search.flow.finish`; ``nightly`` runs the same three. When the trials stop early, the run is
finished with what was found and the error goes on to the caller.
"""

from __future__ import annotations

import logging

import pandas as pd

from search._config import SearchConfig
from search._errors import SearchInterrupted, Terminated, TooManyFailures
from search.backends import Backend, backend_for
from search.flow._finish import Judge, finish
from search.flow._prepare import Prepared, prepare
from search.study import optuna_quiet, write_trials

log = logging.getLogger(__name__)


def run(config: SearchConfig | None = None, /, **options: object) -> pd.DataFrame:
    """Searches per-layer channel allocations for the Pareto front of accuracy and latency.

    Args:
        config: a :class:`SearchConfig`; or give its fields as keyword arguments instead.

    Returns:
        The Pareto table (``pareto.csv``): one row per architecture on the front, fastest first.

    Raises:
        UsageError: bad input (exit 2 in the CLI). BudgetUnreachable: even the smallest candidate
        is over the budget (exit 3). SearchInterrupted: Ctrl-C; finished work was written (130).

    Example:
        >>> front = run(budget_ratio=0.5, trials=12)  # doctest: +SKIP
        >>> front[["trial", "latency_ms", "accuracy"]]  # doctest: +SKIP
    """
    if config is not None and options:
        raise TypeError("give run() a SearchConfig or keyword options, not both")
    config = config or SearchConfig(**options)
    backend = backend_of(config)
    with optuna_quiet(), backend.connected():
        return run_and_finish(prepare(config), backend)


def backend_of(config: SearchConfig) -> Backend:
    """The backend ``config`` asks for (``--backend``, ``--workers``, ``--isolate``)."""
    return backend_for(config.backend, workers=config.workers, isolated=config.isolated,
                       ray_address=config.ray_address)


def run_and_finish(prepared: Prepared, backend: Backend, judge: Judge | None = None) -> pd.DataFrame:
    """The prepared run's trials on ``backend``, then its finish (``judge``: see ``finish``);
    returns the front. An interrupt or too many failures finishes the run with the trials found
    so far, then raises."""
    budget_ms = prepared.budget_ms

    def checkpoint() -> None:
        write_trials(prepared.study, prepared.folder.path, budget_ms)

    try:
        backend.run_trials(prepared.study, prepared.job, checkpoint)
    except KeyboardInterrupt as exc:
        signal = "SIGTERM" if isinstance(exc, Terminated) else "interrupted"
        log.warning("%s: writing the finished trials and the partial front...", signal)
        finish(prepared, stopped=f"{signal}: latencies not re-measured, test accuracy not "
                                 f"computed")
        raise SearchInterrupted(143 if isinstance(exc, Terminated) else 130) from None
    except TooManyFailures as exc:
        finish(prepared, stopped=str(exc))
        raise
    return finish(prepared, final_steps=prepared.config.final_finetune_steps, judge=judge)
