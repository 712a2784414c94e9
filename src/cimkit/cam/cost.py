"""Energy, latency and area of a tree ensemble searched on analog-CAM arrays.

Energy is counted event by event on real inputs, because what a search costs depends on which rows stay
enabled; the events are then priced by the cost components of unit "cam" in the shared registry
``cimkit.cost.components.COMPONENTS`` (``CamContext``, ``price``), so a component registered with unit
"cam" is a line of every CamReport. The built-in parts (constants in ``CamSpec``; the digital parts from
the shared digital primitives, scaled to the CAM's node):

- data lines: a DAC conversion plus charging the line along the array's rows, per driven column;
- match-line precharge, C V^2 per enabled row and evaluated segment, with C set by the segment's cells;
- search-line current through each evaluated cell's two memristor dividers, V^2 (G_lo + G_hi) t, with
  G set by the stored bound (X-TIME programs an open lower bound at HRS and an open upper bound at LRS);
- sense amplifiers, one per enabled row and segment; the match encoder, one per array search;
- leaf memory reads and the adders that aggregate the trees; the network on chip that broadcasts the
  input and gathers leaf values.

Schemes (``SCHEMES``) switch the optimizations of MonoSparse-CAM on one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cost import constants as cc
from ..cost.components import COMPONENTS as REGISTRY
from ..cost.components import Component, check_figure, primitive_energy_pj
from ..cost.tech import area_factor, energy_factor
from ..errors import InputError, SpecError, short_repr
from .layout import CamLayout, layout
from .program import CamProgram
from .report import CamReport
from .spec import CamSpec

#: the built-in energy lines of a CamReport (the CAM components registered below; "dacs" has area only)
COMPONENTS = ("data_lines", "match_lines", "cells", "sense", "encoder", "leaf_memory", "aggregation", "noc")
_CHUNK = 256  # samples per pass: (samples, row slots) masks stay in cache


@dataclass(frozen=True)
class Scheme:
    """How the arrays are searched."""

    name: str
    reorder: bool  # MonoSparse feature and row reordering (else model order, trees packed per array)
    disable_unused: bool  # rows that hold no path are not precharged (X-TIME's row enable)
    skip_dont_care: bool  # columns, segments and arrays holding only don't-care cells are neither driven,
    # searched nor stored
    sequential: bool  # segments of group_cols evaluated in turn; rows that mismatched are disabled
    gate_dont_care: bool  # don't-care cells draw no search-line current
    description: str = ""


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme(
            "raw", False, False, False, False, False, "every cell of every array, used or not, searched in parallel"
        ),
        Scheme(
            "xtime",
            False,
            True,
            False,
            False,
            False,
            "X-TIME-style: trees packed per array, unused rows disabled, "
            "every array searched in parallel, don't-care cells at HRS/LRS draw current",
        ),
        Scheme("xtime+skip", False, True, True, False, False, "xtime, skipping all-don't-care columns and arrays"),
        Scheme(
            "xtime+reorder+skip",
            True,
            True,
            True,
            False,
            False,
            "xtime+skip after MonoSparse feature and row reordering",
        ),
        Scheme(
            "xtime+sequential",
            False,
            True,
            False,
            True,
            False,
            "xtime with segments evaluated in turn (monotone match line: mismatched rows disabled)",
        ),
        Scheme("xtime+gating", False, True, False, False, True, "xtime with don't-care cells gated off"),
        Scheme(
            "monosparse",
            True,
            True,
            True,
            True,
            True,
            "all of MonoSparse: reordering, skipping, sequential segments with row disabling, gated don't-care cells",
        ),
    )
}


def _branch_current_a(g_us, c) -> np.ndarray:
    """Current (A) one divider branch draws at conductance ``g_us`` (uS): V_sl G, capped at the clamp
    0.5 K1 (V_ml - V_th)^2 (CAMSHAP, src/acam.cc l.278-283)."""
    return np.minimum(c.sl_voltage_v * np.asarray(g_us, dtype=float) * 1e-6, c.branch_clamp_a)


def _cell_current_a(prog: CamProgram, X, spec: CamSpec, gate: bool) -> np.ndarray:
    """(rows, features) search-line current (A) a search draws through each stored bound pair's divider
    branches (a lower- and an upper-bound branch per cell, over its ``cells_per_feature`` cells), each
    branch's current V_sl G capped at the clamp; the Cells component prices T_clk V_sl I of it."""
    c = spec.circuit
    lo, hi = prog.bound_levels(X)
    top = 2**spec.bits - 1
    base = 2**spec.bits_per_cell

    def current_sum(level, open_g_us):
        code = np.where(np.isnan(level), 0, np.round(np.nan_to_num(level) * top)).astype(np.int64)
        digits = (code[..., None] // base ** np.arange(spec.cells_per_feature)) % base  # LSB cell first
        g = c.g_min_us + (c.g_max_us - c.g_min_us) * digits / base  # CAMSHAP's levels: g_min + k (g_max - g_min)/2^b
        g = np.where(np.isnan(level)[..., None], open_g_us, g)
        return _branch_current_a(g, c).sum(axis=-1)

    i = current_sum(lo, c.g_hrs_us) + current_sum(hi, c.g_lrs_us)
    if gate:
        i = np.where(prog.dont_care, 0.0, i)
    return i


def _digital_units(spec: CamSpec) -> dict[str, float]:
    """Digital unit energies (J) and areas (um^2) at the CAM's node: the shared components' own sourced
    figures (an SRAM word read and a ``leaf_bits`` adder from Horowitz's 45 nm table, the SRAM bit cell of
    a 16 nm process), scaled to the CAM's node and supply; the network on chip is the CAM spec's own."""
    e = float(energy_factor(spec.node_nm, spec.supply_v) / energy_factor(cc.HOROWITZ_NODE_NM, cc.HOROWITZ_SUPPLY_V))
    a = float(area_factor(spec.node_nm) / area_factor(cc.SRAM_BITCELL_NODE_NM))
    return {
        "sram_j_per_bit": primitive_energy_pj("lookup", 1) * e * 1e-12,
        "add_j": primitive_energy_pj("add", spec.leaf_bits) * e * 1e-12,
        "wire_j_per_bit_mm": spec.circuit.noc_energy_pj_per_bit_mm * 1e-12,
        "sram_um2_per_bit": cc.SRAM_BITCELL_UM2 / cc.SRAM_ARRAY_EFFICIENCY * a,
    }


# ---- the CAM's parts as cost components (unit "cam" in cimkit.cost.components.COMPONENTS) -------------------
class CamContext:
    """What a CAM component prices from: ``spec`` (the CamSpec), ``events`` (per decision: ``dl_drives``
    data-line drives, ``ml_rows`` and ``ml_cells`` match-line precharges and the cells on them,
    ``cell_amps`` the search-line current of the evaluated cells, ``senses``, ``array_searches``,
    ``leaf_bits_read``, ``adds``, ``noc_bit_mm``; instances: ``arrays``, ``cells_stored``, ``dacs``,
    ``sense_amps``, ``leaf_bits_stored``), ``digital`` (the shared digital figures at the CAM's node:
    ``_digital_units``) and, for overhead components, ``core_area_mm2`` (every other component's area)."""

    def __init__(self, spec: CamSpec, events: dict) -> None:
        self.spec, self.events = spec, events
        self.digital = _digital_units(spec)
        self.core_area_mm2: float | None = None


class DataLines(Component):
    """Driving one cell column's data line for a clock, T_clk V_dd^2 / R_out with the driver sized to settle
    the line in one clock, R_out = T_clk / (rows C_dl) - R_w (rows - 1) / 2 (CAMSHAP, src/acam.cc l.67-68),
    plus ``dac_energy_pj`` (0 by default: that drive is CAMSHAP's whole DAC energy); the column DACs' area
    is its own line ("dacs")."""

    name, unit = "data_lines", "cam"

    def energy_per_event_j(self, ctx):
        c, spec = ctx.spec.circuit, ctx.spec
        t = c.search_time_ns * 1e-9
        r_out = t / (spec.rows * c.dl_cap_ff_per_row * 1e-15) - 0.5 * c.dl_wire_ohm_per_row * (spec.rows - 1)
        return {"dl_drives": c.dac_energy_pj * 1e-12 + t * c.dl_voltage_v**2 / r_out}


class MatchLines(Component):
    """Match line and precharge, C V_ml^2 per enabled row and evaluated segment: C_ml per feature column of
    the segment (priced per cell as C_ml / cells_per_feature) plus the row's precharge C_pre (CAMSHAP,
    src/acam.cc l.70-71)."""

    name, unit = "match_lines", "cam"

    def energy_per_event_j(self, ctx):
        c, spec = ctx.spec.circuit, ctx.spec
        return {
            "ml_cells": c.ml_cap_ff_per_col / spec.cells_per_feature * 1e-15 * c.ml_voltage_v**2,
            "ml_rows": c.precharge_cap_ff * 1e-15 * c.ml_voltage_v**2,
        }


class Cells(Component):
    """Search-line current through each evaluated cell's two divider branches for a clock, T_clk V_sl I, each
    branch's I = min(V_sl G, 0.5 K1 (V_ml - V_th)^2) (CAMSHAP, src/acam.cc l.278-284); the cell area."""

    name, unit = "cells", "cam"

    def area_mm2(self, ctx):
        return ctx.events["cells_stored"] * ctx.spec.circuit.cell_area_um2 * 1e-6

    def energy_per_event_j(self, ctx):
        c = ctx.spec.circuit
        return {"cell_amps": c.sl_voltage_v * c.search_time_ns * 1e-9}


class Dacs(Component):
    """The column DACs' area (their energy is in data_lines)."""

    name, unit = "dacs", "cam"

    def area_mm2(self, ctx):
        return ctx.events["dacs"] * ctx.spec.circuit.dac_area_um2 * 1e-6


class Sense(Component):
    """Match-line sense amplifiers: one sense per enabled row and segment; one amplifier per row and
    segment group."""

    name, unit = "sense", "cam"

    def area_mm2(self, ctx):
        return ctx.events["sense_amps"] * ctx.spec.circuit.sa_area_um2 * 1e-6

    def energy_per_event_j(self, ctx):  # C_mlso V_ml^2 (CAMSHAP, src/acam.cc l.69)
        c = ctx.spec.circuit
        return {"senses": c.sense_cap_ff * 1e-15 * c.ml_voltage_v**2}


class Encoder(Component):
    """Match vector to leaf address, once per array search."""

    name, unit = "encoder", "cam"

    def energy_per_event_j(self, ctx):
        return {"array_searches": ctx.spec.circuit.encoder_energy_pj * 1e-12}


class LeafMemory(Component):
    """Leaf values in SRAM: a word read per tree (the shared digital lookup, per bit), a 16 nm bit cell."""

    name, unit = "leaf_memory", "cam"

    def area_mm2(self, ctx):
        return ctx.events["leaf_bits_stored"] * ctx.digital["sram_um2_per_bit"] * 1e-6

    def energy_per_event_j(self, ctx):
        return {"leaf_bits_read": ctx.digital["sram_j_per_bit"]}


class Aggregation(Component):
    """The adders that sum the trees' leaf values (the shared digital add at ``leaf_bits``)."""

    name, unit = "aggregation", "cam"

    def energy_per_event_j(self, ctx):
        return {"adds": ctx.digital["add_j"]}


class Noc(Component):
    """Network on chip broadcasting the input and gathering leaf values: wire energy per bit and mm; area a
    fraction of the rest."""

    name, unit, overhead = "noc", "cam", True

    def area_mm2(self, ctx):
        return ctx.spec.circuit.noc_area_fraction * ctx.core_area_mm2

    def energy_per_event_j(self, ctx):
        return {"noc_bit_mm": ctx.digital["wire_j_per_bit_mm"]}


for _c in (DataLines(), MatchLines(), Cells(), Dacs(), Sense(), Encoder(), LeafMemory(), Aggregation(), Noc()):
    if _c.name not in REGISTRY:
        REGISTRY.register(_c.name, _c)
    elif REGISTRY.get(_c.name).unit != "cam":  # one namespace of breakdown lines: a clash would drop a CAM part
        raise InputError(
            f"cost component {_c.name!r} is registered for unit {REGISTRY.get(_c.name).unit!r}, but the CAM "
            f"model needs that name for its own part ({type(_c).__name__}); register the other "
            "component under another name"
        )
    # else: a CAM plug-in registered before cimkit.cam was imported keeps its place
#: the built-in CAM components in report order
_BUILTIN = ("data_lines", "match_lines", "cells", "dacs", "sense", "encoder", "leaf_memory", "aggregation", "noc")


def _has_area(comp: Component) -> bool:
    return type(comp).area_mm2 is not Component.area_mm2


def price(spec: CamSpec, events: dict) -> tuple[dict[str, float], dict[str, float]]:
    """Energy per decision (J) and area (mm^2) of every registered component of unit "cam", from the CAM's
    events: energy = sum of events x energy per event; a component is a line of the energy breakdown when
    it prices events, of the area breakdown when it has an area."""
    ctx = CamContext(spec, events)
    names = [n for n in REGISTRY.names() if REGISTRY.get(n).unit == "cam"]
    lost = [n for n in _BUILTIN if n not in names]
    if lost:
        raise InputError(
            f"the CAM's built-in cost component(s) {', '.join(lost)} were replaced by components of "
            "another unit; a CAM report would leave them out: register CAM parts with unit 'cam' and "
            "other units' components under other names"
        )
    names = [n for n in _BUILTIN if n in names] + [n for n in names if n not in _BUILTIN]  # built-ins first
    comps = [REGISTRY.get(n) for n in names]
    energy: dict[str, float] = {}
    area: dict[str, float] = {}
    # CAM components take a CamContext where Component's signature names the crossbar model's Context
    for comp in comps:
        figures = comp.energy_per_event_j(ctx)  # type: ignore[arg-type]
        if figures:
            total = 0.0
            for event, per in figures.items():
                if event not in events:
                    raise InputError(
                        f"component {comp.name!r} prices the CAM event {event!r}, which the CAM model "
                        f"does not count; CAM events: {', '.join(events)}"
                    )
                total = total + events[event] * float(check_figure(comp.name, "energy_per_event_j", per, event))
            energy[comp.name] = total
    for overhead in (False, True):
        if overhead:
            ctx.core_area_mm2 = sum(area.values())
        for comp in comps:
            if comp.overhead == overhead and _has_area(comp):
                area[comp.name] = float(check_figure(comp.name, "area_mm2", comp.area_mm2(ctx)))  # type: ignore[arg-type]
    area = {c.name: area[c.name] for c in comps if c.name in area}
    return energy, area


def _count_events(
    prog: CamProgram, lay: CamLayout, X: np.ndarray, scheme: Scheme, cell_i: np.ndarray, track_matches: bool = False
):
    """Totals over the samples of X of every search event; with ``track_matches`` (or a sequential
    scheme) also the (samples, slots) rows left matching after the last segment."""
    spec, c = lay.spec, lay.spec.circuit
    n_slots, R, B = len(lay.slot_row), spec.rows, lay.row_blocks
    used = lay.used
    rows = lay.slot_row[used]
    # an unprogrammed row (searched only by the raw scheme): both memristors of every cell erased to HRS
    erased_a = 2 * float(_branch_current_a(c.g_hrs_us, c)) * spec.cells_per_feature
    slot_cell_i = np.full((n_slots, prog.n_features), erased_a)
    slot_cell_i[used] = cell_i[rows]
    slot_cell_i = slot_cell_i[:, lay.feature_order]
    seg_cell_i = np.stack([slot_cell_i[:, a:b].sum(axis=1) for _, a, b in lay.segments], axis=1)  # (slots, segs)
    lo = np.full((n_slots, prog.n_features), -np.inf)
    hi = np.full((n_slots, prog.n_features), np.inf)
    lo[used] = prog.lo[rows][:, lay.feature_order]
    hi[used] = prog.hi[rows][:, lay.feature_order]
    if scheme.skip_dont_care:
        tested, columns = lay.tested(), lay.tested_columns()
    else:
        tested = np.ones((B, len(lay.segments)), dtype=bool)
        columns = np.broadcast_to(np.array([b - a for _, a, b in lay.segments]), tested.shape)
    enabled0 = used if scheme.disable_unused else np.ones(n_slots, dtype=bool)
    track = track_matches or scheme.sequential
    ev: dict[str, Any] = dict(rows=np.zeros(len(lay.segments)), cell_i=0.0, columns=0.0, array_searches=0.0, cells=0.0)
    matched = []
    for start in range(0, len(X), _CHUNK):
        x = X[start : start + _CHUNK][:, lay.feature_order]
        n = len(x)
        enabled = np.broadcast_to(enabled0, (n, n_slots)).copy()
        match = np.ones((n, n_slots), dtype=bool)
        searched = np.zeros((n, B, lay.feature_blocks), dtype=bool)
        for s, (k, a, b) in enumerate(lay.segments):
            by_block = enabled.reshape(n, B, R)
            active = tested[:, s][None, :] & (by_block.any(axis=2) if scheme.sequential else np.ones((n, 1), bool))
            evaluated = by_block & active[:, :, None]
            ev["rows"][s] += evaluated.sum()
            ev["cells"] += evaluated.sum() * (b - a)
            ev["cell_i"] += float((evaluated.reshape(n, -1) @ seg_cell_i[:, s]).sum())
            ev["columns"] += float((active * columns[:, s][None, :]).sum())
            searched[:, :, k] |= active
            if track:
                for f in range(a, b):
                    match &= prog.inside(x[:, f : f + 1], lo[:, f][None, :], hi[:, f][None, :])
                if scheme.sequential:  # the monotone match line: a row that mismatched stays off
                    enabled &= match
        ev["array_searches"] += searched.sum()
        if track:
            matched.append(match & used[None, :])
    return ev, (np.concatenate(matched) if track else None)


def _scheme(name: str) -> Scheme:
    if not isinstance(name, str) or name not in SCHEMES:
        raise InputError(f"unknown scheme {short_repr(name)}; available: {', '.join(SCHEMES)}")
    return SCHEMES[name]


def _check_args(prog, spec) -> CamSpec:
    if not isinstance(prog, CamProgram):
        raise InputError(f"expected a CamProgram (from cimkit.cam.compile), got {type(prog).__name__}")
    if spec is None:
        return CamSpec()
    if not isinstance(spec, CamSpec):
        raise InputError(
            f"spec must be a cimkit.cam.CamSpec (or None for the X-TIME defaults), got "
            f"{type(spec).__name__}; a YAML file is read with CamSpec.from_yaml"
        )
    return spec


def estimate(prog: CamProgram, X, spec: CamSpec | None = None, scheme: str = "monosparse") -> CamReport:
    """Energy per decision, latency, throughput and area of ``prog`` on ``spec`` searched with ``scheme``,
    averaged over the inputs ``X`` (the data the chip would see: energy depends on which rows match)."""
    spec = _check_args(prog, spec)
    sch = _scheme(scheme)
    codes = prog.encode(X)
    if len(codes) == 0:
        raise InputError("estimate needs at least one input sample")
    lay = layout(prog, spec, reorder=sch.reorder, sequential=sch.sequential)
    ev, _ = _count_events(prog, lay, codes, sch, _cell_current_a(prog, X, spec, sch.gate_dont_care))
    n = len(codes)
    trees = len(prog.tree_rows)
    arrays_stored = int(lay.arrays_tested().sum()) if sch.skip_dont_care else lay.row_blocks * lay.feature_blocks
    seg_cells = np.array([(b - a) * spec.cells_per_feature for _, a, b in lay.segments])
    c = spec.circuit
    side_mm = np.sqrt(max(arrays_stored, 1) * spec.rows * spec.cols * spec.cells_per_feature * c.cell_area_um2) / 1e3
    hop_mm = side_mm / 2  # H-tree: half the chip edge, as in the crossbar cost model
    leaves = prog.leaf.shape[1]
    n_groups = int(np.ceil(spec.cols / spec.group_cols)) if sch.sequential else 1
    events = {  # per decision (averaged over the inputs X), then the instances the areas count
        "dl_drives": ev["columns"] * spec.cells_per_feature / n,
        "ml_rows": float(ev["rows"].sum()) / n,
        "ml_cells": float(ev["rows"] @ seg_cells) / n,
        "cell_amps": ev["cell_i"] / n,
        "senses": float(ev["rows"].sum()) / n,
        "array_searches": ev["array_searches"] / n,
        "leaf_bits_read": trees * leaves * spec.leaf_bits,
        "adds": trees * leaves + prog.ensemble.n_outputs,
        "noc_bit_mm": (prog.n_features * spec.bits * lay.row_blocks + trees * spec.leaf_bits) * hop_mm,
        "arrays": arrays_stored,
        "cells_stored": arrays_stored * spec.rows * spec.cols * spec.cells_per_feature,
        "dacs": arrays_stored * spec.cols * spec.cells_per_feature,
        "sense_amps": arrays_stored * spec.rows * n_groups,
        "leaf_bits_stored": lay.row_blocks * spec.rows * leaves * spec.leaf_bits,
    }
    energy, area = price(spec, events)
    cycle_s = 1.0 / spec.clock_hz
    search_cycles = spec.search_cycles
    n_sequential = len(lay.segments) if sch.sequential else 1
    noc_cycles = 2 * int(np.ceil(np.log(max(arrays_stored, 2)) / np.log(4)))  # 4-port tree NoC out and back
    adder_cycles = int(np.ceil(np.log2(max(trees, 2))))
    latency_s = (search_cycles * n_sequential + 2 + adder_cycles + noc_cycles) * cycle_s
    throughput = spec.clock_hz / search_cycles  # every stage pipelined; the array search is the slowest
    evaluated = [float(ev["rows"][s] / n / max(int(lay.used.sum()), 1)) for s in range(len(lay.segments))]
    for what, values in (
        ("energy", energy),
        ("area", area),
        ("timing", {"latency": latency_s, "throughput": throughput}),
    ):
        for comp, v in values.items():
            if not np.isfinite(v):
                raise SpecError(
                    f"the {what} of {comp!r} on spec {spec.name!r} is {v} (overflow): a value of the "
                    "CAM spec is outside any physical range"
                )
    energy_breakdown_j = {k: float(v) for k, v in energy.items()}
    area_breakdown_mm2 = {k: float(v) for k, v in area.items()}
    return CamReport(
        scheme=scheme,
        energy_j=float(sum(energy_breakdown_j.values())),
        energy_breakdown_j=energy_breakdown_j,
        latency_s=latency_s,
        throughput_per_s=throughput,
        area_mm2=float(sum(area_breakdown_mm2.values())),
        area_breakdown_mm2=area_breakdown_mm2,
        arrays=arrays_stored,
        row_blocks=lay.row_blocks,
        feature_blocks=lay.feature_blocks,
        rows=prog.rows,
        sparsity=prog.sparsity,
        evaluated_fraction=evaluated,
        cell_evaluations=float(ev["cells"] / n),
    )


def compare(prog: CamProgram, X, spec: CamSpec | None = None, schemes=tuple(SCHEMES)) -> dict[str, CamReport]:
    """``estimate`` for several schemes (names from ``SCHEMES``; one name alone is taken as a list of one) on the
    same inputs."""
    if isinstance(schemes, str):
        schemes = (schemes,)
    schemes = tuple(schemes)
    if not schemes:
        raise InputError(f"compare needs at least one scheme; available: {', '.join(SCHEMES)}")
    for s in schemes:
        _scheme(s)
    return {s: estimate(prog, X, spec, s) for s in schemes}


def matched_rows(prog: CamProgram, X, spec: CamSpec | None = None, scheme: str = "monosparse") -> np.ndarray:
    """(samples, trees) program row each tree matched, found the way ``scheme`` searches its layout (row
    by row, segment by segment, disabling rows on the way); it must equal ``prog.match(X)``."""
    spec = _check_args(prog, spec)
    sch = _scheme(scheme)
    Xc = prog.encode(X)
    lay = layout(prog, spec, reorder=sch.reorder, sequential=sch.sequential)
    _, matched = _count_events(prog, lay, Xc, sch, np.zeros((prog.rows, prog.n_features)), track_matches=True)
    rows = np.where(matched, lay.slot_row[None, :], -1)
    tree = np.where(matched, prog.tree_of_row[np.maximum(lay.slot_row, 0)][None, :], -1)
    out = np.full((len(Xc), len(prog.tree_rows)), -1, dtype=np.int64)
    s, c = np.nonzero(matched)
    out[s, tree[s, c]] = rows[s, c]
    return out
