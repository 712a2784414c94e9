"""How a cell's conductance moves under identical write pulses: the weight-update model of in-situ
training (NeuroSim's, MLP+NeuroSim V3.0) and presets for the devices of its benchmark table.

NeuroSim's model: along ``P`` pulses the conductance climbs the saturating curve

    G(p) = B (1 - exp(-p / A)) + G_min,    B = (G_max - G_min) / (1 - exp(-P / A)),

with one ``A`` for potentiation (LTP, P = ``levels_ltp`` pulses from G_min to G_max) and one for
depression (LTD, its own curve over ``levels_ltd`` pulses, climbed backwards). A weight change becomes a
whole number of pulses (finite levels), each applied from the cell's present position on its curve, and
each write adds cycle-to-cycle noise ``N(0, sigma) * (G_max - G_min) * sqrt(|pulses|)``; the result is
clipped to [G_min, G_max].

Devices are described by NeuroSim's nonlinearity labels (0: linear; the sign says the curve's bend), which
map to ``A / P`` by NeuroSim's table (``getParamA``); ``normalized_a`` computes it from the table's defining
property, reproducing the table to four significant digits.
"""

from __future__ import annotations

import functools
import math

from pydantic import Field, ValidationError, model_validator

from ..errors import InputError, SpecError, format_validation_error, short_repr
from .model import StrictModel

#: NeuroSim's nonlinearity labels run from 0.01 to 9 (larger magnitudes are clipped to 9 there)
MAX_NONLINEARITY = 9.0
#: the largest gap between a curve of label NL and the straight line, in units of the conductance range,
#: is DEVIATION_PER_LABEL * |NL| (the property NeuroSim's table of normalized A follows; fitted to it)
DEVIATION_PER_LABEL = 0.098995


def _deviation(a: float) -> float:
    """Largest gap between the normalized curve (1 - e^(-x/a)) / (1 - e^(-1/a)) on [0, 1] and the line."""
    norm = -math.expm1(-1.0 / a)
    x = -a * math.log(a * norm)  # where the curve's slope is 1
    x = min(max(x, 0.0), 1.0)
    return -math.expm1(-x / a) / norm - x


@functools.lru_cache(maxsize=256)
def normalized_a(nonlinearity: float) -> float:
    """``A / P`` for NeuroSim's nonlinearity label (signed like the label; ``inf`` for a linear curve)."""
    nl = float(nonlinearity)
    if not math.isfinite(nl) or abs(nl) > MAX_NONLINEARITY:
        raise InputError(
            f"nonlinearity label {short_repr(nonlinearity)} is not allowed; NeuroSim's labels lie in "
            f"[-{MAX_NONLINEARITY:g}, {MAX_NONLINEARITY:g}] (0: linear)"
        )
    if nl == 0.0:
        return math.inf
    target = DEVIATION_PER_LABEL * abs(nl)
    lo, hi = math.log(1e-4), math.log(1e4)  # the gap falls as A grows: bisect on log A
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _deviation(math.exp(mid)) > target:
            lo = mid
        else:
            hi = mid
    return math.copysign(math.exp(0.5 * (lo + hi)), nl)


