"""Errors the CLI turns into one line and an exit code; anything else is a bug (exit 1).

Exit codes: 0 done; 1 a bug; 2 bad input; 3 budget unreachable; 4 most early trials failed;
5 disk full or storage failed/damaged; 6 nightly got worse or the device changed;
130 Ctrl-C; 141 stdout's reader went away (``| head``); 143 SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class UsageError(ValueError):
    """Bad input: what is wrong and how to fix it, in one line (exit 2)."""

    exit_code = 2


class BudgetUnreachable(RuntimeError):
    """Even the smallest candidate the space allows is over the latency budget (exit 3)."""

    exit_code = 3


class TooManyFailures(RuntimeError):
    """Most of the first trials failed: the model, data or space is likely broken (exit 4)."""

    exit_code = 4


class StorageFailed(RuntimeError):
    """The disk is full or the study's storage failed or is damaged; finished trials are kept
    in the study (exit 5)."""

    exit_code = 5


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the signal lands so the search stops as on Ctrl-C."""


def raise_terminated(signum: int, frame: object) -> None:
    """A SIGTERM handler: ``signal.signal(signal.SIGTERM, raise_terminated)``."""
    raise Terminated()


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Holds Ctrl-C and SIGTERM back until the block ends, then raises as they would have.

    For the few steps that must not be cut in half, such as asking the study for a trial: a
    signal landing inside ``study.ask()`` would leave a trial stored as RUNNING that no one
    holds. Outside the main thread (where handlers cannot be set) the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise Terminated() if caught[0] == signal.SIGTERM else KeyboardInterrupt()


class TimeLimitReached(BaseException):
    """Raised by ``time_limit`` (a BaseException, so that handlers that record a model's own
    failures on the way do not take it for one)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raises TimeLimitReached in the block after ``seconds`` (0: no limit). For steps of other
    libraries that can run for hours on some models, such as torch-pruning's dependency graph.
    Outside the main thread (where SIGALRM cannot be handled) the block runs without a limit.
    It owns SIGALRM while it runs: not for use inside another alarm."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeLimitReached()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C (exit 130) or SIGTERM (exit 143): finished trials and the partial front were
    written."""

    def __init__(self, exit_code: int = 130) -> None:
        super().__init__()
        self.exit_code = exit_code
