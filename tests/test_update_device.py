"""The device update model: NeuroSim's pulse-response curves, finite levels, write noise, and the tile's
pulse-based update."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cimkit as ck
from cimkit.errors import InputError, SpecError
from cimkit.sim.update import apply_pulses, count_writes, pulses_for
from cimkit.spec.update import UPDATE_DEVICES, UpdateDevice, normalized_a, update_device

LINEAR = dict(
    name="linear",
    levels_ltp=50,
    levels_ltd=50,
    nonlinearity_ltp=0.0,
    nonlinearity_ltd=0.0,
    c2c_frac=0.0,
    r_on_ohm=1e5,
    on_off_ratio=10.0,
    write_voltage_ltp_v=2.0,
    write_voltage_ltd_v=2.0,
    pulse_width_ltp_s=1e-7,
    pulse_width_ltd_s=1e-7,
)


def device(**kw) -> UpdateDevice:
    return UpdateDevice(**{**LINEAR, **kw})


# NeuroSim's table of normalized A (MLP+NeuroSim V3.0 formula.cpp getParamA / documents/Nonlinearity-NormA.htm)
@pytest.mark.parametrize(
    "label, table",
    [
        (0.01, 126.268958),
        (1.0, 1.251653),
        (1.51, 0.8195),
        (3.01, 0.3853),
        (4.51, 0.2266),
        (6.01, 0.1351),
        (7.51, 0.0702),
        (9.0, 0.022810),
    ],
)
def test_nonlinearity_labels_map_to_neurosims_table(label, table):
    # the table prints 4-6 significant digits
    assert normalized_a(label) == pytest.approx(table, rel=1e-3)
    assert normalized_a(-label) == pytest.approx(-table, rel=1e-3)
    assert normalized_a(0.0) == math.inf


def test_full_pulse_trains_span_the_window_and_curves_are_monotone():
    for d in UPDATE_DEVICES.values():
        g0, g1 = torch.zeros(1), torch.ones(1)
        assert float(
            apply_pulses(g0, torch.tensor([float(d.levels_ltp)]), d.model_copy(update={"c2c_frac": 0.0}))
        ) == pytest.approx(1.0, abs=1e-9)
        quiet = UpdateDevice(**{**d.model_dump(), "c2c_frac": 0.0})
        assert float(apply_pulses(g1, torch.tensor([-float(d.levels_ltd)]), quiet)) == pytest.approx(0.0, abs=1e-9)
        g = torch.zeros(d.levels_ltp + 1)
        path = [g[0].item()]
        cell = torch.zeros(1)
        for _ in range(d.levels_ltp):
            cell = apply_pulses(cell, torch.ones(1), quiet)
            path.append(cell.item())
        steps = torch.tensor(path).diff()
        assert bool((steps > 0).all()), d.name


def test_a_positive_label_saturates_potentiation():
    d = device(nonlinearity_ltp=3.0)
    first = float(apply_pulses(torch.zeros(1), torch.ones(1), d))
    last = 1.0 - float(apply_pulses(torch.ones(1) * 0.0, torch.tensor([d.levels_ltp - 1.0]), d))
    assert first > 2 / d.levels_ltp and last < first / 5  # steep first pulses, small last ones


def test_pulses_follow_the_curve_from_the_present_conductance():
    d = device(nonlinearity_ltp=2.4, nonlinearity_ltd=-4.88)
    g = torch.tensor([0.3], dtype=torch.float64)
    twice = apply_pulses(apply_pulses(g, torch.tensor([3.0]), d), torch.tensor([4.0]), d)
    once = apply_pulses(g, torch.tensor([7.0]), d)
    assert float(twice) == pytest.approx(float(once), abs=1e-9)


def test_write_noise_grows_with_the_square_root_of_the_pulses():
    d = device(c2c_frac=0.02)
    g = torch.full((40_000,), 0.5)
    noise = torch.randn(g.shape, generator=torch.Generator().manual_seed(0))
    for n in (1.0, 4.0):
        moved = apply_pulses(g, torch.full_like(g, n), d, noise) - (0.5 + n / d.levels_ltp)
        assert float(moved.std()) == pytest.approx(0.02 * math.sqrt(n), rel=0.03)
    still = apply_pulses(g, torch.zeros_like(g), d, noise)
    assert torch.equal(still, g)  # no pulse, no write noise


@settings(max_examples=60, deadline=None)
@given(st.floats(-1.0, 1.0), st.integers(2, 400))
def test_changes_round_to_whole_pulses(change, levels):
    d = device(levels_ltp=levels, levels_ltd=levels)
    n = float(pulses_for(torch.tensor([change], dtype=torch.float64), d))
    assert n == round(change * levels) or abs(abs(change * levels) % 1 - 0.5) < 1e-9


def test_presets_carry_their_source_and_refuse_inconsistent_figures():
    assert set(UPDATE_DEVICES) == {"ag-a-si", "taox-hfox", "pcmo", "alox-hfo2", "gst-pcm", "epiram", "hzo-fefet"}
    assert all(d.source for d in UPDATE_DEVICES.values())
    assert update_device("epiram") is UPDATE_DEVICES["epiram"]
    with pytest.raises(InputError, match="update device 'nope' is unknown; presets: ag-a-si"):
        update_device("nope")
    with pytest.raises(SpecError, match=r"(?s)levels_ltp = 1: .*greater than or equal to 2.*on_off_ratio = 0.5"):
        device(levels_ltp=1, on_off_ratio=0.5)
    with pytest.raises(SpecError, match="nonlinearity_ltd = 12"):
        device(nonlinearity_ltd=12)
    with pytest.raises(InputError, match=r"nonlinearity label 10 is not allowed"):
        normalized_a(10)


def _tile(dev, mapping="offset", w=None):
    spec = ck.HardwareSpec.preset("ideal").replace(**{"array.signed_mapping": mapping})
    layer = ck.convert(nn.Linear(6, 4), spec, seed=0)
    layer.weight_range = "fixed"
    layer.tile.w_scale.fill_(1.0)
    with torch.no_grad():
        layer.weight.copy_(torch.zeros(4, 6) if w is None else w)
    layer._program(next_sample=False)
    layer.tile.update_model = dev
    return layer.tile


@pytest.mark.parametrize("mapping", ["offset", "differential"])
def test_a_linear_noiseless_device_takes_the_ideal_sgd_step(mapping):
    """On the pulse grid (one pulse = 2 / levels of weight on offset cells, 1 / levels per cell of a pair) the
    device's step is the ideal one."""
    levels = 50
    w0 = (torch.randint(-10, 11, (4, 6), generator=torch.Generator().manual_seed(1)) * (2 / levels)).float()
    ideal, pulsed = _tile("ideal", mapping, w0), _tile(device(levels_ltp=levels, levels_ltd=levels), mapping, w0)
    step = 2 / levels if mapping == "offset" else 1 / levels
    dw = (torch.randint(-6, 7, (4, 6), generator=torch.Generator().manual_seed(2)) * step).float()
    ideal.apply_delta(dw)
    counts = pulsed.apply_delta(dw)
    assert torch.allclose(pulsed.get_weights()[0], ideal.get_weights()[0], atol=1e-5)
    assert torch.allclose(pulsed.get_weights()[0], w0 + dw, atol=1e-5)
    assert counts.ltp_pulses + counts.ltd_pulses == pytest.approx(float((dw / step).abs().sum()), abs=1e-3)


