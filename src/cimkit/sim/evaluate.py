"""``simulate``: the test-set accuracy of a model on several sampled chips (mean and spread), serially or on
a Dask cluster, with a progress bar and a checkpoint that a rerun resumes from.

Chip ``k`` (0-based) is ``convert(model, spec, seed=seed + k)``, calibrated on ``calibration``, then run over
the test images in batches of ``batch_size``. The work is cut into units, one per (chip, shard), a shard
being a contiguous range of batches. Every unit gives the same predictions wherever and in whatever order it
runs: after calibration each crossbar layer's read-noise stream stands at some position ``D`` (its
``tile.rng.draws``), and before batch ``b`` it is set to ``D + b * s``, where ``s`` is the number of draws one
forward takes from it (``tile.mapping.row_tiles`` per use of the layer on a chip with read noise, 0 on one
without; measured by a one-image forward). The noise of a batch then depends only on the chip's seed, the
batch's index and its contents, never on which batches ran before it in the same process. Serial, sharded
and Dask runs with the same seed give identical predictions, image for image.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, cast

import numpy as np
import torch
from torch import nn

from ..errors import InputError, check_int, check_real, short_repr
from ..io import atomic_write, check_output_path, dict_differences, strict_json
from ..progress import ImageProgress, check_progress
from ..report.protocol import Result, figure_folder, saved_figure
from ..spec import HardwareSpec
from ..spec.model import stored_content
from .convert import calibrate, cim_layers, convert
from .tile import spec_fingerprint

#: executors ``simulate`` accepts
EXECUTORS = ("serial", "dask")
#: what a checkpoint file says it is
CHECKPOINT_FORMAT = "cimkit-simulate-checkpoint"
CHECKPOINT_VERSION = 1
#: fault injection for tests: a path; a Dask task creates it and kills its worker if it does not exist yet
FAULT_ENV = "CIMKIT_FAULT_KILL_WORKER_ONCE"


class ChipSetup:
    """What ``simulate`` does to each chip besides converting and calibrating it: inject faults, set the read
    time, attach stage hooks. A subclass overrides what it needs (each is a no-op here) and must pickle (Dask
    sends it to the workers).

    ``before_calibration(chip, seed)`` runs on the converted model of chip ``seed`` before calibration (defects
    a chip has when it is calibrated: dead columns, stuck cells); ``after_calibration(chip, seed)`` after it
    (what happens between calibration and use: drift to a read time); ``at_batch(chip, seed, batch)`` before
    each test batch, by its index in the test set, so that a random effect drawn per batch (a transient bit
    flip) can be seeded from ``(seed, batch)`` and give the same numbers however the run is sharded.
    ``describe()`` (JSON-safe) goes into the checkpoint's fingerprint: a checkpoint made under another setup
    is refused."""

    def before_calibration(self, chip: nn.Module, seed: int) -> None:
        pass

    def after_calibration(self, chip: nn.Module, seed: int) -> None:
        pass

    def at_batch(self, chip: nn.Module, seed: int, batch: int) -> None:
        pass

    def describe(self) -> dict:
        """The setup's class and its attributes (as JSON, values that are not JSON as their repr); override it
        when the attributes do not say everything the setup does."""
        state = json.loads(json.dumps(vars(self), default=repr, sort_keys=True))
        return {"setup": f"{type(self).__module__}.{type(self).__qualname__}", "state": state}


# ---- the result -----------------------------------------------------------------------------------------------
@dataclass
class SimulationResult(Result):
    """Test-set accuracy of one model on ``len(seeds)`` sampled chips of one spec.

    ``predictions[k]`` holds chip ``k``'s predicted class of every test image, in test-set order (a list of
    ints; ``to_dict`` keeps them, ``records`` gives a SHA-256 of each chip's instead). ``seconds`` and
    ``images_per_s`` measure this call only: the units a checkpoint held (``resumed_units``) cost nothing.

    The result protocol (``cimkit.report.Result``): ``to_dict`` / ``to_json`` (the run, the spread, one entry
    per chip, the predictions), ``records`` / ``to_csv`` (one row per chip), ``table`` (per chip, then
    mean ± std, min and max, the float model) and ``figures`` (``simulate_accuracy.png``: each chip's accuracy
    with the mean, the spread and the float model's accuracy).
    """

    spec_name: str
    images: int
    seeds: list[int]
    correct: list[int]
    predictions: list[list[int]] = field(repr=False)
    float_accuracy: float | None = None
    batch_size: int = 256
    shards: int = 1
    executor: str = "serial"
    seconds: float = 0.0
    images_simulated: int = 0
    resumed_units: int = 0
    calibration_images: int = 0
    model_name: str = ""
    checkpoint: str | None = None

    @property
    def chips(self) -> int:
        return len(self.seeds)

    @property
    def accuracies(self) -> list[float]:
        """Each chip's accuracy (fraction of test images classified right)."""
        return [c / self.images for c in self.correct]

    @property
    def mean_accuracy(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std_accuracy(self) -> float:
        """The sample standard deviation (ddof=1) over chips; 0.0 for one chip."""
        return statistics.stdev(self.accuracies) if self.chips > 1 else 0.0

    @property
    def min_accuracy(self) -> float:
        return min(self.accuracies)

    @property
    def max_accuracy(self) -> float:
        return max(self.accuracies)

    @property
    def images_per_s(self) -> float | None:
        """Test images simulated per second in this call (None when it simulated none)."""
        return self.images_simulated / self.seconds if self.images_simulated and self.seconds > 0 else None

    def predictions_sha256(self, chip: int) -> str:
        """SHA-256 of chip ``chip``'s predictions (as little-endian int64): equal runs give equal digests."""
        return hashlib.sha256(np.asarray(self.predictions[chip], dtype="<i8").tobytes()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": type(self).__name__,
            "spec": self.spec_name,
            "model": self.model_name,
            "images": self.images,
            "chips": self.chips,
            "seed": self.seeds[0],
            "batch_size": self.batch_size,
            "shards": self.shards,
            "executor": self.executor,
            "calibration_images": self.calibration_images,
            "mean_accuracy": self.mean_accuracy,
            "std_accuracy": self.std_accuracy,
            "min_accuracy": self.min_accuracy,
            "max_accuracy": self.max_accuracy,
            "float_accuracy": self.float_accuracy,
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
            "images_simulated": self.images_simulated,
            "resumed_units": self.resumed_units,
            "checkpoint": self.checkpoint,
            "per_chip": self.records(),
            "predictions": [list(map(int, p)) for p in self.predictions],
        }

    def csv_columns(self) -> tuple[str, ...]:
        return ("chip", "seed", "correct", "total", "accuracy", "predictions_sha256")

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "chip": k,
                "seed": s,
                "correct": c,
                "total": self.images,
                "accuracy": c / self.images,
                "predictions_sha256": self.predictions_sha256(k),
            }
            for k, (s, c) in enumerate(zip(self.seeds, self.correct))
        ]

    def table(self):
        from rich.table import Table

        title = (
            f"{self.model_name + ' on ' if self.model_name else ''}{self.spec_name}: {self.images:,} test images, "
            f"{self.chips} chip{'s' if self.chips != 1 else ''}"
        )
        table = Table(title=title)
        for col in ("chip", "seed", "correct", "accuracy"):
            table.add_column(col, justify="right")
        for row in self.records():
            table.add_row(
                str(row["chip"]), str(row["seed"]), f"{row['correct']:,}/{row['total']:,}", f"{row['accuracy']:.2%}"
            )
        table.add_section()
        table.add_row("mean ± std", "", "", f"{self.mean_accuracy:.2%} ± {self.std_accuracy:.2%}")
        table.add_row("min / max", "", "", f"{self.min_accuracy:.2%} / {self.max_accuracy:.2%}")
        if self.float_accuracy is not None:
            table.add_row("float model", "", "", f"{self.float_accuracy:.2%}")
        speed = self.images_per_s
        table.caption = (
            f"{self.images_simulated:,} images simulated in {self.seconds:.1f} s"
            + (f" ({speed:,.0f} images/s)" if speed else "")
            + (f"; {self.resumed_units} unit(s) from the checkpoint" if self.resumed_units else "")
        )
        return table

    def figures(self, folder: str | Path) -> list[Path]:
        folder = figure_folder(folder)
        path = folder / "simulate_accuracy.png"
        acc = [100 * a for a in self.accuracies]
        with saved_figure(path, figsize=(max(4.0, min(10.0, 2.5 + 0.3 * self.chips)), 3.6)) as (fig, ax):
            ax.plot(range(self.chips), acc, "o", color="tab:blue", label="each chip")
            mean, std = 100 * self.mean_accuracy, 100 * self.std_accuracy
            ax.axhline(mean, color="black", label=f"mean {mean:.2f}%" + (f" ± {std:.2f}" if self.chips > 1 else ""))
            if self.chips > 1:
                ax.axhspan(mean - std, mean + std, color="gray", alpha=0.2)
            if self.float_accuracy is not None:
                ax.axhline(
                    100 * self.float_accuracy,
                    color="tab:green",
                    linestyle="--",
                    label=f"float model {100 * self.float_accuracy:.2f}%",
                )
            shown = acc + ([100 * self.float_accuracy] if self.float_accuracy is not None else [])
            margin = max(1.0, 2 * std, 0.15 * (max(shown) - min(shown)))
            ax.set_ylim(max(0.0, min(shown) - 2 * margin), min(100.0, max(shown) + margin) + 0.5)
            ax.set_xlim(-0.6, self.chips - 0.4)
            ax.set_xticks(range(self.chips), [str(s) for s in self.seeds])
            ax.set_xlabel("chip (programming seed)")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"{self.spec_name}: {self.images:,} test images")
            ax.legend(fontsize=8, loc="lower right")
        return [path]


class SimulationInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a progress callable's ``KeyboardInterrupt``) during ``simulate``: ``done`` of ``total`` units
    were finished, and kept in ``checkpoint`` when there is one (a rerun with it resumes)."""

    def __init__(self, done: int, total: int, checkpoint: str | None) -> None:
        super().__init__("simulation interrupted")
        self.done, self.total, self.checkpoint = done, total, checkpoint


# ---- one chip, one shard ----------------------------------------------------------------------------------------
@dataclass
class _Chip:
    model: nn.Module
    layers: list
    start: list[tuple[int, int]]  # each crossbar layer's stream positions after calibration (read noise, writes)
    stride: list[tuple[int, int]]  # what one forward takes from them
    seed: int = 0
    setup: ChipSetup | None = None


def _make_chip(
    model: nn.Module,
    spec: HardwareSpec,
    seed: int,
    calibration: torch.Tensor | None,
    calibrate_batches: int,
    probe: torch.Tensor,
    calib_progress=False,
    cim: nn.Module | None = None,
    setup: ChipSetup | None = None,
) -> _Chip:
    """Chip ``seed`` of ``spec`` (``cim``: already converted), set up and calibrated, with its noise positions
    measured."""
    if cim is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the first conversion in the calling process said it already
            cim = convert(model, spec, seed=seed)
    if setup is not None:
        setup.before_calibration(cim, seed)
    if calibration is not None and (cim_layers(cim) or hasattr(cim, "cim_dynamic")):  # sites appear in calibrate
        calibrate(
            cim,
            list(torch.tensor_split(calibration, calibrate_batches)),
            num_batches=calibrate_batches,
            progress=calib_progress,
        )
    if setup is not None:
        setup.after_calibration(cim, seed)
    cim.eval()
    dynamic = getattr(cim, "cim_dynamic", None)
    if dynamic is not None and not len(dynamic.sites):  # sites of dynamic matmuls appear at a first forward
        with torch.no_grad():
            cim(probe.to(_device(cim)))
    layers = cim_layers(cim)
    start = [_position(layer) for layer in layers]
    with torch.no_grad():
        cim(probe.to(_device(cim)))
    now = [_position(layer) for layer in layers]
    stride = [(n[0] - s[0], n[1] - s[1]) for n, s in zip(now, start)]
    return _Chip(cim, layers, start, stride, seed, setup)


def _position(layer) -> tuple[int, int]:
    """Where a crossbar layer's random streams stand: read-noise draws, and the programming-noise sample (which
    only layers that write per input, dynamic matmuls, advance at each forward)."""
    return layer.tile.rng.draws, int(layer.tile.program_index)


def _seek(layer, start: tuple[int, int], stride: tuple[int, int], batch: int) -> None:
    """Put a layer's streams where the forward of test batch ``batch`` finds them in a serial run."""
    layer.tile.rng.draws = start[0] + batch * stride[0]
    if stride[1]:
        layer.tile.program_index.fill_(start[1] + batch * stride[1])


