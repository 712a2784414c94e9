"""Price of the AP softmax (``ap_softmax_cost``) and a GPU roofline to compare it with
(``gpu_softmax_roofline``); ``benchmarks/bench_ap_softmax.py`` prints their EDP side by side.

The program's events (``softmax_events``) are priced with the figures of ``cimkit.ap.figures`` (the one
price list, which the cost model's ``ap`` unit reads too: a spec routing ``softmax`` to ``ap`` prices each
softmax op with exactly these events and figures, its ``ap`` section holding the figures). Defaults
(``APFigures``; per pass, per row; every number with its source or labelled an assumption):

* clock: 1 GHz, one compare, write, read or tag count per cycle. ASSUMPTION (CAMSHAP clocks its aCAM at
  1 GHz but spends 4 cycles per search, ``shared/reference/acam.md``; a 1-bit SRAM CAM search in one cycle is
  the usual AP assumption, e.g. the AP tutorial's cycle counts, arXiv 2203.00662).
* compare: every row of every active tile precharges and senses its match line, 32.74 fJ per row
  (precharge 14.74 fJ + sense 18.0 fJ, CAMSHAP hw.json C_pre, C_mlso; acam.md), plus per key bit and row
  0.684 fJ of match line (C_ml = 1.9 fF per column: 87.6 fJ per row at 128 columns, acam.md) and 0.180 fJ
  of search-line drive (46.14 fJ per driven column at 256 rows, acam.md). ASSUMPTION: an SRAM-based digital
  AP's match line and periphery priced with CAMSHAP's analog-CAM capacitances (no digital-AP figures were
  readable here; SoftmAP's own per-pass energies are not available, see the module docstring of softmax).
* write: 12.9 fJ per written bit (cimkit's SRAM figure 0.103 pJ per byte, ``cost.constants.SRAM_ENERGY_PJ_PER_BYTE``,
  NeuroSim-calibrated at 22 nm). ASSUMPTION: a CAM-cell write costs an SRAM-cell write.
* tag count: a popcount of a tile's tag vector, ``tile_rows`` one-bit adds at Horowitz's 45 nm 8-bit add
  energy (``primitive_energy_pj``; an upper bound for a tree of mostly narrow adders).
* load and unload: the scores (``input_bits`` + index bits) are written row by row (``tile_rows`` cycles per
  tile, tiles in parallel) and the codes (``output_bits + 1``) read back, at the write energy per bit.
* capacity: ``ap_rows`` words in all (default 2**20, about 60 MB of CAM at the ~470 columns the program
  needs: ASSUMPTION, the order of an A100's on-chip SRAM); a layer needing more tiles than fit runs in
  sequential rounds (latency x rounds; energy is per row, so it does not change).
* area: ``ap_rows`` x the program's columns x 0.52 um^2 per cell (CAMSHAP's aCAM cell; ASSUMPTION for a
  binary AP cell): at 2**20 words 261-267 mm^2 for the wide program (479-490 columns, L = 128..4096),
  97-103 mm^2 for the low-precision one (178-188 columns).
* kernel: ``widths`` (``cimkit.ops.intsoftmax.SoftmaxWidths``) sets the program's internal widths:
  ``WIDE`` (the default integer softmax, 60-62-bit intermediates) or ``LOW_PRECISION`` (10 fraction bits,
  exp(0) = 2**16, a 16-bit multiplier); ``EXP_POLYS`` / ``PRECISIONS`` name them for the spec.

Write activity (rows written per write pass) is data dependent; it is measured by simulating the program
on a sample row of the given length (Gaussian scores, std 2, seeded) and priced per row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

import torch

from ..errors import InputError, short_repr
from ..ops.grid import check_int
from ..ops.intsoftmax import DEFAULT_EXP, IBERT_EXP, LOW_PRECISION, WIDE, ExpPoly, SoftmaxWidths, _check_widths
from . import figures as F
from .machine import PassStats
from .softmax import TILE_ROWS, ap_softmax_codes

CLOCK_HZ = F.CLOCK_HZ  #: ASSUMPTION (see cimkit.ap.figures)
COMPARE_ROW_J = F.COMPARE_ROW_FJ * 1e-15  #: precharge + sense per row per compare (CAMSHAP, acam.md)
COMPARE_ROW_BIT_J = F.COMPARE_BIT_FJ * 1e-15  #: match line + search line per key bit and row (acam.md)
WRITE_BIT_J = F.WRITE_BIT_FJ * 1e-15  #: per written bit (cimkit SRAM figure; ASSUMPTION for a CAM cell)
AP_ROWS = F.WORDS  #: words in the whole AP (ASSUMPTION, see the module docstring)

#: the exp polynomials and kernel widths the spec's ``ap`` section names (``ap.exp_poly``, ``ap.precision``)
EXP_POLYS = {"chebyshev64": DEFAULT_EXP, "ibert": IBERT_EXP}
PRECISIONS = {"wide": WIDE, "low": LOW_PRECISION}

#: published figures, not measured here: peak memory bandwidth (B/s) and board power (W)
GPUS = {
    "a100": (1555e9, 400.0, "NVIDIA A100 40 GB (SXM): 1,555 GB/s HBM2, 400 W TDP"),
    "rtx3090": (936e9, 350.0, "NVIDIA GeForce RTX 3090: 936 GB/s GDDR6X, 350 W TBP"),
}


@dataclass(frozen=True)
class APFigures:
    """The AP's per-event figures (``cimkit.ap.figures``; the spec's ``ap`` section holds the same fields):
    energies in fJ, ``clock_hz``, ``cell_area_um2``."""

    compare_row_fj: float = F.COMPARE_ROW_FJ
    compare_bit_fj: float = F.COMPARE_BIT_FJ
    write_bit_fj: float = F.WRITE_BIT_FJ
    count_fj_per_row: float = F.COUNT_FJ_PER_ROW
    clock_hz: float = F.CLOCK_HZ
    cell_area_um2: float = F.CELL_AREA_UM2

    @classmethod
    def from_spec(cls, ap) -> APFigures:
        """The figures of a spec's ``ap`` section (``HardwareSpec.ap``)."""
        return cls(
            ap.compare_row_energy_fj,
            ap.compare_bit_energy_fj,
            ap.write_bit_energy_fj,
            ap.count_energy_fj_per_row,
            ap.clock_hz,
            ap.cell_area_um2,
        )

    def energy_per_event_j(self) -> dict:
        return F.energy_per_event_j(self.compare_row_fj, self.compare_bit_fj, self.write_bit_fj, self.count_fj_per_row)

    def latency_per_event_s(self) -> dict:
        return F.latency_per_event_s(self.clock_hz)


