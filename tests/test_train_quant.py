"""Quantization utilities of ``cimkit.train.quant``: the grid math (round trip, error bound, zero, the
symmetric and affine grids, per-channel scales, the straight-through gradient), post-training
quantization, quantization-aware training and its conversion back to plain modules, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cimkit as ck
from cimkit.errors import InputError
from cimkit.train.quant import (
    QATConv1d,
    QATConv2d,
    QATLinear,
    QuantConfig,
    convert_qat,
    fake_quantize,
    prepare_qat,
    quant_params,
    quantization_error,
    quantize_weights,
)

FAST = settings(max_examples=60, deadline=None)
DTYPES = st.sampled_from([torch.float32, torch.float64])


def configs(observer: str = "minmax"):
    return st.builds(
        QuantConfig,
        bits=st.integers(2, 16),
        granularity=st.sampled_from(["per_layer", "per_channel"]),
        symmetric=st.booleans(),
        observer=st.just(observer),
    )


def matrices():
    """(C, n) float64 arrays of moderate values (0 or 1e-6 <= |v| <= 1e3: scales stay far above the
    smallest normal number, where they are floored), with some exact zeros and repeated values."""
    value = st.one_of(st.just(0.0), st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6))
    return st.integers(1, 4).flatmap(
        lambda c: st.integers(1, 9).flatmap(
            lambda n: st.lists(value, min_size=c * n, max_size=c * n).map(lambda v: np.array(v).reshape(c, n))
        )
    )


def codes_of(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    return torch.round(x / scale) + zero_point


# ---- the grid ----------------------------------------------------------------------------------------
@FAST
@given(bits=st.integers(2, 16), symmetric=st.booleans(), scale=st.floats(1e-4, 1e4), dtype=DTYPES, data=st.data())
def test_values_on_the_grid_round_trip_exactly(bits, symmetric, scale, dtype, data):
    cfg = QuantConfig(bits, "per_layer", symmetric)
    lo, hi = cfg.code_limits
    zp = 0 if symmetric else data.draw(st.integers(lo, hi))
    codes = torch.tensor(data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=40)), dtype=dtype)
    s = torch.tensor(scale, dtype=dtype)
    x = (codes - zp) * s
    assert torch.equal(fake_quantize(x, s, torch.tensor(float(zp), dtype=dtype), cfg), x)


@FAST
@given(cfg=configs(), x=matrices(), dtype=DTYPES)
def test_error_is_at_most_half_a_step_inside_the_observed_range(cfg, x, dtype):
    x = torch.tensor(x, dtype=dtype)
    scale, zp = quant_params(x, cfg)
    y = fake_quantize(x, scale, zp, cfg)
    eps = torch.finfo(dtype).eps
    bound = scale / 2 * (1 + 8 * eps) + 4 * eps * x.abs()  # half a step, up to rounding of the arithmetic
    assert bool(((y - x).abs() <= bound).all())
    assert torch.equal(y[x == 0], torch.zeros_like(y[x == 0]))  # zero maps to exactly zero
    lo, hi = cfg.code_limits
    codes = codes_of(y, scale, zp)
    assert bool(((codes >= lo) & (codes <= hi)).all())


@FAST
@given(cfg=configs(), x=matrices())
def test_zero_maps_to_zero_and_the_zero_point_to_zero(cfg, x):
    x = torch.tensor(x, dtype=torch.float32)
    scale, zp = quant_params(x, cfg)
    zeros = torch.zeros_like(x)
    assert torch.equal(fake_quantize(zeros, scale, zp, cfg), zeros)
    assert bool((zp == torch.round(zp)).all()) and not bool(torch.signbit(zp).any())
    if cfg.symmetric:
        assert bool((zp == 0).all())


@FAST
@given(bits=st.integers(2, 16), x=matrices())
def test_symmetric_maps_plus_minus_max_to_the_largest_codes(bits, x):
    cfg = QuantConfig(bits, "per_layer", True)
    x = torch.tensor(x, dtype=torch.float64)
    top = float(x.abs().max())
    scale, zp = quant_params(x, cfg)
    qmax = 2 ** (bits - 1) - 1
    assert cfg.code_limits == (-qmax, qmax)
    ends = torch.tensor([-top, top], dtype=torch.float64)
    y = fake_quantize(ends, scale, zp, cfg)
    if top > 0:
        assert codes_of(ends, scale, zp).tolist() == [-qmax, qmax]
        assert torch.allclose(y, ends, rtol=1e-12, atol=0)
    else:
        assert float(scale) == 1.0


@FAST
@given(bits=st.integers(2, 16), x=matrices())
def test_asymmetric_covers_min_to_max_and_its_zero_point_is_zero(bits, x):
    cfg = QuantConfig(bits, "per_layer", False)
    x = torch.tensor(x, dtype=torch.float64)
    scale, zp = quant_params(x, cfg)
    assert cfg.code_limits == (0, 2**bits - 1)
    assert 0 <= float(zp) <= 2**bits - 1
    grid_lo, grid_hi = float((0 - zp) * scale), float((2**bits - 1 - zp) * scale)
    s = float(scale)
    assert grid_lo <= min(float(x.min()), 0.0) + s / 2 * (1 + 1e-9)
    assert grid_hi >= max(float(x.max()), 0.0) - s / 2 * (1 + 1e-9)
    assert float(fake_quantize(zp * scale - zp * scale, scale, zp, cfg)) == 0.0  # the code zp is exactly 0


def test_asymmetric_uses_all_codes_for_a_nonnegative_range():
    """ReLU outputs in [0, 2.55] at 8 bits: zero point 0, step 0.01, the top code is the maximum."""
    cfg = QuantConfig(8, "per_layer", False)
    x = torch.linspace(0, 2.55, 256, dtype=torch.float64)
    scale, zp = quant_params(x, cfg)
    assert float(zp) == 0.0 and float(scale) == pytest.approx(0.01)
    assert torch.allclose(fake_quantize(x, scale, zp, cfg), x, atol=1e-12)


def test_per_channel_scales_follow_the_output_channels_and_survive_a_zero_channel():
    w = torch.randn(5, 3, 2, 2)
    w[2] = 0.0
    cfg = QuantConfig(6, "per_channel", True)
    scale, zp = quant_params(w, cfg)
    assert scale.shape == (5, 1, 1, 1) and zp.shape == (5, 1, 1, 1)
    expect = w.abs().amax(dim=(1, 2, 3)) / 31
    expect[2] = 1.0  # an all-zero channel: any step gives code 0, no division by zero
    assert torch.allclose(scale.flatten(), expect)
    y = fake_quantize(w, scale, zp, cfg)
    assert bool(torch.isfinite(y).all()) and torch.equal(y[2], torch.zeros_like(y[2]))
    affine_scale, affine_zp = quant_params(w, QuantConfig(6, "per_channel", False))  # asymmetric + per channel
    assert bool(torch.isfinite(affine_scale).all()) and float(affine_zp[2]) == 0.0
    # another channel axis: one scale per column
    s1, _ = quant_params(w[:, :, 0, 0], cfg, dim=1)
    assert s1.shape == (1, 3) and torch.allclose(s1.flatten(), w[:, :, 0, 0].abs().amax(0) / 31)
    # per layer: one 0-d scale
    s0, z0 = quant_params(w, QuantConfig(6, "per_layer"))
    assert s0.shape == () and z0.shape == () and float(s0) == pytest.approx(float(w.abs().max()) / 31)


def test_percentile_observer_clips_outliers():
    x = torch.cat([torch.linspace(-1, 1, 10_001), torch.tensor([1000.0])])
    minmax, _ = quant_params(x, QuantConfig(8, "per_layer"))
    pct, _ = quant_params(x, QuantConfig(8, "per_layer", observer="percentile", percentile=99.0))
    assert float(minmax) == pytest.approx(1000 / 127)
    assert float(pct) == pytest.approx(float(torch.quantile(x.abs(), 0.99)) / 127, rel=1e-5)
    lo_hi = quant_params(x, QuantConfig(8, "per_layer", False, "percentile", 99.0))
    assert float(lo_hi[0]) < float(minmax)


def test_straight_through_gradient_is_one_inside_and_zero_where_clipped():
    cfg = QuantConfig(4, "per_layer", True)  # codes -7..7, step 0.1: the range is [-0.7, 0.7] (+- half a step)
    x = torch.tensor([-2.0, -0.74, -0.3, 0.0, 0.31, 0.7, 0.74, 0.76, 5.0], requires_grad=True)
    y = fake_quantize(x, 0.1, 0.0, cfg)
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert torch.allclose(y.detach(), torch.tensor([-0.7, -0.7, -0.3, 0.0, 0.3, 0.7, 0.7, 0.7, 0.7]))
    # affine: codes 0..15 with zero point 3 cover [-0.3, 1.2]
    x2 = torch.tensor([-0.5, -0.3, 0.0, 1.2, 1.3], requires_grad=True)
    fake_quantize(x2, 0.1, 3.0, QuantConfig(4, "per_layer", False)).sum().backward()
    assert x2.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_sixteen_bit_floats_quantize_in_float32_and_come_back_in_their_dtype():
    cfg = QuantConfig(12, "per_layer")
    x = torch.randn(50).half()
    scale, zp = quant_params(x, cfg)
    assert scale.dtype == torch.float32
    y = fake_quantize(x, scale, zp, cfg)
    assert y.dtype == torch.float16
    assert bool(((y.float() - x.float()).abs() <= scale / 2 + 1e-3 * x.float().abs()).all())


# ---- post-training quantization ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_mlp():
    """A 64-32-10 MLP trained on sklearn's digits (~98% test accuracy) and the data."""
    from cimkit.data import digits

    d = digits()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(d.x_train), d.y_train).backward()
        opt.step()
    return model.eval(), d


