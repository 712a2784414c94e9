"""Per-unit constants of the cost model at the 22 nm / 0.8 V reference point.

Other nodes and supplies scale them with ``tech.py`` (Stillmaker & Baas 2017). Where a figure is
calibrated, the calibration point is DNN+NeuroSim V1.3's VGG8 run on this project's machines
(shared/reference/neurosim.md: component totals of area, energy and latency), divided by the
matching event or instance count of our mapping of the same network; ResNet-18 then tests the model
on a network it was not fitted to. Scaling laws with bits, rows or columns follow the circuits:
a multi-level sense amplifier (flash) needs 2^b - 1 comparators, a SAR ADC b cycles and a 2^b-unit
capacitor DAC, array read energy V^2 G t per active cell.
"""

from .tech import area_factor, energy_factor

# NeuRRAM's process (130 nm; 1.2 V core supply assumed) relative to the 22 nm / 0.8 V reference
_NEURRAM_ENERGY = float(energy_factor(130.0, 1.2))
_NEURRAM_AREA = float(area_factor(130.0))

# ---- ADCs -------------------------------------------------------------------------------------------
# Multi-level sense amplifier (NeuroSim's default "MLSA", a flash converter): per comparator level.
# Calibrated: VGG8 ADC area 2.45e7 um^2 and ADC energy 2.28e7 pJ (5-bit, 31 levels) over our ADC
# instance and conversion counts.
MLSA_AREA_UM2_PER_LEVEL = 12.86
MLSA_ENERGY_PJ_PER_LEVEL = 0.00438
MLSA_TIME_NS = 2.04  # NeuroSim's sensing cycle at 22 nm: it limits the clock to 2.04 ns (490 MHz)
# SAR ADC: logic and comparator per bit plus a binary-weighted capacitor DAC of 2^b units. Scaled so
# that a 5-bit SAR has about the area and 2x the energy per conversion of the 5-bit MLSA above, the
# ratio NeuroSim's SAR and MLSA options show at this resolution (assumption, not a NeuroSim figure).
SAR_AREA_UM2_PER_BIT = 60.0
SAR_CAP_AREA_UM2 = 5.0
SAR_ENERGY_PJ_PER_BIT = 0.03
SAR_CAP_ENERGY_PJ = 0.0015
SAR_TIME_NS_PER_BIT = 0.5
# The frontier of published ADCs (B. Murmann, "ADC Performance Survey 1997-2023"): Walden figure of
# merit near 1 fJ per conversion step for low-resolution, moderate-speed designs.
SURVEY_FOM_PJ_PER_STEP = 0.001
SURVEY_AREA_UM2_PER_LEVEL = 5.0
SURVEY_TIME_NS = 1.0

# Integrate-and-fire neuron (NeuRRAM, Wan et al., Nature 608, 2022): fitted to the chip's energy per
# operation at its ten (output bits, input bits) points (shared/reference/neurram.md, Fig. 12b-d) with
# E/op = a * P + b * P * out_bits, P = max(input bits, 2) input pulses (two-phase inputs take at least two
# phases: 1- and 2-bit inputs cost the same there): a = 7.77 fJ per op per pulse (word-line switching and
# input pulses; INPUT_PULSE_ENERGY_PJ below), b = 1.31 fJ per op per pulse and output bit (the neuron
# integrating each pulse at its resolution). A 256 x 256 core with differential columns does 2 x 256 x
# 128 ops per product with 128 conversions and 256 driven rows, so per conversion b * 512 and per row
# pulse a * 256, at 130 nm and 1.2 V; divided here by the tech scaling to 22 nm / 0.8 V.
IF_ENERGY_PJ_PER_PULSE_BIT = 1.31e-3 * 512 / _NEURRAM_ENERGY
IF_TIME_NS_PER_LEVEL = 0.5  # counting the fire events: time grows with 2^b (assumption)
# one neuron per column pair: NeuRRAM's 256 neurons take 1270 um x 256 um at 130 nm (Fig. 11f), i.e.
# 1270 um^2 each; divided by the 130 nm -> 22 nm area scaling
IF_AREA_UM2 = 1270.0 / _NEURRAM_AREA
INPUT_PULSE_ENERGY_PJ = 7.77e-3 * 256 / _NEURRAM_ENERGY  # per row per pulse, incl. word-line switching (fit above)

