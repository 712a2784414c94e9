"""Summaries: a short readable ``repr`` in a terminal, a small escaped ``_repr_html_`` in Jupyter and ``to_pandas``
for every result (cost reports, CAM reports, studies), for CAM programs, study files and converted models."""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import CimkitError, MissingDependencyError
from cimkit.report import Result, check_names
from cimkit.report.protocol import si

EVIL = "<script>alert(1)</script>"
_PREFIX = {"T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3, "": 1.0, "m": 1e-3, "\u00b5": 1e-6, "n": 1e-9, "p": 1e-12}


# ---- helpers --------------------------------------------------------------------------------------------------
def _lines(text: str) -> dict[str, str]:
    """The "label  text" lines of a summary, by label."""
    out = {}
    for line in text.splitlines()[1:]:
        label, _, value = line.strip().partition("  ")
        out[label] = value.strip()
    return out


def _quantity(text: str, unit: str) -> float:
    """The number of "216 nJ" (SI prefix, ``unit``) or "10.14 mm²" or "28.91%"."""
    if unit == "%":
        return float(text.rstrip("%")) / 100
    m = re.fullmatch(rf"(-?[0-9.e+-]+) ?([TGMkmµnp]?){re.escape(unit)}", text)
    assert m, f"{text!r} is not a quantity in {unit}"
    return float(m.group(1)) * _PREFIX[m.group(2)]


def _close(text: str, unit: str, expected: float, rel: float = 5e-3) -> None:
    assert _quantity(text, unit) == pytest.approx(expected, rel=rel), (text, expected)


class _Html(HTMLParser):
    VOID = {"br", "hr", "img", "meta", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse_html(markup: str) -> _Html:
    p = _Html()
    p.feed(markup)
    p.close()
    assert not p.stack, f"unclosed tags {p.stack}"
    assert "script" not in p.tags and "style" not in p.tags  # escaped, self-contained
    return p


def _same(a, b) -> bool:
    none = lambda v: v is None or (isinstance(v, float) and math.isnan(v))
    if none(a) or none(b):
        return none(a) and none(b)
    return bool(a == b)


def _check_frame(df, records: list[dict], csv_columns: tuple[str, ...]) -> None:
    names = list(dict.fromkeys([*csv_columns, *(k for r in records for k in r)]))
    assert list(df.columns) == names
    assert len(df) == len(records)
    for row, rec in zip(df.to_dict("records"), records):
        assert all(_same(row[k], rec.get(k)) for k in names), (row, rec)


# ---- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rram():
    return ck.HardwareSpec.preset("rram-22nm")


@pytest.fixture(scope="module")
def report(rram):
    rep = ck.estimate(ck.zoo.workload("vgg8"), rram)
    layers = [dict(r) for r in rep.layers]
    layers[0]["name"] = EVIL
    return dataclasses.replace(rep, workload=EVIL, layers=layers)


@pytest.fixture(scope="module")
def many(rram):
    lenet = ck.zoo.workload("lenet")
    specs = [rram, rram.replace(**{"chip.tiles": 1}), rram.replace(**{"periphery.adc_bits": 5})]
    out = ck.estimate_many(lenet, specs)
    return dataclasses.replace(out, specs=[EVIL, "tiny", "adc5"])


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return X, np.array(["setosa", EVIL, "virginica"])[y]


@pytest.fixture(scope="module")
def program(iris):
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    return ck.cam.compile(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y))


@pytest.fixture(scope="module")
def cam_report(program, iris):
    from cimkit.cam.cost import estimate

    return dataclasses.replace(estimate(program, iris[0][:40]), scheme=EVIL)


@pytest.fixture(scope="module")
def study_config():
    from cimkit.explore import StudyConfig

    return StudyConfig.model_validate(
        {
            "name": "proto",
            "workloads": ["lenet", EVIL],
            "space": {"adc_bits": {"choices": [4, 5, 6]}, "crossbar": {"choices": [64, 128]}},
            "objective": {"mode": "pareto", "metrics": ["energy", "area"]},
            "sampler": {"name": "random", "seed": 0},
            "area_max_mm2": 50,
            "trials": 4,
            "batch": 2,
        }
    )


@pytest.fixture(scope="module")
def study_result(study_config, tmp_path_factory):
    from cimkit.explore import run_study

    return run_study(study_config.with_overrides(workloads=["lenet"]), tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def joint():
    from cimkit.explore import JointResult

    return JointResult(
        ["vgg8", EVIL], "vgg8", {"vgg8": 2.0, EVIL: 4.0}, {"vgg8": 1.5, EVIL: 2.0}, {"vgg8": 1.2, EVIL: 1.0}, {}
    )


@pytest.fixture(scope="module")
def robustness_study():
    from cimkit.robust.study import RobustnessStudy

    return RobustnessStudy.validate_data(
        {
            "name": "tiny",
            "images": 40,
            "chips": 2,
            "models": [{"name": "small_cnn", "label": EVIL, "epochs": 1}, {"name": "small_cnn", "label": "b"}],
            "attacks": {"strengths": {"fgsm": [0.0, 0.1]}, "sides": ["ideal", "chip"], "models": ["b"]},
            "faults": {"kinds": {"dead_column": [0.0, 0.2], "adc_bit_flip": [0.0]}},
            "drift": {"times_s": [1, 3.156e7], "compensation": ["none"]},
        }
    )


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.act = nn.ReLU()
        self.add_module(EVIL, nn.Linear(32, 10))

    def forward(self, x):
        return getattr(self, EVIL)(self.act(self.fc1(x)))


@pytest.fixture(scope="module")
def cim_mlp(rram):
    torch.manual_seed(0)
    return ck.convert(_MLP(), rram, seed=3)


@pytest.fixture(scope="module")
def chip(cim_mlp):
    return ck.sim.summary(cim_mlp)


RESULTS = ["report", "many", "cam_report", "study_result", "joint", "chip"]


# ---- every result ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RESULTS)
def test_a_result_repr_is_short_and_its_headline_comes_from_to_dict(name, request):
    result = request.getfixturevalue(name)
    assert isinstance(result, Result)
    text = repr(result)
    lines = text.splitlines()
    assert 3 <= len(lines) <= 15 and max(map(len, lines)) <= 140, text
    assert lines[0] == f"{type(result).__name__} ({len(result.records())} rows)"
    assert "to_dict" not in text and "{" not in text  # never the whole data
    data, head = result.to_dict(), result.headline()
    assert head and all(data[k] == v for k, v in head.items())  # the same figures as to_dict
    assert len(_lines(text)) == len(head)
    assert str(result) == text


def test_a_cost_report_repr_names_the_totals_with_units(report):
    d, shown = report.to_dict(), _lines(repr(report))
    _close(shown["energy"], "J", d["energy_j"])
    _close(shown["latency"], "s", d["latency_s"])
    _close(shown["area"], "mm\u00b2", d["area_mm2"], rel=1e-3)
    _close(shown["utilization"], "%", d["utilization"], rel=1e-3)
    assert float(shown["TOPS/W"]) == pytest.approx(d["tops_per_w"], rel=5e-3)
    assert shown["arrays"] == str(d["arrays"]) and shown["feasible"] == "yes"
    assert shown["workload"] == "<script>alert(1)</script>"  # a terminal shows the text as it is


def test_many_configurations_show_how_many_are_feasible_and_the_range(many):
    d, shown = many.to_dict(), _lines(repr(many))
    assert shown["feasible"] == f"{sum(d['feasible'])} of {len(d['feasible'])}" == "2 of 3"
    assert shown["configurations"] == "3"
    energy = [e for e in d["energy_j"] if e is not None]
    parts = shown["energy"].split(" \u2026 ")
    _close(parts[0], "J", min(energy))
    _close(parts[-1], "J", max(energy))


def test_cam_report_and_chip_summary_headlines(cam_report, chip):
    d, shown = cam_report.to_dict(), _lines(repr(cam_report))
    _close(shown["energy"], "J", d["energy_j"])
    _close(shown["latency"], "s", d["latency_s"])
    _close(shown["area"], "mm\u00b2", d["area_mm2"], rel=1e-3)
    assert shown["rows"] == str(d["rows"])
    d, shown = chip.to_dict(), _lines(repr(chip))
    assert shown["crossbar layers"] == "2" and shown["arrays"] == str(d["arrays"]) == str(chip.arrays)
    _close(shown["utilization"], "%", d["utilization"], rel=1e-3)
    assert shown["calibrated layers"] == "0" and shown["digital"] == "act (ReLU)"


@pytest.mark.parametrize("name", RESULTS)
def test_html_parses_escapes_names_and_holds_the_totals(name, request):
    result = request.getfixturevalue(name)
    markup = result._repr_html_()
    parsed = _parse_html(markup)
    text = "".join(parsed.text)
    assert type(result).__name__ in text
    for label, value in _lines(repr(result)).items():
        assert label in text and value in text  # every headline figure, with its unit
    if name != "study_result":  # every fixture but the study carries a malicious name
        assert EVIL in text and EVIL not in markup
    rows = result.records()
    assert markup.count("<tr>") == 1 + min(len(rows), 10)
    if len(rows) > 10:
        assert f"{len(rows) - 10} more rows" in text


@pytest.mark.parametrize("name", RESULTS)
def test_to_pandas_holds_the_records(name, request):
    result = request.getfixturevalue(name)
    _check_frame(result.to_pandas(), result.records(), result.csv_columns())


@pytest.mark.parametrize("name", [*RESULTS, "program"])
def test_to_pandas_without_pandas_says_how_to_install_it(name, request, monkeypatch):
    result = request.getfixturevalue(name)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(MissingDependencyError, match=r"to_pandas needs pandas: pip install pandas") as info:
        result.to_pandas()
    assert isinstance(info.value, ImportError) and isinstance(info.value, CimkitError)


def test_a_report_frame_has_one_row_per_layer(report):
    df = report.to_pandas()
    assert list(df["name"]) == [layer["name"] for layer in report.layers]
    assert df["energy_j"].sum() == pytest.approx(sum(layer["energy_j"] for layer in report.layers))
    assert list(df.columns[: len(report.csv_columns())]) == list(report.csv_columns())


def test_a_dataclass_result_gets_the_summary_repr_and_a_failing_one_still_has_a_repr():
    @dataclasses.dataclass
    class Tiny(Result):
        energy_j: float
        broken: bool = False

        def to_dict(self):
            if self.broken:
                raise RuntimeError("storage gone")
            return {"result": "Tiny", "energy_j": self.energy_j}

        def records(self):
            return [{"component": "adc", "energy_j": self.energy_j}]

        def table(self):
            return None

        def figures(self, folder):
            return []

    assert repr(Tiny(2.5e-9)) == "Tiny (1 row)\n  energy  2.50 nJ"  # not the dataclass's field-by-field repr
    assert repr(Tiny(1.0, broken=True)) == "<Tiny: no summary (RuntimeError: storage gone)>"
    assert Tiny(1.0, broken=True)._repr_html_() == "<p>&lt;Tiny: no summary (RuntimeError: storage gone)&gt;</p>"


def test_si_prefixes_round_into_the_next_prefix():
    assert si(2.1604e-7, "J") == "216 nJ"
    assert si(9.9996e-7, "J") == "1.00 \u00b5J"
    assert si(3.8e-8, "s") == "38.0 ns"
    assert si(0.0, "J") == "0 J"
    assert si(float("nan"), "J") == si(None, "J") == "n/a"


# ---- CAM programs ---------------------------------------------------------------------------------------------
def test_a_cam_program_repr_names_its_shape(program):
    text = repr(program)
    lines, shown = text.splitlines(), _lines(text)
    assert lines[0] == "CamProgram (DecisionTreeClassifier)" and len(lines) <= 15
    assert shown["trees"] == "1" and shown["rows"] == str(program.rows) == str(len(program.lo))
    assert shown["features"].startswith("4 (")
    assert shown["task"].startswith("3 classes") and EVIL in shown["task"]
    assert shown["bits"] == "exact thresholds"


def test_a_quantized_regressor_says_so(iris):
    from sklearn.ensemble import GradientBoostingRegressor

    X, _ = iris
    model = GradientBoostingRegressor(n_estimators=3, max_depth=2, random_state=0).fit(X, X[:, 0])
    shown = _lines(repr(ck.cam.compile(model, bits=4, variation_lsb=0.5, seed=2)))
    assert shown["task"] == "regression, 1 output"
    assert shown["bits"] == "4-bit codes (thresholds scale, 0.5 LSB variation, seed 2)"
    assert shown["trees"] == "3"


def test_a_cam_program_frame_has_a_row_per_cam_row(program):
    df = program.to_pandas()
    f = program.n_features
    assert len(df) == program.rows
    assert list(df.columns) == ["tree", *(f"x{i}_{b}" for i in range(f) for b in ("lo", "hi")), *program.value_names()]
    assert program.value_names() == [f"value_{EVIL}", "value_setosa", "value_virginica"]  # sorted classes
    np.testing.assert_array_equal(df[[f"x{i}_lo" for i in range(f)]].to_numpy(), program.lo)
    np.testing.assert_array_equal(df[[f"x{i}_hi" for i in range(f)]].to_numpy(), program.hi)
    np.testing.assert_array_equal(df[program.value_names()].to_numpy(), program.leaf)
    # a don't-care cell is the whole line
    assert (np.isneginf(df["x0_lo"]) & np.isposinf(df["x0_hi"])).sum() == program.dont_care[:, 0].sum()


def test_a_boosted_multiclass_frame_says_which_class_each_tree_adds_to(iris):
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = iris
    prog = ck.cam.compile(GradientBoostingClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, y))
    df = prog.to_pandas()
    assert list(df.columns[:2]) == ["tree", "output"] and list(df.columns[-1:]) == ["value"]
    assert sorted(set(df["output"])) == [0, 1, 2]
    np.testing.assert_array_equal(df["output"], [prog.ensemble.trees[t].output for t in prog.tree_of_row])


def test_a_cam_program_html_shows_intervals_and_escapes(program):
    markup = program._repr_html_()
    text = "".join(_parse_html(markup).text)
    assert EVIL in text and EVIL not in markup
    assert "(-inf, " in text and "*" in text  # bounds as intervals, don't-care cells as *
    assert markup.count("<tr>") == 1 + min(program.rows, 10)


# ---- study files ----------------------------------------------------------------------------------------------
def test_a_study_file_repr_says_what_will_run(study_config):
    text = repr(study_config)
    lines, shown = text.splitlines(), _lines(text)
    assert lines[0] == "StudyConfig ('proto')" and len(lines) <= 15
    assert shown["workloads"] == f"2: lenet, {EVIL}"
    assert shown["space size"] == "6 designs" and study_config.space_points() == 6
    assert shown["objective"].startswith("pareto: energy, area")
    assert shown["constraints"] == "area <= 50 mm\u00b2"
    assert shown["trials"] == "4 in batches of 2"
    assert str(study_config) == text


def test_a_continuous_space_is_named_so(study_config):
    cfg = study_config.with_overrides(space={"supply_v": {"low": 0.6, "high": 1.0}, "adc_bits": {"choices": [4, 5]}})
    assert math.isinf(cfg.space_points())
    assert _lines(repr(cfg))["space size"] == "continuous (1 range x 2 discrete combinations)"


def test_a_study_file_html_lists_the_space(study_config):
    markup = study_config._repr_html_()
    text = "".join(_parse_html(markup).text)
    assert EVIL in text and EVIL not in markup
    assert "periphery.adc_bits" in text and "{4, 5, 6}" in text and "6 designs" in text


def test_a_robustness_study_repr_lists_sections_and_parts(robustness_study):
    text = repr(robustness_study)
    lines, shown = text.splitlines(), _lines(text)
    assert lines[0] == "RobustnessStudy ('tiny')" and len(lines) <= 15
    assert shown["models"].startswith(f"2: {EVIL} (mnist, 1 epoch), b (mnist")
    assert shown["attacks"] == "fgsm (2 strengths); sides ideal, chip on b"
    assert shown["faults"] == "dead_column (2 rates), adc_bit_flip (1 rate)"
    assert shown["drift"].startswith("2 read times")
    assert "axc" not in shown
    parts = robustness_study.parts()
    assert parts == [
        "attack-b-fgsm-ideal",
        "attack-b-fgsm-chip",
        f"faults-{EVIL}-dead_column",
        f"faults-{EVIL}-adc_bit_flip",
        "faults-b-dead_column",
        "faults-b-adc_bit_flip",
        f"drift-{EVIL}",
        "drift-b",
    ]
    assert shown["parts"].startswith("8: attack-b-fgsm-ideal, ")


def test_a_robustness_study_html_lists_its_parts(robustness_study):
    markup = robustness_study._repr_html_()
    text = "".join(_parse_html(markup).text)
    assert EVIL in text and EVIL not in markup
    assert markup.count("<tr>") == 1 + 8
    assert f"drift-{EVIL}" in text


# ---- converted models -----------------------------------------------------------------------------------------
def test_chip_summary_has_a_record_per_crossbar_layer(chip, cim_mlp):
    recs = chip.records()
    assert [r["name"] for r in recs] == ["fc1", EVIL] and [r["module"] for r in recs] == ["fc1", EVIL]
    fc1 = cim_mlp.fc1
    assert recs[0]["weight_shape"] == "32x64" and recs[0]["in_features"] == 64 and recs[0]["out_features"] == 32
    assert recs[0]["arrays"] == fc1.mapping.arrays and recs[0]["slices"] == fc1.mapping.slices
    assert recs[0]["input_passes"] == fc1.mapping.input_passes
    assert recs[0]["adc_bits"] == fc1.spec.periphery.adc_bits and recs[0]["input_bits"] == fc1.spec.periphery.input_bits
    assert recs[0]["calibrated"] is False
    d = chip.to_dict()
    assert d["result"] == "ChipSummary" and d["spec"] == "rram-22nm" and d["seed"] == 3
    assert d["arrays"] == sum(r["arrays"] for r in recs) and d["crossbar_layers"] == 2
    assert check_names(d) == []
    assert list(chip.to_pandas().columns) == list(chip.csv_columns())


def test_chip_summary_sees_calibration_and_print_reads_well(rram, tmp_path):
    torch.manual_seed(0)
    cim = ck.convert(_MLP(), rram)
    text = str(cim)
    assert "calibrated: no" in text and "fc1: 64x32, 1 array 128x128" in text
    assert f"input {rram.periphery.input_bits} b" in text and f"ADC {rram.periphery.adc_bits} b" in text
    ck.calibrate(cim, [torch.randn(16, 64)], num_batches=1)
    assert "calibrated: yes" in str(cim)
    summary = ck.sim.summary(cim)
    assert _lines(repr(summary))["calibrated layers"] == "2"
    assert all(r["calibrated"] for r in summary.records())
    assert [p.name for p in summary.figures(tmp_path)] == ["arrays_per_layer.png"]


def test_chip_summary_refuses_a_model_without_crossbars():
    with pytest.raises(CimkitError, match="call cimkit.convert first"):
        ck.sim.summary(nn.Linear(3, 2))
    with pytest.raises(CimkitError, match="torch.nn.Module"):
        ck.sim.summary("model")
