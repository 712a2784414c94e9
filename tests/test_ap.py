"""cimkit.ap: the bit-level associative processor, its arithmetic, the softmax program (bit for bit equal to
softmax_codes, for the default kernel and for narrower ones such as LOW_PRECISION) and its pricing."""

from __future__ import annotations

import pytest
import torch

from cimkit.ap import AP, ap_softmax_codes
from cimkit.ap import arith as A
from cimkit.ap.cost import ap_softmax_cost, gpu_softmax_roofline, price_passes
from cimkit.errors import InputError
from cimkit.ops.intsoftmax import (
    DEFAULT_EXP,
    IBERT_EXP,
    LOW_PRECISION,
    WIDE,
    SoftmaxWidths,
    int_softmax,
    softmax_codes,
    softmax_error_bound,
)


def _ap(values: dict, rows: int, groups: int = 1):
    """An AP of ``rows`` rows (split evenly into ``groups``) with one loaded field per entry."""
    ap = AP(torch.arange(groups).repeat_interleave(rows // groups), groups, 64)
    fields = {}
    for name, (width, vals) in values.items():
        fields[name] = ap.alloc(width, clear=False)
        ap.load(fields[name], vals)
    return ap, fields


def _counts(ap, fn):
    c, w = ap.stats.compares, ap.stats.writes
    fn()
    return ap.stats.compares - c, ap.stats.writes - w


def test_add_pass_counts_match_hand_counts():
    # in-place b += a with a carry column: of the 8 truth-table rows (carry, b, a) four change the outputs
    # (001, 011, 100, 110), so one compare + one write each: 4 pairs per bit, 8m cycles; 4 bits: 16 + 16.
    g = torch.Generator().manual_seed(1)
    a, b = torch.randint(0, 8, (32,), generator=g), torch.randint(0, 8, (32,), generator=g)
    ap, f = _ap({"a": (4, a), "b": (4, b)}, 32)
    assert _counts(ap, lambda: A.add(ap, f["b"], f["a"])) == (16, 16)
    assert torch.equal(ap.value(f["b"]), a + b)
    # modular: the carry out may be 1, one more tag-all compare + write clears it
    ap, f = _ap({"a": (4, a * 2), "b": (4, b * 2)}, 32)
    assert _counts(ap, lambda: A.add(ap, f["b"], f["a"], exact=False)) == (17, 17)
    assert torch.equal(ap.value(f["b"]), (a * 2 + b * 2) % 16)
    # a carry ripple over bits the addend lacks: 2 pairs per bit; a constant: 2 pairs from its lowest set bit
    ap, f = _ap({"a": (2, a % 4), "b": (5, b)}, 32)
    assert _counts(ap, lambda: A.add(ap, f["b"], f["a"])) == (2 * 4 + 3 * 2,) * 2
    ap, f = _ap({"b": (5, b)}, 32)
    assert _counts(ap, lambda: A.add_const(ap, f["b"], 0b0110)) == (4 * 2,) * 2
    assert torch.equal(ap.value(f["b"]), b + 6)


def test_arithmetic_is_exact_on_random_rows():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randint(0, 1 << 10, (48,), generator=g), torch.randint(1, 1 << 7, (48,), generator=g)
    ap, f = _ap({"x": (10, x), "y": (7, y)}, 48, groups=3)
    d = ap.alloc(11, clear=False)
    ap.load(d, x + 1000)  # < 2**11
    A.add(ap, d, f["y"], subtract=True)
    assert torch.equal(ap.value(d), x + 1000 - y)
    p, bound = A.mul_const(ap, f["x"], (1 << 10) - 1, 1234567)
    assert torch.equal(ap.value(p), x * 1234567) and bound == 1023 * 1234567
    p, _ = A.mul(ap, f["x"], 1023, f["y"], 127)
    assert torch.equal(ap.value(p), x * y)
    assert torch.equal(A.max_search(ap, f["x"], signed=False), x.reshape(3, 16).amax(1))
    assert torch.equal(A.sum_rows(ap, f["x"]), x.reshape(3, 16).sum(1))
    div = torch.tensor([7, 1000, 65535])
    rem = ap.alloc(6) + tuple(f["x"])
    q = A.divide(ap, rem, div, 16, 7)
    num, dd = (x << 6).reshape(3, 16), div[:, None]
    assert torch.equal(ap.value(q).reshape(3, 16), torch.where(num // dd < 128, num // dd, ap.value(q).reshape(3, 16)))
    ok = (num // dd) < 128  # the quotient must fit its 7 bits (the caller's guarantee)
    assert torch.equal(ap.value(rem).reshape(3, 16)[ok], (num % dd)[ok])
    s = ap.alloc(10, clear=False)
    ap.load(s, x)
    z = ap.alloc(4, clear=False)
    ap.load(z, y % 16)
    A.shift_right_var(ap, s, z)
    assert torch.equal(ap.value(s), x >> (y % 16))


def test_signed_max_search():
    g = torch.Generator().manual_seed(3)
    q = torch.randint(-128, 128, (40,), generator=g)
    ap, f = _ap({"q": (8, q)}, 40, groups=2)
    m = A.max_search(ap, f["q"], signed=True)
    m = m - ((m >> 7) & 1) * 256
    assert torch.equal(m, q.reshape(2, 20).amax(1))


@pytest.mark.parametrize(
    "ib, ob, exp", [(8, 8, DEFAULT_EXP), (16, 4, IBERT_EXP), (16, 8, DEFAULT_EXP), (8, 4, IBERT_EXP)]
)
def test_ap_softmax_equals_softmax_codes(ib, ob, exp):
    g = torch.Generator().manual_seed(ib * 100 + ob)
    q = torch.randint(-(1 << (ib - 1)), 1 << (ib - 1), (2, 24), generator=g)
    q[1, 5:9] = q[1, 0]  # ties: largest-remainder rounding breaks them by q, then by index
    for s in (8.0 / ((1 << (ib - 1)) - 1), 0.05):
        r = ap_softmax_codes(q, s, input_bits=ib, output_bits=ob, exp=exp, tile_rows=16)
        assert torch.equal(r.codes, softmax_codes(q, s, output_bits=ob, exp=exp))
        assert bool((r.codes.sum(-1) == 1 << ob).all())


def test_tiling_and_row_count_do_not_change_outputs_or_passes():
    g = torch.Generator().manual_seed(5)
    q = torch.randint(-128, 128, (3, 40), generator=g)
    s = 0.06
    big = ap_softmax_codes(q, s, input_bits=8, output_bits=6, tile_rows=1024)
    small = ap_softmax_codes(q, s, input_bits=8, output_bits=6, tile_rows=7)
    one = ap_softmax_codes(q[:1], s, input_bits=8, output_bits=6, tile_rows=7)
    assert torch.equal(big.codes, small.codes) and torch.equal(one.codes, small.codes[:1])
    assert big.tiles == 3 and small.tiles == 3 * 6 and one.tiles == 6
    assert big.stats.cycles == small.stats.cycles == one.stats.cycles  # passes independent of rows and tiles
    assert big.widths == small.widths
    e1 = price_passes(one.stats, one.rows, 1000, 10, 100, load_bits=14, unload_bits=7)
    e2 = price_passes(one.stats, one.rows, 2000, 20, 100, load_bits=14, unload_bits=7)
    assert e2.energy_j == pytest.approx(2 * e1.energy_j) and e2.latency_s == e1.latency_s


def test_costs():
    a = ap_softmax_cost(64, 2, input_bits=8, output_bits=4)
    b = ap_softmax_cost(64, 4, input_bits=8, output_bits=4)
    assert a.passes == b.passes and b.energy_j == pytest.approx(2 * a.energy_j) and a.latency_s == b.latency_s
    c = ap_softmax_cost(64, 4, input_bits=8, output_bits=4, ap_rows=2 * 256)  # 2 tiles of 256 rows at a time
    assert c.rounds == 4 * 64 // 2 and c.latency_s == pytest.approx(c.rounds * b.latency_s)
    g = gpu_softmax_roofline(1024, 12, "a100")
    assert g.latency_s == pytest.approx(2 * 12 * 1024 * 1024 * 2 / 1555e9) and g.energy_j == pytest.approx(
        400 * g.latency_s
    )
    assert "not measured" in g.note


def test_bad_input_is_refused():
    q = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(InputError, match="input_bits = 40.*2..32"):
        ap_softmax_codes(q, 0.1, input_bits=40)
    with pytest.raises(InputError, match="output_bits = 0"):
        ap_softmax_codes(q, 0.1, output_bits=0)
    with pytest.raises(InputError, match="torch.float32.*int64"):
        ap_softmax_codes(torch.zeros(4), 0.1)
    with pytest.raises(InputError, match="empty"):
        ap_softmax_codes(torch.zeros(2, 0, dtype=torch.int64), 0.1)
    with pytest.raises(InputError, match="300.*-128..127"):
        ap_softmax_codes(torch.tensor([1, 300]), 0.1, input_bits=8)
    with pytest.raises(InputError, match="scale"):
        ap_softmax_codes(q, -1.0)
    with pytest.raises(InputError, match="gpu = 'h100'.*a100"):
        gpu_softmax_roofline(128, 12, "h100")
    with pytest.raises(InputError, match="seq_len = 0"):
        ap_softmax_cost(0, 12)


# ---- narrower kernels (issue 14, point 5: SoftmAP's low-precision softmax) ----------------------------------
NARROW = [
    (8, 8, IBERT_EXP, LOW_PRECISION),
    (8, 8, DEFAULT_EXP, LOW_PRECISION),
    (12, 6, IBERT_EXP, SoftmaxWidths(frac_bits=8, exp_bits=12, table_bits=6, mult_bits=12, name="8/12")),
    (8, 4, DEFAULT_EXP, SoftmaxWidths(frac_bits=16, exp_bits=20, table_bits=16, name="16/20, widest mult")),
]


@pytest.mark.parametrize("ib, ob, exp, widths", NARROW)
def test_narrow_kernels_run_on_the_ap_bit_for_bit(ib, ob, exp, widths):
    g = torch.Generator().manual_seed(ib * 10 + ob)
    q = torch.randint(-(1 << (ib - 1)), 1 << (ib - 1), (2, 30), generator=g)
    q[1, 3:7] = q[1, 0]  # ties
    for s in (8.0 / ((1 << (ib - 1)) - 1), 0.05, 0.7):
        r = ap_softmax_codes(q, s, input_bits=ib, output_bits=ob, exp=exp, widths=widths, tile_rows=16)
        ref = softmax_codes(q, s, output_bits=ob, exp=exp, widths=widths)
        assert torch.equal(r.codes, ref) and bool((ref.sum(-1) == 1 << ob).all())
        assert r.widths["e"] <= widths.exp_bits + 1 and r.widths["f"] == widths.frac_bits
    ref = softmax_codes(q, 0.05, output_bits=ob, exp=exp, widths=widths)
    assert torch.equal(
        int_softmax(q.double() * 0.05, input_bits=ib, output_bits=ob, input_scale=0.05, exp=exp, widths=widths),
        ref.double() * 2.0**-ob,
    )


def test_the_default_kernel_is_the_wide_one_and_narrow_kernels_differ():
    g = torch.Generator().manual_seed(9)
    q = torch.randint(-32768, 32768, (8, 100), generator=g)
    assert torch.equal(softmax_codes(q, 1e-3, output_bits=16), softmax_codes(q, 1e-3, output_bits=16, widths=WIDE))
    assert not torch.equal(
        softmax_codes(q, 1e-3, output_bits=16), softmax_codes(q, 1e-3, output_bits=16, widths=LOW_PRECISION)
    )
    assert WIDE == SoftmaxWidths() and (WIDE.frac_bits, WIDE.exp_bits, WIDE.table_bits) == (30, 38, 30)


@pytest.mark.parametrize("L", [16, 300])
def test_the_low_precision_kernel_error_against_float_softmax_is_measured_within_its_bound(L):
    x = torch.randn(32, L, generator=torch.Generator().manual_seed(L), dtype=torch.float64) * 2.0
    s = float(x.abs().max()) / 127
    y = int_softmax(x, input_bits=8, output_bits=8, exp=IBERT_EXP, widths=LOW_PRECISION)
    ref = torch.softmax(x, -1)
    err = float((y - ref).abs().max())
    bound = softmax_error_bound(8, L, exp=IBERT_EXP, widths=LOW_PRECISION, input_scale=s)
    assert err <= bound
    # the kernel alone (against softmax of the 8-bit scores) stays near one 8-bit output step
    q = torch.clamp(torch.round(x / s), -128, 127)
    assert float((y - torch.softmax(q * s, -1)).abs().max()) < 1.5 * 2.0**-8


def test_narrow_kernels_take_fewer_passes_and_cost_less():
    wide = ap_softmax_cost(256, 2, input_bits=8, output_bits=8, exp=IBERT_EXP)
    low = ap_softmax_cost(256, 2, input_bits=8, output_bits=8, exp=IBERT_EXP, widths=LOW_PRECISION)
    assert low.passes < wide.passes / 3 and low.columns < wide.columns / 2
    assert low.energy_j < wide.energy_j / 3 and low.latency_s < wide.latency_s / 3 and low.area_mm2 < wide.area_mm2
    assert sum(sum(v) for v in low.steps.values()) == low.passes
    assert set(low.breakdown_j) == {"compare", "write", "load/unload", "tag count"}
    assert low.energy_j == pytest.approx(sum(low.breakdown_j.values()))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(frac_bits=3), "frac_bits = 3 .* 4..30"),
        (dict(exp_bits=39), "exp_bits = 39 .* 2..38"),
        (dict(frac_bits=10, table_bits=10, exp_bits=20), "exp_bits = 20 .* below table_bits \\+ frac_bits = 20"),
        (dict(frac_bits=10, exp_bits=16, table_bits=10, mult_bits=12), "mult_bits = 12 .* from .* = 15 .* to 30"),
        (dict(mult_bits=31), "mult_bits = 31"),
    ],
)
def test_bad_widths_are_refused_naming_the_field(kwargs, match):
    with pytest.raises(InputError, match=match):
        SoftmaxWidths(**kwargs)


def test_bad_widths_arguments_are_refused():
    q = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(InputError, match="widths = 'low' is not allowed; give a SoftmaxWidths"):
        softmax_codes(q, 0.1, widths="low")
    with pytest.raises(InputError, match="widths = 'low'"):
        ap_softmax_codes(q, 0.1, widths="low")
    with pytest.raises(InputError, match="64 segments, more than 2\\*\\*frac_bits = 2\\*\\*4"):
        softmax_codes(q, 0.1, widths=SoftmaxWidths(frac_bits=4, exp_bits=8, table_bits=8))
