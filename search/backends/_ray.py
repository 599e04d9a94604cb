"""``--backend ray``: the search's trials run as Ray Tune trials, through Ray's Optuna searcher.

The driver (this process) sets the search up as the local backend does: the dense baseline, the
reference measured, the budget resolved in milliseconds. Ray's ``OptunaSearch`` then asks the
study for each trial's widths with our sampler, on our study (the same storage, journal file or
database), and tells it what the trial recorded. Each Ray trial (``search.backends._ray_trial``, the worker
side) rebuilds the evaluator once per actor from plain data (``search.backends._isolated.Spec``), claims its
Optuna trial, scores it with the same code as the local loop (``search.study.score``), and reports the
two objectives.

Per trial Ray reserves ``--threads`` CPUs, and on CUDA one GPU: Ray makes that GPU the trial's
only visible device, so its latency (and the dense model's, measured alongside) is measured on
the GPU the trial ran on.

The experiment lives in ``RUN_DIR/ray/trials-K``. An experiment that did not finish (Ctrl-C, a
kill, a full disk) is restored with ``Tuner.restore`` by the same command; a finished one is
followed by a new one, which adds ``--trials`` trials to the study as the local backend does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import signal
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.search.optuna import OptunaSearch
from ray.tune.stopper import Stopper

from search._errors import StorageFailed, Terminated, TooManyFailures, UsageError
from search.backends._backend import Backend, TrialsJob
from search.backends._ray_trial import TRIAL_KEY, job_for, ray_trial
from search.runfolder import ALLOCATION, FAIL_REASON
from search.study import (
    check_early_failures,
    give_up,
    live_trial,
    make_sampler,
    open_storage,
    record_failure,
    recorded_values,
    suggest,
    suggest_importance,
)
from spaces import SearchSpace

log = logging.getLogger(__name__)

RAY_DIR = "ray"
_DONE = "hwprune-finished"  # written into an experiment's folder when all its trials ran


def _check_reachable(address: str | None) -> None:
    """UsageError unless HOST:PORT answers within a few seconds (Ray itself retries for
    minutes); 'auto' and a local instance are left to Ray, which fails fast for them."""
    if not address or address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address!r}: give HOST:PORT (the head node's GCS "
                         f"port, 6379 by default) or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UsageError(f"--ray-address {address}: cannot connect ({exc.strerror or exc}); "
                         f"start the cluster (ray start --head) or give its address") from None


@contextlib.contextmanager
def session(address: str | None) -> Iterator[None]:
    """Connected to Ray while the block runs: the cluster at ``address`` (``--ray-address``), or
    a local instance started here and stopped at the end. It connects before anything is
    written, so an unreachable address leaves nothing behind (UsageError)."""
    started = not ray.is_initialized()
    if started:
        _check_reachable(address)
        try:
            ray.init(address=address, include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=True)
        except Exception as exc:
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UsageError(f"--ray-address {address}: cannot connect ({line}); "
                             f"start the cluster (ray start --head) or give its address") \
                from None
    try:
        yield
    finally:
        if started:
            ray.shutdown()
            log.info("Ray: %s", f"disconnected from {address}" if address
                     else "the local instance stopped")


@dataclass
class _Control:
    """The driver's live side of a Ray search: what the searcher and the stopper share. Kept out
    of the searcher's pickled state (Ray saves that with the experiment) under a key."""

    trials: int
    workers: int
    budget_ms: float
    dense_ms: float
    on_trial: Callable[[], None] | None
    stop: threading.Event = field(default_factory=threading.Event)
    stopped: BaseException | None = None
    ran: int = 0
    failures: Counter = field(default_factory=Counter)
    asked: list[int] = field(default_factory=list)  # Optuna trial numbers, in this process
    live: set[str] = field(default_factory=set)  # Ray trial ids asked and not yet completed

    def finished(self, failed: str | None) -> None:
        """One more trial told: counts it, checks the early failures, writes trials.csv."""
        self.ran += 1
        if failed:
            self.failures[failed] += 1
        try:
            check_early_failures(self.ran, self.trials, self.failures)
        except TooManyFailures as exc:
            self.stopped = exc
            self.stop.set()
        if self.on_trial is not None:
            self.on_trial()


