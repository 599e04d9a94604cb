"""Prunable channel groups of any ``nn.Module``, found with torch-pruning's dependency graph.

A group is a set of output channels that must be removed together: a conv and its batch norm, or
every layer whose output meets in a residual add. Each group is named by the qualified name of its
first member in ``model.named_modules()`` order, which does not depend on torch-pruning's traversal
order, so names stay the same across processes, versions and copies of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import Tensor, nn

_PRUNABLE_TYPES = (nn.Conv2d, nn.Conv1d, nn.Linear)


@dataclass(frozen=True)
class ChannelGroup:
    """Output channels that are pruned together.

    Attributes:
        name: qualified name of the group's first layer; the key of an allocation.
        width: channel count of the dense model.
        layers: qualified names of every conv/linear layer whose outputs belong to the group.
        resolution: the spatial (conv) or token (linear) shape of the first layer's output for
            one example input; groups of equal resolution form a stage.
        channel_groups: how many equal parts the channels split into (the ``groups`` of a
            grouped convolution or a group norm in the group); a kept width is a multiple of it,
            and pruning removes the same positions from every part.
        head_size: for the fused q/k/v projection of an attention (see :func:`attention_of`),
            the channels of one head (3 x head dim); the group keeps whole heads, so a kept
            width is a multiple of it. 0 for any other group.
    """

    name: str
    width: int
    layers: tuple[str, ...]
    resolution: tuple[int, ...] = ()
    channel_groups: int = 1
    head_size: int = 0


@dataclass(frozen=True)
class ExcludedGroup:
    """A group left at full width, and why."""

    name: str
    width: int
    layers: tuple[str, ...]
    reason: str


def build_graph(model: nn.Module, example_input: Tensor) -> tp.DependencyGraph:
    """torch-pruning's dependency graph of ``model`` traced on ``example_input``."""
    return tp.DependencyGraph().build_dependency(model, example_inputs=example_input, verbose=False)


def attention_of(model: nn.Module, layer: str) -> nn.Module | None:
    """The attention module whose heads ``layer`` projects, or None.

    That is the timm form of attention, which most vision transformers written in plain torch
    follow: a module with an integer ``num_heads`` and a fused ``qkv`` linear layer whose output
    is q, k and v, each ``num_heads x head_dim``, read back through ``num_heads``. Its heads are
    a prunable dimension: pruning removes whole heads and lowers ``num_heads``. (torch's own
    ``nn.MultiheadAttention`` ties the head width to the residual stream, so it is not this.)
    """
    parent_name, _, leaf = layer.rpartition(".")
    if leaf != "qkv":
        return None
    parent = model.get_submodule(parent_name)
    heads = getattr(parent, "num_heads", None)
    qkv = getattr(parent, "qkv", None)
    if isinstance(qkv, nn.Linear) and isinstance(heads, int) and heads > 0 \
            and qkv.out_features % (3 * heads) == 0:
        return parent
    return None


def channel_groups(graph: tp.DependencyGraph, group) -> int:
    """How many equal parts a torch-pruning group's channels split into: the largest ``groups``
    of a grouped convolution or group norm among its members (1 for none). A depthwise
    convolution does not count: it is pruned channel by channel, its groups with it.

    A grouped convolution's kernel sees only its own part of the input channels, so a pruned
    width must remove the same positions from every part or the kept weights no longer line up.
    """
    counts = [1]
    for dep, _ in group:
        module = dep.target.module
        pruner = graph.get_pruner_of_module(module)
        if pruner is None or getattr(module, "groups", 0) == getattr(module, "out_channels", -1):
            continue
        if graph.is_out_channel_pruning_fn(dep.handler):
            counts.append(int(pruner.get_out_channel_groups(module)))
        elif graph.is_in_channel_pruning_fn(dep.handler):
            counts.append(int(pruner.get_in_channel_groups(module)))
    return max(counts)


def _call_order(model: nn.Module, example_input: Tensor) -> tuple[list[str], dict[str, tuple]]:
    """Names of the conv/linear layers in the order one forward pass calls them, and the shape
    of each one's output without its batch and channel dimensions (its resolution)."""
    order: list[str] = []
    resolution: dict[str, tuple[int, ...]] = {}

    def record(_module, _inputs, output, name):
        order.append(name)
        if isinstance(output, Tensor):
            shape = tuple(output.shape)
            conv = not isinstance(_module, nn.Linear)
            resolution.setdefault(name, shape[2:] if conv else shape[1:-1])

    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: record(m, i, o, name))
        for name, module in model.named_modules()
        if isinstance(module, _PRUNABLE_TYPES)
    ]
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return order, resolution


