"""The hardware description: one immutable object read by the simulator and by the cost model.

Units are in the field names (``_us`` microsiemens, ``_ohm`` ohms, ``_s`` seconds, ``_v`` volts,
``_hz`` hertz, ``_nm`` nanometres). Relative noise figures (``_frac``) are fractions of the device's
maximum conductance unless the field says otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import typing

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..errors import InputError, SpecError, format_validation_error, short_repr
from ..io import load_yaml, atomic_write

_FROZEN = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _takes_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    return any(_takes_bool(a) for a in typing.get_args(annotation))


class StrictModel(BaseModel):
    """Base of every validated file section: unknown keys refused, immutable, numbers finite, and a
    YAML ``true``/``false`` never read as the number 1/0, alone or in a list (``rows: true`` is an
    error, not one row)."""

    model_config = _FROZEN

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        items = value if isinstance(value, (list, tuple)) else (value,)
        if info.field_name is not None and any(isinstance(v, bool) for v in items):
            if not _takes_bool(cls.model_fields[info.field_name].annotation):
                raise ValueError(f"expected a number, got a boolean in {short_repr(value)}")
        return value

PRESET_DIR = Path(__file__).with_name("presets")


class DeviceSpec(StrictModel):
    """A memory cell: conductance window, levels, and its non-idealities."""

    model_config = _FROZEN

    technology: Literal["rram", "pcm", "sram", "fefet", "mram", "ideal"] = "ideal"
    g_max_us: float = Field(100.0, gt=0, description="highest programmable conductance (uS)")
    g_min_us: float = Field(0.0, ge=0, description="lowest conductance (uS); g_max/g_min is the on/off ratio")
    read_voltage_v: float = Field(0.2, gt=0, description="full-scale read voltage on a row (V)")
    bits_per_cell: int = Field(8, ge=1, le=24, description="bits stored in one cell (2**bits levels)")
    programming_noise_frac: float = Field(
        0.0, ge=0, description="std of programmed conductance, fraction of g_max (state-independent)"
    )
    programming_noise_poly: tuple[float, ...] | None = Field(
        None,
        description="std of programmed conductance as a fraction of g_max, a polynomial c0 + c1*x + "
        "c2*x^2... of x = target g / g_max; overrides programming_noise_frac when given",
    )
    read_noise_model: Literal["none", "proportional", "additive", "pcm"] = Field(
        "none",
        description="per-read noise: 'proportional' std = read_noise_frac * g; 'additive' std = "
        "read_noise_frac * g_max; 'pcm' 1/f noise of Nandakumar et al. with read_noise_frac as Q_s cap",
    )
    read_noise_frac: float = Field(0.0, ge=0)
    read_time_s: float = Field(250e-9, gt=0, description="read pulse width, used by the 'pcm' read noise")
    cell_area_f2: float = Field(48.0, gt=0, description="cell area in F^2 (1T1R RRAM 4F x 12F = 48 F^2)")
    drift_nu: float = Field(0.0, ge=0, description="mean drift exponent: g(t) = g(t0) * (t/t0)^-nu")
    drift_nu_std: float = Field(0.0, ge=0, description="device-to-device std of the drift exponent")
    drift_t0_s: float = Field(20.0, gt=0, description="time after programming at which g(t0) is defined")
    stuck_on_rate: float = Field(0.0, ge=0, le=1, description="fraction of cells stuck at g_max")
    stuck_off_rate: float = Field(0.0, ge=0, le=1, description="fraction of cells stuck at g_min")

    @model_validator(mode="before")
    @classmethod
    def _resistances(cls, data: Any) -> Any:
        """Accept ``r_on_ohm`` / ``r_off_ohm`` as an alternative to the conductance window."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for r_key, g_key in (("r_on_ohm", "g_max_us"), ("r_off_ohm", "g_min_us")):
            if r_key in data:
                r = data.pop(r_key)
                if g_key in data:
                    raise ValueError(f"give either {r_key} or {g_key}, not both")
                if not isinstance(r, (int, float)) or not r > 0:
                    raise ValueError(f"{r_key} must be a positive number of ohms, got {r!r}")
                data[g_key] = 1e6 / float(r)
        return data

    @field_validator("programming_noise_poly")
    @classmethod
    def _std_polynomial(cls, poly: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if poly is None:
            return poly
        if not poly:
            raise ValueError("empty: give coefficients c0, c1, ... or null")
        worst = min(sum(c * (i / 100) ** k for k, c in enumerate(poly)) for i in range(101))
        if worst < 0:
            raise ValueError(f"gives a negative std ({worst:.3g}) for some target conductance in [0, g_max]; "
                             "a std must be >= 0 over that range")
        return poly

    @model_validator(mode="after")
    def _window(self) -> "DeviceSpec":
        if self.g_min_us >= self.g_max_us:
            raise ValueError(
                f"g_min_us ({self.g_min_us}) must be below g_max_us ({self.g_max_us})"
            )
        if self.stuck_on_rate + self.stuck_off_rate > 1:
            raise ValueError("stuck_on_rate + stuck_off_rate must not exceed 1")
        return self

    @property
    def on_off_ratio(self) -> float:
        return math.inf if self.g_min_us == 0 else self.g_max_us / self.g_min_us


class ArraySpec(StrictModel):
    """A crossbar array: its size, how signed weights are stored, and its wires."""

    model_config = _FROZEN

    rows: int = Field(128, ge=1, le=65536)
    cols: int = Field(128, ge=1, le=65536)
    signed_mapping: Literal["differential", "offset"] = Field(
        "differential",
        description="'differential': a weight is G+ - G- on two columns, subtracted in analog before "
        "the ADC; 'offset': w + 2^(b-1) stored unsigned, offset removed digitally after the ADC",
    )
    wire_resistance_ohm: float = Field(0.0, ge=0, description="resistance of one wire segment between cells")
    ir_drop: Literal["none", "first_order", "exact"] = Field(
        "none", description="IR-drop model used by the simulator when wire_resistance_ohm > 0"
    )
    conv_mapping: Literal["kernel_aligned", "im2col"] = Field(
        "kernel_aligned",
        description="'kernel_aligned': an array holds whole KxK kernels of floor(rows/K^2) input "
        "channels; 'im2col': the unrolled C*K*K rows are cut into arrays of `rows` regardless",
    )


class PeripherySpec(StrictModel):
    """Converters around the array: DAC on the rows, ADC on the columns."""

    model_config = _FROZEN

    input_bits: int | None = Field(8, ge=1, le=24, description="DAC resolution; None = ideal analog input")
    dac_mode: Literal["multi_level", "bit_serial", "pulse_train"] = Field(
        "multi_level",
        description="'multi_level': one voltage level per input; 'bit_serial': one binary pass and one ADC "
        "conversion per input bit; 'pulse_train': input bits as pulses whose charge the neuron integrates, "
        "converted once (NeuRRAM); the simulator treats it like multi_level",
    )
    adc_bits: int | None = Field(8, ge=1, le=24, description="ADC resolution; None = ideal ADC")
    adc_range: Literal["fixed", "calibrated"] = Field(
        "fixed",
        description="'fixed': the full-scale partial sum of an array; 'calibrated': set by "
        "cimkit.calibrate from data",
    )
    columns_per_adc: int = Field(1, ge=1, le=4096, description="columns time-multiplexed onto one ADC")
    read_latency_ns: float = Field(1.0, gt=0, description="array read (settling) time per input pass (ns), "
                                   "before conversion; the 'base read latency' of Krestinskaya et al. 2025")
    drift_compensation: Literal["none", "global"] = Field(
        "global",
        description="'global': a digital gain from an all-ones reference read at t0 and at the "
        "inference time undoes the mean conductance drift (as in Joshi et al. 2020)",
    )

    @model_validator(mode="after")
    def _serial_needs_bits(self) -> "PeripherySpec":
        if self.dac_mode == "bit_serial" and self.input_bits is None:
            raise ValueError("dac_mode 'bit_serial' needs an integer input_bits, not None")
        return self


class TechnologySpec(StrictModel):
    """Process and timing."""

    model_config = _FROZEN

    node_nm: float = Field(22.0, ge=1, le=1000)
    clock_hz: float = Field(1e9, gt=0)
    supply_v: float = Field(0.8, gt=0, le=5)


class ChipSpec(StrictModel):
    """How arrays are organised on the chip, and how layers execute (used by the cost model)."""

    model_config = _FROZEN

    arrays_per_pe: int = Field(4, ge=1, le=1024, description="crossbar arrays in one processing element")
    pes_per_tile: int = Field(4, ge=1, le=1024, description="processing elements in one tile")
    tiles: int | None = Field(
        None, ge=1, description="tiles on the chip; None sizes the chip to the workload (as NeuroSim does)")
    tile_buffer_kb: float = Field(16.0, gt=0, description="SRAM buffer per tile (KiB)")
    global_buffer_kb: float = Field(256.0, gt=0, description="global SRAM buffer (KiB)")
    buffer_bus_bits: int = Field(64, ge=1, description="width of the buffer and interconnect data path (bits)")
    interconnect: Literal["htree", "bus"] = "htree"
    execution: Literal["layer_by_layer", "pipelined"] = "layer_by_layer"
    tile_allocation: Literal["per_layer", "packed"] = Field(
        "per_layer", description="'per_layer': every layer occupies whole tiles (NeuroSim); 'packed': layers "
        "share tiles, so the chip needs ceil(arrays / arrays per tile) tiles")
    weight_duplication: bool = Field(
        True, description="copy layers onto spare arrays of a fixed-size chip to cut their latency")
    adc_type: Literal["mlsa", "sar", "survey", "integrate_fire"] = Field(
        "mlsa", description="'mlsa': multi-level sense amplifier / flash (2^b - 1 comparators, NeuroSim's "
        "default); 'sar': successive approximation; 'survey': the energy frontier of published ADCs; "
        "'integrate_fire': a voltage-mode integrate-and-fire neuron (NeuRRAM)")
    layout_energy_factor: float = Field(
        1.22, ge=1, description="energy overhead of the laid-out chip over the sum of its components "
        "(NeuroSim V1.3 applies 1.22; 1.0 compares with measured component energies)")
    activation_bits: int = Field(8, ge=1, le=32, description="bits of activations moved through buffers")
    input_activity: float = Field(
        0.18, ge=0, le=1, description="fraction of 1s in the input bit streams (0.18 for ReLU activations, as in "
        "the NeuroSim reference run)")


def apply_dotted(data: dict[str, Any], changes: dict[str, Any], what: str) -> dict[str, Any]:
    """``data`` (a nested dump of a spec) with dotted-path ``changes`` applied; unknown paths raise."""
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise SpecError(f"{dotted}: {key!r} is not a section of {what}")
            node = node[key]
        if leaf not in node:
            raise SpecError(f"{dotted}: unknown field {leaf!r}; allowed: {', '.join(node)}")
        node[leaf] = value
    return data


class SpecModel(StrictModel):
    """A validated, immutable description read from YAML: the shared construction and editing of
    ``HardwareSpec`` and ``cimkit.cam.CamSpec``. Errors name the field path, the value and what is allowed."""

    model_config = _FROZEN
    _what: ClassVar[str] = "description"  # what the errors call it

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "spec"):
        if not isinstance(data, dict):
            raise SpecError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc, source, cls._what, cls)) from None

    @classmethod
    def from_yaml(cls, path: str | Path):
        """Read and validate a YAML file (see ``cimkit.io.load_yaml`` for what files are refused)."""
        try:
            data = load_yaml(path, cls._what)
        except InputError as exc:
            raise SpecError(str(exc)) from None
        return cls.from_dict(data, source=str(path))

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The full description (defaults filled in) as YAML; written atomically to ``path`` if given."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        if path is not None:
            atomic_write(path, text)
        return text

    def replace(self, **changes: Any):
        """A validated copy with dotted-path changes, e.g. ``replace(**{"periphery.adc_bits": 6})``."""
        return self.from_dict(apply_dotted(self.model_dump(), changes, type(self).__name__), source=self.name)


