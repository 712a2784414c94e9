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

# ---- the crossbar read path: DNN+NeuroSim V1.3's circuits ----------------------------------------------
# How NeuroSim (neurosim/DNN_NeuroSim_V1.3, NeuroSIM/*.cpp) models the 1T1R RRAM read path with a current-mode
# multi-level sense amplifier, as figures at its 22 nm LP point (Vdd 0.85 V, NEUROSIM_SUPPLY_V); other nodes and
# supplies scale them with tech.py. Each figure names the circuit it comes from; none is fitted to a run.
NEUROSIM_NODE_NM = 22.0
NEUROSIM_SUPPLY_V = 0.85  # Technology.cpp, 22 nm LSTP
# Multi-level sense amplifier (MultilevelSenseAmp.cpp, HSPICE fits of the LP current-mode design): power per
# comparator level 1.7 uW at 22 nm, drawn for the sensing time of 1 ns (NeuroSim's floor for the column
# latency, reached at every node up to 45 nm); per conversion 1.7 fJ x (2^b - 1).
MLSA_LEVEL_ENERGY_PJ = 1.7e-6 * 1e-9 * 1e12
MLSA_SENSE_TIME_NS = 1.0  # analog sensing: does not scale with the logic's gate delay
# its power per siemens of column conductance, 0.0631 W/S at a 0.5 V read (0.0649 at 32 nm, 0.075 at 45 nm:
# nearly node-independent, so taken as fixed here): the column current's energy b * G * t, which NeuroSim
# books with the sense amplifier. Per active cell read: b * (V_read / 0.5 V) * g_eff * t_sense.
COLUMN_CURRENT_W_PER_S = 0.0631
COLUMN_CURRENT_REF_V = 0.5
# The 1T1R access transistor is sized to 0.25 x R_on (NeuroSim's IR-drop tolerance, Param.cpp/constant.h), in
# series with each cell: a cell of conductance g conducts 1 / (1/g + 0.25 / g_max).
ACCESS_R_OVER_R_ON = 0.25
# Thermometer-to-binary encoder (MultilevelSAEncoder.cpp): (L + log2 L) gates switching at 5% activity,
# 2.53 fJ per conversion at L = 32 levels (0.068 fJ per gate) and delay 0.034 ns + 3.2 ps per level at 22 nm.
ENCODER_ENERGY_PJ_PER_GATE = 0.068e-3
ENCODER_DELAY_NS = 0.034
ENCODER_DELAY_NS_PER_LEVEL = 0.0032
# MLSA area: NeuroSim's comparators take 10.9 um^2 each at 22 nm (48 NMOS + 40 PMOS minimum gates of the
# current sense amplifier, CurrentSenseAmp.cpp), the encoder about 40 um^2 per converter at 32 levels;
# calibrated together on the VGG8 ADC area, 2.45e7 um^2 over our converters (12.86 um^2 per level).
MLSA_AREA_UM2_PER_LEVEL = 12.86
# Word lines (SubArray.cpp): a row's capacitance is its wire, 12 F of a 40 nm cell pitch at 0.2 fF/um, plus
# the gates of its access transistors (11.5 F wide at 22 nm, 1.43 fF/um): 0.415 fF per cell at 22 nm. A row
# is fired once per multiplexer phase (each converter reads its columns_per_adc columns one after another):
# C_row x Vdd^2 x columns_per_adc per input pulse.
WORDLINE_CAP_F_PER_CELL = 0.415e-15
# The word-line switch matrix latches every row's input bit in a flip-flop clocked once per multiplexer
# phase, whatever the input (NewSwitchMatrix.cpp; DFF.cpp: 5.1 fJ per clock at 22 nm).
ROW_LATCH_ENERGY_PJ = 5.1e-3
# The read cycle (SubArray.cpp, synchronous mode): the chip's clock is 1.4 x (array read + conversion). The
# array read is the column's RC settling (0.025 ns at 22 nm) after the slower of the word line's switch (its
# RC grows with the columns: 0.080 ns at 128 columns) and, where converters are shared (columns_per_adc > 1),
# the column multiplexer's decoder driving (cols / columns_per_adc) transmission gates as wide as the rows
# require: 0.102 ns + 1.02e-4 ns x (cols / columns_per_adc) x rows at 22 nm (a line through NeuroSim's decoder
# delays of 0.21 to 0.93 ns for loads of 1,024 to 8,192 gate units at 128 x 128 to 256 x 256 arrays and 4 to
# 16 columns per ADC). All scale with the node's gate delay.
READ_CYCLE_MARGIN = 1.4  # NeuroSim's validated factor on the sensing cycle (Param.cpp: beta)
COLUMN_SETTLE_NS = 0.025
WORDLINE_SWITCH_NS_PER_COL = 0.080 / 128
MUX_DECODER_NS = 0.102
MUX_DECODER_NS_PER_GATE = 1.016e-4
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
DAC_ENERGY_PJ_PER_LEVEL = 0.0002  # multi-level DAC, per output level (assumption)
ROW_PERIPHERY_UM2_PER_ROW = 9.67  # decoder, driver and switch matrix per row (calibrated with the next)
COL_PERIPHERY_UM2_PER_COL = 28.2  # column mux and precharge per column; with the above: NeuroSim VGG8 "other periphery"

