"""One search, as a straight line: prepare → run trials (the backend) → finish.

The steps are :func:`search.flow.prepare`, a backend's ``run_trials`` (``search.backends``) and
:func:`search.flow.finish`; ``nightly`` runs the same three. When the trials stop early, the run is
finished with what was found and the error goes on to the caller.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from search._config import UNLIMITED_TRIALS, SearchConfig
from search._errors import SearchInterrupted, Terminated, TooManyFailures, UsageError
from search._progress import report
from search.backends import Backend, backend_for
from search.flow._finish import Judge, finish
from search.flow._prepare import Given, Prepared, prepare
from search.runfolder import Run, current, load_run, pareto_mask
from search.sources import PYTHON_PREFIX, Streaming, model_digest, splits_from
from search.study import optuna_quiet, trials_frame, write_trials

log = logging.getLogger(__name__)


def run(config: SearchConfig | None = None, /, *, model: str | nn.Module | None = None,
        train: object = None, val: object = None, test: object = None,
        example_input: torch.Tensor | None = None,
        score_fn: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        **options: object) -> Run:
    """Searches per-layer channel allocations for the Pareto front of score and latency.

    Args:
        config: a :class:`SearchConfig`; or give its fields as keyword arguments instead
            (``budget_ratio=0.5``, ``model="resnet20"``, ``data="cifar10:PATH"``, ...).
        model: a registered name (as ``--model``), or your trained ``nn.Module`` itself (it is
            copied, never changed; the study knows it by its architecture and weights).
        train: your training data, instead of ``data=``: a map-style Dataset of (input,
            label), a DataLoader of such batches, or an (inputs, labels) pair of tensors.
        val: your validation data (what candidates are scored on), of the same kinds.
        test: your test data, of the same kinds; without it, the test score is the
            validation one.
        example_input: the input latency is measured with (one sample or a batch of
            ``batch_size``); by default validation inputs.
        score_fn: ``score_fn(outputs, targets) -> float``, higher is better (accuracy, F1,
            mAP, ...), over a whole split. Default: top-1 accuracy.
        loss_fn: ``loss_fn(outputs, targets) -> Tensor`` for the fine-tunes. Default:
            cross-entropy.

    Returns:
        The run (:class:`Run`): ``.pareto`` (the front, fastest first), ``.trials``, ``.path``,
        ``.pick(max_latency_ms=... | min_accuracy=...)`` and ``.load(trial)``.

    Raises:
        UsageError: bad input (exit 2 in the CLI).
        BudgetUnreachable: even the smallest candidate is over the budget (exit 3).
        SearchInterrupted: Ctrl-C; finished work was written (130).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.ReLU(),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
        >>> result = run(model=net, budget_ratio=0.8, trials=4)  # doctest: +SKIP
        >>> small = result.load(result.pick(min_accuracy=0.9))  # doctest: +SKIP
    """
    if config is not None and options:
        raise TypeError("give run() a SearchConfig or keyword options, not both")
    if isinstance(model, str):
        options["model"] = model
        model = None
    given, labels = _given(model, train, val, test, example_input, score_fn, loss_fn, options,
                           config)
    config = dataclasses.replace(config, **labels) if config is not None else \
        SearchConfig(**{**options, **labels})
    if given.anything and (config.workers > 1 or config.isolated or config.backend == "ray"):
        raise UsageError("a model, data or functions handed over from Python run in this "
                         "process only: --workers, --isolate and --backend ray rebuild the "
                         "search in other processes; give model='pkg.module:factory' and "
                         "data='pkg.module:function' for them")
    backend = backend_of(config)
    with optuna_quiet(), contextlib.ExitStack() as connection:
        connection.enter_context(backend.connected())
        prepared = prepare(config, given=given)
        run_and_finish(prepared, backend, disconnect=connection.close)
    return dataclasses.replace(load_run(config.run_dir),
                               base=prepared.evaluator.dense if given.model is not None else None)


def _given(model: nn.Module | None, train: object, val: object, test: object,
           example_input: torch.Tensor | None, score_fn: Callable | None,
           loss_fn: Callable | None, options: dict,
           config: SearchConfig | None) -> tuple[Given, dict[str, object]]:
    """The objects handed to :func:`run`, and the config fields that name them: a model as
    ``python:CLASS@DIGEST`` (its architecture and weights), data as ``python@DIGEST``."""
    labels: dict[str, object] = {}
    if model is not None:
        if not isinstance(model, nn.Module):
            raise UsageError(f"model= takes a name or an nn.Module, got {type(model).__name__}")
        labels["model"] = f"{PYTHON_PREFIX}{type(model).__name__}@{model_digest(model)}"
        if "study_name" not in options:  # not the digest: a study per class and device
            labels["study_name"] = re.sub(r"[^\w.-]+", "_", f"{type(model).__name__}-"
                                                            f"{options.get('device', 'cpu')}")
    data = None
    if train is not None or val is not None:
        if train is None or val is None:
            raise UsageError("give both train= and val= (test= is optional)")
        if "data" in options:
            raise UsageError("give data= (a name) or train=/val=, not both")
        streaming = config.streaming if config is not None else Streaming(
            memory_gb=options.get("data_memory_gb", 2.0),  # type: ignore[arg-type]
            workers=options.get("data_workers"))  # type: ignore[arg-type]
        data = splits_from(train, val, test, image_size=options.get("image_size"),
                           streaming=streaming)
        labels["data"] = data.label()
    elif test is not None:
        raise UsageError("test= needs train= and val= too")
    return Given(model=model, data=data, example_input=example_input, score_fn=score_fn,
                 loss_fn=loss_fn), labels


def backend_of(config: SearchConfig) -> Backend:
    """The backend ``config`` asks for (``--backend``, ``--workers``, ``--isolate``)."""
    return backend_for(config.backend, workers=config.workers, isolated=config.isolated,
                       ray_address=config.ray_address)


def run_and_finish(prepared: Prepared, backend: Backend, judge: Judge | None = None,
                   disconnect: Callable[[], None] = lambda: None) -> pd.DataFrame:
    """The prepared run's trials on ``backend``, then its finish (``judge``: see ``finish``);
    returns the front. An interrupt or too many failures finishes the run with the trials found
    so far, then raises. ``disconnect`` ends the backend's connection once the trials are done,
    before the finish: a local Ray instance's processes stop before the final stage measures
    latency on the same cores."""
    budget_ms = prepared.budget_ms
    before = len(trials_frame(prepared.study, budget_ms))
    total = prepared.job.trials if prepared.job.trials < UNLIMITED_TRIALS else None

    def checkpoint() -> None:
        trials = write_trials(prepared.study, prepared.folder.path, budget_ms)
        scored = current(trials)
        front = scored[pareto_mask(scored["latency_ms"], scored["accuracy"])]
        best = f"{front['accuracy'].max():.4f}" if len(front) else "-"
        report(log, "trials", len(trials) - before, total, front=len(front), best=best)

    try:
        backend.run_trials(prepared.study, prepared.job, checkpoint)
    except KeyboardInterrupt as exc:
        disconnect()
        signal = "SIGTERM" if isinstance(exc, Terminated) else "interrupted"
        log.warning("%s: writing the finished trials and the partial front...", signal)
        finish(prepared, stopped=f"{signal}: latencies not re-measured, test accuracy not "
                                 f"computed")
        raise SearchInterrupted(143 if isinstance(exc, Terminated) else 130) from None
    except TooManyFailures as exc:
        disconnect()
        finish(prepared, stopped=str(exc))
        raise
    disconnect()
    return finish(prepared, final_steps=prepared.config.final_finetune_steps,
                  final_layers=prepared.config.final_layers, judge=judge)
