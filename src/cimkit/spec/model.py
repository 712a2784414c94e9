"""The hardware description: one immutable object read by the simulator and by the cost model.

Units are in the field names (``_us`` microsiemens, ``_ohm`` ohms, ``_s`` seconds, ``_v`` volts,
``_hz`` hertz, ``_nm`` nanometres). Relative noise figures (``_frac``) are fractions of the device's
maximum conductance unless the field says otherwise.
"""

from __future__ import annotations

import functools
import math
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..ap import figures as _apf
from ..errors import CimkitError, InputError, SpecError, format_validation_error, short_repr
from ..io import atomic_write, load_yaml
from .noise import READ_NOISE
from .units import DAC_MODES, UNIT_TYPES, DacMode

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

#: the ADC kinds of the cost model's built-in components (``cimkit.cost.components.ADC_KINDS`` holds these
#: and any plug-ins); a spec naming one of these does not need to import the cost model to validate
BUILTIN_ADC_KINDS = ("mlsa", "sar", "survey", "integrate_fire")


def _unknown(what: str, names) -> PydanticCustomError:
    """A field error naming what the value should be and every registered name (the formatter adds the
    field path and the value)."""
    return PydanticCustomError(
        "unknown_name", "unknown {what}; registered: {names}", {"what": what, "names": ", ".join(names) or "(none)"}
    )


def _registered(registry, value: str) -> str:
    if value not in registry:
        raise _unknown(registry.what, registry.names())
    return value


def adc_kinds():
    """The ADC kind registry of the cost model (``cimkit.cost.components.ADC_KINDS``), imported when a
    spec names a kind that is not built in."""
    from ..cost.components import ADC_KINDS

    return ADC_KINDS


def op_kinds() -> tuple[str, ...]:
    """Registered op kinds (``cimkit.workload.registry.kinds()``; that module imports no torch)."""
    from ..workload.registry import kinds

    return kinds()


def default_unit(kind: str) -> str:
    """The unit an op kind runs on unless ``HardwareSpec.routing`` says otherwise (an ``InputError``
    listing the kinds for an unknown one)."""
    from ..workload.registry import kind_info

    return kind_info(kind).default_unit


class DeviceSpec(StrictModel):
    """A memory cell: conductance window, levels, and its non-idealities."""

    model_config = _FROZEN

    technology: Literal["rram", "pcm", "sram", "fefet", "mram", "ideal"] = Field(
        "ideal",
        description="the cell technology, a label: the simulator and the cost model read the numbers of this "
        "section, not the label (the cost model refuses an 'ideal' chip)",
    )
    g_max_us: float = Field(100.0, gt=0, description="highest programmable conductance (uS)")
    g_min_us: float = Field(0.0, ge=0, description="lowest conductance (uS); g_max/g_min is the on/off ratio")
    read_voltage_v: float = Field(0.2, gt=0, le=10, description="full-scale read voltage on a row (V; at most 10 V)")
    bits_per_cell: int = Field(8, ge=1, le=24, description="bits stored in one cell (2**bits levels)")
    programming_noise_frac: float = Field(
        0.0, ge=0, description="std of programmed conductance, fraction of g_max (state-independent)"
    )
    programming_noise_poly: tuple[float, ...] | None = Field(
        None,
        description="std of programmed conductance as a fraction of g_max, a polynomial c0 + c1*x + "
        "c2*x^2... of x = target g / g_max; overrides programming_noise_frac when given",
    )
    read_noise_model: str = Field(
        "none",
        description="per-read noise, a model of cimkit.spec.noise.READ_NOISE; built-in: 'none'; "
        "'proportional' std = read_noise_frac * g; 'additive' std = read_noise_frac * g_max; 'pcm' 1/f noise "
        "of Nandakumar et al. with read_noise_frac as Q_s cap",
    )
    read_noise_frac: float = Field(0.0, ge=0, description="scale of the read noise (0: no read noise)")
    read_time_s: float = Field(250e-9, gt=0, description="read pulse width, used by the 'pcm' read noise")
    cell_area_f2: float = Field(48.0, gt=0, description="cell area in F^2 (1T1R RRAM 4F x 12F = 48 F^2)")
    drift_nu: float = Field(0.0, ge=0, description="mean drift exponent: g(t) = g(t0) * (t/t0)^-nu")
    drift_nu_std: float = Field(0.0, ge=0, description="device-to-device std of the drift exponent")
    drift_t0_s: float = Field(20.0, gt=0, description="time after programming at which g(t0) is defined")
    stuck_on_rate: float = Field(0.0, ge=0, le=1, description="fraction of cells stuck at g_max")
    stuck_off_rate: float = Field(0.0, ge=0, le=1, description="fraction of cells stuck at g_min")
    write_energy_pj: float = Field(
        20.0,
        ge=0,
        description="energy to program one cell once, write-verify included (pJ); default: the "
        "rram-22nm preset's RRAM figure",
    )
    write_time_ns: float = Field(
        60.0,
        ge=0,
        description="time to program one row, write-verify included; the cells of a row are "
        "written in parallel (ns); default: the rram-22nm preset's RRAM figure",
    )
    endurance_cycles: float = Field(
        1.0e6, gt=0, description="writes a cell survives (cycles); default: the rram-22nm preset's RRAM figure"
    )

    @field_validator("read_noise_model")
    @classmethod
    def _noise_model(cls, name: str) -> str:
        return _registered(READ_NOISE, name)

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
            raise ValueError(
                f"gives a negative std ({worst:.3g}) for some target conductance in [0, g_max]; "
                "a std must be >= 0 over that range"
            )
        return poly

    @model_validator(mode="after")
    def _window(self) -> "DeviceSpec":
        if self.g_min_us >= self.g_max_us:
            raise ValueError(f"g_min_us ({self.g_min_us}) must be below g_max_us ({self.g_max_us})")
        if self.stuck_on_rate + self.stuck_off_rate > 1:
            raise ValueError("stuck_on_rate + stuck_off_rate must not exceed 1")
        return self

    @property
    def on_off_ratio(self) -> float:
        return math.inf if self.g_min_us == 0 else self.g_max_us / self.g_min_us


