"""``report``: a run's three reports rebuilt from its folder, or one page comparing runs."""

from __future__ import annotations

from pathlib import Path

from search._errors import UsageError
from search.reports import write_reports
from search.runfolder import Run, load_run


def report(*run_dirs: str | Path | Run, out: str | Path | None = None) -> list[Path]:
    """Rebuilds ``report.md``, ``pareto.png`` and ``report.html`` in one run folder (also while
    its search is still going), or, given several, writes one page comparing their fronts
    (``out``, default ``compare.html``). A run already loaded (:class:`Run`) is taken as it is.
    Returns the paths written.

    Example:
        >>> import search
        >>> search.report("results/vgg16_bn-digits-cpu")  # doctest: +SKIP
        [PosixPath('results/vgg16_bn-digits-cpu/report.md'), ...]
        >>> search.report("results/run-a", "results/run-b", out="cmp.html")  # doctest: +SKIP
        [PosixPath('cmp.html')]

    Raises:
        UsageError: a folder that is not a run, a run that has not measured its dense model yet,
            or ``out`` with a single run (its reports are written into its folder).
    """
    if not run_dirs:
        raise UsageError("report needs at least one run folder")
    runs = [path if isinstance(path, Run) else load_run(path) for path in run_dirs]
    if len(runs) == 1:
        if out is not None:
            raise UsageError("--out names the page comparing several runs; one run's reports "
                             "are written into its folder")
        return write_reports(runs[0])
    for run in runs:
        if not run.reference.get("budget_ms"):
            raise UsageError(f"{run.path}: the search has not measured its dense reference yet; "
                             f"leave it out of the comparison")
    from search.reports import write_comparison_html  # plotly, only when a page is written

    page = Path(out or "compare.html")
    write_comparison_html(page, runs)
    return [page]
