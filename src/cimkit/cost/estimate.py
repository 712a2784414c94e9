"""``estimate`` (one spec -> Report) and ``estimate_many`` (thousands of specs in one numpy pass)."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import operator
import typing
from typing import Any, Callable, Literal, Sequence

import numpy as np

from ..errors import InputError, MappingError, SpecError, short_repr
from ..mapping import input_passes, pulses_per_read
from ..spec import HardwareSpec
from ..spec.units import UNIT_TYPES
from ..workload import Workload
from ..workload.registry import kind_info, mac_events
from ..workload.registry import kinds as registry_kinds
from .components import DIGITAL_PRIMITIVES
from .model import evaluate
from .report import METRICS, ManyReport, Report
from .tech import nominal_supply_v

OpsConvention = Literal["macs", "neurosim"]
OPS_CONVENTIONS = typing.get_args(OpsConvention)
#: "unmapped" ops (no rule of the op registry matched them) are listed but not priced
UNMAPPED = "unmapped"
#: the units this cost model prices (their components are in cimkit.cost.components)
PRICED_UNITS = ("crossbar", "digital", "ap", "cam_attention")


def _check_ops(ops) -> str:
    if not isinstance(ops, str) or ops not in OPS_CONVENTIONS:
        raise InputError(
            f"ops = {short_repr(ops)}: allowed values are 'macs' (2 operations per multiply-accumulate) "
            "and 'neurosim' (DNN+NeuroSim's count, over the input map)"
        )
    return ops


def _resolve_spec(spec, where: str = "spec") -> HardwareSpec:
    """A HardwareSpec, or a preset name read as one; anything else is an ``InputError`` naming ``where``."""
    if isinstance(spec, HardwareSpec):
        return spec
    if isinstance(spec, str):
        return HardwareSpec.preset(spec)  # SpecError listing the presets for an unknown name
    raise InputError(
        f"{where} must be a HardwareSpec (HardwareSpec.preset(name), HardwareSpec.from_yaml(path)) or a "
        f"preset name ({', '.join(HardwareSpec.presets())}), got {type(spec).__name__} {short_repr(spec)}"
    )


def _number(value) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
    )


def _is(value: str):
    return lambda column: [v == value for v in column]


def _or_zero(column):
    return [v or 0 for v in column]


def _energy_factors(kind: str):
    """A column transform: each config's digital unit -> the energy of its approximate multiplier / adder
    relative to the exact one (``cimkit.spec.arith.relative_energy``), the multiplier at the unit's
    ``data_bits``."""

    @functools.lru_cache(maxsize=None)
    def factor(name: str, bits: int) -> float:
        from ..spec.arith import relative_energy

        if name == "exact":  # the reference at any width (a 1-bit unit has no multiplier to approximate)
            return 1.0
        return float(relative_energy(name, bits, kind).relative)

    attr = "multiplier" if kind == "multiplier" else "adder"
    return lambda column: [factor(getattr(d, attr), d.data_bits) for d in column]


#: the spec columns the built-in components read: (name, dtype, field path, transform of the column or None);
#: one C-level attribute getter reads every path of a spec at once
_SPEC_COLUMNS = (
    ("node_nm", float, "technology.node_nm", None),
    ("supply_v", float, "technology.supply_v", None),
    ("clock_hz", float, "technology.clock_hz", None),
    ("weight_bits", int, "weight_bits", None),
    ("bits_per_cell", int, "device.bits_per_cell", None),
    ("differential", int, "array.signed_mapping", _is("differential")),
    ("rows", int, "array.rows", None),
    ("cols", int, "array.cols", None),
    ("kernel_aligned", bool, "array.conv_mapping", _is("kernel_aligned")),
    ("layout_factor", float, "chip.layout_energy_factor", None),
    ("input_bits", int, "periphery.input_bits", None),
    ("adc_bits", float, "periphery.adc_bits", None),
    ("columns_per_adc", int, "periphery.columns_per_adc", None),
    ("read_latency_ns", float, "periphery.read_latency_ns", None),
    ("arrays_per_pe", int, "chip.arrays_per_pe", None),
    ("pes_per_tile", int, "chip.pes_per_tile", None),
    ("tiles", int, "chip.tiles", _or_zero),
    ("duplication", bool, "chip.weight_duplication", None),
    ("packed", bool, "chip.tile_allocation", _is("packed")),
    ("tile_buffer_kb", float, "chip.tile_buffer_kb", None),
    ("global_buffer_kb", float, "chip.global_buffer_kb", None),
    ("bus_bits", float, "chip.buffer_bus_bits", None),
    ("htree", bool, "chip.interconnect", _is("htree")),
    ("pipelined", bool, "chip.execution", _is("pipelined")),
    ("activation_bits", float, "chip.activation_bits", None),
    ("activity", float, "chip.input_activity", None),
    ("g_min_us", float, "device.g_min_us", None),
    ("g_max_us", float, "device.g_max_us", None),
    ("read_v", float, "device.read_voltage_v", None),
    ("cell_area_f2", float, "device.cell_area_f2", None),
    ("write_energy_pj", float, "device.write_energy_pj", None),
    ("write_time_ns", float, "device.write_time_ns", None),
    ("endurance_cycles", float, "device.endurance_cycles", None),
    ("inferences_per_s", float, "chip.inferences_per_s", _or_zero),
    ("digital_lanes", float, "digital.lanes", None),
    ("digital_bits", float, "digital.data_bits", None),
    ("digital_mul_factor", float, "digital", _energy_factors("multiplier")),
    ("digital_add_factor", float, "digital", _energy_factors("adder")),
    ("ap_words", float, "ap.words", None),
    ("ap_tile_rows", int, "ap.tile_rows", None),
    ("ap_clock_hz", float, "ap.clock_hz", None),
    ("ap_compare_row_fj", float, "ap.compare_row_energy_fj", None),
    ("ap_compare_bit_fj", float, "ap.compare_bit_energy_fj", None),
    ("ap_write_bit_fj", float, "ap.write_bit_energy_fj", None),
    ("ap_count_fj_per_row", float, "ap.count_energy_fj_per_row", None),
    ("ap_cell_area_um2", float, "ap.cell_area_um2", None),
    ("ap_input_bits", int, "ap.input_bits", None),
    ("ap_output_bits", int, "ap.output_bits", None),
    ("cam_rows", int, "cam_attention.rows", None),
    ("cam_cols", int, "cam_attention.cols", None),
    ("cam_arrays", float, "cam_attention.arrays", _or_zero),
    ("cam_clock_hz", float, "cam_attention.clock_hz", None),
    ("cam_search_cycles", float, "cam_attention.search_cycles", None),
    ("cam_compare_row_fj", float, "cam_attention.compare_row_energy_fj", None),
    ("cam_compare_bit_fj", float, "cam_attention.compare_bit_energy_fj", None),
    ("cam_write_bit_fj", float, "cam_attention.write_bit_energy_fj", None),
    ("cam_cell_area_um2", float, "cam_attention.cell_area_um2", None),
    ("cam_figures_node_nm", float, "cam_attention.figures_node_nm", None),
    ("cam_figures_supply_v", float, "cam_attention.figures_supply_v", None),
    ("cam_score_bits", float, "cam_attention.score_bits", _or_zero),
    ("cam_rows_per_adc", float, "cam_attention.rows_per_adc", None),
    ("cam_selector_lanes", float, "cam_attention.selector_lanes", None),
)
_ROW = None


def _row_fn():
    """One function returning a spec's raw column values as a tuple (built once: a single call per spec)."""
    global _ROW
    if _ROW is None:
        _ROW = operator.attrgetter(*(path for _, _, path, _ in _SPEC_COLUMNS))
    return _ROW


