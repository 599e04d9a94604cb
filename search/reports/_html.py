"""``report.html``: the front as a page people explore, one file that opens offline.

Plotly draws the charts (the library Optuna's own visualisations use): the front with hover and
zoom, switchable between measured latency and MACs; one chart per Pareto point of its per-layer
widths next to the dense ones. plotly.js is inlined once, so the page needs no network, no
external script and no font; it is about 5 MB for that reason.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from search.reports._text import (
    device_name,
    fine_tune_line,
    front_table,
    macs_line,
    measured_in,
    run_notes,
)
from search.runfolder import Run, atomic_write_bytes

_BLUE, _GREY, _RED, _BLACK = "#1f77b4", "#b0b0b0", "#d62728", "#222222"
_CONFIG = {"displaylogo": False, "responsive": True}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto;
       max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f4f4f4; }
dl.context { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem;
             font-size: 0.9rem; }
dl.context dt { font-weight: 600; } dl.context dd { margin: 0; }
.note { color: #555; font-size: 0.85rem; }
.widths { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 0.5rem; }
"""


def _ms(value: object) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{float(value):.3f} ms"


def _pct(value: object) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{100 * float(value):.2f}%"


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _hover(frame: pd.DataFrame, label: str) -> dict:
    """Per-point hover text: trial, latency with its spread, MACs, accuracies."""
    test = frame["test_accuracy"] if "test_accuracy" in frame else pd.Series(math.nan, frame.index)
    text = [f"<b>{label}: trial {r.trial}</b><br>{r.latency_ms:.3f} ms (IQR {r.latency_iqr_ms:.3f})"
            f"<br>{r.macs / 1e6:.2f} MMACs, {r.params:,} params<br>val {_pct(r.accuracy)}, "
            f"test {_pct(t)}" for r, t in zip(frame.itertuples(), test, strict=True)]
    return {"customdata": frame["trial"].tolist(), "hovertext": text, "hoverinfo": "text"}


def front_figure(run: Run) -> go.Figure:
    """Accuracy against measured latency (or MACs): front, dominated, over budget, dense, budget."""
    trials, pareto, reference = run.trials, run.pareto, run.reference
    complete = trials[trials["state"] == "COMPLETE"]
    dominated = complete[complete["accuracy"].notna() & ~complete["trial"].isin(pareto["trial"])]
    over = complete[complete["accuracy"].isna()]
    accuracies = [*complete["accuracy"].dropna(), *pareto["accuracy"]]
    if reference.get("accuracy") is not None:
        accuracies.append(reference["accuracy"])
    floor = 100 * min(accuracies, default=0.0) - 2  # over-budget trials have no accuracy: a strip

    layers = []  # (trace kwargs, latency xs, MACs xs)
    if len(dominated):
        layers.append((dict(name="dominated", mode="markers", y=100 * dominated["accuracy"],
                            marker=dict(color=_GREY, size=7), **_hover(dominated, "dominated")),
                       dominated["latency_ms"], dominated["macs"] / 1e6))
    if len(over):
        layers.append((dict(name="over budget (not fine-tuned)", mode="markers",
                            y=[floor] * len(over), marker=dict(color=_RED, symbol="x", size=7),
                            **_hover(over, "over budget")),
                       over["latency_ms"], over["macs"] / 1e6))
    if len(pareto):
        ordered = pareto.sort_values("latency_ms")
        layers.append((dict(name="Pareto front", mode="lines+markers+text",
                            y=100 * ordered["accuracy"], text=ordered["trial"].astype(str),
                            textposition="top left", marker=dict(color=_BLUE, size=10),
                            line=dict(color=_BLUE), **_hover(ordered, "Pareto")),
                       ordered["latency_ms"], ordered["macs"] / 1e6))
    if reference.get("accuracy") is not None:
        layers.append((dict(name="dense model", mode="markers", y=[100 * reference["accuracy"]],
                            marker=dict(color=_BLACK, symbol="star", size=15),
                            hovertext=[f"<b>dense</b><br>{reference['latency_ms']:.3f} ms<br>"
                                       f"{reference['macs'] / 1e6:.2f} MMACs<br>val "
                                       f"{_pct(reference['accuracy'])}"], hoverinfo="text"),
                       [reference["latency_ms"]], [reference["macs"] / 1e6]))
    fig = go.Figure([go.Scatter(x=list(lat), **kw) for kw, lat, _ in layers])
    budget = dict(type="line", xref="x", yref="paper", x0=reference["budget_ms"],
                  x1=reference["budget_ms"], y0=0, y1=1, line=dict(color=_RED, dash="dash"))
    views = [("measured latency", "latency (ms, measured)", [list(lat) for _, lat, _ in layers],
              True),
             ("MACs", "MACs (millions)", [list(macs) for _, _, macs in layers], False)]
    buttons = [dict(label=label, method="update",
                    args=[{"x": xs}, {"xaxis.title.text": title, "shapes[0].visible": visible,
                                      "annotations[0].visible": visible}])
               for label, title, xs, visible in views]
    fig.update_layout(
        height=480, margin=dict(l=60, r=20, t=60, b=50), hovermode="closest",
        xaxis_title="latency (ms, measured)", yaxis_title="validation accuracy (%)",
        legend=dict(orientation="h", y=-0.15), shapes=[budget],
        annotations=[dict(x=reference["budget_ms"], y=1, xref="x", yref="paper",
                          text=f"budget {reference['budget_ms']:.3f} ms", showarrow=False,
                          xanchor="left", font=dict(color=_RED))],
        updatemenus=[dict(type="buttons", direction="right", x=0, y=1.13, xanchor="left",
                          buttons=buttons, showactive=True)])
    return fig


