"""The analytical area / energy / latency model, vectorized over hardware configurations.

Every quantity is a numpy array of shape (configs, layers) or (configs,): ``evaluate`` prices a whole
batch of specs in one pass. The mapping of layers onto arrays uses the formulas of
``cimkit.mapping`` (the same ones the simulator's layers are built with).

Components, each with its own model (per-unit constants in ``constants.py``, where every figure says
where it comes from): cell arrays (read energy V^2 G t per active cell; area cells x F^2), row drivers
and DACs, ADCs (multi-level sense amplifier / flash, SAR, or the survey frontier), shift-and-add and
accumulation, SRAM buffers, interconnect (H-tree or bus), digital units (activation, pooling,
element-wise), and leakage.
"""

from __future__ import annotations

import numpy as np

from ..mapping import arrays_for, ceil_div, rows_per_tile_for, slices_for
from . import constants as K
from .tech import area_factor, check_node, delay_factor, energy_factor

COMPONENTS = ("array", "drivers", "adc", "accumulation", "buffer", "interconnect", "digital")


def _adc_unit(adc_type, bits, pulses):
    """(area um^2, energy pJ, conversion time ns) of one ADC at 22 nm, 0.8 V; ``pulses``: input pulses
    an integrate-and-fire neuron integrates before it converts."""
    levels = 2.0**bits - 1
    mlsa = (K.MLSA_AREA_UM2_PER_LEVEL * levels, K.MLSA_ENERGY_PJ_PER_LEVEL * levels, K.MLSA_TIME_NS)
    sar = (K.SAR_AREA_UM2_PER_BIT * bits + K.SAR_CAP_AREA_UM2 * 2.0**bits,
           K.SAR_ENERGY_PJ_PER_BIT * bits + K.SAR_CAP_ENERGY_PJ * 2.0**bits, K.SAR_TIME_NS_PER_BIT * bits)
    survey = (K.SURVEY_AREA_UM2_PER_LEVEL * levels, K.SURVEY_FOM_PJ_PER_STEP * (2.0**bits), K.SURVEY_TIME_NS)
    neuron = (K.IF_AREA_UM2 + 0 * bits, K.IF_ENERGY_PJ_PER_PULSE_BIT * pulses * bits, K.IF_TIME_NS_PER_LEVEL * 2.0**bits)
    pick = lambda i: np.select([adc_type == 0, adc_type == 1, adc_type == 3], [mlsa[i], sar[i], neuron[i]], survey[i])  # noqa: E731
    return pick(0), pick(1), pick(2)


