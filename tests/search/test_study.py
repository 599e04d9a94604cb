"""The study loop on a real (small) model and real Optuna storage, without the CLI."""

import json
import signal
import time

import optuna
import pandas as pd
import pytest
import torch

from profilers import Context, LatencyCache, LatencySettings, fingerprint
from search import SearchConfig
from search._guards import resident_bytes
from search.candidates import CandidateEvaluator, measure_reference
from search.runfolder import TRIAL_COLUMNS
from search.sources import digits
from search.sources._zoo import resnet20
from search.study import open_study, run_trials, suggest, trials_frame, warm_start
from search.training import Recipe
from spaces import ChannelGroup, SearchSpace, discover_groups, prune

_MB = 2**20

FAST = LatencySettings(min_rounds=3, max_seconds=0.3, warmup_s=0.02, warmup_calls=2)


def make(tmp_path, budget_ratio, trials, cache=None, **overrides):
    config = SearchConfig(budget_ratio=budget_ratio, trials=trials, image_size=8,
                          finetune_steps=1, out=str(tmp_path / "run"), study_name="s",
                          **overrides)
    (tmp_path / "run").mkdir(parents=True)
    data = digits(image_size=8)
    dense = resnet20().eval()
    example = data.val.x[:1]
    groups, _ = discover_groups(dense, example)
    # Coarse widths make repeats of the same allocation likely in a few trials.
    space = SearchSpace(tuple(groups), fractions=(0.5, 1.0), round_to=16)
    reference = measure_reference(dense, prune(dense, example, space.smallest()), example,
                                  torch.device("cpu"), FAST, Context())
    evaluator = CandidateEvaluator(
        dense=dense, model_name="resnet20", data=data, example=example,
        device=torch.device("cpu"), latency=FAST, context=Context(), reference=reference,
        budget_ms=budget_ratio * reference.latency_ms,
        recipe=Recipe(finetune_steps=1, bn_batches=1), seed=0, run_dir=tmp_path / "run",
        cache=cache)
    return config, space, evaluator


def test_trials_are_stored_and_read_back_with_the_named_columns(tmp_path):
    config, space, evaluator = make(tmp_path, 1.0, 5)
    # A budget of 3x dense: every candidate is feasible whatever the machine's noise (at 1x, a
    # candidate as wide as dense can measure a little over it and is then not fine-tuned).
    evaluator.budget_ms = 3 * evaluator.reference.latency_ms
    study = open_study(config.study_key())
    warm_start(study, space, name="grid")
    assert run_trials(study, space, evaluator, trials=config.trials) == 5
    frame = trials_frame(study, evaluator.budget_ms)
    assert list(frame.columns[:len(TRIAL_COLUMNS)]) == TRIAL_COLUMNS
    assert frame["trial"].tolist() == [0, 1, 2, 3, 4]
    assert (frame["state"] == "COMPLETE").all()
    # The warm start: uniform keep 0.25 / 0.5 / 0.75, snapped to this space's grid (0.5, 1.0).
    assert study.trials[0].params == {g.name: 0.5 for g in space.searchable}
    scored = frame[frame["repeat_of"].isna()]
    assert scored["accuracy"].between(0, 1).all() and (scored["macs"] > 0).all()
    assert all(t.constraints for t in study.trials)  # the budget reaches the sampler


