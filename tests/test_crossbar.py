"""The crossbar datapath against exact references, limiting cases and its own statistics."""

import math

import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import InputError
from cimkit.sim import program as prog
from cimkit.sim.layers import CIMLayer

from .helpers import quiet_convert, rel_err, spec_with

EXACT = {  # all effects off at high precision
    "weight_bits": 24,
    "device.bits_per_cell": 24,
    "periphery.input_bits": 24,
    "periphery.adc_bits": None,
}


def layers_under_test():
    return [
        (nn.Linear(300, 40), torch.randn(17, 300)),
        (nn.Conv2d(6, 16, 5, padding=2), torch.randn(3, 6, 12, 12)),
        (nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=4, bias=False), torch.randn(2, 8, 9, 9)),
        (nn.Conv2d(16, 16, 3, padding=1, groups=16), torch.randn(2, 16, 7, 7)),  # depthwise
        (nn.Conv2d(4, 6, 3, padding="same", padding_mode="reflect"), torch.randn(2, 4, 8, 8)),
        (nn.Conv1d(5, 7, 4, stride=2, padding=1, dilation=2), torch.randn(3, 5, 30)),
    ]


@pytest.mark.parametrize("mapping", ["differential", "offset"])
@pytest.mark.parametrize("conv_mapping", ["kernel_aligned", "im2col"])
@pytest.mark.parametrize("idx", range(6))
def test_all_effects_off_equals_float(idx, mapping, conv_mapping):
    module, x = layers_under_test()[idx]
    for spec in (
        spec_with("ideal", **{"array.signed_mapping": mapping, "array.conv_mapping": conv_mapping}),
        spec_with(
            "ideal", **EXACT, **{"array.signed_mapping": mapping, "array.conv_mapping": conv_mapping, "array.rows": 37}
        ),
    ):
        cim = ck.convert(module, spec)
        assert rel_err(cim(x), module(x)) < 1e-5


def test_original_model_untouched_and_summary_lists_layers():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    before = [p.clone() for p in model.parameters()]
    cim = ck.convert(model, "rram-22nm")
    assert isinstance(model[0], nn.Conv2d) and isinstance(cim[0], CIMLayer) and isinstance(cim[3], CIMLayer)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    s = cim.cim_summary
    assert [a[0] for a in s.analog] == ["0", "3"] and ("1", "ReLU") in s.digital and ("2", "Flatten") in s.digital


def test_unsupported_layers_warn_and_are_listed():
    model = nn.Sequential(nn.Embedding(10, 8), nn.ConvTranspose2d(2, 2, 3), nn.Linear(8, 4))
    with pytest.warns(UserWarning, match=r"0 \(Embedding\).*1 \(ConvTranspose2d\)"):
        cim = ck.convert(model, "ideal")
    assert [u[0] for u in cim.cim_summary.unsupported] == ["0", "1"]


def integer_layer(k=300, n=20, bits=8):
    lin = nn.Linear(k, n, bias=False)
    q = 2 ** (bits - 1) - 1
    w = torch.randint(-q, q + 1, (n, k)).float()
    w[:, 0] = q  # every column reaches full scale, so the per-channel scale is exactly 1
    lin.weight.data = w
    x = torch.randint(0, 256, (9, k)).float()
    x[:, 0] = 255  # input scale exactly 1
    return lin, x, x @ w.T


@pytest.mark.parametrize("bits_per_cell", [1, 2, 3, 4, 7, 8])
@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_slices_recombine_to_the_integer_product(bits_per_cell, mapping):
    lin, x, ref = integer_layer()
    base = {
        "weight_bits": 8,
        "device.bits_per_cell": bits_per_cell,
        "periphery.input_bits": 8,
        "periphery.adc_bits": None,
        "array.signed_mapping": mapping,
    }
    assert torch.equal(ck.convert(lin, spec_with("ideal", **base))(x), ref)
    # a finite on/off ratio adds a baseline conductance that the pair or the digital offset removes
    # (up to float32 rounding: partial sums reach 4e6 and the offset correction cancels terms ~100x
    # the result, so a few ulps of 4e6 show at 1e-5 of it)
    finite = spec_with("ideal", **base, **{"device.g_min_us": 2.0})
    assert rel_err(ck.convert(lin, finite)(x), ref) < 3e-5


