"""The reports of a run, for people: ``report.md``, ``pareto.png`` and ``report.html``, and a
page comparing several runs; all built from run folders.

The HTML pages need plotly, which takes a second to import: its names are imported when first
used, so that ``import search`` stays free of plotting libraries.
"""

from search.reports._markdown import write_plot, write_report
from search.reports._text import STOPPED_NOTE, device_name, front_table, measured_in, run_notes
from search.reports._write import write_reports

_HTML = ("comparison_table", "write_comparison_html", "write_html")


def __getattr__(name: str) -> object:
    if name in _HTML:
        from search.reports import _html

        return getattr(_html, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["STOPPED_NOTE", "comparison_table", "device_name", "front_table", "measured_in",
           "run_notes", "write_comparison_html", "write_html", "write_plot", "write_report",
           "write_reports"]
