import pytest
import torch

from spaces import ChannelGroup, GroupChoices, Ranking, SearchSpace, kept_channels


@pytest.mark.parametrize(("width", "fraction", "round_to", "expected"), [
    (64, 0.5, 8, 32),
    (64, 0.3, 8, 16),     # 19.2 rounds to 2 multiples
    (64, 0.01, 8, 8),     # never below one multiple
    (64, 1.0, 8, 64),
    (20, 1.0, 8, 20),     # a width off the multiple stays reachable
    (20, 0.9, 8, 16),
    (6, 0.25, 8, 6),      # narrower than one multiple: stays dense
    (64, 0.5, 1, 32),
])
def test_kept_channels(width, fraction, round_to, expected):
    assert kept_channels(width, fraction, round_to) == expected


def space(**kwargs):
    groups = (ChannelGroup("a", 64, ("a",)), ChannelGroup("b", 16, ("b",)),
              ChannelGroup("c", 8, ("c",)))
    return SearchSpace(groups, **kwargs)


def test_widths_and_searchable_groups():
    s = space()
    assert s.widths(s.groups[0]) == [16, 24, 32, 40, 48, 56, 64]
    assert s.widths(s.groups[1]) == [8, 16]
    assert [g.name for g in s.searchable] == ["a", "b"]  # c has one allowed width


def test_allocations():
    s = space()
    assert s.dense() == {"a": 64, "b": 16, "c": 8}
    assert s.smallest() == {"a": 16, "b": 8, "c": 8}
    assert s.uniform(0.5) == {"a": 32, "b": 8, "c": 8}
    assert s.allocation({"a": 0.75}) == {"a": 48, "b": 16, "c": 8}
    with pytest.raises(KeyError, match="zz"):
        s.allocation({"zz": 0.5})


@pytest.mark.parametrize("kwargs", [{"round_to": 0}, {"fractions": (0.5, 0.75)},
                                    {"fractions": (0.0, 1.0)}, {"fractions": ()}])
def test_invalid_spaces_are_refused(kwargs):
    with pytest.raises(ValueError):
        space(**kwargs)


def staged():
    return (ChannelGroup("s1a", 64, ("s1a",), (16, 16)), ChannelGroup("s1b", 64, ("s1b",), (16, 16)),
            ChannelGroup("s2a", 128, ("s2a",), (8, 8)), ChannelGroup("s2b", 128, ("s2b",), (8, 8)),
            ChannelGroup("tiny", 8, ("tiny",), (8, 8)))


def test_per_layer_has_one_fraction_per_searchable_group():
    dims = SearchSpace(staged()).dimensions
    assert [(d.name, d.groups, d.unit) for d in dims] == [
        ("s1a", ("s1a",), "fraction"), ("s1b", ("s1b",), "fraction"),
        ("s2a", ("s2a",), "fraction"), ("s2b", ("s2b",), "fraction")]


def test_per_stage_shares_one_fraction_per_resolution():
    s = SearchSpace(staged(), kind="per-stage")
    assert [(d.name, d.groups) for d in s.dimensions] == [
        ("stage-16x16", ("s1a", "s1b")), ("stage-8x8", ("s2a", "s2b"))]
    assert s.decode({"stage-16x16": 0.5, "stage-8x8": 0.25}) == {
        "s1a": 32, "s1b": 32, "s2a": 32, "s2b": 32, "tiny": 8}
    with pytest.raises(KeyError, match="stage-8x8"):
        s.decode({"stage-16x16": 0.5})


def test_uniform_is_one_fraction_and_own_choices_get_their_own_dimension():
    own = {"s2b": GroupChoices(widths=(40, 96)), "s1b": GroupChoices(fractions=(0.5, 1.0)),
           "s2a": GroupChoices(exclude="spaces file rule 1 (s2a)")}
    s = SearchSpace(staged(), kind="uniform", own=own)
    assert [(d.name, d.groups, d.choices, d.unit) for d in s.dimensions] == [
        ("keep", ("s1a",), s.fractions, "fraction"),
        ("s1b", ("s1b",), (0.5, 1.0), "fraction"),
        ("s2b", ("s2b",), (40, 96), "width")]
    assert s.excluded == {"s2a": "spaces file rule 1 (s2a)"}
    assert s.decode({"keep": 0.25, "s1b": 0.5, "s2b": 40}) == {
        "s1a": 16, "s1b": 32, "s2a": 128, "s2b": 40, "tiny": 8}
    assert s.smallest() == {"s1a": 16, "s1b": 32, "s2a": 128, "s2b": 40, "tiny": 8}
    # Warm starts snap to each dimension's own choices: 0.25 of 128 is nearest 40.
    assert s.params_at(0.25) == {"keep": 0.25, "s1b": 0.5, "s2b": 40}
    assert s.uniform(0.75)["s2b"] == 96


