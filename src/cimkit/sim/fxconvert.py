"""Functional weight products on crossbars, found and rewritten with torch.fx.

Models often hold a weight as a bare ``nn.Parameter`` and multiply in ``forward``::

    y = F.linear(x, self.w, self.b)      # crossbar holds w
    y = torch.matmul(x, self.w)          # crossbar holds w.T (x.matmul(self.w), torch.mm too)
    y = x @ self.w                       # crossbar holds w.T
    y = x @ self.w.T                     # crossbar holds w (.t(), .T, .mT, .transpose(0, 1))

After the module-level conversion, ``cimkit.convert`` traces each module that owns 2-d floating
parameters directly (its own ``_parameters``, not its children's) with torch.fx, every submodule
called as a unit (children are converted and rewritten in their own right), and replaces each
such product by a call of a new ``CIMLinear`` submodule (``<param>_cim``, or ``<param>_t_cim`` for
the transposed orientation) built with ``CIMLinear.from_weight``. A bias given to ``F.linear`` is
added digitally after the crossbar, as on the chip. One parameter used in several products in the
same orientation is programmed once. The module stays an instance of its class (its type becomes
a same-named subclass with the rewritten ``forward``) with its attributes and methods.

Not rewritten, and why:

* a parameter as the left operand (``self.w @ x``): reported, kept digital;
* products of two activations (``q @ k.transpose(-2, -1)``, attention scores): the operands change
  at every input, so they cannot be programmed into arrays; they stay digital, unreported;
* parameters of other modules (``self.sub.w``), buffers, and 1-d or >2-d parameters;
* modules whose forward torch.fx cannot trace (control flow on tensor values, unsupported
  Python): they stay digital, named in the warning with the tracing error;
* modules of PyTorch itself (their products are covered by registered converters or reported).

The rewritten forward is the traced one, so Python control flow is fixed at conversion time
(values of attributes, branches on argument types), with two exceptions that matter in practice and
are traced every way and chosen per call: ``self.training``, and arguments that default to None
(``if mask is None``; all combinations of up to four such arguments; with more, the module stays
digital). Control flow on tensor values does not trace: such modules stay as they were, named in
the warning. The crossbar layers hold copies of the parameters, as for ``nn.Linear``; the module
keeps its own (no longer read by the rewritten products). Whole-model pickling and
``copy.deepcopy`` work: a rewritten module is saved as its original class and traced again onto
the same crossbars when loaded.
"""

from __future__ import annotations

import inspect
import itertools
import operator
import warnings
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..spec import HardwareSpec
from .layers import CIMLayer, CIMLinear, layer_seed

_LINEAR_FUNCTIONS = {F.linear, torch._C._nn.linear}
_MATMUL_FUNCTIONS = {torch.matmul: "matmul", operator.matmul: "@", torch.mm: "mm"}
_MATMUL_METHODS = {"matmul": "matmul", "mm": "mm", "__matmul__": "@"}
_MAX_REASON = 160
#: None-default arguments of a forward traced in every combination (2**n traces per mode)
_MAX_NONE_ARGUMENTS = 4


@dataclass
class FunctionalResult:
    """What ``convert_functional`` did to one module."""

    #: (name suffix such as "w (F.linear)", the crossbar layer) per programmed parameter orientation
    converted: list[tuple[str, CIMLinear]] = field(default_factory=list)
    #: (name suffix, reason) of products with own parameters kept digital
    kept: list[tuple[str, str]] = field(default_factory=list)
    #: why the module's forward could not be traced (it then stays as it was), or None
    untraceable: str | None = None


def is_candidate(module: nn.Module) -> bool:
    """Whether ``module`` could compute a product with its own parameters that the crossbar can
    hold: a 2-d floating parameter of its own, outside PyTorch's module classes and CIM layers."""
    if isinstance(module, CIMLayer) or type(module).__module__.startswith("torch."):
        return False
    if "_cim_crossbars" in type(module).__dict__:  # rewritten already
        return False
    return any(p is not None and p.dim() == 2 and p.is_floating_point() for p in module._parameters.values())


