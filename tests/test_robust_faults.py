"""Fault injection through the stage hooks, fault campaigns and drift studies (cimkit.robust.faults)."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import InputError
from cimkit.robust import Faults, confidence_band, drift_study, fault_campaign, flip_bits
from cimkit.robust.faults import fault_setting

from .helpers import quiet_convert, spec_with, trained_on_digits


@pytest.fixture(scope="module")
def trained():
    """A small MLP trained on sklearn's digits (about 95% test accuracy), and its data."""
    torch.manual_seed(0)
    return trained_on_digits(nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10)), 150)


def test_flip_bits_rate_zero_is_identity_and_rate_one_flips_every_bit():
    g = torch.Generator().manual_seed(0)
    codes = torch.tensor([-16.0, -3.0, 0.0, 5.0, 15.0])
    assert torch.equal(flip_bits(codes, 5, 0.0, g, (-16, 15)), codes)
    # all five bits flipped: two's complement x -> -x - 1
    assert flip_bits(codes, 5, 1.0, g, (-16, 15)).tolist() == [15.0, 2.0, -1.0, -6.0, -16.0]
    assert flip_bits(torch.tensor([0.0, 255.0]), 8, 1.0, g, (0, 255)).tolist() == [255.0, 0.0]


@pytest.mark.parametrize("rate", [0.003, 0.05])
def test_flip_bits_flips_each_bit_with_the_given_probability(rate):
    """Both the sparse (few flips) and the dense draw: the fraction of flipped bits within 4 sigma of the rate."""
    g = torch.Generator().manual_seed(1)
    out = flip_bits(torch.zeros(50_000), 8, rate, g, (0, 255)).long()
    n = out.numel() * 8
    flipped = sum(int(((out >> b) & 1).sum()) for b in range(8))
    assert abs(flipped / n - rate) < 4 * np.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize(
    "kind", ["dead_column", "dead_array", "adc_bit_flip", "buffer_bit_flip", "stuck_on", "stuck_off"]
)
def test_a_fault_rate_of_zero_changes_nothing(trained, kind):
    model, d = trained
    x, y = d.x_test[:120], d.y_test[:120]
    spec, setup = fault_setting(ck.HardwareSpec.preset("rram-22nm"), kind, 0.0)
    plain = ck.simulate(model, "rram-22nm", x, y, chips=2, calibration=d.x_train[:200], batch_size=50)
    faulty = ck.simulate(model, spec, x, y, chips=2, calibration=d.x_train[:200], batch_size=50, setup=setup)
    assert faulty.predictions == plain.predictions


def test_a_stuck_off_rate_of_one_zeroes_the_layer():
    """Every cell at g_min = 0: every column current is zero (both mappings); with a differential mapping the
    layer's output is its bias alone."""
    lin = nn.Linear(20, 6)
    x = torch.randn(5, 20)
    for mapping in ("offset", "differential"):
        spec = spec_with(
            "ideal", **{"device.stuck_off_rate": 1.0, "device.g_min_us": 0.0, "array.signed_mapping": mapping}
        )
        layer = quiet_convert(nn.Sequential(lin), spec, seed=0)[0]
        seen = []
        layer.register_stage_hook("read", lambda tile, v, info: seen.append(v.clone()))
        out = layer(x)
        assert seen and all(float(v.abs().max()) == 0 for v in seen)
        if mapping == "differential":
            assert torch.allclose(out, lin.bias.detach().expand_as(out))


def test_dead_columns_and_arrays_of_rate_one_silence_the_layer():
    lin = nn.Linear(40, 12)
    x = torch.randn(4, 40)
    for faults in (Faults(dead_column_rate=1.0), Faults(dead_array_rate=1.0)):
        layer = quiet_convert(
            nn.Sequential(lin), spec_with("rram-22nm", **{"array.signed_mapping": "differential"}), seed=0
        )
        faults.apply(layer)
        assert torch.allclose(layer(x), lin.bias.detach().expand(4, -1))


def test_dead_columns_hit_the_drawn_fraction_and_are_fixed_per_chip():
    lin = nn.Linear(256, 64)
    layer = quiet_convert(nn.Sequential(lin), ck.HardwareSpec.preset("rram-22nm"), seed=0)
    Faults(dead_column_rate=0.25).apply(layer, seed=3)
    lf = layer._cimkit_faults[0]
    dead = 1 - lf.alive.mean().item()
    assert abs(dead - 0.25) < 0.05
    again = quiet_convert(nn.Sequential(lin), ck.HardwareSpec.preset("rram-22nm"), seed=0)
    Faults(dead_column_rate=0.25).apply(again, seed=3)
    assert torch.equal(again._cimkit_faults[0].alive, lf.alive)


