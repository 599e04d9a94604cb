"""The worker side of ``--backend ray``: what one Ray trial runs, in a Ray actor process.

A :class:`Job` carries everything a trial needs as plain data (the evaluator's ``Spec``, the space,
the storage URL); :func:`ray_trial` rebuilds the evaluator once per actor, claims the Optuna trial
the searcher asked for, scores it with the local loop's code (``search.study.score``) and reports both
objectives to Ray. The driver side (searcher, stopper, restore) is ``search.backends._ray``.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import torch
from ray import tune

from search.backends._backend import TrialsJob
from search.backends._isolated import Spec, rebuild, spec_of
from search.candidates import (
    CandidateEvaluator,
    is_machine_error,
    leaves_process_unusable,
    machine_message,
)
from search.runfolder import FAIL_REASON
from search.study import (
    claim,
    completed_by_allocation,
    give_up,
    heartbeat,
    live_trial,
    open_storage,
    score,
    stored_state,
)
from spaces import SearchSpace

TRIAL_KEY = "hwprune_trial"  # the Optuna trial number, in each Ray trial's config


@dataclass(frozen=True)
class Job:
    """What every Ray trial needs, as plain data (Ray sends it once through its object store)."""

    spec: Spec
    space: SearchSpace
    storage_url: str
    study: str
    device_type: str
    threads: int


_EVALUATORS: dict[str, CandidateEvaluator] = {}  # per actor process: rebuilt once, then reused


def _evaluator(job: Job) -> CandidateEvaluator:
    key = f"{job.storage_url}|{job.study}|{job.spec.evaluator.reference.latency_ms}"
    if key not in _EVALUATORS:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
        torch.set_num_threads(job.threads)
        # Ray makes the trial's GPU its only visible one: cuda:0 is the trial's own device.
        device = torch.device("cuda", 0) if job.device_type == "cuda" else None
        _EVALUATORS.clear()
        _EVALUATORS[key] = rebuild(job.spec, device)
    return _EVALUATORS[key]


class ActorUnusable(RuntimeError):
    """Raised after reporting a candidate whose error left this actor's process unusable (a
    poisoned CUDA context): Ray ends an errored trial's actor, so the next trial gets a fresh one,
    and the searcher keeps the reason the trial recorded."""


class _Watched:
    """The evaluator, remembering whether a candidate's error left this process unusable."""

    def __init__(self, evaluator: CandidateEvaluator) -> None:
        self.evaluator, self.unusable = evaluator, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.evaluator, name)

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.evaluator.evaluate(*args, **kwargs)
        except Exception as exc:
            self.unusable = leaves_process_unusable(exc)
            raise


def ray_trial(params: dict[str, Any], job: Job) -> None:
    """One Ray trial: scores the Optuna trial the searcher asked for and reports its values."""
    evaluator = _Watched(_evaluator(job))
    study = optuna.load_study(study_name=job.study, storage=open_storage(job.storage_url))
    trial = live_trial(study, params[TRIAL_KEY])
    if trial.user_attrs.get(FAIL_REASON) or stored_state(study, params[TRIAL_KEY]).is_finished():
        _report("skipped")  # marked failed while Ray was down: nothing to score
        return
    claim(trial)
    if job.device_type == "cuda":
        trial.set_user_attr("cuda_visible_devices", os.environ.get("CUDA_VISIBLE_DEVICES"))
    try:
        with heartbeat(trial):
            values, failed = score(study, trial, job.space, evaluator,
                                   completed_by_allocation(study))
    except Exception as exc:
        if not is_machine_error(exc):
            raise  # a bug of ours: Ray records the error; the searcher marks the trial
        message = machine_message(exc)
        give_up(study, trial, f"stopped: {message}")
        _report("stop", stop=message)
        return
    _report("scored", values, failed=failed or "")
    if evaluator.unusable:
        _EVALUATORS.clear()
        raise ActorUnusable(f"trial {trial.number} left this actor unusable ({failed}); the "
                            f"next trial gets a fresh one")


def _report(outcome: str, values: list[float] | None = None, failed: str = "",
            stop: str = "") -> None:
    """Reports to Ray: always both metrics (Ray requires them; NaN when not scored)."""
    accuracy, latency_ms = values or (math.nan, math.nan)
    tune.report({"accuracy": accuracy, "latency_ms": latency_ms, "outcome": outcome,
                 "failed": failed, "stop": stop})



def _with_absolute_paths(evaluator: CandidateEvaluator) -> CandidateEvaluator:
    """The evaluator with its folders made absolute: a Ray worker's working directory is not
    this process's."""
    cache = copy.copy(evaluator.cache)
    if cache is not None:
        cache.path = cache.path.resolve()
    return replace(evaluator, run_dir=evaluator.run_dir.resolve(), cache=cache)


def _absolute_storage(url: str) -> str:
    """The storage URL with a relative journal or SQLite path made absolute."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + Path(url.removeprefix("sqlite:///")).resolve().as_posix()
    return url if "://" in url else Path(url).resolve().as_posix()


def job_for(job: TrialsJob) -> Job:
    """The plain-data job of a search, with every path absolute (a Ray worker's working
    directory is not the driver's)."""
    return Job(spec_of(_with_absolute_paths(job.evaluator), job.data_name, job.image_size,
                       job.streaming),
               job.space, _absolute_storage(job.study.storage_url), job.study.name,
               job.evaluator.device.type, job.threads)
