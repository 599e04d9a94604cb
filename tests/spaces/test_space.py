import pytest

from spaces import ChannelGroup, PerLayerSpace, kept_channels


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
    return PerLayerSpace(groups, **kwargs)


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
