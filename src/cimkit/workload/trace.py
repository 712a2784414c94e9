"""PyTorch model -> Workload, by torch.fx shape propagation (or forward hooks as a fallback).

Both paths account for every parameter of the model (see ``Workload.weight_counts``): a parameter is
on a mapped layer (Linear, Conv1d, Conv2d, or ``F.linear`` / ``F.conv1d`` / ``F.conv2d`` / a matmul
with a parameter operand), used by a digital op (a bias, a normalization's scale), held by a layer the
cost model cannot map (LSTM, Conv3d, ConvTranspose, Embedding, ...: refused, or kept as an "unmapped"
op with ``unmapped="warn"``), or used by no op (warned about). Nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import operator

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx import symbolic_trace
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import InputError, short_repr
from .core import MAX_CSV_DIM, Op, Workload, check_op_sizes, resolve_unmapped, unmapped_op, warn_caller, warn_unused

_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
         nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
         nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d)
_ACT = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU,
        nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus, nn.Softsign, nn.Hardtanh, nn.LogSigmoid,
        nn.Tanhshrink, nn.Threshold, nn.GLU, nn.Hardshrink, nn.Softshrink)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d,
         nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LocalResponseNorm) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())
_SOFTMAX = (nn.Softmax, nn.LogSoftmax, nn.Softmin)
_SKIP = (nn.Flatten, nn.Dropout, nn.Identity, nn.Unflatten)
_MAPPED = (nn.Conv1d, nn.Conv2d, nn.Linear)
_ACT_FN = {F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, torch.sigmoid, torch.tanh, torch.relu,
           F.leaky_relu, F.elu, F.mish, F.softplus, F.prelu}
_ELTWISE_FN = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul, torch.sub,
               torch.div, operator.iadd, operator.imul}
_MATMUL_FN = {torch.matmul, torch.bmm, torch.mm, operator.matmul}
_MATMUL_METHODS = {"matmul", "bmm", "mm", "__matmul__"}
_ACT_METHODS = {"relu", "sigmoid", "tanh"}
_SOFTMAX_FN = {F.softmax, torch.softmax, F.log_softmax}
_NORM_FN = {F.layer_norm, F.batch_norm, F.group_norm, F.instance_norm, torch.layer_norm, torch.batch_norm,
            torch.group_norm} | ({F.rms_norm} if hasattr(F, "rms_norm") else set())
_POOL_FN = {F.adaptive_avg_pool2d, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool1d, F.max_pool1d, F.avg_pool1d}
_CONV_FN = {F.conv1d: 1, F.conv2d: 2, torch.conv1d: 1, torch.conv2d: 2}
#: functions and methods that move or reshape data: a parameter they consume is data a digital unit
#: handles (a class token, a position embedding), not a weight matrix
_DATA_FN = {torch.cat, torch.stack, torch.flatten, torch.reshape, torch.transpose, torch.permute, torch.squeeze,
            torch.unsqueeze, operator.getitem, F.pad, torch.where, F.dropout}
_DATA_METHODS = {"view", "reshape", "permute", "transpose", "t", "flatten", "unsqueeze", "squeeze", "contiguous",
                 "expand", "expand_as", "repeat", "to", "type", "float", "half", "__getitem__", "add", "mul", "sub",
                 "div", "size", "dim", "chunk", "split", "unbind"}
#: mapped functions whose output is a layer: the argument positions of the weight and the bias
_WEIGHT_ARGS = {F.linear: (1, 2)} | {fn: (1, 2) for fn in _CONV_FN}


def _shape(node) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else ()


def _conv_op(name: str, weight_shape, groups: int, stride, in_shape, out_shape) -> Op:
    """A 1-D or 2-D convolution from its weight shape (C_out, C_in/groups, [kh,] kw)."""
    k = tuple(weight_shape[2:]) if len(weight_shape) == 4 else (1, weight_shape[2])
    stride = tuple(stride) if isinstance(stride, (tuple, list)) else (stride,)
    s = stride if len(stride) == 2 else (1, stride[0]) if len(weight_shape) == 3 else (stride[0], stride[0])
    in_f = weight_shape[1] * k[0] * k[1]
    out_f = weight_shape[0] // groups
    vectors = math.prod(out_shape[2:])
    return Op(name, "conv", in_f, out_f, groups, k, s, tuple(in_shape[1:]), tuple(out_shape[1:]), vectors,
              vectors * in_f * out_f * groups)


def _module_conv_op(name: str, m: nn.Conv1d | nn.Conv2d, in_shape, out_shape) -> Op:
    return _conv_op(name, tuple(m.weight.shape), m.groups, m.stride, in_shape, out_shape)


def _linear_op(name: str, in_f: int, out_f: int, in_shape, out_shape, vectors: int | None = None) -> Op:
    if vectors is None:
        vectors = math.prod(in_shape[1:-1]) if len(in_shape) > 2 else 1
    return Op(name, "linear", in_f, out_f, 1, (1, 1), (1, 1), tuple(in_shape[1:]), tuple(out_shape[1:]), vectors,
              vectors * in_f * out_f)


def _digital(name: str, kind: str, in_shape, out_shape) -> Op:
    return Op(name, kind, in_shape=tuple(in_shape[1:]), out_shape=tuple(out_shape[1:]),
              elements=math.prod(out_shape[1:]) if len(out_shape) > 1 else 1)


def _reason(exc: BaseException) -> str:
    """torch's own reason for a failure, one line, at most 300 characters."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0] if lines else '(no message)'}"
    return text if len(text) <= 300 else text[:280] + "..."


