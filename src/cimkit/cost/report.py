"""The results of the crossbar cost model: ``Report`` (one workload on one chip) and ``ManyReport``
(one workload on many chips, from ``estimate_many``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import check_output_path, figure_suffixes, json_safe
from ..report import Result, figure_folder, saved_figure
from .model import COMPONENTS

#: the per-layer columns of ``Report.layers`` and ``Report.to_csv`` (a layer row may carry more: its
#: "unit", the energy of further components; the CSV places them beside these)
LAYER_FIELDS = ("name", "kind", "arrays", "latency_s", *(f"energy_{c}_j" for c in COMPONENTS), "energy_j")
_LAYER_ENERGY = re.compile(r"energy_(.+)_j")
#: the chip figures of a Report that are undefined (NaN) when the design is infeasible
METRICS = ("area_mm2", "energy_j", "latency_s", "period_s")


def _ratio(num: float, den: float) -> float:
    """num / den, NaN where the denominator is undefined (NaN) or zero (an infeasible report)."""
    return num / den if math.isfinite(den) and den != 0 else math.nan


def _layer_components(layers: list[dict]) -> list[str]:
    """The components whose per-layer energy ("energy_<component>_j") the layer rows carry, in order."""
    names = dict.fromkeys(COMPONENTS)
    for layer in layers:
        for key in layer:
            m = _LAYER_ENERGY.fullmatch(key)
            if m:
                names[m.group(1)] = None
    return [c for c in names if any(f"energy_{c}_j" in layer for layer in layers)] if layers else list(COMPONENTS)


def _si(value: float, unit: str) -> str:
    """``value`` with an SI prefix (``1.2 uJ``), or "n/a" when undefined."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return f"0 {unit}"
    for factor, prefix in (
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1, ""),
        (1e-3, "m"),
        (1e-6, "u"),
        (1e-9, "n"),
        (1e-12, "p"),
        (1e-15, "f"),
    ):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _duration(seconds: float) -> str:
    """A lifetime in the largest sensible unit (years, days, hours, s)."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "unlimited" if seconds == math.inf else "n/a"
    for size, unit in ((365.25 * 86400, "years"), (86400, "days"), (3600, "hours")):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return _si(seconds, "s")


def _unit_text(figures) -> str:
    """One line for a unit's entry of ``Report.units``: its figures with their units, lists joined."""
    if not isinstance(figures, dict):
        return str(figures)
    parts = []
    for key, value in figures.items():
        if isinstance(value, (list, tuple, set, frozenset)):
            parts.append(f"{key}: {', '.join(map(str, value)) or '-'}")
        elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            parts.append(f"{key}: {value}")
        elif key.endswith("_mm2"):
            parts.append(f"{key[:-4]} {value:.3g} mm^2" if math.isfinite(value) else f"{key[:-4]} n/a")
        elif key.endswith(("_j", "_s")):
            parts.append(f"{key[:-2]} {_si(float(value), key[-1].upper() if key.endswith('_j') else 's')}")
        else:
            parts.append(f"{key} {value:.4g}" if isinstance(value, (float, np.floating)) else f"{key} {value}")
    return "; ".join(parts)


