"""Files in and out (issue 9): YAML files that are refused with one clear error, strict spec numbers,
atomic outputs, caches that detect corruption, and CLI commands that fail before their work."""

import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import cimkit as ck
from cimkit.cli import app
from cimkit.data.digits import load_cached
from cimkit.errors import CimkitError, InputError, SpecError
from cimkit.io import atomic_path, atomic_write, load_yaml

runner = CliRunner()


def _write(tmp_path, data: bytes | str, name="chip.yaml"):
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)


@pytest.mark.parametrize(
    "content, message",
    [
        (BOMB, "aliases"),
        ("device: " + "{a: " * 200 + "1" + "}" * 200 + "\n", "nested deeper than 32"),
        ("weight_bits: 4\nweight_bits: 8\n", r"duplicate key 'weight_bits' \(first on line 1\)"),
        ("", "empty"),
        ("# only a comment\n\n", "empty"),
        (b"\x00\x01\x02binary", "binary content"),
        ("weight_bits: 4\n".encode("utf-16"), "UTF-16"),
        ("name: caf\xe9\n".encode("latin-1"), "not UTF-8"),
        ("- a\n- b\n", "expected a mapping"),
        ("device: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_yaml_files_are_refused_with_one_clear_error(tmp_path, content, message):
    path = _write(tmp_path, content)
    t0 = time.perf_counter()
    with pytest.raises(SpecError, match=message) as exc:
        ck.HardwareSpec.from_yaml(path)
    assert time.perf_counter() - t0 < 5  # the alias bomb used to hang for over a minute
    assert str(path) in str(exc.value) and len(str(exc.value)) < 400


def test_an_explicit_empty_mapping_is_the_default_spec(tmp_path):
    assert ck.HardwareSpec.from_yaml(_write(tmp_path, "{}\n")) == ck.HardwareSpec()


def test_oversized_file_is_refused_and_huge_values_are_not_echoed(tmp_path):
    with pytest.raises(SpecError, match="too large"):
        ck.HardwareSpec.from_yaml(_write(tmp_path, "name: x\n" + "#" * (1 << 20) + "\n"))
    huge = "x" * 200_000
    with pytest.raises(SpecError) as exc:
        ck.HardwareSpec.from_yaml(_write(tmp_path, f"weight_bits: {huge}\n"))
    assert "weight_bits" in str(exc.value) and len(str(exc.value)) < 500


@pytest.mark.parametrize(
    "change",
    [
        {"device.g_max_us": float("inf")},
        {"device.programming_noise_frac": float("inf")},
        {"device.read_noise_frac": float("nan")},
        {"device.drift_nu": float("inf")},
        {"technology.clock_hz": float("inf")},
        {"chip.tile_buffer_kb": float("inf")},
        {"chip.global_buffer_kb": float("nan")},
        {"periphery.read_latency_ns": float("inf")},
        {"device.programming_noise_poly": [float("nan")]},
        {"device.programming_noise_poly": [-1.0]},
        {"device.programming_noise_poly": []},
        {"device.programming_noise_poly": [0.0, 0.0, -0.1]},
        {"array.rows": True},
        {"periphery.adc_bits": False},
        {"device.programming_noise_poly": [True, 0.1]},
        {"device.g_max_us": True},
        {"weight_bits": "8 bits"},
    ],
)
def test_spec_numbers_are_strict(change):
    with pytest.raises(SpecError) as exc:
        ck.HardwareSpec.preset("rram-22nm").replace(**change)
    assert next(iter(change)) in str(exc.value)


def test_yaml_spellings_of_inf_and_booleans_are_refused(tmp_path):
    for text in ("device:\n  g_max_us: .inf\n", "array:\n  rows: true\n", "device:\n  drift_nu: .nan\n"):
        with pytest.raises(SpecError):
            ck.HardwareSpec.from_yaml(_write(tmp_path, text))
    # a valid polynomial that dips toward zero but stays >= 0 on [0, 1] is fine
    assert ck.HardwareSpec.preset("pcm").device.programming_noise_poly is not None


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    path = atomic_write(tmp_path / "out.json", "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_text("half of the ne")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["out.json"]


def test_atomic_write_reports_a_failed_write_in_one_line(tmp_path):
    blocker = _write(tmp_path, "I am a file", "blocker")
    with pytest.raises(InputError, match="cannot create the folder"):
        atomic_write(blocker / "sub" / "out.json", "{}")
    with pytest.raises(InputError, match="is a folder"):
        atomic_write(tmp_path, "{}")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_an_input_error_not_a_traceback(tmp_path):
    with pytest.raises(InputError, match="cannot write"):
        with atomic_path(tmp_path / "x.txt"):
            with open("/dev/full", "w") as full:
                full.write("x" * 100_000)
                full.flush()
    assert os.listdir(tmp_path) == []


def test_corrupt_cache_is_named_removed_and_rebuilt(tmp_path):
    path = tmp_path / "thing.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    builds = []

    def build():
        builds.append(1)
        return np.arange(5)

    def load(p):
        with np.load(p) as data:
            return data["a"]

    def save(value, tmp):
        np.savez(tmp, a=value)

    with pytest.warns(UserWarning, match=r"thing\.npz is unreadable"):
        first = load_cached(path, load, build, save)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = load_cached(path, load, build, save)  # rebuilt file is read back, no second build
    assert builds == [1] and np.array_equal(first, second)


def test_corrupt_mnist_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("CIMKIT_CACHE", str(tmp_path))
    (tmp_path / "mnist5000.npz").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="mnist5000.npz is unreadable"):
        data = ck.data.mnist()
    assert data.x_train.shape[1:] == (1, 28, 28)
    assert ck.data.mnist().y_test.tolist() == data.y_test.tolist()


def test_digits_are_cached_with_scikit_learns_values_and_rebuilt_when_corrupt(tmp_path, monkeypatch):
    from sklearn.datasets import load_digits

    monkeypatch.setenv("CIMKIT_CACHE", str(tmp_path))
    first = ck.data.digits(seed=3)
    assert (tmp_path / "digits1797.npz").is_file()
    cached = ck.data.digits(seed=3)
    assert torch.equal(first.x_train, cached.x_train) and torch.equal(first.y_test, cached.y_test)
    d = load_digits()
    every = torch.cat([first.x_train, first.x_test]).reshape(-1, 64).double()
    assert sorted(every.sum(1).tolist()) == pytest.approx(sorted((d.data / 16.0).sum(1).tolist()))
    (tmp_path / "digits1797.npz").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="digits1797.npz is unreadable"):
        again = ck.data.digits(seed=3)
    assert torch.equal(again.x_test, first.x_test)


def test_data_without_a_usable_cache_folder_are_built_with_a_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CIMKIT_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="built without caching"):
        d = ck.data.digits(seed=1)
    monkeypatch.setenv("CIMKIT_CACHE", str(tmp_path / "ok"))
    assert torch.equal(d.x_test, ck.data.digits(seed=1).x_test)


def test_load_yaml_returns_plain_data(tmp_path):
    assert load_yaml(_write(tmp_path, "a: 1\nb: [x, {c: 2.5}]\n")) == {"a": 1, "b": ["x", {"c": 2.5}]}
    with pytest.raises(InputError, match="no such description file"):
        load_yaml(tmp_path / "missing.yaml")


# ---- the command line ----------------------------------------------------------------------------


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "cimkit.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_estimate_infeasible_exits_nonzero_with_strict_json(tmp_path):
    import json

    chip = _write(tmp_path, "chip:\n  tiles: 1\n")
    proc = _cli("estimate", "vgg8", "--hw", chip, "--json", tmp_path / "r.json")
    assert proc.returncode == 1 and "infeasible" in proc.stdout and "Traceback" not in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert report["feasible"] is False and report["energy_j"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["estimate", "vgg8", "--plot", "x.foo"], "unsupported file type '.foo'"),
        (["estimate", "vgg8", "--json", "."], "is a folder"),
        (["estimate", "vgg8", "--hw", "nope.yaml"], "no such hardware description file"),
        (["estimate", "no-such-net"], "no-such-net"),
        (["trees", "--plot", "t.xyz"], "unsupported file type '.xyz'"),
        (["spec", "missing-preset"], "unknown preset"),
    ],
)
def test_cli_refuses_bad_arguments_before_working(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, args)  # in process: `cimkit` prints a CimkitError as one line, exit code 2
    assert isinstance(res.exception, CimkitError), res.output
    assert message in str(res.exception)


def test_cli_out_that_is_a_file_is_refused(tmp_path):
    blocker = _write(tmp_path, "x", "out")
    res = runner.invoke(app, ["demo", "--out", str(blocker), "--quick"])
    assert res.exit_code != 0 and "existing file" in str(res.exception or res.output)
    assert isinstance(res.exception, CimkitError)
