"""The front: which trials stand for their widths, which of them are Pareto-optimal, and one
number (the hypervolume) to compare fronts by."""

from __future__ import annotations

import math

import pandas as pd


def pareto_mask(latency_ms: pd.Series, accuracy: pd.Series) -> pd.Series:
    """True for rows no other row beats on both (lower-or-equal latency, higher-or-equal accuracy,
    one of them strictly). Done here rather than with ``study.best_trials`` because the front must
    be judged against this run's budget and, at the end, against re-measured latencies.

    Example:
        >>> latency = pd.Series([1.0, 2.0, 3.0])
        >>> pareto_mask(latency, pd.Series([0.90, 0.85, 0.95])).tolist()  # 2 ms is beaten by 1 ms
        [True, False, True]
    """
    order = sorted(range(len(latency_ms)),
                   key=lambda i: (latency_ms.iloc[i], -accuracy.iloc[i]))
    keep = [False] * len(order)
    best = -math.inf
    for i in order:
        if accuracy.iloc[i] > best:
            keep[i] = True
            best = accuracy.iloc[i]
    return pd.Series(keep, index=latency_ms.index, dtype=bool)


def pareto_layers(latency_ms: pd.Series, accuracy: pd.Series, layers: int) -> pd.Series:
    """True for rows on the front or on one of the ``layers - 1`` fronts behind it (each the front
    of the rows the ones before it leave): the non-dominated sorting of NSGA-II, cut after
    ``layers``. ``layers=1`` is :func:`pareto_mask`.

    Example:
        >>> latency = pd.Series([1.0, 2.0, 3.0, 3.5])
        >>> accuracy = pd.Series([0.90, 0.85, 0.95, 0.80])
        >>> pareto_layers(latency, accuracy, 2).tolist()  # 3.5 ms is behind 2 ms, on layer 3
        [True, True, True, False]
    """
    keep = pd.Series(False, index=latency_ms.index, dtype=bool)
    for _ in range(layers):
        rest = ~keep
        if not rest.any():
            break
        keep |= pareto_mask(latency_ms[rest], accuracy[rest]).reindex(keep.index, fill_value=False)
    return keep


def hypervolume(latency_ms: pd.Series, accuracy: pd.Series, ref_latency_ms: float,
                ref_accuracy: float) -> float:
    """Area (ms x accuracy) the points dominate inside the box left of ``ref_latency_ms`` and
    above ``ref_accuracy``: one number for a front, comparable across runs with the same
    reference point. Exact in two dimensions; 0 for no points (a night or a strategy with an
    empty front). Adding a point the front dominates leaves it exactly as it was.

    Example:
        >>> # One point at 1 ms and 90% dominates (2 - 1) x (0.9 - 0.5) of the box.
        >>> hypervolume(pd.Series([1.0]), pd.Series([0.9]), ref_latency_ms=2.0, ref_accuracy=0.5)
        0.4
    """
    # The staircase's corners only: a dominated point would split a step in two, and the two
    # products can sum to a hair less than the one (a front that "shrank" by 1e-18 on adding it).
    corners, best = [], ref_accuracy
    for latency, acc in sorted(zip(latency_ms, accuracy, strict=True)):
        if latency < ref_latency_ms and acc > best:
            corners.append((latency, acc))
            best = acc
    if not corners:
        return 0.0
    edges = [latency for latency, _ in corners[1:]] + [ref_latency_ms]
    return sum(((edge - latency) * (acc - ref_accuracy)
                for (latency, acc), edge in zip(corners, edges, strict=True)), 0.0)


def current(trials: pd.DataFrame) -> pd.DataFrame:
    """Feasible trials that stand for their widths: not repeats of an earlier score, and not
    scored again later (a nightly re-evaluation supersedes the old numbers)."""
    superseded = set(trials["reevaluates"].dropna().astype(int))
    scored = trials[trials["feasible"].astype(bool) & trials["repeat_of"].isna()]
    return scored[~scored["trial"].isin(superseded)]
