"""``estimate`` (one spec -> Report) and ``estimate_many`` (thousands of specs in one numpy pass)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from ..errors import InputError, MappingError
from ..spec import HardwareSpec
from ..workload import Workload
from .model import COMPONENTS, evaluate

OpsConvention = Literal["macs", "neurosim"]


def _params(specs: Sequence[HardwareSpec]) -> dict[str, np.ndarray]:
    def col(fn, dtype=float):
        return np.array([fn(s) for s in specs], dtype=dtype)[:, None]

    for s in specs:
        if s.weight_bits is None or s.periphery.input_bits is None or s.periphery.adc_bits is None:
            raise InputError(f"spec '{s.name}': the cost model needs integer weight_bits, periphery.input_bits and "
                             "periphery.adc_bits (None means an ideal, unpriceable converter)")
    adc_types = {"mlsa": 0, "sar": 1, "survey": 2, "integrate_fire": 3}
    return {
        "node_nm": col(lambda s: s.technology.node_nm), "supply_v": col(lambda s: s.technology.supply_v),
        "clock_hz": col(lambda s: s.technology.clock_hz),
        "weight_bits": col(lambda s: s.weight_bits, int), "bits_per_cell": col(lambda s: s.device.bits_per_cell, int),
        "differential": col(lambda s: s.array.signed_mapping == "differential", int),
        "rows": col(lambda s: s.array.rows, int), "cols": col(lambda s: s.array.cols, int),
        "kernel_aligned": col(lambda s: s.array.conv_mapping == "kernel_aligned", bool),
        "bit_serial": col(lambda s: s.periphery.dac_mode == "bit_serial", bool),
        "pulse_train": col(lambda s: s.periphery.dac_mode == "pulse_train", bool),
        "layout_factor": col(lambda s: s.chip.layout_energy_factor),
        "input_bits": col(lambda s: s.periphery.input_bits, int), "adc_bits": col(lambda s: s.periphery.adc_bits, float),
        "columns_per_adc": col(lambda s: s.periphery.columns_per_adc, int),
        "read_latency_ns": col(lambda s: s.periphery.read_latency_ns),
        "adc_type": col(lambda s: adc_types[s.chip.adc_type], int),
        "arrays_per_pe": col(lambda s: s.chip.arrays_per_pe, int), "pes_per_tile": col(lambda s: s.chip.pes_per_tile, int),
        "tiles": col(lambda s: s.chip.tiles or 0, int), "duplication": col(lambda s: s.chip.weight_duplication, bool),
        "packed": col(lambda s: s.chip.tile_allocation == "packed", bool),
        "tile_buffer_kb": col(lambda s: s.chip.tile_buffer_kb), "global_buffer_kb": col(lambda s: s.chip.global_buffer_kb),
        "bus_bits": col(lambda s: s.chip.buffer_bus_bits), "htree": col(lambda s: s.chip.interconnect == "htree", bool),
        "pipelined": col(lambda s: s.chip.execution == "pipelined", bool),
        "activation_bits": col(lambda s: s.chip.activation_bits), "activity": col(lambda s: s.chip.input_activity),
        "g_min_us": col(lambda s: s.device.g_min_us), "g_max_us": col(lambda s: s.device.g_max_us),
        "read_v": col(lambda s: s.device.read_voltage_v), "cell_area_f2": col(lambda s: s.device.cell_area_f2),
    }


def _layers(workload: Workload, convention: OpsConvention) -> dict[str, np.ndarray]:
    if not isinstance(workload, Workload):
        raise InputError(f"expected a cimkit Workload, got {type(workload).__name__}")
    ops = workload.ops
    if not any(op.weighted for op in ops):
        raise MappingError(f"workload '{workload.name}' has no Linear or convolution layer to map onto arrays")
    for op in ops:
        if op.weighted and (op.in_features <= 0 or op.out_features <= 0 or op.groups <= 0):
            raise MappingError(f"layer '{op.name}' of shape {op.in_features} x {op.out_features} (groups {op.groups}) "
                               "cannot be mapped: sizes must be positive")

    def row(fn, dtype=float):
        return np.array([fn(op) for op in ops], dtype=dtype)[None, :]

    return {
        "weighted": row(lambda o: o.weighted, bool), "in_features": row(lambda o: max(o.in_features, 1), int),
        "out_features": row(lambda o: max(o.out_features, 1), int), "groups": row(lambda o: o.groups, int),
        "kernel": row(lambda o: o.kernel[0] * o.kernel[1], int), "vectors": row(lambda o: o.vectors),
        "in_elements": row(lambda o: o.input_elements), "out_elements": row(lambda o: o.output_elements),
        "elements": row(lambda o: o.elements if not o.weighted else 0), "weights": row(lambda o: o.weights),
        "dynamic_macs": row(lambda o: o.macs if o.kind == "matmul" else 0),
        "ops": row(lambda o: o.neurosim_ops() if convention == "neurosim" else 2 * o.macs),
        "names": np.array([op.name for op in ops]), "kinds": np.array([op.kind for op in ops]),
    }


@dataclass
class Report:
    """Cost of one workload on one chip. Units: mm^2, J, s, operations (2 per MAC unless the NeuroSim
    convention was asked for)."""

    workload: str
    spec: str
    feasible: bool
    reason: str
    area_mm2: float
    energy_j: float
    latency_s: float
    period_s: float
    ops: float
    area_breakdown_mm2: dict[str, float] = field(default_factory=dict)
    energy_breakdown_j: dict[str, float] = field(default_factory=dict)
    latency_breakdown_s: dict[str, float] = field(default_factory=dict)
    layers: list[dict] = field(default_factory=list)
    arrays: int = 0
    tiles: int = 0
    utilization: float = 0.0

    @property
    def fps(self) -> float:
        return 1.0 / self.period_s

    @property
    def tops(self) -> float:
        return self.ops / self.period_s / 1e12

    @property
    def tops_per_w(self) -> float:
        return self.ops / self.energy_j / 1e12

    @property
    def tops_per_mm2(self) -> float:
        return self.tops / self.area_mm2

    @property
    def edp(self) -> float:
        """Energy-delay product (J s)."""
        return self.energy_j * self.latency_s

    @property
    def total(self) -> "Report":
        return self

    def summary(self) -> dict:
        return {"workload": self.workload, "spec": self.spec, "feasible": self.feasible, "reason": self.reason,
                "area_mm2": self.area_mm2, "energy_j": self.energy_j, "latency_s": self.latency_s, "fps": self.fps,
                "tops": self.tops, "tops_per_w": self.tops_per_w, "tops_per_mm2": self.tops_per_mm2, "edp_js": self.edp,
                "ops": self.ops, "arrays": self.arrays, "tiles": self.tiles, "utilization": self.utilization}

    def to_json(self, path: str | Path | None = None) -> str:
        data = {**self.summary(), "area_breakdown_mm2": self.area_breakdown_mm2,
                "energy_breakdown_j": self.energy_breakdown_j, "latency_breakdown_s": self.latency_breakdown_s,
                "layers": self.layers}
        text = json.dumps(data, indent=1, default=float)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_csv(self, path: str | Path) -> None:
        """One row per layer with its energy per component (J) and latency (s)."""
        with Path(path).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(self.layers[0]))
            writer.writeheader()
            writer.writerows(self.layers)

    def table(self):
        from rich.table import Table

        t = Table(title=f"{self.workload} on {self.spec}" + ("" if self.feasible else f"  INFEASIBLE: {self.reason}"))
        t.add_column("metric")
        t.add_column("value", justify="right")
        for label, value in (("chip area", f"{self.area_mm2:.2f} mm^2"), ("energy / inference", f"{self.energy_j * 1e6:.2f} uJ"),
                             ("latency / inference", f"{self.latency_s * 1e3:.3f} ms"), ("throughput", f"{self.fps:.1f} FPS"),
                             ("TOPS", f"{self.tops:.3f}"), ("TOPS/W", f"{self.tops_per_w:.2f}"),
                             ("TOPS/mm^2", f"{self.tops_per_mm2:.4f}"), ("EDP", f"{self.edp:.3e} J s"),
                             ("arrays (tiles)", f"{self.arrays} ({self.tiles})"), ("utilization", f"{self.utilization:.0%}")):
            t.add_row(label, value)
        for comp in COMPONENTS:
            t.add_row(f"  {comp}", f"{self.area_breakdown_mm2.get(comp, 0):.2f} mm^2 | "
                      f"{self.energy_breakdown_j.get(comp, 0) * 1e6:.2f} uJ | {self.latency_breakdown_s.get(comp, 0) * 1e3:.3f} ms")
        for extra in ("leakage", "layout"):
            t.add_row(f"  {extra}", f"{self.energy_breakdown_j.get(extra, 0) * 1e6:.2f} uJ")
        return t

    def plot_energy(self, path: str | Path) -> Path:
        """Stacked bars of energy per layer and component."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        layers = [layer for layer in self.layers if layer["energy_j"] > 0]
        fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(layers)), 3.8), dpi=120)
        bottom = np.zeros(len(layers))
        for comp in COMPONENTS:
            vals = np.array([layer[f"energy_{comp}_j"] for layer in layers]) * 1e6
            ax.bar(range(len(layers)), vals, bottom=bottom, label=comp)
            bottom += vals
        ax.set_xticks(range(len(layers)), [layer["name"] for layer in layers], rotation=90, fontsize=7)
        ax.set_ylabel("energy per inference (uJ)")
        ax.set_title(f"{self.workload} on {self.spec}: {self.energy_j * 1e6:.1f} uJ, {self.tops_per_w:.1f} TOPS/W")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return Path(path)


