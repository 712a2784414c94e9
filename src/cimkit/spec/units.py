"""The units of a chip and the ways its DACs drive the arrays.

``UNIT_TYPES``: what kind of unit exists and which op kinds it can run. ``HardwareSpec.routing`` maps an
op kind to a unit by name; kinds it does not list run on the op registry's default unit
(``cimkit.workload.registry``). Built-in units:

- ``crossbar``: the CIM arrays the spec's device / array / periphery / technology / chip sections
  describe; runs static-weight ``linear`` and ``conv`` ops and dynamic ``matmul`` (both operands
  activations: the arrays are rewritten per input, which costs cell writes and endurance);
- ``digital``: the spec's ``digital`` section, a SIMD unit of ``lanes`` operations per cycle for the
  non-linear, element-wise, pooling and table-lookup ops and for dynamic matmuls;
- ``ap``: the spec's ``ap`` section, an associative processor (``cimkit.ap``: bit-serial, word-parallel
  compare/write passes in a CAM) that runs ``softmax`` as the integer softmax program of
  ``cimkit.ap.softmax`` (``routing: {softmax: ap}``); priced by the cost component ``ap``.

- ``cam_attention``: the spec's ``cam_attention`` section, a binary CAM unit for HAD's binarized attention
  (Horton et al., arXiv 2502.01770): keys written into CAM rows, Hamming similarity sensed on the match
  lines, a top-N selector. It runs the op kinds ``hamming_score`` and ``topn`` (their default unit; a workload
  gets them from ``Workload.with_hamming_attention``); priced by the cost components ``cam_attention`` and
  ``topn_selector`` (``cimkit.cost.cam_attention``).

Spiking neuron updates are the op kind ``neuron`` (``cimkit.workload.registry.NEURON_EVENTS``: the adds,
multiplies and compares of one LIF / synaptic / Fang neuron step), whose default unit is ``digital``: the
neuron unit is priced as the digital unit's primitives. A plug-in adds a unit type of its own together with
the kinds it runs, e.g.::

    from cimkit.spec.units import register_unit_type
    register_unit_type("my_ap", {"eltwise", "act"}, "associative processor running element-wise ops")

after which ``routing: {eltwise: my_ap}`` validates; pricing such a unit needs a cost component for it.

``DAC_MODES``: how ``periphery.dac_mode`` turns an input vector into array reads (passes, pulses, and
whether the simulator drives binary bit planes). The cost model and the mapping read
``PeripherySpec.input_passes`` / ``PeripherySpec.pulses_per_read``; the simulator reads
``DacMode.bit_planes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..registry import Registry


@dataclass(frozen=True)
class UnitType:
    """A kind of unit: its name, the op kinds it can run besides those whose default unit it is (an op kind
    registered with ``default_unit=name`` runs here without being listed), and one line saying what it is."""

    name: str
    runs: frozenset[str]
    description: str = ""

    def kinds(self) -> frozenset[str]:
        """Every op kind this unit runs: ``runs`` and the registered kinds whose default unit it is."""
        from ..workload.registry import KINDS

        return self.runs | {k for k in KINDS.names() if KINDS.get(k).default_unit == self.name}

    def can_run(self, kind: str) -> bool:
        return kind in self.kinds()


#: unit types by name; ``HardwareSpec.routing`` values are names of this registry
UNIT_TYPES: Registry[UnitType] = Registry("unit")


def register_unit_type(name: str, runs: Iterable[str], description: str = "", *, replace: bool = False) -> UnitType:
    """Register a unit type ``name`` that can run the op kinds ``runs``; returns it."""
    return UNIT_TYPES.register(name, UnitType(name, frozenset(runs), description), replace=replace)


register_unit_type(
    "crossbar",
    {"linear", "conv", "matmul"},
    "CIM crossbar arrays (device, array, periphery sections); matmul = arrays rewritten per input",
)
register_unit_type(
    "digital",
    {"matmul", "softmax", "norm", "act", "eltwise", "pool", "embedding"},
    "digital SIMD unit (digital section) for non-linear, element-wise, pooling, lookup and dynamic-matmul ops",
)
register_unit_type(
    "ap",
    {"softmax"},
    "associative processor (ap section): the integer softmax as compare/write passes over all rows "
    "of a CAM at once (cimkit.ap)",
)
register_unit_type(
    "cam_attention",
    {"hamming_score", "topn"},
    "binary CAM attention unit (cam_attention section): keys in CAM rows, Hamming similarity sensed on "
    "the match lines, a top-N selector (HAD, arXiv 2502.01770; cimkit.cost.cam_attention)",
)


def _one(bits: int | None) -> int:
    return 1


def _bits(bits: int | None) -> int:
    return 1 if bits is None else bits


def _pulse_count(bits: int | None) -> int:
    return 1 if bits is None else max(bits, 2)


@dataclass(frozen=True)
class DacMode:
    """How inputs drive the rows for one ``periphery.dac_mode``.

    ``input_passes(input_bits)``: array reads (and ADC conversions) per input vector;
    ``pulses_per_read(input_bits)``: input pulses within one read (the integrating converter counts them);
    ``bit_planes``: the simulator drives one binary bit plane per pass (else one multi-level pass);
    ``binary``: lines see binary pulses, so drive energy scales with the fraction of 1 bits;
    ``needs_input_bits``: an integer ``periphery.input_bits`` is required. ``input_bits`` None (an ideal
    analog input) counts one pass and one pulse."""

    name: str
    description: str
    input_passes: Callable[[int | None], int] = field(default=_one)
    pulses_per_read: Callable[[int | None], int] = field(default=_one)
    bit_planes: bool = False
    binary: bool = False
    needs_input_bits: bool = False


#: DAC modes by name (``periphery.dac_mode``)
DAC_MODES: Registry[DacMode] = Registry("DAC mode")


def register_dac_mode(mode: DacMode, *, replace: bool = False) -> DacMode:
    """Register ``mode`` under ``mode.name``; returns it."""
    return DAC_MODES.register(mode.name, mode, replace=replace)


register_dac_mode(DacMode("multi_level", "one voltage level per input, one pass and one conversion per vector"))
register_dac_mode(
    DacMode(
        "bit_serial",
        "one binary pass and one ADC conversion per input bit",
        input_passes=_bits,
        bit_planes=True,
        binary=True,
        needs_input_bits=True,
    )
)
register_dac_mode(
    DacMode(
        "pulse_train",
        "input bits as max(input_bits, 2) pulses whose charge the neuron integrates, converted "
        "once (NeuRRAM); the simulator treats it like multi_level",
        pulses_per_read=_pulse_count,
        binary=True,
    )
)
