"""The cost model: validation against DNN+NeuroSim V1.3 (shared/reference/neurosim.md), invariants of
the circuits, the vectorized path, and bad input."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import InputError, MappingError
from cimkit.workload import Op, Workload

NEUROSIM = {  # chip area mm^2, latency s, energy J incl. its 1.22 post-layout factor, TOPS/W, ops
    "vgg8": (58.73, 1.359e-3, 54.7e-6, 22.52, 1.23e9),
    "resnet18": (79.48, 12.18e-3, 238.4e-6, 23.04, 5.49e9),
}


@pytest.fixture(scope="module")
def rram():
    return ck.HardwareSpec.preset("rram-22nm")


@pytest.mark.parametrize("net", ["vgg8", "resnet18"])
def test_within_25_percent_of_neurosim(net, rram):
    """Counted as NeuroSim counts (neurosim_compat: no padded windows, its conv mapping); cimkit's own count
    computes every output position and is compared in test_padded_windows_are_what_neurosim_omits."""
    area, latency, energy, topsw, ops = NEUROSIM[net]
    r = ck.estimate(ck.zoo.workload(net), rram, ops="neurosim", neurosim_compat=True)
    assert r.ops == pytest.approx(ops, rel=0.01)  # the operation-count convention itself
    for ours, theirs in ((r.area_mm2, area), (r.latency_s, latency), (r.energy_j, energy), (r.tops_per_w, topsw)):
        assert abs(ours / theirs - 1) < 0.25, (ours, theirs)


def test_vgg8_breakdown_matches_neurosim_components(rram):
    """NeuroSim's VGG8 breakdown (um^2 and pJ). Its "ADC" holds the sense amplifiers, the column current and the
    word lines' charging (our adc, array and the word-line part of drivers), its "other" the row latches (the
    rest of drivers), buffers and interconnect: compared as sums. Accumulation is NeuroSim's shift-add
    circuit, not a calibration, and lands within 1%."""
    r = ck.estimate(ck.zoo.workload("vgg8"), rram, neurosim_compat=True)
    a, e = r.area_breakdown_mm2, r.energy_breakdown_j
    assert a["array"] == pytest.approx(1.54, rel=0.1)
    assert a["adc"] == pytest.approx(24.5, rel=0.05)
    assert a["accumulation"] == pytest.approx(5.31, rel=0.05)
    assert a["drivers"] + a["buffer"] + a["digital"] == pytest.approx(20.3, rel=0.05)
    assert a["interconnect"] == pytest.approx(7.08, rel=0.05)
    assert e["adc"] + e["array"] + e["drivers"] == pytest.approx(22.8e-6 + 5.0e-6, rel=0.05)
    assert e["accumulation"] == pytest.approx(4.86e-6, rel=0.01)
    assert e["interconnect"] == pytest.approx(10.2e-6, rel=0.05)
    assert e["buffer"] == pytest.approx(0.465e-6, rel=0.05)


def test_energy_rises_with_adc_bits_and_input_bits(rram):
    wl = ck.zoo.workload("vgg8")
    by_adc = [ck.estimate(wl, rram.replace(**{"periphery.adc_bits": b})).energy_j for b in (3, 4, 5, 6, 7, 8)]
    assert all(a < b for a, b in zip(by_adc, by_adc[1:]))
    by_input = [ck.estimate(wl, rram.replace(**{"periphery.input_bits": b})).energy_j for b in (2, 4, 6, 8)]
    assert all(a < b for a, b in zip(by_input, by_input[1:]))
    # a flash/MLSA converter doubles its comparators per bit; the column current it senses does not change
    r5, r6 = (ck.estimate(wl, rram.replace(**{"periphery.adc_bits": b})) for b in (5, 6))
    comparators = (r6.energy_breakdown_j["adc"] - r5.energy_breakdown_j["adc"]) / r5.energy_breakdown_j["adc"]
    # 1.7 fJ per comparator, 0.068 fJ per encoder gate (L + log2 L gates)
    assert comparators == pytest.approx((32 * 1.7 + 0.068 * 33) / (31 * 1.7 + 0.068 * 37), rel=1e-9)
    assert r6.energy_breakdown_j["array"] == pytest.approx(r5.energy_breakdown_j["array"], rel=1e-12)


def test_area_grows_with_arrays_and_array_size_moves_figures(rram):
    small, big = ck.zoo.workload("resnet20"), ck.zoo.workload("vgg8")
    assert ck.estimate(small, rram).area_mm2 < ck.estimate(big, rram).area_mm2
    r128 = ck.estimate(big, rram)
    r256 = ck.estimate(big, rram.replace(**{"array.rows": 256, "array.cols": 256}))
    assert r256.arrays < r128.arrays
    # fewer row tiles: fewer partial sums to convert and accumulate
    assert r256.energy_breakdown_j["adc"] < r128.energy_breakdown_j["adc"]


def test_infeasible_design_is_reported_not_priced(rram):
    r = ck.estimate(ck.zoo.workload("vgg16"), rram.replace(**{"chip.tiles": 4}))
    assert not r.feasible and "tiles" in r.reason and math.isnan(r.energy_j)


def test_estimate_many_equals_estimate_per_config(rram):
    wl = ck.zoo.workload("resnet20")
    specs = [
        rram.replace(
            **{
                "periphery.adc_bits": b,
                "array.rows": rows,
                "technology.node_nm": node,
                "technology.supply_v": v,
                "chip.tiles": tiles,
            }
        )
        for b in (4, 6)
        for rows in (64, 256)
        for node in (45, 22, 7)
        for v in (0.7, 0.9)
        for tiles in (None, 1, 50)
    ]
    many = ck.estimate_many(wl, specs)
    for i, s in enumerate(specs):
        one = ck.estimate(wl, s)
        assert many.feasible[i] == one.feasible
        if one.feasible:
            assert many.energy_j[i] == pytest.approx(one.energy_j, rel=1e-12)
            assert many.area_mm2[i] == pytest.approx(one.area_mm2, rel=1e-12)
            assert many.latency_s[i] == pytest.approx(one.latency_s, rel=1e-12)
        else:  # undefined in both, never a number
            assert np.isnan(many.energy_j[i]) and np.isnan(one.energy_j) and one.reason


def test_technology_scaling_direction(rram):
    wl = ck.zoo.workload("resnet20")
    e = [ck.estimate(wl, rram.replace(**{"technology.node_nm": n})).energy_j for n in (65, 22, 7)]
    a = [ck.estimate(wl, rram.replace(**{"technology.node_nm": n})).area_mm2 for n in (65, 22, 7)]
    assert e[0] > e[1] > e[2] and a[0] > a[1] > a[2]
    v = [ck.estimate(wl, rram.replace(**{"technology.supply_v": s})).energy_j for s in (0.6, 0.8, 1.0)]
    assert v[0] < v[1] < v[2]
    with pytest.raises(ValueError, match="node_nm = 3"):
        ck.estimate(wl, rram.replace(**{"technology.node_nm": 3}))


def test_from_torch_and_neurosim_csv_agree_on_vgg8(tmp_path):
    rows = [
        "32,32,3,3,3,128,0,1",
        "32,32,128,3,3,128,1,1",
        "16,16,128,3,3,256,0,1",
        "16,16,256,3,3,256,1,1",
        "8,8,256,3,3,512,0,1",
        "8,8,512,3,3,512,1,1",
        "1,1,8192,1,1,1024,0,1",
        "1,1,1024,1,1,10,0,1",
    ]
    path = tmp_path / "NetWork_VGG8.csv"
    path.write_text("\n".join(rows) + "\n")
    from_csv = ck.Workload.from_neurosim_csv(path)
    traced = ck.zoo.workload("vgg8")
    assert [(o.in_features, o.out_features, o.vectors) for o in from_csv.weighted_ops] == [
        (o.in_features, o.out_features, o.vectors) for o in traced.weighted_ops
    ]
    assert from_csv.macs == traced.macs


def test_dynamic_matmul_is_traced():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k = nn.Linear(32, 32), nn.Linear(32, 32)

        def forward(self, x):
            return torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2), dim=-1)

    wl = ck.Workload.from_torch(Attention(), (1, 10, 32))
    kinds = [o.kind for o in wl.ops]
    assert kinds.count("linear") == 2 and "matmul" in kinds and "softmax" in kinds
    mm = next(o for o in wl.ops if o.kind == "matmul")
    assert mm.macs == 10 * 32 * 10
    assert all(o.vectors == 10 for o in wl.ops if o.kind == "linear")
    r = ck.estimate(wl, "rram-22nm")
    layer = next(row for row in r.layers if row["kind"] == "matmul")
    assert layer["energy_digital_j"] > 0 and layer["latency_s"] > 0  # priced on digital MAC units


def test_zoo_sizes_are_the_published_ones():
    expected = {"vgg16": 138.3e6, "resnet18": 11.68e6, "alexnet": 61.09e6, "mobilenetv3": 5.45e6, "resnet20": 0.27e6}
    for name, weights in expected.items():
        assert ck.zoo.workload(name).weights == pytest.approx(weights, rel=0.01)


def test_report_exports(tmp_path, rram):
    r = ck.estimate(ck.zoo.workload("lenet"), rram)
    r.to_json(tmp_path / "r.json")
    r.to_csv(tmp_path / "r.csv")
    r.plot_energy(tmp_path / "e.png")
    assert (tmp_path / "r.json").read_text().startswith("{") and (tmp_path / "e.png").stat().st_size > 1000
    assert r.tops_per_mm2 > 0 and r.edp == pytest.approx(r.energy_j * r.latency_s)


def test_bad_input(tmp_path, rram):
    with pytest.raises(InputError, match="unknown zoo network"):
        ck.zoo.workload("nonet")
    bad = tmp_path / "net.csv"
    bad.write_text("32,32,3,x,3,128,0,1\n")
    with pytest.raises(InputError, match="net.csv:1"):
        ck.Workload.from_neurosim_csv(bad)
    with pytest.raises(InputError, match="integer weight_bits"):
        ck.estimate(ck.zoo.workload("lenet"), ck.HardwareSpec.preset("ideal"))

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(8, 8)

        def forward(self, x):
            return self.rnn(x)[0]

    with pytest.raises((InputError, MappingError), match="rnn"):
        ck.Workload.from_torch(Odd(), (1, 4, 8))


def _onnx_lenet_like(path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1 = numpy_helper.from_array(np.zeros((6, 1, 5, 5), np.float32), "w1")
    w2 = numpy_helper.from_array(np.zeros((6 * 28 * 28, 10), np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], pads=[2, 2, 2, 2], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "w2"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [w1, w2],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_from_onnx(tmp_path):
    pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    _onnx_lenet_like(path)
    wl = ck.Workload.from_onnx(path)
    conv, fc = wl.weighted_ops
    assert (conv.in_features, conv.out_features, conv.vectors) == (25, 6, 784)
    assert (fc.in_features, fc.out_features) == (6 * 28 * 28, 10)
    assert ck.estimate(wl, "rram-22nm").energy_j > 0
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf")
    with pytest.raises(InputError, match="not a valid ONNX model"):
        ck.Workload.from_onnx(bad)


NEURRAM = [
    (3, 1, 43.08),
    (4, 2, 40.33),
    (5, 3, 23.09),
    (6, 4, 15.95),
    (7, 5, 11.33),
    (8, 6, 9.12),
    (7, 5, 11.03),
    (8, 6, 8.26),
    (9, 7, 7.75),
    (10, 8, 6.44),
]  # out bits, in bits, TOPS/W (Fig. 12c,d)


def neurram_core_tops_per_w(out_bits, in_bits):
    """TOPS/W over the components NeuRRAM's Fig. 12b accounts (word lines, neurons, input pulses)."""
    core = ck.Workload(
        "neurram-core",
        (1, 256),
        [ck.Op("core", "linear", 256, 128, in_shape=(256,), out_shape=(128,), vectors=1, macs=256 * 128)],
    )
    spec = ck.HardwareSpec.preset("neurram").replace(
        **{"periphery.adc_bits": out_bits, "periphery.input_bits": in_bits}
    )
    r = ck.estimate(core, spec)
    assert r.ops == 2 * 256 * 128
    return r.ops / sum(r.energy_breakdown_j[c] for c in ("array", "drivers", "adc")) / 1e12


