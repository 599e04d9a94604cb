"""What every report says the same way: the front as a table for reading, the run's notes, the
device and the context its latencies were measured in."""

from __future__ import annotations

import math

import pandas as pd

from search.runfolder import Run, macs_latency


def _pct(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        f"{100 * float(value):.2f}%"


def front_table(pareto: pd.DataFrame) -> pd.DataFrame:
    """The front formatted for reading: ms, millions of MACs, percentages."""
    return pd.DataFrame({
        "trial": pareto["trial"],
        "latency_ms": pareto["latency_ms"].map(lambda v: f"{v:.3f}"),
        "iqr_ms": pareto["latency_iqr_ms"].map(lambda v: f"{v:.3f}"),
        "MMACs": pareto["macs"].map(lambda v: f"{v / 1e6:.2f}"),
        "params": pareto["params"].map(lambda v: f"{v:,}"),
        "val_acc": pareto["accuracy"].map(_pct),
        "test_acc": pareto["test_accuracy"].map(_pct),
        "model": pareto["model_path"],
    })


def _drift_line(drift: dict | None) -> str:
    if not drift or not drift.get("measurements"):
        return "- dense reference during the run: not measured again"
    return (f"- dense reference during the run: x{drift['median']:.3f} of its first measurement "
            f"(median; range x{drift['min']:.3f} to x{drift['max']:.3f} over "
            f"{drift['measurements']} measurements)")


# How the note of a run that stopped before its end begins (Ctrl-C, SIGTERM, too many failures).
STOPPED_NOTE = "stopped before the end:"


def run_notes(run: Run) -> list[str]:
    """The notes the search recorded, and one saying so when the run is not finished."""
    notes = list(run.notes)
    if not run.final and not any(n.startswith(STOPPED_NOTE) for n in notes):
        notes.insert(0, "the search is still going (or stopped before its end): latencies are "
                        "search-time ones, not re-measured, and there is no test accuracy yet")
    return notes


def device_name(env: dict) -> str:
    return env.get("gpu_name") or env.get("cpu_model") or "not recorded"


def fine_tune_line(config: dict) -> str:
    """The candidates' fine-tune as the config asked for it: '10 + 40 fine-tune steps (the 40
    for candidates near the front)' with two fidelities, or '20 fine-tune steps'."""
    quick, more = config.get("finetune_steps"), config.get("promote_steps")
    if more:
        return f"{quick} + {more} fine-tune steps (the {more} for candidates near the front)"
    return f"{quick} fine-tune steps"


def measured_in(run: Run) -> str:
    return run.config.get("measured_in", "not recorded (a run folder from an older version)")


def macs_line(run: Run) -> str:
    """How well MACs rank the candidates' measured latency in this run (Kendall's tau), and what
    a MAC-steered choice at the run's budget would have measured."""
    reference = run.reference
    dense_ms = reference["latency_ms"]
    budget = reference["budget_ms"] / dense_ms
    result = macs_latency(run.trials, reference["macs"], dense_ms, (budget,))
    if result.candidates < 2:
        return "fewer than 2 candidates measured"
    text = (f"Kendall tau {result.tau:.2f} over {result.candidates} measured candidates "
            f"(1: MACs order them as the device does)")
    pick = result.picks[0]
    if pick.trial is None:
        return text + f"; no candidate was within {budget:.0%} of the dense MACs"
    return (text + f"; a MAC-steered choice (the largest candidate within {budget:.0%} of the "
            f"dense MACs: trial {pick.trial}, {pick.macs_ratio:.0%}) measured "
            f"{pick.latency_ratio:.2f} x the dense latency, {pick.over_budget:+.0%} against the "
            f"{budget:.2f} x budget")
