"""A plug-in family as one registry: named entries, each with a phrase for ``--help``.

Registration, listing, lookup and the error for an unknown name are written here once; every
family (runtimes, data sources, models, model hubs, spaces, samplers, warm starts, importances,
backends) is a :class:`Registry`, and the options that name one (``--sampler``) take their
choices, help and check from it (:mod:`search._options`). A new entry is one ``register`` call.

The ``profilers`` and ``spaces`` packages hold their own families (runtimes, space kinds,
importances) as plain mappings, since they do not depend on ``search``; ``search`` wraps each
in a registry, so the command line treats them like the rest.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Colour:
    ...     help: str
    >>> colours = Registry("--colour", {"red": Colour("warm")})
    >>> colours.register("blue", Colour("cold")).help
    'cold'
    >>> colours.help()
    'red: warm; blue: cold'
    >>> colours.lookup("green")
    Traceback (most recent call last):
    ...
    search._errors.UsageError: unknown --colour 'green'; valid: red, blue
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from search._errors import UsageError

E = TypeVar("E")


@dataclass(frozen=True)
class Entry:
    """An entry that is only its phrase: a family whose behaviour lives elsewhere (the kinds of
    space and the importance criteria of the ``spaces`` package)."""

    help: str


class Registry(Mapping[str, E], Generic[E]):
    """Named entries of one family; read like a dict (``name in registry``, ``registry[name]``).

    Args:
        what: how errors name the family: the flag (``--sampler``) or a noun (``model``).
        entries: the entries it starts with, in the order ``--help`` lists them.
        forms: what the family takes beside its names (``a spaces file PATH.toml``), listed
            after them in errors.
        closest_first: errors list the names most like the unknown one first (long lists).
        hidden: entries that work but ``--help`` does not list (test patterns); errors do.
        describe: an entry's phrase in ``help()``; by default ``name: its help attribute``.
        shown: how errors write a name (``cifar10:PATH``); by default the name itself.
        joiner: what ``help()`` puts between entries.
    """

    def __init__(self, what: str, entries: Mapping[str, E] | None = None, *,
                 forms: Callable[[], list[str]] | tuple[str, ...] = (),
                 closest_first: bool = False, hidden: Mapping[str, E] | None = None,
                 describe: Callable[[str, E], str] | None = None,
                 shown: Callable[[str, E], str] | None = None, joiner: str = "; ") -> None:
        self.what = what
        self._entries: dict[str, E] = {}
        self._hidden = set(hidden or ())
        self._forms = forms
        self._closest_first = closest_first
        self._describe = describe or (lambda name, entry: f"{name}: {entry.help}")
        self._shown = shown or (lambda name, entry: name)
        self._joiner = joiner
        for name, entry in {**(entries or {}), **(hidden or {})}.items():
            self.register(name, entry)

    def register(self, name: str, entry: E) -> E:
        """Adds ``entry`` under ``name`` (a name is registered once) and returns it."""
        if name in self._entries:
            raise ValueError(f"{self.what}: {name!r} is registered already")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> E:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def listed(self) -> dict[str, E]:
        """The entries ``--help`` lists, in order."""
        return {name: entry for name, entry in self._entries.items() if name not in self._hidden}

    def help(self) -> str:
        """Every listed entry's phrase, then the other forms, for ``--help``."""
        described = self._joiner.join(self._describe(name, entry)
                                      for name, entry in self.listed().items())
        forms = self.forms()
        return described + (f", or {', '.join(forms)}" if forms else "")

    def forms(self) -> list[str]:
        """What the family takes beside its names."""
        return list(self._forms() if callable(self._forms) else self._forms)

    def unknown(self, name: str) -> UsageError:
        """The error for a name that is neither an entry nor one of the other forms."""
        names = list(self)  # hidden ones too: a misspelt test pattern is found
        if self._closest_first:
            names = difflib.get_close_matches(name, names, n=len(names), cutoff=0.0)
        valid = [", ".join(self._shown(n, self._entries[n]) for n in names), *self.forms()]
        listed = ", ".join(valid[:-1]) + ", or " + valid[-1] if len(valid) > 1 else valid[0]
        return UsageError(f"unknown {self.what} {name!r}; valid: {listed}")

    def lookup(self, name: str) -> E:
        """The entry ``name`` stands for; UsageError listing the valid names otherwise."""
        if name not in self._entries:
            raise self.unknown(name)
        return self._entries[name]
