"""PyTorch model -> Workload: torch.fx shape propagation, torch.export (``export_trace``: the ATen graph,
for models fx cannot trace, e.g. Hugging Face models), an eager run that records module and torch
function calls (a ``TorchFunctionMode`` plus forward hooks; for control flow on tensor values), or forward
hooks on modules only ("auto" tries them in that order, see ``trace_torch``). All dispatch through the op
registry (``cimkit.workload.registry``): a module, function or tensor method a rule names becomes that rule's op;
data movement (view, reshape, cat, getitem, dropout, ...) is not an op; anything else that computes on
an activation is kept as an "unmapped" op with its shapes.

What the hooks frontend cannot see: functional calls (F.linear, torch.matmul / @, F.softmax, einsum,
residual adds, F.gelu, ...) outside a module; it agrees with fx and eager on models built from modules
only (nn.Sequential of layers, nn.MultiheadAttention, nn.TransformerEncoderLayer).

Costs are per inference: the batch dim (dim 0) of ``input_shape`` is set to 1, except in a model holding a
torch.nn module with ``batch_first=False`` (torch's default for MultiheadAttention, the transformer
layers and RNNs), whose dim 0 is the sequence: there the shape is kept as given (with a warning), and
the attention expansion counts sequence x batch tokens, as the ONNX export of the same model does.

Every path accounts for every parameter of the model (see ``Workload.weight_counts``): a parameter is
on a mapped layer (Linear, Conv1d, Conv2d, or ``F.linear`` / ``F.conv1d`` / ``F.conv2d`` / a matmul
with a parameter operand), used by a digital op (a bias, a normalization's scale), held by a layer the
cost model cannot map (LSTM, Conv3d, ConvTranspose, Embedding, ...: refused, or kept as an "unmapped"
op with ``unmapped="warn"``), or used by no op (warned about). Nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import numbers
import warnings
from collections import Counter
from typing import Any, cast

import torch
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.overrides import TorchFunctionMode

from ..errors import InputError, short_repr
from . import registry
from .core import MAX_CSV_DIM, Op, Workload, check_op_sizes, resolve_unmapped, unmapped_op, warn_caller, warn_unused
from .registry import (
    batched_matmul,
    conv_op,
    digital_op,
    einsum_linear,
    einsum_operands,
    embedding_op,
    linear_op,
    matmul_op,
)


def _resolve(dotted: str):
    """The object a dotted name ('torch.nn.ReLU', 'operator.add') names, or None where this torch lacks it."""
    module, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr, None)
    except ImportError:
        # a dotted path through attributes (torch.nn.functional is importable; torch.special.erf too)
        head, _, tail = module.rpartition(".")
        try:
            return getattr(getattr(importlib.import_module(head), tail, None), attr, None)
        except ImportError:
            return None


class _Tables:
    """The registry's matchers resolved to torch objects (rebuilt when a rule is registered)."""

    _cache: "_Tables | None" = None

    def __init__(self) -> None:
        self.version = registry.rules_version()
        self.modules: list[tuple[type, registry.OpRule]] = []
        self.functions: dict = {}
        self.methods: dict[str, registry.OpRule] = {}
        for rule in registry.op_rules():
            for name in rule.modules:
                obj = _resolve(name)
                if isinstance(obj, type):
                    self.modules.append((obj, rule))
            for name in rule.functions:
                obj = _resolve(name)
                if obj is not None:
                    self.functions.setdefault(obj, rule)
            for name in rule.methods:
                self.methods.setdefault(name, rule)
        # the torch.Tensor attributes the rules name, by object: an eager call reports the function object,
        # whose __name__ may differ from the attribute (Tensor.__pow__ is named 'pow', Tensor.__abs__ is abs)
        self.tensor_methods: dict = {}
        for rule in registry.op_rules():
            for name in rule.methods:
                obj = getattr(torch.Tensor, name, None)
                if obj is not None:
                    with contextlib.suppress(TypeError):
                        self.tensor_methods.setdefault(obj, name)
        self.data_functions = {obj for obj in map(_resolve, registry.DATA_FUNCTIONS) if obj is not None}
        self.data_modules = tuple(obj for obj in map(_resolve, registry.DATA_MODULES) if isinstance(obj, type))

    @classmethod
    def get(cls) -> "_Tables":
        if cls._cache is None or cls._cache.version != registry.rules_version():
            cls._cache = _Tables()
        return cls._cache

    def module_rule(self, m: nn.Module):
        for typ, rule in self.modules:  # exact type first, then subclasses
            if type(m) is typ:
                return rule
        for typ, rule in self.modules:
            if isinstance(m, typ):
                return rule
        return None

    def function_rule(self, fn):
        try:
            return self.functions.get(fn)
        except TypeError:  # unhashable
            return None

    def tensor_method(self, fn) -> str | None:
        """The name of the torch.Tensor method a rule names that ``fn`` is, or None."""
        try:
            return self.tensor_methods.get(fn)
        except TypeError:  # unhashable
            return None

    def leaf(self, m: nn.Module) -> str | None:
        """'rule' (a registered module), 'data', 'opaque' (a torch.nn module without children no rule
        names: one op, unmapped), or None (traced into)."""
        if self.module_rule(m) is not None:
            return "rule"
        if isinstance(m, self.data_modules):
            return "data"
        if (
            type(m).__module__.startswith("torch.nn")
            and not any(True for _ in m.children())
            and not isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
        ):
            return "opaque"
        return None