def widths_figure(row: pd.Series, dense: dict[str, int]) -> go.Figure:
    """One Pareto point's kept channels per group, over the dense widths."""
    kept = json.loads(row["allocation"])
    names = list(dense) if dense else sorted(kept, key=_natural)
    full = [dense.get(n) for n in names] if dense else None
    text = [f"{n}: {kept.get(n)} of {d} ({100 * kept.get(n, 0) / d:.0f}%)" if d else
            f"{n}: {kept.get(n)}" for n, d in zip(names, full or [None] * len(names), strict=True)]
    bars = []
    if full:
        bars.append(go.Bar(name="dense", x=names, y=full, marker_color="#dcdcdc",
                           hovertext=text, hoverinfo="text"))
    bars.append(go.Bar(name="kept", x=names, y=[kept.get(n) for n in names], marker_color=_BLUE,
                       hovertext=text, hoverinfo="text"))
    fig = go.Figure(bars)
    fig.update_layout(
        barmode="overlay", height=280, margin=dict(l=50, r=10, t=40, b=90),
        title=dict(text=f"trial {row['trial']}: {row['latency_ms']:.3f} ms, "
                        f"{100 * row['accuracy']:.2f}% val, {row['macs'] / 1e6:.2f} MMACs",
                   font=dict(size=13)),
        yaxis_title="channels", showlegend=False, xaxis_tickangle=-60)
    return fig


def _context(run: Run) -> str:
    """The run's context: where and how it was measured, with what, and how noisy that was."""
    config, env, reference = run.config, run.env, run.reference
    packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())
    drift = reference.get("drift") or {}
    noise = f"dense IQR {_ms(reference.get('latency_iqr_ms'))} of {_ms(reference['latency_ms'])}"
    if len(run.pareto):
        rel = (run.pareto["latency_iqr_ms"] / run.pareto["latency_ms"]).median()
        noise += f"; front points' IQR {100 * rel:.1f}% of their median (median over points)"
    drift_text = ("not measured again" if not drift.get("measurements") else
                  f"median x{drift['median']:.3f} of its first measurement, range "
                  f"x{drift['min']:.3f} to x{drift['max']:.3f} over {drift['measurements']} "
                  f"measurements")
    counts = run.trials["state"].value_counts().to_dict()
    rows = [
        ("model / data", f"{config['model']} on {config['data']} "
                         f"({config.get('image_size') or 'native'} px)"),
        ("device", f"{config['device']}: {device_name(env)}, {env.get('cpu_count', '?')} CPUs"),
        ("measured in", measured_in(run)),
        ("software", f"python {env.get('python', '?')}, torch {env.get('torch', '?')}"
                     + (f", CUDA {env['cuda']}" if env.get("cuda") else "")
                     + (f", {packages}" if packages else "")),
        ("platform", env.get("platform", "not recorded")),
        ("space", f"{config['space']}, widths multiples of "
                  f"{config.get('round_to_used', config['round_to'])}, sampler "
                  f"{config.get('sampler')}, {fine_tune_line(config)}"),
        ("budget", _ms(reference["budget_ms"])
         + (f" ({config['budget_ratio']:g} x dense)" if config.get("budget_ratio") else "")),
        ("dense reference", f"{_ms(reference['latency_ms'])}, {reference['macs'] / 1e6:.2f} MMACs,"
                            f" {reference['params']:,} params, val "
                            f"{_pct(reference.get('accuracy'))}, test "
                            f"{_pct(reference.get('test_accuracy'))}"),
        ("measurement noise", noise),
        ("dense drift during the run", drift_text),
        ("trials", f"{len(run.trials)} ("
                   + ", ".join(f"{n} {s.lower()}" for s, n in counts.items()) + "), "
                   f"{int((run.trials['latency_cached'] == True).sum())} "  # noqa: E712
                   "latencies from the cache"),
        ("MACs against latency", macs_line(run)),
        ("state", "finished; front re-measured" if run.final else
                  "still going or stopped early; search-time latencies"),
    ]
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
    return f'<dl class="context">{items}</dl>'


def _figure_html(fig: go.Figure, div_id: str, first: bool, post_script: str | None = None) -> str:
    return pio.to_html(fig, include_plotlyjs=first, full_html=False, div_id=div_id,
                       config=_CONFIG, post_script=post_script)


