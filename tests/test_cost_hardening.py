"""No silent wrong answers from the cost model: bad arguments are refused with one clear message, an
infeasible design is reported as such in strict JSON, unmapped ops are listed and not priced, outputs are
written atomically, and no NaN or infinity reaches a report from a valid spec."""

import json
import math
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cimkit as ck
from cimkit.cost.estimate import Report
from cimkit.errors import CimkitError, InputError, MappingError, SpecError
from cimkit.workload import Op, Workload


def _strict_loads(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


@pytest.fixture(scope="module")
def rram():
    return ck.HardwareSpec.preset("rram-22nm")


@pytest.fixture(scope="module")
def lenet():
    return ck.zoo.workload("lenet")


def _fc(name="fc", n=16, m=8):
    return Op(name, "linear", n, m, in_shape=(n,), out_shape=(m,), vectors=1, macs=n * m)


# ---- arguments --------------------------------------------------------------------------------------------
def test_estimate_many_takes_preset_names_like_estimate(lenet, rram):
    many = ck.estimate_many(lenet, ["pcm", rram, "rram-22nm"])
    one = ck.estimate(lenet, "pcm")
    assert many.energy_j[0] == pytest.approx(one.energy_j, rel=1e-12)
    assert many.energy_j[1] == pytest.approx(many.energy_j[2], rel=1e-12)
    assert list(ck.estimate_many(lenet, ("pcm",)).feasible) == [True]


def test_estimate_many_names_each_configuration(lenet, rram):
    """ManyReport.specs: the spec names in order, and each row of records() and the CSV says which."""
    mine = rram.replace(name="mine")
    many = ck.estimate_many(lenet, ["pcm", rram, mine])
    assert many.specs == ["pcm", "rram-22nm", "mine"]
    assert [r["spec"] for r in many.records()] == many.specs


@pytest.mark.parametrize(
    "bad, index, kind", [([None], 0, "NoneType"), (["pcm", 3], 1, "int"), (["pcm", {"array": {}}], 1, "dict")]
)
def test_estimate_many_names_the_bad_entry(lenet, bad, index, kind):
    with pytest.raises(
        InputError,
        match=rf"specs\[{index}\] must be a HardwareSpec or a preset name \(.*pcm.*\), "
        rf"got {kind}",
    ):
        ck.estimate_many(lenet, bad)


def test_estimate_many_refuses_a_lone_spec_and_an_empty_list(lenet, rram):
    with pytest.raises(InputError, match="specs must be a list.*the single spec 'rram-22nm'"):
        ck.estimate_many(lenet, rram)
    with pytest.raises(InputError, match="specs must be a list"):
        ck.estimate_many(lenet, "pcm")
    with pytest.raises(InputError, match="at least one spec"):
        ck.estimate_many(lenet, [])
    with pytest.raises(SpecError, match="unknown preset 'nope'; available: .*rram-22nm"):
        ck.estimate_many(lenet, ["nope"])


@pytest.mark.parametrize("spec", [None, 3, {"array": {"rows": 64}}], ids=repr)
def test_estimate_names_what_a_spec_may_be(lenet, spec):
    presets = ", ".join(ck.HardwareSpec.presets())
    with pytest.raises(
        InputError,
        match=rf"spec must be a HardwareSpec .* or a preset name \({presets}\), got "
        f"{type(spec).__name__}",
    ):
        ck.estimate(lenet, spec)


@pytest.mark.parametrize("ops", ["bogus", "MACS", None, 2])
def test_ops_convention_is_checked(lenet, rram, ops):
    for call in (lambda: ck.estimate(lenet, rram, ops=ops), lambda: ck.estimate_many(lenet, [rram], ops=ops)):
        with pytest.raises(InputError, match="ops = .*allowed values are 'macs' .* and 'neurosim'"):
            call()


@pytest.mark.parametrize("workload", [None, "lenet", [_fc()]], ids=repr)
def test_workload_must_be_a_workload(rram, workload):
    with pytest.raises(InputError, match=f"workload must be a cimkit Workload .*got {type(workload).__name__}"):
        ck.estimate(workload, rram)


def test_ops_of_unknown_kind_or_impossible_counts_are_refused(rram):
    def wl(*ops):
        return Workload("w", (16,), [_fc(), *ops])

    with pytest.raises(InputError, match="op 1 'odd' has unknown kind 'lstm'; allowed: .*conv.*unmapped"):
        ck.estimate(wl(Op("odd", "lstm")), rram)
    with pytest.raises(MappingError, match="layer 'z' has macs = 0.*does 128 multiply-accumulates"):
        ck.estimate(wl(Op("z", "linear", 16, 8, vectors=1)), rram)  # macs left out: TOPS would be 0
    with pytest.raises(MappingError, match="layer 'v' has vectors = 0"):
        ck.estimate(wl(Op("v", "linear", 16, 8, vectors=0, macs=0)), rram)
    with pytest.raises(MappingError, match="sizes must be positive"):
        ck.estimate(wl(Op("e", "linear", 0, 8, vectors=1, macs=1)), rram)
    with pytest.raises(InputError, match="op 'n' has elements = -5"):
        ck.estimate(wl(Op("n", "act", elements=-5)), rram)
    with pytest.raises(InputError, match="op 'f' has vectors = nan"):
        ck.estimate(wl(Op("f", "act", vectors=math.nan)), rram)


def test_node_outside_the_scaling_data_is_a_spec_error(lenet, rram):
    with pytest.raises(SpecError, match="technology.node_nm = 5: .*7 nm to 130 nm"):
        ck.estimate(lenet, rram.replace(**{"technology.node_nm": 5}))


# ---- unmapped ops ----------------------------------------------------------------------------------------------
def test_unmapped_ops_are_listed_and_priced_as_nothing(rram, tmp_path):
    plain = Workload("w", (16,), [_fc(), Op("relu", "act", in_shape=(8,), out_shape=(8,), elements=8)])
    # an op the importers keep visible when they cannot map it (e.g. an LSTM); shapes given on purpose,
    # to check that not even its buffer traffic or MACs are counted
    lstm = Op("lstm", "unmapped", 16, 64, in_shape=(16,), out_shape=(64,), vectors=4, macs=4096, elements=64)
    kept = Workload("w", (16,), [plain.ops[0], lstm, plain.ops[1]])
    a, b = ck.estimate(plain, rram), ck.estimate(kept, rram)
    assert b.unmapped == ["lstm"] and a.unmapped == []
    for key in ("area_mm2", "energy_j", "latency_s", "ops", "arrays"):
        assert getattr(b, key) == pytest.approx(getattr(a, key), rel=1e-12), key
    row = next(layer for layer in b.layers if layer["name"] == "lstm")
    assert row["kind"] == "unmapped" and row["arrays"] == 0 and row["energy_j"] == 0 and row["latency_s"] == 0
    assert _strict_loads(b.to_json())["unmapped"] == ["lstm"]
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(b.table())
    assert "NOT PRICED: 1 unmapped op(s) (lstm)" in console.export_text()
    with pytest.raises(MappingError, match="no Linear or convolution layer.*unmapped ops, not priced: lstm"):
        ck.estimate(Workload("w", (16,), [lstm]), rram)
    b.to_csv(tmp_path / "b.csv")
    assert "lstm,unmapped,,0" in (tmp_path / "b.csv").read_text()


# ---- infeasible designs and strict JSON ----------------------------------------------------------------------------
def test_infeasible_report_is_strict_json_with_the_reason(tmp_path, rram):
    r = ck.estimate(ck.zoo.workload("vgg8"), rram.replace(**{"chip.tiles": 1}))
    assert r.feasible is False and "need 30 tiles but chip.tiles = 1" in r.reason
    assert math.isnan(r.energy_j) and math.isnan(r.tops_per_w) and math.isnan(r.fps)  # fine in Python
    path = tmp_path / "r.json"
    text = r.to_json(path)
    json.dumps(json.loads(text), allow_nan=False)
    data = _strict_loads(path.read_text())
    assert data["feasible"] is False and data["reason"] == r.reason
    assert all(
        data[k] is None
        for k in ("area_mm2", "energy_j", "latency_s", "fps", "tops", "tops_per_w", "tops_per_mm2", "edp_js")
    )
    assert data["ops"] > 0 and len(data["layers"]) == len(r.layers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # written atomically: no temporary left


def test_derived_figures_of_a_degenerate_report_are_nan_not_errors():
    r = Report("w", "s", False, "why", math.nan, 0.0, math.nan, 0.0, 10.0)
    assert math.isnan(r.fps) and math.isnan(r.tops) and math.isnan(r.tops_per_w) and math.isnan(r.tops_per_mm2)
    assert _strict_loads(r.to_json())["tops"] is None


# ---- files --------------------------------------------------------------------------------------------------------
def test_csv_of_a_report_without_layers_is_a_header(tmp_path):
    r = Report("w", "s", True, "", 1.0, 1.0, 1.0, 1.0, 1.0)
    r.to_csv(tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text().splitlines() == [
        "name,kind,arrays,latency_s,energy_array_j,energy_drivers_j,energy_adc_j,energy_accumulation_j,"
        "energy_buffer_j,energy_interconnect_j,energy_digital_j,energy_j"
    ]


def test_plot_energy_checks_the_suffix_before_plotting(tmp_path, lenet, rram, monkeypatch):
    import matplotlib.pyplot as plt

    r = ck.estimate(lenet, rram)
    with monkeypatch.context() as m:
        m.setattr(plt, "subplots", lambda *a, **k: pytest.fail("plotted before checking the file name"))
        with pytest.raises(InputError, match=r"unsupported file type '\.foo'; use one of .*\.pdf.*\.png"):
            r.plot_energy(tmp_path / "x.foo")
        with pytest.raises(InputError, match="is a folder"):
            r.plot_energy(tmp_path)
    out = r.plot_energy(tmp_path / "plots" / "e.svg")
    r.to_csv(tmp_path / "plots" / "layers.csv")
    assert out.read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in out.parent.iterdir()) == ["e.svg", "layers.csv"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, lenet, rram, monkeypatch):
    import csv

    r = ck.estimate(lenet, rram)
    path = tmp_path / "layers.csv"
    path.write_text("old\n")

    class Boom(RuntimeError):
        pass

    def broken_writerows(self, rows):
        raise Boom()

    monkeypatch.setattr(csv.DictWriter, "writerows", broken_writerows)
    with pytest.raises(Boom):
        r.to_csv(path)
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["layers.csv"]


# ---- no NaN or infinity from a valid spec ----------------------------------------------------------------------------
def test_overflowing_spec_values_are_an_error_not_inf(lenet, rram):
    for change in (
        {"technology.clock_hz": 1e-300},
        {"periphery.read_latency_ns": 1e300},
        {"technology.clock_hz": 5e-324, "array.rows": 1, "array.cols": 1},
    ):  # a cycle of inf seconds
        with pytest.raises(SpecError, match="outside any physical range"):
            ck.estimate(lenet, rram.replace(**change))
        with pytest.raises(SpecError, match="outside any physical range"):
            ck.estimate_many(lenet, [rram, rram.replace(**change)])
    # the column current is linear in the read voltage: an absurd voltage is refused by the spec itself
    with pytest.raises(Exception, match="read_voltage_v"):
        rram.replace(**{"device.read_voltage_v": 1e300})


def _numeric_fields(model, prefix=""):
    """(dotted name, type, lower bound, lower bound exclusive, upper bound, default) of every number in a spec."""
    import annotated_types as at
    from pydantic import BaseModel

    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _numeric_fields(ann, f"{prefix}{name}.")
            continue
        args = set(typing.get_args(ann)) or {ann}
        if not args & {int, float} or bool in args:
            continue
        lo = hi = None
        exclusive = False
        for m in f.metadata:
            if isinstance(m, at.Ge):
                lo = m.ge
            elif isinstance(m, at.Gt):
                lo, exclusive = m.gt, True
            elif isinstance(m, at.Le):
                hi = m.le
        yield f"{prefix}{name}", (int if int in args else float), lo, exclusive, hi, f.default


NUMERIC = [f for f in _numeric_fields(ck.HardwareSpec) if f[0] not in ("device.programming_noise_poly",)]
CHOICES = {
    "array.signed_mapping": ["differential", "offset"],
    "array.conv_mapping": ["kernel_aligned", "im2col"],
    "periphery.dac_mode": ["multi_level", "bit_serial", "pulse_train"],
    "chip.adc_type": ["mlsa", "sar", "survey", "integrate_fire"],
    "chip.interconnect": ["htree", "bus"],
    "chip.execution": ["layer_by_layer", "pipelined"],
    "chip.tile_allocation": ["per_layer", "packed"],
    "chip.weight_duplication": [True, False],
}


def _value(name, typ, lo, exclusive, hi, default, wide: bool):
    """A strategy over a field's allowed range. ``wide``: up to the float limits (1e-300 Hz clocks included).
    Otherwise a physical span: a bounded side at its bound, an open side within a factor 1e6 of the default
    (and exactly 0 where 0 is allowed). Always: node_nm within the cost model's 7-130 nm and the converters
    never None (the cost model refuses both, with their own errors)."""
    if name == "technology.node_nm":
        lo, hi, exclusive = 7.0, 130.0, False
    if typ is int:
        low = int(lo if lo is not None else 0) + (1 if exclusive else 0)
        top = int(hi) if hi is not None else (2**31 if wide else max(low, int(default or 1)) * 4096)
        return st.integers(low, top)
    scale = abs(default) if default else 1.0
    low = float(lo) if lo is not None else -1e300
    high = float(hi) if hi is not None else (1e300 if wide else scale * 1e6)
    if wide:
        return st.floats(low, high, exclude_min=exclusive, allow_nan=False, allow_infinity=False)
    span = st.floats(max(low, scale * 1e-6), high, allow_nan=False, allow_infinity=False)
    return span if exclusive or lo is None else st.one_of(st.just(float(lo)), span)


def _changes(wide: bool):
    fields = {f[0]: _value(*f, wide=wide) for f in NUMERIC}
    fields.update({k: st.sampled_from(v) for k, v in CHOICES.items()})
    names = sorted(fields)
    return st.lists(st.sampled_from(names), min_size=1, max_size=6, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: fields[k] for k in keys})
    )