def _shape(node) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
    if isinstance(meta, (tuple, list)) and not hasattr(meta, "shape"):  # a tuple of tensors: the first
        meta = next((t for t in meta if hasattr(t, "shape")), None)
    return tuple(int(d) for d in meta.shape) if meta is not None and hasattr(meta, "shape") else ()


def _reason(exc: BaseException) -> str:
    """torch's own reason for a failure, one line, at most 300 characters."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0] if lines else '(no message)'}"
    return text if len(text) <= 300 else text[:280] + "..."


def _rejected(name: str, shape: tuple[int, ...], exc: BaseException, given: tuple) -> InputError:
    note = "" if tuple(given) == tuple(shape) else f" (input_shape {tuple(given)} with the batch dim set to 1)"
    return InputError(
        f"{name}: the model rejected an all-zero input of shape {tuple(shape)}{note}: {_reason(exc)}. "
        "Give input_shape as the shape of one batch the model accepts, batch dim first (e.g. (1, 784) "
        "for an MLP on MNIST, (1, 3, 32, 32) for a CIFAR CNN)"
    )


def _check_input_shape(input_shape) -> tuple[int, ...]:
    try:
        dims = tuple(input_shape)
    except TypeError:
        raise InputError(
            f"input_shape must be a tuple of positive integers including the batch dim, got {short_repr(input_shape)}"
        ) from None
    if not dims or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or not 1 <= int(d) <= MAX_CSV_DIM for d in dims
    ):
        raise InputError(
            f"input_shape must be a tuple of integers from 1 to 2**20, batch dim first, got {short_repr(input_shape)}"
        )
    return tuple(int(d) for d in dims)


class _Ledger:
    """Where each parameter of a model went: mapped > unmapped > digital; never seen = unused."""

    RANK = {"mapped": 3, "unmapped": 2, "digital": 1}

    def __init__(self, model: nn.Module) -> None:
        self.params = {id(p): (n, p) for n, p in model.named_parameters()}
        self.where: dict[int, str] = {}

    def mark(self, params, category: str) -> None:
        for p in params:
            if p is None or id(p) not in self.params:
                continue
            if self.RANK[category] > self.RANK.get(self.where.get(id(p), ""), 0):
                self.where[id(p)] = category

    def counts(self) -> dict[str, int]:
        out = {"total": 0, "mapped": 0, "digital": 0, "unmapped": 0, "unused": 0}
        for pid, (_, p) in self.params.items():
            n = p.numel()
            out["total"] += n
            out[self.where.get(pid, "unused")] += n
        return out

    def unused(self) -> list[tuple[str, tuple[int, ...], int]]:
        return [(n, tuple(p.shape), p.numel()) for pid, (n, p) in self.params.items() if pid not in self.where]


#: the tracers ``tracer`` names, and the order "auto" tries them in (see ``trace_torch``)
_TRACERS = ("auto", "fx", "export", "eager", "hooks")
AUTO_ORDER = ("fx", "export", "eager", "hooks")
_LABELS = {"fx": "torch.fx", "export": "torch.export", "eager": "the eager recorder", "hooks": "forward hooks"}


def _tracer_chain(tracer) -> tuple[str, ...]:
    """The tracers to try, in order: one name, "auto" (``AUTO_ORDER``), or a sequence of distinct names (a
    fallback chain, e.g. ("export", "hooks"))."""
    if isinstance(tracer, str):
        if tracer not in _TRACERS:
            raise InputError(
                f"tracer = {short_repr(tracer)}: allowed values are {', '.join(_TRACERS)}, or a fallback "
                "chain of them tried in order, e.g. ('export', 'hooks')"
            )
        return AUTO_ORDER if tracer == "auto" else (tracer,)
    names = tuple(tracer) if isinstance(tracer, (tuple, list)) else ()
    if not names or any(not isinstance(t, str) or t not in AUTO_ORDER for t in names) or len(set(names)) != len(names):
        raise InputError(
            f"tracer = {short_repr(tracer)}: give one of {', '.join(_TRACERS)}, or a fallback chain of "
            f"distinct tracers ({', '.join(AUTO_ORDER)}) tried in order, e.g. ('export', 'hooks')"
        )
    return names


class _ForwardFailed(Exception):
    """The model's forward raised on the example input (a run-based tracer's failure): ``cause`` is torch's error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def trace_torch(
    model: nn.Module, input_shape, name: str, unmapped: str = "error", *, tracer="auto", input_dtype=None
) -> Workload:
    """The workload of ``model`` on one all-zero input of ``input_shape`` (batch dim set to 1; kept as
    given, with a warning, when the model holds a seq-first torch module, batch_first=False, whose dim 0
    is the sequence, not the batch).

    ``tracer`` is tried in order (one name, "auto" = fx, export, eager, hooks, or a sequence of names):
    the first that traces the model gives the workload, with a warning naming why the ones before it could
    not (torch's reason, first line); when the last one fails too, its failure is one ``InputError``. fx and
    export trace symbolically; eager and hooks run the model, so a model that rejects the input fails both
    the same way: that is reported as the model's error. After fx traced but its shape propagation failed
    (the model rejects the input, or fx's proxies misled it), export is skipped when a run follows: the run
    says which."""
    if not isinstance(model, nn.Module):
        raise InputError(f"from_torch expects a torch.nn.Module, got {type(model).__name__}")
    chain = _tracer_chain(tracer)
    given = _check_input_shape(input_shape)
    _refuse_converted(model, name)
    seq_first = _seq_first(model)
    if seq_first and given[0] != 1:  # dim 0 is the sequence, not the batch: costs are for this input
        shape = given
        warn_caller(
            f"{name}: {seq_first} has batch_first=False (dim 0 of its input is the sequence); input_shape "
            f"{given} kept as given, not cut to batch 1 in dim 0: the costs are for this input (give the batch "
            "as 1 in its own position, e.g. (L, 1, E), or build the model with batch_first=True)"
        )
    else:
        shape = (1, *given[1:])  # costs are per inference
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    try:
        example = torch.zeros(shape, device=device, dtype=input_dtype)
    except (RuntimeError, MemoryError, TypeError) as exc:
        raise InputError(f"{name}: cannot make an input of shape {shape} on {device}: {_reason(exc)}") from None
    _check_positions(model, shape, example.dtype, name, given)
    if _Tables.get().leaf(model) is not None:  # a bare layer: one call
        try:
            return _finish(*_trace_eager(model, example, name, functions=chain[0] != "hooks"), unmapped)
        except _ForwardFailed as exc:
            raise _rejected(name, shape, exc.cause, given) from None
    failed: list[tuple[str, str]] = []  # (tracer, torch's reason) of each tracer that could not trace the model
    rejected: BaseException | None = None  # the model's own failure in the first run, reported if nothing works
    skip_export = False
    for i, t in enumerate(chain):
        last = i == len(chain) - 1
        if t == "fx":
            try:
                gm = torch.fx.GraphModule(model, _Tracer().trace(model))
            except Exception as exc:  # noqa: BLE001 - untraceable (data-dependent control flow): the next tracer
                if last:
                    raise InputError(
                        f"{name}: torch.fx cannot trace the model: {_reason(exc)}; use tracer='export', "
                        "'eager' or 'auto'"
                    ) from None
                failed.append(("fx", _reason(exc)))
                continue
            try:
                # ShapeProp prints the traceback of a failing node to stderr before it raises: keep that quiet
                with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                    ShapeProp(gm).propagate(example)
            except Exception as exc:  # noqa: BLE001 - ShapeProp wraps the error; a run reports the model's own
                cause = exc.__cause__ or exc
                if last:
                    raise _rejected(name, shape, cause, given) from None
                failed.append(("fx", _reason(cause)))
                skip_export = any(u in ("eager", "hooks") for u in chain[i + 1 :])
                continue
            traced = _from_graph(model, gm, name, shape)
        elif t == "export":
            if skip_export:
                continue
            from .export_trace import ExportFailure, trace_export

            try:
                traced = trace_export(model, example, name)
            except ExportFailure as exc:
                if last:
                    raise InputError(
                        f"{name}: torch.export cannot trace the model: {exc.reason}; use tracer='eager' "
                        "(runs the model once, recording its module and torch function calls) or "
                        "'auto'"
                    ) from None
                failed.append(("export", exc.reason))
                continue
        else:
            try:
                traced = _trace_eager(model, example, name, functions=t == "eager")
            except _ForwardFailed as exc:
                rejected = rejected or exc.cause
                if last:
                    raise _rejected(name, shape, rejected, given) from None
                failed.append((t, _reason(exc.cause)))
                continue
        if failed:  # before the unmapped policy's checks, which may raise
            _warn_fallback(name, t, failed, model, example)
        return _finish(*traced, unmapped)
    raise AssertionError("unreachable: the last tracer returns or raises")  # pragma: no cover


