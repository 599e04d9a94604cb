"""Where a study lives: a journal file by default, or a database URL; and URLs without their
passwords, for messages and the run folder."""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from search._guards import interrupts_deferred

log = logging.getLogger(__name__)

LOCK_GRACE_S = 10


class _UninterruptedLock:
    """The journal storage's thread lock, which also holds Ctrl-C and SIGTERM back while held.

    Every operation of Optuna's JournalStorage runs under its thread lock: the file lock, the
    append and the replay into memory. A signal raised half way through one leaves the file lock
    or its renamed copy behind, a line cut short, or the memory out of step with the file, and
    Optuna's own clean-up then fails over the missing rename (FileNotFoundError in place of the
    stop). Held back, the signal lands once the operation has ended whole."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = threading.local()

    def __enter__(self) -> None:
        held = contextlib.ExitStack()
        held.enter_context(interrupts_deferred())
        held.enter_context(self._lock)
        self._held.stack = held

    def __exit__(self, *exc_info: Any) -> bool | None:
        return self._held.stack.__exit__(*exc_info)


class _Journal(JournalStorage):
    """Optuna's JournalStorage whose operations a signal cannot cut in half (see
    ``_UninterruptedLock``; Optuna names the lock ``_thread_lock`` and takes it in every
    operation, which tests/search/test_reliability.py checks signal by signal)."""

    def __init__(self, backend: JournalFileBackend) -> None:
        super().__init__(backend)
        self._thread_lock = _UninterruptedLock()  # type: ignore[assignment]

    def __setstate__(self, state: dict[Any, Any]) -> None:  # sent to a worker process
        super().__setstate__(state)
        self._thread_lock = _UninterruptedLock()  # type: ignore[assignment]


def _journal(path: Path) -> JournalStorage:
    """The journal file storage: appends under a file lock, safe for several processes on one
    machine (SQLite's creation race and locking are not). A last line cut short by a kill is
    an append that never completed: it is dropped, else every later read would fail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size:
        with path.open("rb+") as f:
            data = f.read()
            if not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                f.truncate(keep)
                log.warning("%s: dropped %d bytes of an append that never completed", path,
                            len(data) - keep)
    # A lock left by a killed process is broken after LOCK_GRACE_S (appends take milliseconds).
    # The path must be absolute: Optuna's lock is a symlink to the journal and judges its age
    # by stat()ing through it, and a relative target resolves from the symlink's own folder,
    # so the stat fails and the stale lock is never broken (the waiter spins forever).
    path = path.resolve()
    lock = JournalFileSymlinkLock(str(path), grace_period=LOCK_GRACE_S)
    return _Journal(JournalFileBackend(str(path), lock_obj=lock))


def open_storage(url: str) -> str | JournalStorage:
    """A database URL (sqlite://, postgresql://) as Optuna takes it, else a journal file path."""
    return url if "://" in url else _journal(Path(url))


def scrub(text: str, url: str) -> str:
    """``text`` with the URL's password, if any, replaced by ``***``."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # not a database URL: nothing to hide
        return text
    return text.replace(password, "***") if password else text


def redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL at all: show it, it has no password to hide
        return url