@pytest.mark.parametrize("mapping", ["differential", "offset"])
@pytest.mark.parametrize("module_idx", [0, 1, 5])
def test_bit_serial_equals_multi_level_with_ideal_adc(mapping, module_idx):
    module, x = layers_under_test()[module_idx]
    common = {
        "weight_bits": 6,
        "device.bits_per_cell": 2,
        "periphery.input_bits": 6,
        "periphery.adc_bits": None,
        "array.signed_mapping": mapping,
        "array.rows": 64,
    }
    serial = ck.convert(module, spec_with("ideal", **common, **{"periphery.dac_mode": "bit_serial"}))(x)
    parallel = ck.convert(module, spec_with("ideal", **common))(x)
    assert rel_err(serial, parallel) < 1e-6


def test_sram_preset_is_exact_for_integer_operands():
    lin, x, ref = integer_layer()
    assert torch.equal(ck.convert(lin, spec_with("sram", weight_scale="per_tensor"))(x), ref)


@pytest.mark.parametrize(
    "mapping, dac", [("differential", "multi_level"), ("offset", "bit_serial"), ("differential", "bit_serial")]
)
def test_adc_error_bounded_by_its_step(mapping, dac):
    """In range, each conversion is off by at most half a step; the shift-add weights them."""
    lin, x, ref = integer_layer(k=256)
    base = {
        "weight_bits": 8,
        "device.bits_per_cell": 2,
        "periphery.input_bits": 8,
        "array.signed_mapping": mapping,
        "periphery.dac_mode": dac,
        "array.rows": 64,
    }
    for adc_bits in (4, 6, 9):
        spec = spec_with("ideal", **base, **{"periphery.adc_bits": adc_bits, "periphery.adc_range": "fixed"})
        cim = ck.convert(lin, spec)
        layer = cim
        m = layer.mapping
        signed = mapping == "differential"
        level_max = layer.coding.top_level + (0 if signed else layer.tile.beta)
        code_max = 1 if dac == "bit_serial" else 255
        from cimkit.sim.quant import aligned_adc_step

        step = aligned_adc_step(m.rows * level_max * code_max, adc_bits, signed)
        plane_sum = 255 if dac == "bit_serial" else 1  # sum of |plane weights|
        bound = m.row_tiles * plane_sum * sum(layer.coding.slice_weights) * step / 2
        err = (cim(x) - ref).abs().max()
        assert err <= bound
        if adc_bits == 4:
            assert err > 0  # a coarse ADC does lose information


def test_adc_error_shrinks_with_bits_on_a_calibrated_layer():
    lin = nn.Linear(256, 32)
    x = torch.randn(64, 256).relu()
    errs = []
    for bits in (3, 4, 5, 6, 8):
        cim = ck.convert(
            lin,
            spec_with(
                "rram-22nm",
                **{"periphery.adc_bits": bits, "device.programming_noise_frac": 0.0, "device.read_noise_frac": 0.0},
            ),
        )
        ck.calibrate(cim, [x])
        errs.append(rel_err(cim(x), lin(x)))
    assert all(a > b for a, b in zip(errs, errs[1:])), errs


def drift_spec(comp):
    return spec_with(
        "ideal",
        **{
            "device.drift_nu": 0.05,
            "device.drift_nu_std": 0.0,
            "device.g_min_us": 0.0,
            "periphery.drift_compensation": comp,
        },
    )


@pytest.mark.parametrize("t", [20.0, 3600.0, 86400.0, 3.15e7])
def test_drift_follows_its_closed_form(t):
    lin, x = nn.Linear(100, 10, bias=False), torch.randn(5, 100)
    cim = ck.convert(lin, drift_spec("none"), t_inference_s=t)
    expected = lin(x) * (t / 20.0) ** -0.05
    assert rel_err(cim(x), expected) < 1e-5
    compensated = ck.convert(lin, drift_spec("global"), t_inference_s=t)
    assert rel_err(compensated(x), lin(x)) < 1e-5


def test_state_dict_round_trip_keeps_the_programmed_chip():
    lin, x = nn.Linear(64, 8), torch.rand(4, 64)
    spec = spec_with("pcm")
    a = quiet_convert(lin, spec, seed=1)
    ck.calibrate(a, [x])
    b = quiet_convert(lin, spec, seed=2)  # a different chip, then loaded with a's state
    b.load_state_dict(a.state_dict())
    saved = set(a.state_dict())
    assert saved >= {
        "tile.g_programmed",
        "tile.drift_exponent",
        "tile.adc_full_scale",
        "tile.rng_state",
        "tile.inference_time_s",
        "weight",
    }
    assert not any("signal" in k or "variance" in k for k in saved)  # derived caches are not saved
    for t in (20.0, 1e5):  # the read-noise position travels with the state: reads agree bit for bit
        ck.set_time(a, t)
        ck.set_time(b, t)
        assert torch.equal(a(x), b(x))


