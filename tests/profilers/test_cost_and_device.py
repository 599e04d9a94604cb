import pytest
import torch
from torch import nn

from profilers import Cost, LayerMacs, count_cost, fingerprint, resolve_device


def test_linear_cost_is_exact():
    assert count_cost(nn.Linear(4, 3), torch.randn(5, 4)) == Cost(macs=12, params=15)


def test_conv_cost_counts_one_sample():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    cost = count_cost(conv, torch.randn(4, 3, 8, 8))
    assert cost.macs == 8 * 3 * 9 * 64  # per output pixel: 3x3x3 weights, 8 channels, 64 pixels
    assert cost.params == 8 * 27 + 8


def _conv_and_linear_macs(model, x):
    from fvcore.nn import FlopCountAnalysis

    by_op = FlopCountAnalysis(model.eval(), x).unsupported_ops_warnings(False).by_operator()
    return by_op.get("conv", 0) + by_op.get("linear", 0)


def test_layer_macs_count_pruned_copies_as_fvcore_does_without_running_them():
    from search.sources._zoo import resnet20
    from spaces import SearchSpace, discover_groups, prune

    dense = resnet20().eval()
    x = torch.randn(1, 3, 16, 16)
    groups, _ = discover_groups(dense, x)
    space = SearchSpace(tuple(groups), round_to=4)
    counter = LayerMacs.of(dense, x)
    calls = []
    for allocation in (space.dense(), space.uniform(0.5), space.smallest()):
        pruned = prune(dense, x, allocation)
        pruned.register_forward_pre_hook(lambda *_: calls.append(1))
        calls.clear()
        counted = counter(pruned)
        assert not calls  # counted from shapes, not run
        assert counted == _conv_and_linear_macs(pruned, x)
    # Grouped and depthwise convolutions count their inputs per group.
    grouped = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 16, 1, groups=2),
                            nn.Flatten(), nn.Linear(16 * 36, 4))
    y = torch.randn(1, 8, 8, 8)
    assert LayerMacs.of(grouped, y)(grouped) == _conv_and_linear_macs(grouped, y)


def test_cpu_resolves():
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "gpu"])
def test_unknown_device_names(name):
    with pytest.raises(ValueError, match="use cpu, cuda or cuda:N"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_says_so():
    with pytest.raises(ValueError, match="CUDA is not available.*--device cpu"):
        resolve_device("cuda")


def test_fingerprint_names_the_context():
    info = fingerprint(torch.device("cpu"), threads=1)
    assert info["threads"] == 1 and info["torch"] == torch.__version__
    assert info["cpu_model"]
