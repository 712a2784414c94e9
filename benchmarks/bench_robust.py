"""Robustness on the simulated chip (issue 18): attack time budgets, and the MNIST / 32x32 robustness studies.

    python benchmarks/bench_robust.py budgets [fgsm,pgd,...]   # each attack on 100 MNIST images, small CNN,
                                                  # ideal and rram-22nm (the slow chip runs on 25, scaled)
    python benchmarks/bench_robust.py study       # benchmarks/robustness_mnist.yaml (attacks, transfer, faults,
                                                  # drift, AxC); resumable, parts in benchmarks/results/robustness
    python benchmarks/bench_robust.py composite   # benchmarks/robustness_composite.yaml (32x32 transfer matrix)

The budgets of the issue (per 100 MNIST-sized images, small CNN, ideal): FGSM <= 0.1 s, PGD-40 <= 1 s,
CW <= 15 s, DeepFool <= 10 s, Square-1000 <= 15 s, HopSkipJump <= 20 s; on rram-22nm the factor is printed.
Both runs of an attack are measured side by side in this process. Results: benchmarks/results/robust_budgets.json.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
BUDGETS_S = {
    "fgsm": 0.1,
    "pgd": 1.0,
    "cw": 15.0,
    "deepfool": 10.0,
    "square": 15.0,
    "hopskipjump": 20.0,
    "boundary": None,
    "simba": None,
}
EPS = {"fgsm": 0.1, "pgd": 0.1, "square": 0.1}


#: attacks whose chip run is timed on a quarter of the images (their time per image is flat; scaled to 100)
QUARTER_ON_CHIP = ("cw", "square", "hopskipjump", "boundary", "simba")


def budgets(images: int = 100, threads: int = 2, attacks: list[str] | None = None) -> dict:
    import cimkit as ck
    from cimkit.data.digits import mnist
    from cimkit.robust import accuracy, build, run_attack, train_classifier

    torch.set_num_threads(threads)
    d = mnist()
    model = build("small_cnn", in_channels=1, image_size=28, num_classes=10, seed=0)
    t0 = time.perf_counter()
    train_classifier(model, d.x_train, d.y_train, epochs=10, batch_size=64, seed=0)
    print(
        f"small CNN trained in {time.perf_counter() - t0:.1f} s: test accuracy {accuracy(model, d.x_test, d.y_test):.3f}"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chip = ck.convert(model, "rram-22nm", seed=0)
    ck.calibrate(chip, [d.x_train[:256]])
    chip.eval()
    x, y = d.x_test[:images], d.y_test[:images]
    path = HERE / "results" / "robust_budgets.json"
    (HERE / "results").mkdir(exist_ok=True)
    out = json.loads(path.read_text()) if path.is_file() and attacks else {"attacks": {}}
    out.update(
        {
            "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} thread(s)",
            "images": images,
        }
    )
    rows = out["attacks"]
    print(
        f"{'attack':12s} {'budget s':>8s} {'ideal s':>8s} {'acc':>5s} {'q/img':>6s} | {'chip s':>8s} {'acc':>5s} "
        f"{'q/img':>6s} {'factor':>7s}"
    )
    for attack, budget in BUDGETS_S.items():
        if attacks and attack not in attacks:
            continue
        eps = EPS.get(attack)
        ideal = run_attack(model, attack, x, y, eps=eps)
        chip_images = images // 4 if attack in QUARTER_ON_CHIP else images
        on_chip = run_attack(chip, attack, x[:chip_images], y[:chip_images], eps=eps)
        chip_s = on_chip.seconds * images / chip_images  # per 100 images
        rows[attack] = {
            "budget_s": budget,
            "ideal_s": ideal.seconds,
            "ideal_accuracy": ideal.accuracy,
            "ideal_clean": ideal.clean_accuracy,
            "ideal_queries_per_image": ideal.queries / images,
            "chip_s_per_100": chip_s,
            "chip_images": chip_images,
            "chip_accuracy": on_chip.accuracy,
            "chip_clean": on_chip.clean_accuracy,
            "chip_queries_per_image": on_chip.queries / chip_images,
            "factor": chip_s / ideal.seconds,
            "eps": eps,
            "mean_l2_ideal": float(ideal.l2[ideal.adv_pred != ideal.labels].mean())
            if (ideal.adv_pred != ideal.labels).any()
            else None,
        }
        r = rows[attack]
        print(
            f"{attack:12s} {budget if budget else '-':>8} {ideal.seconds:8.2f} {ideal.accuracy:5.2f} "
            f"{r['ideal_queries_per_image']:6.0f} | {chip_s:8.2f} {on_chip.accuracy:5.2f} "
            f"{r['chip_queries_per_image']:6.0f} {r['factor']:7.1f}",
            flush=True,
        )
        path.write_text(json.dumps(out, indent=1))  # after each attack: a long run keeps what it measured
    return out


def study(name: str) -> None:
    from rich.console import Console

    from cimkit.robust.study import run_study

    console = Console(width=170)
    torch.set_num_threads(2)
    run_study(
        HERE / f"robustness_{name}.yaml",
        HERE / "results" / f"robustness_{name}",
        say=lambda text: console.print(text, highlight=False),
    )


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "budgets"
    if what == "budgets":
        budgets(attacks=sys.argv[2].split(",") if len(sys.argv) > 2 else None)
    elif what in ("study", "mnist"):
        study("mnist")
    elif what == "composite":
        study("composite")
    else:
        raise SystemExit(f"unknown section {what!r}: budgets, study, composite")