class ArraySpec(StrictModel):
    """A crossbar array: its size, how signed weights are stored, and its wires."""

    model_config = _FROZEN

    rows: int = Field(
        128, ge=1, le=65536, description="word lines (rows) of one crossbar array; default: NeuroSim V1.3's 128"
    )
    cols: int = Field(
        128, ge=1, le=65536, description="bit lines (columns) of one crossbar array; default: NeuroSim V1.3's 128"
    )
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
    dac_mode: str = Field(
        "multi_level",
        description="how inputs drive the rows, a mode of cimkit.spec.units.DAC_MODES; built-in: "
        "'multi_level': one voltage level per input; 'bit_serial': one binary pass and one ADC "
        "conversion per input bit; 'pulse_train': input bits as pulses whose charge the neuron integrates, "
        "converted once (NeuRRAM); the simulator treats it like multi_level",
    )
    adc_bits: int | None = Field(8, ge=1, le=24, description="ADC resolution; None = ideal ADC")
    adc_range: Literal["fixed", "calibrated"] = Field(
        "fixed",
        description="'fixed': the full-scale partial sum of an array; 'calibrated': set by cimkit.calibrate from data",
    )
    adc_range_per_input_bit: bool = Field(
        False,
        description="with bit planes and adc_range 'calibrated': calibrate one ADC range per input bit (and "
        "weight slice) instead of one per slice, so the sparse high-order planes are converted with a finer "
        "step (a reference per pass, switched between passes: P x S stored references per ADC, no extra "
        "conversions)",
    )
    signed_inputs: Literal["twos_complement", "sign_magnitude"] = Field(
        "twos_complement",
        description="how a bit-plane DAC drives signed inputs: 'twos_complement': input_bits planes, the top "
        "one of weight -2^(bits-1) (about half of its bits are ones); 'sign_magnitude': two phases, the "
        "positive inputs' and the negative inputs' input_bits-1 magnitude planes, the second phase subtracted "
        "(2 x (input_bits - 1) passes; layers whose inputs are never negative run the first phase only, "
        "input_bits planes; the cost model counts two phases for every layer)",
    )
    columns_per_adc: int = Field(1, ge=1, le=4096, description="columns time-multiplexed onto one ADC")
    read_latency_ns: float | None = Field(
        None,
        gt=0,
        description="array read (settling) time (ns) before a conversion; the 'base read latency' of "
        "Krestinskaya et al. 2025. With a one-cycle converter (mlsa) it is part of the read cycle that, with the "
        "conversion and NeuroSim's 1.4 margin, bounds the chip's clock period; with other converters it precedes "
        "each input pass. null: modeled from the word line's switch, the column multiplexer's decoder (when "
        "columns_per_adc > 1) and the column settling, at the node's gate delay",
    )
    drift_compensation: Literal["none", "global"] = Field(
        "global",
        description="'global': a digital gain from an all-ones reference read at t0 and at the "
        "inference time undoes the mean conductance drift (as in Joshi et al. 2020)",
    )

    @field_validator("dac_mode")
    @classmethod
    def _dac_mode(cls, name: str) -> str:
        return _registered(DAC_MODES, name)

    @model_validator(mode="after")
    def _serial_needs_bits(self) -> "PeripherySpec":
        if self.dac.needs_input_bits and self.input_bits is None:
            raise ValueError(f"dac_mode {self.dac_mode!r} needs an integer input_bits, not None")
        if self.adc_range_per_input_bit and not (
            self.dac.bit_planes and self.adc_range == "calibrated" and self.adc_bits is not None
        ):
            raise ValueError(
                f"adc_range_per_input_bit needs a bit-plane dac_mode (e.g. 'bit_serial'), adc_range "
                f"'calibrated' and an ADC; got dac_mode {self.dac_mode!r}, adc_range "
                f"{self.adc_range!r}, adc_bits {self.adc_bits}"
            )
        if self.signed_inputs == "sign_magnitude" and self.dac.bit_planes and (self.input_bits or 0) < 2:
            raise ValueError(
                f"signed_inputs 'sign_magnitude' needs input_bits >= 2 (a sign and a magnitude "
                f"bit), got {self.input_bits}"
            )
        return self

    @property
    def dac(self) -> DacMode:
        """The DAC mode entry of ``dac_mode``."""
        return DAC_MODES.get(self.dac_mode, "periphery.dac_mode")

    @property
    def input_passes(self) -> int:
        """Array reads (and ADC conversions) per input vector (sign-magnitude bit planes: both phases)."""
        if self.signed_inputs == "sign_magnitude" and self.dac.bit_planes and self.input_bits is not None:
            return 2 * (self.input_bits - 1)
        return self.dac.input_passes(self.input_bits)

    @property
    def max_input_planes(self) -> int:
        """The most bit planes one input vector drives (0 without bit planes): input_bits, or both phases of
        sign-magnitude inputs."""
        if not (self.dac.bit_planes and self.input_bits is not None):
            return 0
        return max(self.input_bits, self.input_passes)

    @property
    def pulses_per_read(self) -> int:
        """Input pulses within one array read."""
        return self.dac.pulses_per_read(self.input_bits)


