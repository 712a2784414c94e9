"""The CAM attention unit (unit ``cam_attention``, spec section ``cam_attention``): HAD's binarized attention
(Horton et al., arXiv 2502.01770) on a binary CAM, its events and the two cost components that price them.

A workload gets HAD's ops from ``Workload.with_hamming_attention`` (``cimkit.workload.hamming``): per
attention a ``hamming_score`` op (groups g heads, vectors Lq queries, in_features d key bits, out_features
Lk keys) and a ``topn`` op (in_features Lk candidates, out_features N kept). The unit:

1. **keys written**: each head's Lk keys of d bits go into CAM rows, once per layer and sequence (every key
   of an op is written: right for encoders and prefill; a decoder step whose keys are cached would write
   one), a row per cycle per array, the arrays in parallel: ``cam_bits_written`` = g Lk d;
2. **search per query**: the query's d bits on the search lines, every key row's match line precharged,
   evaluated and sensed (``search_cycles``), ``cam_rows_searched`` = Lq g Lk ct (ct = ceil(d / cols) arrays
   across a key) at ``compare_row_energy_fj``, ``cam_bits_searched`` = Lq g Lk d at ``compare_bit_energy_fj``
   (the associative processor's price list, ``cimkit.ap.figures``: CAMSHAP's capacitances; one binary CAM);
3. **sensing the Hamming score**: a converter (``adc_type`` of ``ADC_KINDS``, as the crossbar's, at
   ``score_bits``) reads each row's match-line level, ``rows_per_adc`` rows in turn: ``cam_conversions`` =
   Lq g Lk ct; a key across ct arrays adds its partial scores, ``cam_partial_adds`` = Lq g Lk (ct - 1);
4. **top-N selector**: a counting sorter per query over the small score range (bins = d + 1 values, fewer when
   ``score_bits`` quantizes): a histogram of the Lk scores (``topn_increments`` = Lq g Lk adds at
   ceil(log2(Lk + 1)) bits), a scan from the top bin to the N-th score (``topn_scan_adds`` = Lq g bins), and
   a pass keeping the scores at or above it (``topn_compares`` = Lq g Lk compares at the score's width); ties
   at the threshold are cut by a priority encoder (not priced). Adds and compares are the digital unit's
   Horowitz primitives (``components.primitive_energies_pj``) at the chip's node.

Latency (``cam_cycles``, ``topn_cycles`` at ``clock_hz``): per round of keys the unit holds, min(Lk, rows)
row writes, then per query ``search_cycles`` + ceil(conversion time x clock) x min(rows_per_adc, Lk)
(+ 1 to add partial scores); the selector takes 2 ceil(Lk / selector_lanes) + bins cycles per query, with
as many selectors as heads the arrays hold at once. Search and selection are priced one after the other
(the ops run layer by layer), an upper bound for a unit that pipelines them.

Area (``cam_attention``): ``arrays`` x rows x cols cells of ``cell_area_um2`` (scaled from
``figures_node_nm``) and arrays x ceil(rows / rows_per_adc) converters (the ADC kind's area at the chip's
node); ``topn_selector``: per selector, bins counters of ceil(log2(Lk + 1)) bits (a flip-flop and an adder
bit each), ``selector_lanes`` comparators of the score's width and N index registers, from the cost model's
22 nm cells (``constants.FLIP_FLOP_UM2``, ``FULL_ADDER_BIT_UM2``). The CAM figures are scaled from
``figures_node_nm`` / ``figures_supply_v`` to the chip's node and supply (``cimkit.cost.tech``); the unit
lies beside the tiles' interconnect (``networked`` False), fed from the global buffer.

Data through the buffers for these ops (``events.count`` takes it from here): the 1-bit queries in, the N
scores (``chip.activation_bits``) and their key indices out; the scores between the CAM and the selector stay
in the unit. (As for every dynamic matmul, the second operand, here the keys, is not counted as moved.)
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import constants as K
from .components import COMPONENTS, Component, adc_figures, primitive_energies_pj
from .tech import area_factor, delay_factor, energy_factor

UNIT = "cam_attention"
HAMMING, TOPN = "hamming_score", "topn"  # the op kinds (cimkit.workload.hamming)

#: energy events per layer, and the component pricing each
ENERGY_EVENTS = {
    "cam_bits_written": "cam_attention",
    "cam_rows_searched": "cam_attention",
    "cam_bits_searched": "cam_attention",
    "cam_conversions": "cam_attention",
    "cam_partial_adds": "cam_attention",
    "topn_increments": "topn_selector",
    "topn_scan_adds": "topn_selector",
    "topn_compares": "topn_selector",
}
#: serial events per layer (cycles at cam_attention.clock_hz)
LATENCY_EVENTS = {"cam_cycles": "cam_attention", "topn_cycles": "topn_selector"}
EVENTS = (*ENERGY_EVENTS, *LATENCY_EVENTS)
#: per configuration: arrays, converters, selectors, and the widths the unit is built for
UNIT_QUANTITIES = (
    "cam_arrays",
    "cam_converters",
    "cam_selectors",
    "cam_score_bits",
    "cam_total_score_bits",
    "cam_bins",
    "cam_counter_bits",
    "cam_index_bits",
    "cam_kept",
)


def _log2_ceil(x):
    return np.ceil(np.log2(np.maximum(x, 1)))


def conversion_ns(p: dict, bits) -> np.ndarray:
    """Time of one conversion (ns, (C, 1)) of the unit's converter at ``bits``: the ADC kind's logic delay at
    the chip's gate delay plus its analog sensing time (as the crossbar's ``read_cycle``)."""
    adc = adc_figures(p["cam_adc_type"], p["cam_adc_types"], bits, np.ones_like(bits))
    return adc.logic_ns * delay_factor(p["node_nm"]) + adc.sense_ns


def cam_attention_events(p: dict, w: dict) -> dict:
    """The unit's events per layer ((C, L), or (1, 1) zeros when no op runs on it: ``EVENTS``), its
    instances and widths per configuration ((C,): ``UNIT_QUANTITIES``), and ``cam_moved_bits`` (C, L) with
    the mask ``on_cam_attention`` of the layers it runs. ``p``: spec columns; ``w``: workload rows with the
    mask ``w["on_cam_attention"]``."""
    C = p["node_nm"].shape[0]
    on = w.get("on_cam_attention")
    if on is None or not on.any():
        return {
            **{e: np.zeros((1, 1)) for e in EVENTS},
            **{k: np.zeros(C) for k in UNIT_QUANTITIES},
            "cam_moved_bits": np.zeros((1, 1)),
            "on_cam_attention": np.zeros((1, 1), dtype=bool),
        }
    L = on.shape[1]
    on = np.broadcast_to(on, (C, L))
    kinds = np.asarray(w["kinds"])
    ham = on & (kinds == HAMMING)[None, :]
    top = on & (kinds == TOPN)[None, :]
    lacking = top.any(axis=1) & ~ham.any(axis=1)
    if lacking.any():
        layer = int(np.flatnonzero(top[int(np.flatnonzero(lacking)[0])])[0])
        raise InputError(
            f"op '{w['names'][layer]}' (topn) runs on unit 'cam_attention', whose top-N selector "
            "sorts the Hamming scores of the unit's CAM, but no hamming_score op of the workload runs "
            "there: give the workload its hamming_score ops (Workload.with_hamming_attention) or route "
            "both to the unit"
        )
    g, m = w["groups"].astype(float), w["vectors"].astype(float)  # (1, L)
    fin, fout = w["in_features"].astype(float), w["out_features"].astype(float)
    rows, cols = p["cam_rows"].astype(float), p["cam_cols"].astype(float)  # (C, 1)
    ct = np.ceil(fin / cols)  # arrays across a key (hamming_score: in_features = key bits)
    rt = np.ceil(fout / rows)  # arrays down a head's keys (hamming_score: out_features = keys)
    per_head = np.where(ham, rt * ct, 0.0)
    need = g * per_head
    arrays = np.where(p["cam_arrays"] > 0, p["cam_arrays"], need.max(axis=1, keepdims=True))
    # the widths the unit is built for: its widest key, its longest candidate list, its largest N
    d_max = np.where(ham, fin, 0.0).max(axis=1, keepdims=True)
    ct_max = np.ceil(d_max / cols)
    sb = np.where(p["cam_score_bits"] > 0, p["cam_score_bits"], _log2_ceil(np.minimum(d_max, cols) + 1))
    bins = np.minimum(d_max + 1, ct_max * (2.0**sb - 1) + 1)
    total_bits = _log2_ceil(bins)
    n_max = np.where(top, fin, 0.0).max(axis=1, keepdims=True)
    counter_bits = _log2_ceil(n_max + 1)
    index_bits = np.maximum(_log2_ceil(n_max), 1.0)
    kept = np.where(top, fout, 0.0).max(axis=1, keepdims=True)
    heads = np.where(ham, g, 0.0).max(axis=1, keepdims=True)
    per_head_max = per_head.max(axis=1, keepdims=True)
    selectors = np.where(
        heads > 0, np.clip(np.floor(arrays / np.maximum(per_head_max, 1)), 1, np.maximum(heads, 1)), 0.0
    )
    converters = arrays * np.ceil(rows / p["cam_rows_per_adc"])

    ev = {
        "cam_bits_written": np.where(ham, g * fout * fin, 0.0),
        "cam_rows_searched": np.where(ham, m * g * fout * ct, 0.0),
        "cam_bits_searched": np.where(ham, m * g * fout * fin, 0.0),
        "cam_conversions": np.where(ham, m * g * fout * ct, 0.0),
        "cam_partial_adds": np.where(ham, m * g * fout * (ct - 1), 0.0),
        "topn_increments": np.where(top, m * g * fin, 0.0),
        "topn_scan_adds": np.where(top, m * g * bins, 0.0),
        "topn_compares": np.where(top, m * g * fin, 0.0),
    }
    conversion_cycles = np.maximum(np.ceil(conversion_ns(p, sb) * 1e-9 * p["cam_clock_hz"]), 1.0)
    rounds = np.ceil(need / np.maximum(arrays, 1))
    per_query = p["cam_search_cycles"] + conversion_cycles * np.minimum(p["cam_rows_per_adc"], fout) + (ct > 1)
    ev["cam_cycles"] = np.where(ham, rounds * (np.minimum(fout, rows) + m * per_query), 0.0)
    selector_query = 2 * np.ceil(fin / p["cam_selector_lanes"]) + bins
    ev["topn_cycles"] = np.where(top, np.ceil(g / np.maximum(selectors, 1)) * m * selector_query, 0.0)
    act = p["activation_bits"]
    ev["cam_moved_bits"] = np.where(ham, m * g * fin, np.where(top, m * g * fout * (act + index_bits), 0.0))
    ev["on_cam_attention"] = ham | top
    ev.update(
        cam_arrays=arrays[:, 0],
        cam_converters=converters[:, 0],
        cam_selectors=selectors[:, 0],
        cam_score_bits=sb[:, 0],
        cam_total_score_bits=total_bits[:, 0],
        cam_bins=bins[:, 0],
        cam_counter_bits=counter_bits[:, 0],
        cam_index_bits=index_bits[:, 0],
        cam_kept=kept[:, 0],
    )
    return ev


def _from_figures_node(ctx):
    """(energy, area) factors (C, 1) from the CAM figures' node and supply to the chip's."""
    key = "cam_attention_scale"
    if key not in ctx._scales:
        p = ctx.p
        node, supply = p["cam_figures_node_nm"], p["cam_figures_supply_v"]
        ctx._scales[key] = (ctx.energy_scale / energy_factor(node, supply), ctx.area_scale / area_factor(node))
    return ctx._scales[key]


def _horowitz(ctx, bits) -> dict:
    """The digital primitives' energies (J) at ``bits`` at the chip's node (as the ``digital`` component)."""
    return {
        k: v * ctx.energy_scale_from(K.HOROWITZ_NODE_NM, K.HOROWITZ_SUPPLY_V) * 1e-12
        for k, v in primitive_energies_pj(bits).items()
    }


def _converter(ctx):
    key = "cam_attention_adc"
    if key not in ctx._scales:
        p = ctx.p
        bits = ctx.events["cam_score_bits"][:, None]
        ctx._scales[key] = adc_figures(p["cam_adc_type"], p["cam_adc_types"], bits, np.ones_like(bits))
    return ctx._scales[key]


class CamAttention(Component):
    """The CAM arrays of the ``cam_attention`` unit: keys written into rows, match-line search, the row
    converters reading each row's Hamming score and the adds of partial scores (module docstring)."""

    name, unit, networked = "cam_attention", UNIT, False

    def area_mm2(self, ctx):
        p, ev = ctx.p, ctx.events
        _, area = _from_figures_node(ctx)
        cells = ev["cam_arrays"] * p["cam_rows"][:, 0] * p["cam_cols"][:, 0] * p["cam_cell_area_um2"][:, 0] * area[:, 0]
        converters = ev["cam_converters"] * _converter(ctx).area_um2[:, 0] * ctx.area_scale[:, 0]
        return (cells + converters) * 1e-6

    def energy_per_event_j(self, ctx):
        p = ctx.p
        energy, _ = _from_figures_node(ctx)
        fj = energy * 1e-15
        return {
            "cam_bits_written": p["cam_write_bit_fj"] * fj,
            "cam_rows_searched": p["cam_compare_row_fj"] * fj,
            "cam_bits_searched": p["cam_compare_bit_fj"] * fj,
            "cam_conversions": _converter(ctx).energy_pj * ctx.energy_scale * 1e-12,
            "cam_partial_adds": _horowitz(ctx, ctx.events["cam_total_score_bits"][:, None])["add"],
        }

    def latency_per_event_s(self, ctx):
        return {"cam_cycles": 1.0 / ctx.p["cam_clock_hz"]}


