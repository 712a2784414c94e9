"""Analog-CAM array layout and cost model: the layout searches exactly what the program matches, unit
energies add up by their formulas, the optimizations only remove work, and bad input is refused."""

import json

import numpy as np
import pytest
from sklearn import ensemble, tree
from sklearn.datasets import load_breast_cancer, load_digits, load_wine

import cimkit as ck
import cimkit.data
from cimkit.cam import SCHEMES, CamSpec, layout
from cimkit.errors import InputError, SpecError

xgb = pytest.importorskip("xgboost")

WINE, CANCER = load_wine(return_X_y=True), load_breast_cancer(return_X_y=True)
SMALL = CamSpec().replace(rows=32, cols=8, group_cols=2)  # several row and feature blocks on small models


@pytest.fixture(scope="module")
def forest():
    X, y = CANCER
    return ck.cam.compile(ensemble.RandomForestClassifier(15, max_depth=5, random_state=0).fit(X, y)), X


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_layout_search_finds_exactly_the_programs_matches(scheme, forest):
    prog, X = forest
    assert np.array_equal(ck.cam.matched_rows(prog, X, SMALL, scheme), prog.match(X))


@pytest.mark.parametrize("scheme", ["xtime", "monosparse"])
def test_layout_search_keeps_xgboost_semantics_and_quantized_codes(scheme):
    X, y = WINE
    boosted = ck.cam.compile(xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y))
    edge = np.repeat(X[:20], 1, axis=0)
    edge[:, 0] = np.unique(boosted.hi[np.isfinite(boosted.hi[:, 0]), 0])[0]  # inputs exactly on a bound
    for prog, data in (
        (boosted, np.vstack([X, edge])),
        (ck.cam.compile(ensemble.RandomForestClassifier(10, max_depth=4, random_state=0).fit(X, y), bits=6, X=X), X),
    ):
        assert np.array_equal(ck.cam.matched_rows(prog, data, SMALL, scheme), prog.match(data))


def test_layout_places_every_row_once_and_keeps_trees_whole(forest):
    prog, _ = forest
    for reorder in (False, True):
        lay = layout(prog, SMALL, reorder=reorder, sequential=True)
        placed = lay.slot_row[lay.used]
        assert np.array_equal(np.sort(placed), np.arange(prog.rows))
        assert np.array_equal(np.sort(lay.feature_order), np.arange(prog.n_features))
        assert len(lay.slot_row) % SMALL.rows == 0
    lay = layout(prog, CamSpec(), reorder=False, sequential=False)  # 256 rows: every tree fits in one array
    block = np.empty(prog.rows, dtype=np.int64)
    block[lay.slot_row[lay.used]] = np.flatnonzero(lay.used) // 256
    assert all(len(np.unique(block[r])) == 1 for r in prog.tree_rows)
    reordered = layout(prog, SMALL, reorder=True, sequential=True)
    tested = (~prog.dont_care).sum(axis=0)
    assert np.all(np.diff(tested[reordered.feature_order]) <= 0)  # most tested features first


