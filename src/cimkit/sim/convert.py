"""``convert``: a copy of a PyTorch model whose matrix products run on the chip a spec describes;
``calibrate``: input (DAC) and ADC ranges from data; ``register_converter``: which crossbar module
replaces which PyTorch module."""

from __future__ import annotations

import contextlib
import copy
import inspect
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, cast

import numpy as np
import snntorch as snn
import torch
from torch import nn

from ..errors import CimkitError, InputError, short_repr
from ..snn import neurons as snn_neurons
from ..spec import HardwareSpec
from . import fxconvert
from .attention import CIMMultiheadAttention
from .layers import CIMConv1d, CIMConv2d, CIMLayer, CIMLinear, layer_seed

#: ``factory(module, spec, *, seed, name) -> nn.Module``: the replacement of ``module`` on the chip
ConverterFactory = Callable[..., nn.Module]

#: module type -> its factory; looked up along the module's type MRO (most specific class first)
_REGISTRY: dict[type[nn.Module], ConverterFactory] = {}

#: layers with weights that the crossbar could hold but this version keeps digital (a registered
#: converter for the same class or a subclass takes precedence)
_KEPT_DIGITAL: tuple[type[nn.Module], ...] = (
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Bilinear,
    nn.Embedding,
    nn.EmbeddingBag,
    nn.RNNBase,
    nn.LazyLinear,
)


class KeepDigital(Exception):
    """Raised by a converter factory that cannot map this particular module (an option it does
    not support): ``convert`` then keeps the module digital, with the message as the reason in the
    summary and the warning, instead of failing."""


def register_converter(module_type: type[nn.Module], factory: ConverterFactory) -> ConverterFactory | None:
    """Make ``cimkit.convert`` replace modules of ``module_type`` (and of its subclasses) with
    ``factory(module, spec, *, seed, name)``.

    The factory receives the module (of the model's copy), the ``HardwareSpec``, the layer's
    ``seed`` (derived from the model seed and the name: use it for every random draw) and its
    ``name`` (the module path, for messages), and returns the replacement: a ``CIMLayer`` or any
    ``nn.Module`` holding CIM layers, which then runs in the module's place. It may raise
    ``cimkit.sim.convert.KeepDigital(reason)`` to leave a module it cannot map digital.

    Matching is by ``isinstance``, most specific class first: ``convert`` walks the module's type
    MRO and takes the first registered class, so a registration for a subclass wins over one for
    its base, whatever the order of registration; registering a type again replaces its factory.
    A subclass that overrides ``forward`` (what it computes is then unknown) stays digital with
    that reason unless its own class is registered. The built-in converters (``nn.Linear``,
    ``nn.Conv1d``, ``nn.Conv2d``, ``nn.MultiheadAttention``) are registered through this function.

    Returns the factory this call replaced for exactly ``module_type`` (None if none), so that a
    temporary registration can be undone by registering that one again.
    """
    if not isinstance(module_type, type) or not issubclass(module_type, nn.Module):
        raise InputError(
            f"register_converter: module_type must be a subclass of torch.nn.Module, got "
            f"{short_repr(module_type)} ({type(module_type).__name__})"
        )
    if module_type is nn.Module:
        raise InputError(
            "register_converter: module_type must be a specific module class, not torch.nn.Module "
            "itself (that would replace every module, the model included)"
        )
    if issubclass(module_type, CIMLayer):
        raise InputError(
            f"register_converter: module_type {module_type.__name__} is already a crossbar layer "
            "(CIMLayer); register the PyTorch module it replaces"
        )
    if not callable(factory):
        raise InputError(
            f"register_converter: factory for {module_type.__name__} must be callable as "
            f"factory(module, spec, *, seed, name), got {short_repr(factory)} ({type(factory).__name__})"
        )
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have none: checked when called
        signature = None
    if signature is not None:
        try:
            signature.bind(module_type, None, seed=0, name="")
        except TypeError as e:
            raise InputError(
                f"register_converter: factory {_describe(factory)} for {module_type.__name__} must "
                f"accept (module, spec, *, seed, name); its signature is {signature} ({e})"
            ) from None
    previous = _REGISTRY.get(module_type)
    _REGISTRY[module_type] = factory
    return previous


