"""Crossbar simulator speed, as ratios to plain PyTorch measured side by side in one run.

A: Linear 1024x1024, batch 256, 128-row arrays, 8-bit multi-level inputs, one analog cell per
   weight, 8-bit ADC per array, programming and read noise on (target <= 3x plain nn.Linear);
   with first-order IR drop as well (target <= 5x).
B: as A with bit-serial 8-bit inputs and 8-bit weights in four 2-bit cells: 32 array passes, so the
   floor is 32x plain; target <= 1.5x that floor (48x).
C: LeNet-style CNN on 1x28x28, batch 128, config A (target <= 4x plain).
D: exact IR-drop solver on a 128x128 array with 256 input vectors (target < 1 s); and the transfer
   matrices of the 4 arrays of one 128x128 nn.Linear on rram-22nm in one batch (target < 2 s).
E: converting that nn.Linear with exact IR drop, programming included (target < 2 s).
TA, TC: a training step (forward, cross-entropy, backward, SGD) of A's layer and of C's LeNet through
   the chip with straight-through gradients (targets <= 4x and <= 5x the same plain PyTorch step),
   and with the chip's own backward pass (reported).

Run: python benchmarks/bench_crossbar.py [--repeats N]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
import warnings

import numpy as np
import torch
from torch import nn

import cimkit as ck

SPEC_A = ck.HardwareSpec.from_dict(
    {
        "name": "bench-A",
        "weight_bits": 8,
        "device": {
            "technology": "rram",
            "g_max_us": 100,
            "g_min_us": 1,
            "bits_per_cell": 8,
            "programming_noise_frac": 0.02,
            "read_noise_model": "proportional",
            "read_noise_frac": 0.02,
        },
        "array": {"rows": 128, "cols": 128, "signed_mapping": "differential"},
        "periphery": {"input_bits": 8, "dac_mode": "multi_level", "adc_bits": 8, "adc_range": "calibrated"},
    }
)
SPEC_A_IR = SPEC_A.replace(**{"array.wire_resistance_ohm": 1.0, "array.ir_drop": "first_order"})
SPEC_B = SPEC_A.replace(
    **{"device.bits_per_cell": 2, "periphery.dac_mode": "bit_serial", "array.signed_mapping": "offset"}
)
SPEC_B_QUIET = SPEC_B.replace(**{"device.read_noise_model": "none"})  # to separate the noise's share


def lenet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn`` in seconds, after two warm-up calls."""
    fn(), fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def side_by_side(plain, cim, repeats: int) -> tuple[float, float]:
    """Interleave the two measurements so that machine load affects both alike."""
    a, b = [], []
    for _ in range(3):
        a.append(timed(plain, repeats))
        b.append(timed(cim, repeats))
    return min(a), min(b)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor):
    """One training step: forward, cross-entropy, backward, SGD update (the chip is reprogrammed
    with the new weights, and a new programming-noise sample, at the next forward)."""

    def step():
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def training_rows(lin: nn.Linear, x: torch.Tensor, xi: torch.Tensor, repeats: int) -> list:
    """Training steps of config A and C through the chip, against the same step of plain PyTorch."""
    rows = []
    for label, plain, inputs, target in (("A", lin, x, 4.0), ("C", lenet(), xi, 5.0)):
        plain = copy.deepcopy(plain).train()
        y = torch.randint(0, 10, (inputs.shape[0],))
        plain_step = train_step(plain, torch.optim.SGD(plain.parameters(), lr=1e-4), inputs, y)
        for mode, goal in (("straight_through", target), ("chip", None)):
            cim = ck.calibrate(ck.convert(plain, SPEC_A, seed=0), [inputs]).train()
            ck.sim.configure(cim, backward=mode)
            cim_step = train_step(cim, torch.optim.SGD(cim.parameters(), lr=1e-4), inputs, y)
            t_plain, t_cim = side_by_side(plain_step, cim_step, max(3, repeats // 2))
            name = "linear" if label == "A" else "LeNet"
            rows.append((f"T{label} train step {name}, {mode.replace('_', '-')}", t_plain, t_cim, goal))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--skip-training", action="store_true", help="forward configs only")
    args = parser.parse_args()
    torch.manual_seed(0)
    warnings.simplefilter("ignore")
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    rows = []

    lin = nn.Linear(1024, 1024)
    x = torch.randn(256, 1024).relu()
    with torch.no_grad():
        plain = lambda: lin(x)  # noqa: E731
        for label, spec, target in (
            ("A  linear, analog cell, noise", SPEC_A, 3.0),
            ("A' + first-order IR drop", SPEC_A_IR, 5.0),
            ("B  bit-serial, 4 x 2-bit cells", SPEC_B, 48.0),
            ("B' as B without read noise", SPEC_B_QUIET, 48.0),
        ):
            cim = ck.calibrate(ck.convert(lin, spec, seed=0), [x])
            t_plain, t_cim = side_by_side(plain, lambda: cim(x), args.repeats if target < 10 else 3)
            rows.append((label, t_plain, t_cim, target))

        net = lenet().eval()
        xi = torch.randn(128, 1, 28, 28)
        cim_net = ck.calibrate(ck.convert(net, SPEC_A, seed=0), [xi])
        t_plain, t_cim = side_by_side(lambda: net(xi), lambda: cim_net(xi), args.repeats)
        rows.append(("C  LeNet CNN, config A", t_plain, t_cim, 4.0))

    if not args.skip_training:
        rows += training_rows(lin, x, xi, args.repeats)

    print(f"\n{'config':34} {'plain ms':>9} {'cimkit ms':>10} {'ratio':>7} {'target':>7}  met")
    for label, tp, tc, target in rows:
        ratio = tc / tp
        verdict = "(report)" if target is None else ("yes" if ratio <= target else "NO")
        print(
            f"{label:34} {tp * 1e3:9.2f} {tc * 1e3:10.2f} {ratio:6.2f}x "
            f"{'-' if target is None else f'{target:.1f}x':>7}  {verdict}"
        )
    for r in rows:
        if r[0].startswith("B"):
            print(f"   {r[0][:2]} against its 32-pass floor: {r[2] / r[1] / 32:.2f}x (target <= 1.5x)")

    rng = np.random.default_rng(0)
    g = rng.uniform(1 / 900e3, 1 / 6e3, (128, 128))
    v = rng.uniform(0, 0.5, (256, 128))
    t_ir = timed(lambda: ck.sim.solve_ir_drop(g, v, 1.0), 3)
    print(
        f"D  exact IR-drop solver, 128x128 array, 256 vectors: {t_ir:.3f} s (target < 1 s) "
        f"{'yes' if t_ir < 1 else 'NO'}"
    )
    g4 = rng.uniform(1 / 900e3, 1 / 6e3, (4, 128, 128))  # rram-22nm's g_min..g_max, 1 ohm segments
    t_ir4 = timed(lambda: ck.sim.irdrop.ir_drop_transfers(g4, 1.0), 3)
    print(
        f"D  exact IR-drop transfers, 4 arrays of 128x128 in one batch: {t_ir4:.3f} s (target < 2 s) "
        f"{'yes' if t_ir4 < 2 else 'NO'}"
    )
    exact = ck.HardwareSpec.preset("rram-22nm").replace(**{"array.ir_drop": "exact"})
    small = nn.Linear(128, 128)
    t_conv = timed(lambda: ck.convert(small, exact, seed=0), 3)
    print(
        f"E  convert a 128x128 nn.Linear on rram-22nm with exact IR drop: {t_conv:.3f} s (target < 2 s) "
        f"{'yes' if t_conv < 2 else 'NO'}"
    )


if __name__ == "__main__":
    main()
