"""Quantizers of the crossbar datapath: DAC (input codes, bit planes), weight slicing, ADC.

All work on float tensors holding integer codes, so that the same code runs on CPU and CUDA and an
integer code times a level is exact in float32 up to 2**24.
"""

from __future__ import annotations

import math

import torch


def input_code_limits(bits: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest DAC code for ``bits`` bits (symmetric when signed, so 0 is exact)."""
    if signed:
        q = 2 ** (bits - 1) - 1
        return -q, q
    return 0, 2**bits - 1


def quantize_input(x: torch.Tensor, bits: int, scale: torch.Tensor | float, signed: bool) -> torch.Tensor:
    """DAC codes: ``clamp(round(x / scale))`` in the code range of ``bits`` bits."""
    lo, hi = input_code_limits(bits, signed)
    return torch.clamp(torch.round(x / scale), lo, hi)


def bit_planes(codes: torch.Tensor, bits: int, signed: bool) -> tuple[torch.Tensor, list[float]]:
    """Split integer codes into ``bits`` binary planes stacked on a new leading dim, LSB first.

    Signed codes use two's complement, so the MSB plane carries weight ``-2**(bits-1)``.
    Returns the planes (float, 0/1) and the weight of each plane; ``sum(w * plane) == codes``.
    """
    c = codes.to(torch.int32)  # int32 shifts vectorize; codes have at most 24 bits
    if signed:
        c = torch.remainder(c, 2**bits)
    shifts = torch.arange(bits, device=codes.device, dtype=torch.int32).view(-1, *([1] * codes.dim()))
    planes = ((c.unsqueeze(0) >> shifts) & 1).to(codes.dtype)
    return planes, plane_weights(bits, signed)


def plane_weights(bits: int, signed: bool) -> list[float]:
    """The weights of ``bits`` binary planes, LSB first: ``2**k``, the MSB's negative for two's complement."""
    weights = [float(2**k) for k in range(bits)]
    if signed:
        weights[-1] = -weights[-1]
    return weights


def sign_magnitude_planes(codes: torch.Tensor, bits: int) -> tuple[torch.Tensor, list[float]]:
    """Split signed integer codes (|code| < 2**(bits-1)) into two phases of ``bits - 1`` binary magnitude
    planes, LSB first: the positive codes' planes, then the negative codes' planes, whose weights are
    negative. Returns the planes (float, 0/1; 2 * (bits - 1) on a new leading dim) and their weights;
    ``sum(w * plane) == codes``. Each plane's ones are the inputs of one sign whose magnitude has that bit."""
    pos, pos_w = bit_planes(codes.clamp(min=0), bits - 1, False)
    neg, _ = bit_planes((-codes).clamp(min=0), bits - 1, False)
    return torch.cat([pos, neg]), pos_w + [-w for w in pos_w]


def slice_magnitudes(magnitude: torch.Tensor, bits_per_cell: int, slices: int) -> torch.Tensor:
    """Cut non-negative integer magnitudes into ``slices`` cell levels of ``bits_per_cell`` bits,
    LSB slice first, on a new leading dim: ``sum_s level[s] * 2**(s*bits_per_cell) == magnitude``."""
    if slices == 1:
        return magnitude.unsqueeze(0)
    m = magnitude.to(torch.int64)
    shifts = (torch.arange(slices, device=m.device) * bits_per_cell).view(-1, *([1] * m.dim()))
    return ((m.unsqueeze(0) >> shifts) & (2**bits_per_cell - 1)).to(magnitude.dtype)


def adc_code_limits(bits: int, signed: bool) -> tuple[int, int]:
    """ADC output codes: two's complement when signed, plain binary otherwise."""
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def aligned_adc_step(full_scale: float, bits: int, signed: bool) -> float:
    """Power-of-two ADC step that covers ``full_scale`` with ``bits`` bits.

    A power-of-two step drops whole LSBs of the partial sum, so when the resolution suffices
    (step <= 1) integer partial sums are converted exactly, as a digital CIM designer expects.
    """
    top = adc_code_limits(bits, signed)[1]
    if top <= 0:
        raise ValueError(f"an ADC of {bits} bit(s) has no positive code")
    return 2.0 ** math.ceil(math.log2(max(full_scale, 1e-30) / top))


def adc(y: torch.Tensor, step: torch.Tensor | float, bits: int, signed: bool) -> torch.Tensor:
    """Convert analog partial sums ``y`` with step ``step``: round to the nearest code, clip to the
    code range, return in the units of ``y``. In range, ``|adc(y) - y| <= step / 2``."""
    return adc_(y.clone(), 1.0 / step, bits, signed).mul_(step)


def adc_(y: torch.Tensor, inv_step: torch.Tensor | float, bits: int, signed: bool) -> torch.Tensor:
    """The ADC, in place: ``y`` becomes integer codes, ``clamp(round(y * inv_step))`` in the code
    range of ``bits`` bits (multiply by the step to get values). The datapath converts with this."""
    return codes_(y, inv_step, *adc_code_limits(bits, signed))


def codes_(y: torch.Tensor, inv_step: torch.Tensor | float, lo: float, hi: float) -> torch.Tensor:
    """``y`` becomes ``clamp(round(y * inv_step), lo, hi)`` in place (round half to even): the ADC's one
    formula, which the fused read kernel (``sim/_readchain.c``) reproduces step for step."""
    return y.mul_(inv_step).round_().clamp_(lo, hi)
