"""Spiking networks on simulated crossbars: how much slower than plain snnTorch (issue 17's speed figures).

A 784-500-10 network of ``snntorch.Leaky`` neurons (snnTorch's tutorial network), 25 time steps, batch 128,
rate-coded input spikes, run as plain snnTorch and as ``cimkit.convert(net, preset)`` (crossbar layers read
the spikes in one binary pass; neurons on the neuron unit). Reported: the ratio of cimkit's time to
snnTorch's, measured side by side in one run (alternating, best of ``--repeats``), for the forward pass
(no grad) and a training step (forward, cross-entropy on the summed output membrane, backward through time,
Adam step; the chip is reprogrammed after each step, as training a chip does).

Goals (issue 17): forward at most 2x on ideal, 3x on pcm, 5x on rram-22nm; a training step at most twice
those.

Event-driven cost (``--section cost``): energy and latency per inference of the same network from its spike
densities measured on rate-coded MNIST digits (``cimkit.snn.cost.snn_activity_report``), next to the same
Linear layers run as an ANN, on the same chip, for 5, 10 and 25 time steps.

    python benchmarks/bench_snn.py [--section speed|cost|all] [--threads 1] [--repeats 5] [--presets ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import snntorch as snn
import torch
from torch import nn

import cimkit as ck

GOALS = {"ideal": 2.0, "pcm": 3.0, "rram-22nm": 5.0}


class Net(nn.Module):
    """snnTorch's tutorial network, stepped over time-major input; returns (output spikes, membranes)."""

    def __init__(self, sizes=(784, 500, 10), beta: float = 0.9) -> None:
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(sizes[0], sizes[1]), snn.Leaky(beta=beta)
        self.fc2, self.lif2 = nn.Linear(sizes[1], sizes[2]), snn.Leaky(beta=beta)

    def forward(self, x):
        m1, m2 = self.lif1.reset_mem(), self.lif2.reset_mem()
        spk, mem = [], []
        for t in range(x.shape[0]):
            s1, m1 = self.lif1(self.fc1(x[t]), m1)
            s2, m2 = self.lif2(self.fc2(s1), m2)
            spk.append(s2)
            mem.append(m2)
        return torch.stack(spk), torch.stack(mem)


