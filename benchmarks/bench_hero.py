"""SGD vs SAM vs HERO (Yang et al., DAC 2022) on MNIST digits: does a flatter minimum give a better model,
one that survives noisy labels, post-training quantization and programming noise on a CIM chip?

The demo's LeNet-style CNN (``cimkit.demo.small_cnn``, 44k weights) is trained from the same seeded
initialization with SGD (momentum 0.9, weight decay 5e-4, cosine learning rate), SAM (adaptive, rho 0.5) and
HERO (rho 0.5, lam 5 with the authors' per-tensor mean penalty, off in the first epoch as in their code),
through ``cimkit.train.loop.run_epochs`` (seeded batches, a checkpoint per run to resume from). Measured per
optimizer, as mean +- standard deviation over the seeds (each seed: its own initialization, batch order,
label noise and chip):

* test accuracy on the 1,000 held-out digits, trained on clean labels and with 40% / 80% of the 4,000
  training labels replaced by uniformly random ones (a replaced label may by chance be the right one);
* test accuracy after post-training quantization of the weights (per output channel, symmetric) to
  8, 6, 4, 3 and 2 bits;
* test accuracy on the rram-22nm chip (converted with the run's seed, converters calibrated on 128 training
  images), with the preset's programming noise (2% of g_max) and with 6% (a chip without write-verify);
* the largest Hessian eigenvalue of the training loss on 512 training digits (power iteration).

The paper's claims (CIFAR-10/100 and ImageNet, ResNet/VGG/MobileNet, 200 epochs) are printed next to ours.

Run: python benchmarks/bench_hero.py [--quick | --smoke] [--seeds N] [--epochs N] [--checkpoint-dir DIR]
[--progress] [--threads N]   (full: about 12 minutes on one busy core; --quick about 1.5; --smoke seconds)
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import cimkit as ck
from cimkit.data import mnist
from cimkit.demo import accuracy, cim_accuracy, small_cnn
from cimkit.train.hero import HERO, SAM, hessian_top_eigenvalue
from cimkit.train.loop import batch_indices, run_epochs, steps_per_epoch

OPTIMIZERS = ("SGD", "SAM", "HERO")
#: the training recipe: SGD's learning rate (cosine to 0 over the run), momentum and weight decay are
#: the base optimizer's for SAM and HERO too; rho is relative to the weights (adaptive SAM)
RECIPE = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "batch": 64, "rho": 0.5, "lam": 5.0}
PAPER = {
    "clean": "up to +3.8 points test accuracy over SGD",
    "noise": "up to +30 points under 80% training label perturbation",
    "ptq": ">10 points over SGD after post-training quantization (low precision)",
}


@dataclass(frozen=True)
class Setup:
    """How much of the benchmark runs: epochs per training run, the seeds, the label-noise fractions, data
    sizes (None: all), quantization bits, test images on the chip, calibration images, Hessian iterations."""

    epochs: int
    seeds: tuple[int, ...]
    noise: tuple[float, ...]
    n_train: int | None
    n_test: int | None
    bits: tuple[int, ...]
    chip_images: int | None
    calib_images: int
    hessian_images: int
    hessian_iters: int
    noisy_chip: bool


SETUPS = {
    "full": Setup(
        epochs=15,
        seeds=(0, 1, 2),
        noise=(0.0, 0.4, 0.8),
        n_train=None,
        n_test=None,
        bits=(8, 6, 4, 3, 2),
        chip_images=None,
        calib_images=128,
        hessian_images=512,
        hessian_iters=100,
        noisy_chip=True,
    ),
    "quick": Setup(
        epochs=6,
        seeds=(0,),
        noise=(0.0, 0.8),
        n_train=None,
        n_test=None,
        bits=(8, 6, 4, 3, 2),
        chip_images=500,
        calib_images=128,
        hessian_images=256,
        hessian_iters=50,
        noisy_chip=True,
    ),
    "smoke": Setup(
        epochs=1,
        seeds=(0,),
        noise=(0.0, 0.8),
        n_train=192,
        n_test=100,
        bits=(8, 6, 4, 3, 2),
        chip_images=50,
        calib_images=16,
        hessian_images=64,
        hessian_iters=5,
        noisy_chip=False,
    ),
}


def quantizer() -> tuple[Callable[[nn.Module, int], nn.Module], str]:
    """Post-training weight quantization, per output channel and symmetric: cimkit's ``quantize_weights``,
    or (where that module is missing) the same rounding here: ``scale = max|w| / (2**(bits-1) - 1)`` per
    output channel, ``w_q = round(w / scale) * scale``; biases stay in float."""
    try:
        from cimkit.train.quant import quantize_weights
    except ImportError:
        import copy

        def local(model: nn.Module, bits: int) -> nn.Module:
            q = copy.deepcopy(model)
            with torch.no_grad():
                for m in q.modules():
                    if isinstance(m, (nn.Linear, nn.Conv2d)):
                        w = m.weight
                        scale = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True) / (2 ** (bits - 1) - 1)
                        w.copy_(torch.where(scale > 0, torch.round(w / scale.clamp_min(1e-30)) * scale, w))
            return q

        return local, "local per-channel symmetric rounding (cimkit.train.quant not available)"
    return (
        lambda model, bits: quantize_weights(model, bits, granularity="per_channel", symmetric=True),
        "cimkit.train.quant.quantize_weights(per_channel, symmetric)",
    )


def noisy_labels(y: torch.Tensor, fraction: float, seed: int, classes: int = 10) -> torch.Tensor:
    """``y`` with ``round(fraction * len(y))`` labels, chosen with ``seed``, replaced by uniform random classes."""
    gen = torch.Generator().manual_seed(10_000 + int(seed))
    n = int(round(fraction * len(y)))
    out = y.clone()
    out[torch.randperm(len(y), generator=gen)[:n]] = torch.randint(0, classes, (n,), generator=gen)
    return out


def make_optimizer(name: str, model: nn.Module) -> torch.optim.Optimizer:
    base = {k: RECIPE[k] for k in ("lr", "momentum", "weight_decay")}
    if name == "SGD":
        return torch.optim.SGD(model.parameters(), **base)
    if name == "SAM":
        return SAM(model.parameters(), torch.optim.SGD, rho=RECIPE["rho"], **base)
    return HERO(model.parameters(), torch.optim.SGD, rho=RECIPE["rho"], lam=RECIPE["lam"], **base)


def train(
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    seed: int,
    epochs: int,
    checkpoint: Path | None,
    progress: bool,
    label: str,
) -> nn.Module:
    """``small_cnn`` (initialized with ``seed``) trained by optimizer ``name`` for ``epochs`` on ``(x, y)``:
    minibatches of ``RECIPE['batch']`` drawn by ``batch_indices(seed, epoch, index)``, the learning rate
    cosine-annealed per step, HERO's penalty off in the first epoch (when there are four or more)."""
    torch.manual_seed(seed)
    model = small_cnn()
    opt = make_optimizer(name, model)
    n, batch = len(y), RECIPE["batch"]
    steps = steps_per_epoch(n, batch)
    total = epochs * steps
    warmup = 1 if epochs >= 4 else 0
    loss_fn = nn.CrossEntropyLoss()

    def step(epoch: int, index: int) -> dict[str, float]:
        lr = RECIPE["lr"] * 0.5 * (1 + math.cos(math.pi * (epoch * steps + index) / total))
        for group in opt.param_groups:
            group["lr"] = lr
            if name == "HERO":
                group["lam"] = 0.0 if epoch < warmup else RECIPE["lam"]
        idx = batch_indices(n, batch, seed, epoch, index)
        xb, yb = x[idx], y[idx]
        model.train()
        if isinstance(opt, SAM):
            loss = opt.step(lambda: loss_fn(model(xb), yb))
        else:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        return {"loss": float(loss.detach()), "lr": lr}

    def state() -> dict:
        return {"model": model.state_dict(), "opt": opt.state_dict()}

    def load(saved: dict) -> None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])

    settings = {"optimizer": name, "seed": seed, "epochs": epochs, "n": n, "label": label, **RECIPE}
    run_epochs(
        step,
        epochs=epochs,
        steps_per_epoch=steps,
        state=state,
        load=load,
        settings=settings,
        checkpoint=checkpoint,
        progress=progress,
        description=f"{name} {label} seed {seed}",
        what="bench_hero",
    )
    return model.eval()


