"""Integer-only softmax / GELU / LayerNorm (cimkit.ops): exact row sums, monotone rows, errors within the
stated bounds against float64 references computed here, int64 arithmetic only between the input grid and
the output codes, exact integer square roots, module swapping, and the bad-input messages."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.overrides import TorchFunctionMode

from cimkit.errors import InputError
from cimkit.ops import (
    DEFAULT_ERF,
    DEFAULT_EXP,
    IBERT_ERF,
    IBERT_EXP,
    ExpPoly,
    IntGELU,
    IntLayerNorm,
    IntSoftmax,
    gelu_codes,
    int_exp,
    int_gelu,
    int_layernorm,
    int_softmax,
    isqrt,
    layernorm_codes,
    softmax_codes,
    softmax_error_bound,
    swap_integer_ops,
)
from cimkit.ops.intmath import bit_length
from cimkit.ops.intsoftmax import EXP_ARITH_BOUND, exp_arith_bound

LN2 = math.log(2.0)
SOFTMAX_EXTRA = 1.2e-7  # the integer exp's share of the softmax bound (int_softmax docstring: about 1.1e-7)


def grid(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, float]:
    """The documented input grid, computed here: q = round(x / s), s = max|x| / (2**(bits-1) - 1)."""
    top = float(x.abs().max())
    s = top / (2 ** (bits - 1) - 1) if top else 1.0
    return torch.round(x.double() / s), s


def logits(seed: int, shape, std: float) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * std


def tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from tensors(item)
    elif isinstance(obj, dict):
        yield from tensors(list(obj.values()))


class IntegerOnly(TorchFunctionMode):
    """Records every torch function or tensor method (operators included) that reads or returns a
    floating-point tensor."""

    def __init__(self):
        super().__init__()
        self.float_ops = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(t.is_floating_point() for t in tensors((args, kwargs, out))):
            self.float_ops.append(getattr(func, "__name__", str(func)))
        return out


# ---------------------------------------------------------------- integer primitives


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=50), st.integers(1, 3_000_000_000))
def test_isqrt_is_the_exact_floor_square_root(values, root):
    edges = [0, 1, 2, 3, 4, root * root - 1, root * root, root * root + 1, 2**62, 2**63 - 1]
    n = torch.tensor(values + [min(v, 2**63 - 1) for v in edges], dtype=torch.int64)
    assert isqrt(n).tolist() == [math.isqrt(v) for v in n.tolist()]
    assert bit_length(n).tolist() == [v.bit_length() for v in n.tolist()]


# ---------------------------------------------------------------- exp


@pytest.mark.parametrize(
    "poly", [IBERT_EXP, DEFAULT_EXP, ExpPoly.chebyshev(1), ExpPoly.chebyshev(8)], ids=lambda p: p.name
)
def test_the_exp_polynomial_is_within_its_bound_on_the_whole_reduced_range(poly):
    p = np.linspace(-LN2 / poly.segments, 0, 1_000_001)
    assert np.abs(poly.a * (p + poly.b) ** 2 + poly.c - np.exp(p)).max() <= poly.bound
    scale = 1e-6  # every code of the reduced range (-ln2, 0]: 693,147 of them
    q = -torch.arange(0, math.ceil(LN2 / scale), dtype=torch.int64)
    e, unit = int_exp(q, scale, poly=poly)
    err = (e.double() * unit - torch.exp(q.double() * scale)).abs().max().item()
    assert err <= poly.bound + EXP_ARITH_BOUND
    if poly is IBERT_EXP:  # the stated "about 1.9e-3" is I-BERT's real error, not a loose figure
        assert 1.9e-3 < err and poly.bound <= 1.92e-3
    if poly is DEFAULT_EXP:
        assert err < 1e-8


@settings(max_examples=25, deadline=None)
@given(st.floats(-9, 1), st.integers(0, 2**31 - 1))
@example(-8.5, 0)  # a step of 3e-9: the multiplier keeps 28 bits, the rounding bound grows past 2e-8
def test_int_exp_on_the_whole_range_is_bounded_and_never_rises_as_x_falls(log_scale, seed):
    scale = 10.0**log_scale
    g = torch.Generator().manual_seed(seed)
    span = min(int(45 / scale), 2**33)
    q = -torch.randint(0, span + 1, (4000,), generator=g, dtype=torch.int64).sort().values.flip(0)
    q = torch.cat([torch.tensor([0, -1, -(2**33)]), q]).sort(descending=True).values
    e, unit = int_exp(q, scale)
    assert e.dtype == torch.int64
    x = q.double() * scale
    z = torch.floor(-x / LN2)
    bound = 2.0**-z * (DEFAULT_EXP.bound + exp_arith_bound(scale=scale)) + unit
    assert bool(((e.double() * unit - torch.exp(x)).abs() <= bound).all())
    assert bool((e[1:] <= e[:-1]).all())


# ---------------------------------------------------------------- softmax

softmax_cases = st.tuples(
    st.integers(0, 2**31 - 1),  # seed
    st.sampled_from([(5, 17), (3, 4, 9), (64,), (2, 33, 3), (1, 1)]),
    st.integers(-3, 2),  # dim (taken modulo the rank)
    st.floats(0.05, 8.0),  # std of the logits
    st.integers(4, 16),  # output bits
)


@settings(max_examples=40, deadline=None)
@given(softmax_cases)
def test_softmax_rows_sum_to_one_on_the_grid_within_one_step_of_float_softmax(case):
    seed, shape, dim, std, bits = case
    dim = dim % len(shape)
    x = logits(seed, shape, std).float()
    out = int_softmax(x, dim, input_bits=16, output_bits=bits)
    assert out.shape == x.shape and out.dtype == torch.float32
    k = out.double() * 2**bits
    assert torch.equal(k, k.round())
    assert bool((k.sum(dim) == 2**bits).all())
    q, s = grid(x, 16)
    on_grid = (out.double() - torch.softmax(q * s, dim)).abs().max().item()
    assert on_grid < 2.0**-bits + SOFTMAX_EXTRA
    assert (out.double() - torch.softmax(x.double(), dim)).abs().max().item() < 2.0**-bits + SOFTMAX_EXTRA + s / 4
    assert softmax_error_bound(bits, 64, input_scale=s) <= 2.0**-bits + SOFTMAX_EXTRA + s / 4  # the stated bound


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 16), st.integers(1, 40), st.booleans())
def test_softmax_is_monotone_along_each_row(seed, bits, n, repeats):
    g = torch.Generator().manual_seed(seed)
    scale = 0.01
    q = torch.randint(-300, 300, (8, n), generator=g)
    if repeats:  # many equal codes in a row
        q = q // 100 * 100
    x = q.double() * scale  # exactly on a grid of step `scale`: the codes are q
    k = (int_softmax(x, input_bits=16, output_bits=bits, input_scale=scale) * 2**bits).long()
    higher = q[:, :, None] > q[:, None, :]
    assert not bool((higher & (k[:, :, None] < k[:, None, :])).any())
    equal = q[:, :, None] == q[:, None, :]
    assert not bool((equal & ((k[:, :, None] - k[:, None, :]).abs() > 1)).any())


def test_softmax_works_along_any_dim_and_on_edge_shapes():
    x = logits(3, (4, 6, 5), 3.0)
    for dim in range(-3, 3):
        moved = int_softmax(x.movedim(dim, -1), -1).movedim(-1, dim)
        assert torch.equal(int_softmax(x, dim), moved)  # one scale per tensor: the same codes either way
    assert int_softmax(torch.tensor(2.5), 0).item() == 1.0
    assert int_softmax(torch.zeros(3, 0)).shape == (3, 0)
    assert torch.equal(int_softmax(torch.zeros(2, 4), output_bits=2), torch.full((2, 4), 0.25))
    assert int_softmax(x.half()).dtype == torch.float32 and int_softmax(x).dtype == torch.float64
    saturated = int_softmax(torch.tensor([100.0, 0.0]), input_bits=4, input_scale=1.0, output_bits=12)
    assert torch.equal(saturated, int_softmax(torch.tensor([7.0, 0.0]), input_bits=4, input_scale=1.0, output_bits=12))
    huge = torch.tensor([[3e38, -3e38, 0.0, 1e30]])
    assert int_softmax(huge, output_bits=8).tolist() == [[1.0, 0.0, 0.0, 0.0]]


def test_softmax_with_ibert_polynomial_stays_within_its_looser_bound():
    x = logits(5, (256, 128), 3.0)
    q, s = grid(x, 16)
    out = int_softmax(x, output_bits=16, exp=IBERT_EXP)
    assert (out - torch.softmax(q * s, -1)).abs().max().item() < 2.0**-16 + 8e-3


def test_the_kernels_use_int64_arithmetic_only():
    x = logits(1, (6, 50), 3.0)
    q, s = grid(x, 16)
    q = q.long()
    with IntegerOnly() as mode:
        k = softmax_codes(q, s, dim=-1, output_bits=8)
        g = gelu_codes(q, s)
        n, f = layernorm_codes(q, s, normalized_dims=1, eps=1e-5, output_bits=12)
        int_exp(-q.abs(), s)
    assert mode.float_ops == []
    assert k.dtype == g.dtype == n.dtype == torch.int64
    with IntegerOnly() as mode:  # the mode does see float ops: the check can fail
        torch.softmax(x, -1)
    assert mode.float_ops


# ---------------------------------------------------------------- GELU


@pytest.mark.parametrize("poly", [IBERT_ERF, DEFAULT_ERF], ids=lambda p: p.name)
def test_gelu_polynomial_error_is_its_stated_bound(poly):
    x = torch.linspace(-12, 12, 240_001, dtype=torch.float64)
    err = (int_gelu(x, input_bits=32, erf=poly) - F.gelu(x)).abs().max().item()
    s = 12 / (2**31 - 1)
    assert 0.98 * poly.bound < err <= poly.bound + s / 2 + 1e-7
    assert DEFAULT_ERF.bound < IBERT_ERF.bound


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([4, 8, 12, 16, 24, 32]), st.floats(0.01, 100.0))
def test_gelu_is_on_the_input_grid_within_its_bound(seed, bits, std):
    x = logits(seed, (300,), std)
    out = int_gelu(x, input_bits=bits)
    q, s = grid(x, bits)
    k = out / s
    assert torch.allclose(k, k.round(), rtol=0, atol=1e-6 * max(1.0, float(q.abs().max())))
    assert bool((k.round().abs() <= q.abs()).all())
    assert (out - F.gelu(q * s)).abs().max().item() <= DEFAULT_ERF.bound + s / 2 + 1e-7
    assert (out - F.gelu(x)).abs().max().item() <= DEFAULT_ERF.bound + 1.13 * s / 2 + s / 2 + 1e-7


# ---------------------------------------------------------------- LayerNorm


def float_z(q: torch.Tensor, s: float, nd: int, eps: float) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) of the grid values, float64."""
    dims = tuple(range(-nd, 0))
    x = q * s
    mean = x.mean(dims, keepdim=True)
    return (x - mean) / torch.sqrt(((x - mean) ** 2).mean(dims, keepdim=True) + eps)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.sampled_from([(7, 1), (5, 2), (3, 31), (4, 300), (2, 3, 20)]),
    st.integers(2, 24),
    st.sampled_from([4, 8, 16]),
    st.floats(1e-3, 1e3),
    st.sampled_from([1e-5, 1e-2, 0.0]),
)
def test_layernorm_codes_are_within_half_a_step(seed, shape, out_bits, in_bits, std, eps):
    x = logits(seed, shape, std) + std * 3 * torch.rand(shape[0], *[1] * (len(shape) - 1), dtype=torch.float64)
    q, s = grid(x, in_bits)
    nd = 2 if len(shape) == 3 else 1
    k, f = layernorm_codes(q.long(), s, normalized_dims=nd, eps=eps, output_bits=out_bits)
    n = math.prod(shape[-nd:])
    assert math.sqrt(max(n - 1, 0)) * 2.0**f <= 2 ** (out_bits - 1) - 1  # the integer bits hold any |z|
    assert int(k.abs().max()) < 2 ** (out_bits - 1)
    z = float_z(q, s, nd, eps)
    z = torch.nan_to_num(z, nan=0.0)  # constant rows without eps: 0 by definition
    err = (k.double() * 2.0**-f - z).abs().max().item()
    assert err <= 2.0**-f * (0.5 + 2**-8)