def _device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _run_batches(
    chip: _Chip,
    x: torch.Tensor,
    first_batch: int,
    batch_size: int,
    after_batch: Callable[[int, bool], None] | None = None,
) -> np.ndarray:
    """Predictions (int64) of ``chip`` on ``x``, the batches ``first_batch``, ``first_batch + 1``, ... of the
    test set; ``after_batch(images, last)`` after each."""
    device = _device(chip.model)
    out = []
    starts = range(0, len(x), batch_size)
    with torch.no_grad():
        for i, a in enumerate(starts):
            b = first_batch + i
            for layer, start, stride in zip(chip.layers, chip.start, chip.stride):
                _seek(layer, start, stride, b)
            if chip.setup is not None:
                chip.setup.at_batch(chip.model, chip.seed, b)
            xb = x[a : a + batch_size]
            logits = chip.model(xb.to(device))
            _check_logits(logits, len(xb))
            out.append(logits.argmax(1).cpu().numpy().astype(np.int64))
            if after_batch is not None:
                after_batch(len(xb), i == len(starts) - 1)
    return np.concatenate(out) if out else np.empty(0, np.int64)


#: the largest batch ``batch_size="auto"`` picks
AUTO_BATCH_MAX = 256


def _proc_bytes(path: str, field: str) -> int | None:
    """A ``kB`` field of a Linux ``/proc`` file (``VmHWM`` of ``/proc/self/status``...) in bytes; None if absent."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _peak_memory_bytes(fn: Callable[[], object], device: torch.device) -> int | None:
    """The peak memory ``fn()`` reached: CUDA's peak allocation, or on Linux the process's peak resident set
    (``VmHWM``, reset first through ``/proc/self/clear_refs``); None where neither can be measured."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    fn()
    return _proc_bytes("/proc/self/status", "VmHWM")


