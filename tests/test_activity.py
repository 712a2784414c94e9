"""Input activity measured from data (estimate(..., activity_from=loader), measure_activity), and the
neurosim_compat switch: what it changes and what it leaves."""

import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import InputError
from cimkit.workload import measure_activity


@pytest.fixture(scope="module")
def spec():
    return ck.HardwareSpec.preset("rram-22nm")


def _neurosim_trace(n_batches=4, seed=0):
    """NeuroSim's traces: activations ReLU(N(0, 0.35)), each entry independent."""
    g = torch.Generator().manual_seed(seed)
    return [torch.relu(torch.randn(512, 128, generator=g) * 0.35) for _ in range(n_batches)]


@pytest.mark.parametrize("bits, neurosim", [(8, 0.182), (4, 0.143)])
def test_neurosims_trace_densities_are_measured(spec, bits, neurosim):
    """Quantized to k / 2^(b-1) (the DAC's top code at (2^b - 1) / 2^(b-1)), NeuroSim's traces have 0.182 of
    their input bits at 1 with 8-bit inputs and 0.143 with 4-bit (shared/reference/neurosim.md)."""
    model = nn.Sequential(nn.Linear(128, 16))
    s = spec.replace(**{"periphery.input_bits": bits})
    top = (2**bits - 1) / 2 ** (bits - 1)
    measured = measure_activity(model, _neurosim_trace(), s, input_range=top)
    assert measured["0"] == pytest.approx(neurosim, abs=0.003)


def test_limits_all_zero_and_all_ones(spec):
    model = nn.Sequential(nn.Linear(8, 4))
    assert measure_activity(model, [torch.zeros(4, 8)], spec, input_range=1.0)["0"] == 0.0
    top_code = torch.full((4, 8), 1.0)  # the top code of 8 unsigned bits: every bit 1
    assert measure_activity(model, [top_code], spec, input_range=1.0)["0"] == 1.0


def test_convolution_windows_count_padding_zeros(spec):
    """All-ones input to a padded 3x3 convolution: the windows at the border read padding zeros. On a 4 x 4
    map 44 of the 16 x 9 window taps fall on padding (5 at each corner, 3 at each other border position), so
    100 / 144 of the bits are 1."""
    conv = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1))
    x = torch.full((1, 1, 4, 4), 1.0)
    assert measure_activity(conv, [x], spec, input_range=1.0)["0"] == pytest.approx(100 / 144)


def test_estimate_prices_the_measured_activity(spec):
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(32, 64, generator=g), torch.zeros(32)) for _ in range(2)]
    measured = ck.estimate(model, spec, activity_from=data)
    plain = ck.estimate(ck.Workload.from_torch(model, (1, 64)), spec)
    act = measure_activity(model, data, spec)
    assert set(act) == {"0", "2"} and all(0 < a < 1 for a in act.values())
    # the column current is priced per active cell: the array line moves with the activity, op by op
    for row_m, row_p in zip(measured.layers, plain.layers):
        if row_m["name"] in act:
            ratio = row_m["energy_array_j"] / row_p["energy_array_j"]
            assert ratio == pytest.approx(act[row_m["name"]] / spec.chip.input_activity, rel=1e-9)
    # the same seed and data give the same figures
    again = ck.estimate(model, spec, activity_from=data)
    assert again.energy_j == measured.energy_j


def test_bad_input_is_named(spec):
    model = nn.Sequential(nn.Linear(8, 4))
    with pytest.raises(InputError, match="pass the torch.nn.Module"):
        ck.estimate(ck.zoo.workload("lenet"), spec, activity_from=[torch.zeros(2, 8)])
    with pytest.raises(InputError, match="input_range"):
        measure_activity(model, [torch.zeros(2, 8)], spec, input_range=-1.0)
    with pytest.raises(InputError, match="loader"):
        measure_activity(model, 3, spec)
    with pytest.raises(InputError, match="no op named"):
        ck.Workload.from_torch(model, (1, 8)).with_activity({"nope": 0.2})
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        ck.Workload.from_torch(model, (1, 8)).with_activity({"0": 1.5})
    with pytest.raises(InputError, match="neurosim_compat"):
        ck.estimate(ck.zoo.workload("lenet"), spec, neurosim_compat="yes")


def test_padded_windows_are_what_neurosim_omits(spec):
    """Off, every output position of a 'same' convolution is computed (1,024 windows on 32 x 32); NeuroSim
    computes the 900 without padding. Only the counts differ: per conversion, the same prices."""
    import importlib

    est = importlib.import_module("cimkit.cost.estimate")
    wl = ck.zoo.workload("vgg8")
    first = wl.weighted_ops[0]
    assert first.vectors == 32 * 32 and est.neurosim_windows(first) == 30 * 30
    ours = ck.estimate(wl, spec)
    compat = ck.estimate(wl, spec, neurosim_compat=True)
    assert ours.energy_j > compat.energy_j and ours.area_mm2 == compat.area_mm2
    ratio = ours.layers[0]["energy_adc_j"] / compat.layers[0]["energy_adc_j"]
    assert ratio == pytest.approx(1024 / 900, rel=1e-9)
    many = ck.estimate_many(wl, [spec], neurosim_compat=True)
    assert many.energy_j[0] == pytest.approx(compat.energy_j, rel=1e-12)


