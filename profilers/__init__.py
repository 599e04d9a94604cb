"""What a model costs on a device: measured latency, MACs, parameters, and the device's identity.

Knows nothing of search or pruning; the only importer of fvcore.
"""

from profilers._cache import LatencyCache
from profilers._context import (
    PRECISIONS,
    RUNTIMES,
    Context,
    Runner,
    Runtime,
    export_onnx,
    onnxruntime_session,
    prepare,
    session_runner,
)
from profilers._cost import Cost, LayerMacs, count_cost
from profilers._device import fingerprint, resolve_device
from profilers._gpu import GpuState, read_gpu_state, slowdown_reasons
from profilers._latency import (
    MEASURE_SECONDS,
    Comparison,
    LatencySettings,
    LatencyStats,
    compare,
    measure,
)
from profilers._steps import (
    WidthCurve,
    recommended_round_to,
    sweep_settings,
    waste_by_alignment,
    width_steps,
)

__all__ = [
    "MEASURE_SECONDS",
    "PRECISIONS",
    "RUNTIMES",
    "Comparison",
    "Context",
    "Cost",
    "GpuState",
    "LatencyCache",
    "LatencySettings",
    "LatencyStats",
    "compare",
    "count_cost",
    "LayerMacs",
    "fingerprint",
    "export_onnx",
    "measure",
    "onnxruntime_session",
    "prepare",
    "read_gpu_state",
    "resolve_device",
    "session_runner",
    "slowdown_reasons",
    "Runner",
    "Runtime",
    "WidthCurve",
    "recommended_round_to",
    "waste_by_alignment",
    "sweep_settings",
    "width_steps",
]
