"""``python -m search inspect``: what a search would prune in a model, before any search runs.

The channel groups with their widths, allowed widths and coupled layers; the groups left dense and
why; the free parameters and modules torch-pruning handles specially or not at all; and the dense
and smallest candidates' MACs and parameters. It traces and prunes once or a few times, so it
takes seconds.
"""

from __future__ import annotations

from profilers import count_cost
from search.candidates import TRACE_TIMEOUT_S, build_space
from search.sources import build_model, load_data
from spaces import prune, unhandled_parts


def inspect_model(*, model: str, data: str = "digits", image_size: int | None = None,
                  space: str = "per-layer", round_to: int = 8, seed: int = 0,
                  trace_timeout: float = TRACE_TIMEOUT_S) -> dict:
    """Everything ``inspect`` prints, as plain data (what ``--json`` writes): the model's MACs
    and parameters, dense and at the smallest candidate, and every channel group with its widths,
    or the reason it is left dense.

    Example:
        >>> import search
        >>> found = search.inspect_model(model="resnet20", image_size=16)  # doctest: +SKIP
        >>> first, *rest = found["groups"]  # doctest: +SKIP
        >>> first["name"], first["widths"]  # doctest: +SKIP
        ('layer1.0.conv1', [8, 16])
    """
    if data == "digits" and image_size is None:
        image_size = 16
    splits = load_data(data, image_size=image_size, seed=seed)
    net = build_model(model, splits.num_classes).eval()
    example = splits.val.inputs(1)
    built = build_space(net, example, model_name=model, space=space, round_to=round_to,
                        trace_timeout=trace_timeout)
    searched = built.space
    by_group = {name: dim.name for dim in searched.dimensions for name in dim.groups}
    dense = count_cost(net, example)
    try:
        smallest = count_cost(prune(net, example, searched.smallest()), example)
        smallest_cost = {"macs": smallest.macs, "params": smallest.params}
    except Exception as exc:  # the probe keeps breaking groups out; report anything else
        smallest_cost = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    return {
        "model": model,
        "data": data,
        "input_shape": list(example.shape),
        "num_classes": splits.num_classes,
        "space": searched.kind,
        "round_to": searched.round_to,
        "dense": {"macs": dense.macs, "params": dense.params},
        "smallest": smallest_cost,
        "dimensions": [{"name": d.name, "unit": d.unit, "choices": list(d.choices),
                        "groups": list(d.groups)} for d in searched.dimensions],
        "groups": [{"name": g.name, "width": g.width, "widths": searched.widths(g),
                    "dimension": by_group.get(g.name), "resolution": list(g.resolution),
                    "channel_groups": g.channel_groups, "head_size": g.head_size,
                    "layers": list(g.layers)}
                   for g in searched.groups if g.name not in searched.excluded],
        "left_dense": [{"name": g.name, "width": g.width, "layers": list(g.layers),
                        "reason": g.reason} for g in built.left_dense],
        "probe": list(built.notes),
        **unhandled_parts(net, example),
    }


def _count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def render(report: dict) -> str:
    """The report as text for a terminal."""
    dense, small = report["dense"], report["smallest"]
    lines = [f"{report['model']}: input {tuple(report['input_shape'])}, "
             f"{report['num_classes']} classes; space {report['space']}, widths multiples of "
             f"{report['round_to']}",
             f"dense: {_count(dense['macs'])} MACs, {_count(dense['params'])} params"]
    if "error" in small:
        lines.append(f"smallest candidate: fails ({small['error']})")
    else:
        lines.append(f"smallest candidate: {_count(small['macs'])} MACs "
                     f"({100 * small['macs'] / dense['macs']:.0f}%), {_count(small['params'])} "
                     f"params ({100 * small['params'] / dense['params']:.0f}%)")
    lines.append(f"\n{len(report['dimensions'])} dimensions over {len(report['groups'])} "
                 f"prunable groups:")
    for g in report["groups"]:
        widths = g["widths"]
        allowed = f"{widths[0]}..{widths[-1]} ({len(widths)})" if len(widths) > 2 else \
            ", ".join(map(str, widths))
        coupled = f"; coupled: {', '.join(g['layers'][1:])}" if len(g["layers"]) > 1 else ""
        at = "x".join(map(str, g["resolution"])) or "-"
        split = f" in {g['channel_groups']} conv groups" if g["channel_groups"] > 1 else \
            f" = {g['width'] // g['head_size']} attention heads" if g["head_size"] else ""
        lines.append(f"  {g['name']}: {g['width']} channels{split} at {at}, keeps {allowed}, "
                     f"dimension {g['dimension'] or '(one width)'}{coupled}")
    if report["left_dense"]:
        lines.append(f"\nleft dense ({len(report['left_dense'])}):")
        lines += [f"  {g['name']} ({g['width']} channels): {g['reason']}"
                  + (f"; coupled: {', '.join(g['layers'][1:])}" if len(g["layers"]) > 1 else "")
                  for g in report["left_dense"]]
    if report["probe"]:
        lines.append("\nthe probe (each group pruned alone, where the smallest candidate broke):")
        lines += [f"  {note}" for note in report["probe"]]
    if report["free_parameters"]:
        lines.append("\nfree parameters (used directly in forward; torch-pruning prunes them "
                     "along the dimension it detected):")
        lines += [f"  {p['name']} {tuple(p['shape'])}: along dim {p['pruned_along']}"
                  for p in report["free_parameters"]]
    if report["unsupported_modules"]:
        lines.append("\nmodules torch-pruning has no pruner for (their channels are not "
                     "followed):")
        lines += [f"  {m['name']} ({m['type']})" for m in report["unsupported_modules"]]
    return "\n".join(lines)