@pytest.mark.parametrize("out_bits, in_bits, published", NEURRAM)
def test_neurram_within_30_percent_at_each_point(out_bits, in_bits, published):
    assert abs(neurram_core_tops_per_w(out_bits, in_bits) / published - 1) < 0.30


def test_neurram_trend_follows_the_chip():
    """Published efficiency falls with every added (output, input) bit; so does ours."""
    two_phase = [(3, 1), (4, 2), (5, 3), (6, 4), (7, 5), (8, 6), (9, 7), (10, 8)]
    published = [43.08, 40.33, 23.09, 15.95, 11.03, 8.26, 7.75, 6.44]
    ours = [neurram_core_tops_per_w(o, i) for o, i in two_phase]
    assert all(a > b for a, b in zip(published, published[1:]))
    assert all(a > b for a, b in zip(ours, ours[1:]))


# ---- op kinds registered after import (the op registry, not a fixed list) ---------------------------------
@pytest.fixture
def scratch_registries():
    """Kinds and unit types registered in a test are removed after it."""
    from cimkit.spec.units import UNIT_TYPES
    from cimkit.workload.registry import KINDS

    saved = dict(KINDS._entries), dict(UNIT_TYPES._entries)
    yield
    for reg, entries in zip((KINDS, UNIT_TYPES), saved):
        reg._entries.clear()
        reg._entries.update(entries)


