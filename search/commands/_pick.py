"""Picking one model from a run's front: ``choose`` and ``pick`` (and its ONNX export)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch

from profilers import Context, compare, export_onnx, onnxruntime_session, session_runner
from search._errors import UsageError
from search.runfolder import Run, choose, load_pruned, load_run, save_pruned
from search.sources import Streaming, load_data
from spaces import PrunedSpec

log = logging.getLogger(__name__)

# ONNX Runtime's and PyTorch's float kernels differ in summation order; logits agreeing to this
# absolute tolerance (after a relative one) are the same model.
ONNX_ATOL, ONNX_RTOL = 1e-4, 1e-3


def pick(run_dir: str | Path, *, max_latency_ms: float | None = None,
         min_accuracy: float | None = None, out: str | Path | None = None,
         onnx: bool = False) -> tuple[pd.Series, dict]:
    """Chooses a front model (:func:`choose`); with ``out``, writes ``model.json`` + ``model.pt``
    there, and with ``onnx`` also ``model.onnx``, checked against PyTorch with ONNX Runtime on the
    run's test split and measured against eager. Returns the row and what was written/measured.

    Example:
        >>> import search
        >>> row, done = search.pick("results/vgg16_bn-digits-cpu", max_latency_ms=2.0,
        ...                         out="deploy")  # doctest: +SKIP
        >>> model = search.load_pruned("deploy/model.json")  # doctest: +SKIP
    """
    run = load_run(run_dir)
    row = choose(run, max_latency_ms=max_latency_ms, min_accuracy=min_accuracy)
    done: dict[str, object] = {}
    if out is None:
        if onnx:
            raise UsageError("--onnx writes a file: give --out DIR too")
        return row, done
    json_path = run.path / row.model_path
    if not json_path.is_file():
        raise UsageError(f"trial {row.trial}'s saved model {json_path} is missing; pick another "
                         f"point or run the search again")
    model = load_pruned(json_path)
    spec = PrunedSpec.read(json_path)
    out = Path(out)
    save_pruned(model, PrunedSpec(spec.model, spec.num_classes, spec.input_shape, spec.allocation,
                                  weights="model.pt"), out / "model.json")
    done["model"] = str(out / "model.json")
    if onnx:
        done.update(_export_and_check(model, spec, run, out / "model.onnx"))
    return row, done


def _export_and_check(model: torch.nn.Module, spec: PrunedSpec, run: Run, path: Path) -> dict:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UsageError("--onnx needs ONNX Runtime to check the file: pip install "
                         "'hwprune[onnx]'") from None
    example = torch.zeros(spec.input_shape)
    export_onnx(model, example, path)
    config = run.config
    streaming = Streaming(memory_gb=config.get("data_memory_gb", 2.0),
                          workers=config.get("data_workers"))
    data = load_data(config["data"], image_size=config["image_size"], seed=config["seed"],
                     streaming=streaming)
    session = onnxruntime_session(path, torch.device("cpu"), threads=1)
    max_diff, agreeing = 0.0, 0
    for x, _ in data.test.batches(256):
        with torch.inference_mode():
            expected = model(x)
        got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
        max_diff = max(max_diff, float((got - expected).abs().max()))
        if not torch.allclose(got, expected, atol=ONNX_ATOL, rtol=ONNX_RTOL):
            raise RuntimeError(f"ONNX export of the picked model disagrees with PyTorch by up to "
                               f"{max_diff:.2e} on the test split")
        agreeing += int((got.argmax(1) == expected.argmax(1)).sum())
    agree = agreeing / len(data.test)
    # Latency of the file as deployed (ONNX Runtime, CPU) next to eager, interleaved, batch 1.
    x = data.test.inputs(1).contiguous()
    comparison = compare([model, session_runner(session, x, torch.device("cpu"))], x,
                         device="cpu", context=Context())
    eager_ms = comparison.stats[0].median_ms
    return {"onnx": str(path), "onnx_max_abs_diff": max_diff, "onnx_test_inputs": len(data.test),
            "onnx_tolerance": f"atol {ONNX_ATOL:g}, rtol {ONNX_RTOL:g}",
            "onnx_same_predictions": agree, "eager_cpu_ms": eager_ms,
            "onnxruntime_cpu_ms": comparison.ratios[1] * eager_ms}
