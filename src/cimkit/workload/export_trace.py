"""PyTorch model -> Workload through ``torch.export``: the exported graph's ATen ops, dispatched through the
op registry like the other torch frontends (``trace._Builder``: one shape rule per op kind, in one place).

``torch.export`` (non-strict) runs the model's Python code on fake tensors of the example input's shape
and records every ATen op, so it traces what plain torch.fx cannot (Hugging Face models: data-dependent
Python on shapes, ``setitem`` on tensors, model-output classes) and sees calls that a ``TorchFunctionMode``
does not (C++ paths). Shapes and Python branches are those of the example (one graph per sequence length).

How the ATen ops map (each to the torch function or module whose registry rule prices it):

* a module that a rule names, or a torch.nn module with no children (Linear, Conv1d/2d, LayerNorm, GELU,
  Embedding, LSTM, Dropout, ...), is one call as in fx and eager, found by the ``nn_module_stack`` of its
  ATen ops and named by its module path; nn.MultiheadAttention and nn.TransformerEncoderLayer are walked
  into (their ATen ops are the projections, products and softmax that run; the fused fast-path ops
  ``_native_multi_head_attention`` / ``_transformer_encoder_layer_fwd`` are expanded by the module's rule);
* ``aten.linear`` / ``addmm`` / ``mm`` / ``matmul`` with a parameter operand is a linear op (GPT-2's
  ``Conv1D`` is ``addmm(bias, x, W)``); ``matmul`` / ``bmm`` between two activations a dynamic matmul;
* ``aten.scaled_dot_product_attention`` and its fused CPU / flash / efficient variants: Q K^T, softmax, A V;
* ``aten.embedding`` a lookup; ``layer_norm`` / ``rms_norm`` / ``group_norm`` / ``batch_norm`` norms;
  ``gelu`` / ``silu`` / ... activations; element-wise arithmetic with a constant operand is folded;
* view, reshape, transpose, slice, cat, dropout, dtype casts, ... move data and are not ops; any other ATen
  op on an activation is kept as "unmapped" with its shapes (its source type the op's name, ``cumsum``; a
  custom op's with its namespace, ``mylib.op``).

Functional ops are named ``<module path>.<op>`` (``encoder.layer.0.attention.output.add``); a product with
a parameter by the parameter's owner (``encoder.layer.0.attention.self.query``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import operator
import re
import sysconfig
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from . import registry
from .core import Workload, unmapped_op
from .trace import _Builder, _flat_tensors, _reason, _resolve, _Tables, _Val, _vals

#: the attribute of the wrapper (``_Flat``) holding the model: stripped from module paths
_INNER = "inner"

#: ATen ops that only move data, beyond the registry's DATA_FUNCTIONS / DATA_METHODS names
_DATA = frozenset(
    {
        "slice",
        "alias",
        "_to_copy",
        "lift_fresh_copy",
        "lift_fresh",
        "_unsafe_view",
        "_reshape_alias",
        "index",
        "_unsafe_index",
        "index_put",
        "index_put_",
        "scatter",
        "slice_scatter",
        "select_scatter",
        "diagonal",
        "copy",
        "fill",
        "_assert_tensor_metadata",
        "_assert_scalar",
        "_assert_async",
        "sym_size",
        "sym_numel",
        "sym_stride",
        "sym_constrain_range_for_size",
        "sym_constrain_range",
        "scalar_tensor",
        "empty_strided",
        "new_empty_strided",
        "split_with_sizes",
        "unsafe_split",
        "native_dropout",
        "feature_dropout",
        "dropout",
        "constant_pad_nd",
        "reflection_pad1d",
        "reflection_pad2d",
        "reflection_pad3d",
        "replication_pad1d",
        "replication_pad2d",
        "replication_pad3d",
        "pixel_shuffle",
        "pixel_unshuffle",
        "channel_shuffle",
        "im2col",
        "tril",
        "triu",
        "resolve_conj",
        "resolve_neg",
        "_local_scalar_dense",
        "expand_copy",
        "view_copy",
        "permute_copy",
        "t_copy",
        "transpose_copy",
        "unsqueeze_copy",
        "squeeze_copy",
        "alias_copy",
        "linspace",
        "full_like",
        "zeros_like",
        "ones_like",
        "empty_like",
        "masked_fill",
        "masked_fill_",
        "unflatten",
        "clone",
        "detach_",
        "view_as_real",
    }
)

#: ATen ops whose registry rule is that of a torch function of another name (the arguments the rule reads
#: are in the same places)
_RENAMED = {
    "_softmax": "torch.softmax",
    "_safe_softmax": "torch.softmax",
    "_log_softmax": "torch.log_softmax",
    "native_layer_norm": "torch.layer_norm",
    "_fused_rms_norm": "torch.rms_norm",
    "native_batch_norm": "torch.batch_norm",
    "_native_batch_norm_legit_no_training": "torch.batch_norm",
    "_native_batch_norm_legit": "torch.batch_norm",
    "log_sigmoid": "torch.nn.functional.logsigmoid",
    "log_sigmoid_forward": "torch.nn.functional.logsigmoid",
    "clamp_min": "torch.clamp",
    "clamp_max": "torch.clamp",
    "special_erf": "torch.erf",
    "_prelu_kernel": "torch.nn.functional.prelu",
    "true_divide": "torch.div",
    "subtract": "torch.sub",
    "multiply": "torch.mul",
    "max_pool1d_with_indices": "torch.nn.functional.max_pool1d",
    "max_pool2d_with_indices": "torch.nn.functional.max_pool2d",
    "max_pool3d_with_indices": "torch.nn.functional.max_pool3d",
    "_adaptive_avg_pool2d": "torch.nn.functional.adaptive_avg_pool2d",
    "_adaptive_avg_pool3d": "torch.nn.functional.adaptive_avg_pool3d",
    **{
        f"{p}upsample_{mode}": "torch.nn.functional.interpolate"
        for p in ("", "_")
        for mode in (
            "nearest1d",
            "nearest2d",
            "nearest3d",
            "nearest_exact1d",
            "nearest_exact2d",
            "nearest_exact3d",
            "linear1d",
            "bilinear2d",
            "bicubic2d",
            "trilinear3d",
            "bilinear2d_aa",
            "bicubic2d_aa",
        )
    },
}

#: scaled dot-product attention and its fused backends (query, key, value first): Q K^T, softmax, A V
_SDPA = frozenset(
    {
        "scaled_dot_product_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_attention_math",
        "_scaled_dot_product_attention_math_for_mps",
        "_scaled_dot_product_fused_attention_overrideable",
        "_scaled_dot_product_flash_attention_for_mps",
    }
)

_HIGHER_ORDER = getattr(torch._ops, "HigherOrderOperator", ())

#: fused fast paths of torch.nn modules: expanded by the module's own rule (``registry``'s attention rules)
_FUSED_MODULE_OPS = frozenset({"_native_multi_head_attention", "_transformer_encoder_layer_fwd"})


class ExportFailure(Exception):
    """torch.export could not trace the model: ``reason`` is torch's, first line, with the line of the model's
    code where it happened when known."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Flat(nn.Module):
    """The model with its outputs flattened to a list of tensors (Hugging Face model outputs and caches are
    classes torch.export cannot return)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        setattr(self, _INNER, model)

    def forward(self, x):
        return _flat_tensors(getattr(self, _INNER)(x))


@contextlib.contextmanager
def _quiet():
    """torch.export prints a partial graph to stderr and logs through torch's loggers when it fails, and
    warns about deprecations on the way: keep all of it quiet (the failure is reported as one line)."""
    loggers = [
        lg
        for n, lg in list(logging.root.manager.loggerDict.items())
        if isinstance(lg, logging.Logger) and (n == "torch" or n.startswith("torch."))
    ]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stderr(io.StringIO()),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, was in zip(loggers, before):
            lg.disabled = was


def _not_user_code() -> tuple[str, ...]:
    paths = {sysconfig.get_paths().get(k, "") for k in ("stdlib", "platstdlib")}
    paths |= {str(Path(torch.__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)}
    return tuple(p for p in paths if p)


def _where(exc: BaseException) -> str:
    """' (at file.py:12: `code`)': the innermost frame of the failure in the model's code (not torch's, not
    cimkit's, not the standard library's), or ''."""
    skip = _not_user_code()
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not str(Path(f.filename).resolve()).startswith(skip) and not f.filename.startswith("<")
    ]
    if not frames:
        return ""
    f = frames[-1]
    code = f" `{f.line.strip()[:80]}`" if f.line else ""
    return f" (at {Path(f.filename).name}:{f.lineno}{':' + code if code else ''})"


def export_program(model: nn.Module, example: torch.Tensor):
    """``(wrapper, ExportedProgram)`` of ``model`` on ``example`` (non-strict); an ``ExportFailure`` with
    torch's reason when it cannot be traced."""
    wrapper = _Flat(model)
    try:
        with _quiet():
            return wrapper, torch.export.export(wrapper, (example,), strict=False)
    except Exception as exc:  # noqa: BLE001 - any failure of torch.export is reported as one reason
        raise ExportFailure(f"{_short(exc)}{_where(exc)}") from None


