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
    study, folder, evaluator = prepared.study, prepared.folder, prepared.evaluator
    record, reference = prepared.record, prepared.record.reference
    final = stopped is None
    budget_ms = prepared.budget_ms
    fail_abandoned(study)  # again: one killed just before this run started may be known now
    trials = trials_frame(study, budget_ms)
    scored = current(trials)
    # The final stage's candidates: the front, and the near misses behind it when the final
    # stage fine-tunes (re-measured alone, a near miss could only join the front by noise). A
    # finished trial behind them stays there whatever later trials find, so its weights can go;
    # those of running trials (other workers on the same study) stay.
    layers = final_layers if final and final_steps else 1
    front = scored[pareto_layers(scored["latency_ms"], scored["accuracy"], layers)]
    if layers > 1:
        near = len(front) - int(pareto_mask(front["latency_ms"], front["accuracy"]).sum())
        log.info("final stage: the front and %d near miss(es) behind it (--final-layers %d)",
                 near, final_layers)
    finished = set(trials.loc[trials["state"] != "RUNNING", "trial"])
    folder.remove_models(finished - set(front["trial"]))
    notes = [*prepared.space_notes, *evaluator.data.notes]
    saved = front["trial"].map(lambda n: folder.model_json(n).exists()).astype(bool)
    for number in front.loc[~saved, "trial"]:
        notes.append(f"trial {number} is on the front but its saved model is missing: left off")
    front = front[saved]
    if final and len(front):
        front, dense_now = final_stage(front, folder, evaluator, reference, final_steps)
        record = dataclasses.replace(record, remeasured_latency_ms=dense_now,
                                     final_finetune_steps=final_steps)
        within = front[LATENCY_MS].map(lambda ms: within_budget(ms, budget_ms)).astype(bool)
        over = front[~within]
        for row in over.itertuples():
            notes.append(f"trial {row.trial} re-measured at {row.latency_ms:.3f} ms, over the "
                         f"budget: left off the front")
        tuned = set(front["trial"])
        front = front[within]
        front = front[pareto_mask(front["latency_ms"], front["accuracy"])]
        if final_steps:
            dropped = tuned - set(front["trial"])
            folder.remove_models(dropped, final_only=True)
            if dropped:
                notes.append(f"final stage ({final_steps} more fine-tune steps): trial(s) "
                             f"{', '.join(map(str, sorted(dropped)))} ended off the front")
    else:
        front = front.assign(test_accuracy=float("nan"))
        if not final:
            notes.append(f"{STOPPED_NOTE} {stopped}")
    drift = measured_drift(trials, reference, record.remeasured_latency_ms)
    record = dataclasses.replace(record, drift=drift)
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
    pareto = front.sort_values("latency_ms")[TRIAL_COLUMNS + PARETO_EXTRA_COLUMNS]
    pareto = pareto.reset_index(drop=True)
    folder.write_reference(record)
    # Read again: other processes on the study may have finished trials while this one
    # re-measured, and the newest trials.csv is the one written last.
    trials = write_trials(study, folder.path, budget_ms)
    folder.write_csv(PARETO, pareto)
    if judge is not None:
        notes = [*judge(pareto, trials), *notes]
    folder.write_json(NOTES, notes)
    write_reports(load_run(folder.path))
    return pareto