def _codes(values: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """(C, 1) integer codes of ``values`` and the distinct names they index."""
    names = tuple(dict.fromkeys(values))
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64)[:, None], names


def _params(specs: Sequence[HardwareSpec]) -> dict[str, Any]:
    for s in specs:
        if s.weight_bits is None or s.periphery.input_bits is None or s.periphery.adc_bits is None:
            raise InputError(
                f"spec '{s.name}': the cost model needs integer weight_bits, periphery.input_bits and "
                "periphery.adc_bits (None means an ideal, unpriceable converter)"
            )
    row = _row_fn()
    columns = list(zip(*map(row, specs)))
    table = np.array(
        [col if fn is None else fn(col) for col, (_, _, _, fn) in zip(columns, _SPEC_COLUMNS)], dtype=float
    ).T
    # (C, 1) columns, and the names that code columns index (tuples)
    p: dict[str, Any] = {
        name: table[:, i : i + 1].astype(dtype) if dtype is not float else table[:, i : i + 1]
        for i, (name, dtype, _, _) in enumerate(_SPEC_COLUMNS)
    }
    # DAC modes (passes per vector, pulses per read, binary drives) through their registry, once per
    # distinct (mode, input bits)
    p["supply_v"] = np.where(np.isnan(p["supply_v"]), nominal_supply_v(p["node_nm"]), p["supply_v"])
    p["bus_bits"] = np.where(np.isnan(p["bus_bits"]), np.maximum(p["rows"] // 2, 1), p["bus_bits"])
    p["dac_mode"], p["dac_modes"] = _codes([s.periphery.dac_mode for s in specs])
    p["adc_type"], p["adc_types"] = _codes([s.chip.adc_type for s in specs])
    p["ap_exp"], p["ap_exps"] = _codes([s.ap.exp_poly for s in specs])
    p["ap_precision"], p["ap_precisions"] = _codes([s.ap.precision for s in specs])
    p["cam_adc_type"], p["cam_adc_types"] = _codes([s.cam_attention.adc_type for s in specs])
    per_mode: dict = {}
    for s in specs:
        key = (s.periphery.dac_mode, s.periphery.input_bits)
        if key not in per_mode:
            per_mode[key] = (input_passes(s), pulses_per_read(s), s.periphery.dac.binary)
    if len(per_mode) == 1:
        ((passes, pulses, binary),) = per_mode.values()
        p["passes"], p["pulses"] = np.full((len(specs), 1), passes), np.full((len(specs), 1), pulses)
        p["binary_drive"] = np.full((len(specs), 1), binary)
    else:
        cols = np.array([per_mode[(s.periphery.dac_mode, s.periphery.input_bits)] for s in specs])
        p["passes"], p["pulses"] = cols[:, 0:1].astype(np.int64), cols[:, 1:2].astype(np.int64)
        p["binary_drive"] = cols[:, 2:3].astype(bool)
    return p


def _check_op(op, i: int, where: str, kinds: tuple[str, ...] | None = None) -> None:
    """A clear error for an op the cost model cannot price: unknown kind, or sizes and counts that are not
    finite non-negative numbers (positive sizes for a weighted layer)."""
    from ..workload import Op

    if not isinstance(op, Op):
        raise InputError(f"{where}: op {i} is a {type(op).__name__}, not a cimkit Op")
    kinds = kinds or (*registry_kinds(), UNMAPPED)
    if op.kind not in kinds:
        raise InputError(
            f"{where}: op {i} '{op.name}' has unknown kind {short_repr(op.kind)}; allowed: "
            f"{', '.join(dict.fromkeys(kinds))}"
        )
    if op.kind == UNMAPPED:
        return
    reduce = getattr(op, "reduce", 0)
    if not (_number(reduce) and reduce >= 0 and float(reduce).is_integer()):
        raise InputError(
            f"{where}: op '{op.name}' has reduce = {short_repr(reduce)}; it must be a whole number >= 0 "
            "(the length of the axis a softmax or norm reduces over; 0 when none)"
        )
    for name in ("in_features", "out_features", "groups"):
        value = getattr(op, name)
        if _number(value) and value >= 2**53:
            raise InputError(
                f"{where}: op '{op.name}' has {name} = {short_repr(value)}; sizes above 2**53 are not "
                "exact in float64 (a corrupt or mistyped workload)"
            )
    for name in ("vectors", "macs", "elements"):
        value = getattr(op, name)
        if not _number(value) or value < 0:
            raise InputError(
                f"{where}: op '{op.name}' has {name} = {short_repr(value)}; it must be a finite number >= 0"
            )
    for name in ("in_shape", "out_shape", "kernel"):
        value = getattr(op, name)
        if (
            not isinstance(value, (tuple, list))
            or not all(_number(v) and 0 <= v < 2**31 for v in value)
            or not math.isfinite(math.prod(float(v) for v in value))
            or math.prod(value) >= 2**53
        ):
            raise InputError(
                f"{where}: op '{op.name}' has {name} = {short_repr(value)}; it must be a tuple of sizes "
                ">= 0, each below 2**31 and their product below 2**53"
            )
    if op.weighted:
        sizes = (op.in_features, op.out_features, op.groups)
        if not all(_number(v) and v > 0 and float(v).is_integer() for v in sizes):
            raise MappingError(
                f"{where}: layer '{op.name}' of shape {short_repr(op.in_features)} x "
                f"{short_repr(op.out_features)} (groups {short_repr(op.groups)}) cannot be mapped: "
                "sizes must be positive integers"
            )
        if not op.vectors > 0:
            raise MappingError(
                f"{where}: layer '{op.name}' has vectors = {op.vectors}: a {op.kind} layer reads at least "
                "one input vector per inference"
            )
        if not all(v >= 1 for v in op.kernel):
            raise MappingError(f"{where}: layer '{op.name}' has kernel = {op.kernel}; kernel sides must be >= 1")
        if not op.macs > 0:
            expected = op.vectors * op.groups * op.in_features * op.out_features
            raise MappingError(
                f"{where}: layer '{op.name}' has macs = {op.macs}: a {op.kind} layer of {op.in_features} x "
                f"{op.out_features} (groups {op.groups}) on {op.vectors} vector(s) does {expected:,} "
                "multiply-accumulates per inference; give macs (ops, TOPS and TOPS/W count them)"
            )


def op_events(op) -> dict[str, float]:
    """Digital primitives of one op per inference (the op registry's ``events``; {"mac": macs} for
    weighted kinds and matmul)."""
    return kind_info(op.kind).events(op)


#: the rows of the last few workloads priced, keyed by convention and checked op by op for identity (ops
#: are frozen dataclasses: the same objects in the same order give the same rows); pricing one workload on
#: spec after spec validates and counts it once
_LAYER_CACHE: list = []


def _layers(workload: Workload, convention: OpsConvention) -> dict[str, np.ndarray]:
    _check_ops(convention)
    if not isinstance(workload, Workload):
        raise InputError(
            f"workload must be a cimkit Workload (ck.zoo.workload(name), Workload.from_torch, "
            f"Workload.from_onnx, Workload.from_neurosim_csv), got {type(workload).__name__}"
        )
    ops = workload.ops
    from ..workload.registry import EVENTS, KINDS, NEURON_EVENTS

    # a kind registered again, or a function's entry of an events table set anew, re-counts the events
    key = (workload.name, convention, KINDS.version, hash(tuple(EVENTS.items())), hash(tuple(NEURON_EVENTS.items())))
    for cached_ops, cached_key, rows in _LAYER_CACHE:
        if cached_key == key and len(cached_ops) == len(ops) and all(a is b for a, b in zip(cached_ops, ops)):
            return dict(rows)
    rows = _count_layers(workload, convention)
    if isinstance(ops, (list, tuple)):
        _LAYER_CACHE.insert(0, (tuple(ops), key, rows))
        del _LAYER_CACHE[8:]
    return dict(rows)


def _count_layers(workload: Workload, convention: OpsConvention) -> dict[str, np.ndarray]:
    """The workload's rows (each (1, L)): sizes, counts and digital primitives per op, validated. Plain
    input (int and float fields, registered kinds) is checked and counted column-wise in numpy
    (``_fast_rows``); anything else goes op by op (``_checked_rows``), which names the first bad value."""
    where = f"workload '{workload.name}'"
    ops = workload.ops
    if not isinstance(ops, (list, tuple)):
        raise InputError(f"{where}: ops must be a list of Op, got {type(ops).__name__}")
    info = _kind_table()
    rows = _fast_rows(ops, convention, info, where)
    return rows if rows is not None else _checked_rows(ops, convention, info, where)


def _kind_table() -> dict[str, tuple[bool, object]]:
    """{kind: (weighted, events function)} of every registered kind (``cimkit.workload.registry``)."""
    return {k: (bool(v.weighted), v.events) for k, v in ((k, kind_info(k)) for k in registry_kinds())}


_PLAIN = frozenset((int, float))
_SCALARS = operator.attrgetter("in_features", "out_features", "groups", "vectors", "macs", "elements")


def _events_into(prims: dict, ops, info, where: str, skip=()) -> None:
    """Add each op's digital primitives (its kind's ``events(op)``) to ``prims`` {primitive: [per op]}.
    An op's events are a function of its fields other than its name: ops alike but for the name (the
    layers of a transformer) are counted once."""
    key_of = _event_key()
    seen: dict = {}
    for i, op in enumerate(ops):
        if op.kind == UNMAPPED or op.kind in skip:
            continue
        key = key_of(op)
        try:
            events = seen.get(key)
        except TypeError:  # an unhashable field value (a list): count this op on its own
            key, events = None, None
        if events is None:
            events = info[op.kind][1](op)
            for prim in events:
                if prim not in DIGITAL_PRIMITIVES:
                    raise InputError(
                        f"{where}: op '{op.name}' ({op.kind}) counts the digital primitive {prim!r}; the "
                        f"digital unit prices {', '.join(DIGITAL_PRIMITIVES)}"
                    )
            if key is not None:
                seen[key] = events
        for prim, n in events.items():
            if n:
                prims.setdefault(prim, [0.0] * len(ops))[i] += float(n)


_EVENT_KEYS: dict[type, Callable] = {}


def _event_key():
    """A function of an op giving its type and its fields other than the name, as a tuple (an ``Op``
    subclass's own fields included: its kind's events may read them)."""

    def key(op):
        getter = _EVENT_KEYS.get(type(op))
        if getter is None:
            getter = _EVENT_KEYS[type(op)] = operator.attrgetter(
                *(f.name for f in dataclasses.fields(op) if f.name != "name")
            )
        return (type(op), *getter(op))

    return key


def _fast_rows(ops, convention: str, info: dict, where: str) -> dict | None:
    """``_checked_rows``'s result for plain, valid input computed column-wise, or None where any op
    needs the op-by-op path (another type, an unknown kind, a value out of range: that path names it)."""
    from ..workload import Op

    L = len(ops)
    if not L or not all(isinstance(op, Op) for op in ops):
        return None
    kinds = [op.kind for op in ops]
    distinct = set(kinds)
    if not distinct <= {*info, UNMAPPED}:
        return None
    scalars = list(map(_SCALARS, ops))
    kernels = [op.kernel for op in ops]
    in_shapes = [op.in_shape for op in ops]
    out_shapes = [op.out_shape for op in ops]
    given = [op.activity for op in ops if op.activity is not None]
    binary = [getattr(op, "binary_input", False) for op in ops]
    if not (
        set(map(type, binary)) == {bool}
        and set(map(type, itertools.chain.from_iterable(scalars))) <= _PLAIN
        and set(map(type, kernels)) | set(map(type, in_shapes)) | set(map(type, out_shapes)) == {tuple}
        and set(map(len, kernels)) == {2}
        and set(
            map(
                type,
                itertools.chain(
                    itertools.chain.from_iterable(kernels),
                    itertools.chain.from_iterable(in_shapes),
                    itertools.chain.from_iterable(out_shapes),
                ),
            )
        )
        <= _PLAIN
        and set(map(type, given)) <= _PLAIN
        and all(0 <= a <= 1 for a in given)
    ):
        return None
    num = np.array(scalars, dtype=float).reshape(L, 6)  # in, out, groups, vectors, macs, elements
    ker = np.array(kernels, dtype=float)
    shapes = np.array([v for s in in_shapes for v in s] + [v for s in out_shapes for v in s], dtype=float)
    weighted_list = [k != UNMAPPED and info[k][0] for k in kinds]
    weighted = np.array(weighted_list)
    w = num[weighted]
    # every op (unmapped ones too: anything unusual goes the op-by-op way) has finite sizes and counts >= 0;
    # weighted layers positive integer sizes, vectors, MACs and kernel sides >= 1 (NaN fails every test)
    if not (
        w.size
        and np.isfinite(num).all()
        and num[:, 3:].min() >= 0
        and ker.min() >= 0
        and (not shapes.size or (shapes.min() >= 0 and shapes.max() < np.inf))
        and w[:, :5].min() > 0
        and (w[:, :3] == np.floor(w[:, :3])).all()
        and ker[weighted].min() >= 1
        and (w[:, 2] * w[:, 0]).max() < 2.0**53  # groups x in exact: Op.weights below rounds once
        and num[:, :3].max() < 2.0**53
        and ker.max() < 2.0**31
        and (not shapes.size or shapes.max() < 2.0**53)
        and all(type(op.reduce) is int and op.reduce >= 0 for op in ops)
    ):
        return None
    # digital primitives: MAC counts straight from the macs column; other events per op
    prims: dict[str, list] = {}
    macs_kinds = {k for k in distinct if k != UNMAPPED and info[k][1] is mac_events}
    _events_into(prims, ops, info, where, skip=macs_kinds)
    prim_rows = {k: np.array(v)[None, :] for k, v in prims.items()}
    if macs_kinds:
        mac = np.where([k in macs_kinds for k in kinds], num[:, 4], 0.0)
        prim_rows["mac"] = prim_rows["mac"] + mac if "mac" in prim_rows else mac[None, :]
    unmapped = np.array([k == UNMAPPED for k in kinds]) if UNMAPPED in distinct else None

    def at_least_1(col):
        col = np.maximum(col, 1)
        return (col if unmapped is None else np.where(unmapped, 1, col)).astype(int)[None, :]

    def zero_unmapped(values):
        values = np.asarray(values, dtype=float)
        return (values if unmapped is None else np.where(unmapped, 0.0, values))[None, :]

    weights = np.where(weighted, num[:, 2] * num[:, 0] * num[:, 1], 0.0)  # groups x in x out (Op.weights)
    ops_count = [o.neurosim_ops() for o in ops] if convention == "neurosim" else 2.0 * num[:, 4]
    act = (
        np.array([np.nan if op.activity is None else op.activity for op in ops], dtype=float)
        if given
        else np.full(L, np.nan)
    )
    return {
        "weighted": weighted[None, :],
        "in_features": at_least_1(num[:, 0]),
        "out_features": at_least_1(num[:, 1]),
        "groups": at_least_1(num[:, 2]),
        "kernel": at_least_1(ker[:, 0] * ker[:, 1]),
        "vectors": zero_unmapped(num[:, 3]),
        "in_elements": zero_unmapped([math.prod(s) if s else 0 for s in in_shapes]),
        "out_elements": zero_unmapped([math.prod(s) if s else 0 for s in out_shapes]),
        "elements": zero_unmapped(np.where(weighted, 0.0, num[:, 5])),
        "weights": zero_unmapped(weights),
        "dynamic": np.array([k == "matmul" for k in kinds])[None, :],
        "macs": zero_unmapped(num[:, 4]),
        "prims": prim_rows,
        "activity": act[None, :],
        "activity_set": bool(given),
        "binary_input": (np.array(binary) & (unmapped is None or ~unmapped))[None, :]
        if any(binary)
        else np.zeros((1, L), dtype=bool),
        "ops": zero_unmapped(ops_count),
        "reduce": zero_unmapped([op.reduce for op in ops]),
        "names": np.array([op.name for op in ops]),
        "kinds": np.array(kinds),
        "fns": np.array([op.fn for op in ops]),
    }


def _checked_rows(ops, convention: str, info: dict, where: str) -> dict:
    """The rows op by op, each op checked first (``_check_op``: the error names the op and the value)."""
    kinds = (*info, UNMAPPED)
    for i, op in enumerate(ops):
        _check_op(op, i, where, kinds)
    if not any(op.weighted for op in ops):
        unmapped = [op.name for op in ops if op.kind == UNMAPPED]
        extra = f" (unmapped ops, not priced: {', '.join(unmapped[:6])})" if unmapped else ""
        raise MappingError(f"{where} has no Linear or convolution layer to map onto arrays{extra}")

    def row(fn, dtype=float, unmapped=0):
        # unmapped ops contribute nothing: no arrays, no digital work, no buffer traffic, no operations
        return np.array([unmapped if op.kind == UNMAPPED else fn(op) for op in ops], dtype=dtype)[None, :]

    prims: dict[str, list] = {}
    _events_into(prims, ops, info, where)
    activity = [getattr(op, "activity", None) for op in ops]
    for op, a in zip(ops, activity):
        if a is not None and not (_number(a) and 0 <= a <= 1):
            raise InputError(
                f"{where}: op '{op.name}' has activity = {short_repr(a)}; it must be a fraction in [0, 1] "
                "or None (the chip's input_activity)"
            )
    for op in ops:
        b = getattr(op, "binary_input", False)
        if not isinstance(b, (bool, np.bool_)):
            raise InputError(
                f"{where}: op '{op.name}' has binary_input = {short_repr(b)}; it must be True (its inputs "
                "are 0/1 spikes, read in one pass) or False"
            )
    return {
        "weighted": row(lambda o: o.weighted, bool),
        "in_features": row(lambda o: max(o.in_features, 1), int, 1),
        "out_features": row(lambda o: max(o.out_features, 1), int, 1),
        "groups": row(lambda o: max(o.groups, 1), int, 1),
        "kernel": row(lambda o: max(o.kernel[0] * o.kernel[1], 1), int, 1),
        "vectors": row(lambda o: o.vectors),
        "in_elements": row(lambda o: o.input_elements),
        "out_elements": row(lambda o: o.output_elements),
        "elements": row(lambda o: o.elements if not o.weighted else 0),
        "weights": row(lambda o: o.weights),
        "dynamic": row(lambda o: o.kind == "matmul", bool),
        "macs": row(lambda o: o.macs),
        "prims": {k: np.array(v)[None, :] for k, v in prims.items()},
        "activity": np.array([np.nan if a is None else float(a) for a in activity])[None, :],
        "activity_set": any(a is not None for a in activity),
        "binary_input": row(lambda o: bool(getattr(o, "binary_input", False)), bool, False),
        "ops": row(lambda o: o.neurosim_ops() if convention == "neurosim" else 2 * o.macs),
        "reduce": row(lambda o: o.reduce),
        "names": np.array([op.name for op in ops]),
        "kinds": np.array([op.kind for op in ops]),
        "fns": np.array([str(getattr(op, "fn", "")) for op in ops]),
    }


def _routing(workload: Workload, specs: Sequence[HardwareSpec], lw: dict) -> None:
    """The unit each op runs on, per spec (``HardwareSpec.unit_for``, resolved once per distinct routing):
    ``lw["units"]`` (C, L) codes into ``lw["unit_names"]``, and the masks ``on_arrays`` / ``on_digital`` / ``on_ap``
    / ``on_cam_attention``."""
    kinds = lw["kinds"].tolist()
    distinct = list(dict.fromkeys(kinds))
    unit_names: list[str] = []
    per_routing: dict = {}
    index = []
    for s in specs:
        key = tuple(sorted(s.routing.items()))
        if key not in per_routing:
            units = {}
            for kind in distinct:
                if kind == UNMAPPED:
                    units[kind] = ""
                    continue
                unit = s.unit_for(kind)
                if unit not in UNIT_TYPES or not UNIT_TYPES.get(unit).can_run(kind):
                    op = next(o for o in workload.ops if o.kind == kind)
                    if unit not in UNIT_TYPES:
                        fix = (
                            (
                                f"{unit!r} is no unit type (registered: {', '.join(UNIT_TYPES.names())}); register it with "
                                f"cimkit.spec.units.register_unit_type({unit!r}, {{{kind!r}}}) or route {kind} in "
                                "spec.routing"
                            )
                            if unit
                            else (
                                f"op kind {kind!r} has no default unit; register it with default_unit= "
                                "(cimkit.workload.registry.register_kind) or route it in spec.routing"
                            )
                        )
                    else:
                        fix = (
                            f"{unit!r} runs {', '.join(sorted(UNIT_TYPES.get(unit).kinds()))}; route {kind} to a unit "
                            f"that runs it (spec.routing) or add it to that unit type (register_unit_type(..., "
                            "replace=True))"
                        )
                    raise InputError(
                        f"workload '{workload.name}': op '{op.name}' ({kind}) runs on unit {unit!r} on spec "
                        f"{s.name!r}, which cannot run {kind} ops: {fix}"
                    )
                if unit not in PRICED_UNITS:
                    op = next(o for o in workload.ops if o.kind == kind)
                    raise InputError(
                        f"workload '{workload.name}': op '{op.name}' ({kind}) runs on unit {unit!r} on spec "
                        f"{s.name!r}, which this cost model does not price (it counts events and prices "
                        f"the units {', '.join(PRICED_UNITS)}); route {kind} to one of those in "
                        "spec.routing"
                    )
                units[kind] = unit
            for u in units.values():
                if u not in unit_names:
                    unit_names.append(u)
            per_routing[key] = (len(per_routing), [unit_names.index(units[k]) for k in kinds])
        index.append(per_routing[key][0])
    table = np.array([codes for _, codes in per_routing.values()], dtype=np.int64)
    unit_codes = table[np.array(index)] if len(per_routing) > 1 else table  # (C, L), or (1, L) shared by all
    lw["units"], lw["unit_names"] = unit_codes, tuple(unit_names)
    code = {u: i for i, u in enumerate(unit_names)}
    lw["on_arrays"] = unit_codes == code.get("crossbar", -1)
    lw["on_digital"] = unit_codes == code.get("digital", -1)
    lw["on_ap"] = unit_codes == code.get("ap", -1)
    lw["on_cam_attention"] = unit_codes == code.get("cam_attention", -1)


def _spec_list(specs) -> list[HardwareSpec]:
    """``specs`` (a list or tuple of HardwareSpec or preset names) as HardwareSpecs."""
    if isinstance(specs, (str, HardwareSpec)) or not isinstance(specs, (list, tuple)):
        got = (
            f"the single spec {specs.name!r}"
            if isinstance(specs, HardwareSpec)
            else f"{type(specs).__name__} {short_repr(specs)}"
        )
        raise InputError(
            f"specs must be a list of HardwareSpec or preset names ({', '.join(HardwareSpec.presets())}), "
            f"got {got}; for one spec use estimate() or [spec]"
        )
    if not specs:
        raise InputError("estimate_many needs at least one spec")
    out = []
    for i, s in enumerate(specs):
        if not isinstance(s, (HardwareSpec, str)):
            raise InputError(
                f"specs[{i}] must be a HardwareSpec or a preset name ({', '.join(HardwareSpec.presets())}), "
                f"got {type(s).__name__} {short_repr(s)}"
            )
        out.append(_resolve_spec(s, f"specs[{i}]"))
    return out


def _check_finite(out: dict, names: list[str], where: str) -> None:
    """Raise where a feasible design got a chip figure that is not a finite positive number. From valid input
    that is an overflow or underflow (a spec value far outside any physical range, such as a clock of 1e-300
    Hz): a NaN or an infinity must never reach a report."""
    feasible = out["feasible"]
    with np.errstate(all="ignore"):
        figures = {key: out[key] for key in METRICS}
        figures.update(
            edp_js=out["energy_j"] * out["latency_s"],
            tops=out["ops"] / out["period_s"] / 1e12,
            tops_per_w=out["ops"] / out["energy_j"] / 1e12,
            tops_per_mm2=out["ops"] / out["period_s"] / 1e12 / out["area_mm2"],
            utilization=out["utilization"],
        )
    for key, value in figures.items():
        bad = feasible & ~(np.isfinite(value) & (value > 0))
        if not bad.any():
            continue
        i = int(np.flatnonzero(bad)[0])
        comps = {
            **{f"area of {c}": out["area"][c][i] for c in out["area"]},
            **{f"energy of {c}": out["energy"][c][i].sum() for c in out["energy"]},
            **{f"latency of {c}": out["latency"][c][i].sum() for c in out["latency"]},
        }
        culprits = [k for k, v in comps.items() if not np.isfinite(v)]
        raise SpecError(
            f"{where} on spec {names[i]!r}: {key} = {value[i]:g}"
            f"{' (' + ', '.join(culprits[:4]) + ' not finite)' if culprits else ''}: a value of the spec is "
            "outside any physical range (the figures overflow); check the fields behind that figure"
        )


def _check_compat(neurosim_compat) -> bool:
    if not isinstance(neurosim_compat, (bool, np.bool_)):
        raise InputError(
            f"neurosim_compat = {short_repr(neurosim_compat)}: give True (count as DNN+NeuroSim V1.3 "
            "does) or False (cimkit's count)"
        )
    return bool(neurosim_compat)


def neurosim_windows(op) -> int:
    """Input windows a convolution reads as DNN+NeuroSim V1.3 counts them: ((H - K) / stride + 1) per side of
    the input map, the windows without padding (900 rather than 1,024 for a 3x3 'same' convolution on a
    32 x 32 map; a dilated kernel spans dilation x (K - 1) + 1), never more than the layer's own vectors;
    other ops keep their vectors."""
    if op.kind != "conv" or len(op.in_shape) < 2:
        return op.vectors
    sides = op.in_shape[1:]
    dilation = getattr(op, "dilation", None) or (1,) * len(op.kernel)
    n = 1
    # spatial sides, kernel and stride aligned from the last axis (a 1-D conv stores kernel (1, k))
    for size, k, st, d in zip(sides[::-1], op.kernel[::-1], op.stride[::-1], dilation[::-1]):
        span = d * (k - 1) + 1
        n *= max((size - span) // max(st, 1) + 1, 1)
    return min(n, op.vectors)


def _as_neurosim(workload: Workload, lw: dict, convention: str) -> dict:
    """The rows counted as DNN+NeuroSim V1.3 counts them (``neurosim_compat``): convolutions read only the
    windows without padding (``neurosim_windows``; with the "macs" convention their operations shrink
    alike), and a convolution of the network's most frequent kernel size, when its unrolled rows fill an
    array, puts each tap's channels on arrays of their own (NeuroSim's "novel mapping")."""
    from collections import Counter

    rows = dict(lw)
    ops = workload.ops
    old = lw["vectors"][0].tolist()
    new = [float(neurosim_windows(op)) if op.kind == "conv" else v for op, v in zip(ops, old)]
    rows["vectors"] = np.array(new, dtype=float)[None, :]
    if convention == "macs":  # NeuroSim's own count (input map size) does not depend on the windows
        scale = np.array([n / v if v else 1.0 for n, v in zip(new, old)])[None, :]
        rows["ops"] = lw["ops"] * scale
    taps = [op.kernel[0] * op.kernel[1] if op.kind == "conv" else 0 for op in ops]
    counts = Counter(t for t in taps if t)
    # NeuroSim's PE holds one tap of the network's most frequent kernel size (ties: the larger kernel)
    common = max(counts, key=lambda t: (counts[t], t)) if counts else 1
    rows["split_taps"] = np.array([t if t == common and t > 1 else 1 for t in taps])[None, :]
    return rows


def _run(
    workload: Workload, specs: list[HardwareSpec], ops: OpsConvention, neurosim_compat: bool = False
) -> tuple[dict, dict]:
    lw = _layers(workload, ops)
    if neurosim_compat:
        lw = _as_neurosim(workload, lw, ops)
    _routing(workload, specs, lw)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):  # checked just below
        out = evaluate(_params(specs), lw)
    _check_finite(out, [s.name for s in specs], f"workload '{workload.name}'")
    return lw, out


def energy_by_event(
    workload: Workload, spec: HardwareSpec | str, *, ops: OpsConvention = "macs", neurosim_compat: bool = False
) -> dict[str, dict[str, float]]:
    """{component: {event: J per inference}} of ``workload`` on ``spec``: each line of ``estimate``'s energy
    breakdown split by the events its component prices (``cimkit.cost.components``; e.g. the ``cam_attention``
    line into key writes, match-line search and conversions), summed over the layers. Leakage and layout
    are not events (the report's ``leakage`` and ``layout`` lines)."""
    from .model import energy_by_event as by_event

    _check_ops(ops)
    compat = _check_compat(neurosim_compat)
    spec = _resolve_spec(spec)
    lw = _layers(workload, ops)
    if compat:
        lw = _as_neurosim(workload, lw, ops)
    _routing(workload, [spec], lw)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        split = by_event(_params([spec]), lw)
    return {comp: {event: float(v[0]) for event, v in events.items()} for comp, events in split.items()}


def estimate_many(
    workload: Workload,
    specs: Sequence[HardwareSpec | str],
    *,
    ops: OpsConvention = "macs",
    neurosim_compat: bool = False,
) -> ManyReport:
    """Price ``workload`` on every spec (a HardwareSpec or a preset name) in one vectorized pass. Infeasible
    designs (a fixed number of tiles that cannot hold the weights) get NaN metrics and ``feasible`` False.
    ``neurosim_compat`` as for ``estimate``."""
    _check_ops(ops)
    compat = _check_compat(neurosim_compat)
    specs = _spec_list(specs)
    _, out = _run(workload, specs, ops, compat)
    nan = lambda x: np.where(out["feasible"], x, np.nan)  # noqa: E731
    return ManyReport(
        out["feasible"],
        nan(out["area_mm2"]),
        nan(out["energy_j"]),
        nan(out["latency_s"]),
        nan(out["period_s"]),
        out["ops"],
        out,
        specs=[s.name for s in specs],
    )


def endurance(out: dict, inferences_per_s: float | None, endurance_cycles: float, i: int = 0) -> dict[str, float]:
    """Writes per cell per inference (a rewritten matmul's operand: each of its cells once per inference),
    the inference rate (``chip.inferences_per_s``, else back to back at the chip's throughput) and the device
    lifetime ``endurance_cycles / (writes per cell per inference x rate)``; empty when nothing is rewritten."""
    writes = out["events"]["cell_writes"]
    writes = writes[min(i, writes.shape[0] - 1)]
    if not np.any(writes > 0):
        return {}
    per_cell = 1.0  # cell_writes counts each written cell once per inference (rewritten layers are not copied)
    rate = inferences_per_s or (1.0 / float(out["period_s"][i]))
    return {
        "writes_per_cell_per_inference": per_cell,
        "inferences_per_s": rate,
        "lifetime_s": endurance_cycles / (per_cell * rate),
    }


def _with_measured_activity(workload, spec: HardwareSpec, loader) -> Workload:
    """``workload`` (a torch model, traced on the loader's first batch) with every weighted op's input
    activity measured from ``loader`` (``cimkit.workload.measure_activity``; the loader is read once)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not isinstance(workload, torch.nn.Module):
        raise InputError(
            f"estimate: activity_from measures the input activity by running a torch model on the data; "
            f"pass the torch.nn.Module itself as the workload (got {type(workload).__name__}), or measure "
            "it with cimkit.workload.measure_activity(model, loader, spec) and price "
            "workload.with_activity(...)"
        )
    from ..workload.activity import input_batches, measure_activity

    batches = input_batches(workload, loader, 8, "estimate: activity_from")
    first = batches[0]
    traced = Workload.from_torch(workload, (1, *first.shape[1:]), input_dtype=first.dtype)
    measured = measure_activity(workload, batches, spec)
    names = {op.name for op in traced.ops}
    return traced.with_activity({k: v for k, v in measured.items() if k in names})


def estimate(
    workload: Workload,
    spec: HardwareSpec | str,
    *,
    ops: OpsConvention = "macs",
    activity_from=None,
    neurosim_compat: bool = False,
) -> Report:
    """Area, energy, latency and derived figures of ``workload`` on ``spec`` (a HardwareSpec or a preset name),
    per layer, component and unit. ``ops``: 'macs' (2 operations per MAC) or 'neurosim' (NeuroSim's count).

    ``activity_from``: a loader of input batches (or (inputs, targets) pairs); ``workload`` is then a torch
    model, traced on the first batch's shape, and each weighted op is priced at the input activity (fraction
    of 1 bits driving the rows) measured on up to 8 batches with the chip's DAC
    (``cimkit.workload.measure_activity``); without it, ops use their ``Op.activity`` or the spec's
    ``chip.input_activity``.

    ``neurosim_compat``: count as DNN+NeuroSim V1.3 does where cimkit counts otherwise for a physical reason:
    a convolution reads only its windows without padding (NeuroSim omits the padded border's outputs: 900
    instead of 1,024 windows on a 32 x 32 map, 36 instead of 64 on 8 x 8) and each kernel tap of a large
    convolution gets arrays of its own (its "novel mapping"). Off, every output position is computed and
    kernels are mapped as ``array.conv_mapping`` says (docs/validation.md gives the difference).

    Each op runs on the unit ``spec.unit_for(op.kind)`` names (layer rows say which, ``Report.units`` sums
    them); a dynamic matmul routed to the crossbar rewrites arrays per input (``Report.endurance``).
    An infeasible design (``chip.tiles`` too few for the weights) gives ``feasible`` False, its ``reason``,
    and NaN chip figures. Ops of kind "unmapped" are listed in ``Report.unmapped`` and priced as nothing."""
    _check_ops(ops)
    compat = _check_compat(neurosim_compat)
    spec = _resolve_spec(spec)
    if activity_from is not None:
        workload = _with_measured_activity(workload, spec, activity_from)
    lw, out = _run(workload, [spec], ops, compat)
    feasible = bool(out["feasible"][0])
    reason = (
        ""
        if feasible
        else (f"the weights need {int(out['tiles_needed'][0])} tiles but chip.tiles = {int(out['tiles'][0])}")
    )
    comps = out["components"]
    per_comp = [out["energy"][c][0] for c in comps]
    # each layer's total adds its components in report order (as sum() over them would)
    layer_energy = sum(per_comp).tolist() if per_comp else [0] * len(lw["names"])
    keys = [f"energy_{c}_j" for c in comps]
    unit_of = [lw["unit_names"][u] for u in lw["units"][0].tolist()]
    layers = []
    units: dict[str, dict[str, float]] = {}
    for name, kind, unit, arrays, latency, total, *parts in zip(
        lw["names"].tolist(),
        lw["kinds"].tolist(),
        unit_of,
        out["layer_arrays"][0].tolist(),
        out["layer_latency_s"][0].tolist(),
        layer_energy,
        *(e.tolist() for e in per_comp),
    ):
        row = {"name": name, "kind": kind, "unit": unit, "arrays": int(arrays), "latency_s": latency}
        row.update(zip(keys, parts))
        row["energy_j"] = total
        layers.append(row)
        if unit:
            u = units.setdefault(unit, {"ops": 0, "energy_j": 0.0, "latency_s": 0.0})
            u["ops"] += 1
            u["energy_j"] += total
            u["latency_s"] += latency
    val = (lambda x: float(x[0])) if feasible else (lambda x: math.nan)
    report = Report(
        workload=workload.name,
        spec=spec.name,
        feasible=feasible,
        reason=reason,
        area_mm2=val(out["area_mm2"]),
        energy_j=val(out["energy_j"]),
        latency_s=val(out["latency_s"]),
        period_s=val(out["period_s"]),
        ops=float(out["ops"][0]),
        area_breakdown_mm2={c: float(out["area"][c][0]) for c in out["area"]},
        energy_breakdown_j={
            **{c: float(out["energy"][c][0].sum()) for c in comps},
            "leakage": float(out["leakage_j"][0]),
            "layout": float(out["layout_j"][0]),
        },
        latency_breakdown_s={c: float(out["latency"][c][0].sum()) for c in out["latency"]},
        layers=layers,
        arrays=int(out["arrays"][0]),
        tiles=int(out["tiles"][0]),
        utilization=float(out["utilization"][0]),
        unmapped=[str(n) for n, k in zip(lw["names"], lw["kinds"]) if k == UNMAPPED],
        units=units,
        endurance=endurance(out, spec.chip.inferences_per_s, spec.device.endurance_cycles) if feasible else {},
        clock_period_s=float(out["cycle_s"][0]),
    )
    if not feasible:
        _undefined(report)
    return report


def _undefined(report: Report) -> None:
    """An infeasible design is not priced: its breakdowns, unit figures and layer energies and latencies are
    NaN (null in JSON) like its totals; the layers keep their names, units and arrays (what did not fit)."""
    report.utilization = math.nan
    for parts in (report.area_breakdown_mm2, report.energy_breakdown_j, report.latency_breakdown_s):
        parts.update(dict.fromkeys(parts, math.nan))
    for figures in report.units.values():
        figures.update(energy_j=math.nan, latency_s=math.nan)
    for row in report.layers:
        row.update({k: math.nan for k in row if k.endswith("_j") or k.endswith("_s")})
