"""The isolated loop: each trial in a worker process, so that a candidate that kills or poisons
its process ends the worker, not the search.

On CUDA, an illegal memory access or a device-side assert leaves the CUDA context unusable for
the rest of the process, and an out-of-memory can leave it fragmented; a segfault in a user's
model or an extension kills the process outright. So each trial is scored in a worker process
(spawned, as CUDA requires) that rebuilds the evaluator once from data: model name and dense
state dict, data name, the measured reference. When the worker dies, the trial is recorded as
failed with the signal or exit code, and the next trial gets a fresh worker. It also makes
``--trial-timeout`` a hard limit: a worker still busy after it (plus a grace) is killed.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection

import optuna
import torch

from search.backends._backend import TrialsJob
from search.backends._local import LocalLoop
from search.candidates import (
    CandidateEvaluator,
    CandidateFailure,
    CandidateResult,
    Promotion,
    failure_kind,
    failure_reason,
    is_machine_error,
    leaves_process_unusable,
)
from search.sources import DEFAULT_STREAMING, Streaming, build_model, load_data
from search.study import run_trials
from search.training import TrialTimeLimit
from spaces import Allocation

log = logging.getLogger(__name__)


def _grace_s(timeout: float) -> float:
    """Beyond --trial-timeout, how long a worker may take to notice it between fine-tune steps
    (a step of a large model) before it is killed as hung."""
    return max(10.0, 0.5 * timeout)


class WorkerDied(CandidateFailure):
    """The trial's worker process ended without answering."""

    kind = "worker died"


class RemoteFailure(CandidateFailure):
    """A candidate's error inside the worker, as its kind and reason."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason, kind=kind, reason=reason)


@dataclass(frozen=True)
class Spec:
    """What a worker needs to rebuild the evaluator: plain data, no live module."""

    evaluator: CandidateEvaluator  # with dense=None and data=None: rebuilt below
    dense_state: dict[str, torch.Tensor]
    data_name: str
    image_size: int
    streaming: Streaming = DEFAULT_STREAMING


def spec_of(evaluator: CandidateEvaluator, data_name: str, image_size: int,
            streaming: Streaming = DEFAULT_STREAMING) -> Spec:
    """The evaluator as plain data, for another process."""
    state = {k: v.detach().cpu() for k, v in evaluator.dense.state_dict().items()}
    return Spec(replace(evaluator, dense=None, data=None), state, data_name, image_size,
                streaming)


def rebuild(spec: Spec, device: torch.device | None = None) -> CandidateEvaluator:
    """The evaluator again, in this process (on ``device`` if given): data loaded, dense model
    built and its weights loaded."""
    template = spec.evaluator
    streaming = spec.streaming
    if multiprocessing.current_process().daemon:  # the isolated worker: no children allowed
        streaming = replace(streaming, workers=0)
    data = load_data(spec.data_name, image_size=spec.image_size, seed=template.seed,
                     streaming=streaming)
    dense = build_model(template.model_name, data.num_classes)
    dense.load_state_dict(spec.dense_state)
    return replace(template, dense=dense.eval(), data=data,
                   device=template.device if device is None else device)


def _serve(conn: Connection, spec: Spec) -> None:
    """The worker: rebuilds the evaluator, then scores one allocation per request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    evaluator = rebuild(spec)
    while True:
        request = conn.recv()
        if request is None:
            return
        number, allocation, seed_number, importance, promotion = request
        try:
            conn.send(("ok", evaluator.evaluate(number, allocation, seed_number, importance,
                                                promotion)))
        except Exception as exc:
            errno = getattr(exc, "errno", None) if is_machine_error(exc) else None
            unusable = leaves_process_unusable(exc)
            conn.send(("error", failure_kind(exc), failure_reason(exc), errno,
                       getattr(exc, "filename", None), unusable))
            if unusable:  # a poisoned CUDA context fails every later call: the next gets a fresh one
                return


def _ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


class IsolatedEvaluator:
    """``CandidateEvaluator.evaluate`` run in a worker process, which is restarted after it dies.

    Only what the study loop uses is offered: ``evaluate``, ``budget_ms``, ``accuracy_floor``,
    ``reference`` and ``importance``.
    """

    def __init__(self, evaluator: CandidateEvaluator, data_name: str, image_size: int,
                 streaming: Streaming = DEFAULT_STREAMING) -> None:
        self.budget_ms = evaluator.budget_ms
        self.accuracy_floor = evaluator.accuracy_floor
        self.reference = evaluator.reference
        self.importance = evaluator.importance
        self._timeout = evaluator.trial_timeout
        self._spec = spec_of(evaluator, data_name, image_size, streaming)
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child, self._spec),
                                              name="hwprune-trial-worker", daemon=True)
        self._process.start()
        child.close()
        self._conn = parent

    def evaluate(self, number: int, allocation: Allocation, seed_number: int | None = None,
                 importance: str | None = None,
                 promotion: Promotion | None = None) -> CandidateResult:
        if self._process is None or not self._process.is_alive():
            self._start()
        self._conn.send((number, allocation, seed_number, importance, promotion))
        grace = None if self._timeout is None else _grace_s(self._timeout)
        deadline = None if grace is None else time.monotonic() + self._timeout + grace
        while not self._conn.poll(0.2):  # a dead worker's pipe polls as readable (EOF)
            if deadline is not None and time.monotonic() > deadline:
                self.close()
                raise TrialTimeLimit(f"still running {grace:.0f} s after --trial-timeout: its "
                                     f"worker was killed")
        try:
            reply = self._conn.recv()
        except (EOFError, OSError):
            self._process.join()
            code = self._process.exitcode
            self.close()
            raise WorkerDied(f"its worker process died ({_ended(code)}); the next trial gets a "
                             f"fresh one") from None
        if reply[0] == "ok":
            return reply[1]
        _, kind, reason, errno, filename, unusable = reply
        if unusable:  # the worker has ended (a poisoned context, a fragmented allocator)
            self.close()
        if errno is not None:  # the machine's error, not the candidate's: the parent stops
            raise OSError(errno, reason.split(": ", 1)[-1], filename)
        raise RemoteFailure(kind, reason)

    def close(self) -> None:
        """Stops the worker (politely if it is idle, by force otherwise)."""
        if self._process is None:
            return
        if self._process.is_alive():
            with contextlib.suppress(OSError):  # a broken pipe: it is going anyway
                self._conn.send(None)
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._conn.close()
        self._process = self._conn = None
        log.debug("trial worker stopped")


class IsolatedLoop(LocalLoop):
    """The local loop with each trial scored in a worker process (``--isolate``; by default on
    CUDA), which a candidate that crashes or poisons its process ends instead of the search."""

    def run_trials(self, study: optuna.Study, job: TrialsJob,
                   on_trial: Callable[[], None]) -> None:
        evaluator = IsolatedEvaluator(job.evaluator, job.data_name, job.image_size,
                                      job.streaming)
        try:
            run_trials(study, job.space, evaluator, trials=job.trials, timeout=job.timeout,
                       on_trial=on_trial)
        finally:
            evaluator.close()