def test_over_budget_candidates_are_not_fine_tuned_then_are_once_the_budget_allows(tmp_path):
    config, space, evaluator = make(tmp_path, 0.05, 2)  # nothing fits 5% of the dense latency
    study = open_study(config.study_key())
    run_trials(study, space, evaluator, trials=config.trials)
    frame = trials_frame(study, evaluator.budget_ms)
    assert frame["accuracy"].isna().all() and not frame["feasible"].any()
    assert not list((tmp_path / "run" / "models").glob("*.pt"))
    # Same study, generous budget, the widths of trial 0 twice more: the first time they are
    # scored anew (the old score had no accuracy), the second time that new score is reused.
    evaluator.budget_ms = 1e9
    study.enqueue_trial(study.trials[0].params)
    study.enqueue_trial(study.trials[0].params)
    run_trials(study, space, evaluator, trials=config.trials)
    frame = trials_frame(study, evaluator.budget_ms).set_index("trial")
    assert pd.isna(frame.loc[2, "repeat_of"]) and frame.loc[2, "accuracy"] >= 0
    assert frame.loc[3, "repeat_of"] == 2
    assert frame.loc[3, "accuracy"] == frame.loc[2, "accuracy"]
    assert frame.loc[2, "allocation"] == frame.loc[0, "allocation"] == frame.loc[3, "allocation"]


def test_warm_start_fractions_snap_to_the_grid():
    from search.study._sampling import _warm_start

    assert _warm_start((0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)) == [0.25, 0.5, 0.75]
    assert _warm_start((0.5, 1.0)) == [0.5]
    assert _warm_start((0.2, 0.45, 0.8, 1.0)) == [0.2, 0.45, 0.8]
    assert _warm_start((1.0,)) == []
    # A grid below a quarter (a spaces file's) also starts from its smallest: the fast end.
    assert _warm_start((0.0625, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0)) == [0.0625, 0.25, 0.5, 0.75]


UNEVEN = (0.0625, 0.125, 0.25, 0.5, 1.0)


def _uneven_space():
    groups = tuple(ChannelGroup(f"g{i}", 64, (f"g{i}",)) for i in range(3))
    return SearchSpace(groups, fractions=UNEVEN, round_to=1)


def test_an_uneven_grid_is_drawn_in_order_and_snapped_to_its_choices():
    space = _uneven_space()
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    kept = set()
    for _ in range(40):
        trial = study.ask()
        allocation = suggest(trial, space)
        # Ordered (a log-scaled float), not a category: the sampler can learn that less is faster.
        assert all(isinstance(d, optuna.distributions.FloatDistribution) and d.log
                   for d in trial.distributions.values())
        kept |= set(allocation.values())
        study.tell(trial, [0.5, 1.0])
    assert kept == {int(64 * f) for f in UNEVEN}  # every choice is reached, nothing between


def test_a_study_that_drew_a_dimension_as_a_category_keeps_drawing_it_so():
    space = _uneven_space()
    study = optuna.create_study(directions=["maximize", "minimize"])
    older = study.ask()  # as the search drew uneven grids before they were ordered
    for dim in space.dimensions:
        older.suggest_categorical(dim.name, dim.choices)
    study.tell(older, [0.5, 1.0])
    trial = study.ask()
    suggest(trial, space)  # a changed kind would raise here
    assert all(isinstance(d, optuna.distributions.CategoricalDistribution)
               for d in trial.distributions.values())


def test_an_accuracy_floor_makes_candidates_under_it_infeasible_to_the_sampler(tmp_path):
    config, space, evaluator = make(tmp_path, 1.0, 3)
    evaluator.budget_ms = 1e9  # every candidate fine-tuned: only the floor can rule them out
    evaluator.accuracy_floor = 0.99  # one SGD step on digits at 8 px gets nowhere near it
    study = open_study(config.study_key())
    study.enqueue_trial(space.params_at(0.5))
    study.enqueue_trial(space.params_at(0.5))  # the same widths: reused, constraints too
    run_trials(study, space, evaluator, trials=config.trials)
    first, repeat = study.trials[:2]
    assert repeat.user_attrs["repeat_of"] == 0
    assert first.user_attrs["source"] == repeat.user_attrs["source"] == "enqueued"
    for trial in (first, repeat):
        assert trial.constraints["accuracy_under_floor"] == pytest.approx(
            0.99 - first.user_attrs["accuracy"])
        assert trial.constraints["latency_over_budget_ms"] < 0  # within the budget
    assert study.best_trials == []  # Optuna reads every one as infeasible
    evaluator.accuracy_floor = None  # without a floor, only the budget constrains
    run_trials(study, space, evaluator, trials=1)
    assert set(study.trials[-1].constraints) == {"latency_over_budget_ms"}
    assert study.trials[-1].user_attrs["source"] not in ("enqueued", None)  # drawn, not queued
    assert study.best_trials