def test_write_counts_price_pulses_and_rows():
    pulses = torch.tensor([[[[2.0, -1.0, 0.0], [0.0, 3.0, 0.0]]]])  # (cell, tile, row, col)
    g = torch.full_like(pulses, 5.0, dtype=torch.float64)
    c = count_writes(pulses, g, cells_per_array=3)
    assert (c.ltp_pulses, c.ltd_pulses, c.ltp_pulse_us, c.ltd_pulse_us) == (5.0, 1.0, 25.0, 5.0)
    assert (c.ltp_serial_pulses, c.ltd_serial_pulses, c.rows_written) == (5.0, 1.0, 2.0)  # row maxima 2 then 3
    d = device()
    assert c.energy_j(d) == pytest.approx(4.0 * 25e-6 * 1e-7 + 4.0 * 5e-6 * 1e-7)
    assert c.latency_s(d) == pytest.approx(6 * 1e-7)


def test_pulsed_updates_are_seeded_and_saved_with_the_chip():
    noisy = device(c2c_frac=0.03, nonlinearity_ltp=2.0, nonlinearity_ltd=-2.0)
    a, b = _tile(noisy), _tile(noisy)
    dw = torch.full((4, 6), 0.1)
    a.apply_delta(dw)
    b.apply_delta(dw)
    assert torch.equal(a.g_programmed, b.g_programmed)
    state = {k: v.clone() for k, v in a.state_dict().items()}
    a.apply_delta(-dw)
    b.load_state_dict(state)
    b.apply_delta(-dw)
    assert torch.equal(a.g_programmed, b.g_programmed)  # the write stream resumes where it was


@pytest.mark.parametrize("w0, dw", [(0.04, -0.12), (-0.2, 0.5), (0.3, 0.3), (0.0, -0.46)])
def test_a_differential_pair_takes_the_whole_change_across_zero(w0, dw):
    """A pair moves by the whole change, also when it crosses zero or one cell is just above G_min."""
    levels = 50
    pulsed = _tile(device(levels_ltp=levels, levels_ltd=levels), "differential", torch.full((4, 6), w0))
    ideal = _tile("ideal", "differential", torch.full((4, 6), w0))
    step = torch.full((4, 6), dw)
    pulsed.apply_delta(step)
    ideal.apply_delta(step)
    assert torch.allclose(pulsed.get_weights()[0], ideal.get_weights()[0], atol=0.5 / levels + 1e-6)
    assert torch.allclose(pulsed.get_weights()[0], torch.full((4, 6), w0 + dw), atol=0.5 / levels + 1e-6)


def test_a_rise_uses_a_negative_cell_just_above_g_min_and_then_the_positive_one():
    tile = _tile(device(levels_ltp=100, levels_ltd=100), "differential", torch.full((4, 6), 0.2))
    g = tile.g_programmed
    g[1] += 0.01 * tile.coding.top_level  # G- 1% of the window above G_min (programming or write noise)
    tile.rederive()
    before = tile.get_weights()[0].clone()
    tile.apply_delta(torch.full((4, 6), 0.3))
    assert torch.allclose(tile.get_weights()[0] - before, torch.full((4, 6), 0.3), atol=0.006)
