"""``cimkit.simulate`` and ``cimkit simulate``: a model's test-set accuracy on several sampled chips, the same
image for image whether serial, sharded or on Dask, resumable from a checkpoint (issue 13, point 4)."""

import copy
import functools
import json
import re
import sys

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import cimkit as ck
from cimkit.cli import app, main
from cimkit.data import digits
from cimkit.errors import InputError
from cimkit.report import check_names
from cimkit.sim.evaluate import SimulationInterrupted, SimulationResult, _make_chip, _run_batches

runner = CliRunner()
DATA = digits()  # 1,438 training and 359 test images of 8x8 digits
CAL = DATA.x_train[:128]


@functools.lru_cache(maxsize=1)
def _trained() -> nn.Module:
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(80):
        opt.zero_grad()
        nn.functional.cross_entropy(model(DATA.x_train), DATA.y_train).backward()
        opt.step()
    return model.eval()


def tiny_model() -> nn.Module:
    """A trained linear classifier of the 8x8 digits (also the CLI's ``tests.test_simulate:tiny_model``)."""
    return copy.deepcopy(_trained())


def run(**kw) -> SimulationResult:
    args = dict(chips=2, seed=0, calibration=CAL, batch_size=64)
    args.update(kw)
    return ck.simulate(tiny_model(), args.pop("spec", "rram-22nm"), DATA.x_test, DATA.y_test, **args)


def test_same_seed_same_numbers_and_another_seed_other_numbers():
    a, b = run(), run()
    assert a.predictions == b.predictions and a.correct == b.correct and a.seeds == [0, 1]
    assert a.predictions[0] != a.predictions[1]  # two chips: other programming, other noise
    c = run(seed=5)
    assert c.seeds == [5, 6] and c.predictions[0] != a.predictions[0]
    assert all(0.8 < acc <= 1 for acc in a.accuracies)


def test_shards_give_the_serial_predictions_image_for_image():
    serial = run(chips=2)
    for shards in (3, 6):  # 359 images in 6 batches of 64: uneven shards, one batch per shard
        sharded = run(chips=2, shards=shards)
        assert sharded.predictions == serial.predictions and sharded.shards == shards


def test_each_batch_takes_its_own_noise_whatever_ran_before():
    """Batch b reads the noise at D + b * row_tiles (D: the position after calibration), so a unit computed
    alone (a shard in another process) reads exactly what the serial run reads."""
    chip = _make_chip(tiny_model(), ck.HardwareSpec.preset("rram-22nm"), 0, CAL, 1, DATA.x_test[:1])
    assert chip.stride == [(layer.tile.mapping.row_tiles, 0) for layer in chip.layers] and all(chip.stride)
    ideal = _make_chip(tiny_model(), ck.HardwareSpec.preset("ideal"), 0, CAL, 1, DATA.x_test[:1])
    assert ideal.stride == [(0, 0)]  # no read noise: no draws; static weights: no writes per forward


