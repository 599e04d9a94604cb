"""The last step of a run: the front from the study's trials, the final stage (the front's models
fine-tuned longer and measured again), the run folder's tables and notes, and the reports.

It runs after the trials, and also when they stopped early (an interrupt, too many failures):
the front found so far is then written as it was measured, and the notes say why it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import pandas as pd

from search.flow._final_stage import DRIFT_NOTE, final_stage, measured_drift
from search.flow._prepare import Prepared
from search.reports import STOPPED_NOTE, write_reports
from search.runfolder import (
    LATENCY_MS,
    NOTES,
    PARETO,
    PARETO_EXTRA_COLUMNS,
    TRIAL_COLUMNS,
    ReferenceRecord,
    current,
    load_run,
    pareto_layers,
    pareto_mask,
    within_budget,
)
from search.study import fail_abandoned, trials_frame, write_trials

log = logging.getLogger(__name__)

# Given the final front and the trials table: notes that go first in the report.
Judge = Callable[[pd.DataFrame, pd.DataFrame], list[str]]


def finish(prepared: Prepared, stopped: str | None = None, final_steps: int = 0,
           final_layers: int = 1, judge: Judge | None = None) -> pd.DataFrame:
    """Writes trials.csv, pareto.csv, the reference, the notes and the reports; returns the front.
    ``stopped`` says why the run ended early: the front is then not re-measured. Otherwise the
    front and the ``final_layers - 1`` fronts behind it go through the final stage
    (``final_steps`` more fine-tune steps, re-measured), and the front is chosen again from them.
    ``judge`` is given the final front and the trials table before the notes and reports are
    written, and returns notes to put first (the nightly's comparison with last night)."""
    fail_abandoned(prepared.study)  # again: one killed just before this run started may be known
    final = stopped is None
    front, record, notes = _final_front(prepared, final=final, final_steps=final_steps,
                                        final_layers=final_layers)
    if not final:
        notes.append(f"{STOPPED_NOTE} {stopped}")
    return _write_run(prepared, front, record, notes, final_models=final and final_steps > 0,
                      judge=judge)


def _final_front(prepared: Prepared, *, final: bool, final_steps: int,
                 final_layers: int) -> tuple[pd.DataFrame, ReferenceRecord, list[str]]:
    """The front to write, the reference record to write with it (the final stage's dense
    re-measurement and the run's drift), and the notes on how the front was chosen."""
    folder, evaluator, budget_ms = prepared.folder, prepared.evaluator, prepared.budget_ms
    record, reference = prepared.record, prepared.record.reference
    trials = trials_frame(prepared.study, budget_ms)
    front, notes = _candidates(prepared, trials, final_layers if final and final_steps else 1)
    if final and len(front):
        front, dense_now = final_stage(front, folder, evaluator, reference, final_steps)
        record = dataclasses.replace(record, remeasured_latency_ms=dense_now,
                                     final_finetune_steps=final_steps)
        within = front[LATENCY_MS].map(lambda ms: within_budget(ms, budget_ms)).astype(bool)
        for row in front[~within].itertuples():
            notes.append(f"trial {row.trial} re-measured at {row.latency_ms:.3f} ms, over the "
                         f"budget: left off the front")
        tuned = set(front["trial"])
        front = front[within]
        front = front[pareto_mask(front["latency_ms"], front["accuracy"])]
        dropped = tuned - set(front["trial"])
        if final_steps and dropped:
            folder.remove_models(dropped, final_only=True)
            notes.append(f"final stage ({final_steps} more fine-tune steps): trial(s) "
                         f"{', '.join(map(str, sorted(dropped)))} ended off the front")
    else:
        front = front.assign(test_accuracy=float("nan"))
    drift = measured_drift(trials, reference, record.remeasured_latency_ms)
    if drift["p90_change"] is not None and drift["p90_change"] > DRIFT_NOTE:
        notes.append(f"the dense model's latency moved more than {100 * DRIFT_NOTE:.0f}% in over "
                     f"a tenth of its {drift['measurements']} measurements during the run (up to "
                     f"{100 * drift['p90_change']:.0f}% at the 90th percentile; median "
                     f"x{drift['median']:.3f}): the machine was not quiet; "
                     f"latencies are ratios to the dense model measured alongside, which cancels "
                     f"most of it")
    return front, dataclasses.replace(record, drift=drift), notes


def _candidates(prepared: Prepared, trials: pd.DataFrame,
                layers: int) -> tuple[pd.DataFrame, list[str]]:
    """The final stage's candidates: the front, and the ``layers - 1`` fronts of near misses
    behind it when the final stage fine-tunes (re-measured alone, a near miss could only join
    the front by noise); those whose saved model is missing are left off, with a note. A
    finished trial behind them stays there whatever later trials find, so its weights go; those
    of running trials (other workers on the same study) stay."""
    folder = prepared.folder
    scored = current(trials)
    front = scored[pareto_layers(scored["latency_ms"], scored["accuracy"], layers)]
    if layers > 1:
        near = len(front) - int(pareto_mask(front["latency_ms"], front["accuracy"]).sum())
        log.info("final stage: the front and %d near miss(es) behind it (--final-layers %d)",
                 near, layers)
    finished = set(trials.loc[trials["state"] != "RUNNING", "trial"])
    folder.remove_models(finished - set(front["trial"]))
    notes = [*prepared.space_notes, *prepared.evaluator.data.notes]
    saved = front["trial"].map(lambda n: folder.model_json(n).exists()).astype(bool)
    for number in front.loc[~saved, "trial"]:
        notes.append(f"trial {number} is on the front but its saved model is missing: left off")
    return front[saved], notes


def _write_run(prepared: Prepared, front: pd.DataFrame, record: ReferenceRecord,
               notes: list[str], *, final_models: bool, judge: Judge | None) -> pd.DataFrame:
    """Writes the front (``final_models``: its models are the final stage's), the reference,
    trials.csv, the notes (``judge``'s first) and the reports; returns the front as written."""
    folder = prepared.folder
    front = front.assign(model_path=[
        folder.model_json(n, final=final_models).relative_to(folder.path).as_posix()
        for n in front["trial"]])
    if "quick_accuracy" not in front:
        front = front.assign(quick_accuracy=front["accuracy"])
    pareto = front.sort_values("latency_ms")[TRIAL_COLUMNS + PARETO_EXTRA_COLUMNS]
    pareto = pareto.reset_index(drop=True)
    folder.write_reference(record)
    # Read again: other processes on the study may have finished trials while this one
    # re-measured, and the newest trials.csv is the one written last.
    trials = write_trials(prepared.study, folder.path, prepared.budget_ms)
    folder.write_csv(PARETO, pareto)
    if judge is not None:
        notes = [*judge(pareto, trials), *notes]
    folder.write_json(NOTES, notes)
    write_reports(load_run(folder.path))
    return pareto