def test_transient_flips_give_the_same_predictions_serial_and_sharded(trained):
    model, d = trained
    x, y = d.x_test[:160], d.y_test[:160]
    setup = Faults(adc_bit_flip_rate=0.01, buffer_bit_flip_rate=0.005)
    kw = dict(chips=2, calibration=d.x_train[:200], batch_size=40, setup=setup)
    one = ck.simulate(model, "rram-22nm", x, y, **kw)
    sharded = ck.simulate(model, "rram-22nm", x, y, shards=3, **kw)
    again = ck.simulate(model, "rram-22nm", x, y, **kw)
    assert one.predictions == sharded.predictions == again.predictions
    clean = ck.simulate(model, "rram-22nm", x, y, chips=2, calibration=d.x_train[:200], batch_size=40)
    assert one.predictions != clean.predictions  # the flips do something


def test_fault_campaign_degrades_with_rate_and_bands_hold_the_mean(trained, tmp_path):
    model, d = trained
    x, y = d.x_test[:150], d.y_test[:150]
    r = fault_campaign(
        model,
        "rram-22nm",
        x,
        y,
        kind="dead_column",
        rates=[0.0, 0.1, 0.5],
        chips=3,
        calibration=d.x_train[:200],
        checkpoint_dir=tmp_path,
    )
    c = r.curves[0]
    assert c.mean[0] > c.mean[1] > c.mean[2]
    assert all(lo <= m <= hi for lo, m, hi in zip(c.low, c.mean, c.high))
    assert len(list(tmp_path.glob("faults_dead_column_*.json"))) == 3
    again = fault_campaign(
        model,
        "rram-22nm",
        x,
        y,
        kind="dead_column",
        rates=[0.0, 0.1, 0.5],
        chips=3,
        calibration=d.x_train[:200],
        checkpoint_dir=tmp_path,
    )
    assert again.curves[0].accuracies == c.accuracies
    data = json.loads(r.to_json())
    assert data["result"] == "CurveResult" and data["curves"][0]["x"] == [0.0, 0.1, 0.5]
    assert [p.name for p in r.figures(tmp_path / "fig")] == ["faults_accuracy.png"]


def test_confidence_band_is_the_student_t_interval_clipped_to_0_1():
    mean, std, lo, hi = confidence_band([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)
    assert hi - mean == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-5)
    assert confidence_band([0.9, 1.0])[3] == 1.0
    assert confidence_band([0.8]) == (0.8, 0.0, 0.8, 0.8)


def test_drift_compensation_restores_the_mean_output_scale():
    """pcm read a year after programming: without compensation the outputs shrink with the conductances; the
    global compensation scales them back to within a few percent of the time-zero scale."""
    torch.manual_seed(0)
    lin = nn.Linear(128, 32, bias=False)
    x = torch.rand(64, 128)
    scale = {}
    for comp in ("none", "global"):
        spec = spec_with(
            "pcm",
            **{
                "periphery.drift_compensation": comp,
                "device.read_noise_frac": 0.0,
                "device.programming_noise_frac": 0.0,
            },
        )
        chip = quiet_convert(nn.Sequential(lin), spec, seed=0)
        ck.calibrate(chip, [x])
        t0 = chip(x).abs().mean().item()
        ck.set_time(chip, 3.156e7)
        scale[comp] = chip(x).abs().mean().item() / t0
    assert scale["none"] < 0.8
    assert scale["global"] == pytest.approx(1.0, abs=0.05)


def test_drift_study_curves(trained):
    model, d = trained
    r = drift_study(
        model, "pcm", d.x_test[:150], d.y_test[:150], times_s=[1, 3.156e7], chips=2, calibration=d.x_train[:200]
    )
    none, glob = r.curves
    assert none.mean[-1] < none.mean[0]
    assert glob.mean[-1] > none.mean[-1]
    assert r.to_dict()["x_name"] == "t_inference_s"


def test_bad_fault_input_is_refused_with_its_name():
    with pytest.raises(
        InputError, match=r"dead_column_rate = 1.5 is not allowed; dead_column_rate must be a finite number in \[0, 1\]"
    ):
        Faults(dead_column_rate=1.5)
    with pytest.raises(InputError, match="t_inference_s = 0 is not allowed; t_inference_s must be a finite number > 0"):
        Faults(t_inference_s=0)
    with pytest.raises(InputError, match="fault kinds: stuck_on"):
        fault_setting(ck.HardwareSpec.preset("rram-22nm"), "melted", 0.1)
    with pytest.raises(InputError, match="stuck_on faults are a property of the device"):
        fault_setting(ck.HardwareSpec.preset("rram-22nm"), "stuck_on", 0.1, layers=["0"])
    with pytest.raises(InputError, match="not crossbar layers"):
        chip = quiet_convert(nn.Sequential(nn.Linear(4, 2)), ck.HardwareSpec.preset("rram-22nm"), seed=0)
        Faults(dead_column_rate=0.1, layers=("fc9",)).apply(chip)
    with pytest.raises(InputError, match="convert it first"):
        Faults(dead_column_rate=0.1).apply(nn.Linear(4, 2))
    with pytest.raises(InputError, match="has no drift"):
        drift_study(nn.Linear(4, 2), "ideal", torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(
        InputError,
        match=r"fault_campaign: rates\[1\] = -1 is not allowed; rates\[1\] must be a finite number in \[0, 1\]",
    ):
        fault_campaign(
            nn.Linear(4, 2),
            "rram-22nm",
            torch.zeros(2, 4),
            torch.zeros(2, dtype=torch.long),
            kind="dead_column",
            rates=[0.1, -1],
        )
    with pytest.raises(InputError, match="setup must be a cimkit.sim.evaluate.ChipSetup"):
        ck.simulate(nn.Linear(4, 2), "rram-22nm", torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), setup=object())


