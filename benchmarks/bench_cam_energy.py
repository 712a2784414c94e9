"""Analog-CAM energy per decision under each search scheme, on real and synthetic tabular data, next to
MonoSparse-CAM's published 28.56x (vs raw processing) and 18.51x (vs earlier deployment optimizations);
plus the don't-care sparsity of random forests against depth, tree count and feature count, and the
sensitivity of the savings to the memristor conductance window (the largest assumed constant).

Run: python benchmarks/bench_cam_energy.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_cam import training_set  # the same forest as the search-speed benchmark

import cimkit as ck
from cimkit.cam import CamSpec
from cimkit.cam.experiment import run_trees, sparsity_sweep

CASES = [
    ("breast_cancer", "rf"),
    ("wine", "rf"),
    ("digits", "rf"),
    ("shuttle", "rf"),
    ("synthetic", "rf"),
    ("shuttle", "xgboost"),
    ("digits", "xgboost"),
]
PAPER = {"raw": 28.56, "xtime": 18.51}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer trees and samples")
    args = ap.parse_args()
    trees, samples = (20, 300) if args.quick else (100, 2000)
    print(
        f"energy per decision, {trees} trees of depth 8, averaged over up to {samples} test inputs "
        f"(CamSpec defaults: 256 x 16-feature arrays, 8-bit bounds in two 4-bit cells, 16 nm)"
    )
    print(
        "| data | model | rows | features | sparsity | accuracy model / CAM 8-bit | raw nJ | xtime nJ | "
        "monosparse nJ | raw/mono | xtime/mono | best ablation vs xtime | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for data, model in CASES:
        t0 = time.perf_counter()
        res, _ = run_trees(data, model, trees=trees, depth=8, energy_samples=samples)
        r = {k: v.energy_j for k, v in res.reports.items()}
        ablations = {k: r["xtime"] / v for k, v in r.items() if k.startswith("xtime+")}
        best = max(ablations, key=ablations.get)
        print(
            f"| {data} | {model} | {res.rows} | {res.features} | {res.sparsity:.1%} | "
            f"{res.model_accuracy:.2%} / {res.quantized_accuracy:.2%} | {r['raw'] * 1e9:.3f} | {r['xtime'] * 1e9:.3f} | "
            f"{r['monosparse'] * 1e9:.3f} | {r['raw'] / r['monosparse']:.2f}x | {r['xtime'] / r['monosparse']:.2f}x | "
            f"{best} {ablations[best]:.2f}x | {time.perf_counter() - t0:.1f} |"
        )
    print(
        f"MonoSparse-CAM (arXiv 2407.11071) reports up to {PAPER['raw']}x vs raw and {PAPER['xtime']}x vs earlier "
        "optimizations"
    )

    print("\nsensitivity (digits, rf): savings against the conductance window of the memristors")
    print("| g_min..g_max (uS) | xtime nJ | monosparse nJ | xtime/mono |")
    print("|---|---|---|---|")
    for g_min, g_max in ((1.0, 100.0), (0.1, 10.0), (0.01, 1.0)):
        spec = CamSpec().replace(**{"circuit.g_min_us": g_min, "circuit.g_max_us": g_max})
        res, _ = run_trees(
            "digits", "rf", trees=trees, depth=8, spec=spec, energy_samples=samples, schemes=("xtime", "monosparse")
        )
        x, m = (res.reports[k].energy_j for k in ("xtime", "monosparse"))
        print(f"| {g_min:g}..{g_max:g} | {x * 1e9:.3f} | {m * 1e9:.3f} | {x / m:.2f}x |")

    print(
        "\ndon't-care sparsity of random forests on the synthetic set (one knob at a time; base: 50 trees, "
        "depth 8, 16 features)"
    )
    print("| varied | value | rows | program sparsity | arrays X-TIME | arrays reordered | array sparsity reordered |")
    print("|---|---|---|---|---|---|---|")
    kw = dict(samples=2000, base_trees=20) if args.quick else {}
    for row in sparsity_sweep(**kw):
        print(
            f"| {row['varied']} | {row['value']} | {row['rows']} | {row['program_sparsity']:.1%} | {row['arrays']} | "
            f"{row['arrays_reordered']} | {row['array_sparsity_reordered']:.1%} |"
        )

    forest = ck.cam.experiment.make_model("rf", 100, 8, 0).fit(*training_set(np.random.default_rng(0)))
    prog = ck.cam.compile(forest)
    x = np.random.default_rng(1).normal(size=(2000, 16))
    t0 = time.perf_counter()
    ck.cam.estimate(prog, x, scheme="monosparse")
    print(f"\ncost model speed: {prog.rows} rows, 2,000 inputs, monosparse scheme: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
