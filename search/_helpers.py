"""``--workers N``: N processes on one study, on this machine.

The first process sets the search up (the dense baseline trained and cached, the reference
measured, the budget resolved in milliseconds) and starts N-1 helper processes on the same study
and run folder. Helpers only run trials; the first process waits for them and then writes the
front, re-measured, and the reports. Every worker judges feasibility against the one budget.
The study's storage (a journal file or a database) is what they share; each trial records which
process ran it.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import sys

from search._config import SearchConfig
from search._errors import raise_terminated

log = logging.getLogger(__name__)


def shares(trials: int, workers: int) -> list[int]:
    """Trials per worker, the first process's first: as even as possible, summing to ``trials``.

    Example:
        >>> shares(7, 3)
        [3, 2, 2]
    """
    base, extra = divmod(trials, workers)
    return [base + (i < extra) for i in range(workers)]


def _helper(config: SearchConfig, number: int) -> None:
    """A helper process: runs its trials on the shared study, then exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the first process stops helpers itself
    signal.signal(signal.SIGTERM, raise_terminated)  # ... with SIGTERM: the running trial is marked
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"[worker {number}] %(message)s")
    from search._run import run_trials_only

    run_trials_only(config)


def start(config: SearchConfig, budget_ms: float) -> list[multiprocessing.process.BaseProcess]:
    """Starts the helpers (spawned) with their share of the trials; returns them."""
    context = multiprocessing.get_context("spawn")
    processes = []
    for number, count in enumerate(shares(config.trials, config.workers)[1:], start=2):
        if count == 0:
            continue
        helper = dataclasses.replace(config, trials=count, workers=1, budget_ms=budget_ms,
                                     budget_ratio=None)
        process = context.Process(target=_helper, args=(helper, number),
                                  name=f"hwprune-worker-{number}")
        process.start()
        processes.append(process)
    log.info("started %d more worker process(es) on study %r: %s", len(processes), config.study,
             ", ".join(str(p.pid) for p in processes))
    return processes


def wait(processes: list[multiprocessing.process.BaseProcess], stop: bool = False) -> None:
    """Waits for the helpers; with ``stop``, asks them to stop first (SIGTERM: each writes what
    it finished to the study and exits)."""
    for process in processes:
        if stop and process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join()
        if process.exitcode not in (0, 130, 143, -signal.SIGTERM):
            log.warning("worker process %d ended with exit code %s; its finished trials are in "
                        "the study", process.pid, process.exitcode)