def accuracy(model: nn.Module, d) -> float:
    with torch.no_grad():
        return float((model(d.x_test).argmax(1) == d.y_test).float().mean())


def test_ptq_at_16_bits_matches_the_float_model_and_2_bits_degrades(digits_mlp):
    model, d = digits_mlp
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        ref = model(d.x_test)
        for granularity in ("per_layer", "per_channel"):
            for symmetric in (True, False):
                q16 = quantize_weights(model, 16, granularity=granularity, symmetric=symmetric)
                out = q16(d.x_test)
                assert float((out - ref).norm() / ref.norm()) < 1e-4
    float_acc = accuracy(model, d)
    q8 = quantize_weights(model, 8)
    q2 = quantize_weights(model, 2, granularity="per_layer")
    assert float_acc > 0.9 and abs(accuracy(q8, d) - float_acc) < 0.02
    assert accuracy(q2, d) < float_acc - 0.3
    errors = quantization_error(model, q2)
    assert set(errors) == {"1", "3"} and min(errors.values()) > max(quantization_error(model, q8).values())
    # the original is untouched; biases stay float; quantized weights are on their grids
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(q2[1].bias, model[1].bias)
    cfg = QuantConfig(8)
    w = q8[1].weight.detach()
    assert torch.equal(fake_quantize(w, *quant_params(w, cfg), cfg), w)