class TechnologySpec(StrictModel):
    """Process and timing."""

    model_config = _FROZEN

    node_nm: float = Field(
        22.0,
        ge=1,
        le=1000,
        description="CMOS technology node (nm): scales the cost model's component figures (cimkit.cost.tech); "
        "default: NeuroSim V1.3's 22 nm",
    )
    clock_hz: float = Field(
        1e9,
        gt=0,
        description="fastest clock of the chip (Hz); the read cycle may be slower (periphery.read_latency_ns); "
        "default: NeuroSim V1.3's 1 GHz",
    )
    supply_v: float | None = Field(
        None,
        gt=0,
        le=5,
        description="core supply (V); null: the node's nominal low-power supply "
        "(cimkit.cost.tech.nominal_supply_v: 0.85 V at 22 nm, 1.0 V at 45 nm, as NeuroSim's technology files)",
    )


class ChipSpec(StrictModel):
    """How arrays are organised on the chip, and how layers execute (used by the cost model)."""

    model_config = _FROZEN

    arrays_per_pe: int = Field(4, ge=1, le=1024, description="crossbar arrays in one processing element")
    pes_per_tile: int = Field(4, ge=1, le=1024, description="processing elements in one tile")
    tiles: int | None = Field(
        None, ge=1, description="tiles on the chip; None sizes the chip to the workload (as NeuroSim does)"
    )
    tile_buffer_kb: float = Field(16.0, gt=0, description="SRAM buffer per tile (KiB)")
    global_buffer_kb: float = Field(256.0, gt=0, description="global SRAM buffer (KiB)")
    buffer_bus_bits: int | None = Field(
        None,
        ge=1,
        description="width of the buffer and interconnect data path (bits); null: half the arrays' "
        "rows (a tile's input port feeds its arrays' rows: NeuroSim's is two 32-bit buffer cores at 128-row "
        "arrays and one at 64-row arrays), 64 bits at 128 rows",
    )
    interconnect: Literal["htree", "bus"] = Field(
        "htree",
        description="on-chip network between tiles: 'htree' (an H-tree, NeuroSim's) or 'bus' (one shared bus)",
    )
    execution: Literal["layer_by_layer", "pipelined"] = Field(
        "layer_by_layer",
        description="'layer_by_layer': one layer after another (latency is their sum, NeuroSim's default); "
        "'pipelined': layers overlap, throughput set by the slowest layer",
    )
    tile_allocation: Literal["per_layer", "packed"] = Field(
        "per_layer",
        description="'per_layer': every layer occupies whole tiles (NeuroSim); 'packed': layers "
        "share tiles, so the chip needs ceil(arrays / arrays per tile) tiles",
    )
    weight_duplication: bool = Field(
        True, description="copy layers onto spare arrays of a fixed-size chip to cut their latency"
    )
    adc_type: str = Field(
        "mlsa",
        description="column converter, an ADC kind of cimkit.cost.components.ADC_KINDS; built-in: "
        "'mlsa': multi-level sense amplifier / flash (2^b - 1 comparators, NeuroSim's "
        "default); 'sar': successive approximation; 'survey': the energy frontier of published ADCs; "
        "'integrate_fire': a voltage-mode integrate-and-fire neuron (NeuRRAM)",
    )
    layout_energy_factor: float = Field(
        1.22,
        ge=1,
        description="energy overhead of the laid-out chip over the sum of its components "
        "(NeuroSim V1.3 applies 1.22; 1.0 compares with measured component energies)",
    )
    activation_bits: int = Field(8, ge=1, le=32, description="bits of activations moved through buffers")
    input_activity: float = Field(
        0.18,
        ge=0,
        le=1,
        description="fraction of 1s in the input bit streams (0.18 for ReLU activations, as in "
        "the NeuroSim reference run); the default for ops that do not give their own activity",
    )
    inferences_per_s: float | None = Field(
        None,
        gt=0,
        description="inference rate for the device lifetime figure (1/s); None = back to back at the chip's throughput",
    )

    @field_validator("adc_type")
    @classmethod
    def _adc_type(cls, name: str) -> str:
        if name in BUILTIN_ADC_KINDS:  # registered by the cost model's loader in any case
            return name
        return _registered(adc_kinds(), name)