# Clicking a front point scrolls to its widths chart.
_CLICK_TO_WIDTHS = """
document.getElementById('{plot_id}').on('plotly_click', function (event) {
  var target = document.getElementById('widths-' + event.points[0].customdata);
  if (target) { target.scrollIntoView({behavior: 'smooth'}); }
});
"""


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def write_html(path: Path, run: Run) -> None:
    """Writes ``report.html`` for one run (see the module docstring)."""
    config = run.config
    title = f"Pruning search: {config['model']} on {config['data']}, {config['device']}"
    body = [f"<h1>{html.escape(title)}</h1>", "<h2>Context</h2>", _context(run),
            "<h2>Accuracy against measured latency</h2>",
            '<p class="note">Hover a point for its figures; the buttons switch the x axis to '
            'MACs; click a Pareto point for its widths below.</p>',
            _figure_html(front_figure(run), "front", first=True, post_script=_CLICK_TO_WIDTHS),
            "<h2>Pareto front" + (" (re-measured)" if run.final else " (search-time latencies)")
            + "</h2>"]
    pareto = run.pareto
    body.append(front_table(pareto).to_html(index=False, border=0) if len(pareto)
                else "<p>No feasible trial yet.</p>")
    if len(pareto):
        dense = run.reference.get("dense_widths") or {}
        body.append("<h2>Per-layer widths of each Pareto point</h2>")
        body.append('<p class="note">Blue: channels kept; grey: the dense model\'s.</p>'
                    '<div class="widths">')
        for _, row in pareto.iterrows():
            body.append(f'<div id="widths-{row["trial"]}">'
                        + _figure_html(widths_figure(row, dense), f"widths-plot-{row['trial']}",
                                       first=False) + "</div>")
        body.append("</div>")
    failed = run.trials[run.trials["state"] == "FAIL"]
    if len(failed):
        body.append("<h2>Failed trials</h2><ul>" + "".join(
            f"<li>trial {r.trial}: {html.escape(str(r.fail_reason))}</li>"
            for r in failed.itertuples()) + "</ul>")
    notes = run_notes(run)
    if notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                    + "</ul>")
    body.append('<p class="note">Latencies are medians, measured interleaved with the dense model '
                "and reported as ratio x the dense model's median; IQR is the spread of single "
                "calls.</p>")
    page = _page(title, body)
    atomic_write_bytes(path, lambda p: p.write_text(page, encoding="utf-8"))


def _label(run: Run) -> str:
    return f"{run.path.name} ({run.config['device']}, {measured_in(run)})"


def comparison_table(runs: list[Run]) -> pd.DataFrame:
    """One row per run: where it was measured and what its front offers."""
    rows = []
    for run in runs:
        front, ref = run.pareto, run.reference
        rows.append({
            "run": str(run.path), "model": run.config["model"], "device": run.config["device"],
            "measured_in": measured_in(run), "dense_ms": f"{ref['latency_ms']:.3f}",
            "budget_ms": f"{ref['budget_ms']:.3f}", "trials": len(run.trials),
            "front": len(front),
            "fastest_ms": f"{front['latency_ms'].min():.3f}" if len(front) else "",
            "best_val": _pct(front["accuracy"].max()) if len(front) else "",
            "final": run.final})
    return pd.DataFrame(rows)


def write_comparison_html(path: Path, runs: list[Run]) -> None:
    """Writes one page comparing the fronts of several runs (latency, latency/dense, MACs)."""
    traces, views = [], {"measured latency": [], "latency / dense": [], "MACs": []}
    for run in runs:
        front = run.pareto.sort_values("latency_ms")
        ref = run.reference
        label = _label(run)
        traces.append(go.Scatter(name=label, mode="lines+markers", x=list(front["latency_ms"]),
                                 y=list(100 * front["accuracy"]), **_hover(front, label)))
        views["measured latency"].append(list(front["latency_ms"]))
        views["latency / dense"].append(list(front["latency_ms"] / ref["latency_ms"]))
        views["MACs"].append(list(front["macs"] / 1e6))
    titles = {"measured latency": "latency (ms, measured)",
              "latency / dense": "latency as a fraction of the run's dense model",
              "MACs": "MACs (millions)"}
    fig = go.Figure(traces)
    fig.update_layout(
        height=520, margin=dict(l=60, r=20, t=60, b=50), hovermode="closest",
        xaxis_title=titles["measured latency"], yaxis_title="validation accuracy (%)",
        legend=dict(orientation="h", y=-0.15),
        updatemenus=[dict(type="buttons", direction="right", x=0, y=1.13, xanchor="left",
                          buttons=[dict(label=k, method="update",
                                        args=[{"x": xs}, {"xaxis.title.text": titles[k]}])
                                   for k, xs in views.items()])])
    title = f"Pruning search: {len(runs)} runs compared"
    body = [f"<h1>{html.escape(title)}</h1>",
            comparison_table(runs).to_html(index=False, border=0),
            _figure_html(fig, "front", first=True),
            '<p class="note">Latencies from different devices or contexts are not comparable in '
            'milliseconds; "latency / dense" compares how much each run saved on its own '
            "device.</p>"]
    page = _page(title, body)
    atomic_write_bytes(path, lambda p: p.write_text(page, encoding="utf-8"))
