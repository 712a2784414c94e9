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
  [CS24]  HPE's CAMSHAP simulator (ICCAD 2024, the X-TIME group's; github.com/HewlettPackard/CAMSHAP,
          snapshot d4bdee6 of 2025-01-08): the aCAM parameters of json/hw.json, the energy formulas of
          src/acam.cc and the areas of plot/constant.py (line numbers of that snapshot).
Figures no source gives per component (X-TIME's simulator ships placeholders of 1 uW and 1 fF) are
marked "assumption", with the reasoning, so a user can replace them with their own circuit's.
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import Field, model_validator

from ..spec.model import SpecModel, StrictModel


class CamCircuit(StrictModel):
    """Per-event circuit constants of a 6T2M aCAM array (at ``node_nm``). The analog figures are HPE's
    CAMSHAP simulator's ([CS24]); the digital parts (leaf SRAM, adders) are the cost model's shared
    components with their own sources (``cimkit.cost.components``, scaled to ``node_nm`` by
    ``cimkit.cost.tech``), not the crossbar's NeuroSim calibration. Unknown keys, booleans and non-finite
    numbers are refused, as in every spec section."""

    search_time_ns: float = Field(
        1.0,
        gt=0,
        description="T_clk (ns): the search-line current flows for one clock "
        "of an array search and a data line is driven for one clock; T_clk = 1/freq at "
        "1 GHz [CS24 json/hw.json l.3, src/acam.cc l.66]",
    )
    sl_voltage_v: float = Field(
        0.8, gt=0, description="search-line voltage V_sl across each divider branch [CS24 json/hw.json l.42 Vsl]"
    )
    ml_voltage_v: float = Field(
        0.6,
        gt=0,
        description="match-line precharge level V_ml; also the gate drive that "
        "sets the divider clamp [CS24 json/hw.json l.40 Vml]",
    )
    dl_voltage_v: float = Field(0.5, gt=0, description="data-line drive V_dd [CS24 json/hw.json l.43 Vdd]")
    g_min_us: float = Field(
        1.0,
        gt=0,
        description="lowest programmed level (uS) of the conductance window; "
        "levels g_min + k (g_max - g_min) / 2^bits_per_cell, k = 0..2^bits_per_cell - 1 "
        "[CS24 json/hw.json l.30 gMin; level list tests/util.py l.684-686]",
    )
    g_max_us: float = Field(
        100.0,
        gt=0,
        description="upper end of the conductance window (uS); the top level is "
        "one step below it [CS24 json/hw.json l.29 gMax]",
    )
    g_hrs_us: float = Field(
        0.01,
        gt=0,
        description="an open (don't-care) lower bound is programmed at HRS, 10 nS, "
        "below the window; also an unprogrammed (erased) cell's state (assumption for the "
        "latter) [CS24 json/hw.json l.31 gHRS, src/acam.cc l.280]",
    )
    g_lrs_us: float = Field(
        110.0,
        gt=0,
        description="an open (don't-care) upper bound is programmed at LRS, 110 uS, "
        "above the window [CS24 json/hw.json l.32 gLRS, src/acam.cc l.281]",
    )
    k1_ua_per_v2: float = Field(
        100.0,
        gt=0,
        description="transconductance K1 (uA/V^2) of the transistor that "
        "limits each divider branch: a branch carries at most 0.5 K1 (V_ml - V_th)^2 "
        "[CS24 json/hw.json l.38 K1, src/acam.cc l.72]",
    )
    v_th_v: float = Field(
        0.36,
        ge=0,
        description="threshold voltage V_th of the clamping transistor [CS24 json/hw.json l.39 Vth, src/acam.cc l.72]",
    )
    ml_cap_ff_per_col: float = Field(
        1.9,
        gt=0,
        description="match-line capacitance per feature column (the "
        "feature's cells_per_feature cells): C_ml V_ml^2 per column and enabled row "
        "[CS24 json/hw.json l.33 Cml, src/acam.cc l.71]",
    )
    precharge_cap_ff: float = Field(
        40.95,
        ge=0,
        description="precharge capacitance per row: C_pre V_ml^2 per "
        "enabled row and segment [CS24 json/hw.json l.34 Cpre, src/acam.cc l.70]",
    )
    sense_cap_ff: float = Field(
        50.0,
        ge=0,
        description="match-line sense output capacitance per row: C_mlso "
        "V_ml^2 per sense [CS24 json/hw.json l.35 Cmlso, src/acam.cc l.69]",
    )
    dl_cap_ff_per_row: float = Field(
        0.324, gt=0, description="data-line capacitance per row [CS24 json/hw.json l.36 Cdl]"
    )
    dl_wire_ohm_per_row: float = Field(
        9.5625,
        ge=0,
        description="data-line wire resistance per row; the driver's "
        "output resistance is sized so the line settles in one T_clk: R_out = "
        "T_clk / (rows C_dl) - R_w (rows - 1) / 2, and a driven line costs "
        "T_clk V_dd^2 / R_out [CS24 json/hw.json l.37 Rw, src/acam.cc l.67-68]",
    )
    dac_energy_pj: float = Field(
        0.0,
        ge=0,
        description="a separate DAC conversion per driven line: 0, because "
        "CAMSHAP's data-line drive (dl_* fields) is its whole DAC energy "
        "[CS24 src/acam.cc l.68]; set it to price a DAC of your own",
    )
    encoder_energy_pj: float = Field(
        0.1,
        ge=0,
        description="match vector to leaf address (X-TIME's MMR), per "
        "array search (assumption: no source gives a per-search figure)",
    )
    cell_area_um2: float = Field(
        0.52,
        gt=0,
        description="one 4-bit 6T2M cell: CAMSHAP's aCAM array, 0.034 mm^2 "
        "per 256 x 128-feature core of two cells per feature, divided by its 65,536 cells "
        "(whether DACs and sense amplifiers are inside is unstated) "
        "[CS24 plot/constant.py l.60]",
    )
    dac_area_um2: float = Field(150.0, ge=0, description="one column DAC (assumption: no source gives it)")
    sa_area_um2: float = Field(
        2.0, ge=0, description="one match-line sense amplifier and precharge (assumption: no source gives it)"
    )
    noc_energy_pj_per_bit_mm: float = Field(
        0.064,
        ge=0,
        description="network on chip, per bit and mm of wire: C V^2 with 0.2 fF/um of wire at the "
        "0.8 V supply, half the bits toggling (assumption: no source gives it)",
    )
    noc_area_fraction: float = Field(
        0.10,
        ge=0,
        description="tree network on chip (4-port routers, X-TIME) as a fraction of the arrays', "
        "DACs', sense amplifiers' and leaf memory's area (assumption: no source gives it)",
    )

    @property
    def branch_clamp_a(self) -> float:
        """The most current one divider branch carries (A): 0.5 K1 (V_ml - V_th)^2, 0 when V_ml <= V_th
        [CS24 src/acam.cc l.72, 282-283]."""
        return 0.5 * self.k1_ua_per_v2 * 1e-6 * max(self.ml_voltage_v - self.v_th_v, 0.0) ** 2


class CamSpec(SpecModel):
    """An analog-CAM chip for tree ensembles: arrays of ``rows`` x ``cols`` features."""

    _what: ClassVar[str] = "analog-CAM description"

    name: str = "xtime-16nm"
    rows: int = Field(256, ge=1, le=4096, description="rows (root-to-leaf paths) per array [XT23]")
    cols: int = Field(16, ge=1, le=1024, description="features per array [XT23 hyper-parameters: 256 x 16]")
    bits: int = Field(8, ge=1, le=16, description="input and bound precision (bits) [XT23]")
    bits_per_cell: int = Field(
        4,
        ge=1,
        le=8,
        description="bits one memristor pair resolves: an 8-bit bound "
        "is two 4-bit cells [XT23]; [Li20] holds 4 bits up to 64 columns",
    )
    group_cols: int = Field(
        4,
        ge=1,
        le=1024,
        description="features per match-line segment, evaluated one after "
        "another with monotone row disabling (MonoSparse) [MS24]",
    )
    leaf_bits: int = Field(16, ge=1, le=64, description="bits of one stored leaf value (assumption)")
    node_nm: float = Field(16.0, ge=7, le=130, description="technology node [Li20, XT23]")
    supply_v: float = Field(0.8, gt=0, le=2, description="digital supply (assumption: 16 nm nominal)")
    clock_hz: float = Field(1e9, gt=0, description="digital clock: 1 GHz [XT23]")
    search_cycles: int = Field(
        4,
        ge=1,
        le=64,
        description="clock cycles of one array search (DAC, match line, "
        "sense): 4 [XT23]; a sequential segment costs one search",
    )
    circuit: CamCircuit = CamCircuit()

    @model_validator(mode="after")
    def _consistent(self) -> "CamSpec":
        if self.group_cols > self.cols:
            raise ValueError(f"group_cols ({self.group_cols}) must be <= cols ({self.cols})")
        if self.circuit.g_min_us >= self.circuit.g_max_us:
            raise ValueError(
                f"circuit.g_min_us ({self.circuit.g_min_us}) must be < circuit.g_max_us ({self.circuit.g_max_us})"
            )
        c = self.circuit
        settle_s = 0.5 * c.dl_wire_ohm_per_row * (self.rows - 1) * self.rows * c.dl_cap_ff_per_row * 1e-15
        if settle_s >= c.search_time_ns * 1e-9:
            raise ValueError(
                f"rows ({self.rows}): the data line's own wire delay, R_w (rows - 1) / 2 x rows C_dl = "
                f"{settle_s * 1e9:.3g} ns, is not below circuit.search_time_ns ({c.search_time_ns} ns), so "
                "no driver settles it in one clock (CAMSHAP's data-line model); use fewer rows, a "
                "longer search_time_ns or a smaller circuit.dl_wire_ohm_per_row / dl_cap_ff_per_row"
            )
        return self

    @property
    def cells_per_feature(self) -> int:
        """Physical cells that store one feature's bound pair at ``bits`` precision."""
        return math.ceil(self.bits / self.bits_per_cell)