class DigitalSpec(StrictModel):
    """The digital unit: runs non-linear, element-wise, pooling and embedding ops and dynamic matmuls
    (whatever ``routing`` sends it), at ``technology.clock_hz``."""

    model_config = _FROZEN

    lanes: int = Field(64, ge=1, le=1 << 20, description="operations per cycle (ops/cycle)")
    data_bits: int = Field(16, ge=1, le=64, description="word width of its operands (bits)")
    softmax_bits: int | None = Field(
        None,
        ge=1,
        le=24,
        description="null: the simulator computes softmax in float (the reference); an "
        "integer: as cimkit.ops.int_softmax with this many output bits on data_bits-bit input grids (I-BERT "
        "style integer-only softmax)",
    )
    integer_gelu: bool = Field(
        False,
        description="the simulator computes GELU as cimkit.ops.int_gelu on data_bits-bit input grids (false: float)",
    )
    layernorm_bits: int | None = Field(
        None,
        ge=2,
        le=24,
        description="null: float LayerNorm in the simulator; an integer: cimkit.ops."
        "int_layernorm with this many output bits (input grids of min(data_bits, 16) bits)",
    )
    multiplier: str = Field(
        "exact",
        description="the unit's multiplier (approximate computing, cimkit.ops.approx): 'exact', "
        "'truncate-k' (k low bits of each operand dropped), 'mitchell' (logarithmic), 'drum-k' (DRUM, k leading "
        "bits); the simulator computes the unit's products of two activations with it on data_bits-bit "
        "sign-magnitude codes, the cost model scales the energy of its multiplies (ops.approx.relative_energy)",
    )
    adder: str = Field(
        "exact",
        description="the unit's adders: 'exact', 'loa-k' (lower-part OR adder, k OR-ed low bits), "
        "'truncate-k' (k low bits dropped); the simulator sums the products of a dynamic matmul with a tree of "
        "them, the cost model scales the energy of the unit's adds",
    )

    @field_validator("multiplier")
    @classmethod
    def _multiplier(cls, value: str) -> str:
        from .arith import parse_multiplier

        try:
            return parse_multiplier(value, bits=16).name
        except CimkitError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None

    @field_validator("adder")
    @classmethod
    def _adder(cls, value: str) -> str:
        from .arith import parse_adder

        try:
            return parse_adder(value).name
        except CimkitError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None

    @model_validator(mode="after")
    def _integer_grids(self) -> "DigitalSpec":
        if (
            self.softmax_bits is not None or self.integer_gelu or self.layernorm_bits is not None
        ) and not 2 <= self.data_bits <= 32:
            raise ValueError(
                f"integer softmax / GELU / LayerNorm take input grids of 2 to 32 bits; data_bits is {self.data_bits}"
            )
        if self.approximate:
            from .arith import parse_multiplier

            if not 2 <= self.data_bits <= 16:
                raise ValueError(
                    f"an approximate multiplier or adder works on codes of 2 to 16 bits; data_bits is {self.data_bits}"
                )
            try:
                parse_multiplier(self.multiplier, bits=self.data_bits)
            except CimkitError as exc:
                raise ValueError(
                    f"multiplier {self.multiplier!r} on data_bits={self.data_bits}: {str(exc).split(': ', 1)[-1]}"
                ) from None
        return self

    @property
    def approximate(self) -> bool:
        """Whether the unit's multiplier or adder is approximate."""
        return self.multiplier != "exact" or self.adder != "exact"

    @property
    def integer_ops(self) -> bool:
        """Whether the simulator runs any non-linear op as an integer operator."""
        return self.softmax_bits is not None or self.integer_gelu or self.layernorm_bits is not None


