"""report.md, pareto.png and report.html: rebuilt from the run folder, self-contained, rendered in
a real headless browser (Debian's chromium), and comparing several runs."""

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest

import search
from tests.search.runs import assert_one_line_error, main_in_process


@pytest.fixture
def run_dir(run_copy, tmp_path):
    """A copy of the finished e2e run that a test may write into."""
    path = tmp_path / "e2e"
    shutil.copytree(run_copy, path)
    return path


class _External(HTMLParser):
    """Collects everything in a page that would load from elsewhere."""

    def __init__(self):
        super().__init__()
        self.loads = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.loads.append(attrs["src"])
        if tag in ("link", "img", "iframe") or (tag == "object" and attrs.get("data")):
            self.loads.append(tag)


def test_the_run_writes_a_self_contained_page(run_copy):
    page = (run_copy / "report.html").read_text()
    parser = _External()
    parser.feed(page)
    assert parser.loads == []
    assert "@import" not in page and "@font-face" not in page
    assert "cdn.plot.ly" not in re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    # plotly.js is inlined, once.
    assert page.count("plotly.js v") == 1 and len(page) > 1_000_000
    pareto = pd.read_csv(run_copy / "pareto.csv")
    for trial in pareto["trial"]:
        assert f'id="widths-{trial}"' in page
    config = json.loads((run_copy / "config.json").read_text())
    assert config["measured_in"] in page and "torch-pruning" in page


def _chromium_dom(page):
    """The page's DOM after its scripts ran, from a real headless browser."""
    browser = shutil.which("chromium")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (.ci/run does)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    result = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                             "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# Clicks the front's second button ("MACs") the way a user does, once plotly has drawn it.
_CLICK_MACS = """<script>setTimeout(function () {
  var buttons = document.querySelectorAll('#front .updatemenu-button');
  buttons[1].dispatchEvent(new MouseEvent('click', {bubbles: true}));
}, 500);</script></body>"""


@pytest.mark.slow
def test_the_macs_button_switches_the_x_axis(run_dir, tmp_path):
    page = (run_dir / "report.html").read_text()
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.replace("</body>", _CLICK_MACS))
    before, after = _front_svg(_chromium_dom(run_dir / "report.html")), \
        _front_svg(_chromium_dom(clicked))
    title = r'class="xtitle"[^>]*>([^<]*)<'
    assert re.findall(title, before) == ["latency (ms, measured)"]
    assert re.findall(title, after) == ["MACs (millions)"]
    line = r">budget \d+\.\d{3} ms<"  # the budget line's label ("over budget" is a legend entry)
    assert re.search(line, before) and not re.search(line, after)  # the budget is a latency


def _front_svg(dom):
    """The front chart as drawn, without the figure's JSON."""
    start = dom.index('id="front"')
    chart = dom[start:dom.index('<div id="widths-', start)]
    return re.sub(r"<script[^>]*>.*?</script>", "", chart, flags=re.S)


def _points_per_trace(dom, div_id):
    """Markers (or bars) plotly drew in each trace of one chart, in trace order."""
    start = dom.index(f'id="{div_id}"')
    end = dom.find('<div id="widths-', start + 1)
    chart = dom[start:end if end > 0 else len(dom)]
    traces = re.split(r'<g class="trace (?:scatter|bars)', chart)[1:]
    # A marker is <path class="point">, a bar <g class="point"><path d=...>.
    return [len(re.findall(r'<(?:path|g) class="point[" ]', trace)) for trace in traces]


def test_the_page_renders_its_points_in_a_headless_browser(run_dir):
    dom = _chromium_dom(run_dir / "report.html")
    run = search.load_run(run_dir)
    complete = run.trials[run.trials["state"] == "COMPLETE"]
    scored = complete["accuracy"].notna()
    dominated = int((scored & ~complete["trial"].isin(run.pareto["trial"])).sum())
    over = int((~scored).sum())
    expected = [n for n in (dominated, over) if n] + [len(run.pareto), 1]  # ... front, dense
    assert _points_per_trace(dom, "front") == expected
    groups = len(run.reference["dense_widths"])
    for trial in run.pareto["trial"]:
        # Two bars per group: the dense width and the kept one.
        assert _points_per_trace(dom, f"widths-plot-{trial}") == [groups, groups]


def test_report_rebuilds_the_same_files_from_the_folder(run_dir, workdir):
    written = (run_dir / "report.md").read_text()
    for name in ("report.md", "report.html", "pareto.png"):
        (run_dir / name).unlink()
    result = main_in_process(workdir, "report", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert (run_dir / "report.md").read_text() == written
    assert (run_dir / "pareto.png").stat().st_size > 10_000
    assert (run_dir / "report.html").stat().st_size > 1_000_000
    assert "report.html" in result.stdout


def test_report_on_a_search_still_going(run_dir, workdir):
    (run_dir / "pareto.csv").unlink()  # as while a search runs: trials.csv is written per trial
    (run_dir / "notes.json").unlink()
    result = main_in_process(workdir, "report", str(run_dir))
    assert result.returncode == 0, result.stderr
    report = (run_dir / "report.md").read_text()
    assert "## Pareto front (search-time latencies)" in report
    assert "the search is still going" in report
    assert "search-time latencies" in (run_dir / "report.html").read_text()


def test_report_compares_several_runs_on_one_plot(run_dir, tmp_path, workdir):
    other = tmp_path / "e2e-again"
    shutil.copytree(run_dir, other)
    out = tmp_path / "both.html"
    result = main_in_process(workdir, "report", str(run_dir), str(other), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert str(other) in result.stdout and f"wrote {out}" in result.stdout
    fronts = len(pd.read_csv(run_dir / "pareto.csv"))
    assert _points_per_trace(_chromium_dom(out), "front") == [fronts, fronts]


@pytest.mark.parametrize(("setup", "args", "fragment"), [
    ("empty", [], "is not a run folder"),
    ("run", ["--out", "x.html"], "--out names the page comparing several runs"),
    ("no-reference", [], "has not measured its dense reference yet"),
])
def test_report_bad_input_is_one_line(run_dir, tmp_path, workdir, setup, args, fragment):
    target = run_dir
    if setup == "empty":
        target = tmp_path / "empty"
        target.mkdir()
    if setup == "no-reference":
        (run_dir / "reference.json").unlink()
    assert_one_line_error(main_in_process(workdir, "report", str(target), *args), 2, fragment)


def test_import_search_loads_no_plotting_library():
    # Reports import plotly and matplotlib when they are written, not when search is imported.
    code = "import sys, search; print(sorted(m for m in ('plotly', 'matplotlib', 'ray') " \
           "if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
