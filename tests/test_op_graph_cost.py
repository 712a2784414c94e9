"""From the frontend to the report, nothing is lost: every op a frontend lists is one layer of the report,
priced on the unit the spec routes its kind to, and the report's totals are the sum of its layers.

The op lists themselves are specified in ``test_op_graph.py``; here they go through ``estimate``.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import cimkit as ck
from cimkit.errors import SpecError
from cimkit.mapping import weight_slices
from cimkit.workload import registry

from .test_op_graph import CumsumThenLinear, D, EncoderLayer, HandAttention, L, SelfAttention, minilm  # noqa: F401

SPEC = ck.HardwareSpec.preset("rram-22nm")


def trace(model, shape=(1, L, D)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ck.Workload.from_torch(model.eval(), shape)


def workloads():
    yield "TransformerEncoderLayer", trace(EncoderLayer())
    yield "MultiheadAttention", trace(SelfAttention())
    yield "hand-written attention", trace(HandAttention())
    yield "zoo bert-base L=32", ck.zoo.workload("bert-base", seq_len=32)
    yield "zoo resnet18", ck.zoo.workload("resnet18")


@pytest.mark.parametrize("label,wl", list(workloads()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_op_is_one_priced_layer_of_the_report(label, wl):
    rep = ck.estimate(wl, SPEC)
    assert [(r["name"], r["kind"]) for r in rep.layers] == [(o.name, o.kind) for o in wl.ops], label
    for op, row in zip(wl.ops, rep.layers):
        assert row["unit"] == SPEC.unit_for(op.kind)
        assert row["energy_j"] > 0, (label, op.name)  # nothing priced as free
        assert (row["arrays"] > 0) == (registry.kind_info(op.kind).default_unit == "crossbar")
    # conservation: layers and chip-wide lines add up to the total; units partition the ops
    layers_j = sum(r["energy_j"] for r in rep.layers)
    chip_j = rep.energy_breakdown_j["leakage"] + rep.energy_breakdown_j["layout"]
    assert layers_j + chip_j == pytest.approx(rep.energy_j, rel=1e-9)
    assert sum(u["ops"] for u in rep.units.values()) == len(wl.ops)
    assert sum(u["energy_j"] for u in rep.units.values()) == pytest.approx(layers_j, rel=1e-9)
    assert rep.ops == pytest.approx(2 * wl.macs)


def test_minilm_l6_every_op_priced(minilm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wl = ck.Workload.from_torch(minilm, (1, L), input_dtype=torch.long)
    rep = ck.estimate(wl, SPEC)
    assert [(r["name"], r["kind"]) for r in rep.layers] == [(o.name, o.kind) for o in wl.ops]
    assert not rep.unmapped and all(r["energy_j"] > 0 for r in rep.layers)
    assert rep.units["crossbar"]["ops"] == 36 and rep.units["digital"]["ops"] == len(wl.ops) - 36


def test_an_unmapped_op_is_listed_in_the_report_and_priced_as_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wl = ck.Workload.from_torch(CumsumThenLinear(), (1, 3, 6))
    (odd,) = wl.unmapped_ops
    rep = ck.estimate(wl, SPEC)
    assert rep.unmapped == [odd.name]
    row = next(r for r in rep.layers if r["name"] == odd.name)
    assert row["kind"] == "unmapped" and row["energy_j"] == 0 and row["arrays"] == 0


def test_dynamic_matmuls_on_rewritten_arrays_pay_one_write_per_cell_and_wear_the_device():
    wl = trace(EncoderLayer())
    spec = SPEC.replace(routing={"matmul": "crossbar"})
    rep = ck.estimate(wl, spec)
    mm = [o for o in wl.ops if o.kind == "matmul"]
    cells_per_weight = weight_slices(spec) * (2 if spec.array.signed_mapping == "differential" else 1)
    cells = sum(o.groups * o.in_features * o.out_features for o in mm) * cells_per_weight
    assert rep.energy_breakdown_j["writes"] == pytest.approx(cells * spec.device.write_energy_pj * 1e-12, rel=1e-12)
    assert all(r["unit"] == "crossbar" and r["arrays"] > 0 for r in rep.layers if r["kind"] == "matmul")
    # the written operands occupy cells like the static weights do
    chip_cells = rep.arrays * spec.array.rows * spec.array.cols
    assert rep.utilization == pytest.approx((wl.weights * cells_per_weight + cells) / chip_cells, rel=1e-12)
    e = rep.endurance
    assert e["writes_per_cell_per_inference"] == 1
    assert e["inferences_per_s"] == pytest.approx(1 / rep.period_s)  # back-to-back by default
    assert e["lifetime_s"] == pytest.approx(spec.device.endurance_cycles / e["inferences_per_s"])
    slow = ck.estimate(wl, spec.replace(**{"chip.inferences_per_s": 10.0}))
    assert slow.endurance["lifetime_s"] == pytest.approx(spec.device.endurance_cycles / 10.0)
    # on the digital MAC array (the default) nothing is written and nothing wears out
    default = ck.estimate(wl, SPEC)
    assert default.energy_breakdown_j.get("writes", 0) == 0 and not default.endurance


def test_a_per_op_activity_changes_only_that_op():
    import dataclasses

    wl = ck.zoo.workload("vgg8")
    first = wl.ops[0]
    quiet = ck.Workload(wl.name, wl.input_shape, [dataclasses.replace(first, activity=0.0), *wl.ops[1:]])
    a, b = ck.estimate(wl, SPEC), ck.estimate(quiet, SPEC)
    assert b.layers[0]["energy_array_j"] < a.layers[0]["energy_array_j"]
    assert [r["energy_j"] for r in a.layers[1:]] == pytest.approx([r["energy_j"] for r in b.layers[1:]], rel=1e-12)


def test_routing_an_op_kind_to_a_unit_that_cannot_run_it_is_refused():
    with pytest.raises(SpecError, match=r"softmax.*crossbar.*(conv|linear|matmul)"):
        SPEC.replace(routing={"softmax": "crossbar"})
    with pytest.raises(SpecError, match=r"routing.*'tpu'"):
        SPEC.replace(routing={"matmul": "tpu"})
    assert not math.isnan(ck.estimate(ck.zoo.workload("vgg8"), SPEC).energy_j)