def _describe(factory: ConverterFactory) -> str:
    return getattr(factory, "__qualname__", None) or short_repr(factory)


register_converter(nn.Linear, CIMLinear.from_module)
register_converter(nn.Conv1d, CIMConv1d.from_module)
register_converter(nn.Conv2d, CIMConv2d.from_module)
register_converter(nn.MultiheadAttention, CIMMultiheadAttention.from_module)
# spiking neurons run on the chip's neuron unit (cimkit.snn.neurons), with the spec's neuron mismatch
for _neuron_type in (snn.Leaky, snn.Synaptic, snn_neurons.LIF, snn_neurons.Synaptic, snn_neurons.FangNeuron):
    register_converter(_neuron_type, snn_neurons.on_chip)


@dataclass
class ConversionSummary:
    """What ``convert`` did: the layers now on crossbars, and the ones left digital."""

    spec_name: str
    seed: int
    analog: list[tuple[str, str, int, float]] = field(default_factory=list)  # name, type, arrays, util
    digital: list[tuple[str, str]] = field(default_factory=list)
    #: spiking neurons on the chip's neuron unit: name, type
    neurons: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)
    #: whether dynamic matmuls run on crossbars rewritten per input (``routing: {matmul: crossbar}``)
    dynamic_on_arrays: bool = False

    @property
    def arrays(self) -> int:
        return sum(a[2] for a in self.analog)

    def __str__(self) -> str:
        lines = [
            f"cimkit conversion on '{self.spec_name}' (seed {self.seed}): {len(self.analog)} layer(s) "
            f"on {self.arrays} arrays"
        ]
        lines += [f"  analog   {n:<28} {t:<10} {a:>5} arrays, utilization {u:.0%}" for n, t, a, u in self.analog]
        lines += [f"  neuron   {n:<28} {t}" for n, t in self.neurons]
        lines += [f"  digital  {n:<28} {t}" for n, t in self.digital]
        lines += [f"  KEPT DIGITAL  {n:<28} {t}" for n, t in self.unsupported]
        if self.dynamic_on_arrays:
            lines.append(
                "  dynamic matmuls on crossbars rewritten per input (sites appear at the first forward, "
                "in model.cim_dynamic)"
            )
        return "\n".join(lines)


_NO_MAPPING = "no crossbar mapping yet"


def _converter(module: nn.Module) -> tuple[ConverterFactory | None, str]:
    """The registered factory for ``module`` (the first class of its type's MRO that is registered,
    so subclasses such as weight-normalized layers convert too), or None and why it stays digital
    ("" when it has nothing to map)."""
    if isinstance(module, CIMLayer):
        return None, ""
    for klass in type(module).__mro__:
        factory = _REGISTRY.get(klass)
        if factory is not None:
            if type(module).forward is not cast(type[nn.Module], klass).forward:  # a registered module type
                return None, f"a {klass.__name__} subclass with its own forward (what it computes is unknown)"
            return factory, ""
        if klass in _KEPT_DIGITAL:
            return None, _NO_MAPPING
    return None, ""


def _arrays_and_utilization(module: nn.Module) -> tuple[int, float]:
    """Arrays of all crossbar layers in ``module`` and the fraction of their cells holding weights."""
    maps = [layer.mapping for layer in cim_layers(module)]
    cells = sum(m.arrays * m.rows * m.cols for m in maps)
    return sum(m.arrays for m in maps), (sum(m.cells_used for m in maps) / cells if cells else 0.0)


def copy_model(model: nn.Module) -> nn.Module:
    """``copy.deepcopy(model)``, also when its modules hold state computed with gradients (a spiking neuron's
    membrane after a training forward, which ``deepcopy`` refuses): such tensors are copied detached."""
    memo: dict = {}
    for m in model.modules():
        for t in (*m._buffers.values(), *vars(m).values()):
            if isinstance(t, torch.Tensor) and not t.is_leaf:
                memo[id(t)] = t.detach().clone()
    return copy.deepcopy(model, memo)


