"""The in-situ training benchmark (benchmarks/bench_insitu.py): its smoke run, the structure of its results,
seeded reruns, and its rank statistics."""

from __future__ import annotations

import json
import math

import pytest

from .helpers import benchmark_module


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_insitu") as module:
        yield module


def test_spearman_and_ranks(bench):
    assert bench.ranks([0.9, 0.5, 0.7]) == [1.0, 3.0, 2.0]
    assert bench.ranks([0.5, 0.5, 0.1]) == [1.5, 1.5, 3.0]
    assert bench.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert bench.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert bench.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


def test_smoke_run(bench, tmp_path, capsys):
    pytest.importorskip("mlxtend")
    out = tmp_path / "results.json"
    ckpt = tmp_path / "ckpt"
    results = bench.main(["--smoke", "--checkpoint-dir", str(ckpt), "--json", str(out)])
    text = capsys.readouterr().out
    for word in ("Device ordering", "NeuroSim", "BP vs DFA", "small CNN", "biotorch", "Step cost", "ratio"):
        assert word in text, word
    assert results["mode"] == "smoke"
    saved = json.loads(out.read_text())
    assert set(saved) >= {"ordering", "depth", "cnn", "cost", "setup", "spec_fields", "seconds"}

    order = saved["ordering"]
    assert set(order["accuracy"]) == {bench.dev_name(d) for d in bench.SETUPS["smoke"].order_devices}
    assert all(0.0 <= a <= 1.0 for a in order["accuracy"].values())
    assert 0.0 <= order["software_accuracy"] <= 1.0
    assert order["settings"]["weight_max"] == 1.0 and order["settings"]["batch_size"] == 1

    table = saved["depth"]["table"]
    assert set(table) == {"2/tanh"}
    for row in table.values():
        assert {k.split("/")[0] for k in row} == {"bp", "dfa"}
        assert all(0.0 <= cell["accuracy"] <= 1.0 and cell["steps"] > 0 for cell in row.values())

    assert set(saved["cnn"]["runs"]) == {"bp/epiram", "dfa/epiram"}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in saved["cnn"]["runs"].values())

    cost = saved["cost"]["2"]
    for rule in ("bp", "dfa"):
        c = cost[rule]
        assert c["rule"] == rule and len(c["layers"]) == 2
        assert c["latency_s"] > 0 and c["energy_j"] > 0 and c["backward_latency_s"] > 0
    # two equal layers whose error read is far shorter than the write: the model gives about N = 2
    assert 1.0 <= cost["equal_layer_ratio"] <= 2.0
    assert math.isfinite(cost["measured_ratio"]) and cost["measured_ratio"] > 0
    assert list(ckpt.glob("insitu_*.pt"))  # each training run checkpointed

    # a rerun resumes every finished run from its checkpoint: the same numbers
    again = bench.main(["--smoke", "--checkpoint-dir", str(ckpt), "--only", "ordering", "--only", "cost"])
    assert again["ordering"]["accuracy"] == order["accuracy"]
    assert again["cost"]["2"]["measured_ratio"] == pytest.approx(cost["measured_ratio"])
    assert "depth" not in again and "cnn" not in again