class NeuronSpec(StrictModel):
    """The spiking neuron circuits of the periphery (``cimkit.snn``: LIF, synaptic and Fang neurons after the
    crossbars): their mismatch, drawn once per neuron from the chip's seed when a model is converted."""

    model_config = _FROZEN

    threshold_sigma_rel: float = Field(
        0.0,
        ge=0,
        le=1,
        description="per-neuron threshold variation: relative standard deviation of the firing "
        "threshold (0 = every neuron fires at its nominal threshold)",
    )
    leak_sigma_rel: float = Field(
        0.0,
        ge=0,
        le=10,
        description="per-neuron leak mismatch: relative standard deviation of each neuron's leak "
        "rate 1 - beta (its membrane decay factor beta clamped to [0, 1]; 0 = nominal leak)",
    )


class ApSpec(StrictModel):
    """The associative processor (unit ``ap``; ``cimkit.ap``): a CAM of ``words`` rows (words) and bit
    columns computing by compare and write passes over every row at once, in arrays of ``tile_rows`` rows.
    It runs the op kinds ``routing`` sends it (``softmax``: the integer softmax program of
    ``cimkit.ap.softmax``, priced by ``cimkit.ap.cost.softmax_events`` with these figures). The defaults
    are ``cimkit.ap.figures``' (CAMSHAP's CAM capacitances, cimkit's SRAM write energy; the assumptions are
    stated there); the cost model does not scale them with ``technology.node_nm``. Read only when an op is
    routed to ``ap``."""

    model_config = _FROZEN

    words: int = Field(
        _apf.WORDS,
        ge=1,
        le=1 << 40,
        description="words (rows) of the whole AP; a layer needing more tiles than "
        "fit runs in sequential rounds (default 2**20: an assumption, the order of an A100's on-chip SRAM)",
    )
    tile_rows: int = Field(
        _apf.TILE_ROWS,
        ge=1,
        le=1 << 20,
        description="rows of one AP array (tile); a softmax row longer than "
        "this spans several tiles in lock step (default 256: CAMSHAP / X-TIME arrays)",
    )
    clock_hz: float = Field(
        _apf.CLOCK_HZ,
        gt=0,
        description="AP cycles per second: one compare, write, read or tag count per cycle "
        "(Hz; default 1 GHz, an assumption)",
    )
    compare_row_energy_fj: float = Field(
        _apf.COMPARE_ROW_FJ,
        ge=0,
        description="match-line precharge and sense per row per compare (fJ; "
        "default 32.74: CAMSHAP's C_pre and C_mlso)",
    )
    compare_bit_energy_fj: float = Field(
        _apf.COMPARE_BIT_FJ,
        ge=0,
        description="match line and search line per key bit per row searched (fJ; "
        "default 0.8646: CAMSHAP's C_ml and data line)",
    )
    write_bit_energy_fj: float = Field(
        _apf.WRITE_BIT_FJ,
        ge=0,
        description="per cell bit written by a write pass, a load or an unload (fJ; "
        "default 12.875: cimkit's SRAM 0.103 pJ per byte)",
    )
    count_energy_fj_per_row: float = Field(
        _apf.COUNT_FJ_PER_ROW,
        ge=0,
        description="per row of a tag count (responder count) of a tile (fJ; "
        "default 30: a 1-bit add at Horowitz's 8-bit add energy)",
    )
    cell_area_um2: float = Field(
        _apf.CELL_AREA_UM2,
        ge=0,
        description="area per bit cell with its share of the periphery (um^2; "
        "default 0.52: CAMSHAP's aCAM cell); the AP's area is words x the program's columns x this",
    )
    input_bits: int = Field(16, ge=2, le=32, description="bits of the signed score codes loaded into the AP")
    output_bits: int = Field(8, ge=1, le=24, description="bits of the output codes (probabilities k / 2**bits)")
    exp_poly: Literal["chebyshev64", "ibert"] = Field(
        "chebyshev64",
        description="the exp polynomial: 'chebyshev64' (cimkit.ops.intsoftmax.DEFAULT_EXP, 64 "
        "segments) or 'ibert' (I-BERT's, one segment)",
    )
    precision: Literal["wide", "low"] = Field(
        "wide",
        description="internal widths of the integer softmax: 'wide' (cimkit.ops.intsoftmax.WIDE: 30 "
        "fraction bits, exp(0) = 2**38, 60-62-bit intermediates) or 'low' (LOW_PRECISION: 10 fraction bits, "
        "exp(0) = 2**16, a 16-bit multiplier)",
    )

    @model_validator(mode="after")
    def _one_tile(self) -> "ApSpec":
        if self.words < self.tile_rows:
            raise ValueError(
                f"words ({self.words}) must be at least tile_rows ({self.tile_rows}): the AP holds at least one array"
            )
        return self