class UpdateDevice(StrictModel):
    """A synaptic device under identical write pulses (module docstring): its pulse-response curves,
    write noise, conductance window and write pulses."""

    name: str = Field(description="short name of the device")
    levels_ltp: int = Field(ge=2, le=100_000, description="pulses that take the cell from G_min to G_max")
    levels_ltd: int = Field(ge=2, le=100_000, description="pulses that take the cell from G_max to G_min")
    nonlinearity_ltp: float = Field(
        ge=-MAX_NONLINEARITY, le=MAX_NONLINEARITY, description="NeuroSim nonlinearity label of potentiation (0: linear)"
    )
    nonlinearity_ltd: float = Field(
        ge=-MAX_NONLINEARITY, le=MAX_NONLINEARITY, description="NeuroSim nonlinearity label of depression (0: linear)"
    )
    c2c_frac: float = Field(
        0.0,
        ge=0,
        le=1,
        description="cycle-to-cycle write noise: std per write of one pulse, a fraction of "
        "G_max - G_min (grows as the square root of the pulses)",
    )
    r_on_ohm: float = Field(gt=0, description="resistance at G_max (ohm)")
    on_off_ratio: float = Field(gt=1, description="G_max / G_min")
    write_voltage_ltp_v: float = Field(gt=0, description="amplitude of a potentiation pulse (V)")
    write_voltage_ltd_v: float = Field(gt=0, description="amplitude of a depression pulse (V)")
    pulse_width_ltp_s: float = Field(gt=0, description="width of a potentiation pulse (s)")
    pulse_width_ltd_s: float = Field(gt=0, description="width of a depression pulse (s)")
    source: str = Field("", description="where the figures come from")

    def __init__(self, **data) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # name the device, each field, its value and what is allowed
            raise SpecError(
                format_validation_error(exc, f"update device {data.get('name', '?')!r}", "device", UpdateDevice)
            ) from None

    @model_validator(mode="after")
    def _consistent(self) -> "UpdateDevice":
        if self.g_max_us * 1e-6 * self.write_voltage_ltp_v**2 * self.pulse_width_ltp_s > 1e-3:
            raise ValueError(
                f"a potentiation pulse of {self.write_voltage_ltp_v} V for {self.pulse_width_ltp_s} s "
                f"into {self.r_on_ohm} ohm costs over 1 mJ; check r_on_ohm, the voltage and the pulse width"
            )
        return self

    @property
    def g_max_us(self) -> float:
        """Highest conductance (uS)."""
        return 1e6 / self.r_on_ohm

    @property
    def g_min_us(self) -> float:
        """Lowest conductance (uS)."""
        return self.g_max_us / self.on_off_ratio

    @property
    def a_ltp(self) -> float:
        """NeuroSim's ``A`` of potentiation, in pulses (``inf``: linear)."""
        return normalized_a(self.nonlinearity_ltp) * self.levels_ltp

    @property
    def a_ltd(self) -> float:
        """NeuroSim's ``A`` of depression, in pulses (``inf``: linear)."""
        return normalized_a(self.nonlinearity_ltd) * self.levels_ltd

    def is_ideal(self) -> bool:
        """Linear in both directions and noiseless: a pulse moves every cell by the same step."""
        return self.nonlinearity_ltp == 0 and self.nonlinearity_ltd == 0 and self.c2c_frac == 0

    def pulse_energy_j(self, g_us, ltp: bool):
        """Energy of one write pulse into cells of conductance ``g_us`` (uS; array or float): V^2 G t."""
        v, t = (
            (self.write_voltage_ltp_v, self.pulse_width_ltp_s)
            if ltp
            else (self.write_voltage_ltd_v, self.pulse_width_ltd_s)
        )
        return v * v * g_us * 1e-6 * t

    def hardware_fields(self) -> dict:
        """The ``HardwareSpec.replace`` fields that give a chip this device's conductance window."""
        return {"device.g_max_us": self.g_max_us, "device.g_min_us": self.g_min_us}


_TABLE = "MLP+NeuroSim V3.0 manual, Table II (benchmark table, 32 nm)"

