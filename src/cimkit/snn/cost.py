"""Event-driven cost of a spiking network: a cimkit ``Workload`` measured from one run of the network.

``snn_workload(model, inputs)`` runs an snnTorch-style network on time-major inputs and returns the workload
``cimkit.cost.estimate`` prices per inference (one sample, all T time steps):

- every ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` (and cimkit's crossbar layers ``CIMLinear`` / ``CIMConv1d``
  / ``CIMConv2d``) that ran is one weighted op whose ``vectors`` and ``macs`` are those of one step times the
  steps it ran; ``binary_input`` is set when every input it read was 0/1 (spikes: read in one pass of one
  pulse, moved as 1 bit per element), and ``activity`` is the measured density of 1s over the vectors its
  arrays read (a convolution's windows, padding zeros included), so array reads, row drives and their energy
  follow the spikes. A layer reading non-binary inputs (currents, the first layer of a directly encoded
  network) gets the fraction of 1 bits of its inputs' DAC codes when ``spec`` is given (as
  ``cimkit.workload.measure_activity`` counts them), else None (the chip's ``input_activity``);
- every spiking neuron module (``cimkit.snn.neurons.NEURON_TYPES``: snnTorch's ``SpikingNeuron`` subclasses
  such as ``snn.Leaky`` / ``snn.Synaptic``, cimkit's ``LIF`` / ``Synaptic`` / ``FangNeuron``) is one op of kind
  ``"neuron"`` with ``elements`` = neurons x steps, ``fn`` its update (``neuron_cost_fn``) and ``activity`` its
  measured spike rate (spikes per neuron-step), priced on the digital unit from the primitive counts of
  ``cimkit.workload.registry.NEURON_EVENTS``. ``Op.activity`` carries the spike rate of a neuron op because it
  is the same quantity the next weighted op reads as its input density (the neuron's output spikes are that
  layer's input), and ``Workload.with_activity`` sets both alike;
- other leaf modules the op registry maps to a digital op (pooling, activations, normalization: nn.MaxPool2d,
  nn.AvgPool2d, nn.BatchNorm2d, ...) are digital ops over all their calls; functional calls in ``forward``
  (``F.max_pool2d``) are not seen (hooks see modules only), and data-moving modules (Flatten, Dropout) are
  not ops.

Shapes of an op that ran k > 1 steps lead with k (``in_shape = (T, 784)``), so that the buffer traffic the
cost model counts from them is per inference. Counts per step are the counts of one call divided by the
batch size B = ``inputs.shape[1]``; an op's per-inference counts are the sum over all its calls divided by
B, so a layer that runs at every step, a readout that runs once after the loop and a model that folds time
into the batch are each priced for what it did. A layer of the model that never ran is left out of the
workload with a warning (its weights appear as ``unused`` in ``Workload.weight_counts``).

Calling convention: ``model(inputs[t])`` once per time step t = 0 .. T-1 (snnTorch neurons keep their
state between calls: ``snn.Leaky`` stores its membrane in ``self.mem`` whether or not ``init_hidden`` is set),
after every neuron's state is reset (``reset_mem`` / ``reset_state``). A model whose forward loops over time
itself is measured with ``run=lambda model, inputs: model(inputs)`` (or any callable doing the loop).
``snn_activity_report`` returns the workload together with the per-layer, per-step densities and spike
counts (``SpikeActivity``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, short_repr
from ..io import atomic_write, strict_json
from ..sim.kernel import is_binary
from ..workload import Op, Workload
from ..workload.core import warn_caller

if TYPE_CHECKING:
    from ..sim.layers import CIMConv1d, CIMConv2d
    from ..sim.layout import ConvLayout

#: the torch modules whose inputs drive crossbar rows
_TORCH_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass
class LayerActivity:
    """What one layer did during the run, per call (= per time step when it runs once per step).

    ``kind``: "linear", "conv", "neuron" or a digital kind ("pool", ...); ``fn``: the neuron update
    (``lif_subtract``, ``fang``, ...) or the op's function. ``density`` (per call): for a weighted layer the
    fraction of nonzero elements in the vectors its arrays read (for spikes, the density of 1s), for a neuron
    the spike rate (spikes per neuron-step); ``counts`` (per call, per sample): the nonzero inputs read
    (weighted) or the spikes emitted (neuron); ``elements`` (per call, per sample): the input elements read
    or the neuron updates. ``binary``: every value seen was 0 or 1 (inputs of a weighted layer, spikes of a
    neuron)."""

    name: str
    kind: str
    fn: str
    density: np.ndarray
    counts: np.ndarray
    elements: np.ndarray
    binary: bool

    @property
    def calls(self) -> int:
        return int(self.density.size)

    @property
    def rate(self) -> float:
        """The density over all calls (nonzero inputs read / inputs read, or spikes / neuron updates)."""
        total = float(self.elements.sum())
        return float(self.counts.sum()) / total if total else 0.0


@dataclass
class SpikeActivity:
    """The measured run of a spiking network: ``workload`` (per inference, for ``cimkit.cost.estimate``),
    ``steps`` T and ``batch`` B of the inputs, and ``layers`` by module name in the order they first ran."""

    workload: Workload
    steps: int
    batch: int
    layers: dict[str, LayerActivity] = field(default_factory=dict)

    def spike_counts(self) -> dict[str, np.ndarray]:
        """Spikes per sample at every call (time step) of each neuron layer, by name."""
        return {n: a.counts for n, a in self.layers.items() if a.kind == "neuron"}

    def densities(self) -> dict[str, np.ndarray]:
        """``LayerActivity.density`` per call of every layer, by name."""
        return {n: a.density for n, a in self.layers.items()}

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-safe plain data (``"result": "SpikeActivity"``; per-call arrays as lists), as
        ``cimkit report`` reads it."""
        return {
            "result": "SpikeActivity",
            "workload": self.workload.name,
            "steps": self.steps,
            "batch": self.batch,
            "layers": {
                name: {
                    "kind": a.kind,
                    "fn": a.fn,
                    "density": a.density.tolist(),
                    "counts": a.counts.tolist(),
                    "elements": a.elements.tolist(),
                    "binary": a.binary,
                    "rate": a.rate,
                }
                for name, a in self.layers.items()
            },
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """``to_dict()`` as strict JSON, written atomically to ``path`` if given."""
        text = strict_json(self.to_dict())
        if path is not None:
            atomic_write(path, text)
        return text

    def __str__(self) -> str:
        lines = [f"Spiking run of '{self.workload.name}': T = {self.steps} steps, batch {self.batch}"]
        for a in self.layers.values():
            what = "spike rate" if a.kind == "neuron" else "input density"
            per = " ".join(f"{d:.3f}" for d in a.density[:8]) + (" ..." if a.calls > 8 else "")
            lines.append(
                f"  {a.kind:7} {a.name:24} {a.fn:18} {a.calls:>4} calls, {what} {a.rate:.4f}"
                f"{' (binary)' if a.binary and a.kind != 'neuron' else ''}: {per}"
            )
        return "\n".join(lines)


# ---- checks ----------------------------------------------------------------------------------------------
def _check_inputs(inputs: Any, where: str) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise InputError(
            f"{where}: inputs = {short_repr(inputs)} is a {type(inputs).__name__}; give a time-major "
            "torch tensor [T, B, ...] (T time steps of a batch of B samples)"
        )
    shape = tuple(inputs.shape)
    if inputs.dim() < 2:
        raise InputError(
            f"{where}: inputs of shape {shape} are not time-major: give a tensor [T, B, ...] (T time "
            "steps, B samples, then each sample's shape), e.g. torch.bernoulli(p).expand(T, *p.shape)"
        )
    if shape[0] < 1:
        raise InputError(f"{where}: inputs of shape {shape} have T = {shape[0]} time steps; at least 1 is needed")
    if shape[1] < 1:
        raise InputError(
            f"{where}: inputs of shape {shape} have a batch of B = {shape[1]} samples; at least 1 is needed"
        )
    if not inputs.is_floating_point():
        raise InputError(
            f"{where}: inputs have dtype {inputs.dtype} (shape {shape}); give a floating-point tensor "
            "(spikes as 0.0 / 1.0, or input currents)"
        )
    if not bool(torch.isfinite(inputs).all()):
        raise InputError(f"{where}: inputs (shape {shape}) hold NaN or infinite values")
    return inputs


def _weighted_modules(model: nn.Module) -> dict[str, nn.Module]:
    from ..sim.layers import CIMConv1d, CIMConv2d, CIMLinear

    found: dict[str, nn.Module] = {}
    for name, m in model.named_modules():
        if isinstance(m, (*_TORCH_WEIGHTED, CIMLinear, CIMConv1d, CIMConv2d)):
            found[name or type(m).__name__] = m
    return found


def _neuron_modules(model: nn.Module) -> dict[str, nn.Module]:
    from .neurons import NEURON_TYPES

    return {name or type(m).__name__: m for name, m in model.named_modules() if isinstance(m, NEURON_TYPES)}


def _digital_modules(model: nn.Module, skip: set[int]) -> dict[str, tuple[nn.Module, Any]]:
    """Leaf modules the op registry maps to a digital op (pooling, activations, norms), with their rule."""
    from ..workload.trace import _Tables

    rules = [(t, r) for t, r in _Tables.get().modules if r.handler == "digital"]
    found = {}
    for name, m in model.named_modules():
        if id(m) in skip or any(True for _ in m.children()):
            continue
        rule = next((r for t, r in rules if isinstance(m, t)), None)
        if rule is not None:
            found[name or type(m).__name__] = (m, rule)
    return found


# ---- what one call reads ---------------------------------------------------------------------------------
def _cim_window_ones(layer: CIMConv1d | CIMConv2d, ones: torch.Tensor) -> tuple[float, float]:
    """``cimkit.workload.activity._window_ones`` for a crossbar convolution: its layout pads the input as the
    arrays read it (zeros, or the values its padding mode repeats)."""
    lay = cast("ConvLayout", layer.layout)  # a convolution's layout
    x = lay.prepare(layer._as_2d(ones)).double()
    per_pos = x.sum(dim=1, keepdim=True)
    kernel = torch.ones((1, 1, *lay.kernel), dtype=per_pos.dtype)
    window_sums = F.conv2d(per_pos, kernel, stride=lay.stride, dilation=lay.dilation)
    rows = ones.shape[1] * lay.kernel[0] * lay.kernel[1]
    return float(window_sums.sum()), float(window_sums.numel() * rows)


def _read_ones(module: nn.Module, ones: torch.Tensor) -> tuple[float, float]:
    """(sum of ``ones`` over the vectors ``module``'s arrays read, elements read)."""
    from ..sim.layers import CIMConv1d, CIMConv2d
    from ..workload.activity import _window_ones

    # of the weighted layers (_weighted_modules), the crossbar convolutions read through a padding layout
    if isinstance(module, (CIMConv1d, CIMConv2d)):
        if ones.dim() == module._input_dims - 1:
            ones = ones.unsqueeze(0)
        return _cim_window_ones(module, ones)
    return _window_ones(module, ones)


def _weighted_op(name: str, module: nn.Module, x_shape: tuple, y_shape: tuple) -> Op:
    """The op of one call on one sample (shapes without the batch dim)."""
    from ..sim.layers import CIMConv1d, CIMConv2d, CIMLinear
    from ..workload.registry import conv_op, linear_op

    if isinstance(module, (nn.Linear, CIMLinear)):
        return linear_op(name, module.in_features, module.out_features, (1, *x_shape), (1, *y_shape))
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        return conv_op(name, tuple(module.weight.shape), module.groups, module.stride, (1, *x_shape), (1, *y_shape))
    assert isinstance(module, (CIMConv1d, CIMConv2d))  # the last kind _weighted_modules finds
    weight_shape = (module.out_channels, module.in_channels // module.groups, *module.kernel_size)
    return conv_op(name, weight_shape, module.groups, module.stride, (1, *x_shape), (1, *y_shape))


@dataclass
class _Record:
    """Per-call measurements of one module."""

    module: nn.Module
    kind: str  # "weighted", "neuron" or "digital"
    rule: Any = None
    x_shape: tuple | None = None
    y_shape: tuple | None = None
    items: list = field(default_factory=list)  # batch size of each call
    nonzero: list = field(default_factory=list)
    read: list = field(default_factory=list)
    binary: bool = True
    stored: list = field(default_factory=list)  # non-binary inputs, kept for their DAC bit activity


def _sample_shape(t: torch.Tensor) -> tuple[int, tuple[int, ...]]:
    """(batch size, shape of one sample) of a call's tensor (an unbatched 1-D input is one sample)."""
    if t.dim() <= 1:
        return 1, tuple(t.shape)
    return int(t.shape[0]), tuple(int(d) for d in t.shape[1:])


def _first_tensor(out):
    if isinstance(out, (tuple, list)):
        out = out[0] if out else None
    return out if isinstance(out, torch.Tensor) else None


# ---- the measurement -------------------------------------------------------------------------------------
def _reset_neurons(neurons: dict[str, nn.Module]) -> None:
    for m in neurons.values():
        for method in ("reset_state", "reset_mem"):
            fn = getattr(m, method, None)
            if callable(fn):
                try:
                    fn()
                except (AttributeError, RuntimeError, TypeError):  # a neuron that never ran holds no state yet
                    pass
                break


def snn_activity_report(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    name: str | None = None,
    run: Callable[[nn.Module, torch.Tensor], Any] | None = None,
    spec=None,
    percentile: float = 99.99,
) -> SpikeActivity:
    """Run ``model`` on time-major ``inputs`` [T, B, ...] (spikes or currents, floating point) and measure what
    every layer did: the ``SpikeActivity`` with the per-inference ``workload`` (see the module docstring) and
    the per-layer, per-step densities and spike counts.

    ``run``: None calls ``model(inputs[t])`` for t = 0 .. T-1 after resetting every neuron's state; a callable
    ``run(model, inputs)`` does the time loop itself (for models whose forward loops over time). ``spec`` (a
    ``HardwareSpec`` or preset name, optional): layers reading non-binary inputs get the fraction of 1 bits of
    their inputs' ``periphery.input_bits`` DAC codes (top code at the ``percentile`` of the magnitudes seen, as
    ``measure_activity``); without it their activity is None (the chip's ``input_activity``). The model runs
    in eval mode without gradients; its mode is restored.

    Raises an ``InputError`` naming the argument and its value for inputs that are not a floating time-major
    tensor with T >= 1 and B >= 1, a model that is not a torch module or has no Linear / Conv1d / Conv2d
    (or crossbar) layer, a ``run`` that is not callable, a model that fails on the inputs (with torch's
    reason), a layer whose input shape changes between calls, and a neuron the cost model does not know."""
    where = "snn_workload"
    if not isinstance(model, nn.Module):
        raise InputError(f"{where}: model = {short_repr(model)} is a {type(model).__name__}, not a torch.nn.Module")
    inputs = _check_inputs(inputs, where)
    if run is not None and not callable(run):
        raise InputError(
            f"{where}: run = {short_repr(run)} is not callable; give run(model, inputs) doing the time "
            "loop, or None to call model(inputs[t]) once per time step"
        )
    if name is not None and not isinstance(name, str):
        raise InputError(f"{where}: name = {short_repr(name)} must be a string or None")
    bits = top_spec = None
    if spec is not None:
        from ..cost.estimate import _resolve_spec

        top_spec = _resolve_spec(spec, f"{where}: spec")
        bits = top_spec.periphery.input_bits
        if bits is None:
            raise InputError(
                f"{where}: spec {top_spec.name!r} has no input DAC (periphery.input_bits is null), so the "
                "bit activity of non-binary inputs cannot be counted; give a spec with input_bits or none"
            )
    weighted = _weighted_modules(model)
    if not weighted:
        raise InputError(
            f"{where}: model = {type(model).__name__} has no nn.Linear, nn.Conv1d or nn.Conv2d layer (nor "
            "a cimkit crossbar layer) whose inputs drive crossbar rows: nothing to map onto arrays"
        )
    neurons = _neuron_modules(model)
    from .neurons import neuron_cost_fn

    fns = {n: neuron_cost_fn(m) for n, m in neurons.items()}  # an unknown neuron fails here, before running
    skip = {id(m) for m in (*weighted.values(), *neurons.values())}
    digital = _digital_modules(model, skip)
    T, B = int(inputs.shape[0]), int(inputs.shape[1])

    records: dict[str, _Record] = {}
    order: list[str] = []

    def hook_for(layer: str, rec: _Record):
        def hook(module, args, out):
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            y = _first_tensor(out)
            if x is None or y is None:
                return
            x, y = x.detach(), y.detach()
            if layer not in order:
                order.append(layer)
            n, x_item = _sample_shape(x)
            _, y_item = _sample_shape(y)
            if rec.x_shape is None:
                rec.x_shape, rec.y_shape = x_item, y_item
            elif (rec.x_shape, rec.y_shape) != (x_item, y_item):
                raise InputError(
                    f"{where}: layer '{layer}' read inputs of shape {rec.x_shape} and then {x_item} (per "
                    "sample) in one run; the workload needs one shape per layer"
                )
            rec.items.append(n)
            if rec.kind == "weighted":
                nonzero, read = _read_ones(module, (x != 0).to(torch.float32))
                # a crossbar layer reads spikes in one pass only outside input mode "dac" (as the simulator does)
                reads_spikes = getattr(module, "input_mode", "auto") != "dac"
                rec.binary = rec.binary and reads_spikes and is_binary(x)
                if bits is not None:
                    rec.stored.append(x.cpu())
            elif rec.kind == "neuron":
                nonzero, read = float((y != 0).sum()), float(y.numel())
                rec.binary = rec.binary and is_binary(y)
            else:
                nonzero, read = float((x != 0).sum()), float(x.numel())
            rec.nonzero.append(nonzero)
            rec.read.append(read)

        return hook

    for kind, modules in (("weighted", weighted), ("neuron", neurons)):
        for layer, m in modules.items():
            records[layer] = _Record(m, kind)
    for layer, (m, rule) in digital.items():
        records[layer] = _Record(m, "digital", rule)
    handles = [rec.module.register_forward_hook(hook_for(layer, rec)) for layer, rec in records.items()]
    was_training = model.training
    device = next((p.device for p in model.parameters()), inputs.device)
    model.eval()
    try:
        _reset_neurons(neurons)
        xs = inputs.to(device)
        with torch.no_grad():
            if run is None:
                for t in range(T):
                    _call(model, xs[t], where, f"inputs[{t}]")
            else:
                _call(run, (model, xs), where, "run(model, inputs)")
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        _reset_neurons(neurons)

    ran = [layer for layer in order if records[layer].kind == "weighted"]
    if not ran:
        raise InputError(
            f"{where}: none of the model's weighted layers ({', '.join(list(weighted)[:6])}) ran on the "
            f"inputs of shape {tuple(inputs.shape)}; check the calling convention (model(inputs[t]) per "
            "step, or run=...)"
        )
    idle = [layer for layer in (*weighted, *neurons) if layer not in order]
    if idle:
        warn_caller(
            f"{where}: {len(idle)} layer(s) of the model never ran and are left out of the workload: "
            f"{', '.join(idle[:6])}{' ...' if len(idle) > 6 else ''}"
        )

    ops, layers = [], {}
    for layer in order:
        rec = records[layer]
        op, report = _op_of(layer, rec, B, fns.get(layer, ""), bits, percentile)
        ops.append(op)
        layers[layer] = report
    workload = Workload(
        name or type(model).__name__,
        (T, *inputs.shape[2:]),
        ops,
        _weight_counts(model, [records[n].module for n in order]),
    )
    return SpikeActivity(workload, T, B, layers)


def snn_workload(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    name: str | None = None,
    run: Callable[[nn.Module, torch.Tensor], Any] | None = None,
    spec=None,
    percentile: float = 99.99,
) -> Workload:
    """The per-inference ``Workload`` of a spiking network measured from one run on time-major ``inputs``
    [T, B, ...] (``snn_activity_report(...).workload``; see the module docstring): weighted ops with
    ``binary_input`` and their measured spike density as ``activity``, one ``neuron`` op per neuron module
    with its measured spike rate. Price it with ``cimkit.cost.estimate(workload, spec)``."""
    return snn_activity_report(model, inputs, name=name, run=run, spec=spec, percentile=percentile).workload


def _call(fn: Callable, arg, where: str, what: str) -> None:
    try:
        fn(*arg) if isinstance(arg, tuple) else fn(arg)
    except InputError:
        raise
    except Exception as exc:  # torch's shape errors and the like, with torch's reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{where}: the model failed on {what}: {reason}; inputs must be time-major [T, B, ...] "
            "and each step's slice what the model takes"
        ) from None


def _number(value: float) -> int | float:
    return int(round(value)) if abs(value - round(value)) < 1e-9 * max(abs(value), 1.0) else float(value)


def _op_of(
    layer: str, rec: _Record, batch: int, fn: str, bits: int | None, percentile: float
) -> tuple[Op, LayerActivity]:
    """The op of one module over all its calls, per inference, and its per-call report."""
    x_shape, y_shape = rec.x_shape, rec.y_shape
    assert x_shape is not None and y_shape is not None  # set by the layer's first call (it ran)
    items = np.array(rec.items, dtype=float)
    nonzero, read = np.array(rec.nonzero), np.array(rec.read)
    density = np.divide(nonzero, read, out=np.zeros_like(nonzero), where=read > 0)
    steps = float(items.sum()) / batch  # calls per sample (T for a layer run once per step)
    k = _number(steps)

    def lead(shape: tuple) -> tuple:
        return (k, *shape) if k != 1 else tuple(shape)

    rate = float(nonzero.sum() / read.sum()) if read.sum() else 0.0
    if rec.kind == "neuron":
        per_item = math.prod(y_shape) if y_shape else 1
        op = Op(
            layer,
            "neuron",
            in_shape=lead(x_shape),
            out_shape=lead(y_shape),
            elements=_number(per_item * steps),  # type: ignore[arg-type]  # Op's counts: fractional here
            fn=fn,
            activity=rate,
        )
        report = LayerActivity(layer, "neuron", fn, density, nonzero / items, read / items, rec.binary)
        return op, report
    if rec.kind == "digital":
        from ..workload.registry import digital_op

        params = rec.rule.module_params(rec.module) if rec.rule.module_params else None
        one = digital_op(layer, rec.rule, (1, *x_shape), (1, *y_shape), params)
        op = dataclasses.replace(
            one, in_shape=lead(one.in_shape), out_shape=lead(one.out_shape), elements=_number(one.elements * steps)
        )
        return op, LayerActivity(layer, op.kind, op.fn, density, nonzero / items, read / items, False)
    one = _weighted_op(layer, rec.module, x_shape, y_shape)
    if rec.binary:
        activity = rate
    elif bits is not None:
        activity = _bit_activity(rec, bits, percentile)
    else:
        activity = None
    op = dataclasses.replace(
        one,
        in_shape=lead(one.in_shape),
        out_shape=lead(one.out_shape),
        # Op annotates these counts int; calls per sample need not be whole, so they may be fractional
        vectors=_number(one.vectors * steps),  # type: ignore[arg-type]
        macs=_number(one.macs * steps),  # type: ignore[arg-type]
        activity=activity,
        binary_input=rec.binary,
    )
    return op, LayerActivity(layer, op.kind, op.fn, density, nonzero / items, read / items, rec.binary)


def _bit_activity(rec: _Record, bits: int, percentile: float) -> float:
    """The fraction of 1 bits in the DAC codes of a layer's non-binary inputs (``measure_activity``'s count)."""
    from ..sim.layers import magnitude_percentile
    from ..workload.activity import _ones_per_element

    xs = rec.stored
    top = magnitude_percentile(torch.cat([x.abs().flatten() for x in xs]), percentile)
    signed = any(float(x.min()) < 0 for x in xs)
    ones = total = 0.0
    for x in xs:
        o, t = _read_ones(rec.module, _ones_per_element(x, bits, top, signed))
        ones, total = ones + o, total + t
    return ones / (total * bits) if total else 0.0


def _weight_counts(model: nn.Module, ran: list[nn.Module]) -> dict[str, int]:
    """The model's parameters (each tensor once) as ``Workload.weight_counts``: ``mapped`` (the weight matrices
    of the weighted layers that ran), ``digital`` (their biases and the parameters of the neurons and digital
    modules that ran), ``unused`` (every other parameter: layers that never ran)."""
    from ..sim.layers import CIMLayer

    total = {id(p): p.numel() for p in model.parameters()}
    mapped, digital = set(), set()
    for m in ran:
        for pname, p in m.named_parameters(recurse=False):
            if pname == "weight" and isinstance(m, (*_TORCH_WEIGHTED, CIMLayer)):
                mapped.add(id(p))
            else:
                digital.add(id(p))
    n = lambda ids: sum(total[i] for i in ids if i in total)  # noqa: E731
    counts = {"total": sum(total.values()), "mapped": n(mapped), "digital": n(digital - mapped), "unmapped": 0}
    counts["unused"] = counts["total"] - counts["mapped"] - counts["digital"]
    return counts


__all__ = ["LayerActivity", "SpikeActivity", "snn_activity_report", "snn_workload"]
