"""Width steps: the recommendation logic on known curves, and a real sweep of a real model."""

import pytest
import torch
from torch import nn

from profilers import LatencySettings, WidthCurve, recommended_round_to, waste_by_alignment, width_steps
from profilers._steps import recommend


def staircase(widths, tile):
    return [1.0 + (w + tile - 1) // tile for w in widths]


@pytest.mark.parametrize("tile", [4, 8, 16])
def test_a_staircase_recommends_its_tile(tile):
    widths = list(range(1, 97))
    assert recommend(waste_by_alignment(widths, staircase(widths, tile))) == tile


def test_a_smooth_curve_recommends_the_finest_multiple():
    widths = list(range(1, 65))
    assert recommend(waste_by_alignment(widths, [0.1 + 0.01 * w for w in widths])) == 1


def test_multiples_cheaper_than_the_widths_below_them_are_found():
    # As measured on this CPU: width 4k costs less than 4k-1, and 4k+1 about what 4k+2 does.
    widths = list(range(48, 73))
    cost = {0: 0.0, 1: 0.010, 2: 0.011, 3: 0.020}
    latency = [0.2 + 0.002 * w + cost[w % 4] for w in widths]
    waste = waste_by_alignment(widths, latency)
    assert waste[4] == 0.0 and waste[1] > waste[2] > 0
    assert recommend(waste) == 4


def curve(kind, share, recommended, flat=False):
    return WidthCurve(kind, "layer", share, (1, 2), (1.0, 2.0), {}, recommended, flat)


def test_the_model_takes_the_largest_multiple_of_its_heavy_kinds():
    curves = [curve("conv 1x1", 0.7, 4), curve("depthwise conv 3x3", 0.25, 16),
              curve("linear", 0.05, 32)]  # too light to decide
    assert recommended_round_to(curves) == 16
    assert recommended_round_to([curve("conv 3x3", 1.0, 8, flat=True)]) == 1


def test_a_real_sweep_of_a_real_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 24, 3, padding=1), nn.ReLU(), nn.Conv2d(24, 32, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 32),
                          nn.ReLU(), nn.Linear(32, 10))
    curves = width_steps(model, torch.randn(1, 3, 16, 16), device="cpu",
                         settings=LatencySettings(min_rounds=3, max_seconds=1.0, warmup_s=0.01))
    # The classifier (the layer making the model's output) is never pruned, so never swept.
    assert [(c.kind, c.layer) for c in curves] == [("conv 3x3", "2"), ("linear", "6")]
    conv = curves[0]
    assert conv.layer == "2" and conv.widths == tuple(range(1, 33))  # the heavier of the two
    assert conv.latency_ms[-1] > conv.latency_ms[0]  # 32 channels cost more than 1
    assert conv.recommended in conv.waste and conv.macs_share > 0.9
