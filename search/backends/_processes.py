"""``--workers N``: N processes on one study, on this machine.

The first process prepares the run (the dense baseline trained and cached, the reference measured,
the budget resolved in milliseconds, the space built) and starts N-1 worker processes, each
handed that preparation as plain data: the evaluator (``spec_of``), the space and the study's key.
So every worker searches one space, scales latencies by one measurement of the dense model and
judges feasibility against one budget, however loaded the machine is when it starts. A worker
rebuilds the evaluator, joins the study and runs its share of the trials with the same loop as the
first process (local or isolated), then exits. The first process waits for them, runs itself the
trials of a worker that died before finishing its share, and the flow then finishes the run. The
study's storage (a journal file or a database) is what they share; each trial records which
process ran it.

The processes share the machine's cores: each trains with ``cores // N`` torch threads (at least
one). With torch's default (every core in every process) their OpenMP threads outnumber the
cores and spin against each other: two searches on one study on 2 cores took 163 s that way and
25 s with one thread each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable

import optuna
import torch

from search._errors import raise_terminated
from search.backends._backend import Backend, TrialsJob
from search.backends._isolated import Spec, rebuild, spec_of
from search.study import WORKER_ATTR, load_study, optuna_quiet, write_trials

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


def _worker(job: TrialsJob, spec: Spec, loop: Backend, number: int, threads: int,
            level: int) -> None:
    """A worker process: rebuilds the evaluator, joins the study, runs its share, exits; it
    logs at the first process's ``level``."""
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the first process stops workers itself
    signal.signal(signal.SIGTERM, raise_terminated)  # ... with SIGTERM: the running trial is marked
    logging.basicConfig(level=level, stream=sys.stderr, datefmt="%H:%M:%S",
                        format=f"%(asctime)s [worker {number}] %(message)s")
    key = job.study
    study = load_study(name=key.name, storage_url=key.storage_url, sampler=key.sampler,
                       seed=key.seed)
    job = dataclasses.replace(job, evaluator=rebuild(spec))
    budget_ms = job.evaluator.budget_ms
    with optuna_quiet(), contextlib.suppress(KeyboardInterrupt):  # SIGTERM: stop quietly
        loop.run_trials(study, job, lambda: write_trials(study, job.run_dir, budget_ms))


class WorkerProcesses(Backend):
    """``workers`` processes on the study: this one and ``workers - 1`` spawned ones, each
    running ``loop`` on its share of the trials."""

    def __init__(self, loop: Backend, workers: int) -> None:
        self.loop, self.workers = loop, workers

    def run_trials(self, study: optuna.Study, job: TrialsJob,
                   on_trial: Callable[[], None]) -> None:
        began = datetime.datetime.now()  # the clock Optuna stamps trials with
        threads = torch.get_num_threads()  # the caller's, given back when the trials are done
        others = self._start(job)
        try:
            own = dataclasses.replace(job, trials=shares(job.trials, self.workers)[0])
            self.loop.run_trials(study, own, on_trial)
            if not _wait(others):
                self._run_missed(study, job, others, began, on_trial)
        except BaseException:  # an interrupt, too many failures, a full disk: workers stop too
            _wait(others, stop=True)
            raise
        finally:
            torch.set_num_threads(threads)

    def _start(self, job: TrialsJob) -> list[multiprocessing.process.BaseProcess]:
        """Starts the workers (spawned) with their share of the trials and of the cores (this
        process takes its share too); returns them."""
        context = multiprocessing.get_context("spawn")
        threads = threads_per_process(self.workers)
        torch.set_num_threads(threads)
        spec = spec_of(job.evaluator, job.data_name, job.image_size, job.streaming)
        plain = dataclasses.replace(job, evaluator=None)  # the worker rebuilds it from spec
        processes = []
        for number, count in enumerate(shares(job.trials, self.workers)[1:], start=2):
            if count == 0:
                continue
            process = context.Process(
                target=_worker, args=(dataclasses.replace(plain, trials=count), spec, self.loop,
                                      number, threads, logging.getLogger().getEffectiveLevel()),
                name=f"hwprune-worker-{number}")
            process.start()
            processes.append(process)
        log.info("%d worker process(es) share %d core(s): %d torch thread(s) each",
                 self.workers, os.cpu_count() or 1, threads)
        log.info("started %d more worker process(es) on study %r: %s", len(processes),
                 job.study.name, ", ".join(str(p.pid) for p in processes))
        return processes

    def _run_missed(self, study: optuna.Study, job: TrialsJob,
                    others: list[multiprocessing.process.BaseProcess], began: datetime.datetime,
                    on_trial: Callable[[], None]) -> None:
        """Runs here the trials that workers which died did not start, so that ``--trials``
        holds."""
        missed = _shortfall(study, job.trials, others, since=began)
        if not missed:
            return
        left = None
        if job.timeout is not None:
            left = job.timeout - (datetime.datetime.now() - began).total_seconds()
            if left <= 0:
                log.warning("%d trial(s) of the workers that ended early were not run: the "
                            "timeout has passed", missed)
                return
        log.warning("running the %d trial(s) that the workers which ended early did not start",
                    missed)
        self.loop.run_trials(study, dataclasses.replace(job, trials=missed, timeout=left),
                             on_trial)


def _wait(processes: list[multiprocessing.process.BaseProcess], stop: bool = False) -> bool:
    """Waits for the workers; with ``stop``, asks them to stop first (SIGTERM: each writes what
    it finished to the study and exits). Returns whether every worker ended well."""
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


def _shortfall(study: optuna.Study, trials: int,
               processes: list[multiprocessing.process.BaseProcess],
               since: datetime.datetime) -> int:
    """How many of the run's ``trials`` its processes (this one and the workers) did not start:
    the share of a worker that died early, which the first process then runs itself."""
    ours = {os.getpid(), *(p.pid for p in processes)}
    host = socket.gethostname()
    started = sum(1 for t in study.get_trials(deepcopy=False)
                  if t.datetime_start is not None and t.datetime_start >= since
                  and (worker := t.user_attrs.get(WORKER_ATTR)) is not None
                  and worker["host"] == host and worker["pid"] in ours)
    return max(0, trials - started)