@dataclass
class Report(Result):
    """Cost of one workload on one chip. Units: mm^2, J, s, operations (2 per MAC unless the NeuroSim
    convention was asked for).

    ``feasible`` False (with the ``reason``) when the chip cannot hold the workload: the chip figures are
    then NaN here and null in ``to_json``. ``unmapped`` names the workload's ops of kind "unmapped" (ops no
    rule of the op registry matches, with or without weights): they are priced as nothing, neither arrays
    nor energy nor ops.

    The result protocol (``cimkit.report.Result``): ``to_dict`` / ``to_json`` (the summary, the
    breakdowns, the layers, ``units``, ``endurance`` and ``unmapped``), ``to_csv`` (one row per layer),
    ``table``, ``figures`` (energy per layer and component)."""

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
    #: the chip's clock period (s): 1 / technology.clock_hz, or the read cycle where that is longer
    clock_period_s: float = math.nan

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

    def by_kind(self) -> dict[str, dict[str, float]]:
        """Per op kind (the op registry's: "linear" and "conv" are the static matmuls, "matmul" the dynamic
        ones, then "softmax", "norm", "act", "eltwise", "pool", "embedding"), summed over its layers: ``ops``
        (layers), ``energy_j`` and its ``data_movement_j`` part (buffers and interconnect), ``latency_s``;
        plus "other" for the energy no layer carries (leakage, layout wiring). Energies sum to ``energy_j``."""
        out: dict[str, dict[str, float]] = {}
        for layer in self.layers:
            row = out.setdefault(
                str(layer.get("kind", "")), {"ops": 0.0, "energy_j": 0.0, "data_movement_j": 0.0, "latency_s": 0.0}
            )
            row["ops"] += 1
            row["energy_j"] += float(layer.get("energy_j", 0.0))
            row["data_movement_j"] += float(layer.get("energy_buffer_j", 0.0)) + float(
                layer.get("energy_interconnect_j", 0.0)
            )
            row["latency_s"] += float(layer.get("latency_s", 0.0))
        rest = self.energy_j - sum(r["energy_j"] for r in out.values())
        if math.isfinite(rest) and abs(rest) > 1e-9 * max(abs(self.energy_j), 1e-30):
            out["other"] = {"ops": 0.0, "energy_j": rest, "data_movement_j": 0.0, "latency_s": 0.0}
        return out

    def summary(self) -> dict:
        return {
            "workload": self.workload,
            "spec": self.spec,
            "feasible": self.feasible,
            "reason": self.reason,
            "area_mm2": self.area_mm2,
            "energy_j": self.energy_j,
            "latency_s": self.latency_s,
            "period_s": self.period_s,
            "fps": self.fps,
            "tops": self.tops,
            "tops_per_w": self.tops_per_w,
            "tops_per_mm2": self.tops_per_mm2,
            "edp_js": self.edp,
            "ops": self.ops,
            "arrays": self.arrays,
            "tiles": self.tiles,
            "utilization": self.utilization,
        }

    def to_dict(self) -> dict:
        """The summary, ``unmapped``, the breakdowns by component, the layer rows, ``units`` and ``endurance``,
        JSON-safe (undefined figures of an infeasible design are None)."""
        return json_safe(
            {
                "result": type(self).__name__,
                **self.summary(),
                "unmapped": list(self.unmapped),
                "area_breakdown_mm2": self.area_breakdown_mm2,
                "energy_breakdown_j": self.energy_breakdown_j,
                "latency_breakdown_s": self.latency_breakdown_s,
                "layers": self.layers,
                "units": self.units,
                "endurance": self.endurance,
                "by_kind": self.by_kind(),
                "clock_period_s": self.clock_period_s,
            }
        )

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as strict JSON (undefined figures of an infeasible design are null, never NaN); written
        atomically to ``path`` if given."""
        return super().to_json(path)

    def records(self) -> list[dict]:
        """One row per layer (``layers``)."""
        return list(self.layers)

    def csv_columns(self) -> tuple[str, ...]:
        """``LAYER_FIELDS``, with "unit" after "kind" and further components' energy before "energy_j" when
        the layers carry them."""
        cols = list(LAYER_FIELDS)
        if any("unit" in layer for layer in self.layers):
            cols.insert(cols.index("kind") + 1, "unit")
        extra = [f"energy_{c}_j" for c in _layer_components(self.layers) if f"energy_{c}_j" not in cols]
        at = cols.index("energy_j")
        return tuple(cols[:at] + extra + cols[at:])

    def to_csv(self, path: str | Path) -> Path:
        """One row per layer with its energy per component (J) and latency (s), written atomically (only the
        header when the report has no layers)."""
        return super().to_csv(path)

    def table(self):
        from rich.table import Table

        def fmt(value: float, spec: str) -> str:
            return format(value, spec) if math.isfinite(value) else "n/a"

        t = Table(title=f"{self.workload} on {self.spec}" + ("" if self.feasible else f"  INFEASIBLE: {self.reason}"))
        t.add_column("metric")
        t.add_column("value", justify="right")
        for label, value in (
            ("chip area", f"{fmt(self.area_mm2, '.2f')} mm^2"),
            ("energy / inference", f"{fmt(self.energy_j * 1e6, '.2f')} uJ"),
            ("latency / inference", f"{fmt(self.latency_s * 1e3, '.3f')} ms"),
            ("throughput", f"{fmt(self.fps, '.1f')} FPS"),
            ("TOPS", fmt(self.tops, ".3f")),
            ("TOPS/W", fmt(self.tops_per_w, ".2f")),
            ("TOPS/mm^2", fmt(self.tops_per_mm2, ".4f")),
            ("EDP", f"{fmt(self.edp, '.3e')} J s"),
            ("arrays (tiles)", f"{self.arrays} ({self.tiles})"),
            ("utilization", fmt(self.utilization, ".0%")),
        ):
            t.add_row(label, value)
        extras = ("leakage", "layout")
        comps = [
            c
            for c in dict.fromkeys(
                [*COMPONENTS, *self.area_breakdown_mm2, *self.energy_breakdown_j, *self.latency_breakdown_s]
            )
            if c not in extras
        ]
        for comp in comps:
            t.add_row(
                f"  {comp}",
                f"{self.area_breakdown_mm2.get(comp, 0):.2f} mm^2 | "
                f"{self.energy_breakdown_j.get(comp, 0) * 1e6:.2f} uJ | {self.latency_breakdown_s.get(comp, 0) * 1e3:.3f} ms",
            )
        for extra in extras:
            t.add_row(f"  {extra}", f"{self.energy_breakdown_j.get(extra, 0) * 1e6:.2f} uJ")
        for unit, figures in self.units.items():
            t.add_row(f"unit {unit}", _unit_text(figures))
        kinds = self.by_kind()
        if self.feasible and len(kinds) > 1:
            for kind, row in sorted(kinds.items(), key=lambda kv: -kv[1]["energy_j"]):
                share = _ratio(row["energy_j"], self.energy_j)
                moved = _ratio(row["data_movement_j"], row["energy_j"]) if row["energy_j"] else 0.0
                t.add_row(
                    f"kind {kind}",
                    f"{int(row['ops'])} ops; {row['energy_j'] * 1e6:.2f} uJ ({share:.0%}, "
                    f"{moved:.0%} data movement); {row['latency_s'] * 1e3:.3f} ms",
                )
        if self.endurance:
            e = self.endurance
            t.add_row("cell writes / inference", fmt(float(e.get("writes_per_cell_per_inference", math.nan)), ".3g"))
            rate = float(e.get("inferences_per_s", math.nan))
            t.add_row(
                "device lifetime",
                f"{_duration(float(e.get('lifetime_s', math.nan)))} at {fmt(rate, '.3g')} inferences/s",
            )
        if self.unmapped:
            shown = ", ".join(self.unmapped[:6]) + (
                f" and {len(self.unmapped) - 6} more" if len(self.unmapped) > 6 else ""
            )
            t.caption = (
                f"NOT PRICED: {len(self.unmapped)} unmapped op(s) ({shown}) that no op rule matches; the "
                "figures above leave them out"
            )
        return t

    def figures(self, folder: str | Path) -> list[Path]:
        """``energy_per_layer.png``: stacked bars of energy per layer and component (``plot_energy``)."""
        return [self.plot_energy(figure_folder(folder) / "energy_per_layer.png")]

    def plot_energy(self, path: str | Path) -> Path:
        """Stacked bars of energy per layer and component, saved atomically (the suffix picks the format)."""
        path = check_output_path(path, figure_suffixes(), "figure")
        layers = [layer for layer in self.layers if layer.get("energy_j", 0) > 0]
        with saved_figure(path, figsize=(max(6, 0.35 * len(layers)), 3.8)) as (fig, ax):
            bottom = np.zeros(len(layers))
            for comp in _layer_components(layers):
                vals = np.array([layer.get(f"energy_{comp}_j", 0.0) for layer in layers]) * 1e6
                ax.bar(range(len(layers)), vals, bottom=bottom, label=comp)
                bottom += vals
            ax.set_xticks(range(len(layers)), [layer["name"] for layer in layers], rotation=90, fontsize=7)
            ax.set_ylabel("energy per inference (uJ)")
            title = (
                f"{self.workload} on {self.spec}: {self.energy_j * 1e6:.1f} uJ, {self.tops_per_w:.1f} TOPS/W"
                if self.feasible
                else f"{self.workload} on {self.spec}: INFEASIBLE ({self.reason})"
            )
            ax.set_title(title, fontsize=9 if self.feasible else 7)
            if layers:
                ax.legend(fontsize=7)
        return path


def _per_config(value, n: int) -> np.ndarray | None:
    """A raw per-configuration (or per-configuration-and-layer) figure of ``estimate_many`` as (n,) totals;
    None when it has another shape."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 0 or arr.shape[0] != n:
        return None
    return arr.reshape(n, -1).sum(axis=1)