class _OwnForwardTracer(fx.Tracer):
    """Traces one module's own forward: every submodule is a leaf, called as it is at run time."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return True


def _trace(module: nn.Module, training: bool, concrete: dict | None) -> fx.Graph:
    was = module.training
    module.training = training  # this module's flag only: submodules are leaves
    try:
        return _OwnForwardTracer().trace(module, concrete_args=concrete)
    finally:
        module.training = was


def _none_arguments(signature: inspect.Signature) -> list[str]:
    """The forward's arguments that default to None (``mask=None``)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in list(signature.parameters.values())[1:] if p.kind in kinds and p.default is None]


class _TraceFailed(Exception):
    def __init__(self, error: Exception, where: str) -> None:
        super().__init__(str(error))
        self.error, self.where = error, where


def _traces(module: nn.Module) -> dict[tuple, fx.Graph]:
    """The forward traced for each way it can be called: in eval and in training mode (fx fixes
    ``self.training`` where it is read), and for each combination of its None-default arguments
    given or left None (fx would take ``if mask is None`` the "given" way for all calls). Key:
    (training, tuple of "left None" per None-default argument)."""
    names = _none_arguments(inspect.signature(type(module).forward))
    if len(names) > _MAX_NONE_ARGUMENTS:
        raise _TraceFailed(
            ValueError(
                f"{len(names)} arguments default to None ({', '.join(names)}); at most {_MAX_NONE_ARGUMENTS} are traced"
            ),
            "",
        )
    graphs = {}
    for training in (False, True):
        for pattern in itertools.product((False, True), repeat=len(names)):
            concrete = {n: None for n, none in zip(names, pattern) if none}
            try:
                graphs[(training, pattern)] = _trace(module, training, concrete or None)
            except Exception as e:  # noqa: BLE001
                where = ", ".join(f"{n}=None" for n in concrete)
                raise _TraceFailed(e, f" with {where}" if where else "") from e
    return graphs


def _own_weight(node, module: nn.Module) -> tuple[str, bool] | None:
    """(parameter name, transposed) when ``node`` is one of ``module``'s own 2-d parameters, or its
    transpose (``.t()``, ``.T``, ``.mT``, ``.transpose(0, 1)``)."""
    transposed = False
    if isinstance(node, fx.Node):
        if node.op == "call_method" and node.target == "t" and len(node.args) == 1 and not node.kwargs:
            transposed, node = True, node.args[0]
        elif (
            node.op == "call_function"
            and node.target is getattr
            and len(node.args) == 2
            and node.args[1] in ("T", "mT")
        ):
            transposed, node = True, node.args[0]
        elif (
            node.op == "call_method"
            and node.target == "transpose"
            and len(node.args) == 3
            and not node.kwargs
            and all(isinstance(d, int) and -2 <= d <= 1 for d in node.args[1:])
            and {d % 2 for d in node.args[1:] if isinstance(d, int)} == {0, 1}
        ):
            transposed, node = True, node.args[0]
    if not (
        isinstance(node, fx.Node) and node.op == "get_attr" and isinstance(node.target, str) and "." not in node.target
    ):
        return None
    p = module._parameters.get(node.target)
    if p is None or p.dim() != 2 or not p.is_floating_point():
        return None
    return node.target, transposed


def _is_static(node) -> bool:
    """A module attribute (parameter, buffer or constant), not an activation."""
    return isinstance(node, fx.Node) and node.op == "get_attr"