def _check_positions(model: nn.Module, shape: tuple, dtype, name: str, given: tuple) -> None:
    """Token ids (an integer input of shape (batch, L)) longer than the positions of a Hugging Face model
    (``config.max_position_embeddings`` of the model or a module in it): an ``InputError`` saying both."""
    if dtype.is_floating_point or dtype.is_complex or len(shape) != 2:
        return
    for m in model.modules():
        limit = getattr(getattr(m, "config", None), "max_position_embeddings", None)
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            if shape[-1] > limit:
                raise InputError(
                    f"{name}: a sequence of {shape[-1]} tokens (input_shape {tuple(given)}) is longer "
                    f"than the model's {limit} positions (config.max_position_embeddings = {limit}); give at "
                    f"most {limit} tokens"
                )
            return


def _seq_first(model: nn.Module) -> str:
    """The label of the first torch.nn module with ``batch_first=False`` (MultiheadAttention, the transformer
    layers, RNNs: dim 0 of its input is the sequence), or ''."""
    for label, m in model.named_modules():
        if type(m).__module__.startswith("torch.nn") and getattr(m, "batch_first", None) is False:
            return f"'{label}' ({type(m).__name__})" if label else type(m).__name__
    return ""


class _Tracer(torch.fx.Tracer):
    """torch.fx tracing that stops at the modules the registry names (and at torch.nn leaves), and traces
    into every other module, torch.nn containers included."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return _Tables.get().leaf(m) is not None


def _refuse_converted(model: nn.Module, name: str) -> None:
    """A model made by ``cimkit.convert`` keeps its weights in buffers of crossbar layers, which no
    tracer sees: refuse it and ask for the float model it was converted from."""
    try:
        from ..sim.layers import CIMLayer
    except ImportError:  # pragma: no cover - the simulator is part of cimkit
        return
    for label, m in model.named_modules():
        if isinstance(m, CIMLayer):
            raise InputError(
                f"{name}: layer '{label or type(m).__name__}' ({type(m).__name__}) is a crossbar layer made "
                "by cimkit.convert; trace the float model it was converted from (the converted copy "
                "holds its weights in buffers that the cost model cannot read)"
            )


def _warn_fallback(
    name: str, used: str, failed: list[tuple[str, str]], model: nn.Module, example: torch.Tensor
) -> None:
    """One warning: why each tracer before ``used`` could not trace the model, and what ``used`` gives instead."""
    why = f"{_LABELS[failed[0][0]]} could not trace {name} ({failed[0][1]})"
    why += "".join(f", nor could {_LABELS[t]} ({reason})" for t, reason in failed[1:])
    if used == "export":
        how = (
            f"traced it with torch.export instead (shapes and Python branches are those of the all-zero example "
            f"input of shape {tuple(example.shape)})"
        )
    elif used == "eager":
        how = (
            "ran the model once on an all-zero example input instead, recording its module and torch function "
            "calls (only the branches that input takes)"
        )
    elif used == "hooks":
        how = (
            f"fell back to forward hooks, which see module calls only: {_missed_by_hooks(model, example, failed)} "
            "are not module calls and are missing from the workload"
        )
    else:
        how = f"traced it with {_LABELS[used]} instead"
    warn_caller(f"{why}; {how}")


def _missed_by_hooks(model: nn.Module, example: torch.Tensor, failed: list[tuple[str, str]]) -> str:
    """What forward hooks miss in ``model``: the (kind, fn) of the ops the eager recorder lists beyond those
    hooks list, counted ('2 matmul (attention), 1 softmax'); where the eager recorder cannot run, the
    functional calls in the forward code of the model's own modules, in general terms."""
    if all(t != "eager" for t, _ in failed):
        eager: Workload | None
        hooks: Workload | None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                eager, _ = _trace_eager(model, example, "", functions=True)
                hooks, _ = _trace_eager(model, example, "", functions=False)
        except Exception:  # noqa: BLE001 - the listing is a courtesy: fall back to the general terms
            eager = hooks = None
        if eager is not None and hooks is not None:  # both traced, or neither
            seen = Counter((o.kind, o.fn) for o in hooks.ops)
            missed = Counter((o.kind, o.fn) for o in eager.ops) - seen
            if missed:
                text = ", ".join(
                    f"{n} {fn or kind}" + (" (attention)" if kind == "matmul" and fn == "matmul" else "")
                    for (kind, fn), n in missed.most_common()
                )
                return f"{text} (what tracer='eager' records)"
    tables = _Tables.get()
    own = [
        f"'{label}' ({type(m).__name__})" if label else f"the model ({type(m).__name__})"
        for label, m in model.named_modules()
        if tables.leaf(m) is None and not isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
    ]
    where = ", ".join(own[:4]) + (f" and {len(own) - 4} more" if len(own) > 4 else "")
    return (
        "the functional calls (F.linear on bare parameters, matmul / @ (attention), softmax, einsum, residual "
        f"adds, F.* activations) in the forward code of {where or 'the model'}"
    )


