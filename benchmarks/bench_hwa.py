"""Hardware-aware training (HWA) against float training, deployed onto the same chips.

Two tasks: the demo's small CNN on 4,000 real MNIST digits (1,000 test digits), and an MLP (32-64-64-2) on
a tabular set (default: scikit-learn's ``make_classification`` through ``cimkit.data.tabular("synthetic")``,
20,000 samples of 32 features, 8,000 of the training ones used, 4,000 test ones; ``--tabular shuttle`` for the
Statlog Shuttle set). Each task's float model is pretrained once (the CNN: ``cimkit.demo.train_or_load``, 12
epochs of Adam, cached; the MLP: 10 epochs of Adam), then fine-tuned for the same number of epochs, learning
rate and minibatches (seeded identically) in two ways:

- float: plain Adam in floating point (the usual recipe before deployment);
- HWA: ``cimkit.train.HardwareAwareTrainer`` with its defaults: on the chip, fresh programming noise per
  step, a linear noise ramp from 1x to 1.5x the chip's noise (a margin), DAC/ADC calibrated each epoch
  (fine-tuning the pretrained float model, not training from scratch).

Both are then programmed onto the SAME chip samples (seeds 1000, 1001, ...; each calibrated on 256 training
inputs) and their test accuracy is reported as mean +- std (and min) over the chips, with the gain of HWA in
points. Chips: the presets ``rram-22nm`` and ``pcm``, and noisier variants for where a preset is too clean
to tell the two apart: rram-22nm with 3x its programming noise (6% of g_max, a chip without write-verify) and
pcm read one year after programming (drift with its device-to-device spread, and 1/f read noise accumulated;
HWA trains on chips read at that time, ``t_inference_s``).

Run: python benchmarks/bench_hwa.py            (about 10-15 minutes on one core)
     python benchmarks/bench_hwa.py --quick    (a few minutes: fewer images, epochs and chips)
     python benchmarks/bench_hwa.py --smoke    (seconds, for CI: tiny subsets, the numbers mean nothing)
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

import cimkit as ck
from cimkit.data import mnist, tabular
from cimkit.demo import accuracy, small_cnn, train_or_load
from cimkit.train import batch_indices, steps_per_epoch
from cimkit.train.hwa import HardwareAwareTrainer

ONE_YEAR_S = 3.15e7
CHIP_SEED0 = 1000


@dataclass
class Task:
    """One data set and its pretrained float model."""

    name: str
    model: nn.Module
    x: torch.Tensor  # training inputs
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    epochs: int  # fine-tuning epochs (float and HWA alike)
    lr: float


@dataclass
class Variant:
    """A chip: a spec, and the time after programming at which it is read (None: the spec's t0)."""

    label: str
    spec: ck.HardwareSpec
    t_inference_s: float | None = None


def variants() -> list[Variant]:
    rram, pcm = ck.HardwareSpec.preset("rram-22nm"), ck.HardwareSpec.preset("pcm")
    return [
        Variant("rram-22nm", rram),
        Variant(
            "rram-22nm, prog. noise x3",
            rram.replace(**{"device.programming_noise_frac": 3 * rram.device.programming_noise_frac}),
        ),
        Variant("pcm", pcm),
        Variant("pcm, read after 1 year", pcm, ONE_YEAR_S),
    ]


def float_train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float, seed: int, batch_size: int = 64
) -> nn.Module:
    """Adam in float with the minibatches ``HardwareAwareTrainer`` draws for ``seed`` (same budget, no chip)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        for index in range(steps_per_epoch(len(x), batch_size)):
            idx = batch_indices(len(x), batch_size, seed, epoch, index)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def on_chips(
    model: nn.Module, variant: Variant, x_cal: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chips: int
) -> list[float]:
    """Test accuracy of ``model`` programmed onto chips of seeds ``CHIP_SEED0 ...``, read at the variant's time,
    each calibrated on ``x_cal``."""
    accs = []
    for i in range(chips):
        chip = ck.convert(model, variant.spec, seed=CHIP_SEED0 + i)
        if variant.t_inference_s is not None:
            ck.set_time(chip, variant.t_inference_s)
        ck.calibrate(chip, [x_cal], num_batches=1)
        accs.append(accuracy(chip, x, y))
    return accs


def mnist_task(mode: str) -> Task:
    data = mnist()
    if mode == "smoke":  # a few images and a one-epoch CNN: exercises the code, means nothing
        x, y = data.x_train[:64], data.y_train[:64]
        torch.manual_seed(0)
        model = float_train(small_cnn(), x, y, epochs=1, lr=2e-3, seed=0)
        return Task("MNIST CNN", model, x, y, data.x_test[:32], data.y_test[:32], 1, 3e-4)
    model = train_or_load(data.x_train, data.y_train)  # 12 epochs of Adam on the 4,000 digits, cached
    if mode == "quick":
        return Task(
            "MNIST CNN", model, data.x_train[:2000], data.y_train[:2000], data.x_test[:500], data.y_test[:500], 2, 3e-4
        )
    return Task("MNIST CNN", model, data.x_train, data.y_train, data.x_test, data.y_test, 10, 3e-4)


def tabular_task(name: str, mode: str) -> Task:
    table = tabular(name, samples=20_000, features=32) if name == "synthetic" else tabular(name)
    mean, std = table.x_train.mean(0), table.x_train.std(0) + 1e-9
    n_train, n_test = {"smoke": (256, 128), "quick": (4000, 2000), "full": (8000, 4000)}[mode]
    pick = np.random.default_rng(0).permutation(len(table.y_train))[:n_train]
    x = torch.tensor((table.x_train[pick] - mean) / std, dtype=torch.float32)
    y = torch.from_numpy(table.y_train[pick])
    x_test = torch.tensor((table.x_test[:n_test] - mean) / std, dtype=torch.float32)
    y_test = torch.from_numpy(table.y_test[:n_test])
    classes = int(table.y_train.max()) + 1
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, classes))
    model = float_train(model, x, y, epochs=1 if mode == "smoke" else 10, lr=3e-3, seed=0)
    return Task(f"{name} MLP", model, x, y, x_test, y_test, {"smoke": 1, "quick": 3, "full": 5}[mode], 1e-3)


def _stats(accs: Sequence[float]) -> str:
    std = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return f"{100 * statistics.mean(accs):5.1f} +- {100 * std:3.1f} ({100 * min(accs):5.1f})"


def run(
    tasks: list[Task], chip_variants: list[Variant], *, chips: int, cal: int, seed: int, log: Callable[[str], None]
) -> list[dict]:
    rows = []
    for task in tasks:
        x_cal = task.x[:cal]
        for v in chip_variants:
            t0 = time.perf_counter()
            float_model = float_train(
                copy.deepcopy(task.model), task.x, task.y, epochs=task.epochs, lr=task.lr, seed=seed
            )
            t1 = time.perf_counter()
            trainer = HardwareAwareTrainer(
                v.spec,
                epochs=task.epochs,
                lr=task.lr,
                seed=seed,
                noise_schedule="linear",
                noise_start=1.0,
                noise_end=1.5,
                t_inference_s=v.t_inference_s,
            )
            hwa_model = trainer.fit(task.model, task.x, task.y).eval()
            t2 = time.perf_counter()
            a = on_chips(float_model, v, x_cal, task.x_test, task.y_test, chips)
            b = on_chips(hwa_model, v, x_cal, task.x_test, task.y_test, chips)
            row = dict(
                task=task.name,
                chip=v.label,
                float_acc=accuracy(float_model, task.x_test, task.y_test),
                hwa_float_acc=accuracy(hwa_model, task.x_test, task.y_test),
                float_cim=a,
                hwa_cim=b,
                hwa_s=t2 - t1,
                float_s=t1 - t0,
                eval_s=time.perf_counter() - t2,
            )
            rows.append(row)
            log(
                f"  {task.name} on {v.label}: float-trained {_stats(a)}, HWA {_stats(b)}  "
                f"(HWA {row['hwa_s']:.0f} s, chips {row['eval_s']:.0f} s)"
            )
    return rows


def table(rows: list[dict], chips: int) -> str:
    head = (
        f"{'task':<16} {'chip':<27} {'float acc':>11} {'CIM, float-trained':>21} {'CIM, HWA':>21} "
        f"{'gain':>6} {'gain':>6}"
    )
    sub = (
        f"{'':<16} {'':<27} {'float/HWA':>11} {'mean +- std (min)':>21} {'mean +- std (min)':>21} "
        f"{'mean':>6} {'min':>6}"
    )
    lines = [f"test accuracy (%); CIM: the same {chips} chip samples for both models", head, sub, "-" * len(head)]
    for r in rows:
        a, b = r["float_cim"], r["hwa_cim"]
        gain = 100 * (statistics.mean(b) - statistics.mean(a))
        gain_min = 100 * (min(b) - min(a))
        lines.append(
            f"{r['task']:<16} {r['chip']:<27} {100 * r['float_acc']:5.1f}/{100 * r['hwa_float_acc']:<5.1f} "
            f"{_stats(a):>21} {_stats(b):>21} {gain:>+6.1f} {gain_min:>+6.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="seconds: tiny subsets, one epoch, two chips (for CI)")
    size.add_argument("--quick", action="store_true", help="a few minutes: fewer images, epochs and chips")
    parser.add_argument("--chips", type=int, default=None, help="chip samples per model (default 5; quick 3)")
    parser.add_argument(
        "--tabular",
        default="synthetic",
        choices=ck.data.TABULAR,
        help="the tabular set (default: synthetic, sklearn's make_classification)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fine-tuning batches and HWA's noise")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    chips = args.chips or {"smoke": 2, "quick": 3, "full": 5}[mode]
    cal = 16 if mode == "smoke" else 256
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tasks = [mnist_task(mode), tabular_task(args.tabular, mode)]
            print(
                f"bench_hwa ({mode}): float fine-tuning vs hardware-aware fine-tuning, "
                f"{', '.join(f'{t.name} {t.epochs} epoch(s) lr {t.lr:g}' for t in tasks)}",
                flush=True,
            )
            chip_variants = variants()
            if mode == "smoke":  # one clean and one noisy chip of each technology is enough to exercise the code
                chip_variants = [chip_variants[0], chip_variants[3]]
            rows = run(tasks, chip_variants, chips=chips, cal=cal, seed=args.seed, log=lambda s: print(s, flush=True))
    finally:
        torch.set_num_threads(threads)
    print()
    print(table(rows, chips))
    print(
        f"\nHWA: fine-tuned from the float model on the chip (linear noise ramp 1x -> 1.5x, ADCs calibrated each "
        f"epoch); 'pcm, read after 1 year': both deployed and (HWA) trained at t = 1 year. "
        f"Wall time {time.perf_counter() - start:.0f} s."
    )
    return rows


if __name__ == "__main__":
    main()