# ---- arrays and their drivers -------------------------------------------------------------------------
# Effective integration time of the column current for array read energy V^2 * G * t per active cell.
# Calibrated to the NeuroSim VGG8 run (its array, driver and digital energy fit in the 5.0e6 pJ of
# "other periphery" left after interconnect and buffers).
CELL_READ_TIME_S = 1.0e-12
# Bit-line precharge, column mux and switch matrix per column read (one per conversion). Calibrated:
# NeuroSim VGG8 "other periphery" energy 1.57e7 pJ less its interconnect (1.02e7) and buffers (4.65e5).
COLUMN_READ_ENERGY_PJ = 0.03
ROW_DRIVE_ENERGY_PJ = 0.002  # word-line switching of one row of one array (assumption, CV^2 of ~3 fF)
DAC_ENERGY_PJ_PER_LEVEL = 0.0002  # multi-level DAC, per output level (assumption)
ROW_PERIPHERY_UM2_PER_ROW = 9.67  # decoder, driver and switch matrix per row (calibrated with the next)
COL_PERIPHERY_UM2_PER_COL = 28.2  # column mux and precharge per column; with the above: NeuroSim VGG8 "other periphery"

# ---- digital datapath ----------------------------------------------------------------------------------
SHIFT_ADD_ENERGY_PJ = 0.0283  # per conversion; calibrated: VGG8 accumulation energy 4.86e6 pJ
ADD_ENERGY_PJ = 0.03  # adding partial sums of two row tiles (assumption: a 16-bit adder at 22 nm)
SHIFT_ADD_AREA_UM2 = 86.4  # per ADC; calibrated: VGG8 accumulation area 5.31e6 um^2
SHIFT_ADD_CYCLES = 15.4  # calibrated: VGG8 accumulation latency 0.125 ms
DIGITAL_UNIT_AREA_UM2 = 20000.0  # activation and pooling units per tile (assumption; in the calibrated
# "other periphery" area). The digital unit's energy and latency per operation: see the end of this file.

# ---- memory and interconnect ------------------------------------------------------------------------
SRAM_ENERGY_PJ_PER_BYTE = 0.103  # calibrated: VGG8 buffer energy 4.65e5 pJ
SRAM_AREA_UM2_PER_KB = 1500.0  # 22 nm 6T SRAM ~0.1 um^2 per bit plus periphery (assumption)
BUFFER_CYCLES_PER_WORD = 2.0  # see DATA_MOVEMENT_NOTE
WIRE_ENERGY_PJ_PER_BIT_MM = 0.0744  # calibrated: VGG8 interconnect energy 1.02e7 pJ (H-tree, half the chip edge)
WIRE_CYCLES_PER_WORD = 0.33  # see DATA_MOVEMENT_NOTE
HTREE_AREA_FRACTION = 0.137  # calibrated: VGG8 interconnect area 7.08 of 51.65 mm^2 of the rest
BUS_AREA_FRACTION = 0.05  # assumption
DATA_MOVEMENT_NOTE = """Buffer and interconnect cycles per bus word are the one pair of constants fitted on both
NeuroSim networks: fitted on VGG8 alone (1.78 and 0.293 cycles, VGG8 buffer latency 1.00 ms and
interconnect 0.165 ms) they put ResNet-18's latency 25.0% below NeuroSim's, because NeuroSim's latency
grows 9.0x from VGG8 to ResNet-18 and our data movement 7.0x. Scaled by 1.125 they split the error
(+16% VGG8, -17% ResNet-18); docs/validation.md reports both."""

