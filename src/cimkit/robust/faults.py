"""Faults and drift on a simulated chip: fault injection through the crossbar datapath's stage hooks, fault
campaigns and drift studies over sampled chips, with confidence bands.

Fault kinds (``FAULT_KINDS``), each swept by a rate in [0, 1]:

``stuck_on`` / ``stuck_off``  cells stuck at g_max / g_min: the spec's own ``device.stuck_on_rate`` /
                              ``stuck_off_rate`` (drawn once per chip when it is made; a defect of the chip);
``dead_column``               a column's sense line and converter read 0: per row tile, each (weight slice,
                              output) column is dead with probability ``rate`` (a differential pair shares one
                              sense path, so a dead column silences the pair);
``dead_array``                every column of an array reads 0: each array is dead with probability ``rate``;
                              arrays as the mapping lays them (one per row tile and column tile, whole outputs
                              of ``outputs_per_array`` side by side, ``groups_per_array`` groups packed);
``adc_bit_flip``              each bit of each ADC output code flips with probability ``rate`` at each
                              conversion (transient; two's complement codes when signed, clipped back into the
                              converter's code range);
``buffer_bit_flip``           each bit of each input code held in the input buffer (the DAC codes a read
                              drives) flips with probability ``rate`` at each read (transient).

Defects (dead columns and arrays) are drawn once per chip from its seed and are present when the chip is
calibrated; transient flips are drawn per test batch from ``(chip seed, batch index, layer, call)``, so a run
gives the same numbers whether serial, sharded or on Dask. ``Faults`` is the ``ChipSetup`` that
``cimkit.simulate`` applies to each chip; ``fault_campaign`` and ``drift_study`` sweep a rate or the read
time and return a ``CurveResult`` (mean accuracy over chips with a confidence band).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InputError, check_real, short_repr
from ..mapping import ceil_div
from ..report.protocol import Result, figure_folder, saved_figure
from ..sim.convert import cim_layers, set_time
from ..sim.evaluate import ChipSetup, simulate
from ..sim.quant import input_code_limits
from ..spec import HardwareSpec

#: fault kinds a campaign sweeps: kind -> what a rate of it means
FAULT_KINDS: dict[str, str] = {
    "stuck_on": "fraction of cells stuck at g_max (spec device.stuck_on_rate)",
    "stuck_off": "fraction of cells stuck at g_min (spec device.stuck_off_rate)",
    "dead_column": "probability that a column (weight slice x output, per row tile) reads 0",
    "dead_array": "probability that an array (row tile x column tile) reads 0",
    "adc_bit_flip": "probability that a bit of an ADC output code flips, per conversion",
    "buffer_bit_flip": "probability that a bit of an input-buffer code flips, per read",
}
#: times (s) a drift study reads at by default: 1 s, 1 min, 1 h, 1 day, 1 month, 1 year, 10 years
DRIFT_TIMES_S = (1.0, 60.0, 3600.0, 86400.0, 2.628e6, 3.156e7, 3.156e8)
#: above this flip rate, bits are drawn one by one; below, the number of flips first (same distribution, far cheaper)
SPARSE_FLIP_RATE = 0.02
#: the chip attribute holding its layers' ``_LayerFaults`` (``at_batch`` finds them on the chip it is given)
_FAULTS_ATTR = "_cimkit_faults"
_SALTS = {"dead_column": 0xDC01, "dead_array": 0xDA02, "adc_bit_flip": 0xAD03, "buffer_bit_flip": 0xBF04}


def _generator(*key: int | str) -> torch.Generator:
    """A generator seeded from ``key`` (stable across processes, unlike ``hash``)."""
    text = "/".join(str(k) for k in key).encode()
    return torch.Generator().manual_seed(zlib.crc32(text) | (zlib.adler32(text) << 32))


def flip_bits(
    codes: torch.Tensor, bits: int, rate: float, generator: torch.Generator, limits: tuple[int, int]
) -> torch.Tensor:
    """``codes`` (integer values in a float tensor) with each of their ``bits`` low bits flipped independently
    with probability ``rate`` (two's complement for negative codes), clipped into ``limits``. The draws are made
    on the CPU from ``generator`` (the same flips on any device)."""
    if rate == 0 or codes.numel() == 0:
        return codes
    u = torch.remainder(codes.to(torch.int64), 1 << bits)
    n = u.numel() * bits
    if rate > SPARSE_FLIP_RATE:
        hit = torch.rand((*codes.shape, bits), generator=generator) < rate
        weights = torch.tensor([1 << b for b in range(bits)], dtype=torch.int64)
        masks = (hit.to(torch.int64) * weights).sum(-1).to(u.device)
    else:  # few flips: their number (binomial), then that many distinct bit positions, uniformly
        count = int(torch.binomial(torch.tensor(float(n)), torch.tensor(rate), generator=generator))
        where = torch.empty(0, dtype=torch.int64)
        while len(where) < count:
            more = torch.randint(0, n, (count - len(where) + 16,), generator=generator)
            where = torch.cat([where, more]).unique()
        where = where[torch.randperm(len(where), generator=generator)[:count]]
        masks = torch.zeros(u.numel(), dtype=torch.int64)
        masks.index_add_(0, where // bits, torch.ones_like(where) << (where % bits))
        masks = masks.view(u.shape).to(u.device)
    u = u ^ masks
    if limits[0] < 0:  # back from two's complement
        u = torch.where(u >= 1 << (bits - 1), u - (1 << bits), u)
    return u.clamp(*limits).to(codes.dtype)


class _LayerFaults:
    """The hooks of one crossbar layer: its dead-column mask and its transient-flip streams (their draws keyed on
    the chip's seed and the layer's name)."""

    def __init__(self, faults: "Faults", layer, seed: int) -> None:
        self.faults, self.seed = faults, seed
        tile = layer.tile
        m = tile.mapping
        self.name = tile.name
        self.alive = None  # (G, row tiles, S, N) float mask of live columns
        if faults.dead_column_rate > 0 or faults.dead_array_rate > 0:
            alive = torch.ones(m.groups, m.row_tiles, m.slices, m.out_features)
            if faults.dead_column_rate > 0:
                g = _generator(seed, self.name, _SALTS["dead_column"])
                alive *= (torch.rand(alive.shape, generator=g) >= faults.dead_column_rate).float()
            if faults.dead_array_rate > 0:
                # the arrays as the mapping lays them: outputs_per_array whole outputs (all their slices) side by
                # side, groups_per_array groups block-diagonally in one array, one array per row tile
                col_tiles = ceil_div(m.out_features, m.outputs_per_array)
                packs = ceil_div(m.groups, m.groups_per_array)
                g = _generator(seed, self.name, _SALTS["dead_array"])
                dead = torch.rand((packs, m.row_tiles, col_tiles), generator=g) < faults.dead_array_rate
                group_pack = torch.arange(m.groups) // m.groups_per_array
                output_array = torch.arange(m.out_features) // m.outputs_per_array
                per_output = dead[group_pack][:, :, output_array]  # (G, row tiles, N)
                alive *= (~per_output).float().unsqueeze(2)
            self.alive = alive
        self.batch, self.calls = -1, 0

    def at_batch(self, batch: int) -> None:
        self.batch, self.calls = batch, 0

    def _stream(self, what: str) -> torch.Generator:
        self.calls += 1
        return _generator(self.seed, self.name, _SALTS[what], self.batch, self.calls)

    def adc(self, tile, value, info):
        out = value
        if self.alive is not None and info.row_tile is not None:
            mask = self.alive[:, info.row_tile]  # (G, S, N)
            out = out * mask.to(out.device, out.dtype).view(mask.shape[0], 1, 1, *mask.shape[1:])
        rate = self.faults.adc_bit_flip_rate
        if rate > 0 and info.code_limits is not None:
            bits = tile.spec.periphery.adc_bits
            out = flip_bits(out, bits, rate, self._stream("adc_bit_flip"), info.code_limits)
        return out

    def encode(self, tile, codes, info):
        p = tile.spec.periphery
        if p.input_bits is None:
            return None
        lo, hi = float(codes.min()), float(codes.max())
        if tile.input_mode != "dac" and lo >= 0 and hi <= 1 and bool((codes == codes.round()).all()):
            bits, limits = 1, (0, 1)  # spikes: one bit each
        else:
            calibrated = math.isfinite(float(tile.input_range))
            signed = bool(tile.input_signed) if calibrated else lo < 0
            bits, limits = p.input_bits, input_code_limits(p.input_bits, signed)
        return flip_bits(codes, bits, self.faults.buffer_bit_flip_rate, self._stream("buffer_bit_flip"), limits)


@dataclass(frozen=True)
class Faults(ChipSetup):
    """Faults injected into every crossbar layer of a chip (or those named in ``layers``) through stage hooks,
    and the time the chip is read at; a ``ChipSetup`` for ``cimkit.simulate`` (see the module docstring for
    each kind). Rates are probabilities in [0, 1]; a zero rate registers no hook. ``t_inference_s``: read the
    chip this many seconds after programming (drift; None: as converted, at the device's ``drift_t0_s``);
    set after calibration, as a chip calibrated when programmed and read later."""

    dead_column_rate: float = 0.0
    dead_array_rate: float = 0.0
    adc_bit_flip_rate: float = 0.0
    buffer_bit_flip_rate: float = 0.0
    layers: tuple[str, ...] | None = None
    t_inference_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("dead_column_rate", "dead_array_rate", "adc_bit_flip_rate", "buffer_bit_flip_rate"):
            check_real("Faults", name, getattr(self, name), 0.0, 1.0, why="a probability")
        if self.layers is not None and (
            isinstance(self.layers, str) or not all(isinstance(n, str) for n in self.layers)
        ):
            raise InputError(f"Faults.layers must be a tuple of layer names or None, got {short_repr(self.layers)}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))
            if not self.layers:
                raise InputError("Faults.layers is empty; give the names of the layers to fault, or None for all")
        t = self.t_inference_s
        if t is not None:
            check_real("Faults", "t_inference_s", t, 0.0, lo_open=True, why="seconds after programming, or None")

    def describe(self) -> dict:
        d = asdict(self)
        d["layers"] = None if self.layers is None else list(self.layers)
        return {"setup": "Faults", **d}

    def _targets(self, chip: nn.Module) -> list:
        layers = cim_layers(chip)
        if self.layers is None:
            return layers
        names = {layer.tile.name: layer for layer in layers}
        unknown = [n for n in self.layers if n not in names]
        if unknown:
            raise InputError(
                f"Faults.layers names {', '.join(map(repr, unknown))}, which are not crossbar layers of "
                f"the model; its crossbar layers: {', '.join(names) or '(none)'}"
            )
        return [names[n] for n in self.layers]

    def before_calibration(self, chip: nn.Module, seed: int) -> None:
        """Draw the chip's defects and register the hooks on its crossbar layers."""
        hooked = []
        flips = self.adc_bit_flip_rate > 0
        dead = self.dead_column_rate > 0 or self.dead_array_rate > 0
        if hasattr(chip, _FAULTS_ATTR):
            raise InputError("Faults: this chip already has faults injected; convert a fresh chip for other faults")
        for layer in self._targets(chip):
            lf = _LayerFaults(self, layer, seed)
            if dead or flips:
                layer.register_stage_hook("adc", lf.adc)
            if self.buffer_bit_flip_rate > 0:
                layer.register_stage_hook("encode", lf.encode)
            hooked.append(lf)
        setattr(chip, _FAULTS_ATTR, hooked)

    def after_calibration(self, chip: nn.Module, seed: int) -> None:
        if self.t_inference_s is not None:
            set_time(chip, float(self.t_inference_s))

    def at_batch(self, chip: nn.Module, seed: int, batch: int) -> None:
        for lf in getattr(chip, _FAULTS_ATTR, ()):
            lf.at_batch(batch)

    def apply(self, chip: nn.Module, seed: int = 0) -> nn.Module:
        """Inject the faults into an already converted (and calibrated) ``chip`` in place, outside ``simulate``;
        transient flips then draw a new stream per forward. Returns ``chip``."""
        if not cim_layers(chip):
            raise InputError("Faults.apply: the model holds no crossbar layers; convert it first (cimkit.convert)")
        self.before_calibration(chip, seed)
        self.after_calibration(chip, seed)
        chip.register_forward_pre_hook(_NextBatch(getattr(chip, _FAULTS_ATTR)))
        return chip


class _NextBatch:
    """Forward pre-hook of ``Faults.apply``: each forward is a new batch for the transient flips (picklable)."""

    def __init__(self, hooked: list) -> None:
        self.hooked, self.count = hooked, 0

    def __call__(self, module, args) -> None:
        self.count += 1
        for lf in self.hooked:
            lf.at_batch(self.count)


# ---- campaigns --------------------------------------------------------------------------------------------------
def confidence_band(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high) of ``values`` (accuracies): the two-sided Student-t confidence interval of
    the mean over chips, clipped to [0, 1] (one chip: the band is the value itself)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if len(v) < 2:
        return mean, 0.0, mean, mean
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1)) * std / math.sqrt(len(v))
    return mean, std, max(mean - half, 0.0), min(mean + half, 1.0)  # accuracies: the band within [0, 1]


