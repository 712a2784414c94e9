"""Hardware description (``HardwareSpec``) and its presets."""

from .model import ArraySpec, DeviceSpec, HardwareSpec, PeripherySpec, TechnologySpec

__all__ = ["HardwareSpec", "DeviceSpec", "ArraySpec", "PeripherySpec", "TechnologySpec"]