_CONTROLS: dict[str, _Control] = {}


class _Searcher(OptunaSearch):
    """Ray's Optuna searcher on our study. It asks with our sampler, and it tells what the trial
    recorded: a trial whose actor died is told infeasible with its reason (as a broken candidate
    is), so the sampler steers away from it. Ray pickles it with the experiment; its live side
    (``_Control``) is looked up by key."""

    def __init__(self, space: SearchSpace, sampler: optuna.samplers.BaseSampler, study: str,
                 storage: optuna.storages.BaseStorage, control_key: str,
                 importance: str = "l2") -> None:
        super().__init__(space=functools.partial(_define, space=space, importance=importance),
                         metric=["accuracy", "latency_ms"], mode=["max", "min"],
                         sampler=sampler, study_name=study, storage=storage)
        self.control_key = control_key

    def suggest(self, trial_id: str) -> dict | None:
        # Concurrency is limited here rather than by Ray's ConcurrencyLimiter, whose pickled
        # set of live trials outlives a kill and then blocks the restored experiment forever.
        control = _CONTROLS.get(self.control_key)
        if control is not None and len(control.live) >= control.workers:
            return None
        params = super().suggest(trial_id)
        if control is not None:
            control.live.add(trial_id)
            control.asked.append(self._ot_trials[trial_id].number)
        return params

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        control = _CONTROLS.get(self.control_key)
        if control is not None:
            control.live.discard(trial_id)
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed_trials:
            return
        self._completed_trials.add(trial_id)
        frozen = self._ot_study._storage.get_trial(ot_trial._trial_id)
        result = result or {}
        if result.get("stop") and control is not None:  # the machine's error, not the trial's
            control.stopped = StorageFailed(result["stop"])
            control.stop.set()
        if frozen.state.is_finished():  # it told itself FAIL (a full disk), or was skipped
            return
        if result.get("outcome") == "scored":
            self._ot_study.tell(ot_trial, [result["accuracy"], result["latency_ms"]])
            failed = result.get("failed")
        elif error:  # the reason the trial recorded before its actor gave up, if it did
            reason = frozen.user_attrs.get(FAIL_REASON) or (
                "worker died: its Ray trial ended with an error (see ray/ in the run folder)")
            budget = control.budget_ms if control else 0.0
            dense = control.dense_ms if control else 0.0
            self._ot_study.tell(ot_trial, record_failure(ot_trial, reason, None, budget, dense))
            log.warning("trial %3d  failed: %s", ot_trial.number, reason)
            failed = reason.split(":", 1)[0]
        else:
            give_up(self._ot_study, ot_trial, "interrupted")
            return
        if control is not None:
            control.finished(failed)


def _define(trial: optuna.Trial, space: SearchSpace, importance: str = "l2") -> dict[str, Any]:
    """Ray's define-by-run space: our sampling of the widths (and of the importance criterion
    when it is searched); the Ray trial gets the number."""
    allocation = suggest(trial, space)
    suggest_importance(trial, importance)
    trial.set_user_attr(ALLOCATION, json.dumps(allocation, sort_keys=True))
    return {TRIAL_KEY: trial.number}


def _trial_name(trial: Any) -> str:
    """A Ray trial's name and folder: the Optuna trial it scores."""
    return f"optuna-trial-{trial.config[TRIAL_KEY]}"


class _Stop(Stopper):
    """Stops the whole experiment when the driver asks (an interrupt, too many failures, a
    storage error)."""

    def __init__(self, control_key: str) -> None:
        self.control_key = control_key

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        control = _CONTROLS.get(self.control_key)
        return control is not None and control.stop.is_set()


def _experiment(root: Path) -> tuple[Path, bool]:
    """The experiment folder to use, and whether it is an unfinished one to restore."""
    numbered = sorted((int(p.name.split("-")[1]), p) for p in root.glob("trials-*")
                      if p.name.split("-")[1].isdigit()) if root.is_dir() else []
    if numbered:
        last = numbered[-1][1]
        if not (last / _DONE).exists() and tune.Tuner.can_restore(str(last)):
            return last, True
    following = numbered[-1][0] + 1 if numbered else 1
    return root / f"trials-{following}", False


