"""Hardware description (``HardwareSpec``) and its presets."""

from .model import ArraySpec, ChipSpec, DeviceSpec, HardwareSpec, PeripherySpec, TechnologySpec

__all__ = ["HardwareSpec", "DeviceSpec", "ArraySpec", "PeripherySpec", "TechnologySpec", "ChipSpec"]