class HardwareSpec(SpecModel):
    """One CIM chip description, shared by ``cimkit.convert`` (accuracy) and the cost model."""

    _what: ClassVar[str] = "hardware description"

    name: str = "custom"
    description: str = ""
    weight_bits: int | None = Field(8, ge=1, le=24, description="signed weight resolution; None = analog")
    weight_scale: Literal["per_tensor", "per_channel"] = Field(
        "per_channel", description="digital scale of weights: one per layer or one per output column"
    )
    device: DeviceSpec = DeviceSpec()
    array: ArraySpec = ArraySpec()
    periphery: PeripherySpec = PeripherySpec()
    technology: TechnologySpec = TechnologySpec()
    chip: ChipSpec = ChipSpec()

    @model_validator(mode="after")
    def _consistent(self) -> "HardwareSpec":
        p = self.periphery
        if p.adc_bits is not None and self.array.signed_mapping == "differential" and p.adc_bits < 2:
            raise ValueError("periphery.adc_bits must be >= 2 with a differential (signed) column, got 1")
        return self

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str) -> "HardwareSpec":
        path = PRESET_DIR / f"{name}.yaml"
        if not path.is_file():
            raise SpecError(f"unknown preset {name!r}; available: {', '.join(cls.presets())}")
        return cls.from_yaml(path)

    @staticmethod
    def presets() -> list[str]:
        return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