def _with(kind: str) -> Workload:
    return Workload(
        "w",
        (1, 8),
        [
            Op("fc", "linear", 8, 4, in_shape=(8,), out_shape=(4,), macs=32),
            Op("x", kind, in_shape=(4,), out_shape=(4,), elements=4),
        ],
    )


def test_a_kind_registered_later_is_priced_on_its_default_unit(scratch_registries):
    from cimkit.errors import SpecError
    from cimkit.workload.registry import register_kind

    register_kind("hamming", default_unit="digital", events=lambda op: {"cmp": op.elements, "add": op.elements})
    r = ck.estimate(_with("hamming"), "rram-22nm")  # a unit runs the kinds whose default unit it is
    row = r.layers[1]
    assert row["kind"] == "hamming" and row["unit"] == "digital" and row["energy_digital_j"] > 0
    relu = ck.estimate(
        Workload(
            "w", (1, 8), [_with("act").ops[0], Op("x", "act", in_shape=(4,), out_shape=(4,), elements=4, fn="relu")]
        ),
        "rram-22nm",
    )
    assert row["energy_digital_j"] == pytest.approx(2 * relu.layers[1]["energy_digital_j"])  # cmp + add vs cmp
    with pytest.raises(
        SpecError,
        match="op kind 'hamming' is routed to unit 'crossbar', which cannot run it; "
        "'crossbar' runs conv, linear, matmul",
    ):
        ck.HardwareSpec.preset("rram-22nm").replace(**{"routing.hamming": "crossbar"})


