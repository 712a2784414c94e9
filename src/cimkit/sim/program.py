"""Weights -> programmed cells -> effective array matrices, in level units.

Conductances are expressed in units of one level step dG = (g_max - g_min) / L, where L is the top
level of a cell, so a cell at level l has conductance beta + l with beta = g_min / dG. A partial sum
of integer input codes times such conductances is then an exact float32 integer in the ideal case.

Programming happens once per chip sample (programming noise, stuck cells, drift exponents); the
effective matrices at an inference time t (drift, global drift compensation, IR drop) and the per-read
noise variances are derived from that state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..mapping import ArrayMapping
from ..spec import HardwareSpec
from . import irdrop
from .quant import slice_magnitudes


@dataclass(frozen=True)
class LevelCoding:
    """How signed integer weights become cell levels for one spec."""

    max_weight_code: float  # M: |w_int| <= M
    offset_code: float  # O: stored value w_int + O with offset mapping, 0 with a differential pair
    top_level: float  # L: highest level of a cell
    integer: bool  # weights rounded to integers (False: analog weights)
    bits_per_cell: int
    slices: int

    @property
    def slice_weights(self) -> list[float]:
        return [float(2 ** (s * self.bits_per_cell)) for s in range(self.slices)]


def level_coding(spec: HardwareSpec, slices: int) -> LevelCoding:
    b, bpc = spec.weight_bits, spec.device.bits_per_cell
    differential = spec.array.signed_mapping == "differential"
    if b is None:
        return LevelCoding(1.0, 0.0 if differential else 1.0, 1.0 if differential else 2.0, False, bpc, 1)
    stored = b - 1 if differential else b
    top = float(2 ** min(bpc, stored) - 1)
    return LevelCoding(float(2 ** (b - 1) - 1), 0.0 if differential else float(2 ** (b - 1)), top, True, bpc, slices)


def weight_codes(w: torch.Tensor, coding: LevelCoding, per_channel: bool,
                 scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed weight codes and their digital scale. ``w``: (groups, N, K); scale: (groups, N).

    Without ``scale`` the range follows the weights (the largest magnitude of a channel, or of the
    tensor, maps to the top code) and nothing clips. An all-zero channel (a pruned output) gets scale
    0: its cells hold level 0 like any zero weight, and the digital scale removes whatever programming
    or read noise they carry, so its output stays exactly zero whatever the device. With a given
    ``scale`` (a frozen range) weights beyond ``scale * max_weight_code`` clip."""
    if scale is None:
        if per_channel:
            wmax = torch.linalg.vector_norm(w, float("inf"), dim=-1)
        else:
            wmax = torch.linalg.vector_norm(w, float("inf")).expand(w.shape[:-1])
        scale = wmax / coding.max_weight_code
    codes = w * torch.where(scale > 0, 1.0 / scale, 1.0).unsqueeze(-1)
    if coding.integer:
        codes.round_()
    codes.clamp_(-coding.max_weight_code, coding.max_weight_code)
    return codes, scale


def to_rows(codes: torch.Tensor, mapping: ArrayMapping) -> torch.Tensor:
    """Weight codes (G, N, K) in array order (G, T, Rp, N): rows cut into row tiles, zero-padded."""
    k, rp, t = mapping.in_features, mapping.rows_per_tile, mapping.row_tiles
    pad = t * rp - k
    if pad:
        codes = torch.nn.functional.pad(codes, (0, pad))
    g, n = codes.shape[:2]
    return codes.reshape(g, n, t, rp).permute(0, 2, 3, 1).contiguous()


def target_levels(rows: torch.Tensor, coding: LevelCoding, differential: bool) -> torch.Tensor:
    """Cell levels (polarities, G, T, Rp, S, N) of codes in array order (G, T, Rp, N)."""
    if differential:
        mags = rows.new_empty((2, *rows.shape))
        torch.clamp(rows, min=0, out=mags[0])
        torch.neg(rows, out=mags[1]).clamp_(min=0)
    else:
        mags = (rows + coding.offset_code).unsqueeze(0)
    if coding.slices == 1:
        return mags.unsqueeze(-2)
    return slice_magnitudes(mags, coding.bits_per_cell, coding.slices).movedim(0, -2).contiguous()


