"""Regression tests for wrong results of the simulator (issue 9): zero channels, saved read time,
what convert converts, dtype casts, seeds, and calibrate's input checks."""

import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import InputError
from cimkit.sim.layers import CIMLayer, CIMLinear

from .helpers import quiet_convert, rel_err, spec_with


def _zeroed_linear(seed=0) -> nn.Linear:
    torch.manual_seed(seed)
    lin = nn.Linear(8, 4)
    with torch.no_grad():
        lin.weight[1:3] = 0.0  # two pruned output channels
    return lin


@pytest.mark.parametrize("preset", ["rram-22nm", "pcm"])
def test_zero_channels_stay_zero_on_noisy_chips(preset):
    lin = _zeroed_linear()
    cim = quiet_convert(lin, preset, seed=0)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    for calibrated in (False, True):
        if calibrated:
            ck.calibrate(cim, [x])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = cim(x)
        # a pruned channel outputs its bias, whatever the programming and read noise of its cells
        # (before the fix: outputs of about 2,000 before calibration and 100 after)
        assert torch.equal(y[:, 1:3], lin.bias[1:3].detach().expand(64, 2))
    # and the live channels are still close to the float product
    ref = lin(x).detach()
    assert float((y[:, [0, 3]] - ref[:, [0, 3]]).abs().max()) < 0.25 * float(ref.abs().max())


def test_all_zero_tensor_per_tensor_scale_outputs_bias():
    lin = nn.Linear(16, 5)
    with torch.no_grad():
        lin.weight.zero_()
    cim = quiet_convert(lin, spec_with("rram-22nm", weight_scale="per_tensor"), seed=3)
    y = cim(torch.randn(10, 16))
    assert torch.equal(y, lin.bias.detach().expand(10, 5))


def test_zero_conv_channels_stay_zero():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 3, padding=1)
    with torch.no_grad():
        conv.weight[::2] = 0.0
    cim = quiet_convert(conv, "rram-22nm", seed=0)
    y = cim(torch.randn(2, 3, 8, 8))
    assert torch.equal(y[:, ::2], conv.bias[::2].detach().view(1, 3, 1, 1).expand(2, 3, 8, 8))


def _no_read_noise(preset: str) -> ck.HardwareSpec:
    return spec_with(preset, **{"device.read_noise_model": "none"})


@pytest.mark.parametrize("t_s", [3600.0, 1e5])
def test_saved_model_keeps_its_read_time(t_s):
    spec = _no_read_noise("pcm")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))
    x = torch.randn(8, 32)
    chip = quiet_convert(model, spec, seed=1)
    ck.set_time(chip, t_s)
    expected = chip(x)
    buf = io.BytesIO()
    torch.save(chip.state_dict(), buf)
    buf.seek(0)
    fresh = quiet_convert(model, spec, seed=7)  # another chip sample, read at the default time
    assert not torch.equal(fresh(x), expected)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh(x), expected)
    assert all(layer.t_inference_s == t_s for layer in fresh.modules() if isinstance(layer, CIMLayer))


def test_linear_subclass_and_weight_norm_convert():
    class Scaled(nn.Linear):  # keeps Linear.forward
        pass

    wn = nn.utils.parametrizations.weight_norm(nn.Linear(6, 4))
    model = nn.Sequential(Scaled(6, 6), nn.ReLU(), wn)
    cim = ck.convert(model, "ideal")
    assert isinstance(cim[0], CIMLinear) and isinstance(cim[2], CIMLinear)
    assert [a[0] for a in cim.cim_summary.analog] == ["0", "2"]
    x = torch.randn(5, 6)
    assert torch.allclose(cim(x), model(x), atol=1e-5)


def test_shared_module_converts_once_under_every_name():
    shared = nn.Linear(4, 4)
    model = nn.Sequential()
    model.add_module("a", shared)
    model.add_module("b", nn.ReLU())
    model.add_module("c", shared)
    cim = ck.convert(model, "ideal")
    assert isinstance(cim.a, CIMLinear) and cim.a is cim.c
    assert [a[0] for a in cim.cim_summary.analog] == ["a = c"]
    x = torch.randn(3, 4)
    assert torch.allclose(cim(x), model(x), atol=1e-5)


