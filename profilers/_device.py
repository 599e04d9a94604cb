"""Which device a measurement ran on, described well enough to tell two machines apart."""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata

import torch


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` as a ``torch.device``, checked to exist here.

    Raises:
        ValueError: with one line saying what is wrong and what to use instead.
    """
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ValueError(f"unknown device {name!r}: use cpu, cuda or cuda:N (--device)")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine "
                             f"(torch {torch.__version__}); use --device cpu")
        count = torch.cuda.device_count()
        if (device.index or 0) >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA device(s), "
                             f"cuda:0..cuda:{count - 1}")
    return device


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def fingerprint(device: torch.device, threads: int) -> dict[str, object]:
    """What a latency figure depends on besides the model: hardware, software, thread count."""
    info: dict[str, object] = {
        "device": str(device),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "packages": {p: _version(p) for p in ("torch-pruning", "optuna", "fvcore", "pandas")},
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu_name=props.name, gpu_memory_bytes=props.total_memory,
                    cudnn=torch.backends.cudnn.version(),
                    gpu_capability=f"{props.major}.{props.minor}")
    return info
