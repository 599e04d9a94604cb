"""Search spaces: which widths each channel group may keep, and which choices the sampler makes.

A space has *dimensions*, the parameters the sampler draws. ``per-layer`` has one keep fraction
per group; ``per-stage`` one per stage (the groups of equal output resolution); ``uniform`` one
for the whole model, the classic baseline. A spaces file (:mod:`spaces._file`) may give groups
their own fractions or widths (such a group is then its own dimension) or keep them dense.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from spaces._groups import ChannelGroup

Allocation = dict[str, int]
"""Kept output channels per group name: the one form an architecture crosses boundaries in."""

# How groups share the sampler's dimensions, with the phrase --help gives each.
KINDS = {"per-layer": "one keep fraction per group",
         "per-stage": "one per output resolution",
         "uniform": "one for all"}
DEFAULT_FRACTIONS = (0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


def kept_channels(width: int, fraction: float, round_to: int) -> int:
    """Channels kept of ``width`` at keep ``fraction``, rounded to a multiple of ``round_to``.

    The count never drops below one multiple, and a fraction of 1 (or a rounding that reaches the
    width) keeps the dense width, so a width that is no multiple of ``round_to`` stays reachable.

    Example:
        >>> kept_channels(64, 0.3, 8), kept_channels(20, 1.0, 8), kept_channels(64, 0.01, 8)
        (16, 20, 8)
    """
    if fraction >= 1.0 or width <= round_to:
        return width
    return min(width, max(round_to, round_to * round(fraction * width / round_to)))


def check_fractions(fractions: tuple[float, ...]) -> tuple[float, ...]:
    """``fractions`` sorted, checked to lie in (0, 1] and to include 1.0; else ValueError."""
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"keep fractions must lie in (0, 1], got {list(fractions)}")
    if not math.isclose(max(fractions), 1.0):
        raise ValueError("keep fractions must include 1.0 so the dense width stays reachable")
    return tuple(sorted(set(fractions)))


@dataclass(frozen=True)
class GroupChoices:
    """A group's own allowed keep fractions or widths, or ``exclude`` (kept dense) and why."""

    fractions: tuple[float, ...] | None = None
    widths: tuple[int, ...] | None = None
    exclude: str | None = None


@dataclass(frozen=True)
class Dimension:
    """One parameter the sampler draws: a keep fraction or a width, for one or more groups."""

    name: str
    groups: tuple[str, ...]
    choices: tuple[float, ...] | tuple[int, ...]
    unit: str  # "fraction" or "width"


def stage_name(group: ChannelGroup) -> str:
    """The stage a group belongs to, by its output resolution (``stage-16x16``)."""
    return "stage-" + ("x".join(map(str, group.resolution)) if group.resolution else "flat")


