"""Design-space search speed for the 4-workload joint study (VGG16, ResNet-18, AlexNet, MobileNetV3):
candidate evaluations per second through the vectorized cost model (target >= 2,000/s on 2 cores),
and the overhead per trial of Optuna's sampler and SQLite storage, measured separately.

Run: python benchmarks/bench_explore.py
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

import cimkit as ck
from cimkit.explore import StudyConfig, evaluate_batch, run_study

SPACE = {
    "supply_v": {"low": 0.5, "high": 0.85, "step": 0.05},
    "bits_per_cell": {"choices": [1, 2, 4, 8]},
    "adc_bits": {"choices": [3, 4, 5, 6, 7, 8]},
    "crossbar": {"choices": [32, 64, 128, 256, 512]},
    "columns_per_adc": {"choices": [1, 2, 4, 8, 16, 32]},
    "arrays_per_pe": {"choices": [4, 8, 16, 32]},
    "pes_per_tile": {"choices": [4, 8, 16]},
    "global_buffer_kb": {"choices": [512, 2048, 8192, 32768]},
    "node_nm": {"choices": [32, 22, 14, 7]},
}


def main() -> None:
    cfg = StudyConfig.model_validate(
        {
            "name": "bench",
            "workloads": ["vgg16", "resnet18", "alexnet", "mobilenetv3"],
            "space": SPACE,
            "sampler": {"name": "nsga2", "population": 70, "seed": 0},
            "trials": 700,
            "batch": 70,
            "area_max_mm2": 800,
        }
    )
    base = ck.HardwareSpec.preset("rram-22nm")
    workloads = [ck.zoo.workload(n) for n in cfg.workloads]
    rng = np.random.default_rng(0)
    params = [
        {
            k: (
                rng.choice(v["choices"]).item()
                if "choices" in v
                else float(rng.choice(np.arange(v["low"], v["high"] + 1e-9, v["step"])))
            )
            for k, v in SPACE.items()
        }
        for _ in range(2000)
    ]
    evaluate_batch(cfg, base, workloads, params[:10])
    t0 = time.perf_counter()
    evaluate_batch(cfg, base, workloads, params)
    t_eval = time.perf_counter() - t0
    print(
        f"evaluation: {len(params)} candidates x 4 workloads in {t_eval:.2f} s = {len(params) / t_eval:,.0f} candidates/s "
        f"(target >= 2,000/s)"
    )
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        result = run_study(cfg, d)
        t_total = time.perf_counter() - t0
    per_trial = t_total / result.completed
    overhead = per_trial - t_eval / len(params)
    print(
        f"full study (NSGA-II, population 70 x 10 generations, SQLite): {result.completed} trials in {t_total:.1f} s = "
        f"{result.completed / t_total:,.0f} trials/s; storage + sampling overhead {overhead * 1e3:.2f} ms per trial"
    )


if __name__ == "__main__":
    main()
