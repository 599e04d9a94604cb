"""Spaces files: what they say, and one clear error for each way they can be wrong."""

import pytest

from spaces import ChannelGroup, SearchSpace, read_space_file

GROUPS = (ChannelGroup("features.3", 128, ("features.3",), (8, 8)),
          ChannelGroup("features.7", 256, ("features.7", "features.10"), (4, 4)),
          ChannelGroup("classifier.0", 512, ("classifier.0",), ()))
GROUPED = ChannelGroup("grouped.0", 64, ("grouped.0",), (4, 4), channel_groups=8)

GOOD = '''
space = "per-stage"
fractions = [0.5, 1.0, 0.25]

[[rule]]
match = "features.1*"      # matches the layer features.10, so its group features.7
exclude = true

[[rule]]
match = "classifier.*"
widths = [256, 128, 512]
'''


def write(tmp_path, text):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_a_spaces_file_sets_kind_fractions_and_each_groups_choices(tmp_path):
    file = read_space_file(write(tmp_path, GOOD))
    assert file.kind == "per-stage" and file.fractions == (0.25, 0.5, 1.0)
    own = file.choices(GROUPS)
    assert set(own) == {"features.7", "classifier.0"}
    assert own["features.7"].exclude == "spaces file rule 1 (features.1*)"
    assert own["classifier.0"].widths == (128, 256, 512)
    space = SearchSpace(GROUPS, kind=file.kind, fractions=file.fractions, own=own)
    assert [(d.name, d.choices) for d in space.dimensions] == [
        ("stage-8x8", (0.25, 0.5, 1.0)), ("classifier.0", (128, 256, 512))]
    assert space.smallest() == {"features.3": 32, "features.7": 256, "classifier.0": 128}
    # The digest follows the content: an edited file is a different space.
    assert read_space_file(write(tmp_path, GOOD + "\n# edited\n")).digest != file.digest


def test_later_rules_win(tmp_path):
    file = read_space_file(write(tmp_path, '[[rule]]\nmatch = "*"\nfractions = [0.5, 1.0]\n'
                                           '[[rule]]\nmatch = "features.3"\nexclude = true\n'))
    own = file.choices(GROUPS)
    assert own["features.3"].exclude and own["features.7"].fractions == (0.5, 1.0)


@pytest.mark.parametrize(("text", "message"), [
    ("spcae = 'uniform'", "unknown key 'spcae'; valid: fractions, rule, space"),
    ("space = 'per-block'", "space = 'per-block'; valid: per-layer, per-stage, uniform"),
    ("fractions = [0.5, 0.75]", "must include 1.0"),
    ("fractions = [0, 1.0]", r"must lie in \(0, 1\]"),
    ("fractions = 'half'", "fractions must be a list of numbers"),
    ("[[rule]]\nmatch = 'a'\nfractoins = [1.0]", "rule 1: unknown key 'fractoins'"),
    ("[[rule]]\nexclude = true", "rule 1 needs match ="),
    ("[[rule]]\nmatch = 'a'", "rule 1 needs exactly one of exclude, fractions, widths; got none"),
    ("[[rule]]\nmatch = 'a'\nexclude = true\nwidths = [8]", "got exclude, widths"),
    ("[[rule]]\nmatch = 'a'\nexclude = false", "exclude must be true"),
    ("[[rule]]\nmatch = 'a'\nwidths = [0, 8]", "widths must be a list of channel counts"),
    ("rule = 3", "rules are written \\[\\[rule\\]\\]"),
    ("space = [", "not valid TOML"),
])
def test_a_bad_spaces_file_names_the_problem(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_space_file(write(tmp_path, text))


@pytest.mark.parametrize(("rule", "message"), [
    ("match = 'layer9.*'\nexclude = true", "rule 1 \\(match = 'layer9.\\*'\\) matches no prunable"),
    ("match = 'features.3'\nwidths = [64, 200]", "widths \\[64, 200\\] exceed group 'features.3'"),
    ("match = 'grouped.*'\nwidths = [16, 20]", "widths \\[20\\] do not divide evenly over the 8 "
     "convolution groups of group 'grouped.0'; use multiples of 8"),
])
def test_rules_are_checked_against_the_models_groups(tmp_path, rule, message):
    file = read_space_file(write(tmp_path, f"[[rule]]\n{rule}\n"))
    with pytest.raises(ValueError, match=message):
        file.choices((*GROUPS, GROUPED))


def test_a_missing_spaces_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="no such spaces file"):
        read_space_file(tmp_path / "nope.toml")
