"""Trainable crossbar tiles: gradients through the simulated chip, the tile API, the saved chip,
stage hooks (issue 10)."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import InputError
from cimkit.sim import program as prog
from cimkit.sim.kernel import STAGES
from cimkit.sim.layers import CIMLayer
from cimkit.sim.training import configure, new_epoch

from .helpers import quiet_convert, rel_err, spec_with

MODES = ("straight_through", "chip")


def _layers():
    torch.manual_seed(0)
    return [
        (nn.Linear(6, 4), (3, 6)),
        (nn.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 5, 5)),
        (nn.Conv1d(2, 3, 3, stride=2, padding=1, padding_mode="reflect"), (2, 2, 9)),
    ]


# ---- gradients on the ideal chip -------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", range(3))
def test_input_gradients_pass_gradcheck_on_the_ideal_chip(mode, case):
    """float64 inputs run the datapath in float64: torch.autograd.gradcheck holds in both modes."""
    module, shape = _layers()[case]
    cim = ck.convert(module, "ideal")
    cim.backward_mode = mode
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cim, (x,), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", range(3))
def test_all_gradients_equal_plain_pytorch_on_the_ideal_chip(mode, case):
    module, shape = _layers()[case]
    cim = ck.convert(module, "ideal")
    cim.backward_mode = mode
    x = torch.randn(*shape)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    (module(xa) ** 2).sum().backward()
    (cim(xb) ** 2).sum().backward()
    for a, b in ((xa.grad, xb.grad), (module.weight.grad, cim.weight.grad), (module.bias.grad, cim.bias.grad)):
        assert rel_err(b, a) < 1e-5


def test_a_converted_model_has_parameters_and_trains_with_any_optimizer():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    cim = ck.convert(model, "ideal")
    names = {n for n, _ in cim.named_parameters()}
    assert names == {"0.weight", "0.bias", "2.weight", "2.bias"}
    before = cim[0].weight.detach().clone()
    opt = torch.optim.Adam(cim.parameters(), lr=1e-2)
    x, y = torch.randn(32, 8), torch.randint(0, 2, (32,))
    nn.functional.cross_entropy(cim(x), y).backward()
    opt.step()
    assert not torch.equal(cim[0].weight, before)
    with torch.no_grad():
        cim(x)  # the chip follows the new weights at the next forward
    assert rel_err(cim[0].tile.get_weights()[0], cim[0].weight.detach()) < 1e-5


# ---- straight-through gradients and clipping --------------------------------------------------------
def _quantized_spec():
    return spec_with("ideal", **{"weight_bits": 8, "periphery.input_bits": 6, "periphery.adc_bits": None})


def test_straight_through_gradient_is_the_ideal_one_where_nothing_clips():
    torch.manual_seed(2)
    lin = nn.Linear(10, 5)
    cim = ck.convert(lin, _quantized_spec())
    x = torch.randn(7, 10)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    d = torch.randn(7, 5)
    (lin(xa) * d).sum().backward()
    (cim(xb) * d).sum().backward()  # dynamic input range: the DAC clips nothing
    assert rel_err(xb.grad, xa.grad) < 1e-6
    assert rel_err(cim.weight.grad, lin.weight.grad) < 1e-6


def test_straight_through_gradient_is_zero_where_the_dac_clips():
    torch.manual_seed(3)
    lin = nn.Linear(10, 5)
    cim = ck.convert(lin, _quantized_spec())
    ck.calibrate(cim, torch.rand(64, 10) * 0.5, percentile=100)  # inputs in [0, 0.5], unsigned
    x = torch.randn(7, 10).requires_grad_()
    (cim(x) * torch.randn(7, 5)).sum().backward()
    in_range = (x >= 0) & (x <= float(cim.input_range))
    assert bool((~in_range).any()) and bool(in_range.any())
    assert torch.all(x.grad[~in_range] == 0)
    ideal = torch.randn(7, 5)  # where inside, the gradient is the ideal product's
    x2 = x.detach().clone().requires_grad_()
    (cim(x2) * ideal).sum().backward()
    assert rel_err(x2.grad[in_range], (ideal @ lin.weight.detach()).expand_as(x2)[in_range]) < 1e-5


def test_straight_through_gradient_is_zero_where_the_frozen_weight_range_clips():
    torch.manual_seed(4)
    lin = nn.Linear(6, 3)
    cim = ck.convert(lin, _quantized_spec())
    cim.weight_range = "fixed"  # the range of the current programming is frozen
    with torch.no_grad():
        cim.weight[0, 0] = 10 * cim.weight[0].abs().max()  # now beyond the range of channel 0: it clips
    x = torch.randn(5, 6)
    (cim(x) ** 2).sum().backward()
    assert cim.weight.grad[0, 0] == 0
    assert bool((cim.weight.grad[1:] != 0).all())
    assert cim.tile.get_weights()[0, 0, 0] < cim.weight[0, 0]  # the chip holds the clipped weight


# ---- the chip backward ------------------------------------------------------------------------------
def test_chip_backward_is_a_noisy_transposed_read_of_the_same_arrays():
    torch.manual_seed(5)
    lin = nn.Linear(64, 32)
    spec = spec_with("rram-22nm")
    a = quiet_convert(lin, spec, seed=3)
    b = quiet_convert(lin, spec, seed=3)
    configure(a, backward="chip")
    x = torch.randn(16, 64)
    d = torch.randn(16, 32)
    grads = []
    for model in (a, a, b):
        xi = x.clone().requires_grad_()
        (model(xi) * d).sum().backward()
        grads.append(xi.grad)
    ideal = d @ a.tile.get_weights()[0]
    assert 0 < rel_err(grads[0], ideal) < 0.5  # quantized and noisy, yet the chip's d W
    assert not torch.equal(grads[0], grads[1])  # read noise is fresh in the backward read too
    assert torch.equal(grads[2], d @ lin.weight.detach())  # b: straight-through, the ideal product's


def test_read_transposed_equals_d_times_the_held_weights_with_an_ideal_periphery():
    spec = spec_with(
        "rram-22nm",
        **{
            "device.read_noise_model": "none",
            "periphery.input_bits": None,
            "periphery.dac_mode": "multi_level",
            "periphery.adc_bits": None,
        },
    )
    for module in (nn.Linear(70, 9), nn.Conv2d(6, 8, 3, groups=2)):
        tile = quiet_convert(module, spec, seed=1).tile
        m = tile.mapping
        d = torch.randn(5, m.groups, m.out_features)
        held = tile.get_weights()  # (G, N, K)
        assert rel_err(tile.read_transposed(d), torch.einsum("bgn,gnk->bgk", d, held)) < 1e-5


# ---- the tile -----------------------------------------------------------------------------------------
def test_tile_read_is_the_layers_product_without_bias():
    torch.manual_seed(6)
    lin = nn.Linear(40, 12)
    spec = spec_with("rram-22nm", **{"device.read_noise_model": "none"})
    cim = quiet_convert(lin, spec)
    x = torch.randn(9, 40)
    with torch.no_grad():
        assert torch.equal(cim.tile.read(x) + cim.bias, cim(x))


def test_tile_program_and_get_weights_round_trip_on_the_ideal_device():
    tile = ck.convert(nn.Linear(30, 7), "ideal").tile
    w = torch.randn(7, 30)
    tile.program(w)
    assert rel_err(tile.get_weights()[0], w) < 1e-6


def test_tile_update_on_the_ideal_device_is_an_sgd_step():
    torch.manual_seed(7)
    spec = spec_with("ideal", **{"array.rows": 16})  # 3 row tiles of 16 rows for 40 inputs
    lin = nn.Linear(40, 5)
    with torch.no_grad():
        lin.weight[:, -1] = 2.0  # each channel's largest weight, left alone: the rest stays in range
    tile = ck.convert(lin, spec).tile
    w0 = tile.get_weights()[0].clone()
    x, d, lr = torch.randn(8, 40), torch.randn(8, 5), 0.05
    x[:, 16:] = 0  # only the first row tile is touched
    x[:, -1] = 0
    calls = []
    real = prog.effective

    def spy(state, *args):
        calls.append(state.g_prog.shape[2])
        return real(state, *args)

    prog_effective, prog.effective = prog.effective, spy
    try:
        tile.update(x, d, lr)
    finally:
        prog.effective = prog_effective
    assert calls == [1]  # one row tile re-derived, not the whole tile
    assert rel_err(tile.get_weights()[0], w0 - lr * d.t() @ x) < 1e-6
    with torch.no_grad():
        assert rel_err(tile.read(x), x @ (w0 - lr * d.t() @ x).t()) < 1e-5


def test_tile_update_refuses_unknown_devices_and_bad_shapes():
    tile = ck.convert(nn.Linear(6, 3), "ideal").tile
    with pytest.raises(InputError, match=r"layer.*\(batch, 6\)"):
        tile.update(torch.randn(2, 5), torch.randn(2, 3), 0.1)
    with pytest.raises(InputError, match="same batch"):
        tile.update(torch.randn(2, 6), torch.randn(3, 3), 0.1)
    tile.update_model = "linear-step"
    with pytest.raises(
        InputError,
        match=r"layer: update model 'linear-step' is unknown; give one of ideal or a cimkit.spec.update.UpdateDevice",
    ):
        tile.update(torch.randn(2, 6), torch.randn(2, 3), 0.1)
    sliced = quiet_convert(nn.Linear(6, 3), "rram-22nm").tile
    with pytest.raises(InputError, match="one cell per weight"):
        sliced.update(torch.randn(2, 6), torch.randn(2, 3), 0.1)


# ---- programming noise during training -----------------------------------------------------------------
def _noisy_programming():
    return spec_with("ideal", **{"weight_bits": 8, "device.programming_noise_frac": 0.05})


def _sgd_step(cim, x):
    opt = torch.optim.SGD(cim.parameters(), lr=1e-3)
    opt.zero_grad()
    cim(x).sum().backward()
    opt.step()
    with torch.no_grad():
        cim(x)  # the next forward programs the new weights


@pytest.mark.parametrize("policy", ["per_step", "per_epoch", "fixed"])
def test_programming_noise_policy(policy):
    torch.manual_seed(8)
    cim = ck.convert(nn.Linear(20, 6), _noisy_programming(), seed=2)
    cim.program_noise = policy
    x = torch.randn(4, 20)
    _sgd_step(cim, x)
    assert int(cim.tile.program_index) == (1 if policy == "per_step" else 0)
    new_epoch(cim)
    assert int(cim.tile.program_index) == (1 if policy != "fixed" else 0)
    # the noise of a sample is a function of (seed, sample index): programming again reproduces it
    g = cim.tile.g_programmed.clone()
    cim.tile.program(cim.weight)
    assert torch.equal(cim.tile.g_programmed, g)


def test_reads_of_an_unchanged_chip_never_resample_it_in_any_mode():
    cim = ck.convert(nn.Linear(20, 6), _noisy_programming(), seed=2).train()
    x = torch.randn(4, 20)
    g = cim.tile.g_programmed.clone()
    for _ in range(3):
        cim(x).sum().backward()
    assert torch.equal(cim.tile.g_programmed, g) and int(cim.tile.program_index) == 0


# ---- an 8-layer MLP trains through the chip -----------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_an_8_layer_mlp_trains_on_rram_22nm(mode):
    torch.manual_seed(9)
    width, classes = 24, 4
    teacher = nn.Linear(16, classes)
    x = torch.randn(256, 16)
    y = teacher(x).argmax(1)
    layers = [nn.Linear(16, width), nn.ReLU()]
    for _ in range(6):
        layers += [nn.Linear(width, width), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(width, classes))
    cim = quiet_convert(model, "rram-22nm", seed=0)
    assert len([m for m in cim.modules() if isinstance(m, CIMLayer)]) == 8
    ck.calibrate(cim, x)
    configure(cim, backward=mode)
    opt = torch.optim.Adam(cim.parameters(), lr=1e-2)
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(60):
            batch = slice((step * 64) % 256, (step * 64) % 256 + 64)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(cim(x[batch]), y[batch])
            loss.backward()
            opt.step()
            losses.append(float(loss))
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.9 * first, (first, last)  # measured: 1.35 -> 1.09 (straight-through), 1.19 (chip)


# ---- the saved model is the chip -----------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["pcm", "rram-22nm"])
def test_state_round_trip_is_bit_identical_at_any_read_time(preset):
    torch.manual_seed(10)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    x = torch.randn(3, 2, 6, 6)
    chip = quiet_convert(model, preset, seed=1)
    ck.calibrate(chip, x)
    ck.set_time(chip, 1e5)
    with torch.no_grad():
        chip(x)  # advance the read-noise streams: their position is part of the state
    buf = io.BytesIO()
    torch.save(chip.state_dict(), buf)
    buf.seek(0)
    fresh = quiet_convert(model, preset, seed=123)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad():
        for t in (None, 3e3, 1e7):
            if t is not None:
                ck.set_time(chip, t)
                ck.set_time(fresh, t)
            assert torch.equal(fresh(x), chip(x))


def test_loading_bare_weights_programs_them():
    lin = nn.Linear(8, 3)
    cim = ck.convert(nn.Linear(8, 3), "ideal")
    cim.load_state_dict(lin.state_dict(), strict=False)
    x = torch.randn(2, 8)
    assert rel_err(cim(x), lin(x)) < 1e-5


def test_a_state_dict_from_another_spec_or_shape_is_refused_with_what_differs():
    lin = nn.Linear(8, 3)
    a = quiet_convert(nn.Sequential(lin), "rram-22nm")
    other = quiet_convert(nn.Sequential(lin), spec_with("rram-22nm", **{"periphery.adc_bits": 6}))
    with pytest.raises(InputError, match=r"0: .*different spec.*periphery\.adc_bits: 6 -> 5"):
        a.load_state_dict(other.state_dict())
    wider = quiet_convert(nn.Sequential(nn.Linear(8, 5)), "rram-22nm")
    with pytest.raises(InputError, match=r"0: saved g_programmed has shape"):
        a.load_state_dict(wider.state_dict())


# ---- stage hooks -------------------------------------------------------------------------------------
def _noisy_net():
    torch.manual_seed(11)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))


@pytest.mark.parametrize("spec", ["rram-22nm", "pcm"])
def test_identity_hooks_on_every_stage_change_nothing(spec):
    net, x = _noisy_net(), torch.randn(2, 2, 6, 6)
    a = quiet_convert(net, spec, seed=5)
    b = quiet_convert(net, spec, seed=5)
    seen = []
    for layer in (b[0], b[2]):
        for stage in STAGES:
            layer.register_stage_hook(stage, lambda tile, value, info: (seen.append(info.stage), value)[1])
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    assert set(seen) == set(STAGES)


def test_a_hook_can_replace_a_stage_value_and_be_removed():
    net, x = _noisy_net(), torch.randn(2, 2, 6, 6)
    cim = quiet_convert(net, "rram-22nm", seed=5)
    layer = cim[2]
    with torch.no_grad():
        handle = layer.register_stage_hook("output", lambda tile, value, info: torch.zeros_like(value))
        assert torch.all(cim(x) == 0)
        handle.remove()
        assert not torch.all(cim(x) == 0)
        stuck = layer.register_stage_hook("adc", lambda tile, value, info: value.clamp(max=0))  # a fault
        faulty = cim(x)
        stuck.remove()
    assert not torch.equal(faulty, cim(x))


def test_bad_hooks_and_settings_are_refused_naming_the_layer():
    cim = ck.convert(nn.Sequential(nn.Linear(4, 2)), "ideal")
    with pytest.raises(InputError, match=r"0: unknown datapath stage 'adc_out'; the stages are input, encode"):
        cim[0].register_stage_hook("adc_out", lambda *a: None)
    with pytest.raises(InputError, match="must be callable"):
        cim[0].register_stage_hook("adc", 3)
    cim[0].register_stage_hook("output", lambda tile, value, info: value[:1])
    with pytest.raises(InputError, match=r"0: a 'output' stage hook returned \(1, 2\)"):
        cim(torch.randn(3, 4))
    with pytest.raises(
        InputError,
        match=r"0: backward_mode 'dfa' is not one this CIMLinear can do; choose "
        r"from straight_through, chip",
    ):
        configure(cim, backward="dfa")
    with pytest.raises(InputError, match="program_noise 'sometimes'"):
        cim[0].program_noise = "sometimes"
    with pytest.raises(InputError, match="no crossbar layers"):
        configure(nn.Linear(2, 2), backward="chip")


def test_configure_checks_every_layer_before_changing_any():
    class NoChip(ck.sim.CIMLinear):
        backward_modes = ("straight_through",)

    cim = ck.convert(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)), "ideal")
    cim[1] = NoChip.from_module(nn.Linear(4, 2), ck.HardwareSpec.preset("ideal"), seed=0, name="1")
    with pytest.raises(InputError, match=r"1: backward_mode 'chip' is not one this NoChip can do"):
        configure(cim, backward="chip")
    assert cim[0].backward_mode == "straight_through"


# ---- regressions found in review ----------------------------------------------------------------------
def _one_slice_noisy():
    return spec_with(
        "ideal",
        **{
            "weight_bits": 8,
            "device.bits_per_cell": 8,
            "device.programming_noise_frac": 0.05,
            "device.g_min_us": 10.0,
            "device.g_max_us": 100.0,
            "device.read_noise_model": "none",
            "array.rows": 16,
        },
    )


@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_update_moves_only_the_cells_it_touches_and_rederives_them(mapping):
    spec = _one_slice_noisy().replace(**{"array.signed_mapping": mapping})
    torch.manual_seed(12)
    tile = ck.convert(nn.Linear(40, 24), spec, seed=1).tile
    g0 = tile.g_programmed.clone()
    x, d = torch.randn(6, 40), torch.randn(6, 24)
    x[:, 5:] = 0  # rows 5.. untouched: programming noise left some of their cells below g_min
    tile.update(x, d, 1e-4)
    rows = g0.flatten(2, 3)  # (pol, G, rows, S, N)
    assert torch.equal(tile.g_programmed.flatten(2, 3)[:, :, 5:], rows[:, :, 5:])
    partial = tile.signal.clone()
    tile.rederive()
    assert torch.equal(partial, tile.signal)


def test_a_chip_saved_right_after_an_optimizer_step_holds_the_saved_weights():
    torch.manual_seed(13)
    cim = quiet_convert(nn.Sequential(nn.Linear(16, 8)), "rram-22nm", seed=1)
    x = torch.randn(4, 16)
    opt = torch.optim.SGD(cim.parameters(), lr=0.5)
    cim(x).square().sum().backward()
    opt.step()  # no forward since: the chip still holds the old weights
    state = cim.state_dict()
    fresh = quiet_convert(nn.Sequential(nn.Linear(16, 8)), "rram-22nm", seed=5)
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh(x), cim(x))
    # programming noise leaves 5-7% (over seeds); the weights before the step are ~20x off
    assert rel_err(fresh[0].tile.get_weights()[0], fresh[0].weight.detach()) < 0.15


def test_weight_changes_that_keep_the_version_counter_still_reprogram_and_copies_keep_the_chip():
    import copy

    cim = ck.convert(nn.Linear(8, 4), "ideal")
    x = torch.randn(3, 8)
    cim.weight.data.mul_(2)  # .data edits bypass the parameter's version counter
    with torch.no_grad():
        assert rel_err(cim(x), x @ cim.weight.detach().t() + cim.bias.detach()) < 1e-5
    noisy = ck.convert(nn.Linear(8, 4), _noisy_programming(), seed=3)
    twin = copy.deepcopy(noisy)
    with torch.no_grad():
        assert torch.equal(twin(x), noisy(x))
    assert int(twin.tile.program_index) == int(noisy.tile.program_index) == 0


def test_refused_weights_leave_the_chip_as_it_was():
    spec = spec_with("ideal", **{"weight_bits": 8, "device.bits_per_cell": 2})  # several slices
    cim = ck.convert(nn.Linear(6, 3), spec)
    x = torch.randn(2, 6)
    with torch.no_grad():
        before = cim(x)
    cim.weight_range = "fixed"
    with torch.no_grad():
        cim.weight[0, 0] = float("nan")
    with pytest.raises(InputError, match="non-finite"):
        cim(x)
    assert torch.isfinite(cim.tile.g_programmed).all() and int(cim.tile.program_index) == 0
    with torch.no_grad():
        cim.weight[0, 0] = 0.0
        cim.weight_range = "dynamic"
        assert torch.isfinite(cim(x)).all() and before.shape == cim(x).shape


def test_a_state_dict_held_by_reference_stays_one_consistent_chip():
    torch.manual_seed(14)
    cim = quiet_convert(nn.Sequential(nn.Linear(12, 5)), "rram-22nm", seed=2)
    x = torch.randn(3, 12)
    state = cim.state_dict()  # tensors shared with the model
    with torch.no_grad():
        cim[0].weight.mul_(3)
        cim(x)  # reprogrammed in place: the held state now describes the new chip, all of it
    fresh = quiet_convert(nn.Sequential(nn.Linear(12, 5)), "rram-22nm", seed=9)
    fresh.load_state_dict(state)  # cells and weight scales of the same programming
    assert torch.equal(fresh[0].tile.get_weights(), cim[0].tile.get_weights())


def test_chip_backward_is_zero_where_the_dac_clipped():
    lin = nn.Linear(4, 3)
    cim = ck.convert(lin, _quantized_spec())
    ck.calibrate(cim, torch.rand(64, 4) * 0.1, percentile=100)
    cim.backward_mode = "chip"
    x = torch.tensor([[5.0, 0.01, -5.0, 0.02]], requires_grad=True)
    cim(x).sum().backward()
    assert x.grad[0, 0] == 0 and x.grad[0, 2] == 0 and bool((x.grad[0, [1, 3]] != 0).all())


def test_a_load_of_bare_weights_keeps_the_read_noise_stream_where_it_is():
    cim = quiet_convert(nn.Linear(8, 4), "rram-22nm", seed=1)
    x = torch.randn(2, 8)
    with torch.no_grad():
        cim(x)
    draws = cim.tile.rng.draws
    cim.load_state_dict(nn.Linear(8, 4).state_dict(), strict=False)
    assert cim.tile.rng.draws == draws > 0
