import pytest

from spaces import ChannelGroup, GroupChoices, SearchSpace, kept_channels


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
