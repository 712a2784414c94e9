"""``estimate`` (one spec -> Report) and ``estimate_many`` (thousands of specs in one numpy pass)."""

from __future__ import annotations

import math
import typing
from typing import Literal, Sequence

import numpy as np

from ..errors import InputError, MappingError, SpecError, short_repr
from ..spec import HardwareSpec
from ..workload import Workload
from ..workload.core import OpKind
from .model import COMPONENTS, evaluate
from .report import LAYER_FIELDS, METRICS, ManyReport, Report  # noqa: F401 (LAYER_FIELDS re-exported)

OpsConvention = Literal["macs", "neurosim"]
OPS_CONVENTIONS = typing.get_args(OpsConvention)
#: op kinds the cost model prices: weighted ones on arrays, the rest on digital units; "unmapped" ops
#: (weights the cost model cannot map, kept visible by the importers) are listed but not priced
UNMAPPED = "unmapped"
OP_KINDS = tuple(dict.fromkeys((*typing.get_args(OpKind), UNMAPPED)))


def _check_ops(ops) -> str:
    if not isinstance(ops, str) or ops not in OPS_CONVENTIONS:
        raise InputError(f"ops = {short_repr(ops)}: allowed values are 'macs' (2 operations per multiply-accumulate) "
                         "and 'neurosim' (DNN+NeuroSim's count, over the input map)")
    return ops


def _resolve_spec(spec, where: str = "spec") -> HardwareSpec:
    """A HardwareSpec, or a preset name read as one; anything else is an ``InputError`` naming ``where``."""
    if isinstance(spec, HardwareSpec):
        return spec
    if isinstance(spec, str):
        return HardwareSpec.preset(spec)  # SpecError listing the presets for an unknown name
    raise InputError(f"{where} must be a HardwareSpec (HardwareSpec.preset(name), HardwareSpec.from_yaml(path)) or a "
                     f"preset name ({', '.join(HardwareSpec.presets())}), got {type(spec).__name__} {short_repr(spec)}")


def _number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)


def _params(specs: Sequence[HardwareSpec]) -> dict[str, np.ndarray]:
    def col(fn, dtype=float):
        return np.array([fn(s) for s in specs], dtype=dtype)[:, None]

    for s in specs:
        if s.weight_bits is None or s.periphery.input_bits is None or s.periphery.adc_bits is None:
            raise InputError(f"spec '{s.name}': the cost model needs integer weight_bits, periphery.input_bits and "
                             "periphery.adc_bits (None means an ideal, unpriceable converter)")
    adc_types = {"mlsa": 0, "sar": 1, "survey": 2, "integrate_fire": 3}
    return {
        "node_nm": col(lambda s: s.technology.node_nm), "supply_v": col(lambda s: s.technology.supply_v),
        "clock_hz": col(lambda s: s.technology.clock_hz),
        "weight_bits": col(lambda s: s.weight_bits, int), "bits_per_cell": col(lambda s: s.device.bits_per_cell, int),
        "differential": col(lambda s: s.array.signed_mapping == "differential", int),
        "rows": col(lambda s: s.array.rows, int), "cols": col(lambda s: s.array.cols, int),
        "kernel_aligned": col(lambda s: s.array.conv_mapping == "kernel_aligned", bool),
        "bit_serial": col(lambda s: s.periphery.dac_mode == "bit_serial", bool),
        "pulse_train": col(lambda s: s.periphery.dac_mode == "pulse_train", bool),
        "layout_factor": col(lambda s: s.chip.layout_energy_factor),
        "input_bits": col(lambda s: s.periphery.input_bits, int), "adc_bits": col(lambda s: s.periphery.adc_bits, float),
        "columns_per_adc": col(lambda s: s.periphery.columns_per_adc, int),
        "read_latency_ns": col(lambda s: s.periphery.read_latency_ns),
        "adc_type": col(lambda s: adc_types[s.chip.adc_type], int),
        "arrays_per_pe": col(lambda s: s.chip.arrays_per_pe, int), "pes_per_tile": col(lambda s: s.chip.pes_per_tile, int),
        "tiles": col(lambda s: s.chip.tiles or 0, int), "duplication": col(lambda s: s.chip.weight_duplication, bool),
        "packed": col(lambda s: s.chip.tile_allocation == "packed", bool),
        "tile_buffer_kb": col(lambda s: s.chip.tile_buffer_kb), "global_buffer_kb": col(lambda s: s.chip.global_buffer_kb),
        "bus_bits": col(lambda s: s.chip.buffer_bus_bits), "htree": col(lambda s: s.chip.interconnect == "htree", bool),
        "pipelined": col(lambda s: s.chip.execution == "pipelined", bool),
        "activation_bits": col(lambda s: s.chip.activation_bits), "activity": col(lambda s: s.chip.input_activity),
        "g_min_us": col(lambda s: s.device.g_min_us), "g_max_us": col(lambda s: s.device.g_max_us),
        "read_v": col(lambda s: s.device.read_voltage_v), "cell_area_f2": col(lambda s: s.device.cell_area_f2),
    }


