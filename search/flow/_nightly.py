"""The nightly search: resume the study, score last night's front again, add trials for a time
budget, keep one row per night in ``history.csv``, and say when tonight is worse.

Fronts of different nights are compared by hypervolume against one reference point, fixed on the
first night and stored with the study (the budget in ms, and the dense accuracy minus 0.2), so a
number from March and one from June measure the same box.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
from importlib import metadata
from pathlib import Path

import pandas as pd

from search._config import UNLIMITED_TRIALS, SearchConfig
from search.flow._prepare import Prepared, prepare
from search.flow._search import backend_of, run_and_finish
from search.runfolder import HISTORY, PARETO, hypervolume
from search.study import optuna_quiet

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["date", "trials", "hypervolume", "hv_ref_latency_ms", "hv_ref_accuracy",
                   "front_size", "best_accuracy", "fastest_ms", "budget_ms", "noise",
                   "fingerprint", "device", "torch", "optuna", "torch_pruning"]
_HV_REFERENCE_ATTR = "hwprune_hv_reference"
REGRESSION_EXIT = 6  # tonight is worse than last night, or the device changed
# Tonight is "worse" only when its hypervolume stays below last night's even with its latencies
# lowered by both nights' noise (each front's median relative IQR), and never less than this.
_MIN_TOLERANCE = 0.02
# How the accuracy floor of the reference point sits below the dense model.
_ACCURACY_MARGIN = 0.2


@dataclasses.dataclass(frozen=True)
class Night:
    """What a nightly run found: the front, tonight's history row and what got worse.

    Example:
        >>> import search
        >>> night = search.nightly(search.SearchConfig(budget_ratio=0.5), hours=3)  # doctest: +SKIP
        >>> night.problems or "no regression"  # doctest: +SKIP
        'no regression'
    """

    pareto: pd.DataFrame
    row: dict
    problems: list[str]


def _fingerprint(env: dict) -> str:
    """What makes latencies comparable between nights: device and the software that runs it."""
    keys = ("device", "cpu_model", "gpu_name", "torch", "cuda", "cudnn")
    subset = {k: env.get(k) for k in keys}
    return hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()[:12]


def _last_front(run_dir: Path) -> list[int]:
    """Trial numbers of the previous run's front, if it finished one."""
    try:
        return [int(n) for n in pd.read_csv(run_dir / PARETO)["trial"]]
    except (FileNotFoundError, KeyError, ValueError, pd.errors.ParserError):
        return []


def nightly(config: SearchConfig, hours: float) -> Night:
    """Runs tonight's search for ``hours`` on the same study (last night's front scored again
    first, then new trials), appends tonight's row to ``history.csv`` and returns the
    :class:`Night`; ``hwprune nightly`` exits 6 when ``problems`` is not empty.

    Example:
        >>> import search
        >>> night = search.nightly(search.SearchConfig(budget_ratio=0.5), hours=3)  # doctest: +SKIP
        >>> night.row["trials"], night.problems  # doctest: +SKIP
        (212, [])
    """
    previous = _last_front(config.run_dir)
    tonight = dataclasses.replace(config, timeout=hours * 3600, trials=max(config.trials, UNLIMITED_TRIALS))
    if previous:
        log.info("nightly: scoring last night's front again first (trials %s)",
                 ", ".join(map(str, previous)))
    backend = backend_of(tonight)
    nights: list[tuple[dict, list[str]]] = []
    with optuna_quiet(), contextlib.ExitStack() as connection:
        connection.enter_context(backend.connected())
        prepared = prepare(tonight, reevaluate=previous)

        def judge(pareto: pd.DataFrame, trials: pd.DataFrame) -> list[str]:
            """Tonight's history row, compared with last night's: the report's first notes."""
            row, problems = _tonight(prepared, pareto, len(trials))
            nights.append((row, problems))
            return problems

        pareto = run_and_finish(prepared, backend, judge=judge, disconnect=connection.close)
    row, problems = nights[0]
    return Night(pareto, row, problems)


