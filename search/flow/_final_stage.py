"""The end of a run: the final stage (the front's models fine-tuned longer, measured again and
scored) and how the dense reference drifted while the run measured."""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd

from profilers import compare
from search._errors import UsageError
from search._progress import report
from search.candidates import CandidateEvaluator, scaled_latencies
from search.runfolder import (
    Reference,
    RunFolder,
    load_pruned_with_spec,
    save_pruned,
    trial_weights,
)
from search.training import finetune, score

log = logging.getLogger(__name__)


def final_stage(front: pd.DataFrame, folder: RunFolder, evaluator: CandidateEvaluator,
                reference: Reference, steps: int) -> tuple[pd.DataFrame, float]:
    """The models of ``front`` (the quick front, and its near misses when the run takes them),
    each fine-tuned ``steps`` more SGD steps from its search-time weights (saved as
    ``models/final-N``), then measured again together with the dense model, with 3x the repeats,
    and scored on the validation and test splits. The numbers users pick from are then those of
    the model they export. ``quick_accuracy`` keeps the search-time score.

    Another worker on the same study, finishing later, may have found a trial dominated and
    removed its model since ``front`` was read: such a trial is left off (it is dominated). One
    removed after it was loaded here is fine-tuned and saved as ``final-N`` all the same."""
    loaded = []  # (trial, spec, model) of the front's models still saved
    for number in front["trial"]:
        try:
            loaded.append((number, *load_pruned_with_spec(folder.model_json(number),
                                                          evaluator.dense)))
        except (FileNotFoundError, UsageError):
            log.info("trial %d: model removed by another worker that found it dominated", number)
    front = front[front["trial"].isin([number for number, _, _ in loaded])].copy()
    models = [model for _, _, model in loaded]
    front["quick_accuracy"] = front["accuracy"]
    if not models:
        return front.assign(test_accuracy=float("nan")), reference.latency_ms
    if steps:
        log.info("final stage: fine-tuning %d models for %d more steps...", len(models), steps)
        recipe = dataclasses.replace(evaluator.recipe, finetune_steps=steps)
        for done, (number, spec, model) in enumerate(loaded, start=1):
            finetune(model, evaluator.data, recipe, seed=evaluator.finetune_seed(number),
                     teacher=evaluator.teacher)
            report(log, "final stage", done, len(loaded), trial=number)
            save_pruned(model, dataclasses.replace(spec, weights=trial_weights(number, final=True)),
                        folder.model_json(number, final=True))
        front["accuracy"] = [score(m, evaluator.data.val, evaluator.recipe)
                             for m in models]
    comparison = compare([evaluator.dense_runner(), *models], evaluator.example,
                         device=evaluator.device, settings=evaluator.latency.scaled(3),
                         context=evaluator.context)
    front[["latency_ms", "latency_iqr_ms"]] = scaled_latencies(reference, comparison)
    front["test_accuracy"] = [score(m, evaluator.data.test, evaluator.recipe)
                              for m in models]
    return front, comparison.stats[0].median_ms


DRIFT_NOTE = 0.10  # a reference that moved more than this is worth a note in the report


def measured_drift(trials: pd.DataFrame, reference: Reference,
                   remeasured_ms: float | None) -> dict:
    """How the dense model's latency moved during the run, as multiples of the reference: it is
    measured again with every candidate (interleaved) and once more at the end."""
    now = pd.to_numeric(trials["dense_ms_now"], errors="coerce").dropna().tolist()
    if remeasured_ms is not None:
        now.append(remeasured_ms)
    factors = [value / reference.latency_ms for value in now]
    if not factors:
        return {"measurements": 0, "median": None, "min": None, "max": None, "p90_change": None}
    changes = pd.Series([abs(f - 1) for f in factors])
    # The 90th percentile, not the maximum: one trial's short measurement can catch a blip.
    return {"measurements": len(factors), "median": float(pd.Series(factors).median()),
            "min": min(factors), "max": max(factors),
            "p90_change": float(changes.quantile(0.9))}
