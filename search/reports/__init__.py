"""The reports of a run, for people: ``report.md``, ``pareto.png`` and ``report.html``, and a
page comparing several runs; all built from run folders."""

from search.reports._html import comparison_table, write_comparison_html, write_html
from search.reports._markdown import write_plot, write_report
from search.reports._text import STOPPED_NOTE, device_name, front_table, measured_in, run_notes
from search.reports._write import write_reports

__all__ = ["STOPPED_NOTE", "comparison_table", "device_name", "front_table", "measured_in",
           "run_notes", "write_comparison_html", "write_html", "write_plot", "write_report",
           "write_reports"]