class _Val:
    """A tensor argument: its full shape, whether it is a constant, the parameters it comes from, and an
    identity (to tell self-attention's query, key and value apart)."""

    __slots__ = ("shape", "const", "params", "key", "param_name")

    def __init__(self, shape, const: bool, params=(), key=None, param_name: str = "") -> None:
        self.shape = tuple(int(d) for d in shape)
        self.const = const
        self.params = list(params)
        self.key = key
        self.param_name = param_name


def _vals(value) -> list:
    if isinstance(value, _Val):
        return [value]
    if isinstance(value, (tuple, list)):
        return [v for x in value for v in _vals(x)]
    if isinstance(value, dict):
        return [v for x in value.values() for v in _vals(x)]
    return []


def _get(args, kwargs, index: int, key: str, default=None):
    return args[index] if len(args) > index else kwargs.get(key, default)


class _Builder:
    """The shared dispatch of fx, eager and hooks: one call (module, function or method) -> ops."""

    def __init__(self, model: nn.Module) -> None:
        self.tables = _Tables.get()
        self.ledger = _Ledger(model)
        self.ops: list[Op] = []
        self.param_names = {id(p): n for n, p in model.named_parameters()}
        self.input_keys: set = set()  # the model's inputs: a constant scale of an input is not folded

    def unmap(self, label: str, source_type: str, params, in_shape=(), out_shape=()) -> None:
        unique = {id(p): p for p in params}
        self.ledger.mark(unique.values(), "unmapped")
        self.ops.append(
            unmapped_op(
                label,
                source_type,
                sum(p.numel() for p in unique.values()),
                registry.per_inference(in_shape) if in_shape else (),
                registry.per_inference(out_shape) if out_shape else (),
            )
        )

    def weight_label(self, label: str, val) -> str:
        """The name of a weight's owner ('proj' for 'proj.weight', 'w' for a parameter 'w'), else ``label``."""
        name = val.param_name if isinstance(val, _Val) else ""
        if name.endswith(".weight"):
            return name[: -len(".weight")]
        return name if name and name != "weight" else label

    # ---- modules ---------------------------------------------------------------------------------------
    def module(self, label: str, m: nn.Module, args: tuple, kwargs: dict, out_shape) -> None:
        leaf = self.tables.leaf(m)
        vals = _vals(args) + _vals(kwargs)
        self.ledger.mark([p for v in vals for p in v.params], "digital")
        if leaf == "data":
            self.ledger.mark(m.parameters(), "digital")
            return
        rule = self.tables.module_rule(m)
        x = vals[0].shape if vals else ()
        if rule is None:
            held = list(m.parameters())
            if held or any(not v.const for v in vals):
                self.unmap(label, type(m).__name__, held, x, out_shape)
            return
        layer = cast(Any, m)  # the rule's handler says which layer attributes it has
        if rule.handler == "linear":
            self.ledger.mark([m.weight], "mapped")
            self.ledger.mark([m.bias], "digital")
            self.ops.append(linear_op(label, layer.in_features, layer.out_features, x, out_shape))
        elif rule.handler == "conv":
            self.ledger.mark([m.weight], "mapped")
            self.ledger.mark([m.bias], "digital")
            self.ops.append(conv_op(label, tuple(layer.weight.shape), layer.groups, layer.stride, x, out_shape))
        elif rule.handler == "embedding":
            self.ledger.mark(m.parameters(), "digital")
            self.ops.append(embedding_op(label, layer.num_embeddings, layer.embedding_dim, x, out_shape))
        elif rule.handler == "attention":
            q = _get(args, kwargs, 0, "query") if rule.fn == "attention" else _get(args, kwargs, 0, "src")
            k, v = (_get(args, kwargs, 1, "key"), _get(args, kwargs, 2, "value")) if rule.fn == "attention" else (q, q)
            qkv = [a if isinstance(a, _Val) else q for a in (q, k, v)]
            keys = [a.key for a in qkv]
            for p in m.parameters():
                self.ledger.mark([p], "mapped" if p.dim() >= 2 else "digital")
            self.ops += rule.expand(
                label, m, qkv, tuple(out_shape), {"same_qk": keys[0] is keys[1], "same_kv": keys[1] is keys[2]}
            )
        else:  # digital
            self.ledger.mark(m.parameters(), "digital")
            params = rule.module_params(m) if rule.module_params else {}
            self.ops.append(digital_op(label, rule, x, out_shape, params))

    # ---- functions and methods -------------------------------------------------------------------------
    def call(self, label: str, target, method: str | None, args: tuple, kwargs: dict, out_shape) -> bool:
        """Record a call; returns whether its output is an activation (False: a constant)."""
        vals = _vals(args) + _vals(kwargs)
        acts = [v for v in vals if not v.const]
        held = [p for v in vals for p in v.params]
        rule = self.tables.methods.get(method) if method is not None else self.tables.function_rule(target)
        if rule is not None and rule.handler == "embedding":
            return self.embedding(label, args, kwargs, out_shape)
        if not acts:
            return False  # computed from parameters, buffers and literals only: a constant
        data = method in registry.DATA_METHODS if method is not None else target in self.tables.data_functions
        if rule is None and data:
            return self.data(args, kwargs)
        x = acts[0].shape
        if rule is None:
            name = method if method else getattr(target, "__name__", str(target))
            weights = [p for p in held if p.dim() >= 2]
            if weights:
                self.unmap(self.weight_label(label, next(v for v in vals if v.params)), name, held, x, out_shape)
            else:
                self.ledger.mark(held, "digital")
                self.unmap(label, name, [], x, out_shape)
            return True
        handler = rule.handler
        if handler == "linear":
            self.function_linear(label, args, kwargs, x, out_shape)
        elif handler == "conv":
            self.function_conv(label, args, kwargs, x, out_shape)
        elif handler == "matmul":
            self.matmul(label, [v for v in _vals(args)[:2]], out_shape)
        elif handler == "addmm":
            self.addmm(label, args, kwargs, out_shape)
        elif handler == "einsum":
            self.einsum(label, args, out_shape)
        elif handler == "attention":
            q, k, v = (_get(args, kwargs, i, key) for i, key in enumerate(("query", "key", "value")))
            self.ledger.mark(held, "digital")
            assert rule.expand is not None  # OpRule requires it of the attention handler
            self.ops += rule.expand(label, None, [q, k, v], tuple(out_shape), {})
        else:
            self.ledger.mark(held, "digital")
            act_first = True
            if len(acts) == 1 and rule.kind == "eltwise" and rule.fn in ("sub", "div", "pow"):
                lhs = args[0] if args else None
                flipped = (method or getattr(target, "__name__", "")) in registry.REVERSED | {"rsub"}
                act_first = (isinstance(lhs, _Val) and not lhs.const) != flipped
                if not act_first and rule.fn != "sub":  # c / x: a reciprocal (times c); c ** x = exp(x ln c)
                    rule = registry.OP_RULES.get("eltwise:reciprocal" if rule.fn == "div" else "eltwise:exp")
            if rule.fold_constant and len(acts) == 1 and act_first and acts[0].key not in self.input_keys:
                return True  # a bias add or a scale by a constant: folded into the op before it
            params = rule.call_params(args, kwargs) if rule.call_params else {}
            self.ops.append(digital_op(label, rule, x, out_shape, params))
        return True

    def data(self, args, kwargs) -> bool:
        """A call that only moves data (view, cat, getitem, dropout, ...): no op; returns whether its output is
        an activation (False: computed from parameters, buffers and literals only, a constant)."""
        vals = _vals(args) + _vals(kwargs)
        if all(v.const for v in vals):
            return False
        self.ledger.mark([p for v in vals for p in v.params], "digital")
        return True

    def addmm(self, label: str, args, kwargs, out_shape) -> None:
        """bias + mat1 @ mat2 (torch.addmm, torch.baddbmm): the product as ``matmul`` does it (a linear op
        when an operand is a parameter: GPT-2's Conv1D), the bias folded when constant, else an add."""
        bias = _get(args, kwargs, 0, "input")
        operands = [
            _get(args, kwargs, 1, "mat1", kwargs.get("batch1")),
            _get(args, kwargs, 2, "mat2", kwargs.get("batch2")),
        ]
        self.matmul(label, [v for v in operands if isinstance(v, _Val)], out_shape)
        if isinstance(bias, _Val) and not bias.const:
            self.ops.append(digital_op(f"{label}.add", registry.OP_RULES.get("eltwise:add"), out_shape, out_shape))
        elif isinstance(bias, _Val):
            self.ledger.mark(bias.params, "digital")

    def embedding(self, label: str, args, kwargs, out_shape) -> bool:
        idx, table = _get(args, kwargs, 0, "input"), _get(args, kwargs, 1, "weight")
        if not isinstance(idx, _Val) or not isinstance(table, _Val) or len(table.shape) != 2:
            return False
        self.ledger.mark(table.params, "digital")
        self.ops.append(
            embedding_op(self.weight_label(label, table), table.shape[0], table.shape[1], idx.shape, out_shape)
        )
        return True

    def function_linear(self, label, args, kwargs, x, out_shape) -> None:
        w, b = _get(args, kwargs, 1, "weight"), _get(args, kwargs, 2, "bias")
        if not isinstance(w, _Val):
            return
        self.ledger.mark(b.params if isinstance(b, _Val) else [], "digital")
        if w.const and len(w.shape) in (1, 2):
            self.ledger.mark(w.params, "mapped")
            out_f = w.shape[0] if len(w.shape) == 2 else 1
            self.ops.append(linear_op(self.weight_label(label, w), w.shape[-1], out_f, x, out_shape))
        elif not w.const and len(w.shape) == 2:  # a weight computed at run time: a dynamic product
            self.ops.append(matmul_op(label, 1, math.prod(x[:-1]) if len(x) > 1 else 1, w.shape[1], w.shape[0]))
        else:
            self.unmap(label, "linear with a weight computed at run time", w.params, x, out_shape)

    def function_conv(self, label, args, kwargs, x, out_shape) -> None:
        w, b = _get(args, kwargs, 1, "weight"), _get(args, kwargs, 2, "bias")
        if not isinstance(w, _Val) or not w.const:
            self.unmap(label, "conv with a weight computed at run time", [], x, out_shape)
            return
        self.ledger.mark(w.params, "mapped")
        self.ledger.mark(b.params if isinstance(b, _Val) else [], "digital")
        self.ops.append(
            conv_op(
                self.weight_label(label, w),
                w.shape,
                int(_get(args, kwargs, 6, "groups", 1)),
                _get(args, kwargs, 3, "stride", 1),
                x,
                out_shape,
            )
        )

    def matmul(self, label, operands, out_shape) -> None:
        if len(operands) != 2:
            return
        a, b = operands
        sa, sb = a.shape, b.shape
        if a.const or b.const:
            wv, xs, ws = (b, sa, sb) if b.const else (a, sb, sa)
            if len(ws) not in (1, 2):
                self.unmap(
                    self.weight_label(label, wv), f"matmul with a {len(ws)}-D parameter", wv.params, xs, out_shape
                )
                return
            self.ledger.mark(wv.params, "mapped")
            if wv is b:  # x @ W, W (k, n) or (k,): one vector per row of x
                k, n = ws[0], ws[1] if len(ws) == 2 else 1
                vectors = math.prod(xs[:-1])
            else:  # W @ x, W (n, k) or (k,): one vector per column of x
                k, n = ws[-1], ws[0] if len(ws) == 2 else 1
                vectors = math.prod(xs[:-2]) * xs[-1] if len(xs) >= 2 else 1
            self.ops.append(linear_op(self.weight_label(label, wv), k, n, xs, out_shape, vectors))
            return
        self.ops.append(batched_matmul(label, sa, sb, out_shape))

    def einsum(self, label, args, out_shape) -> None:
        equation = args[0] if args and isinstance(args[0], str) else ""
        operands = _vals(args[1:])
        dims = einsum_operands(equation, [v.shape for v in operands])
        x = operands[0].shape if operands else ()
        const = [v for v in operands if v.const]
        if dims is None:
            self.unmap(label, f"einsum {equation!r}", [p for v in const for p in v.params], x, out_shape)
            return
        g, m, k, n = dims
        if const:
            self.ledger.mark(const[0].params, "mapped")
            acts = [v for v in operands if not v.const]
            x = acts[0].shape if acts else x
            self.ops.append(einsum_linear(self.weight_label(label, const[0]), dims, operands[0].const, x, out_shape))
        else:
            self.ops.append(matmul_op(label, g, m, k, n))


