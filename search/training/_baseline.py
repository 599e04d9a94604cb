"""The trained dense model a search starts from: the user's checkpoint, else a baseline trained
once and cached under ``RESULTS/baselines/`` by what it was trained from."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from pathlib import Path

import torch
from torch import nn

from search.runfolder import atomic_write_bytes, save_state
from search.sources import DataSplits, build_model, load_checkpoint
from search.training._train import Recipe, train_dense

log = logging.getLogger(__name__)


def example_input(data: DataSplits, batch_size: int) -> torch.Tensor:
    """A batch of ``batch_size`` validation images (repeated when there are fewer): the input
    latency is measured with."""
    images = data.val.inputs(batch_size)
    repeats = -(-batch_size // len(images))
    return images.repeat(repeats, 1, 1, 1)[:batch_size].clone()


def dense_model(*, model: str, data_name: str, data: DataSplits, image_size: int | None,
                seed: int, recipe: Recipe, checkpoint: str | None = None,
                results_dir: str | Path = "results") -> nn.Module:
    """The trained dense model in eval mode: ``checkpoint`` loaded, else a baseline trained
    (``recipe.dense_epochs``) and cached in ``results_dir/baselines``, keyed by everything it was
    trained from, so a later run with the same inputs loads it.

    Example:
        >>> from search.sources import digits
        >>> dense = dense_model(model="resnet20", data_name="digits",  # doctest: +SKIP
        ...                     data=digits(image_size=16), image_size=16, seed=0, recipe=Recipe())
    """
    torch.manual_seed(seed)  # the initial weights too, so a seed reproduces the baseline
    net = build_model(model, data.num_classes)
    if checkpoint:
        load_checkpoint(net, checkpoint)
        return net.eval()
    key = json.dumps([model, data_name, image_size, seed, recipe.dense_epochs, recipe.dense_lr,
                      recipe.batch_size])
    stem = re.sub(r"[^\w.-]+", "_", f"{model}-{data_name}-{image_size}px")
    path = Path(results_dir) / "baselines" / (
        f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}.pt")
    if path.exists():
        try:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            log.info("dense baseline: loaded %s", path)
            return net.eval()
        except Exception as exc:  # a damaged cache file is only a cache: train again
            log.warning("dense baseline %s is damaged (%s): training it again", path,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    log.info("dense baseline: training %s for %d epochs (cached for later runs)...", model,
             recipe.dense_epochs)
    began = time.perf_counter()
    train_dense(net, data, recipe, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda p: save_state(net, p))
    log.info("dense baseline: trained in %.0f s, saved %s", time.perf_counter() - began, path)
    return net.eval()
