"""The search space of a run: the model's groups, ``--space`` (a kind or a spaces file), and what
a probe finds that cannot be pruned: groups that break at every pruned width stay dense and are
reported; widths at which a group breaks are left out of its choices."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch
from torch import nn

from search._errors import UsageError
from search._guards import (
    MemoryLimitReached,
    TimeLimitReached,
    memory_ceiling,
    memory_limit,
    time_limit,
)
from search._registry import Entry, Registry
from spaces import (
    KINDS,
    SEARCHED_IMPORTANCES,
    ExcludedGroup,
    GroupChoices,
    SearchSpace,
    breaking_widths,
    discover_groups,
    prune,
    read_space_file,
)

log = logging.getLogger(__name__)

# How long torch-pruning may take to build a model's dependency graph (it takes hours on a few).
TRACE_TIMEOUT_S = 300.0
# And how much of the memory available when it starts (it can fill any machine on a few: the
# out-of-memory killer would end the run with no word said).
TRACE_MEMORY_SHARE = 0.8

# --space: a kind of the spaces package, or a spaces file.
SPACE_FILE = "PATH.toml"
SPACES: Registry[Entry] = Registry(
    "--space", {kind: Entry(phrase) for kind, phrase in KINDS.items()},
    forms=(f"a spaces file {SPACE_FILE}",), describe=lambda kind, entry: f"{kind} ({entry.help})",
    joiner=", ")
# --importance: which channels a group keeps (the spaces package's criteria), or a dimension.
IMPORTANCE_CHOICES: Registry[Entry] = Registry("--importance", {
    "l2": Entry("the largest by L2 magnitude"), "l1": Entry("by L1 magnitude"),
    "bn": Entry("by batch-norm scale"),
    "taylor": Entry("by first-order Taylor score (gradients of 2 training batches)"),
    "random": Entry("at random (a baseline)"),
    "search": Entry(f"the sampler chooses among {', '.join(SEARCHED_IMPORTANCES)} per trial")})


def check_space(space: str) -> None:
    """UsageError unless ``space`` is a kind or a spaces file."""
    if not space.endswith(".toml"):
        SPACES.lookup(space)


@dataclass(frozen=True)
class BuiltSpace:
    """The space, and every group left out of it with the reason (module order)."""

    space: SearchSpace
    left_dense: tuple[ExcludedGroup, ...]
    notes: tuple[str, ...] = ()  # what the probe left out, for the report


def build_space(model: nn.Module, example: torch.Tensor, *, model_name: str, space: str,
                round_to: int, probe: bool = True,
                trace_timeout: float = TRACE_TIMEOUT_S,
                trace_memory: int | None = None) -> BuiltSpace:
    """The space ``--space`` describes on ``model``; UsageError (exit 2) for a model that
    cannot be traced (or whose dependency graph takes over ``trace_timeout`` seconds, 0: no
    limit, or grows this process past ``trace_memory`` resident bytes, by default its memory
    now plus TRACE_MEMORY_SHARE of what the machine has available; the probe too), a bad spaces
    file, or nothing left to prune.

    With ``probe``, groups whose pruning breaks the model are kept dense and reported instead of
    failing every trial that touches them.
    """
    if trace_memory is None:
        trace_memory = memory_ceiling(TRACE_MEMORY_SHARE)
    try:
        with time_limit(trace_timeout), memory_limit(trace_memory):
            groups, excluded = discover_groups(model, example[:1])
    except MemoryLimitReached as reached:
        # torchvision's Swin and MaxViT (shown on Swin-T: torch-pruning's get_all_groups expands
        # channel indices through its reshapes); better one line than the out-of-memory killer.
        raise _out_of_memory(model_name, "torch-pruning's dependency graph", reached) from None
    except TimeLimitReached:
        if not trace_timeout:  # a caller's own time limit, not ours
            raise
        # torch-pruning's grouping can take hours on some models (RexNet; VainF/Torch-Pruning
        # issues 474 and 527): better one line now than a search that never starts.
        raise UsageError(f"--model {model_name}: torch-pruning did not finish its dependency "
                         f"graph in --trace-timeout {trace_timeout:g} s (it can take hours on "
                         f"some models); give it longer, or prune another model") from None
    except Exception as exc:  # tracing a user's model can fail in any way; say which model
        raise UsageError(f"--model {model_name}: cannot trace it for pruning "
                         f"({type(exc).__name__}: {exc})".splitlines()[0]) from None
    kind, fractions, own = space, None, {}
    notes: list[str] = []
    if space.endswith(".toml"):
        try:
            file = read_space_file(space)
            own = file.choices(groups)
        except ValueError as exc:
            raise UsageError(f"--space {exc}") from None
        kind, fractions = file.kind, file.fractions
    options = {"fractions": fractions} if fractions else {}
    built = SearchSpace(tuple(groups), round_to=round_to, kind=kind, own=own, **options)
    if probe:
        try:
            with memory_limit(trace_memory):
                broken = breaking_widths(model, example[:1], built)
        except MemoryLimitReached as reached:
            raise _out_of_memory(model_name, "pruning it to check which widths work",
                                 reached) from None
        probed = {}
        for group in built.searchable:
            if group.name not in broken:
                continue
            working, reason = broken[group.name]
            if working:
                probed[group.name] = GroupChoices(widths=(*working, built.widths(group)[-1]))
                left_out = sorted(set(built.widths(group)[:-1]) - set(working))
                notes.append(f"group {group.name}: widths {left_out} left out, pruning to them "
                             f"breaks the model ({reason})")
            else:
                probed[group.name] = GroupChoices(exclude=f"pruning it breaks the model ({reason})")
                notes.append(f"group {group.name} left dense: pruning it breaks the model "
                             f"({reason})")
        built = replace(built, own={**own, **probed})
    left = [ExcludedGroup(g.name, g.width, g.layers, built.excluded[g.name])
            for g in groups if g.name in built.excluded]
    order = {module: i for i, module in enumerate(name for name, _ in model.named_modules())}
    left_dense = tuple(sorted([*excluded, *left], key=lambda g: order[g.name]))
    if not built.searchable:
        raise UsageError(f"--model {model_name} has no channel group that can be pruned with "
                         f"--round-to {round_to} and --space {space}; nothing to search "
                         f"(python -m search inspect --model {model_name} shows why)")
    for note in notes:
        log.warning("%s", note)
    log.info("space %s: %d dimensions over %d prunable channel groups (%d left dense: %s)",
             kind, len(built.dimensions), len(built.searchable), len(left_dense),
             ", ".join(g.name for g in left_dense))
    return BuiltSpace(built, left_dense, tuple(notes))


def _out_of_memory(model_name: str, step: str, reached: MemoryLimitReached) -> UsageError:
    return UsageError(f"--model {model_name}: {step} grew this process to "
                      f"{reached.rss / 2**30:.1f} GB without finishing, and was stopped before "
                      f"the machine ran out of memory; prune another model, or use a machine "
                      f"with more memory")


def smallest_model(model: nn.Module, example: torch.Tensor, space: SearchSpace) -> nn.Module | None:
    """The smallest candidate, checked to run; None (with a warning) when it cannot."""
    try:
        smallest = prune(model, example[:1], space.smallest())
        with torch.inference_mode():
            smallest(example[:1])
        return smallest
    except Exception as exc:  # some widths may break a user's model; trials will record that
        log.warning("the smallest candidate fails (%s: %s); the budget is not checked up front",
                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return None
