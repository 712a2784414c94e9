"""The analog-CAM chip description: array shape, precision, circuit constants and technology, read by
the array mapping and the energy/latency/area model (``cimkit.cam.cost``).

Every default says where it comes from. Sources:
  [Li20]  C. Li et al., "Analog content-addressable memories with memristors", Nat. Commun. 11, 1638 (2020):
          the 6T2M cell, 16 nm layout, SL_hi = 0.5 V, the ML latency and bound drift that grow with
          columns (4-bit cells hold up to 64 columns), rows without effect up to 512.
  [Ped21] G. Pedretti et al., "Tree-based machine learning performed in-memory with memristive analog CAM",
          Nat. Commun. 12, 5806 (2021): one row per root-to-leaf path, don't-care cells, leaf memory.
  [XT23]  G. Pedretti et al., "X-TIME: an in-memory engine for accelerating machine learning on tabular data
          with CAMs", arXiv 2304.01285, and its public simulator (github.com/HewlettPackard/X-TIME): 16 nm,
          1 GHz, a 4-cycle aCAM search, 256-row arrays (hyper-parameters: 256 x 16), an 8-bit bound stored
          as two 4-bit cells, and the energy terms DL/ML/SL/DAC/SA/PC/MMR/memory/adder/NoC.
  [MS24]  T. Molom-Ochir et al., "MonoSparse-CAM", arXiv 2407.11071: sparsity and monotone match lines.
Figures no publication gives per component (X-TIME's simulator ships placeholders of 1 uW and 1 fF) are
marked "assumption", with the reasoning, so a user can replace them with their own circuit's.
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import Field, model_validator

from ..spec.model import SpecModel, StrictModel


class CamCircuit(StrictModel):
    """Per-event circuit constants of a 6T2M aCAM array (at ``node_nm``). The digital parts (leaf SRAM,
    adders) are the cost model's shared components with their own sources (``cimkit.cost.components``,
    scaled to ``node_nm`` by ``cimkit.cost.tech``), not the crossbar's NeuroSim calibration. Unknown keys,
    booleans and non-finite numbers are refused, as in every spec section."""

    search_time_ns: float = Field(1.0, gt=0, description="one match-line evaluation (ns); [XT23] budgets 4 cycles "
                                  "at 1 GHz per array search, of which we count 1 ns of SL current (assumption)")
    sl_voltage_v: float = Field(0.5, gt=0, description="search-line (divider) supply: SL_hi = 0.5 V [Li20]")
    ml_voltage_v: float = Field(0.8, gt=0, description="match-line precharge level: the 16 nm supply (assumption)")
    g_min_us: float = Field(1.0, gt=0, description="memristor high-resistance state (uS) (assumption, TaOx range)")
    g_max_us: float = Field(100.0, gt=0, description="memristor low-resistance state (uS) (assumption, TaOx range)")
    ml_cap_ff_per_cell: float = Field(0.5, gt=0, description="match-line load of one cell: two pull-down drains "
                                      "and ~1 um of wire at 0.2 fF/um (assumption)")
    ml_cap_ff_fixed: float = Field(2.0, ge=0, description="precharge device and sense-amplifier input (assumption)")
    dl_cap_ff_per_row: float = Field(0.3, gt=0, description="data-line load of one cell: two divider gates and "
                                     "wire (assumption)")
    dac_energy_pj: float = Field(0.05, ge=0, description="one data-line DAC conversion, 8 bits (assumption)")
    sa_energy_fj: float = Field(5.0, ge=0, description="one match-line sense (assumption)")
    encoder_energy_pj: float = Field(0.1, ge=0, description="match vector to leaf address (X-TIME's MMR), per "
                                     "array search (assumption)")
    cell_area_um2: float = Field(0.5, gt=0, description="6T2M cell; [Li20] drew it at 16 nm with oversized "
                                 "transistors: ~7x a 6T SRAM cell (assumption)")
    dac_area_um2: float = Field(150.0, ge=0, description="one column DAC (assumption)")
    sa_area_um2: float = Field(2.0, ge=0, description="one match-line sense amplifier and precharge (assumption)")
    noc_energy_pj_per_bit_mm: float = Field(
        0.064, ge=0, description="network on chip, per bit and mm of wire: C V^2 with the 0.2 fF/um of wire "
        "assumed for the match line, at the 0.8 V supply, half the bits toggling (assumption)")
    noc_area_fraction: float = Field(
        0.10, ge=0, description="tree network on chip (4-port routers, X-TIME) as a fraction of the arrays', "
        "DACs', sense amplifiers' and leaf memory's area (assumption)")


class CamSpec(SpecModel):
    """An analog-CAM chip for tree ensembles: arrays of ``rows`` x ``cols`` features."""

    _what: ClassVar[str] = "analog-CAM description"

    name: str = "xtime-16nm"
    rows: int = Field(256, ge=1, le=4096, description="rows (root-to-leaf paths) per array [XT23]")
    cols: int = Field(16, ge=1, le=1024, description="features per array [XT23 hyper-parameters: 256 x 16]")
    bits: int = Field(8, ge=1, le=16, description="input and bound precision (bits) [XT23]")
    bits_per_cell: int = Field(4, ge=1, le=8, description="bits one memristor pair resolves: an 8-bit bound "
                               "is two 4-bit cells [XT23]; [Li20] holds 4 bits up to 64 columns")
    group_cols: int = Field(4, ge=1, le=1024, description="features per match-line segment, evaluated one after "
                            "another with monotone row disabling (MonoSparse) [MS24]")
    leaf_bits: int = Field(16, ge=1, le=64, description="bits of one stored leaf value (assumption)")
    node_nm: float = Field(16.0, ge=7, le=130, description="technology node [Li20, XT23]")
    supply_v: float = Field(0.8, gt=0, le=2, description="digital supply (assumption: 16 nm nominal)")
    clock_hz: float = Field(1e9, gt=0, description="digital clock: 1 GHz [XT23]")
    search_cycles: int = Field(4, ge=1, le=64, description="clock cycles of one array search (DAC, match line, "
                               "sense): 4 [XT23]; a sequential segment costs one search")
    circuit: CamCircuit = CamCircuit()

    @model_validator(mode="after")
    def _consistent(self) -> "CamSpec":
        if self.group_cols > self.cols:
            raise ValueError(f"group_cols ({self.group_cols}) must be <= cols ({self.cols})")
        if self.circuit.g_min_us >= self.circuit.g_max_us:
            raise ValueError(f"circuit.g_min_us ({self.circuit.g_min_us}) must be < circuit.g_max_us "
                             f"({self.circuit.g_max_us})")
        return self

    @property
    def cells_per_feature(self) -> int:
        """Physical cells that store one feature's bound pair at ``bits`` precision."""
        return math.ceil(self.bits / self.bits_per_cell)
