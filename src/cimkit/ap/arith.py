"""Integer operations of the associative processor, built from ``AP.lut`` truth-table passes and the
AP's tag reductions. Fields are tuples of columns, least significant bit first (``None`` = constant 0).
Pass counts (one compare + one write per changed truth-table entry, so "pairs"):

* ``add`` in place ``b += a``: 4 pairs per bit where both operands have a bit (8m cycles for m bits, the
  AP tutorial's count), 2 pairs per bit where only the carry ripples; ``sub`` the same;
* ``add_const``: 2 pairs per bit from the constant's lowest set bit up (the constant is in the keys);
* ``mul_const``: one ``add`` per set bit of the constant (shift-and-add; shifts are column relabelings);
* ``mul``: one gated ``add`` per bit of the multiplier (the multiplier bit is one more key column);
* shift by a constant: free (a field is a list of columns; shifting relabels them);
* ``shift_right_var`` (a per-row shift): a barrel shifter, per shift bit 2 pairs per moved column;
* ``compare_gt`` field vs field: 2 pairs per bit, LSB to MSB into a flag column; vs a constant: one pair per
  zero bit of the constant (prefix searches);
* ``lookup``: one pair per table entry; ``max_search``: 2 compares + 1 write + 1 reduction per bit;
* ``sum_rows``: one compare + one reduction per bit column (the tag counts summed by the controller);
* ``divide``: restoring division by a per-group scalar, per quotient bit a compare (2 pairs per bit) and a
  gated subtract (4 pairs per bit);
* ``select_top``: radix selection of the L largest keys: 2 compares + 2 writes + 1 reduction per key bit.
Operand widths are the caller's (derived from value bounds); ``exact=True`` promises no carry out of the
field, so the carry column stays 0 and needs no clearing.
"""

from __future__ import annotations

import torch

from .machine import AP, Field


def _full_add(c, b, a):
    s = c + b + a
    return (s >> 1, s & 1)


def _full_sub(c, b, a):
    d = b - a - c
    return (int(d < 0), d & 1)


def _pad(f: Field, width: int) -> Field:
    return tuple(f[:width]) + (None,) * max(0, width - len(f))


def clear_carry(ap: AP) -> None:
    """Zero ``ap``'s scratch carry column on every row: one tag-all compare and one write pass."""
    ap.compare((), ())
    ap.write((ap.carry,), 0)


def add(ap: AP, dst: Field, src: Field, *, exact: bool = True, gate=(), subtract: bool = False) -> None:
    """``dst += src`` (or ``-=``) modulo ``2**len(dst)``, in place, on the rows ``gate`` selects. With
    ``exact`` the caller guarantees no carry (borrow) out of ``dst``; otherwise one pair clears it."""
    fn = _full_sub if subtract else _full_add
    for b, a in zip(dst, _pad(src, len(dst))):
        ap.lut((ap.carry, b, a), (0, 1), fn, gate=gate)
    if not exact:
        clear_carry(ap)


def add_const(ap: AP, dst: Field, value: int, *, exact: bool = True, gate=()) -> None:
    """``dst += value`` (a non-negative constant) in place: 2 pairs per bit from its lowest set bit."""
    if value <= 0:
        if value < 0:
            raise ValueError("add_const takes a non-negative constant")
        return
    low = (value & -value).bit_length() - 1
    for i in range(low, len(dst)):
        bit = (value >> i) & 1
        ap.lut((ap.carry, dst[i]), (0, 1), lambda c, b, bit=bit: ((c + b + bit) >> 1, (c + b + bit) & 1), gate=gate)
    if not exact:
        clear_carry(ap)


def mul_const(ap: AP, src: Field, src_max: int, value: int) -> tuple[Field, int]:
    """``src * value`` into a new field (shift-and-add over the set bits of ``value``, LSB first, so each
    partial sum is bounded and each add stops one bit past the operand). Returns (field, bound)."""
    out = ap.alloc(max(1, (src_max * value).bit_length()))
    done = 0
    for k in range(value.bit_length()):
        if (value >> k) & 1:
            done |= 1 << k
            width = (src_max * done).bit_length() - k
            add(ap, out[k : k + width], src)
    return out, src_max * value


