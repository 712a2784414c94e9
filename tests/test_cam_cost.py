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
    for prog, data in ((boosted, np.vstack([X, edge])),
                       (ck.cam.compile(ensemble.RandomForestClassifier(10, max_depth=4, random_state=0).fit(X, y),
                                       bits=6, X=X), X)):
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
    g_code = sum(c.g_min_us + (c.g_max_us - c.g_min_us) * d / 15 for d in nibbles)
    # row 0: open lower bound (2 cells at HRS) + the code; row 1: the code + open upper bound (2 cells at LRS)
    g_total_us = (2 * c.g_min_us + g_code) + (g_code + 2 * c.g_max_us)
    assert r.energy_breakdown_j["cells"] == pytest.approx(c.sl_voltage_v**2 * g_total_us * 1e-6 * c.search_time_ns * 1e-9)
    ml = (c.ml_cap_ff_per_cell * 2 + c.ml_cap_ff_fixed) * 1e-15 * c.ml_voltage_v**2
    assert r.energy_breakdown_j["match_lines"] == pytest.approx(2 * ml)
    assert r.energy_breakdown_j["sense"] == pytest.approx(2 * c.sa_energy_fj * 1e-15)
    assert r.energy_breakdown_j["data_lines"] == pytest.approx(
        2 * (c.dac_energy_pj * 1e-12 + spec.rows * c.dl_cap_ff_per_row * 1e-15 * spec.supply_v**2))
    assert r.energy_breakdown_j["encoder"] == pytest.approx(c.encoder_energy_pj * 1e-12)
    gated = ck.cam.estimate(prog, X, spec, "xtime+gating")  # no don't-care cell here: nothing to gate
    assert gated.energy_breakdown_j["cells"] == pytest.approx(r.energy_breakdown_j["cells"])
    doubled = ck.cam.estimate(prog, X, spec.replace(**{"circuit.sl_voltage_v": 1.0}), "xtime")
    assert doubled.energy_breakdown_j["cells"] == pytest.approx(4 * r.energy_breakdown_j["cells"])  # V^2 G t


def test_optimizations_only_remove_work(forest):
    prog, X = forest
    reports = ck.cam.compare(prog, X, SMALL)
    base = reports["xtime"]
    assert reports["raw"].energy_per_decision_j >= base.energy_per_decision_j
    for name in ("xtime+skip", "xtime+reorder+skip", "xtime+sequential", "xtime+gating", "monosparse"):
        assert reports[name].energy_breakdown_j["cells"] <= base.energy_breakdown_j["cells"] * (1 + 1e-12), name
        assert reports[name].cell_evaluations <= base.cell_evaluations + 1e-9, name
    assert reports["monosparse"].energy_per_decision_j < 0.5 * base.energy_per_decision_j
    assert reports["xtime+reorder+skip"].arrays <= base.arrays
    seq = reports["xtime+sequential"].evaluated_fraction  # monotone match lines: rows only ever drop out
    assert seq[0] == pytest.approx(1.0) and np.all(np.diff(seq) <= 1e-12)
    assert reports["xtime+sequential"].latency_s > base.latency_s
    assert base.throughput_per_s == pytest.approx(SMALL.clock_hz / SMALL.search_cycles)


def test_gating_leaves_only_tested_cells(forest):
    prog, X = forest
    spec = CamSpec().replace(**{"circuit.g_min_us": 1e-6})  # open bounds then cost (almost) nothing
    open_cells = ck.cam.estimate(prog, X, spec, "xtime")
    gated = ck.cam.estimate(prog, X, spec, "xtime+gating")
    assert gated.energy_breakdown_j["cells"] < open_cells.energy_breakdown_j["cells"]  # LRS of open upper bounds is gone
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
    res = CliRunner().invoke(app, ["trees", "--data", "wine", "--trees", "5", "--depth", "3", "--samples", "40",
                                   "--plot", str(tmp_path / "t.png"), "--json", str(out)])
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
    res = CliRunner().invoke(app, ["trees", "--data", "wine", "--trees", "3", "--depth", "3", "--samples", "20",
                                   "--cam", str(path), "--cols", "2", "--plot", ""])
    assert res.exit_code == 0, res.output
    assert "figure:" not in res.output  # --plot '' draws nothing
    assert "128x2-feature arrays" in res.output
    (tmp_path / "bad.yaml").write_text("rows: 64\nsearch_ns: 2\n")
    with pytest.raises(SpecError, match="search_ns.*allowed here"):
        CamSpec.from_yaml(tmp_path / "bad.yaml")
