"""The command line (``python -m search``, ``hwprune``): the flags, and the commands beside
``run``: ``nightly``, ``profile``, ``pick``, ``report`` and ``inspect``. The only place that
prints or configures logging."""

from search.commands._cli import main
from search.commands._flags import SUBCOMMANDS, build_parser
from search.commands._inspect import inspect_model
from search.commands._pick import choose, pick
from search.commands._profile import profile, profile_steps
from search.commands._report import report

__all__ = ["SUBCOMMANDS", "build_parser", "choose", "inspect_model", "main", "pick", "profile",
           "profile_steps", "report"]