def convert(
    model: nn.Module, spec: HardwareSpec | str, *, seed: int = 0, t_inference_s: float | None = None
) -> nn.Module:
    """Return a copy of ``model`` whose weight products run on crossbars described by ``spec`` (a
    HardwareSpec or a preset name). The original is untouched.

    Replaced modules: those with a registered converter (``register_converter``): built in,
    ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d`` (and subclasses that keep their forward, e.g.
    weight-normalized ones) and ``nn.MultiheadAttention`` (its projections on crossbars, the
    attention itself digital: ``CIMMultiheadAttention``). Then, in modules that own 2-d parameters
    and call ``F.linear(x, self.w, b)``, ``torch.matmul(x, self.w)`` or ``x @ self.w`` in their
    forward, those products are rewritten (with torch.fx) into crossbar layers, listed as e.g.
    ``"block.w (F.linear)"``; see ``cimkit.sim.fxconvert`` for what is and is not rewritten.

    Programming (noise, stuck cells, drift exponents) is sampled once from ``seed``, like a real
    chip; read noise is fresh at every forward (also seeded). ``t_inference_s``: seconds since
    programming at which the chip is read (drift); default the spec's ``device.drift_t0_s``.
    A module registered under several names is converted once and shared, as in the original.
    Layers with weights that cannot be mapped stay digital and are named in a warning (the layers
    inside them stay digital with them), and so are modules whose forward torch.fx cannot trace.
    With ``digital.softmax_bits``, ``digital.integer_gelu`` or ``digital.layernorm_bits`` set, the model's
    softmax, GELU and LayerNorm (modules and function calls) run as the integer operators of
    ``cimkit.ops`` at every forward.
    Spiking networks: snnTorch's ``Leaky`` and ``Synaptic`` neurons and cimkit's (``cimkit.snn``) run on the
    chip's neuron unit, as cimkit neurons computing the same, with the per-neuron mismatch of ``spec.neuron``;
    in a model with neurons every crossbar layer reads an input of spikes (all 0 / 1) in one binary pass
    (``input_mode`` "auto"), not through the DAC.
    The returned model carries a ``ConversionSummary`` as ``model.cim_summary``.
    """
    if isinstance(spec, str):
        spec = HardwareSpec.preset(spec)
    if not isinstance(spec, HardwareSpec):
        raise InputError(f"spec must be a HardwareSpec or a preset name, got {type(spec).__name__}")
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    summary = ConversionSummary(spec.name, seed)
    converted: dict[int, tuple[nn.Module, int | None]] = {}  # id of an original module -> replacement, row
    seen_digital: set[int] = set()
    functional_rows: dict[int, list[tuple[int, str]]] = {}  # id of a module -> its rows, name suffixes

    def replace(module: nn.Module, name: str, factory: ConverterFactory) -> nn.Module | None:
        try:
            new = factory(module, spec, seed=layer_seed(seed, name), name=name)
        except KeepDigital as e:
            summary.unsupported.append((name, f"{type(module).__name__}, {e}"))
            return None
        except Exception as e:
            what = (
                f"cimkit.convert: converting layer '{name}' ({type(module).__name__}) with "
                f"{_describe(factory)} failed: "
            )
            error: Exception = InputError(f"{what}{type(e).__name__}: {e}")
            if isinstance(e, CimkitError):  # already says what is wrong (a MappingError stays one)
                try:
                    error = type(e)(what + str(e))
                except Exception:  # noqa: BLE001 (a subclass with another constructor)
                    pass
            raise error from e
        if not isinstance(new, nn.Module):
            raise InputError(
                f"cimkit.convert: the converter {_describe(factory)} for layer '{name}' "
                f"({type(module).__name__}) returned {short_repr(new)} ({type(new).__name__}), "
                "not a torch.nn.Module"
            )
        return new

    def to_cim(module: nn.Module, name: str) -> tuple[nn.Module | None, bool]:
        """The crossbar replacement of ``module`` (or None), and whether it stays digital as a whole."""
        factory, why = _converter(module)
        if factory is None:
            if why:
                summary.unsupported.append((name, type(module).__name__ + (f", {why}" if why != _NO_MAPPING else "")))
            return None, bool(why)
        if id(module) in converted:  # shared: one replacement, listed under every name
            new, row = converted[id(module)]
            if row is not None:
                n, t, a, u = summary.analog[row]
                summary.analog[row] = (f"{n} = {name}", t, a, u)
            return new, False
        new = replace(module, name, factory)
        if new is None:
            return None, True
        row = None
        if cim_layers(new):
            row = len(summary.analog)
            summary.analog.append((name, type(module).__name__, *_arrays_and_utilization(new)))
        elif isinstance(new, snn_neurons.NEURON_TYPES):
            summary.neurons.append((name, type(new).__name__))
        else:  # a factory may well keep a module digital in another form
            summary.digital.append((name, type(new).__name__))
        converted[id(module)] = (new, row)
        return new, False

    def functional(module: nn.Module, path: str) -> bool:
        """Rewrite the products ``module`` computes with its own parameters; whether any runs on crossbars."""
        if id(module) in functional_rows:  # shared: rewritten once, listed under every name
            for row, suffix in functional_rows[id(module)]:
                n, t, a, u = summary.analog[row]
                summary.analog[row] = (f"{n} = {_join(path, suffix)}", t, a, u)
            return bool(functional_rows[id(module)])
        if not fxconvert.is_candidate(module):
            return False
        result = fxconvert.convert_functional(module, path, spec, seed)
        rows = []
        for suffix, layer in result.converted:
            rows.append((len(summary.analog), suffix))
            summary.analog.append((_join(path, suffix), "Parameter", layer.mapping.arrays, layer.mapping.utilization))
        functional_rows[id(module)] = rows
        if result.untraceable:
            summary.unsupported.append((path or "(model)", f"{type(module).__name__}, {result.untraceable}"))
        summary.unsupported += [(_join(path, suffix), why) for suffix, why in result.kept]
        return bool(rows)

    def walk(module: nn.Module, prefix: str) -> None:
        # _modules, not named_children(): a child registered under two names must be seen under both
        for child_name, child in list(module._modules.items()):
            if child is None or isinstance(child, CIMLayer):
                continue
            full = f"{prefix}.{child_name}" if prefix else child_name
            layer, whole = to_cim(child, full)
            if layer is not None:
                setattr(module, child_name, layer)
                continue
            if whole:
                continue  # its sub-layers compute inside it, digitally
            leaf = not child._modules
            if not leaf:
                walk(child, full)
            if not functional(child, full) and leaf and id(child) not in seen_digital:
                seen_digital.add(id(child))
                summary.digital.append((full, type(child).__name__))

    work = copy_model(model)  # factories may keep what they are given: never the original
    out, whole = to_cim(work, "layer")
    if out is None:  # unless the model is itself one layer
        out = work
        if not whole:
            walk(out, "")
            functional(out, "")
    _no_nested_tensor_paths(out)
    if summary.neurons:  # a spiking network: its layers read spikes in one binary pass
        for layer in cim_layers(out):
            layer.input_mode = "auto"
    _run_digital_modes(out, spec, seed)
    summary.dynamic_on_arrays = hasattr(out, "cim_dynamic")
    if summary.unsupported:
        listed = ", ".join(f"{n} ({t})" for n, t in summary.unsupported)
        warnings.warn(
            f"cimkit.convert: these layers have no crossbar mapping yet and stay digital: {listed}", stacklevel=2
        )
    if t_inference_s is not None:
        set_time(out, t_inference_s)
    out.cim_summary = summary
    return out


