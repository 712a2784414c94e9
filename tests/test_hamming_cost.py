"""HAD's binarized attention in the cost model (issue 15, point 4): ``Workload.with_hamming_attention`` rewrites
each attention into a ``hamming_score`` op, a ``topn`` op, a softmax over the N kept and a sparse A V; the
``cam_attention`` unit (spec section ``cam_attention``) prices the first two with the components
``cam_attention`` and ``topn_selector`` (``cimkit.cost.cam_attention``)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import cimkit as ck
from cimkit.ap import figures as APF
from cimkit.cost import constants as K
from cimkit.cost.components import ADC_KINDS, primitive_energy_pj
from cimkit.cost.estimate import energy_by_event
from cimkit.cost.tech import energy_factor
from cimkit.errors import InputError, SpecError
from cimkit.spec.model import CamAttentionSpec
from cimkit.workload.core import Op, Workload
from cimkit.workload.hamming import SPARSE_MATMUL, attention_ops, find_attention, hamming_op, topn_op

N = 32


def _err(data: dict) -> str:
    with pytest.raises(SpecError) as exc:
        ck.HardwareSpec.from_dict(data)
    return str(exc.value)


# ---- the transform ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, seq_len",
    [
        ("minilm-l6", 128),
        ("minilm-l6", 512),
        ("bert-base", 128),
        ("deit-tiny", None),
        ("deit-small", None),
        ("deit-tiny-distilled", None),
        ("gpt2", 64),
    ],
)
def test_the_transform_rewrites_each_attention_and_keeps_everything_else(name, seq_len):
    wl = ck.zoo.workload(name, seq_len=seq_len) if seq_len else ck.zoo.workload(name)
    had = wl.with_hamming_attention(N)
    found = find_attention(wl.ops)
    layers = sum(op.kind == "matmul" for op in wl.ops) // 2
    assert len(found) == layers > 0
    kinds = [op.kind for op in had.ops]
    assert kinds.count("hamming_score") == kinds.count("topn") == layers  # one of each per attention
    assert find_attention(had.ops) == [] and not any(op.kind == "matmul" and op.fn != SPARSE_MATMUL for op in had.ops)
    assert len(had.ops) == len(wl.ops) + layers  # Q K^T -> hamming, softmax -> topn + softmax, A V -> sparse A V
    replaced = {index for triple in found for index in triple}
    kept = [op for index, op in enumerate(wl.ops) if index not in replaced]
    assert [op for op in had.ops if op.name in {k.name for k in kept}] == kept  # the rest, unchanged, in order
    by_name = {op.name: op for op in had.ops}
    for i, j, k in found:
        qk, sm, av = wl.ops[i], wl.ops[j], wl.ops[k]
        L = qk.out_features
        n = min(N, L)
        ham, top, soft, sav = by_name[qk.name], by_name[f"{sm.name}.topn"], by_name[sm.name], by_name[av.name]
        assert (ham.kind, ham.groups, ham.vectors, ham.in_features, ham.out_features, ham.macs) == (
            "hamming_score",
            qk.groups,
            qk.vectors,
            qk.in_features,
            L,
            0,
        )
        assert (top.groups, top.vectors, top.in_features, top.out_features, top.reduce) == (
            qk.groups,
            qk.vectors,
            L,
            n,
            L,
        )
        assert soft.kind == "softmax" and soft.reduce == n and soft.elements * L == sm.elements * n
        assert sav.kind == "matmul" and sav.fn == SPARSE_MATMUL and sav.in_features == L
        assert sav.macs * L == av.macs * n  # the sparse A V does N/L of the dense product's MACs
    assert set(attention_ops(had)) == {op.name for op in had.ops if op.kind in ("hamming_score", "topn")} | {
        wl.ops[j].name for _, j, _ in found
    } | {wl.ops[k].name for _, _, k in found}


def test_a_sequence_shorter_than_n_keeps_every_key():
    wl = ck.zoo.workload("minilm-l6", seq_len=16)
    had = wl.with_hamming_attention(N)
    top = [op for op in had.ops if op.kind == "topn"]
    assert {(op.in_features, op.out_features) for op in top} == {(16, 16)}
    assert sum(op.macs for op in had.ops if op.fn == SPARSE_MATMUL) == sum(
        op.macs for op in wl.ops if op.kind == "matmul" and op.name.endswith(".av")
    )


@pytest.mark.parametrize("n_top", [0, -3, 2.5, True, "32", None])
def test_a_bad_n_top_is_refused_naming_it(n_top):
    with pytest.raises(InputError, match=r"n_top = .*whole number >= 1"):
        ck.zoo.workload("minilm-l6").with_hamming_attention(n_top)


def test_a_workload_without_attention_is_refused():
    with pytest.raises(InputError, match="workload 'vgg8' has no attention to rewrite"):
        ck.zoo.workload("vgg8").with_hamming_attention(N)


# ---- the cost of the unit: a hand count ----------------------------------------------------------------
def _tiny() -> Workload:
    fc = Op("fc", "linear", 8, 8, in_shape=(8,), out_shape=(8,), vectors=1, macs=64)
    return Workload("tiny", (1, 8), [fc, hamming_op("s", 2, 3, 10, 5), topn_op("t", 2, 3, 5, 2)])


def _hand_spec(**cam) -> ck.HardwareSpec:
    """22 nm at 0.8 V (the cost model's reference: no scaling) with the CAM figures given there too."""
    fields = {
        "technology.supply_v": 0.8,
        "cam_attention.figures_node_nm": 22.0,
        "cam_attention.figures_supply_v": 0.8,
        "cam_attention.rows": 4,
        "cam_attention.cols": 4,
        "cam_attention.rows_per_adc": 2,
    }
    fields.update({f"cam_attention.{k}": v for k, v in cam.items()})
    return ck.HardwareSpec.preset("rram-22nm").replace(**fields)


def test_the_components_price_a_tiny_case_as_counted_by_hand():
    spec = _hand_spec()
    c = spec.cam_attention
    r = ck.estimate(_tiny(), spec)
    assert [row["unit"] for row in r.layers] == ["crossbar", "cam_attention", "cam_attention"]
    # 2 heads, 3 queries, keys of 10 bits, 5 keys, top 2; arrays of 4 rows x 4 columns: a key spans ct = 3
    # arrays, a head's keys rt = 2, so 12 arrays; a row's score 0..4 in 3 bits; 11 score values (0..10) in
    # 4 bits; the histogram counts to 5 in 3 bits
    sar = ADC_KINDS.get("sar")
    horowitz = 1e-12 / float(energy_factor(K.HOROWITZ_NODE_NM, K.HOROWITZ_SUPPLY_V))
    cam_j = (
        2 * 5 * 10 * c.write_bit_energy_fj * 1e-15  # keys written
        + 3 * 2 * 5 * 3 * c.compare_row_energy_fj * 1e-15  # rows searched (per array across the key)
        + 3 * 2 * 5 * 10 * c.compare_bit_energy_fj * 1e-15  # key bits searched
        + 3 * 2 * 5 * 3 * sar.energy_pj(3, 1) * 1e-12  # each row's level converted (3 bits)
        + 3 * 2 * 5 * 2 * primitive_energy_pj("add", 4) * horowitz
    )  # partial scores added (4 bits)
    topn_j = (
        (3 * 2 * 5 + 3 * 2 * 11) * primitive_energy_pj("add", 3) * horowitz  # histogram, scan of 11 bins
        + 3 * 2 * 5 * primitive_energy_pj("cmp", 4) * horowitz
    )  # scores against the threshold
    assert r.energy_breakdown_j["cam_attention"] == pytest.approx(cam_j, rel=1e-12)
    assert r.energy_breakdown_j["topn_selector"] == pytest.approx(topn_j, rel=1e-12)
    split = energy_by_event(_tiny(), spec)
    assert split["cam_attention"]["cam_conversions"] == pytest.approx(90 * sar.energy_pj(3, 1) * 1e-12, rel=1e-12)
    # cycles at 1 GHz: 4 row writes, then per query 1 search + 2 rows x 2 cycles of a 1.5 ns SAR + 1 add;
    # the selector (two heads at once): per query 2 passes of ceil(5 / 8) + 11 bins
    assert r.latency_breakdown_s["cam_attention"] == pytest.approx((4 + 3 * (1 + 2 * 2 + 1)) * 1e-9, rel=1e-12)
    assert r.latency_breakdown_s["topn_selector"] == pytest.approx(3 * (2 + 11) * 1e-9, rel=1e-12)
    cells = 12 * 4 * 4 * c.cell_area_um2
    converters = 12 * 2 * sar.area_um2(3)
    selectors = 2 * (
        11 * 3 * (K.FLIP_FLOP_UM2 + K.FULL_ADDER_BIT_UM2) + 8 * 4 * K.FULL_ADDER_BIT_UM2 + 2 * 3 * K.FLIP_FLOP_UM2
    )
    assert r.area_breakdown_mm2["cam_attention"] == pytest.approx((cells + converters) * 1e-6, rel=1e-12)
    assert r.area_breakdown_mm2["topn_selector"] == pytest.approx(selectors * 1e-6, rel=1e-12)


def test_fixed_arrays_run_a_layer_in_rounds_at_the_same_energy():
    sized, fixed = _hand_spec(), _hand_spec(arrays=5)  # 12 arrays needed: 3 rounds of keys
    a, b = ck.estimate(_tiny(), sized), ck.estimate(_tiny(), fixed)
    assert b.energy_breakdown_j["cam_attention"] == pytest.approx(a.energy_breakdown_j["cam_attention"], rel=1e-12)
    assert b.latency_breakdown_s["cam_attention"] == pytest.approx(
        3 * a.latency_breakdown_s["cam_attention"], rel=1e-12
    )
    assert b.area_breakdown_mm2["cam_attention"] == pytest.approx(
        5 / 12 * a.area_breakdown_mm2["cam_attention"], rel=1e-12
    )
    # 5 arrays hold no whole head (6 arrays each): one selector, the heads one after the other
    assert b.latency_breakdown_s["topn_selector"] == pytest.approx(
        2 * a.latency_breakdown_s["topn_selector"], rel=1e-12
    )


def test_the_cam_figures_scale_from_their_node_to_the_chips():
    at_16 = _hand_spec(figures_node_nm=16.0)
    r16, r22 = ck.estimate(_tiny(), at_16), ck.estimate(_tiny(), _hand_spec())
    written = energy_by_event(_tiny(), at_16)["cam_attention"]["cam_bits_written"]
    assert written == pytest.approx(100 * APF.WRITE_BIT_FJ * 1e-15 / float(energy_factor(16.0, 0.8)), rel=1e-12)
    assert r16.energy_breakdown_j["topn_selector"] == r22.energy_breakdown_j["topn_selector"]  # not CAM figures


def test_estimate_many_prices_each_configuration_as_estimate_does():
    wl = ck.zoo.workload("bert-base", seq_len=256).with_hamming_attention(N)
    base = ck.HardwareSpec.preset("rram-22nm")
    specs = [
        base,
        base.replace(**{"cam_attention.cols": 32, "cam_attention.adc_type": "survey"}),
        base.replace(**{"cam_attention.rows": 128, "cam_attention.score_bits": 4, "cam_attention.arrays": 20}),
        base.replace(**{"technology.node_nm": 45, "routing": {"matmul": "crossbar"}}),
    ]
    many = ck.estimate_many(wl, specs)
    for i, spec in enumerate(specs):
        one = ck.estimate(wl, spec)
        assert many.energy_j[i] == pytest.approx(one.energy_j, rel=1e-12)
        assert many.latency_s[i] == pytest.approx(one.latency_s, rel=1e-12)
        assert many.area_mm2[i] == pytest.approx(one.area_mm2, rel=1e-12)


def test_energy_by_event_splits_the_breakdown():
    wl = ck.zoo.workload("minilm-l6", seq_len=128).with_hamming_attention(N)
    spec = ck.HardwareSpec.preset("pcm")
    r, split = ck.estimate(wl, spec), energy_by_event(wl, spec)
    for comp, events in split.items():
        assert sum(events.values()) == pytest.approx(r.energy_breakdown_j[comp], rel=1e-12, abs=1e-30)
    assert set(split["cam_attention"]) == {
        "cam_bits_written",
        "cam_rows_searched",
        "cam_bits_searched",
        "cam_conversions",
        "cam_partial_adds",
    }


# ---- HAD's A V on the digital unit or on arrays -------------------------------------------------------
def test_the_sparse_av_is_n_over_l_of_the_dense_on_either_unit():
    L = 256
    wl = ck.zoo.workload("minilm-l6", seq_len=L)
    had = wl.with_hamming_attention(N)
    base = ck.HardwareSpec.preset("rram-22nm")
    dense, sparse = ck.estimate(wl, base), ck.estimate(had, base)
    row = {r["name"]: r for r in dense.layers}
    for r in sparse.layers:
        if r["name"].endswith(".av"):
            assert r["unit"] == "digital"
            assert r["energy_digital_j"] == pytest.approx(row[r["name"]]["energy_digital_j"] * N / L, rel=1e-12)
    xbar = base.replace(routing={"matmul": "crossbar"})
    ev_dense = ck.estimate_many(wl, [xbar]).raw["events"]
    ev_sparse = ck.estimate_many(had, [xbar]).raw["events"]
    i = next(k for k, op in enumerate(wl.ops) if op.name == "layers.0.av")
    j = next(k for k, op in enumerate(had.ops) if op.name == "layers.0.av")
    # V is written whole (each query picks its own rows), each query drives only its N rows
    assert ev_sparse["cell_writes"][0, j] == ev_dense["cell_writes"][0, i] > 0
    assert ev_sparse["rows_written"][0, j] == ev_dense["rows_written"][0, i]
    assert ev_sparse["row_drives"][0, j] == pytest.approx(ev_dense["row_drives"][0, i] * N / L, rel=1e-12)
    assert ev_sparse["cell_reads"][0, j] == pytest.approx(ev_dense["cell_reads"][0, i] * N / L, rel=1e-12)
    assert ev_sparse["conversions"][0, j] == ev_dense["conversions"][0, i]  # every row tile holds chosen rows
    assert ck.estimate(had, xbar).endurance  # arrays rewritten per input


def test_had_attention_costs_less_energy_than_standard_attention():
    spec = ck.HardwareSpec.preset("rram-22nm")
    for L in (128, 512):
        wl = ck.zoo.workload("bert-base", seq_len=L)
        had = wl.with_hamming_attention(N)
        std_r, had_r = ck.estimate(wl, spec), ck.estimate(had, spec)
        part = lambda w, r: sum(x["energy_j"] for x in r.layers if x["name"] in set(attention_ops(w)))  # noqa: E731
        assert part(had, had_r) < 0.3 * part(wl, std_r)
        assert had_r.units["cam_attention"]["ops"] == 24  # 12 hamming_score + 12 topn


# ---- routing and parameters -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, expected",
    [
        (
            {"routing": {"hamming_score": "digital"}},
            ["op kind 'hamming_score' is routed to unit 'digital', which cannot run it"],
        ),
        ({"routing": {"topn": "crossbar"}}, ["'topn'", "'crossbar' runs conv, linear, matmul"]),
        (
            {"routing": {"softmax": "cam_attention"}},
            ["unit 'cam_attention', which cannot run it; 'cam_attention' runs hamming_score, topn"],
        ),
        ({"routing": {"hamming_score": "cam"}}, ["'cam', which is not a unit", "cam_attention"]),
        ({"cam_attention": {"rows": 0}}, ["cam_attention.rows = 0", "greater than or equal to 1"]),
        ({"cam_attention": {"cols": 5000}}, ["cam_attention.cols = 5000", "less than or equal to 4096"]),
        ({"cam_attention": {"arrays": 0}}, ["cam_attention.arrays = 0"]),
        ({"cam_attention": {"clock_hz": 0}}, ["cam_attention.clock_hz = 0", "greater than 0"]),
        ({"cam_attention": {"search_cycles": 0}}, ["cam_attention.search_cycles = 0"]),
        ({"cam_attention": {"compare_row_energy_fj": -1}}, ["cam_attention.compare_row_energy_fj = -1"]),
        (
            {"cam_attention": {"figures_node_nm": 3}},
            ["cam_attention.figures_node_nm = 3", "greater than or equal to 7"],
        ),
        (
            {"cam_attention": {"adc_type": "flash9"}},
            ["cam_attention.adc_type = 'flash9'", "unknown ADC kind", "mlsa, sar, survey, integrate_fire"],
        ),
        ({"cam_attention": {"score_bits": 0}}, ["cam_attention.score_bits = 0"]),
        ({"cam_attention": {"score_bits": True}}, ["cam_attention.score_bits = True", "boolean"]),
        ({"cam_attention": {"rows_per_adc": 300}}, ["rows_per_adc (300) must be at most rows (256)"]),
        ({"cam_attention": {"selector_lanes": 0}}, ["cam_attention.selector_lanes = 0"]),
        ({"cam_attention": {"colz": 3}}, ["cam_attention.colz", "unknown key", "selector_lanes"]),
    ],
)
def test_bad_routing_and_bad_cam_attention_fields_are_refused_naming_them(data, expected):
    message = _err(data)
    for part in expected:
        assert part in message