DEFAULT_FIGURES = APFigures()


@dataclass(frozen=True)
class SoftmaxCost:
    """Energy (J) and latency (s) of a layer's softmax; ``passes`` per round (AP) and ``tiles`` arrays used
    (0 for a GPU); ``rounds`` sequential rounds; ``breakdown_j`` by part; ``note`` what it is; for the AP
    also ``columns`` (bit cells per word the program needs), ``area_mm2`` (the AP of ``ap_rows`` words
    that wide), ``events`` (the counts priced, ``cimkit.ap.figures.EVENTS``) and ``steps`` (per program
    step: compares, writes, reads, tag counts of one round)."""

    energy_j: float
    latency_s: float
    passes: int
    tiles: int
    rounds: int
    breakdown_j: dict = field(default_factory=dict)
    note: str = ""
    columns: int = 0
    area_mm2: float = 0.0
    events: dict = field(default_factory=dict)
    steps: dict = field(default_factory=dict)

    @property
    def edp_js(self) -> float:
        return self.energy_j * self.latency_s


def pass_events(
    stats: PassStats,
    sim_rows: int,
    rows: int,
    tiles: int,
    tile_rows: int,
    *,
    load_bits: int,
    unload_bits: int,
    rounds: int = 1,
) -> dict:
    """The events (``cimkit.ap.figures.EVENTS``) of a program whose ``stats`` were counted on ``sim_rows``
    rows, run on ``rows`` words in ``tiles`` arrays of ``tile_rows``, in ``rounds`` sequential rounds:
    compares charge every row of every tile; key bits, writes, loads and unloads per row, from the simulated
    per-row activity; per round the passes plus a load and an unload of one row per cycle per tile."""
    return {
        "ap_compare_rows": tiles * tile_rows * stats.compares,
        "ap_compare_row_bits": rows * (stats.compare_row_bits / sim_rows),
        "ap_write_bits": rows * (stats.write_row_bits / sim_rows),
        "ap_io_bits": rows * (load_bits + unload_bits),
        "ap_count_rows": tiles * stats.reductions * tile_rows,
        "ap_cycles": rounds * (stats.cycles + 2 * tile_rows),
    }


def price_events(events: Mapping[str, float], figures: APFigures = DEFAULT_FIGURES) -> tuple[dict, float]:
    """``(energy by part (J), latency (s))`` of ``events``: each event times its figure (the cost model's
    ``ap`` component prices the same products)."""
    parts: dict = {}
    for event, joules in figures.energy_per_event_j().items():
        part = F.ENERGY_EVENTS[event]
        parts[part] = parts.get(part, 0.0) + events[event] * joules
    latency = sum(events[event] * s for event, s in figures.latency_per_event_s().items())
    return parts, latency


