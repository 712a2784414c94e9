"""The SNN task benchmark (benchmarks/bench_snn_tasks.py) at toy size: its helpers, a tiny section run, the
JSON it writes and its resume."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from .helpers import benchmark_module


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_snn_tasks") as module:
        yield module


@pytest.mark.parametrize("kind", ["lif_subtract", "lif_zero", "lif_none", "lif_adaptive", "synaptic", "fang"])
def test_every_neuron_model_runs_trains_and_converts(bench, kind):
    torch.manual_seed(0)
    params = bench.NeuronParams()
    model = bench.SpikingMLP((12, 8, 3), kind, params)
    x = torch.bernoulli(torch.full((5, 6, 12), 0.4), generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    spk, mem = model(x)
    assert spk.shape == mem.shape == (5, 6, 3)
    assert set(spk.unique().tolist()) <= {0.0, 1.0}
    hist = bench.train_classifier(model, x, y, epochs=1, batch=3, lr=1e-2, seed=0)
    assert hist["updates"] == 2 and len(hist["loss"]) == 1
    acc = bench.accuracy(model, x, y)
    assert 0.0 <= acc <= 1.0
    # after training the neurons hold no graph: the model converts; the ideal chip computes the same
    chip = bench.chip_accuracy(model, "ideal", x, x, y, seeds=(0,), calib_batches=1, batch=6)
    assert abs(chip["values"][0] - acc) <= 1 / 6 + 1e-9


def test_time_shuffle_permutes_each_sample_in_time(bench):
    x = torch.arange(4 * 3).float().view(4, 3, 1).expand(4, 3, 2).contiguous()
    s = bench.time_shuffle(x, seed=0)
    assert s.shape == x.shape
    for n in range(3):
        assert sorted(s[:, n, 0].tolist()) == sorted(x[:, n, 0].tolist())
    assert torch.equal(s, bench.time_shuffle(x, seed=0))
    assert not torch.equal(s, x)


def test_spike_precision_recall(bench):
    t = torch.zeros(20, 1, 2)
    t[5, 0, 0] = t[12, 0, 1] = 1
    o = torch.zeros_like(t)
    o[7, 0, 0] = 1  # within 2 steps of the target
    o[2, 0, 1] = 1  # far from any target
    p, r = bench.spike_precision_recall(o, t, tol=2)
    assert p == pytest.approx(0.5) and r == pytest.approx(0.5)
    assert bench.spike_precision_recall(t, t, tol=0) == (1.0, 1.0)


def test_association_init_calibrates_each_layer_rate(bench):
    cfg = replace(bench.quick_config().temporal, steps=24, init_rate=0.05, init_iters=7)
    (xtr, _), _ = bench.association_data(cfg)
    model = bench.association_net(cfg, "lif_none", xtr[:, :2])
    assert all(abs(r - 0.05) < 0.03 for r in model.init_rates), model.init_rates
    assert all(fc.bias is None for fc in model.fcs)


def test_quick_sections_write_resumable_json(bench, tmp_path, capsys):
    out = tmp_path / "snn.json"
    cfg = bench.quick_config()
    tiny = replace(
        cfg,
        events=replace(cfg.events, tasks=("moving_bars",), neurons=("lif_subtract", "fang")),
        temporal=replace(cfg.temporal, neurons=("fang", "lif_subtract"), init_iters=3),
    )
    store = bench.Store(out, tiny, "quick")
    bench.run_events(tiny.events, store)
    bench.run_temporal(tiny.temporal, store)
    text = capsys.readouterr().out
    assert "time-shuffled" in text and "test MSE" in text and "silent output" in text
    saved = json.loads(out.read_text())
    ev = saved["sections"]["events"]["entries"]
    assert set(ev) == {"moving_bars/lif_subtract", "moving_bars/fang"}
    assert set(ev["moving_bars/lif_subtract"]["chip"]) == {"ideal", "rram-22nm"}
    tp = saved["sections"]["temporal"]
    assert set(tp["entries"]) == {"fang", "lif_subtract"}
    assert tp["entries"]["fang"]["test"]["mse"] >= 0 and "deviation_from_fang" in tp
    # a second run with the same configuration redoes nothing
    store2 = bench.Store(out, tiny, "quick")
    calls = []
    orig = bench.train_classifier
    bench.train_classifier = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        bench.run_events(tiny.events, store2)
    finally:
        bench.train_classifier = orig
    assert calls == []
