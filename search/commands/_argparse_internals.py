"""What the command line needs of argparse beyond its public API, in one place: a parser's
subcommands and its flags (for "did you mean", the reference page and the tests), and the type
of an argument group. ``tests/search/test_argparse_internals.py`` checks each against the
running Python's argparse.
"""

from __future__ import annotations

import argparse

Group = argparse._ArgumentGroup  # what add_argument_group returns


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of ``parser``'s subcommands by name (none for a parser without)."""
    return {name: sub for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for name, sub in action.choices.items()}


def actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every argument ``parser`` takes, positional ones too, in the order they were added."""
    return list(parser._actions)


def group_of(parser: argparse.ArgumentParser, action: argparse.Action) -> str | None:
    """The title of the ``--help`` group ``action`` is listed in."""
    return next((group.title for group in parser._action_groups
                 if action in group._group_actions), None)
