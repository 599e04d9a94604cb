"""``report.md``, ``pareto.png`` and ``report.html``: the front for people, in a terminal, as a
picture and as an interactive page. All three are built from the run folder's files (``load_run``),
so ``python -m search report RUN_DIR`` rebuilds them at any time, during a run or after it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from search._runfolder import atomic_write_bytes
from search._runs import Run


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


def measured_in(run: Run) -> str:
    return run.config.get("measured_in", "not recorded (a run folder from an older version)")


def write_reports(run: Run) -> list[Path]:
    """Writes ``report.md``, ``pareto.png`` and ``report.html`` into the run folder."""
    from search._report_html import write_html

    if not run.reference.get("budget_ms"):
        from search._errors import UsageError

        raise UsageError(f"{run.path}: the search has not measured its dense reference yet "
                         f"(no budget in reference.json); nothing to report")
    paths = [run.path / "report.md", run.path / "pareto.png", run.path / "report.html"]
    write_report(paths[0], run)
    write_plot(paths[1], run)
    write_html(paths[2], run)
    return paths


def _promoted(trials: pd.DataFrame, config: dict) -> str:
    """How many trials the second fidelity fine-tuned longer (empty without --promote-steps)."""
    if not config.get("promote_steps") or "promoted" not in trials:
        return ""
    scored = trials[trials["repeat_of"].isna() & trials["promoted"].notna()]
    return (f"; {int(scored['promoted'].eq(True).sum())} of {len(scored)} fine-tuned candidates "
            f"promoted to {config['promote_steps']} more steps")


def write_report(path: Path, run: Run) -> None:
    """Writes ``report.md``."""
    config, env, reference = run.config, run.env, run.reference
    trials, pareto, notes = run.trials, run.pareto, run_notes(run)
    counts = trials["state"].value_counts().to_dict()
    feasible = int(trials["feasible"].sum())
    over = int(((trials["state"] == "COMPLETE") & trials["accuracy"].isna()).sum())
    lines = [
        f"# Pruning search: {config['model']} on {config['data']}, {config['device']}",
        "",
        f"- device: {config['device']} ({device_name(env)}), torch {env.get('torch', '?')}",
        f"- measured in: {measured_in(run)}",
        f"- space: {config['space']}, widths multiples of "
        f"{config.get('round_to_used', config['round_to'])}"
        + (" (--round-to auto: from this device's measured width steps)"
           if config["round_to"] == "auto" else "")
        + f"; channels kept by {config.get('importance', 'l2')} importance",
        f"- budget: {reference['budget_ms']:.3f} ms"
        + (f" ({config['budget_ratio']:g} x dense)" if config.get("budget_ratio") else ""),
        f"- dense reference: {reference['latency_ms']:.3f} ms (IQR {reference['latency_iqr_ms']:.3f}),"
        f" {reference['macs'] / 1e6:.2f} MMACs, {reference['params']:,} params, val "
        f"{_pct(reference.get('accuracy'))}, test {_pct(reference.get('test_accuracy'))}",
        "- smallest candidate the space allows: " + (
            f"{reference['smallest_latency_ms']:.3f} ms" if reference["smallest_latency_ms"]
            is not None else "failed to run (see the log)"),
        _drift_line(reference.get("drift")),
        f"- trials: {len(trials)} ({', '.join(f'{n} {s}' for s, n in counts.items())}); "
        f"{feasible} feasible, {over} over budget; "
        f"{int((trials['latency_cached'] == True).sum())} latencies reused from the cache"  # noqa: E712
        + _promoted(trials, config),
        "",
        "## Pareto front (re-measured)" if run.final else "## Pareto front (search-time latencies)",
        "",
        front_table(pareto).to_markdown(index=False) if len(pareto) else "No feasible trial.",
        "",
    ]
    failed = trials[trials["state"] == "FAIL"]
    if len(failed):
        lines += ["## Failed trials", ""]
        lines += [f"- trial {r.trial}: {r.fail_reason}" for r in failed.itertuples()]
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["Latencies are medians, measured interleaved with the dense model and reported as "
              "ratio x the dense model's median; `iqr_ms` is the spread of single calls.", ""]
    text = "\n".join(lines)
    atomic_write_bytes(path, lambda p: p.write_text(text))


def write_plot(path: Path, run: Run) -> None:
    """Writes ``pareto.png``: accuracy against latency, with the dense model and the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials, pareto, reference = run.trials, run.pareto, run.reference
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    # Front trials are drawn once, at their re-measured latency, not again at the search-time one.
    scored = trials[trials["accuracy"].notna() & (trials["state"] == "COMPLETE")
                    & ~trials["trial"].isin(pareto["trial"])]
    ax.scatter(scored["latency_ms"], 100 * scored["accuracy"], s=18, c="0.7",
               label="other candidates")
    if len(pareto):
        ordered = pareto.sort_values("latency_ms")
        ax.plot(ordered["latency_ms"], 100 * ordered["accuracy"], "o-", c="tab:blue",
                label="Pareto front")
        for row in ordered.itertuples():
            ax.annotate(str(row.trial), (row.latency_ms, 100 * row.accuracy), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    over = trials[(trials["state"] == "COMPLETE") & trials["accuracy"].isna()]
    if len(over):
        ax.plot(over["latency_ms"], [ax.get_ylim()[0]] * len(over), "x", c="tab:red",
                label="over budget (not fine-tuned)")
    if reference.get("accuracy") is not None:
        ax.plot([reference["latency_ms"]], [100 * reference["accuracy"]], "*", ms=12, c="black",
                label="dense")
    ax.axvline(reference["budget_ms"], ls="--", c="tab:red", lw=1, label="budget")
    ax.set_xlabel("latency (ms, measured)")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    atomic_write_bytes(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