def test_ptq_skip_leaves_named_layers_in_float_and_handles_convs():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 8), nn.Sequential(nn.Linear(8, 3))
    )
    q = quantize_weights(model, 3, skip=["4"])
    assert torch.equal(q[4][0].weight, model[4][0].weight)
    assert not torch.equal(q[0].weight, model[0].weight) and not torch.equal(q[3].weight, model[3].weight)
    assert set(quantization_error(model, q)) == {"0", "3", "4.0"} and quantization_error(model, q)["4.0"] == 0.0
    conv2 = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten())
    q2 = quantize_weights(conv2, 4, symmetric=False)
    assert type(q2[0]) is nn.Conv2d and not torch.equal(q2[0].weight, conv2[0].weight)


# ---- quantization-aware training --------------------------------------------------------------------
def test_qat_trains_and_beats_ptq_at_two_bits(digits_mlp):
    model, d = digits_mlp
    qat = prepare_qat(model, QuantConfig(2), QuantConfig(8, "per_layer", symmetric=False))
    assert isinstance(qat[1], QATLinear) and isinstance(qat[3], QATLinear)
    assert set(model.state_dict()) <= set(qat.state_dict())
    qat.train()
    opt = torch.optim.Adam(qat.parameters(), 1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = F.cross_entropy(qat(d.x_train), d.y_train)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    qat.eval()
    ptq = quantize_weights(model, 2)
    ptq_acc = accuracy(ptq, d)
    assert accuracy(qat, d) > max(ptq_acc + 0.05, 0.7)  # ~0.8 against ~0.5..0.7
    assert accuracy(convert_qat(qat), d) > max(ptq_acc + 0.05, 0.7)


def test_qat_weight_gradient_is_the_gradient_at_the_quantized_weight():
    """With a min/max observer nothing is clipped: the STE passes dL/dw_q to w unchanged."""
    torch.manual_seed(2)
    layer = nn.Linear(6, 4)
    qat = prepare_qat(layer, QuantConfig(3, "per_channel", False))
    x = torch.randn(5, 6)
    qat(x).pow(2).sum().backward()
    wq = qat.quantized_weight().detach().requires_grad_(True)
    F.linear(x, wq, layer.bias.detach()).pow(2).sum().backward()
    assert torch.allclose(qat.weight.grad, wq.grad)
    assert layer.weight.grad is None  # the original is untouched


def test_convert_qat_equals_the_qat_eval_output_and_restores_plain_modules():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 6), nn.ReLU(), nn.Linear(6, 3)
    )
    qat = prepare_qat(model, QuantConfig(4, "per_layer", False))
    assert set(qat.state_dict()) == set(model.state_dict())  # weights only: the same keys
    opt = torch.optim.SGD(qat.parameters(), 0.05)
    x = torch.randn(8, 1, 5, 5)
    for _ in range(3):
        opt.zero_grad()
        qat(x).square().mean().backward()
        opt.step()
    qat.eval()
    baked = convert_qat(qat)
    assert [type(m) for m in baked.modules()] == [type(m) for m in model.modules()]
    assert set(baked.state_dict()) == set(model.state_dict())
    with torch.no_grad():
        assert torch.equal(baked(x), qat(x))
    assert isinstance(qat[0], QATConv2d)  # the QAT model itself is untouched by convert_qat
    assert baked[3].weight.unique().numel() <= 16  # 4 bits, one grid for the layer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cim = ck.convert(baked, "ideal")  # plain modules: all of them go onto crossbars
    assert [row[0] for row in cim.cim_summary.analog] == ["0", "3", "5"]
    with torch.no_grad():
        assert torch.allclose(cim(x), baked(x), atol=1e-5)