def _short(exc: BaseException) -> str:
    """torch's reason, first line, without the symbolic-shape diagnostics; a guard on a value the input
    decides is called what it is."""
    text = re.sub(r"\s*\((unhinted|Size-like symbols):[^()]*(\([^()]*\)[^()]*)*\)", "", _reason(exc)).rstrip(" .")
    if "DataDependent" in type(exc).__name__ or "data-dependent" in text:
        text = f"data-dependent control flow or size: {text}"
    return text


def trace_export(model: nn.Module, example: torch.Tensor, name: str):
    """The ops of ``model`` on ``example`` through torch.export (see the module docstring), and where the
    model's parameters went: ``(Workload, trace._Ledger)``, checked by ``trace._finish``."""
    wrapper, ep = export_program(model, example)
    walker = _Walker(model, wrapper, ep)
    try:
        walker.walk(ep.graph_module, {})
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a construct this reader does not know: the next tracer, or one error
        node = walker.current
        at = f" at {node.name} = {node.target}" if node is not None else ""
        raise ExportFailure(f"cimkit cannot read the exported graph{at}: {_reason(exc)}") from None
    return Workload(name, tuple(example.shape), walker.b.ops), walker.b.ledger


def _tensor_vals(value, make) -> object:
    """``make(shape)`` for each tensor of a node's ``meta['val']`` (a list for a tuple of outputs), else None."""
    if isinstance(value, torch.Tensor):
        return make(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        return [_tensor_vals(v, make) for v in value]
    return None


def _live(graph) -> set:
    """The nodes the graph's output depends on (an op whose result nothing uses is not listed, as in fx and
    eager, where e.g. nn.MultiheadAttention's rule lists no averaged attention weights)."""
    live: set = set()
    todo = [n for n in graph.nodes if n.op == "output"]
    while todo:
        n = todo.pop()
        if n not in live:
            live.add(n)
            todo.extend(n.all_input_nodes)
    return live


def _strip(path: str) -> str | None:
    """A module path of the wrapped model ('inner.encoder.layer.0' -> 'encoder.layer.0', 'inner' -> ''); None
    for the wrapper itself."""
    if path == _INNER:
        return ""
    if path.startswith(_INNER + "."):
        return path[len(_INNER) + 1 :]
    return None


class _Walker:
    """Walks an exported graph (and the subgraphs of wrapper higher-order ops), building ops through
    ``trace._Builder``."""

    def __init__(self, model: nn.Module, wrapper: nn.Module, ep) -> None:
        self.model, self.wrapper, self.ep = model, wrapper, ep
        self.b = _Builder(model)
        self.tables = _Tables.get()
        self.modules: dict[str, nn.Module | None] = {}
        self.used: dict[str, int] = {}  # op names taken, by base name
        self.pending: list[str] = []  # the names the op being dispatched asked for
        self.tensors: dict = {}  # placeholder node -> its parameter, buffer or constant tensor
        self.groups: dict[str, list] = {}  # a leaf module call's stack key -> its nodes
        self.resolved: dict[str, tuple[Any, str | None]] = {}
        self.current = None  # the node being read (named in an error)

    # ---- names and modules ----------------------------------------------------------------------------
    def module(self, path: str) -> nn.Module | None:
        if path not in self.modules:
            try:
                self.modules[path] = self.model.get_submodule(path) if path else self.model
            except (AttributeError, TypeError):
                self.modules[path] = None
        return self.modules[path]

    def stack(self, node) -> list[tuple[str, str]]:
        """(key, module path) from the outermost module to the innermost, the wrapper left out."""
        out = []
        for key, value in (node.meta.get("nn_module_stack") or {}).items():
            path = _strip(str(value[0]) if isinstance(value, (tuple, list)) and value else "")
            if path is not None:
                out.append((str(key), path))
        return out

    def leaf(self, node) -> tuple[str, str, nn.Module] | None:
        """(stack key, path, module) of the outermost module of ``node`` that fx and eager treat as one call
        (a rule names it, or a torch.nn module without children); attention modules are walked into."""
        for key, path in self.stack(node):
            m = self.module(path)
            if m is None or not path:  # the model itself (a bare layer is traced by the eager recorder)
                continue
            kind = self.tables.leaf(m)
            if kind is None:
                continue
            rule = self.tables.module_rule(m) if kind == "rule" else None
            if rule is not None and rule.handler == "attention":
                continue
            return key, path, m
        return None

    def label(self, node, fn: str) -> str:
        """'<innermost module path>.<fn>', numbered from its second op ('..._1'; a name is taken only when
        the call lists an op, see ``call``)."""
        stack = self.stack(node)
        path = stack[-1][1] if stack else ""
        base = f"{path}.{fn}" if path else fn
        self.pending.append(base)
        n = self.used.get(base, 0)
        return base if n == 0 else f"{base}_{n}"

    # ---- the walk -------------------------------------------------------------------------------------
    def walk(self, gm, env: dict):
        """Walk ``gm``'s graph with ``env`` (placeholder node -> value, for subgraphs); returns its output."""
        sig = self.ep.graph_signature if gm is self.ep.graph_module else None
        vals = dict(env)
        live = _live(gm.graph)
        # ops whose result nothing uses are not listed (nn.MultiheadAttention's averaged attention weights when
        # only its output is used), as in fx and eager, whose attention rules do not list them
        nodes = [n for n in gm.graph.nodes if n.op != "call_function" or n in live]
        last_of: dict[str, object] = {}
        keys: dict = {}
        for node in nodes:  # leaf module calls: each processed at its last node
            if node.op == "call_function":
                found = self.leaf(node)
                if found is not None:
                    keys[node] = found
                    last_of[found[0]] = node
        out = None
        for node in nodes:
            self.current = node
            if node.op == "placeholder":
                if node not in vals:
                    vals[node] = self.placeholder(node, sig)
            elif node.op == "get_attr":
                obj = gm
                for part in str(node.target).split("."):
                    obj = getattr(obj, part, None)
                vals[node] = (
                    obj
                    if isinstance(obj, torch.fx.GraphModule)
                    else _Val(tuple(obj.shape), True)
                    if isinstance(obj, torch.Tensor)
                    else None
                )
            elif node.op == "call_function":
                if node in keys:
                    self.grouped(node, keys[node], vals, last_of[keys[node][0]] is node)
                else:
                    vals[node] = self.call(node, vals)
            elif node.op == "output":
                out = self.convert(node.args[0] if node.args else None, vals)
        return out

    def placeholder(self, node, sig):
        shape_of = node.meta.get("val")
        if sig is None:
            return _tensor_vals(shape_of, lambda s: _Val(s, True, key=node))
        name = node.name
        if name in sig.inputs_to_parameters:
            fqn = sig.inputs_to_parameters[name]
            p = self.wrapper.get_parameter(fqn)
            self.tensors[node] = p
            pname = self.b.param_names.get(id(p), _strip(fqn) or fqn)
            if pname.endswith("_weight"):  # 'mha.in_proj_weight': ops are named by its owner, 'mha.in_proj'
                pname = pname[: -len("_weight")] + ".weight"
            return _Val(tuple(p.shape), True, [p], node, pname)
        if name in sig.inputs_to_buffers or name in sig.inputs_to_lifted_tensor_constants:
            fqn = sig.inputs_to_buffers.get(name) or sig.inputs_to_lifted_tensor_constants.get(name)
            with contextlib.suppress(AttributeError, KeyError, TypeError):
                t = self.ep.constants.get(fqn) if fqn in self.ep.constants else self.wrapper.get_buffer(fqn)
                self.tensors[node] = t
            return _tensor_vals(shape_of, lambda s: _Val(s, True, key=node))
        val = _tensor_vals(shape_of, lambda s: _Val(s, False, key=node))
        if isinstance(val, _Val):
            self.b.input_keys.add(node)
        return val

    def convert(self, value, vals):
        if isinstance(value, torch.fx.Node):
            return vals.get(value)
        if isinstance(value, (tuple, list)):
            return type(value)(self.convert(v, vals) for v in value)
        if isinstance(value, dict):
            return {k: self.convert(v, vals) for k, v in value.items()}
        return value

    # ---- one leaf module call (a group of ATen ops) -----------------------------------------------------
    def grouped(self, node, found, vals, last: bool) -> None:
        key, path, m = found
        group = self.groups.setdefault(key, [])
        group.append(node)
        vals[node] = _tensor_vals(node.meta.get("val"), lambda s: _Val(s, False, key=node))
        if not last:
            return
        members = set(group)
        own = {id(t) for t in m.parameters()} | {id(t) for t in m.buffers()}
        inputs: list = []
        for n in group:
            for arg in n.all_input_nodes:
                if arg in members or arg in inputs or id(self.tensors.get(arg)) in own:
                    continue
                inputs.append(arg)
        args = tuple(v for v in (vals.get(a) for a in inputs) if isinstance(v, _Val))
        outs = [n for n in group if any(u not in members for u in n.users)] or group
        out = _vals(vals.get(outs[-1]))
        self.b.module(path, m, args, {}, out[0].shape if out else ())
        del self.groups[key]

    # ---- one ATen op ------------------------------------------------------------------------------------
    def call(self, node, vals):
        target = node.target
        args, kwargs = self.convert(node.args, vals), self.convert(node.kwargs, vals)
        meta = node.meta.get("val")
        if target is operator.getitem:
            src = args[0] if args else None
            return (
                src[args[1]]
                if isinstance(src, (list, tuple)) and isinstance(args[1], int) and -len(src) <= args[1] < len(src)
                else None
            )
        out_tensors = _flat_tensors(meta)
        shape = tuple(out_tensors[0].shape) if out_tensors else ()
        inputs = _vals(args) + _vals(kwargs)
        if isinstance(target, _HIGHER_ORDER):
            return self.higher_order(node, target, args, shape, inputs)
        name = getattr(target, "_opname", None) or getattr(target, "__name__", str(target))
        namespace = getattr(target, "namespace", "aten")
        if namespace != "aten":
            name = f"{namespace}.{name}"
        self.pending, listed = [], len(self.b.ops)
        active = self.dispatch(node, name, args, kwargs, shape)
        if len(self.b.ops) > listed:
            for base in self.pending:
                self.used[base] = self.used.get(base, 0) + 1
        params = [] if active else [p for v in inputs for p in v.params]
        return _tensor_vals(meta, lambda s: _Val(s, not active, params, node))

    def dispatch(self, node, name: str, args, kwargs, shape) -> bool:
        """Record one ATen op through the registry; returns whether its output is an activation."""
        b = self.b
        if name in _SDPA:
            return b.call(
                self.label(node, "scaled_dot_product_attention"),
                *self.rule_target("torch.nn.functional.scaled_dot_product_attention"),
                args[:3],
                {},
                shape,
            )
        if name == "embedding":  # aten.embedding(weight, indices): F.embedding(indices, weight)
            return b.call(
                self.label(node, name),
                *self.rule_target("torch.nn.functional.embedding"),
                (args[1], args[0]) if len(args) >= 2 else args,
                {},
                shape,
            )
        if name in ("convolution", "_convolution"):
            return self.convolution(node, args, shape)
        if name == "native_group_norm":  # (input, weight, bias, N, C, HxW, group, eps)
            group = args[6] if len(args) > 6 else 1
            return b.call(
                self.label(node, "group_norm"),
                *self.rule_target("torch.group_norm"),
                (args[0], group, *args[1:3]),
                {},
                shape,
            )
        if name in _FUSED_MODULE_OPS:
            return self.fused_module(node, name, args, shape)
        target, method = self.resolve(name)
        if target is None and method is None:
            if self.is_data(name):
                return b.data(args, kwargs)
            target = name  # a string: no rule, kept as unmapped with this name (custom ops as 'namespace.op')
        return b.call(self.label(node, name.strip("_") or "op"), target, method, args, kwargs, shape)

    def rule_target(self, dotted: str) -> tuple[Any, None]:
        return _resolve(dotted), None

    def resolve(self, name: str) -> tuple[Any, str | None]:
        """(torch function, None) or (None, tensor method name) whose rule the ATen op ``name`` follows, or
        (None, None)."""
        if name in self.resolved:
            return self.resolved[name]
        found: tuple[Any, str | None] = (None, None)
        candidates = (
            [_RENAMED[name]]
            if name in _RENAMED
            else [f"torch.nn.functional.{name}", f"torch.{name}", f"torch.special.{name}"]
        )
        for dotted in candidates:
            obj = _resolve(dotted)
            if obj is not None and self.tables.function_rule(obj) is not None:
                found = (obj, None)
                break
        else:
            if name in self.tables.methods:
                found = (None, name)
        self.resolved[name] = found
        return found

    def is_data(self, name: str) -> bool:
        return (
            name in _DATA
            or name in registry.DATA_METHODS
            or any(f"{prefix}.{name}" in registry.DATA_FUNCTIONS for prefix in ("torch", "torch.nn.functional"))
        )

    def convolution(self, node, args, shape) -> bool:
        """aten.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)."""
        w = args[1] if len(args) > 1 else None
        transposed = bool(args[6]) if len(args) > 6 else False
        dims = len(w.shape) if isinstance(w, _Val) else 0
        if transposed or dims not in (3, 4):
            return self.b.call(
                self.label(node, "convolution"),
                "aten.conv_transpose" if transposed else f"aten.convolution ({dims - 2}-D)",
                None,
                args,
                {},
                shape,
            )
        groups = args[8] if len(args) > 8 else 1
        fn = "torch.nn.functional.conv1d" if dims == 3 else "torch.nn.functional.conv2d"
        return self.b.call(self.label(node, "convolution"), *self.rule_target(fn), (*args[:6], groups), {}, shape)

    def fused_module(self, node, name: str, args, shape) -> bool:
        """A torch.nn module's fused fast path (nn.MultiheadAttention, nn.TransformerEncoderLayer): its rule's
        expansion, as fx and eager list it."""
        for _key, path in reversed(self.stack(node)):
            m = self.module(path)
            if m is None:
                continue
            rule = self.tables.module_rule(m)
            if rule is not None and rule.handler == "attention":
                inputs = tuple(a for a in args[: 3 if name == "_native_multi_head_attention" else 1])
                self.b.module(path or type(m).__name__, m, inputs, {}, shape)
                return True
        return self.b.call(self.label(node, name.strip("_")), f"aten.{name}", None, args, {}, shape)

    def higher_order(self, node, op, args, shape, inputs):
        """A higher-order op wrapping one subgraph (wrap_with_set_grad_enabled, wrap_with_autocast,
        invoke_subgraph: the operands follow the subgraph): walked in place. Others (cond, while_loop, map)
        are kept as one unmapped op."""
        subgraphs = [i for i, a in enumerate(args) if isinstance(a, torch.fx.GraphModule)]
        if len(subgraphs) == 1:
            gm = args[subgraphs[0]]
            operands = list(args[subgraphs[0] + 1 :])
            if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
                operands = list(operands[0])
            holders = [n for n in gm.graph.nodes if n.op == "placeholder"]
            if len(holders) == len(operands):
                return self.walk(gm, dict(zip(holders, operands)))
        label = self.label(node, op.name())
        held = {id(p): p for v in inputs for p in v.params}
        self.b.ledger.mark(held.values(), "unmapped")
        x = next((v.shape for v in inputs if not v.const), ())
        self.b.ops.append(
            unmapped_op(
                label,
                f"higher-order op {op.name()}",
                sum(p.numel() for p in held.values()),
                registry.per_inference(x) if x else (),
                registry.per_inference(shape) if shape else (),
            )
        )
        return _tensor_vals(node.meta.get("val"), lambda s: _Val(s, False, key=node))


__all__ = ["ExportFailure", "export_program", "trace_export"]