def _check_op(op, i: int, where: str) -> None:
    """A clear error for an op the cost model cannot price: unknown kind, or sizes and counts that are not
    finite non-negative numbers (positive sizes for a weighted layer)."""
    from ..workload import Op

    if not isinstance(op, Op):
        raise InputError(f"{where}: op {i} is a {type(op).__name__}, not a cimkit Op")
    if op.kind not in OP_KINDS:
        raise InputError(f"{where}: op {i} '{op.name}' has unknown kind {short_repr(op.kind)}; allowed: "
                         f"{', '.join(OP_KINDS)}")
    if op.kind == UNMAPPED:
        return
    for name in ("vectors", "macs", "elements"):
        value = getattr(op, name)
        if not _number(value) or value < 0:
            raise InputError(f"{where}: op '{op.name}' has {name} = {short_repr(value)}; it must be a finite number >= 0")
    for name in ("in_shape", "out_shape", "kernel"):
        value = getattr(op, name)
        if not isinstance(value, (tuple, list)) or not all(_number(v) and v >= 0 for v in value):
            raise InputError(f"{where}: op '{op.name}' has {name} = {short_repr(value)}; it must be a tuple of sizes >= 0")
    if op.weighted:
        sizes = (op.in_features, op.out_features, op.groups)
        if not all(_number(v) and v > 0 and float(v).is_integer() for v in sizes):
            raise MappingError(f"{where}: layer '{op.name}' of shape {short_repr(op.in_features)} x "
                               f"{short_repr(op.out_features)} (groups {short_repr(op.groups)}) cannot be mapped: "
                               "sizes must be positive integers")
        if not op.vectors > 0:
            raise MappingError(f"{where}: layer '{op.name}' has vectors = {op.vectors}: a {op.kind} layer reads at least "
                               "one input vector per inference")
        if not all(v >= 1 for v in op.kernel):
            raise MappingError(f"{where}: layer '{op.name}' has kernel = {op.kernel}; kernel sides must be >= 1")
        if not op.macs > 0:
            expected = op.vectors * op.groups * op.in_features * op.out_features
            raise MappingError(f"{where}: layer '{op.name}' has macs = {op.macs}: a {op.kind} layer of {op.in_features} x "
                               f"{op.out_features} (groups {op.groups}) on {op.vectors} vector(s) does {expected:,} "
                               "multiply-accumulates per inference; give macs (ops, TOPS and TOPS/W count them)")