def test_qat_input_observer_runs_in_training_and_freezes_in_eval():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv1d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 4, 2))
    act = QuantConfig(8, "per_channel", symmetric=False)
    qat = prepare_qat(model, QuantConfig(8), act, momentum=0.5)
    conv = qat[0]
    assert isinstance(conv, QATConv1d) and conv.act_lo.shape == (3,) and qat[2].act_hi.shape == (8,)
    x1, x2 = torch.randn(4, 3, 6), 3 * torch.randn(4, 3, 6)
    qat.train()
    qat(x1)
    assert torch.allclose(conv.act_hi, x1.amax(dim=(0, 2)).clamp(min=0))
    assert torch.allclose(conv.act_lo, x1.amin(dim=(0, 2)).clamp(max=0))
    qat(x2)
    expect = 0.5 * x1.amax(dim=(0, 2)).clamp(min=0) + 0.5 * x2.amax(dim=(0, 2)).clamp(min=0)
    assert torch.allclose(conv.act_hi, expect) and int(conv.act_seen) == 2
    qat.eval()
    frozen = {k: v.clone() for k, v in qat.state_dict().items()}
    with torch.no_grad():
        qat(10 * x2)
    assert all(torch.equal(frozen[k], v) for k, v in qat.state_dict().items())
    # a fresh QAT model in eval mode quantizes each batch with its own range
    fresh = prepare_qat(model, QuantConfig(8), act).eval()
    with torch.no_grad():
        out = fresh(x1)
    assert int(fresh[0].act_seen) == 0 and torch.allclose(out, model(x1), atol=0.05)