def evaluate(model: nn.Module, data, setup: Setup, seed: int, quantize, specs: dict) -> dict[str, float]:
    """Clean-label model: PTQ accuracy per bit width, chip accuracy per spec, top Hessian eigenvalue."""
    out: dict[str, float] = {}
    for bits in setup.bits:
        out[f"PTQ {bits}b"] = accuracy(quantize(model, bits), data.x_test, data.y_test)
    chip_x = data.x_test if setup.chip_images is None else data.x_test[: setup.chip_images]
    chip_y = data.y_test if setup.chip_images is None else data.y_test[: setup.chip_images]
    for label, spec in specs.items():
        out[label] = cim_accuracy(model, spec, seed, data.x_train[: setup.calib_images], chip_x, chip_y)
    xh, yh = data.x_train[: setup.hessian_images], data.y_train[: setup.hessian_images]
    loss_fn = nn.CrossEntropyLoss()
    out["lambda_max"] = hessian_top_eigenvalue(
        lambda: loss_fn(model(xh), yh), model.parameters(), iters=setup.hessian_iters, tol=1e-4, seed=seed
    )
    return out


def fmt(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    """``mean+-std`` of ``values`` times ``scale`` (just the mean for one value)."""
    mean = statistics.mean(values) * scale
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}±{statistics.stdev(values) * scale:.{digits}f}"


