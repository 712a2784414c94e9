"""Tests of cimkit.ops.approx: approximate multipliers / adders, exhaustive statistics against published
figures, the approximate matrix product's paths, the approximate layers and the energy table."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cimkit.errors import InputError
from cimkit.ops import approx as A

U8 = st.integers(0, 255)


def t(*values):
    return torch.tensor(values, dtype=torch.int64)


# --- published statistics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(A.PUBLISHED_STATISTICS))
def test_published_mred_to_three_decimals(name):
    stats = A.error_statistics(name, bits=8)
    published = A.PUBLISHED_STATISTICS[name]
    # MRED is published with three decimals (percent): agree within half a unit of the last digit
    assert abs(100 * stats["mred"] - published["mred"]) < 5e-4
    # max RED is published with two decimals: agree within half a unit of that last digit ...
    assert abs(100 * stats["max_red"] - published["max_red"]) < 5e-3


def test_published_max_red_exact_values():
    # ... and the maxima are these rationals exactly (11.11 %, 6.35 %, 26.56 % rounded)
    assert A.error_statistics("mitchell")["max_red"] == pytest.approx(1 / 9, abs=1e-15)
    assert A.error_statistics("drum-6")["max_red"] == pytest.approx(65 / 1024, abs=1e-15)
    assert A.error_statistics("drum-4")["max_red"] == pytest.approx(17 / 64, abs=1e-15)


def test_statistics_convention_excludes_zero_products():
    stats = A.error_statistics("mitchell")
    assert stats["pairs"] == 256 * 256 and stats["nonzero_pairs"] == 255 * 255
    # counting the zero-product pairs as RED 0 would not reproduce 3.788 %
    assert abs(100 * stats["mred"] * 255**2 / 256**2 - 3.788) > 0.02


def test_exact_has_no_error_anywhere():
    stats = A.error_statistics("exact")
    assert all(stats[k] == 0 for k in ("mred", "max_red", "mean_error", "nmed", "error_rate", "max_abs_error"))
    a = torch.arange(256).repeat_interleave(256)
    b = torch.arange(256).repeat(256)
    assert torch.equal(A.multiply(a, b, "exact"), a * b)
    assert A.adder_error_statistics("exact")["error_rate"] == 0
    assert A.adder_error_statistics("exact", signed=True)["error_rate"] == 0


def test_bias_signs_and_truncation():
    assert A.error_statistics("mitchell")["mean_error"] < 0  # Mitchell underestimates
    assert A.error_statistics("truncate-2")["mean_error"] < 0
    assert A.error_statistics("truncate-4")["max_red"] == 1.0  # an operand below 2**k becomes 0
    assert A.error_statistics("drum-8")["error_rate"] == 0  # DRUM-bits keeps every bit


def test_adder_statistics():
    loa = A.adder_error_statistics("loa-4")
    trunc = A.adder_error_statistics("truncate-4")
    assert loa["max_abs_error"] <= 2**4 and trunc["max_abs_error"] == 2 * 15
    assert trunc["mean_error"] == -15.0  # two dropped 4-bit parts, 7.5 each on average
    assert abs(loa["mean_error"]) < abs(trunc["mean_error"])


# --- multipliers -----------------------------------------------------------------------------------------------


@given(U8, U8)
@settings(max_examples=200, deadline=None)
def test_commutative_and_mitchell_never_over(a, b):
    for name in ("mitchell", "drum-4", "drum-6", "truncate-3"):
        assert int(A.multiply(t(a), t(b), name)) == int(A.multiply(t(b), t(a), name))
    assert int(A.multiply(t(a), t(b), "mitchell")) <= a * b


@given(st.integers(0, 7), U8)
@settings(max_examples=100, deadline=None)
def test_mitchell_exact_for_power_of_two(e, b):
    assert int(A.multiply(t(1 << e), t(b), "mitchell")) == (1 << e) * b


@given(st.integers(2, 8), st.data())
@settings(max_examples=100, deadline=None)
def test_drum_exact_below_two_to_k(k, data):
    a = data.draw(st.integers(0, 2**k - 1))
    b = data.draw(st.integers(0, 2**k - 1))
    assert int(A.multiply(t(a), t(b), f"drum-{k}")) == a * b


@given(st.integers(1, 7), st.data())
@settings(max_examples=100, deadline=None)
def test_truncate_exact_on_multiples(k, data):
    a = data.draw(st.integers(0, 255 >> k)) << k
    b = data.draw(st.integers(0, 255 >> k)) << k
    assert int(A.multiply(t(a), t(b), f"truncate-{k}")) == a * b


def test_drum_example_and_operand_map():
    # 0b10110111 (183), k = 4: leading one at bit 7, keep 1011, force the lowest kept bit to 1 -> 1011 << 4
    assert int(A.operand_map("drum-4", t(183))) == 0b1011 << 4
    assert int(A.operand_map("drum-4", t(0b10000000))) == 0b1001 << 4
    assert int(A.operand_map("truncate-3", t(0b11111111))) == 0b11111000
    assert A.separable("drum-4") and A.separable("truncate-2") and A.separable("exact")
    assert not A.separable("mitchell")
    with pytest.raises(InputError, match="not separable"):
        A.operand_map("mitchell", t(3))


def test_multiplier_broadcast_and_shapes():
    a = torch.arange(16).reshape(4, 1, 4)
    b = torch.arange(4)
    out = A.multiply(a, b, "mitchell")
    assert out.shape == (4, 1, 4) and out.dtype == torch.int64


@pytest.mark.parametrize(
    "name,match",
    [
        ("drum-1", "k = 1"),
        ("drum-9", "k = 9"),
        ("truncate-8", "k = 8"),
        ("truncate", "allowed names"),
        ("mitchell-3", "allowed names"),
        ("booth", "allowed names"),
        (3, "allowed names"),
    ],
)
def test_bad_multiplier_names(name, match):
    with pytest.raises(InputError, match=match):
        A.parse_multiplier(name)


def test_bad_operands():
    with pytest.raises(InputError, match="0..255"):
        A.multiply(t(256), t(1), "exact")
    with pytest.raises(InputError, match="0..255"):
        A.multiply(t(-1), t(1), "drum-4")
    with pytest.raises(InputError, match="int64"):
        A.multiply(torch.tensor([1.0]), t(1))
    with pytest.raises(InputError, match="bits"):
        A.error_statistics("mitchell", bits=12)
    m = A.parse_multiplier("drum-6")
    assert (m.kind, m.k, m.name, m.bits) == ("drum", 6, "drum-6", 8)


# --- adders ----------------------------------------------------------------------------------------------------


def test_loa_and_truncate_adder_bits():
    a, b = t(0b0110_1010), t(0b0011_1100)
    # low 4 bits: 1010 | 1100 = 1110; carry = a3 & b3 = 1; high 0110 + 0011 + 1 = 1010
    assert int(A.add(a, b, "loa-4")) == 0b1010_1110
    assert int(A.add(a, b, "truncate-4")) == (0b0110 + 0b0011) << 4
    # two's complement: -1 + -1 with LOA-2: low bits 11 | 11 = 11, carry 1, high -1 + -1 + 1 = -1 -> -1
    assert int(A.add(t(-1), t(-1), "loa-2")) == -1
    assert int(A.add(t(-1), t(-1), "truncate-2")) == -8


@given(st.lists(st.integers(-(2**20), 2**20), min_size=0, max_size=37), st.sampled_from(["loa-3", "truncate-2"]))
@settings(max_examples=60, deadline=None)
def test_approx_sum_tree(values, adder):
    x = torch.tensor(values, dtype=torch.int64)
    assert int(A.approx_sum(x, 0, "exact")) == sum(values)
    # reference: the same balanced tree in plain Python
    level = list(values)
    ad = A.parse_adder(adder)
    while len(level) > 1:
        nxt = [int(ad(t(level[i]), t(level[i + 1]))) for i in range(0, len(level) - 1, 2)]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    assert int(A.approx_sum(x, 0, adder)) == (level[0] if level else 0)


def test_approx_sum_dims():
    x = torch.randint(-1000, 1000, (3, 7, 5))
    assert torch.equal(A.approx_sum(x, 1, "exact"), x.sum(1))
    out = A.approx_sum(x, 1, "loa-2")
    assert out.shape == (3, 5)
    assert torch.equal(out[1], A.approx_sum(x[1].t().contiguous(), -1, "loa-2"))
    with pytest.raises(InputError, match="dim = 3"):
        A.approx_sum(x, 3)
    with pytest.raises(InputError, match="allowed names"):
        A.parse_adder("loa")


# --- matrix product --------------------------------------------------------------------------------------------


def _codes(shape, qmax=127, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-qmax, qmax + 1, shape, generator=g)


@pytest.mark.parametrize("name", ["exact", "truncate-2", "drum-4", "drum-6"])
def test_fast_path_equals_elementwise(name):
    a, b = _codes((2, 5, 33)), _codes((33, 7), seed=1)
    fast = A.approx_matmul(a, b, name, path="matmul")
    slow = A.approx_matmul(a, b, name, path="elementwise", chunk_bytes=1)  # one row per chunk
    assert fast.dtype == torch.int64 and fast.shape == (2, 5, 7)
    assert torch.equal(fast, slow)


def test_matmul_matches_elementwise_reference():
    a, b = _codes((6, 19)), _codes((19, 4), seed=2)
    m = A.parse_multiplier("mitchell")
    ref = (torch.sign(a)[:, None, :] * torch.sign(b.t())[None] * m(a.abs()[:, None, :], b.t().abs()[None])).sum(-1)
    assert torch.equal(A.approx_matmul(a, b, "mitchell"), ref)  # 8 bits: the product-table path
    m9 = A.parse_multiplier("mitchell", bits=9)  # 9 bits: the integer-formula path, same products
    assert torch.equal(A.approx_matmul(a, b, m9), ref)
    assert torch.equal(A.approx_matmul(a, b, "exact"), a @ b)
    tree = A.approx_matmul(a, b, "exact", "loa-3")
    ref_tree = A.approx_sum(a[:, None, :] * b.t()[None], -1, "loa-3")
    assert torch.equal(tree, ref_tree)


def test_matmul_bad_input():
    a, b = _codes((3, 4)), _codes((4, 2))
    with pytest.raises(InputError, match="do not fit"):
        A.approx_matmul(a, b.t())
    with pytest.raises(InputError, match="not separable"):
        A.approx_matmul(a, b, "mitchell", path="matmul")
    with pytest.raises(InputError, match="magnitude 300"):
        A.approx_matmul(a, torch.full((4, 2), -300))


# --- layers ----------------------------------------------------------------------------------------------------


def _quant_reference(x, weight, bias, bits=8):
    qmax = 2 ** (bits - 1) - 1
    w = weight.detach().double().reshape(weight.shape[0], -1)
    ws = w.abs().amax(1) / qmax
    wc = torch.round(w / ws[:, None]).clamp(-qmax, qmax).long()
    s = float(x.detach().abs().max()) / qmax
    xc = torch.round(x.detach().double() / s).clamp(-qmax, qmax).long()
    return xc, wc, s, ws


def test_linear_exact_equals_integer_reference():
    torch.manual_seed(0)
    lin = nn.Linear(20, 6)
    layer = A.ApproxLinear.from_float(lin)
    x = torch.randn(4, 3, 20)
    xc, wc, s, ws = _quant_reference(x, lin.weight, lin.bias)
    acc_ref = xc @ wc.t()  # torch integer matmul
    acc, q, s_layer = layer.integer_forward(x)
    assert torch.equal(q, xc) and s_layer == s and torch.equal(acc, acc_ref)
    y_ref = (acc_ref.double() * (s * ws) + lin.bias.detach().double()).float()
    with torch.no_grad():
        assert torch.equal(layer(x), y_ref)
    assert torch.equal(layer.weight_codes, wc)


def test_conv_exact_equals_integer_reference():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    layer = A.ApproxConv2d.from_float(conv)
    x = torch.randn(2, 3, 9, 8)
    xc, wc, s, ws = _quant_reference(x, conv.weight, conv.bias)
    acc_ref = torch.nn.functional.conv2d(xc.double(), wc.reshape(conv.weight.shape).double(), None, 2, 1)
    acc, _, _ = layer.integer_forward(x)
    assert torch.equal(acc, acc_ref.long())
    y_ref = (acc_ref * (s * ws)[:, None, None] + conv.bias.detach().double()[:, None, None]).float()
    with torch.no_grad():
        y = layer(x)
        assert torch.equal(y, y_ref)
        assert torch.allclose(y, conv(x), atol=0.1)  # and close to the float layer
        assert torch.equal(layer(x[0]), y[0])  # unbatched input


def test_conv_paths_and_padding_modes():
    torch.manual_seed(2)
    conv = nn.Conv2d(2, 4, 3, padding="same", padding_mode="reflect", bias=False)
    x = torch.randn(1, 2, 6, 6)
    layer = A.ApproxConv2d.from_float(conv, "drum-4")
    with torch.no_grad():
        fast = layer(x)
        layer.path = "elementwise"
        slow = layer(x)
    assert fast.shape == (1, 4, 6, 6) and torch.equal(fast, slow)


def test_mitchell_layer_changes_output_within_bound():
    torch.manual_seed(3)
    lin = nn.Linear(64, 16, bias=False)
    x = torch.rand(32, 64)  # non-negative inputs: same-sign terms, so the per-product bound carries over
    lin.weight.data.abs_()
    exact = A.ApproxLinear.from_float(lin, "exact")
    mitchell = A.ApproxLinear.from_float(lin, "mitchell")
    with torch.no_grad():
        ye, ym = exact(x), mitchell(x)
    assert not torch.equal(ye, ym)
    rel = (ym - ye).abs() / ye.abs()
    assert float(rel.max()) <= 1 / 9 + 1e-6  # Mitchell's max RED bounds a sum of same-sign products
    assert bool((ym <= ye + 1e-6).all())  # and it never overestimates
    assert float(rel.mean()) < 0.06


def test_straight_through_gradients():
    torch.manual_seed(4)
    lin = nn.Linear(10, 3)
    layer = A.ApproxLinear.from_float(lin, "mitchell", "loa-2")
    x = torch.randn(5, 10, requires_grad=True)
    y = layer(x)
    with torch.no_grad():
        assert torch.allclose(y, layer(x), atol=1e-6)
    y.sum().backward()
    wq = layer.weight_codes.double() * layer.weight_scale[:, None]
    assert torch.allclose(x.grad, wq.float().sum(0).expand_as(x), atol=1e-6)
    assert layer.weight.grad is not None and layer.bias.grad is not None


def test_requantize_after_weight_change_and_state_dict():
    lin = nn.Linear(4, 2)
    layer = A.ApproxLinear.from_float(lin, "drum-6")
    with torch.no_grad():
        layer.weight.mul_(2.0)
    layer(torch.randn(3, 4))
    assert torch.allclose(layer.weight_scale, (layer.weight.detach().double().abs().amax(1) / 127))
    sd = layer.state_dict()
    assert {"weight_codes", "weight_scale", "input_range_buf"} <= set(sd) and "_weight_mapped" not in sd


def test_input_range_and_calibrate():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    amodel = A.approximate(model, "truncate-2")
    ranges = A.calibrate(amodel, [torch.randn(4, 8), torch.randn(4, 8) * 3])
    layer = amodel[0]
    assert layer.input_range == pytest.approx(ranges["0"]) and ranges["0"] > 0
    x = torch.randn(2, 8) * 100  # beyond the frozen range: saturates
    _, q, s = layer.integer_forward(x)
    assert int(q.abs().max()) == 127 and s == pytest.approx(ranges["0"] / 127)
    layer.input_range = None
    assert layer.integer_forward(x)[2] == pytest.approx(float(x.abs().max()) / 127)
    with pytest.raises(InputError, match="input_range"):
        layer.input_range = -1.0


def test_approximate_replaces_and_skips():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, groups=2),
        nn.Flatten(),
        nn.Linear(4 * 2 * 2, 5),
        nn.Linear(5, 2),
    )
    with pytest.warns(UserWarning, match="grouped"):
        amodel = A.approximate(model, "drum-6", "exact", skip=("5",))
    assert isinstance(amodel[0], A.ApproxConv2d) and isinstance(amodel[4], A.ApproxLinear)
    assert isinstance(amodel[2], nn.Conv2d) and isinstance(amodel[5], nn.Linear)
    assert isinstance(model[0], nn.Conv2d)  # the original is untouched
    with torch.no_grad():
        assert amodel(torch.randn(2, 3, 6, 6)).shape == (2, 2)
    with pytest.raises(InputError, match="skip names"):
        A.approximate(model, skip=("nope",))
    with pytest.raises(InputError, match="groups"):
        A.ApproxConv2d.from_float(model[2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A.approximate(nn.Linear(3, 3))


# --- energy ----------------------------------------------------------------------------------------------------


def test_energy_table():
    assert A.ENERGY["multiplier:exact"].relative == 1.0 and not A.ENERGY["multiplier:exact"].estimate
    for entry in A.ENERGY.values():
        assert 0 < entry.relative <= 1.0 and entry.source
        if entry.estimate:
            assert "ESTIMATE" in entry.source
    assert A.ENERGY["multiplier:truncate-4"].relative == pytest.approx(0.25)
    assert A.relative_energy("truncate-3").relative == pytest.approx((5 / 8) ** 2)
    assert A.relative_energy("drum-6") is A.ENERGY["multiplier:drum-6"]
    assert A.relative_energy("loa-4", kind="adder").relative < 1
    assert A.relative_energy("drum-4").relative < A.relative_energy("drum-6").relative
    assert "DATE 2017" in A.ENERGY_SOURCES["evoapprox8b"]
    assert not math.isnan(A.relative_energy("mitchell", bits=16).relative)
