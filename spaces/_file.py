"""A spaces file (TOML): the space's kind and default fractions, and rules for groups by name.

Example::

    space = "per-stage"                  # per-layer (default), per-stage or uniform
    fractions = [0.25, 0.5, 0.75, 1.0]   # default keep fractions (must include 1.0)

    [[rule]]                             # rules apply in order; a later one wins
    match = "features.0*"                # glob on group names and the layers they couple
    exclude = true                       # keep these groups dense

    [[rule]]
    match = "layer3.*"
    fractions = [0.5, 0.75, 1.0]         # their own fractions, searched on their own

    [[rule]]
    match = "classifier.0"
    widths = [128, 256, 512]             # or exact widths

Every error names the file and the rule, and a pattern that matches no prunable group is an
error, not a silent no-op.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from spaces._groups import ChannelGroup
from spaces._space import KINDS, GroupChoices, check_fractions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_TOP_KEYS = {"space", "fractions", "rule"}
_RULE_KEYS = {"match", "exclude", "fractions", "widths"}


@dataclass(frozen=True)
class Rule:
    """Groups whose name or any coupled layer's name matches ``match`` get ``choices``."""

    match: str
    choices: GroupChoices
    number: int  # 1-based, for messages


@dataclass(frozen=True)
class SpaceFile:
    """What a spaces file says; :meth:`choices` applies its rules to a model's groups."""

    path: str
    kind: str
    fractions: tuple[float, ...] | None
    rules: tuple[Rule, ...]
    digest: str  # of the file's bytes: a study refuses to resume with an edited file

    def choices(self, groups: tuple[ChannelGroup, ...] | list[ChannelGroup]) -> dict[str, GroupChoices]:
        """Each matched group's own choices (the last matching rule wins); ValueError when a
        rule matches no group or gives a width the group does not have."""
        own: dict[str, GroupChoices] = {}
        for rule in self.rules:
            matched = [g for g in groups
                       if any(fnmatchcase(name, rule.match) for name in (g.name, *g.layers))]
            if not matched:
                raise ValueError(f"{self.path}: rule {rule.number} (match = {rule.match!r}) "
                                 f"matches no prunable channel group; see python -m search "
                                 f"inspect for their names")
            for g in matched:
                widths = rule.choices.widths or ()
                if any(w > g.width for w in widths):
                    raise ValueError(f"{self.path}: rule {rule.number}: widths {list(widths)} "
                                     f"exceed group {g.name!r}'s {g.width} channels")
                uneven = [w for w in widths if w % g.channel_groups]
                if uneven:
                    raise ValueError(f"{self.path}: rule {rule.number}: widths {uneven} do not "
                                     f"divide evenly over the {g.channel_groups} convolution "
                                     f"groups of group {g.name!r}; use multiples of "
                                     f"{g.channel_groups}")
                own[g.name] = rule.choices
        return own


def _fractions(value: object, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                              for v in value):
        raise ValueError(f"{where}: fractions must be a list of numbers, e.g. [0.5, 0.75, 1.0]")
    try:
        return check_fractions(tuple(float(v) for v in value))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _rule(table: object, number: int, where: str) -> Rule:
    where = f"{where}: rule {number}"
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table ([[rule]])")
    unknown = set(table) - _RULE_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r}; valid: "
                         f"{', '.join(sorted(_RULE_KEYS))}")
    match = table.get("match")
    if not isinstance(match, str) or not match:
        raise ValueError(f"{where} needs match = \"PATTERN\" (a glob on group or layer names)")
    given = [k for k in ("exclude", "fractions", "widths") if k in table]
    if len(given) != 1:
        raise ValueError(f"{where} needs exactly one of exclude, fractions, widths; got "
                         f"{', '.join(given) or 'none'}")
    if "exclude" in table:
        if table["exclude"] is not True:
            raise ValueError(f"{where}: exclude must be true (leave the rule out otherwise)")
        return Rule(match, GroupChoices(exclude=f"spaces file rule {number} ({match})"), number)
    if "fractions" in table:
        return Rule(match, GroupChoices(fractions=_fractions(table["fractions"], where)), number)
    widths = table["widths"]
    if not isinstance(widths, list) or not widths or not all(
            isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ValueError(f"{where}: widths must be a list of channel counts (integers >= 1)")
    return Rule(match, GroupChoices(widths=tuple(sorted(set(widths)))), number)


def read_space_file(path: str | Path) -> SpaceFile:
    """Parses and checks a spaces file; ValueError naming the file and the problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such spaces file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key {sorted(unknown)[0]!r}; valid: "
                         f"{', '.join(sorted(_TOP_KEYS))}")
    kind = data.get("space", "per-layer")
    if kind not in KINDS:
        raise ValueError(f"{path}: space = {kind!r}; valid: {', '.join(KINDS)}")
    fractions = _fractions(data["fractions"], str(path)) if "fractions" in data else None
    rules = data.get("rule", [])
    if not isinstance(rules, list):
        raise ValueError(f"{path}: rules are written [[rule]], one table per rule")
    return SpaceFile(str(path), kind, fractions,
                     tuple(_rule(r, i, str(path)) for i, r in enumerate(rules, 1)),
                     hashlib.sha256(raw).hexdigest()[:16])