class _ForwardModes:
    """The function modes a converted model's forward runs under (see ``_run_digital_modes``); its hooks are
    its bound methods, so a deep copy or a pickle of the model carries them with the model's own state."""

    def __init__(self, integer: dict | None, tracked) -> None:
        self.integer, self.tracked = integer, tracked
        self.stacks: list[contextlib.ExitStack] = []

    def enter(self, module, args, kwargs) -> None:
        from ..ops import integer_functions

        stack = contextlib.ExitStack()
        if self.integer is not None:
            stack.enter_context(integer_functions(**self.integer))
        if self.tracked is not None:  # on top: its softmax (expanded attention) goes to the integer one
            stack.enter_context(self.tracked.mode())
        self.stacks.append(stack)

    def leave(self, module, args, kwargs, output) -> None:
        if self.stacks:
            self.stacks.pop().close()


def _integer_operators(spec: HardwareSpec) -> dict | None:
    """``integer_functions``'s arguments for the spec's units, or None when every operator stays float: the
    digital unit's integer operators (``digital.softmax_bits``, ``integer_gelu``, ``layernorm_bits``), and a
    softmax routed to the associative processor as the integer kernel its program computes bit for bit
    (``ap.input_bits``, ``ap.output_bits``, ``ap.exp_poly``, ``ap.precision``)."""
    d = spec.digital
    args: dict[str, Any] = dict(
        softmax_bits=d.softmax_bits, input_bits=d.data_bits, gelu=d.integer_gelu, layernorm_bits=d.layernorm_bits
    )
    if spec.unit_for("softmax") == "ap":
        from ..ap.cost import EXP_POLYS, PRECISIONS

        ap = spec.ap
        args.update(
            softmax_bits=ap.output_bits,
            softmax_input_bits=ap.input_bits,
            softmax_exp=EXP_POLYS[ap.exp_poly],
            softmax_widths=PRECISIONS[ap.precision],
        )
    elif not d.integer_ops:
        return None
    return args


