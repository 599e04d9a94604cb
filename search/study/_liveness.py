"""Which running trials still have a live process behind them.

A trial is RUNNING in the study from ``ask`` to ``tell``. A process killed in between (``kill -9``,
a restarted machine, an out-of-memory kill) leaves it RUNNING for good, and a resumed search must
not wait on it or count it. Optuna's own heartbeats exist only for its RDB storages and only inside
``study.optimize``; the default storage here is a journal file and the loop is ask-and-tell, so
each trial records who runs it instead: host, process id and the process's start time (a reused
pid is not mistaken for the old process), plus a heartbeat for workers on other machines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

import optuna
from optuna.trial import TrialState

from search.runfolder import FAIL_REASON
from search.study._optuna_internals import fail_stored

log = logging.getLogger(__name__)

WORKER_ATTR = "worker"
HEARTBEAT_ATTR = "heartbeat"
HEARTBEAT_S = 60.0
# A trial of another machine whose heartbeat is older than this is abandoned.
GRACE_S = 5 * HEARTBEAT_S
# ask() and recording the worker are two writes; a trial caught between them for this long is
# abandoned (it takes milliseconds when the process lives).
UNCLAIMED_S = 10.0


def _process_start(pid: int) -> str | None:
    """The process's start time since boot (Linux), which with the pid names one process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_worker() -> dict[str, object]:
    """The process running a trial, and the torch threads it trains with."""
    import torch

    return {"host": socket.gethostname(), "pid": os.getpid(),
            "process_start": _process_start(os.getpid()), "threads": torch.get_num_threads()}


def _alive(worker: dict) -> bool:
    pid = worker["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds that pid now
        return worker.get("process_start") is None
    started = worker.get("process_start")
    return started is None or _process_start(pid) == started


def _abandoned(trial: optuna.trial.FrozenTrial, now: float) -> str | None:
    """Why a RUNNING trial has no live process behind it, or None when it may still have one."""
    worker = trial.user_attrs.get(WORKER_ATTR)
    if worker is None:
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return "its process ended before recording itself" if now - started > UNCLAIMED_S \
            else None
    if worker["host"] == socket.gethostname():
        return None if _alive(worker) else \
            f"its process {worker['pid']} on this machine ended without finishing it"
    beat = trial.user_attrs.get(HEARTBEAT_ATTR, 0.0)
    if now - beat > GRACE_S:
        return f"no heartbeat from {worker['host']} for {now - beat:.0f} s"
    return None


def fail_abandoned(study: optuna.Study) -> int:
    """Marks RUNNING trials with no live process FAIL, with the reason; returns how many."""
    now, failed = time.time(), 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = _abandoned(trial, now)
        if reason is None:
            continue
        if not fail_stored(study, trial, {FAIL_REASON: f"abandoned: {reason}"}):
            continue  # another process got there first
        log.warning("trial %d was left running (%s): marked failed", trial.number, reason)
        failed += 1
    return failed


def claim(trial: optuna.Trial) -> None:
    """Records this process as the trial's worker, right after ``ask``."""
    trial.set_user_attr(WORKER_ATTR, this_worker())
    trial.set_user_attr(HEARTBEAT_ATTR, time.time())


@contextlib.contextmanager
def heartbeat(trial: optuna.Trial, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Refreshes the trial's heartbeat in the background while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                trial.set_user_attr(HEARTBEAT_ATTR, time.time())
            except Exception as exc:  # the main thread will meet the same storage error
                log.debug("heartbeat not recorded: %s", exc)

    thread = threading.Thread(target=beat, name="hwprune-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
