"""The deployment context a latency is measured in, and models prepared to run in it.

A latency figure means nothing without the batch size, precision, memory format, runtime and thread
count it was measured with, so these travel together as one :class:`Context`, are validated once
against the device, and are stored with every measurement.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Context:
    """How the model runs where it is deployed.

    Attributes:
        batch_size: samples per call.
        precision: ``fp32``, or ``fp16``/``bf16`` (CUDA only).
        channels_last: NHWC memory format (eager and ``torch.compile``).
        runtime: ``eager``, ``compile`` (``torch.compile``) or ``onnxruntime`` (exported to ONNX,
            run by ONNX Runtime's CPU or CUDA provider).
        cuda_graphs: replay the model as a CUDA graph (CUDA only; with ``compile`` this is its
            ``reduce-overhead`` mode).
        threads: CPU threads for inference (ONNX Runtime's intra-op threads too).
    """

    batch_size: int = 1
    precision: str = "fp32"
    channels_last: bool = False
    runtime: str = "eager"
    cuda_graphs: bool = False
    threads: int = 1

    def check(self, device: torch.device) -> None:
        """Raises ValueError, naming the flag, for a combination that cannot run on ``device``."""
        if self.batch_size < 1 or self.threads < 1:
            raise ValueError("--batch-size and --threads must be at least 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown --precision {self.precision!r}; valid: "
                             f"{', '.join(PRECISIONS)}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"unknown --runtime {self.runtime!r}; valid: {', '.join(RUNTIMES)}")
        if self.precision != "fp32" and device.type != "cuda":
            raise ValueError(f"--precision {self.precision} is measured on CUDA only; use "
                             f"--precision fp32 on {device}")
        if self.cuda_graphs and device.type != "cuda":
            raise ValueError("--cuda-graphs needs a CUDA device")
        RUNTIMES[self.runtime].check(self, device)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for reports: ``batch 1, fp32, eager, 1 thread(s)``."""
        parts = [f"batch {self.batch_size}", self.precision, self.runtime]
        if self.channels_last:
            parts.append("channels-last")
        if self.cuda_graphs:
            parts.append("CUDA graphs")
        return ", ".join(parts) + f", {self.threads} thread(s)"


@dataclass
class Runner:
    """One model ready to be timed: ``call()`` runs one batch.

    ``host_timed`` runners (ONNX Runtime) run on streams torch does not see and return only when
    done, so they are timed with the host clock even on CUDA.
    """

    call: Callable[[], object]
    host_timed: bool = False
    weight_bytes: int = 0


def prepare(model: nn.Module, example: Tensor, device: torch.device, context: Context) -> Runner:
    """``model`` converted to ``context`` on ``device``, with its input, ready to be timed.

    The caller's model is never changed: moving it to another device, precision or memory format
    works on a copy, so it stays ready for training where it was.
    """
    dtype = PRECISIONS[context.precision]
    on_device = all(p.device == device for p in model.parameters())
    if not on_device or dtype != torch.float32 or context.channels_last:
        model = copy.deepcopy(model)
    model = model.to(device, dtype).eval()
    x = example.to(device, dtype)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return RUNTIMES[context.runtime].prepare(model, x, device, context, weight_bytes)


def _torch_module(model: nn.Module, x: Tensor, context: Context) -> tuple[nn.Module, Tensor]:
    if context.channels_last:
        return (model.to(memory_format=torch.channels_last),
                x.contiguous(memory_format=torch.channels_last))
    return model, x


def _eager(model: nn.Module, x: Tensor, device: torch.device, context: Context,
           weight_bytes: int) -> Runner:
    model, x = _torch_module(model, x, context)
    if context.cuda_graphs:
        return Runner(_cuda_graph(model, x, device), weight_bytes=weight_bytes)
    return Runner(lambda: model(x), weight_bytes=weight_bytes)


def _compiled(model: nn.Module, x: Tensor, device: torch.device, context: Context,
              weight_bytes: int) -> Runner:
    model, x = _torch_module(model, x, context)
    compiled = torch.compile(model, mode="reduce-overhead" if context.cuda_graphs else None)
    return Runner(lambda: compiled(x), weight_bytes=weight_bytes)


def _onnxruntime(model: nn.Module, x: Tensor, device: torch.device, context: Context,
                 weight_bytes: int) -> Runner:
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, x, Path(tmp) / "model.onnx")
        session = onnxruntime_session(path, device, context.threads)
    return session_runner(session, x, device, weight_bytes)


def _check_onnxruntime(context: Context, device: torch.device) -> None:
    if context.precision == "bf16":
        raise ValueError("--runtime onnxruntime: bf16 is not supported; use fp16 or fp32")
    if context.channels_last or context.cuda_graphs:
        raise ValueError("--runtime onnxruntime picks its own memory format and graphs; "
                         "drop --channels-last / --cuda-graphs")
    _onnxruntime_providers(device)


def _cuda_graph(model: nn.Module, x: Tensor, device: torch.device) -> Callable[[], object]:
    """The model captured as a CUDA graph on a static input (warmed up on a side stream first,
    as PyTorch's CUDA graphs notes require, which also lets cuDNN autotune before capture)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(x)
    return graph.replay


def export_onnx(model: nn.Module, example: Tensor, path: str | Path) -> Path:
    """Writes ``model`` as ONNX (input ``input``, output ``logits``, dynamic batch size), traced
    on the device ``model`` and ``example`` are on.

    Uses the TorchScript exporter while torch has it (about 4x faster than the ``torch.export``
    one on these models, which matters once per candidate), else the ``torch.export`` one.
    """
    path = Path(path)
    model = model.eval()
    kwargs = dict(input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (example,), str(path), dynamo=False, **kwargs)
        except TypeError:  # a torch without the TorchScript exporter
            torch.onnx.export(model, (example,), str(path), **kwargs)
    return path


def _onnxruntime_providers(device: torch.device) -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        raise ValueError("--runtime onnxruntime needs ONNX Runtime: pip install "
                         "'hwprune[onnx]' (or onnx onnxruntime)") from None
    wanted = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    if wanted not in onnxruntime.get_available_providers():
        raise ValueError(f"ONNX Runtime here has no {wanted} for --device {device}; install "
                         f"onnxruntime-gpu, or measure with --runtime eager")
    return [wanted]


def onnxruntime_session(path: str | Path, device: torch.device, threads: int):
    """An ONNX Runtime session on ``device``'s provider with ``threads`` intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    provider_options = [{"device_id": device.index or 0}] if device.type == "cuda" else None
    return onnxruntime.InferenceSession(str(path), options, providers=_onnxruntime_providers(device),
                                        provider_options=provider_options)


def session_runner(session, x: Tensor, device: torch.device, weight_bytes: int = 0) -> Runner:
    """A :class:`Runner` for an ONNX Runtime session (from :func:`onnxruntime_session`) on ``x``."""
    if device.type == "cuda":  # input bound on the GPU: no host copies inside the timed call
        binding = session.io_binding()
        x = x.contiguous()
        binding.bind_input("input", "cuda", device.index or 0, _numpy_dtype(x), tuple(x.shape),
                           x.data_ptr())
        binding.bind_output("logits", "cuda", device.index or 0)
        return Runner(lambda: session.run_with_iobinding(binding), host_timed=True,
                      weight_bytes=weight_bytes)
    feed = {"input": x.cpu().numpy()}
    return Runner(lambda: session.run(None, feed), host_timed=True, weight_bytes=weight_bytes)


def _numpy_dtype(x: Tensor):
    import numpy as np

    return {torch.float32: np.float32, torch.float16: np.float16}.get(x.dtype, np.float32)


def _no_version() -> None:
    return None


def _no_check(context: Context, device: torch.device) -> None:
    return None


@dataclass(frozen=True)
class Runtime:
    """One entry of :data:`RUNTIMES`: what ``--runtime NAME`` runs a model with.

    Attributes:
        help: one phrase for ``--help``.
        prepare: ``(model, x, device, context, weight_bytes) -> Runner``, the model already on
            the device in the context's precision.
        check: raises ValueError, naming the flag, for a context it cannot run.
        version: its own version, which a cached latency is keyed by (None where the device
            fingerprint's torch version already says it).
    """

    help: str
    prepare: Callable[..., Runner]
    check: Callable[[Context, torch.device], None] = _no_check
    version: Callable[[], str | None] = _no_version


def _onnxruntime_version() -> str:
    from importlib import metadata

    return metadata.version("onnxruntime")


# The runtimes latency is measured with. Adding one is an entry here and its prepare function.
RUNTIMES: dict[str, Runtime] = {
    "eager": Runtime("PyTorch eager", _eager),
    "compile": Runtime("torch.compile", _compiled),
    "onnxruntime": Runtime("ONNX Runtime (pip install 'hwprune[onnx]')", _onnxruntime,
                           check=_check_onnxruntime, version=_onnxruntime_version),
}