def _run_digital_modes(model: nn.Module, spec: HardwareSpec, seed: int) -> None:
    """Make ``model``'s forward run what the spec sends to other units than the static crossbars, for
    calls a module swap cannot reach (Hugging Face attention calls them as functions): softmax, GELU and
    LayerNorm as the integer operators the digital unit asks for (``cimkit.ops.integer_functions``; softmax
    as the associative processor's integer kernel when ``routing`` sends ``softmax`` to ``ap``), and
    dynamic matmuls on crossbars rewritten per input when ``routing`` sends ``matmul`` there
    (``cimkit.sim.dynamic``), or on the digital unit with its approximate multiplier and adders when
    ``digital.multiplier`` / ``digital.adder`` are not exact (``cimkit.sim.digital``). The contexts open before
    each forward and close after it, also when it raises, innermost first."""
    from . import dynamic

    if dynamic.routes_matmul_to_crossbar(spec):
        tracked = dynamic.attach(model, spec, seed)
    elif spec.digital.approximate:  # the digital unit's products through its approximate multiplier and adders
        from .digital import DigitalProduct

        tracked = dynamic.attach(model, spec, seed, digital=DigitalProduct(spec.digital))
    else:
        tracked = None
    integer = _integer_operators(spec)
    if integer is None and tracked is None:
        return
    modes = _ForwardModes(integer, tracked)
    model.register_forward_pre_hook(modes.enter, with_kwargs=True)
    model.register_forward_hook(modes.leave, with_kwargs=True, always_call=True)


def _join(path: str, suffix: str) -> str:
    return f"{path}.{suffix}" if path else suffix


def _no_nested_tensor_paths(model: nn.Module) -> None:
    """``nn.TransformerEncoder`` turns padded batches into nested tensors for its fused layers (in
    eval mode without gradients); crossbar layers take dense tensors, so encoders holding them
    keep the dense path (the padded positions' outputs are then computed, not zeros)."""
    for m in model.modules():
        if isinstance(m, nn.TransformerEncoder) and getattr(m, "use_nested_tensor", False) and cim_layers(m):
            m.use_nested_tensor = False


def cim_layers(model: nn.Module) -> list[CIMLayer]:
    """The ``CIMLayer`` modules of ``model`` (itself included), in ``model.modules()`` order."""
    return [m for m in model.modules() if isinstance(m, CIMLayer)]


def required_cim_layers(model: nn.Module, what: str) -> list[CIMLayer]:
    """The crossbar layers of ``model`` for an operation ``what`` that needs some: a clear error
    when ``model`` is not a module or was never converted."""
    if not isinstance(model, nn.Module):
        raise InputError(f"{what}: model must be a torch.nn.Module, got {type(model).__name__}")
    layers = cim_layers(model)
    if not layers:
        raise InputError(f"{what}: the model has no crossbar layers; call cimkit.convert first")
    return layers


