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
    study.write_text("name: cli\nworkloads: [lenet]\nspace: {adc_bits: {choices: [4, 5]}}\n"
                     "sampler: {name: random}\ntrials: 6\nbatch: 3\n")
    res = runner.invoke(app, ["explore", str(study), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0 and (tmp_path / "o" / "best_0.yaml").exists()