def _rejected(name: str, shape: tuple[int, ...], exc: BaseException, given: tuple) -> InputError:
    note = "" if tuple(given) == tuple(shape) else f" (input_shape {tuple(given)} with the batch dim set to 1)"
    return InputError(f"{name}: the model rejected an all-zero input of shape {tuple(shape)}{note}: {_reason(exc)}. "
                      "Give input_shape as the shape of one batch the model accepts, batch dim first (e.g. (1, 784) "
                      "for an MLP on MNIST, (1, 3, 32, 32) for a CIFAR CNN)")


def _check_input_shape(input_shape) -> tuple[int, ...]:
    try:
        dims = tuple(input_shape)
    except TypeError:
        raise InputError(f"input_shape must be a tuple of positive integers including the batch dim, got "
                         f"{short_repr(input_shape)}") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or not 1 <= d <= MAX_CSV_DIM
                       for d in dims):
        raise InputError(f"input_shape must be a tuple of integers from 1 to 2**20, batch dim first, got "
                         f"{short_repr(input_shape)}")
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


def trace_torch(model: nn.Module, input_shape, name: str, unmapped: str = "error") -> Workload:
    """The workload of ``model`` on one all-zero input of ``input_shape`` (batch dim set to 1)."""
    if not isinstance(model, nn.Module):
        raise InputError(f"from_torch expects a torch.nn.Module, got {type(model).__name__}")
    given = _check_input_shape(input_shape)
    _refuse_converted(model, name)
    shape = (1, *given[1:])  # costs are per inference
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    try:
        example = torch.zeros(shape, device=device)
    except (RuntimeError, MemoryError) as exc:
        raise InputError(f"{name}: cannot make an input of shape {shape} on {device}: {_reason(exc)}") from None
    try:
        gm = symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - untraceable (data-dependent control flow): fall back to hooks
        return _trace_hooks(model, example, name, unmapped, given, exc)
    try:
        # ShapeProp prints the traceback of a failing node to stderr before it raises: keep that quiet
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(example)
    except Exception as exc:  # noqa: BLE001 - ShapeProp wraps the error; the hooks run the model itself
        return _trace_hooks(model, example, name, unmapped, given, exc.__cause__ or exc)
    return _from_graph(model, gm, name, shape, unmapped)


