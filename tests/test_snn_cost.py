"""Event-driven cost of spiking networks, as a specification.

- a weighted op whose inputs are spikes (``Op.binary_input``) is read in ONE pass of one pulse whatever the
  chip's DAC (never bit-serially through the 8-bit DAC), each spike a 1-bit row drive, moved as 1 bit;
- array reads and row drives happen only where there are spikes (``Op.activity`` = the spike density);
- neuron updates are ops of kind "neuron" priced on the digital unit from hand-countable primitives;
- ``cimkit.snn.cost.snn_workload`` measures all that from one run of an snnTorch network, so that the SNN and
  the equivalent ANN are compared on the same chip with ``cimkit.cost.estimate``.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

snn = pytest.importorskip("snntorch")

import cimkit as ck  # noqa: E402
from cimkit.cost.estimate import energy_by_event, estimate_many  # noqa: E402
from cimkit.errors import InputError  # noqa: E402
from cimkit.snn.cost import SpikeActivity, snn_activity_report, snn_workload  # noqa: E402
from cimkit.workload import Op, Workload  # noqa: E402
from cimkit.workload.registry import NEURON_EVENTS, kind_info  # noqa: E402

T, B = 25, 8
BIT_SERIAL = ("rram-22nm", "sram")  # 8-bit bit-serial inputs (NeuroSim-like and SRAM presets)


def events(workload: Workload, spec: str) -> dict:
    return estimate_many(workload, [spec]).raw["events"]


def linear(binary: bool, activity: float | None = 0.2, vectors: int = T) -> Op:
    return Op(
        "fc",
        "linear",
        784,
        500,
        vectors=vectors,
        macs=vectors * 784 * 500,
        in_shape=(vectors, 784),
        out_shape=(vectors, 500),
        activity=activity,
        binary_input=binary,
    )


def one(op: Op) -> Workload:
    return Workload("w", (784,), [op])


# ---- 1. binary inputs in the cost model ----------------------------------------------------------------
@pytest.mark.parametrize("spec", BIT_SERIAL)
def test_spikes_are_read_in_one_pass_not_through_the_8_bit_dac(spec):
    bits = ck.HardwareSpec.preset(spec).periphery.input_bits
    assert bits == 8
    plain, spikes = events(one(linear(False)), spec), events(one(linear(True)), spec)
    for event in ("conversions", "serial_reads", "adc_slots", "array_reads", "cell_reads", "input_passes"):
        assert spikes[event][0, 0] * bits == pytest.approx(plain[event][0, 0], rel=1e-12), event
    assert spikes["input_passes"][0, 0] == 1
    # one 1-bit drive per spike, priced as its own event
    assert spikes["row_drives"][0, 0] == 0 and plain["binary_row_drives"].sum() == 0
    assert spikes["binary_row_drives"][0, 0] * bits == pytest.approx(plain["row_drives"][0, 0], rel=1e-12)
    # the input map and the unrolled vectors move as 1 bit per element instead of 8; the output at activation bits
    spec_obj = ck.HardwareSpec.preset(spec)
    out_bits = 25 * 500 * spec_obj.chip.activation_bits
    assert spikes["moved_bits"][0, 0] == 2 * 25 * 784 * 1 + out_bits
    assert plain["moved_bits"][0, 0] == 2 * 25 * 784 * bits + out_bits
    # no shift-add over input bits: the accumulation per conversion is cheaper, and its time per read shorter
    e_plain, e_spk = energy_by_event(one(linear(False)), spec), energy_by_event(one(linear(True)), spec)
    assert e_spk["accumulation"]["conversions"] < e_plain["accumulation"]["conversions"] / bits
    assert e_spk["adc"]["conversions"] * bits == pytest.approx(e_plain["adc"]["conversions"], rel=1e-12)


def test_spikes_on_a_multi_level_dac_are_one_bit_drives_only_where_they_are_1():
    plain, spikes = events(one(linear(False)), "pcm"), events(one(linear(True)), "pcm")
    assert spikes["conversions"][0, 0] == plain["conversions"][0, 0]  # one pass either way
    # a multi-level drive is applied to every row; a spike drives only the rows that are 1 (activity 0.2)
    assert spikes["binary_row_drives"][0, 0] == pytest.approx(0.2 * plain["row_drives"][0, 0], rel=1e-12)
    drivers_plain = energy_by_event(one(linear(False)), "pcm")["drivers"]
    drivers_spk = energy_by_event(one(linear(True)), "pcm")["drivers"]
    per_plain = drivers_plain["row_drives"] / plain["row_drives"][0, 0]
    per_spike = drivers_spk["binary_row_drives"] / spikes["binary_row_drives"][0, 0]
    assert per_spike < per_plain  # a 1-bit DAC drive (2 levels) against an 8-bit one (256 levels)


def test_a_spike_read_is_one_pulse_for_an_integrating_converter():
    spec = ck.HardwareSpec.preset("neurram")  # pulse trains of max(input_bits, 2) pulses, integrate-and-fire ADC
    pulses = max(spec.periphery.input_bits, 2)
    plain, spikes = energy_by_event(one(linear(False)), spec), energy_by_event(one(linear(True)), spec)
    assert spikes["adc"]["conversions"] * pulses == pytest.approx(plain["adc"]["conversions"], rel=1e-12)


def test_energy_of_a_spiking_op_falls_with_its_spike_density():
    energies, cells, drives = [], [], []
    for density in (0.05, 0.1, 0.2, 0.4):
        wl = one(linear(True, density))
        split = energy_by_event(wl, "rram-22nm")
        energies.append(ck.estimate(wl, "rram-22nm").energy_j)
        cells.append(split["array"]["cell_reads"] / density)
        drives.append(split["drivers"]["binary_row_drives"] / density)
    assert energies == sorted(energies) and energies[0] < energies[-1]
    assert np.allclose(cells, cells[0], rtol=1e-12) and np.allclose(drives, drives[0], rtol=1e-12)
    assert events(one(linear(True, 0.0)), "rram-22nm")["cell_reads"][0, 0] == 0


def test_an_op_without_the_flag_prices_exactly_as_before():
    # figures of the zoo networks recorded with the cost model before binary inputs existed
    recorded = {
        ("lenet", "neurram"): (9.189211023167875e-07, 0.00013428167430366898, 63.93111201406772),
        ("lenet", "pcm"): (6.211841777375657e-08, 6.669618471241839e-06, 4.932794529898083),
        ("lenet", "rram-22nm"): (2.1604040433760452e-07, 2.198905084802211e-05, 10.138549383075839),
        ("lenet", "sram"): (4.913167700449549e-07, 3.0423314345600006e-05, 4.623289574309808),
        ("vgg8", "pcm"): (9.819248368164624e-06, 0.00038073571839508446, 28.071998927531606),
        ("vgg8", "rram-22nm"): (7.504624947368123e-05, 0.0016697264591811986, 58.648256298455046),
        ("vgg8", "sram"): (0.0003136130378056995, 0.0013899682548560001, 282.3398340035271),
    }
    for (name, spec), (energy, latency, area) in recorded.items():
        r = ck.estimate(ck.zoo.workload(name), spec)
        assert (r.energy_j, r.latency_s, r.area_mm2) == pytest.approx((energy, latency, area), rel=1e-12), (name, spec)
        assert "binary_row_drives" not in energy_by_event(ck.zoo.workload(name), spec)["drivers"]
    # an unflagged op counts the same events beside a spiking one as alone
    plain = linear(False)
    alone = events(one(plain), "rram-22nm")
    mixed = events(Workload("m", (784,), [plain, dataclasses.replace(linear(True), name="spk")]), "rram-22nm")
    for event in ("conversions", "cell_reads", "row_drives", "serial_reads", "array_reads", "moved_bits"):
        assert mixed[event][0, 0] == alone[event][0, 0], event


def test_binary_input_must_be_a_bool():
    with pytest.raises(InputError, match="binary_input = 'yes'"):
        ck.estimate(one(linear("yes")), "rram-22nm")


# ---- 2. neuron updates ---------------------------------------------------------------------------------
def hand_count(fn: str, N: float, S: float) -> dict[str, float]:
    """The primitives of N neuron updates with S spikes, counted by hand from each neuron's equations."""
    if fn == "fang":
        # m, k filters (2 mul 2 add), v0 (m - k) (1 add 1 mul), V = psp - r (1 add), compare, r decay (1 mul),
        # r + inhibition per spike (1 add)
        return {"mul": 4 * N, "add": 4 * N + S, "cmp": N}
    base, reset, *adaptive = fn.split("_")
    mul, add, cmp = N, N, N  # leak, integrate, threshold
    add += S if reset == "subtract" else 0
    if adaptive:  # threshold excess: decay (mul), theta0 + excess (add) per step; + adaptation per spike
        mul, add = mul + N, add + N + S
    if base == "synaptic":  # syn <- alpha syn + I
        mul, add = mul + N, add + N
    return {"mul": mul, "add": add, "cmp": cmp}


