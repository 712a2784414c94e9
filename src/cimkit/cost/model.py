"""The analytical area / energy / latency model, vectorized over hardware configurations.

``evaluate`` prices a whole batch of specs in one pass, in two steps (Timeloop/Accelergy style):
``cimkit.cost.events.count`` counts what the chip does from the mapping (``cimkit.mapping``'s formulas,
the ones the simulator's layers are built with), and every registered component of
``cimkit.cost.components.COMPONENTS`` prices those events. Every quantity is a numpy array of shape
(configs, layers) or (configs,).

Leakage (the components' static power over the inference) and the layout overhead
(``chip.layout_energy_factor``) are chip-wide lines of the energy breakdown.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from . import constants as K
from .components import BUILTIN, Context, check_figure, read_cycle
from .components import COMPONENTS as REGISTRY
from .events import count
from .tech import area_factor, check_node, delay_factor, energy_factor

#: the breakdown lines of the components that existed before components were plug-ins, in report order
#: (the report's fixed CSV columns); every registered component (``components.COMPONENTS``) adds its own
COMPONENTS = BUILTIN


#: units whose components another model prices (cimkit.cam.cost prices unit "cam" from CAM search events)
OTHER_MODELS = ("cam",)


def component_names() -> tuple[str, ...]:
    """Breakdown lines in report order: the built-ins first, then registered plug-ins (not those of units
    another model prices, ``OTHER_MODELS``)."""
    names = tuple(n for n in REGISTRY.names() if REGISTRY.get(n).unit not in OTHER_MODELS)
    return tuple(n for n in BUILTIN if n in names) + tuple(n for n in names if n not in BUILTIN)


def _priced(comp, what: str, figures: dict, events: dict, shape) -> np.ndarray:
    total = None
    for event, per in figures.items():
        if event not in events:
            raise KeyError(event)
        term = events[event] * check_figure(comp.name, what, per, event)
        total = term if total is None else total + term
    if total is None:
        return np.zeros(shape)
    return total if np.shape(total) == shape else total + np.zeros(shape)


def _sized(p: dict[str, np.ndarray], w: dict[str, np.ndarray]):
    """The events of ``count``, the pricing ``Context`` (read cycle and chip areas set), the areas per
    component and the components in report order: what pricing energy and latency needs."""
    check_node(p["node_nm"])
    ev = count(p, w)
    ctx = Context(
        p, ev, area_factor(p["node_nm"]), energy_factor(p["node_nm"], p["supply_v"]), delay_factor(p["node_nm"])
    )
    read_cycle(ctx)
    C = p["node_nm"].shape[0]
    names = component_names()
    comps = [REGISTRY.get(n) for n in names]

    # ---- area (mm^2): the components, then the overheads sized on them -----------------------------------
    area = {}
    for comp in comps:
        if not comp.overhead:
            area[comp.name] = check_figure(comp.name, "area_mm2", comp.area_mm2(ctx)) + np.zeros(C)
    ctx.core_area_mm2 = sum(area.values())
    for comp in comps:
        if comp.overhead:
            area[comp.name] = check_figure(comp.name, "area_mm2", comp.area_mm2(ctx)) + np.zeros(C)
    area = {n: area[n] for n in names}
    ctx.area_mm2 = sum(area.values())
    return ev, ctx, area, names, comps


def energy_by_event(p: dict[str, np.ndarray], w: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{component: {event: J per inference (C,)}}: each component's energy split by the events it prices,
    summed over the layers (the terms of the energy ``evaluate`` reports per component; leakage and the
    layout factor are not in them)."""
    ev, ctx, _, _, comps = _sized(p, w)
    C, L = p["node_nm"].shape[0], w["in_features"].shape[1]
    out: dict[str, dict[str, np.ndarray]] = {}
    for comp in comps:
        for event, per in comp.energy_per_event_j(ctx).items():
            if event not in ev:
                from ..errors import InputError

                raise InputError(
                    f"component {comp.name!r} prices the event {event!r}, which the cost model does not count"
                )
            term = ev[event] * check_figure(comp.name, "energy_per_event_j", per, event) + np.zeros((C, L))
            out.setdefault(comp.name, {})[event] = term.sum(axis=1)
    return out


def evaluate(p: dict[str, np.ndarray], w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Price configurations ``p`` (each value shape (C, 1)) on workload layers ``w`` (shape (1, L)).

    Returns per-layer and per-component arrays plus chip totals; see ``estimate_many`` for units."""
    ev, ctx, area, names, comps = _sized(p, w)
    C, L = p["node_nm"].shape[0], w["in_features"].shape[1]
    area_mm2 = ctx.area_mm2

    # ---- energy (J) and latency (s) per layer ------------------------------------------------------------
    energy, lat = {}, {}
    for comp in comps:
        try:
            energy[comp.name] = _priced(comp, "energy_per_event_j", comp.energy_per_event_j(ctx), ev, (C, L))
            lat[comp.name] = _priced(comp, "latency_per_event_s", comp.latency_per_event_s(ctx), ev, (C, L))
        except KeyError as exc:
            from ..errors import InputError

            raise InputError(
                f"component {comp.name!r} prices the event {exc.args[0]!r}, which the cost model does not "
                f"count; counted events: {', '.join(k for k in ev if np.ndim(ev[k]) == 2)}"
            ) from None
    layer_latency = cast(np.ndarray, sum(lat.values()))  # (C, L): the builtin components are always there
    total_latency = layer_latency.sum(axis=1)
    throughput_period = np.where(p["pipelined"][:, 0], layer_latency.max(axis=1), total_latency)

    leak_w = sum(check_figure(c.name, "leakage_w", c.leakage_w(ctx)) for c in comps)
    leakage_j = area_mm2 * K.LEAKAGE_W_PER_MM2 * total_latency + leak_w * total_latency
    component_j = sum(v.sum(axis=1) for v in energy.values()) + leakage_j
    layout_j = component_j * (p["layout_factor"][:, 0] - 1)
    energy_j = component_j + layout_j
    return {
        "feasible": ev["feasible"],
        "tiles": ev["tiles"],
        "tiles_needed": ev["tiles_needed"],
        "arrays": ev["chip_arrays"],
        "arrays_used": ev["layer_arrays"].sum(axis=1),
        "layer_arrays": ev["layer_arrays"],
        "duplication": ev["duplication"],
        "utilization": ev["utilization"],
        "area_mm2": area_mm2,
        "area": area,
        "energy_j": energy_j,
        "energy": energy,
        "leakage_j": leakage_j,
        "layout_j": layout_j,
        "latency_s": total_latency,
        "latency": lat,
        "layer_latency_s": layer_latency,
        "period_s": throughput_period,
        "ops": w["ops"].sum(axis=1),
        "conversions": ev["conversions"],
        "events": ev,
        "components": names,
        "cycle_s": np.broadcast_to(ctx.cycle_s[:, 0], (C,)),
    }
