"""One channel ranking across the model: scores from torch-pruning, fractions by a threshold."""

import copy

import pytest
import torch
from torch import nn

from spaces import SearchSpace, channel_scores, discover_groups, global_fractions


def test_the_highest_scores_are_kept_wherever_they_are():
    scores = {"a": torch.tensor([4.0, 3.0, 2.0, 1.0]), "b": torch.tensor([0.5, 0.5, 5.0, 5.0])}
    assert global_fractions(scores, 0.5) == {"a": 0.5, "b": 0.5}  # 5, 5, 4, 3
    assert global_fractions(scores, 0.25) == {"a": 0.0, "b": 0.5}  # 5, 5
    assert global_fractions(scores, 0.75) == {"a": 1.0, "b": 0.5}  # 5, 5, 4, 3, 2, 1
    assert global_fractions(scores, 0.875) == {"a": 1.0, "b": 1.0}  # ties at the threshold kept
    assert global_fractions(scores, 1.0) == {"a": 1.0, "b": 1.0}
    assert global_fractions({}, 0.5) == {}


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4)).eval()


def test_channel_scores_rank_weak_channels_low_on_one_scale_and_leave_the_model_as_it_was():
    net = _net()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():  # the second conv's last 8 channels barely matter, in every layer
        net[3].weight[8:] *= 1e-3
        net[4].weight[8:] *= 1e-3
        net[8].weight[:, 8:] *= 1e-3
    before = copy.deepcopy(net.state_dict())
    groups, _ = discover_groups(net, x)
    space = SearchSpace(tuple(groups), round_to=1)
    scores = channel_scores(net, x, space)
    assert set(scores) == {"3"}  # the input layer is left dense by default
    assert all(s.mean().item() == pytest.approx(1.0) for s in scores.values())  # one scale
    assert scores["3"][8:].max() < scores["3"][:8].min()
    # Keeping half of the channels drops the weak ones.
    assert global_fractions(scores, 0.5)["3"] == 0.5
    assert scores["3"][8:].max() < 0.01  # weak against the mean, whatever the scale
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
