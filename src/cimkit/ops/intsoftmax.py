"""Integer-only softmax in the style of I-BERT (Kim et al., ICML 2021, Sec. 3.4, Algorithms 1-2) and
SoftmAP (Rakka et al., arXiv 2411.17847): exp by range reduction and a second-order polynomial, then an
integer normalization onto the output grid ``k / 2**output_bits`` with rows summing to exactly 1.

Data path (int64 from the input grid to the output codes; the only float steps are the input grid
``q = round(x / s)`` and the final ``k * 2**-output_bits``; the constants below are made once from floats):

1. ``d = q - max(q)`` along the row: ``d <= 0``.
2. Range reduction: ``u = -d s / ln 2`` in fixed point with ``LOG2_FRAC_BITS`` fraction bits, by one integer
   multiply and shift (``u = (n * mult) >> shift``, the multiplier made from ``s`` once). Its integer part
   is ``z``, its fraction ``f``: ``x - max = -z ln2 + p`` with ``p = -f ln2`` in ``(-ln2, 0]``.
3. ``exp(p)`` by a quadratic ``a (p + b)**2 + c`` (I-BERT's, or refitted; ``ExpPoly``). With ``segments > 1``
   the reduced range is cut once more, ``p = -j ln2 / segments + r``, and ``exp(-j ln2 / segments)`` comes
   from an integer table of ``segments`` entries, so the quadratic only spans ``(-ln2 / segments, 0]``.
4. ``exp(x - max) = poly(p) >> z`` on the integer scale ``2**-EXP_BITS`` (``e**0`` is ``2**38``).
5. Normalization: ``k_i = floor(E_i 2**B / sum E)`` plus one for the ``L`` largest remainders, where ``L``
   brings the row sum to exactly ``2**B`` (largest-remainder rounding; ties go to the larger input, then to
   the lower index).

Why fixed point in log2 units instead of I-BERT's integers "at the input scale": I-BERT rounds ``ln2 / s``
and ``b / s`` to integers, an error that grows with ``z`` and with ``s``; the multiplier form keeps the
reduced argument within ``2**-30`` (log2 units) whatever the input scale, so that the only visible errors
are the polynomial's and the output grid's.

Internal widths: the defaults above (``WIDE``) are the kernel everything else is checked against. A
``SoftmaxWidths`` passed as ``widths=`` narrows them (fraction bits of the reduced argument and the
polynomial, the exp's output scale, the segment table's fraction bits, the range-reduction multiplier's
bits) for low-precision studies such as SoftmAP's; ``LOW_PRECISION`` is one such kernel. Every function
of the data path takes it, so a narrow kernel is still one exact integer reference (``cimkit.ap`` runs the
same kernel bit for bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..errors import InputError, short_repr
from .fit import chebyshev_quadratic
from .grid import check_dim, check_float_tensor, check_int, check_scale, out_dtype, to_grid
from .intmath import fixed_step, shift_round

LN2 = math.log(2.0)
LOG2_FRAC_BITS = 30  #: fraction bits of the reduced argument -x / ln2 (its step is 2**-30 in log2 units)
EXP_BITS = 38  #: int_exp's output scale is 2**-EXP_BITS: exp(0) is 2**38, so E * 2**B fits int64 for B <= 24
_TABLE_BITS = 30  #: fraction bits of the segment table 2**(-j / segments)
_POLY_BITS = LOG2_FRAC_BITS  #: fraction bits of the polynomial's value
EXP_ARITH_BOUND = 2e-8  #: bound on the fixed-point rounding of int_exp on the reduced range (absolute)
MAX_ROW = 1 << 24  #: longest softmax row: sum of the exps (each <= 2**38) stays below 2**62

INPUT_BITS = (2, 32)
INPUT_BITS_WHY = "row differences of 32-bit codes times a 30-bit multiplier stay below 2**63"
OUTPUT_BITS = (1, 24)
OUTPUT_BITS_WHY = "exp values of 38 bits shifted by the output bits stay below 2**62, and float32 holds k / 2**24"


@dataclass(frozen=True)
class SoftmaxWidths:
    """Internal widths of the integer softmax kernel (all in bits). The defaults are the module's constants
    (``WIDE``: every output of ``softmax_codes`` / ``int_softmax`` without ``widths`` is this kernel's).

    ``frac_bits``: fraction bits of the reduced argument ``-x / ln2`` and of the polynomial's value
    (``LOG2_FRAC_BITS``), 4..30; ``exp_bits``: the exp's output scale, ``exp(0) = 2**exp_bits``
    (``EXP_BITS``), 2..38 and below ``table_bits + frac_bits``; ``table_bits``: fraction bits of the segment
    table ``2**(-j / segments)``, 1..30; ``mult_bits``: bits of the range-reduction multiplier, None for the
    widest that keeps ``n * mult`` in int64 (``intmath.fixed_step``), else ``frac_bits +
    bit_length(exp_bits + 2)``..30 (its relative error is below ``2**-mult_bits``). ``name``: a label."""

    frac_bits: int = LOG2_FRAC_BITS
    exp_bits: int = EXP_BITS
    table_bits: int = _TABLE_BITS
    mult_bits: int | None = None
    name: str = "wide"

    def __post_init__(self) -> None:
        fn = "SoftmaxWidths"
        for field_name, lo, hi, why in (
            ("frac_bits", 4, LOG2_FRAC_BITS, "t * t of the polynomial stays below 2**62"),
            ("exp_bits", 2, EXP_BITS, "E * 2**output_bits stays below 2**62"),
            ("table_bits", 1, _TABLE_BITS, "table * polynomial stays below 2**62"),
        ):
            check_int(fn, field_name, getattr(self, field_name), lo, hi, why)
        if self.exp_bits >= self.table_bits + self.frac_bits:
            raise InputError(
                f"{fn}: exp_bits = {self.exp_bits} is not allowed with table_bits = {self.table_bits} and "
                f"frac_bits = {self.frac_bits}; exp_bits must be below table_bits + frac_bits = "
                f"{self.table_bits + self.frac_bits} (table * polynomial is rounded down onto the exp's scale)"
            )
        if self.mult_bits is not None:
            lo = self.frac_bits + (self.exp_bits + 2).bit_length()
            check_int(
                fn,
                "mult_bits",
                self.mult_bits,
                lo,
                30,
                f"None, or from frac_bits + bit_length(exp_bits + 2) = {lo} (the step times the multiplier "
                f"needs no left shift) to 30 (n * mult stays below 2**63)",
            )


#: the default kernel: the module's constants (30 fraction bits, exp(0) = 2**38, 30-bit table, widest multiplier)
WIDE = SoftmaxWidths()
#: a low-precision kernel (an assumption of cimkit's, not SoftmAP's published widths, which were not readable
#: here): 10 fraction bits (argument step 2**-10 in log2 units: at most 6.8e-4 relative error in an exp),
#: exp(0) = 2**16, a 10-bit table and a 16-bit multiplier; chosen so that its own rounding bound (6.7e-3 in an
#: exp, ``exp_arith_bound``) is of the order of an 8-bit output grid's step (3.9e-3)
LOW_PRECISION = SoftmaxWidths(frac_bits=10, exp_bits=16, table_bits=10, mult_bits=16, name="low")


def _check_widths(fn: str, widths) -> SoftmaxWidths:
    if not isinstance(widths, SoftmaxWidths):
        raise InputError(
            f"{fn}: widths = {short_repr(widths)} is not allowed; give a SoftmaxWidths (WIDE, the "
            f"default, or LOW_PRECISION)"
        )
    return widths


def exp_arith_bound(widths: SoftmaxWidths = WIDE, scale: float | None = None) -> float:
    """Bound on the fixed-point rounding of ``int_exp`` on the reduced range (absolute, on values in
    (1/2, 1]): the sum of the argument's rounding (``ln2 ((exp_bits + 2) 2**-mult_bits + 2**-frac_bits)``: the
    multiplier's relative error over the clipped range and the floor), the polynomial's constants and
    roundings (``5.5 * 2**-frac_bits``), the table's rounding (``2**-(table_bits + 1)``) and the final rounding
    (``2**-(exp_bits + 1)``).

    The default kernel's multiplier is as wide as int64 allows at the input step (``intmath.fixed_step``):
    at least 31 bits for steps down to about 1.3e-8, where the sum is below ``EXP_ARITH_BOUND``, which is
    returned; with ``scale`` (the input grid's step) the multiplier's actual width counts, so that finer grids
    (32-bit inputs of small scores: 28 bits at a step of 3e-9) get their larger bound (about 1.2e-7)."""
    mult_bits = widths.mult_bits
    if mult_bits is None:
        mult_bits = 31 if scale is None else max(1, int(_log2_step(scale, widths)[0]).bit_length())
    bound = (
        LN2 * ((widths.exp_bits + 2) * 2.0**-mult_bits + 2.0**-widths.frac_bits)
        + 5.5 * 2.0**-widths.frac_bits
        + 2.0 ** -(widths.table_bits + 1)
        + 2.0 ** -(widths.exp_bits + 1)
    )
    if (widths.frac_bits, widths.exp_bits, widths.table_bits, widths.mult_bits) == (
        WIDE.frac_bits,
        WIDE.exp_bits,
        WIDE.table_bits,
        WIDE.mult_bits,
    ):  # the default kernel, whatever its name
        return max(EXP_ARITH_BOUND, bound)
    return bound


@dataclass(frozen=True)
class ExpPoly:
    """``exp(p) ~ a (p + b)**2 + c`` for ``p`` in the reduced range ``(-ln2 / segments, 0]``.

    ``segments`` (a power of two, 1..1024) is the size of the integer table that reduces the range past
    I-BERT's ``(-ln2, 0]``; ``bound`` is the largest ``|a (p + b)**2 + c - exp(p)|`` on that range (the
    polynomial alone; ``int_exp`` adds at most ``EXP_ARITH_BOUND`` of fixed-point rounding).
    """

    a: float
    b: float
    c: float
    segments: int
    bound: float
    name: str = ""

    def __post_init__(self) -> None:
        if self.segments < 1 or self.segments > 1024 or self.segments & (self.segments - 1):
            raise InputError(
                f"ExpPoly: segments = {self.segments!r} is not allowed; it must be a power of two "
                f"in 1..1024 (the table index is the top bits of the reduced argument)"
            )
        width = LN2 / self.segments
        # t = (b - p) / ln2 < 2 keeps t**2 below 2**62 at 30 fraction bits; a ln2**2 < 1 keeps a * t**2 there too
        if not (0 < self.a * LN2**2 < 1 and width < self.b < 2 * LN2 and 0 < self.c < 2):
            raise InputError(
                f"ExpPoly: a = {self.a!r}, b = {self.b!r}, c = {self.c!r} are out of the fixed-point "
                f"range; allowed: 0 < a < 1/ln2**2 = {1 / LN2**2:.4f}, {width:.4g} < b < 2 ln2, "
                f"0 < c < 2"
            )

    @classmethod
    def ibert(cls) -> ExpPoly:
        """I-BERT's polynomial, on ``(-ln2, 0]`` without a table: ``0.35815147 p**2 + 0.96963238 p + 1``
        (the reference implementation's unrounded form of the paper's a = 0.3585, b = 1.353, c = 0.344).
        Largest error 1.913e-3 (at ``p = -0.53``; 1e6-point grid), stated as 1.92e-3."""
        a, lin, const = 0.35815147, 0.96963238, 1.0
        b = lin / (2 * a)
        return cls(a, b, const - a * b * b, 1, 1.92e-3, "I-BERT")

    @classmethod
    def chebyshev(cls, segments: int = 64) -> ExpPoly:
        """The quadratic interpolating ``exp`` at the three Chebyshev nodes of ``[-h, 0]``,
        ``h = ln2 / segments``: within ``h**3 / 192`` of ``exp`` there (the interpolation remainder with
        ``max |exp'''| = 1`` on ``[-h, 0]``); 1.73e-3 for one segment (I-BERT's range), 6.6e-9 for 64."""
        h = LN2 / segments
        const, lin, a = chebyshev_quadratic(math.exp, -h, 0.0)  # in v = p + h
        lin, const = lin + 2 * a * h, const + lin * h + a * h * h  # in p = v - h (both updates use the old lin)
        b = lin / (2 * a)
        return cls(a, b, const - a * b * b, segments, h**3 / 192 * (1 + 1e-9), f"Chebyshev/{segments}")

    def __call__(self, p):
        """The polynomial in float (for checks and plots; the data path uses ``int_exp``)."""
        return self.a * (p + self.b) ** 2 + self.c


IBERT_EXP = ExpPoly.ibert()
DEFAULT_EXP = ExpPoly.chebyshev(64)


@dataclass(frozen=True)
class _ExpConstants:
    """The integer constants of one ``ExpPoly``: the polynomial in the log2 variable ``g = -p / ln2``,
    ``a ln2**2 (b / ln2 - g)**2 + c`` (the same polynomial), and the segment table."""

    b_fp: int  # round(b / ln2 * 2**F)
    a_fp: int  # round(a ln2**2 * 2**F)
    c_fp: int  # round(c * 2**F)
    table: tuple[int, ...]  # round(2**30 * 2**(-j / segments))
    index_shift: int  # f >> index_shift is the segment


@lru_cache(maxsize=None)
def _exp_constants(poly: ExpPoly, widths: SoftmaxWidths = WIDE) -> _ExpConstants:
    frac = widths.frac_bits
    index_shift = frac - (poly.segments.bit_length() - 1)
    if index_shift < 0:
        raise InputError(
            f"exp = {poly.name!r} has {poly.segments} segments, more than 2**frac_bits = 2**{frac} "
            f"(widths {widths.name!r}); use fewer segments or more frac_bits"
        )
    one = 1 << frac
    table = tuple(round(math.ldexp(2.0 ** (-j / poly.segments), widths.table_bits)) for j in range(poly.segments))
    return _ExpConstants(
        round(poly.b / LN2 * one), round(poly.a * LN2 * LN2 * one), round(poly.c * one), table, index_shift
    )


def _exp_fraction_raw(
    f: torch.Tensor, k: _ExpConstants, table: torch.Tensor, widths: SoftmaxWidths = WIDE
) -> torch.Tensor:
    """``2**E * 2**(-f / 2**F)`` for fractions ``f`` in ``[0, 2**F)``: table times polynomial (``F``, ``E``:
    ``widths.frac_bits``, ``widths.exp_bits``; the polynomial has ``F`` fraction bits, ``_POLY_BITS`` by
    default)."""
    frac = widths.frac_bits
    j = f >> k.index_shift
    v = f & ((1 << k.index_shift) - 1)  # the rest of the fraction: g = v / 2**F in [0, 1 / segments)
    t = k.b_fp - v
    poly = shift_round(k.a_fp * shift_round(t * t, frac), frac) + k.c_fp
    return shift_round(table[j] * poly, widths.table_bits + frac - widths.exp_bits)


def _exp_fraction(f: torch.Tensor, poly: ExpPoly, widths: SoftmaxWidths = WIDE) -> torch.Tensor:
    """``_exp_fraction_raw`` made non-increasing in ``f`` and at least half its value at 0 at the end (so
    that ``E`` never grows as ``x`` falls): each segment is held at or above the next segment's first value
    (and the last at or above ``h(0) // 2``). This moves values by at most the polynomial's error."""
    k = _exp_constants(poly, widths)
    table = torch.tensor(k.table, dtype=torch.int64, device=f.device)
    seg = torch.arange(1, poly.segments + 1, dtype=torch.int64, device=f.device) << k.index_shift
    starts = _exp_fraction_raw(torch.cat([seg[:-1], seg.new_zeros(1)]), k, table, widths)
    floors = torch.cat([starts[:-1], starts[-1:] >> 1])
    return torch.maximum(_exp_fraction_raw(f, k, table, widths), floors[f >> k.index_shift])


@lru_cache(maxsize=1024)
def _log2_step(scale: float, widths: SoftmaxWidths = WIDE) -> tuple[int, int, int]:
    """``(mult, shift, n_clip)``: ``(min(n, n_clip) * mult) >> shift`` is ``n s / ln2`` with
    ``widths.frac_bits`` fraction bits. From ``n_clip`` on, ``u >= exp_bits + 2`` and the exp is 0 (so the
    step is capped there too: above it every ``n >= 1`` gives 0 anyway). ``widths.mult_bits`` None: the
    widest multiplier (``intmath.fixed_step``); else a multiplier of that many bits."""
    cutoff = widths.exp_bits + 2
    step = min(scale / LN2, float(cutoff))
    n_clip = min(math.ceil(cutoff / step), 1 << 33)
    if widths.mult_bits is None:
        return (*fixed_step(step, n_clip, widths.frac_bits), n_clip)
    m, e = math.frexp(step)  # step = m 2**e, m in [1/2, 1): mult = round(m 2**mult_bits), shift >= 0 (checked)
    return round(math.ldexp(m, widths.mult_bits)), widths.mult_bits - e - widths.frac_bits, n_clip


def int_exp(
    q: torch.Tensor, scale: float, *, poly: ExpPoly = DEFAULT_EXP, widths: SoftmaxWidths = WIDE
) -> tuple[torch.Tensor, float]:
    """Integer ``exp`` of non-positive int64 codes ``q`` on the grid of step ``scale``: ``(E, 2**-38)`` with
    ``E * 2**-38 ~ exp(q * scale)``, ``E`` int64 (``exp(0)`` is ``2**38``).

    Error: ``|E 2**-38 - exp(x)| <= 2**-z (poly.bound + exp_arith_bound(scale=scale)) + 2**-38`` where
    ``z = floor(-x / ln2)``; on the reduced range ``(-ln2, 0]`` that is ``poly.bound + 2e-8`` for steps above
    about 1.3e-8 (1.9e-3 for I-BERT's polynomial, 2.7e-8 for the default 64-segment one), up to 1.1e-7 of
    rounding on finer grids. ``E`` never increases as ``q`` decreases. With ``widths`` (``SoftmaxWidths``):
    ``(E, 2**-widths.exp_bits)``, the rounding bound is ``exp_arith_bound(widths, scale)`` and ``2**-38``
    becomes ``2**-exp_bits`` in the bound.
    """
    widths = _check_widths("int_exp", widths)
    if q.dtype != torch.int64:
        raise InputError(f"int_exp: q has dtype {q.dtype}; it takes int64 codes (x = q * scale)")
    step = check_scale("int_exp", scale)
    if step is None:
        raise InputError("int_exp: scale = None is not allowed; give the step of q's grid (a positive number)")
    scale = step
    if q.numel() and bool((q > 0).any()):
        raise InputError(
            f"int_exp: q has positive codes (largest {int(q.max())}); it takes q <= 0 (subtract the "
            f"row maximum first, as softmax does)"
        )
    mult, shift, n_clip = _log2_step(scale, widths)
    frac = widths.frac_bits
    u = (-torch.clamp(q, min=-n_clip) * mult) >> shift
    z = (u >> frac).clamp(max=62)
    return _exp_fraction(u & ((1 << frac) - 1), poly, widths) >> z, 2.0**-widths.exp_bits


def softmax_codes(
    q: torch.Tensor,
    scale: float,
    *,
    dim: int = -1,
    output_bits: int = 8,
    exp: ExpPoly = DEFAULT_EXP,
    widths: SoftmaxWidths = WIDE,
) -> torch.Tensor:
    """The integer kernel of ``int_softmax``: int64 codes ``q`` (step ``scale``, ``|q| < 2**62``) in, int64 output codes
    ``k`` out, ``k`` in ``0..2**output_bits`` with every row (along ``dim``) summing to ``2**output_bits``.
    ``k / 2**output_bits`` approximates ``softmax(q * scale)``; see ``int_softmax`` for the bound.
    ``widths``: the kernel's internal widths (``SoftmaxWidths``; default ``WIDE``)."""
    fn = "softmax_codes"
    widths = _check_widths(fn, widths)
    if q.dtype != torch.int64:
        raise InputError(f"{fn}: q has dtype {q.dtype}; it takes int64 codes")
    bits = check_int(fn, "output_bits", output_bits, *OUTPUT_BITS, OUTPUT_BITS_WHY)
    dim = check_dim(fn, dim, q.dim())
    if q.dim() == 0:
        return softmax_codes(q.reshape(1), scale, dim=0, output_bits=bits, exp=exp, widths=widths).reshape(())
    if q.shape[dim] > MAX_ROW:
        raise InputError(
            f"{fn}: rows of {q.shape[dim]:,} elements along dim {dim} are too long; at most "
            f"{MAX_ROW:,} (2**24) keep the sum of 38-bit exps below 2**62"
        )
    if q.numel() == 0:
        return torch.zeros_like(q)
    rows = q.movedim(dim, -1)
    e, _ = int_exp(rows - rows.amax(dim=-1, keepdim=True), scale, poly=exp, widths=widths)
    return _largest_remainder(e, rows, bits).movedim(-1, dim)


def _largest_remainder(e: torch.Tensor, key: torch.Tensor, bits: int) -> torch.Tensor:
    """``e * 2**bits / sum(e)`` along the last dim as integers summing to exactly ``2**bits``: the floor of
    each quotient, plus one for the ``L`` largest remainders (``L`` = what the floors leave). Equal
    remainders go to the larger ``key`` first, then to the lower index, so a larger input never gets less."""
    total = e.sum(dim=-1, keepdim=True)
    num = e << bits
    quotient = torch.div(num, total, rounding_mode="floor")
    remainder = num - quotient * total
    left = (1 << bits) - quotient.sum(dim=-1, keepdim=True)
    by_key = torch.sort(key, dim=-1, descending=True, stable=True).indices
    by_rem = torch.sort(remainder.gather(-1, by_key), dim=-1, descending=True, stable=True).indices
    order = by_key.gather(-1, by_rem)
    rank = torch.empty_like(order).scatter_(
        -1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order).contiguous()
    )
    return quotient + (rank < left)


def softmax_error_bound(
    output_bits: int,
    row_length: int,
    *,
    exp: ExpPoly = DEFAULT_EXP,
    input_scale: float = 0.0,
    widths: SoftmaxWidths = WIDE,
) -> float:
    """Bound on ``|int_softmax(x) - softmax(x)|`` per element: ``2**-B`` (largest-remainder rounding leaves
    each code within one step of its exact quotient) ``+ 4 eps / (1 - 2 eps) + (n + 1) 2**-38`` (each exp
    off by at most ``2 eps`` relative, ``eps = exp.bound + exp_arith_bound(widths, input_scale)`` on values in
    (1/2, 1], moves a
    quotient by at most ``4 eps`` of the row; the floors of ``>> z`` by ``(n + 1)`` units of ``2**-38``)
    ``+ s / 4`` (a grid error of at most ``s / 2`` per input moves softmax by at most ``s / 4``:
    ``|d softmax_i| <= y_i (1 - y_i) max-min(dx)``). ``input_scale=0`` leaves the grid term out.
    ``widths``: a narrower kernel's bound (``exp_arith_bound(widths)`` for ``EXP_ARITH_BOUND``,
    ``2**-widths.exp_bits`` for ``2**-38``)."""
    widths = _check_widths("softmax_error_bound", widths)
    eps = exp.bound + exp_arith_bound(widths, input_scale or None)
    return 2.0**-output_bits + 4 * eps / (1 - 2 * eps) + (row_length + 1) * 2.0**-widths.exp_bits + input_scale / 4


def int_softmax(
    x: torch.Tensor,
    dim: int = -1,
    *,
    input_bits: int = 16,
    output_bits: int = 8,
    input_scale: float | None = None,
    exp: ExpPoly = DEFAULT_EXP,
    widths: SoftmaxWidths = WIDE,
) -> torch.Tensor:
    """Integer-only softmax of ``x`` along ``dim``.

    ``x`` goes onto the signed ``input_bits`` grid (step ``input_scale``, or ``max|x|`` of the whole tensor
    over ``2**(input_bits-1) - 1``; values beyond the grid saturate); from there on everything is int64
    (module docstring). Returns a float tensor of ``x``'s shape (float32 or float64 as ``x``; float32 for
    16-bit floats) holding ``k / 2**output_bits``, ``k`` integer, each row summing to exactly 1.

    Bounds (``B = output_bits``, ``s`` the input step; ``softmax_error_bound`` computes them):
    ``|out - softmax(q s)| < 2**-B + 1.07e-7 + (n + 1) 2**-38`` for rows of ``n`` (the output grid's one
    step, from largest-remainder rounding, plus the integer exp's share; with ``exp=IBERT_EXP`` that share
    is 7.7e-3 instead of 1.07e-7), and
    ``|out - softmax(x)|`` adds at most ``s / 4`` for the input grid.
    Outputs are monotone along a row: ``q_i > q_j`` gives ``out_i >= out_j``; equal codes differ by at
    most one step (a row of equal values cannot sum to 1 on the grid otherwise).

    ``input_bits``: 2..32. ``output_bits``: 1..24 (see ``INPUT_BITS_WHY`` / ``OUTPUT_BITS_WHY``).
    ``widths``: the kernel's internal widths (``SoftmaxWidths``; ``LOW_PRECISION`` for a narrow one, whose
    bound ``softmax_error_bound(..., widths=...)`` gives).
    """
    fn = "int_softmax"
    check_float_tensor(fn, x)
    bits_in = check_int(fn, "input_bits", input_bits, *INPUT_BITS, INPUT_BITS_WHY)
    bits_out = check_int(fn, "output_bits", output_bits, *OUTPUT_BITS, OUTPUT_BITS_WHY)
    dim = check_dim(fn, dim, x.dim())
    q, s = to_grid(x, bits_in, check_scale(fn, input_scale))
    k = softmax_codes(q, s, dim=dim, output_bits=bits_out, exp=exp, widths=widths)
    return k.to(out_dtype(x)) * 2.0**-bits_out
