"""Writing a run's three reports, all built from its folder's files (``load_run``), so that
``python -m search report RUN_DIR`` rebuilds them at any time, during a run or after it."""

from __future__ import annotations

from pathlib import Path

from search._errors import UsageError
from search.reports._markdown import write_plot, write_report
from search.runfolder import PLOT, REPORT_HTML, REPORT_MD, Run


def write_reports(run: Run) -> list[Path]:
    """Writes ``report.md``, ``pareto.png`` and ``report.html`` into the run folder."""
    from search.reports._html import write_html  # plotly: imported only to write a page

    if not run.reference.get("budget_ms"):
        raise UsageError(f"{run.path}: the search has not measured its dense reference yet "
                         f"(no budget in reference.json); nothing to report")
    paths = [run.path / REPORT_MD, run.path / PLOT, run.path / REPORT_HTML]
    write_report(paths[0], run)
    write_plot(paths[1], run)
    write_html(paths[2], run)
    return paths
