"""One result protocol: every result type offers to_dict / to_json / to_csv / table / figures, with the same
names for the same things (energy_j a float total, its parts in energy_breakdown_j), strict JSON with null for
undefined figures, atomic files."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from rich.console import Console

import cimkit as ck
from cimkit.report import ALIASES, Result, check_names

optuna = pytest.importorskip("optuna")


def _strict(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def _render(table) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


@pytest.fixture(scope="module")
def rram():
    return ck.HardwareSpec.preset("rram-22nm")


@pytest.fixture(scope="module")
def lenet():
    return ck.zoo.workload("lenet")


@pytest.fixture(scope="module")
def report(lenet, rram):
    return ck.estimate(lenet, rram)


@pytest.fixture(scope="module")
def infeasible(lenet, rram):
    r = ck.estimate(lenet, rram.replace(**{"chip.tiles": 1}))
    assert not r.feasible
    return r


@pytest.fixture(scope="module")
def many(lenet, rram):
    return ck.estimate_many(lenet, [rram, rram.replace(**{"chip.tiles": 1}), rram.replace(**{"periphery.adc_bits": 5})])


@pytest.fixture(scope="module")
def trees():
    from cimkit.cam.experiment import run_trees

    result, _ = run_trees(
        "breast_cancer", "rf", trees=5, depth=3, energy_samples=40, schemes=("raw", "xtime", "monosparse")
    )
    return result


@pytest.fixture(scope="module")
def cam(trees):
    return trees.reports["monosparse"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from cimkit.explore import StudyConfig, run_study

    cfg = StudyConfig.model_validate(
        {
            "name": "proto",
            "workloads": ["lenet"],
            "space": {"adc_bits": {"choices": [4, 5, 6]}, "crossbar": {"choices": [64, 128]}},
            "objective": {"mode": "pareto", "metrics": ["energy", "area"]},
            "sampler": {"name": "random", "seed": 0},
            "trials": 6,
            "batch": 3,
        }
    )
    return run_study(cfg, tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def joint():
    from cimkit.explore import JointResult

    return JointResult(
        ["vgg8", "lenet"],
        "vgg8",
        {"vgg8": 2.0, "lenet": 4.0},
        {"vgg8": 1.5, "lenet": 2.0},
        {"vgg8": 1.2, "lenet": 1.0},
        {"largest": {"adc_bits": 5}, "joint": {"adc_bits": 4}},
    )


TYPES = ["report", "infeasible", "many", "cam", "trees", "study", "joint"]


@pytest.fixture
def result(request):
    return request.getfixturevalue(request.param)


# ---- every type implements the whole protocol ---------------------------------------------------------------
@pytest.mark.parametrize("result", TYPES, indirect=True)
def test_every_result_implements_the_protocol(result, tmp_path):
    assert isinstance(result, Result)
    data = result.to_dict()
    assert data["result"] == type(result).__name__
    assert check_names(data, many=type(result).__name__ == "ManyReport") == []
    # strict JSON, written atomically, and the same data back
    path = tmp_path / "out" / "r.json"
    text = result.to_json(path)
    assert _strict(path.read_text()) == _strict(text) == json.loads(json.dumps(data))
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]  # no temporary left behind
    # CSV: the fixed columns first, one line per record
    rows = result.records()
    assert not [k for r in rows for k, v in r.items() if isinstance(v, np.generic)]  # plain Python values
    out = result.to_csv(tmp_path / "r.csv")
    with out.open(newline="") as fh:
        read = list(csv.reader(fh))
    header, body = read[0], read[1:]
    assert header[: len(result.csv_columns())] == list(result.csv_columns())
    assert len(body) == len(rows) > 0 and all(len(r) == len(header) for r in body)
    assert "nan" not in {cell.lower() for r in body for cell in r}
    # a table that renders, and figures that exist
    assert _render(result.table()).strip()
    figures = result.figures(tmp_path / "figs")
    assert figures and all(
        f.parent == tmp_path / "figs" and f.suffix == ".png" and f.stat().st_size > 1000 for f in figures
    )
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(f.name for f in figures)


def test_a_result_must_implement_every_method():
    class Half(Result):
        def to_dict(self):
            return {"result": "Half"}

    with pytest.raises(TypeError, match="abstract"):
        Half()


# ---- the same names for the same things ------------------------------------------------------------------------
def test_energy_j_is_a_float_total_everywhere(report, many, cam, trees, study):
    r = report.to_dict()
    assert isinstance(r["energy_j"], float) and isinstance(r["energy_breakdown_j"], dict)
    assert r["energy_j"] == pytest.approx(sum(r["energy_breakdown_j"].values()), rel=1e-9)
    assert isinstance(r["area_mm2"], float) and r["area_mm2"] == pytest.approx(sum(r["area_breakdown_mm2"].values()))
    assert set(r["latency_breakdown_s"]) and isinstance(r["latency_s"], float)
    c = cam.to_dict()
    assert isinstance(c["energy_j"], float) and c["energy_j"] == pytest.approx(sum(c["energy_breakdown_j"].values()))
    assert isinstance(c["area_mm2"], float) and c["area_mm2"] == pytest.approx(sum(c["area_breakdown_mm2"].values()))
    for old, new in ALIASES.items():  # the older names stay, equal to the standard ones
        assert c[old] == c[new]
    t = trees.to_dict()
    assert all(
        isinstance(s["energy_j"], float) and isinstance(s["energy_breakdown_j"], dict) for s in t["schemes"].values()
    )
    m = many.to_dict()
    assert m["configurations"] == 3 and len(m["energy_j"]) == 3 and isinstance(m["energy_j"][0], float)
    assert m["energy_j"][0] == pytest.approx(r["energy_j"], rel=1e-12)
    assert m["energy_breakdown_j"]["adc"][0] == pytest.approx(r["energy_breakdown_j"]["adc"], rel=1e-12)
    assert sum(v[0] for v in m["energy_breakdown_j"].values()) == pytest.approx(m["energy_j"][0], rel=1e-9)
    s = study.to_dict()
    assert s["best"] and all(isinstance(b["energy_j"], float) and isinstance(b["area_mm2"], float) for b in s["best"])
    assert s["objectives"] == ["energy", "area"]
    # every completed trial, the best ones among them with the same figures
    assert len(s["trials"]) == study.completed == len(study.records())
    by_number = {t["number"]: t for t in s["trials"]}
    for b in s["best"]:
        t = by_number[b["number"]]
        assert t["feasible"] and t["values"] == b["values"] and t["params"] == b["params"]
        assert (t["energy_j"], t["area_mm2"]) == (b["energy_j"], b["area_mm2"])
    assert sum(t["feasible"] for t in s["trials"]) == s["feasible"]


def test_per_row_names_match_the_totals(report, many, cam, trees, study):
    assert {"name", "kind", "energy_j", "latency_s"} <= set(report.records()[0])
    assert sum(row["energy_j"] for row in cam.records()) == pytest.approx(cam.energy_j)
    assert [row["scheme"] for row in trees.records()] == list(trees.reports)
    assert trees.records()[0]["energy_j"] == trees.reports["raw"].energy_j
    assert many.records()[0]["energy_j"] == many.energy_j[0]
    assert len(study.records()) == study.completed


# ---- undefined figures are null, never NaN ------------------------------------------------------------------
def test_infeasible_figures_are_null(infeasible, many, tmp_path):
    d = infeasible.to_dict()
    assert d["feasible"] is False and d["reason"]
    assert all(d[k] is None for k in ("energy_j", "area_mm2", "latency_s", "tops_per_w"))
    # nothing of an infeasible design is priced: breakdowns, units and layer figures are null like the totals,
    # while the layers still say what did not fit
    assert all(
        v is None for k in ("energy_breakdown_j", "area_breakdown_mm2", "latency_breakdown_s") for v in d[k].values()
    )
    assert all(u["energy_j"] is None and u["latency_s"] is None for u in d["units"].values())
    assert all(row["energy_j"] is None and row["latency_s"] is None for row in d["layers"])
    assert sum(row["arrays"] for row in d["layers"]) > 0
    m = _strict(many.to_json())
    assert m["feasible"] == [True, False, True]
    assert m["energy_j"][1] is None and m["area_mm2"][1] is None and m["tops_per_w"][1] is None
    assert all(v[1] is None for v in m["energy_breakdown_j"].values())
    many.to_csv(tmp_path / "m.csv")
    with (tmp_path / "m.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[1]["feasible"] == "False" and rows[1]["energy_j"] == "" and rows[0]["energy_j"] != ""


def test_a_study_without_feasible_design_has_no_figures(tmp_path):
    from cimkit.explore import StudyConfig, run_study

    cfg = StudyConfig.model_validate(
        {
            "name": "none",
            "workloads": ["lenet"],
            "space": {"adc_bits": {"choices": [4, 5]}},
            "area_max_mm2": 1e-6,
            "sampler": {"name": "random"},
            "trials": 2,
            "batch": 2,
        }
    )
    result = run_study(cfg, tmp_path / "o")
    assert result.figures(tmp_path / "f") == [] and result.to_dict()["best"] == []
    assert "no feasible design" in _render(result.table())
    assert _strict(result.to_json())["feasible"] == 0


# ---- Report: the new contract fields -----------------------------------------------------------------------------
def test_report_units_endurance_and_unit_column_are_shown(report, tmp_path):
    import dataclasses

    layers = [{**row, "unit": "crossbar"} for row in report.layers]
    r = dataclasses.replace(
        report,
        layers=layers,
        units={"crossbar": {"kinds": ["conv", "linear"], "energy_j": 1e-7, "area_mm2": 2.5}},
        endurance={"writes_per_cell_per_inference": 0.5, "inferences_per_s": 100.0, "lifetime_s": 2e8},
    )
    data = _strict(r.to_json())
    assert data["units"]["crossbar"]["kinds"] == ["conv", "linear"] and data["endurance"]["lifetime_s"] == 2e8
    assert all(layer["unit"] == "crossbar" for layer in data["layers"])
    text = _render(r.table())
    assert "unit crossbar" in text and "conv, linear" in text and "2.5 mm^2" in text
    assert "cell writes / inference" in text and "6.34 years" in text
    header = r.to_csv(tmp_path / "u.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["name", "kind", "unit"]
    # without units or endurance nothing about them is shown, and the old JSON keys are all still there
    bare = _render(dataclasses.replace(report, units={}, endurance={}).table())
    assert "unit " not in bare and "lifetime" not in bare
    old = {
        "workload",
        "spec",
        "feasible",
        "reason",
        "area_mm2",
        "energy_j",
        "latency_s",
        "fps",
        "tops",
        "tops_per_w",
        "tops_per_mm2",
        "edp_js",
        "ops",
        "arrays",
        "tiles",
        "utilization",
        "unmapped",
        "area_breakdown_mm2",
        "energy_breakdown_j",
        "latency_breakdown_s",
        "layers",
    }
    assert old <= set(_strict(report.to_json()))


def test_figures_go_into_a_folder_that_is_created_and_refuse_a_file(report, tmp_path):
    from cimkit.errors import InputError

    (figs,) = report.figures(tmp_path / "a" / "b")
    assert figs.name == "energy_per_layer.png" and figs.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        report.figures(tmp_path / "file")


def test_joint_result_keeps_its_markdown(joint):
    text = joint.markdown()
    assert text.startswith("| workload") and "| vgg8 |" in text
    assert math.isclose(joint.to_dict()["improvement"]["lenet"], 0.5)