class CamAttentionSpec(StrictModel):
    """The CAM attention unit (unit ``cam_attention``; ``cimkit.cost.cam_attention``): HAD's binarized attention
    (Horton et al., arXiv 2502.01770) on a binary CAM. Per attention layer each head's keys (``d`` bits each)
    are written into the rows of ``arrays`` arrays of ``rows`` x ``cols`` bit cells; each query drives its
    ``d`` bits on the search lines, every key row's match line settles to a level set by its Hamming distance
    and a converter (``adc_type``, ``score_bits``, shared by ``rows_per_adc`` rows) reads it as a score; a key
    wider than ``cols`` spans several arrays whose partial scores are added. A counting sorter over the small
    score range keeps each query's top N. The CAM figures default to ``cimkit.ap.figures``' (CAMSHAP's CAM
    capacitances, cimkit's SRAM write energy: the associative processor's price list, one binary CAM) and are
    scaled from ``figures_node_nm`` to ``technology.node_nm``; converters and the selector's adders and
    comparators are the cost model's shared ADC kinds and Horowitz primitives at the chip's node. Read only
    when an op is routed to ``cam_attention``."""

    model_config = _FROZEN

    rows: int = Field(
        _apf.TILE_ROWS,
        ge=1,
        le=65536,
        description="key rows of one CAM array; a head's keys beyond this span "
        "several arrays searched at once (default 256: CAMSHAP / X-TIME arrays, cimkit.ap.figures.TILE_ROWS)",
    )
    cols: int = Field(
        64,
        ge=1,
        le=4096,
        description="bit columns of one array; a key of more bits spans several arrays whose "
        "partial scores are added (default 64: the head width d_k of BERT-base, MiniLM and DeiT; an assumption)",
    )
    arrays: int | None = Field(
        None,
        ge=1,
        le=1 << 30,
        description="CAM arrays of the unit; null: as many as the largest attention layer "
        "needs to hold every head's keys at once (the unit sized to the workload, as chip.tiles null sizes the "
        "chip); a layer needing more runs in sequential rounds",
    )
    clock_hz: float = Field(
        _apf.CLOCK_HZ,
        gt=0,
        description="cycles per second of the unit: searches, key-row writes and the "
        "selector's steps (Hz; default 1 GHz, cimkit.ap.figures.CLOCK_HZ, an assumption)",
    )
    search_cycles: int = Field(
        1,
        ge=1,
        le=64,
        description="cycles of one search (precharge, search lines, match-line evaluation) before "
        "the rows' levels are converted (default 1: a binary CAM search per cycle, as cimkit.ap.figures counts)",
    )
    compare_row_energy_fj: float = Field(
        _apf.COMPARE_ROW_FJ,
        ge=0,
        description="match-line precharge and sense per key row per search (fJ; "
        "default 32.74: CAMSHAP's C_pre and C_mlso, cimkit.ap.figures)",
    )
    compare_bit_energy_fj: float = Field(
        _apf.COMPARE_BIT_FJ,
        ge=0,
        description="match line and search line per key bit per row searched (fJ; "
        "default 0.8646: CAMSHAP's C_ml and data line, cimkit.ap.figures)",
    )
    write_bit_energy_fj: float = Field(
        _apf.WRITE_BIT_FJ,
        ge=0,
        description="per key bit written into a CAM row (fJ; default 12.875: cimkit's "
        "SRAM 0.103 pJ per byte, cimkit.ap.figures)",
    )
    cell_area_um2: float = Field(
        _apf.CELL_AREA_UM2,
        ge=0,
        description="area per bit cell with its share of the array periphery (um^2; "
        "default 0.52: CAMSHAP's aCAM cell, cimkit.ap.figures); the arrays' area is arrays x rows x cols x this",
    )
    figures_node_nm: float = Field(
        16.0,
        ge=7,
        le=130,
        description="node the four CAM figures above are given at (nm; default 16: CAMSHAP's / "
        "X-TIME's, as cimkit.cam.CamSpec.node_nm); the cost model scales them to technology.node_nm and supply "
        "(cimkit.cost.tech); give the chip's node and supply to use them unscaled",
    )
    figures_supply_v: float = Field(
        0.8,
        gt=0,
        le=2,
        description="supply the CAM figures are given at (V; default 0.8: cimkit.cam.CamSpec."
        "supply_v, the 16 nm nominal assumed for CAMSHAP)",
    )
    adc_type: str = Field(
        "sar",
        description="converter reading a row's match-line level as its score, an ADC kind of "
        "cimkit.cost.components.ADC_KINDS (as chip.adc_type), priced at score_bits at the chip's node (default "
        "'sar': successive approximation; an assumption, the papers' sensing circuit was not readable here)",
    )
    score_bits: int | None = Field(
        None,
        ge=1,
        le=16,
        description="bits of a row's converted score; null: the exact count, ceil(log2(min(d, "
        "cols) + 1)) for the widest key of d bits the unit holds (7 at 64 bits); fewer quantize the Hamming score",
    )
    rows_per_adc: int = Field(
        8,
        ge=1,
        le=65536,
        description="key rows sharing one converter, converted one after another (default 8: "
        "periphery.columns_per_adc of the rram-22nm preset; an assumption)",
    )
    selector_lanes: int = Field(
        8,
        ge=1,
        le=65536,
        description="scores per cycle the top-N selector takes: a counting sorter (a histogram "
        "of the scores, a scan of it from the top to the N-th score, a pass keeping the scores above) takes "
        "ceil(keys / lanes) cycles per pass (default 8: an assumption)",
    )

    @field_validator("adc_type")
    @classmethod
    def _adc_type(cls, name: str) -> str:
        if name in BUILTIN_ADC_KINDS:
            return name
        return _registered(adc_kinds(), name)

    @model_validator(mode="after")
    def _sharing(self) -> "CamAttentionSpec":
        if self.rows_per_adc > self.rows:
            raise ValueError(
                f"rows_per_adc ({self.rows_per_adc}) must be at most rows ({self.rows}): a converter "
                "serves rows of one array"
            )
        return self


