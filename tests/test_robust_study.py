"""``cimkit robustness STUDY.yaml``: the study file, its parts, resuming, and bad input."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from cimkit.cli import app
from cimkit.errors import InputError
from cimkit.robust.study import RobustnessStudy, run_study

pytest.importorskip("art")

STUDY = {
    "name": "tiny",
    "hardware": "rram-22nm",
    "images": 40,
    "calibration_images": 64,
    "chips": 2,
    "models": [
        {
            "name": "small_cnn",
            "data": "mnist",
            "epochs": 1,
            "batch_size": 128,
            "options": {"channels": [4, 8], "hidden": 32},
        }
    ],
    "attacks": {"strengths": {"fgsm": [0.0, 0.1]}, "sides": ["ideal", "chip"], "images": 20},
    "faults": {"kinds": {"dead_column": [0.0, 0.2]}},
    "drift": {"hardware": "pcm", "times_s": [1, 3.156e7], "compensation": ["none"]},
    "axc": {"multipliers": ["mitchell"], "adders": [], "precision": {}, "skipping": [], "memory": []},
}


def test_a_study_runs_every_part_and_a_rerun_keeps_them(tmp_path):
    lines: list[str] = []
    results = run_study(RobustnessStudy.validate_data(STUDY), tmp_path, say=lines.append)
    assert sorted(results) == [
        "attack-small_cnn-fgsm-chip",
        "attack-small_cnn-fgsm-ideal",
        "axc-small_cnn",
        "drift-small_cnn",
        "faults-small_cnn-dead_column",
    ]
    assert (tmp_path / "models" / "small_cnn.pt").is_file()
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["parts"] == json.loads(json.dumps(results))
    assert {p.name for p in (tmp_path / "figures").iterdir()} >= {
        "attack_fgsm.png",
        "faults_accuracy.png",
        "drift_accuracy.png",
        "axc_small_cnn.png",
    }
    fgsm = results["attack-small_cnn-fgsm-ideal"]["curves"][0]
    assert fgsm["accuracy"][1] < fgsm["accuracy"][0]
    # a rerun computes nothing again and gives the same results
    again: list[str] = []
    assert run_study(RobustnessStudy.validate_data(STUDY), tmp_path, say=again.append) == results
    assert not any("trained" in line for line in again)  # no part needed the model
    assert sum("done before, kept" in line for line in again) == 5
    # a changed section is recomputed, the rest kept
    changed = {**STUDY, "faults": {"kinds": {"dead_column": [0.0, 0.3]}}}
    third: list[str] = []
    out = run_study(RobustnessStudy.validate_data(changed), tmp_path, say=third.append)
    assert sum("done before, kept" in line for line in third) == 4
    assert any("trained weights reused" in line for line in third)
    assert out["faults-small_cnn-dead_column"]["curves"][0]["x"] == [0.0, 0.3]
    # fewer images: every part is recomputed, the simulate checkpoints of the old settings stay out of the way
    fewer = {**changed, "images": 30, "attacks": None, "axc": None}
    out = run_study(RobustnessStudy.validate_data(fewer), tmp_path)
    assert out["faults-small_cnn-dead_column"]["images"] == 30 and out["drift-small_cnn"]["images"] == 30


@pytest.mark.parametrize(
    "change, message",
    [
        ({"attacks": {"strengths": {"laser": [0.1]}}}, "unknown attack 'laser'"),
        ({"faults": {"kinds": {"rust": [0.1]}}}, "unknown fault kind 'rust'"),
        ({"faults": {"kinds": {"dead_column": [2]}}}, "rates in \\[0, 1\\]"),
        ({"models": [{"name": "resnet1000"}]}, "unknown model 'resnet1000'"),
        ({"models": [{"name": "small_cnn"}, {"name": "small_cnn"}]}, "given twice"),
        ({"attacks": None, "faults": None, "drift": None, "axc": None}, "runs nothing"),
        ({"axc": {"multipliers": ["wallace"]}}, "multiplier = 'wallace' is not allowed"),
        ({"drift": {"times_s": [0]}}, "positive numbers of seconds"),
        ({"attacks": {"strengths": {"pgd": [0.1]}, "transfer": {"attack": "pgd", "eps": None}}}, "give transfer.eps"),
        ({"chips": 0}, "chips"),
    ],
)
def test_bad_studies_are_refused_with_the_field(change, message):
    with pytest.raises(InputError, match=message):
        RobustnessStudy.validate_data({**STUDY, **change})


def test_the_cli_runs_a_study_file_and_refuses_a_bad_one(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**STUDY, "faults": {"kinds": {"rust": [0.1]}}}))
    result = CliRunner().invoke(app, ["robustness", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "unknown fault kind 'rust'" in str(result.exception) + result.output
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(
            {
                **STUDY,
                "faults": None,
                "drift": None,
                "axc": None,
                "attacks": {"strengths": {"fgsm": [0.1]}, "sides": ["ideal"], "images": 10},
            }
        )
    )
    result = CliRunner().invoke(app, ["robustness", str(good), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "1 part(s)" in result.output
    assert (tmp_path / "out" / "results.json").is_file()


ROOT = __import__("pathlib").Path(__file__).parents[1]
FILES = sorted(p for folder in ("examples", "benchmarks") for p in (ROOT / folder).glob("robustness_*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_shipped_study_files_are_valid(path):
    study = RobustnessStudy.from_yaml(path)
    assert study.models
