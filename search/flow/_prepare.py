"""The first step of a run: from a configuration to everything its trials need.

Device, data and model are resolved; the space built on the untrained model; the study opened
(before anything is written, so an unreachable database leaves no run folder); the dense model
and the smallest candidate measured and the budget decided from them, once, in milliseconds;
then the dense baseline trained or loaded and the evaluator built. What comes out is a
:class:`Prepared` run: the backend's :class:`TrialsJob` and what the finish step needs.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from torch import nn

from profilers import (
    LatencyCache,
    LatencySettings,
    fingerprint,
    recommended_round_to,
    sweep_settings,
    width_steps,
)
from search._config import SearchConfig
from search._errors import BudgetUnreachable, UsageError
from search.backends import TrialsJob
from search.candidates import (
    BuiltSpace,
    CandidateEvaluator,
    build_space,
    context_key,
    measure_reference,
    smallest_model,
)
from search.runfolder import CONFIG, ENV, Reference, ReferenceRecord, RunFolder
from search.sources import DataSplits, build_model, device_for, load_checkpoint, load_data
from search.study import Aim, StudyKey, enqueue_reevaluation, open_study, redacted, warm_start
from search.training import Recipe, dense_model, example_input, score
from spaces import convert_attention

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Given:
    """What a search from Python was handed instead of names (``search.run(model=module,
    train=..., ...)``): used in place of what the config's names would resolve to."""

    model: nn.Module | None = None  # trained
    data: DataSplits | None = None
    example_input: torch.Tensor | None = None
    score_fn: Callable[[torch.Tensor, torch.Tensor], float] | None = None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    @property
    def anything(self) -> bool:
        # Not dataclasses.astuple: it would deep-copy the model and the data to look at them.
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A run ready for its trials: the study, the job a backend runs, and what finishing it
    needs (the run folder, the record of the dense reference, the space's notes)."""

    config: SearchConfig
    study: optuna.Study
    job: TrialsJob
    folder: RunFolder
    record: ReferenceRecord
    space_notes: tuple[str, ...]
    env: dict[str, object]  # env.json: the device and software latencies are measured with

    @property
    def evaluator(self) -> CandidateEvaluator:
        return self.job.evaluator

    @property
    def budget_ms(self) -> float:
        return self.record.budget_ms


def prepare(config: SearchConfig, reevaluate: list[int] | None = None,
            given: Given | None = None) -> Prepared:
    """Prepares the run ``config`` describes (see the module docstring); ``reevaluate`` lists
    trials whose widths are scored again first (the nightly's last front); ``given``: the
    objects a search from Python was handed, used instead of the config's model and data.

    Raises UsageError for bad input (before the run folder is written where it can be found out
    first) and BudgetUnreachable (with reference.json written) when even the smallest candidate
    is over the budget.
    """
    resolved = _resolve(config, given or Given())
    measured = _measure(config, resolved)
    return _build(config, resolved, measured, reevaluate or [])


@dataclass(frozen=True, kw_only=True)
class _Resolved:
    """What the config's names stand for: nothing measured or written yet."""

    given: Given
    device: torch.device
    recipe: Recipe
    latency: LatencySettings
    data: DataSplits
    example: torch.Tensor
    folder: RunFolder
    untrained: nn.Module
    checkpointed: nn.Module | None


@dataclass(frozen=True, kw_only=True)
class _Measured:
    """The space, the open study, the run folder's first files, and the budget measured."""

    space: BuiltSpace
    key: StudyKey
    study: optuna.Study
    env: dict[str, object]
    cache: LatencyCache | None
    reference: Reference
    budget_ms: float


def _resolve(config: SearchConfig, given: Given) -> _Resolved:
    """The device, the fine-tune's recipe, the data, the input latency is measured with, and
    the model untrained (and with its checkpoint, found out now, before the study and the run
    folder exist)."""
    device = device_for(config.device, config.context)
    recipe = Recipe(finetune_steps=config.finetune_steps, promote_steps=config.promote_steps,
                    promote_margin=config.promote_margin, distill=config.distill,
                    finetune_lr=config.finetune_lr,
                    score_fn=given.score_fn, loss_fn=given.loss_fn)
    data = given.data or load_data(config.data, image_size=config.image_size, seed=config.seed,
                                   streaming=config.streaming)
    for note in data.notes:
        log.info("data: %s", note)
    # Latency depends on the architecture only, so the budget is checked on an untrained model,
    # before minutes go into training the dense baseline.
    untrained = _given_model(given.model) if given.model is not None else \
        build_model(config.model, data.num_classes).eval()
    checkpointed = None
    if config.checkpoint:
        checkpointed = build_model(config.model, data.num_classes)
        load_checkpoint(checkpointed, config.checkpoint)
    return _Resolved(given=given, device=device, recipe=recipe,
                     latency=LatencySettings(max_seconds=config.measure_seconds), data=data,
                     example=_example(given.example_input, data, config.batch_size),
                     folder=RunFolder(config.run_dir), untrained=untrained,
                     checkpointed=checkpointed)


def _measure(config: SearchConfig, resolved: _Resolved) -> _Measured:
    """Builds the space on the untrained model (``--round-to auto`` measured first), opens the
    study (before anything is written, so an unreachable database leaves no run folder), writes
    config.json and env.json, and measures the budget."""
    untrained, example, device = resolved.untrained, resolved.example, resolved.device
    env = fingerprint(device, config.threads)
    cache = (LatencyCache(Path(config.results_dir) / "latency-cache", env)
             if config.latency_cache else None)
    round_to = config.round_to
    if round_to == "auto":
        round_to = _auto_round_to(untrained, example, config, device, cache)
    built = build_space(untrained, example, model_name=config.model, space=config.space,
                        round_to=round_to, trace_timeout=config.trace_timeout)
    key = config.study_key()  # once: it reads a checkpoint's whole file for its digest
    study = open_study(key)
    folder = resolved.folder
    folder.create()
    folder.write_json(CONFIG, {**config.to_dict(), "storage": redacted(config.storage_url),
                               "study": config.study, "round_to_used": round_to,
                               "measured_in": config.context.describe()})
    folder.write_json(ENV, env)
    reference, budget_ms = _budget(untrained, example, built.space, config, device,
                                   resolved.latency, folder)
    return _Measured(space=built, key=key, study=study, env=env, cache=cache,
                     reference=reference, budget_ms=budget_ms)


def _build(config: SearchConfig, resolved: _Resolved, measured: _Measured,
           reevaluate: list[int]) -> Prepared:
    """The dense model (given, checkpointed or the cached baseline) and its accuracy, the
    evaluator, reference.json, the re-evaluations and the warm start queued, and the job."""
    given, data, recipe, folder = resolved.given, resolved.data, resolved.recipe, resolved.folder
    reference, budget_ms, space = measured.reference, measured.budget_ms, measured.space.space
    if given.model is not None:
        dense = _given_model(given.model)
    elif resolved.checkpointed is not None:  # loaded in _resolve: not read from disk again
        dense = resolved.checkpointed.eval()
    else:
        dense = dense_model_for(config, data, recipe)
    dense_accuracy = score(dense, data.val, recipe)
    log.info("dense accuracy: val %.2f%%", 100 * dense_accuracy)
    drop = config.max_accuracy_drop
    evaluator = CandidateEvaluator(
        dense=dense, model_name=config.model, data=data, example=resolved.example,
        device=resolved.device, latency=resolved.latency, context=config.context,
        reference=reference, budget_ms=budget_ms, recipe=recipe, seed=config.seed,
        run_dir=folder.path, cache=measured.cache, trial_timeout=config.trial_timeout,
        importance=config.importance,
        accuracy_floor=None if drop is None else dense_accuracy - drop / 100)
    record = ReferenceRecord(reference=reference, budget_ms=budget_ms, accuracy=dense_accuracy,
                             test_accuracy=score(dense, data.test, recipe),
                             dense_widths=space.dense())
    folder.write_reference(record)
    # Queued before any backend starts, so that each is queued once.
    if reevaluate:
        enqueue_reevaluation(measured.study, reevaluate)
    smallest_ms = reference.smallest_latency_ms
    aim = Aim(dense_ms=reference.latency_ms, smallest_ms=smallest_ms, budget_ms=budget_ms) \
        if smallest_ms is not None else None
    warm_start(measured.study, space, name=config.warm_start, dense=dense,
               example=resolved.example, aim=aim)
    job = TrialsJob(study=measured.key, space=space, evaluator=evaluator,
                    data_name=config.data, image_size=config.image_size,
                    streaming=config.streaming, run_dir=folder.path,
                    trials=config.trials, timeout=config.timeout, threads=config.threads)
    return Prepared(config=config, study=measured.study, job=job, folder=folder, record=record,
                    space_notes=measured.space.notes, env=measured.env)


def _given_model(model: nn.Module) -> nn.Module:
    """A copy of a model handed over from Python, on the CPU in eval mode, with its attention
    modules in the form whose heads prune (as ``build_model`` gives them): the caller's model is
    never changed."""
    copied = copy.deepcopy(model).cpu().eval()
    convert_attention(copied)
    return copied


def _example(given: torch.Tensor | None, data: DataSplits, batch_size: int) -> torch.Tensor:
    """The input latency is measured with: the one handed over (one sample, or a batch of
    ``--batch-size``), else validation images."""
    if given is None:
        return example_input(data, batch_size)
    if given.ndim < 2 or len(given) not in (1, batch_size):
        raise UsageError(f"example_input must be one sample or a batch of --batch-size "
                         f"{batch_size} (N x C x ...), got shape {tuple(given.shape)}")
    return given.detach().cpu().float().expand(batch_size, *given.shape[1:]).clone()


def dense_model_for(config: SearchConfig, data: DataSplits, recipe: Recipe) -> nn.Module:
    """The trained dense model ``config`` starts from: ``--checkpoint``, else the cached
    baseline (``search.training.dense_model``)."""
    return dense_model(model=config.model, data_name=config.data, data=data,
                       image_size=config.image_size, seed=config.seed, recipe=recipe,
                       checkpoint=config.checkpoint, results_dir=config.results_dir)


# A space whose smallest candidate keeps this share of the dense latency or more has little to find.
FLAT_SHARE = 0.9


def flat_space_warning(dense_ms: float, smallest_ms: float, device_type: str) -> str | None:
    """What to say when pruning barely moves latency in this context (None when it does): on an
    H200 at batch 1, eager, VGG-16-BN's smallest candidate ran at 0.92 of the dense latency,
    every kernel's cost set by its launch rather than by the widths pruning changes."""
    share = smallest_ms / dense_ms
    if share < FLAT_SHARE:
        return None
    fixes = ("--cuda-graphs, --runtime compile or the --batch-size you deploy with"
             if device_type == "cuda" else "the --batch-size and --image-size you deploy with")
    return (f"the smallest candidate runs at {share:.2f} of the dense latency here: latency in "
            f"this context is set by overheads, not by the widths pruning changes, so the front "
            f"will be close to flat; measure the context you deploy ({fixes})")


def _budget(untrained: nn.Module, example: torch.Tensor, space, config: SearchConfig,
            device: torch.device, latency: LatencySettings,
            folder: RunFolder) -> tuple[Reference, float]:
    """Measures the dense model and the smallest candidate; returns them and the budget in ms,
    decided here once for the whole run. BudgetUnreachable (with reference.json written) when
    even the smallest candidate is over it."""
    context = config.context
    log.info("measuring the dense model and the smallest candidate on %s (%s)...", device,
             context.describe())
    reference = measure_reference(untrained, smallest_model(untrained, example, space), example,
                                  device, latency, context)
    budget_ms = config.budget_ms or config.budget_ratio * reference.latency_ms
    smallest = reference.smallest_latency_ms
    log.info("dense %.3f ms, smallest candidate %s ms, budget %.3f ms", reference.latency_ms,
             "n/a" if smallest is None else f"{smallest:.3f}", budget_ms)
    if smallest is not None and (flat := flat_space_warning(reference.latency_ms, smallest,
                                                            device.type)):
        log.warning(flat)
    if smallest is not None and smallest > budget_ms:
        folder.write_reference(ReferenceRecord(reference=reference, budget_ms=budget_ms))
        raise BudgetUnreachable(
            f"budget {budget_ms:.3f} ms is below the smallest candidate the space allows "
            f"({smallest:.3f} ms measured; dense {reference.latency_ms:.3f} "
            f"ms); raise the budget or lower --round-to")
    return reference, budget_ms


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
    # As long per layer kind as --measure-seconds allows a comparison, times the sweep's factor.
    curves = width_steps(model, example, device=device, context=config.context,
                         settings=sweep_settings(config.measure_seconds))
    round_to = recommended_round_to(curves)
    for curve in curves:
        log.info("  %s: multiples of %d give away the fewest channels", curve.kind,
                 curve.recommended)
    log.info("--round-to auto: %d", round_to)
    if cache is not None:
        cache.put(key, {"round_to": round_to, "curves": [c.to_dict() for c in curves]})
    return round_to
