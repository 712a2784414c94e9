"""Every example runs and prints its key result (a smoke test: what a user copies must work), and every
capability of cimkit has an example."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

#: capability -> the example that shows it (a capability without its script fails the test below)
CAPABILITIES = {
    "simulate": "simulate_mlp_on_pcm.py",
    "estimate": "estimate_vgg8.py",
    "explore": "explore_adc_bits.py",
    "transformers": "transformer_on_cim.py",
    "hamming attention": "hamming_attention.py",
    "trees on CAM": "trees_on_cam.py",
    "snn": "snn_on_crossbars.py",
    "training": "train_through_chip.py",
    "robustness": "robustness_attack.py",
}

_ACC = r"(0\.\d{3}|1\.000)"  # an accuracy in [0, 1] as the examples print it
#: script -> the lines its stdout must hold (each a regex, searched line by line)
KEY_LINES = {
    "simulate_mlp_on_pcm.py": [
        rf"^float accuracy: {_ACC}$",
        rf"^PCM chip read +86400 s after programming: accuracy {_ACC}$",
        rf"^PCM, 3 chips: accuracy {_ACC} \+- 0\.\d{{3}}$",
    ],
    "estimate_vgg8.py": [
        r"^VGG8 on rram-22nm: area [\d.]+ mm\^2, energy [\d.]+ uJ/image, latency [\d.]+ ms/image, [\d.]+ TOPS/W",
        r"^ +8-bit ADCs: energy +[\d.]+ uJ, latency [\d.]+ ms, area +[\d.]+ mm\^2$",
    ],
    "explore_adc_bits.py": [
        r"^36 designs priced, [1-9]\d* on the latency-area Pareto front:$",
        r"^  adc_bits \d, crossbar +\d+, columns_per_adc \d: latency [\d.]+ ms, area +[\d.]+ mm\^2, energy +[\d.]+ uJ$",
    ],
    "transformer_on_cim.py": [
        rf"^float accuracy: {_ACC}$",
        rf"^chip accuracy \(.*\): {_ACC}$",
        r"^BERT-base, 128 tokens: [\d.]+ mJ, [\d.]+ ms per inference \(.*linear [\d.]+%.*matmul [\d.]+%",
    ],
    "hamming_attention.py": [
        rf"^teacher \(float attention\): accuracy {_ACC}$",
        rf"^student after \d+ distillation steps: accuracy {_ACC}$",
        r"^BERT-base, 512 tokens: attention [\d.]+ mJ -> [\d.]+ mJ per inference with HAD \(\d+% less\)",
    ],
    "trees_on_cam.py": [
        r"^skipped: needs \w+ \(pip install cimkit\[trees\]\)$|^ +exact: accuracy 100\.000%$",
        r"^skipped: |^ +xtime: [\d.]+ nJ/decision, [\d.]+ ns, \d+ arrays, [\d.]+ mm\^2$",
    ],
    "snn_on_crossbars.py": [
        rf"^float SNN \(\d+ steps\): accuracy {_ACC}$",
        rf"^SNN on rram-22nm .*: accuracy {_ACC}$",
        r"^event-driven cost: [\d.]+ nJ and [\d.]+ us per inference$",
    ],
    "train_through_chip.py": [
        rf"^after \d+ epochs through the chip: accuracy {_ACC}$",
        r"^reloaded chip reads the same: True$",
    ],
    "robustness_attack.py": [
        rf"^FGSM eps 0\.10 on +float: accuracy {_ACC}$",
        rf"^FGSM eps 0\.10 on +chip: accuracy {_ACC}$",
        rf"^dead columns 5%: accuracy {_ACC} \(95% band",
    ],
}


def test_every_capability_has_an_example():
    names = {p.name for p in EXAMPLES}
    missing = {cap: script for cap, script in CAPABILITIES.items() if script not in names}
    assert not missing, f"capabilities without their example script: {missing}"
    assert set(KEY_LINES) == names, "every example needs its expected key lines in KEY_LINES (and only examples)"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    env = {"CIMKIT_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    if "HF_HUB_OFFLINE" in os.environ:
        env["HF_HUB_OFFLINE"] = os.environ["HF_HUB_OFFLINE"]
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for pattern in KEY_LINES.get(script.name, []):
        assert re.search(pattern, proc.stdout, re.MULTILINE), f"no line matches {pattern!r} in:\n{proc.stdout}"
    assert not list(Path(script.parent).glob("*.db")), "an example wrote into examples/ instead of the cwd"


STUDIES = sorted([*(ROOT / "examples").glob("*.yaml"), *(ROOT / "benchmarks").glob("*.yaml")])


@pytest.mark.parametrize(
    "path", [p for p in STUDIES if "workloads:" in p.read_text()], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_study_files_load_from_any_folder(path, tmp_path, monkeypatch):
    from cimkit.explore import StudyConfig, prepare_study

    monkeypatch.chdir(tmp_path)  # paths inside a study file are relative to the file, not to the caller
    prepare_study(StudyConfig.from_yaml(path))
