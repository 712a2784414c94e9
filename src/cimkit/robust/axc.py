"""Approximate computing (AxC) on a model and its chip: each technique placed in the AxC taxonomy (Henkel et al.,
ICCAD 2022, arXiv 2210.00497) with its measured accuracy and its energy from the cost model.

Techniques (``TECHNIQUES``, the taxonomy class in brackets):

``multiplier`` [approximate arithmetic]  the model's Linear / Conv2d layers on an 8-bit integer digital datapath
    whose multipliers are approximate (``cimkit.ops.approx.approximate``); energy: the MACs priced at
    Horowitz's 8-bit multiply and 16-bit accumulate (``cost.components.primitive_energies_pj``), the multiply
    scaled by ``ops.approx.relative_energy``;
``adder`` [approximate arithmetic]       the same with approximate adders in the accumulation (adder trees);
``digital_multiplier`` [approximate arithmetic]  on the CIM chip, the digital unit's products of two
    activations (attention) with ``digital.multiplier``: accuracy from ``cimkit.simulate``, energy from
    ``cimkit.estimate`` of the model's workload;
``precision`` [precision scaling]        a spec field lowered (``periphery.adc_bits``, ``periphery.input_bits``,
    ``weight_bits``): accuracy on the chip, energy from ``cimkit.estimate``;
``skipping`` [computation skipping]      layer inputs below ``threshold`` x their batch's largest magnitude set to 0
    (their row reads skipped): accuracy on the chip, energy from ``cimkit.estimate`` at the input activity
    measured on the thresholded model;
``memory`` [approximate memory]          bit flips in the input buffers at a rate (as a voltage-scaled SRAM would
    make): accuracy on the chip; its energy saving depends on the SRAM's error-versus-voltage curve, which the
    cost model does not hold, so it is reported as not priced (None).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..errors import InputError, short_repr
from ..report.protocol import Result, figure_folder, saved_figure
from ..sim.convert import cim_layers
from ..sim.evaluate import ChipSetup
from ..spec import HardwareSpec

#: technique -> its class in the AxC taxonomy
TECHNIQUES: dict[str, str] = {
    "multiplier": "approximate arithmetic (circuit)",
    "adder": "approximate arithmetic (circuit)",
    "digital_multiplier": "approximate arithmetic (circuit)",
    "precision": "precision scaling (data)",
    "skipping": "computation skipping (algorithm)",
    "memory": "approximate memory (storage)",
}
#: spec fields a precision-scaling row may lower
PRECISION_FIELDS = ("periphery.adc_bits", "periphery.input_bits", "weight_bits")


@dataclass
class AxcRow:
    """One technique at one setting: accuracy (mean over chips where a chip is simulated), the energy of what it
    approximates (``energy_j`` per inference, None when not priced) and relative to the exact setting, and where
    the energy figure comes from."""

    technique: str
    taxonomy: str
    setting: str
    accuracy: float
    accuracy_std: float
    energy_j: float | None
    relative_energy: float | None
    energy_source: str
    scope: str  # what the energy covers


@dataclass
class AxcResult(Result):
    """The AxC table of one model: a row per technique and setting, the baseline accuracies it compares with."""

    model: str
    rows: list[AxcRow] = field(default_factory=list)
    float_accuracy: float | None = None
    images: int = 0
    chips: int = 1
    spec_name: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": type(self).__name__,
            "model": self.model,
            "spec": self.spec_name,
            "images": self.images,
            "chips": self.chips,
            "float_accuracy": self.float_accuracy,
            "seconds": self.seconds,
            "rows": [asdict(r) for r in self.rows],
        }

    def records(self) -> list[dict[str, Any]]:
        return [{"model": self.model, **asdict(r)} for r in self.rows]

    def table(self):
        from rich.table import Table

        t = Table(
            title=f"approximate computing on {self.model} ({self.spec_name}; {self.images} images, "
            f"{self.chips} chip(s); float {100 * (self.float_accuracy or 0):.2f}%)"
        )
        for col in ("taxonomy", "technique", "setting", "accuracy", "energy", "rel. energy", "energy covers"):
            t.add_column(col)
        for r in self.rows:
            t.add_row(
                r.taxonomy,
                r.technique,
                r.setting,
                f"{100 * r.accuracy:.2f}%",
                "not priced" if r.energy_j is None else f"{r.energy_j:.3g} J",
                "-" if r.relative_energy is None else f"{r.relative_energy:.3f}",
                r.scope,
            )
        return t

    def figures(self, folder) -> list[Path]:
        folder = figure_folder(folder)
        path = folder / f"axc_{self.model}.png"
        rows = [r for r in self.rows if r.relative_energy is not None]
        if not rows:
            return []
        with saved_figure(path, figsize=(6.5, 4.5)) as (fig, ax):
            for tech in dict.fromkeys(r.technique for r in rows):
                sel = [r for r in rows if r.technique == tech]
                ax.scatter([r.relative_energy for r in sel], [100 * r.accuracy for r in sel], label=tech)
                for r in sel:
                    ax.annotate(r.setting, (r.relative_energy, 100 * r.accuracy), fontsize=6)
            ax.set_xlabel("energy relative to the exact setting (of what the technique approximates)")
            ax.set_ylabel("accuracy (%)")
            ax.set_title(f"AxC trade-offs: {self.model}")
            ax.legend(fontsize=7)
        return [path]


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the model's Linear and Conv layers for one input (``x[:1]``)."""
    macs = [0]

    def hook(module, args, out):
        if isinstance(module, nn.Linear):
            macs[0] += out.numel() * module.in_features
        else:
            k = math.prod(module.kernel_size) * module.in_channels // module.groups
            macs[0] += out.numel() * k

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))
    ]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return macs[0]


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 250) -> float:
    with torch.no_grad():
        right = sum(
            int((model(x[a : a + batch_size]).argmax(-1) == y[a : a + batch_size]).sum())
            for a in range(0, len(x), batch_size)
        )
    return right / len(x)