def _layers(workload: Workload, convention: OpsConvention) -> dict[str, np.ndarray]:
    _check_ops(convention)
    if not isinstance(workload, Workload):
        raise InputError(f"workload must be a cimkit Workload (ck.zoo.workload(name), Workload.from_torch, "
                         f"Workload.from_onnx, Workload.from_neurosim_csv), got {type(workload).__name__}")
    where = f"workload '{workload.name}'"
    ops = workload.ops
    if not isinstance(ops, (list, tuple)):
        raise InputError(f"{where}: ops must be a list of Op, got {type(ops).__name__}")
    for i, op in enumerate(ops):
        _check_op(op, i, where)
    if not any(op.weighted for op in ops):
        unmapped = [op.name for op in ops if op.kind == UNMAPPED]
        extra = f" (unmapped ops, not priced: {', '.join(unmapped[:6])})" if unmapped else ""
        raise MappingError(f"{where} has no Linear or convolution layer to map onto arrays{extra}")

    def row(fn, dtype=float, unmapped=0):
        # unmapped ops contribute nothing: no arrays, no digital work, no buffer traffic, no operations
        return np.array([unmapped if op.kind == UNMAPPED else fn(op) for op in ops], dtype=dtype)[None, :]

    return {
        "weighted": row(lambda o: o.weighted, bool), "in_features": row(lambda o: max(o.in_features, 1), int, 1),
        "out_features": row(lambda o: max(o.out_features, 1), int, 1), "groups": row(lambda o: max(o.groups, 1), int, 1),
        "kernel": row(lambda o: max(o.kernel[0] * o.kernel[1], 1), int, 1), "vectors": row(lambda o: o.vectors),
        "in_elements": row(lambda o: o.input_elements), "out_elements": row(lambda o: o.output_elements),
        "elements": row(lambda o: o.elements if not o.weighted else 0), "weights": row(lambda o: o.weights),
        "dynamic_macs": row(lambda o: o.macs if o.kind == "matmul" else 0),
        "ops": row(lambda o: o.neurosim_ops() if convention == "neurosim" else 2 * o.macs),
        "names": np.array([op.name for op in ops]), "kinds": np.array([op.kind for op in ops]),
    }


def _spec_list(specs) -> list[HardwareSpec]:
    """``specs`` (a list or tuple of HardwareSpec or preset names) as HardwareSpecs."""
    if isinstance(specs, (str, HardwareSpec)) or not isinstance(specs, (list, tuple)):
        got = f"the single spec {specs.name!r}" if isinstance(specs, HardwareSpec) else \
            f"{type(specs).__name__} {short_repr(specs)}"
        raise InputError(f"specs must be a list of HardwareSpec or preset names ({', '.join(HardwareSpec.presets())}), "
                         f"got {got}; for one spec use estimate() or [spec]")
    if not specs:
        raise InputError("estimate_many needs at least one spec")
    out = []
    for i, s in enumerate(specs):
        if not isinstance(s, (HardwareSpec, str)):
            raise InputError(f"specs[{i}] must be a HardwareSpec or a preset name ({', '.join(HardwareSpec.presets())}), "
                             f"got {type(s).__name__} {short_repr(s)}")
        out.append(_resolve_spec(s, f"specs[{i}]"))
    return out


def _check_finite(out: dict, names: list[str], where: str) -> None:
    """Raise where a feasible design got a chip figure that is not a finite positive number. From valid input
    that is an overflow or underflow (a spec value far outside any physical range, such as a clock of 1e-300
    Hz): a NaN or an infinity must never reach a report."""
    feasible = out["feasible"]
    with np.errstate(all="ignore"):
        figures = {key: out[key] for key in METRICS}
        figures.update(edp_js=out["energy_j"] * out["latency_s"], tops=out["ops"] / out["period_s"] / 1e12,
                       tops_per_w=out["ops"] / out["energy_j"] / 1e12,
                       tops_per_mm2=out["ops"] / out["period_s"] / 1e12 / out["area_mm2"],
                       utilization=out["utilization"])
    for key, value in figures.items():
        bad = feasible & ~(np.isfinite(value) & (value > 0))
        if not bad.any():
            continue
        i = int(np.flatnonzero(bad)[0])
        comps = {**{f"area of {c}": out["area"][c][i] for c in out["area"]},
                 **{f"energy of {c}": out["energy"][c][i].sum() for c in COMPONENTS},
                 **{f"latency of {c}": out["latency"][c][i].sum() for c in out["latency"]}}
        culprits = [k for k, v in comps.items() if not np.isfinite(v)]
        raise SpecError(f"{where} on spec {names[i]!r}: {key} = {value[i]:g}"
                        f"{' (' + ', '.join(culprits[:4]) + ' not finite)' if culprits else ''}: a value of the spec is "
                        "outside any physical range (the figures overflow); check the fields behind that figure")