def _tonight(prepared: Prepared, pareto: pd.DataFrame, trials: int) -> tuple[dict, list[str]]:
    """Appends tonight's row to history.csv; returns it and what is worse than last night."""
    study, record = prepared.study, prepared.record
    reference_point = study.user_attrs.get(_HV_REFERENCE_ATTR)
    if reference_point is None:
        reference_point = {"latency_ms": record.budget_ms,
                           "accuracy": max(0.0, record.accuracy - _ACCURACY_MARGIN)}
        study.set_user_attr(_HV_REFERENCE_ATTR, reference_point)
    row = _history_row(prepared.env, trials, record.budget_ms, pareto, reference_point)
    history_path = prepared.folder.path / HISTORY
    history = pd.read_csv(history_path) if history_path.is_file() else pd.DataFrame()
    problems = _compare(history.iloc[-1].to_dict() if len(history) else None, row, pareto,
                        reference_point)
    prepared.folder.write_csv(
        HISTORY, pd.concat([history, pd.DataFrame([row])], ignore_index=True)
        .reindex(columns=HISTORY_COLUMNS))
    return row, problems


def _history_row(env: dict, trials: int, budget_ms: float, pareto: pd.DataFrame,
                 reference_point: dict) -> dict:
    noise = float((pareto["latency_iqr_ms"] / pareto["latency_ms"]).median()) if len(pareto) \
        else None
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "trials": trials,
        "hypervolume": hypervolume(pareto["latency_ms"], pareto["accuracy"],
                                          reference_point["latency_ms"],
                                          reference_point["accuracy"]),
        "hv_ref_latency_ms": reference_point["latency_ms"],
        "hv_ref_accuracy": reference_point["accuracy"],
        "front_size": len(pareto),
        "best_accuracy": float(pareto["accuracy"].max()) if len(pareto) else None,
        "fastest_ms": float(pareto["latency_ms"].min()) if len(pareto) else None,
        "budget_ms": budget_ms,
        "noise": noise,
        "fingerprint": _fingerprint(env),
        "device": env.get("gpu_name") or env.get("cpu_model"),
        "torch": env.get("torch"),
        "optuna": metadata.version("optuna"),
        "torch_pruning": metadata.version("torch-pruning"),
    }


def _compare(last: dict | None, row: dict, pareto: pd.DataFrame,
             reference_point: dict) -> list[str]:
    """What is worse tonight than last night, in sentences for the report."""
    if last is None:
        return []
    problems = []
    if last["fingerprint"] != row["fingerprint"]:
        problems.append(f"nightly: the device or its software changed since {last['date']} "
                        f"(fingerprint {last['fingerprint']} -> {row['fingerprint']}; torch "
                        f"{last['torch']} -> {row['torch']}): latencies of the two nights are "
                        f"not comparable")
    # Both nights' latencies are measurements: tonight may have measured high and last night low.
    noise = max(_MIN_TOLERANCE, _noise(row.get("noise")) + _noise(last.get("noise")))
    # The hypervolume tonight's front could have within that noise.
    # (A noise of 100% or more would make latencies negative: the best case is then 0 ms.)
    best_case = hypervolume((pareto["latency_ms"] * (1 - noise)).clip(lower=0.0),
                                   pareto["accuracy"],
                                   reference_point["latency_ms"], reference_point["accuracy"])
    if best_case < last["hypervolume"]:
        problems.append(f"nightly: tonight's front is worse than on {last['date']}: hypervolume "
                        f"{row['hypervolume']:.4g} against {last['hypervolume']:.4g}, below it "
                        f"even with tonight's latencies {100 * noise:.1f}% lower (both nights' noise)")
    return problems


def _noise(value) -> float:
    """A night's latency noise from its history row; 0 where it was not recorded."""
    return 0.0 if value is None or pd.isna(value) else float(value)