def test_layernorm_with_affine_and_integer_bits():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 64, generator=g, dtype=torch.float64) * 4 + 1
    w, b = torch.randn(64, generator=g, dtype=torch.float64), torch.randn(64, generator=g, dtype=torch.float64)
    q, s = grid(x, 16)
    ref = F.layer_norm(q * s, (64,), w, b)
    out = int_layernorm(x, 64, w, b, output_bits=12)  # I = 3 (sqrt 63 < 8): step 2**-8
    assert bool(((out - ref).abs() <= w.abs() * 2.0**-8 * (0.5 + 2**-8) + 1e-12).all())
    clamped = int_layernorm(x, (64,), output_bits=8, integer_bits=1)  # step 2**-6, |z| clamped below 2
    z = F.layer_norm(q * s, (64,))
    assert clamped.abs().max().item() <= 2 - 2.0**-6
    inside = z.abs() < 1.9
    assert (clamped - z)[inside].abs().max().item() <= 2.0**-6 * (0.5 + 2**-8)
    assert torch.equal(int_layernorm(torch.full((2, 5), 3.0), 5), torch.zeros(2, 5))
    assert torch.equal(int_layernorm(torch.full((2, 5), 3.0), 5, eps=0.0), torch.zeros(2, 5))


# ---------------------------------------------------------------- modules and swapping


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.ff = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.attn = nn.Softmax(dim=-1)
        self.log = nn.LogSoftmax(dim=-1)
        self.relu = nn.ReLU()

    def forward(self, x):
        h = self.ff(self.norm(x))
        return self.log(self.attn(h @ h.transpose(-1, -2)) @ h) + self.relu(x)