FNS = [f"{b}_{r}{a}" for b in ("lif", "synaptic") for r in ("subtract", "zero", "none") for a in ("", "_adaptive")]


@pytest.mark.parametrize("fn", [*FNS, "fang"])
def test_neuron_op_events_equal_the_hand_count(fn):
    N, rate = 12_500, 0.08
    op = Op("n", "neuron", in_shape=(25, 500), out_shape=(25, 500), elements=N, fn=fn, activity=rate)
    assert kind_info("neuron").default_unit == "digital" and fn in NEURON_EVENTS
    got = kind_info("neuron").events(op)
    want = {k: v for k, v in hand_count(fn, N, rate * N).items() if v}
    assert got == pytest.approx(want, rel=1e-12)
    # and the cost model counts exactly those on the digital unit
    ev = events(Workload("n", (784,), [linear(True), op]), "rram-22nm")
    for prim, n in want.items():
        assert ev[f"digital_{prim}"][0, 1] == pytest.approx(n, rel=1e-12)
    assert ev["digital_cycles"][0, 1] == pytest.approx(sum(want.values()), rel=1e-12)


def test_a_neuron_op_without_a_rate_counts_a_spike_per_update_and_unknown_fns_fail():
    op = Op("n", "neuron", elements=100, fn="lif_subtract")
    assert kind_info("neuron").events(op) == {"mul": 100.0, "add": 200.0, "cmp": 100.0}
    with pytest.raises(InputError, match="izhikevich"):
        ck.estimate(Workload("w", (784,), [linear(True), dataclasses.replace(op, fn="izhikevich")]), "rram-22nm")


