"""Price of the AP softmax (``ap_softmax_cost``) and a GPU roofline to compare it with
(``gpu_softmax_roofline``); ``benchmarks/bench_ap_softmax.py`` prints their EDP side by side.

AP figures (per pass, per row; every number with its source or labelled an assumption):

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

Write activity (rows written per write pass) is data dependent; it is measured by simulating the program
on a sample row of the given length (Gaussian scores, std 2, seeded) and priced per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from ..cost.components import primitive_energy_pj
from ..cost.constants import SRAM_ENERGY_PJ_PER_BYTE
from ..errors import InputError
from ..ops.grid import check_int
from ..ops.intsoftmax import DEFAULT_EXP, ExpPoly
from .machine import PassStats
from .softmax import TILE_ROWS, ap_softmax_codes

CLOCK_HZ = 1e9  #: ASSUMPTION (see module docstring)
COMPARE_ROW_J = (14.74 + 18.0) * 1e-15  #: precharge + sense per row per compare (CAMSHAP, acam.md)
COMPARE_ROW_BIT_J = (87.6 / 128 + 46.14 / 256) * 1e-15  #: match line + search line per key bit and row (acam.md)
WRITE_BIT_J = SRAM_ENERGY_PJ_PER_BYTE / 8 * 1e-12  #: per written bit (cimkit SRAM figure; ASSUMPTION for a CAM cell)
AP_ROWS = 1 << 20  #: words in the whole AP (ASSUMPTION, see module docstring)

#: published figures, not measured here: peak memory bandwidth (B/s) and board power (W)
GPUS = {"a100": (1555e9, 400.0, "NVIDIA A100 40 GB (SXM): 1,555 GB/s HBM2, 400 W TDP"),
        "rtx3090": (936e9, 350.0, "NVIDIA GeForce RTX 3090: 936 GB/s GDDR6X, 350 W TBP")}


@dataclass(frozen=True)
class SoftmaxCost:
    """Energy (J) and latency (s) of a layer's softmax; ``passes`` per round (AP) and ``tiles`` arrays used
    (0 for a GPU); ``rounds`` sequential rounds; ``breakdown_j`` by part; ``note`` what it is."""

    energy_j: float
    latency_s: float
    passes: int
    tiles: int
    rounds: int
    breakdown_j: dict = field(default_factory=dict)
    note: str = ""

    @property
    def edp_js(self) -> float:
        return self.energy_j * self.latency_s


def price_passes(stats: PassStats, sim_rows: int, rows: int, tiles: int, tile_rows: int, *, load_bits: int,
                 unload_bits: int, rounds: int = 1, clock_hz: float = CLOCK_HZ) -> SoftmaxCost:
    """The one pricing formula: ``stats`` of a program run on ``sim_rows`` rows, priced for ``rows`` words in
    ``tiles`` arrays of ``tile_rows`` (compares charge every row of every tile; writes and loads per row,
    from the simulated per-row activity), in ``rounds`` sequential rounds."""
    phys = tiles * tile_rows
    compare = phys * (stats.compares * COMPARE_ROW_J) + rows * (stats.compare_row_bits / sim_rows) * COMPARE_ROW_BIT_J
    write = rows * (stats.write_row_bits / sim_rows) * WRITE_BIT_J
    count = tiles * stats.reductions * tile_rows * primitive_energy_pj("add", 8) * 1e-12
    io = rows * (load_bits + unload_bits) * WRITE_BIT_J
    per_round_cycles = stats.cycles + 2 * tile_rows  # + load and unload, one row per cycle per tile
    parts = {"compare": compare, "write": write, "tag count": count, "load/unload": io}
    return SoftmaxCost(sum(parts.values()), rounds * per_round_cycles / clock_hz, stats.cycles, tiles, rounds, parts,
                       "AP model: per-pass figures from CAMSHAP capacitances and cimkit's SRAM write energy")


@lru_cache(maxsize=64)
def _sample_run(seq_len: int, input_bits: int, output_bits: int, exp: ExpPoly, tile_rows: int, input_scale):
    x = torch.randn(seq_len, generator=torch.Generator().manual_seed(0)) * 2.0
    top = (1 << (input_bits - 1)) - 1
    s = float(input_scale) if input_scale is not None else float(x.abs().max()) / top
    q = torch.clamp(torch.round(x / s), -top - 1, top).to(torch.int64)
    return ap_softmax_codes(q, s, input_bits=input_bits, output_bits=output_bits, exp=exp, tile_rows=tile_rows)


def ap_softmax_cost(seq_len: int, heads: int, *, input_bits: int = 16, output_bits: int = 8,
                    exp: ExpPoly = DEFAULT_EXP, tile_rows: int = TILE_ROWS, ap_rows: int = AP_ROWS,
                    input_scale: float | None = None, queries: int | None = None) -> SoftmaxCost:
    """Softmax of one attention layer (``heads`` x ``queries`` rows of ``seq_len`` scores; ``queries``
    defaults to ``seq_len``: prefill) on the AP: ``passes`` per round (independent of the number of rows),
    ``tiles`` arrays, ``rounds`` = tiles over what ``ap_rows`` holds. The program is simulated once on a
    sample row of ``seq_len`` scores to count passes and write activity."""
    fn = "ap_softmax_cost"
    seq_len = check_int(fn, "seq_len", seq_len, 1, 1 << 24, "scores per softmax row")
    heads = check_int(fn, "heads", heads, 1, 1 << 16, "attention heads")
    queries = seq_len if queries is None else check_int(fn, "queries", queries, 1, 1 << 24, "softmax rows per head")
    tile_rows = check_int(fn, "tile_rows", tile_rows, 1, 1 << 20, "rows of one AP array")
    ap_rows = check_int(fn, "ap_rows", ap_rows, tile_rows, 1 << 40, "words in the whole AP, at least one tile")
    r = _sample_run(seq_len, input_bits, output_bits, exp, tile_rows, input_scale)
    softmax_rows = heads * queries
    tiles = softmax_rows * math.ceil(seq_len / tile_rows)
    rounds = math.ceil(tiles / (ap_rows // tile_rows))
    load_bits, unload_bits = r.widths["q"] + r.widths["index"], output_bits + 1
    return price_passes(r.stats, r.rows, softmax_rows * seq_len, tiles, tile_rows, load_bits=load_bits,
                        unload_bits=unload_bits, rounds=rounds)


def gpu_softmax_roofline(seq_len: int, heads: int, gpu: str = "a100", *, bytes_per_element: int = 2,
                         queries: int | None = None) -> SoftmaxCost:
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
    return SoftmaxCost(watts * t, t, 0, 0, 1, {"board power x time": watts * t},
                       f"roofline from published figures, not measured: {what}")