def test_groups_of_one_width_stay_out_of_every_dimension():
    own = {"s1a": GroupChoices(widths=(48,))}
    s = SearchSpace(staged(), own=own)
    assert "s1a" not in [d.name for d in s.dimensions]
    assert s.decode({d.name: 1.0 for d in s.dimensions})["s1a"] == 48
    with pytest.raises(ValueError, match="unknown space"):
        SearchSpace(staged(), kind="per-block")
    with pytest.raises(KeyError, match="nope"):
        SearchSpace(staged(), own={"nope": GroupChoices(exclude="x")})


def test_params_for_per_group_fractions_snap_each_dimension():
    per_layer = SearchSpace(staged())
    assert per_layer.params_for({"s1a": 0.3, "s2b": 0.6}) == {
        "s1a": 0.25, "s1b": 1.0, "s2a": 1.0, "s2b": 0.625}  # unnamed groups keep all
    per_stage = SearchSpace(staged(), kind="per-stage")
    # A stage's fraction is nearest to its groups' mean; a group's own widths take the width
    # nearest to its share.
    assert per_stage.params_for({"s1a": 0.25, "s1b": 0.75, "s2a": 0.5, "s2b": 0.4}) == {
        "stage-16x16": 0.5, "stage-8x8": 0.5}
    own = SearchSpace(staged(), kind="per-stage", own={"s2b": GroupChoices(widths=(40, 96))})
    assert own.params_for({"s2b": 0.7})["s2b"] == 96
    assert per_layer.params_for({g.name: 0.5 for g in staged()}) == per_layer.params_at(0.5)


def _ranking():
    # s1a's channels score high, s2a's low; s2b's channels cost a quarter of s1a's MACs.
    scores = {"s1a": torch.linspace(2.0, 1.0, 64), "s1b": torch.linspace(1.5, 0.5, 64),
              "s2a": torch.linspace(0.9, 0.1, 128), "s2b": torch.linspace(1.2, 0.2, 128)}
    return Ranking(scores, costs={"s1a": 4.0, "s1b": 4.0, "s2a": 4.0, "s2b": 1.0})


def test_ranked_draws_the_share_kept_the_cost_exponent_and_a_weight_per_stage():
    s = SearchSpace(staged(), kind="ranked")
    assert [(d.name, d.groups, d.unit) for d in s.dimensions] == [
        ("keep", ("s1a", "s1b", "s2a", "s2b"), "share"),
        ("cost", ("s1a", "s1b", "s2a", "s2b"), "exponent"),
        ("stage-16x16-weight", ("s1a", "s1b"), "weight"),
        ("stage-8x8-weight", ("s2a", "s2b"), "weight")]
    with pytest.raises(ValueError, match="with_ranking"):  # it needs the trained model's
        s.decode(s.params_at(0.5))


def test_ranked_keeps_the_highest_scores_snapped_to_each_groups_allowed_widths():
    s = SearchSpace(staged(), kind="ranked").with_ranking(_ranking())
    half = s.params_at(0.5)
    assert half == {"keep": 0.5, "cost": 0.0, "stage-16x16-weight": 1.0, "stage-8x8-weight": 1.0}
    by_score = s.decode(half)
    assert by_score["s1a"] == 64 and by_score["s2a"] == 32  # s2a at its smallest allowed width
    assert by_score["tiny"] == 8
    assert sum(by_score[g] for g in ("s1a", "s1b", "s2a", "s2b")) == pytest.approx(192, abs=16)
    # Per MAC, s2b's channels (a quarter of the cost) win over the rest.
    per_mac = s.decode({**half, "cost": 1.0})
    assert per_mac["s2b"] > by_score["s2b"] and per_mac["s1b"] < by_score["s1b"]
    # A stage weighed up keeps more of its channels.
    weighed = s.decode({**half, "stage-8x8-weight": 2.0})
    assert weighed["s2a"] > by_score["s2a"] and weighed["s1b"] < by_score["s1b"]
    # Fewer channels in all for a smaller share; every width one the group allows.
    quarter = s.decode(s.params_at(0.25))
    assert sum(quarter.values()) < sum(by_score.values())
    assert all(quarter[g.name] in s.widths(g) for g in s.groups)
    assert s.uniform(0.5) == SearchSpace(staged()).uniform(0.5)  # uniform whatever the kind
    assert s.params_for({}) == {**s.params_at(1.0), "keep": max(s.dimensions[0].choices)}
