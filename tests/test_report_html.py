"""``cimkit report``: one self-contained HTML page from cimkit's JSON results.

Real results are built quickly (LeNet and a short MiniLM on rram-22nm, a few chips priced at once, a small
random forest on analog CAM, a six-trial study, a spiking run, a training step) or taken from the committed
robustness parts and benchmark files, saved with ``to_json``, and rendered into one page. The page must show
each result with its key numbers (the totals of a report, formatted, are on the page), sortable tables,
Pareto plots with hover text, escaped user strings, nothing loaded from the network; bad input must name the
file. A headless Chromium (Debian's ``chromium``, driven by playwright) opens the page: no console error,
every figure drawn, a table sorts on a click, a Pareto point shows its tooltip; a screenshot is saved (also to
``$CIMKIT_REPORT_SCREENSHOT`` when set)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

import cimkit as ck
from cimkit.errors import InputError
from cimkit.report import sections as S
from cimkit.report.html import load_results, recognise, render_html, write_report

REPO = Path(__file__).resolve().parents[1]
PARTS = REPO / "benchmarks" / "results" / "robustness_mnist" / "parts"
BENCH = REPO / "benchmarks" / "results"
EVIL = "<script>alert('$x$')</script>"  # a layer name: must reach the page escaped (and matplotlib as text)


# ---- real results, saved as JSON ---------------------------------------------------------------------------------
def _spike_activity_dict(activity) -> dict:
    """A ``SpikeActivity`` as the report reads it: through its own ``to_json``."""
    return json.loads(activity.to_json())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """The results folder (every file one result, named so that they sort in this order) and the objects."""
    folder = tmp_path_factory.mktemp("results")
    spec = ck.HardwareSpec.preset("rram-22nm")
    lenet = ck.zoo.workload("lenet")
    rep = ck.estimate(lenet, spec)
    rep.layers[0]["name"] = EVIL
    rep.to_json(folder / "01_lenet.json")
    tf = ck.estimate(ck.zoo.workload("minilm-l6", seq_len=16), spec)
    tf.to_json(folder / "02_minilm.json")
    many = ck.estimate_many(
        lenet,
        [
            spec,
            spec.replace(**{"chip.tiles": 1}),
            spec.replace(**{"periphery.adc_bits": 5}),
            spec.replace(**{"array.rows": 64, "array.cols": 64}),
        ],
    )
    many.specs = ["base", "one tile", "5-bit ADC", "64x64 arrays"]
    many.to_json(folder / "03_many.json")

    from cimkit.cam.experiment import run_trees

    trees, _ = run_trees(
        "breast_cancer", "rf", trees=5, depth=3, energy_samples=40, schemes=("raw", "xtime", "monosparse")
    )
    trees.to_json(folder / "04_trees.json")
    trees.reports["monosparse"].to_json(folder / "05_cam.json")

    from cimkit.explore import StudyConfig, run_study

    cfg = StudyConfig.model_validate(
        {
            "name": "tiny",
            "workloads": ["lenet"],
            "space": {"adc_bits": {"choices": [4, 5, 6]}, "crossbar": {"choices": [64, 128]}},
            "objective": {"mode": "pareto", "metrics": ["energy", "area"]},
            "sampler": {"name": "random", "seed": 0},
            "trials": 6,
            "batch": 6,
        }
    )
    study = run_study(cfg, tmp_path_factory.mktemp("study"))
    study.to_json(folder / "06_study.json")

    from cimkit.explore import JointResult

    JointResult(
        ["vgg8", "lenet"],
        "vgg8",
        {"vgg8": 2.0, "lenet": 4.0},
        {"vgg8": 1.5, "lenet": 2.0},
        {"vgg8": 1.2, "lenet": 1.0},
        {"largest": {"adc_bits": 5}, "joint": {"adc_bits": 4}},
    ).to_json(folder / "07_joint.json")

    from cimkit.sim.evaluate import SimulationResult

    sim = SimulationResult("rram-22nm", 100, [0, 1, 2], [91, 93, 90], [[0] * 100] * 3, float_accuracy=0.95)
    sim.to_json(folder / "08_simulate.json")
    for i, name in enumerate(
        ("attack-small_cnn-fgsm-chip", "attack-small_cnn-fgsm-ideal", "drift-small_cnn", "axc-demo_cnn", "transfer-pgd")
    ):
        shutil.copy(PARTS / f"{name}.json", folder / f"{10 + i}_{name}.json")
    shutil.copy(BENCH / "snn_tasks.json", folder / "20_snn_tasks.json")
    shutil.copy(BENCH / "robust_budgets.json", folder / "21_robust_budgets.json")

    import torch
    from torch import nn

    snn = pytest.importorskip("snntorch")
    from cimkit.snn.cost import snn_activity_report

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(32, 10)
            self.lif1 = snn.Leaky(beta=0.9, init_hidden=True)
            self.lif2 = snn.Leaky(beta=0.9, init_hidden=True, output=True)

        def forward(self, x):
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Net()
        x = torch.bernoulli(torch.full((12, 4, 64), 0.3))
    activity = snn_activity_report(net, x, name="tiny snn")
    (folder / "22_spikes.json").write_text(json.dumps(_spike_activity_dict(activity)))

    from cimkit.train.cost import StepCost

    step = StepCost("dfa", 8, 1e-6, 2e-9, 3e-7, 1e-9, 5e-6, 4e-8, 5.3e-6, [{"name": "fc1", "update_s": 5e-6}])
    (folder / "23_step.json").write_text(json.dumps(step.to_dict()))  # no "result": recognised by its shape
    history = [
        {"epoch": e, "step": s, "loss": 2.0 / (1 + e + s), "accuracy": 0.5 + 0.1 * e}
        for e in range(3)
        for s in range(2)
    ]
    (folder / "24_history.json").write_text(json.dumps(history))
    (folder / "25_future.json").write_text(json.dumps({"result": "FutureResult", "energy_j": 1e-6, "name": "<b>x</b>"}))
    return {"folder": folder, "report": rep, "transformer": tf, "many": many, "trees": trees, "study": study}


@pytest.fixture(scope="module")
def page(built, tmp_path_factory) -> dict:
    """The page written from the folder, with the time it took."""
    out = tmp_path_factory.mktemp("page") / "report.html"
    t0 = time.perf_counter()
    write_report([built["folder"]], out, title="cimkit test report")
    seconds = time.perf_counter() - t0
    text = out.read_text(encoding="utf-8")
    sections = dict(
        re.findall(r'<section class="result" id="(r\d+)" data-kind="[^"]*">(.*?)</section>', text, flags=re.S)
    )
    return {"path": out, "text": text, "seconds": seconds, "sections": sections}


def _section(page: dict, index: int) -> str:
    return page["sections"][f"r{index}"]


# ---- content ---------------------------------------------------------------------------------------------------------
def test_every_file_gets_a_section_of_its_kind_in_order(built, page):
    files = sorted(built["folder"].glob("*.json"))
    kinds = re.findall(r'<section class="result" id="r\d+" data-kind="([^"]*)"', page["text"])
    assert len(kinds) == len(files) == 19
    assert kinds == [
        "Report",
        "Report",
        "ManyReport",
        "TreesResult",
        "CamReport",
        "StudyResult",
        "JointResult",
        "SimulationResult",
        "AttackResult",
        "AttackResult",
        "CurveResult",
        "AxcResult",
        "AttackResult",
        "SnnTasks",
        "AttackBudgets",
        "SpikeActivity",
        "StepCost",
        "TrainingHistory",
        "FutureResult",
    ]
    assert 'class="render-error"' not in page["text"]  # every renderer read its result
    assert page["text"].count("<nav>") == 1 and page["text"].count('href="#r') == len(files)


def test_the_report_section_shows_its_totals_formatted_and_every_breakdown(built, page):
    rep, body = built["report"], _section(page, 1)
    assert "lenet on rram-22nm" in page["text"]
    for shown in (
        S.si(rep.energy_j, "J"),
        S.mm2(rep.area_mm2),
        S.si(rep.latency_s, "s"),
        S.plain(rep.tops_per_w),
        S.si(rep.edp, "J s"),
    ):
        assert S.esc(shown) in body, shown
    assert "By component" in body and "By layer" in body and "By operator class" in body
    for comp, energy in rep.energy_breakdown_j.items():  # the component table: each energy, formatted
        assert f">{S.esc(comp)}</td>" in body and S.esc(S.si(energy, "J")) in body
    assert body.count("<tr>") >= len(rep.layers) + len(rep.energy_breakdown_j)
    # the chip summary lists the report's chip figures
    header = page["text"].split("<nav>")[0]
    assert "Chip summary" in header and S.esc(S.mm2(rep.area_mm2)) in header


def test_a_transformer_report_is_broken_down_by_operator_class(built, page):
    body = _section(page, 2)
    kinds = built["transformer"].by_kind()
    assert {"softmax", "matmul", "norm", "linear"} <= set(kinds)
    for kind, row in kinds.items():
        assert re.search(
            rf'<td data-v="{kind}">{kind}</td><td class="num" data-v="[^"]*">[^<]*</td>'
            rf'<td class="num" data-v="[^"]*">{re.escape(S.esc(S.si(row["energy_j"], "J")))}</td>',
            body,
        ), kind


def test_many_chips_get_a_pareto_plot_with_hover_text(built, page):
    body = _section(page, 3)
    circles = re.findall(r'<circle class="(pt[^"]*)"[^>]*data-tip="([^"]*)"><title>([^<]*)</title>', body)
    assert len(circles) == 3  # the one-tile chip is infeasible: left out of the plot
    assert all(tip == title for _, tip, title in circles)
    front = [tip for cls, tip, _ in circles if "pareto" in cls]
    assert front and all("area" in t and "energy" in t for t in front)
    assert "64x64 arrays" in body and ">no</td>" in body  # the table: every configuration, the infeasible one too


def test_a_study_shows_every_trial_and_its_pareto_front_with_parameters(built, page):
    study, body = built["study"], _section(page, 6)
    d = study.to_dict()
    circles = re.findall(r'<circle class="(pt[^"]*)"[^>]*data-tip="([^"]*)"', body)
    assert len(circles) == study.completed == 6  # every trial: the JSON lists them (older JSON: the study's trials.csv)
    pareto = [tip for cls, tip in circles if "pareto" in cls]
    assert len(pareto) == len(d["best"])
    assert all("adc_bits=" in t and "crossbar=" in t and "trial #" in t for t in pareto)
    assert S.esc(S.si(d["best"][0]["energy_j"], "J")) in body


def test_cam_and_trees_show_accuracy_sparsity_and_energy_per_component(built, page):
    trees, tbody, cbody = built["trees"], _section(page, 4), _section(page, 5)
    assert S.pct(trees.model_accuracy) in tbody and S.pct(trees.quantized_accuracy) in tbody
    assert S.pct(trees.sparsity, 1) in tbody
    for name, r in trees.reports.items():
        assert f">{name}</td>" in tbody and S.esc(S.si(r.energy_j, "J")) in tbody
    cam = trees.reports["monosparse"]
    assert S.esc(S.si(cam.energy_j, "J")) in cbody and "CAM sparsity" in cbody
    assert all(f">{S.esc(c)}</td>" in cbody for c in cam.energy_breakdown_j)


def test_robustness_parts_show_curves_bands_transfer_and_the_axc_table(page):
    attack, drift, axc, transfer = (_section(page, i) for i in (9, 11, 12, 13))
    fgsm = json.loads((PARTS / "attack-small_cnn-fgsm-chip.json").read_text())["result"]["curves"][0]
    assert "fgsm: accuracy against strength" in attack and "data:image/png;base64," in attack
    assert all(S.pct(a) in attack for a in fgsm["accuracy"])
    assert "95% band" in drift and "compensation=none" in drift
    rows = json.loads((PARTS / "axc-demo_cnn.json").read_text())["result"]["rows"]
    assert axc.count("<tr>") == len(rows) + 1 and "approximate arithmetic" in axc and "not priced" in axc
    assert "Transfer: pgd" in transfer
    # the chip summary reads the hardware the parts carry
    header = page["text"].split("<nav>")[0]
    assert "NeuroSim V1.3-like RRAM" in header and ">pcm</td>" in header and ">bit_serial</td>" in header


def test_snn_training_and_benchmark_files_are_rendered(page):
    text = page["text"]
    snn_tasks, budgets, spikes, step, history = (_section(page, i) for i in (14, 15, 16, 17, 18))
    assert "quant: accuracy against precision" in snn_tasks and "rate/lif_subtract" in snn_tasks
    assert ">square</td>" in budgets
    assert "activity per layer and time step" in spikes and ">lif1</td>" in spikes and ">fc2</td>" in spikes
    assert "dfa: share of each phase" in step and S.esc(S.si(5e-6, "s")) in step
    assert "training figures per epoch" in history and "accuracy per epoch" in history
    assert text.count("<img ") >= 20


def test_an_unknown_kind_gets_its_fields_and_a_note_never_nothing(page):
    body = _section(page, 19)
    assert "FutureResult is not specifically rendered" in body
    assert S.esc(S.si(1e-6, "J")) in body and "&lt;b&gt;x&lt;/b&gt;" in body


def test_tables_are_sortable_and_carry_sort_keys(page):
    text = page["text"]
    tables = re.findall(r"<table[^>]*>", text)
    assert len(tables) > 20 and all('class="sortable"' in t for t in tables)
    assert '<th scope="col" title="click to sort">energy</th>' in text
    assert re.search(r'<td class="num" data-v="[0-9.e+-]+">', text)


def test_user_strings_are_escaped(page):
    text = page["text"]
    assert EVIL not in text and S.esc(EVIL) in text
    assert "<b>x</b>" not in text
    assert text.count("<script>") == 1  # only the page's own script


def test_the_page_is_self_contained(page):
    text = page["text"]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, flags=re.I)
    assert "http://" not in text and "https://" not in text
    srcs = re.findall(r'<img[^>]* src="([^"]{0,30})', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "<style>" in text and "<link" not in text


def test_rendering_is_fast(page):
    # 19 results with about 30 figures; a few seconds on an idle machine (this one is shared by several jobs)
    assert page["seconds"] < 45, page["seconds"]


# ---- input and output ------------------------------------------------------------------------------------------------
def test_bad_input_names_the_file_and_what_was_expected(tmp_path, built):
    missing = tmp_path / "nope.json"
    with pytest.raises(InputError, match=r"no such results file: .*nope\.json"):
        load_results([missing])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON \(line 1, column 2"):
        load_results([bad])
    unknown = tmp_path / "shape.json"
    unknown.write_text(json.dumps({"foo": 1, "bar": [1, 2]}))
    with pytest.raises(
        InputError,
        match=r"shape\.json: a JSON object with keys 'foo', 'bar' is not a cimkit result; "
        r"expected .*'result' key names the result type",
    ):
        load_results([unknown])
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2, 3]")
    with pytest.raises(InputError, match=r"list\.json: a JSON list \[1, 2, 3\] is not a cimkit result"):
        load_results([listed])
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.json: the file is empty"):
        load_results([empty])
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(InputError, match=r"bin\.json: not UTF-8"):
        load_results([binary])
    folder = tmp_path / "none"
    folder.mkdir()
    with pytest.raises(InputError, match=r"none: the folder holds no \*\.json"):
        load_results([folder])
    with pytest.raises(InputError, match="no results given"):
        load_results([])
    # a bad file among good ones fails the whole report, naming the bad one, and writes nothing
    out = tmp_path / "r.html"
    with pytest.raises(InputError, match=r"shape\.json"):
        write_report([built["folder"] / "01_lenet.json", unknown], out)
    assert not out.exists()
    with pytest.raises(InputError, match=r"unsupported file type '\.txt'"):
        write_report([built["folder"] / "01_lenet.json"], tmp_path / "r.txt")


def test_folders_robustness_parts_and_results_json_are_unwrapped(tmp_path):
    shutil.copy(PARTS / "drift-small_cnn.json", tmp_path / "b.json")
    shutil.copy(PARTS / "attack-small_cnn-pgd-chip.json", tmp_path / "a.json")
    (tmp_path / "notes.txt").write_text("not a result")
    pairs = load_results([tmp_path])
    assert [(p.name, d["result"]) for p, d in pairs] == [("a.json", "AttackResult"), ("b.json", "CurveResult")]
    assert pairs[0][1]["settings"]["hardware"]["name"] == "rram-22nm"  # the part's settings stay with it
    pairs = load_results([BENCH / "robustness_mnist" / "results.json", str(PARTS / "axc-demo_cnn.json")])
    assert [(d["result"], d.get("_part")) for _, d in pairs] == [
        ("CurveResult", "drift-small_cnn"),
        ("AxcResult", None),
    ]
    assert recognise({"sections": {"a": {"entries": {}}}}) == "SnnTasks" and recognise({"x": 1}) is None


def test_the_report_is_written_atomically_over_an_older_one(tmp_path, built):
    out = tmp_path / "site" / "report.html"
    out.parent.mkdir()
    out.write_text("old")
    assert write_report([built["folder"] / "07_joint.json"], out) == out
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]  # no temporary left behind
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<title>cimkit report: 1 result(s)</title>" in text


def test_a_registered_renderer_draws_its_kind(tmp_path):
    @S.section("TestOnlyKind", "a test kind")
    def draw(d: dict) -> str:
        return S.cards([("answer", S.si(d["energy_j"], "J"))])

    try:
        html = render_html([(tmp_path / "t.json", {"result": "TestOnlyKind", "energy_j": 4.2e-9})], title="<t>")
        assert "a test kind: t" in html and "4.2 nJ" in html and "<title>&lt;t&gt;</title>" in html
    finally:
        S.SECTIONS.pop("TestOnlyKind")
        S.TITLES.pop("TestOnlyKind")


def test_numbers_carry_si_prefixes_and_units():
    assert S.si(1.2345e-6, "J") == "1.234 µJ" or S.si(1.2345e-6, "J") == "1.235 µJ"
    assert S.si(21.99e-6, "s") == "21.99 µs" and S.si(2.5e9, "Hz") == "2.5 GHz" and S.si(3e-13, "J") == "300 fJ"
    assert S.values([0, None, "x", 1.5, float("inf")]).tolist()[::3] == [0.0, 1.5]  # 0 stays a number
    assert S.si(0, "J") == "0 J" and S.si(None, "J") == "n/a" and S.si(float("nan"), "J") == "n/a"
    assert S.mm2(10.137) == "10.14 mm²" and S.pct(0.97) == "97.00%" and S.plain(6144) == "6,144"
    assert (
        S.fmt("latency_s", 1e-3) == "1 ms"
        and S.fmt("area_mm2", 2) == "2 mm²"
        and S.fmt("model_accuracy", 0.5) == "50.00%"
    )


# ---- in a browser ----------------------------------------------------------------------------------------------------
def test_the_page_renders_in_headless_chromium(page, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install playwright (the browser itself is Debian's chromium)")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(page["path"].as_uri(), wait_until="load")
            # every figure has an image: PNGs decoded with a size, hand-built SVG plots laid out with points
            imgs = tab.evaluate(
                "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
            )
            assert len(imgs) >= 20 and all(ok and w > 0 and h > 0 for _, ok, w, h in imgs), imgs
            svgs = tab.evaluate(
                "Array.from(document.querySelectorAll('figure svg')).map(s => {const r = s.getBoundingClientRect();"
                " return [r.width, r.height, s.querySelectorAll('circle').length];})"
            )
            assert len(svgs) >= 3 and all(w > 0 and h > 0 and n > 0 for w, h, n in svgs), svgs
            # a click on a header sorts the rows by value, a second click reverses them
            table = tab.locator("section#r1 table", has_text="per layer")
            header = table.locator("th", has_text=re.compile(r"^energy$"))
            col = table.evaluate("t => Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent === 'energy')")
            values = f"t => Array.from(t.tBodies[0].rows).map(r => Number(r.cells[{col}].dataset.v))"
            before = table.evaluate(values)
            header.click()
            ascending = table.evaluate(values)
            header.click()
            descending = table.evaluate(values)
            assert ascending == sorted(before) and descending == sorted(before, reverse=True) != before
            assert header.get_attribute("aria-sort") == "descending"
            # hovering a Pareto point shows its tooltip
            point = tab.locator("section#r6 svg circle.pareto").first
            point.scroll_into_view_if_needed()
            point.hover()
            tip = tab.locator("#tip")
            assert tip.is_visible() and "trial #" in tip.inner_text() and "adc_bits=" in tip.inner_text()
            assert errors == []
            shot = tmp_path / "report.png"
            tab.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
            if os.environ.get("CIMKIT_REPORT_SCREENSHOT"):
                target = Path(os.environ["CIMKIT_REPORT_SCREENSHOT"])
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, target)
        finally:
            browser.close()


def test_the_joint_table_signs_changes_as_the_terminal_table_does(built):
    """An EDAP reduction reads as a negative change ("-25%"), a loss against the own chip as a positive one."""
    import json
    import re

    from cimkit.explore import JointResult

    data = json.loads((built["folder"] / "07_joint.json").read_text())
    joint = JointResult(
        data["workloads"],
        data["largest"],
        data["edap_on_largest"],
        data["edap_on_joint"],
        data["edap_on_own"],
        {"largest": {"adc_bits": 5}, "joint": {"adc_bits": 4}},
    )
    html = S.SECTIONS["JointResult"](data)
    for w in joint.workloads:
        row = re.search(rf"<tr><td[^>]*>{w}</td>(.*?)</tr>", html, re.S)
        assert row, w
        signed = re.findall(r"[-+]\d+%", row.group(1))
        assert (
            signed[0] == f"{-100 * joint.improvement[w]:+.0f}%" and signed[-1] == f"{100 * joint.loss_vs_own[w]:+.0f}%"
        )
    assert joint.improvement["vgg8"] > 0 and "-25%" in html  # vgg8: EDAP 2.0 -> 1.5


@pytest.mark.parametrize("bad_row", ["1,COMPLETE", "1,COMPLETE,True,1e-6,2e-3,5,extra,extra"])
def test_an_older_study_json_reads_its_trials_csv_and_a_malformed_one_is_left_out(built, tmp_path, bad_row):
    import json

    data = json.loads((built["folder"] / "06_study.json").read_text())
    del data["trials"]  # as an older StudyResult wrote it
    data["out_dir"] = None
    (tmp_path / "study.json").write_text(json.dumps(data))
    (tmp_path / "trials.csv").write_text(
        "number,state,feasible,energy_j,area_mm2,params_adc_bits\n0,COMPLETE,True,1e-6,2e-3,4\n1,COMPLETE,True,2e-6,1e-3,5\n"
    )
    (path, loaded) = load_results([tmp_path / "study.json"])[0]
    assert [t["number"] for t in loaded["trials"]] == [0, 1] and loaded["trials"][1]["params"] == {"adc_bits": 5}
    with (tmp_path / "trials.csv").open("a") as fh:
        fh.write(bad_row + "\n")
    (path, loaded) = load_results([tmp_path / "study.json"])[0]
    assert "trials" not in loaded  # the file does not match its header: not used, and no crash
    assert "best designs only" in render_html([(path, loaded)])
