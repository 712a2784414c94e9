"""PyTorch model -> Workload, by torch.fx shape propagation (or forward hooks as a fallback)."""

from __future__ import annotations

import math
import operator
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx import symbolic_trace
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import InputError
from .core import Op, Workload

_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
         nn.AdaptiveMaxPool2d)
_ACT = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
_SKIP = (nn.Flatten, nn.Dropout, nn.Identity, nn.Unflatten)
_ACT_FN = {F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, torch.sigmoid, torch.tanh, torch.relu}
_ELTWISE_FN = {operator.add, operator.mul, torch.add, torch.mul, operator.iadd}
_MATMUL_FN = {torch.matmul, torch.bmm, operator.matmul}


def _shape(node) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else ()


def _conv_op(name: str, m: nn.Conv1d | nn.Conv2d, in_shape, out_shape) -> Op:
    k = tuple(m.kernel_size) if len(m.kernel_size) == 2 else (1, m.kernel_size[0])
    s = tuple(m.stride) if len(m.stride) == 2 else (1, m.stride[0])
    in_f = m.in_channels // m.groups * k[0] * k[1]
    out_f = m.out_channels // m.groups
    vectors = math.prod(out_shape[2:])
    return Op(name, "conv", in_f, out_f, m.groups, k, s, tuple(in_shape[1:]), tuple(out_shape[1:]), vectors,
              vectors * in_f * out_f * m.groups)


def _linear_op(name: str, in_f: int, out_f: int, in_shape, out_shape) -> Op:
    vectors = math.prod(in_shape[1:-1]) if len(in_shape) > 2 else 1
    return Op(name, "linear", in_f, out_f, 1, (1, 1), (1, 1), tuple(in_shape[1:]), tuple(out_shape[1:]), vectors,
              vectors * in_f * out_f)


def _digital(name: str, kind: str, in_shape, out_shape) -> Op:
    return Op(name, kind, in_shape=tuple(in_shape[1:]), out_shape=tuple(out_shape[1:]),
              elements=math.prod(out_shape[1:]) if len(out_shape) > 1 else 1)


def trace_torch(model: nn.Module, input_shape: tuple[int, ...], name: str) -> Workload:
    if not isinstance(model, nn.Module):
        raise InputError(f"from_torch expects a torch.nn.Module, got {type(model).__name__}")
    if not input_shape or any((not isinstance(d, int)) or d <= 0 for d in input_shape):
        raise InputError(f"input_shape must be positive integers including the batch dim, got {input_shape}")
    if input_shape[0] != 1:
        input_shape = (1, *input_shape[1:])  # costs are per inference
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    example = torch.zeros(input_shape, device=device)
    try:
        gm = symbolic_trace(model)
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
    except Exception as exc:  # noqa: BLE001 - untraceable (data-dependent control flow): fall back to hooks
        warnings.warn(f"torch.fx could not trace {name} ({type(exc).__name__}: {exc}); using forward hooks on one "
                      "all-zero example input instead: they see modules only (dynamic matmuls are missed), and only "
                      "the branches that input takes", stacklevel=3)
        return _trace_hooks(model, example, name)
    modules = dict(gm.named_modules())
    ops: list[Op] = []
    for node in gm.graph.nodes:
        out_shape = _shape(node)
        args = [a for a in node.args if isinstance(a, torch.fx.Node)]
        in_shape = _shape(args[0]) if args else ()
        if node.op == "call_module":
            m = modules[node.target]
            label = str(node.target)
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                ops.append(_conv_op(label, m, in_shape, out_shape))
            elif isinstance(m, nn.Linear):
                ops.append(_linear_op(label, m.in_features, m.out_features, in_shape, out_shape))
            elif isinstance(m, _POOL):
                ops.append(_digital(label, "pool", in_shape, out_shape))
            elif isinstance(m, _ACT):
                ops.append(_digital(label, "act", in_shape, out_shape))
            elif isinstance(m, _NORM):
                ops.append(_digital(label, "norm", in_shape, out_shape))
            elif isinstance(m, nn.Softmax):
                ops.append(_digital(label, "softmax", in_shape, out_shape))
            elif not isinstance(m, _SKIP) and any(True for _ in m.parameters(recurse=False)):
                raise InputError(f"{name}: cannot map layer '{label}' ({type(m).__name__}) with input shape "
                                 f"{in_shape}: cimkit's cost model maps Linear, Conv1d and Conv2d layers")
        elif node.op == "call_function":
            fn = node.target
            label = node.name
            if fn in _MATMUL_FN and len(args) == 2:
                a, b = _shape(args[0]), _shape(args[1])
                if len(a) >= 2 and len(b) >= 2:
                    m_, k_, n_ = a[-2], a[-1], b[-1]
                    batch = math.prod(out_shape[:-2]) if len(out_shape) > 2 else 1
                    ops.append(Op(label, "matmul", k_, n_, 1, in_shape=a[1:], out_shape=out_shape[1:],
                                  vectors=batch * m_, macs=batch * m_ * k_ * n_))
            elif fn in _ACT_FN:
                ops.append(_digital(label, "act", in_shape, out_shape))
            elif fn in _ELTWISE_FN and len(args) == 2:
                ops.append(_digital(label, "eltwise", in_shape, out_shape))
            elif fn in (F.softmax, torch.softmax):
                ops.append(_digital(label, "softmax", in_shape, out_shape))
            elif fn in (F.adaptive_avg_pool2d, F.max_pool2d, F.avg_pool2d):
                ops.append(_digital(label, "pool", in_shape, out_shape))
    return Workload(name, tuple(input_shape), ops)


def _trace_hooks(model: nn.Module, example: torch.Tensor, name: str) -> Workload:
    ops: list[Op] = []
    handles = []
    for label, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear) + _POOL):
            def hook(mod, inp, out, label=label):
                i, o = tuple(inp[0].shape), tuple(out.shape)
                if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
                    ops.append(_conv_op(label, mod, i, o))
                elif isinstance(mod, nn.Linear):
                    ops.append(_linear_op(label, mod.in_features, mod.out_features, i, o))
                else:
                    ops.append(_digital(label, "pool", i, o))
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return Workload(name, tuple(example.shape), ops)
