"""Dense training, the quick fine-tune of a candidate, and accuracy.

The quick fine-tune is what lets a search score hundreds of candidates: batch-norm statistics are
re-estimated on training batches first (pruning changes every layer's input distribution, and
stale statistics alone can cost most of the accuracy), then a few SGD steps adapt the weights.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search._progress import report
from search.sources import DataSplits, Split

log = logging.getLogger(__name__)


class TrialTimeLimit(RuntimeError):
    """A candidate still working past ``--trial-timeout``."""


@dataclass(frozen=True)
class Recipe:
    """How candidates and the dense baseline are trained.

    Attributes:
        batch_size: training batch size (not the latency batch size).
        finetune_steps: SGD steps of a candidate's quick fine-tune (``--finetune-steps``).
        promote_steps: SGD steps more for a candidate the quick fine-tune puts near the front
            (``--promote-steps``; 0: none).
        promote_margin: how much better (in the score's units) an earlier candidate at most as
            slow must have scored after its quick fine-tune to keep a candidate from the second
            (``--promote-margin``); never less than one validation image.
        distill: whether candidates' fine-tunes learn the dense model's outputs too
            (``--distill``; :func:`distillation_loss`); the caller passes the dense model.
        finetune_lr: peak learning rate of the fine-tune (cosine to zero).
        bn_batches: training batches whose statistics replace a candidate's batch-norm statistics.
        dense_epochs: epochs of the dense baseline when no checkpoint is given.
        dense_lr: peak learning rate of the dense baseline (one-cycle).
        loss_fn: ``loss_fn(outputs, targets) -> Tensor`` the fine-tunes minimise; None:
            cross-entropy.
        score_fn: ``score_fn(outputs, targets) -> float``, higher is better, over the whole
            validation (or test) split: what a candidate is scored by. None: top-1 accuracy.
    """

    batch_size: int = 64
    finetune_steps: int = 10
    promote_steps: int = 40
    promote_margin: float = 0.02
    distill: bool = False
    finetune_lr: float = 0.02
    bn_batches: int = 8
    dense_epochs: int = 10
    dense_lr: float = 0.1
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None
    score_fn: Callable[[Tensor, Tensor], float] | None = None


def accuracy(model: nn.Module, data: Split, batch_size: int = 256) -> float:
    """Top-1 accuracy in [0, 1] over a split (held or streamed).

    Example:
        >>> from search.sources import TensorSplit
        >>> net = nn.Linear(4, 3)
        >>> accuracy(net, TensorSplit(torch.zeros(5, 4), torch.zeros(5, dtype=torch.long)))
        1.0
    """
    model.eval()
    correct = 0
    with torch.inference_mode():
        for x, y in data.batches(batch_size):
            correct += int((model(x).argmax(1) == y).sum())
    return correct / len(data)


def score(model: nn.Module, data: Split, recipe: Recipe, batch_size: int = 256) -> float:
    """What a model is scored by: ``recipe.score_fn`` on its outputs for the whole split, else
    top-1 accuracy.

    Example:
        >>> from search.sources import TensorSplit
        >>> net = nn.Linear(4, 3)
        >>> split = TensorSplit(torch.zeros(5, 4), torch.zeros(5, dtype=torch.long))
        >>> score(net, split, Recipe(score_fn=lambda out, t: -float(out.abs().sum()))) <= 0
        True
    """
    if recipe.score_fn is None:
        return accuracy(model, data, batch_size)
    model.eval()
    outputs, targets = [], []
    with torch.inference_mode():
        for x, y in data.batches(batch_size):
            outputs.append(model(x))
            targets.append(y)
    return float(recipe.score_fn(torch.cat(outputs), torch.cat(targets)))


def _check(deadline: float | None) -> None:
    if deadline is not None and time.perf_counter() > deadline:
        raise TrialTimeLimit("still fine-tuning at --trial-timeout")


def distillation_loss(logits: Tensor, teacher_logits: Tensor, y: Tensor,
                      temperature: float = 4.0,
                      hard: Callable[[Tensor, Tensor], Tensor] | None = None) -> Tensor:
    """Cross-entropy (or ``hard``, the run's loss) plus Hinton's soft-target term: KL divergence
    from the teacher's softened outputs, scaled by T^2 so that its gradients keep their size as
    T changes."""
    soft = F.kl_div(F.log_softmax(logits / temperature, dim=1),
                    F.log_softmax(teacher_logits / temperature, dim=1), log_target=True,
                    reduction="batchmean")
    return (hard or F.cross_entropy)(logits, y) + temperature ** 2 * soft


def _sgd_steps(model: nn.Module, data: DataSplits, steps: int, lr: float, batch_size: int,
               generator: torch.Generator, schedule: str, deadline: float | None = None,
               teacher: nn.Module | None = None,
               loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
               on_step: Callable[[int, int], None] | None = None) -> None:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4,
                                nesterov=True)
    if schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    batches = data.train.shuffled(batch_size, generator)
    for step in range(steps):
        _check(deadline)
        x, y = next(batches)
        if teacher is None:
            loss = (loss_fn or F.cross_entropy)(model(x), y)
        else:
            with torch.no_grad():
                target = teacher(x)
            loss = distillation_loss(model(x), target, y, hard=loss_fn)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if on_step is not None:
            on_step(step + 1, steps)
    model.eval()


def train_dense(model: nn.Module, data: DataSplits, recipe: Recipe, seed: int) -> None:
    """Trains the dense baseline in place (one-cycle SGD)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    steps = recipe.dense_epochs * max(1, math.floor(len(data.train) / recipe.batch_size))
    every = max(1, steps // 20)  # a bar moves in 5% steps; a plain log gets 20 lines

    def on_step(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            report(log, "dense training", done, total, epoch=1 + (done - 1) * recipe.dense_epochs
                   // total)

    _sgd_steps(model, data, steps, recipe.dense_lr, recipe.batch_size, generator, "onecycle",
               loss_fn=recipe.loss_fn, on_step=on_step)


# The batch norms with running statistics (torch's own base class for them is private).
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def recalibrate_bn(model: nn.Module, data: DataSplits, batches: int, batch_size: int,
                   generator: torch.Generator) -> None:
    """Replaces every batch norm's running statistics with those of ``batches`` training batches."""
    norms = [m for m in model.modules() if isinstance(m, _BATCH_NORMS) and m.track_running_stats]
    if not norms or batches < 1:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    model.train()
    stream = data.train.shuffled(batch_size, generator)
    with torch.no_grad():
        for _ in range(batches):
            model(next(stream)[0])
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def finetune(model: nn.Module, data: DataSplits, recipe: Recipe, seed: int,
             deadline: float | None = None, teacher: nn.Module | None = None) -> None:
    """The quick fine-tune of a pruned candidate, in place: BN recalibration, then N steps;
    with a ``teacher`` (the dense model, in eval mode), the steps learn its outputs too
    (:func:`distillation_loss`).

    Raises TrialTimeLimit between steps once ``time.perf_counter()`` passes ``deadline``."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    _check(deadline)
    recalibrate_bn(model, data, recipe.bn_batches, recipe.batch_size, generator)
    if recipe.finetune_steps > 0:
        _sgd_steps(model, data, recipe.finetune_steps, recipe.finetune_lr, recipe.batch_size,
                   generator, "cosine", deadline, teacher, recipe.loss_fn)
