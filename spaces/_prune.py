"""Turning an allocation into a structurally pruned model, and rebuilding one from its description.

Pruning removes whole channels with torch-pruning (weights, batch-norm entries and the inputs of
the layers that consume them), so the result is a smaller ordinary ``nn.Module`` that runs at the
speed of its shape, not a masked dense model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch_pruning as tp
from torch import Tensor, nn

from spaces._groups import build_graph
from spaces._space import SearchSpace

_IMPORTANCE = tp.importance.GroupMagnitudeImportance(p=2)


def _group_rooted_at(graph: tp.DependencyGraph, module: nn.Module, idxs: list[int]):
    pruner = graph.get_pruner_of_module(module)
    return graph.get_pruning_group(module, pruner.prune_out_channels, idxs)


def _channels_to_remove(graph: tp.DependencyGraph, module: nn.Module, kept: int,
                        by_importance: bool) -> list[int]:
    width = graph.get_pruner_of_module(module).get_out_channels(module)
    if kept >= width:
        return []
    if not by_importance:
        return list(range(kept, width))
    with torch.no_grad():
        scores = _IMPORTANCE(_group_rooted_at(graph, module, list(range(width))))
    # A stable sort on (score, index) makes ties, such as all-zero channels, break the same way
    # every time, so one allocation always yields the same pruned weights.
    order = torch.argsort(scores.double().cpu(), stable=True)
    return sorted(order[: width - kept].tolist())


def _apply(model: nn.Module, example_input: Tensor, allocation: Mapping[str, int],
           by_importance: bool) -> nn.Module:
    pruned = copy.deepcopy(model).eval()
    graph = build_graph(pruned, example_input)
    for name, kept in allocation.items():
        module = pruned.get_submodule(name)
        idxs = _channels_to_remove(graph, module, kept, by_importance)
        if idxs:
            _group_rooted_at(graph, module, idxs).prune()
    return pruned


def prune(model: nn.Module, example_input: Tensor, allocation: Mapping[str, int]) -> nn.Module:
    """A structurally pruned copy of ``model`` keeping ``allocation[group]`` channels per group.

    The channels kept are those of largest L2 magnitude over the whole group (torch-pruning's
    ``GroupMagnitudeImportance(p=2)``); ``model`` itself is not changed.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 4, 1))
        >>> prune(net, torch.randn(1, 3, 8, 8), {"0": 8})[0].out_channels
        8
    """
    return _apply(model, example_input, allocation, by_importance=True)


def rebuild(model: nn.Module, example_input: Tensor, allocation: Mapping[str, int],
            state_dict: Mapping[str, Tensor]) -> nn.Module:
    """The pruned architecture of ``allocation`` on ``model``, with ``state_dict`` loaded into it.

    Which channels were kept does not matter here, only how many: the weights come from
    ``state_dict``, so the first channels are kept and then overwritten (strictly, every key).
    """
    pruned = _apply(model, example_input, allocation, by_importance=False)
    pruned.load_state_dict(state_dict, strict=True)
    return pruned.eval()


def layer_widths(model: nn.Module, layers: Mapping[str, object]) -> dict[str, int]:
    """Output channels of the named conv/linear layers of ``model`` (e.g. to check an allocation)."""
    widths = {}
    for name in layers:
        module = model.get_submodule(name)
        widths[name] = module.out_channels if hasattr(module, "out_channels") else module.out_features
    return widths


def breaking_groups(model: nn.Module, example_input: Tensor, space: SearchSpace) -> dict[str, str]:
    """Groups whose pruning breaks the model (torch-pruning cannot follow an op on their
    channels, or the forward pass fails or changes its output shape), with the reason.

    The space's smallest candidate is tried first; only when it breaks is each group tried alone,
    at its smallest and at its largest pruned width. A group that breaks at both is returned; one
    that breaks at some widths only stays (its trials record the failures), so a model that
    prunes cleanly costs one pruning.
    """
    def failure(allocation: Mapping[str, int]) -> str | None:
        try:
            pruned = prune(model, example_input, allocation)
            with torch.no_grad():
                shape = model.eval()(example_input).shape
                got = pruned(example_input).shape
        except Exception as exc:  # any op of a user's model may fail once its widths change
            return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return None if got == shape else f"the output shape changes from {tuple(shape)} to {tuple(got)}"

    if not space.searchable or failure(space.smallest()) is None:
        return {}
    dense = space.dense()
    found = {}
    for group in space.searchable:
        widths = space.widths(group)
        reason = failure({**dense, group.name: widths[0]})
        if reason is not None and failure({**dense, group.name: widths[-2]}) is not None:
            found[group.name] = f"pruning it breaks the model ({reason})"
    return found