def _from_graph(model: nn.Module, gm, name: str, shape: tuple[int, ...]) -> tuple[Workload, _Ledger]:
    """The ops of an fx graph with propagated shapes, and where the model's parameters went (``_finish``
    checks them)."""
    modules = dict(gm.named_modules())
    b = _Builder(model)
    vals: dict = {}  # node -> _Val (tensors) ; non-tensor nodes are absent

    def convert(value):
        if isinstance(value, torch.fx.Node):
            return vals.get(value)
        if isinstance(value, (tuple, list)):
            return type(value)(convert(v) for v in value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    for node in gm.graph.nodes:
        out = _shape(node)
        if node.op == "placeholder":
            vals[node] = _Val(out, False, key=node)
            b.input_keys.add(node)
            continue
        if node.op == "get_attr":
            obj = gm
            for part in str(node.target).split("."):
                obj = getattr(obj, part, None)
            if isinstance(obj, torch.Tensor):
                params = [obj] if isinstance(obj, nn.Parameter) else []
                pname = b.param_names.get(id(obj), str(node.target))
                vals[node] = _Val(tuple(obj.shape), True, params, node, pname)
            continue
        if node.op not in ("call_module", "call_function", "call_method"):
            continue
        args, kwargs = convert(node.args), convert(node.kwargs)
        inputs = _vals(args) + _vals(kwargs)
        if node.op == "call_module":
            b.module(str(node.target), modules[node.target], args, kwargs, out)
            vals[node] = _Val(out, False, key=node)
            continue
        method = node.target if node.op == "call_method" else None
        active = b.call(node.name, node.target, method, args, kwargs, out)
        meta = node.meta.get("tensor_meta")
        if isinstance(meta, (tuple, list)) and not hasattr(
            meta, "shape"
        ):  # a tuple of tensors (split, chunk, max with indices)
            meta = next((t for t in meta if hasattr(t, "shape")), None)
        if meta is not None and hasattr(meta, "shape"):  # a tensor (a size or a Python number gets no _Val)
            vals[node] = _Val(
                tuple(meta.shape), not active, [] if active else [p for v in inputs for p in v.params], node
            )
    return Workload(name, tuple(shape), b.ops), b.ledger


def _finish(wl: Workload, ledger: _Ledger, policy: str) -> Workload:
    if not wl.ops:
        raise InputError(
            f"{wl.name}: no operation to cost: the model has no Linear, convolution, matmul, activation, "
            "pooling, normalization, softmax or element-wise op on its input"
        )
    for op in wl.ops:
        check_op_sizes(op, wl.name)
    wl.weight_counts = ledger.counts()
    resolve_unmapped(wl.name, wl.unmapped_ops, policy, wl.weight_counts)
    warn_unused(wl.name, ledger.unused())
    return wl


def _flat_tensors(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flat_tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flat_tensors(v)]
    if hasattr(value, "to_tuple") and callable(value.to_tuple):  # Hugging Face ModelOutput
        return _flat_tensors(value.to_tuple())
    return []


class _Recorder(TorchFunctionMode):
    """Runs the model once, recording each module (leaves by rule) and each torch function / tensor method
    called outside a leaf module."""

    def __init__(self, model: nn.Module, builder: _Builder, functions: bool) -> None:
        super().__init__()
        self.b, self.functions = builder, functions
        self.depth = 0  # inside a leaf module: its own calls are part of it
        self.keep: list = []  # every tensor seen stays alive, so that ids are never reused
        self.info: dict[int, _Val] = {}
        self.counts: dict[str, int] = {}
        self.params = {id(p): (n, p) for n, p in model.named_parameters()}
        self.labels = {m: n for n, m in model.named_modules()}

    def val(self, t: torch.Tensor) -> _Val:
        v = self.info.get(id(t))
        if v is None:
            pid = self.params.get(id(t))
            v = _Val(tuple(t.shape), True, [pid[1]] if pid else [], id(t), pid[0] if pid else "")
            self.keep.append(t)
            self.info[id(t)] = v
        return v

    def convert(self, value):
        if isinstance(value, torch.Tensor):
            return self.val(value)
        if isinstance(value, (tuple, list)):
            return (
                type(value)(self.convert(v) for v in value)
                if not hasattr(value, "_fields")
                else tuple(self.convert(v) for v in value)
            )
        if isinstance(value, dict):
            return {k: self.convert(v) for k, v in value.items()}
        return value

    def mark_output(self, out, active: bool, inputs: list) -> None:
        params = [] if active else [p for v in inputs for p in v.params]
        for t in _flat_tensors(out):
            self.keep.append(t)
            self.info[id(t)] = _Val(tuple(t.shape), not active, params, id(t))

    def label(self, base: str) -> str:
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth or not self.functions:
            return out
        tensors = _flat_tensors(out)
        if not tensors:
            return out
        name = getattr(func, "__name__", "")
        method = self.b.tables.tensor_method(func)
        if method is None:
            method = name if getattr(torch.Tensor, name, None) is func or name.startswith("__") else None
        name = method or name
        cargs, ckwargs = self.convert(args), self.convert(kwargs)
        inputs = _vals(cargs) + _vals(ckwargs)
        shape = tuple(tensors[0].shape)
        active = self.b.call(self.label(name.strip("_") or "op"), func, method, cargs, ckwargs, shape)
        self.mark_output(out, active, inputs)
        return out

    # ---- module hooks --------------------------------------------------------------------------------------
    def pre(self, m, args, kwargs):
        if self.depth == 0 and self.b.tables.leaf(m) is not None:
            self.call_args = (self.convert(args), self.convert(kwargs))
            self.depth = 1
        elif self.depth:
            self.depth += 1

    def post(self, m, args, kwargs, out):
        if not self.depth:
            return
        self.depth -= 1
        if self.depth:
            return
        cargs, ckwargs = self.call_args
        tensors = _flat_tensors(out)
        shape = tuple(tensors[0].shape) if tensors else ()
        self.b.module(self.labels.get(m) or type(m).__name__, m, cargs, ckwargs, shape)
        self.mark_output(out, True, [])


def _trace_eager(
    model: nn.Module, example: torch.Tensor, name: str, *, functions: bool = True
) -> tuple[Workload, _Ledger]:
    """Run the model once on ``example``, recording leaf modules by forward hooks and (``functions``)
    torch function calls by a ``TorchFunctionMode``: the ops and where the model's parameters went
    (``_finish`` checks them). A forward that fails raises ``_ForwardFailed``."""
    b = _Builder(model)
    rec = _Recorder(model, b, functions)
    x = rec.val(example)
    x.const = False
    b.input_keys.add(x.key)
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(rec.pre, with_kwargs=True))
        handles.append(m.register_forward_hook(rec.post, with_kwargs=True))
    held_by_hooks: list = []
    if not functions:  # hooks only: a module holding its own parameters is one op, unmapped
        for label, m in model.named_modules():
            own = list(m.parameters(recurse=False))
            if own and _Tables.get().leaf(m) is None:
                held_by_hooks.append((label or type(m).__name__, m, own))
    try:
        with torch.no_grad():
            if functions:
                with rec:
                    model(example)
            else:
                model(example)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's forward is reported as one error
        raise _ForwardFailed(exc) from None
    finally:
        for h in handles:
            h.remove()
    for label, m, own in held_by_hooks:
        b.unmap(label, type(m).__name__, own)
    return Workload(name, tuple(example.shape), b.ops), b.ledger