class _Threshold:
    """Forward pre-hook: inputs below ``threshold`` x the batch's largest magnitude set to 0 (picklable)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def __call__(self, module, args):
        x = args[0]
        keep = x.abs() >= self.threshold * x.detach().abs().amax()
        return (x * keep,) + tuple(args[1:])


class Skipping(ChipSetup):
    """A ``ChipSetup``: every crossbar layer's inputs below ``threshold`` x the batch's largest magnitude read as 0
    (an ``input`` stage hook), as ``thresholded`` does to the float model."""

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)

    def _hook(self, tile, x, info):
        return x * (x.abs() >= self.threshold * x.abs().amax())

    def before_calibration(self, chip: nn.Module, seed: int) -> None:
        for layer in cim_layers(chip):
            layer.register_stage_hook("input", self._hook)

    def describe(self) -> dict:
        return {"setup": "Skipping", "threshold": self.threshold}


def thresholded(model: nn.Module, threshold: float) -> nn.Module:
    """A copy of ``model`` whose Linear / Conv layers see inputs below ``threshold`` x the batch's largest
    magnitude as 0 (computation skipping: those rows are not read)."""
    import copy

    out = copy.deepcopy(model)
    for m in out.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            m.register_forward_pre_hook(_Threshold(threshold))
    return out


def _check_list(values, name: str) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InputError(f"axc_table: {name} must be a list, got {short_repr(values)}")
    return list(values)


def axc_table(
    model: nn.Module,
    x,
    y,
    spec: HardwareSpec | str,
    *,
    name: str = "model",
    calibration=None,
    multipliers: Sequence[str] = ("truncate-2", "truncate-4", "mitchell", "drum-6", "drum-4"),
    adders: Sequence[str] = ("loa-4", "loa-8", "truncate-4"),
    digital_multipliers: Sequence[str] = (),
    precision: Mapping[str, Sequence[int]] | None = None,
    skipping: Sequence[float] = (0.05, 0.1, 0.2),
    memory: Sequence[float] = (1e-4, 1e-3, 1e-2),
    chips: int = 1,
    seed: int = 0,
    batch_size: int = 250,
) -> AxcResult:
    """The AxC table of ``model`` on inputs ``x`` with labels ``y`` (see the module docstring for each technique
    and what its energy covers). ``spec``: the CIM chip the chip-level rows run on (simulated over ``chips``
    chips, calibrated on ``calibration`` when given); ``precision``: spec field -> lowered values (default: the
    spec's ADC bits less 1 and 2, its input bits less 2 and 4); an empty list skips a technique."""
    from ..cost.components import primitive_energies_pj
    from ..cost.estimate import estimate
    from ..ops import approx
    from ..sim.evaluate import simulate
    from ..workload import Workload
    from .faults import Faults

    t0 = time.perf_counter()
    if isinstance(spec, str):
        spec = HardwareSpec.preset(spec)
    if not isinstance(model, nn.Module):
        raise InputError(f"axc_table: model must be a torch.nn.Module, got {type(model).__name__}")
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y)
    model = model.eval()
    if precision is None:  # one and two bits fewer on the ADC, two and four fewer on the DAC
        p = spec.periphery
        precision = {
            "periphery.adc_bits": [b for b in (p.adc_bits - 1, p.adc_bits - 2) if b >= 2] if p.adc_bits else [],
            "periphery.input_bits": [b for b in (p.input_bits - 2, p.input_bits - 4) if b >= 2] if p.input_bits else [],
        }
    if not isinstance(precision, Mapping) or any(k not in PRECISION_FIELDS for k in precision):
        raise InputError(
            f"axc_table: precision must map spec fields ({', '.join(PRECISION_FIELDS)}) to lists of "
            f"bits, got {short_repr(precision)}"
        )
    rows: list[AxcRow] = []
    float_acc = _accuracy(model, x, y, batch_size)

    # -- approximate arithmetic on an 8-bit digital datapath ------------------------------------------------------
    macs = count_macs(model, x)
    e = primitive_energies_pj(8)
    mul_pj, acc_pj = float(e["mul"]), float(e["mac"] - e["mul"])
    scope = f"{macs:,} MACs at 8 bits (Horowitz 45 nm: multiply {mul_pj:.3g} pJ, 16-bit accumulate {acc_pj:.3g} pJ)"
    exact_j = macs * (mul_pj + acc_pj) * 1e-12
    # the digital datapath's input ranges come from the calibration inputs (the test inputs when none are given)
    cal = x[:batch_size] if calibration is None else torch.as_tensor(calibration, dtype=torch.float32)[:batch_size]
    digital_exact = approx.approximate(model, "exact", "exact", 8)
    approx.calibrate(digital_exact, cal)
    rows.append(
        AxcRow(
            "multiplier",
            TECHNIQUES["multiplier"],
            "exact 8-bit",
            _accuracy(digital_exact, x, y, batch_size),
            0.0,
            exact_j,
            1.0,
            "definition",
            scope,
        )
    )
    for kind, names in (
        ("multiplier", _check_list(multipliers, "multipliers")),
        ("adder", _check_list(adders, "adders")),
    ):
        for n in names:
            mul, add = (n, "exact") if kind == "multiplier" else ("exact", n)
            m = approx.approximate(model, mul, add, 8)
            approx.calibrate(m, cal)
            entry = approx.relative_energy(n, 8, kind)
            j = (
                macs
                * (
                    mul_pj * (entry.relative if kind == "multiplier" else 1.0)
                    + acc_pj * (entry.relative if kind == "adder" else 1.0)
                )
                * 1e-12
            )
            rows.append(
                AxcRow(
                    kind,
                    TECHNIQUES[kind],
                    n,
                    _accuracy(m, x, y, batch_size),
                    0.0,
                    j,
                    j / exact_j,
                    ("ESTIMATE: " if entry.estimate else "") + entry.source,
                    scope,
                )
            )

    # -- on the chip ------------------------------------------------------------------------------------------------
    def on_chip(s: HardwareSpec, setup=None) -> tuple[float, float]:
        r = simulate(
            model, s, x, y, chips=chips, seed=seed, calibration=calibration, batch_size=batch_size, setup=setup
        )
        return r.mean_accuracy, r.std_accuracy

    wl_shape = (1, *x.shape[1:])

    def chip_energy(s: HardwareSpec, m: nn.Module = model, activity: bool = False) -> float:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if activity:
                # estimate takes a torch model with activity_from (its signature says Workload only)
                return float(estimate(m, s, activity_from=[x[:batch_size]]).total.energy_j)  # type: ignore[arg-type]
            return float(estimate(Workload.from_torch(m, wl_shape, unmapped="warn"), s).total.energy_j)

    base_acc, base_std = on_chip(spec)
    base_j = chip_energy(spec)
    chip_scope = f"whole inference on {spec.name} (cimkit.estimate)"
    rows.append(
        AxcRow(
            "precision",
            TECHNIQUES["precision"],
            f"{spec.name} as given",
            base_acc,
            base_std,
            base_j,
            1.0,
            "cimkit.estimate",
            chip_scope,
        )
    )
    for n in _check_list(digital_multipliers, "digital_multipliers"):
        s = spec.replace(**{"digital.multiplier": n})
        acc, std = on_chip(s)
        j = chip_energy(s)
        entry = approx.relative_energy(n, 8, "multiplier")
        rows.append(
            AxcRow(
                "digital_multiplier",
                TECHNIQUES["digital_multiplier"],
                n,
                acc,
                std,
                j,
                j / base_j,
                "cimkit.estimate; multiplier " + ("ESTIMATE: " if entry.estimate else "") + entry.source,
                chip_scope,
            )
        )
    for fld, values in precision.items():
        for v in _check_list(values, f"precision[{fld}]"):
            s = spec.replace(**{fld: v})
            acc, std = on_chip(s)
            j = chip_energy(s)
            rows.append(
                AxcRow(
                    "precision",
                    TECHNIQUES["precision"],
                    f"{fld}={v}",
                    acc,
                    std,
                    j,
                    j / base_j,
                    "cimkit.estimate",
                    chip_scope,
                )
            )
    skips = _check_list(skipping, "skipping")
    if skips:
        dense_j = chip_energy(spec, model, activity=True)
        for th in skips:
            m = thresholded(model, th)
            acc, std = on_chip(spec, setup=Skipping(th))
            j = chip_energy(spec, m, activity=True)
            rows.append(
                AxcRow(
                    "skipping",
                    TECHNIQUES["skipping"],
                    f"threshold={th:g}",
                    acc,
                    std,
                    j,
                    j / dense_j,
                    "cimkit.estimate at the measured input activity",
                    chip_scope,
                )
            )
    for rate in _check_list(memory, "memory"):
        acc, std = on_chip(spec, setup=Faults(buffer_bit_flip_rate=rate))
        rows.append(
            AxcRow(
                "memory",
                TECHNIQUES["memory"],
                f"bit flips {rate:g}/bit",
                acc,
                std,
                None,
                None,
                "not priced: needs the buffer SRAM's bit-error-rate versus supply-voltage curve",
                "input buffers",
            )
        )
    return AxcResult(name, rows, float_acc, len(x), chips, spec.name, time.perf_counter() - t0)


__all__ = ["TECHNIQUES", "AxcRow", "AxcResult", "Skipping", "axc_table", "count_macs", "thresholded"]