def set_time(model: nn.Module, t_inference_s: float) -> None:
    """Read every crossbar of ``model`` at ``t_inference_s`` seconds after programming."""
    for layer in cim_layers(model):
        layer.set_time(t_inference_s)


def calibrate(
    model: nn.Module,
    loader: Iterable,
    *,
    num_batches: int = 8,
    percentile: float = 99.99,
    progress: bool | Callable[[int, int], object] = False,
) -> nn.Module:
    """Set each crossbar layer's input (DAC) range and, where the spec asks for calibrated ADCs,
    its ADC full scale per weight slice, from up to ``num_batches`` batches of ``loader``.

    ``loader`` yields inputs, (inputs, targets) pairs, or keyword batches (a mapping of argument names to
    tensors, e.g. a Hugging Face tokenizer's output, passed as ``model(**batch)``; a (mapping, targets)
    pair too). Ranges are the ``percentile`` of the
    observed magnitudes. Two passes: inputs first (with dynamic ranges), then partial sums with the
    calibrated inputs. ``progress``: True shows a progress bar over both passes (images, images per
    second) on standard error; a callable is called as ``progress(done_images, total_images)`` after
    each batch (the total counts every pass); False (the default) shows nothing. Returns the model.
    """
    from ..progress import ImageProgress, check_progress

    if not isinstance(model, nn.Module):
        required_cim_layers(model, "calibrate")
    check_calibration_options("calibrate", num_batches, percentile)
    check_progress(progress, "calibrate")
    batches = _model_inputs(loader, num_batches)
    _find_dynamic_sites(model, batches[0])
    layers = required_cim_layers(model, "calibrate")
    if all(b.all_zero for b in batches):
        warnings.warn(
            "calibrate: every calibration input is zero; the input ranges it sets are degenerate "
            "(calibrate on real data)",
            stacklevel=2,
        )
    was_training = model.training
    model.eval()
    device = layers[0].weight.device
    stages = ["input"]
    if any(l.spec.periphery.adc_range == "calibrated" and l.spec.periphery.adc_bits for l in layers):
        stages.append("adc")
    images = sum(b.size for b in batches)
    done = 0
    try:
        with ImageProgress(progress) as bar:
            task = bar.add("calibrating", images * len(stages))
            for stage in stages:
                for layer in layers:
                    layer.begin_calibration(stage)
                with torch.no_grad():
                    for b in batches:
                        b.run(model, device)
                        done += b.size
                        bar.update(task, done)
                for layer in layers:
                    layer.end_calibration(percentile)
    except BaseException:  # an error or Ctrl-C mid-pass: no half-observed ranges, no observers left behind
        for layer in layers:
            layer.cancel_calibration()
        raise
    finally:
        model.train(was_training)
    return model


def _find_dynamic_sites(model: nn.Module, batch: "_ModelInput") -> None:
    """Dynamic-matmul sites (``cimkit.sim.dynamic``) appear at the first forward that reaches them: one
    forward of the first batch before calibrating makes them, so that their ranges are calibrated too."""
    container = getattr(model, "cim_dynamic", None)
    if container is None or len(container.sites):
        return
    first = next(iter(model.parameters()), None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "not calibrated yet": that is what comes next
            batch.run(model, first.device if first is not None else torch.device("cpu"))
    finally:
        model.train(was_training)


def check_calibration_options(what: str, num_batches, percentile) -> None:
    """An ``InputError`` naming ``what`` unless ``percentile`` is a number in (0, 100] and ``num_batches`` a
    positive integer."""
    if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real) or not 0 < float(percentile) <= 100:
        raise InputError(f"{what}: percentile must be a number in (0, 100], got {percentile!r}")
    if isinstance(num_batches, bool) or not isinstance(num_batches, numbers.Integral) or num_batches < 1:
        raise InputError(f"{what}: num_batches must be a positive integer, got {num_batches!r}")


