"""Latency measurements kept across runs: one JSON Lines file per device, keyed by what was measured.

A measurement is only reusable on the same hardware and software, in the same context, for the same
architecture, so the key is a hash of all three; the file name is a hash of the device fingerprint.
What is stored is the latency *ratio* to the dense model measured interleaved with it, which moves
~2% between runs where the absolute median moves 12-16%; a later run multiplies it by its own fresh
reference. JSON Lines, appended one line per measurement with a single ``write`` on an ``O_APPEND``
file, so several processes can add to it at once; a corrupt line (a crash mid-write, a disk that
filled) is dropped with a warning and the file rewritten without it; nothing else is lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

# The parts of a device fingerprint a latency depends on (not e.g. the optuna or pandas version).
_LATENCY_FINGERPRINT = ("device", "cpu_model", "cpu_count", "torch", "cuda", "cudnn", "gpu_name",
                        "gpu_capability")


def _digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class LatencyCache:
    """Measurements on one device, in a folder shared by runs (``results/latency-cache/``).

    Example:
        >>> import tempfile
        >>> cache = LatencyCache(tempfile.mkdtemp(), {"device": "cpu", "cpu_model": "x"})
        >>> key = {"architecture": {"model": "m", "widths": [8]}, "context": {"batch_size": 1}}
        >>> cache.get(key) is None
        True
        >>> cache.put(key, {"ratio": 0.5})
        >>> cache.get(key)["ratio"]
        0.5
    """

    def __init__(self, folder: str | Path, fingerprint: dict[str, object]) -> None:
        device = {k: fingerprint.get(k) for k in _LATENCY_FINGERPRINT}
        self.path = Path(folder) / f"{_digest(device)[:16]}.jsonl"
        self._device = device
        self._entries: dict[str, dict] = {}
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        if not self.path.exists():
            return
        good, bad = [], 0
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    self._entries[entry["key"]] = entry["value"]
                    good.append(line if line.endswith("\n") else line + "\n")
                except (ValueError, KeyError, TypeError):
                    bad += 1
        if bad:
            log.warning("latency cache %s: %d corrupt line(s) dropped, %d measurement(s) kept; "
                        "rewriting it", self.path, bad, len(good))
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text("".join(good), encoding="utf-8")
            os.replace(tmp, self.path)

    def get(self, key: dict[str, object]) -> dict | None:
        """The stored measurement for ``key`` (architecture and context), or None."""
        if not self._loaded:
            self._load()
        return self._entries.get(_digest(key))

    def put(self, key: dict[str, object], value: dict[str, object]) -> None:
        """Stores a measurement; a cache that cannot be written only costs later runs time."""
        if not self._loaded:
            self._load()
        digest = _digest(key)
        self._entries[digest] = value
        line = json.dumps({"key": digest, **key, "device": self._device, "value": value},
                          sort_keys=True, default=str) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("latency cache %s not written (%s); measurements are not reused",
                        self.path, exc)
