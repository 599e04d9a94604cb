"""The ``gaps`` sampler: after the aimed warm start, each new trial fills the front's widest gap
with a candidate of the warm start's families, and the base sampler draws once no gap has one.

A front is a staircase: a new point between two neighbours on it, at latencies l1 < l2 and
accuracies a1 < a2, adds at most about (l2 - l1) x (a2 - a1) / 4, at the middle. So each trial
goes to the gap where that is largest (the ends reach to the smallest candidate and to the
budget, at the accuracy the front's mean slope gives there), taking a catalogue candidate
(``._aimed.Catalogue``) predicted in its middle half: of the global magnitude ranking's family
first, then of a neighbour's family, and of those the one predicted nearest the middle. Gaps
narrower than the measurement noise (half the front's median latency IQR) are left alone.

Latency is predicted per family from what the trials measured: piecewise linear in MACs between
the family's measured candidates, and beyond them at the slope of the line through the dense
model and the smallest candidate (a family's members are ordered by MACs, so a measured neighbour
on each side brackets a new one far more closely than one line could).

Why gaps rather than TPE after the warm start, why the ranking's family first, and why
noise-wide gaps are left alone: the CIFAR-10 benchmark's runs
(docs/benchmarks/cifar10-history.md).

Hand-written because no library does it: Optuna's samplers draw each trial's widths without
regard to where the front already has points, and know nothing of the warm start's families.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from search.runfolder import ACCURACY, LATENCY_IQR_MS, LATENCY_MS, counts_for_front, pareto_mask
from search.study._aimed import Aim, Catalogue

log = logging.getLogger(__name__)

CATALOGUE_ATTR = "hwprune_catalogue"  # the study's user attribute holding the catalogue
AIM_ATTR = "hwprune_aim"  # and this run's measurements and budget (Aim), set by each run
FIRST_FAMILY = "magnitude"  # the global ranking's: a gap takes its member first (module doc)


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def _params(trial: FrozenTrial) -> dict[str, Any] | None:
    if trial.params:
        return trial.params
    return trial.system_attrs.get("fixed_params")


def _front(trials: Sequence[FrozenTrial], budget_ms: float) -> list[tuple[float, float, str]]:
    """The scored candidates within the budget that no other beats on both latency and accuracy,
    fastest first: (latency ms, accuracy, params key)."""
    scored = pd.DataFrame([(t.user_attrs[LATENCY_MS], t.user_attrs[ACCURACY], _key(t.params))
                           for t in trials if t.state == TrialState.COMPLETE
                           and counts_for_front(t.user_attrs, budget_ms)],
                          columns=["latency_ms", "accuracy", "key"])
    front = scored[pareto_mask(scored["latency_ms"], scored["accuracy"])]
    return list(front.sort_values("latency_ms").itertuples(index=False, name=None))


def _predictor(found: Catalogue, aim: Aim, measured: dict[str, float]):
    """Predicted latency (ms) of a family's member from its MACs: piecewise linear through the
    family's measured members, and beyond them (or without any) the slope of the line through the
    dense model and the smallest candidate, from the nearest measured member. Not through those
    two anchors themselves: they are measured before the trials, in other rounds, and a line
    ending at an anchor that measured faster than the trials do keeps predicting new members
    into a gap at the fast end that none of them reaches (docs/benchmarks/cifar10-history.md,
    "What was tried")."""
    line = found.line(aim)
    slope = line.slope
    lines = {}
    for name, members in found.families.items():
        points: dict[float, list[float]] = {}
        for p, macs in members:
            if _key(p) in measured:
                points.setdefault(macs, []).append(measured[_key(p)])
        xs = np.array(sorted(points))
        lines[name] = (xs, np.array([np.mean(points[x]) for x in xs]))

    def predict(name: str, macs: float) -> float:
        xs, ys = lines[name]
        if not len(xs):
            return line.predict(macs)
        if macs < xs[0]:
            return float(ys[0] - slope * (xs[0] - macs))
        if macs > xs[-1]:
            return float(ys[-1] + slope * (macs - xs[-1]))
        return float(np.interp(macs, xs, ys))

    return predict


class Proposal(NamedTuple):
    """A catalogue candidate for a gap: the space's params, the gap (ms) and the family."""

    params: dict[str, float]
    gap: tuple[float, float]
    family: str