def price_passes(
    stats: PassStats,
    sim_rows: int,
    rows: int,
    tiles: int,
    tile_rows: int,
    *,
    load_bits: int,
    unload_bits: int,
    rounds: int = 1,
    clock_hz: float = CLOCK_HZ,
    figures: APFigures | None = None,
) -> SoftmaxCost:
    """``pass_events`` priced (``price_events``) with ``figures`` (default: ``APFigures()`` at ``clock_hz``)."""
    figures = figures if figures is not None else APFigures(clock_hz=clock_hz)
    events = pass_events(
        stats, sim_rows, rows, tiles, tile_rows, load_bits=load_bits, unload_bits=unload_bits, rounds=rounds
    )
    parts, latency = price_events(events, figures)
    return SoftmaxCost(
        sum(parts.values()),
        latency,
        stats.cycles,
        tiles,
        rounds,
        parts,
        "AP model: per-pass figures from CAMSHAP capacitances and cimkit's SRAM write energy",
        events=events,
    )


@lru_cache(maxsize=64)
def _sample_run(
    seq_len: int,
    input_bits: int,
    output_bits: int,
    exp: ExpPoly,
    tile_rows: int,
    input_scale,
    widths: SoftmaxWidths = WIDE,
):
    x = torch.randn(seq_len, generator=torch.Generator().manual_seed(0)) * 2.0
    top = (1 << (input_bits - 1)) - 1
    s = float(input_scale) if input_scale is not None else float(x.abs().max()) / top
    q = torch.clamp(torch.round(x / s), -top - 1, top).to(torch.int64)
    return ap_softmax_codes(
        q, s, input_bits=input_bits, output_bits=output_bits, exp=exp, tile_rows=tile_rows, widths=widths
    )


def _check_program(fn: str, exp, widths, figures) -> None:
    if not isinstance(exp, ExpPoly):
        raise InputError(
            f"{fn}: exp = {short_repr(exp)} is not allowed; give an ExpPoly ({', '.join(EXP_POLYS)}: "
            f"cimkit.ap.cost.EXP_POLYS)"
        )
    _check_widths(fn, widths)
    if figures is not None and not isinstance(figures, APFigures):
        raise InputError(f"{fn}: figures = {short_repr(figures)} is not allowed; give an APFigures or None")


@dataclass(frozen=True)
class SoftmaxEvents:
    """``events`` (``cimkit.ap.figures.EVENTS``) of one softmax layer on the AP and what fixes them:
    ``passes`` per round, ``tiles``, ``rounds``, ``columns`` (bit cells per word), ``steps`` (per program
    step: compares, writes, reads, tag counts)."""

    events: Mapping[str, float]
    passes: int
    tiles: int
    rounds: int
    columns: int
    steps: Mapping[str, object]


