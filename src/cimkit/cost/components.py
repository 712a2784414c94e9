"""Cost components: small plug-ins that price the events the mapping counts (Timeloop/Accelergy style).

``cimkit.cost.events`` counts what a chip does for a workload (array reads, conversions, row drives,
shift-adds, partial-sum adds, bytes through buffers and wires, digital primitives, cell writes) and how
many of each instance it holds (arrays, ADCs, tiles, SRAM); a ``Component`` turns those counts into area,
energy, latency and leakage. Every figure is a numpy array over configurations (shape (C,) for chip
quantities, (C, L) over configurations x layers for per-layer ones), in SI units named in the method:
``area_mm2``, ``energy_per_event_j``, ``latency_per_event_s``, ``leakage_w``.

A component is registered by name in ``COMPONENTS``; its name is its line in the report's breakdowns
(``energy_breakdown_j``, ``area_breakdown_mm2``, ``latency_breakdown_s`` and the layers' ``energy_<name>_j``).
The built-ins (``array``, ``drivers``, ``adc``, ``accumulation``, ``buffer``, ``interconnect``, ``digital``,
``writes``, ``ap``) are the crossbar model of ``constants.py`` (NeuroSim-calibrated where it says so), the
digital unit (Horowitz's 45 nm figures, scaled) and the associative processor (``cimkit.ap.figures``). A
plug-in::

    from cimkit.cost.components import COMPONENTS, Component

    class Sensor(Component):
        name, unit = "sensor", "crossbar"            # breakdown line; the chip unit it belongs to
        def energy_per_event_j(self, ctx):
            return {"conversions": 1e-15}            # 1 fJ per ADC conversion
    COMPONENTS.register("sensor", Sensor())

``ADC_KINDS`` holds the converters ``chip.adc_type`` names (built-ins mlsa, sar, survey, integrate_fire);
``DRIVERS`` the row-drive energy per ``periphery.dac_mode`` (a mode it does not list is priced from its
``DacMode`` properties). This module imports only numpy and light
cimkit modules (no torch, no cimkit.spec), so the spec can validate its option strings against it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..ap import figures as APF
from ..errors import InputError, short_repr
from ..registry import Registry
from . import constants as K
from .tech import energy_factor

#: the digital primitives the op registry counts (cimkit.workload.registry.DIGITAL_PRIMITIVES)
DIGITAL_PRIMITIVES = ("add", "mul", "mac", "cmp", "exp", "div", "sqrt", "lookup")


class Context:
    """What a component prices from: ``p`` the spec columns (each (C, 1)), ``events`` the counts of
    ``cimkit.cost.events.count`` ((C, L) per layer, (C,) per chip), the technology factors relative to
    the 22 nm / 0.8 V reference (``area_scale``, ``energy_scale``, ``delay_scale``, each (C, 1)), the clock
    period ``cycle_s``, one conversion's and one array read's time (``conversion_s``, ``read_s``; see
    ``read_cycle``) and, once the areas are known, the chip's ``area_mm2`` (C,) and the area of every
    component but the overheads (``core_area_mm2``)."""

    def __init__(self, p: dict, events: dict, area_scale, energy_scale, delay_scale) -> None:
        self.p, self.events = p, events
        self.area_scale, self.energy_scale, self.delay_scale = area_scale, energy_scale, delay_scale
        self.cycle_s = 1.0 / p["clock_hz"]  # read_cycle sets these three
        self.conversion_s = self.read_s = 0.0
        self.core_area_mm2 = None
        self.area_mm2 = None
        self._scales: dict = {}

    def energy_scale_from(self, node_nm: float, supply_v: float):
        """Energy at the configurations' node and supply relative to a figure given at (node_nm, supply_v)
        (Stillmaker & Baas 2017 scaling, as ``tech.energy_factor``)."""
        key = (node_nm, supply_v)
        if key not in self._scales:
            self._scales[key] = self.energy_scale / _energy_factor_at(float(node_nm), float(supply_v))
        return self._scales[key]


@functools.lru_cache(maxsize=64)
def _energy_factor_at(node_nm: float, supply_v: float) -> float:
    return float(energy_factor(node_nm, supply_v))


class Component:
    """One priced part of a chip. Override what applies; every default is zero.

    - ``name``: the breakdown line; ``unit``: the chip unit it belongs to ("crossbar", "digital", "chip"
      for parts every unit shares, "cam", ...);
    - ``area_mm2(ctx)`` -> (C,): silicon area; components with ``overhead = True`` are sized after the
      others and read ``ctx.core_area_mm2`` (the interconnect is a fraction of the rest);
    - ``energy_per_event_j(ctx)`` -> {event name: J per event}, each broadcastable to (C, L); the events
      are ``ctx.events`` entries (``conversions``, ``cell_reads``, ...), their sum is the component's energy;
    - ``latency_per_event_s(ctx)`` -> {serial event name: s per event}: events that follow one another
      on a layer's critical path (``serial_reads``, ``adc_slots``, ``moved_words``, ``digital_cycles``...);
    - ``leakage_w(ctx)`` -> (C,): static power while the chip runs;
    - ``networked``: its area lies within the span of the tiles' interconnect (H-tree or bus). False for a
      unit beside it (the associative processor, fed from the global buffer with its loads priced by its own
      model): its area neither lengthens the interconnect's wires nor sizes the interconnect's area.
    """

    name: str = ""
    unit: str = ""
    overhead: bool = False
    networked: bool = True

    def area_mm2(self, ctx: Context):
        return 0.0

    def energy_per_event_j(self, ctx: Context) -> dict:
        return {}

    def latency_per_event_s(self, ctx: Context) -> dict:
        return {}

    def leakage_w(self, ctx: Context):
        return 0.0


def check_component(name: str, comp: object) -> Component:
    """``comp`` if it is a usable component, else an ``InputError`` naming it and what is wrong."""
    if not isinstance(comp, Component):
        raise InputError(
            f"component {name!r}: expected an instance of cimkit.cost.components.Component, got "
            f"{type(comp).__name__} {short_repr(comp)}"
        )
    if getattr(comp, "name", "") != name:
        raise InputError(
            f"component {name!r}: its name attribute is {short_repr(getattr(comp, 'name', None))}; it must "
            f"equal the name it is registered under (its line in the report's breakdowns)"
        )
    unit = getattr(comp, "unit", "")
    if not isinstance(unit, str) or not unit.strip():
        raise InputError(
            f"component {name!r} names no unit: set its 'unit' attribute to the chip unit it belongs "
            "to ('crossbar', 'digital', 'chip' for shared parts, ...)"
        )
    return comp


class _Components(Registry[Component]):
    def register(self, name: str, entry: Component, *, replace: bool = False) -> Component:  # type: ignore[override]
        return super().register(name, check_component(name, entry), replace=replace)


#: cost components by name (the report's breakdown lines)
COMPONENTS: Registry[Component] = _Components("cost component")


def check_figure(comp: str, what: str, value, event: str | None = None):
    """``value`` as an array if every entry is a finite number >= 0, else an ``InputError`` naming the
    component (and event)."""
    if type(value) is float and value >= 0:
        return value
    arr = np.asarray(value, dtype=float)
    if arr.size and arr.min() >= 0:  # NaN fails this (its minimum is NaN)
        return arr
    with np.errstate(invalid="ignore"):
        bad = ~(arr >= 0)
    if bad.any():
        v = arr[bad].ravel()[0]
        of = f" per {event!r}" if event else ""
        raise InputError(f"component {comp!r} gives {what}{of} = {v:g}: a cost must be a finite number >= 0")
    return arr


# ---- ADC kinds -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdcKind:
    """One converter type at the 22 nm / 0.8 V reference: ``area_um2(bits)``, ``energy_pj(bits, pulses)``
    (``pulses``: input pulses an integrating converter sums before it converts), ``time_ns(bits)`` (the
    conversion's logic delay, which scales with the node's gate delay); all elementwise on numpy arrays.
    ``sense_ns``: analog sensing time per conversion that does not scale with the node. ``sets_clock``: a
    one-cycle converter whose read cycle (array read plus conversion, NeuroSim's synchronous mode) sets the
    chip's clock; otherwise a conversion takes its own time, at least one clock cycle.
    ``includes_column_current``: the energy is a measured chip's fit that already holds the cells' column
    current (the ``array`` component then prices none)."""

    name: str
    description: str
    area_um2: Callable
    energy_pj: Callable
    time_ns: Callable
    sense_ns: float = 0.0
    sets_clock: bool = False
    includes_column_current: bool = False


#: converters by name (``chip.adc_type``)
ADC_KINDS: Registry[AdcKind] = Registry("ADC kind", loader="cimkit.cost.components")


def register_adc_kind(kind: AdcKind, *, replace: bool = False) -> AdcKind:
    """Add ``kind`` to ``ADC_KINDS`` under its name (``chip.adc_type``; ``replace`` to override one); returns it."""
    return ADC_KINDS.register(kind.name, kind, replace=replace)


def _levels(bits):
    return 2.0**bits - 1


#: NeuroSim's 22 nm figures at its 0.85 V supply, restated at the 22 nm / 0.8 V reference of this module
_AT_NEUROSIM_SUPPLY = 1.0 / float(energy_factor(K.NEUROSIM_NODE_NM, K.NEUROSIM_SUPPLY_V))


def mlsa_energy_pj(bits, pulses=None):
    """One conversion of NeuroSim's current-mode MLSA (pJ, 22 nm / 0.8 V): its comparators' power per level
    over the sensing time, and the encoder's (L + log2 L) gates; the column current it senses is priced
    per cell read by the ``array`` component."""
    levels = 2.0**bits
    return (
        K.MLSA_LEVEL_ENERGY_PJ * (levels - 1) + K.ENCODER_ENERGY_PJ_PER_GATE * (levels + bits)
    ) * _AT_NEUROSIM_SUPPLY


register_adc_kind(
    AdcKind(
        "mlsa",
        "multi-level sense amplifier / flash: 2^b - 1 current comparators and an encoder (NeuroSim's default)",
        lambda b: K.MLSA_AREA_UM2_PER_LEVEL * _levels(b),
        mlsa_energy_pj,
        lambda b: K.ENCODER_DELAY_NS + K.ENCODER_DELAY_NS_PER_LEVEL * 2.0**b,
        sense_ns=K.MLSA_SENSE_TIME_NS,
        sets_clock=True,
    )
)
register_adc_kind(
    AdcKind(
        "sar",
        "successive approximation: b cycles and a 2^b-unit capacitor DAC",
        lambda b: K.SAR_AREA_UM2_PER_BIT * b + K.SAR_CAP_AREA_UM2 * 2.0**b,
        lambda b, pulses: K.SAR_ENERGY_PJ_PER_BIT * b + K.SAR_CAP_ENERGY_PJ * 2.0**b,
        lambda b: K.SAR_TIME_NS_PER_BIT * b,
    )
)
register_adc_kind(
    AdcKind(
        "survey",
        "the energy frontier of published ADCs (Murmann's survey): ~1 fJ per conversion step",
        lambda b: K.SURVEY_AREA_UM2_PER_LEVEL * _levels(b),
        lambda b, pulses: K.SURVEY_FOM_PJ_PER_STEP * (2.0**b),
        lambda b: K.SURVEY_TIME_NS + 0 * b,
    )
)
register_adc_kind(
    AdcKind(
        "integrate_fire",
        "voltage-mode integrate-and-fire neuron (NeuRRAM), fitted to the chip's ten points",
        lambda b: K.IF_AREA_UM2 + 0 * b,
        lambda b, pulses: K.IF_ENERGY_PJ_PER_PULSE_BIT * pulses * b,
        lambda b: K.IF_TIME_NS_PER_LEVEL * 2.0**b,
        includes_column_current=True,
    )
)


class AdcFigures(NamedTuple):
    """One converter's figures per configuration (each (C, 1)), at 22 nm / 0.8 V (``AdcKind``)."""

    area_um2: np.ndarray
    energy_pj: np.ndarray
    logic_ns: np.ndarray
    sense_ns: np.ndarray
    sets_clock: np.ndarray
    includes_column_current: np.ndarray


def adc_figures(kind_codes, kinds: tuple[str, ...], bits, pulses) -> AdcFigures:
    """The ``AdcFigures`` of each configuration's converter: ``kind_codes`` (C, 1) index ``kinds`` (names of
    ``ADC_KINDS``)."""
    out: list[np.ndarray] | None = None
    for code, name in enumerate(kinds):
        k = ADC_KINDS.get(name, "chip.adc_type")
        figs = [
            np.broadcast_to(np.asarray(f, dtype=float), np.shape(bits))
            for f in (k.area_um2(bits), k.energy_pj(bits, pulses), k.time_ns(bits), k.sense_ns)
        ]
        figs += [np.full(np.shape(bits), bool(k.sets_clock)), np.full(np.shape(bits), bool(k.includes_column_current))]
        out = figs if out is None else [np.where(kind_codes == code, new, old) for new, old in zip(figs, out)]
    assert out is not None  # kinds names every configuration's converter: at least one
    return AdcFigures(*out)


def array_read_ns(ctx):
    """One array read (ns, (C, 1)): ``periphery.read_latency_ns`` when given, else the column's settling
    after the slower of the word line's switch and, where converters are shared, the column multiplexer's
    decoder (NeuroSim's SubArray read path), at the node's gate delay."""
    p = ctx.p
    m = p["columns_per_adc"]
    decoder = np.where(m > 1, K.MUX_DECODER_NS + K.MUX_DECODER_NS_PER_GATE * p["cols"] / m * p["rows"], 0.0)
    wordline = K.WORDLINE_SWITCH_NS_PER_COL * p["cols"]
    modeled = (K.COLUMN_SETTLE_NS + np.maximum(wordline, decoder)) * ctx.delay_scale
    given = p["read_latency_ns"]
    return np.where(np.isnan(given), modeled, given)


def read_cycle(ctx) -> None:
    """Set ``ctx.cycle_s`` (the chip's clock period), ``ctx.conversion_s`` (one conversion) and
    ``ctx.read_s`` (one array read), each (C, 1).

    With a one-cycle converter (``AdcKind.sets_clock``, the MLSA) the chip runs synchronously on its read
    cycle, as NeuroSim's: 1.4 x (array read + conversion) bounds the clock period from below
    (``technology.clock_hz`` is the fastest), and every component counts cycles of it. Other converters take
    their own conversion time after each array read, at ``technology.clock_hz``."""
    adc = Adc.figures(ctx)
    read_ns = array_read_ns(ctx)
    conversion_ns = adc.logic_ns * ctx.delay_scale + adc.sense_ns
    cycle_ns = np.where(adc.sets_clock, K.READ_CYCLE_MARGIN * (read_ns + conversion_ns), 0.0)
    ctx.cycle_s = np.maximum(1.0 / ctx.p["clock_hz"], cycle_ns * 1e-9)
    ctx.conversion_s = conversion_ns * 1e-9
    ctx.read_s = np.where(adc.sets_clock, 0.0, read_ns * 1e-9)


# ---- row drivers per DAC mode -------------------------------------------------------------------------
#: energy of one row drive (pJ at 22 nm / 0.8 V) per ``periphery.dac_mode``, a function of input bits. A
#: DAC mode of ``cimkit.spec.units.DAC_MODES`` without an entry here is priced from its own properties
#: (``default_drive_pj``); register one to price it otherwise: ``DRIVERS.register("my_mode", lambda bits: ...)``
DRIVERS: Registry[Callable] = Registry("row-driver model (periphery.dac_mode)")
DRIVERS.register("bit_serial", lambda bits: 0.0 * bits)
DRIVERS.register("pulse_train", lambda bits: K.INPUT_PULSE_ENERGY_PJ + 0 * bits)
DRIVERS.register("multi_level", lambda bits: K.DAC_ENERGY_PJ_PER_LEVEL * (2.0**bits))
#: DAC modes whose ``DRIVERS`` figure is a measured chip's fit that already holds the word-line charging and
#: the row registers (NeuRRAM's pulse trains): neither is priced again from the array's geometry
FITTED_DRIVE_MODES = {"pulse_train"}


def default_drive_pj(bits, binary):
    """Driver energy (pJ, 22 nm / 0.8 V) per row drive of a DAC mode that ``DRIVERS`` does not list, beyond
    the word line's own charging: nothing for a binary drive (pulses of one level, as bit_serial), the DAC's
    energy per output level for a multi-level one (as multi_level). (The row-drive events already count the
    pulses per read and, for binary drives, the 1 bits.)"""
    return np.where(binary, 0.0, K.DAC_ENERGY_PJ_PER_LEVEL * (2.0**bits))


# ---- the crossbar unit's components (constants.py; unchanged figures) --------------------------------------
def _mm2(um2):
    return um2 * 1e-6


#: cell levels averaged exactly up to this many; more levels (up to 2^24 per cell) by this many even points
_MAX_LEVELS = 4096


def effective_conductance_s(p):
    """Mean conductance (S) a read cell conducts through its access transistor (0.25 R_on, NeuroSim's
    sizing), with the weights spread evenly over the 2^bits_per_cell levels from g_min to g_max (NeuroSim's
    random-weight traces); (C, 1), computed once per distinct (g_min, g_max, bits_per_cell)."""
    keys = np.concatenate([p["g_min_us"], p["g_max_us"], p["bits_per_cell"].astype(float)], axis=1)
    distinct, index = np.unique(keys, axis=0, return_inverse=True)
    means = np.empty(len(distinct))
    for i, (g_min_us, g_max_us, bpc) in enumerate(distinct):
        n = 2.0**bpc
        points = int(min(n, _MAX_LEVELS))
        k = np.arange(points) * ((n - 1) / max(points - 1, 1))
        g = (g_min_us + k / max(n - 1, 1) * (g_max_us - g_min_us)) * 1e-6
        means[i] = np.mean(1.0 / (1.0 / np.maximum(g, 1e-30) + K.ACCESS_R_OVER_R_ON / (g_max_us * 1e-6)))
    return means[np.ravel(index)][:, None]


class Array(Component):
    """Cell arrays: the column current each active cell adds while the converter senses it (NeuroSim's
    current-mode MLSA: b (V_read / 0.5 V) g_eff t_sense per cell); area cells x F^2. Their read time is
    part of the read cycle (``read_cycle``)."""

    name, unit = "array", "crossbar"

    def area_mm2(self, ctx):
        p = ctx.p
        f_m = p["node_nm"][:, 0] * 1e-9
        return ctx.events["chip_arrays"] * p["rows"][:, 0] * p["cols"][:, 0] * p["cell_area_f2"][:, 0] * f_m**2 * 1e6

    def energy_per_event_j(self, ctx):
        p = ctx.p
        per_cell = (
            K.COLUMN_CURRENT_W_PER_S
            * p["read_v"]
            / K.COLUMN_CURRENT_REF_V
            * effective_conductance_s(p)
            * K.MLSA_SENSE_TIME_NS
            * 1e-9
        )
        # a converter whose figure is a measured chip's fit already holds the column current
        return {"cell_reads": np.where(Adc.figures(ctx).includes_column_current, 0.0, per_cell)}

    def latency_per_event_s(self, ctx):
        # a one-cycle converter's read is within its read cycle; other converters wait for the array read
        return {"serial_reads": ctx.read_s}


class Drivers(Component):
    """Word lines and their drivers: each row pulse charges the row (``WORDLINE_CAP_F_PER_CELL`` per column,
    Vdd^2) once per multiplexer phase, plus the DAC mode's driver energy (``DRIVERS``, else
    ``default_drive_pj``) at ``periphery.input_bits`` (``row_drives``) or, for a spike (``binary_row_drives``:
    ops with ``Op.binary_input``), at 1 bit; every array read clocks the switch matrix's row latches once per
    phase. Area per row and column."""

    name, unit = "drivers", "crossbar"

    def area_mm2(self, ctx):
        p = ctx.p
        per_array = K.ROW_PERIPHERY_UM2_PER_ROW * p["rows"][:, 0] + K.COL_PERIPHERY_UM2_PER_COL * p["cols"][:, 0]
        return ctx.events["chip_arrays"] * per_array * ctx.area_scale[:, 0] * 1e-6

    @staticmethod
    def drive_pj(p, bits):
        """The DAC mode's driver energy per row drive of ``bits``-bit inputs (pJ at 22 nm / 0.8 V, (C, 1))."""
        drive = None
        for code, mode in enumerate(p["dac_modes"]):
            if mode in DRIVERS:
                e = np.asarray(DRIVERS.get(mode)(bits), dtype=float)
            else:  # a plug-in DAC mode without its own driver model: priced from its properties
                e = default_drive_pj(bits, p["binary_drive"])
            drive = e if drive is None else np.where(p["dac_mode"] == code, e, drive)
        return drive

    def energy_per_event_j(self, ctx):
        p = ctx.p
        modes = p["dac_modes"]
        drive = self.drive_pj(p, p["input_bits"])
        # NeuroSim's 22 nm figures (J), scaled to each configuration's node and supply
        at_node = ctx.energy_scale_from(K.NEUROSIM_NODE_NM, K.NEUROSIM_SUPPLY_V)
        wordline_j = K.WORDLINE_CAP_F_PER_CELL * K.NEUROSIM_SUPPLY_V**2 * p["cols"] * p["columns_per_adc"] * at_node
        latches_j = K.ROW_LATCH_ENERGY_PJ * 1e-12 * p["rows"] * p["columns_per_adc"] * at_node
        fitted = np.isin(p["dac_mode"], [i for i, m in enumerate(modes) if m in FITTED_DRIVE_MODES])
        figures = {"row_drives": ctx.energy_scale * 1e-12 * drive + np.where(fitted, 0.0, wordline_j)}
        if ctx.events.get("binary_inputs", np.zeros(1, dtype=bool)).any():  # spikes: 1-bit drives
            one_bit = self.drive_pj(p, np.ones_like(p["input_bits"]))
            figures["binary_row_drives"] = ctx.energy_scale * 1e-12 * one_bit + np.where(fitted, 0.0, wordline_j)
        figures["array_reads"] = np.where(fitted, 0.0, latches_j)
        return figures


class Adc(Component):
    """Column converters of ``chip.adc_type`` (``ADC_KINDS``): energy per conversion (of a read of one pulse
    for an op whose inputs are spikes, ``Op.binary_input``); a converter serves ``columns_per_adc`` columns in
    turn, each conversion one read cycle (at least one clock cycle)."""

    name, unit = "adc", "crossbar"

    @staticmethod
    def figures(ctx) -> AdcFigures:
        """The ``AdcFigures`` of one converter per configuration (computed once per pricing)."""
        if "adc" not in ctx._scales:
            p = ctx.p
            ctx._scales["adc"] = adc_figures(p["adc_type"], p["adc_types"], p["adc_bits"], p["pulses"])
        return ctx._scales["adc"]

    def area_mm2(self, ctx):
        return ctx.events["adcs"] * self.figures(ctx).area_um2[:, 0] * ctx.area_scale[:, 0] * 1e-6

    def energy_per_event_j(self, ctx):
        energy_pj = self.figures(ctx).energy_pj
        spikes = ctx.events.get("binary_inputs")
        if spikes is not None and spikes.any():  # a spike read is one pulse (an integrating converter sums one)
            p = ctx.p
            one = adc_figures(p["adc_type"], p["adc_types"], p["adc_bits"], np.ones_like(p["pulses"])).energy_pj
            energy_pj = np.where(spikes, one, energy_pj)
        return {"conversions": energy_pj * ctx.energy_scale * 1e-12}

    def latency_per_event_s(self, ctx):
        clocked = self.figures(ctx).sets_clock
        return {"adc_slots": np.where(clocked, ctx.cycle_s, np.maximum(ctx.conversion_s, ctx.cycle_s))}


class Accumulation(Component):
    """Shift-and-add after each converter (NeuroSim's ShiftAdd: an ADC-wide adder and flip-flops per
    conversion for the weight slices; an input-bit adder every columns_per_weight conversions when inputs
    are bit-serial, never for an op reading spikes in one pass, ``Op.binary_input``), and an adder tree over
    the partial sums of a layer's row tiles."""

    name, unit = "accumulation", "crossbar"

    @staticmethod
    def _widths(ctx):
        p = ctx.p
        b, cpw, m = p["adc_bits"], ctx.events["columns_per_weight"], p["columns_per_adc"]
        # inputs read in several passes are shifted and added per pass; a spike op's one pass is not (C, L)
        serial_inputs = p["passes"] > 1
        spikes = ctx.events.get("binary_inputs")
        if spikes is not None and spikes.any():
            serial_inputs = serial_inputs & ~spikes
        return b, cpw, m, serial_inputs

    @staticmethod
    def _cells_um2(b, cpw, input_bits):
        """Adder bits and flip-flops of one converter's shift-add, as area at 22 nm (um^2)."""
        return K.FULL_ADDER_BIT_UM2 * (2 * b + cpw) + K.FLIP_FLOP_UM2 * (2 * (b + cpw) + input_bits)

    def area_mm2(self, ctx):
        b, cpw, _, _ = self._widths(ctx)
        width = self._cells_um2(b, cpw, ctx.p["input_bits"]) / self._cells_um2(5, 4, 8)
        return ctx.events["adcs"] * K.SHIFT_ADD_AREA_UM2 * width[:, 0] * ctx.area_scale[:, 0] * 1e-6

    def energy_per_event_j(self, ctx):
        b, cpw, m, serial_inputs = self._widths(ctx)
        weight = K.ADDER_ENERGY_PJ_PER_BIT * b + K.SHIFT_ADD_FF_ENERGY_PJ * (b + cpw)
        inputs = (np.ceil(m / cpw) / m) * (
            K.ADDER_ENERGY_PJ_PER_BIT * (b + cpw) + K.SHIFT_ADD_FF_ENERGY_PJ * (b + cpw + ctx.p["input_bits"])
        )
        per_conversion = (
            (weight + np.where(serial_inputs, inputs, 0.0))
            * 1e-12
            * ctx.energy_scale_from(K.NEUROSIM_NODE_NM, K.NEUROSIM_SUPPLY_V)
        )
        return {"conversions": per_conversion, "psum_adds": K.ADD_ENERGY_PJ * ctx.energy_scale * 1e-12}

    def latency_per_event_s(self, ctx):
        b, cpw, m, serial_inputs = self._widths(ctx)
        cycles = m + np.where(serial_inputs, np.ceil(m / cpw), 0.0)
        width = b + ctx.p["input_bits"] + cpw + 1
        adder_s = (K.ADDER_DELAY_NS + K.ADDER_DELAY_NS_PER_BIT * width) * ctx.delay_scale * 1e-9
        # cycles per adder stage: the adder's delay over the clock; NeuroSim counts them on its initial 1 GHz
        # grid before it slows the clock to the read cycle (neurosim_compat)
        grid_s = np.where(ctx.events["neurosim_counts"], 1e-9, ctx.cycle_s)
        # at least one cycle per stage: a clock so slow that its cycle overflows must give inf here, not 0 x inf
        stages = np.maximum(np.ceil(adder_s / grid_s), 1.0)
        return {"serial_reads": ctx.cycle_s * cycles, "tree_steps": stages * ctx.cycle_s}


class Buffer(Component):
    """Tile and global SRAM buffers: energy per byte moved, cycles per bus word (NeuroSim-calibrated)."""

    name, unit = "buffer", "chip"

    def area_mm2(self, ctx):
        return ctx.events["sram_kb"] * K.SRAM_AREA_UM2_PER_KB * ctx.area_scale[:, 0] * 1e-6

    def energy_per_event_j(self, ctx):
        return {"moved_bytes": K.SRAM_ENERGY_PJ_PER_BYTE * ctx.energy_scale * 1e-12}

    def latency_per_event_s(self, ctx):
        return {"moved_words": ctx.cycle_s * K.BUFFER_CYCLES_PER_WORD}


def off_network_area_mm2(ctx):
    """Area (mm^2, (C,) or 0.0) of the registered components that are not ``networked`` (computed once per
    pricing); 0.0 when there are none, so the interconnect's figures stay exactly those without them."""
    if "off_network" not in ctx._scales:
        area = 0.0
        for name in COMPONENTS.names():
            comp = COMPONENTS.get(name)
            if not comp.networked and not comp.overhead:
                area = area + check_figure(comp.name, "area_mm2", comp.area_mm2(ctx))
        ctx._scales["off_network"] = area
    return ctx._scales["off_network"]


class Interconnect(Component):
    """H-tree or bus: wire energy per bit and mm over half the edge of the networked chip (every component but
    those beside the interconnect, ``Component.networked``), C_wire Vdd^2 (the wire's capacitance per mm does
    not shrink with the node; NeuroSim uses 0.2 fF/um everywhere); area a fraction of the rest."""

    name, unit, overhead = "interconnect", "chip", True

    def area_mm2(self, ctx):
        networked = ctx.core_area_mm2 - off_network_area_mm2(ctx)
        return networked * np.where(ctx.p["htree"][:, 0], K.HTREE_AREA_FRACTION, K.BUS_AREA_FRACTION)

    def energy_per_event_j(self, ctx):
        hop_mm = (0.5 * np.sqrt(ctx.area_mm2 - off_network_area_mm2(ctx)))[:, None]
        supply = (ctx.p["supply_v"] / K.NEUROSIM_SUPPLY_V) ** 2
        return {"moved_bits": K.WIRE_ENERGY_PJ_PER_BIT_MM * hop_mm * supply * 1e-12}

    def latency_per_event_s(self, ctx):
        return {"moved_words": ctx.cycle_s * K.WIRE_CYCLES_PER_WORD}


# ---- the digital unit -----------------------------------------------------------------------------------
def primitive_energy_pj(primitive: str, bits):
    """Energy (pJ) of one ``primitive`` on ``bits``-bit integers at Horowitz's 45 nm / 0.9 V
    (constants.py: HOROWITZ_*; exp, div, sqrt as stated multiples of an add and a multiply)."""
    return primitive_energies_pj(bits)[primitive]


def primitive_energies_pj(bits) -> dict:
    """``primitive_energy_pj`` of every primitive at once."""
    add = K.HOROWITZ_ADD8_PJ * (bits / 8.0) ** K.ADD_BITS_EXPONENT
    mul = K.HOROWITZ_MUL8_PJ * (bits / 8.0) ** K.MUL_BITS_EXPONENT
    acc = K.HOROWITZ_ADD8_PJ * (2.0 * bits / 8.0) ** K.ADD_BITS_EXPONENT  # a MAC accumulates at 2b bits
    return {
        "add": add,
        "cmp": add,
        "mul": mul,
        "mac": mul + acc,
        "exp": K.EXP_MULS * mul + K.EXP_ADDS * add,
        "div": K.DIV_OVER_MUL * mul,
        "sqrt": K.SQRT_OVER_MUL * mul,
        "lookup": K.HOROWITZ_SRAM8KB_64B_PJ * bits / 64.0,
    }


#: cycles one lane takes per primitive (1 unless stated in constants.py)
PRIMITIVE_CYCLES = {
    "add": 1,
    "cmp": 1,
    "mul": 1,
    "mac": 1,
    "lookup": 1,
    "exp": K.EXP_CYCLES,
    "div": K.DIV_CYCLES,
    "sqrt": K.SQRT_CYCLES,
}


class Digital(Component):
    """The digital unit (spec.digital): ``lanes`` primitives per cycle on ``data_bits``-bit operands,
    each primitive priced from Horowitz (ISSCC 2014) at 45 nm / 0.9 V and scaled to the configuration's
    node and supply. Area: the activation and pooling units per tile of the NeuroSim calibration."""

    name, unit = "digital", "digital"

    def area_mm2(self, ctx):
        return ctx.events["tiles"] * K.DIGITAL_UNIT_AREA_UM2 * ctx.area_scale[:, 0] * 1e-6

    def energy_per_event_j(self, ctx):
        scale = ctx.energy_scale_from(K.HOROWITZ_NODE_NM, K.HOROWITZ_SUPPLY_V) * 1e-12
        bits = ctx.p["digital_bits"]
        energies = dict(primitive_energies_pj(bits))
        # an approximate multiplier / adder (digital.multiplier, digital.adder) prices the unit's MACs, the
        # products of two activations the simulator computes with them (cimkit.sim.digital)
        mul = energies["mul"]
        energies["mac"] = mul * ctx.p["digital_mul_factor"] + (energies["mac"] - mul) * ctx.p["digital_add_factor"]
        return {f"digital_{prim}": energies[prim] * scale for prim in DIGITAL_PRIMITIVES}

    def latency_per_event_s(self, ctx):
        return {"digital_cycles": ctx.cycle_s / ctx.p["digital_lanes"]}


# ---- cell writes (dynamic matmuls on rewritten arrays) --------------------------------------------------
class Writes(Component):
    """Cells programmed per inference (a matmul's second operand written into CIM arrays): energy per cell
    write (device.write_energy_pj, verify included), one row write (device.write_time_ns) after another
    within an array, the arrays in parallel."""

    name, unit = "writes", "crossbar"

    def energy_per_event_j(self, ctx):
        return {"cell_writes": ctx.p["write_energy_pj"] * 1e-12}

    def latency_per_event_s(self, ctx):
        return {"rows_written": ctx.p["write_time_ns"] * 1e-9}


# ---- the associative processor (spec.ap; cimkit.ap) ------------------------------------------------------
class AssociativeProcessor(Component):
    """The associative processor (unit ``ap``, spec section ``ap``): the events of the AP program each op
    routed to it runs (``cimkit.ap.cost.softmax_events``, counted in ``events.count``) priced with the
    section's figures through ``cimkit.ap.figures`` (the price list ``cimkit.ap.cost.ap_softmax_cost`` uses:
    the same products). Latency: its cycles at ``ap.clock_hz``. Area: ``ap.words`` words of the widest
    program's columns of ``ap.cell_area_um2`` cells, on a chip where some op runs on the AP; it lies beside
    the tiles' interconnect (``networked`` False). Figures are not scaled with the node (the AP's own)."""

    name, unit, networked = "ap", "ap", False

    def area_mm2(self, ctx):
        p = ctx.p
        return APF.area_mm2(p["ap_words"][:, 0], ctx.events["ap_columns"], p["ap_cell_area_um2"][:, 0])

    def energy_per_event_j(self, ctx):
        p = ctx.p
        return APF.energy_per_event_j(
            p["ap_compare_row_fj"], p["ap_compare_bit_fj"], p["ap_write_bit_fj"], p["ap_count_fj_per_row"]
        )

    def latency_per_event_s(self, ctx):
        return APF.latency_per_event_s(ctx.p["ap_clock_hz"])


for _c in (
    Array(),
    Drivers(),
    Adc(),
    Accumulation(),
    Buffer(),
    Digital(),
    Writes(),
    Interconnect(),
    AssociativeProcessor(),
):
    COMPONENTS.register(_c.name, _c)
#: the breakdown lines that existed before components were plug-ins, in their report order
BUILTIN = ("array", "drivers", "adc", "accumulation", "buffer", "interconnect", "digital")