def propose(found: Catalogue, aim: Aim, trials: Sequence[FrozenTrial]) -> Proposal | None:
    """The catalogue candidate for the front's widest gap, with that gap (ms); None when the
    front is empty or no gap has an untried candidate predicted in its middle half. Gaps
    narrower than half the median spread (IQR) of the front's single calls are left alone: at
    that width two points differ by measurement noise, not by what they are."""
    front = _front(trials, aim.budget_ms)
    if not front:
        return None
    tried = {_key(p) for t in trials if (p := _params(t)) is not None}
    done = [t for t in trials if t.state == TrialState.COMPLETE
            and "latency_ms" in t.user_attrs and "fail_reason" not in t.user_attrs]
    measured = {_key(t.params): t.user_attrs[LATENCY_MS] for t in done}
    spread = {_key(t.params): t.user_attrs.get(LATENCY_IQR_MS) or 0.0 for t in done}
    noise = float(np.median([spread[key] for _, _, key in front])) / 2
    family_of = {_key(p): name for name, members in found.families.items() for p, _ in members}
    predict = _predictor(found, aim, measured)
    (l1, a1, _), (ln, an, _) = front[0], front[-1]
    slope = (an - a1) / (ln - l1) if ln > l1 else 0.0
    start = [(aim.smallest_ms, a1 - slope * (l1 - aim.smallest_ms), None)] \
        if aim.smallest_ms < l1 else []
    end = [(aim.budget_ms, an + slope * (aim.budget_ms - ln), None)] if ln < aim.budget_ms else []
    points = start + front + end
    gaps = sorted(((hi - lo) * (max(a_hi - a_lo, 0.0) + 1e-3), lo, hi,
                   {family_of.get(k) for k in (k_lo, k_hi)} - {None})
                  for (lo, a_lo, k_lo), (hi, a_hi, k_hi) in zip(points, points[1:], strict=False)
                  if hi - lo > noise)
    for _, lo, hi, neighbours in reversed(gaps):
        middle, quarter = (lo + hi) / 2, (hi - lo) / 4
        inside = [(name != FIRST_FAMILY, name not in neighbours, abs(ms - middle), p, name)
                  for name, members in found.families.items() for p, macs in members
                  if _key(p) not in tried
                  and abs((ms := predict(name, macs)) - middle) <= quarter]
        if inside:
            *_, params, name = min(inside, key=lambda item: item[:3])
            return Proposal(params, (lo, hi), name)
    return None


def sampler_name(sampler: optuna.samplers.BaseSampler) -> str:
    """A sampler's short name, as the trials table's ``source`` gives it: ``TPESampler`` ->
    ``tpe``, ``GapSampler`` -> ``gap``.

    Example:
        >>> sampler_name(optuna.samplers.NSGAIISampler())
        'nsgaii'
    """
    return type(sampler).__name__.removesuffix("Sampler").lower()


class GapSampler(optuna.samplers.BaseSampler):
    """Proposes each trial that was not queued for the front's widest gap (:func:`propose`) when
    the study holds a catalogue (the aimed warm start's) and a gap has a candidate; otherwise the
    ``base`` sampler draws. :meth:`source` says which, for the trials table."""

    def __init__(self, base: optuna.samplers.BaseSampler) -> None:
        self._base = base
        self._proposed: dict[int, dict[str, float]] = {}
        self._sources: dict[int, str] = {}
        self._told = False  # that the study has no catalogue, once per process

    def source(self, number: int) -> str | None:
        """What proposed trial ``number`` (asked in this process): ``gaps: FAMILY``, or the base
        sampler's name; None for a queued trial or one this sampler has not seen."""
        return self._sources.get(number)

    def _proposal(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, float] | None:
        if trial.number in self._proposed:
            return self._proposed[trial.number]
        if "fixed_params" in trial.system_attrs:  # queued: the warm start's, or a re-evaluation
            return None
        attrs = study.user_attrs
        proposed = None
        if CATALOGUE_ATTR in attrs and AIM_ATTR in attrs:
            proposed = propose(Catalogue.from_json(attrs[CATALOGUE_ATTR]),
                               Aim(**attrs[AIM_ATTR]), study.get_trials(deepcopy=False))
        elif not self._told:
            self._told = True
            log.info("this study holds no catalogue of the aimed warm start (it was started "
                     "before there was one): the gaps sampler leaves every trial to %s",
                     sampler_name(self._base))
        self._sources = {trial.number: sampler_name(self._base) if proposed is None
                         else f"gaps: {proposed.family}"}
        if proposed is None:
            return None
        log.debug("trial %d fills the gap %.3f-%.3f ms", trial.number, *proposed.gap)
        self._proposed = {trial.number: proposed.params}
        return proposed.params

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        params = self._proposal(study, trial)
        if params is None:
            return self._base.infer_relative_search_space(study, trial)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        distributions = next((t.distributions for t in reversed(done)
                              if set(params) <= set(t.distributions)), {})
        return {name: d for name, d in distributions.items() if name in params}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        params = self._proposed.get(trial.number)
        if params is None:
            return self._base.sample_relative(study, trial, search_space)
        return {name: value for name, value in params.items() if name in search_space}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
