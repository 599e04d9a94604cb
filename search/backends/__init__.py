"""How a run's trials are run: one interface (:class:`Backend`), and the registry of backends
``--backend`` names (:data:`BACKENDS`), from which validation and ``--help`` are built."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from search._errors import UsageError
from search._registry import Registry
from search.backends._backend import Backend, TrialsJob
from search.backends._isolated import IsolatedLoop
from search.backends._local import LocalLoop
from search.backends._processes import WorkerProcesses, shares, threads_per_process


@dataclass(frozen=True)
class BackendEntry:
    """One entry of the registry: ``make(workers, isolated, ray_address)`` and its help."""

    make: Callable[[int, bool, str | None], Backend]
    help: str


def _local(workers: int, isolated: bool, ray_address: str | None) -> Backend:
    loop = IsolatedLoop() if isolated else LocalLoop()
    return WorkerProcesses(loop, workers) if workers > 1 else loop


def _ray(workers: int, isolated: bool, ray_address: str | None) -> Backend:
    """Ray Tune, which needs the ``ray`` extra and reads these settings when it is imported."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every trial's progress line, each once
    os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")  # Ctrl-C is ours (._ray)
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # a user's relative paths keep working
    try:
        from search.backends._ray import RayBackend
    except ImportError as exc:
        if not (exc.name or "").startswith("ray"):
            raise
        raise UsageError("--backend ray needs Ray Tune: pip install 'hwprune[ray]' (or "
                         "pip install 'ray[tune]')") from None
    return RayBackend(workers, ray_address)  # each Ray trial runs in its own actor: isolated


BACKENDS: Registry[BackendEntry] = Registry("--backend", {
    "local": BackendEntry(_local, "trials in this process (and --workers N-1 more processes on "
                                  "this machine)"),
    "ray": BackendEntry(_ray, "trials as Ray Tune trials, --workers at a time (pip install "
                              "'hwprune[ray]')"),
})


def backend_for(name: str, *, workers: int = 1, isolated: bool = False,
                ray_address: str | None = None) -> Backend:
    """The backend ``--backend NAME`` stands for, with its options.

    Example:
        >>> type(backend_for("local", workers=2)).__name__
        'WorkerProcesses'
    """
    return BACKENDS.lookup(name).make(workers, isolated, ray_address)


__all__ = ["BACKENDS", "Backend", "BackendEntry", "IsolatedLoop", "LocalLoop", "TrialsJob",
           "WorkerProcesses", "backend_for", "shares", "threads_per_process"]
