import itertools
import random

import pandas as pd
import pytest

from search.runfolder import hypervolume, pareto_layers, pareto_mask


def brute_force(latency, accuracy):
    points = list(zip(latency, accuracy, strict=True))
    return [not any(lo <= la and ao >= aa and (lo, ao) != (la, aa) for lo, ao in points)
            for la, aa in points]


def test_known_front():
    latency = pd.Series([1.0, 2.0, 1.5, 3.0, 2.0])
    accuracy = pd.Series([0.90, 0.95, 0.89, 0.99, 0.94])
    assert pareto_mask(latency, accuracy).tolist() == [True, True, False, True, False]


def test_matches_the_definition_on_random_points():
    rng = random.Random(0)
    for n in itertools.chain(range(1, 8), [30]):
        latency = pd.Series([rng.choice([1.0, 1.5, 2.0, 2.5]) for _ in range(n)])
        accuracy = pd.Series([rng.choice([0.8, 0.85, 0.9]) for _ in range(n)])
        mask = pareto_mask(latency, accuracy).tolist()
        expected = brute_force(latency, accuracy)
        # Exact duplicates are all non-dominated by the definition; the mask keeps one of them.
        for keep, want, la, aa in zip(mask, expected, latency, accuracy, strict=True):
            if keep:
                assert want
            elif want:
                assert sum((latency == la) & (accuracy == aa)) > 1


def test_keeps_the_index():
    latency = pd.Series([2.0, 1.0], index=[10, 20])
    accuracy = pd.Series([0.9, 0.8], index=[10, 20])
    assert pareto_mask(latency, accuracy).to_dict() == {10: True, 20: True}


def test_layers_are_fronts_of_what_the_layers_before_leave():
    rng = random.Random(1)
    for n in (1, 5, 30):
        latency = pd.Series([rng.uniform(1, 3) for _ in range(n)], index=range(100, 100 + n))
        accuracy = pd.Series([rng.uniform(0.5, 0.9) for _ in range(n)], index=latency.index)
        assert pareto_layers(latency, accuracy, 1).equals(pareto_mask(latency, accuracy))
        first = pareto_mask(latency, accuracy)
        rest = ~first
        second = pareto_mask(latency[rest], accuracy[rest])
        two = pareto_layers(latency, accuracy, 2)
        assert set(two[two].index) == set(first[first].index) | set(second[second].index)
        # Each layer adds at least one point until none is left.
        sizes = [int(pareto_layers(latency, accuracy, k).sum()) for k in range(1, n + 2)]
        assert sizes[-1] == n
        assert all(b > a or a == n for a, b in zip(sizes, sizes[1:], strict=False))


def test_reference_drift_is_summarised_robustly():
    from search.flow import measured_drift as _drift
    from search.runfolder import Reference

    reference = Reference(10.0, 0.1, 10.2, 45, 1, 1, None)
    blip = pd.DataFrame({"dense_ms_now": [10.0] * 39 + [12.3, None]})  # None: a repeated trial
    drift = _drift(blip, reference, remeasured_ms=10.1)
    assert drift["measurements"] == 41 and drift["max"] == pytest.approx(1.23)
    assert drift["p90_change"] < 0.02  # one blip is not drift
    slowed = pd.DataFrame({"dense_ms_now": [10.0] * 20 + [11.5] * 20})
    drift = _drift(slowed, reference, remeasured_ms=None)
    assert drift["p90_change"] == pytest.approx(0.15) and drift["median"] == pytest.approx(1.075)
    assert _drift(pd.DataFrame({"dense_ms_now": []}), reference, None)["measurements"] == 0


def test_a_dominated_point_leaves_the_hypervolume_exactly_as_it_was():
    latency, accuracy = [0.677, 0.6695, 0.5622], [0.6897, 0.7462, 0.3739]
    before = hypervolume(pd.Series(latency), pd.Series(accuracy), 0.7, 0.1)
    # (0.6159, 0.187) lies under the step that (0.5622, 0.3739) begins: it splits that step in
    # two, whose products summed to 1e-17 less than the one (a curve that "shrank").
    after = hypervolume(pd.Series([*latency, 0.6159]), pd.Series([*accuracy, 0.187]), 0.7, 0.1)
    assert after == before == pytest.approx((0.6695 - 0.5622) * (0.3739 - 0.1)
                                            + (0.7 - 0.6695) * (0.7462 - 0.1))
    assert hypervolume(pd.Series([0.8]), pd.Series([0.9]), 0.7, 0.1) == 0.0  # beyond the box
