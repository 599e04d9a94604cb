"""The per-layer search space: one keep fraction per group on a grid, rounded to hardware steps."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from spaces._groups import ChannelGroup

Allocation = dict[str, int]
"""Kept output channels per group name: the one form an architecture crosses boundaries in."""


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


@dataclass(frozen=True)
class PerLayerSpace:
    """One keep fraction per channel group, drawn from ``fractions``.

    Attributes:
        groups: the searchable groups, from :func:`spaces.discover_groups`.
        round_to: kept channel counts are multiples of this (hardware vector/tile width).
        fractions: the allowed keep fractions, ascending, ending at 1.0.
    """

    groups: tuple[ChannelGroup, ...]
    round_to: int = 8
    fractions: tuple[float, ...] = field(default=(0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0))

    def __post_init__(self) -> None:
        if self.round_to < 1:
            raise ValueError(f"round_to must be at least 1 (--round-to), got {self.round_to}")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"keep fractions must lie in (0, 1], got {list(self.fractions)}")
        if not math.isclose(max(self.fractions), 1.0):
            raise ValueError("keep fractions must include 1.0 so the dense width stays reachable")
        object.__setattr__(self, "fractions", tuple(sorted(self.fractions)))

    @property
    def searchable(self) -> tuple[ChannelGroup, ...]:
        """Groups with more than one allowed width; the others stay dense."""
        return tuple(g for g in self.groups if len(self.widths(g)) > 1)

    def widths(self, group: ChannelGroup) -> list[int]:
        """The distinct channel counts ``group`` may keep, ascending."""
        return sorted({kept_channels(group.width, f, self.round_to) for f in self.fractions})

    def allocation(self, fractions: Mapping[str, float]) -> Allocation:
        """Kept channels for every group, from keep fractions (groups not named stay dense)."""
        unknown = set(fractions) - {g.name for g in self.groups}
        if unknown:
            raise KeyError(f"no channel group named {sorted(unknown)[0]!r} in this space")
        return {
            g.name: kept_channels(g.width, fractions.get(g.name, 1.0), self.round_to)
            for g in self.groups
        }

    def dense(self) -> Allocation:
        return {g.name: g.width for g in self.groups}

    def smallest(self) -> Allocation:
        """The allocation with every group at its lowest allowed width."""
        return self.allocation({g.name: self.fractions[0] for g in self.groups})

    def uniform(self, fraction: float) -> Allocation:
        return self.allocation({g.name: fraction for g in self.groups})