def test_swap_replaces_exactly_softmax_gelu_layernorm_and_leaves_the_original():
    torch.manual_seed(0)
    model = nn.Sequential(Block(), Block())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kinds = [type(m) for m in model.modules()]
    swapped = swap_integer_ops(model)
    assert swapped is not model and [type(m) for m in model.modules()] == kinds
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert swapped.swapped == {
        "0.norm": "LayerNorm",
        "0.ff.1": "GELU",
        "0.attn": "Softmax",
        "1.norm": "LayerNorm",
        "1.ff.1": "GELU",
        "1.attn": "Softmax",
    }
    assert not any(isinstance(m, (nn.Softmax, nn.GELU, nn.LayerNorm)) for m in swapped.modules())
    assert isinstance(swapped[0].log, nn.LogSoftmax) and isinstance(swapped[0].relu, nn.ReLU)
    assert torch.equal(swapped[1].norm.weight, model[1].norm.weight)
    assert swapped[1].norm.weight is not model[1].norm.weight
    assert swapped[0].attn.output_bits == 8 and swapped[0].attn.dim == -1
    x = torch.randn(2, 5, 16)
    assert (swapped(x) - model(x)).abs().max().item() < 0.1
    only_softmax = swap_integer_ops(model, gelu=False, layernorm=False, softmax_bits=12)
    assert sorted(only_softmax.swapped) == ["0.attn", "1.attn"] and only_softmax[0].attn.output_bits == 12


