"""GPU clocks and throttling read through NVML (``pip install nvidia-ml-py``), when available.

A GPU that slows its clocks for heat or power while a model is measured makes that model look slow;
such a measurement is repeated, and flagged when it stays throttled. Without NVML (or on CPU) the
state is simply unknown and nothing is flagged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

# NVML's clocks event (throttle) reason bits, as documented for nvmlClocksEventReasons. Only those
# that lower the clocks below what the user's deployment would see count as throttling; idle,
# application clock settings and sync boost do not.
_SLOWDOWN_REASONS = {
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
}


def slowdown_reasons(mask: int) -> list[str]:
    """The names of the clock slowdowns set in an NVML reasons bit mask (empty: full speed).

    Example:
        >>> slowdown_reasons(0x1 | 0x40)
        ['hw_thermal_slowdown']
    """
    return [name for bit, name in _SLOWDOWN_REASONS.items() if mask & bit]


@dataclass(frozen=True)
class GpuState:
    """One reading of a GPU's clocks."""

    sm_clock_mhz: int
    max_sm_clock_mhz: int
    temperature_c: int
    slowdowns: tuple[str, ...]

    @property
    def throttled(self) -> bool:
        return bool(self.slowdowns)


def read_gpu_state(device: torch.device) -> GpuState | None:
    """The GPU's clocks now, or None when NVML is not installed or cannot read this device."""
    if device.type != "cuda":
        return None
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = _nvml_handle(pynvml, device)
        reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return GpuState(
            sm_clock_mhz=pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            max_sm_clock_mhz=pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
            temperature_c=pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
            slowdowns=tuple(slowdown_reasons(int(reasons(handle)))),
        )
    except Exception as exc:  # NVML errors vary by driver; the state is then unknown, not fatal
        log.debug("NVML reading failed: %s", exc)
        return None


def _nvml_handle(pynvml, device: torch.device):
    """NVML's handle for a torch device, matched by PCI address (NVML ignores
    CUDA_VISIBLE_DEVICES, so indices can differ); by index when torch does not expose it."""
    props = torch.cuda.get_device_properties(device)
    bus = getattr(props, "pci_bus_id", None)
    if bus is None:
        return pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
    address = f"{props.pci_domain_id:08x}:{bus:02x}:{props.pci_device_id:02x}.0"
    return pynvml.nvmlDeviceGetHandleByPciBusId(address)