def _group_layers(graph: tp.DependencyGraph, group, names: dict[nn.Module, str]) -> list[str]:
    return [
        names[dep.target.module]
        for dep, _ in group
        if graph.is_out_channel_pruning_fn(dep.handler)
        and isinstance(dep.target.module, _PRUNABLE_TYPES)
        and dep.target.module in names
    ]


def discover_groups(
    model: nn.Module,
    example_input: Tensor,
    *,
    exclude_input: bool = True,
    exclude_classifier: bool = True,
) -> tuple[list[ChannelGroup], list[ExcludedGroup]]:
    """Finds the prunable channel groups of ``model``.

    The classifier's outputs are the classes and are never pruned; the input conv (the first layer
    the forward pass calls) is excluded by default because it is cheap and sensitive, and with it
    every group its output channels are coupled to.

    Args:
        model: the dense model; it is traced, not changed.
        example_input: one batch of the input the model takes.
        exclude_input: leave the group of the first conv/linear layer unpruned.
        exclude_classifier: leave the last conv/linear layer (the model's output) unpruned.

    Returns:
        The searchable groups and the excluded ones with their reason, both in module order.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(),
        ...                     nn.Conv2d(16, 4, 1))
        >>> groups, excluded = discover_groups(net, torch.randn(1, 3, 8, 8))
        >>> [(g.name, g.width) for g in groups]
        [('2', 16)]
    """
    was_training = model.training
    model.eval()
    try:
        order, resolution = _call_order(model, example_input)
        graph = build_graph(model, example_input)
    finally:
        model.train(was_training)
    if not order:
        return [], []
    names = {module: name for name, module in model.named_modules()}
    position = {name: i for i, name in enumerate(names.values())}
    reasons = {}
    if exclude_classifier:
        reasons[order[-1]] = "classifier: its outputs are the classes"
    if exclude_input:
        reasons.setdefault(order[0], "input layer: excluded by default (cheap and sensitive)")

    groups: list[ChannelGroup] = []
    excluded: list[ExcludedGroup] = []
    seen: set[str] = set()
    for group in graph.get_all_groups(root_module_types=_PRUNABLE_TYPES):
        layers = sorted(set(_group_layers(graph, group, names)), key=position.__getitem__)
        if not layers or layers[0] in seen:
            continue
        seen.update(layers)
        root = group[0][0]
        width = graph.get_pruner_of_module(root.target.module).get_out_channels(root.target.module)
        blocked = [reasons[layer] + f" ({layer})" for layer in layers if layer in reasons]
        if blocked:
            excluded.append(ExcludedGroup(layers[0], width, tuple(layers), "; ".join(blocked)))
        else:
            attention = attention_of(model, layers[0])
            head_size = width // attention.num_heads if attention is not None else 0
            groups.append(ChannelGroup(layers[0], width, tuple(layers),
                                       tuple(resolution.get(layers[0], ())),
                                       channel_groups(graph, group), head_size))
    groups.sort(key=lambda g: position[g.name])
    excluded.sort(key=lambda g: position[g.name])
    return groups, excluded


def unhandled_parts(model: nn.Module, example_input: Tensor) -> dict[str, list[dict]]:
    """What torch-pruning sees in ``model`` beyond ordinary layers: free parameters (an
    ``nn.Parameter`` used directly in ``forward``, such as a layer scale or a class token), which
    it prunes along the dimension it detected, and modules that hold parameters but have no
    pruner, whose channels it cannot follow."""
    was_training = model.training
    model.eval()
    try:
        graph = build_graph(model, example_input)
    finally:
        model.train(was_training)
    names = {id(p): name for name, p in model.named_parameters()}
    free = [{"name": names.get(id(u.parameters), "?"), "shape": list(u.parameters.shape),
             "pruned_along": u.pruning_dim} for u in graph.unwrapped_parameters]
    unsupported = [{"name": name, "type": type(module).__name__}
                   for name, module in model.named_modules()
                   if any(True for _ in module.parameters(recurse=False))
                   and graph.get_pruner_of_module(module) is None]
    return {"free_parameters": free, "unsupported_modules": unsupported}