def network(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    net = Net()
    with torch.no_grad():  # weights that make both layers spike (about a quarter of the hidden neurons per step)
        net.fc1.weight.mul_(4.0)
        net.fc2.weight.mul_(6.0)
    return net


def inputs(steps: int, batch: int, density: float = 0.3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((steps, batch, 784), density), generator=g)
    return x, torch.randint(0, 10, (batch,), generator=g)


def _forward(model, x):
    with torch.no_grad():
        model(x)


def _train_step(model, opt, x, y):
    opt.zero_grad(set_to_none=True)
    _, mem = model(x)
    nn.functional.cross_entropy(mem.sum(0), y).backward()
    opt.step()


def side_by_side(a, b, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of ``a()`` and ``b()``, alternating so that load hits both alike."""
    a(), b()  # warm-up (first-call allocations, caches)
    ta = tb = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a()
        ta = min(ta, time.perf_counter() - t)
        t = time.perf_counter()
        b()
        tb = min(tb, time.perf_counter() - t)
    return ta, tb


def measure(preset: str, steps: int, batch: int, repeats: int) -> dict:
    x, y = inputs(steps, batch)
    net = network()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uncalibrated ADC ranges: the speed does not depend on them
        chip = ck.convert(network(), preset)
        ref_t, chip_t = side_by_side(lambda: _forward(net, x), lambda: _forward(chip, x), repeats)
        with torch.no_grad():
            rate = float(chip(x)[0].mean())
        net_opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        chip_opt = torch.optim.Adam(chip.parameters(), lr=1e-4)
        ref_s, chip_s = side_by_side(
            lambda: _train_step(net, net_opt, x, y), lambda: _train_step(chip, chip_opt, x, y), max(2, repeats // 2)
        )
    return {
        "preset": preset,
        "snntorch_forward_s": ref_t,
        "cimkit_forward_s": chip_t,
        "forward_ratio": chip_t / ref_t,
        "snntorch_train_step_s": ref_s,
        "cimkit_train_step_s": chip_s,
        "train_ratio": chip_s / ref_s,
        "output_spike_rate": rate,
        "goal_forward": GOALS.get(preset),
        "goal_train": 2 * GOALS.get(preset, 0) or None,
    }


def cost_rows(presets: list[str], steps_list: list[int], n: int = 256) -> list[dict]:
    """Energy and latency per inference of the 784-500-10 SNN (``snn_workload``: spike densities measured on
    rate-coded MNIST digits, one binary pass per step) and of the same Linear layers as an ANN (ReLU, one
    read of 8-bit inputs, activity measured on the same digits), on the same chip."""
    from cimkit.data.digits import mnist
    from cimkit.snn.cost import snn_activity_report
    from cimkit.snn.tasks import encode_images
    from cimkit.workload import Workload, measure_activity

    pixels = mnist(seed=0).x_test[:n].reshape(n, 784)
    net = network()
    ann = nn.Sequential(net.fc1, nn.ReLU(), net.fc2).eval()
    rows = []
    for preset in presets:
        spec = ck.HardwareSpec.preset(preset)
        ann_wl = Workload.from_torch(ann, (1, 784), name="ann").with_activity(measure_activity(ann, [pixels], spec))
        r_ann = ck.estimate(ann_wl, spec)
        for steps in steps_list:
            spikes = encode_images(pixels, "rate", steps, seed=0)
            rep = snn_activity_report(net, spikes)
            r = ck.estimate(rep.workload, spec)
            dens = {name: float(la.rate) for name, la in rep.layers.items()}
            rows.append(
                {
                    "preset": preset,
                    "steps": steps,
                    "snn_energy_j": r.energy_j,
                    "ann_energy_j": r_ann.energy_j,
                    "snn_latency_s": r.latency_s,
                    "ann_latency_s": r_ann.latency_s,
                    "snn_breakdown_j": dict(r.energy_breakdown_j),
                    "ann_breakdown_j": dict(r_ann.energy_breakdown_j),
                    "densities": dens,
                }
            )
    return rows


def print_cost(rows: list[dict]) -> None:
    print(
        "\nEvent-driven cost: the SNN (spike densities measured on rate-coded MNIST) vs the same layers as an ANN "
        "(8-bit inputs, one read), per inference"
    )
    print(
        f"{'preset':<11} {'T':>3} {'SNN energy':>11} {'ANN energy':>11} {'SNN/ANN':>8} {'SNN latency':>12} "
        f"{'ANN latency':>12}  densities (fc1 in, lif1 out, lif2 out)"
    )
    for r in rows:
        d = r["densities"]
        print(
            f"{r['preset']:<11} {r['steps']:>3} {r['snn_energy_j'] * 1e9:>8.2f} nJ {r['ann_energy_j'] * 1e9:>8.2f} nJ "
            f"{r['snn_energy_j'] / r['ann_energy_j']:>8.2f} {r['snn_latency_s'] * 1e6:>9.2f} us "
            f"{r['ann_latency_s'] * 1e6:>9.2f} us  {d.get('fc1', 0):.3f}, {d.get('lif1', 0):.3f}, "
            f"{d.get('lif2', 0):.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=list(GOALS))
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="", help="write the rows to this file")
    ap.add_argument("--section", choices=["speed", "cost", "all"], default="all")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {}
    if args.section in ("cost", "all"):
        out["cost"] = cost_rows(["rram-22nm", "sram", "neurram"], [5, 10, 25])
        print_cost(out["cost"])
    if args.section == "cost":
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=2)
        return
    print(
        f"784-500-10 snnTorch Leaky network, {args.steps} steps, batch {args.batch}, {args.threads} thread(s), "
        f"torch {torch.__version__}, snntorch {snn.__version__}, {platform.processor() or platform.machine()}"
    )
    print(
        f"{'preset':<11} {'snnTorch fwd':>13} {'cimkit fwd':>11} {'ratio':>6} {'goal':>5}   "
        f"{'snnTorch step':>13} {'cimkit step':>11} {'ratio':>6} {'goal':>5}"
    )
    rows = []
    for preset in args.presets:
        r = measure(preset, args.steps, args.batch, args.repeats)
        rows.append(r)
        g, gt = r["goal_forward"], r["goal_train"]
        print(
            f"{preset:<11} {r['snntorch_forward_s'] * 1e3:>10.1f} ms {r['cimkit_forward_s'] * 1e3:>8.1f} ms "
            f"{r['forward_ratio']:>6.2f} {g if g else '-':>5}   {r['snntorch_train_step_s'] * 1e3:>10.1f} ms "
            f"{r['cimkit_train_step_s'] * 1e3:>8.1f} ms {r['train_ratio']:>6.2f} {gt if gt else '-':>5}",
            flush=True,
        )
    out["speed"] = rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
