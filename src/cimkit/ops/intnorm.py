"""Integer-only LayerNorm with an integer square root (I-BERT, Kim et al., ICML 2021, Sec. 3.6).

Data path, per row of ``N`` elements (int64 from the input grid to the output codes):

1. ``mu = round(sum q / N)``, ``c = q - mu``; ``V = N sum c**2 - (sum c)**2`` (``N**2`` times the variance in
   codes, exact) and ``Y = N c - sum c`` (``N`` times the centred value, exact).
2. ``T = V + N**2 eps / s**2`` (the ``eps`` term is a per-tensor constant), held as ``T 4**g`` with ``g`` per
   row so that it has about 60 bits (``eps 4**g`` comes from a small integer table over ``g``).
3. ``r = isqrt(T 4**g)`` (Newton on integers, exact floor): ``sqrt(T) = r 2**-g`` to 30 bits.
4. ``k = round(Y 2**(f + g) / r)``: the normalized value ``(x - mean) / sqrt(var + eps)`` on the grid
   ``2**-f``, clamped to the signed ``output_bits`` code.

Output grid: ``f = output_bits - 1 - I`` fraction bits, where by default ``I`` (about
``log2 sqrt(N - 1)``) integer bits hold the largest possible ``|z|``, ``sqrt(N - 1)``, so the signed code
never saturates (768 features, 16 bits: ``I = 5``, step ``2**-10``); ``integer_bits`` sets a smaller
``I`` (finer step, ``|z|`` clamped just below ``2**I``). The affine ``weight * z + bias`` is the
dequantization: per feature ``weight_i 2**-f`` and offset ``bias_i`` (as I-BERT folds the weight into the
output scale; a following crossbar absorbs both into its weight rows and bias). So
``out = weight * k * 2**-f + bias``.

Error: ``|z_int - z(q s)| <= 2**-f (1/2 + 2**-8)`` (the grid's half step and the 30-bit square root;
with a smaller ``integer_bits``, where ``|z|`` is not clamped); times ``|weight|`` after the affine.
Against ``z(x)`` the input grid adds about ``s / (2 sigma)`` per element (``sigma`` the row's std).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from ..errors import InputError, short_repr
from .grid import check_float_tensor, check_int, check_scale, out_dtype, to_grid
from .intmath import bit_length, isqrt, round_div, shift_left

INPUT_BITS = (2, 16)
INPUT_BITS_WHY = "N * sum of squared centred codes stays below 2**62 for rows of up to 2**(31 - input_bits) features"
OUTPUT_BITS = (2, 24)
OUTPUT_BITS_WHY = "the code times the 31-bit square root stays below 2**56, and float32 holds 24-bit codes"
_T_BITS = 61  #: T 4**g is normalized to at most 2**61 (plus the eps term: at most 2**62)


def _integer_bits(n: int, output_bits: int) -> int:
    """Smallest ``I >= 0`` with ``sqrt(n - 1) 2**f <= 2**(output_bits-1) - 1`` for ``f = output_bits - 1 - I``:
    the largest possible ``|z|``, ``sqrt(n - 1)``, then rounds to at most the largest code (exact integer
    comparison: ``(n - 1) 4**(output_bits-1) <= 4**I (2**(output_bits-1) - 1)**2``)."""
    top = (1 << (output_bits - 1)) - 1
    i = 0
    while (n - 1) << (2 * (output_bits - 1)) > (top * top) << (2 * i):
        i += 1
    return i


def frac_bits(n: int, output_bits: int, integer_bits: int | None = None) -> int:
    """Fraction bits ``f`` of the normalized value on a row of ``n`` features (grid step ``2**-f``):
    ``output_bits - 1 - integer_bits``, the integer bits by default enough for ``sqrt(n - 1)``."""
    return output_bits - 1 - (_integer_bits(n, output_bits) if integer_bits is None else integer_bits)


def _eps_table(eps_n: float) -> tuple[int, list[int]]:
    """``(g_max, table)``: ``table[g - g_lo] = round(eps_n 4**g)`` for ``g`` in ``g_lo..30`` and the largest
    ``g`` at which it stays at most ``2**61`` (entries past it are never read)."""
    if eps_n == 0.0:
        return 30, [0] * 32
    g_max = min(30, math.floor((_T_BITS - math.log2(eps_n)) / 2))
    while g_max > -200 and eps_n * 4.0**g_max > 2.0**_T_BITS:  # log2 rounding
        g_max -= 1
    g_lo = min(g_max, -1)
    return g_max, [min(round(math.ldexp(eps_n, 2 * g)), 1 << _T_BITS) if g <= g_max else 0 for g in range(g_lo, 31)]


def layernorm_codes(
    q: torch.Tensor,
    scale: float,
    *,
    normalized_dims: int = 1,
    eps: float = 1e-5,
    output_bits: int = 16,
    integer_bits: int | None = None,
) -> tuple[torch.Tensor, int]:
    """The integer kernel of ``int_layernorm``: int64 codes ``q`` (step ``scale``) normalized over their last
    ``normalized_dims`` dims; returns ``(k, f)``, int64 codes ``k`` of ``q``'s shape with ``k * 2**-f`` the
    normalized value ``(x - mean) / sqrt(var + eps)`` (biased variance, as torch). ``integer_bits``: see
    ``int_layernorm``."""
    fn = "layernorm_codes"
    if q.dtype != torch.int64:
        raise InputError(f"{fn}: q has dtype {q.dtype}; it takes int64 codes (x = q * scale)")
    bits = check_int(fn, "output_bits", output_bits, *OUTPUT_BITS, OUTPUT_BITS_WHY)
    step = check_scale(fn, scale)
    if step is None:
        raise InputError(f"{fn}: scale = None is not allowed; give the step of q's grid (a positive number)")
    scale = step
    nd = check_int(fn, "normalized_dims", normalized_dims, 1, max(q.dim(), 1), "the trailing dims normalized")
    rows = q.flatten(-nd) if q.dim() else q.reshape(1)
    n = rows.shape[-1]
    if integer_bits is not None:  # |z| 2**f times the 31-bit root must stay below 2**61 before the clamp
        low = max(0, _integer_bits(n, bits) + bits - 31)
        check_int(
            fn,
            "integer_bits",
            integer_bits,
            low,
            bits - 1,
            f"the code's sign and integer bits; below {low} the unclamped quotient of {n:,}-feature rows "
            f"could overflow int64",
        )
    f = frac_bits(n, bits, integer_bits)
    if rows.numel() == 0:
        return torch.zeros_like(q), f
    mu = round_div(rows.sum(-1, keepdim=True), n)
    c = rows - mu
    widest = int(c.abs().max())
    if n * n * widest * widest > 1 << 62:
        raise InputError(
            f"{fn}: rows of {n:,} features with centred codes up to {widest:,} overflow int64 "
            f"(N**2 max|c|**2 must stay below 2**62); use fewer input bits"
        )
    sum_c = c.sum(-1, keepdim=True)
    v = n * (c * c).sum(-1, keepdim=True) - sum_c * sum_c
    g_max, table = _eps_table(n * n * float(eps) / (scale * scale))
    g_lo = min(g_max, -1)
    g = torch.clamp((_T_BITS - bit_length(v)) >> 1, max=g_max)
    t = shift_left(v, 2 * g) + torch.tensor(table, dtype=torch.int64, device=q.device)[g - g_lo]
    r = isqrt(t).clamp(min=1)  # r = 0 only for a constant row without eps, where every Y is 0
    k = round_div(shift_left(n * c - sum_c, f + g), r)
    top = (1 << (bits - 1)) - 1
    return k.clamp(-top, top).reshape(q.shape), f


def _check_shape(fn: str, x: torch.Tensor, normalized_shape) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
    if (
        not isinstance(shape, Sequence | torch.Size)
        or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and int(d) > 0 for d in shape)
        or not shape
    ):
        raise InputError(
            f"{fn}: normalized_shape = {short_repr(normalized_shape)} is not allowed; it must be a "
            f"positive int or a non-empty sequence of positive ints"
        )
    shape = tuple(int(d) for d in shape)
    if tuple(x.shape[x.dim() - len(shape) :]) != shape or x.dim() < len(shape):
        raise InputError(
            f"{fn}: normalized_shape = {shape} does not match the last dims of x, of shape {tuple(x.shape)}"
        )
    return shape


def _check_affine(fn: str, name: str, value, shape: tuple[int, ...]) -> torch.Tensor | None:
    if value is None:
        return None
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or tuple(value.shape) != shape:
        what = (
            f"a {value.dtype} tensor of shape {tuple(value.shape)}"
            if isinstance(value, torch.Tensor)
            else f"a {type(value).__name__}"
        )
        raise InputError(
            f"{fn}: {name} is {what}; it must be a floating-point tensor of shape {shape} (normalized_shape) or None"
        )
    if not bool(torch.isfinite(value).all()):
        raise InputError(f"{fn}: {name} has non-finite values")
    return value


def int_layernorm(
    x: torch.Tensor,
    normalized_shape,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    *,
    input_bits: int = 16,
    output_bits: int = 16,
    integer_bits: int | None = None,
    input_scale: float | None = None,
) -> torch.Tensor:
    """Integer-only LayerNorm of ``x`` over its trailing ``normalized_shape`` (like
    ``torch.nn.functional.layer_norm``).

    ``x`` goes onto the signed ``input_bits`` grid (step ``input_scale``, or ``max|x|`` of the whole tensor
    over ``2**(input_bits-1) - 1``); mean, variance, square root and division are int64 (module
    docstring). Returns ``weight * k * 2**-f + bias`` as a float tensor (float32 or float64 as ``x``;
    float32 for 16-bit floats), ``k`` the signed ``output_bits`` code of the normalized value and
    ``f = output_bits - 1 - integer_bits`` fraction bits. ``integer_bits`` defaults to the fewest that hold
    ``sqrt(N - 1)`` (``N`` features per row), the largest ``|z|`` any row can have; fewer give a finer step
    and clamp ``|z|`` just below ``2**integer_bits`` (e.g. 3 bits: at 8 - 2**-f).

    Error: ``|weight| 2**-f (1/2 + 2**-8)`` against the float LayerNorm of the grid values (module
    docstring). ``input_bits``: 2..16 with at most ``2**(31 - input_bits)`` features per row;
    ``output_bits``: 2..24; ``eps >= 0`` (a constant row with ``eps = 0`` gives 0 where torch gives NaN).
    """
    fn = "int_layernorm"
    check_float_tensor(fn, x)
    shape = _check_shape(fn, x, normalized_shape)
    weight = _check_affine(fn, "weight", weight, shape)
    bias = _check_affine(fn, "bias", bias, shape)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps < 0:
        raise InputError(f"{fn}: eps = {short_repr(eps)} is not allowed; it must be a finite number >= 0")
    bits_in = check_int(fn, "input_bits", input_bits, *INPUT_BITS, INPUT_BITS_WHY)
    bits_out = check_int(fn, "output_bits", output_bits, *OUTPUT_BITS, OUTPUT_BITS_WHY)
    n = math.prod(shape)
    if n > 1 << (31 - bits_in):
        raise InputError(
            f"{fn}: rows of {n:,} features are too long for {bits_in} input bits; at most "
            f"2**(31 - input_bits) = {1 << (31 - bits_in):,} ({INPUT_BITS_WHY})"
        )
    q, s = to_grid(x, bits_in, check_scale(fn, input_scale))
    k, f = layernorm_codes(
        q, s, normalized_dims=len(shape), eps=float(eps), output_bits=bits_out, integer_bits=integer_bits
    )
    dtype = out_dtype(x)
    out = k.to(dtype) * 2.0**-f
    if weight is not None:
        out = out * weight.to(dtype)
    if bias is not None:
        out = out + bias.to(dtype)
    return out