@lru_cache(maxsize=1024)
def softmax_events(
    seq_len: int,
    softmax_rows: int,
    *,
    input_bits: int = 16,
    output_bits: int = 8,
    exp: ExpPoly = DEFAULT_EXP,
    widths: SoftmaxWidths = WIDE,
    tile_rows: int = TILE_ROWS,
    ap_rows: int = AP_ROWS,
    input_scale: float | None = None,
) -> SoftmaxEvents:
    """Events of ``softmax_rows`` softmax rows of ``seq_len`` scores each on the AP: the program is simulated
    once on a sample row of ``seq_len`` scores (Gaussian, std 2, seeded; ``input_scale`` None: max|x| over
    the largest code) to count its passes and write activity; ``tiles`` = rows x ceil(seq_len / tile_rows)
    arrays, ``rounds`` = tiles over what ``ap_rows`` words hold."""
    fn = "softmax_events"
    seq_len = check_int(fn, "seq_len", seq_len, 1, 1 << 24, "scores per softmax row")
    softmax_rows = check_int(fn, "softmax_rows", softmax_rows, 1, 1 << 48, "softmax rows in the layer")
    tile_rows = check_int(fn, "tile_rows", tile_rows, 1, 1 << 20, "rows of one AP array")
    ap_rows = check_int(fn, "ap_rows", ap_rows, tile_rows, 1 << 40, "words in the whole AP, at least one tile")
    _check_program(fn, exp, widths, None)
    r = _sample_run(seq_len, input_bits, output_bits, exp, tile_rows, input_scale, widths)
    tiles = softmax_rows * math.ceil(seq_len / tile_rows)
    rounds = math.ceil(tiles / (ap_rows // tile_rows))
    events = pass_events(
        r.stats,
        r.rows,
        softmax_rows * seq_len,
        tiles,
        tile_rows,
        load_bits=r.widths["q"] + r.widths["index"],
        unload_bits=output_bits + 1,
        rounds=rounds,
    )
    # read-only views: the result is cached, so a caller must not be able to change it for the next one
    return SoftmaxEvents(
        MappingProxyType(events), r.stats.cycles, tiles, rounds, r.columns, MappingProxyType(dict(r.stats.by_step))
    )


def ap_softmax_cost(
    seq_len: int,
    heads: int,
    *,
    input_bits: int = 16,
    output_bits: int = 8,
    exp: ExpPoly = DEFAULT_EXP,
    tile_rows: int = TILE_ROWS,
    ap_rows: int = AP_ROWS,
    input_scale: float | None = None,
    queries: int | None = None,
    widths: SoftmaxWidths = WIDE,
    figures: APFigures | None = None,
) -> SoftmaxCost:
    """Softmax of one attention layer (``heads`` x ``queries`` rows of ``seq_len`` scores; ``queries``
    defaults to ``seq_len``: prefill) on the AP: ``passes`` per round (independent of the number of rows),
    ``tiles`` arrays, ``rounds`` = tiles over what ``ap_rows`` holds; ``softmax_events`` priced with
    ``figures`` (default ``APFigures()``), ``area_mm2`` the AP of ``ap_rows`` words of the program's
    columns. ``widths``: the kernel (``WIDE`` or ``LOW_PRECISION``)."""
    fn = "ap_softmax_cost"
    seq_len = check_int(fn, "seq_len", seq_len, 1, 1 << 24, "scores per softmax row")
    heads = check_int(fn, "heads", heads, 1, 1 << 16, "attention heads")
    queries = seq_len if queries is None else check_int(fn, "queries", queries, 1, 1 << 24, "softmax rows per head")
    _check_program(fn, exp, widths, figures)
    figures = figures if figures is not None else DEFAULT_FIGURES
    ev = softmax_events(
        seq_len,
        heads * queries,
        input_bits=input_bits,
        output_bits=output_bits,
        exp=exp,
        widths=widths,
        tile_rows=tile_rows,
        ap_rows=ap_rows,
        input_scale=input_scale,
    )
    parts, latency = price_events(ev.events, figures)
    return SoftmaxCost(
        sum(parts.values()),
        latency,
        ev.passes,
        ev.tiles,
        ev.rounds,
        parts,
        f"AP model ({widths.name} kernel, {exp.name} exp): per-pass figures from CAMSHAP capacitances "
        f"and cimkit's SRAM write energy",
        ev.columns,
        float(F.area_mm2(ap_rows, ev.columns, figures.cell_area_um2)),
        dict(ev.events),
        dict(ev.steps),
    )


def gpu_softmax_roofline(
    seq_len: int, heads: int, gpu: str = "a100", *, bytes_per_element: int = 2, queries: int | None = None
) -> SoftmaxCost:
    """ROOFLINE FROM PUBLISHED FIGURES, NOT MEASURED: softmax over a ``heads x queries x seq_len`` score
    tensor (fp16 by default: 2 bytes) is memory bound: it reads the scores and writes the probabilities
    once, ``2 x elements x bytes`` at the GPU's peak bandwidth; energy = board power x that time. Both are
    optimistic for the GPU's time (peak bandwidth, no launch overhead) and pessimistic-to-fair for its
    energy (full board power)."""
    fn = "gpu_softmax_roofline"
    if gpu not in GPUS:
        raise InputError(f"{fn}: gpu = {gpu!r} is not allowed; allowed: {', '.join(GPUS)}")
    seq_len = check_int(fn, "seq_len", seq_len, 1, 1 << 24, "scores per softmax row")
    heads = check_int(fn, "heads", heads, 1, 1 << 16, "attention heads")
    queries = seq_len if queries is None else check_int(fn, "queries", queries, 1, 1 << 24, "softmax rows per head")
    bytes_per_element = check_int(fn, "bytes_per_element", bytes_per_element, 1, 8, "2 for fp16, 4 for fp32")
    bw, watts, what = GPUS[gpu]
    moved = 2.0 * heads * queries * seq_len * bytes_per_element
    t = moved / bw
    return SoftmaxCost(
        watts * t,
        t,
        0,
        0,
        1,
        {"board power x time": watts * t},
        f"roofline from published figures, not measured: {what}",
    )