def mul(ap: AP, x: Field, x_max: int, y: Field, y_max: int) -> tuple[Field, int]:
    """``x * y`` of two fields into a new one: per bit ``i`` of ``y``, ``x << i`` added on the rows with
    ``y_i = 1`` (the multiplier bit gates the truth-table passes). Returns (field, bound)."""
    out = ap.alloc(max(1, (x_max * y_max).bit_length()))
    for i, yi in enumerate(y):
        if yi is None:
            continue
        width = (x_max * min(y_max, (2 << i) - 1)).bit_length() - i
        add(ap, out[i : i + width], x, gate=((yi, 1),))
    return out, x_max * y_max


def compare_gt(ap: AP, a: Field, b: Field, flag: int) -> None:
    """``flag = a > b`` (or ``a >= b`` when ``flag`` starts at 1: equal values keep its start), LSB to MSB:
    a differing bit decides, later (higher) bits override. 2 pairs per bit (1 where one side is 0)."""
    width = max(len(a), len(b))
    for ai, bi in zip(_pad(a, width), _pad(b, width)):
        ap.lut((flag, ai, bi), (0,), lambda f, x, y: ((f if x == y else int(x > y)),))


def gt_const(ap: AP, a: Field, value: int, flag: int) -> None:
    """``flag |= a > value`` by prefix searches: for every 0 bit ``i`` of ``value`` (within ``a``), the rows
    whose bits above ``i`` equal the constant's and whose bit ``i`` is 1 are greater: one pair each. Bits of
    ``value`` beyond ``a`` make every row smaller (no pass). ``flag`` must start at 0."""
    if value >> len(a):
        return
    for i in range(len(a)):
        if not (value >> i) & 1:
            cols = list(a[i:])
            key = [1] + [(value >> j) & 1 for j in range(i + 1, len(a))]
            ap.compare(cols, key)
            ap.write((flag,), 1)


def copy_gated(ap: AP, dst: Field, src: Field, gate) -> None:
    """``dst = src`` on the gated rows: 2 pairs per bit where ``src`` has a bit, one multi-column pair for
    the rest (``src`` zero there)."""
    padded = _pad(src, len(dst))
    zeros = [d for d, s in zip(dst, padded) if s is None]
    for d, s in zip(dst, padded):
        if s is not None:
            ap.lut((d, s), (0,), lambda x, y: (y,), gate=gate)
    if zeros:
        ap.compare([g for g, _ in gate], [v for _, v in gate])
        ap.write(zeros, 0)


def shift_right_var(ap: AP, h: Field, z: Field) -> None:
    """``h >>= z`` per row, in place: for each bit ``k`` of ``z``, the rows with ``z_k = 1`` move every
    column down by ``2**k`` (ascending, so each source is read before it is overwritten; 2 pairs per moved
    column) and zero the top ``2**k`` columns (one pair)."""
    w = len(h)
    for k, zk in enumerate(z):
        s = 1 << k
        gate = ((zk, 1),)
        for i in range(max(0, w - s)):
            ap.lut((h[i], h[i + s]), (0,), lambda x, y: (y,), gate=gate)
        ap.compare((zk,), (1,))
        ap.write(h[max(0, w - s) :], 0)


def lookup(ap: AP, index: Field, table: list[int], width: int) -> Field:
    """``table[index]`` into a new field: one compare (the index) + one write (the entry) per entry.
    Every row matches exactly one entry, so the new columns need no clearing."""
    out = ap.alloc(width, clear=False)
    for j, v in enumerate(table):
        ap.compare(index, [(j >> i) & 1 for i in range(len(index))])
        ap.write(out, v)
    return out


