"""The channel scores a ranking across the whole model uses (:mod:`spaces._ranking`), taken with
torch-pruning's own importance and normalisation for global pruning."""

from __future__ import annotations

import copy

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
