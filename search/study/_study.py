"""Opening the study a run adds trials to: created, or resumed when what it searches is unchanged.

A study stores the identity of its search (``StudyKey.identity``: the model, data, space,
deployment context, fine-tune recipe, ...). Resuming it with any of those changed would mix
trials that cannot be compared, so it is refused with the flag that differs.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import optuna

from search._errors import StorageFailed, UsageError
from search.runfolder import REEVALUATES
from search.study._liveness import fail_abandoned
from search.study._samplers import make_sampler
from search.study._storage import open_storage, redacted, scrub

log = logging.getLogger(__name__)

_IDENTITY_ATTR = "hwprune_config"  # the study's user attribute holding its identity


@dataclass(frozen=True, kw_only=True)
class StudyKey:
    """Which study, where it is stored, how it samples, and what must match to resume it.

    Attributes:
        identity: what the study searches; a resumed study must store the same.
        defaults: the value of each identity key for studies made before that key existed.
        space: ``--space`` as given (named when a spaces file was edited since).
        also_matches: for an identity key, a value an older study may store for the same
            search (a checkpoint's path, before checkpoints were identified by content).
    """

    name: str
    storage_url: str
    sampler: str
    seed: int
    identity: dict[str, object]
    defaults: dict[str, object]
    space: str = "per-layer"
    also_matches: dict[str, object] = field(default_factory=dict)


# Errors of two processes creating the same schema or study at once; the loser retries and then
# finds what the winner made.
_CREATION_RACE = ("duplicate key", "already exists", "UniqueViolation", "database is locked")


def _create_or_load(key: StudyKey, attempts: int = 6) -> optuna.Study:
    for attempt in range(attempts):
        try:
            return optuna.create_study(
                storage=open_storage(key.storage_url), study_name=key.name, load_if_exists=True,
                directions=["maximize", "minimize"], sampler=make_sampler(key.sampler, key.seed))
        except Exception as exc:
            if attempt == attempts - 1 or not any(m in str(exc) for m in _CREATION_RACE):
                raise
            log.debug("storage creation race (%s); retrying", type(exc).__name__)
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna logs warnings only while the block runs (the search logs each trial itself), and
    whatever verbosity the caller had afterwards."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def open_study(key: StudyKey) -> optuna.Study:
    """Creates the study, or resumes it when its stored identity matches this one; trials left
    RUNNING by a process that died are marked failed first."""
    url = key.storage_url
    try:
        study = _create_or_load(key)
    except ImportError as exc:
        raise UsageError(f"--storage {redacted(url)}: {exc}") from None
    except Exception as exc:
        line = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, url)
        if "://" not in url or "not a database" in line or "malformed" in line:
            raise StorageFailed(
                f"the study storage {redacted(url)} is damaged or unreadable ({line}); move it "
                f"aside and run again to start a new study (trials.csv keeps the finished "
                f"trials)") from None
        raise UsageError(f"--storage: cannot open {redacted(url)} ({line})") from None
    stored = study.user_attrs.get(_IDENTITY_ATTR)
    identity = key.identity
    if stored is None:
        study.set_user_attr(_IDENTITY_ATTR, identity)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["accuracy", "latency_ms"])
    else:
        # A key the study was made without has its default (studies older than the flag).
        earlier = {k: stored.get(k, key.defaults.get(k)) for k in identity}
        changed = [k for k in identity if earlier[k] != identity[k]
                   and not (k in key.also_matches and earlier[k] == key.also_matches[k])]
        if changed:
            flags = {k: f"--{k.replace('_', '-')}" for k in changed}
            if "space_file" in changed:
                was = f"another version of the spaces file {key.space} (it was edited since)"
                resume = ""
            else:  # every change at once: a user fixes them in one go, not one per try
                was = " and ".join(f"{flags[k]} {earlier[k]}, not {identity[k]}" for k in changed)
                numbers = all(isinstance(earlier[k], (int, float))
                              and not isinstance(earlier[k], bool)  # values the flags take
                              for k in changed)
                given = " ".join(f"{flags[k]} {earlier[k]}" for k in changed)
                resume = f"pass {given} to resume it, or " if numbers else ""
            raise UsageError(f"study {key.name!r} was run with {was}; {resume}use another "
                             f"--study-name to start a new study")
    fail_abandoned(study)
    return study


def load_study(*, name: str, storage_url: str, sampler: str, seed: int) -> optuna.Study:
    """The study another process opened (and checked) already, as a worker process joins it."""
    return optuna.load_study(study_name=name, storage=open_storage(storage_url),
                             sampler=make_sampler(sampler, seed))


def enqueue_reevaluation(study: optuna.Study, numbers: list[int]) -> None:
    """Queues the widths of these trials to be scored again, first, as new trials."""
    trials = study.get_trials(deepcopy=False)
    for number in numbers:
        study.enqueue_trial(trials[number].params, user_attrs={REEVALUATES: number})
