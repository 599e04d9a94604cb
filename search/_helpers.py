"""``--workers N``: N processes on one study, on this machine.

The first process sets the search up (the dense baseline trained and cached, the reference
measured, the budget resolved in milliseconds, the width rounding chosen) and starts N-1 helper
processes on the same study and run folder, handing them that setup (``FirstProcess``): every
worker searches one space, scales latencies by one measurement of the dense model and judges
feasibility against one budget, however loaded the machine is when a helper starts. Helpers only
run trials; the first process waits for them, runs itself the trials of a helper that died
before finishing its share, and then writes the front, re-measured, and the reports. The study's
storage (a journal file or a database) is what they share; each trial records which process ran
it.

The processes share the machine's cores: each trains with ``cores // N`` torch threads (at least
one). With torch's default (every core in every process) their OpenMP threads outnumber the
cores and spin against each other: two searches on one study on 2 cores took 163 s that way and
25 s with one thread each.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import multiprocessing
import os
import signal
import socket
import sys

import optuna
import torch

from search._candidates import Reference
from search._config import SearchConfig
from search._errors import raise_terminated
from search._liveness import WORKER_ATTR

log = logging.getLogger(__name__)


def shares(trials: int, workers: int) -> list[int]:
    """Trials per worker, the first process's first: as even as possible, summing to ``trials``.

    Example:
        >>> shares(7, 3)
        [3, 2, 2]
    """
    base, extra = divmod(trials, workers)
    return [base + (i < extra) for i in range(workers)]


def threads_per_process(workers: int) -> int:
    """Torch threads for each of ``workers`` processes on this machine: its cores shared out.

    Example:
        >>> threads_per_process(10**6)
        1
    """
    return max(1, (os.cpu_count() or 1) // workers)


@dataclasses.dataclass(frozen=True)
class FirstProcess:
    """What the first process measured and decided, handed to every helper."""

    reference: Reference
    budget_ms: float
    round_to: int


def _helper(config: SearchConfig, number: int, first: FirstProcess, threads: int) -> None:
    """A helper process: runs its trials on the shared study, then exits."""
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the first process stops helpers itself
    signal.signal(signal.SIGTERM, raise_terminated)  # ... with SIGTERM: the running trial is marked
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"[worker {number}] %(message)s")
    from search._run import run_trials_only

    run_trials_only(config, first)


def start(config: SearchConfig,
          first: FirstProcess) -> list[multiprocessing.process.BaseProcess]:
    """Starts the helpers (spawned) with their share of the trials and of the cores (this
    process takes its share too); returns them."""
    context = multiprocessing.get_context("spawn")
    threads = threads_per_process(config.workers)
    torch.set_num_threads(threads)
    processes = []
    for number, count in enumerate(shares(config.trials, config.workers)[1:], start=2):
        if count == 0:
            continue
        helper = dataclasses.replace(config, trials=count, workers=1, budget_ms=first.budget_ms,
                                     budget_ratio=None)
        process = context.Process(target=_helper, args=(helper, number, first, threads),
                                  name=f"hwprune-worker-{number}")
        process.start()
        processes.append(process)
    log.info("%d worker process(es) share %d core(s): %d torch thread(s) each", config.workers,
             os.cpu_count() or 1, threads)
    log.info("started %d more worker process(es) on study %r: %s", len(processes), config.study,
             ", ".join(str(p.pid) for p in processes))
    return processes


def wait(processes: list[multiprocessing.process.BaseProcess], stop: bool = False) -> bool:
    """Waits for the helpers; with ``stop``, asks them to stop first (SIGTERM: each writes what
    it finished to the study and exits). Returns whether every helper ended well."""
    for process in processes:
        if stop and process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    well = True
    for process in processes:
        process.join()
        if process.exitcode not in (0, 130, 143, -signal.SIGTERM):
            well = False
            log.warning("worker process %d ended with exit code %s (its error is above); its "
                        "finished trials are in the study", process.pid, process.exitcode)
    return well


def shortfall(study: optuna.Study, trials: int, processes: list[multiprocessing.process.BaseProcess],
              since: datetime.datetime) -> int:
    """How many of the run's ``trials`` its processes (this one and the helpers) did not start:
    the share of a helper that died early, which the first process then runs itself."""
    ours = {os.getpid(), *(p.pid for p in processes)}
    host = socket.gethostname()
    started = sum(1 for t in study.get_trials(deepcopy=False)
                  if t.datetime_start is not None and t.datetime_start >= since
                  and (worker := t.user_attrs.get(WORKER_ATTR)) is not None
                  and worker["host"] == host and worker["pid"] in ours)
    return max(0, trials - started)