# ---- 3. measuring an snnTorch network ------------------------------------------------------------------
class Net(nn.Module):
    """784-500-10 with snnTorch leaky neurons, called once per time step."""

    def __init__(self, reset: str = "subtract") -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 500), nn.Linear(500, 10)
        self.lif1 = snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism=reset)
        self.lif2 = snn.Leaky(beta=0.9, init_hidden=True, output=True, reset_mechanism=reset)

    def forward(self, x):
        return self.lif2(self.fc2(self.lif1(self.fc1(x))))


@pytest.fixture(scope="module")
def net():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Net()
    with torch.no_grad():  # a scale at which the hidden layer fires about a quarter of its updates
        model.fc1.weight.mul_(4.0)
    return model.eval()


def rate_coded(scale: float = 1.0, steps: int = T, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixel intensities [B, 784], their rate code [T, B, 784]) from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(B, 784, generator=g) * 0.6 * scale
    return pixels, torch.bernoulli(pixels.expand(steps, B, 784).contiguous(), generator=g)


def hidden_spikes(model: Net, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's spikes per step, computed independently of cimkit."""
    model.lif1.reset_mem()
    model.lif2.reset_mem()
    s1, s2 = [], []
    with torch.no_grad():
        for t in range(x.shape[0]):
            a = model.lif1(model.fc1(x[t]))
            b, _ = model.lif2(model.fc2(a))
            s1.append(a)
            s2.append(b)
    return torch.stack(s1), torch.stack(s2)


def test_the_snn_workload_has_binary_ops_at_the_measured_spike_density(net):
    _, x = rate_coded()
    rep = snn_activity_report(net, x, name="snn")
    wl = rep.workload
    assert isinstance(rep, SpikeActivity) and (rep.steps, rep.batch) == (T, B)
    assert [(op.name, op.kind) for op in wl.ops] == [
        ("fc1", "linear"),
        ("lif1", "neuron"),
        ("fc2", "linear"),
        ("lif2", "neuron"),
    ]
    s1, s2 = hidden_spikes(net, x)
    fc1, lif1, fc2, lif2 = wl.ops
    assert fc1.binary_input and fc2.binary_input
    assert fc1.activity == pytest.approx(float(x.double().sum()) / x.numel(), rel=1e-12)
    assert fc2.activity == pytest.approx(float(s1.double().sum()) / s1.numel(), rel=1e-12)
    assert 0 < fc2.activity < 0.5
    assert (fc1.vectors, fc1.macs, fc1.in_shape) == (T, T * 784 * 500, (T, 784))
    assert (fc2.vectors, fc2.macs) == (T, T * 500 * 10)
    assert (lif1.elements, lif1.fn, lif2.elements) == (500 * T, "lif_subtract", 10 * T)
    assert lif1.activity == pytest.approx(fc2.activity, rel=1e-12)
    assert lif2.activity == pytest.approx(float(s2.double().sum()) / s2.numel(), rel=1e-12)
    # spike counts per layer and time step
    assert np.allclose(rep.layers["fc1"].density, [float(x[t].double().mean()) for t in range(T)], rtol=1e-12)
    assert np.allclose(rep.spike_counts()["lif1"], [float(s1[t].sum()) / B for t in range(T)], rtol=1e-12)
    assert wl.weight_counts == {
        "total": 784 * 500 + 500 + 5010,
        "mapped": 784 * 500 + 5000,
        "digital": 510,
        "unmapped": 0,
        "unused": 0,
    }
    print(rep)
    print(wl)


def test_the_workload_prices_reads_in_proportion_to_the_spike_density(net):
    spec = "rram-22nm"
    full = snn_workload(net, rate_coded(1.0)[1])
    half = snn_workload(net, rate_coded(0.5)[1])
    a, b = full.ops[0].activity, half.ops[0].activity
    assert b / a == pytest.approx(0.5, rel=0.05)
    rows = {r: {row["name"]: row for row in ck.estimate(w, spec).layers} for r, w in (("full", full), ("half", half))}
    cells = rows["half"]["fc1"]["energy_array_j"] / rows["full"]["fc1"]["energy_array_j"]
    assert cells == pytest.approx(b / a, rel=1e-9)  # cell reads only where there are spikes
    ev_full, ev_half = events(full, spec), events(half, spec)
    assert ev_half["binary_row_drives"][0, 0] / ev_full["binary_row_drives"][0, 0] == pytest.approx(b / a, rel=1e-9)
    assert ev_half["conversions"][0, 0] == ev_full["conversions"][0, 0]  # one conversion per vector and step


def test_snn_and_ann_on_the_same_chip_differ_where_they_should(net):
    spec = ck.HardwareSpec.preset("rram-22nm")
    pixels, x = rate_coded()
    snn_wl = snn_workload(net, x, name="snn")
    ann = nn.Sequential(net.fc1, nn.ReLU(), net.fc2).eval()
    ann_wl = Workload.from_torch(ann, (1, 784), name="ann")
    ann_wl = ann_wl.with_activity(ck.workload.measure_activity(ann, [pixels], spec))
    r_snn, r_ann = ck.estimate(snn_wl, spec), ck.estimate(ann_wl, spec)
    ev_snn, ev_ann = events(snn_wl, spec), events(ann_wl, spec)
    split_snn, split_ann = energy_by_event(snn_wl, spec), energy_by_event(ann_wl, spec)

    print(f"\n{'component':14} {'SNN (J/inference)':>18} {'ANN (J/inference)':>18}")
    for comp in r_snn.energy_breakdown_j:
        if r_snn.energy_breakdown_j[comp] or r_ann.energy_breakdown_j[comp]:
            print(f"{comp:14} {r_snn.energy_breakdown_j[comp]:18.4e} {r_ann.energy_breakdown_j[comp]:18.4e}")
    print(f"{'total':14} {r_snn.energy_j:18.4e} {r_ann.energy_j:18.4e}")
    print(f"{'latency (s)':14} {r_snn.latency_s:18.4e} {r_ann.latency_s:18.4e}")

    # the same chip: the same weights on the same arrays
    assert r_snn.area_mm2 == pytest.approx(r_ann.area_mm2, rel=1e-12) and r_snn.arrays == r_ann.arrays
    # T one-bit passes against one 8-bit bit-serial pass per layer: T / 8 the conversions
    bits = spec.periphery.input_bits
    for i_snn, i_ann in ((0, 0), (2, 2)):
        assert ev_snn["conversions"][0, i_snn] == pytest.approx(ev_ann["conversions"][0, i_ann] * T / bits, rel=1e-12)
    assert r_snn.ops == pytest.approx(T * r_ann.ops, rel=1e-12)  # dense MACs of every step
    # spikes drive rows as 1-bit drives; the ANN's 8-bit codes through the DAC
    assert split_snn["drivers"]["row_drives"] == 0 < split_snn["drivers"]["binary_row_drives"]
    assert split_ann["drivers"]["row_drives"] > 0 and "binary_row_drives" not in split_ann["drivers"]
    # neuron updates (leak multiplies, integrate / reset adds, threshold compares) against ReLU's compares
    assert split_snn["digital"]["digital_mul"] > 0 and split_ann["digital"]["digital_mul"] == 0
    assert split_ann["digital"]["digital_cmp"] > 0
    assert {r["kind"] for r in r_snn.layers} == {"linear", "neuron"}
    assert {r["kind"] for r in r_ann.layers} == {"linear", "act"}


def test_zero_input_reads_no_cells_but_updates_every_neuron(net):
    wl = snn_workload(net, torch.zeros(T, B, 784))
    ev = events(wl, "rram-22nm")
    assert [op.activity for op in wl.ops] == [0.0, 0.0, 0.0, 0.0]
    assert ev["cell_reads"][0].sum() == 0 and ev["binary_row_drives"][0].sum() == 0
    assert ev["digital_mul"][0, 1] == 500 * T and ev["digital_cmp"][0, 3] == 10 * T
    assert ck.estimate(wl, "rram-22nm").energy_breakdown_j["digital"] > 0


def test_reset_and_neuron_kinds_name_their_update(net):
    from cimkit.snn import LIF, FangNeuron, Synaptic

    zero = Net("zero")
    zero.load_state_dict(net.state_dict())
    assert snn_workload(zero, rate_coded(steps=3)[1]).ops[1].fn == "lif_zero"

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.n1 = nn.Linear(784, 20), Synaptic(0.8, 0.9, reset="zero")
            self.fc2, self.n2 = nn.Linear(20, 20), LIF(0.9, adaptation=0.1)
            self.fc3, self.n3 = nn.Linear(20, 10), FangNeuron()

        def forward(self, x):
            return self.n3(self.fc3(self.n2(self.fc2(self.n1(self.fc1(x))[0]))[0]))

    ops = snn_workload(Mixed(), rate_coded(steps=4)[1]).ops
    assert [op.fn for op in ops if op.kind == "neuron"] == ["synaptic_zero", "lif_subtract_adaptive", "fang"]


def test_a_model_looping_over_time_itself_gives_the_same_workload(net):
    _, x = rate_coded(steps=10)

    class Looping(nn.Module):  # snnTorch's tutorial style: forward takes [T, B, ...] and loops
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, xs):
            return [self.inner(xs[t]) for t in range(xs.shape[0])]

    per_step = snn_workload(net, x)
    looped = snn_workload(Looping(net), x, run=lambda model, xs: model(xs))
    assert [(o.name.split(".")[-1], o.vectors, o.elements, o.activity) for o in looped.ops] == [
        (o.name, o.vectors, o.elements, o.activity) for o in per_step.ops
    ]