def _product(node: fx.Node, module: nn.Module):
    """For a product of an activation with one of ``module``'s own parameters: (the activation, the
    weight node, parameter name, whether the crossbar holds the parameter transposed, bias node or
    None, label); ("left", parameter name, label) for a parameter as the left operand; else None."""
    if node.op == "call_function" and node.target in _LINEAR_FUNCTIONS:
        if set(node.kwargs) - {"input", "weight", "bias"} or len(node.args) > 3:
            return None
        args = dict(zip(("input", "weight", "bias"), node.args))
        args.update(node.kwargs)
        x, w, b = args.get("input"), args.get("weight"), args.get("bias")
        own = _own_weight(w, module)
        if own is None or x is None or _is_static(x):
            return None
        return x, w, own[0], own[1], b, "F.linear"  # F.linear(x, W): the arrays hold W as it is
    if node.op == "call_function" and node.target in _MATMUL_FUNCTIONS:
        label = _MATMUL_FUNCTIONS[node.target]
    elif node.op == "call_method" and node.target in _MATMUL_METHODS:
        label = _MATMUL_METHODS[node.target]
    else:
        return None
    if len(node.args) != 2 or node.kwargs:
        return None
    x, w = node.args
    own = _own_weight(w, module)
    if own is not None and not _is_static(x):
        return x, w, own[0], not own[1], None, label  # x @ W: the arrays hold W.T
    left = _own_weight(x, module)
    if left is not None and not _is_static(w):
        return "left", left[0], label
    return None


def _free_name(module: nn.Module, name: str) -> str:
    candidate, i = name, 1
    while hasattr(module, candidate):
        i += 1
        candidate = f"{name}{i}"
    return candidate


def _forward_from(graph: fx.Graph, path: str):
    code = graph.python_code(root_module="self")
    scope = dict(code.globals)
    exec(compile(code.src, f"<cimkit-fx {path or 'model'}>", "exec"), scope)  # noqa: S102 (code fx generated)
    return scope["forward"], code.src


def convert_functional(module: nn.Module, path: str, spec: HardwareSpec, seed: int) -> FunctionalResult:
    """Rewrite the products of ``module``'s forward with its own 2-d parameters onto crossbars (see
    the module docstring). ``path``: the module's name in the model (for names and seeds);
    ``seed``: the model seed. The module changes in place only when a product is rewritten."""
    result = FunctionalResult()
    try:
        graphs = _traces(module)
    except _TraceFailed as failed:  # any failure to trace means: leave the forward as it is
        e = failed.error
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        message = message if len(message) <= _MAX_REASON else message[: _MAX_REASON - 3] + "..."
        result.untraceable = (
            f"its forward does not trace with torch.fx{failed.where}, so products with its own "
            f"parameters stay digital ({type(e).__name__}: {message})"
        )
        return result

    layers: dict[tuple[str, bool], str] = {}  # (parameter, transposed) -> submodule name

    def crossbar(param: str, transposed: bool, label: str) -> str:
        key = (param, transposed)
        if key not in layers:
            suffix = f"{param} ({label})"
            name = f"{path}.{suffix}" if path else suffix
            own = module._parameters[param]
            assert own is not None  # _own_weight found it there
            weight = own.detach()
            layer = CIMLinear.from_weight(
                weight.t().contiguous() if transposed else weight, None, spec, seed=layer_seed(seed, name), name=name
            )
            attr = _free_name(module, f"{param}_t_cim" if transposed else f"{param}_cim")
            module.add_module(attr, layer)
            layers[key] = attr
            result.converted.append((suffix, layer))
        return layers[key]

    result.kept = _rewrite(graphs, module, crossbar)
    if layers:
        _install(module, graphs, layers, path)
    return result


