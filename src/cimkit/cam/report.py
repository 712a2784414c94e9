"""The result of pricing a tree ensemble on analog-CAM arrays (``cimkit.cam.estimate``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..io import json_safe
from ..report import Result, figure_folder, saved_figure


@dataclass
class CamReport(Result):
    """Cost of one decision (one input sample through the whole ensemble), averaged over the inputs given.

    Units: J per decision, s, decisions per second, mm^2. ``energy_j`` and ``area_mm2`` are totals; their
    parts by component are ``energy_breakdown_j`` and ``area_breakdown_mm2`` (the names ``Report`` uses).

    The result protocol (``cimkit.report.Result``): ``to_dict`` / ``to_json`` (every field, plus the older
    names ``energy_per_decision_j`` and ``total_area_mm2`` of the totals), ``to_csv`` (one row per
    component), ``table``, ``figures`` (energy per component)."""

    scheme: str
    energy_j: float  # per decision, all components
    energy_breakdown_j: dict[str, float]  # per decision, by component
    latency_s: float
    throughput_per_s: float  # decisions per second, pipelined
    area_mm2: float
    area_breakdown_mm2: dict[str, float]
    arrays: int  # arrays that hold the program
    row_blocks: int
    feature_blocks: int
    rows: int  # program rows (root-to-leaf paths)
    sparsity: float  # fraction of don't-care cells among the program's cells
    evaluated_fraction: list[float] = field(default_factory=list)  # rows searched in each segment
    cell_evaluations: float = 0.0  # bound pairs (one per row and feature) searched per decision

    @property
    def energy_per_decision_j(self) -> float:
        """``energy_j`` (the older name)."""
        return self.energy_j

    @property
    def total_area_mm2(self) -> float:
        """``area_mm2`` (the older name)."""
        return self.area_mm2

    def summary(self) -> dict:
        """Every field, and the totals under their older names too (``energy_per_decision_j``,
        ``total_area_mm2``), which JSON written before kept."""
        return {**asdict(self), "energy_per_decision_j": self.energy_j, "total_area_mm2": self.area_mm2}

    def to_dict(self) -> dict:
        return json_safe({"result": type(self).__name__, **self.summary()})

    def components(self) -> list[str]:
        """The components of the breakdowns, energy's first."""
        return list(dict.fromkeys([*self.energy_breakdown_j, *self.area_breakdown_mm2]))

    def records(self) -> list[dict]:
        """One row per component: its energy per decision (J) and area (mm^2)."""
        return [
            {
                "scheme": self.scheme,
                "component": c,
                "energy_j": self.energy_breakdown_j.get(c, 0.0),
                "area_mm2": self.area_breakdown_mm2.get(c, 0.0),
            }
            for c in self.components()
        ]

    def csv_columns(self) -> tuple[str, ...]:
        return ("scheme", "component", "energy_j", "area_mm2")

    def table(self):
        from rich.table import Table

        t = Table(
            title=f"analog CAM, scheme {self.scheme}: {self.rows} rows on {self.arrays} arrays, "
            f"sparsity {self.sparsity:.0%}"
        )
        for col in ("component", "energy / decision", "area"):
            t.add_column(col, justify="right" if col != "component" else "left")
        for c in self.components():
            t.add_row(
                c,
                f"{self.energy_breakdown_j.get(c, 0.0) * 1e9:.4g} nJ",
                f"{self.area_breakdown_mm2.get(c, 0.0):.4g} mm^2",
            )
        t.add_row("total", f"{self.energy_j * 1e9:.4g} nJ", f"{self.area_mm2:.4g} mm^2")
        t.caption = f"latency {self.latency_s * 1e9:.0f} ns, {self.throughput_per_s:.3g} decisions/s"
        return t

    def figures(self, folder: str | Path) -> list[Path]:
        """``cam_energy_<scheme>.png``: energy per decision by component."""
        path = figure_folder(folder) / f"cam_energy_{''.join(ch if ch.isalnum() else '_' for ch in self.scheme)}.png"
        comps = self.components()
        with saved_figure(path, figsize=(6, 3.4)) as (fig, ax):
            ax.bar(comps, [self.energy_breakdown_j.get(c, 0.0) * 1e9 for c in comps])
            ax.set_ylabel("energy per decision (nJ)")
            ax.set_title(f"scheme {self.scheme}: {self.energy_j * 1e9:.3g} nJ per decision", fontsize=9)
            ax.tick_params(axis="x", rotation=30)
        return [path]
