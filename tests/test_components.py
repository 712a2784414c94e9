"""The cost model as events and components (issue 11), read as a specification.

- The crossbar model moved onto components without changing a figure: with the pre-refactor digital
  pricing plugged back in as a component, every figure of ``tests/data/cost_figures_before_issue11.json``
  (computed by the code before the refactor: vgg8, resnet18, the NeuRRAM points, every direction sweep of
  docs/validation.md, presets, 400 estimate_many configurations) comes out identical to 1e-12; with the new
  digital unit the validation networks move by less than 0.5%.
- A registered component appears in the breakdown with its events times its energy; one without a unit or
  with a negative energy is refused, naming it.
- The digital unit prices each op by the op registry's primitives; dynamic matmuls on rewritten arrays pay
  cell writes and report endurance; Op.activity overrides the chip's input activity.
"""

import numpy as np
import pytest

import cimkit as ck
from cimkit.cost import constants as K
from cimkit.cost.components import (
    ADC_KINDS,
    COMPONENTS,
    DIGITAL_PRIMITIVES,
    PRIMITIVE_CYCLES,
    Component,
    primitive_energy_pj,
)
from cimkit.cost.tech import energy_factor, nominal_supply_v
from cimkit.errors import InputError
from cimkit.workload.core import Op, Workload


@pytest.fixture
def registered():
    """Register components for one test; the built-ins are restored afterwards."""
    import cimkit.cam.cost  # noqa: F401  (registers the CAM's parts: a snapshot without them would drop them)

    saved = dict(COMPONENTS._entries)
    yield lambda comp, replace=False: COMPONENTS.register(comp.name, comp, replace=replace)
    COMPONENTS._entries.clear()
    COMPONENTS._entries.update(saved)


def _close(new, old, rel=1e-12):
    if old is None:
        return new is None or np.isnan(new)
    return new == pytest.approx(old, rel=rel, abs=1e-300)


def _core(ops):
    return Workload(
        "toy", (1, 64), [Op("fc", "linear", 64, 64, in_shape=(64,), out_shape=(64,), vectors=8, macs=8 * 64 * 64), *ops]
    )


def test_a_registered_component_is_priced_as_its_events_times_its_energy(registered):
    class Sensor(Component):
        name, unit = "sensor", "crossbar"

        def energy_per_event_j(self, ctx):
            return {"conversions": 1e-15}

        def latency_per_event_s(self, ctx):
            return {"serial_reads": 2e-9}

        def area_mm2(self, ctx):
            return ctx.events["adcs"] * 1e-6

    spec = ck.HardwareSpec.preset("rram-22nm").replace(**{"chip.weight_duplication": False})  # one copy
    wl = _core([])
    before = ck.estimate(wl, spec)
    registered(Sensor())
    r = ck.estimate(wl, spec)
    m = ck.mapping.map_matrix(64, 64, spec)
    conversions = 8 * m.adc_conversions_per_vector
    assert r.energy_breakdown_j["sensor"] == pytest.approx(conversions * 1e-15, rel=1e-12)
    assert r.layers[0]["energy_sensor_j"] == pytest.approx(conversions * 1e-15, rel=1e-12)
    assert r.latency_breakdown_s["sensor"] == pytest.approx(8 * m.input_passes * 2e-9, rel=1e-12)
    assert r.area_breakdown_mm2["sensor"] > 0
    assert r.energy_breakdown_j["array"] == pytest.approx(before.energy_breakdown_j["array"], rel=1e-12)