def _report_or_spec_error(workload, base, changes):
    try:
        spec = base.replace(**changes)
    except SpecError:
        return None, None  # an inconsistent combination (e.g. g_min >= g_max): refused at the spec
    try:
        return spec, ck.estimate(workload, spec)
    except CimkitError as exc:
        return spec, exc


def _assert_finite_positive(r):
    figures = {
        "area_mm2": r.area_mm2,
        "energy_j": r.energy_j,
        "latency_s": r.latency_s,
        "period_s": r.period_s,
        "fps": r.fps,
        "tops": r.tops,
        "tops_per_w": r.tops_per_w,
        "tops_per_mm2": r.tops_per_mm2,
        "edp": r.edp,
        "ops": r.ops,
        "utilization": r.utilization,
    }
    bad = {k: v for k, v in figures.items() if not (math.isfinite(v) and v > 0)}
    assert not bad, bad
    for part in (r.area_breakdown_mm2, r.energy_breakdown_j, r.latency_breakdown_s):
        assert all(math.isfinite(v) and v >= 0 for v in part.values()), part
    assert all(math.isfinite(v) for layer in r.layers for v in layer.values() if isinstance(v, float))
    json.dumps(json.loads(r.to_json()), allow_nan=False)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(changes=_changes(wide=False))