# ---- digital datapath ----------------------------------------------------------------------------------
# Shift-and-add after each converter (ShiftAdd.cpp, Adder.cpp, DFF.cpp at 22 nm): a ripple adder of the ADC's
# b bits and (b + columns per weight) flip-flops per conversion adds the weight slices; every columns_per_weight
# conversions a (b + cpw)-bit adder and (b + cpw + input bits) flip-flops add the input bit. NeuroSim's adder
# is 1.07 fJ per bit and operation (its 0.15 activity factor included), a flip-flop 2.55 fJ per clock (its
# 0.5 factor included). It takes columns_per_adc + ceil(columns_per_adc / cpw) cycles per array read.
ADDER_ENERGY_PJ_PER_BIT = 1.07e-3
SHIFT_ADD_FF_ENERGY_PJ = 2.55e-3
# ripple-carry adder delay at 22 nm (Adder.cpp): 0.303 ns at 5 bits + 0.064 ns per further bit; partial sums of
# row tiles are added in a tree, one stage per doubling, each stage ceil(adder delay / clock) cycles
ADDER_DELAY_NS = 0.303 - 5 * 0.064
ADDER_DELAY_NS_PER_BIT = 0.064
ADD_ENERGY_PJ = 0.03  # adding partial sums of two row tiles (assumption: a 16-bit adder at 22 nm)
SHIFT_ADD_AREA_UM2 = 86.4  # per ADC at 5-bit ADCs, 4 columns per weight, 8-bit inputs; calibrated: VGG8
# accumulation area 5.31e6 um^2 (shift-adds and the adder trees after them). Other widths scale it by the
# shift-add's adder bits and flip-flops, weighted with NeuroSim's cells at 22 nm (ShiftAdd.cpp: adders of b and
# b + cpw bits, b + cpw and b + cpw + input bits flip-flops; a full-adder bit 1.39 um^2, a flip-flop 1.236 um^2)
FULL_ADDER_BIT_UM2 = 1.39
FLIP_FLOP_UM2 = 1.236
DIGITAL_UNIT_AREA_UM2 = 20000.0  # activation and pooling units per tile (assumption; in the calibrated
# "other periphery" area). The digital unit's energy and latency per operation: see the end of this file.

# ---- memory and interconnect ------------------------------------------------------------------------
SRAM_ENERGY_PJ_PER_BYTE = 0.103  # calibrated: VGG8 buffer energy 4.65e5 pJ
SRAM_AREA_UM2_PER_KB = 1500.0  # 22 nm 6T SRAM ~0.1 um^2 per bit plus periphery (assumption)
BUFFER_CYCLES_PER_WORD = 0.984  # see DATA_MOVEMENT_NOTE
WIRE_ENERGY_PJ_PER_BIT_MM = (
    0.0844  # calibrated: VGG8 interconnect energy 1.02e7 pJ (H-tree, half the chip edge) at 0.85 V
)
WIRE_CYCLES_PER_WORD = 0.1624  # see DATA_MOVEMENT_NOTE
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