def _rewrite(graphs: dict, module: nn.Module, crossbar) -> list[tuple[str, str]]:
    """Replace in every graph each product with an own parameter by a call of the submodule
    ``crossbar(param, transposed, label)`` names (None: leave it). Returns the products kept digital."""
    kept: dict[str, str] = {}
    for graph in graphs.values():
        for node in list(graph.nodes):
            found = _product(node, module)
            if found is None:
                continue
            if found[0] == "left":
                _, param, label = found
                kept.setdefault(f"{param} ({label})", "parameter as the left operand (W @ x): kept digital")
                continue
            x, weight_node, param, transposed, bias, label = found
            attr = crossbar(param, transposed, label)
            if attr is None:
                continue
            with graph.inserting_before(node):
                y = graph.call_module(attr, (x,))
                if bias is not None:
                    y = graph.call_function(operator.add, (y, bias))
            node.replace_all_uses_with(y)
            graph.erase_node(node)
            _erase_if_unused(graph, weight_node)
    return list(kept.items())


def _install(module: nn.Module, graphs: dict, layers: dict[tuple[str, bool], str], path: str) -> None:
    """Give ``module`` the rewritten forward: its class becomes a subclass of its own class (same
    name, methods and attributes) whose forward runs the rewritten traces."""
    cls = type(module)
    forwards = {key: _forward_from(graph, path) for key, graph in graphs.items()}
    sources = {key: src for key, (_, src) in forwards.items()}
    if len(set(sources.values())) == 1:
        forward = next(iter(forwards.values()))[0]
    else:
        forward = _dispatcher(inspect.signature(cls.forward), forwards)

    def __reduce_ex__(self, protocol):
        # pickled (and deep-copied) as the original class, with the forward rewritten again on load
        return _restore, (cls, self.__getstate__(), dict(layers), path)

    module.__class__ = type(
        cls.__name__,
        (cls,),
        {
            "forward": forward,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "__reduce_ex__": __reduce_ex__,
            "_cim_traced_forwards": sources,
            "_cim_crossbars": dict(layers),
        },
    )


def _restore(cls: type[nn.Module], state: dict, layers: dict[tuple[str, bool], str], path: str) -> nn.Module:
    """Unpickle a module with rewritten products: the original class, its state (crossbars
    included), the forward traced and rewritten again onto the same crossbars."""
    module = cls.__new__(cls)
    module.__setstate__(state)
    try:
        graphs = _traces(module)
    except _TraceFailed as failed:
        warnings.warn(
            f"cimkit: {path or 'the model'} ({cls.__name__}) no longer traces with torch.fx "
            f"({failed.error}); its functional products run digitally",
            stacklevel=2,
        )
        return module
    _rewrite(graphs, module, lambda param, transposed, label: layers.get((param, transposed)))
    _install(module, graphs, layers, path)
    return module


def _dispatcher(signature: inspect.Signature, forwards: dict):
    """A forward that runs the trace made for the call: by ``self.training`` and by which
    None-default arguments are None. Arguments are bound to the original signature and handed on
    in order (fx renames arguments it traced as constants, and makes keyword-only ones positional)."""
    names = _none_arguments(signature)
    params = list(signature.parameters.values())[1:]
    table = {key: (fn, list(inspect.signature(fn).parameters.values())[1:]) for key, (fn, _) in forwards.items()}

    def forward(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        fn, fn_params = table[(self.training, tuple(given[n] is None for n in names))]
        call_args, call_kwargs = [], {}
        for p, q in zip(params, fn_params):
            value = given[p.name]
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                call_args.extend(value)
            elif p.kind is inspect.Parameter.VAR_KEYWORD:
                call_kwargs.update(value)
            elif q.kind is inspect.Parameter.KEYWORD_ONLY:
                call_kwargs[q.name] = value
            else:
                call_args.append(value)
        return fn(self, *call_args, **call_kwargs)

    return forward


def _erase_if_unused(graph: fx.Graph, node) -> None:
    """Remove the parameter read (and its transpose) a rewritten product no longer uses."""
    while isinstance(node, fx.Node) and not node.users and node.op in ("get_attr", "call_method", "call_function"):
        parent = node.args[0] if node.op != "get_attr" else None
        graph.erase_node(node)
        node = parent