def paired_gain(results: dict, key: str, name: str) -> float:
    """Mean over seeds of ``name``'s minus SGD's value of ``key``, in points (x100)."""
    return 100 * statistics.mean(a - b for a, b in zip(results[name][key], results["SGD"][key]))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="one seed, 6 epochs, clean and 80%% noise (~2 min)")
    size.add_argument("--smoke", action="store_true", help="a few steps on a few images (seconds)")
    parser.add_argument("--seeds", type=int, help="number of seeds (0, 1, ...)")
    parser.add_argument("--epochs", type=int, help="epochs per training run")
    parser.add_argument("--checkpoint-dir", type=Path, help="a folder for each run's checkpoint (resume from it)")
    parser.add_argument("--progress", action="store_true", help="a progress bar per training run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    setup = SETUPS["smoke" if args.smoke else "quick" if args.quick else "full"]
    if args.seeds:
        setup = replace(setup, seeds=tuple(range(args.seeds)))
    if args.epochs:
        setup = replace(setup, epochs=args.epochs)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(setup, args.checkpoint_dir, args.progress)
    finally:
        torch.set_num_threads(threads)


def run(setup: Setup, checkpoint_dir: Path | None, progress: bool) -> dict:
    t0 = time.perf_counter()
    data = mnist()
    if setup.n_train or setup.n_test:
        data = replace(
            data,
            x_train=data.x_train[: setup.n_train],
            y_train=data.y_train[: setup.n_train],
            x_test=data.x_test[: setup.n_test],
            y_test=data.y_test[: setup.n_test],
        )
    quantize, quant_name = quantizer()
    base = ck.HardwareSpec.preset("rram-22nm")
    specs = {"CIM rram": base}
    if setup.noisy_chip:
        specs["CIM rram 6%"] = base.replace(**{"device.programming_noise_frac": 0.06})
    results: dict[str, dict[str, list[float]]] = {name: {} for name in OPTIMIZERS}
    seconds = {name: 0.0 for name in OPTIMIZERS}
    for seed in setup.seeds:
        for fraction in setup.noise:
            label = "clean" if fraction == 0 else f"noise {fraction:.0%}"
            y = data.y_train if fraction == 0 else noisy_labels(data.y_train, fraction, seed)
            for name in OPTIMIZERS:
                path = (
                    None
                    if checkpoint_dir is None
                    else checkpoint_dir / f"hero_{name}_{label.replace(' ', '').replace('%', '')}_seed{seed}.pt"
                )
                t = time.perf_counter()
                model = train(name, data.x_train, y, seed, setup.epochs, path, progress, label)
                seconds[name] += time.perf_counter() - t
                record = {label: accuracy(model, data.x_test, data.y_test)}
                if fraction == 0:
                    record.update(evaluate(model, data, setup, seed, quantize, specs))
                for key, value in record.items():
                    results[name].setdefault(key, []).append(value)

    noise_cols = ["clean"] + [f"noise {f:.0%}" for f in setup.noise if f > 0]
    tables = [
        (
            "test accuracy (%), trained on clean / randomized labels; top Hessian eigenvalue",
            noise_cols + ["lambda_max"],
        ),
        (f"test accuracy (%) after post-training quantization [{quant_name}]", [f"PTQ {b}b" for b in setup.bits]),
        (
            "test accuracy (%) on the rram-22nm chip (2% programming noise"
            + (", and 6%)" if setup.noisy_chip else ")"),
            list(specs),
        ),
    ]
    n_train, n_test = len(data.y_train), len(data.y_test)
    print(
        f"SGD vs SAM vs HERO, small_cnn on {n_train} MNIST training digits, {n_test} test digits; "
        f"{setup.epochs} epochs, seeds {list(setup.seeds)} (mean±std); rho {RECIPE['rho']}, lam {RECIPE['lam']}, "
        f"lr {RECIPE['lr']} cosine, momentum {RECIPE['momentum']}, wd {RECIPE['weight_decay']}"
    )
    for title, cols in tables:
        print(f"\n{title}")
        print(f"{'':6}" + "".join(f"{c:>14}" for c in cols))
        for name in OPTIMIZERS:
            cells = [fmt(results[name][c], 1.0, 2) if c == "lambda_max" else fmt(results[name][c]) for c in cols]
            print(f"{name:6}" + "".join(f"{c:>14}" for c in cells))

    def gains(keys: list[str]) -> str:
        return ", ".join(
            f"{k}: SAM {paired_gain(results, k, 'SAM'):+.1f}, HERO {paired_gain(results, k, 'HERO'):+.1f}" for k in keys
        )

    low_bits = [f"PTQ {b}b" for b in setup.bits if b <= 4]
    print("\ngain over SGD in points (mean over seeds of the paired difference), the paper's claim beside:")
    print(f"  clean        ours {gains(['clean'])}   | paper: {PAPER['clean']}")
    if any(f > 0 for f in setup.noise):
        print(f"  label noise  ours {gains(noise_cols[1:])}   | paper: {PAPER['noise']}")
    print(f"  PTQ          ours {gains(low_bits)}   | paper: {PAPER['ptq']}")
    print(f"  CIM          ours {gains(list(specs))}")
    ratio = {
        n: statistics.mean(results[n]["lambda_max"]) / statistics.mean(results["SGD"]["lambda_max"])
        for n in ("SAM", "HERO")
    }
    print(
        f"  lambda_max   SAM {ratio['SAM']:.2f}x, HERO {ratio['HERO']:.2f}x SGD's   | paper: HERO has the "
        "smallest Hessian eigenvalues"
    )
    print(
        "\ntraining time: "
        + ", ".join(f"{n} {seconds[n]:.0f} s" for n in OPTIMIZERS)
        + f"; total {time.perf_counter() - t0:.0f} s"
    )
    return results


if __name__ == "__main__":
    main()