def test_layers_run_a_different_number_of_times_are_priced_for_their_calls(net):
    class Readout(nn.Module):  # a readout applied once to the summed spikes after the loop
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1, self.readout = net.fc1, snn.Leaky(beta=0.9, init_hidden=True), nn.Linear(500, 10)
            self.never = nn.Linear(3, 3)

        def forward(self, xs):
            total = sum(self.lif1(self.fc1(xs[t])) for t in range(xs.shape[0]))
            return self.readout(total)

    with pytest.warns(UserWarning, match="never"):
        wl = snn_workload(Readout(), rate_coded(steps=6)[1], run=lambda model, xs: model(xs))
    ops = {op.name: op for op in wl.ops}
    assert "never" not in ops and wl.weight_counts["unused"] == 12
    assert (ops["fc1"].vectors, ops["lif1"].elements, ops["readout"].vectors) == (6, 500 * 6, 1)
    assert not ops["readout"].binary_input and ops["readout"].activity is None  # spike counts, not spikes
    ck.estimate(wl, "rram-22nm")


def test_non_binary_inputs_get_the_dac_bit_activity_with_a_spec(net):
    currents = torch.rand(5, B, 784, generator=torch.Generator().manual_seed(3))
    plain = snn_workload(net, currents)
    measured = snn_workload(net, currents, spec="rram-22nm")
    assert not plain.ops[0].binary_input and plain.ops[0].activity is None
    assert 0 < measured.ops[0].activity < 1 and measured.ops[2].binary_input


