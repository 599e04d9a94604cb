"""Every torchvision classification model (or, with --timm, one model of each timm family)
through the search's space, pruning and rebuild.

For each model (random weights, 10 classes): find its channel groups and probe them as a search
does, prune its smallest candidate and its uniform 0.5 candidate, check each still runs and keeps
its output shape, and rebuild each from its widths and state dict with identical outputs. Prints
one row per model: prunable groups, groups left dense by the probe (the part torch-pruning cannot
handle), the smallest candidate's share of MACs, and the time taken.

    python benchmarks/torchvision_sweep.py [--models resnet18 ...] [--max-params 100e6]
        [--out benchmarks/results/torchvision_sweep-DATE.txt]
    python benchmarks/torchvision_sweep.py --timm [--models vit_tiny_patch16_224 ...]
        [--model-timeout 900]

Needs torchvision (pip install 'hwprune[vision]'). On a CPU-only machine there is no CPU build of
torchvision in the registry: torch 2.14 + torchvision 0.29 (the CUDA wheels) run on CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profilers import count_cost  # noqa: E402
from search import TimeLimitReached, UsageError, time_limit  # noqa: E402
from search.candidates import build_space  # noqa: E402
from spaces import convert_attention, prune, rebuild  # noqa: E402

# Models that only take one input size (fixed position embeddings or window grids); left out by
# default, see --with-fixed-224.
_FIXED_224 = ("vit_", "swin", "maxvit")


def input_size(name: str) -> int:
    """The smallest input a model takes here: 224 for fixed-size transformers, else 64 (75+ for
    Inception v3, whose stem needs it)."""
    if name.startswith(_FIXED_224):
        return 224
    return 96 if name == "inception_v3" else 64


# One small model of each timm family (timm has ~1,200 names, most of them sizes of these).
TIMM_FAMILIES = (
    "resnet18", "resnet50d", "seresnet50", "resnext50_32x4d", "res2net50_14w_8s", "skresnet18",
    "resnest14d", "regnetx_002", "regnety_008", "cspresnet50", "dla34", "dpn68", "densenet121",
    "hrnet_w18_small", "inception_v3", "xception41", "repvgg_a0", "rexnet_100", "ghostnet_100",
    "efficientnet_b0", "tinynet_a", "mnasnet_100", "fbnetc_100", "lcnet_050",
    "mobilenetv3_large_100", "mobilenetv4_conv_small", "hgnet_tiny", "convnext_atto",
    "convnextv2_atto", "edgenext_xx_small", "poolformer_s12", "vit_tiny_patch16_224",
    "deit_tiny_patch16_224", "deit3_small_patch16_224", "cait_xxs24_224", "pit_ti_224",
    "levit_128s", "mobilevit_xxs", "efficientformer_l1", "fastvit_t8", "efficientvit_b0",
    "tiny_vit_5m_224", "swin_tiny_patch4_window7_224", "mixer_s16_224", "resmlp_12_224",
    "gmlp_ti16_224", "nf_resnet26",
)


def classification_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _torchvision_model(name: str) -> tuple[torch.nn.Module, int]:
    import torchvision

    extra = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}
    return torchvision.models.get_model(name, weights=None, num_classes=10, **extra), input_size(name)


def _timm_model(name: str) -> tuple[torch.nn.Module, int]:
    """A timm model at 64 px (96 for Inception v3) where it takes an image size, else at its own
    default size."""
    import timm

    size = 96 if name == "inception_v3" else 64
    try:
        return timm.create_model(name, pretrained=False, num_classes=10, img_size=size), size
    except TypeError:  # a convnet: no img_size argument, takes any size
        model = timm.create_model(name, pretrained=False, num_classes=10)
        fixed = getattr(model, "default_cfg", {}).get("fixed_input_size", False)
        return model, model.default_cfg["input_size"][-1] if fixed else size


def check(name: str, max_params: float = 100e6, zoo: str = "torchvision",
          timeout: float = 0) -> dict[str, object]:
    """Space, probe, prune and rebuild of one torchvision (or timm) model, stopped after
    ``timeout`` seconds (0: never); what happened, as a row."""
    began = time.perf_counter()
    try:
        with time_limit(timeout):
            return _check(name, max_params, zoo, began)
    except TimeLimitReached:
        return {"model": name, "status": "timed out",
                "detail": f"still running after --model-timeout {timeout:g} s",
                "seconds": time.perf_counter() - began}


def _check(name: str, max_params: float, zoo: str, began: float) -> dict[str, object]:
    torch.manual_seed(0)
    try:
        model, size = (_timm_model if zoo == "timm" else _torchvision_model)(name)
    except Exception as exc:  # a model this version cannot build at this size
        return {"model": name, "status": "not built", "detail": f"{type(exc).__name__}: {exc}"
                .splitlines()[0][:200], "seconds": time.perf_counter() - began}
    converted = convert_attention(model)  # as the search builds it: torch's attention, heads searched
    model.eval()
    x = torch.randn(2, 3, size, size)
    params = sum(p.numel() for p in model.parameters())
    row: dict[str, object] = {"model": name, "input": size, "params_M": params / 1e6,
                              "heads_converted": len(converted)}
    if params > max_params:
        return {**row, "status": "skipped (size)", "seconds": time.perf_counter() - began}
    try:
        # --model-timeout bounds tracing too (time_limit does not nest).
        built = build_space(model, x, model_name=name, space="per-layer", round_to=8,
                            trace_timeout=0)
    except UsageError as exc:
        return {**row, "status": "no space", "detail": str(exc)[:160],
                "seconds": time.perf_counter() - began}
    space = built.space
    probed = {g: r for g, r in space.excluded.items()}
    row.update(groups=len(space.searchable), left_dense_by_probe=len(probed),
               head_groups=sum(g.head_size > 0 for g in space.searchable),
               detail="; ".join(f"{g}: {r}" for g, r in list(probed.items())[:2])[:200])
    dense_macs = count_cost(model, x[:1]).macs
    try:
        for label, allocation in (("smallest", space.smallest()), ("half", space.uniform(0.5))):
            pruned = prune(model, x[:1], allocation)
            with torch.no_grad():
                out = pruned(x)
            if out.shape != (2, 10):
                raise RuntimeError(f"{label}: output shape {tuple(out.shape)}")
            rebuilt = rebuild(model, x[:1], allocation, pruned.state_dict())
            with torch.no_grad():
                if not torch.equal(rebuilt(x), out):
                    raise RuntimeError(f"{label}: the rebuilt model's outputs differ")
            if label == "smallest":
                row["smallest_macs_share"] = count_cost(pruned, x[:1]).macs / dense_macs
    except Exception as exc:  # report any model that fails here, then go on with the next
        row.update(status="fails", detail=f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
    else:
        row["status"] = "partly unpruned" if probed else "prunes"
    row["seconds"] = time.perf_counter() - began
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="default: every classification model")
    parser.add_argument("--timm", action="store_true",
                        help="timm models (default: one of each family) instead of torchvision")
    parser.add_argument("--max-params", type=float, default=100e6,
                        help="skip models with more parameters (memory and time on small machines)")
    parser.add_argument("--with-fixed-224", action="store_true",
                        help="also the ViT, Swin and MaxViT models (224 px only): tracing "
                             "Swin and MaxViT fills 80%% of the memory (the limit that stops it), "
                             "3.5-8.5 min each on a 24 GB machine")
    parser.add_argument("--model-timeout", type=float, default=900,
                        help="seconds one model may take before its row says 'timed out' and the "
                             "sweep goes on (0: no limit)")
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    zoo = "timm" if args.timm else "torchvision"
    library = __import__(zoo)
    rows = []
    for name in args.models or (TIMM_FAMILIES if args.timm else classification_models()):
        if zoo == "torchvision" and name.startswith(_FIXED_224) and not (
                args.with_fixed_224 or args.models):
            rows.append({"model": name, "status": "skipped (memory)"})
            continue
        rows.append(check(name, args.max_params, zoo, args.model_timeout))
        # Each row as it comes: a run killed on a later model keeps the earlier ones.
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    header = (f"# {zoo} {library.__version__}, torch {torch.__version__}, "
              f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}\n"
              f"# python benchmarks/torchvision_sweep.py {' '.join(argv or sys.argv[1:])}\n")
    text = header + table.to_string(index=False, float_format=lambda v: f"{v:.2f}")
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return table


if __name__ == "__main__":
    main()
