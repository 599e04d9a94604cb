"""One search from start to end: the flow of DESIGN.md, top to bottom."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import optuna
import pandas as pd
import torch
from torch import nn

from profilers import (
    LatencyCache,
    LatencySettings,
    fingerprint,
    recommended_round_to,
    width_steps,
)
from search import _front, _helpers, _study
from search._candidates import CandidateEvaluator, Reference, context_key, measure_reference
from search._config import SearchConfig
from search._data import DataSplits
from search._errors import (
    BudgetUnreachable,
    SearchInterrupted,
    Terminated,
    TooManyFailures,
    UsageError,
)
from search._final import DRIFT_NOTE, final_stage, measured_drift
from search._liveness import fail_abandoned
from search._registry import build_model, device_for, load_checkpoint, load_data
from search._report import STOPPED_NOTE, write_reports
from search._runfolder import (
    PARETO_EXTRA_COLUMNS,
    RunFolder,
    atomic_write_bytes,
    save_state,
)
from search._runs import load_run
from search._sampling import warm_start
from search._space import build_space, smallest_model
from search._storage import redacted
from search._train import Recipe, accuracy, train_dense
from search._worker import IsolatedEvaluator
from spaces import SearchSpace

log = logging.getLogger(__name__)


def _example_input(data: DataSplits, batch_size: int) -> torch.Tensor:
    repeats = -(-batch_size // len(data.val_x))
    return data.val_x.repeat(repeats, 1, 1, 1)[:batch_size].clone()


def _dense_model(config: SearchConfig, data: DataSplits, recipe: Recipe) -> nn.Module:
    """The trained dense model: the checkpoint, else a baseline trained once and cached."""
    torch.manual_seed(config.seed)  # the initial weights too, so a seed reproduces the baseline
    model = build_model(config.model, data.num_classes)
    if config.checkpoint:
        load_checkpoint(model, config.checkpoint)
        return model.eval()
    key = json.dumps([config.model, config.data, config.image_size, config.seed,
                      recipe.dense_epochs, recipe.dense_lr, recipe.batch_size])
    stem = re.sub(r"[^\w.-]+", "_", f"{config.model}-{config.data}-{config.image_size}px")
    path = Path(config.results_dir) / "baselines" / (
        f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}.pt")
    if path.exists():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            log.info("dense baseline: loaded %s", path)
            return model.eval()
        except Exception as exc:  # a damaged cache file is only a cache: train again
            log.warning("dense baseline %s is damaged (%s): training it again", path,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    log.info("dense baseline: training %s for %d epochs (cached for later runs)...", config.model,
             recipe.dense_epochs)
    began = time.perf_counter()
    train_dense(model, data, recipe, seed=config.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda p: save_state(model, p))
    log.info("dense baseline: trained in %.0f s, saved %s", time.perf_counter() - began, path)
    return model.eval()


def _auto_round_to(model: nn.Module, example: torch.Tensor, config: SearchConfig,
                   device: torch.device, cache: LatencyCache | None) -> int:
    """``--round-to auto``: the multiple this device's width steps recommend for this model,
    measured once per device and context and kept in the latency cache."""
    key = {"width_steps": {"model": config.model, "input_shape": list(example.shape[1:])},
           "context": context_key(config.context)}
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        log.info("--round-to auto: %d (width steps measured earlier on this device)",
                 cached["round_to"])
        return cached["round_to"]
    log.info("--round-to auto: measuring how latency moves with width on %s...", device)
    curves = width_steps(model, example, device=device, context=config.context)
    round_to = recommended_round_to(curves)
    for curve in curves:
        log.info("  %s: multiples of %d give away the fewest channels", curve.kind,
                 curve.recommended)
    log.info("--round-to auto: %d", round_to)
    if cache is not None:
        cache.put(key, {"round_to": round_to, "curves": [c.to_dict() for c in curves]})
    return round_to


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def run(config: SearchConfig | None = None, /, **options: object) -> pd.DataFrame:
    """Searches per-layer channel allocations for the Pareto front of accuracy and latency.

    Args:
        config: a :class:`SearchConfig`; or give its fields as keyword arguments instead.

    Returns:
        The Pareto table (``pareto.csv``): one row per architecture on the front, fastest first.

    Raises:
        UsageError: bad input (exit 2 in the CLI). BudgetUnreachable: even the smallest candidate
        is over the budget (exit 3). SearchInterrupted: Ctrl-C; finished work was written (130).

    Example:
        >>> front = run(budget_ratio=0.5, trials=12)  # doctest: +SKIP
        >>> front[["trial", "latency_ms", "accuracy"]]  # doctest: +SKIP
    """
    if config is not None and options:
        raise TypeError("give run() a SearchConfig or keyword options, not both")
    return _search(config or SearchConfig(**options))


def run_trials_only(config: SearchConfig, first: _helpers.FirstProcess) -> None:
    """A ``--workers`` helper process: the search's trials, without its end (the first process
    writes the front and the reports once every worker is done)."""
    with contextlib.suppress(KeyboardInterrupt):  # SIGTERM from the first process: stop quietly
        _search(config, helper=first)


def _search(config: SearchConfig, helper: _helpers.FirstProcess | None = None,
            reevaluate: list[int] | None = None) -> pd.DataFrame | None:
    """The search; a ``helper`` (given what the first process measured) runs trials only;
    ``reevaluate`` lists trials whose widths are scored again first (the nightly's last front).
    With ``--backend ray`` it runs connected to Ray (joined, or a local instance started and
    stopped here)."""
    if config.backend != "ray" or helper:
        return _search_in(config, helper, reevaluate)
    with _ray_backend().session(config):
        return _search_in(config, helper, reevaluate)


def _ray_backend() -> ModuleType:
    """``search._ray``, which needs the ``ray`` extra. Ray reads these when imported."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every trial's progress line, each once
    os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")  # Ctrl-C is ours (search._ray)
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # a user's relative paths keep working
    try:
        from search import _ray
    except ImportError as exc:
        if not (exc.name or "").startswith("ray"):
            raise
        raise UsageError("--backend ray needs Ray Tune: pip install 'hwprune[ray]' (or "
                         "pip install 'ray[tune]')") from None
    return _ray


def _search_in(config: SearchConfig, helper: _helpers.FirstProcess | None,
               reevaluate: list[int] | None) -> pd.DataFrame | None:
    context = config.context
    device = device_for(config.device, context)
    recipe = Recipe(finetune_steps=config.finetune_steps, promote_steps=config.promote_steps,
                    distill=config.distill)
    latency = LatencySettings(max_seconds=config.measure_seconds)
    data = load_data(config.data, image_size=config.image_size, seed=config.seed)
    example = _example_input(data, config.batch_size)
    folder = RunFolder(config.run_dir)

    # Latency depends on the architecture only, so the budget is checked on an untrained model,
    # before minutes go into training the dense baseline.
    untrained = build_model(config.model, data.num_classes).eval()
    env = fingerprint(device, config.threads)
    cache = (LatencyCache(Path(config.results_dir) / "latency-cache", env)
             if config.latency_cache else None)
    # A helper searches the first process's space, whatever the machine's load says now.
    round_to = helper.round_to if helper else config.round_to
    if round_to == "auto":
        round_to = _auto_round_to(untrained, example, config, device, cache)
    built = build_space(untrained, example, model_name=config.model, space=config.space,
                        round_to=round_to, trace_timeout=config.trace_timeout)
    space = built.space
    # The study opens before anything is written: an unreachable database (or Ray cluster)
    # leaves no run folder.
    study = _study.open_study(config)
    folder.create()
    resolved = {**config.to_dict(), "storage": redacted(config.storage_url),
                "study": config.study, "round_to_used": round_to,
                "measured_in": context.describe()}
    if not helper:
        folder.write_json("config.json", resolved)
        folder.write_json("env.json", env)
    if helper:  # every worker's latencies are ratios to one measurement of the dense model
        reference, budget_ms = helper.reference, helper.budget_ms
    else:
        reference, budget_ms = _measure_reference(untrained, example, space, config, device,
                                                  latency, folder)

    dense = _dense_model(config, data, recipe)
    dense_accuracy = accuracy(dense, data.val_x, data.val_y)
    log.info("dense accuracy: val %.2f%%", 100 * dense_accuracy)
    drop = config.max_accuracy_drop
    evaluator = CandidateEvaluator(dense, config.model, data, example, device, latency, context,
                                   reference, budget_ms, recipe, config.seed, folder.models, cache,
                                   config.trial_timeout, config.importance,
                                   accuracy_floor=None if drop is None else dense_accuracy - drop / 100)
    reference_extra = {"accuracy": dense_accuracy,
                       "test_accuracy": accuracy(dense, data.test_x, data.test_y),
                       "budget_ms": budget_ms, "dense_widths": space.dense()}
    if not helper:
        folder.write_reference(reference, **reference_extra)

    def checkpoint() -> None:
        folder.write_csv("trials.csv", _study.trials_frame(study, budget_ms))

    if not helper:  # before any helper starts, so that the study is queued once
        if reevaluate:
            _study.enqueue_reevaluation(study, reevaluate)
        warm_start(study, space, dense, example)
    local = config.backend == "local"
    began = datetime.datetime.now()  # the clock Optuna stamps trials with
    others = _helpers.start(config, _helpers.FirstProcess(reference, budget_ms, round_to)) \
        if local and not helper and config.workers > 1 else []
    own = dataclasses.replace(config, trials=_helpers.shares(config.trials, config.workers)[0])
    trials = IsolatedEvaluator(evaluator, config.data, config.image_size) \
        if config.isolated and local else evaluator
    try:
        try:
            if local:
                _study.run_trials(study, space, trials, own, on_trial=checkpoint)
                if others and not _helpers.wait(others):
                    _run_missed(study, space, trials, config, others, began, checkpoint)
            else:  # each Ray trial runs in its own actor process: isolated already
                _ray_backend().run_trials(study, space, evaluator, config, folder.path,
                                          on_trial=checkpoint)
        finally:
            if trials is not evaluator:
                trials.close()
    except KeyboardInterrupt as exc:
        if helper:
            raise
        signal = "SIGTERM" if isinstance(exc, Terminated) else "interrupted"
        log.warning("%s: writing the finished trials and the partial front...", signal)
        _helpers.wait(others, stop=True)
        _finish(study, folder, reference, reference_extra, evaluator, built.notes,
                stopped=f"{signal}: latencies not re-measured, test accuracy not computed")
        raise SearchInterrupted(143 if isinstance(exc, Terminated) else 130) from None
    except TooManyFailures as exc:
        if helper:
            raise
        _helpers.wait(others, stop=True)
        _finish(study, folder, reference, reference_extra, evaluator, built.notes,
                stopped=str(exc))
        raise
    except BaseException:  # a full disk, a bug: stop the helpers too, then say it
        _helpers.wait(others, stop=True)
        raise
    if helper:
        return None
    return _finish(study, folder, reference, reference_extra, evaluator, built.notes,
                   final_steps=config.final_finetune_steps)


def _run_missed(study: optuna.Study, space: SearchSpace,
                evaluator: CandidateEvaluator | IsolatedEvaluator, config: SearchConfig,
                others: list[multiprocessing.process.BaseProcess], began: datetime.datetime,
                checkpoint: Callable[[], None]) -> None:
    """Runs here the trials that helpers which died did not start, so that ``--trials`` holds."""
    missed = _helpers.shortfall(study, config.trials, others, since=began)
    if not missed:
        return
    left = None
    if config.timeout is not None:
        left = config.timeout - (datetime.datetime.now() - began).total_seconds()
        if left <= 0:
            log.warning("%d trial(s) of the helpers that ended early were not run: the timeout "
                        "has passed", missed)
            return
    log.warning("running the %d trial(s) that the helpers which ended early did not start",
                missed)
    _study.run_trials(study, space, evaluator,
                      dataclasses.replace(config, trials=missed, timeout=left),
                      on_trial=checkpoint)


def _measure_reference(untrained: nn.Module, example: torch.Tensor, space: SearchSpace,
                       config: SearchConfig, device: torch.device, latency: LatencySettings,
                       folder: RunFolder) -> tuple[Reference, float]:
    """Measures the dense model and the smallest candidate; returns them and the budget in ms.
    BudgetUnreachable (with reference.json written) when even the smallest is over the budget."""
    context = config.context
    log.info("measuring the dense model and the smallest candidate on %s (%s)...", device,
             context.describe())
    reference = measure_reference(untrained, smallest_model(untrained, example, space), example,
                                  device, latency, context)
    budget_ms = config.budget_ms or config.budget_ratio * reference.latency_ms
    log.info("dense %.3f ms, smallest candidate %s ms, budget %.3f ms", reference.latency_ms,
             _ms(reference.smallest_latency_ms), budget_ms)
    if reference.smallest_latency_ms is not None and reference.smallest_latency_ms > budget_ms:
        folder.write_reference(reference, budget_ms=budget_ms)
        raise BudgetUnreachable(
            f"budget {budget_ms:.3f} ms is below the smallest candidate the space allows "
            f"({reference.smallest_latency_ms:.3f} ms measured; dense {reference.latency_ms:.3f} "
            f"ms); raise the budget or lower --round-to")
    return reference, budget_ms


def _finish(study: optuna.Study, folder: RunFolder, reference: Reference, reference_extra: dict,
            evaluator: CandidateEvaluator, space_notes: tuple[str, ...] = (),
            stopped: str | None = None,
            final_steps: int = 0) -> pd.DataFrame:
    """Writes trials.csv, pareto.csv, the reference, the notes and the reports; returns the front.
    ``stopped`` says why the run ended early: the front is then not re-measured. Otherwise the
    front goes through the final stage (``final_steps`` more fine-tune steps, re-measured)."""
    final = stopped is None
    budget_ms = evaluator.budget_ms
    fail_abandoned(study)  # again: one killed just before this run started may be known now
    trials = _study.trials_frame(study, budget_ms)
    scored = _front.current(trials)
    front = scored[_front.pareto_mask(scored["latency_ms"], scored["accuracy"])]
    # A finished, dominated trial stays dominated whatever later trials find, so its weights can
    # go; those of running trials (other workers on the same study) stay.
    finished = set(trials.loc[trials["state"] != "RUNNING", "trial"])
    folder.remove_models(finished - set(front["trial"]))
    notes = [*space_notes, *evaluator.data.notes]
    saved = front["trial"].map(lambda n: folder.model_json(n).exists()).astype(bool)
    for number in front.loc[~saved, "trial"]:
        notes.append(f"trial {number} is on the front but its saved model is missing: left off")
    front = front[saved]
    if final and len(front):
        front, dense_now = final_stage(front, folder, evaluator, reference, final_steps)
        reference_extra = {**reference_extra, "remeasured_latency_ms": dense_now,
                           "final_finetune_steps": final_steps}
        over = front[front["latency_ms"] > budget_ms]
        for row in over.itertuples():
            notes.append(f"trial {row.trial} re-measured at {row.latency_ms:.3f} ms, over the "
                         f"budget: left off the front")
        tuned = set(front["trial"])
        front = front[front["latency_ms"] <= budget_ms]
        front = front[_front.pareto_mask(front["latency_ms"], front["accuracy"])]
        if final_steps:
            dropped = tuned - set(front["trial"])
            folder.remove_models(dropped, final_only=True)
            if dropped:
                notes.append(f"final stage ({final_steps} more fine-tune steps): trial(s) "
                             f"{', '.join(map(str, sorted(dropped)))} fell off the front")
    else:
        front = front.assign(test_accuracy=float("nan"))
        if not final:
            notes.append(f"{STOPPED_NOTE} {stopped}")
    drift = measured_drift(trials, reference, reference_extra.get("remeasured_latency_ms"))
    reference_extra = {**reference_extra, "drift": drift}
    if drift["p90_change"] is not None and drift["p90_change"] > DRIFT_NOTE:
        notes.append(f"the dense model's latency moved more than {100 * DRIFT_NOTE:.0f}% in over "
                     f"a tenth of its {drift['measurements']} measurements during the run (up to "
                     f"{100 * drift['p90_change']:.0f}% at the 90th percentile; median "
                     f"x{drift['median']:.3f}): the machine was not quiet; "
                     f"latencies are ratios to the dense model measured alongside, which cancels "
                     f"most of it")
    front = front.assign(model_path=[
        folder.model_json(n, final=final and final_steps > 0).relative_to(folder.path).as_posix()
        for n in front["trial"]])
    if "quick_accuracy" not in front:
        front = front.assign(quick_accuracy=front["accuracy"])
    pareto = front.sort_values("latency_ms")[_study.TRIAL_COLUMNS + PARETO_EXTRA_COLUMNS]
    pareto = pareto.reset_index(drop=True)
    folder.write_reference(reference, **reference_extra)
    # Read again: other processes on the study may have finished trials while this one
    # re-measured, and the newest trials.csv is the one written last.
    folder.write_csv("trials.csv", _study.trials_frame(study, budget_ms))
    folder.write_csv("pareto.csv", pareto)
    folder.write_json("notes.json", notes)
    write_reports(load_run(folder.path))
    return pareto
