"""How much the deployment context moves latency, and the speed-up pruning buys in each.

For one model, measures the dense model and uniformly pruned copies (keep 0.75/0.5/0.25 of every
searchable group) interleaved, in each runtime and memory format available here: eager,
channels-last, ``torch.compile`` and ONNX Runtime (fp16/bf16 and CUDA graphs too on CUDA). When the
pruned/dense ratios differ between contexts, a search measured in the wrong one picks the wrong
front: that is why the context is part of every measurement.

    python benchmarks/deploy_context.py                       # vgg16_bn at 16 px on CPU
    python benchmarks/deploy_context.py --model resnet20 --image-size 32 --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch

from profilers import Context, compare, fingerprint, resolve_device
from search.sources import build_model
from spaces import SearchSpace, discover_groups, prune

FRACTIONS = (0.75, 0.5, 0.25)


def contexts(device: torch.device, batch: int) -> list[Context]:
    found = [Context(batch), Context(batch, channels_last=True), Context(batch, runtime="compile")]
    if device.type == "cuda":
        found += [Context(batch, precision="fp16"), Context(batch, precision="bf16"),
                  Context(batch, precision="fp16", channels_last=True),
                  Context(batch, cuda_graphs=True), Context(batch, precision="fp16", cuda_graphs=True)]
    try:
        Context(batch, runtime="onnxruntime").check(device)
        found.append(Context(batch, runtime="onnxruntime"))
        if device.type == "cuda":
            found.append(Context(batch, precision="fp16", runtime="onnxruntime"))
    except ValueError as exc:
        print(f"# skipped ONNX Runtime: {exc}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16_bn")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    device = resolve_device(args.device)
    env = fingerprint(device, threads=1)
    print(f"# {env.get('gpu_name') or env['cpu_model']}, torch {env['torch']}, {args.model} at "
          f"{args.image_size} px, batch {args.batch_size}, {time.strftime('%Y-%m-%d')}")
    model = build_model(args.model, 10).eval()
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    groups, _ = discover_groups(model, x[:1])
    space = SearchSpace(tuple(groups))
    pruned = [prune(model, x[:1], space.uniform(f)) for f in FRACTIONS]
    print(f"{'context':<50} {'dense_ms':>9}  " + "  ".join(f"keep {f:<4}" for f in FRACTIONS)
          + "  seconds")
    for context in contexts(device, args.batch_size):
        began = time.perf_counter()
        result = compare([model, *pruned], x, device=device, context=context)
        ratios = "  ".join(f"{r:9.3f}" for r in result.ratios[1:])
        flag = "" if result.stable else "  (spread above 10%)"
        print(f"{context.describe():<50} {result.stats[0].median_ms:9.3f}  {ratios}  "
              f"{time.perf_counter() - began:7.1f}{flag}")


if __name__ == "__main__":
    main()
