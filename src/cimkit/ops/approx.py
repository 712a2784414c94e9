"""Approximate arithmetic for the digital periphery (approximate computing, AxC): approximate integer
multipliers and adders, their exhaustive error statistics, integer-quantized approximate ``Linear`` /
``Conv2d`` layers, and the designs' relative power with the sources of each figure.

Multipliers (unsigned ``bits``-bit operands, default 8; ``parse_multiplier``):

- ``"exact"``;
- ``"truncate-k"``: operand truncation, the ``k`` least significant bits of each operand set to zero before an
  exact multiply (``1 <= k < bits``);
- ``"mitchell"``: Mitchell's logarithmic multiplier (J. N. Mitchell, IRE Trans. Electronic Computers, 1962):
  ``a = 2**ka (1 + xa)`` with ``0 <= xa < 1``, ``log2 a ~ ka + xa``; the logs are added and the antilog is
  approximated the same way, ``2**(k + x) ~ 2**k (1 + x)``. For integer operands the result is always an
  integer: with ``a = 2**ka + ma`` and ``b = 2**kb + mb``, ``2**(ka+kb) (1 + xa + xb) = 2**(ka+kb) + ma 2**kb +
  mb 2**ka``, and when ``xa + xb >= 1``, ``2**(ka+kb+1) (xa + xb) = 2 (ma 2**kb + mb 2**ka)``. So no rounding
  step exists to choose; the int64 result is the hardware's exact output. A zero operand gives 0.
- ``"drum-k"``: DRUM (Hashemi, Bahar & Reda, ICCAD 2015): each operand is cut to its ``k`` leading bits from
  its leading one; when bits were dropped the lowest kept bit is forced to 1 (unbiasing); a ``k x k`` exact
  multiply and a shift back. Operands below ``2**k`` pass exactly (``2 <= k <= bits``). This is the
  behaviour of the authors' Verilog (github.com/scale-lab/DRUM, ``DRUMk_M_N_u.v``).

All four are independent of the operand width in value (none depends on bits above the leading one), so
``bits`` only sets the allowed operand range and which energy figure applies.

Exhaustive statistics (``error_statistics``) over all ``2**bits x 2**bits`` pairs reproduce the published
8-bit figures with this convention: relative error distance ``RED = |approx - exact| / exact``, MRED its mean
over the pairs whose exact product is nonzero (``(2**bits - 1)**2`` pairs: a zero operand gives an exact 0 in
every design here, and ``0/0`` is left out rather than counted as 0), no rounding anywhere. Measured (8 bit):
Mitchell MRED 3.7878 %, max RED 1/9 = 11.111 %; DRUM-6 1.3013 %, max 65/1024 = 6.348 %; DRUM-4 5.8868 %, max
17/64 = 26.5625 %. (The published maxima 11.11 %, 6.35 %, 26.56 % are these values given to two decimals.)
Counting the zero-product pairs as RED 0 would give 3.758 % for Mitchell instead: that is not the convention.

Adders (``parse_adder``), on two's complement integers (int64, so any width up to 62 bits, no overflow):

- ``"exact"``;
- ``"loa-k"``: lower-part OR adder (Mahdiani et al., IEEE TCAS-I 2010): the ``k`` low bits of the sum are the
  bitwise OR of the operands' low bits; the upper part is an exact add of the operands' upper parts plus a
  carry-in equal to the AND of the two operands' bit ``k-1``;
- ``"truncate-k"``: the ``k`` low bits of the sum are 0 because the adder has no low part: the operands' low
  bits are dropped, ``((a >> k) + (b >> k)) << k`` (no carry comes out of the dropped part, so this is not
  ``floor((a + b) / 2**k) 2**k``).

Signed operands are in two's complement and the bit-level definitions apply to that representation (as an
accumulator of a digital MAC array computes it; ``>>`` is an arithmetic shift): LOA and truncation are then
biased toward minus infinity for negative sums too (truncation always rounds down), not symmetric in sign.

Matrix product and layers (``approx_matmul``, ``ApproxLinear``, ``ApproxConv2d``, ``approximate``): signed
codes in sign-magnitude, the product of the magnitudes through the unsigned multiplier and the sign applied
after; the sums by the exact adder or a balanced tree of approximate adders (``approx_sum``). A layer with
``bits = 8`` has signed codes ``-127..127``; their magnitudes (at most 127, 7 bits) go through the 8-bit
(8 x 8) unsigned multiplier with its top bit always 0: a sign-magnitude datapath built around an 8-bit unsigned
core. Since every multiplier here is width-independent in value, a 7 x 7 core of the same kind gives the same
products; only the energy differs, and the energy figures below are for the 8 x 8 core (conservative for a
7 x 7 one).

Energy (``ENERGY``, ``relative_energy``, ``ENERGY_SOURCES``): power of each design relative to the exact
design of the same width, with its source; estimates are marked ``estimate=True`` with their derivation and
are never presented as published figures.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, check_int, short_repr

# the names, parameters and energy of the designs live in the torch-free spec.arith (the spec and the cost model
# read them without torch); this module computes with them
from ..spec.arith import (
    ADDER_KINDS,
    ENERGY,
    ENERGY_SOURCES,
    MULTIPLIER_BITS,  # noqa: F401
    MULTIPLIER_BITS_WHY,
    MULTIPLIER_KINDS,
    STAT_BITS,
    STAT_BITS_WHY,
    Adder,
    EnergyEntry,
    Multiplier,
    parse_adder,
    parse_multiplier,
    relative_energy,
)
from .grid import check_float_tensor, out_dtype, to_grid

__all__ = [
    "Multiplier",
    "parse_multiplier",
    "multiply",
    "separable",
    "operand_map",
    "error_statistics",
    "MULTIPLIER_KINDS",
    "Adder",
    "parse_adder",
    "add",
    "approx_sum",
    "adder_error_statistics",
    "ADDER_KINDS",
    "approx_matmul",
    "ApproxLinear",
    "ApproxConv2d",
    "approximate",
    "calibrate",
    "approx_modules",
    "EnergyEntry",
    "ENERGY",
    "ENERGY_SOURCES",
    "relative_energy",
    "CHUNK_BYTES",
    "PUBLISHED_STATISTICS",
]

CHUNK_BYTES = 16 * 2**20  #: bound on one (rows, N, K) int64 temporary of the elementwise path (bytes)
_FLOAT_EXACT = 2**53  #: float64 holds every integer below this exactly


#: published 8-bit figures (percent) the exhaustive statistics reproduce (see the module docstring)
PUBLISHED_STATISTICS = {
    "mitchell": {"mred": 3.788, "max_red": 11.11},
    "drum-6": {"mred": 1.301, "max_red": 6.35},
    "drum-4": {"mred": 5.887, "max_red": 26.56},
}


# ---------------------------------------------------------------------------------------------------------------
# Multipliers
# ---------------------------------------------------------------------------------------------------------------


def multiply(a: torch.Tensor, b: torch.Tensor, multiplier="exact", bits: int = 8) -> torch.Tensor:
    """``parse_multiplier(multiplier, bits)(a, b)``: the approximate product of unsigned int64 tensors."""
    return parse_multiplier(multiplier, bits)(a, b)


def separable(multiplier) -> bool:
    """Whether ``multiplier``'s product equals ``exact(f(a), f(b))`` for the per-operand map ``f`` of
    ``operand_map`` (exact, truncate, drum: yes; mitchell: no). A separable multiplier lets a matrix product
    run as one matmul on mapped operands."""
    return parse_multiplier(multiplier).separable


def operand_map(multiplier, a: torch.Tensor) -> torch.Tensor:
    """The approximated operand ``f(a)`` of a separable multiplier (unsigned int64 in, int64 out): ``a`` for
    exact, ``a`` with its ``k`` low bits cleared for truncate, DRUM's ``k``-bit unbiased operand shifted back
    for drum. Mitchell has none (its product couples the operands' exponents and mantissas)."""
    m = parse_multiplier(multiplier)
    if not m.separable:
        raise InputError(
            f"operand_map: multiplier {m.name!r} is not separable (its product is not "
            f"exact(f(a), f(b))); allowed: exact, truncate-k, drum-k"
        )
    return _operand_map(m, _check_unsigned("operand_map", "a", a, m.bits))


def _check_int64(fn: str, name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{fn}: {name} is a {type(x).__name__}; it must be an int64 torch.Tensor")
    if x.dtype != torch.int64:
        raise InputError(
            f"{fn}: {name} has dtype {x.dtype}; it must be int64 (integer codes); quantize floats "
            f"first (the layers ApproxLinear / ApproxConv2d do)"
        )
    return x


def _check_unsigned(fn: str, name: str, x, bits: int) -> torch.Tensor:
    x = _check_int64(fn, name, x)
    if x.numel():
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= 1 << bits:
            bad = lo if lo < 0 else hi
            raise InputError(
                f"{fn}: {name} has the value {bad}; unsigned {bits}-bit operands must be in 0..{(1 << bits) - 1}"
            )
    return x


def _floor_log2(x: torch.Tensor) -> torch.Tensor:
    """``floor(log2 x)`` of a non-negative int64 tensor (below 2**53), -1 for 0; exact via frexp."""
    _, exponent = torch.frexp(x.to(torch.float64))
    return exponent.to(torch.int64) - 1


def _operand_map(m: Multiplier, a: torch.Tensor) -> torch.Tensor:
    if m.kind == "exact":
        return a
    assert m.k is not None  # Multiplier requires k for truncate and drum
    if m.kind == "truncate":
        return a & ~((1 << m.k) - 1)
    # drum: keep the k bits from the leading one, force the lowest kept bit to 1 when bits were dropped
    shift = (_floor_log2(a) - (m.k - 1)).clamp(min=0)
    kept = a >> shift
    kept = torch.where(shift > 0, kept | 1, kept)
    return kept << shift


def _mitchell_parts(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(2**ka, ma)`` with ``a = 2**ka + ma``, ``0 <= ma < 2**ka``; ``(0, 0)`` for ``a = 0`` (so that
    ``_mitchell_combine`` gives 0 without a special case)."""
    power = torch.where(a > 0, torch.ones_like(a) << _floor_log2(a).clamp(min=0), torch.zeros_like(a))
    return power, a - power


def _mitchell_combine(pa, ma, pb, mb) -> torch.Tensor:
    """Mitchell's product from the parts (broadcast): ``2**(ka+kb) + P`` if ``P < 2**(ka+kb)`` else ``2 P``,
    with ``P = ma 2**kb + mb 2**ka`` (``2**(ka+kb) (xa + xb)``); exact integers throughout."""
    mant = ma * pb + mb * pa
    top = pa * pb
    return torch.where(mant < top, top + mant, mant + mant)


def _unsigned_product(m: Multiplier, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if m.kind == "mitchell":
        return _mitchell_combine(*_mitchell_parts(a), *_mitchell_parts(b))
    return _operand_map(m, a) * _operand_map(m, b)


def _exhaustive_pairs(bits: int, signed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    v = torch.arange(lo, hi, dtype=torch.int64)
    return v.repeat_interleave(v.numel()), v.repeat(v.numel())


def _error_summary(approx: torch.Tensor, exact: torch.Tensor, max_exact: int) -> dict:
    err = approx - exact
    nonzero = exact != 0
    red = err[nonzero].abs().double() / exact[nonzero].abs().double()
    return {
        "mred": float(red.mean()) if red.numel() else 0.0,
        "max_red": float(red.max()) if red.numel() else 0.0,
        "mean_error": float(err.double().mean()),
        "mean_abs_error": float(err.abs().double().mean()),
        "nmed": float(err.abs().double().mean()) / max_exact,
        "max_abs_error": int(err.abs().max()),
        "error_rate": float((err != 0).double().mean()),
        "pairs": int(exact.numel()),
        "nonzero_pairs": int(nonzero.sum()),
    }


def error_statistics(multiplier, bits: int = 8) -> dict:
    """Exhaustive error statistics of ``multiplier`` over all ``2**bits x 2**bits`` unsigned operand pairs.

    Returns fractions (multiply by 100 for percent): ``mred`` (mean of ``|approx - exact| / exact`` over the
    pairs whose exact product is nonzero), ``max_red`` (its largest value), ``mean_error`` (mean signed error
    ``approx - exact`` over all pairs, in units of the product's LSB: the bias), ``mean_abs_error`` (same,
    absolute), ``nmed`` (``mean_abs_error / (2**bits - 1)**2``, the largest exact product), ``max_abs_error``,
    ``error_rate`` (fraction of all pairs with any error), ``pairs`` and ``nonzero_pairs``. A ``Multiplier``
    is re-made at ``bits``. ``bits``: 2..10."""
    check_int("error_statistics", "bits", bits, *STAT_BITS, STAT_BITS_WHY)
    m = parse_multiplier(multiplier, bits)
    if m.bits != bits:
        m = Multiplier(m.kind, m.k, bits)
    a, b = _exhaustive_pairs(bits)
    return _error_summary(_unsigned_product(m, a, b), a * b, ((1 << bits) - 1) ** 2)


# ---------------------------------------------------------------------------------------------------------------
# Adders
# ---------------------------------------------------------------------------------------------------------------


def add(a: torch.Tensor, b: torch.Tensor, adder="exact") -> torch.Tensor:
    """``parse_adder(adder)(a, b)``: the approximate sum of int64 tensors."""
    return parse_adder(adder)(a, b)


def _add(ad: Adder, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if ad.kind == "exact":
        return a + b
    k = ad.k
    assert k is not None  # Adder requires k for every kind but exact
    step = 1 << k
    if ad.kind == "truncate":
        return ((a >> k) + (b >> k)) * step
    low = (a | b) & (step - 1)
    carry = (a >> (k - 1)) & (b >> (k - 1)) & 1
    return ((a >> k) + (b >> k) + carry) * step + low


def approx_sum(x: torch.Tensor, dim: int = -1, adder="exact") -> torch.Tensor:
    """Sum of int64 ``x`` along ``dim`` by a balanced tree of ``adder``: level by level, elements ``(0, 1),
    (2, 3), ...`` are added pairwise (vectorized per level) and an odd last element passes through to the
    next level unchanged; ``ceil(log2 n)`` levels. The exact adder gives ``x.sum(dim)`` (identical, it is
    used directly). An empty ``dim`` sums to 0."""
    fn = "approx_sum"
    ad = parse_adder(adder)
    x = _check_int64(fn, "x", x)
    n_dim = max(x.ndim, 1)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -n_dim <= dim < n_dim:
        raise InputError(
            f"{fn}: dim = {short_repr(dim)} is out of range for a tensor of {x.ndim} dim(s); "
            f"allowed: integers {-n_dim}..{n_dim - 1}"
        )
    if ad.kind == "exact" or x.ndim == 0:
        return x.sum(dim) if x.ndim else x.clone()
    y = x.movedim(dim, -1)
    if y.shape[-1] == 0:
        return y.sum(-1)
    while y.shape[-1] > 1:
        n = y.shape[-1]
        half = n // 2
        s = _add(ad, y[..., 0 : 2 * half : 2], y[..., 1 : 2 * half : 2])
        y = torch.cat([s, y[..., n - 1 :]], dim=-1) if n % 2 else s
    return y[..., 0]


def adder_error_statistics(adder, bits: int = 8, signed: bool = False) -> dict:
    """Exhaustive error statistics of ``adder`` over all pairs of ``bits``-bit operands (unsigned
    ``0..2**bits-1``, or two's complement ``-2**(bits-1)..2**(bits-1)-1`` with ``signed``). Same keys as
    ``error_statistics``: ``mred`` over the pairs whose exact sum is nonzero, ``nmed`` normalized by the
    largest exact ``|sum|`` (``2 (2**bits - 1)`` unsigned, ``2**bits`` signed); fractions, not percent."""
    check_int("adder_error_statistics", "bits", bits, *STAT_BITS, STAT_BITS_WHY)
    ad = parse_adder(adder)
    a, b = _exhaustive_pairs(bits, signed=bool(signed))
    max_exact = (1 << bits) if signed else 2 * ((1 << bits) - 1)
    return _error_summary(_add(ad, a, b), a + b, max_exact)


# ---------------------------------------------------------------------------------------------------------------
# Matrix product
# ---------------------------------------------------------------------------------------------------------------


def _check_codes(fn: str, name: str, x, bits: int) -> torch.Tensor:
    x = _check_int64(fn, name, x)
    if x.numel():
        top = int(x.abs().max())
        if top >= 1 << bits:
            raise InputError(
                f"{fn}: {name} has a code of magnitude {top}; the {bits}-bit unsigned multiplier takes "
                f"magnitudes 0..{(1 << bits) - 1} (sign-magnitude codes)"
            )
    return x


def approx_matmul(
    a_codes: torch.Tensor,
    b_codes: torch.Tensor,
    multiplier="exact",
    adder="exact",
    *,
    path: str = "auto",
    chunk_bytes: int = CHUNK_BYTES,
) -> torch.Tensor:
    """Approximate integer matrix product of signed codes, int64 ``(..., N)``.

    ``a_codes`` ``(..., K)`` and ``b_codes`` ``(K, N)``: int64 codes in sign-magnitude; each product is
    ``sign(a) sign(b) M(|a|, |b|)`` with ``M`` the unsigned ``multiplier`` (magnitudes below
    ``2**multiplier.bits``; a name is parsed at 8 bits), and the ``K`` products of an output are summed by
    ``adder`` (exact, or a balanced tree of approximate adders, ``approx_sum``; two's complement).

    ``path``: ``"auto"`` (default), ``"matmul"`` or ``"elementwise"``. The matmul path (separable multiplier,
    exact adder) maps each operand once (``operand_map``, sign restored) and runs one float64 matmul; it is
    exact because every partial sum is an integer of magnitude at most ``K (2**bits - 1)**2``, required below
    ``2**53`` (else ``"auto"`` takes the elementwise path). The elementwise path forms the products
    ``(rows, N, K)`` in chunks of rows so that one int64 temporary stays under ``chunk_bytes`` (default 16 MiB;
    peak memory is a few such temporaries, below about 64 MiB; a single row larger than that is still done
    whole) and sums them exactly or by the adder tree; Mitchell's products come from a signed product table
    at up to 8 bits (one gather per product), else from its integer formula. Both paths give identical results
    where both apply."""
    fn = "approx_matmul"
    m = parse_multiplier(multiplier)
    ad = parse_adder(adder)
    a = _check_codes(fn, "a_codes", a_codes, m.bits)
    b = _check_codes(fn, "b_codes", b_codes, m.bits)
    if a.ndim < 1 or b.ndim != 2 or a.shape[-1] != b.shape[0]:
        raise InputError(
            f"{fn}: shapes a_codes {tuple(a.shape)} and b_codes {tuple(b.shape)} do not fit; allowed: "
            f"a_codes (..., K) and b_codes (K, N) with the same K"
        )
    if path not in ("auto", "matmul", "elementwise"):
        raise InputError(f"{fn}: path = {short_repr(path)} is not allowed; allowed: 'auto', 'matmul', 'elementwise'")
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, numbers.Integral) or chunk_bytes < 1:
        raise InputError(
            f"{fn}: chunk_bytes = {short_repr(chunk_bytes)} is not allowed; give a positive integer "
            f"(bytes of one (rows, N, K) int64 temporary)"
        )
    return _matmul(fn, m, ad, a, b, path, int(chunk_bytes))


def _fits_float(k: int, bits: int) -> bool:
    return k * ((1 << bits) - 1) ** 2 < _FLOAT_EXACT


def _matmul(
    fn: str,
    m: Multiplier,
    ad: Adder,
    a: torch.Tensor,
    b: torch.Tensor,
    path: str,
    chunk_bytes: int,
    b_mapped: torch.Tensor | None = None,
) -> torch.Tensor:
    k_dim, n_out = b.shape
    lead = a.shape[:-1]
    fast_ok = m.separable and ad.kind == "exact" and _fits_float(k_dim, m.bits)
    if path == "matmul" and not fast_ok:
        why = (
            "the multiplier is not separable"
            if not m.separable
            else "the adder is approximate"
            if ad.kind != "exact"
            else f"K (2**bits - 1)**2 = {k_dim * ((1 << m.bits) - 1) ** 2} reaches 2**53"
        )
        raise InputError(f"{fn}: path = 'matmul' is not allowed here ({why}); allowed: 'auto' or 'elementwise'")
    rows = a.reshape(-1, k_dim)
    if path != "elementwise" and fast_ok:
        fa = _signed_map(m, rows).to(torch.float64)
        fb = b_mapped if b_mapped is not None else _signed_map(m, b).to(torch.float64)
        return (fa @ fb).round().to(torch.int64).reshape(*lead, n_out)
    out = torch.empty(rows.shape[0], n_out, dtype=torch.int64, device=a.device)
    bt = b.t()  # (N, K)
    top = (1 << m.bits) - 1
    use_table = not m.separable and m.bits <= _TABLE_BITS
    if m.separable:
        prep_b = _signed_map(m, bt)
    elif use_table:
        table = _signed_table(m, a.device)
        prep_b = bt + top  # column of the table
    else:
        sign_b, mag_b = torch.sign(bt), bt.abs()
        pb, mb = _mitchell_parts(mag_b)
    step = max(1, chunk_bytes // max(1, 8 * n_out * k_dim))
    for r0 in range(0, rows.shape[0], step):
        chunk = rows[r0 : r0 + step]
        if m.separable:
            prod = _signed_map(m, chunk)[:, None, :] * prep_b[None]
        elif use_table:
            prod = table[(chunk + top)[:, None, :] * (2 * top + 1) + prep_b[None]]
        else:
            pa, ma = _mitchell_parts(chunk.abs())
            prod = _mitchell_combine(pa[:, None, :], ma[:, None, :], pb[None], mb[None])
            prod = prod * (torch.sign(chunk)[:, None, :] * sign_b[None])
        out[r0 : r0 + step] = prod.sum(-1) if ad.kind == "exact" else approx_sum(prod, -1, ad)
    return out.reshape(*lead, n_out)


_TABLE_BITS = (
    8  #: non-separable multipliers of up to this width use a signed product table ((2**(bits+1)-1)**2 entries)
)
_TABLES: dict[tuple[Multiplier, str], torch.Tensor] = {}


def _signed_table(m: Multiplier, device: torch.device) -> torch.Tensor:
    """Flat int64 table of ``sign(a) sign(b) M(|a|, |b|)`` for signed codes ``a, b`` in ``-top..top``
    (``top = 2**bits - 1``), at index ``(a + top) (2 top + 1) + (b + top)`` (2 MiB at 8 bits; cached per
    device). Built once from ``_unsigned_product``, so it is the same arithmetic, looked up."""
    key = (m, str(device))
    if key not in _TABLES:
        top = (1 << m.bits) - 1
        v = torch.arange(-top, top + 1, dtype=torch.int64)
        a, b = v.repeat_interleave(v.numel()), v.repeat(v.numel())
        _TABLES[key] = (torch.sign(a) * torch.sign(b) * _unsigned_product(m, a.abs(), b.abs())).to(device)
    return _TABLES[key]


def _signed_map(m: Multiplier, codes: torch.Tensor) -> torch.Tensor:
    """``sign(c) f(|c|)`` for a separable multiplier's operand map ``f``."""
    return torch.sign(codes) * _operand_map(m, codes.abs())


# ---------------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------------

LAYER_BITS = MULTIPLIER_BITS


class _ApproxBase(nn.Module):
    """Shared quantization, integer product and straight-through gradient of ``ApproxLinear`` and
    ``ApproxConv2d``.

    State: ``weight`` / ``bias`` are the float layer's parameters (kept, so that the layer can be trained with
    straight-through gradients); the buffers ``weight_codes`` (int64, signed ``bits``-bit, max ``|code|`` =
    ``2**(bits-1) - 1``, per output channel), ``weight_scale`` (float64, one step per output channel, weight
    units per code) and ``input_range_buf`` (float64 scalar: the frozen input range, in input units; 0 means
    dynamic, ``max|x|`` of each batch) are persistent; ``_weight_mapped`` (the fast path's float64 operand-mapped
    weight) is a non-persistent cache. The codes are re-made from ``weight`` whenever ``weight`` has changed in
    place (an optimizer step, ``load_state_dict``), checked by its version counter at each forward."""

    weight_codes: torch.Tensor
    weight_scale: torch.Tensor
    input_range_buf: torch.Tensor
    _weight_mapped: torch.Tensor | None

    def _init_approx(self, weight: torch.Tensor, bias: torch.Tensor | None, multiplier, adder, bits: int) -> None:
        fn = type(self).__name__
        self.bits = check_int(
            fn,
            "bits",
            bits,
            *LAYER_BITS,
            "signed codes of bits bits have magnitudes below 2**(bits-1), inside the bits-bit "
            "unsigned multiplier's range; " + MULTIPLIER_BITS_WHY,
        )
        self.multiplier = parse_multiplier(multiplier, self.bits)
        if self.multiplier.bits != self.bits:
            raise InputError(
                f"{fn}: multiplier {self.multiplier.name!r} has bits = {self.multiplier.bits}, the layer "
                f"bits = {self.bits}; give the multiplier by name or with the same bits"
            )
        self.adder = parse_adder(adder)
        self.path = "auto"
        self.chunk_bytes = CHUNK_BYTES
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=weight.requires_grad)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=bias.requires_grad)
        out_ch = weight.shape[0]
        self.register_buffer("weight_codes", torch.zeros(weight.shape, dtype=torch.int64, device=weight.device))
        self.register_buffer("weight_scale", torch.ones(out_ch, dtype=torch.float64, device=weight.device))
        self.register_buffer("input_range_buf", torch.zeros((), dtype=torch.float64, device=weight.device))
        self.register_buffer("_weight_mapped", None, persistent=False)
        self._weight_version = -1
        self.requantize()

    @property
    def qmax(self) -> int:
        """Largest signed code ``2**(bits-1) - 1``."""
        return (1 << (self.bits - 1)) - 1

    @property
    def input_range(self) -> float | None:
        """The frozen input range (``max|x|`` mapped to the largest code, input units), or None for dynamic
        (each batch's own ``max|x|``). Set it to a positive float, or None."""
        value = float(self.input_range_buf)
        return value if value > 0 else None

    @input_range.setter
    def input_range(self, value) -> None:
        if value is None:
            self.input_range_buf.fill_(0.0)
            return
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
            raise InputError(
                f"{type(self).__name__}: input_range = {short_repr(value)} is not allowed; give a "
                f"positive finite number (input units) or None for the batch's own max|x|"
            )
        self.input_range_buf.fill_(float(value))

    @torch.no_grad()
    def requantize(self) -> None:
        """Re-make ``weight_codes`` / ``weight_scale`` from ``weight``: per output channel, step
        ``max|w| / (2**(bits-1) - 1)`` (1.0 for an all-zero channel), codes ``clamp(round(w / step))``."""
        w = self.weight.detach().to(torch.float64).reshape(self.weight.shape[0], -1)
        top = w.abs().amax(dim=1)
        scale = torch.where(top > 0, top / self.qmax, torch.ones_like(top))
        codes = torch.clamp(torch.round(w / scale[:, None]), -self.qmax, self.qmax).to(torch.int64)
        self.weight_codes.copy_(codes.reshape(self.weight.shape))
        self.weight_scale.copy_(scale)
        self._weight_mapped = None
        self._weight_version = self.weight._version

    def _sync(self) -> None:
        if self.weight._version != self._weight_version:
            self.requantize()

    def _codes_matrix(self) -> torch.Tensor:
        return self.weight_codes.reshape(self.weight_codes.shape[0], -1).t()  # (K, O)

    def _mapped(self) -> torch.Tensor | None:
        m = self.multiplier
        k_dim = self._codes_matrix().shape[0]
        if (
            not (m.separable and self.adder.kind == "exact" and _fits_float(k_dim, m.bits))
            or self.path == "elementwise"
        ):
            return None
        if self._weight_mapped is None or self._weight_mapped.device != self.weight_codes.device:
            self._weight_mapped = _signed_map(m, self._codes_matrix()).to(torch.float64)
        return self._weight_mapped

    def _quantize_input(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        rng = self.input_range
        return to_grid(x, self.bits, None if rng is None else rng / self.qmax)

    def _integer_product(self, cols: torch.Tensor) -> torch.Tensor:
        """``approx_matmul(cols, weight codes (K, O))`` with the cached mapped weight."""
        fn = type(self).__name__
        b = self._codes_matrix()
        return _matmul(fn, self.multiplier, self.adder, cols, b, self.path, self.chunk_bytes, self._mapped())

    def _rescale(self, x: torch.Tensor, acc: torch.Tensor, s: float, channel_dim: int) -> torch.Tensor:
        """The integer sums ``acc`` times ``input step x weight step`` (float64) plus the float bias, in
        ``x``'s output dtype; ``channel_dim`` is the output-channel dim of ``acc``."""
        shape = [1] * acc.ndim
        shape[channel_dim] = -1
        y = acc.to(torch.float64) * (s * self.weight_scale).reshape(shape)
        if self.bias is not None:
            y = y + self.bias.detach().to(torch.float64).reshape(shape)
        return y.to(out_dtype(x))

    def _needs_grad(self, x: torch.Tensor) -> bool:
        return torch.is_grad_enabled() and (
            x.requires_grad or self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad)
        )

    @staticmethod
    def _ste(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``value`` in the forward pass, ``d/d value`` of ``target``'s graph in the backward pass."""
        return value + (target - value).detach()

    def _quantized_float_operands(self, x: torch.Tensor, q: torch.Tensor, s: float):
        dtype = out_dtype(x)
        xq = self._ste(x.to(dtype), (q.to(torch.float64) * s).to(dtype))
        wshape = (-1,) + (1,) * (self.weight.dim() - 1)
        wq_val = (self.weight_codes.to(torch.float64) * self.weight_scale.reshape(wshape)).to(dtype)
        wq = self._ste(self.weight.to(dtype), wq_val)
        bias = None if self.bias is None else self.bias.to(dtype)
        return xq, wq, bias

    def extra_repr(self) -> str:
        rng = self.input_range
        return (
            f"multiplier={self.multiplier.name!r}, adder={self.adder.name!r}, bits={self.bits}, "
            f"input_range={'dynamic' if rng is None else f'{rng:.4g}'}"
        )


class ApproxLinear(_ApproxBase):
    """``nn.Linear`` computed like an integer digital accelerator with approximate arithmetic: input codes
    (signed, ``bits`` bits, one scale per tensor: the batch's ``max|x|`` or the frozen ``input_range``) times
    weight codes (per output channel) through ``approx_matmul(multiplier, adder)``, the integer sums rescaled
    by ``input step x weight step`` (float64) and the float bias added; output in ``x``'s float dtype
    (float32 for 16-bit floats). Gradients are straight-through: the forward value is the approximate one,
    the backward that of ``F.linear`` on the quantized input and weight (with a gradient wanted the value is
    formed as ``y_float + (y_approx - y_float).detach()``, equal to ``y_approx`` up to float rounding; without,
    it is ``y_approx`` exactly). Make one with ``from_float``."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, multiplier="exact", adder="exact", bits: int = 8
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        ref = nn.Linear(in_features, out_features, bias=bias)
        self._init_approx(ref.weight, ref.bias, multiplier, adder, bits)

    @classmethod
    def from_float(cls, module: nn.Linear, multiplier="exact", adder="exact", bits: int = 8) -> ApproxLinear:
        """An ``ApproxLinear`` with ``module``'s weight and bias (copied; device and dtype kept)."""
        if not isinstance(module, nn.Linear):
            raise InputError(f"ApproxLinear.from_float: module is a {type(module).__name__}; it must be an nn.Linear")
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_features, new.out_features = module.in_features, module.out_features
        new._init_approx(module.weight, module.bias, multiplier, adder, bits)
        new.train(module.training)
        return new

    def integer_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(acc, q, s)``: the int64 sums ``(..., out_features)`` before rescaling, the input codes and the
        input step (input units per code)."""
        fn = "ApproxLinear"
        x = check_float_tensor(fn, x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise InputError(
                f"{fn}: x has shape {tuple(x.shape)}; its last dim must be in_features = {self.in_features}"
            )
        self._sync()
        q, s = self._quantize_input(x)
        return self._integer_product(q), q, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The approximate integer layer's output (see the class docstring)."""
        acc, q, s = self.integer_forward(x)
        y = self._rescale(x, acc, s, -1)
        if not self._needs_grad(x):
            return y
        xq, wq, bias = self._quantized_float_operands(x, q, s)
        return self._ste(F.linear(xq, wq, bias), y)


class ApproxConv2d(_ApproxBase):
    """``nn.Conv2d`` (groups = 1) computed like ``ApproxLinear`` through im2col: the input is padded in float
    (the module's padding and padding mode), quantized (one scale per tensor), unfolded into
    ``(N, L, C kh kw)`` code columns and multiplied by the ``(C kh kw, out_channels)`` weight codes with
    ``approx_matmul``. Same quantization, rescaling and straight-through gradient as ``ApproxLinear``.
    Inputs ``(N, C, H, W)`` or unbatched ``(C, H, W)``. Make one with ``from_float``."""

    # set by from_float, copied from the nn.Conv2d
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: str | tuple[int, ...]
    padding_mode: str
    _pad: tuple[int, ...]

    @classmethod
    def from_float(cls, module: nn.Conv2d, multiplier="exact", adder="exact", bits: int = 8) -> ApproxConv2d:
        """An ``ApproxConv2d`` with ``module``'s weight, bias and geometry. Grouped convolutions (``groups > 1``)
        are not supported (an InputError; ``approximate`` keeps them float and warns)."""
        fn = "ApproxConv2d.from_float"
        if not isinstance(module, nn.Conv2d):
            raise InputError(f"{fn}: module is a {type(module).__name__}; it must be an nn.Conv2d")
        if module.groups != 1:
            raise InputError(
                f"{fn}: groups = {module.groups} is not allowed; only groups = 1 (one im2col matrix "
                f"product); keep grouped / depthwise convolutions float (approximate() does)"
            )
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_channels, new.out_channels = module.in_channels, module.out_channels
        new.kernel_size, new.stride, new.dilation = module.kernel_size, module.stride, module.dilation
        new.padding, new.padding_mode = module.padding, module.padding_mode
        new._pad = tuple(module._reversed_padding_repeated_twice)
        new._init_approx(module.weight, module.bias, multiplier, adder, bits)
        new.train(module.training)
        return new

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        if not any(self._pad):
            return x
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(x, self._pad, mode=mode)

    def integer_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(acc, q, s)``: the int64 sums ``(N, out_channels, H_out, W_out)`` before rescaling, the padded
        input codes and the input step."""
        fn = "ApproxConv2d"
        x = check_float_tensor(fn, x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InputError(
                f"{fn}: x has shape {tuple(x.shape)}; allowed: (N, {self.in_channels}, H, W) or "
                f"({self.in_channels}, H, W)"
            )
        self._sync()
        xp = self._padded(x)
        q, s = self._quantize_input(xp)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        h_out = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
        w_out = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
        if h_out < 1 or w_out < 1:
            raise InputError(
                f"{fn}: input {tuple(x.shape)} is smaller than the (dilated) kernel {self.kernel_size} after padding"
            )
        # codes are exact in float64, so unfold them there
        cols = F.unfold(q.to(torch.float64), self.kernel_size, dilation=self.dilation, stride=self.stride)
        cols = cols.to(torch.int64).transpose(1, 2)  # (N, L, C kh kw)
        acc = self._integer_product(cols)  # (N, L, O)
        acc = acc.transpose(1, 2).reshape(x.shape[0], self.out_channels, h_out, w_out)
        return acc, q, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unbatched = isinstance(x, torch.Tensor) and x.ndim == 3
        if unbatched:
            x = x.unsqueeze(0)
        acc, q, s = self.integer_forward(x)
        y = self._rescale(x, acc, s, 1)
        if self._needs_grad(x):
            xq, wq, bias = self._quantized_float_operands(self._padded(x), q, s)
            y = self._ste(F.conv2d(xq, wq, bias, self.stride, 0, self.dilation), y)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            + super().extra_repr()
        )


def approx_modules(model: nn.Module) -> dict[str, _ApproxBase]:
    """The ``ApproxLinear`` / ``ApproxConv2d`` modules of ``model`` by qualified name."""
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, _ApproxBase)}


def approximate(
    model: nn.Module, multiplier="exact", adder="exact", bits: int = 8, skip: Iterable[str] = ()
) -> nn.Module:
    """A deep copy of ``model`` with every ``nn.Linear`` and ``nn.Conv2d`` replaced by ``ApproxLinear`` /
    ``ApproxConv2d`` (``from_float(module, multiplier, adder, bits)``), except the modules whose qualified
    names (as in ``model.named_modules()``) are in ``skip`` (a skipped container keeps all of its children
    float). Grouped convolutions (``groups > 1``) stay float,
    with a warning naming them. ``model`` itself is not changed. Unknown names in ``skip`` raise an InputError."""
    fn = "approximate"
    if not isinstance(model, nn.Module):
        raise InputError(f"{fn}: model is a {type(model).__name__}; it must be an nn.Module")
    if isinstance(skip, str):
        skip = (skip,)
    skip = set(skip)
    names = {name for name, _ in model.named_modules()}
    unknown = sorted(skip - names)
    if unknown:
        raise InputError(
            f"{fn}: skip names {unknown} are not modules of the model; allowed: names from "
            f"model.named_modules(), e.g. {sorted(n for n in names if n)[:5]}"
        )
    # validate the arithmetic once, before copying
    mult = parse_multiplier(multiplier, check_int(fn, "bits", bits, *LAYER_BITS, MULTIPLIER_BITS_WHY))
    ad = parse_adder(adder)
    new = copy.deepcopy(model)
    kept: list[str] = []

    def convert(parent: nn.Module, prefix: str) -> None:
        for child_name, child in list(parent.named_children()):
            full = f"{prefix}.{child_name}" if prefix else child_name
            if full in skip or isinstance(child, _ApproxBase):
                continue
            if isinstance(child, nn.Linear):
                setattr(parent, child_name, ApproxLinear.from_float(child, mult, ad, bits))
            elif isinstance(child, nn.Conv2d):
                if child.groups != 1:
                    kept.append(full)
                else:
                    setattr(parent, child_name, ApproxConv2d.from_float(child, mult, ad, bits))
            else:
                convert(child, full)

    if isinstance(new, (nn.Linear, nn.Conv2d)) and "" not in skip:
        if isinstance(new, nn.Linear):
            return ApproxLinear.from_float(new, mult, ad, bits)
        if new.groups == 1:
            return ApproxConv2d.from_float(new, mult, ad, bits)
        kept.append("(the model)")
    else:
        convert(new, "")
    if kept:
        warnings.warn(
            f"approximate: grouped convolutions kept float (ApproxConv2d needs groups = 1): {kept}", stacklevel=2
        )
    return new


@torch.no_grad()
def calibrate(model: nn.Module, inputs) -> dict[str, float]:
    """Freeze every approximate layer's ``input_range`` to the largest ``|x|`` it sees over ``inputs`` (a
    tensor, or an iterable of tensors / tuples of positional arguments, run through ``model``). Ranges are
    reset to dynamic first. Returns the ranges by layer name (a layer that saw only zeros stays dynamic)."""
    layers = approx_modules(model)
    if not layers:
        raise InputError("calibrate: model has no ApproxLinear / ApproxConv2d layers; run approximate() first")
    seen = {name: 0.0 for name in layers}
    handles = []
    for name, layer in layers.items():
        layer.input_range = None

        def hook(mod, args, name=name):
            seen[name] = max(seen[name], float(args[0].detach().abs().max()) if args[0].numel() else 0.0)

        handles.append(layer.register_forward_pre_hook(hook))
    try:
        batches = [inputs] if isinstance(inputs, torch.Tensor) else inputs
        count = 0
        for batch in batches:
            model(*batch) if isinstance(batch, (tuple, list)) else model(batch)
            count += 1
        if count == 0:
            raise InputError("calibrate: inputs is empty; give a tensor or a non-empty iterable of batches")
    finally:
        for h in handles:
            h.remove()
    for name, layer in layers.items():
        layer.input_range = seen[name] if seen[name] > 0 else None
    return seen
