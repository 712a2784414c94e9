"""Energy, latency and area of a tree ensemble searched on analog-CAM arrays.

Energy is counted event by event on real inputs, because what a search costs depends on which rows stay
enabled. The events and their unit energies (constants in ``CamSpec``; digital parts from the crossbar
cost model, scaled to the CAM's node):

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

import numpy as np

from ..cost import constants as cc
from ..cost.components import primitive_energy_pj
from ..cost.tech import area_factor, energy_factor
from ..errors import InputError, SpecError, short_repr
from .layout import CamLayout, layout
from .program import CamProgram
from .report import CamReport
from .spec import CamSpec

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


SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("raw", False, False, False, False, False, "every cell of every array, used or not, searched in parallel"),
    Scheme("xtime", False, True, False, False, False, "X-TIME-style: trees packed per array, unused rows disabled, "
           "every array searched in parallel, don't-care cells at HRS/LRS draw current"),
    Scheme("xtime+skip", False, True, True, False, False, "xtime, skipping all-don't-care columns and arrays"),
    Scheme("xtime+reorder+skip", True, True, True, False, False, "xtime+skip after MonoSparse feature and row "
           "reordering"),
    Scheme("xtime+sequential", False, True, False, True, False, "xtime with segments evaluated in turn (monotone "
           "match line: mismatched rows disabled)"),
    Scheme("xtime+gating", False, True, False, False, True, "xtime with don't-care cells gated off"),
    Scheme("monosparse", True, True, True, True, True, "all of MonoSparse: reordering, skipping, sequential "
           "segments with row disabling, gated don't-care cells"),
)}


def _cell_energy_j(prog: CamProgram, X, spec: CamSpec, gate: bool) -> np.ndarray:
    """(rows, features) search-line energy of each stored bound pair over its ``cells_per_feature`` cells."""
    c = spec.circuit
    lo, hi = prog.bound_levels(X)
    top = 2**spec.bits - 1
    base = 2**spec.bits_per_cell

    def conductance_sum(level, open_g):
        code = np.where(np.isnan(level), 0, np.round(np.nan_to_num(level) * top)).astype(np.int64)
        digits = (code[..., None] // base ** np.arange(spec.cells_per_feature)) % base  # LSB cell first
        g = c.g_min_us + (c.g_max_us - c.g_min_us) * digits / (base - 1)
        g = np.where(np.isnan(level)[..., None], open_g, g)
        return g.sum(axis=-1) * 1e-6

    g = conductance_sum(lo, c.g_min_us) + conductance_sum(hi, c.g_max_us)
    energy = c.sl_voltage_v**2 * g * c.search_time_ns * 1e-9
    if gate:
        energy = np.where(prog.dont_care, 0.0, energy)
    return energy


def _digital_units(spec: CamSpec) -> dict[str, float]:
    """Digital unit energies (J) and areas (um^2) at the CAM's node: the shared components' own sourced
    figures (an SRAM word read and a ``leaf_bits`` adder from Horowitz's 45 nm table, the SRAM bit cell of
    a 16 nm process), scaled to the CAM's node and supply; the network on chip is the CAM spec's own."""
    e = float(energy_factor(spec.node_nm, spec.supply_v) / energy_factor(cc.HOROWITZ_NODE_NM, cc.HOROWITZ_SUPPLY_V))
    a = float(area_factor(spec.node_nm) / area_factor(cc.SRAM_BITCELL_NODE_NM))
    return {"sram_j_per_bit": primitive_energy_pj("lookup", 1) * e * 1e-12,
            "add_j": primitive_energy_pj("add", spec.leaf_bits) * e * 1e-12,
            "wire_j_per_bit_mm": spec.circuit.noc_energy_pj_per_bit_mm * 1e-12,
            "sram_um2_per_bit": cc.SRAM_BITCELL_UM2 / cc.SRAM_ARRAY_EFFICIENCY * a}


def _count_events(prog: CamProgram, lay: CamLayout, X: np.ndarray, scheme: Scheme, cell_j: np.ndarray,
                  track_matches: bool = False):
    """Totals over the samples of X of every search event; with ``track_matches`` (or a sequential
    scheme) also the (samples, slots) rows left matching after the last segment."""
    spec, c = lay.spec, lay.spec.circuit
    n_slots, R, B = len(lay.slot_row), spec.rows, lay.row_blocks
    used = lay.used
    rows = lay.slot_row[used]
    # an unprogrammed row (searched only by the raw scheme): both memristors of every cell at HRS
    slot_cell_j = np.full((n_slots, prog.n_features), c.sl_voltage_v**2 * 2 * c.g_min_us * 1e-6
                          * spec.cells_per_feature * c.search_time_ns * 1e-9)
    slot_cell_j[used] = cell_j[rows]
    slot_cell_j = slot_cell_j[:, lay.feature_order]
    seg_cell_j = np.stack([slot_cell_j[:, a:b].sum(axis=1) for _, a, b in lay.segments], axis=1)  # (slots, segs)
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
    ev = dict(rows=np.zeros(len(lay.segments)), cell_j=0.0, columns=0.0, array_searches=0.0, cells=0.0)
    matched = []
    for start in range(0, len(X), _CHUNK):
        x = X[start:start + _CHUNK][:, lay.feature_order]
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
            ev["cell_j"] += float((evaluated.reshape(n, -1) @ seg_cell_j[:, s]).sum())
            ev["columns"] += float((active * columns[:, s][None, :]).sum())
            searched[:, :, k] |= active
            if track:
                for f in range(a, b):
                    match &= prog.inside(x[:, f:f + 1], lo[:, f][None, :], hi[:, f][None, :])
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
        raise InputError(f"spec must be a cimkit.cam.CamSpec (or None for the X-TIME defaults), got "
                         f"{type(spec).__name__}; a YAML file is read with CamSpec.from_yaml")
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
    ev, _ = _count_events(prog, lay, codes, sch, _cell_energy_j(prog, X, spec, sch.gate_dont_care))
    n = len(codes)
    c, d = spec.circuit, _digital_units(spec)
    trees = len(prog.tree_rows)
    arrays_stored = int(lay.arrays_tested().sum()) if sch.skip_dont_care else lay.row_blocks * lay.feature_blocks
    seg_cells = np.array([(b - a) * spec.cells_per_feature for _, a, b in lay.segments])
    ml_j = (c.ml_cap_ff_per_cell * seg_cells + c.ml_cap_ff_fixed) * 1e-15 * c.ml_voltage_v**2
    dl_j = c.dac_energy_pj * 1e-12 + spec.rows * c.dl_cap_ff_per_row * 1e-15 * spec.supply_v**2
    side_mm = np.sqrt(max(arrays_stored, 1) * spec.rows * spec.cols * spec.cells_per_feature * c.cell_area_um2) / 1e3
    hop_mm = side_mm / 2  # H-tree: half the chip edge, as in the crossbar cost model
    outputs = prog.ensemble.n_outputs
    energy = {
        "data_lines": ev["columns"] * spec.cells_per_feature * dl_j / n,
        "match_lines": float(ev["rows"] @ ml_j) / n,
        "cells": ev["cell_j"] / n,
        "sense": ev["rows"].sum() * c.sa_energy_fj * 1e-15 / n,
        "encoder": ev["array_searches"] * c.encoder_energy_pj * 1e-12 / n,
        "leaf_memory": trees * prog.leaf.shape[1] * spec.leaf_bits * d["sram_j_per_bit"],
        "aggregation": trees * prog.leaf.shape[1] * d["add_j"] + outputs * d["add_j"],
        "noc": (prog.n_features * spec.bits * lay.row_blocks + trees * spec.leaf_bits) * hop_mm * d["wire_j_per_bit_mm"],
    }
    cycle_s = 1.0 / spec.clock_hz
    search_cycles = spec.search_cycles
    n_sequential = len(lay.segments) if sch.sequential else 1
    noc_cycles = 2 * int(np.ceil(np.log(max(arrays_stored, 2)) / np.log(4)))  # 4-port tree NoC out and back
    adder_cycles = int(np.ceil(np.log2(max(trees, 2))))
    latency_s = (search_cycles * n_sequential + 2 + adder_cycles + noc_cycles) * cycle_s
    throughput = spec.clock_hz / search_cycles  # every stage pipelined; the array search is the slowest
    n_groups = int(np.ceil(spec.cols / spec.group_cols)) if sch.sequential else 1
    cells_per_array = spec.rows * spec.cols * spec.cells_per_feature
    area_um2 = {
        "cells": arrays_stored * cells_per_array * c.cell_area_um2,
        "dacs": arrays_stored * spec.cols * spec.cells_per_feature * c.dac_area_um2,
        "sense": arrays_stored * spec.rows * n_groups * c.sa_area_um2,
        "leaf_memory": lay.row_blocks * spec.rows * prog.leaf.shape[1] * spec.leaf_bits * d["sram_um2_per_bit"],
    }
    area_um2["noc"] = c.noc_area_fraction * sum(area_um2.values())
    evaluated = [float(ev["rows"][s] / n / max(int(lay.used.sum()), 1)) for s in range(len(lay.segments))]
    for what, values in (("energy", energy), ("area", area_um2), ("timing", {"latency": latency_s,
                                                                             "throughput": throughput})):
        for comp, v in values.items():
            if not np.isfinite(v):
                raise SpecError(f"the {what} of {comp!r} on spec {spec.name!r} is {v} (overflow): a value of the "
                                "CAM spec is outside any physical range")
    energy_breakdown_j = {k: float(energy[k]) for k in COMPONENTS}
    area_breakdown_mm2 = {k: v * 1e-6 for k, v in area_um2.items()}
    return CamReport(scheme=scheme, energy_j=float(sum(energy_breakdown_j.values())),
                     energy_breakdown_j=energy_breakdown_j, latency_s=latency_s, throughput_per_s=throughput,
                     area_mm2=float(sum(area_breakdown_mm2.values())), area_breakdown_mm2=area_breakdown_mm2,
                     arrays=arrays_stored, row_blocks=lay.row_blocks, feature_blocks=lay.feature_blocks,
                     rows=prog.rows, sparsity=prog.sparsity, evaluated_fraction=evaluated,
                     cell_evaluations=float(ev["cells"] / n))


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