def test_a_component_without_a_unit_or_with_a_negative_energy_is_refused(registered):
    class NoUnit(Component):
        name = "nounit"

    with pytest.raises(InputError, match="'nounit' names no unit"):
        registered(NoUnit())

    class Negative(Component):
        name, unit = "negative", "crossbar"

        def energy_per_event_j(self, ctx):
            return {"conversions": -1e-15}

    registered(Negative())
    with pytest.raises(InputError, match="component 'negative' gives energy_per_event_j per 'conversions' = -1e-15"):
        ck.estimate(_core([]), "rram-22nm")

    class Unknown(Component):
        name, unit = "unknown", "crossbar"

        def energy_per_event_j(self, ctx):
            return {"photons": 1e-15}

    COMPONENTS._entries.pop("negative")
    registered(Unknown())
    with pytest.raises(InputError, match="'unknown' prices the event 'photons'"):
        ck.estimate(_core([]), "rram-22nm")


def _digital_j(prim: str, spec) -> float:
    """One primitive on the digital unit of ``spec``, in J (Horowitz at 45 nm / 0.9 V, scaled)."""
    t = spec.technology
    supply = t.supply_v if t.supply_v is not None else float(nominal_supply_v(t.node_nm))
    scale = float(energy_factor(t.node_nm, supply) / energy_factor(K.HOROWITZ_NODE_NM, K.HOROWITZ_SUPPLY_V))
    return primitive_energy_pj(prim, spec.digital.data_bits) * scale * 1e-12


@pytest.mark.parametrize(
    "fn, kind, hand",
    [
        # softmax over 4 rows of 16: max (cmp E), x - max and the row sums (add 2E), exp E, 1/sum (div 4), scale (mul E)
        ("softmax", "softmax", {"cmp": 64, "add": 128, "exp": 64, "div": 4, "mul": 64}),
        # layer norm over 4 rows of 16: add 4E + R, mul 3E + 2R, sqrt R, div R
        ("layer_norm", "norm", {"add": 4 * 64 + 4, "mul": 3 * 64 + 8, "sqrt": 4, "div": 4}),
        # gelu (erf form): x / sqrt 2, erf, 1 + erf, x * (...) * 0.5
        ("gelu", "act", {"mul": 3 * 64, "exp": 64, "add": 64}),
    ],
)
def test_the_digital_unit_prices_an_op_per_primitive(fn, kind, hand):
    spec = ck.HardwareSpec.preset("rram-22nm")
    op = Op("f", kind, in_shape=(4, 16), out_shape=(4, 16), elements=64, fn=fn, reduce=16)
    r = ck.estimate(_core([op]), spec)
    row = r.layers[1]
    assert row["unit"] == "digital"
    assert row["energy_digital_j"] == pytest.approx(sum(n * _digital_j(p, spec) for p, n in hand.items()), rel=1e-12)
    cycles = sum(n * PRIMITIVE_CYCLES[p] for p, n in hand.items())
    assert r.latency_breakdown_s["digital"] == pytest.approx(cycles / spec.digital.lanes * r.clock_period_s)
    assert r.units["digital"]["ops"] == 1 and r.units["crossbar"]["ops"] == 1


def test_primitive_energies_follow_their_sources():
    assert primitive_energy_pj("add", 8) == pytest.approx(0.03) and primitive_energy_pj("add", 32) == pytest.approx(
        0.1, rel=1e-3
    )
    assert primitive_energy_pj("mul", 8) == pytest.approx(0.2) and primitive_energy_pj("mul", 32) == pytest.approx(
        3.1, rel=1e-3
    )
    assert primitive_energy_pj("div", 16) == pytest.approx(7.1 * primitive_energy_pj("mul", 16))
    assert primitive_energy_pj("lookup", 64) == pytest.approx(10.0)
    assert set(DIGITAL_PRIMITIVES) == set(PRIMITIVE_CYCLES)


