"""``cimkit.sim.summary(cim_model)``: what a converted model holds on the chip, one record per crossbar layer
(its weight, the arrays and slices it takes, how its inputs are driven and its outputs converted, whether its
ranges are calibrated), as a ``ChipSummary`` (a ``cimkit.report.Result``: ``to_dict``, ``records``,
``to_pandas``, ``table``, ``figures``, a short ``repr`` and an HTML summary for Jupyter)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import json_safe
from ..report.protocol import Result, figure_folder, saved_figure
from .convert import required_cim_layers
from .layers import CIMLayer

#: the columns of a ChipSummary's records (its CSV and DataFrame), in this order
LAYER_COLUMNS = (
    "name",
    "module",
    "type",
    "weight_shape",
    "groups",
    "in_features",
    "out_features",
    "arrays",
    "array_rows",
    "array_cols",
    "row_tiles",
    "col_tiles",
    "slices",
    "bits_per_cell",
    "differential",
    "utilization",
    "input_bits",
    "input_mode",
    "input_passes",
    "adc_bits",
    "adc_range",
    "dynamic",
    "calibrated",
    "backward_mode",
)


def calibrated(layer: CIMLayer) -> bool:
    """Whether ``layer``'s ranges are set from data: its input (DAC) range and, where the spec calibrates
    the ADCs (``periphery.adc_range: calibrated``), every ADC range."""
    tile = layer.tile
    if not bool(torch.isfinite(tile.input_range).all()):
        return False
    p = layer.spec.periphery
    if p.adc_range == "calibrated" and p.adc_bits is not None:
        return bool(torch.isfinite(tile.adc_full_scale).all())
    return True


def layer_record(layer: CIMLayer, module: str = "") -> dict[str, Any]:
    """One crossbar layer as a flat record (``LAYER_COLUMNS``); ``module`` is its path in the model."""
    m, p = layer.mapping, layer.spec.periphery
    return {
        "name": layer.layer_name,
        "module": module,
        "type": type(layer).__name__,
        "weight_shape": "x".join(str(int(d)) for d in layer.weight.shape),
        "groups": int(m.groups),
        "in_features": int(m.in_features),
        "out_features": int(m.out_features),
        "arrays": int(m.arrays),
        "array_rows": int(m.rows),
        "array_cols": int(m.cols),
        "row_tiles": int(m.row_tiles),
        "col_tiles": int(m.col_tiles),
        "slices": int(m.slices),
        "bits_per_cell": int(m.bits_per_cell),
        "differential": bool(m.differential),
        "utilization": float(m.utilization),
        "input_bits": p.input_bits,
        "input_mode": str(layer.input_mode),
        "input_passes": int(m.input_passes),
        "adc_bits": p.adc_bits,
        "adc_range": str(p.adc_range),
        "dynamic": bool(layer.writes_per_input),
        "calibrated": calibrated(layer),
        "backward_mode": str(layer.backward_mode),
    }


@dataclass
class ChipSummary(Result):
    """The crossbar layers of a converted model (``cimkit.sim.summary``): one record per layer, and what
    ``convert`` left digital.

    The result protocol: ``to_dict`` (the model, spec, seed, totals: ``crossbar_layers``, ``arrays``,
    ``utilization`` of the arrays' cells, ``calibrated_layers``; the ``layers`` records; the modules left
    digital), ``records`` / ``to_csv`` / ``to_pandas`` (one row per layer, ``LAYER_COLUMNS``), ``table``,
    ``figures`` (arrays per layer)."""

    model: str
    spec: str
    seed: int | None
    layers: list[dict[str, Any]] = field(default_factory=list)
    #: modules computed digitally (name (type)), spiking neurons on the neuron unit, layers with no mapping
    digital: list[str] = field(default_factory=list)
    neurons: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)

    @property
    def arrays(self) -> int:
        return sum(int(r["arrays"]) for r in self.layers)

    @property
    def utilization(self) -> float:
        """Fraction of the cells of all the layers' arrays that hold a weight (NaN without arrays)."""
        cells = sum(r["arrays"] * r["array_rows"] * r["array_cols"] for r in self.layers)
        used = sum(r["utilization"] * r["arrays"] * r["array_rows"] * r["array_cols"] for r in self.layers)
        return used / cells if cells else math.nan

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "result": type(self).__name__,
                "model": self.model,
                "spec": self.spec,
                "seed": self.seed,
                "crossbar_layers": len(self.layers),
                "arrays": self.arrays,
                "utilization": self.utilization,
                "calibrated_layers": sum(bool(r["calibrated"]) for r in self.layers),
                "layers": [dict(r) for r in self.layers],
                "digital": list(self.digital),
                "neurons": list(self.neurons),
                "unsupported": list(self.unsupported),
            }
        )

    def records(self) -> list[dict[str, Any]]:
        """One row per crossbar layer (``LAYER_COLUMNS``)."""
        return [dict(r) for r in self.layers]

    def csv_columns(self) -> tuple[str, ...]:
        return LAYER_COLUMNS

    def headline(self) -> dict[str, Any]:
        data = self.to_dict()
        keys = ("model", "spec", "seed", "crossbar_layers", "arrays", "utilization", "calibrated_layers")
        out = {k: data[k] for k in keys if data[k] is not None}
        out.update({k: data[k] for k in ("neurons", "digital", "unsupported") if data[k]})
        return out

    def table(self):
        from rich.table import Table

        t = Table(title=f"{self.model} on {self.spec}: {len(self.layers)} crossbar layer(s), {self.arrays} arrays")
        for col in ("layer", "type", "weight", "arrays", "slices", "input", "ADC", "util.", "calibrated"):
            t.add_column(col, justify="left" if col in ("layer", "type") else "right")
        for r in self.layers:
            bits = "analog" if r["input_bits"] is None else f"{r['input_bits']} b"
            adc = "ideal" if r["adc_bits"] is None else f"{r['adc_bits']} b {r['adc_range']}"
            t.add_row(
                str(r["name"]),
                str(r["type"]),
                str(r["weight_shape"]),
                f"{r['arrays']} ({r['array_rows']}x{r['array_cols']})",
                str(r["slices"]),
                f"{bits}, {r['input_passes']} pass(es)",
                adc,
                f"{r['utilization']:.0%}",
                "yes" if r["calibrated"] else "no",
            )
        if self.unsupported:
            t.caption = f"KEPT DIGITAL (no crossbar mapping): {', '.join(self.unsupported)}"
        return t

    def figures(self, folder: str | Path) -> list[Path]:
        """``arrays_per_layer.png``: the arrays each crossbar layer takes (none without layers)."""
        if not self.layers:
            return []
        path = figure_folder(folder) / "arrays_per_layer.png"
        with saved_figure(path, figsize=(max(5.0, 0.4 * len(self.layers)), 3.5)) as (fig, ax):
            ax.bar(range(len(self.layers)), [r["arrays"] for r in self.layers])
            ax.set_xticks(range(len(self.layers)), [str(r["name"]) for r in self.layers], rotation=90, fontsize=7)
            ax.set_ylabel("arrays")
            ax.set_title(f"{self.model} on {self.spec}: {self.arrays} arrays", fontsize=9)
        return [path]


def summary(model: nn.Module) -> ChipSummary:
    """What the converted ``model`` (``cimkit.convert``) holds on the chip: a ``ChipSummary`` with one record
    per crossbar layer (shared layers once) and, from the conversion, the modules left digital. Raises
    ``InputError`` for a model that is not a module or has no crossbar layer."""
    required_cim_layers(model, "summary")
    found = [(path, m) for path, m in model.named_modules() if isinstance(m, CIMLayer)]
    conv = getattr(model, "cim_summary", None)
    spec = getattr(conv, "spec_name", None) or found[0][1].spec.name
    seed = getattr(conv, "seed", None)
    return ChipSummary(
        model=type(model).__name__,
        spec=str(spec),
        seed=None if seed is None else int(seed),
        layers=[layer_record(m, path) for path, m in found],
        digital=[f"{n} ({t})" for n, t in getattr(conv, "digital", [])],
        neurons=[f"{n} ({t})" for n, t in getattr(conv, "neurons", [])],
        unsupported=[f"{n} ({t})" for n, t in getattr(conv, "unsupported", [])],
    )


__all__ = ["ChipSummary", "summary", "layer_record", "calibrated", "LAYER_COLUMNS"]
