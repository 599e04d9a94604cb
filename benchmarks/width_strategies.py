"""The published ways of choosing per-group widths that ``search_quality.py`` compares our search
with, and the set-up they share (the trained dense model, its space, the data).

Each chooser returns the candidates (per-group keep fractions on the space's grid) its method would
evaluate; the benchmark runs every one of them through the same search code. NetAdapt is greedy,
so this holds only its proposals; the loop that evaluates them is the benchmark's.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch_pruning as tp

from profilers import count_cost
from search import SearchConfig
from search.candidates import build_space
from search.flow import dense_model_for
from search.runfolder import save_state
from search.sources import build_model, load_data
from search.training import Recipe, accuracy, example_input, recalibrate_bn
from spaces import SearchSpace, prune

BASELINES = Path(__file__).parent / "data" / "baselines"  # dense baselines kept between runs


@dataclass
class Setup:
    """What the strategies that look at the model need: the trained dense model and its space."""

    config: SearchConfig
    dense: torch.nn.Module
    space: SearchSpace
    example: torch.Tensor
    data: object
    recipe: Recipe
    eagleeye_pool: int = 10  # EagleEye's candidates scored by adaptive BN, per evaluation


def setup_for(config: SearchConfig, baselines: Path | None = None,
              dense_epochs: int | None = None) -> Setup:
    """Loads the data, trains (or loads) the dense model, builds its space. With
    ``dense_epochs`` (quick runs), the dense model is trained for that many epochs and handed to
    every search as its ``--checkpoint`` (the search's own baseline trains for its default)."""
    if baselines:  # the search caches its baseline in results/baselines: make that one lasting
        baselines.mkdir(parents=True, exist_ok=True)
        Path(config.results_dir).mkdir(parents=True, exist_ok=True)
        (Path(config.results_dir) / "baselines").symlink_to(baselines.resolve())
    data = load_data(config.data, image_size=config.image_size, seed=config.seed)
    example = example_input(data, config.batch_size)  # the deployment's batch, for latency
    recipe = Recipe(finetune_steps=config.finetune_steps, promote_steps=config.promote_steps)
    if dense_epochs is not None and not config.checkpoint:
        dense = dense_model_for(config, data, replace(recipe, dense_epochs=dense_epochs))
        checkpoint = Path(config.results_dir) / f"dense-{dense_epochs}-epochs.pt"
        save_state(dense, checkpoint)
        config = replace(config, checkpoint=str(checkpoint))
    else:
        dense = dense_model_for(config, data, recipe)
    space = build_space(build_model(config.model, data.num_classes).eval(), example,
                        model_name=config.model, space=config.space,
                        round_to=config.round_to).space
    return Setup(config, dense, space, example, data, recipe)


def _fractions_of(setup: Setup, model: torch.nn.Module) -> dict[str, float]:
    """A pruned model's kept share per group (its root layer's output channels), on the grid."""
    modules = dict(model.named_modules())
    return {g.name: min(setup.space.fractions,
                        key=lambda f, g=g: abs(f - modules[g.name].out_channels / g.width))
            for g in setup.space.searchable}


def _distinct(candidates: list[dict[str, float]]) -> list[dict[str, float]]:
    seen, kept = set(), []
    for fractions in candidates:
        key = json.dumps(fractions, sort_keys=True)
        if key not in seen and any(f < 1.0 for f in fractions.values()):
            seen.add(key)
            kept.append(fractions)
    return kept


def uniform(setup: Setup, n: int) -> list[dict[str, float]]:
    grid = [f for f in setup.space.fractions if f < 1.0]
    return [{g.name: f for g in setup.space.searchable} for f in grid][:n]


def tp_global(setup: Setup, n: int) -> list[dict[str, float]]:
    ratios = [0.1 + 0.8 * i / max(1, n - 1) for i in range(n)]
    searchable = {layer for g in setup.space.searchable for layer in g.layers}
    candidates = []
    for ratio in ratios:
        model = copy.deepcopy(setup.dense).eval()
        ignored = [m for name, m in model.named_modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and name not in searchable]
        pruner = tp.pruner.MagnitudePruner(
            model, setup.example[:1], importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=ratio, global_pruning=True, ignored_layers=ignored,
            round_to=setup.space.round_to)
        pruner.step()
        candidates.append(_fractions_of(setup, model))
    return _distinct(candidates)[:n]


def adaptive_bn_accuracy(setup: Setup, model: torch.nn.Module, seed: int) -> float:
    """EagleEye's proxy: validation accuracy after re-estimating batch-norm statistics."""
    recalibrate_bn(model, setup.data, setup.recipe.bn_batches, setup.recipe.batch_size,
                   torch.Generator().manual_seed(seed))
    return accuracy(model, setup.data.val)


def eagleeye(setup: Setup, n: int) -> list[dict[str, float]]:
    rng = random.Random(setup.config.seed)
    pool = _distinct([{g.name: rng.choice(setup.space.fractions) for g in setup.space.searchable}
                      for _ in range(setup.eagleeye_pool * n)])
    scored = []
    for i, fractions in enumerate(pool):
        model = prune(setup.dense, setup.example[:1], setup.space.allocation(fractions))
        macs = count_cost(model, setup.example[:1]).macs
        scored.append((macs, adaptive_bn_accuracy(setup, model, seed=i), fractions))
    chosen, rest = [], scored
    while rest and len(chosen) < n:  # non-dominated sorting: the best layer first
        front = [s for s in rest if not any(o[0] <= s[0] and o[1] >= s[1] and o != s
                                            for o in rest)]
        front.sort(key=lambda s: s[0])
        room = n - len(chosen)
        step = max(1, len(front) / room) if len(front) > room else 1
        chosen += [front[int(i * step)][2] for i in range(min(room, len(front)))]
        rest = [s for s in rest if s not in front]
    return chosen


def netadapt_proposals(setup: Setup, current: dict[str, float],
                       target: float) -> list[dict[str, float]]:
    """For every group, the smallest cut of that group alone that removes ``target`` of the
    current MACs (or the group's smallest width when it cannot)."""
    def macs(fractions: dict[str, float]) -> int:
        return count_cost(prune(setup.dense, setup.example[:1], setup.space.allocation(fractions)),
                          setup.example[:1]).macs

    now = macs(current)
    proposals = []
    for group in setup.space.searchable:
        smaller = [f for f in setup.space.fractions if f < current[group.name]]
        for fraction in sorted(smaller, reverse=True):
            proposal = {**current, group.name: fraction}
            if macs(proposal) <= (1 - target) * now or fraction == smaller[0]:
                proposals.append(proposal)
                break
    return proposals
