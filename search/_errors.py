"""Errors the CLI turns into one line and an exit code; anything else is a bug (exit 1)."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input: what is wrong and how to fix it, in one line (exit 2)."""

    exit_code = 2


class BudgetUnreachable(RuntimeError):
    """Even the smallest candidate the space allows is over the latency budget (exit 3)."""

    exit_code = 3


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: finished trials and the partial front were written (exit 130)."""

    exit_code = 130
