import copy

import pytest
import torch
from torch import nn

from search.sources import ZOO
from spaces import discover_groups


def chain():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(),
                         nn.Conv2d(16, 24, 3), nn.ReLU(), nn.Conv2d(24, 4, 1))


def test_chain_groups_exclude_input_and_classifier():
    groups, excluded = discover_groups(chain(), torch.randn(1, 3, 12, 12))
    assert [(g.name, g.width, g.layers) for g in groups] == [("2", 16, ("2",)), ("4", 24, ("4",))]
    assert [e.name for e in excluded] == ["0", "6"]
    assert "input layer" in excluded[0].reason and "classifier" in excluded[1].reason


def test_input_layer_can_be_included():
    groups, excluded = discover_groups(chain(), torch.randn(1, 3, 12, 12), exclude_input=False)
    assert [g.name for g in groups] == ["0", "2", "4"]
    assert [e.name for e in excluded] == ["6"]


def test_residual_adds_couple_layers_into_one_group():
    groups, _ = discover_groups(ZOO["resnet20"](), torch.randn(1, 3, 32, 32))
    by_name = {g.name: g for g in groups}
    stage2 = by_name["layer2.0.conv2"]
    assert stage2.width == 32
    assert set(stage2.layers) == {"layer2.0.conv2", "layer2.0.shortcut.0", "layer2.1.conv2",
                                  "layer2.2.conv2"}
    # Stage 1's residual width is coupled to the input conv, so it is excluded with it.
    assert "layer1.0.conv2" not in by_name
    assert len(groups) == 11  # 9 block-internal convs + stages 2 and 3


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2"])
def test_group_names_are_stable_across_instances(name):
    x = torch.randn(1, 3, 32, 32)
    first = discover_groups(ZOO[name](), x)
    model = ZOO[name]()
    second = discover_groups(copy.deepcopy(model), x)
    assert first == second


def test_discovery_does_not_change_the_model_or_its_mode():
    model = chain().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    discover_groups(model, torch.randn(1, 3, 12, 12))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
