"""Errors the CLI turns into one line and an exit code; anything else is a bug (exit 1).

Exit codes: 0 done; 1 a bug; 2 bad input; 3 budget unreachable; 4 most early trials failed;
5 disk full or storage failed/damaged; 6 nightly got worse or the device changed;
130 Ctrl-C; 141 stdout's reader went away (``| head``); 143 SIGTERM.
"""

from __future__ import annotations


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


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C (exit 130) or SIGTERM (exit 143): finished trials and the partial front were
    written."""

    def __init__(self, exit_code: int = 130) -> None:
        super().__init__()
        self.exit_code = exit_code