@functools.lru_cache(maxsize=None)
def mapping_fields(model: type[BaseModel], prefix: str = "") -> frozenset[str]:
    """Dotted paths of the free-form mapping fields of ``model`` (e.g. ``routing``): their keys are data,
    not field names, so a dotted change may add one."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if typing.get_origin(annotation) is dict:
            paths.add(prefix + name)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= mapping_fields(annotation, f"{prefix}{name}.")
    return frozenset(paths)


def apply_dotted(
    data: dict[str, Any], changes: dict[str, Any], what: str, mappings: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``data`` (a nested dump of a spec) with dotted-path ``changes`` applied; unknown paths raise, except
    new keys under the free-form mapping fields named in ``mappings`` (``routing.softmax``)."""
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise SpecError(f"{dotted}: {key!r} is not a section of {what}")
            node = node[key]
        if leaf not in node and ".".join(parents) not in mappings:
            raise SpecError(f"{dotted}: unknown field {leaf!r}; allowed: {', '.join(node)}")
        node[leaf] = value
    return data


#: sections added after saved files, studies and checkpoints were first fingerprinted: ``stored_content`` leaves
#: them out while they hold their defaults, so that what was stored before still matches
LATE_SECTIONS = ("neuron",)


def stored_content(spec: "HardwareSpec") -> dict:
    """``spec.model_dump(mode="json")`` as fingerprints store it: the ``LATE_SECTIONS`` only when not default."""
    dump = spec.model_dump(mode="json")
    default = type(spec)().model_dump(mode="json")
    for key in LATE_SECTIONS:
        if key in dump and dump[key] == default.get(key):
            del dump[key]
    return dump


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
        return self.from_dict(
            apply_dotted(self.model_dump(), changes, type(self).__name__, mapping_fields(type(self))),
            source=self.name,  # type: ignore[attr-defined]  # every SpecModel (HardwareSpec, CamSpec) has a name
        )