def _attention(seq=16, d=32, heads=2):
    qk = Op(
        "qk",
        "matmul",
        d // heads,
        seq,
        groups=heads,
        vectors=seq,
        in_shape=(heads, seq, d // heads),
        out_shape=(heads, seq, seq),
        macs=heads * seq * (d // heads) * seq,
        fn="matmul",
    )
    return Workload(
        "attn",
        (1, seq, d),
        [Op("q", "linear", d, d, in_shape=(seq, d), out_shape=(seq, d), vectors=seq, macs=seq * d * d), qk],
    )


def test_a_rewritten_matmul_pays_its_cell_writes_and_reports_the_lifetime():
    base = ck.HardwareSpec.preset("rram-22nm")
    on_arrays = base.replace(routing={"matmul": "crossbar"})
    wl = _attention()
    digital = ck.estimate(wl, base)
    assert digital.layers[1]["unit"] == "digital" and not digital.endurance
    assert digital.layers[1]["energy_digital_j"] == pytest.approx(2 * 16 * 16 * 16 * _digital_j("mac", base))
    r = ck.estimate(wl, on_arrays)
    row = r.layers[1]
    assert row["unit"] == "crossbar" and row["arrays"] > 0 and row["energy_digital_j"] == 0
    m = ck.mapping.map_matrix(16, 16, on_arrays, groups=2)
    cells = 2 * 16 * 16 * m.columns_per_weight
    assert row["energy_writes_j"] == pytest.approx(cells * on_arrays.device.write_energy_pj * 1e-12, rel=1e-12)
    rows_per_array = min(16, m.rows_per_tile) * m.groups_per_array
    assert r.latency_breakdown_s["writes"] == pytest.approx(rows_per_array * on_arrays.device.write_time_ns * 1e-9)
    assert r.endurance["writes_per_cell_per_inference"] == 1.0
    assert r.endurance["inferences_per_s"] == pytest.approx(1 / r.period_s)
    assert r.endurance["lifetime_s"] == pytest.approx(on_arrays.device.endurance_cycles * r.period_s)
    rated = ck.estimate(wl, on_arrays.replace(**{"chip.inferences_per_s": 100.0}))
    assert rated.endurance["lifetime_s"] == pytest.approx(on_arrays.device.endurance_cycles / 100.0)
    # estimate_many prices mixed routings in one pass, each as estimate does
    many = ck.estimate_many(wl, [base, on_arrays])
    assert many.energy_j.tolist() == pytest.approx([digital.energy_j, r.energy_j], rel=1e-12)


def test_op_activity_overrides_the_chips_input_activity():
    spec = ck.HardwareSpec.preset("rram-22nm")
    plain = ck.estimate(_core([]), spec)
    busy = _core([])
    busy.ops[0] = Op(**{**busy.ops[0].__dict__, "activity": 0.36})
    r = ck.estimate(busy, spec)
    d = spec.device
    levels = np.arange(2**d.bits_per_cell)
    g = d.g_min_us * 1e-6 + levels / levels[-1] * (d.g_max_us - d.g_min_us) * 1e-6
    g_eff = np.mean(1 / (1 / g + K.ACCESS_R_OVER_R_ON / (d.g_max_us * 1e-6)))  # through the access transistor
    cell = K.COLUMN_CURRENT_W_PER_S * d.read_voltage_v / K.COLUMN_CURRENT_REF_V * g_eff * K.MLSA_SENSE_TIME_NS * 1e-9
    m = ck.mapping.map_matrix(64, 64, spec)
    reads = 8 * m.input_passes * 64 * 64 * m.columns_per_weight
    assert r.energy_breakdown_j["array"] - plain.energy_breakdown_j["array"] == pytest.approx(
        reads * (0.36 - spec.chip.input_activity) * cell, rel=1e-9
    )
    # word lines fire per 1 bit (twice as often), the row latches clock whatever the input
    pulses = 8 * m.input_passes * 64 * m.col_tiles * (0.36 - spec.chip.input_activity)  # each array's rows
    wordline = K.WORDLINE_CAP_F_PER_CELL * 0.85**2 * spec.array.cols * spec.periphery.columns_per_adc
    assert r.energy_breakdown_j["drivers"] - plain.energy_breakdown_j["drivers"] == pytest.approx(
        pulses * wordline, rel=1e-9
    )
    with pytest.raises(InputError, match="activity"):
        busy.ops[0] = Op(**{**busy.ops[0].__dict__, "activity": 1.5})
        ck.estimate(busy, spec)


def test_adc_kinds_are_a_registry_the_spec_checks():
    assert set(ADC_KINDS.names()) >= {"mlsa", "sar", "survey", "integrate_fire"}
    with pytest.raises(Exception, match="flash9"):
        ck.HardwareSpec.preset("rram-22nm").replace(**{"chip.adc_type": "flash9"})


def test_cam_digital_parts_are_the_shared_components_not_the_crossbar_calibration():
    from sklearn import tree

    X = np.linspace(0.0, 1.0, 101)[:, None]
    prog = ck.cam.compile(tree.DecisionTreeClassifier(max_depth=1).fit(X, (X[:, 0] > 0.3).astype(int)), bits=8, X=X)
    spec = ck.cam.CamSpec()
    r = ck.cam.estimate(prog, X, spec, "xtime")
    scale = float(energy_factor(spec.node_nm, spec.supply_v) / energy_factor(K.HOROWITZ_NODE_NM, K.HOROWITZ_SUPPLY_V))
    leaves = prog.leaf.shape[1]  # one tree: its leaf values read once per decision
    assert r.energy_breakdown_j["leaf_memory"] == pytest.approx(
        leaves * spec.leaf_bits * primitive_energy_pj("lookup", 1) * scale * 1e-12
    )
    adds = leaves + prog.ensemble.n_outputs
    assert r.energy_breakdown_j["aggregation"] == pytest.approx(
        adds * primitive_energy_pj("add", spec.leaf_bits) * scale * 1e-12
    )
    core = sum(v for k, v in r.area_breakdown_mm2.items() if k != "noc")
    assert r.area_breakdown_mm2["noc"] == pytest.approx(spec.circuit.noc_area_fraction * core)


@pytest.fixture
def dac_modes():
    """DAC modes registered in a test are removed after it."""
    from cimkit.spec.units import DAC_MODES

    saved = dict(DAC_MODES._entries)
    yield DAC_MODES
    DAC_MODES._entries.clear()
    DAC_MODES._entries.update(saved)


def test_a_dac_mode_without_a_driver_model_is_priced_from_its_properties(dac_modes):
    """A plug-in DAC mode (cimkit.spec.units.DAC_MODES) that components.DRIVERS does not list: a binary drive
    costs what bit_serial's does per pulse, a multi-level one adds the DAC per level as multi_level; a
    DRIVERS entry overrides that."""
    from cimkit.cost.components import DRIVERS
    from cimkit.spec.units import DacMode, register_dac_mode

    lenet = ck.zoo.workload("lenet")
    base = ck.HardwareSpec.preset("rram-22nm")
    serial = dac_modes.get("bit_serial")
    register_dac_mode(
        DacMode(
            "my_serial",
            "bit_serial by another name",
            input_passes=serial.input_passes,
            bit_planes=True,
            binary=True,
            needs_input_bits=True,
        )
    )
    register_dac_mode(DacMode("my_levels", "multi_level by another name"))
    for mine, builtin in (("my_serial", "bit_serial"), ("my_levels", "multi_level")):
        a = ck.estimate(lenet, base.replace(**{"periphery.dac_mode": mine}))
        b = ck.estimate(lenet, base.replace(**{"periphery.dac_mode": builtin}))
        assert a.energy_breakdown_j["drivers"] == pytest.approx(b.energy_breakdown_j["drivers"], rel=1e-12)
        assert a.energy_j == pytest.approx(b.energy_j, rel=1e-12)
    many = ck.estimate_many(
        lenet,
        [base.replace(**{"periphery.dac_mode": m}) for m in ("my_serial", "multi_level", "my_levels", "bit_serial")],
    )
    assert many.energy_j[0] == pytest.approx(many.energy_j[3], rel=1e-12)
    assert many.energy_j[1] == pytest.approx(many.energy_j[2], rel=1e-12)
    saved = dict(DRIVERS._entries)
    try:
        DRIVERS.register("my_levels", lambda bits: 0.0 * bits)  # free DACs: the word lines and latches remain
        r = ck.estimate(lenet, base.replace(**{"periphery.dac_mode": "my_levels"}))
        levels = ck.estimate(lenet, base.replace(**{"periphery.dac_mode": "multi_level"}))
        assert 0 < r.energy_breakdown_j["drivers"] < levels.energy_breakdown_j["drivers"]
    finally:
        DRIVERS._entries.clear()
        DRIVERS._entries.update(saved)


def test_cam_parts_are_registered_components_and_a_toy_one_appears_in_the_cam_report(registered):
    """The CAM's parts are components of unit "cam" in the same registry; a registered one is priced on the
    CAM's events (events x energy) in CamReport's breakdown, and the crossbar model leaves it alone."""
    from sklearn import tree

    from cimkit.cam.cost import COMPONENTS as CAM_LINES

    cam = [n for n in COMPONENTS.names() if COMPONENTS.get(n).unit == "cam"]
    assert set(CAM_LINES) | {"dacs"} == set(cam)
    X = np.linspace(0.0, 1.0, 101)[:, None]
    prog = ck.cam.compile(tree.DecisionTreeClassifier(max_depth=3).fit(X, (X[:, 0] > 0.3).astype(int)), bits=8, X=X)
    spec = ck.cam.CamSpec()
    before = ck.cam.estimate(prog, X, spec, "xtime")
    lenet = ck.zoo.workload("lenet")
    crossbar = ck.estimate(lenet, "rram-22nm")

    class Probe(Component):
        name, unit = "probe", "cam"

        def energy_per_event_j(self, ctx):
            return {"array_searches": 1e-12, "adds": 2e-15}

    registered(Probe())
    after = ck.cam.estimate(prog, X, spec, "xtime")
    searches = before.energy_breakdown_j["encoder"] / (spec.circuit.encoder_energy_pj * 1e-12)
    adds = prog.leaf.shape[1] + prog.ensemble.n_outputs  # one tree: its leaves and the outputs
    assert after.energy_breakdown_j["probe"] == pytest.approx(searches * 1e-12 + adds * 2e-15, rel=1e-12)
    assert after.energy_j == pytest.approx(before.energy_j + after.energy_breakdown_j["probe"], rel=1e-12)
    assert {k: v for k, v in after.energy_breakdown_j.items() if k != "probe"} == before.energy_breakdown_j
    assert "probe" not in after.area_breakdown_mm2 and after.area_mm2 == before.area_mm2
    again = ck.estimate(lenet, "rram-22nm")
    assert "probe" not in again.energy_breakdown_j and again.energy_j == crossbar.energy_j

    class Lost(Component):
        name, unit = "lost", "cam"

        def energy_per_event_j(self, ctx):
            return {"conversions": 1e-15}

    registered(Lost())
    with pytest.raises(InputError, match="component 'lost' prices the CAM event 'conversions'"):
        ck.cam.estimate(prog, X, spec, "xtime")


def test_a_kind_registered_again_is_priced_afresh_on_the_same_workload():
    """Priced rows of a workload are cached; registering a kind again must not leave its old events."""
    from cimkit.workload import registry as R

    wl = ck.Workload(
        "t",
        (1, 16, 64),
        [
            R.linear_op("fc", 64, 64, (1, 16, 64), (1, 16, 64)),
            R.digital_op("g", R.OP_RULES.get("act:gelu"), (1, 16, 64), (1, 16, 64)),
        ],
    )
    before = ck.estimate(wl, "rram-22nm").energy_breakdown_j["digital"]
    old = R.kind_info("act")
    try:
        R.register_kind("act", default_unit="digital", events=lambda op: {"exp": 1000.0 * op.elements}, replace=True)
        after = ck.estimate(wl, "rram-22nm").energy_breakdown_j["digital"]
    finally:
        R.KINDS.register("act", old, replace=True)
    assert after > 100 * before
    assert ck.estimate(wl, "rram-22nm").energy_breakdown_j["digital"] == pytest.approx(before, rel=1e-12)


def test_an_events_table_entry_set_anew_is_priced_afresh():
    from cimkit.workload import registry as R

    wl = ck.Workload(
        "w",
        (64,),
        [
            Op("fc", "linear", in_features=64, out_features=64, vectors=1, macs=4096),
            Op("g", "act", fn="gelu", elements=4096),
        ],
    )
    before = ck.estimate(wl, "rram-22nm").layers[1]["energy_digital_j"]
    old = R.EVENTS["gelu"]
    try:
        R.EVENTS["gelu"] = lambda e, rows, i: {"exp": 10.0 * e}
        after = ck.estimate(wl, "rram-22nm").layers[1]["energy_digital_j"]
    finally:
        R.EVENTS["gelu"] = old
    assert after > 3 * before


def test_ops_alike_but_for_a_subclass_field_are_counted_apart():
    import dataclasses

    from cimkit.workload import registry as R

    @dataclasses.dataclass(frozen=True)
    class StepsOp(Op):
        steps: int = 1

    R.register_kind("steps_toy", default_unit="digital", events=lambda op: {"add": float(op.elements * op.steps)})
    try:
        fc = Op("fc", "linear", in_features=8, out_features=8, vectors=1, macs=64)
        ops = [fc, StepsOp("s1", "steps_toy", elements=64, steps=1), StepsOp("s8", "steps_toy", elements=64, steps=8)]
        import cimkit.spec.units as U

        digital = U.UNIT_TYPES.get("digital")
        U.UNIT_TYPES.register("digital", dataclasses.replace(digital, runs=digital.runs | {"steps_toy"}), replace=True)
        try:
            rows = {
                r["name"]: r["energy_digital_j"] for r in ck.estimate(ck.Workload("w", (8,), ops), "rram-22nm").layers
            }
        finally:
            U.UNIT_TYPES.register("digital", digital, replace=True)
    finally:
        del R.KINDS._entries["steps_toy"]
    assert rows["s8"] == pytest.approx(8 * rows["s1"], rel=1e-9)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"out_features": 10**19}, r"out_features = 10000000000000000000; sizes above 2\*\*53"),
        ({"kernel": (10**10, 10**10)}, r"kernel = .*each below 2\*\*31"),
    ],
)
def test_sizes_beyond_float64_are_refused_by_name(change, message):
    import dataclasses

    fc = Op("fc", "linear", in_features=64, out_features=64, vectors=1, macs=4096)
    with pytest.raises(InputError, match=message):
        ck.estimate(ck.Workload("w", (64,), [dataclasses.replace(fc, **change)]), "rram-22nm")
    with pytest.raises(InputError, match=r"reduce = -1; it must be a whole number >= 0"):
        ck.estimate(
            ck.Workload("w", (64,), [fc, Op("s", "softmax", fn="softmax", elements=64, reduce=-1)]), "rram-22nm"
        )


def test_a_cam_part_is_never_silently_replaced_by_another_units_component():
    from cimkit.cam import cost as cam_cost

    saved = COMPONENTS.get("noc")

    class CrossbarNoc(Component):
        name, unit = "noc", "crossbar"

    COMPONENTS.register("noc", CrossbarNoc(), replace=True)
    try:
        with pytest.raises(InputError, match=r"built-in cost component\(s\) noc were replaced"):
            cam_cost.price(ck.cam.CamSpec(), {})
    finally:
        COMPONENTS.register("noc", saved, replace=True)
