"""Write pulses on cells: NeuroSim's nonlinear weight-update curves (``cimkit.spec.update``) applied to
tensors of normalized conductances (0: G_min, 1: G_max), and the pulse counts a write costs.

Everything is vectorized over cells; the only randomness (cycle-to-cycle noise) comes from a seeded
generator the caller passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..spec.update import UpdateDevice


def _curve(x: torch.Tensor, a: float, p: int) -> torch.Tensor:
    """Normalized conductance after ``x`` pulses along a curve of ``A = a`` pulses over ``p`` pulses."""
    if math.isinf(a):
        return x / p
    return torch.expm1(-x / a) / math.expm1(-p / a)


def _position(g: torch.Tensor, a: float, p: int) -> torch.Tensor:
    """Pulses along the curve that reach normalized conductance ``g`` (the inverse of ``_curve``)."""
    if math.isinf(a):
        return g * p
    return -a * torch.log1p(g * math.expm1(-p / a))


def pulses_for(change: torch.Tensor, device: UpdateDevice) -> torch.Tensor:
    """Whole pulses for a wanted change of normalized conductance (signed: LTP up, LTD down): the change
    in units of one nominal step of its direction, rounded half away from zero as NeuroSim's ``truncate``
    does (finite levels)."""
    steps = torch.where(change > 0, change * device.levels_ltp, change * device.levels_ltd)
    return torch.sign(steps) * torch.floor(steps.abs() + 0.5)


def apply_pulses(
    g: torch.Tensor, pulses: torch.Tensor, device: UpdateDevice, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """Normalized conductances ``g`` (in [0, 1]) after ``pulses`` (signed whole numbers: positive LTP,
    negative LTD) from each cell's present place on its curve; with cycle-to-cycle noise
    ``noise * c2c_frac * sqrt(|pulses|)`` where pulses were given (``noise``: standard-normal samples of
    ``g``'s shape, needed when ``c2c_frac > 0``); clipped to [0, 1]."""
    g64, n64 = g.double().clamp(0.0, 1.0), pulses.double()
    up = _curve(
        (_position(g64, device.a_ltp, device.levels_ltp) + n64).clamp(0, device.levels_ltp),
        device.a_ltp,
        device.levels_ltp,
    )
    down = _curve(
        (_position(g64, device.a_ltd, device.levels_ltd) + n64).clamp(0, device.levels_ltd),
        device.a_ltd,
        device.levels_ltd,
    )
    new = torch.where(n64 > 0, up, torch.where(n64 < 0, down, g64))
    if device.c2c_frac > 0:
        if noise is None or noise.shape != g.shape:
            raise ValueError(
                "apply_pulses: a device with cycle-to-cycle noise needs standard-normal samples of "
                f"g's shape {tuple(g.shape)}"
            )
        new = new + torch.where(n64 != 0, noise.double() * device.c2c_frac * n64.abs().sqrt(), 0.0)
    return new.clamp(0.0, 1.0).to(g.dtype)


@dataclass
class WriteCounts:
    """The write events of one update of one layer, for the cost model: pulses of each kind, pulses
    weighted by the conductance of the cell they went into (for V^2 G t energy), and per array the
    pulses of its rows written one after another (each row as long as its busiest cell, LTP and LTD
    phases apart), the slowest array setting the time (the slowest LTP and the slowest LTD array are
    added: an upper bound when they are different arrays). Pulses into stuck cells are counted: the
    periphery drives them all the same."""

    ltp_pulses: float = 0.0
    ltd_pulses: float = 0.0
    ltp_pulse_us: float = 0.0  # sum over pulses of the cell's conductance before the write (uS)
    ltd_pulse_us: float = 0.0
    ltp_serial_pulses: float = 0.0  # pulses one after another in the slowest array
    ltd_serial_pulses: float = 0.0
    rows_written: float = 0.0

    def __iadd__(self, other: "WriteCounts") -> "WriteCounts":
        """Sum of two updates run one after the other."""
        for f in self.__dataclass_fields__:
            setattr(self, f, getattr(self, f) + getattr(other, f))
        return self

    def energy_j(self, device: UpdateDevice) -> float:
        """Cell energy of these pulses, ``V^2 G t`` per pulse (J)."""
        return device.pulse_energy_j(self.ltp_pulse_us, True) + device.pulse_energy_j(self.ltd_pulse_us, False)

    def latency_s(self, device: UpdateDevice) -> float:
        """Time of these writes (s): the slowest array's rows, pulse after pulse."""
        return self.ltp_serial_pulses * device.pulse_width_ltp_s + self.ltd_serial_pulses * device.pulse_width_ltd_s


def count_writes(pulses: torch.Tensor, g_us: torch.Tensor, cells_per_array: int) -> WriteCounts:
    """``WriteCounts`` of signed ``pulses`` on cells laid out (cell, row_tile, row, column) — ``cell`` the
    one or two cells of a weight — into cells of conductance ``g_us`` before the write; each row tile's
    columns split into arrays of ``cells_per_array`` weights."""
    ltp, ltd = pulses.clamp(min=0).double(), (-pulses).clamp(min=0).double()
    c, t, r, n = pulses.shape
    arrays = -(-n // cells_per_array)
    pad = arrays * cells_per_array - n

    def serial(p: torch.Tensor) -> float:  # (c, T, Rp, N) -> the slowest array's sum over rows of row maxima
        p = torch.nn.functional.pad(p, (0, pad)).reshape(c, t, r, arrays, cells_per_array)
        per_row = p.amax(dim=(0, 4))  # both cells of a weight sit in the same row
        return float(per_row.sum(dim=1).max())

    touched = (pulses != 0).any(dim=0).any(dim=-1)
    return WriteCounts(
        float(ltp.sum()),
        float(ltd.sum()),
        float((ltp * g_us).sum()),
        float((ltd * g_us).sum()),
        serial(ltp),
        serial(ltd),
        float(touched.sum()),
    )