@dataclass
class ProgrammedState:
    """One chip sample of a layer: programmed conductances (level units) and drift exponents."""

    g_prog: torch.Tensor  # (polarities, G, T, Rp, S, N)
    nu: torch.Tensor | None  # same shape, or None without drift
    g_unit_s: float  # dG in siemens
    beta: float  # g_min / dG


def conductance_units(spec: HardwareSpec, coding: LevelCoding) -> tuple[float, float]:
    """(dG in siemens, beta = g_min / dG): the level unit of a cell and its baseline in levels."""
    dev = spec.device
    g_unit_s = (dev.g_max_us - dev.g_min_us) * 1e-6 / coding.top_level
    return g_unit_s, dev.g_min_us * 1e-6 / g_unit_s


def draw_stuck_cells(shape: tuple[int, ...], spec: HardwareSpec, generator: torch.Generator) -> torch.Tensor | None:
    """Which cells of a chip are stuck: 0 free, 1 stuck on (g_max), 2 stuck off (g_min); None when
    the device has no stuck cells. A defect of the chip, so drawn once, not at every programming."""
    dev = spec.device
    if dev.stuck_on_rate == 0 and dev.stuck_off_rate == 0:
        return None
    u = torch.rand(shape, generator=generator)
    stuck = torch.zeros(shape, dtype=torch.int8)
    stuck[u < dev.stuck_on_rate] = 1
    stuck[(u >= dev.stuck_on_rate) & (u < dev.stuck_on_rate + dev.stuck_off_rate)] = 2
    return stuck


def program(
    w: torch.Tensor, spec: HardwareSpec, mapping: ArrayMapping, normal: Callable[[tuple[int, ...]], torch.Tensor],
    stuck: torch.Tensor | None = None, scale: torch.Tensor | None = None,
) -> tuple[ProgrammedState, torch.Tensor, LevelCoding]:
    """Program weights ``w`` (groups, N, K) once; returns the state, the digital weight scale
    (groups, N) and the level coding. ``normal(shape)`` supplies the standard-normal draws of the
    programming noise and drift exponents (the caller's seeded stream); ``stuck`` (from
    ``draw_stuck_cells``) pins cells to g_max or g_min; ``scale`` freezes the weight range."""
    dev = spec.device
    coding = level_coding(spec, mapping.slices)
    codes, scale = weight_codes(w, coding, spec.weight_scale == "per_channel", scale)
    g = target_levels(to_rows(codes, mapping), coding, mapping.differential)
    if mapping.row_tiles * mapping.rows_per_tile > mapping.in_features:  # unused rows hold level 0
        g.view(g.shape[0], g.shape[1], -1, *g.shape[-2:])[:, :, mapping.in_features:] = 0
    g_unit_s, beta = conductance_units(spec, coding)
    g_max = beta + coding.top_level
    g.add_(beta)

    if dev.programming_noise_poly is not None:
        x = g / g_max
        sigma = torch.zeros_like(g)
        for power, c in enumerate(dev.programming_noise_poly):
            sigma = sigma + c * x**power
        sigma = sigma.clamp(min=0) * g_max
        g = (g + sigma * normal(g.shape).to(g.device)).clamp(min=0)
    elif dev.programming_noise_frac > 0:
        g = g.add_(normal(g.shape).to(g.device), alpha=dev.programming_noise_frac * g_max).clamp_(min=0)

    if stuck is not None:
        g = torch.where(stuck == 1, torch.full_like(g, g_max), g)
        g = torch.where(stuck == 2, torch.full_like(g, beta), g)

    nu = None
    if dev.drift_nu > 0 or dev.drift_nu_std > 0:
        nu = (dev.drift_nu + dev.drift_nu_std * normal(g.shape).to(g.device)).clamp(min=0)
    return ProgrammedState(g.contiguous(), nu, g_unit_s, beta), scale, coding


def drifted(state: ProgrammedState, spec: HardwareSpec, t_s: float) -> torch.Tensor:
    """Conductances at ``t_s`` seconds after programming: g(t) = g(t0) (t/t0)^-nu for t > t0."""
    t0 = spec.device.drift_t0_s
    if state.nu is None or t_s <= t0:
        return state.g_prog
    return state.g_prog * torch.exp(-state.nu * math.log(t_s / t0))