def test_a_topn_without_its_hamming_scores_is_refused():
    fc = Op("fc", "linear", 8, 8, in_shape=(8,), out_shape=(8,), vectors=1, macs=64)
    with pytest.raises(InputError, match=r"op 't' \(topn\) runs on unit 'cam_attention'.*no hamming_score op"):
        ck.estimate(Workload("w", (1, 8), [fc, topn_op("t", 2, 3, 5, 2)]), "rram-22nm")


def test_the_defaults_are_the_figures_they_cite():
    c = CamAttentionSpec()
    assert (
        c.compare_row_energy_fj,
        c.compare_bit_energy_fj,
        c.write_bit_energy_fj,
        c.cell_area_um2,
        c.clock_hz,
        c.rows,
    ) == (APF.COMPARE_ROW_FJ, APF.COMPARE_BIT_FJ, APF.WRITE_BIT_FJ, APF.CELL_AREA_UM2, APF.CLOCK_HZ, APF.TILE_ROWS)
    from cimkit.cam import CamSpec

    assert (c.figures_node_nm, c.figures_supply_v) == (CamSpec().node_nm, CamSpec().supply_v)
    assert c.adc_type in ADC_KINDS and c.arrays is None and c.score_bits is None


# ---- nothing else changes -------------------------------------------------------------------------------
#: (area mm^2, energy J, latency s) computed with the code before the CAM attention unit (HEAD a984fae)
BEFORE = {
    ("pcm", "minilm-l6", "digital"): (44.73222609382774, 5.457762532287015e-05, 0.0029989955053487376),
    ("pcm", "bert-base", "crossbar"): (255.76177020024548, 0.0027664797391642394, 0.04091151450477981),
    ("pcm", "vgg8", "digital"): (28.071998927531606, 9.819248368164624e-06, 0.00038073571839508446),
    ("rram-22nm", "minilm-l6", "digital"): (93.57524527752805, 0.0002469880253216461, 0.009442605059312109),
    ("rram-22nm", "bert-base", "crossbar"): (489.4144537070224, 0.010981041196519655, 0.15332517159700296),
    ("rram-22nm", "gpt2", "crossbar"): (563.1492082183986, 0.002835782135734328, 0.030220029164089522),
    ("rram-22nm", "vgg8", "digital"): (58.648256298455046, 7.504624947368123e-05, 0.0016697264591811986),
    ("sram", "minilm-l6", "digital"): (234.89077616134924, 0.0007134935956892189, 0.005746966898355201),
    ("sram", "bert-base", "crossbar"): (2110.5241214521434, 0.03055763724698017, 0.08353818043258882),
    ("sram", "vgg8", "digital"): (282.3398340035271, 0.0003136130378056995, 0.0013899682548560001),
}
SEQ = {"minilm-l6": 128, "bert-base": 512, "gpt2": 128}


