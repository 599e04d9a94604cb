"""Guards around a block of work: a time limit, a memory limit, and interrupts held back.

Each raises where the block runs, so the caller decides what the limit means (a failed trial, a
model that cannot be traced, a trial asked of the study in one piece).
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

import torch

from search._errors import Terminated

_deferring = False  # the main thread is inside an interrupts_deferred block


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Holds Ctrl-C and SIGTERM back until the block ends, then raises as they would have.

    For the few steps that must not be cut in half, such as asking the study for a trial: a
    signal landing inside ``study.ask()`` would leave a trial stored as RUNNING that no one
    holds. A block inside another holds them until the outer one ends. A signal that lands
    while the block is being set up raises before the block begins. Outside the main thread
    (where handlers cannot be set, and signals do not land) the block runs as it is.
    """
    global _deferring
    if _deferring or threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, object] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, _frame: caught.append(signum))
    except BaseException:  # a signal between the two: the block never began
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise Terminated() if caught[0] == signal.SIGTERM else KeyboardInterrupt()


REPEAT_S = 0.1  # time_limit raises again this often until its block has ended


class TimeLimitReached(BaseException):
    """Raised by ``time_limit`` (a BaseException, so that handlers that record a model's own
    failures on the way do not take it for one)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raises TimeLimitReached in the block after ``seconds`` (0: no limit), and again every
    ``REPEAT_S`` until the block has ended (where the code took the first raise), and at its end
    if every raise was taken. For steps of other libraries that can run for hours on some
    models, such as torch-pruning's dependency graph.
    Outside the main thread (where SIGALRM cannot be handled) the block runs without a limit.
    It owns SIGALRM while it runs: not for use inside another alarm. Torch's grad mode is as it
    was before the block when it ends, however the alarm cut the block short.

    Example:
        >>> import time
        >>> from search import TimeLimitReached, time_limit
        >>> try:
        ...     with time_limit(0.05):
        ...         time.sleep(1)
        ... except TimeLimitReached:
        ...     print("stopped")
        stopped
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    armed, expired = [True], []

    def expire(signum: int, frame: object) -> None:
        if armed[0]:  # not once the block is ending
            expired.append(signum)
            raise TimeLimitReached()

    grad = torch.is_grad_enabled()
    previous = signal.signal(signal.SIGALRM, expire)
    # Raised again every REPEAT_S until the block has ended: Python drops an exception raised in
    # a finalizer (``__del__``, a weakref or gc callback) with a printed warning, and a bare
    # ``except:`` (torch-pruning has some) takes it, and either way the block ran on.
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_S)
    try:
        yield
    finally:
        try:
            armed[0] = False
        finally:  # even when the alarm raised just before
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            # The alarm can land between a ``no_grad`` block's switching grad mode off and its
            # ``with`` taking hold, which then never switches it back: without this, 11 of 50
            # such expiries left the process's autograd off (and every later pruning failing).
            torch.set_grad_enabled(grad)
    if expired:  # every raise was taken, and the block ended: it still did not end in time
        raise TimeLimitReached()


class MemoryLimitReached(BaseException):
    """Raised by ``memory_limit`` (a BaseException, as TimeLimitReached); ``rss``: the resident
    bytes when it was seen."""

    def __init__(self, rss: int) -> None:
        super().__init__(rss)
        self.rss = rss


def resident_bytes() -> int:
    """This process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource  # not on Windows, where /proc is not either

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def available_bytes() -> int:
    """Memory the machine can still give (MemAvailable on Linux, else all of it)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_ceiling(share: float) -> int:
    """This process's resident bytes now plus ``share`` of what the machine still has available:
    the limit for a step whose memory may grow without bound."""
    return resident_bytes() + int(share * available_bytes())


@contextlib.contextmanager
def memory_limit(max_rss: int, every_s: float = 0.05) -> Iterator[None]:
    """Raises MemoryLimitReached in the block once this process's resident memory passes
    ``max_rss`` bytes (0: no limit), before the kernel's out-of-memory killer ends the process
    with no word said. A thread looks every ``every_s`` and interrupts the main thread (again
    at each look while over, where the code took the first: a finalizer, a bare except), so it
    stops Python code that keeps allocating (torch-pruning's index mappings on some models),
    not one native call. Main thread only, as ``time_limit``; it owns SIGUSR1 while it runs
    (no limit where there is no SIGUSR1: Windows)."""
    if (not max_rss or not hasattr(signal, "SIGUSR1")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    armed, stop, seen = [True], threading.Event(), [0]

    def interrupted(signum: int, frame: object) -> None:
        if armed[0]:  # not once the block has ended
            raise MemoryLimitReached(seen[0])

    def watch() -> None:  # and again every ``every_s`` while over, as ``time_limit`` does
        while not stop.wait(every_s):
            seen[0] = resident_bytes()
            if seen[0] > max_rss and armed[0]:
                _thread.interrupt_main(signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupted)
    watcher = threading.Thread(target=watch, name="memory-limit", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        try:
            armed[0] = False
        finally:  # even when the handler raised just before
            stop.set()
            watcher.join()
            signal.signal(signal.SIGUSR1, previous)