class RowAttention(nn.Module):
    """The 8 rows of a digit as tokens, one self-attention over them: two dynamic matmuls per image batch."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.embed, self.qkv, self.head = nn.Linear(8, 16), nn.Linear(16, 48), nn.Linear(128, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, x):
        h = self.embed(x.reshape(-1, 8, 8))
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        a = torch.softmax(q @ k.transpose(-1, -2) / 4, dim=-1)
        return self.head((a @ v + h).flatten(1))


def test_shards_reproduce_the_serial_run_with_attention_on_rewritten_arrays():
    """Each forward writes the attention operands anew (a programming-noise sample per write): batch b of a
    shard takes the same samples as in the serial run."""
    spec = ck.HardwareSpec.preset("rram-22nm").replace(routing={"matmul": "crossbar"})
    chip = _make_chip(RowAttention(), spec, 0, CAL, 1, DATA.x_test[:1])
    sites = [layer for layer in chip.layers if type(layer).__name__ == "CIMDynamicMatmul"]
    assert len(sites) == 2 and all(chip.stride[chip.layers.index(s)][1] == 1 for s in sites)

    def attention_run(**kw):
        return ck.simulate(
            RowAttention(), spec, DATA.x_test, DATA.y_test, chips=1, seed=0, calibration=CAL, batch_size=64, **kw
        )

    serial = attention_run()
    assert attention_run(shards=3).predictions == serial.predictions

    def site_outputs(first_batch):  # what the attention sites compute for each batch from first_batch on
        chip = _make_chip(RowAttention(), spec, 0, CAL, 1, DATA.x_test[:1])
        seen = []
        for layer in chip.layers:
            layer.register_stage_hook("output", lambda tile, value, info: seen.append(value.clone()))
        _run_batches(chip, DATA.x_test[first_batch * 64 : (first_batch + 1) * 64], first_batch, 64)
        return seen

    alone = site_outputs(2)
    serial_chip = _make_chip(RowAttention(), spec, 0, CAL, 1, DATA.x_test[:1])
    seen = []
    for layer in serial_chip.layers:
        layer.register_stage_hook("output", lambda tile, value, info: seen.append(value.clone()))
    _run_batches(serial_chip, DATA.x_test[:192], 0, 64)
    per_batch = len(seen) // 3
    assert len(alone) == per_batch and all(torch.equal(a, b) for a, b in zip(alone, seen[2 * per_batch :]))


def test_an_ideal_chip_gives_the_float_models_predictions():
    model = tiny_model()
    expected = model(DATA.x_test).argmax(1).tolist()
    for calibration in (None, CAL):
        r = run(spec="ideal", chips=1, calibration=calibration)
        assert r.predictions == [expected]
        assert r.accuracies == [r.float_accuracy] and r.float_accuracy > 0.9


def test_mean_and_spread():
    r = run(chips=3)
    acc = np.array(r.correct) / len(DATA.y_test)
    assert r.accuracies == pytest.approx(acc.tolist())
    assert r.mean_accuracy == pytest.approx(acc.mean())
    assert r.std_accuracy == pytest.approx(acc.std(ddof=1))
    assert (r.min_accuracy, r.max_accuracy) == (acc.min(), acc.max())
    assert r.correct == [sum(int(p == t) for p, t in zip(pred, DATA.y_test.tolist())) for pred in r.predictions]
    one = SimulationResult("x", images=4, seeds=[0], correct=[3], predictions=[[0, 1, 2, 3]])
    assert (one.mean_accuracy, one.std_accuracy, one.images_per_s) == (0.75, 0.0, None)
    two = SimulationResult("x", images=4, seeds=[0, 1], correct=[2, 4], predictions=[[0] * 4] * 2)
    assert two.std_accuracy == pytest.approx(np.std([0.5, 1.0], ddof=1))


def test_the_result_protocol(tmp_path):
    r = run(chips=2)
    data = r.to_dict()
    assert check_names(data) == [] and data["result"] == "SimulationResult"
    assert data["chips"] == 2 and data["spec"] == "rram-22nm" and data["images"] == 359
    assert data["predictions"] == r.predictions and len(data["per_chip"]) == 2
    assert data["std_accuracy"] == r.std_accuracy and data["images_per_s"] > 0
    assert json.loads(r.to_json(tmp_path / "r.json")) == json.loads(json.dumps(data))
    rows = r.records()
    assert [row["chip"] for row in rows] == [0, 1] and rows[1]["seed"] == 1 and rows[0]["total"] == 359
    assert rows[0]["predictions_sha256"] != rows[1]["predictions_sha256"]
    header = r.to_csv(tmp_path / "r.csv").read_text().splitlines()[0]
    assert header == "chip,seed,correct,total,accuracy,predictions_sha256"
    figures = r.figures(tmp_path / "fig")
    assert [f.name for f in figures] == ["simulate_accuracy.png"] and figures[0].stat().st_size > 1000
    assert r.table().row_count == 5  # two chips, mean ± std, min / max, float model


def test_progress_callable_counts_test_images_over_all_chips():
    seen = []
    run(chips=2, shards=2, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (2 * 359, 2 * 359) and all(t == 718 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 12  # after each batch
    run(chips=1, progress=True)  # a rich bar on stderr


def test_checkpoint_resumes_after_an_interruption(tmp_path):
    ckpt = tmp_path / "ck.json"
    whole = run(chips=2, shards=2)
    unit = (359 + 1) // 2 // 64 * 64 + 64  # shard 0 holds batches 0-2: 192 images

    def stop_after_first_unit(done, total):
        if done >= unit:
            raise KeyboardInterrupt

    with pytest.raises(SimulationInterrupted) as info:
        run(chips=2, shards=2, checkpoint=ckpt, progress=stop_after_first_unit)
    assert (info.value.done, info.value.total, info.value.checkpoint) == (1, 4, str(ckpt))
    stored = json.loads(ckpt.read_text())
    assert [(u["chip"], u["shard"]) for u in stored["units"]] == [(0, 0)] and len(
        stored["units"][0]["predictions"]
    ) == unit
    resumed = run(chips=2, shards=2, checkpoint=ckpt)
    assert resumed.resumed_units == 1 and resumed.images_simulated == 2 * 359 - unit
    assert resumed.predictions == whole.predictions and resumed.correct == whole.correct
    again = run(chips=2, shards=2, checkpoint=ckpt)  # everything stored: nothing simulated
    assert again.resumed_units == 4 and again.images_simulated == 0 and again.images_per_s is None
    assert again.predictions == whole.predictions


def test_a_checkpoint_of_other_settings_is_refused_with_what_differs(tmp_path):
    ckpt = tmp_path / "ck.json"
    run(chips=1, checkpoint=ckpt)
    with pytest.raises(InputError, match=r"other settings; differing: seed \(stored 0, now 1\).*delete .*ck.json"):
        run(chips=1, seed=1, checkpoint=ckpt)
    with pytest.raises(InputError, match=r"spec \(periphery.adc_bits: 5 -> 6\)"):
        run(chips=1, checkpoint=ckpt, spec=ck.HardwareSpec.preset("rram-22nm").replace(**{"periphery.adc_bits": 6}))
    with pytest.raises(InputError, match=r"differing: batch_size .*; chips \(stored 1, now 2\)"):
        run(chips=2, batch_size=32, checkpoint=ckpt)
    with pytest.raises(InputError, match=r"differing: calibration \(different contents\)"):
        run(chips=1, calibration=DATA.x_train[:100], checkpoint=ckpt)
    other = tiny_model()
    with torch.no_grad():
        other[1].bias += 1
    with pytest.raises(InputError, match=r"differing: model"):
        ck.simulate(other, "rram-22nm", DATA.x_test, DATA.y_test, calibration=CAL, batch_size=64, checkpoint=ckpt)
    ckpt.write_text("{not json")
    with pytest.raises(InputError, match="cannot be read.*delete"):
        run(chips=1, checkpoint=ckpt)
    ckpt.write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="not a cimkit simulate checkpoint"):
        run(chips=1, checkpoint=ckpt)


class _NotLogits(nn.Module):
    def forward(self, x):
        return x.flatten(1).sum(1)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"chips": 0}, "simulate: chips = 0 is not allowed; chips must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size must be an integer"),
        ({"shards": 0}, "shards must be an integer >= 1"),
        ({"shards": 7}, r"shards \(7\) must be at most the number of batches \(6: 359 images"),
        ({"executor": "threads"}, "executor must be one of 'serial', 'dask', got 'threads'"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"scheduler": "tcp://127.0.0.1:9"}, "scheduler=.* is only used with executor='dask'"),
        (
            {"scheduler_timeout_s": 0, "executor": "dask"},
            "scheduler_timeout_s = 0 is not allowed; scheduler_timeout_s must be a finite number > 0",
        ),
        ({"progress": "yes"}, "progress must be True"),
        ({"calibrate_batches": 0}, "calibrate_batches must be an integer >= 1"),
        (
            {"calibrate_batches": 200},
            r"calibrate_batches \(200\) must be at most the number of calibration inputs \(128\)",
        ),
        ({"calibration": DATA.x_train[:8, :, :4]}, "calibration inputs have shape"),
        ({"calibration": "images"}, "calibration must be a torch tensor or a numpy array"),
        ({"y": DATA.y_test[:-1]}, r"y must be one integer label per input: shape \(359,\)"),
        ({"y": DATA.y_test.float()}, "y must hold integer class labels"),
        ({"y": DATA.y_test - 1}, "negative label"),
        ({"y": DATA.y_test + 5}, "the label 14, but the model gives scores for 10 classes"),
        ({"x": DATA.x_test[:0], "y": DATA.y_test[:0]}, r"x must be a batch of inputs .* got shape \(0, 1, 8, 8\)"),
        ({"x": (DATA.x_test * 255).to(torch.uint8)}, "x must be floating point"),
        ({"x": DATA.x_test.clone().fill_(float("nan"))}, "x has non-finite values"),
        ({"x": DATA.x_test[:, :, :4], "calibration": None}, "the model cannot run on the inputs x"),
        ({"model": "a model"}, "model must be a torch.nn.Module, got str"),
        ({"model": _NotLogits()}, r"class scores of shape \(batch, classes\)"),
        ({"spec": 3}, "spec must be a HardwareSpec or a preset name"),
        ({"checkpoint": "."}, "checkpoint . is a folder"),
    ],
)
def test_bad_input_is_one_clear_error_naming_the_option(change, message):
    args = dict(model=tiny_model(), spec="rram-22nm", x=DATA.x_test, y=DATA.y_test, calibration=CAL, batch_size=64)
    args.update(change)
    with pytest.raises(InputError, match=message):
        ck.simulate(args.pop("model"), args.pop("spec"), args.pop("x"), args.pop("y"), **args)


def test_a_converted_model_is_refused():
    cim = ck.convert(tiny_model(), "rram-22nm")
    with pytest.raises(InputError, match="already converted"):
        ck.simulate(cim, "rram-22nm", DATA.x_test, DATA.y_test)


def test_numpy_inputs_are_accepted():
    r = ck.simulate(tiny_model(), "ideal", DATA.x_test.numpy(), DATA.y_test.numpy().astype(np.int32), batch_size=64)
    assert r.accuracies == [r.float_accuracy]


def test_calibration_progress_and_an_interrupted_calibration():
    spec = ck.HardwareSpec.preset("rram-22nm")  # calibrated ADCs: two passes
    assert spec.periphery.adc_range == "calibrated"
    a, b = ck.convert(tiny_model(), spec, seed=0), ck.convert(tiny_model(), spec, seed=0)
    seen = []
    ck.calibrate(a, torch.split(CAL, 32), num_batches=4, progress=lambda d, t: seen.append((d, t)))
    ck.calibrate(b, torch.split(CAL, 32), num_batches=4)  # the default: nothing shown, the same ranges
    assert seen == [(32 * i, 256) for i in range(1, 9)]
    assert torch.equal(a[1].tile.input_range, b[1].tile.input_range)
    assert torch.equal(a[1].tile.adc_full_scale, b[1].tile.adc_full_scale)
    ck.calibrate(ck.convert(tiny_model(), spec), [CAL], num_batches=1, progress=True)
    with pytest.raises(InputError, match="calibrate: progress must be True"):
        ck.calibrate(b, [CAL], progress=1)

    def stop(done, total):
        raise KeyboardInterrupt

    c = ck.convert(tiny_model(), spec, seed=0).train()
    before = c[1].tile.input_range.clone()
    with pytest.raises(KeyboardInterrupt):
        ck.calibrate(c, [CAL], num_batches=1, progress=stop)
    assert c[1].tile.calibrating is None and not c[1]._calib_data and c.training  # no observer left behind
    assert torch.allclose(c[1].tile.input_range, before, equal_nan=True)  # still uncalibrated


def test_unreachable_scheduler_is_an_input_error():
    pytest.importorskip("dask.distributed")
    with pytest.raises(InputError, match="cannot reach the Dask scheduler 'tcp://127.0.0.1:9'"):
        run(chips=1, executor="dask", scheduler="tcp://127.0.0.1:9", scheduler_timeout_s=1)


@pytest.mark.slow
def test_dask_gives_the_serial_predictions_even_when_a_worker_dies(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    serial = run(chips=2)
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("CIMKIT_FAULT_KILL_WORKER_ONCE", str(marker))
    seen = []
    dask = run(
        chips=2,
        shards=3,
        executor="dask",
        workers=2,
        checkpoint=tmp_path / "ck.json",
        progress=lambda done, total: seen.append(done),
    )
    assert marker.exists()  # a worker did die mid-task, and its task was rerun
    assert dask.predictions == serial.predictions and dask.correct == serial.correct and dask.executor == "dask"
    assert len(seen) == 6 and seen[-1] == 2 * 359  # after each unit
    assert len(json.loads((tmp_path / "ck.json").read_text())["units"]) == 6


# ---- the command line -------------------------------------------------------------------------------------------
def cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    """``cimkit ARGS`` as a user runs it (errors printed by ``main``): exit code and output."""
    monkeypatch.setattr(sys, "argv", ["cimkit", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, " ".join(capsys.readouterr().out.split())  # the console wraps long lines


def test_cli_simulates_a_module_function_model_and_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    args = [
        "simulate",
        "tests.test_simulate:tiny_model",
        "--data",
        "digits",
        "--hw",
        "rram-22nm",
        "--chips",
        2,
        "--batch",
        64,
        "--limit",
        200,
        "--calibrate",
        128,
        "--out",
        out,
        "--json",
        tmp_path / "r.json",
        "--csv",
        tmp_path / "r.csv",
        "--no-progress",
    ]
    code, text = cli(monkeypatch, capsys, *args)
    assert code == 0, text
    assert "mean ± std" in text and "200 test images, 2 chips" in text and "simulate_accuracy.png" in text
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["result"] == "SimulationResult" and data["images"] == 200 and data["calibration_images"] == 128
    assert (out / "simulate-checkpoint.json").exists() and (out / "simulate_accuracy.png").exists()
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 3
    api = ck.simulate(
        tiny_model(),
        "rram-22nm",
        DATA.x_test[:200],
        DATA.y_test[:200],
        chips=2,
        calibration=CAL,
        calibrate_batches=2,
        batch_size=64,
    )  # the command line calibrates in batches of --batch
    assert data["predictions"] == api.predictions  # the command line computes what the API does
    code, text = cli(monkeypatch, capsys, *args)  # the same command again: everything from the checkpoint
    assert code == 0 and "2 unit(s) read from" in text
    code, text = cli(monkeypatch, capsys, *args[:-1], "--seed", 3, "--no-progress")
    assert code == 2 and "seed (stored 0, now 3)" in text and "another --out" in text


def test_cli_saved_model_and_npz_data(tmp_path, monkeypatch, capsys):
    torch.save(tiny_model(), tmp_path / "model.pt")
    np.savez(tmp_path / "data.npz", x_test=DATA.x_test.numpy()[:100], y_test=DATA.y_test.numpy()[:100])
    base = ["simulate", tmp_path / "model.pt", "--data", tmp_path / "data.npz", "--hw", "ideal", "--no-progress"]
    code, text = cli(monkeypatch, capsys, *base)
    assert code == 2 and "no x_train to calibrate on" in text and "--calibrate 0" in text
    code, text = cli(monkeypatch, capsys, *base, "--calibrate", 0)
    assert code == 0 and "100 test images, 1 chip" in text and "float model" in text
    torch.save({"x_test": DATA.x_test[:50], "y_test": DATA.y_test[:50], "x_train": CAL}, tmp_path / "data.pt")
    code, text = cli(
        monkeypatch,
        capsys,
        "simulate",
        "tests.test_simulate:tiny_model",
        "--data",
        tmp_path / "data.pt",
        "--hw",
        "rram-22nm",
        "--shards",
        2,
        "--batch",
        25,
        "--no-progress",
    )
    assert code == 0 and "50 test images" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope", "--data", "digits"], "MODEL 'nope': not 'demo', not an existing file"),
        (["tests.test_simulate:missing", "--data", "digits"], "has no function 'missing'"),
        (["no_such_module_xyz:f", "--data", "digits"], "cannot import no_such_module_xyz"),
        (["tests.test_simulate:DATA", "--data", "digits"], "has no function 'DATA'"),
        (["demo", "--data", "digits"], "use it with --data mnist"),
        (["tests.test_simulate:tiny_model", "--data", "nowhere.npz"], "--data 'nowhere.npz': not mnist, digits"),
        (["tests.test_simulate:tiny_model", "--data", "digits", "--executor", "threads"], "executor must be one of"),
        (["tests.test_simulate:tiny_model", "--data", "digits", "--shards", 99], r"shards \(99\) must be at most"),
        (["tests.test_simulate:tiny_model", "--data", "digits", "--batch", "many"], "positive integer or auto"),
        (["tests.test_simulate:tiny_model", "--data", "digits", "--batch", 0], "positive integer or auto"),
    ],
)
def test_cli_bad_input_is_one_message(args, message, monkeypatch, capsys):
    code, text = cli(monkeypatch, capsys, "simulate", *args, "--hw", "ideal", "--no-progress")
    assert code == 2 and "Traceback" not in text
    assert re.search(message, text), text


def test_cli_bad_files(tmp_path, monkeypatch, capsys):
    torch.save(tiny_model().state_dict(), tmp_path / "weights.pt")
    code, text = cli(monkeypatch, capsys, "simulate", tmp_path / "weights.pt", "--data", "digits", "--hw", "ideal")
    assert code == 2 and "holds a dict (a state_dict?)" in text
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 64)))
    code, text = cli(
        monkeypatch, capsys, "simulate", "tests.test_simulate:tiny_model", "--data", tmp_path / "d.npz", "--hw", "ideal"
    )
    assert code == 2 and "has no x_test and no y_test (it holds: x)" in text
    assert runner.invoke(app, ["simulate", "demo", "--data", "digits", "--hw", "ideal", "--chips", "0"]).exit_code == 2


def test_cli_ctrl_c_says_what_was_kept(monkeypatch, capsys, tmp_path):
    import cimkit.sim.evaluate as evaluate

    def interrupted(*args, **kwargs):
        raise SimulationInterrupted(3, 8, str(tmp_path / "out" / "simulate-checkpoint.json"))

    monkeypatch.setattr(evaluate, "simulate", interrupted)
    code, text = cli(
        monkeypatch,
        capsys,
        "simulate",
        "tests.test_simulate:tiny_model",
        "--data",
        "digits",
        "--hw",
        "ideal",
        "--out",
        tmp_path / "out",
    )
    assert code == 130
    assert "3 of 8 units" in text and "simulate-checkpoint.json" in text and "run the same command to resume" in text


def test_auto_batch_is_the_largest_power_of_two_that_fits_and_is_recorded(monkeypatch, capsys):
    """batch_size="auto" measures the memory per image of the simulated forward and takes the largest power of
    two (up to 256) that fits in half the free memory; the result records it, and passing that number gives the
    same predictions. Where memory cannot be measured it says so and takes 256."""
    from cimkit.sim import evaluate

    per_image = []
    real_peak = evaluate._peak_memory_bytes
    monkeypatch.setattr(evaluate, "_peak_memory_bytes", lambda fn, dev: per_image.append(1) or real_peak(fn, dev))
    chosen = evaluate.auto_batch_size(tiny_model(), "rram-22nm", DATA.x_test)
    assert per_image == [1, 1] and 1 <= chosen <= 256 and chosen & (chosen - 1) == 0
    for free, expected in ((0, 1), (10**15, 256)):
        monkeypatch.setattr(evaluate, "_available_memory_bytes", lambda dev, free=free: free)
        assert evaluate.auto_batch_size(tiny_model(), "rram-22nm", DATA.x_test) == expected
    monkeypatch.setattr(evaluate, "_peak_memory_bytes", lambda fn, dev: (fn(), None)[1])
    with pytest.warns(RuntimeWarning, match="cannot be measured"):
        assert evaluate.auto_batch_size(tiny_model(), "rram-22nm", DATA.x_test, largest=64) == 64
    monkeypatch.setattr(evaluate, "_available_memory_bytes", lambda dev: 10**15)
    monkeypatch.setattr(evaluate, "_peak_memory_bytes", lambda fn, dev: (fn(), 1)[1])
    auto = run(chips=1, batch_size="auto")
    assert auto.batch_size == 256
    assert auto.predictions == run(chips=1, batch_size=256).predictions
    with pytest.raises(InputError, match="largest"):
        evaluate.auto_batch_size(tiny_model(), "rram-22nm", DATA.x_test, largest=0)
    code, text = cli(
        monkeypatch,
        capsys,
        "simulate",
        "tests.test_simulate:tiny_model",
        "--data",
        "digits",
        "--hw",
        "ideal",
        "--batch",
        "auto",
        "--limit",
        40,
        "--calibrate",
        0,
        "--no-progress",
    )
    assert code == 0 and "--batch auto: 256 images per forward" in text