@dataclass
class Curve:
    """Accuracy against one swept value (a fault rate or a read time) for one setting."""

    label: str
    x: list[float]
    accuracies: list[list[float]]  # per point, each chip's accuracy
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not self.mean:
            bands = [confidence_band(a, self.confidence) for a in self.accuracies]
            self.mean, self.std, self.low, self.high = (list(c) for c in zip(*bands)) if bands else ([], [], [], [])


@dataclass
class CurveResult(Result):
    """Curves of accuracy (fraction right) against a swept value, over ``chips`` sampled chips per point: each
    point's per-chip accuracies, mean, sample std and a ``confidence`` Student-t band of the mean. ``study``:
    "faults" or "drift"; ``x_name``: what the x axis is; ``float_accuracy``: the float model's."""

    study: str
    x_name: str
    curves: list[Curve]
    chips: int
    spec_name: str
    images: int
    float_accuracy: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": type(self).__name__,
            "study": self.study,
            "x_name": self.x_name,
            "chips": self.chips,
            "spec": self.spec_name,
            "images": self.images,
            "float_accuracy": self.float_accuracy,
            "seconds": self.seconds,
            "curves": [asdict(c) for c in self.curves],
        }

    def records(self) -> list[dict[str, Any]]:
        return [
            {"curve": c.label, self.x_name: x, "mean_accuracy": m, "std": s, "low": lo, "high": hi, "chips": len(a)}
            for c in self.curves
            for x, m, s, lo, hi, a in zip(c.x, c.mean, c.std, c.low, c.high, c.accuracies)
        ]

    def table(self):
        from rich.table import Table

        t = Table(
            title=f"{self.study}: accuracy over {self.chips} chip(s) of {self.spec_name} "
            f"({self.images} images; float {self._pct(self.float_accuracy)})"
        )
        for col in (
            "curve",
            self.x_name,
            "mean",
            f"{int(self.curves[0].confidence * 100) if self.curves else 95}% band",
            "std",
        ):
            t.add_column(col)
        for r in self.records():
            t.add_row(
                r["curve"],
                f"{r[self.x_name]:g}",
                self._pct(r["mean_accuracy"]),
                f"{self._pct(r['low'])} - {self._pct(r['high'])}",
                f"{100 * r['std']:.2f}",
            )
        return t

    @staticmethod
    def _pct(v) -> str:
        return "-" if v is None else f"{100 * v:.2f}%"

    def figures(self, folder) -> list[Path]:
        folder = figure_folder(folder)
        path = folder / f"{self.study}_accuracy.png"
        with saved_figure(path, figsize=(6, 4)) as (fig, ax):
            for c in self.curves:
                xs = [max(v, 1e-12) for v in c.x] if self.x_name.endswith("_s") or any(v > 0 for v in c.x) else c.x
                ax.plot(xs, [100 * m for m in c.mean], marker="o", label=c.label)
                ax.fill_between(xs, [100 * v for v in c.low], [100 * v for v in c.high], alpha=0.25)
            if self.float_accuracy is not None:
                ax.axhline(100 * self.float_accuracy, color="k", ls=":", lw=1, label="float")
            if _log_axis(self.curves):
                ax.set_xscale("log")
            ax.set_xlabel(self.x_name)
            ax.set_ylabel("accuracy (%)")
            ax.set_title(
                f"{self.study} on {self.spec_name}: mean of {self.chips} chips, "
                f"{int(100 * (self.curves[0].confidence if self.curves else 0.95))}% band"
            )
            ax.legend(fontsize=8)
        return [path]