def estimate_many(workload: Workload, specs: Sequence[HardwareSpec | str], *, ops: OpsConvention = "macs") -> ManyReport:
    """Price ``workload`` on every spec (a HardwareSpec or a preset name) in one vectorized pass. Infeasible
    designs (a fixed number of tiles that cannot hold the weights) get NaN metrics and ``feasible`` False."""
    _check_ops(ops)
    specs = _spec_list(specs)
    lw = _layers(workload, ops)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):  # checked just below
        out = evaluate(_params(specs), lw)
    _check_finite(out, [s.name for s in specs], f"workload '{workload.name}'")
    nan = lambda x: np.where(out["feasible"], x, np.nan)  # noqa: E731
    return ManyReport(out["feasible"], nan(out["area_mm2"]), nan(out["energy_j"]), nan(out["latency_s"]),
                      nan(out["period_s"]), out["ops"], out)


def estimate(workload: Workload, spec: HardwareSpec | str, *, ops: OpsConvention = "macs") -> Report:
    """Area, energy, latency and derived figures of ``workload`` on ``spec`` (a HardwareSpec or a preset name),
    per layer and component. ``ops``: 'macs' (2 operations per MAC) or 'neurosim' (NeuroSim's count).

    An infeasible design (``chip.tiles`` too few for the weights) gives ``feasible`` False, its ``reason``,
    and NaN chip figures. Ops of kind "unmapped" are listed in ``Report.unmapped`` and priced as nothing."""
    _check_ops(ops)
    spec = _resolve_spec(spec)
    lw = _layers(workload, ops)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):  # checked just below
        out = evaluate(_params([spec]), lw)
    _check_finite(out, [spec.name], f"workload '{workload.name}'")
    feasible = bool(out["feasible"][0])
    reason = "" if feasible else (f"the weights need {int(out['tiles_needed'][0])} tiles but chip.tiles = "
                                  f"{int(out['tiles'][0])}")
    layers = []
    for i, name in enumerate(lw["names"]):
        row = {"name": str(name), "kind": str(lw["kinds"][i]),
               "arrays": int(out["layer_arrays"][0, i]), "latency_s": float(out["layer_latency_s"][0, i])}
        for comp in COMPONENTS:
            row[f"energy_{comp}_j"] = float(out["energy"][comp][0, i])
        row["energy_j"] = sum(row[f"energy_{c}_j"] for c in COMPONENTS)
        layers.append(row)
    val = (lambda x: float(x[0])) if feasible else (lambda x: math.nan)
    return Report(
        workload=workload.name, spec=spec.name, feasible=feasible, reason=reason, area_mm2=val(out["area_mm2"]),
        energy_j=val(out["energy_j"]), latency_s=val(out["latency_s"]), period_s=val(out["period_s"]),
        ops=float(out["ops"][0]),
        area_breakdown_mm2={c: float(out["area"][c][0]) for c in out["area"]},
        energy_breakdown_j={**{c: float(out["energy"][c][0].sum()) for c in COMPONENTS}, "leakage": float(out["leakage_j"][0]),
                            "layout": float(out["layout_j"][0])},
        latency_breakdown_s={c: float(out["latency"][c][0].sum()) for c in out["latency"]},
        layers=layers, arrays=int(out["arrays"][0]), tiles=int(out["tiles"][0]), utilization=float(out["utilization"][0]),
        unmapped=[str(n) for n, k in zip(lw["names"], lw["kinds"]) if k == UNMAPPED],
    )