#: devices of the MLP+NeuroSim V3.0 benchmark table (its user manual, section 9, Table II), each with its
#: original report. Voltages are magnitudes (the table prints polarities); "<x%" write noise is taken as x%.
UPDATE_DEVICES: dict[str, UpdateDevice] = {
    d.name: d
    for d in (
        UpdateDevice(
            name="ag-a-si",
            levels_ltp=97,
            levels_ltd=100,
            nonlinearity_ltp=2.4,
            nonlinearity_ltd=-4.88,
            c2c_frac=0.035,
            r_on_ohm=26e6,
            on_off_ratio=12.5,
            write_voltage_ltp_v=3.2,
            write_voltage_ltd_v=2.8,
            pulse_width_ltp_s=300e-6,
            pulse_width_ltd_s=300e-6,
            source=f"Ag:a-Si, S. H. Jo et al., Nano Lett. 10(4) 2010; {_TABLE}; 97/100 levels as in "
            "MLP+NeuroSim V3.0 Cell.cpp",
        ),
        UpdateDevice(
            name="taox-hfox",
            levels_ltp=128,
            levels_ltd=128,
            nonlinearity_ltp=0.04,
            nonlinearity_ltd=-0.63,
            c2c_frac=0.037,
            r_on_ohm=100e3,
            on_off_ratio=10.0,
            write_voltage_ltp_v=1.6,
            write_voltage_ltd_v=1.6,
            pulse_width_ltp_s=50e-9,
            pulse_width_ltd_s=50e-9,
            source=f"TaOx/HfOx, W. Wu et al., VLSI Technology 2018; {_TABLE}",
        ),
        UpdateDevice(
            name="pcmo",
            levels_ltp=50,
            levels_ltd=50,
            nonlinearity_ltp=3.68,
            nonlinearity_ltd=-6.76,
            c2c_frac=0.01,
            r_on_ohm=23e6,
            on_off_ratio=6.84,
            write_voltage_ltp_v=2.0,
            write_voltage_ltd_v=2.0,
            pulse_width_ltp_s=1e-3,
            pulse_width_ltd_s=1e-3,
            source=f"PCMO, S. Park et al., IEDM 2013; {_TABLE} (write noise <1%, taken as 1%)",
        ),
        UpdateDevice(
            name="alox-hfo2",
            levels_ltp=40,
            levels_ltd=40,
            nonlinearity_ltp=1.94,
            nonlinearity_ltd=-0.61,
            c2c_frac=0.05,
            r_on_ohm=16.9e3,
            on_off_ratio=4.43,
            write_voltage_ltp_v=0.9,
            write_voltage_ltd_v=1.0,
            pulse_width_ltp_s=100e-6,
            pulse_width_ltd_s=100e-6,
            source=f"AlOx/HfO2, J. Woo et al., IEEE EDL 37(8) 2016; {_TABLE}",
        ),
        UpdateDevice(
            name="gst-pcm",
            levels_ltp=100,
            levels_ltd=120,
            nonlinearity_ltp=0.105,
            nonlinearity_ltd=2.4,
            c2c_frac=0.015,
            r_on_ohm=4.71e3,
            on_off_ratio=19.8,
            write_voltage_ltp_v=0.7,
            write_voltage_ltd_v=3.0,
            pulse_width_ltp_s=6e-6,
            pulse_width_ltd_s=125e-9,
            source=f"GST PCM, D. Kuzum et al., Nano Lett. 12(5) 2012; {_TABLE} (100-120 states: 100 LTP, "
            "120 LTD; average pulse voltages)",
        ),
        UpdateDevice(
            name="epiram",
            levels_ltp=64,
            levels_ltd=64,
            nonlinearity_ltp=0.5,
            nonlinearity_ltd=-0.5,
            c2c_frac=0.02,
            r_on_ohm=81e3,
            on_off_ratio=50.2,
            write_voltage_ltp_v=5.0,
            write_voltage_ltd_v=3.0,
            pulse_width_ltp_s=5e-6,
            pulse_width_ltd_s=5e-6,
            source=f"EpiRAM (Ag:SiGe), S. Choi et al., Nature Materials 17(4) 2018; {_TABLE}",
        ),
        UpdateDevice(
            name="hzo-fefet",
            levels_ltp=32,
            levels_ltd=32,
            nonlinearity_ltp=1.75,
            nonlinearity_ltd=1.46,
            c2c_frac=0.005,
            r_on_ohm=559.28e3,
            on_off_ratio=45.0,
            write_voltage_ltp_v=3.65,
            write_voltage_ltd_v=2.95,
            pulse_width_ltp_s=75e-9,
            pulse_width_ltd_s=75e-9,
            source=f"HZO FeFET, M. Jerry et al., IEDM 2017; {_TABLE} (write noise <0.5%, taken as 0.5%; "
            "average pulse voltages)",
        ),
    )
}


def update_device(name: str | UpdateDevice) -> UpdateDevice:
    """The preset ``name`` (see ``UPDATE_DEVICES``), or ``name`` itself when it is an ``UpdateDevice``."""
    if isinstance(name, UpdateDevice):
        return name
    if not isinstance(name, str) or name not in UPDATE_DEVICES:
        raise InputError(
            f"update device {short_repr(name)} is unknown; presets: {', '.join(UPDATE_DEVICES)} "
            "(or give a cimkit.spec.update.UpdateDevice)"
        )
    return UPDATE_DEVICES[name]