def test_a_kind_on_a_unit_the_cost_model_cannot_price_is_an_error_naming_op_kind_and_unit(scratch_registries):
    from cimkit.spec.units import register_unit_type
    from cimkit.workload.registry import register_kind

    register_kind("spike", default_unit="neuron", events=lambda op: {"add": op.elements})
    with pytest.raises(
        InputError,
        match=r"op 'x' \(spike\) runs on unit 'neuron'.*'neuron' is no unit type.*"
        r"register_unit_type\('neuron', \{'spike'\}\)",
    ):
        ck.estimate(_with("spike"), "rram-22nm")
    register_unit_type("neuron", {"spike"})
    with pytest.raises(
        InputError,
        match=r"op 'x' \(spike\) runs on unit 'neuron' on spec 'rram-22nm', which this "
        r"cost model does not price .*crossbar, digital",
    ):
        ck.estimate(_with("spike"), "rram-22nm")
    register_kind("orphan", default_unit="")
    with pytest.raises(InputError, match=r"op 'x' \(orphan\).*op kind 'orphan' has no default unit"):
        ck.estimate(_with("orphan"), "rram-22nm")
    with pytest.raises(
        InputError, match=r"op 1 'x' has unknown kind 'nosuch'; allowed: linear, conv, .*, spike, orphan"
    ):
        ck.estimate(_with("nosuch"), "rram-22nm")
