"""One ranking of channels across the whole model: how many channels each group keeps when the
model keeps a share of all its channels, the highest-scoring ones wherever they are.

torch-pruning's ``MagnitudePruner(global_pruning=True)`` ranks the same way, but it prunes a copy
of the model for one ratio at a time and rounds per layer as it goes; a search needs only the
per-group counts for many shares, snapped to its own grid, so the ranking is a threshold on
scores taken once (:func:`spaces.channel_scores`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor


def global_fractions(scores: Mapping[str, Tensor], share: float) -> dict[str, float]:
    """Per-group keep fractions when ``share`` of all the scored channels are kept, the highest
    scores across groups (ties at the threshold all kept).

    Example:
        >>> import torch
        >>> global_fractions({"a": torch.tensor([4.0, 3.0]), "b": torch.tensor([2.0, 1.0])}, 0.5)
        {'a': 1.0, 'b': 0.0}
    """
    if not scores:
        return {}
    everything = torch.cat(list(scores.values()))
    kept = min(everything.numel(), max(1, round(share * everything.numel())))
    threshold = everything.topk(kept).values[-1]
    return {name: float((s >= threshold).sum()) / s.numel() for name, s in scores.items()}


@dataclass(frozen=True)
class Ranking:
    """What a ranking of a trained model's channels goes by: each searchable group's channel
    scores (on one scale across groups, as :func:`spaces.channel_scores` gives them) and the
    MACs one of its channels costs."""

    scores: Mapping[str, Tensor]
    costs: Mapping[str, float]

    def fractions(self, share: float, cost_exponent: float = 0.0) -> dict[str, float]:
        """Per-group keep fractions when ``share`` of all channels are kept by score / the
        group's channel cost ** ``cost_exponent`` (0: by score alone, the magnitude ranking; 1:
        by score per MAC, a greedy knapsack under a MAC cost).

        Example:
            >>> import torch
            >>> ranking = Ranking({"a": torch.tensor([4.0, 3.0]), "b": torch.tensor([2.0, 1.0])},
            ...                   costs={"a": 8.0, "b": 1.0})
            >>> ranking.fractions(0.5), ranking.fractions(0.5, cost_exponent=1.0)
            ({'a': 1.0, 'b': 0.0}, {'a': 0.0, 'b': 1.0})
        """
        weighted = {name: s / self.costs[name] ** cost_exponent for name, s in self.scores.items()}
        return global_fractions(weighted, share)
