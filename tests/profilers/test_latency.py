import pytest
import torch
from torch import nn

from profilers import Context, LatencySettings, LatencyStats, compare, measure

QUICK = LatencySettings(min_rounds=8, max_seconds=1.5, warmup_s=0.05)


def conv_net(channels):
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(channels, channels, 3, padding=1)).eval()


def test_stats_from_known_samples():
    stats = LatencyStats.from_samples([float(v) for v in range(1, 22)])  # 1..21
    assert stats.median_ms == 11.0
    assert stats.iqr_ms == pytest.approx(16.0 - 6.0)
    assert stats.p90_ms == pytest.approx(19.0)
    assert stats.repeats == 21
    assert LatencyStats.from_samples([2.5]) == LatencyStats(2.5, 2.5, 0.0, 1)
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


def test_a_model_against_itself_has_ratio_one():
    net = conv_net(32)
    x = torch.randn(1, 32, 32, 32)
    result = compare([net, net], x, device="cpu", settings=QUICK)
    assert result.ratios[0] == 1.0
    assert result.ratios[1] == pytest.approx(1.0, abs=0.15)
    assert result.rounds >= QUICK.min_rounds
    assert all(s.repeats >= QUICK.min_rounds for s in result.stats)


def test_half_the_channels_is_measured_faster():
    x_wide, wide, narrow = torch.randn(1, 64, 32, 32), conv_net(64), conv_net(32)

    class Narrow(nn.Module):  # takes the same input, keeps half the channels
        def __init__(self):
            super().__init__()
            self.net = narrow

        def forward(self, x):
            return self.net(x[:, :32])

    result = compare([wide, Narrow().eval()], x_wide, device="cpu", settings=QUICK)
    assert result.ratios[1] < 0.7


def test_thread_count_is_restored():
    before = torch.get_num_threads()
    measure(conv_net(8), torch.randn(1, 8, 8, 8), device="cpu",
            settings=LatencySettings(min_rounds=2, max_seconds=0.2, warmup_s=0.01),
            context=Context(threads=1))
    assert torch.get_num_threads() == before


def test_settings_are_validated():
    with pytest.raises(ValueError, match="min_rounds"):
        LatencySettings(min_rounds=0)
    assert LatencySettings().scaled(3).min_rounds == 45


@pytest.mark.cuda
def test_cuda_model_against_itself():
    net = conv_net(64)
    result = compare([net, net], torch.randn(8, 64, 32, 32), device="cuda", settings=QUICK)
    assert result.ratios[1] == pytest.approx(1.0, abs=0.1)
    assert result.stats[0].median_ms > 0
