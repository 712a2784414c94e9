"""Hardware description (``HardwareSpec``) and its presets; the registries its option strings name
(``units.UNIT_TYPES`` and ``units.DAC_MODES``, ``noise.READ_NOISE``)."""

from .model import ArraySpec, ChipSpec, DeviceSpec, DigitalSpec, HardwareSpec, PeripherySpec, TechnologySpec
from .noise import READ_NOISE, ReadNoiseModel
from .units import DAC_MODES, UNIT_TYPES, DacMode, UnitType, register_dac_mode, register_unit_type

__all__ = [
    "HardwareSpec",
    "DeviceSpec",
    "ArraySpec",
    "PeripherySpec",
    "TechnologySpec",
    "ChipSpec",
    "DigitalSpec",
    "READ_NOISE",
    "ReadNoiseModel",
    "DAC_MODES",
    "DacMode",
    "register_dac_mode",
    "UNIT_TYPES",
    "UnitType",
    "register_unit_type",
]
