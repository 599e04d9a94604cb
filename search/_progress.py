"""Progress as log records: the library says how far a long step has come, and whoever shows
logs decides how. The CLI draws them as progress bars on a terminal and leaves them out
elsewhere (each trial has its own log line already); a notebook's logging shows them as lines.
"""

from __future__ import annotations

import logging

PROGRESS = "hwprune_progress"  # the record attribute: {"task", "n", "total", "postfix"}


def report(log: logging.Logger, task: str, n: int, total: int | None,
           **postfix: object) -> None:
    """Logs that ``task`` ("trials", "dense training", "final stage") is at ``n`` of ``total``
    (None: open-ended), with ``postfix`` shown beside it (the front's size, the best score)."""
    shown = " ".join(f"{k}={v}" for k, v in postfix.items())
    log.info("%s: %d/%s %s", task, n, "?" if total is None else total, shown,
             extra={PROGRESS: {"task": task, "n": n, "total": total, "postfix": postfix}})