def _refuse_converted(model: nn.Module, name: str) -> None:
    """A model made by ``cimkit.convert`` keeps its weights in buffers of crossbar layers, which no
    tracer sees: refuse it and ask for the float model it was converted from."""
    try:
        from ..sim.layers import CIMLayer
    except ImportError:  # pragma: no cover - the simulator is part of cimkit
        return
    for label, m in model.named_modules():
        if isinstance(m, CIMLayer):
            raise InputError(f"{name}: layer '{label or type(m).__name__}' ({type(m).__name__}) is a crossbar layer made "
                             "by cimkit.convert; trace the float model it was converted from (the converted copy "
                             "holds its weights in buffers that the cost model cannot read)")


def _warn_fallback(name: str, exc: BaseException) -> None:
    warn_caller(f"torch.fx could not trace {name} ({_reason(exc)}); using forward hooks on one all-zero example "
                "input instead: they see modules only (functional ops and dynamic matmuls are missed), and only the "
                "branches that input takes")


def _nodes_in(value) -> list:
    """The fx nodes in an argument (nested tuples, lists and dicts included)."""
    if isinstance(value, torch.fx.Node):
        return [value]
    if isinstance(value, (tuple, list)):
        return [n for v in value for n in _nodes_in(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _nodes_in(v)]
    return []


def _arg(node, index: int, key: str, default=None):
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(key, default)


def _from_graph(model: nn.Module, gm, name: str, shape: tuple[int, ...], policy: str) -> Workload:
    modules = dict(gm.named_modules())
    ledger = _Ledger(model)
    # constant (parameter- or buffer-derived) nodes -> the parameters they come from
    const: dict[torch.fx.Node, list] = {}
    ops: list[Op] = []

    def label_of(node, weight_node) -> str:
        """The name of a weight's owner ('proj' for 'proj.weight', 'w' for a parameter 'w'), else the node's."""
        if isinstance(weight_node, torch.fx.Node) and weight_node.op == "get_attr":
            target = str(weight_node.target)
            if target.endswith(".weight"):
                return target[: -len(".weight")]
            if target != "weight":
                return target
        return node.name

    def unmap(label: str, source_type: str, params: list) -> None:
        unique = {id(p): p for p in params}
        ledger.mark(unique.values(), "unmapped")
        ops.append(unmapped_op(label, source_type, sum(p.numel() for p in unique.values())))

    def sources(nodes) -> list:
        return [p for n in nodes for p in const.get(n, [])]

    for node in gm.graph.nodes:
        out_shape = _shape(node)
        inputs = _nodes_in(node.args) + _nodes_in(node.kwargs)
        first = inputs[0] if inputs else None
        in_shape = _shape(first) if first is not None else ()
        if node.op == "get_attr":
            obj = gm
            for part in str(node.target).split("."):
                obj = getattr(obj, part, None)
            const[node] = [obj] if isinstance(obj, nn.Parameter) else []
            continue
        if node.op == "call_module":
            m = modules[node.target]
            label = str(node.target)
            if isinstance(m, _MAPPED):
                ledger.mark([m.weight], "mapped")
                ledger.mark([getattr(m, "bias", None)], "digital")
                ops.append(_module_conv_op(label, m, in_shape, out_shape) if isinstance(m, (nn.Conv1d, nn.Conv2d))
                           else _linear_op(label, m.in_features, m.out_features, in_shape, out_shape))
            elif isinstance(m, _POOL + _ACT + _NORM + _SOFTMAX):
                ledger.mark(m.parameters(), "digital")
                kind = ("pool" if isinstance(m, _POOL) else "act" if isinstance(m, _ACT) else "norm"
                        if isinstance(m, _NORM) else "softmax")
                ops.append(_digital(label, kind, in_shape, out_shape))
            elif any(True for _ in m.parameters()):
                unmap(label, type(m).__name__, list(m.parameters()))
            ledger.mark(sources(inputs), "digital")
            continue
        if node.op not in ("call_function", "call_method"):
            continue
        fn = node.target
        method = fn if node.op == "call_method" else None
        if inputs and all(n in const for n in inputs):  # computed from parameters and buffers only: a constant
            const[node] = sources(inputs)
            continue
        label = node.name
        if fn in _WEIGHT_ARGS:
            w_node, b_node = _arg(node, 1, "weight"), _arg(node, 2, "bias")
            w_shape = _shape(w_node)
            if w_node in const:
                ledger.mark(const[w_node], "mapped")
                ledger.mark(const.get(b_node, []), "digital")
                lbl = label_of(node, w_node)
                if fn is F.linear:  # weight (out, in), or (in,) for one output
                    out_f = w_shape[0] if len(w_shape) == 2 else 1
                    ops.append(_linear_op(lbl, w_shape[-1], out_f, in_shape, out_shape, math.prod(in_shape[:-1])))
                else:
                    ops.append(_conv_op(lbl, w_shape, int(_arg(node, 6, "groups", 1)), _arg(node, 3, "stride", 1),
                                        in_shape, out_shape))
            elif fn is F.linear and len(w_shape) == 2:  # a weight computed at run time: a dynamic product
                ledger.mark(const.get(b_node, []), "digital")
                vectors = math.prod(in_shape[1:-1]) if len(in_shape) > 2 else 1
                ops.append(Op(label, "matmul", w_shape[1], w_shape[0], 1, in_shape=in_shape[1:],
                              out_shape=out_shape[1:], vectors=vectors, macs=vectors * w_shape[1] * w_shape[0]))
            else:
                unmap(label, f"{getattr(fn, '__name__', fn)} with a weight computed at run time", sources(inputs))
            continue
        if (fn in _MATMUL_FN or method in _MATMUL_METHODS) and len(inputs) == 2:
            a, b = inputs
            sa, sb = _shape(a), _shape(b)
            if b in const or a in const:
                wnode, xs, ws = (b, sa, sb) if b in const else (a, sb, sa)
                if len(ws) in (1, 2):
                    ledger.mark(const[wnode], "mapped")
                    if wnode is b:  # x @ W, W (k, n) or (k,): one vector per row of x
                        k, n = ws[0], ws[1] if len(ws) == 2 else 1
                        vectors = math.prod(xs[:-1])
                    else:  # W @ x, W (n, k) or (k,): one vector per column of x
                        k, n = ws[-1], ws[0] if len(ws) == 2 else 1
                        vectors = math.prod(xs[:-2]) * xs[-1] if len(xs) >= 2 else 1
                    ops.append(_linear_op(label_of(node, wnode), k, n, xs, out_shape, vectors))
                else:
                    unmap(label_of(node, wnode), f"matmul with a {len(ws)}-D parameter", const[wnode])
            elif len(sa) >= 2 and len(sb) >= 2:
                m_, k_, n_ = sa[-2], sa[-1], sb[-1]
                batch = math.prod(out_shape[:-2]) if len(out_shape) > 2 else 1
                ops.append(Op(label, "matmul", k_, n_, 1, in_shape=sa[1:], out_shape=out_shape[1:],
                              vectors=batch * m_, macs=batch * m_ * k_ * n_))
            continue
        held = sources(inputs)
        if fn in _ACT_FN or method in _ACT_METHODS:
            ops.append(_digital(label, "act", in_shape, out_shape))
        elif fn in _ELTWISE_FN and len(inputs) == 2:
            ops.append(_digital(label, "eltwise", in_shape, out_shape))
        elif fn in _SOFTMAX_FN or method == "softmax":
            ops.append(_digital(label, "softmax", in_shape, out_shape))
        elif fn in _POOL_FN:
            ops.append(_digital(label, "pool", in_shape, out_shape))
        elif fn in _NORM_FN:
            ops.append(_digital(label, "norm", in_shape, out_shape))
        elif held and not (fn in _DATA_FN or fn in _ELTWISE_FN or method in _DATA_METHODS) and \
                any(p.dim() >= 2 for p in held):
            unmap(label_of(node, next(n for n in inputs if n in const)), getattr(fn, "__name__", str(fn)), held)
            continue
        ledger.mark(held, "digital")
    return _finish(Workload(name, tuple(shape), ops), ledger, policy)


def _finish(wl: Workload, ledger: _Ledger, policy: str) -> Workload:
    if not wl.ops:
        raise InputError(f"{wl.name}: no operation to cost: the model has no Linear, convolution, matmul, activation, "
                         "pooling, normalization, softmax or element-wise op on its input")
    for op in wl.ops:
        check_op_sizes(op, wl.name)
    wl.weight_counts = ledger.counts()
    resolve_unmapped(wl.name, wl.unmapped_ops, policy, wl.weight_counts)
    warn_unused(wl.name, ledger.unused())
    return wl


def _trace_hooks(model: nn.Module, example: torch.Tensor, name: str, policy: str, given: tuple,
                 why: BaseException) -> Workload:
    """Forward hooks on every module that maps, runs on a digital unit or holds its own parameters
    (used when torch.fx failed for the reason ``why``). A forward that fails is an ``InputError``; one
    that runs gets a warning that the hooks see less than torch.fx."""
    calls: list[tuple[str, nn.Module, tuple, tuple]] = []
    handles = []
    known = _MAPPED + _POOL + _ACT + _NORM + _SOFTMAX
    for label, m in model.named_modules():
        if isinstance(m, known) or any(True for _ in m.parameters(recurse=False)):
            def hook(mod, inp, out, label=label):
                i = tuple(inp[0].shape) if inp and isinstance(inp[0], torch.Tensor) else ()
                o = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
                calls.append((label or type(mod).__name__, mod, i, o))
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's forward is reported as one error
        raise _rejected(name, tuple(example.shape), exc, given) from None
    finally:
        for h in handles:
            h.remove()
    _warn_fallback(name, why)
    ledger = _Ledger(model)
    ops: list[Op] = []
    claimed: set[int] = set()
    # an unmapped module holds the parameters of its sub-modules that no mapped or digital one claimed
    depth_first = sorted(calls, key=lambda c: -c[0].count("."))
    unmapped_held: dict[str, list] = {}
    for label, mod, _, _ in depth_first:
        if isinstance(mod, known):
            claimed.update(id(p) for p in mod.parameters())
    for label, mod, _, _ in depth_first:
        if not isinstance(mod, known) and label not in unmapped_held:
            held = [p for p in mod.parameters() if id(p) not in claimed]
            claimed.update(id(p) for p in held)
            unmapped_held[label] = held
    for label, mod, i, o in calls:
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            ledger.mark([mod.weight], "mapped")
            ledger.mark([mod.bias], "digital")
            ops.append(_module_conv_op(label, mod, i, o))
        elif isinstance(mod, nn.Linear):
            ledger.mark([mod.weight], "mapped")
            ledger.mark([mod.bias], "digital")
            ops.append(_linear_op(label, mod.in_features, mod.out_features, i, o))
        elif isinstance(mod, known):
            ledger.mark(mod.parameters(), "digital")
            kind = ("pool" if isinstance(mod, _POOL) else "act" if isinstance(mod, _ACT) else "norm"
                    if isinstance(mod, _NORM) else "softmax")
            ops.append(_digital(label, kind, i, o))
        else:
            held = unmapped_held.pop(label, None)
            if not held:
                continue  # a second call of the same module (listed once), or its parameters are all claimed
            ledger.mark(held, "unmapped")
            ops.append(unmapped_op(label, type(mod).__name__, sum(p.numel() for p in held)))
    return _finish(Workload(name, tuple(example.shape), ops), ledger, policy)
