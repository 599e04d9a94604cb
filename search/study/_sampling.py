"""What a study proposes: the sampler, the widths it draws for a trial, and the uniform and
globally ranked candidates a new study starts with."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping

import optuna
from torch import Tensor, nn

from search.runfolder import SOURCE
from search.study._aimed import Aim, aimed_params, catalogue
from search.study._gaps import AIM_ATTR, CATALOGUE_ATTR
from spaces import SEARCHED_IMPORTANCES, Allocation, SearchSpace, channel_scores, global_fractions

log = logging.getLogger(__name__)

# Uniform candidates tried first in a new study: they anchor the front across the latency range
# that random start-up trials (whose per-group fractions average out near the middle) rarely reach.
_WARM_START_FRACTIONS = (0.25, 0.5, 0.75)
# --warm-start: the candidates a new study is given first.
WARM_STARTS = {
    "aimed": "a sweep of the global magnitude ranking, then uniform and knapsack (importance "
             "per MAC) candidates, aimed at latencies spread from the smallest candidate to the "
             "budget",
    "grid": "uniform and globally ranked candidates keeping 1/4, 1/2 and 3/4 of the channels, "
            "wherever their latency falls",
}
_DRAWN = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
          optuna.trial.TrialState.FAIL)


def suggest(trial: optuna.Trial, space: SearchSpace) -> Allocation:
    """The trial's widths: one value per dimension of the space, drawn by the sampler.

    Fractions are drawn as ordered numbers, so the sampler can learn that fewer channels are
    faster: an even grid as a stepped float; an uneven one (a spaces file's, such as 1/16, 1/8,
    1/4, 1/2, 1) as a log-scaled float snapped to the nearest choice (it was a category, which
    tells the sampler nothing of order). A study that drew a dimension as a category keeps
    drawing it so, since a parameter cannot change kind within a study."""
    categorical = _categorical_params(trial)
    params = {}
    for dim in space.dimensions:
        grid = dim.choices
        steps = {round(b - a, 9) for a, b in zip(grid, grid[1:], strict=False)}
        if dim.unit != "fraction" or dim.name in categorical or len(grid) < 2:
            params[dim.name] = trial.suggest_categorical(dim.name, grid)
        elif len(steps) == 1:
            params[dim.name] = trial.suggest_float(dim.name, grid[0], grid[-1], step=steps.pop())
        else:
            drawn = trial.suggest_float(dim.name, grid[0], grid[-1], log=True)
            params[dim.name] = min(grid, key=lambda c, d=drawn: abs(math.log(c / d)))
    return space.decode(params)


def _categorical_params(trial: optuna.Trial) -> set[str]:
    """Parameters this trial's study has drawn as categories before."""
    return {name for earlier in trial.study.get_trials(deepcopy=False, states=_DRAWN)
            for name, dist in earlier.distributions.items()
            if isinstance(dist, optuna.distributions.CategoricalDistribution)}


def suggest_importance(trial: optuna.Trial, importance: str) -> str | None:
    """The trial's importance criterion when ``--importance search`` makes it a dimension too;
    None when the study has one criterion."""
    if importance != "search":
        return None
    return trial.suggest_categorical("importance", SEARCHED_IMPORTANCES)


def warm_start(study: optuna.Study, space: SearchSpace, dense: nn.Module | None = None,
               example: Tensor | None = None, aim: Aim | None = None) -> None:
    """Queues the warm-start candidates in a new study: every group at the grid's fractions
    nearest 0.25, 0.5 and 0.75 and at its smallest (uniform); then, given the trained ``dense``
    model, the allocations that keep as many channels in all as each of those but choose them by
    one ranking across the model (torch-pruning's global pruning by L2 magnitude), where they
    differ from the uniform ones. At the grid's smallest share the ranking would cut some groups
    below the grid, which then keep its smallest fraction: a candidate a little larger than the
    uniform smallest, with its channels where the ranking puts them.

    With ``aim`` (``--warm-start aimed``: the dense model's and the smallest candidate's measured
    latencies and the budget), the candidates are aimed at latencies across the budget instead
    (``._aimed``), and the families they come from are stored in the study for the ``gaps``
    sampler, with ``aim`` (which every run stores again: its own measurements and budget)."""
    if aim is not None:
        study.set_user_attr(AIM_ATTR, dataclasses.asdict(aim))
    if study.trials:
        return
    # One fraction for the whole model leaves the ranking nothing to choose: no need to score.
    scored = dense is not None and example is not None and space.kind != "uniform"
    ranked = _ranked(dense, example, space) if scored else {}
    if aim is not None and dense is not None and example is not None:
        found = catalogue(dense, example, space, ranked)
        study.set_user_attr(CATALOGUE_ATTR, found.to_json())
        queued = aimed_params(found, aim)
        log.info("warm start aimed at the budget: %d candidates", len(queued))
    else:
        grid = _warm_start(space.fractions)
        queued = [("uniform", space.params_at(fraction)) for fraction in grid]
        queued += [("ranking", space.params_for(global_fractions(ranked, f)))
                   for f in grid if ranked]
    distinct: dict[str, tuple[str, dict[str, float]]] = {}
    for family, params in queued:
        distinct.setdefault(json.dumps(params, sort_keys=True), (family, params))
    for family, params in distinct.values():
        study.enqueue_trial(params, user_attrs={SOURCE: f"warm start: {family}"})


def _ranked(dense: nn.Module, example: Tensor, space: SearchSpace) -> Mapping[str, Tensor]:
    """The groups' channel scores; none (the uniform warm start only) when a model's layers
    cannot be scored."""
    try:
        return channel_scores(dense, example[:1], space)
    except Exception as exc:  # a user's model may have a group torch-pruning cannot score
        log.warning("globally ranked warm-start candidates left out: cannot score the channels "
                    "(%s: %s)", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return {}


def _warm_start(grid: tuple[float, ...]) -> list[float]:
    """The grid's fractions nearest to the warm-start ones and its smallest, below 1 (the dense
    model is known). The smallest anchors the fast end of the front when a spaces file's grid
    goes below a quarter."""
    nearest = {min(grid, key=lambda f: abs(f - target)) for target in _WARM_START_FRACTIONS}
    return sorted(f for f in {*nearest, min(grid)} if f < 1.0)
