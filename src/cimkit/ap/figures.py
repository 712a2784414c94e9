"""The associative processor's price list: the events an AP program is counted in and the energy, time and
area of each, in the one place both ``cimkit.ap.cost.ap_softmax_cost`` and the cost model's ``ap``
component (``cimkit.cost.components.AssociativeProcessor``) read. Torch-free and free of other cimkit
imports, so that ``cimkit.spec`` (the ``ap`` section's defaults) and ``cimkit.cost`` can import it.

Events of one program run on a layer (``cimkit.ap.cost.softmax_events`` counts them from a simulated run):

* ``ap_compare_rows``: rows whose match lines a compare precharges and senses (every row of every active
  tile, per compare pass);
* ``ap_compare_row_bits``: rows x key bits searched (match-line and search-line charge per key column);
* ``ap_write_bits``: cell bits written by write passes (data dependent: measured on a simulated row);
* ``ap_io_bits``: cell bits of the inputs loaded (scores and row indices) and of the outputs read back;
* ``ap_count_rows``: rows summed by the per-tile tag counts (responder counts);
* ``ap_cycles``: cycles on the critical path: the passes of a round plus loading and unloading a tile (one
  row per cycle per tile), times the sequential rounds.

Figures (defaults; every number with its source or labelled an assumption; ``cimkit.ap.cost`` says more):

* ``CLOCK_HZ`` 1 GHz, one compare, write, read or tag count per cycle. ASSUMPTION (CAMSHAP clocks its aCAM
  at 1 GHz; a 1-bit CAM search in one cycle is the AP tutorial's cycle count, arXiv 2203.00662).
* ``COMPARE_ROW_FJ`` 32.74 fJ per row and compare: match-line precharge 14.74 fJ + sense 18.0 fJ (CAMSHAP
  hw.json C_pre, C_mlso; shared/reference/acam.md).
* ``COMPARE_BIT_FJ`` 0.8646 fJ per key bit and row: match line 87.6 fJ per row at 128 columns (C_ml) plus
  search line 46.14 fJ per driven column at 256 rows (acam.md). ASSUMPTION: an SRAM-based digital AP's
  match line priced with CAMSHAP's analog-CAM capacitances.
* ``WRITE_BIT_FJ`` 12.875 fJ per written bit: cimkit's SRAM figure 0.103 pJ per byte
  (``cimkit.cost.constants.SRAM_ENERGY_PJ_PER_BYTE``, NeuroSim-calibrated at 22 nm). ASSUMPTION: a CAM-cell
  write costs an SRAM-cell write.
* ``COUNT_FJ_PER_ROW`` 30 fJ per row of a tag count: one 1-bit add at Horowitz's 45 nm 8-bit add energy
  (``cimkit.cost.constants.HOROWITZ_ADD8_PJ``; an upper bound for a popcount tree of mostly narrow adders).
* ``CELL_AREA_UM2`` 0.52 um^2 per bit cell: CAMSHAP's aCAM array area per 4-bit cell (acam.md: 0.034 mm^2
  per 256 x 128-feature array, two cells per feature). ASSUMPTION: a binary AP cell with its share of the
  array's periphery is that size (no digital-CAM cell area was readable here).
* ``WORDS`` 2**20 words in the whole AP (about 60 MB of CAM at the ~470 columns the wide softmax program
  needs; ASSUMPTION, the order of an A100's on-chip SRAM); ``TILE_ROWS`` 256 rows per array (CAMSHAP /
  X-TIME's 256-row arrays, acam.md).

The figures are the AP's own: the cost model does not scale them with ``technology.node_nm``.
"""

from __future__ import annotations

CLOCK_HZ = 1e9  #: ASSUMPTION (see the module docstring)
COMPARE_ROW_FJ = 14.74 + 18.0  #: precharge + sense per row per compare (CAMSHAP, acam.md)
COMPARE_BIT_FJ = 87.6 / 128 + 46.14 / 256  #: match line + search line per key bit and row (acam.md)
WRITE_BIT_FJ = (
    0.103 / 8 * 1e3
)  #: per written bit: cost.constants.SRAM_ENERGY_PJ_PER_BYTE / 8 (ASSUMPTION for a CAM cell)
COUNT_FJ_PER_ROW = 0.03 * 1e3  #: per row of a tag count: cost.constants.HOROWITZ_ADD8_PJ (one 1-bit add, upper bound)
CELL_AREA_UM2 = 0.52  #: per bit cell (CAMSHAP aCAM cell; ASSUMPTION for a binary AP cell)
WORDS = 1 << 20  #: words in the whole AP (ASSUMPTION)
TILE_ROWS = 256  #: rows per AP array (CAMSHAP / X-TIME arrays)

#: events priced by energy, and the part of a cost breakdown each belongs to
ENERGY_EVENTS = {
    "ap_compare_rows": "compare",
    "ap_compare_row_bits": "compare",
    "ap_write_bits": "write",
    "ap_io_bits": "load/unload",
    "ap_count_rows": "tag count",
}
#: events priced by time
LATENCY_EVENTS = ("ap_cycles",)
EVENTS = (*ENERGY_EVENTS, *LATENCY_EVENTS)


def energy_per_event_j(
    compare_row_fj=COMPARE_ROW_FJ,
    compare_bit_fj=COMPARE_BIT_FJ,
    write_bit_fj=WRITE_BIT_FJ,
    count_fj_per_row=COUNT_FJ_PER_ROW,
) -> dict:
    """Joules per event (``ENERGY_EVENTS``) from the per-pass figures in fJ (numbers or numpy arrays)."""
    return {
        "ap_compare_rows": compare_row_fj * 1e-15,
        "ap_compare_row_bits": compare_bit_fj * 1e-15,
        "ap_write_bits": write_bit_fj * 1e-15,
        "ap_io_bits": write_bit_fj * 1e-15,
        "ap_count_rows": count_fj_per_row * 1e-15,
    }


def latency_per_event_s(clock_hz=CLOCK_HZ) -> dict:
    """Seconds per event (``LATENCY_EVENTS``): one cycle of ``clock_hz``."""
    return {"ap_cycles": 1.0 / clock_hz}


def area_mm2(words, columns, cell_area_um2=CELL_AREA_UM2):
    """Area (mm^2) of an AP of ``words`` rows of ``columns`` bit cells of ``cell_area_um2`` each."""
    return words * columns * cell_area_um2 * 1e-6
