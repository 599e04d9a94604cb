import pytest
import torch
from torch import nn

from profilers import Cost, count_cost, fingerprint, resolve_device


def test_linear_cost_is_exact():
    assert count_cost(nn.Linear(4, 3), torch.randn(5, 4)) == Cost(macs=12, params=15)


def test_conv_cost_counts_one_sample():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    cost = count_cost(conv, torch.randn(4, 3, 8, 8))
    assert cost.macs == 8 * 3 * 9 * 64  # per output pixel: 3x3x3 weights, 8 channels, 64 pixels
    assert cost.params == 8 * 27 + 8


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
