"""Trials: the loop that adds them to a study, scoring and recording each, and the trials table
read back from the study (what a trial draws is ``._sampling``; opening the study ``._study``).

The loop uses Optuna's ask-and-tell interface rather than ``study.optimize`` so that a failing
candidate is told as FAIL with its reason, an interrupt leaves every finished trial stored, and a
progress line is logged per trial. Everything a trial found is kept in its user attributes; the
trials table is read back from the storage, so resumed runs see all earlier trials.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import optuna
import pandas as pd

from search._errors import StorageFailed, TooManyFailures
from search._guards import interrupts_deferred
from search.candidates import (
    CandidateResult,
    Promotion,
    failure_kind,
    failure_reason,
    is_machine_error,
    machine_message,
    promotion_for,
)
from search.runfolder import (
    ACCURACY,
    ALLOCATION,
    DENSE_MS_NOW,
    FAIL_REASON,
    FEASIBLE,
    IMPORTANCE,
    LATENCY_IQR_MS,
    LATENCY_MS,
    MACS,
    PARAMS,
    PROMOTED,
    REEVALUATES,
    REPEAT_OF,
    RUNG0_ACCURACY,
    SCORED,
    SECONDS,
    SOURCE,
    TRIAL_COLUMNS,
    TRIAL_EXTRA_COLUMNS,
    TRIALS,
    Reference,
    RunFolder,
    counts_for_front,
    failed,
    within_budget,
)
from search.study._gaps import sampler_name
from search.study._liveness import HEARTBEAT_ATTR, WORKER_ATTR, claim, heartbeat
from search.study._sampling import suggest, suggest_importance
from spaces import SearchSpace

log = logging.getLogger(__name__)


class Evaluator(Protocol):
    """What the loop scores a trial with: ``CandidateEvaluator``, or a stand-in for it in another
    process (``search.backends``' isolated worker)."""

    budget_ms: float
    accuracy_floor: float | None
    importance: str
    reference: Reference

    def evaluate(self, number: int, allocation: dict[str, int], seed_number: int | None = None,
                 importance: str | None = None,
                 promotion: Promotion | None = None) -> CandidateResult: ...

_CONSTRAINT = "latency_over_budget_ms"  # ≤ 0 is feasible, as Optuna's constraints read
_FLOOR_CONSTRAINT = "accuracy_under_floor"  # with --max-accuracy-drop
# When more than half of a run's first trials fail, the model, data or space is broken: stop.
_EARLY_TRIALS = 8


def candidate_key(allocation_key: str, importance: str | None) -> str:
    """What makes two trials the same candidate: the widths, and the criterion when searched."""
    return allocation_key if importance is None else f"{allocation_key} {importance}"


def completed_by_allocation(study: optuna.Study) -> dict[str, int]:
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return {candidate_key(t.user_attrs[ALLOCATION], t.user_attrs.get(IMPORTANCE)): t.number
            for t in done if ALLOCATION in t.user_attrs}


def _constraint(attrs: dict, budget_ms: float) -> float:
    """Latency over the budget (≤ 0 feasible); a failed candidate counts as a budget over."""
    if failed(attrs):
        return budget_ms
    return attrs[LATENCY_MS] - budget_ms


def _set_constraints(trial: optuna.Trial, attrs: dict, budget_ms: float,
                     accuracy_floor: float | None) -> None:
    """What the sampler reads as feasible (every constraint ≤ 0): the latency within the budget
    and, given a floor, the accuracy of a fine-tuned candidate at or above it. Then marks the
    trial ``SCORED``: everything it recorded is stored, so ``recorded_values`` can tell it."""
    accuracy = attrs.get(ACCURACY)  # None: not fine-tuned (over the budget, or failed)
    if accuracy_floor is not None and accuracy is not None:
        trial.set_constraint(_FLOOR_CONSTRAINT, accuracy_floor - accuracy)
    trial.set_constraint(_CONSTRAINT, _constraint(attrs, budget_ms))
    trial.set_user_attr(SCORED, True)


def _record_result(trial: optuna.Trial, result: CandidateResult, allocation_key: str,
                   budget_ms: float, accuracy_floor: float | None = None) -> list[float]:
    attrs = {ALLOCATION: allocation_key, LATENCY_MS: result.latency_ms,
             LATENCY_IQR_MS: result.latency_iqr_ms, MACS: result.macs, PARAMS: result.params,
             FEASIBLE: result.feasible, ACCURACY: result.accuracy, SECONDS: result.seconds,
             **result.extra}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    # Optuna needs a value for both objectives. A candidate over the budget was never fine-tuned,
    # so it is told 0 accuracy; the constraint already marks it infeasible for the sampler, and
    # the trials table shows its accuracy as empty, never as 0.
    _set_constraints(trial, attrs, budget_ms, accuracy_floor)
    return [result.accuracy if result.accuracy is not None else 0.0, result.latency_ms]


def record_failure(trial: optuna.Trial, reason: str, allocation_key: str | None,
                   budget_ms: float, dense_ms: float) -> list[float]:
    """A candidate that broke. Optuna's samplers ignore FAIL trials, so it is told as an
    infeasible one (no accuracy, the dense model's latency, the constraint violated): the sampler
    then steers away from that region. ``fail_reason`` marks it; trials.csv shows it as FAIL.
    Returns the values to tell."""
    if allocation_key is not None:
        trial.set_user_attr(ALLOCATION, allocation_key)
    trial.set_user_attr(FAIL_REASON, reason)
    _set_constraints(trial, {FAIL_REASON: reason}, budget_ms, None)
    return [0.0, dense_ms]


def _progress(number: int, result: CandidateResult, budget_ms: float) -> str:
    """One line per trial, in the order things happened: the latency measured (median ±
    IQR), its MACs, then the fine-tunes and the validation accuracy after each."""
    head = (f"trial {number:>3}  {result.latency_ms:7.3f} ms ±{result.latency_iqr_ms:.3f}  "
            f"{result.macs / 1e6:7.2f} MMACs")
    if not result.feasible:
        return (f"{head}  over the {budget_ms:.3f} ms budget: not fine-tuned  "
                f"{result.seconds:5.1f} s")
    if PROMOTED not in result.extra:  # one fidelity (--promote-steps 0)
        scores = f"fine-tuned: val {100 * result.accuracy:5.1f}%"
    elif result.extra[PROMOTED]:
        scores = (f"quick fine-tune: val {100 * result.extra[RUNG0_ACCURACY]:5.1f}%, promoted to "
                  f"the longer one: val {100 * result.accuracy:5.1f}%")
    else:
        scores = (f"quick fine-tune: val {100 * result.accuracy:5.1f}%, not promoted (an earlier "
                  f"candidate at most as slow was better)")
    return f"{head}  {scores}  {result.seconds:5.1f} s"


def run_trials(study: optuna.Study, space: SearchSpace, evaluator: Evaluator, *, trials: int,
               timeout: float | None = None,
               on_trial: Callable[[], None] | None = None) -> int:
    """Adds ``trials`` trials to the study (fewer if ``timeout`` seconds run out).

    A candidate that breaks is recorded with its reason (told to the sampler as infeasible) and
    the search goes on; TooManyFailures when most of the first trials break. A full disk or a
    storage error raises StorageFailed. KeyboardInterrupt propagates after the running trial is
    told FAIL. Returns the number of trials run.
    """
    seen = completed_by_allocation(study)
    began, ran, failures = time.perf_counter(), 0, Counter()
    while ran < trials:
        if timeout is not None and time.perf_counter() - began > timeout:
            log.info("timeout of %.0f s reached after %d trials", timeout, ran)
            break
        trial = None
        try:
            # A signal inside ask() would leave a stored trial no one holds: hold it back until
            # ask returns, so the trial is given up below like any interrupted one.
            with interrupts_deferred():
                trial = study.ask()
            ran += 1
            claim(trial)
            with heartbeat(trial):
                failed = _run_one(study, trial, space, evaluator, seen)
        except KeyboardInterrupt:
            if trial is not None:
                give_up(study, trial, "interrupted")
            raise
        except Exception as exc:  # storage or disk (or a bug of ours): never the candidate's
            if trial is not None:
                give_up(study, trial, f"stopped: {failure_reason(exc)}")
            if is_machine_error(exc):
                raise StorageFailed(machine_message(exc)) from exc
            raise
        if failed:
            failures[failed] += 1
        if on_trial is not None:
            on_trial()
        check_early_failures(ran, trials, failures)
    return ran


def check_early_failures(ran: int, trials: int, failures: Counter) -> None:
    """TooManyFailures when, at the end of the run's first trials (8, or all if fewer), more
    than half of them failed: the model, data or space is broken, not a few candidates."""
    if ran == min(trials, _EARLY_TRIALS) and sum(failures.values()) > ran / 2:
        counted = ", ".join(f"{n}x {kind}" for kind, n in failures.most_common())
        raise TooManyFailures(
            f"{sum(failures.values())} of the first {ran} trials failed ({counted}); the "
            f"model, data or space is likely broken: see fail_reason in trials.csv, or "
            f"run with --debug")


def _run_one(study: optuna.Study, trial: optuna.Trial, space: SearchSpace,
             evaluator: Evaluator,
             seen: dict[str, int]) -> str | None:
    """Scores and tells one trial; returns the failure kind if the candidate broke."""
    values, failed = score(study, trial, space, evaluator, seen)
    study.tell(trial, values)
    return failed


def score(study: optuna.Study, trial: optuna.Trial, space: SearchSpace,
          evaluator: Evaluator,
          seen: dict[str, int]) -> tuple[list[float], str | None]:
    """Samples and scores one trial and records what it found on it, without telling it: returns
    the objective values to tell and the failure kind if the candidate broke. Errors of the
    machine or the storage propagate: they are not the candidate's."""
    allocation = suggest(trial, space)
    trials = study.get_trials(deepcopy=False)
    _record_source(study, trial, trials[trial.number])
    importance = suggest_importance(trial, evaluator.importance)
    if importance is not None:
        trial.set_user_attr(IMPORTANCE, importance)
    allocation_key = json.dumps(allocation, sort_keys=True)
    key = candidate_key(allocation_key, importance)
    earlier = trials[seen[key]] if key in seen else None
    # A re-evaluation (the nightly's last front) is scored again, never reused.
    if earlier is not None and REEVALUATES not in trial.user_attrs \
            and _still_valid(earlier, evaluator.budget_ms):
        values = _repeat(trial, earlier, evaluator.budget_ms, evaluator.accuracy_floor)
        reason = earlier.user_attrs.get(FAIL_REASON)
        return values, (reason.split(":", 1)[0] if reason else None)
    seed_number = trial.user_attrs.get(REEVALUATES)
    promotion = promotion_for(trials, trials[seed_number] if seed_number is not None else None)
    try:
        result = evaluator.evaluate(trial.number, allocation, seed_number=seed_number,
                                    importance=importance, promotion=promotion)
    except Exception as exc:  # any candidate may break; record why and go on
        if is_machine_error(exc):
            raise
        reason = failure_reason(exc)
        values = record_failure(trial, reason, allocation_key, evaluator.budget_ms,
                                evaluator.reference.latency_ms)
        seen[key] = trial.number
        log.warning("trial %3d  failed: %s", trial.number, reason)
        return values, failure_kind(exc)
    values = _record_result(trial, result, allocation_key, evaluator.budget_ms,
                            evaluator.accuracy_floor)
    seen[key] = trial.number
    log.info(_progress(trial.number, result, evaluator.budget_ms))
    return values, None


def _record_source(study: optuna.Study, trial: optuna.Trial,
                   frozen: optuna.trial.FrozenTrial) -> None:
    """Keeps what proposed the trial as its ``source``: the warm start's queue (set when queued),
    the nightly's re-evaluations, a trial someone else queued (``study.enqueue_trial``, as the
    benchmarks do: ``enqueued``), the ``gaps`` sampler's proposal, or else the study's
    sampler. ``frozen``: the trial as the storage holds it (what queued it)."""
    if SOURCE in trial.user_attrs:
        return
    if REEVALUATES in trial.user_attrs:
        trial.set_user_attr(SOURCE, "re-evaluation")
        return
    if "fixed_params" in frozen.system_attrs:
        trial.set_user_attr(SOURCE, "enqueued")
        return
    # A sampler that proposes from its own catalogue (gaps) says so by a source(number) method.
    source = getattr(study.sampler, "source", None)
    proposed = source(trial.number) if callable(source) else None
    trial.set_user_attr(SOURCE, proposed or sampler_name(study.sampler))


def give_up(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """Marks the running trial FAIL on the way out; if the storage cannot take even that, the
    next start finds the trial abandoned (its process is gone) and marks it then."""
    try:
        trial.set_user_attr(FAIL_REASON, reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    except Exception as exc:
        log.debug("could not mark trial %d failed: %s", trial.number, exc)


def recorded_values(trial: optuna.trial.FrozenTrial, dense_ms: float) -> list[float] | None:
    """The values to tell for a trial whose scores were recorded (``score`` finished) but not
    told yet; None while it is still being scored."""
    attrs = trial.user_attrs
    # Studies written before SCORED was marked: their budget constraint was recorded last.
    legacy = any(key.endswith(f":{_CONSTRAINT}") for key in trial.system_attrs)
    if not attrs.get(SCORED) and not legacy:
        return None
    if failed(attrs):
        return [0.0, dense_ms]
    return [attrs[ACCURACY] if attrs.get(ACCURACY) is not None else 0.0, attrs[LATENCY_MS]]


def _still_valid(earlier: optuna.trial.FrozenTrial, budget_ms: float) -> bool:
    """Whether an earlier score of the same widths can stand: it was fine-tuned, or it is still
    over this run's budget (a larger budget on resume makes it worth fine-tuning after all)."""
    attrs = earlier.user_attrs
    if failed(attrs):  # the same widths break the same way
        return True
    return attrs.get(ACCURACY) is not None or not within_budget(attrs[LATENCY_MS], budget_ms)


def _repeat(trial: optuna.Trial, earlier: optuna.trial.FrozenTrial, budget_ms: float,
            accuracy_floor: float | None) -> list[float]:
    """Records a trial whose allocation (after rounding) was already scored, without re-scoring;
    returns the earlier values."""
    for key, value in earlier.user_attrs.items():
        if key not in (WORKER_ATTR, HEARTBEAT_ATTR, REEVALUATES, SOURCE, SCORED):  # its own
            trial.set_user_attr(key, value)
    trial.set_user_attr(REPEAT_OF, earlier.number)
    trial.set_user_attr(SECONDS, 0.0)
    _set_constraints(trial, earlier.user_attrs, budget_ms, accuracy_floor)
    log.info("trial %3d  same widths as trial %d: reused its scores", trial.number, earlier.number)
    return list(earlier.values)


def trials_frame(study: optuna.Study, budget_ms: float) -> pd.DataFrame:
    """One row per trial that has started, with ``TRIAL_COLUMNS`` then ``TRIAL_EXTRA_COLUMNS``
    (warm-start candidates that a run with fewer ``--trials`` did not reach stay queued in the
    study for the next run, not listed); feasibility is judged against ``budget_ms``."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.WAITING:
            continue
        a = t.user_attrs
        rows.append({
            "trial": t.number,
            "state": "FAIL" if failed(a) else t.state.name,
            FEASIBLE: t.state == optuna.trial.TrialState.COMPLETE
            and counts_for_front(a, budget_ms),
            **{column: a.get(column) for column in (*TRIAL_COLUMNS[3:], *TRIAL_EXTRA_COLUMNS)},
            DENSE_MS_NOW: None if REPEAT_OF in a else a.get(DENSE_MS_NOW),
        })
    frame = pd.DataFrame(rows, columns=[*TRIAL_COLUMNS, *TRIAL_EXTRA_COLUMNS])
    for column in (MACS, PARAMS, REPEAT_OF, REEVALUATES):
        frame[column] = frame[column].astype("Int64")
    return frame


def write_trials(study: optuna.Study, run_dir: Path, budget_ms: float) -> pd.DataFrame:
    """Writes the run folder's trials table (after every trial, by every process on the study:
    the newest one is whoever wrote last); returns it."""
    frame = trials_frame(study, budget_ms)
    RunFolder(run_dir).write_csv(TRIALS, frame)
    return frame