class TopNSelector(Component):
    """The ``cam_attention`` unit's top-N selectors: counting sorters over the score range (module docstring)."""

    name, unit, networked = "topn_selector", UNIT, False

    def area_mm2(self, ctx):
        p, ev = ctx.p, ctx.events
        counters = ev["cam_bins"] * ev["cam_counter_bits"] * (K.FLIP_FLOP_UM2 + K.FULL_ADDER_BIT_UM2)
        comparators = p["cam_selector_lanes"][:, 0] * ev["cam_total_score_bits"] * K.FULL_ADDER_BIT_UM2
        indices = ev["cam_kept"] * ev["cam_index_bits"] * K.FLIP_FLOP_UM2
        return ev["cam_selectors"] * (counters + comparators + indices) * ctx.area_scale[:, 0] * 1e-6

    def energy_per_event_j(self, ctx):
        ev = ctx.events
        count = _horowitz(ctx, ev["cam_counter_bits"][:, None])["add"]
        return {
            "topn_increments": count,
            "topn_scan_adds": count,
            "topn_compares": _horowitz(ctx, ev["cam_total_score_bits"][:, None])["cmp"],
        }

    def latency_per_event_s(self, ctx):
        return {"topn_cycles": 1.0 / ctx.p["cam_clock_hz"]}


for _c in (CamAttention(), TopNSelector()):
    if _c.name not in COMPONENTS:
        COMPONENTS.register(_c.name, _c)

__all__ = [
    "UNIT",
    "EVENTS",
    "ENERGY_EVENTS",
    "LATENCY_EVENTS",
    "UNIT_QUANTITIES",
    "cam_attention_events",
    "conversion_ns",
    "CamAttention",
    "TopNSelector",
]