@pytest.mark.parametrize("preset, name, matmul", sorted(BEFORE))
def test_existing_presets_price_existing_workloads_as_before(preset, name, matmul):
    spec = ck.HardwareSpec.preset(preset)
    spec = spec.replace(routing={"matmul": "crossbar"}) if matmul == "crossbar" else spec
    wl = ck.zoo.workload(name, seq_len=SEQ[name]) if name in SEQ else ck.zoo.workload(name)
    r = ck.estimate(wl, spec)
    assert (r.area_mm2, r.energy_j, r.latency_s) == BEFORE[(preset, name, matmul)]
    assert r.area_breakdown_mm2["cam_attention"] == r.area_breakdown_mm2["topn_selector"] == 0.0
    assert r.energy_breakdown_j["cam_attention"] == r.energy_breakdown_j["topn_selector"] == 0.0


def test_no_preset_routes_to_the_cam_attention_unit():
    for name in ck.HardwareSpec.presets():
        spec = ck.HardwareSpec.preset(name)
        assert "cam_attention" not in spec.routing.values()
        assert spec.cam_attention == CamAttentionSpec()
        assert spec.unit_for("hamming_score") == spec.unit_for("topn") == "cam_attention"
        assert spec.unit_for("matmul") in ("digital", "crossbar") and spec.unit_for("softmax") == "digital"


def test_pricing_had_attention_does_not_import_torch():
    code = (
        "import sys\nimport cimkit as ck\n"
        "wl = ck.zoo.workload('minilm-l6', seq_len=64).with_hamming_attention(16)\n"
        "r = ck.estimate(wl, 'rram-22nm')\n"
        "assert r.energy_breakdown_j['cam_attention'] > 0\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unit_quantities_follow_the_workload():
    wl = ck.zoo.workload("bert-base", seq_len=512).with_hamming_attention(N)
    ev = ck.estimate_many(wl, ["rram-22nm"]).raw["events"]
    # 12 heads x 2 arrays of 256 keys x 1 array across 64 bits; 7-bit scores, 65 values; counts to 512 in 10 bits
    assert (
        ev["cam_arrays"][0],
        ev["cam_selectors"][0],
        ev["cam_score_bits"][0],
        ev["cam_bins"][0],
        ev["cam_counter_bits"][0],
        ev["cam_kept"][0],
    ) == (24, 12, 7, 65, 10, N)
    assert ev["cam_converters"][0] == 24 * 256 / 8
    assert math.isclose(float(np.sum(ev["cam_bits_written"])), 12 * 12 * 512 * 64)