# Layout: NeuroSim V1.3 multiplies dynamic plus leakage energy by 1.22 for its TOPS/W
# (shared/reference/neurosim.md); it is the spec parameter chip.layout_energy_factor.

# ---- leakage -------------------------------------------------------------------------------------------
LEAKAGE_W_PER_MM2 = 1.86e-5  # calibrated: VGG8 leakage 1.48 uJ over 1.359 ms on 58.73 mm^2
# (per mm^2 of chip at any node: leakage density is not scaled with the node yet)

# ---- the digital unit: primitives from a published table, not calibrated --------------------------------
# M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014 (plenary), energy
# table for 45 nm at 0.9 V: integer add 8 bit 0.03 pJ, 32 bit 0.1 pJ; integer multiply 8 bit 0.2 pJ,
# 32 bit 3.1 pJ; 64-bit read of an 8 KB SRAM 10 pJ. (The same figures are quoted, e.g., in Table 3 of
# Frontiers in Neurology 13:803015, 2022, PMC8934428.) Other widths follow the power law through the two
# published points of each operation (add ~ b^0.87, multiply ~ b^1.98); other nodes and supplies scale by
# tech.energy_factor relative to 45 nm / 0.9 V (3.93x the 22 nm / 0.8 V energy).
HOROWITZ_NODE_NM = 45.0
HOROWITZ_SUPPLY_V = 0.9
HOROWITZ_ADD8_PJ = 0.03
HOROWITZ_ADD32_PJ = 0.1
HOROWITZ_MUL8_PJ = 0.2
HOROWITZ_MUL32_PJ = 3.1
HOROWITZ_SRAM8KB_64B_PJ = 10.0  # one 64-bit word read from an 8 KB SRAM
ADD_BITS_EXPONENT = 0.8685  # log(0.1 / 0.03) / log(4): through Horowitz's 8- and 32-bit adds
MUL_BITS_EXPONENT = 1.9771  # log(3.1 / 0.2) / log(4): through Horowitz's 8- and 32-bit multiplies
# a comparison is a subtraction: priced as an add of the same width (as in the table's source above)
# exp: I-BERT's integer-only exponential (Kim et al., "I-BERT: Integer-only BERT quantization", ICML 2021,
# Alg. i-exp): z = floor(-x / ln 2) (one constant multiply), p = x + z ln 2 (a multiply and an add), the
# second-order polynomial a (p + b)^2 + c (two adds, a square and a constant multiply), then a shift:
# 4 multiplies and 3 adds, 4 dependent multiply steps
EXP_MULS = 4
EXP_ADDS = 3
EXP_CYCLES = 4
# division: 7.1x the energy of a multiply, measured for float divide vs multiply on an ARM Cortex-M4F
# (Ambiq Apollo 3; Table 3, note b of PMC8934428); square root priced the same, since the Cortex-M4 FPU
# takes the same 14 cycles for VSQRT.F32 as for VDIV.F32 (ARM Cortex-M4 Technical Reference Manual, FPU
# instruction timing); both take 14 cycles of a lane
DIV_OVER_MUL = 7.1
SQRT_OVER_MUL = 7.1
DIV_CYCLES = 14
SQRT_CYCLES = 14

# ---- SRAM cell area (a shared component's own figure, not the crossbar calibration) ---------------------
# High-density 6T SRAM bit cell of 0.07 um^2 in TSMC's 16 nm FinFET process (Chen et al., "A 16nm 128Mb
# SRAM in high-k metal-gate FinFET technology with write-assist circuitry for low-VMIN applications",
# ISSCC 2014); other nodes scale by tech.area_factor. With decoders, sense amplifiers and I/O an array
# keeps about 70% of its area for cells (assumption), so 0.1 um^2 per stored bit at 16 nm.
SRAM_BITCELL_UM2 = 0.07
SRAM_BITCELL_NODE_NM = 16.0
SRAM_ARRAY_EFFICIENCY = 0.7
