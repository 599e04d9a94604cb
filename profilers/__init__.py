"""What a model costs on a device: measured latency, MACs, parameters, and the device's identity.

Knows nothing of search or pruning; the only importer of fvcore.
"""

from profilers._cost import Cost, count_cost
from profilers._device import fingerprint, resolve_device
from profilers._latency import Comparison, LatencySettings, LatencyStats, compare, measure

__all__ = [
    "Comparison",
    "Cost",
    "LatencySettings",
    "LatencyStats",
    "compare",
    "count_cost",
    "fingerprint",
    "measure",
    "resolve_device",
]