def test_drift_spread_is_only_partly_compensated():
    lin, x = nn.Linear(200, 20), torch.randn(16, 200)
    spec = spec_with("ideal", **{"device.drift_nu": 0.06, "device.drift_nu_std": 0.02})
    cim = ck.convert(lin, spec, seed=1)
    errs = []
    for t in (1e2, 1e4, 1e6, 1e8):
        ck.set_time(cim, t)
        errs.append(rel_err(cim(x), lin(x)))
    assert 0 < errs[0] < errs[-1]


def program_with_seed(w, spec, mapping, seed):
    """Program once with torch's generator: stuck cells and programming noise from one seed."""
    gen = torch.Generator().manual_seed(seed)
    shape = (
        2 if mapping.differential else 1,
        mapping.groups,
        mapping.row_tiles,
        mapping.rows_per_tile,
        mapping.slices,
        mapping.out_features,
    )
    stuck = prog.draw_stuck_cells(shape, spec, gen)
    return prog.program(w, spec, mapping, lambda s: torch.randn(s, generator=gen), stuck)


def test_stuck_cell_fractions_match_rates():
    spec = spec_with(
        "ideal",
        **{
            "weight_bits": 8,
            "device.bits_per_cell": 2,
            "device.stuck_on_rate": 0.03,
            "device.stuck_off_rate": 0.07,
            "device.g_min_us": 1.0,
        },
    )
    k, n = 512, 256
    w = torch.ones(1, n, k)  # positive cells at top level, negative cells at level 0
    mapping = ck.map_matrix(k, n, spec)
    state, _, coding = program_with_seed(w, spec, mapping, 0)
    g_top = state.beta + coding.top_level
    neg = state.g_prog[1]
    pos = state.g_prog[0][..., :3, :]  # slices 0..2 hold 3 = top level (127 = 0b1111111)
    for frac, rate, cells in (
        ((neg == g_top).float().mean(), 0.03, neg.numel()),
        ((pos == state.beta).float().mean(), 0.07, pos.numel()),
    ):
        sd = math.sqrt(rate * (1 - rate) / cells)
        assert abs(float(frac) - rate) < 5 * sd


def test_programming_noise_has_the_specified_spread():
    spec = spec_with("ideal", **{"weight_bits": 8, "device.bits_per_cell": 8, "device.programming_noise_frac": 0.03})
    k, n = 256, 256
    w = torch.zeros(1, n, k)
    w[..., 0] = 1
    state, _, coding = program_with_seed(w, spec, ck.map_matrix(k, n, spec), 0)
    g = state.g_prog[0, 0, 0, 1:, 0, :]  # target level 0: a normal clamped at 0, mean sigma / sqrt(2 pi)
    g_max = coding.top_level
    assert float(g.mean()) == pytest.approx(0.03 * g_max / math.sqrt(2 * math.pi), rel=0.05)
    mid = program_with_seed(torch.full((1, n, k), 0.5), spec, ck.map_matrix(k, n, spec), 1)[0]
    lvl = mid.g_prog[0]
    assert float(lvl.std()) == pytest.approx(0.03 * g_max, rel=0.05)


def test_read_noise_is_fresh_per_forward_and_has_exact_output_statistics():
    """Additive per-cell noise: the output std is sigma * sqrt(sum x^2) per array (no ADC)."""
    k, n, frac = 200, 8, 0.01
    lin = nn.Linear(k, n, bias=False)
    spec = spec_with(
        "ideal", **{"device.read_noise_model": "additive", "device.read_noise_frac": frac, "array.rows": 50}
    )
    cim = ck.convert(lin, spec, seed=3)
    x = torch.rand(1, k).expand(4000, k).contiguous()
    y = cim(x)
    assert not torch.equal(y[0], y[1])
    # level units: sigma = frac * top_level (=1 for analog weights) per cell and per polarity (2 cells)
    sigma_out = frac * 1.0 * math.sqrt(2 * float((x[0] ** 2).sum()))
    expected = sigma_out * cim.w_scale  # back to weight units (inputs unscaled)
    assert torch.allclose(y.std(0), expected, rtol=0.06)
    assert torch.allclose(y.mean(0), lin(x[:1])[0], atol=float(expected.max()) * 0.2)


