"""Reading a run folder back, and picking one model from its front: ``load_run`` and ``pick``."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from profilers import Context, compare, export_onnx, onnxruntime_session, session_runner
from search._errors import UsageError
from search._registry import load_data
from search._runfolder import load_pruned, save_pruned
from search._study import pareto_mask
from spaces import PrunedSpec

log = logging.getLogger(__name__)

# ONNX Runtime's and PyTorch's float kernels differ in summation order; logits agreeing to this
# absolute tolerance (after a relative one) are the same model.
ONNX_ATOL, ONNX_RTOL = 1e-4, 1e-3


@dataclass(frozen=True)
class Run:
    """A run folder's tables: ``trials`` (every trial) and ``pareto`` (the front, fastest first).

    ``final`` is False while the run is still going (or was interrupted before its end): the front
    is then computed from ``trials.csv`` with search-time latencies and no test accuracy.
    """

    path: Path
    trials: pd.DataFrame
    pareto: pd.DataFrame
    reference: dict
    config: dict
    final: bool


def load_run(run_dir: str | Path) -> Run:
    """The trials and the Pareto front of a run folder, as pandas DataFrames.

    Example:
        >>> run = load_run("results/vgg16_bn-digits-cpu")  # doctest: +SKIP
        >>> run.pareto[["trial", "latency_ms", "accuracy"]]  # doctest: +SKIP
    """
    path = Path(run_dir)
    if not (path / "trials.csv").is_file() or not (path / "config.json").is_file():
        raise UsageError(f"{path} is not a run folder (no trials.csv/config.json there); runs are "
                         f"written to results/STUDY-NAME or --out")
    try:
        config = json.loads((path / "config.json").read_text())
        reference = json.loads((path / "reference.json").read_text()) \
            if (path / "reference.json").is_file() else {}
        trials = pd.read_csv(path / "trials.csv")
        final = (path / "pareto.csv").is_file()
        if final:
            pareto = pd.read_csv(path / "pareto.csv")
            final = not pareto["test_accuracy"].isna().all() if len(pareto) else True
        else:
            pareto = _front_so_far(path, trials)
    except (ValueError, KeyError, pd.errors.ParserError) as exc:
        raise UsageError(f"{path}: a run file is damaged ({str(exc).splitlines()[0]}); run the "
                         f"search again with the same --study-name to rewrite it") from None
    return Run(path, trials, pareto, reference, config, final)


def _front_so_far(path: Path, trials: pd.DataFrame) -> pd.DataFrame:
    """A running search's front: feasible trials with saved models, non-dominated."""
    scored = trials[trials["feasible"].astype(bool)]
    if "repeat_of" in scored:
        scored = scored[scored["repeat_of"].isna()]
    scored = scored[[(path / "models" / f"trial-{n}.json").is_file() for n in scored["trial"]]]
    front = scored[pareto_mask(scored["latency_ms"], scored["accuracy"])]
    return front.assign(test_accuracy=math.nan,
                        model_path=[f"models/trial-{n}.json" for n in front["trial"]]
                        ).sort_values("latency_ms").reset_index(drop=True)


def _as_fraction(accuracy: float) -> float:
    """--min-accuracy as a fraction: 0.975 and 97.5 both mean 97.5%."""
    return accuracy / 100 if accuracy > 1 else accuracy


def choose(run: Run, *, max_latency_ms: float | None = None,
           min_accuracy: float | None = None) -> pd.Series:
    """The best front point under one constraint: the most accurate (validation) within
    ``max_latency_ms``, or the fastest with at least ``min_accuracy``."""
    if (max_latency_ms is None) == (min_accuracy is None):
        raise UsageError("give exactly one of --max-latency-ms X or --min-accuracy A")
    front = run.pareto
    if not len(front):
        raise UsageError(f"{run.path} has no feasible point yet (nothing within its budget was "
                         f"fine-tuned); raise the budget or add trials")
    if max_latency_ms is not None:
        fits = front[front["latency_ms"] <= max_latency_ms]
        if not len(fits):
            fastest = front.loc[front["latency_ms"].idxmin()]
            raise UsageError(f"no model on the front runs within {max_latency_ms:g} ms; the "
                             f"fastest is trial {fastest.trial} at {fastest.latency_ms:.3f} ms "
                             f"({100 * fastest.accuracy:.2f}% val)")
        return fits.loc[fits["accuracy"].idxmax()]
    wanted = _as_fraction(min_accuracy)
    fits = front[front["accuracy"] >= wanted]
    if not len(fits):
        best = front.loc[front["accuracy"].idxmax()]
        raise UsageError(f"no model on the front reaches {100 * wanted:.2f}% validation accuracy; "
                         f"the most accurate is trial {best.trial} at {100 * best.accuracy:.2f}% "
                         f"({best.latency_ms:.3f} ms)")
    return fits.loc[fits["latency_ms"].idxmin()]


def pick(run_dir: str | Path, *, max_latency_ms: float | None = None,
         min_accuracy: float | None = None, out: str | Path | None = None,
         onnx: bool = False) -> tuple[pd.Series, dict]:
    """Chooses a front model (:func:`choose`); with ``out``, writes ``model.json`` + ``model.pt``
    there, and with ``onnx`` also ``model.onnx``, checked against PyTorch with ONNX Runtime on the
    run's test split and measured against eager. Returns the row and what was written/measured."""
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
    data = load_data(config["data"], image_size=config["image_size"], seed=config["seed"])
    session = onnxruntime_session(path, torch.device("cpu"), threads=1)
    with torch.inference_mode():
        expected = model(data.test_x)
    got = torch.from_numpy(session.run(None, {"input": data.test_x.numpy()})[0])
    max_diff = float((got - expected).abs().max())
    if not torch.allclose(got, expected, atol=ONNX_ATOL, rtol=ONNX_RTOL):
        raise RuntimeError(f"ONNX export of the picked model disagrees with PyTorch by up to "
                           f"{max_diff:.2e} on the test split")
    agree = float((got.argmax(1) == expected.argmax(1)).float().mean())
    # Latency of the file as deployed (ONNX Runtime, CPU) next to eager, interleaved, batch 1.
    x = data.test_x[:1].contiguous()
    comparison = compare([model, session_runner(session, x, torch.device("cpu"))], x,
                         device="cpu", context=Context())
    eager_ms = comparison.stats[0].median_ms
    return {"onnx": str(path), "onnx_max_abs_diff": max_diff, "onnx_test_inputs": len(data.test_x),
            "onnx_tolerance": f"atol {ONNX_ATOL:g}, rtol {ONNX_RTOL:g}",
            "onnx_same_predictions": agree, "eager_cpu_ms": eager_ms,
            "onnxruntime_cpu_ms": comparison.ratios[1] * eager_ms}