def evaluate(p: dict[str, np.ndarray], w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Price configurations ``p`` (each value shape (C, 1)) on workload layers ``w`` (shape (1, L)).

    Returns per-layer and per-component arrays plus chip totals; see ``estimate_many`` for units.
    """
    check_node(p["node_nm"])
    af, ef, df = area_factor(p["node_nm"]), energy_factor(p["node_nm"], p["supply_v"]), delay_factor(p["node_nm"])
    weighted = w["weighted"]
    diff = p["differential"]
    slices = slices_for(p["weight_bits"], p["bits_per_cell"], diff)
    cpw = slices * (1 + diff)
    rpt = rows_per_tile_for(p["rows"], w["kernel"], p["kernel_aligned"])
    arrays, row_tiles, col_tiles, _ = arrays_for(w["in_features"], w["out_features"], w["groups"],
                                                   p["rows"], p["cols"], rpt, cpw)
    arrays = np.where(weighted, arrays, 0)
    passes = np.where(p["bit_serial"], p["input_bits"], 1)  # array reads (and conversions) per vector
    pulses = np.where(p["pulse_train"], np.maximum(p["input_bits"], 2), 1)  # input pulses per read

    # chip size: each layer on whole tiles (as NeuroSim places them), or layers packed into shared tiles
    per_tile = p["arrays_per_pe"] * p["pes_per_tile"]
    layer_tiles = np.where(weighted, ceil_div(arrays, per_tile), 0)
    packed_tiles = ceil_div(arrays.sum(axis=1, keepdims=True), per_tile)
    tiles_needed = np.where(p["packed"], packed_tiles, layer_tiles.sum(axis=1, keepdims=True))
    tiles = np.where(p["tiles"] > 0, p["tiles"], tiles_needed)
    feasible = (tiles >= tiles_needed)[:, 0]
    # a layer's weights are copied onto the spare arrays of its own tiles, and on a fixed-size chip onto
    # whole spare tiles as well; copies read different input vectors in parallel
    spare_in_tiles = np.maximum(layer_tiles * per_tile // np.maximum(arrays, 1), 1)
    spare_tiles = np.maximum(tiles // np.maximum(tiles_needed, 1), 1) * (p["tiles"] > 0) + (p["tiles"] <= 0)
    dup = np.where(p["duplication"], spare_in_tiles * spare_tiles, 1)
    chip_arrays = tiles * per_tile
    adcs_per_array = ceil_div(p["cols"], p["columns_per_adc"])

    # ---- events per inference --------------------------------------------------------------------
    vectors = w["vectors"]
    conversions = np.where(weighted, vectors * passes * w["groups"] * row_tiles * slices * w["out_features"], 0)
    active_rows = w["in_features"] * w["groups"]
    cell_reads = np.where(weighted, vectors * passes * active_rows * w["out_features"] * cpw * p["activity"], 0)
    sparse = p["bit_serial"] | p["pulse_train"]  # drives happen only for 1 bits
    row_drives = np.where(weighted, vectors * passes * pulses * active_rows * col_tiles * np.where(sparse, p["activity"], 1), 0)
    psum_adds = np.where(weighted, vectors * w["groups"] * w["out_features"] * np.maximum(row_tiles - 1, 0), 0)
    act_bytes = p["activation_bits"] / 8.0
    buffer_bytes = (w["in_elements"] + w["out_elements"]) * act_bytes
    array_input_bytes = np.where(weighted, vectors * active_rows * act_bytes, 0)
    digital_ops = np.where(weighted, 0, w["elements"])
    # dynamic matmuls (attention's Q K^T, both operands change per input) run on digital MAC units
    dynamic_macs = w["dynamic_macs"]

    adc_area_um2, adc_energy_pj, adc_time_ns = _adc_unit(p["adc_type"], p["adc_bits"], pulses)

    # ---- area (mm^2) --------------------------------------------------------------------------------
    f_m = p["node_nm"][:, 0] * 1e-9
    n_arr = chip_arrays[:, 0]
    cells_mm2 = n_arr * p["rows"][:, 0] * p["cols"][:, 0] * p["cell_area_f2"][:, 0] * f_m**2 * 1e6
    a = {
        "array": cells_mm2,
        "drivers": n_arr * (K.ROW_PERIPHERY_UM2_PER_ROW * p["rows"][:, 0] + K.COL_PERIPHERY_UM2_PER_COL * p["cols"][:, 0]) * af[:, 0] * 1e-6,
        "adc": n_arr * adcs_per_array[:, 0] * adc_area_um2[:, 0] * af[:, 0] * 1e-6,
        "accumulation": n_arr * adcs_per_array[:, 0] * K.SHIFT_ADD_AREA_UM2 * af[:, 0] * 1e-6,
        "buffer": (tiles[:, 0] * p["tile_buffer_kb"][:, 0] + p["global_buffer_kb"][:, 0]) * K.SRAM_AREA_UM2_PER_KB * af[:, 0] * 1e-6,
        "digital": tiles[:, 0] * K.DIGITAL_UNIT_AREA_UM2 * af[:, 0] * 1e-6,
    }
    core = sum(a.values())
    a["interconnect"] = core * np.where(p["htree"][:, 0], K.HTREE_AREA_FRACTION, K.BUS_AREA_FRACTION)
    area_mm2 = sum(a.values())
    # ---- energy (J) ----------------------------------------------------------------------------------
    g_avg_s = 0.5 * (p["g_min_us"] + p["g_max_us"]) * 1e-6
    e = {
        "array": cell_reads * p["read_v"] ** 2 * g_avg_s * K.CELL_READ_TIME_S
        + conversions * K.COLUMN_READ_ENERGY_PJ * ef * 1e-12,
        "drivers": row_drives * ef * 1e-12 * np.select(
            [p["bit_serial"], p["pulse_train"]],
            [K.ROW_DRIVE_ENERGY_PJ, K.INPUT_PULSE_ENERGY_PJ],
            K.ROW_DRIVE_ENERGY_PJ + K.DAC_ENERGY_PJ_PER_LEVEL * (2.0 ** p["input_bits"])),
        "adc": conversions * adc_energy_pj * ef * 1e-12,
        "accumulation": (conversions * K.SHIFT_ADD_ENERGY_PJ + psum_adds * K.ADD_ENERGY_PJ) * ef * 1e-12,
        "buffer": (buffer_bytes + array_input_bytes) * K.SRAM_ENERGY_PJ_PER_BYTE * ef * 1e-12,
        "interconnect": (buffer_bytes + array_input_bytes) * 8 * K.WIRE_ENERGY_PJ_PER_BIT_MM
        * (0.5 * np.sqrt(area_mm2))[:, None] * ef * 1e-12,
        "digital": (digital_ops * K.DIGITAL_OP_ENERGY_PJ + dynamic_macs * K.DIGITAL_MAC_ENERGY_PJ) * ef * 1e-12,
    }

    # ---- latency (s) -------------------------------------------------------------------------------
    t_adc = adc_time_ns * df * 1e-9
    cycle = 1.0 / p["clock_hz"]
    lat = {
        "adc": np.where(weighted, vectors / dup * passes * p["columns_per_adc"] * np.maximum(t_adc, cycle), 0),
        "array": np.where(weighted, vectors / dup * passes * p["read_latency_ns"] * 1e-9, 0),
        "accumulation": np.where(weighted, vectors / dup * passes * cycle * K.SHIFT_ADD_CYCLES, 0),
        "buffer": (buffer_bytes + array_input_bytes) / (p["bus_bits"] / 8.0) * cycle * K.BUFFER_CYCLES_PER_WORD,
        "interconnect": (buffer_bytes + array_input_bytes) * 8 / p["bus_bits"] * cycle * K.WIRE_CYCLES_PER_WORD,
        "digital": (digital_ops + dynamic_macs) / K.DIGITAL_LANES * cycle,
    }
    layer_latency = sum(lat.values())
    if_pipelined = p["pipelined"][:, 0]
    total_latency = layer_latency.sum(axis=1)
    throughput_period = np.where(if_pipelined, layer_latency.max(axis=1), total_latency)

    leakage_j = area_mm2 * K.LEAKAGE_W_PER_MM2 * total_latency
    component_j = sum(v.sum(axis=1) for v in e.values()) + leakage_j
    layout_j = component_j * (p["layout_factor"][:, 0] - 1)
    energy_j = component_j + layout_j
    ops = w["ops"].sum(axis=1)
    return {
        "feasible": feasible, "tiles": tiles[:, 0], "tiles_needed": tiles_needed[:, 0], "arrays": chip_arrays[:, 0],
        "arrays_used": arrays.sum(axis=1), "layer_arrays": arrays, "duplication": dup,
        "utilization": (w["weights"] * cpw).sum(axis=1) / (n_arr * p["rows"][:, 0] * p["cols"][:, 0]),
        "area_mm2": area_mm2, "area": a, "energy_j": energy_j, "energy": e, "leakage_j": leakage_j, "layout_j": layout_j,
        "latency_s": total_latency, "latency": lat, "layer_latency_s": layer_latency,
        "period_s": throughput_period, "ops": ops, "conversions": conversions,
    }