@dataclass
class _ModelInput:
    """One batch as the model takes it: positional tensors or keyword tensors."""

    args: tuple
    kwargs: dict
    size: int  # samples in the batch (dim 0 of its first tensor)

    @property
    def all_zero(self) -> bool:
        values = [*self.args, *self.kwargs.values()]
        return all(float(v.abs().max()) == 0 for v in values)

    def run(self, model: nn.Module, device: torch.device, what: str = "calibrate"):
        kwargs = {k: v.to(device) for k, v in self.kwargs.items()}
        if not kwargs:
            return model(*[a.to(device) for a in self.args])
        try:
            inspect.signature(model.forward).bind(**kwargs)
        except TypeError as exc:
            raise InputError(
                f"{what}: the model does not take the keyword batch's names ({', '.join(kwargs)}): {exc}"
            ) from None
        return model(**kwargs)


def _model_inputs(loader, num_batches: int, what: str = "calibrate") -> list[_ModelInput]:
    """Up to ``num_batches`` batches of ``loader`` as model inputs: what ``_calibration_batches`` takes, and
    keyword batches (a mapping of names to tensors or arrays, alone or as the first item of a pair)."""
    items = []
    for i, batch in enumerate(_as_loader(loader, what, mappings=True)):
        if i >= num_batches:
            break
        x = batch[0] if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Mapping) else batch
        if not isinstance(x, Mapping):
            t = _input_tensor(batch, i, what)
            items.append(_ModelInput((t,), {}, int(t.shape[0])))
            continue
        kwargs = {}
        for k, v in x.items():
            if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
                v = torch.from_numpy(v)
            if not isinstance(v, torch.Tensor) or v.is_complex() or v.dim() == 0 or v.shape[0] == 0:
                raise InputError(
                    f"{what}: batch {i}[{k!r}] is {type(v).__name__}"
                    f"{tuple(v.shape) if isinstance(v, torch.Tensor) else ''}; a keyword batch "
                    "maps argument names to real tensors with a batch dim"
                )
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise InputError(f"{what}: batch {i}[{k!r}] has non-finite values (NaN or inf)")
            kwargs[str(k)] = v
        if not kwargs:
            raise InputError(f"{what}: batch {i} is an empty mapping")
        items.append(_ModelInput((), kwargs, int(next(iter(kwargs.values())).shape[0])))
    if not items:
        raise InputError(f"{what}: the loader gave no batches")
    return items


def _as_loader(loader, what: str, *, mappings: bool = False) -> Iterable:
    """``loader`` as an iterable of batches (one tensor or array, or with ``mappings`` one keyword batch, is a
    loader of one batch); an ``InputError`` for anything that is not a loader."""
    if isinstance(loader, (torch.Tensor, np.ndarray)) or (mappings and isinstance(loader, Mapping)):
        return [loader]
    if loader is None or isinstance(loader, (str, bytes, dict)) or not isinstance(loader, Iterable):
        raise InputError(
            f"{what}: loader must be an iterable of input batches (tensors, or (inputs, targets) "
            f"pairs), or one batch tensor; got {type(loader).__name__}"
        )
    return loader


def _input_tensor(batch, i: int, what: str) -> torch.Tensor:
    """Batch ``i`` (a tensor or array, or an (inputs, targets) pair) as a real tensor with samples and finite
    values, else an ``InputError`` naming the batch."""
    x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.is_complex():
        raise InputError(
            f"{what}: batch {i} of the loader is {type(x).__name__}, not a real tensor of inputs "
            "(expected tensors or (inputs, targets) pairs)"
        )
    if x.dim() == 0 or x.shape[0] == 0:
        raise InputError(f"{what}: batch {i} has no samples (shape {tuple(x.shape)})")
    if not torch.isfinite(x).all():
        raise InputError(f"{what}: batch {i} has non-finite values (NaN or inf)")
    return x


def _calibration_batches(loader, num_batches: int, what: str = "calibrate") -> list[torch.Tensor]:
    """Up to ``num_batches`` input batches of ``loader``: an iterable of tensors (or numpy arrays) or of
    (inputs, targets) pairs, or one tensor or array taken as a single batch."""
    batches = []
    for i, batch in enumerate(_as_loader(loader, what)):
        if i >= num_batches:
            break
        batches.append(_input_tensor(batch, i, what))
    if not batches:
        raise InputError(f"{what}: the loader gave no batches")
    return batches
