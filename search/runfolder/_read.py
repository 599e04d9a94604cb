"""Reading a run folder back: ``load_run`` gives its tables and records as one ``Run``.

Reports, ``pick`` and users' notebooks all read a run through this, finished or still going.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from torch import nn

from search._errors import UsageError
from search.runfolder._files import load_pruned
from search.runfolder._front import current, pareto_mask
from search.runfolder._layout import (
    CONFIG,
    ENV,
    NOTES,
    PARETO,
    REFERENCE,
    TRIAL_COLUMNS,
    TRIAL_EXTRA_COLUMNS,
    TRIALS,
    model_json,
)


@dataclass(frozen=True)
class Run:
    """A run folder's tables: ``trials`` (every trial) and ``pareto`` (the front, fastest first),
    with ``config.json``, ``env.json``, ``reference.json`` and the report's ``notes``.

    ``final`` is False while the run is still going (or was interrupted before its end): the front
    is then computed from ``trials.csv`` with search-time latencies and no test accuracy.

    Example:
        >>> import search
        >>> run = search.load_run("results/vgg16_bn-digits-cpu")  # doctest: +SKIP
        >>> run.pareto[["trial", "latency_ms", "accuracy", "test_accuracy"]]  # doctest: +SKIP
        >>> model = run.load(run.pick(max_latency_ms=2.0))  # doctest: +SKIP
    """

    path: Path
    trials: pd.DataFrame
    pareto: pd.DataFrame
    reference: dict
    config: dict
    final: bool
    env: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The model a search from Python was handed: what its saved models are rebuilt on.
    base: nn.Module | None = field(default=None, repr=False, compare=False)

    def pick(self, *, max_latency_ms: float | None = None,
             min_accuracy: float | None = None) -> pd.Series:
        """The front's row under one constraint (:func:`choose`).

        Example:
            >>> run.pick(max_latency_ms=2.0)["trial"]  # doctest: +SKIP
            7
        """
        return choose(self, max_latency_ms=max_latency_ms, min_accuracy=min_accuracy)

    def load(self, trial: int | pd.Series) -> nn.Module:
        """The front model of ``trial`` (a number, or a row of :attr:`pareto`), in eval mode,
        as ``load_pruned`` rebuilds it (on :attr:`base` when the search was handed a model).

        Example:
            >>> model = run.load(run.pick(min_accuracy=0.95))  # doctest: +SKIP
        """
        number = int(trial["trial"] if isinstance(trial, pd.Series) else trial)
        rows = self.pareto[self.pareto["trial"] == number]
        if not len(rows):
            raise UsageError(f"trial {number} is not on the front of {self.path} (front: "
                             f"{', '.join(map(str, self.pareto['trial']))})")
        return load_pruned(self.path / rows.iloc[0]["model_path"], self.base)


def _as_fraction(accuracy: float) -> float:
    """--min-accuracy as a fraction: 0.975 and 97.5 both mean 97.5%."""
    return accuracy / 100 if accuracy > 1 else accuracy


def choose(run: Run, *, max_latency_ms: float | None = None,
           min_accuracy: float | None = None) -> pd.Series:
    """The best front point under one constraint: the most accurate (validation) within
    ``max_latency_ms``, or the fastest with at least ``min_accuracy``.

    Example:
        >>> import search
        >>> run = search.load_run("results/vgg16_bn-digits-cpu")  # doctest: +SKIP
        >>> search.choose(run, max_latency_ms=2.0)[["trial", "latency_ms", "accuracy"]]  # doctest: +SKIP
        >>> search.choose(run, min_accuracy=0.98).model_path  # doctest: +SKIP
        'models/final-29.json'
    """
    if (max_latency_ms is None) == (min_accuracy is None):
        raise UsageError("give exactly one of --max-latency-ms X or --min-accuracy A")
    front = run.pareto
    if not len(front):
        raise UsageError(f"{run.path} has no feasible point yet (nothing within its budget was "
                         f"fine-tuned); raise the budget or add trials")
    if max_latency_ms is not None:
        fits = front[front["latency_ms"] <= max_latency_ms]
        if not len(fits):
            fastest = front.loc[front["latency_ms"].idxmin()]
            raise UsageError(f"no model on the front runs within {max_latency_ms:g} ms; the "
                             f"fastest is trial {fastest.trial} at {fastest.latency_ms:.3f} ms "
                             f"({100 * fastest.accuracy:.2f}% val)")
        return fits.loc[fits["accuracy"].idxmax()]
    wanted = _as_fraction(min_accuracy)
    fits = front[front["accuracy"] >= wanted]
    if not len(fits):
        best = front.loc[front["accuracy"].idxmax()]
        raise UsageError(f"no model on the front reaches {100 * wanted:.2f}% validation accuracy; "
                         f"the most accurate is trial {best.trial} at {100 * best.accuracy:.2f}% "
                         f"({best.latency_ms:.3f} ms)")
    return fits.loc[fits["latency_ms"].idxmin()]


def _json(path: Path, default: object) -> object:
    return json.loads(path.read_text()) if path.is_file() else default


def load_run(run_dir: str | Path) -> Run:
    """The trials and the Pareto front of a run folder, as pandas DataFrames.

    Example:
        >>> run = load_run("results/vgg16_bn-digits-cpu")  # doctest: +SKIP
        >>> run.pareto[["trial", "latency_ms", "accuracy"]]  # doctest: +SKIP
    """
    path = Path(run_dir)
    if not (path / TRIALS).is_file() or not (path / CONFIG).is_file():
        raise UsageError(f"{path} is not a run folder (no trials.csv/config.json there); runs are "
                         f"written to results/STUDY-NAME or --out")
    try:
        config = json.loads((path / CONFIG).read_text())
        reference = _json(path / REFERENCE, {})
        env = _json(path / ENV, {})
        notes = _json(path / NOTES, [])
        trials = _trials(pd.read_csv(path / TRIALS))
        final = (path / PARETO).is_file()
        if final:
            pareto = pd.read_csv(path / PARETO)
            final = not pareto["test_accuracy"].isna().all() if len(pareto) else True
        else:
            pareto = _front_so_far(path, trials)
    except (ValueError, KeyError, pd.errors.ParserError) as exc:
        raise UsageError(f"{path}: a run file is damaged ({str(exc).splitlines()[0]}); run the "
                         f"search again with the same --study-name to rewrite it") from None
    return Run(path, trials, pareto, reference, config, final, env, notes)


def _trials(frame: pd.DataFrame) -> pd.DataFrame:
    """trials.csv with every column: the ones later versions added are empty in older runs."""
    missing = [c for c in TRIAL_COLUMNS if c not in frame]
    if missing:
        raise KeyError(f"trials.csv has no column {missing[0]!r}")
    return frame.reindex(columns=[*TRIAL_COLUMNS, *TRIAL_EXTRA_COLUMNS, *(
        c for c in frame if c not in TRIAL_COLUMNS and c not in TRIAL_EXTRA_COLUMNS)])


def _front_so_far(path: Path, trials: pd.DataFrame) -> pd.DataFrame:
    """A running search's front: feasible trials with saved models, non-dominated."""
    scored = current(trials)
    saved = pd.Series([model_json(path, n).is_file() for n in scored["trial"]],
                      index=scored.index, dtype=bool)
    scored = scored[saved]
    front = scored[pareto_mask(scored["latency_ms"], scored["accuracy"])]
    return front.assign(test_accuracy=math.nan,
                        model_path=[model_json(Path("."), n).as_posix() for n in front["trial"]]
                        ).sort_values("latency_ms").reset_index(drop=True)
