"""The gaps sampler: each trial after the warm start fills the front's widest gap from the
catalogue of the warm start's families; the base sampler draws when no gap has a candidate."""

import dataclasses

import optuna
import pytest

from search.study import Aim, Catalogue, GapSampler, propose
from search.study._gaps import AIM_ATTR, CATALOGUE_ATTR

GRID = optuna.distributions.FloatDistribution(0.25, 1.0, step=0.125)
FRACTIONS = [0.25 + 0.125 * i for i in range(7)]  # below 1.0


def _members(params_of, macs_of):
    return sorted(((params_of(f), macs_of(f)) for f in FRACTIONS), key=lambda m: m[1])


# Two dimensions; "magnitude" shrinks both, "knapsack" only b. MACs rise as the square of a.
CATALOGUE = Catalogue(
    {"magnitude": _members(lambda f: {"a": f, "b": f}, lambda f: 100 * f * f),
     "knapsack": _members(lambda f: {"a": 1.0, "b": f}, lambda f: 30 + 50 * f)},
    dense_macs=100.0, smallest_macs=6.25)
AIM = Aim(dense_ms=10.0, smallest_ms=2.0, budget_ms=7.0)


def _study(done: list[tuple[dict, float, float | None]], iqr_ms: float = 0.05) -> optuna.Study:
    """A study holding the catalogue and these finished trials: (params, latency ms, accuracy),
    each measured with this spread of single calls."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr(CATALOGUE_ATTR, CATALOGUE.to_json())
    study.set_user_attr(AIM_ATTR, dataclasses.asdict(AIM))
    for params, latency, accuracy in done:
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={name: GRID for name in params},
            values=[accuracy or 0.0, latency],
            user_attrs={"latency_ms": latency, "latency_iqr_ms": iqr_ms, "accuracy": accuracy}))
    return study


def test_a_trial_goes_to_the_widest_gap_of_the_front_from_a_neighbours_family():
    # Front: magnitude at a = 0.375 (3 ms, 50%) and at 0.875 (6.9 ms, 80%): the gap between them
    # is the widest in latency times accuracy.
    study = _study([({"a": 0.375, "b": 0.375}, 3.0, 0.50),
                    ({"a": 0.875, "b": 0.875}, 6.9, 0.80)])
    params, (lo, hi), _ = propose(CATALOGUE, AIM, study.trials)
    assert (lo, hi) == (3.0, 6.9)
    # A magnitude member between the two, not the knapsack's b = 0.25 (42.5 MACs, predicted
    # 5.09 ms from the anchors alone), although it is predicted nearer the middle (4.95 ms).
    assert params["a"] == params["b"] and 0.375 < params["a"] < 0.875
    # Predicted from the measured neighbours, piecewise linear in MACs, and near the middle.
    macs = 100 * params["a"] ** 2
    predicted = 3.0 + (macs - 14.0625) / (76.5625 - 14.0625) * (6.9 - 3.0)
    assert abs(predicted - (lo + hi) / 2) <= (hi - lo) / 4


def test_what_was_tried_is_not_proposed_again_and_without_candidates_the_sampler_draws():
    done = [({"a": f, "b": f}, 2.0 + 5 * (f - 0.25) / 0.625, 0.4 + 0.4 * f) for f in FRACTIONS
            if f <= 0.875]
    done += [({"a": 1.0, "b": f}, 8.0 + f, None) for f in FRACTIONS]  # over the budget
    study = _study(done)
    assert propose(CATALOGUE, AIM, study.trials) is None  # every member tried
    # One member fewer: it is the one proposed, in the gap its absence leaves.
    missing = _study([d for d in done if d[0] != {"a": 0.625, "b": 0.625}])
    params, (lo, hi), _ = propose(CATALOGUE, AIM, missing.trials)
    assert params == {"a": 0.625, "b": 0.625} and lo < 5.0 < hi


def test_a_gap_takes_the_magnitude_rankings_member_first_then_a_neighbours_family():
    # Front: two knapsack members, b = 0.25 (42.5 MACs, 3 ms) and b = 0.875 (73.75 MACs, 6.9 ms).
    # The gap's middle half is 3.975-5.925 ms. Knapsack b = 0.5 and 0.625 are predicted in it
    # (4.56 and 5.34 ms, between their measured neighbours), and so is magnitude a = 0.625
    # (39.06 MACs, 4.80 ms on the anchors' line, no member of its family measured).
    front = [({"a": 1.0, "b": 0.25}, 3.0, 0.50), ({"a": 1.0, "b": 0.875}, 6.9, 0.80)]
    params, gap, family = propose(CATALOGUE, AIM, _study(front).trials)
    assert gap == (3.0, 6.9) and params == {"a": 0.625, "b": 0.625} and family == "magnitude"
    # Once that member is tried (here over the budget, at 9 ms, which puts the other magnitude
    # members above the gap too), the neighbours' family fills it.
    tried = front + [({"a": 0.625, "b": 0.625}, 9.0, None)]
    params, gap, family = propose(CATALOGUE, AIM, _study(tried).trials)
    assert gap == (3.0, 6.9) and params["a"] == 1.0 and params["b"] in (0.5, 0.625)
    assert family == "knapsack"


def test_below_what_was_measured_latency_follows_the_nearest_measurement_not_the_anchor():
    # The smallest candidate measured 2 ms before the trials; the family's smallest measured
    # member 6 ms. The start gap (2-6 ms) wants a member predicted near 4 ms: a = 0.375 would be
    # 3.67 ms on a line to the anchor, but from its measured neighbour at the anchors' slope it
    # is 5.07 ms, outside the gap's middle half; a = 0.25 (4.4 ms) is the one.
    study = _study([({"a": 0.5, "b": 0.5}, 6.0, 0.50), ({"a": 0.875, "b": 0.875}, 6.9, 0.80)])
    params, gap, _ = propose(CATALOGUE, AIM, study.trials)
    assert gap == (2.0, 6.0) and params == {"a": 0.25, "b": 0.25}


def test_gaps_within_the_measurement_noise_are_left_to_the_sampler():
    done = [({"a": 0.375, "b": 0.375}, 3.0, 0.50), ({"a": 0.875, "b": 0.875}, 6.9, 0.80)]
    assert propose(CATALOGUE, AIM, _study(done, iqr_ms=1.0).trials) is not None
    assert propose(CATALOGUE, AIM, _study(done, iqr_ms=8.0).trials) is None  # 4 ms of noise


def test_no_front_no_proposal():
    over = _study([({"a": 1.0, "b": 0.25}, 9.0, None)])
    assert propose(CATALOGUE, AIM, over.trials) is None


def test_the_sampler_fills_gaps_leaves_queued_trials_and_draws_otherwise():
    study = _study([({"a": 0.375, "b": 0.375}, 3.0, 0.50),
                    ({"a": 0.875, "b": 0.875}, 6.9, 0.80)])
    study.sampler = GapSampler(optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"a": 1.0, "b": 0.25})
    queued = study.ask()  # a queued trial keeps its params
    assert {name: queued.suggest_float(name, 0.25, 1.0, step=0.125) for name in "ab"} == \
        {"a": 1.0, "b": 0.25}
    study.tell(queued, [0.0, 9.0])
    filled = study.ask()
    drawn = {name: filled.suggest_float(name, 0.25, 1.0, step=0.125) for name in "ab"}
    expected = propose(CATALOGUE, AIM, study.trials[:2])
    assert drawn == expected.params
    # What proposed each, for the trials table: nothing for the queued one (its queue says).
    assert study.sampler.source(filled.number) == f"gaps: {expected.family}"
    assert study.sampler.source(queued.number) is None
    # A study without a catalogue (the grid warm start) is the base sampler's alone.
    def draws(sampler):
        plain = optuna.create_study(sampler=sampler)
        return [plain.ask().suggest_float("a", 0.25, 1.0, step=0.125) for _ in range(5)]

    assert draws(GapSampler(optuna.samplers.RandomSampler(seed=3))) == \
        draws(optuna.samplers.RandomSampler(seed=3))
    alone = GapSampler(optuna.samplers.RandomSampler(seed=3))
    draws(alone)
    assert alone.source(4) == "random"


@pytest.mark.parametrize("name", ["gaps", "tpe"])
def test_gaps_is_the_default_sampler_and_tpe_stays_a_choice(name):
    from search import SearchConfig
    from search.study import make_sampler

    assert SearchConfig(budget_ratio=0.5).sampler == "gaps"
    sampler = make_sampler(name, seed=0)
    assert isinstance(sampler, GapSampler) == (name == "gaps")