def test_stump_energy_by_hand():
    """One tree, one split on one feature: every event of a search counted from the formulas."""
    X = np.linspace(0.0, 1.0, 101)[:, None]
    stump = tree.DecisionTreeClassifier(max_depth=1).fit(X, (X[:, 0] > 0.3).astype(int))
    prog = ck.cam.compile(stump, bits=8, X=X)
    spec = CamSpec()
    c = spec.circuit
    r = ck.cam.estimate(prog, X, spec, "xtime")
    code = int(prog.hi[np.isfinite(prog.hi)][0])  # the split's code: upper bound of row 0, lower of row 1
    nibbles = [code % 16, code // 16]
    # CAMSHAP's physics (issue 12): a branch draws V_sl G capped at 0.5 K1 (V_ml - V_th)^2; levels step by
    # (g_max - g_min) / 16; open lower bounds at g_HRS, open upper bounds at g_LRS
    clamp = 0.5 * c.k1_ua_per_v2 * 1e-6 * (c.ml_voltage_v - c.v_th_v) ** 2
    assert clamp == pytest.approx(2.88e-6)

    def i_branch(g_us):
        return min(c.sl_voltage_v * g_us * 1e-6, clamp)

    i_code = sum(i_branch(c.g_min_us + (c.g_max_us - c.g_min_us) * d / 16) for d in nibbles)
    # row 0: open lower bound (2 cells at HRS) + the code; row 1: the code + open upper bound (2 cells at LRS)
    i_total = (2 * i_branch(c.g_hrs_us) + i_code) + (i_code + 2 * i_branch(c.g_lrs_us))
    t = c.search_time_ns * 1e-9
    assert r.energy_breakdown_j["cells"] == pytest.approx(t * c.sl_voltage_v * i_total)
    ml = (c.ml_cap_ff_per_col + c.precharge_cap_ff) * 1e-15 * c.ml_voltage_v**2  # one feature column per row
    assert r.energy_breakdown_j["match_lines"] == pytest.approx(2 * ml)
    assert r.energy_breakdown_j["sense"] == pytest.approx(2 * c.sense_cap_ff * 1e-15 * c.ml_voltage_v**2)
    r_out = t / (spec.rows * c.dl_cap_ff_per_row * 1e-15) - 0.5 * c.dl_wire_ohm_per_row * (spec.rows - 1)
    assert r.energy_breakdown_j["data_lines"] == pytest.approx(
        2 * (c.dac_energy_pj * 1e-12 + t * c.dl_voltage_v**2 / r_out)
    )
    assert r.energy_breakdown_j["encoder"] == pytest.approx(c.encoder_energy_pj * 1e-12)
    gated = ck.cam.estimate(prog, X, spec, "xtime+gating")  # no don't-care cell here: nothing to gate
    assert gated.energy_breakdown_j["cells"] == pytest.approx(r.energy_breakdown_j["cells"])
    # below the clamp the energy goes as V_sl^2 G t: in a 100x smaller window, doubling V_sl gives 4x
    low = spec.replace(
        **{"circuit.g_min_us": 0.01, "circuit.g_max_us": 1.0, "circuit.g_hrs_us": 1e-4, "circuit.g_lrs_us": 1.1}
    )
    assert 1.6 * low.circuit.g_lrs_us * 1e-6 < clamp  # no branch reaches the clamp even at V_sl = 1.6 V
    base = ck.cam.estimate(prog, X, low, "xtime")
    doubled = ck.cam.estimate(prog, X, low.replace(**{"circuit.sl_voltage_v": 1.6}), "xtime")
    assert doubled.energy_breakdown_j["cells"] == pytest.approx(4 * base.energy_breakdown_j["cells"])  # V^2 G t
    # above the clamp, linearly in V_sl: with every level at >= 10 uS, every branch is clamped
    hot = {"circuit.g_min_us": 10.0, "circuit.g_hrs_us": 10.0}
    capped = ck.cam.estimate(prog, X, spec.replace(**hot), "xtime")
    capped2 = ck.cam.estimate(prog, X, spec.replace(**hot, **{"circuit.sl_voltage_v": 1.6}), "xtime")
    assert capped.energy_breakdown_j["cells"] == pytest.approx(t * c.sl_voltage_v * 8 * clamp)  # 2 rows x 4 branches
    assert capped2.energy_breakdown_j["cells"] == pytest.approx(2 * capped.energy_breakdown_j["cells"])  # T V_sl I_max


def _no_events():
    return dict.fromkeys(
        (
            "dl_drives",
            "ml_rows",
            "ml_cells",
            "cell_amps",
            "senses",
            "array_searches",
            "leaf_bits_read",
            "adds",
            "noc_bit_mm",
            "arrays",
            "cells_stored",
            "dacs",
            "sense_amps",
            "leaf_bits_stored",
        ),
        0.0,
    )


def test_camshap_per_cell_and_per_row_figures():
    """A 128-feature-column row with CAMSHAP's hw.json figures (issue 12, ../shared/reference/acam.md): match
    line C_ml x 128 x V_ml^2 = 87.55 fJ, precharge 14.74 fJ, sense 18.0 fJ per row and search (exact); a 4-bit
    cell's search line at most T_clk V_sl x 2 x 2.88 uA = 4.608 fJ (acam.md: 4.61); a driven feature column
    (two 4-bit data lines) at 256 rows 46.14 fJ (acam.md, to its 4 digits)."""
    from cimkit.cam.cost import price

    spec = CamSpec().replace(cols=128, group_cols=128)
    c = spec.circuit

    def one(**events):
        return price(spec, {**_no_events(), **events})[0]

    ml = one(ml_cells=128 * spec.cells_per_feature)["match_lines"]
    assert ml == pytest.approx(1.9e-15 * 128 * 0.6**2, rel=1e-12)  # 87.552 fJ
    assert ml == pytest.approx(87.6e-15, rel=1e-3)
    assert one(ml_rows=1)["match_lines"] == pytest.approx(40.95e-15 * 0.6**2, rel=1e-12)  # 14.742 fJ
    assert one(senses=1)["sense"] == pytest.approx(50e-15 * 0.6**2, rel=1e-12)  # 18.0 fJ
    assert one(dl_drives=2)["data_lines"] == pytest.approx(46.14e-15, rel=1e-3)
    assert c.branch_clamp_a == pytest.approx(2.88e-6, rel=1e-12)
    assert one(cell_amps=2 * c.branch_clamp_a)["cells"] == pytest.approx(4.608e-15, rel=1e-12)
    assert one(cell_amps=2 * c.branch_clamp_a)["cells"] == pytest.approx(4.61e-15, rel=1e-3)


def test_search_line_energy_per_cell_on_real_forests(forest):
    """Per evaluated 4-bit cell the search line never exceeds the clamp's 4.608 fJ. On the test forest's
    inputs with every don't-care drawing current (xtime) the average is reported in docs/cam.md next to
    CAMSHAP's 2.33 fJ on its data sets; a 128-column row of it stays below the 1.18 pJ cap (CAMSHAP logs
    about 597 fJ)."""
    prog, X = forest
    per_cell = {}
    for scheme in ("xtime", "xtime+gating", "monosparse"):
        r = ck.cam.estimate(prog, X, CamSpec(), scheme)
        per_cell[scheme] = r.energy_breakdown_j["cells"] / (r.cell_evaluations * CamSpec().cells_per_feature)
        assert 0 < per_cell[scheme] <= 4.608e-15 * (1 + 1e-9), scheme
    assert 1.5e-15 < per_cell["xtime"] < 4.608e-15  # open lower bounds at g_HRS draw almost nothing
    assert per_cell["xtime+gating"] < per_cell["xtime"]


def test_optimizations_only_remove_work(forest):
    prog, X = forest
    reports = ck.cam.compare(prog, X, SMALL)
    base = reports["xtime"]
    assert reports["raw"].energy_per_decision_j >= base.energy_per_decision_j
    for name in ("xtime+skip", "xtime+reorder+skip", "xtime+sequential", "xtime+gating", "monosparse"):
        assert reports[name].energy_breakdown_j["cells"] <= base.energy_breakdown_j["cells"] * (1 + 1e-12), name
        assert reports[name].cell_evaluations <= base.cell_evaluations + 1e-9, name
    # was "< 0.5 x xtime" under the old assumed constants (unclamped search line, ~50 fJ per cell). With
    # CAMSHAP's divider clamp (issue 12) a cell's search line is at most 4.6 fJ, so the per-row precharge and
    # sense (33 fJ per row and segment) and match line (6.8 fJ per column) and the leaf reads weigh more and all of MonoSparse
    # saves 1.9x here; what must hold is that it beats xtime and every single optimization on this forest
    for name in ("xtime+skip", "xtime+reorder+skip", "xtime+sequential", "xtime+gating"):
        assert reports["monosparse"].energy_per_decision_j < reports[name].energy_per_decision_j, name
    assert reports["monosparse"].energy_per_decision_j < base.energy_per_decision_j
    assert reports["xtime+reorder+skip"].arrays <= base.arrays
    seq = reports["xtime+sequential"].evaluated_fraction  # monotone match lines: rows only ever drop out
    assert seq[0] == pytest.approx(1.0) and np.all(np.diff(seq) <= 1e-12)
    assert reports["xtime+sequential"].latency_s > base.latency_s
    assert base.throughput_per_s == pytest.approx(SMALL.clock_hz / SMALL.search_cycles)


def test_gating_leaves_only_tested_cells(forest):
    prog, X = forest
    spec = CamSpec().replace(**{"circuit.g_hrs_us": 1e-6})  # open lower bounds then cost (almost) nothing
    open_cells = ck.cam.estimate(prog, X, spec, "xtime")
    gated = ck.cam.estimate(prog, X, spec, "xtime+gating")
    assert (
        gated.energy_breakdown_j["cells"] < open_cells.energy_breakdown_j["cells"]
    )  # g_LRS of open upper bounds is gone
    assert gated.energy_breakdown_j["match_lines"] == pytest.approx(open_cells.energy_breakdown_j["match_lines"])


def test_skipping_drops_all_dont_care_arrays():
    X, y = load_digits(return_X_y=True)  # 64 pixels, many never tested
    prog = ck.cam.compile(ensemble.RandomForestClassifier(20, max_depth=6, random_state=0).fit(X, y))
    r = ck.cam.compare(prog, X[:200], CamSpec(), ("xtime", "xtime+skip", "xtime+reorder+skip"))
    assert r["xtime+reorder+skip"].arrays < r["xtime+skip"].arrays <= r["xtime"].arrays
    assert r["xtime+reorder+skip"].total_area_mm2 < r["xtime"].total_area_mm2


def test_bad_input(forest):
    prog, X = forest
    with pytest.raises(InputError, match="unknown scheme"):
        ck.cam.estimate(prog, X, scheme="fastest")
    with pytest.raises(InputError, match="shape"):
        ck.cam.estimate(prog, X[:, :3])
    with pytest.raises(InputError, match="at least one"):
        ck.cam.estimate(prog, X[:0])
    with pytest.raises(SpecError, match="rows"):
        CamSpec.from_dict({"rows": 0})
    with pytest.raises(SpecError, match="group_cols"):
        CamSpec.from_dict({"cols": 4, "group_cols": 8})
    with pytest.raises(SpecError, match="g_min_us"):
        CamSpec.from_dict({"circuit": {"g_min_us": 10, "g_max_us": 5}})
    with pytest.raises(SpecError, match="allowed here"):
        CamSpec.from_dict({"circuit": {"ml_cap": 1}})
    with pytest.raises(SpecError, match="unknown field"):
        CamSpec().replace(colums=8)


def test_tabular_data_offline():
    pytest.importorskip("river")
    t = ck.data.tabular("shuttle")
    assert t.x_train.shape[1] == 9 and len(t.y_train) + len(t.y_test) == 49_097
    assert 0.06 < t.y_train.mean() < 0.08  # ~7% anomalies
    s = ck.data.tabular("synthetic", samples=400, features=12, seed=3)
    assert s.x_test.shape == (100, 12)
    assert np.array_equal(s.x_train, ck.data.tabular("synthetic", samples=400, features=12, seed=3).x_train)
    with pytest.raises(InputError, match="unknown data set"):
        ck.data.tabular("iris2")


def test_sparsity_grows_with_features_and_falls_with_depth():
    from cimkit.cam.experiment import sparsity_sweep

    rows = sparsity_sweep(depths=(2, 8), trees=(5,), features=(4, 32), base_trees=5, samples=600)
    by = {(r["varied"], r["value"]): r["program_sparsity"] for r in rows}
    assert by[("features", 32)] > by[("features", 4)]
    assert by[("depth", 2)] > by[("depth", 8)]


def test_trees_command(tmp_path):
    from typer.testing import CliRunner

    from cimkit.cli import app

    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        app,
        [
            "trees",
            "--data",
            "wine",
            "--trees",
            "5",
            "--depth",
            "3",
            "--samples",
            "40",
            "--plot",
            str(tmp_path / "t.png"),
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "monosparse" in res.output and (tmp_path / "t.png").is_file()
    data = json.loads(out.read_text())
    assert data["cam_predictions_equal"] and set(data["schemes"]) == set(SCHEMES)
    assert data["schemes"]["monosparse"]["energy_j"] < data["schemes"]["raw"]["energy_j"]


def test_cam_spec_yaml_round_trip_and_cli_overrides(tmp_path):
    from typer.testing import CliRunner

    from cimkit.cli import app

    spec = CamSpec().replace(rows=128, **{"circuit.g_max_us": 50.0})
    path = tmp_path / "cam.yaml"
    spec.to_yaml(path)
    assert CamSpec.from_yaml(path) == spec
    res = CliRunner().invoke(
        app,
        [
            "trees",
            "--data",
            "wine",
            "--trees",
            "3",
            "--depth",
            "3",
            "--samples",
            "20",
            "--cam",
            str(path),
            "--cols",
            "2",
            "--plot",
            "",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "figure:" not in res.output  # --plot '' draws nothing
    assert "128x2-feature arrays" in res.output
    (tmp_path / "bad.yaml").write_text("rows: 64\nsearch_ns: 2\n")
    with pytest.raises(SpecError, match="search_ns.*allowed here"):
        CamSpec.from_yaml(tmp_path / "bad.yaml")
