"""The results of the crossbar cost model: ``Report`` (one workload on one chip) and ``ManyReport``
(one workload on many chips, from ``estimate_many``)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import atomic_path, atomic_write, check_output_path, figure_suffixes, json_safe, strict_json
from .model import COMPONENTS

#: the per-layer columns of ``Report.layers`` and ``Report.to_csv``
LAYER_FIELDS = ("name", "kind", "arrays", "latency_s", *(f"energy_{c}_j" for c in COMPONENTS), "energy_j")
#: the chip figures of a Report that are undefined (NaN) when the design is infeasible
METRICS = ("area_mm2", "energy_j", "latency_s", "period_s")


def _ratio(num: float, den: float) -> float:
    """num / den, NaN where the denominator is undefined (NaN) or zero (an infeasible report)."""
    return num / den if math.isfinite(den) and den != 0 else math.nan


@dataclass
class Report:
    """Cost of one workload on one chip. Units: mm^2, J, s, operations (2 per MAC unless the NeuroSim
    convention was asked for).

    ``feasible`` False (with the ``reason``) when the chip cannot hold the workload: the chip figures are
    then NaN here and null in ``to_json``. ``unmapped`` names the workload's ops of kind "unmapped"
    (weights the cost model cannot map): they are priced as nothing, neither arrays nor energy nor ops."""

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
    unmapped: list[str] = field(default_factory=list)
    #: per unit of the chip (keys are unit names: "crossbar", "digital", ...): what it ran and its figures
    units: dict[str, dict] = field(default_factory=dict)
    #: cells rewritten per inference (dynamic matmuls on CIM arrays): writes per cell per inference, the
    #: inference rate assumed and the resulting device lifetime; empty when nothing is rewritten
    endurance: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return _ratio(1.0, self.period_s)

    @property
    def tops(self) -> float:
        return _ratio(self.ops, self.period_s) / 1e12

    @property
    def tops_per_w(self) -> float:
        return _ratio(self.ops, self.energy_j) / 1e12

    @property
    def tops_per_mm2(self) -> float:
        return _ratio(self.tops, self.area_mm2)

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
        """The report as strict JSON (undefined figures of an infeasible design are null, never NaN); written
        atomically to ``path`` if given."""
        data = {**self.summary(), "unmapped": list(self.unmapped), "area_breakdown_mm2": self.area_breakdown_mm2,
                "energy_breakdown_j": self.energy_breakdown_j, "latency_breakdown_s": self.latency_breakdown_s,
                "layers": self.layers}
        text = strict_json(data)
        if path is not None:
            atomic_write(path, text)
        return text

    def to_csv(self, path: str | Path) -> Path:
        """One row per layer with its energy per component (J) and latency (s), written atomically (only the
        header when the report has no layers)."""
        names = list(dict.fromkeys([*LAYER_FIELDS, *(k for layer in self.layers for k in layer)]))
        check_output_path(path, None, "CSV file")
        with atomic_path(path) as tmp:
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=names)
                writer.writeheader()
                writer.writerows(json_safe(self.layers))
        return Path(path)

    def table(self):
        from rich.table import Table

        def fmt(value: float, spec: str) -> str:
            return format(value, spec) if math.isfinite(value) else "n/a"

        t = Table(title=f"{self.workload} on {self.spec}" + ("" if self.feasible else f"  INFEASIBLE: {self.reason}"))
        t.add_column("metric")
        t.add_column("value", justify="right")
        for label, value in (("chip area", f"{fmt(self.area_mm2, '.2f')} mm^2"),
                             ("energy / inference", f"{fmt(self.energy_j * 1e6, '.2f')} uJ"),
                             ("latency / inference", f"{fmt(self.latency_s * 1e3, '.3f')} ms"),
                             ("throughput", f"{fmt(self.fps, '.1f')} FPS"), ("TOPS", fmt(self.tops, ".3f")),
                             ("TOPS/W", fmt(self.tops_per_w, ".2f")), ("TOPS/mm^2", fmt(self.tops_per_mm2, ".4f")),
                             ("EDP", f"{fmt(self.edp, '.3e')} J s"),
                             ("arrays (tiles)", f"{self.arrays} ({self.tiles})"),
                             ("utilization", fmt(self.utilization, ".0%"))):
            t.add_row(label, value)
        for comp in COMPONENTS:
            t.add_row(f"  {comp}", f"{self.area_breakdown_mm2.get(comp, 0):.2f} mm^2 | "
                      f"{self.energy_breakdown_j.get(comp, 0) * 1e6:.2f} uJ | {self.latency_breakdown_s.get(comp, 0) * 1e3:.3f} ms")
        for extra in ("leakage", "layout"):
            t.add_row(f"  {extra}", f"{self.energy_breakdown_j.get(extra, 0) * 1e6:.2f} uJ")
        if self.unmapped:
            shown = ", ".join(self.unmapped[:6]) + (f" and {len(self.unmapped) - 6} more" if len(self.unmapped) > 6 else "")
            t.caption = (f"NOT PRICED: {len(self.unmapped)} unmapped op(s) ({shown}) hold weights the cost model cannot "
                         "map; the figures above leave them out")
        return t

    def plot_energy(self, path: str | Path) -> Path:
        """Stacked bars of energy per layer and component, saved atomically (the suffix picks the format)."""
        path = check_output_path(path, figure_suffixes(), "figure")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        layers = [layer for layer in self.layers if layer["energy_j"] > 0]
        fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(layers)), 3.8), dpi=120)
        try:
            bottom = np.zeros(len(layers))
            for comp in COMPONENTS:
                vals = np.array([layer[f"energy_{comp}_j"] for layer in layers]) * 1e6
                ax.bar(range(len(layers)), vals, bottom=bottom, label=comp)
                bottom += vals
            ax.set_xticks(range(len(layers)), [layer["name"] for layer in layers], rotation=90, fontsize=7)
            ax.set_ylabel("energy per inference (uJ)")
            title = (f"{self.workload} on {self.spec}: {self.energy_j * 1e6:.1f} uJ, {self.tops_per_w:.1f} TOPS/W"
                     if self.feasible else f"{self.workload} on {self.spec}: INFEASIBLE ({self.reason})")
            ax.set_title(title, fontsize=9 if self.feasible else 7)
            if layers:
                ax.legend(fontsize=7)
            fig.tight_layout()
            with atomic_path(path) as tmp:
                fig.savefig(tmp)
        finally:
            plt.close(fig)
        return path


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