def test_supply_follows_the_node_unless_given(spec):
    """technology.supply_v null: the node's nominal LP supply (0.85 V at 22 nm, 1.0 V at 45 nm); given, it
    is used as written."""
    from cimkit.cost.tech import nominal_supply_v

    assert spec.technology.supply_v is None
    assert float(nominal_supply_v(22)) == 0.85 and float(nominal_supply_v(45)) == 1.0
    wl = ck.zoo.workload("lenet")
    at45 = ck.estimate(wl, spec.replace(**{"technology.node_nm": 45}))
    pinned = ck.estimate(wl, spec.replace(**{"technology.node_nm": 45, "technology.supply_v": 1.0}))
    assert at45.energy_j == pytest.approx(pinned.energy_j, rel=1e-12)
    low = ck.estimate(wl, spec.replace(**{"technology.node_nm": 45, "technology.supply_v": 0.8}))
    assert low.energy_j < at45.energy_j


def test_cli_estimate_counts_as_neurosim_on_request(tmp_path):
    import json

    from typer.testing import CliRunner

    from cimkit.cli import app

    out = {}
    for flag in ([], ["--neurosim-compat"]):
        path = tmp_path / f"r{len(flag)}.json"
        result = CliRunner().invoke(app, ["estimate", "vgg8", "--json", str(path), *flag])
        assert result.exit_code == 0, result.output
        out[bool(flag)] = json.loads(path.read_text())["energy_j"]
    assert out[False] > out[True]


def test_a_loader_is_read_once_and_numpy_batches_work(spec):
    """A one-shot generator gives every batch to the measurement (the trace takes the first one's shape);
    numpy float64 batches run through a float32 model."""
    import numpy as np

    model = nn.Sequential(nn.Linear(16, 4))
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(8, 16)) for _ in range(3)]
    listed = ck.estimate(model, spec, activity_from=[torch.from_numpy(a).float() for a in arrays])
    once = ck.estimate(model, spec, activity_from=(a for a in arrays))
    assert once.energy_j == pytest.approx(listed.energy_j, rel=1e-12)


def test_other_padding_modes_and_unbatched_inputs(spec):
    conv = nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")
    x = torch.full((1, 1, 4, 4), 1.0)
    assert measure_activity(nn.Sequential(conv), [x], spec, input_range=1.0)["0"] == 1.0  # reflected ones
    line = nn.Sequential(nn.Conv1d(2, 2, 3, padding=1))
    assert measure_activity(line, [torch.full((1, 2, 5), 1.0)], spec, input_range=1.0)["0"] == pytest.approx(
        26 / 30
    )  # 5 windows x 3 taps x 2 channels, 2 taps on padding x 2 channels
    with pytest.raises(InputError, match="a number per layer"):
        measure_activity(line, [torch.zeros(1, 2, 5)], spec, input_range={"0": {"0": 1.0}})


def test_neurosim_windows_of_1d_and_strided_convolutions():
    import importlib

    est = importlib.import_module("cimkit.cost.estimate")
    wl1 = ck.Workload.from_torch(nn.Sequential(nn.Conv1d(4, 4, 5, stride=2, padding=2)), (1, 4, 100))
    op = wl1.weighted_ops[0]
    assert op.vectors == 50 and est.neurosim_windows(op) == (100 - 5) // 2 + 1  # 48 unpadded windows
    wl2 = ck.Workload.from_torch(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1)), (1, 1, 9, 9))
    op = wl2.weighted_ops[0]
    assert op.vectors == 25 and est.neurosim_windows(op) == 16


def test_sharing_converters_never_slows_the_clock_below_one_adc_per_column(spec):
    """One converter per column needs no column multiplexer (NeuroSim builds none): its read cycle is the
    shortest, and its latency is no longer than with two columns per converter."""
    wl = ck.zoo.workload("vgg8")
    for rows in (128, 256):
        s = spec.replace(**{"array.rows": rows, "array.cols": rows})
        one, two = (ck.estimate(wl, s.replace(**{"periphery.columns_per_adc": m})) for m in (1, 2))
        assert one.clock_period_s < two.clock_period_s and one.latency_s <= two.latency_s


def test_the_measured_range_is_the_one_calibrate_sets(spec):
    """Without input_range, a layer's DAC range is what cimkit.calibrate gives the same input (the first
    layer's: later layers of the calibrated chip see the chip's own, quantized activations)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8))
    data = [torch.randn(64, 32) for _ in range(3)]
    chip = ck.convert(model, spec)
    ck.calibrate(chip, data, num_batches=3)
    from cimkit.sim.layers import CIMLayer

    ranges = {name: float(m.input_range) for name, m in chip.named_modules() if isinstance(m, CIMLayer)}
    assert set(ranges) == {"0", "2"}
    pinned = measure_activity(model, data, spec, input_range={"0": ranges["0"]})
    assert measure_activity(model, data, spec)["0"] == pinned["0"]
