"""The integer-only softmax of ``cimkit.ops.intsoftmax.softmax_codes`` as an associative-processor program,
bit for bit, in the spirit of SoftmAP (Rakka et al., arXiv 2411.17847: an integer-only low-precision softmax
on an AP; its body was not readable here, so the dataflow below follows ``softmax_codes`` step by step, and
every choice that SoftmAP may make differently is stated).

One softmax row (``L`` scores) occupies ``L`` AP rows (one word each, a group); a row longer than
``tile_rows`` spans several tiles in lock step whose tag counts the controller adds. Steps (widths are
derived from value bounds of the parameters, never the int64 of the torch code; ``widths`` reports them):

1. ``max``: bit-serial max search on the signed codes (``arith.max_search``), read by the controller and
   written back into every row; ``n = max - q`` by an in-place subtract (``input_bits + 1`` bits, the top
   one ends 0).
2. range reduction ``u = (min(n, n_clip) * mult) >> shift``: a constant-compare clamp (skipped when
   ``n_clip`` exceeds every ``n``), a shift-and-add constant multiply, the shift a column relabeling;
   ``z = u >> 30``, ``f = u mod 2**30`` are relabelings too.
3. the segment table: ``j`` = the top bits of ``f`` (relabeling), ``table[j]`` by ``segments`` compare+write
   pairs; the quadratic ``a_fp * round((b_fp - v)**2 / 2**30)`` rounded, ``+ c_fp`` (subtract, field
   multiply, add-constant, constant multiply), times the table entry (field multiply), rounded by 2**22.
4. the monotone floor ``max(raw, floors[j])`` (a second lookup, a field compare, a gated copy), then
   ``e = h >> z`` by a barrel shifter over the bits of ``z``.
5. ``sum e`` by per-column tag counts added in the controller (the AP has no inter-row adder; SoftmAP's
   reduction is assumed to be of this kind: one compare and one count per bit column).
6. ``floor(e 2**B / sum)`` by restoring division (exact, unlike a reciprocal multiply), the remainder left in
   place; ``left = 2**B - sum(quotients)`` by tag counts.
7. largest-remainder rounding: radix selection of the ``left`` largest (remainder, q, -index) keys (one pass
   set per key bit, whatever ``left`` is: no sort), then ``k = quotient + selected``.

The row index (``ceil(log2 L)`` bits) is stored with the inputs (it breaks ties as ``softmax_codes`` does).

``widths`` (``cimkit.ops.intsoftmax.SoftmaxWidths``) narrows the kernel (``LOW_PRECISION``): every field
above is sized from it (30 and 38 in the steps above are ``widths.frac_bits`` and ``widths.exp_bits``),
and the program stays equal to ``softmax_codes(..., widths=widths)`` bit for bit. With one segment (I-BERT's
polynomial) the table holds the single entry ``2**table_bits``, so step 3's table lookup and multiply are a
column relabeling (plus a rounding add when the exp has fewer fraction bits than the polynomial).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError, short_repr
from ..ops.grid import check_int, check_scale
from ..ops.intsoftmax import (
    DEFAULT_EXP,
    INPUT_BITS,
    INPUT_BITS_WHY,
    MAX_ROW,
    OUTPUT_BITS,
    OUTPUT_BITS_WHY,
    WIDE,
    ExpPoly,
    SoftmaxWidths,
    _check_widths,
    _exp_constants,
    _exp_fraction_raw,
    _log2_step,
)
from . import arith as A
from . import figures as _F
from .machine import AP, PassStats

TILE_ROWS = _F.TILE_ROWS  #: rows per AP array by default (the 256-row arrays of CAMSHAP/X-TIME, acam.md)


@dataclass
class APSoftmaxResult:
    """``codes``: int64 output codes, shaped as the input; ``stats``: the pass counts and touched cell-bits;
    ``widths``: bits of every intermediate field (name -> bits); ``columns``: the row width the program
    needs; ``tiles``: arrays used; ``rows``: words used (one per score)."""

    codes: torch.Tensor
    stats: PassStats
    widths: dict
    columns: int
    tiles: int
    rows: int


def _check_codes(fn: str, q, bits: int) -> torch.Tensor:
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int64:
        what = q.dtype if isinstance(q, torch.Tensor) else type(q).__name__
        raise InputError(
            f"{fn}: q is {what}; it takes an int64 tensor of signed {bits}-bit codes (non-integer rows are not allowed)"
        )
    if q.dim() not in (1, 2):
        raise InputError(f"{fn}: q has shape {tuple(q.shape)}; it takes one row (L,) or rows (G, L)")
    if q.numel() == 0:
        raise InputError(f"{fn}: q has shape {tuple(q.shape)} (empty rows); each row needs at least one code")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if bool((q < lo).any() | (q > hi).any()):
        raise InputError(
            f"{fn}: q holds codes in {int(q.min())}..{int(q.max())}; with input_bits = {bits} "
            f"they must be in {lo}..{hi}"
        )
    return q.reshape(1, -1) if q.dim() == 1 else q


def ap_softmax_codes(
    q: torch.Tensor,
    scale: float,
    *,
    input_bits: int = 16,
    output_bits: int = 8,
    exp: ExpPoly = DEFAULT_EXP,
    tile_rows: int = TILE_ROWS,
    widths: SoftmaxWidths = WIDE,
) -> APSoftmaxResult:
    """Run the softmax program on an AP holding ``q`` (int64 signed ``input_bits`` codes on the grid of
    step ``scale``; one row (L,) or rows (G, L), softmax along the last dim). ``codes`` equals
    ``softmax_codes(q, scale, output_bits=output_bits, exp=exp, widths=widths)`` exactly (tests/test_ap.py)."""
    fn = "ap_softmax_codes"
    widths = _check_widths(fn, widths)
    F, E, T = widths.frac_bits, widths.exp_bits, widths.table_bits
    ib = check_int(fn, "input_bits", input_bits, *INPUT_BITS, INPUT_BITS_WHY)
    ob = check_int(fn, "output_bits", output_bits, *OUTPUT_BITS, OUTPUT_BITS_WHY)
    tile_rows = check_int(fn, "tile_rows", tile_rows, 1, 1 << 20, "rows of one AP array")
    s = check_scale(fn, scale)
    if s is None:
        raise InputError(f"{fn}: scale = None is not allowed; give the step of q's grid (a positive number)")
    if not isinstance(exp, ExpPoly):
        raise InputError(f"{fn}: exp = {short_repr(exp)} is not allowed; give an ExpPoly (IBERT_EXP, DEFAULT_EXP)")
    shape = q.shape if isinstance(q, torch.Tensor) else None
    rows = _check_codes(fn, q, ib)
    G, L = rows.shape
    if L > MAX_ROW:
        raise InputError(f"{fn}: rows of {L:,} codes are too long; at most {MAX_ROW:,}")
    ap = AP(torch.arange(G).repeat_interleave(L), G, tile_rows)
    W: dict = {}

    with ap.step("load"):
        qin = ap.alloc(ib, clear=False)
        ap.load(qin, rows.reshape(-1))
        idx = ap.alloc(max(1, (L - 1).bit_length()), clear=False)
        ap.load(idx, torch.arange(L).repeat(G))
    W["q"], W["index"] = ib, len(idx)

    with ap.step("max"):
        m = A.max_search(ap, qin, signed=True)
        n_full = ap.alloc(ib + 1, clear=False)
        ap.compare((), ())
        ap.write(n_full, m & ((1 << (ib + 1)) - 1))  # the max, sign-extended to ib+1 bits (each tile its own)
        A.add(ap, n_full, qin + (qin[-1],), subtract=True, exact=False)  # n = max - q in 0..2**ib - 1
    n, n_max = n_full[:ib], (1 << ib) - 1
    W["n = max - q"] = ib

    mult, shift, n_clip = _log2_step(s, widths)
    with ap.step("range reduction"):
        if n_clip < n_max:
            flag = ap.alloc(1)[0]
            A.gt_const(ap, n, n_clip, flag)
            ap.compare((flag,), (1,))
            ap.write(n, n_clip)
            n, n_max = n[: n_clip.bit_length()], n_clip
        prod, p_max = A.mul_const(ap, n, n_max, mult)
    u, u_max = prod[shift:], p_max >> shift
    f = A._pad(u, F)
    z, z_max = u[F:], u_max >> F
    if z_max > 62:  # softmax_codes clamps z at 62
        with ap.step("range reduction"):
            flag = ap.alloc(1)[0]
            A.gt_const(ap, z, 62, flag)
            ap.compare((flag,), (1,))
            ap.write(z, 62)
        z_max = 62
    z = z[: max(1, z_max.bit_length())]
    W["n * mult"], W["z"], W["f"] = len(prod), len(z), F

    k = _exp_constants(exp, widths)
    j, v = f[k.index_shift :], f[: k.index_shift]
    W["j (segment)"], W["v"] = len(j), len(v)
    with ap.step("exp polynomial"):
        if k.b_fp - ((1 << k.index_shift) - 1) <= 0:
            raise InputError(
                f"{fn}: exp = {exp.name!r} has b_fp = {k.b_fp} not above the segment width; "
                f"t = b_fp - v would not stay positive"
            )
        t = ap.alloc(k.b_fp.bit_length(), clear=False)
        ap.compare((), ())
        ap.write(t, k.b_fp)
        A.add(ap, t, v, subtract=True)  # t = b_fp - v > 0
        tt, tt_max = A.mul(ap, t, k.b_fp, t, k.b_fp)
        r = 1 << (F - 1)
        tt = A.widen(ap, tt, (tt_max + r).bit_length())
        A.add_const(ap, tt, r)
        s1, s1_max = tt[F:], (tt_max + r) >> F
        s2, s2_max = A.mul_const(ap, s1, s1_max, k.a_fp)
        s2 = A.widen(ap, s2, (s2_max + r).bit_length())
        A.add_const(ap, s2, r)
        poly_max = ((s2_max + r) >> F) + k.c_fp
        poly = A.widen(ap, s2[F:], F + poly_max.bit_length())[: poly_max.bit_length()]
        A.add_const(ap, poly, k.c_fp)
    W["t"], W["t*t"], W["a*t^2"], W["poly"] = len(t), len(tt), len(s2), len(poly)
    sh = T + F - E  # table * poly has T + F fraction bits, the exp E
    if exp.segments == 1:  # the table is the one entry 2**T: (poly 2**T + 2**(sh-1)) >> sh, without a multiply
        with ap.step("exp polynomial"):
            if sh > T:  # fewer exp than polynomial fraction bits: round poly by 2**(F - E)
                r2 = 1 << (F - E - 1)
                pr = A.widen(ap, poly, (poly_max + r2).bit_length())
                A.add_const(ap, pr, r2)
                raw, raw_max = pr[F - E :], (poly_max + r2) >> (F - E)
            else:  # poly << (E - F) exactly (the rounding constant is below 2**sh): zero columns below it
                raw, raw_max = ap.alloc(E - F) + tuple(poly), poly_max << (E - F)
        W["table"], W["table*poly"], W["raw exp"] = 0, 0, len(raw)
    else:
        with ap.step("segment table"):
            tb_max = max(k.table)
            tb = A.lookup(ap, j, list(k.table), tb_max.bit_length())
        with ap.step("exp polynomial"):
            pr, pr_max = A.mul(ap, poly, poly_max, tb, tb_max)
            r2 = 1 << (sh - 1)
            pr = A.widen(ap, pr, (pr_max + r2).bit_length())
            A.add_const(ap, pr, r2)
            raw, raw_max = pr[sh:], (pr_max + r2) >> sh
        W["table"], W["table*poly"], W["raw exp"] = len(tb), len(pr), len(raw)

    with ap.step("monotone floor"):
        seg = torch.arange(1, exp.segments + 1, dtype=torch.int64) << k.index_shift
        starts = _exp_fraction_raw(
            torch.cat([seg[:-1], seg.new_zeros(1)]), k, torch.tensor(k.table, dtype=torch.int64), widths
        )
        floors = [int(x) for x in torch.cat([starts[:-1], starts[-1:] >> 1])]
        fl = A.lookup(ap, j, floors, max(1, max(floors).bit_length()))
        if len(fl) > len(raw):
            raise AssertionError("floor table wider than the raw exp field")
        flag = ap.alloc(1)[0]
        A.compare_gt(ap, fl, raw, flag)
        A.copy_gated(ap, raw, fl, gate=((flag, 1),))
    h, e_max = raw, max(raw_max, max(floors))
    h = h[: e_max.bit_length()]
    with ap.step("shift by z"):
        A.shift_right_var(ap, h, z)
    W["e"] = len(h)

    with ap.step("sum"):
        total = A.sum_rows(ap, h)
    d_width = (L * e_max).bit_length()
    W["sum"] = d_width
    with ap.step("divide"):
        rem = ap.alloc(ob) + tuple(h)
        quo = A.divide(ap, rem, total, d_width, ob + 1)
    W["e << B"], W["quotient"], W["remainder"] = len(rem), ob + 1, min(len(rem), d_width)
    with ap.step("largest remainder"):
        left = (1 << ob) - A.sum_rows(ap, quo)
        key = [(c, 1) for c in reversed(rem[:d_width]) if c is not None]
        key += [(qin[-1], 0)] + [(c, 1) for c in reversed(qin[:-1])]  # larger q first (sign bit: 0 wins)
        key += [(c, 0) for c in reversed(idx)]  # then the lower index
        sel = A.select_top(ap, key, left)
        A.increment_by(ap, quo, sel)
    codes = ap.value(quo).reshape(rows.shape).reshape(shape)
    return APSoftmaxResult(codes, ap.finish_stats(), W, ap.columns_used, ap.tiles, ap.rows)