def _available_memory_bytes(device: torch.device) -> int | None:
    """Free memory now: CUDA's free device memory, or Linux's ``MemAvailable``; None where unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return _proc_bytes("/proc/meminfo", "MemAvailable")


def auto_batch_size(
    model: nn.Module, spec: HardwareSpec | str, x, *, memory_fraction: float = 0.5, largest: int = AUTO_BATCH_MAX
) -> int:
    """The largest power of two up to ``largest`` images per forward whose simulation on ``spec`` fits in
    ``memory_fraction`` of the memory available now (what ``simulate(batch_size="auto")`` and ``cimkit simulate
    --batch auto`` use). Measured, not guessed: the peak memory of forwards of 1 and 4 images of ``x`` through
    a chip of ``model`` (activations, accumulators, chunk buffers) gives the memory per image. Where memory
    cannot be measured (not Linux, no CUDA) it is ``largest``, with a warning. The choice depends on the
    machine and its load, and the read noise depends on the batch: the result records the number it used, and
    passing that number reproduces the run."""
    if isinstance(spec, str):
        spec = HardwareSpec.preset(spec)
    largest = check_int("auto_batch_size", "largest", largest, 1)
    memory_fraction = check_real("auto_batch_size", "memory_fraction", memory_fraction, 0.0, 1.0, lo_open=True)
    x = _check_images(x, "x")
    if len(x) < 2:
        return 1
    device = next(iter(model.parameters()), torch.zeros(0)).device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uncalibrated: only its memory is measured
        chip = convert(model, spec, seed=0).eval()
        with torch.no_grad():
            chip(x[:1].to(device))  # buffers that stay: compute-form arrays, chunk buffers
            n = min(4, len(x))
            one = _peak_memory_bytes(lambda: chip(x[:1].to(device)), device)
            many = _peak_memory_bytes(lambda: chip(x[:n].to(device)), device)
    free = _available_memory_bytes(device)
    if one is None or many is None or free is None:
        warnings.warn(
            f"auto_batch_size: memory cannot be measured here; using batch_size={largest}", RuntimeWarning, stacklevel=2
        )
        return largest
    per_image = max(1, (many - one) // (n - 1))
    fits = int(memory_fraction * free // per_image)
    return max(1, min(largest, 1 << max(0, fits.bit_length() - 1)))


def _check_logits(logits, n: int) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != n or logits.shape[1] < 1:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(
            f"simulate: the model must return class scores of shape (batch, classes); for a batch of "
            f"{n} it returned {shape}"
        )


def _unit_task(model, spec, chip_seed, calibration, calibrate_batches, x_shard, first_batch, batch_size, setup=None):
    """One (chip, shard) unit on a Dask worker: convert, calibrate, run. With $CIMKIT_FAULT_KILL_WORKER_ONCE
    set to a path that does not exist yet, the worker creates it and dies (tests check the task is rerun)."""
    marker = os.environ.get(FAULT_ENV)
    if marker and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    t0 = time.perf_counter()
    chip = _make_chip(model, spec, chip_seed, calibration, calibrate_batches, x_shard[:1], setup=setup)
    return _run_batches(chip, x_shard, first_batch, batch_size), time.perf_counter() - t0


# ---- checks -----------------------------------------------------------------------------------------------------
def _tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise InputError(f"simulate: {name} must hold numbers, got a numpy array of dtype {value.dtype}")
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise InputError(f"simulate: {name} must be a torch tensor or a numpy array, got {type(value).__name__}")
    return value


def _check_images(value, name: str) -> torch.Tensor:
    x = _tensor(value, name)
    if x.dim() < 2 or x.shape[0] == 0:
        raise InputError(
            f"simulate: {name} must be a batch of inputs (images first: shape (N, ...)) with N >= 1, "
            f"got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise InputError(f"simulate: {name} must be floating point (scale the inputs first), got {x.dtype}")
    if not torch.isfinite(x).all():
        raise InputError(f"simulate: {name} has non-finite values (NaN or inf)")
    return x


def _check_labels(value, n: int) -> torch.Tensor:
    y = _tensor(value, "y")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise InputError(f"simulate: y must hold integer class labels, got dtype {y.dtype}")
    if y.dim() != 1 or len(y) != n:
        raise InputError(
            f"simulate: y must be one integer label per input: shape ({n},) for the {n} inputs of x, "
            f"got shape {tuple(y.shape)}"
        )
    if int(y.min()) < 0:
        raise InputError(f"simulate: y holds a negative label ({int(y.min())}); labels are class indices 0, 1, ...")
    return y.to(torch.int64).cpu()


def _tensor_hash(t: torch.Tensor | None) -> str | None:
    if t is None:
        return None
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}:{tuple(t.shape)}:".encode())
    h.update((t.to(torch.uint8) if t.dtype == torch.bool else t).view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _model_hash(model: nn.Module) -> str:
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}\n".encode())
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update((cast(str, _tensor_hash(value)) if isinstance(value, torch.Tensor) else repr(value)).encode())
    return h.hexdigest()


# ---- the checkpoint ---------------------------------------------------------------------------------------------
def _fingerprint(
    model, spec, seed, chips, batch_size, shards, x, y, calibration, calibrate_batches, setup: ChipSetup | None = None
) -> dict:
    from .. import __version__

    spec_part = spec_fingerprint(spec)
    if "neuron" in stored_content(spec):  # a model's spiking neurons carry the spec's mismatch
        spec_part["neuron"] = spec.neuron.model_dump(mode="json")
    fp = {
        "cimkit": __version__,
        "spec": spec_part,
        "seed": seed,
        "chips": chips,
        "batch_size": batch_size,
        "shards": shards,
        "images": len(x),
        "inputs": _tensor_hash(x),
        "labels": _tensor_hash(y),
        "calibration": _tensor_hash(calibration),
        "calibrate_batches": calibrate_batches if calibration is not None else None,
        "model": _model_hash(model),
    }
    if setup is not None:
        fp["setup"] = setup.describe()
    return json.loads(strict_json(fp, indent=None))


def _differences(stored: dict, now: dict) -> list[str]:
    """One phrase per differing key of two fingerprints (for the spec: the differing fields)."""
    out = []
    for key in sorted(set(stored) | set(now)):
        a, b = stored.get(key), now.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            fields = dict_differences(a, b)  # stored -> now
            out.append(f"{key} ({'; '.join(fields[:4])}{'; ...' if len(fields) > 4 else ''})")
        elif key in ("inputs", "labels", "calibration", "model"):
            out.append(f"{key} (different {'contents' if a and b else 'presence'})")
        else:
            out.append(f"{key} (stored {short_repr(a, 60)}, now {short_repr(b, 60)})")
    return out


def _load_checkpoint(path: Path, fp: dict, units: dict[tuple[int, int], tuple[int, int]]) -> tuple[dict, dict]:
    """The finished units stored in ``path``: (chip, shard) -> predictions, and -> seconds they took (both
    empty when there is no file)."""
    if not path.exists():
        return {}, {}
    afresh = f"delete {path} to start afresh"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the checkpoint {path} cannot be read ({short_repr(str(exc), 120)}); {afresh}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a cimkit simulate checkpoint; give another checkpoint path or {afresh}")
    if data.get("version") != CHECKPOINT_VERSION:
        raise InputError(
            f"the checkpoint {path} has version {short_repr(data.get('version'))}, this cimkit writes "
            f"version {CHECKPOINT_VERSION}; {afresh}"
        )
    stored = data.get("fingerprint")
    if stored != fp:
        diff = _differences(stored if isinstance(stored, dict) else {}, fp)
        raise InputError(
            f"the checkpoint {path} was computed for other settings; differing: {'; '.join(diff)}. "
            f"Its units cannot be mixed with this run's: {afresh}, or give another checkpoint path "
            "(from the command line: another --out)"
        )
    done: dict[tuple[int, int], np.ndarray] = {}
    seconds: dict[tuple[int, int], float | None] = {}
    units_stored = data.get("units", [])
    if not isinstance(units_stored, list):
        raise InputError(f"the checkpoint {path} holds no list of units; {afresh}")
    for unit in units_stored:
        try:
            key = (int(unit["chip"]), int(unit["shard"]))
            preds = np.asarray(unit["predictions"], dtype=np.int64)
            a, b = units[key]
            ok = preds.shape == (b - a,) and int(unit["first_image"]) == a
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"the checkpoint {path} holds a malformed unit ({short_repr(unit, 80)}); {afresh}")
        done[key], seconds[key] = preds, unit.get("seconds")
    return done, seconds


def _save_checkpoint(path: Path, fp: dict, done: dict, units: dict, seconds: dict) -> None:
    data = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "fingerprint": fp,
        "units": [
            {
                "chip": k,
                "shard": s,
                "first_image": units[(k, s)][0],
                "seconds": seconds.get((k, s)),
                "predictions": done[(k, s)].tolist(),
            }
            for k, s in sorted(done)
        ],
    }
    atomic_write(path, json.dumps(data, separators=(",", ":")))


# ---- the run ----------------------------------------------------------------------------------------------------
def simulate(
    model: nn.Module,
    spec: HardwareSpec | str,
    x,
    y,
    *,
    chips: int = 1,
    seed: int = 0,
    calibration=None,
    calibrate_batches: int = 1,
    batch_size: int | str = 256,
    shards: int = 1,
    executor: str = "serial",
    workers: int = 2,
    scheduler: str | None = None,
    scheduler_timeout_s: float = 10.0,
    progress: bool | Callable[[int, int], Any] = False,
    checkpoint: str | Path | None = None,
    setup: ChipSetup | None = None,
) -> SimulationResult:
    """Test-set accuracy of ``model`` (a float ``nn.Module`` returning class scores) on ``chips`` sampled chips
    of ``spec`` (a HardwareSpec or a preset name): mean and spread over chips, and each chip's predictions.

    Chip ``k`` is ``convert(model, spec, seed=seed + k)``, calibrated (``cimkit.calibrate``) on
    ``calibration`` (inputs, split into ``calibrate_batches`` batches; None: not calibrated), then run in eval
    mode without gradients over ``x`` in batches of ``batch_size`` (``"auto"``: the largest that fits in half the
    free memory, ``auto_batch_size``; the result records it); an image counts as right when the argmax of
    the output equals its label in ``y`` (integer class labels). ``x``, ``y`` and ``calibration`` may be torch
    tensors or numpy arrays.

    The work is split into units, one per chip and shard (``shards`` contiguous ranges of batches). The
    predictions do not depend on ``shards`` or ``executor`` (see the module documentation): the same seed
    gives the same numbers, image for image. ``executor="serial"`` runs the units in this process, in order;
    ``"dask"`` submits one task per unit to a local cluster of ``workers`` processes (one thread each), or to
    the scheduler at ``scheduler`` (``tcp://host:port``; unreachable within ``scheduler_timeout_s``: an
    ``InputError``); each task converts and calibrates its own chip, and a task whose worker dies is rerun.

    ``progress``: True shows a progress bar over the test images (images per second), and calibration as its
    own bar when serial; a callable is called as ``progress(done_images, total_images)`` (over all chips, after
    each batch when serial, after each unit with Dask); False shows nothing. ``checkpoint``: a JSON file that
    holds the finished units, rewritten atomically after each; a rerun with the same file skips them and gives
    the same result. A checkpoint computed for other settings (model, spec, data, seed, chips, batch size,
    shards, calibration, setup) is refused with the keys that differ. ``setup``: a ``ChipSetup`` applied to every
    chip (faults, read time; see ``cimkit.robust``). Ctrl-C raises ``SimulationInterrupted``
    (a ``KeyboardInterrupt``) saying how many units were finished and kept.
    """
    t0 = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise InputError(f"simulate: model must be a torch.nn.Module, got {type(model).__name__}")
    if cim_layers(model):
        raise InputError(
            "simulate: the model is already converted (it holds crossbar layers); pass the float "
            "model: simulate converts it once per chip, with seeds seed, seed + 1, ..."
        )
    if isinstance(spec, str):
        spec = HardwareSpec.preset(spec)
    if not isinstance(spec, HardwareSpec):
        raise InputError(f"simulate: spec must be a HardwareSpec or a preset name, got {type(spec).__name__}")
    seed = check_int("simulate", "seed", seed)
    chips = check_int("simulate", "chips", chips, 1)
    if batch_size == "auto":
        batch_size = auto_batch_size(model, spec, x)
    batch_size = check_int("simulate", "batch_size", batch_size, 1)
    shards = check_int("simulate", "shards", shards, 1)
    if executor not in EXECUTORS:
        raise InputError(
            f"simulate: executor must be one of {', '.join(map(repr, EXECUTORS))}, got {short_repr(executor)}"
        )
    workers = check_int("simulate", "workers", workers, 1)
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise InputError(
            f"simulate: scheduler must be the address of a Dask scheduler (tcp://host:port), "
            f"got {short_repr(scheduler)}"
        )
    if scheduler is not None and executor != "dask":
        raise InputError(
            f"simulate: scheduler={scheduler!r} is only used with executor='dask' (got executor={executor!r})"
        )
    check_real(
        "simulate", "scheduler_timeout_s", scheduler_timeout_s, 0.0, lo_open=True, why="seconds to reach the scheduler"
    )
    check_progress(progress, "simulate")
    if setup is not None and not isinstance(setup, ChipSetup):
        raise InputError(f"simulate: setup must be a cimkit.sim.evaluate.ChipSetup, got {type(setup).__name__}")
    x = _check_images(x, "x").cpu()
    y = _check_labels(y, len(x))
    if calibration is not None:
        calibration = _check_images(calibration, "calibration").cpu()
        if calibration.shape[1:] != x.shape[1:]:
            raise InputError(
                f"simulate: calibration inputs have shape {tuple(calibration.shape[1:])} per input, the "
                f"test inputs x {tuple(x.shape[1:])}; calibrate on inputs like the test inputs"
            )
        calibrate_batches = check_int("simulate", "calibrate_batches", calibrate_batches, 1)
        if calibrate_batches > len(calibration):
            raise InputError(
                f"simulate: calibrate_batches ({calibrate_batches}) must be at most the number of "
                f"calibration inputs ({len(calibration)})"
            )
    n = len(x)
    n_batches = math.ceil(n / batch_size)
    if shards > n_batches:
        raise InputError(
            f"simulate: shards ({shards}) must be at most the number of batches ({n_batches}: {n} "
            f"images in batches of batch_size={batch_size})"
        )
    if checkpoint is not None:
        checkpoint = check_output_path(checkpoint, None, "checkpoint")

    # the model must run on the inputs and give one score per class
    float_model = copy.deepcopy(model).eval()
    try:
        with torch.no_grad():
            logits = float_model(x[:2].to(_device(float_model)))
    except Exception as exc:  # noqa: BLE001 - the user's model on the user's data
        raise InputError(
            f"simulate: the model cannot run on the inputs x (shape {tuple(x.shape)}): "
            f"{type(exc).__name__}: {short_repr(str(exc), 300)}"
        ) from None
    _check_logits(logits, min(2, n))
    classes = int(logits.shape[1])
    if int(y.max()) >= classes:
        raise InputError(
            f"simulate: y holds the label {int(y.max())}, but the model gives scores for {classes} "
            f"classes (labels 0 to {classes - 1})"
        )
    # the first chip, converted here: its warnings (layers kept digital) are shown once, and a model that cannot
    # be mapped fails before any cluster starts
    first = convert(model, spec, seed=seed)
    if not cim_layers(first):
        warnings.warn(
            "simulate: no layer of the model runs on crossbars; every chip computes what the float model does",
            stacklevel=2,
        )

    bounds = [(int(r[0]), int(r[-1]) + 1) for r in np.array_split(np.arange(n_batches), shards)]
    units = {
        (k, s): (b0 * batch_size, min(b1 * batch_size, n)) for k in range(chips) for s, (b0, b1) in enumerate(bounds)
    }
    first_batch = {s: b0 for s, (b0, _) in enumerate(bounds)}
    fp = None
    done: dict[tuple[int, int], np.ndarray] = {}
    seconds: dict[tuple[int, int], float | None] = {}
    if checkpoint is not None:
        fp = _fingerprint(model, spec, seed, chips, batch_size, shards, x, y, calibration, calibrate_batches, setup)
        done, seconds = _load_checkpoint(checkpoint, fp, units)
    resumed = len(done)
    todo = [u for u in units if u not in done]

    def finished(unit, preds, secs) -> None:
        done[unit], seconds[unit] = preds, secs
        if checkpoint is not None and fp is not None:  # fp is set whenever checkpoint is
            _save_checkpoint(checkpoint, fp, done, units, seconds)

    images_done = sum(len(p) for p in done.values())
    try:
        with ImageProgress(progress) as bar:
            if executor == "serial":
                _run_serial(
                    model,
                    spec,
                    seed,
                    x,
                    calibration,
                    calibrate_batches,
                    batch_size,
                    units,
                    first_batch,
                    todo,
                    first,
                    bar,
                    images_done,
                    chips * n,
                    finished,
                    setup,
                )
            else:
                _run_dask(
                    model,
                    spec,
                    seed,
                    x,
                    calibration,
                    calibrate_batches,
                    batch_size,
                    units,
                    first_batch,
                    todo,
                    workers,
                    scheduler,
                    scheduler_timeout_s,
                    bar,
                    images_done,
                    chips * n,
                    finished,
                    setup,
                )
    except KeyboardInterrupt:
        raise SimulationInterrupted(
            len(done), len(units), str(checkpoint) if checkpoint is not None else None
        ) from None

    predictions = [np.concatenate([done[(k, s)] for s in range(shards)]) for k in range(chips)]
    with torch.no_grad():
        dev = _device(float_model)
        float_correct = sum(
            int((float_model(x[a : a + batch_size].to(dev)).argmax(1).cpu() == y[a : a + batch_size]).sum())
            for a in range(0, n, batch_size)
        )
    return SimulationResult(
        spec_name=spec.name,
        images=n,
        seeds=[seed + k for k in range(chips)],
        correct=[int((torch.from_numpy(p) == y).sum()) for p in predictions],
        predictions=[p.tolist() for p in predictions],
        float_accuracy=float_correct / n,
        batch_size=batch_size,
        shards=shards,
        executor=executor,
        seconds=time.perf_counter() - t0,
        images_simulated=sum(units[u][1] - units[u][0] for u in todo),
        resumed_units=resumed,
        calibration_images=0 if calibration is None else len(calibration),
        model_name=type(model).__name__,
        checkpoint=None if checkpoint is None else str(checkpoint),
    )


def _run_serial(
    model,
    spec,
    seed,
    x,
    calibration,
    calibrate_batches,
    batch_size,
    units,
    first_batch,
    todo,
    first,
    bar: ImageProgress,
    images_done: int,
    total: int,
    finished,
    setup=None,
) -> None:
    calib_chips = sorted({k for k, _ in todo}) if calibration is not None else []
    cal_task = bar.add("calibrating", len(calib_chips), report=False) if calib_chips and bar.bar is not None else None
    task = bar.add("simulating", total, images_done)
    chip_index, chip = None, None
    for k, s in todo:
        t0 = time.perf_counter()
        if k != chip_index:
            cal_progress = (
                False if cal_task is None else _calibration_bar(bar, cal_task, calib_chips.index(k), len(calib_chips))
            )
            a, b = units[(k, s)]
            chip = _make_chip(
                model,
                spec,
                seed + k,
                calibration,
                calibrate_batches,
                x[a : a + 1],
                cal_progress,
                cim=first if k == 0 else None,
                setup=setup,
            )
            first, chip_index = None, k  # the first chip is calibrated once, for its own units only
        a, b = units[(k, s)]
        count = [images_done]

        def after_batch(images: int, last: bool) -> None:
            count[0] += images
            if not last:  # the unit's last batch is reported once the unit is saved
                bar.update(task, count[0])

        assert chip is not None  # made for the first unit
        preds = _run_batches(chip, x[a:b], first_batch[s], batch_size, after_batch)
        finished((k, s), preds, time.perf_counter() - t0)
        images_done = count[0]
        bar.update(task, images_done)


def _calibration_bar(bar: ImageProgress, task: int, index: int, chips: int) -> Callable[[int, int], None]:
    """A calibrate progress callable that moves one bar over the calibrations of ``chips`` chips."""

    def update(done: int, of: int) -> None:
        bar.update(task, index * of + done, chips * of)

    return update


def _run_dask(
    model,
    spec,
    seed,
    x,
    calibration,
    calibrate_batches,
    batch_size,
    units,
    first_batch,
    todo,
    workers,
    scheduler,
    timeout_s,
    bar: ImageProgress,
    images_done: int,
    total: int,
    finished,
    setup=None,
) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
        from distributed.client import FutureCancelledError
    except ImportError:
        raise InputError("simulate: executor='dask' needs dask.distributed (pip install 'dask[distributed]')") from None
    where = f"the Dask scheduler {scheduler}" if scheduler else f"a local Dask cluster of {workers} workers"
    task = bar.add(f"simulating on {where}", total, images_done)
    if not todo:
        return
    client = cluster = None
    futures: dict = {}
    try:
        try:
            if scheduler:
                client = Client(scheduler, timeout=f"{timeout_s}s")
            else:
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
                client = Client(cluster)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(
                f"simulate: cannot reach the Dask scheduler {scheduler!r}: {short_repr(str(exc), 300)}"
            ) from None
        handles: dict = {}

        def scatter() -> None:
            """The inputs on every worker up now (replicas). Should every holder die (a worker that joined
            late holds none), the tasks needing them are cancelled, and the loop resubmits them with their
            inputs inside the task (no second scatter). A local
            cluster's workers are waited for first (up to a minute), so that the broadcast reaches all of them
            rather than the ones that happen to be up: one worker's death then loses no input."""
            if cluster is not None:
                try:
                    client.wait_for_workers(workers, timeout=60)
                except TimeoutError:
                    pass  # fewer workers than asked for: the broadcast reaches those up, the loop copes
            model_f, spec_f = client.scatter([model, spec], broadcast=True)
            cal_f = client.scatter(calibration, broadcast=True) if calibration is not None else None
            handles.update(model=model_f, spec=spec_f, calibration=cal_f, x={})
            for s in sorted({s for _, s in todo}):  # a copy of each shard's inputs (a slice carries the whole tensor)
                a, b = next(units[u] for u in units if u[1] == s)
                handles["x"][s] = client.scatter(x[a:b].clone(), broadcast=True)

        tries = {unit: 0 for unit in todo}
        pending = as_completed()

        def submit(unit, inline: bool = False) -> None:
            """One unit as a task; ``inline``: its inputs travel inside the task instead of as scattered data."""
            k, s = unit
            if inline:
                a, b = next(units[u] for u in units if u[1] == s)
                args = (model, spec, seed + k, calibration, calibrate_batches, x[a:b].clone())
            else:
                args = (
                    handles["model"],
                    handles["spec"],
                    seed + k,
                    handles["calibration"],
                    calibrate_batches,
                    handles["x"][s],
                )
            fut = client.submit(_unit_task, *args, first_batch[s], batch_size, setup, pure=False)
            futures[fut] = unit
            tries[unit] += 1
            pending.add(fut)

        scatter()
        for unit in todo:
            submit(unit)
        for fut in pending:
            unit = futures.pop(fut)
            try:
                preds, secs = fut.result()
            except FutureCancelledError:  # every worker holding its inputs died: rerun it with its inputs inline
                if tries[unit] >= 3:  # (a second broadcast scatter can hang while the cluster replaces a worker)
                    raise
                submit(unit, inline=True)
                continue
            finished(unit, np.asarray(preds, dtype=np.int64), secs)
            images_done += units[unit][1] - units[unit][0]
            bar.update(task, images_done)
    finally:
        if client is not None:
            if futures:
                client.cancel(list(futures))
            client.close()
        if cluster is not None:
            cluster.close()
