"""The interface every backend implements: how a run's trials are run.

The flow (``search.flow``) prepares a run and hands its backend a :class:`TrialsJob`; the backend
adds ``job.trials`` trials to the study and returns, and the flow finishes the run. Backends:
the local loop (this process), the isolated loop (each trial in a worker process), local worker
processes (``--workers N``: N loops on one study), and Ray Tune (``--backend ray``).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna

from search.candidates import CandidateEvaluator
from search.sources import DEFAULT_STREAMING, Streaming
from search.study import StudyKey
from spaces import SearchSpace


@dataclass(frozen=True, kw_only=True)
class TrialsJob:
    """What a backend needs to add trials to a study, as the prepare step decided it.

    Everything but ``evaluator`` is plain data; a backend that scores in another process sends
    the evaluator as plain data too (``search.backends._isolated.spec_of``), with ``data_name``,
    ``image_size`` and ``streaming`` to load the data there.
    """

    study: StudyKey
    space: SearchSpace
    evaluator: CandidateEvaluator
    data_name: str
    image_size: int | None
    streaming: Streaming = DEFAULT_STREAMING
    run_dir: Path
    trials: int
    timeout: float | None = None
    threads: int = 1  # CPU threads of the deployment context (Ray reserves them per trial)


class Backend(abc.ABC):
    """Runs a run's trials. ``run_trials`` raises KeyboardInterrupt (a :class:`Terminated` for
    SIGTERM) once every finished trial is told, TooManyFailures when most of the first trials
    failed, and StorageFailed for a full disk or a failed storage: the flow then finishes the
    run with what was found."""

    @contextlib.contextmanager
    def connected(self) -> Iterator[None]:
        """The run is prepared and its trials run inside this block; its finish (the final
        stage's fine-tunes and latency re-measurements) comes after it. Ray connects to its
        cluster here, before anything is written, so an unreachable address leaves nothing
        behind; a local Ray instance stops at the block's end, before the final stage measures
        latency on the cores its processes shared."""
        yield

    @abc.abstractmethod
    def run_trials(self, study: optuna.Study, job: TrialsJob,
                   on_trial: Callable[[], None]) -> None:
        """Adds ``job.trials`` trials to ``study``; ``on_trial`` after each one is told."""