@dataclass(frozen=True)
class SearchSpace:
    """The allowed widths of every channel group and the dimensions the sampler draws.

    Attributes:
        groups: the prunable groups, from :func:`spaces.discover_groups`.
        round_to: kept channel counts are multiples of this (hardware vector/tile width).
        fractions: the allowed keep fractions, ascending, ending at 1.0.
        kind: ``per-layer``, ``per-stage`` or ``uniform``: how groups share dimensions.
        own: groups with their own fractions or widths, or excluded (by group name).
    """

    groups: tuple[ChannelGroup, ...]
    round_to: int = 8
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    kind: str = "per-layer"
    own: Mapping[str, GroupChoices] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.round_to < 1:
            raise ValueError(f"round_to must be at least 1 (--round-to), got {self.round_to}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown space {self.kind!r}; valid: {', '.join(KINDS)}")
        object.__setattr__(self, "fractions", check_fractions(self.fractions))
        unknown = set(self.own) - {g.name for g in self.groups}
        if unknown:
            raise KeyError(f"no channel group named {sorted(unknown)[0]!r} in this space")

    def multiple(self, group: ChannelGroup) -> int:
        """Kept widths of ``group`` are multiples of this: ``round_to`` and the group's channel
        groups (a grouped convolution keeps its groups equal), or for attention heads one head."""
        if group.head_size:
            return group.head_size
        return math.lcm(self.round_to, group.channel_groups)

    def widths(self, group: ChannelGroup) -> list[int]:
        """The distinct channel counts ``group`` may keep, ascending."""
        own = self.own.get(group.name, GroupChoices())
        if own.exclude:
            return [group.width]
        if own.widths:
            return sorted(set(own.widths))
        return sorted({kept_channels(group.width, f, self.multiple(group))
                       for f in own.fractions or self.fractions})

    @property
    def searchable(self) -> tuple[ChannelGroup, ...]:
        """Groups with more than one allowed width; the others keep their one width."""
        return tuple(g for g in self.groups if len(self.widths(g)) > 1)

    @property
    def excluded(self) -> dict[str, str]:
        """Groups kept dense by the spaces file or by a probe, with the reason."""
        return {name: own.exclude for name, own in self.own.items() if own.exclude}

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        """The parameters a sampler draws, in module order (a shared one at its first group)."""
        dims: dict[str, Dimension] = {}
        for g in self.searchable:
            own = self.own.get(g.name, GroupChoices())
            if own.widths:
                dims[g.name] = Dimension(g.name, (g.name,), tuple(self.widths(g)), "width")
            elif own.fractions or self.kind == "per-layer":
                choices = check_fractions(own.fractions) if own.fractions else self.fractions
                dims[g.name] = Dimension(g.name, (g.name,), choices, "fraction")
            else:  # shared by a stage, or by the whole model
                key = stage_name(g) if self.kind == "per-stage" else "keep"
                members = dims[key].groups if key in dims else ()
                dims[key] = Dimension(key, (*members, g.name), self.fractions, "fraction")
        return tuple(dims.values())

    def decode(self, params: Mapping[str, float]) -> Allocation:
        """Kept channels for every group from one value per dimension (a trial's params)."""
        by_name = {g.name: g for g in self.groups}
        allocation = {g.name: self.widths(g)[0] for g in self.groups}  # one allowed width
        for dim in self.dimensions:
            if dim.name not in params:
                raise KeyError(f"no value for the space's dimension {dim.name!r}")
            value = params[dim.name]
            for name in dim.groups:
                group = by_name[name]
                allocation[name] = int(value) if dim.unit == "width" else \
                    kept_channels(group.width, float(value), self.multiple(group))
        return allocation

    def params_at(self, fraction: float) -> dict[str, float]:
        """Each dimension's choice nearest to keeping ``fraction`` of every group (warm starts)."""
        return self.params_for({g.name: fraction for g in self.groups})

    def params_for(self, fractions: Mapping[str, float]) -> dict[str, float]:
        """Each dimension's choice nearest to per-group keep ``fractions`` (a group not named
        keeps all): a width nearest to its share of the group, a fraction shared by several
        groups (a stage's) nearest to their mean."""
        widths = {g.name: g.width for g in self.groups}
        params = {}
        for dim in self.dimensions:
            wanted = [fractions.get(name, 1.0) for name in dim.groups]
            target = wanted[0] * widths[dim.groups[0]] if dim.unit == "width" else \
                sum(wanted) / len(wanted)
            params[dim.name] = min(dim.choices, key=lambda c, t=target: (abs(c - t), c))
        return params

    def allocation(self, fractions: Mapping[str, float]) -> Allocation:
        """Kept channels for every group from per-group keep fractions (unnamed groups keep
        their largest allowed width), whatever the space's dimensions."""
        unknown = set(fractions) - {g.name for g in self.groups}
        if unknown:
            raise KeyError(f"no channel group named {sorted(unknown)[0]!r} in this space")
        return {g.name: kept_channels(g.width, fractions[g.name], self.multiple(g))
                if g.name in fractions else self.widths(g)[-1] for g in self.groups}

    def dense(self) -> Allocation:
        return {g.name: g.width for g in self.groups}

    def smallest(self) -> Allocation:
        """The allocation with every group at its lowest allowed width."""
        return {g.name: self.widths(g)[0] for g in self.groups}

    def uniform(self, fraction: float) -> Allocation:
        """Every group at keep ``fraction`` (a group with its own widths: the nearest one)."""
        snapped = self.params_at(fraction)
        return self.decode({d.name: fraction if d.unit == "fraction" else snapped[d.name]
                            for d in self.dimensions})