def test_property_physical_specs_give_finite_positive_figures(changes):
    """Any spec within its allowed ranges (unbounded fields up to a million times their bound), the converters
    priced: every figure of a feasible report is finite and positive, and an infeasible one says why."""
    base = ck.HardwareSpec.preset("rram-22nm")
    spec, r = _report_or_spec_error(_LENET, base, changes)
    if spec is None:
        return
    assert isinstance(r, Report), f"{changes}: {r}"
    if r.feasible:
        _assert_finite_positive(r)
    else:
        assert r.reason and "tiles" in r.reason and all(math.isnan(v) for v in (r.energy_j, r.area_mm2))
        json.dumps(json.loads(r.to_json()), allow_nan=False)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(changes=_changes(wide=True))
def test_property_extreme_specs_give_finite_figures_or_a_clear_error(changes):
    """Up to the float limits: a report whose figures are all finite and positive, or a SpecError that says the
    values are outside any physical range; never a NaN or an infinity."""
    base = ck.HardwareSpec.preset("rram-22nm")
    spec, r = _report_or_spec_error(_LENET, base, changes)
    if spec is None:
        return
    if isinstance(r, CimkitError):
        assert isinstance(r, SpecError) and ("outside any physical range" in str(r) or "node_nm" in str(r)), r
    elif r.feasible:
        _assert_finite_positive(r)


