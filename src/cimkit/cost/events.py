"""Events: what a chip does for a workload, counted from the mapping (``cimkit.mapping``'s formulas).

``count(p, w)`` takes the spec columns ``p`` (each (C, 1): one row per configuration) and the workload
rows ``w`` (each (1, L): one column per op) and returns, per inference,

- per layer, shape (C, L): ``conversions`` (ADC conversions), ``cell_reads`` (active cells read),
  ``row_drives`` (at the DAC's ``input_bits``), ``binary_row_drives`` (the 1-bit spike drives of ops with
  ``Op.binary_input``: one pulse per spike, one pass per vector; (1, 1) zeros when no op has them),
  ``input_passes`` (array reads per input vector: the DAC mode's, 1 for spikes) and ``binary_inputs`` (the op
  reads spikes on arrays, a mask; neither is priced), ``psum_adds`` (partial sums of row tiles added),
  ``moved_bytes`` / ``moved_bits`` / ``moved_words`` (activations through the buffers and wires; spikes, an
  op's binary inputs and a neuron's outputs, at 1 bit per element), ``digital_<primitive>`` (the op
  registry's digital primitives: add, mul, mac, cmp, exp, div, sqrt, lookup), ``digital_cycles`` (lane cycles),
  ``digital_elements`` and ``digital_macs`` (output elements and dynamic-matmul MACs on the digital unit; a
  ``neuron`` op's primitives are its neuron updates, ``cimkit.workload.registry.NEURON_EVENTS``),
  ``cell_writes`` and ``rows_written`` (a dynamic matmul's operand written into arrays), and the serial
  counts latency is priced on: ``serial_reads`` (array reads one after another on one array copy),
  ``adc_slots`` (conversions one converter makes in turn), ``tree_steps`` (adder-tree stages over row tiles'
  partial sums); ``array_reads`` (arrays read, each once per input pass); and the associative processor's
  events (``cimkit.ap.figures.EVENTS``: ``ap_compare_rows``, ``ap_compare_row_bits``, ``ap_write_bits``,
  ``ap_io_bits``, ``ap_count_rows``, ``ap_cycles``) of the ops routed to it, counted by simulating its
  program once per distinct (program, row length, rows) (``cimkit.ap.cost.softmax_events``; torch is
  imported only then); and the CAM attention unit's events (``cimkit.cost.cam_attention.EVENTS``: keys
  written, rows and bits searched, conversions, the top-N selector's adds and compares, cycles) of its
  ``hamming_score`` and ``topn`` ops. A sparse dynamic matmul (fn ``"sparse_matmul"``, HAD's A V) drives
  macs / (vectors x out_features) rows per input vector of the ``in_features`` rows its arrays hold;
- per configuration, shape (C,): instance counts ``tiles``, ``chip_arrays``, ``adcs``, ``sram_kb``,
  ``ap_columns`` (bit cells per word of the widest program on the AP, 0 when nothing runs there), the
  CAM attention unit's instances and widths (``cimkit.cost.cam_attention.UNIT_QUANTITIES``);
  ``feasible``, ``tiles_needed``; and per layer ``layer_arrays``, ``duplication``, ``on_arrays`` (the op
  runs on the crossbar unit) and ``rewritten`` (its arrays are rewritten per input).

Nothing here has a price: ``cimkit.cost.components`` turns events into joules, seconds and mm^2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ap import figures as APF
from ..errors import InputError
from ..mapping import arrays_for, ceil_div, cells_for, rows_per_tile_for, rows_written_per_array_for, slices_for
from .cam_attention import cam_attention_events
from .components import DIGITAL_PRIMITIVES, PRIMITIVE_CYCLES

#: ``Op.fn`` of a sparse dynamic matmul (HAD's A V, ``cimkit.workload.hamming.SPARSE_MATMUL``): it stores
#: ``in_features`` rows but each input vector drives only macs / (vectors x out_features) of them
SPARSE_MATMUL = "sparse_matmul"
#: op kinds whose outputs are spikes (1 bit per element through the buffers and wires)
SPIKING_KINDS = ("neuron",)


def count(p: dict[str, np.ndarray], w: dict[str, Any]) -> dict:
    """The events per inference (see the module docstring) of every configuration on every op: ``p`` the spec
    columns ((C, 1) arrays), ``w`` the workload rows ((1, L) arrays, and the ops' primitive counts, kinds and
    flags). Returns event name -> array: (C, L) (or (1, 1) where no op has the event) per layer, (C,) per
    configuration."""
    on_arrays = w["on_arrays"]  # (C, L) or (1, L): the op runs on CIM arrays
    rewritten = on_arrays & w["dynamic"]  # a dynamic matmul on arrays: written per input
    diff = p["differential"]
    slices = slices_for(p["weight_bits"], p["bits_per_cell"], diff)
    cpw = slices * (1 + diff)
    rpt = rows_per_tile_for(p["rows"], w["kernel"], p["kernel_aligned"])
    arrays, row_tiles, col_tiles, per_array = arrays_for(
        w["in_features"], w["out_features"], w["groups"], p["rows"], p["cols"], rpt, cpw
    )
    taps = w.get("split_taps")
    if taps is not None:  # NeuroSim's "novel mapping": each kernel tap's input channels on arrays of their own
        split = (taps > 1) & (w["in_features"] >= p["rows"])
        split_tiles = taps * ceil_div(w["in_features"] // np.maximum(taps, 1), p["rows"])
        arrays = np.where(split, ceil_div(w["groups"], per_array) * split_tiles * col_tiles, arrays)
        row_tiles = np.where(split, split_tiles, row_tiles)
    arrays = np.where(on_arrays, arrays, 0)
    # spikes (Op.binary_input) are read in one pass of one pulse whatever the DAC: (C, L) where any op has them
    binary = w.get("binary_input")
    if binary is None:  # no op has spikes
        binary = np.zeros((1, 1), dtype=bool)
    spiking = bool(binary.any())
    passes = np.where(binary, 1, p["passes"]) if spiking else p["passes"]
    pulses = np.where(binary, 1, p["pulses"]) if spiking else p["pulses"]

    # chip size: each layer on whole tiles (as NeuroSim places them), or layers packed into shared tiles
    per_tile = p["arrays_per_pe"] * p["pes_per_tile"]
    layer_tiles = np.where(on_arrays, ceil_div(arrays, per_tile), 0)
    packed_tiles = ceil_div(arrays.sum(axis=1, keepdims=True), per_tile)
    tiles_needed = np.where(p["packed"], packed_tiles, layer_tiles.sum(axis=1, keepdims=True))
    tiles = np.where(p["tiles"] > 0, p["tiles"], tiles_needed)
    # a layer's weights are copied onto the spare arrays of its own tiles, and on a fixed-size chip onto
    # whole spare tiles as well; copies read different input vectors in parallel
    spare_in_tiles = np.maximum(layer_tiles * per_tile // np.maximum(arrays, 1), 1)
    spare_tiles = np.maximum(tiles // np.maximum(tiles_needed, 1), 1) * (p["tiles"] > 0) + (p["tiles"] <= 0)
    # (a rewritten matmul is not copied: every copy would be written per input)
    dup = np.where(p["duplication"] & ~rewritten, spare_in_tiles * spare_tiles, 1)
    chip_arrays = tiles * per_tile
    adcs_per_array = ceil_div(p["cols"], p["columns_per_adc"])

    vectors = w["vectors"]
    activity = w["activity"] if w["activity_set"] else p["activity"]
    if w["activity_set"]:  # per-op input activity (Op.activity), the chip's figure where an op gives none
        activity = np.where(np.isnan(activity), p["activity"], activity)
    active_rows = w["in_features"] * w["groups"]
    sparse = (np.asarray(w.get("fns", ())) == SPARSE_MATMUL) & w["dynamic"][0]
    if sparse.any():  # each input vector drives the rows it selects, not every row the arrays hold
        active_rows = np.where(
            sparse[None, :], w["macs"] / np.maximum(w["vectors"] * w["out_features"], 1), active_rows
        )
    serial = vectors / dup * passes
    row_drives = np.where(
        on_arrays, vectors * passes * pulses * active_rows * col_tiles * np.where(p["binary_drive"], activity, 1), 0
    )
    ev = {
        "conversions": np.where(on_arrays, vectors * passes * w["groups"] * row_tiles * slices * w["out_features"], 0),
        "cell_reads": np.where(on_arrays, vectors * passes * active_rows * w["out_features"] * cpw * activity, 0),
        # a spike drives its row with one 1-bit pulse, and only where it is 1 (activity = spike density): its
        # drives are their own event, priced as 1-bit drives (components.Drivers)
        "row_drives": np.where(binary, 0, row_drives) if spiking else row_drives,
        "binary_row_drives": np.where(binary & on_arrays, vectors * active_rows * col_tiles * activity, 0)
        if spiking
        else np.zeros((1, 1)),
        "input_passes": np.where(on_arrays, passes, 0),
        "binary_inputs": binary & on_arrays if spiking else np.zeros((1, 1), dtype=bool),
        "psum_adds": np.where(on_arrays, vectors * w["groups"] * w["out_features"] * np.maximum(row_tiles - 1, 0), 0),
        "serial_reads": np.where(on_arrays, serial, 0),
        "adc_slots": np.where(on_arrays, serial * p["columns_per_adc"], 0),
        "array_reads": np.where(on_arrays, vectors * passes * arrays, 0),
        # adder-tree stages over the row tiles' partial sums, per input vector on one copy, once per group of
        # columns_per_weight columns a converter hands over
        "tree_steps": np.where(
            on_arrays,
            vectors / dup * np.ceil(np.log2(np.maximum(row_tiles, 1))) * np.maximum(p["columns_per_adc"] // cpw, 1),
            0,
        ),
    }
    # data through the buffers and wires, in bits: an op on the arrays reads its input map and sends the
    # unrolled input vectors as the DAC's input_bits codes; every op writes its output map, and a digital op
    # reads its input, at activation_bits
    act_bits, in_bits = p["activation_bits"], p["input_bits"]
    # spikes move as 1 bit per element: an op's binary inputs, and the outputs of the spiking kinds (neurons)
    spike_out = np.isin(w["kinds"], SPIKING_KINDS)[None, :] if "kinds" in w else np.zeros((1, 1), dtype=bool)
    out_bits = np.where(spike_out, 1, act_bits) if spike_out.any() else act_bits
    read_bits, digital_in_bits = (
        (np.where(binary, 1, in_bits), np.where(binary, 1, act_bits)) if spiking else (in_bits, act_bits)
    )
    moved_bits = w["out_elements"] * out_bits + np.where(
        on_arrays, (w["in_elements"] + vectors * active_rows) * read_bits, w["in_elements"] * digital_in_bits
    )
    cam = cam_attention_events(p, w)  # the CAM attention unit's ops move their own bits (1-bit queries, top N)
    on_cam, cam_moved = cam.pop("on_cam_attention"), cam.pop("cam_moved_bits")
    if on_cam.any():
        moved_bits = np.where(on_cam, cam_moved, moved_bits)
    ev["moved_bits"] = moved_bits
    ev["moved_bytes"] = moved_bits / 8
    ev["moved_words"] = moved_bits / p["bus_bits"]

    # digital primitives of the ops the digital unit runs (the op registry's events per op)
    on_digital = w["on_digital"]
    cycles: float | np.ndarray = 0.0
    for prim in DIGITAL_PRIMITIVES:
        n = w["prims"].get(prim)
        if n is None:
            ev[f"digital_{prim}"] = np.zeros((1, 1))
            continue
        n = np.where(on_digital, n, 0)
        ev[f"digital_{prim}"] = n
        cycles = cycles + n * PRIMITIVE_CYCLES[prim]
    ev["digital_cycles"] = cycles + np.zeros((1, 1))
    ev["digital_elements"] = np.where(on_digital, w["elements"], 0)  # elements the digital unit outputs
    ev["digital_macs"] = np.where(on_digital & w["dynamic"], w["macs"], 0)  # dynamic matmuls' MACs there

    ev.update(ap_events(p, w))
    ev.update(cam)

    # cells written per inference: the matmul operand on its arrays, one row at a time per array, the
    # arrays in parallel; each of those cells is written once per inference
    ev["cell_writes"] = np.where(rewritten, cells_for(w["in_features"], w["out_features"], w["groups"], cpw), 0)
    ev["rows_written"] = np.where(rewritten, rows_written_per_array_for(w["in_features"], rpt, per_array), 0)

    ev.update(
        feasible=(tiles >= tiles_needed)[:, 0],
        tiles=tiles[:, 0],
        tiles_needed=tiles_needed[:, 0],
        chip_arrays=chip_arrays[:, 0],
        adcs=(chip_arrays * adcs_per_array)[:, 0],
        sram_kb=(tiles * p["tile_buffer_kb"] + p["global_buffer_kb"])[:, 0],
        layer_arrays=arrays,
        duplication=dup,
        columns_per_weight=cpw,
        neurosim_counts=taps is not None,
        on_arrays=on_arrays,
        rewritten=rewritten,
        # cells holding an operand: static weights, and the operands of matmuls written into arrays per input
        utilization=((np.where(on_arrays, w["weights"], 0) * cpw).sum(axis=1) + ev["cell_writes"].sum(axis=1))
        / (chip_arrays[:, 0] * p["rows"][:, 0] * p["cols"][:, 0]),
    )
    return ev


#: op functions of kind "softmax" the AP's softmax program computes (softmin(x) = softmax(-x): the same passes
#: with the max search and the subtraction mirrored); log_softmax needs a logarithm the program lacks
AP_SOFTMAX_FNS = ("softmax", "softmin", "")


def ap_events(p: dict, w: dict) -> dict:
    """The associative processor's events per layer ((C, L), or (1, 1) zeros when no op runs on it) and
    ``ap_columns`` (C,). An op on the AP (``w["on_ap"]``) of ``elements`` outputs in rows of ``reduce``
    runs ``elements / reduce`` softmax rows of ``reduce`` scores through ``cimkit.ap.cost.softmax_events``,
    with the program (input / output bits, exp polynomial, widths, tile rows, words) of each configuration's
    ``ap`` section."""
    on_ap = w.get("on_ap")
    C = p["node_nm"].shape[0]
    if on_ap is None or not on_ap.any():
        return {**{e: np.zeros((1, 1)) for e in APF.EVENTS}, "ap_columns": np.zeros(C)}
    from ..ap.cost import EXP_POLYS, PRECISIONS, softmax_events  # torch: only when an op runs on the AP

    L = on_ap.shape[1]
    on = np.broadcast_to(on_ap, (C, L))
    out = {e: np.zeros((C, L)) for e in APF.EVENTS}
    columns = np.zeros(C)
    keys = np.concatenate(
        [p["ap_input_bits"], p["ap_output_bits"], p["ap_exp"], p["ap_precision"], p["ap_tile_rows"], p["ap_words"]],
        axis=1,
    ).astype(np.int64)
    programs, which = np.unique(keys, axis=0, return_inverse=True)
    which = np.ravel(which)
    for layer in np.flatnonzero(on.any(axis=0)):
        name, fn = str(w["names"][layer]), str(w["fns"][layer])
        reduce, elements = int(w["reduce"][0, layer]), float(w["elements"][0, layer])
        if fn not in AP_SOFTMAX_FNS:
            raise InputError(
                f"op '{name}' ({w['kinds'][layer]}, {fn}) is routed to the associative processor (unit "
                f"'ap'), whose program computes softmax (cimkit.ap.softmax); it has no {fn}: route "
                "softmax to 'digital' in spec.routing"
            )
        if reduce < 1 or elements % reduce:
            raise InputError(
                f"op '{name}' ({w['kinds'][layer]}) is routed to the associative processor (unit 'ap') "
                f"with reduce = {reduce} and elements = {elements:g}; the AP needs the row length: reduce "
                "must be >= 1 and divide elements (softmax rows = elements / reduce)"
            )
        for i, (ib, ob, exp, prec, tile_rows, words) in enumerate(programs.tolist()):
            rows = on[:, layer] & (which == i)
            if not rows.any():
                continue
            ev = softmax_events(
                reduce,
                int(elements) // reduce,
                input_bits=ib,
                output_bits=ob,
                exp=EXP_POLYS[p["ap_exps"][exp]],
                widths=PRECISIONS[p["ap_precisions"][prec]],
                tile_rows=tile_rows,
                ap_rows=words,
            )
            for e in APF.EVENTS:
                out[e][rows, layer] = ev.events[e]
            columns[rows] = np.maximum(columns[rows], ev.columns)
    return {**out, "ap_columns": columns}