def test_swap_inplace_root_and_shared_modules():
    shared = nn.GELU()
    model = nn.Sequential(shared, nn.Linear(3, 3), shared)
    out = swap_integer_ops(model, inplace=True)
    assert out is model and isinstance(model[0], IntGELU) and model[0] is model[2]
    assert model.swapped == {"0": "GELU", "2": "GELU"}
    root = swap_integer_ops(nn.Softmax(dim=1))
    assert isinstance(root, IntSoftmax) and root.dim == 1 and root.swapped == {"": "Softmax"}
    assert swap_integer_ops(nn.Linear(2, 2)).swapped == {}


def test_modules_match_their_functions_and_load_layernorm_state():
    torch.manual_seed(1)
    ln = nn.LayerNorm((4, 8), eps=1e-3)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = torch.randn(3, 4, 8) * 5
    il = IntLayerNorm.from_float(ln, output_bits=14)
    assert torch.equal(il(x), int_layernorm(x, (4, 8), ln.weight, ln.bias, 1e-3, output_bits=14))
    fresh = IntLayerNorm((4, 8), eps=1e-3, output_bits=14)
    fresh.load_state_dict(ln.state_dict())
    assert torch.equal(fresh(x), il(x))
    no_affine = IntLayerNorm.from_float(nn.LayerNorm(8, elementwise_affine=False))
    assert no_affine.weight is None and no_affine.bias is None
    assert torch.equal(IntGELU.from_float(nn.GELU(approximate="tanh"), input_bits=12)(x), int_gelu(x, input_bits=12))
    sm = IntSoftmax.from_float(nn.Softmax(dim=1), output_bits=6)
    assert torch.equal(sm(x), int_softmax(x, 1, output_bits=6))
    assert torch.equal(IntSoftmax(dim=None)(x), int_softmax(x, 0))  # torch's implicit dim for 3-d inputs


# ---------------------------------------------------------------- bad input