def max_search(ap: AP, a: Field, *, signed: bool) -> torch.Tensor:
    """Per group, the largest value in ``a`` (two's complement if ``signed``): a candidate column starts
    at 1; from the MSB, per bit: compare (candidate, preferred bit) and reduce (does any row have it?), then
    compare (candidate, other bit) and clear those candidates in the groups where some row had the
    preferred bit. A final read returns the value of a remaining candidate. 2 compares + 1 write +
    1 reduction per bit, + 1 read."""
    cand = ap.alloc(1, clear=False)[0]
    ap.compare((), ())
    ap.write((cand,), 1)
    for i in reversed(range(len(a))):
        pref = 0 if (signed and i == len(a) - 1) else 1
        ap.compare((cand, a[i]), (1, pref))
        some = ap.count() > 0
        ap.compare((cand, a[i]), (1, 1 - pref))
        ap.write((cand,), 0, enable=some)
    ap.compare((cand,), (1,))
    return ap.read(a)


def sum_rows(ap: AP, a: Field) -> torch.Tensor:
    """Per group, the sum of ``a`` over its rows: per column, one compare (bit = 1) and the tag count, the
    controller adding ``count << i`` (a digital accumulator outside the array)."""
    total = torch.zeros(ap.n_groups, dtype=torch.int64)
    for i, c in enumerate(a):
        if c is not None:
            ap.compare((c,), (1,))
            total += ap.count() << i
    return total


def divide(ap: AP, rem: Field, divisor: torch.Tensor, d_width: int, q_width: int) -> Field:
    """Restoring division of ``rem`` (in place; it ends as the remainder) by a per-group scalar
    ``divisor`` (written once into a field of every row by the tiles' own drivers): for ``k`` from
    ``q_width - 1`` down to 0, quotient bit ``k`` = ``rem >> k >= divisor`` (``compare_gt`` with the flag
    started at 1), then ``rem[k:] -= divisor`` on those rows. The caller guarantees the quotient fits
    ``q_width`` bits. Returns the quotient field."""
    dfield = ap.alloc(d_width, clear=False)
    ap.compare((), ())
    ap.write(dfield, divisor)
    q = ap.alloc(q_width, clear=False)
    ap.compare((), ())
    ap.write(q, (1 << q_width) - 1)
    for k in reversed(range(q_width)):
        window = rem[k:]
        compare_gt(ap, window, dfield, q[k])
        add(ap, window, dfield[: len(window)], gate=((q[k], 1),), subtract=True)
    return q


def select_top(ap: AP, key: list[tuple[int, int]], need: torch.Tensor) -> int:
    """Flag, per group, the ``need`` rows with the largest composite key, given as its bit columns most
    significant first, each with its preferred value (1: a 1 ranks higher; 0: a 0 does, for descending
    fields and the sign bit); keys must be unique within a group. Radix selection with a candidate
    column: per key bit, count the candidates with the preferred bit; in groups where that is fewer than
    still needed, flag them all (and drop them), else drop the others. 2 compares + 2 writes +
    1 reduction per key bit, + 1 pair at the end. Returns the flag column."""
    sel = ap.alloc(1)[0]
    cand = ap.alloc(1, clear=False)[0]
    ap.compare((), ())
    ap.write((cand,), 1)
    need = need.clone()
    for col, pref in key:
        ap.compare((cand, col), (1, pref))
        cnt = ap.count()
        take = cnt < need
        ap.write((sel, cand), (1, 0), enable=take)
        need = torch.where(take, need - cnt, need)
        ap.compare((cand, col), (1, 1 - pref))
        ap.write((cand,), 0, enable=~take)
    ap.compare((cand,), (1,))
    ap.write((sel,), 1, enable=need > 0)
    return sel


def widen(ap: AP, f: Field, width: int) -> Field:
    """``f`` with cleared columns appended up to ``width`` (room for a carry the bound says can come)."""
    return tuple(f) + (ap.alloc(width - len(f)) if width > len(f) else ())


def increment_by(ap: AP, dst: Field, bit: int) -> None:
    """``dst += bit`` (a one-bit column, consumed as the carry): 2 pairs per bit of ``dst``."""
    for d in dst:
        ap.lut((bit, d), (0, 1), lambda c, b: ((c + b) >> 1, (c + b) & 1))