# ---- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"bits": 1}, ["bits = 1", "2..16"]),
        ({"bits": 17}, ["bits = 17", "2..16"]),
        ({"bits": 8.0}, ["bits = 8.0", "integer"]),
        ({"granularity": "per_tensor"}, ["granularity = 'per_tensor'", "'per_layer'", "'per_channel'"]),
        ({"observer": "mean"}, ["observer = 'mean'", "'minmax'", "'percentile'"]),
        ({"symmetric": "yes"}, ["symmetric = 'yes'", "True"]),
        ({"percentile": 40}, ["percentile = 40", "(50, 100]"]),
    ],
)
def test_bad_configs_name_the_field_the_value_and_what_is_allowed(kwargs, words):
    with pytest.raises(InputError) as err:
        QuantConfig(**kwargs)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_bad_models_and_tensors_are_input_errors():
    with pytest.raises(InputError, match=r"no quantizable layers.*nn\.Linear, nn\.Conv1d, nn\.Conv2d"):
        quantize_weights(nn.Sequential(nn.ReLU(), nn.LayerNorm(3)))
    with pytest.raises(InputError, match=r"no quantizable layers left after skip"):
        prepare_qat(nn.Sequential(nn.Linear(2, 2)), skip="0")
    with pytest.raises(InputError, match=r"skip names 'fc'.*not a module"):
        quantize_weights(nn.Sequential(nn.Linear(2, 2)), skip=["fc"])
    bad = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    with torch.no_grad():
        bad[1].weight[0, 1] = float("nan")
    for fn in (quantize_weights, prepare_qat):
        with pytest.raises(InputError, match=r"weight of layer '1' has non-finite values \(first at index \[0, 1\]"):
            fn(bad)
    with pytest.raises(InputError, match=r"bits = 1 is not allowed"):
        quantize_weights(nn.Linear(2, 2), bits=1)
    with pytest.raises(InputError, match=r"model is a str"):
        quantize_weights("model")
    with pytest.raises(InputError, match=r"already a QATLinear"):
        prepare_qat(prepare_qat(nn.Linear(2, 2)))
    with pytest.raises(InputError, match=r"no QAT layers"):
        convert_qat(nn.Linear(2, 2))
    with pytest.raises(InputError, match=r"momentum = 0 is not allowed"):
        prepare_qat(nn.Linear(2, 2), momentum=0)
    with pytest.raises(InputError, match=r"activation = 8 is not allowed.*QuantConfig"):
        prepare_qat(nn.Linear(2, 2), activation=8)
    cfg = QuantConfig(4, "per_layer")
    with pytest.raises(InputError, match=r"x has non-finite values"):
        quant_params(torch.tensor([1.0, float("inf")]), cfg)
    with pytest.raises(InputError, match=r"x has dtype torch.int64"):
        quant_params(torch.tensor([1, 2]), cfg)
    with pytest.raises(InputError, match=r"per_channel .* 0-d"):
        quant_params(torch.tensor(1.0), QuantConfig(4))
    with pytest.raises(InputError, match=r"dim = 2 is out of range"):
        quant_params(torch.ones(2, 2), QuantConfig(4), dim=2)
    with pytest.raises(InputError, match=r"scale = 0.0 is not allowed"):
        fake_quantize(torch.ones(3), 0.0, 0.0, cfg)
    with pytest.raises(InputError, match=r"zero_point = 3.0 is not allowed; it must be 0 \(a symmetric grid"):
        fake_quantize(torch.ones(3), 0.1, 3.0, cfg)
    with pytest.raises(InputError, match=r"zero_point = 2.5 is not allowed; it must be integer codes in 0..15"):
        fake_quantize(torch.ones(3), 0.1, 2.5, QuantConfig(4, "per_layer", False))
    with pytest.raises(InputError, match=r"do not broadcast"):
        fake_quantize(torch.ones(3), torch.ones(2), 0.0, cfg)
