"""What a study proposes: the sampler, the widths it draws for a trial, and the uniform and
globally ranked candidates a new study starts with."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import optuna
from torch import Tensor, nn

from search._registry import Registry
from search.runfolder import SOURCE
from search.study._aimed import Aim, aimed_params, catalogue
from search.study._gaps import AIM_ATTR, CATALOGUE_ATTR
from spaces import SEARCHED_IMPORTANCES, Allocation, SearchSpace, channel_scores, global_fractions

log = logging.getLogger(__name__)

# Uniform candidates tried first in a new study: they anchor the front across the latency range
# that random start-up trials (whose per-group fractions average out near the middle) rarely reach.
_WARM_START_FRACTIONS = (0.25, 0.5, 0.75)
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


Queued = list[tuple[str, dict[str, float]]]  # (family, params) in the order they are tried


@dataclass(frozen=True)
class Start:
    """What a warm start has to go on: the new study, the space, the trained ``dense`` model and
    an ``example`` input (None where not given), the groups' channel scores (``ranked``; empty
    where they cannot be had) and ``aim`` (the measured dense and smallest latencies and the
    budget; None where the smallest candidate was not measured)."""

    study: optuna.Study
    space: SearchSpace
    dense: nn.Module | None
    example: Tensor | None
    ranked: Mapping[str, Tensor]
    aim: Aim | None


@dataclass(frozen=True)
class WarmStart:
    """One entry of :data:`WARM_STARTS`: ``queue(start)`` gives the candidates a new study
    starts with, and may store in the study what a sampler draws from later."""

    queue: Callable[[Start], Queued]
    help: str


def _grid(start: Start) -> Queued:
    """Every group at the grid's fractions nearest 0.25, 0.5 and 0.75 and at its smallest
    (uniform); then the allocations that keep as many channels in all as each of those but
    choose them by one ranking across the model (torch-pruning's global pruning by L2
    magnitude), where they differ from the uniform ones. At the grid's smallest share the
    ranking would cut some groups below the grid, which then keep its smallest fraction: a
    candidate a little larger than the uniform smallest, with its channels where the ranking
    puts them."""
    space, ranked = start.space, start.ranked
    grid = _warm_start(space.fractions)
    queued = [("uniform", space.params_at(fraction)) for fraction in grid]
    return queued + [("ranking", space.params_for(global_fractions(ranked, f)))
                     for f in grid if ranked]


def _aimed(start: Start) -> Queued:
    """Candidates aimed at latencies across the budget (``._aimed``); the families they come
    from are stored in the study for the ``gaps`` sampler. Without the trained model or a
    measured smallest candidate there is nothing to aim with: the grid's candidates."""
    if start.aim is None or start.dense is None or start.example is None:
        log.info("warm start: nothing to aim with (%s); the grid's candidates instead",
                 "no smallest candidate measured" if start.aim is None else "no trained model")
        return _grid(start)
    found = catalogue(start.dense, start.example, start.space, start.ranked)
    start.study.set_user_attr(CATALOGUE_ATTR, found.to_json())
    queued = aimed_params(found, start.aim)
    log.info("warm start aimed at the budget: %d candidates", len(queued))
    return queued


# --warm-start: the candidates a new study is given first.
WARM_STARTS: Registry[WarmStart] = Registry("--warm-start", {
    "aimed": WarmStart(_aimed, "a sweep of the global magnitude ranking, then uniform and "
                               "knapsack (importance per MAC) candidates, aimed at latencies "
                               "spread from the smallest candidate to the budget"),
    "grid": WarmStart(_grid, "uniform and globally ranked candidates keeping 1/4, 1/2 and 3/4 of "
                             "the channels, wherever their latency falls"),
})


def warm_start(study: optuna.Study, space: SearchSpace, *, name: str,
               dense: nn.Module | None = None, example: Tensor | None = None,
               aim: Aim | None = None) -> None:
    """Queues the warm start ``name``'s candidates (:data:`WARM_STARTS`) in a new study, each
    once, with its family as the trial's ``source``; a study with trials is left as it is.
    ``dense`` and ``example`` (the trained model and an input) let the channels be ranked;
    ``aim`` is stored in the study whatever the warm start (every run stores its own
    measurements and budget), for the samplers that aim with it."""
    entry = WARM_STARTS.lookup(name)
    if aim is not None:
        study.set_user_attr(AIM_ATTR, dataclasses.asdict(aim))
    if study.trials:
        return
    # One fraction for the whole model leaves the ranking nothing to choose: no need to score.
    scored = dense is not None and example is not None and space.kind != "uniform"
    ranked = _ranked(dense, example, space) if scored else {}
    distinct: dict[str, tuple[str, dict[str, float]]] = {}
    for family, params in entry.queue(Start(study, space, dense, example, ranked, aim)):
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
