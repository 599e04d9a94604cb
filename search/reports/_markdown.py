"""``report.md`` and ``pareto.png``: the front for people, in a terminal and as a picture."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from search.reports._text import (
    _drift_line,
    _pct,
    device_name,
    fine_tune_line,
    front_table,
    macs_line,
    measured_in,
    run_notes,
)
from search.runfolder import Run, atomic_write_bytes


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
        + f"; channels kept by {config.get('importance', 'l2')} importance; "
        + fine_tune_line(config),
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
        f"- MACs against measured latency: {macs_line(run)}",
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
    # A Figure of its own, not pyplot: the caller's backend and figures stay as they were.
    from matplotlib.figure import Figure

    trials, pareto, reference = run.trials, run.pareto, run.reference
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.subplots()
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
