"""Deployment contexts: validated against the device, converted on copies, outputs preserved."""

import pytest
import torch
from torch import nn

import profilers._latency as latency_module
from profilers import Context, GpuState, LatencySettings, compare, prepare, slowdown_reasons
from profilers._gpu import read_gpu_state

QUICK = LatencySettings(min_rounds=3, max_seconds=0.3, warmup_s=0.01, warmup_calls=2)
CPU = torch.device("cpu")


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


@pytest.mark.parametrize(("context", "message"), [
    (Context(precision="fp16"), "--precision fp16 is measured on CUDA only"),
    (Context(precision="int8"), "unknown --precision 'int8'"),
    (Context(runtime="tvm"), "unknown --runtime 'tvm'"),
    (Context(cuda_graphs=True), "--cuda-graphs needs a CUDA device"),
    (Context(runtime="onnxruntime", channels_last=True), "drop --channels-last"),
    (Context(batch_size=0), "--batch-size and --threads must be at least 1"),
])
def test_contexts_that_cannot_run_say_which_flag(context, message):
    with pytest.raises(ValueError, match=message):
        context.check(CPU)


def test_context_is_described_for_reports():
    assert Context(batch_size=4, channels_last=True).describe() == \
        "batch 4, fp32, eager, channels-last, 1 thread(s)"


def test_channels_last_works_on_a_copy_with_the_same_outputs():
    net, x = small_net(), torch.randn(2, 3, 8, 8)
    runner = prepare(net, x, CPU, Context(batch_size=2, channels_last=True))
    with torch.inference_mode():
        assert torch.allclose(runner.call(), net(x), atol=1e-5)
    assert net[0].weight.is_contiguous()  # the caller's model keeps its memory format


def test_onnxruntime_runner_matches_eager():
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional extra")
    net, x = small_net(), torch.randn(1, 3, 8, 8)
    runner = prepare(net, x, CPU, Context(runtime="onnxruntime"))
    (logits,) = runner.call()
    assert runner.host_timed
    with torch.inference_mode():
        assert torch.allclose(torch.from_numpy(logits), net(x), atol=1e-4)


@pytest.mark.slow
def test_compiled_runner_matches_eager():
    net, x = small_net(), torch.randn(1, 3, 8, 8)
    runner = prepare(net, x, CPU, Context(runtime="compile"))
    with torch.inference_mode():
        assert torch.allclose(runner.call(), net(x), atol=1e-4)


def test_batch_of_the_input_must_match_the_context():
    with pytest.raises(ValueError, match="batch 2"):
        compare([small_net()], torch.randn(2, 3, 8, 8), device="cpu", settings=QUICK,
                context=Context(batch_size=1))


def test_prepared_runner_is_reused_as_it_is():
    net, x = small_net(), torch.randn(1, 3, 8, 8)
    runner = prepare(net, x, CPU, Context())
    calls = []
    counted = type(runner)(lambda: calls.append(1) or runner.call())
    result = compare([counted, net], x, device="cpu", settings=QUICK)
    assert len(calls) >= QUICK.min_rounds and result.peak_memory_bytes == (None, None)


def test_nvml_reasons_decode_only_slowdowns():
    assert slowdown_reasons(0) == []
    assert slowdown_reasons(0x1 | 0x2) == []  # idle, application clocks: not throttling
    assert slowdown_reasons(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert read_gpu_state(CPU) is None


def test_throttled_measurement_is_repeated_then_flagged(monkeypatch):
    readings = []

    def throttled(device):
        readings.append(device)
        return GpuState(1100, 1980, 87, ("hw_thermal_slowdown",))

    monkeypatch.setattr(latency_module, "read_gpu_state", throttled)
    result = compare([small_net()], torch.randn(1, 3, 8, 8), device="cpu", settings=QUICK)
    assert len(readings) == 4  # before and after, twice: measured again once
    assert result.gpu_slowdowns == ("hw_thermal_slowdown",)


def test_unthrottled_measurement_is_not_flagged(monkeypatch):
    monkeypatch.setattr(latency_module, "read_gpu_state",
                        lambda device: GpuState(1980, 1980, 50, ()))
    result = compare([small_net()], torch.randn(1, 3, 8, 8), device="cpu", settings=QUICK)
    assert result.gpu_slowdowns == ()


@pytest.mark.cuda
@pytest.mark.parametrize("context", [Context(precision="fp16"), Context(cuda_graphs=True),
                                     Context(precision="bf16", channels_last=True)])
def test_cuda_contexts_run_and_report_peak_memory(context):
    net = small_net()
    result = compare([net, net], torch.randn(1, 3, 32, 32), device="cuda", settings=QUICK,
                     context=context)
    assert result.ratios[1] == pytest.approx(1.0, abs=0.2)
    assert all(p is not None and p > 0 for p in result.peak_memory_bytes)
