"""How an option of a search is declared: once, as a field of :class:`search.SearchConfig` whose
metadata (:class:`Option`) holds its help, its group in ``--help``, how a flag's text becomes its
value, the registry it names, its checks, and whether it is part of a study's identity.

Built from the declaration: the flags of ``run`` and ``nightly`` and their groups
(``search/commands/_flags.py``), the keys ``--config`` takes and ``config.json`` replays
(``search/commands/_config_file.py``), the CLI reference page (generated from the parser), the
checks (:func:`check_options`), and the study's identity. A new option is one field, plus the
code that uses it. As Hugging Face's ``HfArgumentParser`` builds a parser from dataclass fields,
but with the groups, registries and identity this search needs.

Example:
    >>> from dataclasses import dataclass, fields
    >>> @dataclass(frozen=True)
    ... class Settings:
    ...     steps: int = option(10, group="fine-tuning", help="SGD steps",
    ...                         checks=[(at_least(0), "must be 0 or more")])
    >>> check_options(Settings(steps=-1))
    Traceback (most recent call last):
    ...
    search._errors.UsageError: --steps must be 0 or more, got -1
    >>> option_of(fields(Settings)[0]).group
    'fine-tuning'
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from search._errors import UsageError
from search._registry import Registry

_DEFAULT = "the field's default"  # Option.before left as it is
Check = tuple[Callable[[Any], bool], str]  # (whether a value is allowed, what it must be)


@dataclass(frozen=True)
class Option:
    """What a field declares beside its type and default.

    Attributes:
        help: the flag's help (``%(default)s`` is filled in), or a function that builds it from
            a registry at the time ``--help`` is shown.
        group: the ``--help`` group it is listed in.
        metavar: what ``--help`` calls its value (``MS``).
        parse: a flag's text to the value (default: the field's type: int, float or str).
        choices: the registry (or the names) it takes; its unknown-name error and, for a
            registry, its help come from there.
        checks: what a value that is not None must satisfy, each with the phrase that says so.
        identity: a resumed study must have been run with the same value.
        before: with ``identity``, the value of studies stored before it joined the identity
            (default: the field's default).
        flag: False for a field no flag sets (a comment beside the field says why).
    """

    help: str | Callable[[], str]
    group: str
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    choices: Registry | Sequence[str] | None = None
    checks: tuple[Check, ...] = ()
    identity: bool = False
    before: Any = _DEFAULT
    flag: bool = True

    def help_text(self) -> str:
        return self.help() if callable(self.help) else self.help


def option(default: Any, *, help: str | Callable[[], str], group: str,  # noqa: A002 - argparse's name
           checks: Sequence[Check] = (), **declared: Any) -> Any:
    """A :class:`SearchConfig` field: ``default``, and the rest of :class:`Option`."""
    return dataclasses.field(default=default, metadata={
        "option": Option(help=help, group=group, checks=tuple(checks), **declared)})


def option_of(field: dataclasses.Field) -> Option:
    """The field's declaration; TypeError for a field declared without :func:`option`."""
    try:
        return field.metadata["option"]
    except KeyError:
        raise TypeError(f"{field.name} is declared without option()") from None


def flag_of(name: str) -> str:
    """The flag of field ``name``: ``budget_ms`` -> ``--budget-ms``."""
    return "--" + name.replace("_", "-")


def identity_fields(config_class: type) -> tuple[str, ...]:
    """The fields that make up a study's identity, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(config_class) if option_of(f).identity)


def before_identity(config_class: type) -> dict[str, Any]:
    """For each identity field, the value of studies stored before it was part of it."""
    return {f.name: f.default if option_of(f).before is _DEFAULT else option_of(f).before
            for f in dataclasses.fields(config_class) if option_of(f).identity}


def check_options(config: object) -> None:
    """UsageError naming the flag for the first field whose value its declaration refuses: a
    name not in its registry, or a value that fails a check (None is always allowed)."""
    for field in dataclasses.fields(config):
        declared = option_of(field)
        value = getattr(config, field.name)
        if value is None:
            continue
        if isinstance(declared.choices, Registry):
            declared.choices.lookup(value)
        elif declared.choices is not None and value not in declared.choices:
            raise UsageError(f"unknown {flag_of(field.name)} {value!r}; valid: "
                             f"{', '.join(declared.choices)}")
        for allowed, requirement in declared.checks:
            try:
                ok = allowed(value)
            except TypeError:  # a value of the wrong type, from Python
                ok = False
            if not ok:
                shown = repr(value) if isinstance(value, str) else value
                raise UsageError(f"{flag_of(field.name)} {requirement}, got {shown}")


# The checks options share.
def at_least(low: float) -> Callable[[Any], bool]:
    """At least ``low`` and finite."""
    return lambda value: value >= low and math.isfinite(value)


def positive(value: Any) -> bool:
    return value > 0 and math.isfinite(value)


def in_unit_interval(value: Any) -> bool:
    """In (0, 1]."""
    return 0 < value <= 1


def number(text: str) -> float:
    """A flag's text as a float, with the error argparse shows for one that is not."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
