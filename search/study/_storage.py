"""Where a study lives: a journal file by default, or a database URL; and URLs without their
passwords, for messages and the run folder."""

from __future__ import annotations

import logging
from pathlib import Path

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

log = logging.getLogger(__name__)

LOCK_GRACE_S = 10


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
    return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


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