def test_same_seed_same_numbers_different_seed_different():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    x = torch.randn(8, 1, 8, 8)
    a = quiet_convert(model, "rram-22nm", seed=7)
    b = quiet_convert(model, "rram-22nm", seed=7)
    c = quiet_convert(model, "rram-22nm", seed=8)
    ya, yb, yc = a(x), b(x), c(x)
    assert torch.equal(ya, yb) and not torch.equal(ya, yc)
    assert torch.equal(a(x), b(x))  # the read-noise stream advances identically
    assert not torch.equal(ya, a(x))  # and is fresh at each forward


@pytest.mark.parametrize("model_ir", ["first_order", "exact"])
def test_ir_drop_model_in_the_layer_matches_the_exact_circuit(model_ir):
    """A one-array layer with IR drop gives V @ T of the exact solver (first order: to O((rGN^2)^2))."""
    k, n = 32, 16
    lin = nn.Linear(k, n, bias=False)
    spec = spec_with(
        "ideal",
        **{
            "array.rows": k,
            "array.cols": 2 * n,
            "array.wire_resistance_ohm": 2.0,
            "array.ir_drop": model_ir,
            "device.g_max_us": 50.0,
            "periphery.drift_compensation": "none",
        },
    )
    cim = ck.convert(lin, spec)
    x = torch.rand(4, k)
    # reference: the same programmed cells through the exact solver
    tile = cim.tile
    g = tile.g_programmed[:, 0, 0, :, 0, :] * tile.g_unit_s  # (pol, K, N) siemens
    phys = torch.stack([g[0], g[1]], dim=-1).reshape(k, 2 * n).double()  # columns (n, pol)
    currents = ck.sim.solve_ir_drop(phys, x.double(), 2.0).reshape(4, n, 2)
    ref = (currents[..., 0] - currents[..., 1]) / tile.g_unit_s * tile.w_scale.reshape(-1)
    no_model = rel_err(ck.convert(lin, spec.replace(**{"array.ir_drop": "none"}))(x).double(), ref)
    assert no_model > 0.01  # the drop matters at this wire resistance
    err = rel_err(cim(x).double(), ref)
    assert err < (1e-6 if model_ir == "exact" else 0.15 * no_model)


def test_calibrate_sets_ranges_and_helps():
    lin = nn.Linear(128, 16)
    x = torch.randn(256, 128).relu()
    cim = quiet_convert(lin, spec_with("pcm", **{"device.read_noise_model": "none"}))
    before = rel_err(cim(x), lin(x))
    ck.calibrate(cim, [(x, None)])
    assert math.isfinite(float(cim.input_range)) and not bool(cim.input_signed)
    assert torch.isfinite(cim.adc_full_scale).all()
    assert rel_err(cim(x), lin(x)) < before / 2


def test_bad_inputs_get_clear_errors():
    cim = ck.convert(nn.Linear(10, 3), "ideal")
    with pytest.raises(InputError, match="non-finite"):
        cim(torch.tensor([[float("nan")] * 10]))
    with pytest.raises(InputError, match="expected inputs with 10 features"):
        cim(torch.randn(2, 11))
    conv = ck.convert(nn.Conv2d(3, 4, 3), "ideal")
    with pytest.raises(InputError, match="3 channels"):
        conv(torch.randn(1, 2, 8, 8))
    bad = nn.Linear(4, 2)
    bad.weight.data[0, 0] = float("inf")
    with pytest.raises(InputError, match="non-finite"):
        ck.convert(bad, "ideal")
    with pytest.raises(InputError, match="no crossbar layers"):
        ck.calibrate(nn.ReLU(), [torch.randn(2, 2)])
    with pytest.raises(Exception, match="unknown preset"):
        ck.convert(nn.Linear(2, 2), "nonexistent")
    with pytest.raises(InputError, match="t_inference_s"):
        ck.set_time(cim, -1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    x = torch.randn(8, 1, 8, 8)
    cpu = quiet_convert(model, "pcm", seed=2)
    gpu = quiet_convert(model, "pcm", seed=2).cuda()
    assert rel_err(gpu(x.cuda()).cpu(), cpu(x)) < 1e-3