_LENET = ck.zoo.workload("lenet")


def _same_rows(a: dict, b: dict) -> None:
    import numpy as np

    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            _same_rows(x, y)
        elif isinstance(x, bool):
            assert x == y, key
        else:
            assert x.shape == y.shape and x.dtype.kind == y.dtype.kind, key
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), key


@pytest.mark.parametrize("net", ["lenet", "resnet18", "mobilenetv3", "bert-base"])
@pytest.mark.parametrize("convention", ["macs", "neurosim"])
def test_columnwise_rows_equal_the_op_by_op_rows(net, convention):
    """The cold path counts plain workloads column-wise; its rows equal the op-by-op path's (the one that
    names bad values), with per-op activity and an unmapped op too."""
    import dataclasses
    import importlib

    E = importlib.import_module("cimkit.cost.estimate")  # the package binds the function estimate
    ops = list(ck.zoo.workload(net, **({"seq_len": 32} if net == "bert-base" else {})).ops)
    ops = [dataclasses.replace(o, activity=0.25) if i % 3 == 0 else o for i, o in enumerate(ops)]
    ops.append(
        Op("lstm", "unmapped", in_shape=(3, 4), out_shape=(5,), elements=5, unmapped_weights=7, source_type="LSTM")
    )
    info = E._kind_table()
    fast = E._fast_rows(ops, convention, info, "w")
    assert fast is not None
    _same_rows(fast, E._checked_rows(ops, convention, info, "w"))


def test_unusual_but_valid_values_take_the_op_by_op_path_with_the_same_figures():
    """numpy integers and list shapes are valid sizes: the column-wise path hands them to the op-by-op one,
    and the report is the same as with plain ints."""
    import numpy as np

    plain = Workload(
        "w",
        (1, 8),
        [
            Op("fc", "linear", 8, 4, in_shape=(8,), out_shape=(4,), macs=32),
            Op("relu", "act", in_shape=(4,), out_shape=(4,), elements=4, fn="relu"),
        ],
    )
    odd = Workload(
        "w",
        (1, 8),
        [
            Op("fc", "linear", np.int64(8), 4, in_shape=[8], out_shape=(4,), macs=np.int64(32)),
            Op("relu", "act", in_shape=(4,), out_shape=(4,), elements=4, fn="relu"),
        ],
    )
    a, b = ck.estimate(plain, "rram-22nm"), ck.estimate(odd, "rram-22nm")
    assert a.to_json() == b.to_json()
