"""One channel ranking across the whole model (torch-pruning's global pruning): how many channels
each group keeps when the model keeps a given share of all its channels, the most important ones
wherever they are.

torch-pruning's ``MagnitudePruner(global_pruning=True)`` ranks the same way, but it prunes a copy
of the model for one ratio at a time and rounds per layer as it goes; a search needs only the
per-group counts for several shares, snapped to its own grid, so the scores are taken once here
with torch-pruning's own importance and normalisation and the ranking is a threshold on them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from spaces._groups import build_graph
from spaces._prune import _group_rooted_at, _scores
from spaces._space import SearchSpace


def channel_scores(model: nn.Module, example_input: Tensor, space: SearchSpace) -> dict[str, Tensor]:
    """Each searchable group's per-channel L2 magnitude over all of its layers, divided by the
    group's mean (torch-pruning's ``normalizer="mean"`` for global pruning), so that groups of
    different sizes and scales rank on one scale. ``model`` itself is not changed."""
    copied = copy.deepcopy(model).eval()
    graph = build_graph(copied, example_input)
    scores = {}
    for group in space.searchable:
        module = copied.get_submodule(group.name)
        channels = _scores(graph, _group_rooted_at(graph, module, list(range(group.width))),
                           "l2", seed=0).double().cpu()
        scores[group.name] = channels / channels.mean().clamp_min(1e-12)
    return scores


def global_fractions(scores: Mapping[str, Tensor], share: float) -> dict[str, float]:
    """Per-group keep fractions when ``share`` of all the scored channels are kept, the highest
    scores across groups (ties at the threshold all kept)."""
    if not scores:
        return {}
    everything = torch.cat(list(scores.values()))
    kept = min(everything.numel(), max(1, round(share * everything.numel())))
    threshold = everything.topk(kept).values[-1]
    return {name: float((s >= threshold).sum()) / s.numel() for name, s in scores.items()}