def test_latency_cache_reuses_an_earlier_runs_ratio_and_says_so(tmp_path):
    cache = LatencyCache(tmp_path / "cache", fingerprint(torch.device("cpu"), 1))
    _, space, first = make(tmp_path / "a", 1.0, 1, cache=cache)
    allocation = space.uniform(0.5)
    _, measured = first.measure(allocation)
    assert measured.extra["latency_cached"] is False
    assert measured.extra["dense_ms_now"] > 0  # the reference, measured again with each trial
    _, space, later = make(tmp_path / "b", 1.0, 1,
                           cache=LatencyCache(tmp_path / "cache", fingerprint(torch.device("cpu"), 1)))
    _, reused = later.measure(allocation)
    assert reused.extra["latency_cached"] is True
    assert reused.extra["latency_ratio"] == measured.extra["latency_ratio"]
    # Reported against the later run's own reference, not the earlier absolute figure.
    assert reused.latency_ms == pytest.approx(measured.extra["latency_ratio"]
                                              * later.reference.latency_ms)
    _, other = later.measure(space.uniform(0.75))
    assert other.extra["latency_cached"] is False


def test_a_signal_during_a_deferred_step_lands_after_it():
    import os
    import signal

    from search._errors import Terminated
    from search._guards import interrupts_deferred

    done = []
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(Terminated()))
    try:
        with pytest.raises(Terminated), interrupts_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("the step finished")
        assert done == ["the step finished"]
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # handler restored
        with interrupts_deferred():  # no signal: nothing raised
            done.append("again")
        with pytest.raises(Terminated), interrupts_deferred():  # held until the outer block ends
            with interrupts_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
            done.append("the outer step finished")
        assert done[-1] == "the outer step finished"
    finally:
        signal.signal(signal.SIGTERM, previous)


def _waiting(study):
    return [t.system_attrs["fixed_params"]
            for t in study.get_trials(states=(optuna.trial.TrialState.WAITING,))]


def test_warm_start_adds_globally_ranked_candidates_after_the_uniform_ones(caplog):
    torch.manual_seed(0)
    dense = resnet20().eval()
    x = torch.randn(1, 3, 8, 8)
    groups, _ = discover_groups(dense, x)
    space = SearchSpace(tuple(groups))
    with torch.no_grad():  # the first searchable group: half its channels near zero
        dense.layer1[0].conv1.weight[8:] *= 1e-3
        dense.layer1[0].bn1.weight[8:] *= 1e-3
    study = optuna.create_study(directions=["maximize", "minimize"])
    warm_start(study, space, name="grid", dense=dense, example=x)
    queued = _waiting(study)
    uniform = [space.params_at(f) for f in (0.25, 0.5, 0.75)]
    assert queued[:3] == uniform
    assert [t.user_attrs["source"] for t in study.trials] == \
        ["warm start: uniform"] * 3 + ["warm start: ranking"] * (len(queued) - 3)
    ranked = queued[3:]
    assert ranked and all(params not in uniform for params in ranked)
    assert len(ranked) == len({json.dumps(p, sort_keys=True) for p in ranked})  # no repeats
    assert all(params[space.searchable[0].name] <= 0.5 for params in ranked)  # the weak group
    # At the grid's smallest share too: groups the ranking cuts below the grid keep its smallest,
    # so the candidate is a little larger than the uniform smallest.
    assert min(ranked[0].values()) == 0.25 < max(ranked[0].values())
    assert sum(ranked[0].values()) < sum(space.params_at(0.5).values())
    warm_start(study, space, name="grid", dense=dense, example=x)  # a study with trials is left as it is
    assert len(_waiting(study)) == len(queued)
    # One fraction for the whole model: the ranking has nothing to choose.
    one = optuna.create_study(directions=["maximize", "minimize"])
    warm_start(one, SearchSpace(tuple(groups), kind="uniform"), name="grid", dense=dense,
               example=x)
    assert len(_waiting(one)) == 3
    # A model whose channels cannot be scored: the uniform ones, and a warning saying why.
    broken = optuna.create_study(directions=["maximize", "minimize"])
    warm_start(broken, space, name="grid", dense=dense, example=torch.randn(1, 5, 8, 8))
    assert len(_waiting(broken)) == 3 and "globally ranked" in caplog.text


