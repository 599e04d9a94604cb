"""Which pruned candidates are best: the study, the Pareto front, the run folder and the CLI.

The public API is here; the subpackages hold its parts, one concept each (see
docs/architecture.md): ``sources`` (models and data by name), ``runfolder`` (the files of a run),
``training``, ``candidates`` (scoring one candidate), ``study`` (Optuna), ``backends`` (how trials
run), ``flow`` (prepare → run trials → finish), ``reports`` and ``commands`` (the CLI).

Example:
    >>> import search
    >>> front = search.run(budget_ratio=0.5, trials=12)  # doctest: +SKIP
    >>> model = search.load_pruned(f"results/vgg16_bn-digits-cpu/{front.model_path[0]}")  # doctest: +SKIP
"""

from importlib import metadata

from search._config import SearchConfig
from search._errors import (
    BudgetUnreachable,
    SearchInterrupted,
    StorageFailed,
    TooManyFailures,
    UsageError,
)
from search._guards import TimeLimitReached, time_limit
from search.commands import choose, inspect_model, pick, profile, report
from search.flow import Night, nightly, run
from search.runfolder import Run, hypervolume, load_pruned, load_run, pareto_mask

__all__ = ["BudgetUnreachable", "Night", "Run", "SearchConfig", "SearchInterrupted",
           "StorageFailed", "TimeLimitReached", "TooManyFailures", "UsageError", "choose",
           "hypervolume", "inspect_model", "load_pruned", "load_run", "nightly", "pareto_mask",
           "pick", "profile", "report", "run", "time_limit"]

try:
    __version__ = metadata.version("hwprune")
except metadata.PackageNotFoundError:  # run from a checkout that was not installed
    __version__ = "0+unknown"