class RayBackend(Backend):
    """``--backend ray``: ``workers`` Ray Tune trials at a time, on the cluster at ``address``
    (or a local Ray instance started for the run)."""

    def __init__(self, workers: int, address: str | None) -> None:
        self.workers, self.address = workers, address

    def connected(self) -> contextlib.AbstractContextManager[None]:
        return session(self.address)

    def run_trials(self, study: optuna.Study, job: TrialsJob,
                   on_trial: Callable[[], None]) -> None:
        _run_trials(study, job, self.workers, on_trial)


def _run_trials(study: optuna.Study, job: TrialsJob, workers: int,
                on_trial: Callable[[], None] | None = None) -> int:
    """Runs ``job.trials`` trials as Ray Tune trials, ``workers`` at a time.

    Raises KeyboardInterrupt (after Ray stopped, every finished trial told) on Ctrl-C,
    TooManyFailures and StorageFailed as the local loop does. Returns the trials run."""
    evaluator = job.evaluator
    root = (job.run_dir / RAY_DIR).resolve()
    path, restoring = _experiment(root)
    key = f"{root}/{path.name}"
    control = _Control(job.trials, workers, evaluator.budget_ms, evaluator.reference.latency_ms,
                       on_trial)
    _CONTROLS[key] = control
    ray_job = job_for(job)
    resources = {"cpu": job.threads, "gpu": 1 if ray_job.device_type == "cuda" else 0}
    trainable = tune.with_resources(tune.with_parameters(ray_trial, job=ray_job), resources)
    if restoring:
        log.info("restoring the unfinished Ray experiment %s", path)
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True,
                                   resume_errored=False)
    else:
        storage = open_storage(job.study.storage_url)
        if isinstance(storage, str):
            storage = optuna.storages.RDBStorage(storage)
        searcher = _Searcher(job.space, make_sampler(job.study.sampler, job.study.seed),
                             job.study.name, storage, key, evaluator.importance)
        log.info("Ray Tune: %d trials, %d at a time, %s per trial; experiment %s",
                 job.trials, workers, resources, path)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=job.trials,
                                        time_budget_s=job.timeout, reuse_actors=True,
                                        trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(name=path.name, storage_path=str(root), verbose=0,
                                      stop=_Stop(key)))
    interrupted: list[BaseException] = []
    previous = _catch_interrupts(control, interrupted)
    try:
        tuner.fit()
    finally:
        _restore_handlers(previous)
        _CONTROLS.pop(key, None)
    _settle_unfinished(study, control.asked, control.dense_ms)
    if interrupted:
        raise interrupted[0]
    if control.stopped is not None:
        raise control.stopped
    (path / _DONE).touch()  # ran to its end (a trial whose actor died is a recorded failure)
    return control.ran


def _settle_unfinished(study: optuna.Study, numbers: list[int], dense_ms: float) -> None:
    """Trials that Ray stopped before their result was told: one whose scores were recorded is
    told them; one still scoring is marked failed ("interrupted")."""
    trials = study.get_trials(deepcopy=False)
    for number in numbers:
        frozen = trials[number]
        if frozen.state.is_finished():
            continue
        trial = live_trial(study, number)
        values = recorded_values(frozen, dense_ms)
        if values is None:
            give_up(study, trial, "interrupted")
        else:
            study.tell(trial, values)


def _catch_interrupts(control: _Control, caught: list[BaseException]) -> dict:
    """Ctrl-C and SIGTERM stop Ray's loop (the stopper) instead of breaking out of it, so Ray
    saves the experiment; the interrupt is raised once Ray has stopped."""
    def stop(exc: BaseException) -> Callable[[int, object], None]:
        def handler(signum: int, frame: object) -> None:
            if not caught:
                log.warning("stopping the Ray trials...")
                caught.append(exc)
            control.stop.set()
        return handler

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, stop(KeyboardInterrupt()))
    signal.signal(signal.SIGTERM, stop(Terminated()))
    return previous


def _restore_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(sig, handler)