def test_transformer_layer_runs_its_linears_on_the_chip(monkeypatch):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True, dropout=0.0).eval()
    cim = ck.convert(layer, "ideal").eval()
    assert isinstance(cim.linear1, CIMLinear) and cim.linear1.weight.shape == (32, 16)
    calls = []
    forward = CIMLinear.forward
    monkeypatch.setattr(CIMLinear, "forward", lambda self, x: calls.append(self.layer_name) or forward(self, x))
    x = torch.randn(2, 5, 16)
    with torch.no_grad():  # the condition under which torch takes its fused fast path
        y = cim(x)
    assert calls == ["self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2"]  # no fused bypass
    assert torch.allclose(y, layer(x), atol=1e-4)


@pytest.mark.parametrize("cast", ["double", "half", "bfloat16"])
def test_dtype_casts_keep_the_chip(cast):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    x = torch.randn(2, 2, 6, 6)
    cim = quiet_convert(model, _no_read_noise("rram-22nm"), seed=0)
    dtype = getattr(torch, "float16" if cast == "half" else cast)
    x = x.to(dtype)
    h = torch.randn(2, 64).to(dtype)
    ref = cim[0](x.float()), cim[2](h.float())  # the same input values, in float32
    cim = getattr(cim, cast)()
    assert cim[0].tile.g_programmed.dtype == torch.float32 and cim[0].w_scale.dtype == torch.float32
    assert cim(x).dtype == dtype
    if dtype == torch.float64:  # float64 inputs run the datapath in float64: equal to float32 rounding
        assert rel_err(cim[0](x), ref[0].double()) < 1e-6 and rel_err(cim[2](h), ref[1].double()) < 1e-6
    else:
        assert torch.equal(cim[0](x), ref[0].to(dtype)) and torch.equal(cim[2](h), ref[1].to(dtype))


def test_numpy_integer_seed_is_accepted_and_others_refused():
    model = nn.Linear(8, 4)
    x = torch.randn(3, 8)
    a = quiet_convert(model, "rram-22nm", seed=np.int64(3))
    b = quiet_convert(model, "rram-22nm", seed=3)
    assert a.cim_summary.seed == 3
    assert torch.equal(a.tile.g_programmed, b.tile.g_programmed)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))  # the same chip, and the same read-noise stream
    for bad in ("3", 3.5, True, None):
        with pytest.raises(InputError, match="seed must be an integer"):
            ck.convert(model, "ideal", seed=bad)
    for bad in ("soon", float("nan"), -1.0, True):
        with pytest.raises(InputError, match="t_inference_s"):
            ck.set_time(a, bad)


def test_calibrate_refuses_what_is_not_a_loader():
    cim = ck.convert(nn.Linear(4, 2), "rram-22nm")
    good = torch.randn(8, 4)
    cases = [
        (None, "loader must be an iterable"),
        (5, "loader must be an iterable"),
        ({"y": good}, r"does not take the keyword batch's names \(y\)"),
        ("text", "loader must be an iterable"),
        ([torch.empty(0, 4)], "batch 0 has no samples"),
        ([["a", "b"]], "batch 0 of the loader is str"),
        ([good, torch.full((2, 4), float("nan"))], "batch 1 has non-finite"),
        ([], "gave no batches"),
    ]
    for loader, message in cases:
        with pytest.raises(InputError, match=message):
            ck.calibrate(cim, loader)
    for bad in ("99", 0, 101, float("nan"), True):
        with pytest.raises(InputError, match="percentile"):
            ck.calibrate(cim, [good], percentile=bad)
    with pytest.raises(InputError, match="num_batches"):
        ck.calibrate(cim, [good], num_batches=0)


def test_calibrate_takes_a_batch_tensor_or_array_and_warns_on_all_zero_data():
    cim = ck.convert(nn.Linear(4, 2), "rram-22nm")
    ck.calibrate(cim, torch.randn(8, 4))
    ck.calibrate(cim, np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32))
    assert float(cim.input_range) > 0
    with pytest.warns(UserWarning, match="every calibration input is zero"):
        ck.calibrate(cim, [torch.zeros(8, 4)])


def test_the_calibration_histogram_counts_non_contiguous_values():
    """A chunk whose values are a strided view (a transformer's token layout) is counted like its copy."""
    from cimkit.sim.histogram import MagnitudeHistogram

    x = torch.randn(5, 4).t()  # (4, 5), not contiguous
    strided, copied = MagnitudeHistogram(4), MagnitudeHistogram(4)
    strided.add(x)
    copied.add(x.contiguous())
    assert torch.equal(strided.counts, copied.counts) and strided.total.tolist() == [5, 5, 5, 5]
