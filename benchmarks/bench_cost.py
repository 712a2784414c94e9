"""Cost-model speed: one ResNet-18 estimate (target < 50 ms) and 10,000 VGG16 configurations through
estimate_many (target < 5 s on 2 cores), with DNN+NeuroSim's run time on these machines beside them.

Run: python benchmarks/bench_cost.py
"""

from __future__ import annotations

import itertools
import statistics
import time

import cimkit as ck

NEUROSIM_SECONDS = {"vgg8": 105.0, "resnet18": 352.0}  # shared/reference/neurosim.md


def main() -> None:
    spec = ck.HardwareSpec.preset("rram-22nm")
    for net in ("vgg8", "resnet18"):
        wl = ck.zoo.workload(net)
        ck.estimate(wl, spec)
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            ck.estimate(wl, spec)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        print(f"{net:9} one estimate: {t * 1e3:6.2f} ms (target < 50 ms); DNN+NeuroSim here: "
              f"{NEUROSIM_SECONDS[net]:.0f} s, {NEUROSIM_SECONDS[net] / t:,.0f}x slower")

    wl = ck.zoo.workload("vgg16")
    grid = itertools.product((3, 4, 5, 6, 7, 8), (64, 128, 256, 512), (1, 2, 4, 8), (45, 32, 22, 14, 7),
                             (0.6, 0.7, 0.8, 0.9), (None, 200, 400, 800, 1600), (1, 8))
    t0 = time.perf_counter()
    specs = [spec.replace(**{"periphery.adc_bits": b, "array.rows": r, "array.cols": r, "device.bits_per_cell": c,
                             "technology.node_nm": n, "technology.supply_v": v, "chip.tiles": tiles,
                             "periphery.columns_per_adc": cpa})
             for b, r, c, n, v, tiles, cpa in itertools.islice(grid, 10_000)]
    t_specs = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = ck.estimate_many(wl, specs)
    t_many = time.perf_counter() - t0
    n = len(specs)
    print(f"vgg16     {n} configurations: estimate_many {t_many:.2f} s = {n / t_many:,.0f} configs/s (target < 5 s); "
          f"building the {n} validated specs {t_specs:.2f} s; feasible {int(many.feasible.sum())}")


if __name__ == "__main__":
    main()
