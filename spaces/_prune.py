"""Turning an allocation into a structurally pruned model, and rebuilding one from its description.

Pruning removes whole channels with torch-pruning (weights, batch-norm entries and the inputs of
the layers that consume them), so the result is a smaller ordinary ``nn.Module`` that runs at the
speed of its shape, not a masked dense model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import Tensor, nn

from spaces._groups import attention_of, build_graph, channel_groups
from spaces._space import SearchSpace

IMPORTANCES = ("l2", "l1", "bn", "taylor", "random")
"""Channel importance criteria: L2/L1 magnitude over the whole group, batch-norm scale, first-order
Taylor (|weight x gradient|, from a few training batches), and random (a baseline)."""
SEARCHED_IMPORTANCES = ("l2", "l1", "bn", "taylor")
"""The criteria ``--importance search`` chooses among, per trial (random is only a baseline)."""
_L2 = tp.importance.GroupMagnitudeImportance(p=2)
_CRITERIA = {"l2": _L2, "l1": tp.importance.GroupMagnitudeImportance(p=1),
             "bn": tp.importance.BNScaleImportance(),
             "taylor": tp.importance.GroupTaylorImportance(),
             "random": tp.importance.RandomImportance()}
Batches = Sequence[tuple[Tensor, Tensor]]


def _group_rooted_at(graph: tp.DependencyGraph, module: nn.Module, idxs: list[int]):
    pruner = graph.get_pruner_of_module(module)
    return graph.get_pruning_group(module, pruner.prune_out_channels, idxs)


def _scores(graph: tp.DependencyGraph, group, importance: str, seed: int) -> Tensor:
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # random importance: the same channels every time
        scores = _CRITERIA[importance](group)
        if scores is None:  # no batch norm in the group (bn): fall back to magnitude
            scores = _L2(group)
    return scores


def _least_important(scores: Tensor, count: int) -> list[int]:
    """Indices of the ``count`` lowest ``scores``. A stable sort on (score, index) makes ties,
    such as all-zero channels, break the same way every time, so one allocation always yields
    the same pruned weights."""
    return torch.argsort(scores, stable=True)[:count].tolist()


def _channels_to_remove(graph: tp.DependencyGraph, module: nn.Module, kept: int,
                        importance: str | None, seed: int) -> list[int]:
    width = graph.get_pruner_of_module(module).get_out_channels(module)
    if kept >= width:
        return []
    group = _group_rooted_at(graph, module, list(range(width)))
    parts = channel_groups(graph, group)
    if width % parts or kept % parts:
        raise ValueError(f"{kept} of {width} channels cannot be split evenly over the {parts} "
                         f"groups of a grouped convolution or group norm")
    part, removed = width // parts, (width - kept) // parts
    if importance is None:
        positions = list(range(part - removed, part))
    else:
        # A grouped layer keeps the same positions in every part, chosen by their mean score.
        scores = _scores(graph, group, importance, seed).double().cpu().view(parts, part).mean(0)
        positions = _least_important(scores, removed)
    return sorted(p * part + position for p in range(parts) for position in positions)


def _prune_heads(graph: tp.DependencyGraph, attention: nn.Module, kept: int,
                 importance: str | None, seed: int) -> None:
    """Keeps ``kept`` channels of ``attention.qkv`` as whole heads, the most important ones,
    and lowers ``attention.num_heads`` to match."""
    qkv, heads = attention.qkv, attention.num_heads
    size = qkv.out_features // heads  # q, k and v channels of one head
    if kept >= qkv.out_features:
        return
    if kept % size:
        raise ValueError(f"{kept} of {qkv.out_features} channels is not a whole number of "
                         f"attention heads ({heads} heads of {size} q/k/v channels)")
    # Heads are indexed on the input of the layer after attention (torch-pruning maps them to
    # the q, k and v parts of qkv), as torch-pruning's own head pruning does.
    group = _group_rooted_at(graph, qkv, list(range(qkv.out_features)))
    proj = next((dep.target.module for dep, _ in group
                 if graph.is_in_channel_pruning_fn(dep.handler)
                 and isinstance(dep.target.module, nn.Linear)), None)
    if proj is None:
        raise ValueError("no linear layer reads the attention's heads; cannot prune them")
    pruner = graph.get_pruner_of_module(proj)
    inner = pruner.get_in_channels(proj)
    head_dim, removed = inner // heads, heads - kept // size
    if importance is None:
        dropped = list(range(heads - removed, heads))
    else:
        per_channel = _scores(graph, graph.get_pruning_group(proj, pruner.prune_in_channels,
                                                             list(range(inner))), importance, seed)
        per_head = per_channel.double().cpu().view(heads, head_dim).mean(1)
        dropped = _least_important(per_head, removed)
    idxs = sorted(h * head_dim + j for h in dropped for j in range(head_dim))
    graph.get_pruning_group(proj, pruner.prune_in_channels, idxs).prune()
    attention.num_heads = heads - removed
    if getattr(attention, "attn_dim", None) == inner:  # timm reshapes the heads back by it
        attention.attn_dim = attention.num_heads * head_dim


def _gradients(model: nn.Module, batches: Batches) -> None:
    """Accumulates the loss gradient of ``batches`` in ``model``'s parameters (for Taylor)."""
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        for x, y in batches:
            F.cross_entropy(model(x), y).backward()