class _HoarderAtHalf(torch.nn.Module):
    """Prunes and runs, except at half its middle layer's width, where its forward keeps
    allocating (as torch-pruning's index mappings do on some models); 2 GB at most, so a limit
    that never fires fails the test, not the machine."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(3, 16, 3), torch.nn.Conv2d(16, 16, 3)
        self.conv3 = torch.nn.Conv2d(16, 10, 1)
        self.held: list[bytes] = []

    def forward(self, x):
        if self.conv3.in_channels == 8:
            for _ in range(200):
                self.held.append(b"\1" * (10 * _MB))  # touched pages: resident
                time.sleep(0.005)
        return self.conv3(self.conv2(self.conv1(x))).mean((2, 3))


def test_a_candidate_that_fills_memory_fails_its_trial_and_the_search_goes_on(tmp_path):
    data, dense = digits(image_size=8), _HoarderAtHalf().eval()
    example = data.val.x[:1]
    groups, _ = discover_groups(dense, example)
    space = SearchSpace(tuple(groups), fractions=(0.5, 1.0), round_to=8)
    reference = measure_reference(dense, None, example, torch.device("cpu"), FAST, Context())
    evaluator = CandidateEvaluator(
        dense=dense, model_name="hoarder", data=data, example=example,
        device=torch.device("cpu"), latency=FAST, context=Context(), reference=reference,
        budget_ms=1e9, recipe=Recipe(finetune_steps=1), seed=0, run_dir=tmp_path,
        max_rss=resident_bytes() + 200 * _MB)
    config = SearchConfig(budget_ratio=1.0, trials=2, out=str(tmp_path), study_name="s")
    study, handler = open_study(config.study_key()), signal.getsignal(signal.SIGUSR1)
    study.enqueue_trial(space.params_at(0.5))  # the width that fills memory
    study.enqueue_trial(space.params_at(1.0))
    assert run_trials(study, space, evaluator, trials=config.trials) == 2
    frame = trials_frame(study, evaluator.budget_ms)
    assert frame["state"].tolist() == ["FAIL", "COMPLETE"]
    assert frame.loc[0, "fail_reason"].startswith("out of memory: the candidate grew this "
                                                  "process to ")
    assert "stopped before the machine ran out of memory" in frame.loc[0, "fail_reason"]
    assert 0 <= frame.loc[1, "accuracy"] <= 1  # the next candidate was scored as usual
    assert signal.getsignal(signal.SIGUSR1) is handler


@pytest.mark.slow
def test_the_aimed_warm_start_proposes_candidates_within_the_budget_across_its_range():
    from profilers import count_cost
    from search.study import Aim, LatencyLine
    from spaces import channel_scores

    dense = resnet20().eval()
    example = torch.randn(1, 3, 16, 16)
    groups, _ = discover_groups(dense, example)
    space = SearchSpace(tuple(groups), round_to=4)
    study = optuna.create_study(directions=["maximize", "minimize"])
    aim = Aim(dense_ms=10.0, smallest_ms=4.0, budget_ms=7.0)
    warm_start(study, space, name="aimed", dense=dense, example=example, aim=aim)
    queued = [t.system_attrs["fixed_params"]
              for t in study.get_trials(states=(optuna.trial.TrialState.WAITING,))]

    def macs(allocation):
        return count_cost(prune(dense, example, allocation), example).macs

    line = LatencyLine(macs(space.dense()), 10.0, macs(space.smallest()), 4.0)
    predicted = [line.predict(macs(space.decode(p))) for p in queued]
    assert all(ms <= 7.0 + 1e-9 for ms in predicted)  # nothing aimed over the budget
    assert max(predicted) > 6.0  # and something aimed close to it: the front's end
    uniform = [p for p in queued if len(set(p.values())) == 1]
    assert 2 <= len(uniform) < len(queued)  # the rankings add candidates of their own
    # The knapsack ranks channels by importance per MAC: with every score equal it keeps the
    # cheap channels (the low-resolution layers) and cuts the costly ones first.
    scores = channel_scores(dense, example, space)
    flat = {name: torch.ones_like(s) for name, s in scores.items()}
    from search.study import aimed_params, catalogue

    family, cheap_first = aimed_params(catalogue(dense, example, space, flat), aim)[-1]
    assert family == "knapsack" and cheap_first["layer3.2.conv1"] > cheap_first["layer1.0.conv1"]
    # The families are stored in the study, ascending in MACs, for the gaps sampler to go on
    # choosing from, with this run's measurements and budget.
    from search.study import Catalogue
    from search.study._gaps import AIM_ATTR, CATALOGUE_ATTR

    stored = Catalogue.from_json(study.user_attrs[CATALOGUE_ATTR])
    assert set(stored.families) == {"magnitude", "uniform", "knapsack"}
    for members in stored.families.values():
        assert [m for _, m in members] == sorted(m for _, m in members)
    members = [params for family in stored.families.values() for params, _ in family]
    assert all(p in members for p in queued) and len(members) > 3 * len(queued)
    # Each queued candidate says which family chose it, and is that family's member.
    for t in study.get_trials(states=(optuna.trial.TrialState.WAITING,)):
        family = t.user_attrs["source"].removeprefix("warm start: ")
        assert t.system_attrs["fixed_params"] in [p for p, _ in stored.families[family]]
    assert study.user_attrs[AIM_ATTR] == {"dense_ms": 10.0, "smallest_ms": 4.0, "budget_ms": 7.0}


def test_warm_start_aimed_is_a_choice_of_the_cli_and_config():
    with pytest.raises(Exception, match="--warm-start"):
        SearchConfig(budget_ratio=0.5, warm_start="nearest")
    assert SearchConfig(budget_ratio=0.5, warm_start="aimed").warm_start == "aimed"


class _RaisesAtSixteen(torch.nn.Module):
    """Runs dense, and raises whenever its middle layer keeps 16 channels (as a broken extension
    would, or crash its process)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.mid = torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.Conv2d(16, 32, 3)
        self.fc = torch.nn.Linear(32, 10)

    def forward(self, x):
        x = self.mid(self.stem(x).relu()).relu()
        if x.shape[-3] == 16:
            raise RuntimeError("16 channels")
        return self.fc(x.mean((-2, -1)))


def test_the_aimed_warm_start_never_runs_a_candidate_in_the_searchs_own_process():
    from search.study import Aim

    dense, example = _RaisesAtSixteen().eval(), torch.randn(1, 3, 8, 8)
    groups, _ = discover_groups(dense, example)
    space = SearchSpace(tuple(groups), round_to=8)
    study = optuna.create_study(directions=["maximize", "minimize"])
    warm_start(study, space, name="aimed", dense=dense, example=example,
               aim=Aim(dense_ms=10.0, smallest_ms=4.0, budget_ms=10.0))
    decoded = [space.decode(p) for p in _waiting(study)]
    # Candidates at the width that breaks were chosen (their MACs counted from shapes) and are
    # left to the trials, which record the failure in their own worker when isolated.
    assert any(allocation["mid"] == 16 for allocation in decoded)