def _log_axis(curves: list[Curve]) -> bool:
    xs = [v for c in curves for v in c.x if v > 0]
    return len(xs) > 1 and max(xs) / min(xs) > 100


def _check_values(
    fn: str, name: str, values, lo: float, *, lo_open: bool = False, hi: float | None = None, why: str = ""
) -> list[float]:
    """``values`` as a non-empty list of finite floats, each checked by ``check_real`` as ``name[i]``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise InputError(f"{fn}: {name} must be a non-empty list of numbers, got {short_repr(values)}")
    return [check_real(fn, f"{name}[{i}]", v, lo, hi, lo_open=lo_open, why=why) for i, v in enumerate(values)]


def fault_setting(
    spec: HardwareSpec, kind: str, rate: float, layers: Sequence[str] | None = None, t_inference_s: float | None = None
) -> tuple[HardwareSpec, Faults | None]:
    """The spec and the ``Faults`` setup that inject fault ``kind`` at ``rate``: stuck cells go into the spec's
    device section, the rest into hooks."""
    if kind not in FAULT_KINDS:
        raise InputError(f"fault kind {short_repr(kind)} is unknown; fault kinds: {', '.join(FAULT_KINDS)}")
    rate = check_real("fault_setting", "rate", rate, 0.0, 1.0, why=f"the probability of a {kind} fault")
    if kind in ("stuck_on", "stuck_off"):
        other = spec.device.stuck_off_rate if kind == "stuck_on" else spec.device.stuck_on_rate
        if rate + other > 1:
            raise InputError(
                f"{kind} rate {rate:g} plus the spec's own {'stuck_off' if kind == 'stuck_on' else 'stuck_on'}"
                f"_rate {other:g} exceeds 1"
            )
        if layers:
            raise InputError(
                f"{kind} faults are a property of the device (spec device.{kind}_rate) and hit every "
                "layer; 'layers' applies to the hook-injected kinds only"
            )
        spec = spec.replace(**{f"device.{kind}_rate": rate})
        return spec, Faults(t_inference_s=t_inference_s) if t_inference_s is not None else None
    return spec, Faults(**{f"{kind}_rate": rate}, layers=tuple(layers) if layers else None, t_inference_s=t_inference_s)


def fault_campaign(
    model: nn.Module,
    spec: HardwareSpec | str,
    x,
    y,
    *,
    kind: str,
    rates: Sequence[float],
    chips: int = 5,
    seed: int = 0,
    calibration=None,
    layers: Sequence[str] | None = None,
    confidence: float = 0.95,
    batch_size: int = 256,
    executor: str = "serial",
    workers: int = 2,
    scheduler: str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> CurveResult:
    """Accuracy of ``model`` on ``chips`` sampled chips of ``spec`` with fault ``kind`` (``FAULT_KINDS``) at each
    of ``rates``: one ``cimkit.simulate`` per rate (chip seeds ``seed``, ``seed + 1``, ...; the same chips at every
    rate, so the curve compares like with like), serial or spread over a Dask cluster (``executor="dask"``,
    ``workers`` local processes or the ``scheduler`` at tcp://host:port). ``checkpoint_dir``: one checkpoint per
    rate there; a rerun resumes. Returns a ``CurveResult`` with a ``confidence`` band over chips."""
    import time

    t0 = time.perf_counter()
    if isinstance(spec, str):
        spec = HardwareSpec.preset(spec)
    rates = _check_values("fault_campaign", "rates", rates, 0.0, hi=1.0, why="probabilities")
    confidence = check_real(
        "fault_campaign", "confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True, why="e.g. 0.95"
    )
    if kind not in FAULT_KINDS:
        raise InputError(f"fault_campaign: kind {short_repr(kind)} is unknown; fault kinds: {', '.join(FAULT_KINDS)}")
    accs, result = [], None
    for rate in rates:
        s, setup = fault_setting(spec, kind, rate, layers)
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / f"faults_{kind}_{rate:.6g}.json"
        result = simulate(
            model,
            s,
            x,
            y,
            chips=chips,
            seed=seed,
            calibration=calibration,
            batch_size=batch_size,
            executor=executor,
            workers=workers,
            scheduler=scheduler,
            checkpoint=ckpt,
            setup=setup,
            progress=progress,
        )
        accs.append(result.accuracies)
    assert result is not None  # rates is not empty (checked)
    curve = Curve(kind, rates, accs, confidence=confidence)
    return CurveResult(
        "faults",
        f"{kind}_rate",
        [curve],
        chips,
        spec.name,
        result.images,
        result.float_accuracy,
        time.perf_counter() - t0,
    )


def drift_study(
    model: nn.Module,
    spec: HardwareSpec | str,
    x,
    y,
    *,
    times_s: Sequence[float] = DRIFT_TIMES_S,
    compensation: Sequence[str] = ("none", "global"),
    chips: int = 5,
    seed: int = 0,
    calibration=None,
    confidence: float = 0.95,
    batch_size: int = 256,
    executor: str = "serial",
    workers: int = 2,
    scheduler: str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> CurveResult:
    """Accuracy of ``model`` read ``times_s`` seconds after programming (default 1 s to 10 years), one curve per
    drift compensation in ``compensation`` (``periphery.drift_compensation``: "none", "global"), on ``chips``
    sampled chips calibrated when programmed; the same chips at every time. Other arguments as
    ``fault_campaign``."""
    import time

    t0 = time.perf_counter()
    if isinstance(spec, str):
        spec = HardwareSpec.preset(spec)
    times = _check_values("drift_study", "times_s", times_s, 0.0, lo_open=True, why="seconds after programming")
    confidence = check_real(
        "drift_study", "confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True, why="e.g. 0.95"
    )
    if isinstance(compensation, str) or not isinstance(compensation, Sequence) or not compensation:
        raise InputError(
            f"drift_study: compensation must be a non-empty list of drift compensations, got {short_repr(compensation)}"
        )
    if spec.device.drift_nu == 0 and spec.device.drift_nu_std == 0:
        raise InputError(
            f"drift_study: the spec {spec.name!r} has no drift (device.drift_nu = 0 and drift_nu_std "
            "= 0); every read time would give the same accuracy"
        )
    curves, result = [], None
    for comp in compensation:
        s = spec.replace(**{"periphery.drift_compensation": comp})
        accs = []
        for t in times:
            ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / f"drift_{comp}_{t:.6g}.json"
            result = simulate(
                model,
                s,
                x,
                y,
                chips=chips,
                seed=seed,
                calibration=calibration,
                batch_size=batch_size,
                executor=executor,
                workers=workers,
                scheduler=scheduler,
                checkpoint=ckpt,
                setup=Faults(t_inference_s=t),
                progress=progress,
            )
            accs.append(result.accuracies)
        curves.append(Curve(f"compensation={comp}", times, accs, confidence=confidence))
    assert result is not None  # times_s and compensation are not empty (checked)
    return CurveResult(
        "drift",
        "t_inference_s",
        curves,
        chips,
        spec.name,
        result.images,
        result.float_accuracy,
        time.perf_counter() - t0,
    )


__all__ = [
    "FAULT_KINDS",
    "DRIFT_TIMES_S",
    "Faults",
    "flip_bits",
    "confidence_band",
    "Curve",
    "CurveResult",
    "fault_setting",
    "fault_campaign",
    "drift_study",
]