class HardwareSpec(SpecModel):
    """One CIM chip description, shared by ``cimkit.convert`` (accuracy) and the cost model."""

    _what: ClassVar[str] = "hardware description"

    name: str = Field("custom", description="a name for the chip (presets: the preset's name); a label only")
    description: str = Field("", description="free text describing the chip; a label only")
    weight_bits: int | None = Field(8, ge=1, le=24, description="signed weight resolution; None = analog")
    weight_scale: Literal["per_tensor", "per_channel"] = Field(
        "per_channel", description="digital scale of weights: one per layer or one per output column"
    )
    device: DeviceSpec = DeviceSpec()
    array: ArraySpec = ArraySpec()
    periphery: PeripherySpec = PeripherySpec()
    technology: TechnologySpec = TechnologySpec()
    chip: ChipSpec = ChipSpec()
    digital: DigitalSpec = DigitalSpec()
    ap: ApSpec = ApSpec()
    cam_attention: CamAttentionSpec = CamAttentionSpec()
    neuron: NeuronSpec = NeuronSpec()
    routing: dict[str, str] = Field(
        {},
        description="op kind -> unit that runs it (units of cimkit.spec.units.UNIT_TYPES: 'crossbar', "
        "'digital', 'ap', 'cam_attention', plug-ins); kinds not listed run on the op registry's default unit",
    )

    @field_validator("routing")
    @classmethod
    def _routes(cls, routing: dict[str, str]) -> dict[str, str]:
        if not routing:
            return routing
        kinds = op_kinds()
        problems = []
        for kind, unit in routing.items():
            if kind not in kinds:
                problems.append(
                    f"op kind {kind!r} (routed to {unit!r}) is not a registered op kind; op kinds: {', '.join(kinds)}"
                )
            elif unit not in UNIT_TYPES:
                problems.append(
                    f"op kind {kind!r} is routed to {unit!r}, which is not a unit; units: "
                    f"{', '.join(UNIT_TYPES.names())}"
                )
            elif not UNIT_TYPES.get(unit).can_run(kind):
                problems.append(
                    f"op kind {kind!r} is routed to unit {unit!r}, which cannot run it; {unit!r} runs "
                    f"{', '.join(sorted(UNIT_TYPES.get(unit).kinds()))}"
                )
        if problems:
            raise PydanticCustomError("routing", "{problems}", {"problems": "; ".join(problems)})
        return routing

    def unit_for(self, kind: str) -> str:
        """The unit that runs op kind ``kind``: ``routing[kind]``, else the op registry's default unit
        (an ``InputError`` listing the op kinds for an unknown one)."""
        if kind in self.routing:
            return self.routing[kind]
        return default_unit(kind)

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
