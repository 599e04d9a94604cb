"""The sampler registry: every name ``--sampler`` takes and the Optuna sampler it makes.

Each trial carries its budget constraint (``Trial.set_constraint``), which TPE, NSGA-II and GP
read; random sampling ignores it. Validation, ``--help`` and the error for an unknown name are
built from :data:`SAMPLERS`: a new sampler is one entry. An entry may need a warm start's
catalogue (``needs_warm_start``): a search that asks for it without that warm start is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna

from search._registry import Registry
from search.study._gaps import GapSampler


@dataclass(frozen=True)
class Sampler:
    """One entry: ``make(seed)``, a phrase for ``--help``, and the warm start whose catalogue
    it draws from, if any (``--warm-start``)."""

    make: Callable[[int], optuna.samplers.BaseSampler]
    help: str
    needs_warm_start: str | None = None


def _tpe(seed: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)


SAMPLERS: Registry[Sampler] = Registry("--sampler", {
    "gaps": Sampler(lambda seed: GapSampler(_tpe(seed)),
                    "each trial fills the front's widest gap with a candidate of the aimed warm "
                    "start's families, then multivariate TPE (the default; needs --warm-start "
                    "aimed)", needs_warm_start="aimed"),
    "tpe": Sampler(_tpe, "multivariate TPE, 8 random start-up trials"),
    "nsga2": Sampler(lambda seed: optuna.samplers.NSGAIISampler(seed=seed, population_size=10),
                     "NSGA-II, populations of 10"),
    "gp": Sampler(lambda seed: optuna.samplers.GPSampler(seed=seed, n_startup_trials=8),
                  "Gaussian process, 8 random start-up trials"),
    "random": Sampler(lambda seed: optuna.samplers.RandomSampler(seed=seed),
                      "random sampling (a baseline)"),
    "qmc": Sampler(lambda seed: optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False),
                   "a scrambled Sobol sequence, quasi-random: it covers the space more evenly than "
                   "random (a baseline)"),
})


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler by name; UsageError for a name not in :data:`SAMPLERS` (it used to fall back
    to random sampling without a word).

    Example:
        >>> type(make_sampler("nsga2", seed=0)).__name__
        'NSGAIISampler'
    """
    return SAMPLERS.lookup(name).make(seed)
