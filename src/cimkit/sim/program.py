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
from ..spec.noise import READ_NOISE
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
    """The ``LevelCoding`` of ``spec``'s weights over ``slices`` cells per weight (level units): integer codes
    of ``weight_bits``, offset or differential by ``array.signed_mapping``; analog (one slice) without
    ``weight_bits``."""
    b, bpc = spec.weight_bits, spec.device.bits_per_cell
    differential = spec.array.signed_mapping == "differential"
    if b is None:
        return LevelCoding(1.0, 0.0 if differential else 1.0, 1.0 if differential else 2.0, False, bpc, 1)
    stored = b - 1 if differential else b
    top = float(2 ** min(bpc, stored) - 1)
    return LevelCoding(float(2 ** (b - 1) - 1), 0.0 if differential else float(2 ** (b - 1)), top, True, bpc, slices)


def weight_scale(w: torch.Tensor, coding: LevelCoding, per_channel: bool) -> torch.Tensor:
    """The digital scale (groups, N) that maps each channel's (or the tensor's) largest weight
    magnitude to the top code. An all-zero channel (a pruned output) gets scale 0: its cells hold
    level 0 like any zero weight, and the digital scale removes whatever programming or read noise
    they carry, so its output stays exactly zero whatever the device. A NaN weight makes its
    channel's scale NaN."""
    lo, hi = torch.aminmax(w, dim=-1)  # no |w| temporary
    wmax = torch.maximum(hi, lo.neg())
    if not per_channel:
        wmax = wmax.amax().expand(w.shape[:-1])
    return wmax / coding.max_weight_code


def _quantize_(codes: torch.Tensor, coding: LevelCoding) -> torch.Tensor:
    """Weight values in code units -> codes, in place: rounded (integer weights), clipped."""
    if coding.integer:
        codes.round_()
    return codes.clamp_(-coding.max_weight_code, coding.max_weight_code)