X = torch.randn(3, 4)
NAN = torch.tensor([[0.0, float("nan")]])


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: int_softmax(X, input_bits=1), ["int_softmax", "input_bits = 1", "2..32"]),
        (lambda: int_softmax(X, input_bits=33), ["input_bits = 33", "2..32"]),
        (lambda: int_softmax(X, output_bits=0), ["output_bits = 0", "1..24"]),
        (lambda: int_softmax(X, output_bits=25), ["output_bits = 25", "1..24"]),
        (lambda: int_softmax(X, output_bits=8.0), ["output_bits = 8.0", "integer"]),
        (lambda: int_softmax(NAN), ["non-finite", "index [0, 1]", "nan"]),
        (lambda: int_softmax(torch.tensor([1.0, float("inf")])), ["non-finite", "inf"]),
        (lambda: int_softmax(X, input_scale=0.0), ["input_scale = 0.0", "input_scale must be a finite number > 0"]),
        (lambda: int_softmax(X, input_scale=-1), ["input_scale = -1", "input_scale must be a finite number > 0"]),
        (lambda: int_softmax(X, input_scale=float("nan")), ["input_scale = nan"]),
        (lambda: int_softmax(X, dim=2), ["dim = 2", "2 dim(s)", "-2..1"]),
        (lambda: int_softmax(X, dim=-3), ["dim = -3", "-2..1"]),
        (lambda: int_softmax(torch.arange(4)), ["dtype torch.int64", "floating-point", "softmax_codes"]),
        (lambda: int_softmax([1.0, 2.0]), ["is a list", "torch.Tensor"]),
        (lambda: int_exp(torch.tensor([0, 3]), 0.1), ["int_exp", "positive codes", "largest 3", "q <= 0"]),
        (lambda: int_exp(torch.tensor([-1.0]), 0.1), ["int_exp", "dtype torch.float32", "int64"]),
        (lambda: int_exp(torch.tensor([-1]), None), ["int_exp", "scale = None"]),
        (
            lambda: softmax_codes(torch.zeros(2, 3, dtype=torch.int64), 1.0, dim=5),
            ["softmax_codes", "dim = 5", "-2..1"],
        ),
        (lambda: ExpPoly(0.5, 1.0, 0.5, 3, 1.0), ["segments = 3", "power of two"]),
        (lambda: ExpPoly(0.5, 5.0, 0.5, 1, 1.0), ["b = 5.0", "2 ln2"]),
        (lambda: int_gelu(X, input_bits=40), ["int_gelu", "input_bits = 40", "2..32"]),
        (lambda: int_gelu(X.long()), ["int_gelu", "dtype torch.int64", "gelu_codes"]),
        (lambda: int_layernorm(X, 5), ["normalized_shape = (5,)", "shape (3, 4)"]),
        (lambda: int_layernorm(X, (0,)), ["normalized_shape = (0,)", "positive"]),
        (lambda: int_layernorm(X, 4, weight=torch.ones(5)), ["weight", "shape (5,)", "shape (4,)"]),
        (lambda: int_layernorm(X, 4, bias=torch.ones(4, dtype=torch.int64)), ["bias", "torch.int64"]),
        (lambda: int_layernorm(X, 4, eps=-1.0), ["eps = -1.0", ">= 0"]),
        (lambda: int_layernorm(X, 4, input_bits=17), ["input_bits = 17", "2..16"]),
        (lambda: int_layernorm(X, 4, output_bits=1), ["output_bits = 1", "2..24"]),
        (lambda: int_layernorm(torch.zeros(1, 2**16), 2**16), ["65,536 features", "16 input bits", "32,768"]),
        (lambda: int_layernorm(X, 4, output_bits=8, integer_bits=8), ["integer_bits = 8", "0..7"]),
        (lambda: IntSoftmax(output_bits=30), ["IntSoftmax", "output_bits = 30"]),
        (lambda: IntSoftmax(dim=1.5), ["IntSoftmax", "dim = 1.5"]),
        (lambda: IntLayerNorm.from_float(nn.GELU()), ["IntLayerNorm.from_float", "GELU", "nn.LayerNorm"]),
        (lambda: IntGELU.from_float(nn.ReLU()), ["IntGELU.from_float", "ReLU"]),
        (lambda: IntSoftmax.from_float(nn.LogSoftmax(1)), ["IntSoftmax.from_float", "LogSoftmax"]),
        (lambda: swap_integer_ops("model"), ["swap_integer_ops", "is a str", "nn.Module"]),
        (lambda: swap_integer_ops(nn.ReLU(), softmax_bits=0), ["softmax_bits = 0", "1..24"]),
        (lambda: swap_integer_ops(nn.ReLU(), input_bits=20), ["input_bits = 20", "2..16", "LayerNorm"]),
    ],
)
def test_bad_input_is_named_with_its_value_and_what_is_allowed(call, words):
    with pytest.raises(InputError) as info:
        call()
    for word in words:
        assert word in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_row_too_long_for_int64_sums_is_refused():
    q = torch.zeros(1, 2**24 + 1, dtype=torch.int64)
    with pytest.raises(InputError, match=r"16,777,217 elements along dim 1 are too long; at most 16,777,216"):
        softmax_codes(q, 1.0)
    assert swap_integer_ops(nn.ReLU(), input_bits=20, layernorm=False).swapped == {}