def _apply(model: nn.Module, example_input: Tensor, allocation: Mapping[str, int],
           importance: str | None, batches: Batches | None = None) -> nn.Module:
    pruned = copy.deepcopy(model).eval()
    if importance == "taylor":
        if not batches:
            raise ValueError("Taylor importance needs training batches for its gradients")
        _gradients(pruned, batches)
    graph = build_graph(pruned, example_input)
    for i, (name, kept) in enumerate(allocation.items()):
        attention = attention_of(pruned, name)
        if attention is not None:
            _prune_heads(graph, attention, kept, importance, seed=i)
            continue
        module = pruned.get_submodule(name)
        idxs = _channels_to_remove(graph, module, kept, importance, seed=i)
        if idxs:
            _group_rooted_at(graph, module, idxs).prune()
    for param in pruned.parameters():
        param.grad = None
    return pruned


def prune(model: nn.Module, example_input: Tensor, allocation: Mapping[str, int], *,
          importance: str = "l2", batches: Batches | None = None) -> nn.Module:
    """A structurally pruned copy of ``model`` keeping ``allocation[group]`` channels per group.

    The channels kept are the most important over the whole group by ``importance`` (one of
    :data:`IMPORTANCES`; ``taylor`` needs ``batches`` of training data); ``model`` itself is not
    changed.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 4, 1))
        >>> prune(net, torch.randn(1, 3, 8, 8), {"0": 8})[0].out_channels
        8
    """
    if importance not in IMPORTANCES:
        raise ValueError(f"unknown importance {importance!r}; valid: {', '.join(IMPORTANCES)}")
    return _apply(model, example_input, allocation, importance, batches)


def rebuild(model: nn.Module, example_input: Tensor, allocation: Mapping[str, int],
            state_dict: Mapping[str, Tensor]) -> nn.Module:
    """The pruned architecture of ``allocation`` on ``model``, with ``state_dict`` loaded into it.

    Which channels were kept does not matter here, only how many: the weights come from
    ``state_dict``, so the first channels are kept and then overwritten (strictly, every key).
    """
    pruned = _apply(model, example_input, allocation, importance=None)
    pruned.load_state_dict(state_dict, strict=True)
    return pruned.eval()


def layer_widths(model: nn.Module, layers: Mapping[str, object]) -> dict[str, int]:
    """Output channels of the named conv/linear layers of ``model`` (e.g. to check an allocation)."""
    widths = {}
    for name in layers:
        module = model.get_submodule(name)
        widths[name] = module.out_channels if hasattr(module, "out_channels") else module.out_features
    return widths


def breaking_widths(model: nn.Module, example_input: Tensor,
                    space: SearchSpace) -> dict[str, tuple[list[int], str]]:
    """Widths at which pruning a group breaks the model (torch-pruning cannot follow an op on
    its channels, a grouped convolution no longer divides, the forward pass fails or changes its
    output shape): for each such group, the widths that still work and the first reason.

    The space's smallest candidate is tried first, so a model that prunes cleanly costs one
    pruning. When it breaks, the groups that break it are found by halving: each half of the
    groups is pruned to its smallest widths with the rest dense, and only a half that breaks is
    split again. k breaking groups among n cost about 2k·log2(n) prunings instead of one per group
    and width. Only those groups are then tried alone at each of their other widths; a group with
    no working pruned width gets an empty list (keep it dense). A group that works at its smallest
    width is taken to work at the others, and a break that needs several groups pruned together
    is not attributed to any: trials that hit either are recorded as failed.
    """
    with torch.no_grad():
        shape = model.eval()(example_input).shape

    def failure(allocation: Mapping[str, int]) -> str | None:
        try:
            pruned = prune(model, example_input, allocation)
            with torch.no_grad():
                got = pruned(example_input).shape
        except Exception as exc:  # any op of a user's model may fail once its widths change
            return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return None if got == shape else f"the output shape changes from {tuple(shape)} to {tuple(got)}"

    dense, smallest = space.dense(), space.smallest()

    def culprits(groups: Sequence, why: str) -> dict[str, str]:
        """Which of ``groups`` break the model on their own, given that together they do."""
        if len(groups) == 1:
            return {groups[0].name: why}
        found = {}
        for part in (groups[:len(groups) // 2], groups[len(groups) // 2:]):
            reason = failure({**dense, **{g.name: smallest[g.name] for g in part}})
            if reason is not None:
                found |= culprits(part, reason)
        return found

    why = failure(smallest) if space.searchable else None
    if why is None:
        return {}
    found = {}
    for name, reason in culprits(space.searchable, why).items():
        widths = space.widths(next(g for g in space.searchable if g.name == name))
        working = [w for w in widths[1:-1] if failure({**dense, name: w}) is None]
        found[name] = (working, reason)
    return found