def codes_in_array_order(
    w: torch.Tensor, scale: torch.Tensor, coding: LevelCoding, mapping: ArrayMapping, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Weight codes of ``w`` (G, N, K) in array order (G, T, Rp, N): rows cut into row tiles and
    zero-padded, outputs last. One strided pass over the weights (into ``out`` when given)."""
    g, n, k = w.shape
    rp, t = mapping.rows_per_tile, mapping.row_tiles
    if t * rp > k:
        w = torch.nn.functional.pad(w, (0, t * rp - k))
    divisor = torch.where(scale > 0, scale, 1.0).view(g, 1, 1, n)
    if out is None:
        out = w.new_empty((g, t, rp, n))
    return _quantize_(torch.div(w.reshape(g, n, t, rp).permute(0, 2, 3, 1), divisor, out=out), coding)


def target_levels(
    rows: torch.Tensor, coding: LevelCoding, differential: bool, out: torch.Tensor | None = None, base: float = 0.0
) -> torch.Tensor:
    """Cell levels plus ``base`` (polarities, G, T, Rp, S, N) of codes in array order (G, T, Rp, N),
    written into ``out`` when given (a reused buffer: fresh multi-MB tensors page-fault at every
    programming)."""
    pol = 2 if differential else 1
    if out is None:
        out = rows.new_empty((pol, *rows.shape[:-1], coding.slices, rows.shape[-1]))
    if coding.slices == 1:
        mags = out.squeeze(-2)
        if differential:  # G+ = max(w, 0) + base, G- = G+ - w
            torch.clamp(rows, min=0, out=mags[0]).add_(base)
            torch.sub(mags[0], rows, out=mags[1])
        else:
            torch.add(rows, coding.offset_code + base, out=mags[0])
        return out
    mags = (
        torch.stack([rows.clamp(min=0), rows.neg().clamp_(min=0)])
        if differential
        else (rows + coding.offset_code).unsqueeze(0)
    )
    return out.copy_(slice_magnitudes(mags, coding.bits_per_cell, coding.slices).movedim(0, -2)).add_(base)


#: ``work(name, shape)``: a float32 buffer of that shape, reused from call to call under that name
Workspace = Callable[[str, tuple[int, ...]], torch.Tensor]


def _buffer(work: Workspace | None, name: str, like: torch.Tensor, shape: tuple[int, ...] | None = None):
    shape = tuple(like.shape if shape is None else shape)
    return None if work is None or like.device.type != "cpu" else work(name, shape)


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
    w: torch.Tensor,
    spec: HardwareSpec,
    mapping: ArrayMapping,
    normal: Callable[[tuple[int, ...]], torch.Tensor],
    stuck: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    *,
    out: torch.Tensor | None = None,
    work: Workspace | None = None,
) -> tuple[ProgrammedState, torch.Tensor, LevelCoding]:
    """Program weights ``w`` (groups, N, K) once; returns the state, the digital weight scale
    (groups, N) and the level coding. ``normal(shape)`` supplies the standard-normal draws of the
    programming noise and drift exponents (the caller's seeded stream); ``stuck`` (from
    ``draw_stuck_cells``) pins cells to g_max or g_min; ``scale`` freezes the weight range.
    ``out`` (the cells) and ``work`` (temporaries) are reused buffers, if given: fresh multi-MB
    tensors page-fault at every programming of a training step."""
    dev = spec.device
    coding = level_coding(spec, mapping.slices)
    if scale is None:
        scale = weight_scale(w, coding, spec.weight_scale == "per_channel")
    rows_shape = (mapping.groups, mapping.row_tiles, mapping.rows_per_tile, mapping.out_features)
    rows = codes_in_array_order(w, scale, coding, mapping, _buffer(work, "rows", w, rows_shape))
    g_unit_s, beta = conductance_units(spec, coding)
    g_max = beta + coding.top_level
    g = target_levels(rows, coding, mapping.differential, out, base=beta)  # conductances, level units
    if mapping.row_tiles * mapping.rows_per_tile > mapping.in_features:  # unused rows hold level 0
        g.view(g.shape[0], g.shape[1], -1, *g.shape[-2:])[:, :, mapping.in_features :] = beta

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
        g = g.masked_fill_(stuck == 1, g_max).masked_fill_(stuck == 2, beta)

    nu = None
    if dev.drift_nu > 0 or dev.drift_nu_std > 0:
        nu = (dev.drift_nu + dev.drift_nu_std * normal(g.shape).to(g.device)).clamp(min=0)
    if out is not None and g is not out:  # the noise polynomial computes out of place
        g = out.copy_(g)
    return ProgrammedState(g, nu, g_unit_s, beta), scale, coding


def drifted(state: ProgrammedState, spec: HardwareSpec, t_s: float) -> torch.Tensor:
    """Conductances at ``t_s`` seconds after programming: g(t) = g(t0) (t/t0)^-nu for t > t0."""
    t0 = spec.device.drift_t0_s
    if state.nu is None or t_s <= t0:
        return state.g_prog
    return state.g_prog * torch.exp(-state.nu * math.log(t_s / t0))


def read_variance(
    g: torch.Tensor, state: ProgrammedState, spec: HardwareSpec, t_s: float, out: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Per-read noise variance in level^2 units of the cells ``g`` (polarities, ...), summed over
    the polarities (the two cells of a differential pair add their noise), or None without read
    noise. The model is ``device.read_noise_model`` of ``cimkit.spec.noise.READ_NOISE``."""
    dev = spec.device
    model = READ_NOISE.get(dev.read_noise_model, "device.read_noise_model")
    if not model.active(dev):
        return None
    g_max = state.beta + (dev.g_max_us - dev.g_min_us) * 1e-6 / state.g_unit_s
    return model.variance(g, g_max, dev, t_s, out=out)


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
    state: ProgrammedState, spec: HardwareSpec, mapping: ArrayMapping, t_s: float, work: Workspace | None = None
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Signal matrix (G, T, Rp, S, N), read-noise variance (same shape or None) and the global
    drift-compensation gain at inference time ``t_s``. A differential pair is subtracted in analog,
    so its signal is G+ - G- and its variance the sum of both cells'. ``work``: reused buffers."""
    g_t = drifted(state, spec, t_s)
    var = read_variance(g_t, state, spec, t_s, _buffer(work, "variance", g_t[0]))
    eff = with_ir_drop(g_t, state, spec, mapping)
    signal = torch.sub(eff[0], eff[1], out=_buffer(work, "signal", eff[0])) if mapping.differential else eff[0]
    gain = 1.0
    if spec.periphery.drift_compensation == "global" and state.nu is not None and t_s > spec.device.drift_t0_s:
        ref_eff = with_ir_drop(state.g_prog, state, spec, mapping)
        ref = ref_eff[0] - ref_eff[1] if mapping.differential else ref_eff[0]
        # read-out of an all-ones input, as the chip would do it, at t0 and at t
        now = signal.sum(dim=2).abs().sum()
        gain = float(ref.sum(dim=2).abs().sum() / now) if now > 0 else 1.0
    return signal.contiguous(), var, gain
