"""Which pruned candidates are best: the study, the Pareto front, the run folder and the CLI.

Example:
    >>> import search
    >>> front = search.run(budget_ratio=0.5, trials=12)  # doctest: +SKIP
    >>> model = search.load_pruned(f"results/vgg16_bn-digits-cpu/{front.model_path[0]}")  # doctest: +SKIP
"""

from search._config import SearchConfig
from search._errors import BudgetUnreachable, SearchInterrupted, UsageError
from search._run import run
from search._runfolder import load_pruned
from search._runs import Run, load_run

__all__ = ["BudgetUnreachable", "Run", "SearchConfig", "SearchInterrupted", "UsageError",
           "load_pruned", "load_run", "run"]
