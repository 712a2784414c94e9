"""Whole-network simulation speed, as ratios to plain PyTorch measured side by side in one run.

Each configuration converts a zoo network (random weights, ReLU'd random inputs of the dataset's
shape), calibrates it on 2 images, then times warm forwards of the converted network (``--repeats``,
median) interleaved with warm plain forwards of the same network and batch (5 per repeat, median; the
ratio of the fastest of each is printed too, as shared machines slow either down at random), and reports the peak memory simulating added (resident
set at its peak minus before calibrating: calibration and forwards, the network and its programmed
chip excluded), in a child process per configuration so one does not hide another's peak.

Targets (issue 13): VGG8, CIFAR-10 shapes, batch 64, ``rram-22nm`` at most 64x plain; ResNet-18,
224x224, batch 8, ``rram-22nm`` at most 64x plain and under 1 GB per image; VGG8 on ``pcm`` at most
4x plain.

Run: python benchmarks/bench_network.py [--quick] [--only NAME ...] [--repeats N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import time
import warnings

import torch

CONFIGS = {  # name: (model, preset, batch, target ratio or None)
    "vgg8-rram": ("vgg8", "rram-22nm", 64, 64.0),
    "vgg8-pcm": ("vgg8", "pcm", 64, 4.0),
    "vgg8-sram": ("vgg8", "sram", 64, None),
    "resnet18-rram": ("resnet18", "rram-22nm", 8, 64.0),
}
QUICK_BATCH = {"vgg8": 8, "resnet18": 1}
PLAIN_PER_REPEAT = 5  # the plain forward is cheap and swings more on shared machines: more samples of it


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _measure(name: str, batch: int, repeats: int, queue) -> None:
    warnings.simplefilter("ignore")
    import cimkit as ck
    from cimkit.sim import fused
    from cimkit.workload import zoo

    model_name, preset, _, target = CONFIGS[name]
    shape = (3, 224, 224) if model_name == "resnet18" else (3, 32, 32)
    torch.manual_seed(0)
    model = zoo.model(model_name).eval()
    x = torch.relu(torch.randn(batch, *shape))
    with torch.no_grad():

        def plain():
            model(x)

        cim = ck.convert(model, preset, seed=1)
        base_mb = _rss_mb()  # the process with the model, its plain forward and the programmed chip
        t0 = time.perf_counter()
        ck.calibrate(cim, [x[:2]], num_batches=1)
        calib_s = time.perf_counter() - t0
        cim(x[:1])  # warm: arrays in compute form, kernel built
        sim_s, plain_s = [], []
        plain()
        for _ in range(repeats):  # interleaved, so both see the same machine load
            for _ in range(PLAIN_PER_REPEAT):
                t0 = time.perf_counter()
                plain()
                plain_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cim(x)
            sim_s.append(time.perf_counter() - t0)
    sim, ref = statistics.median(sim_s), statistics.median(plain_s)
    queue.put(
        {
            "name": name,
            "model": model_name,
            "preset": preset,
            "batch": batch,
            "plain_ms": ref * 1e3,
            "sim_s": sim,
            "ratio": sim / ref,
            "ratio_fastest": min(sim_s) / min(plain_s),
            "plain_ms_range": [min(plain_s) * 1e3, max(plain_s) * 1e3],
            "sim_s_range": [min(sim_s), max(sim_s)],
            "repeats": repeats,
            "target": target,
            "per_image_s": sim / batch,
            "calibrate_2_images_s": calib_s,
            "sim_peak_added_mb": _peak_rss_mb() - base_mb,
            "sim_peak_added_mb_per_image": (_peak_rss_mb() - base_mb) / batch,
            "peak_rss_mb": _peak_rss_mb(),
            "native_kernel": fused.native_available(),
            "threads": torch.get_num_threads(),
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small batches (VGG8 8, ResNet-18 1)")
    ap.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="configurations to run")
    ap.add_argument("--repeats", type=int, default=3, help="simulated forwards per configuration (median)")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    rows = []
    ctx = mp.get_context("spawn")
    for name in args.only or CONFIGS:
        model_name, _, batch, _ = CONFIGS[name]
        batch = QUICK_BATCH[model_name] if args.quick else batch
        queue = ctx.Queue()
        proc = ctx.Process(target=_measure, args=(name, batch, args.repeats, queue))
        proc.start()
        row = queue.get()
        proc.join()
        rows.append(row)
        target = (
            ""
            if row["target"] is None
            else f" (target <= {row['target']:.0f}x: {'met' if row['ratio'] <= row['target'] else 'MISSED'})"
        )
        print(
            f"{name:14s} batch {batch:3d}: plain {row['plain_ms']:8.1f} ms, cimkit {row['sim_s']:7.2f} s "
            f"({row['per_image_s']:.3f} s/image), ratio {row['ratio']:6.1f}x{target} (fastest against fastest: "
            f"{row['ratio_fastest']:.1f}x; plain {row['plain_ms_range'][0]:.0f}-{row['plain_ms_range'][1]:.0f} ms); "
            "simulating adds "
            f"{row['sim_peak_added_mb']:.0f} MB peak ({row['sim_peak_added_mb_per_image']:.0f} MB/image, process "
            f"peak {row['peak_rss_mb']:.0f} MB); "
            f"calibrate on 2 images {row['calibrate_2_images_s']:.1f} s",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