@dataclass
class ManyReport:
    """``estimate_many`` results: one array entry per spec (NaN where infeasible)."""

    feasible: np.ndarray
    area_mm2: np.ndarray
    energy_j: np.ndarray
    latency_s: np.ndarray
    period_s: np.ndarray
    ops: np.ndarray
    raw: dict

    @property
    def tops_per_w(self) -> np.ndarray:
        return self.ops / self.energy_j / 1e12

    @property
    def edp(self) -> np.ndarray:
        return self.energy_j * self.latency_s


def estimate_many(workload: Workload, specs: Sequence[HardwareSpec], *, ops: OpsConvention = "macs") -> ManyReport:
    """Price ``workload`` on every spec in one vectorized pass. Infeasible designs (a fixed number of
    tiles that cannot hold the weights) get NaN metrics and ``feasible`` False."""
    if not specs:
        raise InputError("estimate_many needs at least one spec")
    out = evaluate(_params(specs), _layers(workload, ops))
    nan = lambda x: np.where(out["feasible"], x, np.nan)  # noqa: E731
    return ManyReport(out["feasible"], nan(out["area_mm2"]), nan(out["energy_j"]), nan(out["latency_s"]),
                      nan(out["period_s"]), out["ops"], out)


def estimate(workload: Workload, spec: HardwareSpec | str, *, ops: OpsConvention = "macs") -> Report:
    """Area, energy, latency and derived figures of ``workload`` on ``spec``, per layer and component."""
    if isinstance(spec, str):
        spec = HardwareSpec.preset(spec)
    lw = _layers(workload, ops)
    out = evaluate(_params([spec]), lw)
    feasible = bool(out["feasible"][0])
    reason = "" if feasible else (f"the weights need {int(out['tiles_needed'][0])} tiles but chip.tiles = "
                                  f"{int(out['tiles'][0])}")
    layers = []
    for i, name in enumerate(lw["names"]):
        row = {"name": str(name), "kind": str(lw["kinds"][i]),
               "arrays": int(out["layer_arrays"][0, i]), "latency_s": float(out["layer_latency_s"][0, i])}
        for comp in COMPONENTS:
            row[f"energy_{comp}_j"] = float(out["energy"][comp][0, i])
        row["energy_j"] = sum(row[f"energy_{c}_j"] for c in COMPONENTS)
        layers.append(row)
    val = (lambda x: float(x[0])) if feasible else (lambda x: math.nan)
    return Report(
        workload=workload.name, spec=spec.name, feasible=feasible, reason=reason, area_mm2=val(out["area_mm2"]),
        energy_j=val(out["energy_j"]), latency_s=val(out["latency_s"]), period_s=val(out["period_s"]),
        ops=float(out["ops"][0]),
        area_breakdown_mm2={c: float(out["area"][c][0]) for c in out["area"]},
        energy_breakdown_j={**{c: float(out["energy"][c][0].sum()) for c in COMPONENTS}, "leakage": float(out["leakage_j"][0]),
                            "layout": float(out["layout_j"][0])},
        latency_breakdown_s={c: float(out["latency"][c][0].sum()) for c in out["latency"]},
        layers=layers, arrays=int(out["arrays"][0]), tiles=int(out["tiles"][0]), utilization=float(out["utilization"][0]),
    )