def test_conv_padding_counts_as_zeros_read():
    conv = nn.Conv2d(2, 4, 3, padding=1)

    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.lif = conv, snn.Leaky(beta=0.5, init_hidden=True)

        def forward(self, x):
            return self.lif(self.conv(x))

    x = torch.ones(3, 2, 2, 6, 6)
    op = snn_workload(ConvNet(), x).ops[0]
    assert op.binary_input and (op.vectors, op.in_shape) == (3 * 36, (3, 2, 6, 6))
    windows = F.unfold(x[0], 3, padding=1).double()  # the vectors the arrays read, padding zeros included
    assert op.activity == pytest.approx(float(windows.mean()), rel=1e-12) and op.activity < 1


def test_crossbar_layers_of_a_converted_model_are_measured(net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chip = ck.convert(net, "rram-22nm")
        wl = snn_workload(chip, rate_coded(steps=3)[1])
    assert [(o.name, o.kind, o.binary_input) for o in wl.ops if o.weighted] == [
        ("fc1", "linear", True),
        ("fc2", "linear", True),
    ]
    assert wl.ops[0].macs == 3 * 784 * 500


# ---- 4. bad inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "inputs, match",
    [
        ([[0.0, 1.0]], r"inputs = \[\[0.0, 1.0\]\] is a list"),
        (torch.zeros(784), r"shape \(784,\) are not time-major"),
        (torch.zeros(0, 2, 784), r"shape \(0, 2, 784\) have T = 0"),
        (torch.zeros(3, 0, 784), r"B = 0"),
        (torch.zeros(3, 2, 784, dtype=torch.int64), r"dtype torch.int64"),
        (torch.full((3, 2, 784), float("nan")), "NaN"),
        (torch.zeros(2, 784, 3), r"failed on inputs\[0\]"),  # batch-major or transposed: the model refuses a step
    ],
)
def test_bad_inputs_are_refused_naming_the_argument(net, inputs, match):
    with pytest.raises(InputError, match=match):
        snn_workload(net, inputs)


