"""Every example runs (a smoke test: what a user copies must work)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={"CIMKIT_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


ROOT = Path(__file__).parents[1]
STUDIES = sorted([*(ROOT / "examples").glob("*.yaml"), *(ROOT / "benchmarks").glob("*.yaml")])


@pytest.mark.parametrize(
    "path", [p for p in STUDIES if "workloads:" in p.read_text()], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_study_files_load_from_any_folder(path, tmp_path, monkeypatch):
    from cimkit.explore import StudyConfig, prepare_study

    monkeypatch.chdir(tmp_path)  # paths inside a study file are relative to the file, not to the caller
    prepare_study(StudyConfig.from_yaml(path))