@dataclass
class ManyReport(Result):
    """``estimate_many`` results: one array entry per spec (NaN where infeasible). ``specs`` names them when
    known.

    The result protocol: ``to_dict`` gives the standard names with one value per configuration (lists,
    null where infeasible) and the breakdowns by component as lists; ``to_csv`` one row per configuration;
    ``table`` a summary and the best configurations; ``figures`` energy against area."""

    feasible: np.ndarray
    area_mm2: np.ndarray
    energy_j: np.ndarray
    latency_s: np.ndarray
    period_s: np.ndarray
    ops: np.ndarray
    raw: dict
    specs: list[str] = field(default_factory=list)

    @property
    def tops_per_w(self) -> np.ndarray:
        return self.ops / self.energy_j / 1e12

    @property
    def edp(self) -> np.ndarray:
        return self.energy_j * self.latency_s

    @property
    def configurations(self) -> int:
        """The number of configurations priced."""
        return len(np.atleast_1d(self.feasible))

    def breakdowns(self) -> dict[str, dict[str, np.ndarray]]:
        """Energy (J), area (mm^2) and latency (s) by component, one (n,) array each (summed over layers; NaN
        where infeasible), under the standard names; leakage and layout energy as ``Report`` has them."""
        n, raw = self.configurations, self.raw or {}
        ok = np.asarray(self.feasible, dtype=bool)
        out: dict[str, dict[str, np.ndarray]] = {}
        for name, key, extras in (
            ("energy_breakdown_j", "energy", (("leakage", "leakage_j"), ("layout", "layout_j"))),
            ("area_breakdown_mm2", "area", ()),
            ("latency_breakdown_s", "latency", ()),
        ):
            parts = {c: v for c, v in (raw.get(key) or {}).items()} if isinstance(raw.get(key), dict) else {}
            parts.update({c: raw[k] for c, k in extras if k in raw})
            out[name] = {}
            for comp, value in parts.items():
                total = _per_config(value, n)
                if total is not None:
                    out[name][str(comp)] = np.where(ok, total, np.nan)
        return out

    def _columns(self) -> dict[str, np.ndarray]:
        """The per-configuration figures, each (n,) (``ops`` is the same for every configuration)."""
        n = self.configurations
        with np.errstate(all="ignore"):
            cols = {
                "feasible": np.asarray(self.feasible, dtype=bool),
                "area_mm2": self.area_mm2,
                "energy_j": self.energy_j,
                "latency_s": self.latency_s,
                "period_s": self.period_s,
                "ops": self.ops,
                "tops_per_w": self.tops_per_w,
                "edp_js": self.edp,
            }
        return {k: np.broadcast_to(np.asarray(v), (n,)) for k, v in cols.items()}

    def to_dict(self) -> dict:
        """``configurations`` (the count), ``specs``, and each figure as a list over the configurations: the
        totals under the standard names, the breakdowns as {component: list}; null where infeasible."""
        data = {
            "result": type(self).__name__,
            "configurations": self.configurations,
            "specs": list(self.specs),
            **self._columns(),
            **self.breakdowns(),
        }
        return json_safe(data)

    def records(self) -> list[dict]:
        """One row per configuration: index, spec, the figures, then energy, area and latency by component
        (``energy_<component>_j``, ``area_<component>_mm2``, ``latency_<component>_s``)."""
        cols = self._columns()
        for name, parts in self.breakdowns().items():
            kind, unit = name.split("_breakdown_")
            cols.update({f"{kind}_{c}_{unit}": v for c, v in parts.items()})
        rows = []
        for i in range(self.configurations):
            row: dict[str, Any] = {"index": i}
            if self.specs:
                row["spec"] = self.specs[i]
            row.update({k: v[i].item() if isinstance(v[i], np.generic) else v[i] for k, v in cols.items()})
            rows.append(row)
        return rows

    def csv_columns(self) -> tuple[str, ...]:
        return ("index", *(("spec",) if self.specs else ()), *self._columns())

    def table(self, top: int = 10):
        """How many configurations are feasible, and the ``top`` of least energy."""
        from rich.table import Table

        ok = np.asarray(self.feasible, dtype=bool)
        t = Table(title=f"{self.configurations} configuration(s), {int(ok.sum())} feasible")
        for col in ("#", *(("spec",) if self.specs else ()), "area mm^2", "energy", "latency", "TOPS/W"):
            t.add_column(col, justify="right")
        energy = np.where(ok, self.energy_j, np.inf)
        for i in np.argsort(energy, kind="stable")[:top]:
            if not ok[i]:
                break
            t.add_row(
                str(i),
                *((self.specs[i],) if self.specs else ()),
                f"{self.area_mm2[i]:.3g}",
                _si(float(self.energy_j[i]), "J"),
                _si(float(self.latency_s[i]), "s"),
                f"{self.tops_per_w[i]:.3g}",
            )
        if not ok.all():
            t.caption = f"{int((~ok).sum())} infeasible configuration(s) (the weights do not fit) not shown"
        return t

    def figures(self, folder: str | Path) -> list[Path]:
        """``energy_vs_area.png``: energy per inference against chip area, one point per feasible configuration
        (empty when none is feasible)."""
        folder = figure_folder(folder)
        ok = np.asarray(self.feasible, dtype=bool)
        if not ok.any():
            return []
        path = folder / "energy_vs_area.png"
        with saved_figure(path, figsize=(5, 3.6)) as (fig, ax):
            area, energy = np.asarray(self.area_mm2)[ok], np.asarray(self.energy_j)[ok]
            ax.scatter(area, energy * 1e6, s=6, alpha=0.5)
            ax.set_xlabel("chip area (mm^2)")
            ax.set_ylabel("energy per inference (uJ)")
            if area.max() > 10 * area.min():
                ax.set_xscale("log")
            if energy.max() > 10 * energy.min():
                ax.set_yscale("log")
            ax.set_title(f"{int(ok.sum())} feasible of {self.configurations} configurations", fontsize=9)
        return [path]