def test_bad_models_and_options_are_refused(net):
    with pytest.raises(InputError, match="model = Sequential has no nn.Linear"):
        snn_workload(nn.Sequential(snn.Leaky(beta=0.9, init_hidden=True)), torch.zeros(2, 1, 4))
    with pytest.raises(InputError, match="model = .* is a str"):
        snn_workload("net", torch.zeros(2, 1, 784))
    with pytest.raises(InputError, match="run = 3 is not callable"):
        snn_workload(net, torch.zeros(2, 1, 784), run=3)


def test_the_activity_saves_as_json_with_the_measured_rates(net, tmp_path):
    import json

    _, x = rate_coded()
    rep = snn_activity_report(net, x, name="snn")
    data = json.loads(rep.to_json(tmp_path / "activity.json"))
    assert data == json.loads((tmp_path / "activity.json").read_text())
    assert (data["result"], data["workload"], data["steps"], data["batch"]) == ("SpikeActivity", "snn", T, B)
    assert list(data["layers"]) == list(rep.layers)
    for name, layer in rep.layers.items():
        assert data["layers"][name]["rate"] == pytest.approx(layer.rate, rel=1e-15)
        assert data["layers"][name]["counts"] == layer.counts.tolist() and len(data["layers"][name]["density"]) == T