def test_sparse_and_dense_flip_draws_agree_around_the_switch():
    """The number of flips is binomial on both sides of SPARSE_FLIP_RATE (no bias from repeated positions)."""
    from cimkit.robust.faults import SPARSE_FLIP_RATE

    for rate in (SPARSE_FLIP_RATE * 0.995, SPARSE_FLIP_RATE * 1.005):
        out = flip_bits(torch.zeros(400_000), 8, rate, torch.Generator().manual_seed(2), (0, 255)).long()
        n = out.numel() * 8
        flipped = sum(int(((out >> b) & 1).sum()) for b in range(8))
        assert abs(flipped / n - rate) < 4 * np.sqrt(rate * (1 - rate) / n)


def test_dead_arrays_follow_the_mappings_arrays():
    """Whole outputs share an array (all their slices live or die together, even when the slices do not divide
    the columns), and groups packed into one array share its fate."""
    spec = spec_with("rram-22nm", **{"device.bits_per_cell": 3, "array.cols": 16})  # 8-bit weights: 3 slices
    layer = quiet_convert(nn.Sequential(nn.Linear(64, 40)), spec, seed=0)
    m = layer[0].tile.mapping
    assert m.slices == 3 and 16 % m.columns_per_weight
    Faults(dead_array_rate=0.5).apply(layer, seed=1)
    alive = layer._cimkit_faults[0].alive  # (G, row tiles, S, N)
    assert torch.equal(alive, alive[:, :, :1].expand_as(alive))  # slices of one output together
    per_array = alive[0, :, 0].reshape(m.row_tiles, -1)
    for a in range(0, m.out_features, m.outputs_per_array):
        block = per_array[:, a : a + m.outputs_per_array]
        assert torch.equal(block, block[:, :1].expand_as(block))
    conv = quiet_convert(nn.Sequential(nn.Conv2d(16, 16, 3, groups=16)), ck.HardwareSpec.preset("rram-22nm"), seed=0)
    mc = conv[0].tile.mapping
    assert mc.groups_per_array > 1
    Faults(dead_array_rate=0.5).apply(conv, seed=0)
    alive = conv._cimkit_faults[0].alive
    for g0 in range(0, mc.groups, mc.groups_per_array):
        pack = alive[g0 : g0 + mc.groups_per_array]
        assert torch.equal(pack, pack[:1].expand_as(pack))


def test_a_faulty_chip_pickles_and_refuses_a_second_injection():
    import io

    chip = quiet_convert(nn.Sequential(nn.Linear(8, 4)), ck.HardwareSpec.preset("rram-22nm"), seed=0)
    Faults(adc_bit_flip_rate=0.1).apply(chip)
    buf = io.BytesIO()
    torch.save(chip, buf)
    with pytest.raises(InputError, match="already has faults"):
        Faults(dead_column_rate=0.1).apply(chip)


def test_a_setups_default_description_holds_its_attributes():
    from cimkit.sim.evaluate import ChipSetup

    class Heat(ChipSetup):
        def __init__(self, kelvin):
            self.kelvin = kelvin

    assert Heat(300).describe() != Heat(400).describe()
    assert Heat(300).describe()["state"] == {"kelvin": 300}


def test_more_bad_fault_input():
    with pytest.raises(InputError, match="Faults.layers is empty"):
        Faults(dead_column_rate=0.1, layers=())
    with pytest.raises(
        InputError,
        match=r"fault_campaign: confidence = 95 is not allowed; confidence must be a finite number in \(0, 1\)",
    ):
        fault_campaign(
            nn.Linear(4, 2),
            "rram-22nm",
            torch.zeros(2, 4),
            torch.zeros(2, dtype=torch.long),
            kind="dead_column",
            rates=[0.1],
            confidence=95,
        )


@pytest.mark.slow
def test_a_campaign_on_dask_gives_the_serial_numbers(trained):
    """Transient flips and dead columns drawn per chip and batch: a local Dask cluster of two workers gives the
    serial campaign's accuracies chip for chip."""
    model, d = trained
    x, y = d.x_test[:120], d.y_test[:120]
    kw = dict(kind="adc_bit_flip", rates=[0.0, 0.01], chips=2, calibration=d.x_train[:200])
    serial = fault_campaign(model, "rram-22nm", x, y, **kw)
    dask = fault_campaign(model, "rram-22nm", x, y, executor="dask", workers=2, **kw)
    assert dask.curves[0].accuracies == serial.curves[0].accuracies
