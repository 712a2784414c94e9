"""The command line and the demo, as a user meets them."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cimkit.cli import app
from cimkit.demo import run_demo

runner = CliRunner()


def test_help_lists_the_commands():
    out = runner.invoke(app, ["--help"]).output
    for command in ("demo", "presets", "spec", "estimate", "explore", "zoo"):
        assert command in out


def test_presets_and_spec_commands():
    assert "rram-22nm" in runner.invoke(app, ["presets"]).output
    res = runner.invoke(app, ["spec", "pcm"])
    assert res.exit_code == 0 and "g_max_us: 25.0" in res.output


def test_bad_spec_file_exits_with_a_clear_message(tmp_path):
    bad = tmp_path / "chip.yaml"
    bad.write_text("periphery:\n  adc_bits: 0\n")
    proc = subprocess.run([sys.executable, "-m", "cimkit.cli", "spec", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "periphery.adc_bits = 0" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_demo_quick_runs_offline_and_shows_the_accuracy_ordering(tmp_path, monkeypatch):
    monkeypatch.setenv("CIMKIT_CACHE", str(tmp_path / "cache"))
    result = run_demo(tmp_path / "out", quick=True)
    assert result.figure.exists()
    acc = {name: mean for name, mean, _, _ in result.rows}
    assert result.float_accuracy > 0.9
    assert acc["ideal"] == pytest.approx(result.float_accuracy, abs=0.005)
    assert acc["sram"] == pytest.approx(result.float_accuracy, abs=0.02)  # exact integer datapath
    sweep = dict(result.adc_sweep["rram-22nm"])
    assert sweep[3] < sweep[8]  # too few ADC bits costs accuracy


def test_estimate_and_explore_commands(tmp_path):
    res = runner.invoke(app, ["estimate", "resnet20", "--hw", "rram-22nm", "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0 and "TOPS/W" in res.output and (tmp_path / "r.json").exists()
    study = tmp_path / "s.yaml"
    study.write_text(
        "name: cli\nworkloads: [lenet]\nspace: {adc_bits: {choices: [4, 5]}}\n"
        "sampler: {name: random}\ntrials: 6\nbatch: 3\n"
    )
    res = runner.invoke(app, ["explore", str(study), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0 and (tmp_path / "o" / "best_0.yaml").exists()


def test_estimate_lists_the_unmapped_ops_it_could_not_price(tmp_path):
    pytest.importorskip("onnx")
    import json
    import warnings

    import torch
    from torch import nn

    import cimkit as ck

    class LinearLstmLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.lstm, self.b = nn.Linear(16, 32), nn.LSTM(32, 64, batch_first=True), nn.Linear(64, 4)

        def forward(self, x):
            return self.b(self.lstm(self.a(x))[0])

    path = tmp_path / "lstm.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(LinearLstmLinear().eval(), (torch.zeros(1, 5, 16),), str(path), dynamo=False)
    wide = CliRunner()
    res = wide.invoke(
        app,
        ["estimate", str(path), "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")],
        env={"COLUMNS": "200"},
        terminal_width=200,
    )
    assert res.exit_code == 0, res.output
    assert "NOT PRICED: 1 unmapped op(s) of lstm" in res.output and "LSTM" in res.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (lstm,) = [op for op in ck.Workload.from_onnx(path, unmapped="warn").ops if op.kind == "unmapped"]
    assert lstm.unmapped_weights > 20000 and f"{lstm.unmapped_weights:,}" in res.output  # the weights it holds
    assert "warning:" in res.output and "kept 1 op(s) as 'unmapped'" in res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["unmapped"] == ["/lstm/LSTM"] and data["result"] == "Report"
    assert "/lstm/LSTM,unmapped" in (tmp_path / "r.csv").read_text()
    refused = wide.invoke(app, ["estimate", str(path), "--unmapped", "error"])
    assert refused.exit_code != 0 and "LSTM" in str(refused.exception)
    bad = wide.invoke(app, ["estimate", "lenet", "--unmapped", "ignore"])
    assert bad.exit_code != 0 and "unmapped = 'ignore'" in str(bad.exception)


def test_trees_writes_the_cost_of_each_scheme_as_csv(tmp_path):
    import csv

    res = runner.invoke(
        app,
        ["trees", "--trees", "3", "--depth", "3", "--samples", "30", "--plot", "", "--csv", str(tmp_path / "t.csv")],
    )
    assert res.exit_code == 0, res.output
    with (tmp_path / "t.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["scheme"] for r in rows][:2] == ["raw", "xtime"] and float(rows[-1]["energy_j"]) > 0
    assert "vs xtime" in res.output