def read_variance(g: torch.Tensor, state: ProgrammedState, spec: HardwareSpec, t_s: float) -> torch.Tensor | None:
    """Per-read noise variance of each cell in level^2 units, or None without read noise."""
    dev = spec.device
    if dev.read_noise_model == "none" or dev.read_noise_frac == 0:
        return None
    g_max = state.beta + (dev.g_max_us - dev.g_min_us) * 1e-6 / state.g_unit_s
    if dev.read_noise_model == "proportional":
        sigma = dev.read_noise_frac * g
    elif dev.read_noise_model == "additive":
        sigma = torch.full_like(g, dev.read_noise_frac * g_max)
    else:  # 1/f noise of PCM (Nandakumar et al. 2019), accumulated over t since programming
        t = max(t_s, dev.drift_t0_s)
        q_s = (0.0088 / (g / g_max).clamp(min=1e-3) ** 0.65).clamp(max=dev.read_noise_frac)
        sigma = g * q_s * math.sqrt(math.log((t + dev.read_time_s) / (2 * dev.read_time_s)))
    return sigma.square()


def with_ir_drop(g: torch.Tensor, state: ProgrammedState, spec: HardwareSpec, mapping: ArrayMapping) -> torch.Tensor:
    """Effective conductances of ``g`` (polarities, G, T, Rp, S, N) with the spec's IR-drop model.

    Columns are placed on physical arrays in the order (output, slice, polarity), ``cols`` per array.
    """
    arr = spec.array
    if arr.ir_drop == "none" or arr.wire_resistance_ohm == 0:
        return g
    pol, grp, t, rp, s, n = g.shape
    # physical column order: (N, S, pol) -> pad to whole arrays of `cols` columns
    phys = g.permute(1, 2, 3, 5, 4, 0).reshape(grp, t, rp, n * s * pol)
    used = phys.shape[-1]
    ct = math.ceil(used / arr.cols)
    phys = torch.nn.functional.pad(phys, (0, ct * arr.cols - used))
    blocks = phys.reshape(grp, t, rp, ct, arr.cols).permute(0, 1, 3, 2, 4) * state.g_unit_s
    if arr.ir_drop == "first_order":
        eff = irdrop.first_order_ir_drop(blocks.double(), arr.wire_resistance_ohm)
    else:
        flat = blocks.double().reshape(-1, rp, arr.cols)
        eff = torch.from_numpy(irdrop.ir_drop_transfers(flat, arr.wire_resistance_ohm)).reshape(blocks.shape)
    eff = (eff / state.g_unit_s).to(g.dtype).permute(0, 1, 3, 2, 4).reshape(grp, t, rp, ct * arr.cols)[..., :used]
    return eff.reshape(grp, t, rp, n, s, pol).permute(5, 0, 1, 2, 4, 3).contiguous()


def effective(
    state: ProgrammedState, spec: HardwareSpec, mapping: ArrayMapping, t_s: float
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Signal matrix (G, T, Rp, S, N), read-noise variance (same shape or None) and the global
    drift-compensation gain at inference time ``t_s``. A differential pair is subtracted in analog,
    so its signal is G+ - G- and its variance the sum of both cells'."""
    g_t = drifted(state, spec, t_s)
    var = read_variance(g_t, state, spec, t_s)
    eff = with_ir_drop(g_t, state, spec, mapping)
    signal = eff[0] - eff[1] if mapping.differential else eff[0]
    if var is not None:
        var = var.sum(0)
    gain = 1.0
    if spec.periphery.drift_compensation == "global" and state.nu is not None and t_s > spec.device.drift_t0_s:
        ref_eff = with_ir_drop(state.g_prog, state, spec, mapping)
        ref = ref_eff[0] - ref_eff[1] if mapping.differential else ref_eff[0]
        # read-out of an all-ones input, as the chip would do it, at t0 and at t
        now = signal.sum(dim=2).abs().sum()
        gain = float(ref.sum(dim=2).abs().sum() / now) if now > 0 else 1.0
    return signal.contiguous(), var, gain
