"""ONNX model -> Workload (shapes by ONNX shape inference; weights are read for their shapes only).

The importer follows the same policy as ``Workload.from_torch`` and dispatches through the same op
registry (``cimkit.workload.registry``, its ``onnx`` matchers): Conv with a 1-D or 2-D kernel, Gemm /
MatMul with a constant operand of at most 2 dims map onto arrays; a MatMul of two activations is a
dynamic matmul (its batch dims, e.g. heads, are its groups); a Gather on a constant table is an
embedding; activations, pooling, normalization, softmax and element-wise ops run on digital units.
Two exporter decompositions are recognised as the op they compute: the erf form of GELU (Div or Mul by
a constant, Erf, Add 1, Mul by x, Mul 0.5) and LayerNorm (ReduceMean, Sub, Pow, ReduceMean, Add eps,
Sqrt, Div), and SiLU (Sigmoid, then Mul by its own input; x * sigmoid(x) written by hand is the same).
An Add / Mul with one constant operand (a bias, a scale), and a Sub / Div whose constant is the second
operand, is folded into the op before it, as in the torch frontends; c / x is a "reciprocal" (as ONNX
Reciprocal), c - x a sub, c ** x an exp. A Sum of n inputs is n - 1 adds. A value computed from the
input's shape (Shape, Size) is a constant.

What the exporter changes before the importer sees the graph: the legacy TorchScript exporter in eval
mode folds a BatchNorm into the Conv before it (export with ``training=torch.onnx.TrainingMode.PRESERVE``
to keep the BatchNormalization node, which is then a "batch_norm" norm as in the torch frontends), and
it decomposes some functions (GELU, LayerNorm, SiLU: recognised above). A node type no rule names is kept as an op of kind "unmapped" with its shape (and a warning).
An op holding weights the cost model cannot map (LSTM / GRU / RNN, ConvTranspose, Conv with a 3-D
kernel, quantized convolutions, a custom op consuming a weight matrix, a Loop / If / Scan whose body
uses weights) raises an ``InputError`` naming it, unless ``unmapped="warn"``
keeps it as an op of kind "unmapped" (not priced). Every weight tensor of the model (initializers and
Constant nodes of a weight type, in subgraphs too) is counted in ``Workload.weight_counts``; tensors used
by no op are warned about. A scalar or single-element constant (a scale, an eps, a literal 1.0: Python
numbers in the torch model) is not counted unless a mapped or unmapped op holds it.

Constant subexpressions (a Transpose of a weight, a Reshape of a constant) are followed, so that
``MatMul(x, Transpose(W))`` is a mapped layer whose weight is ``W``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import CimkitError, InputError, short_repr
from . import registry
from .core import Op, Workload, check_op_sizes, resolve_unmapped, unmapped_op, warn_unused
from .registry import (
    Arg,
    batched_matmul,
    digital_op,
    einsum_linear,
    einsum_operands,
    embedding_op,
    linear_op,
    matmul_op,
)

#: op types that always hold weights the cost model cannot map
_UNMAPPABLE = {
    "LSTM": "LSTM",
    "GRU": "GRU",
    "RNN": "RNN",
    "ConvTranspose": "ConvTranspose",
    "ConvInteger": "ConvInteger (quantized)",
    "QLinearConv": "QLinearConv (quantized)",
    "MatMulInteger": "MatMulInteger (quantized)",
    "QLinearMatMul": "QLinearMatMul (quantized)",
    "DeformConv": "DeformConv",
}
_CONTROL_FLOW = {"If", "Loop", "Scan"}
#: element types that are indices or shapes, never weights
_INDEX_TYPES = {0, 6, 7, 8, 9, 12, 13}  # UNDEFINED, INT32, INT64, STRING, BOOL, UINT32, UINT64
_STANDARD_DOMAINS = ("", "ai.onnx")


@dataclass
class _Tensor:
    """A constant tensor of the model (an initializer or a Constant node's value)."""

    name: str
    dims: tuple[int, ...]
    weight: bool  # of a weight type (float or small integer), as opposed to indices / shapes

    @property
    def size(self) -> int:
        return math.prod(self.dims)


def workload_from_onnx(
    path: Path,
    name: str | None = None,
    unmapped: str = "error",
    input_shape: tuple[int, ...] | None = None,
    dims: dict[str, int] | None = None,
) -> Workload:
    """The workload of the ONNX model at ``path``; see the module docstring for the policy."""
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an ONNX model file (.onnx)")
    if not path.is_file():
        raise InputError(f"no such ONNX file: {path}")
    try:
        import onnx  # noqa: F401
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise InputError("reading ONNX models needs the 'onnx' package: pip install onnx") from None
    model = _load(path, input_shape, dims)
    try:
        return _Importer(model, path, unmapped).run(name or path.stem)
    except CimkitError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed graph that passed the checker is the file's fault
        raise InputError(f"{path}: malformed ONNX graph ({type(exc).__name__}: {short_repr(str(exc), 200)})") from None


def _load(path: Path, input_shape, dims=None):
    """Load, check, fix the input shape (batch 1; symbolic sizes bound by name from ``dims``) and infer
    shapes; any failure is an ``InputError``."""
    import onnx
    from onnx import shape_inference

    try:
        # checked from the path, so that external data files are looked for beside the model (and only
        # there); loaded without them: the importer reads shapes, never weight values
        onnx.checker.check_model(str(path))
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse/validation failure is the file's fault
        raise InputError(
            f"{path} is not a valid ONNX model: {type(exc).__name__}: {short_repr(str(exc), 300)}"
        ) from None
    g = model.graph
    init_names = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    inputs = [vi for vi in g.input if vi.name not in init_names]
    if not inputs:
        raise InputError(f"{path}: the graph has no non-constant input")
    # symbolic sizes fixed by name (e.g. 'sequence_length'): from ``dims``, and from input_shape
    named = _check_dims(dims, inputs, path)
    for i, vi in enumerate(inputs):
        tt = vi.type.tensor_type
        if i == 0 and input_shape is not None:
            dims = _check_shape(input_shape, path)
            if tt.HasField("shape") and len(tt.shape.dim) != len(dims):
                raise InputError(
                    f"{path}: input_shape {dims} has {len(dims)} dims but input '{vi.name}' has {len(tt.shape.dim)}"
                )
            if tt.HasField("shape"):
                named.update({d.dim_param: v for d, v in zip(tt.shape.dim, dims) if d.dim_param})
            tt.shape.Clear()
            for d in dims:
                tt.shape.dim.add().dim_value = d
            continue
        if not tt.HasField("shape"):
            raise InputError(f"{path}: input '{vi.name}' has no shape; pass input_shape=(1, ...) (batch dim first)")
        for d in tt.shape.dim:  # a size bound by name, or named like one of the first input's (the same length)
            if d.dim_param and d.dim_param in named:
                value = named[d.dim_param]
                d.Clear()
                d.dim_value = value
        for j, d in enumerate(tt.shape.dim):
            if j == 0 and not (d.HasField("dim_value") and d.dim_value > 0):
                d.Clear()
                d.dim_value = 1  # a symbolic batch: costs are per inference
        symbolic = [d.dim_param or "?" for d in tt.shape.dim if not (d.HasField("dim_value") and d.dim_value > 0)]
        if symbolic:
            by_name = (
                f"bind them by name, e.g. dims={{{symbolic[0]!r}: 128}}" if all(n != "?" for n in symbolic) else ""
            )
            other = (
                "pass input_shape=(1, ...) with every size"
                if i == 0
                else "export the model with fixed sizes (input_shape fixes the first input only)"
            )
            fix = f"{by_name}, or {other}" if by_name else other
            raise InputError(f"{path}: input '{vi.name}' has symbolic sizes {symbolic}; {fix}")
    del g.value_info[:]  # inferred again from the fixed input shapes
    try:
        return _complete_reshapes(shape_inference.infer_shapes(model, data_prop=True))
    except Exception as exc:  # noqa: BLE001
        raise InputError(
            f"{path}: ONNX shape inference failed: {type(exc).__name__}: {short_repr(str(exc), 300)}"
        ) from None


def _complete_reshapes(model, rounds: int = 8):
    """Fill in the one unknown size of a Reshape's output from its input's size (ONNX shape inference
    leaves a computed target with -1 unknown, e.g. the head split of attention) and infer again."""
    from onnx import shape_inference

    for _ in range(rounds):
        g = model.graph
        infos = {vi.name: vi for vi in list(g.value_info) + list(g.input) + list(g.output)}

        def dims(name):
            vi = infos.get(name)
            if vi is None or not vi.type.tensor_type.HasField("shape"):
                return None
            return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]

        changed = False
        for node in g.node:
            if node.op_type != "Reshape" or node.output[0] not in infos:
                continue
            x, y = dims(node.input[0]), dims(node.output[0])
            if not x or y is None or None in x or y.count(None) != 1:
                continue
            known = math.prod(d for d in y if d is not None)
            if known and math.prod(x) % known == 0:
                dim = infos[node.output[0]].type.tensor_type.shape.dim[y.index(None)]
                dim.Clear()
                dim.dim_value = math.prod(x) // known
                changed = True
        if not changed:  # last resort: a value whose leading (batch) size alone is unknown has batch 1
            for vi in g.value_info:
                shape = vi.type.tensor_type.shape if vi.type.tensor_type.HasField("shape") else None
                if (
                    shape is not None
                    and shape.dim
                    and not shape.dim[0].HasField("dim_value")
                    and all(d.HasField("dim_value") for d in shape.dim[1:])
                ):
                    shape.dim[0].Clear()
                    shape.dim[0].dim_value = 1
                    changed = True
        if not changed:
            return model
        model = shape_inference.infer_shapes(model, data_prop=True)
    return model


def _shapes_by_running(model) -> dict[str, tuple[int, ...]]:
    """The shape of every value, by running the graph on all-zero inputs with ONNX's reference evaluator
    (a fallback for sizes shape inference cannot infer, e.g. a mask expanded to a computed shape);
    empty when the graph cannot run (external weights not loaded, an op the evaluator lacks)."""
    try:
        import numpy as np
        import onnx
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        m = onnx.ModelProto()
        m.CopyFrom(model)
        del m.graph.value_info[:]
        known = {o.name for o in m.graph.output}
        names = [o for node in m.graph.node for o in node.output if o]
        m.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names if n not in known)
        init = {t.name for t in m.graph.initializer}
        feeds = {}
        for vi in m.graph.input:
            if vi.name in init:
                continue
            tt = vi.type.tensor_type
            dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
            feeds[vi.name] = np.zeros([d.dim_value for d in tt.shape.dim], dtype=dtype)
        values = ReferenceEvaluator(m).run(None, feeds)
        outputs = [o.name for o in m.graph.output]
        return {n: tuple(int(d) for d in v.shape) for n, v in zip(outputs, values) if hasattr(v, "shape")}
    except Exception:  # noqa: BLE001 - a fallback: the importer then names the unknown shape it needs
        return {}


def _check_dims(dims, inputs, path) -> dict[str, int]:
    """``dims`` (symbolic size name -> size) checked against the names the graph inputs use."""
    if dims is None:
        return {}
    if not isinstance(dims, dict):
        raise InputError(
            f"{path}: dims must map symbolic size names to sizes, e.g. {{'sequence': 128}}; got {short_repr(dims)}"
        )
    used = {
        d.dim_param
        for vi in inputs
        if vi.type.tensor_type.HasField("shape")
        for d in vi.type.tensor_type.shape.dim
        if d.dim_param
    }
    for key, value in dims.items():
        if key not in used:
            raise InputError(
                f"{path}: dims names {short_repr(key)}, which no input uses; the inputs' symbolic sizes: "
                f"{', '.join(sorted(used)) or 'none'}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**20:
            raise InputError(f"{path}: dims[{key!r}] = {short_repr(value)}; allowed: an integer from 1 to 2**20")
    return dict(dims)


def _check_shape(input_shape, path) -> tuple[int, ...]:
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = ()
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 2**20 for d in dims):
        raise InputError(
            f"{path}: input_shape must be a tuple of integers from 1 to 2**20, batch dim first, got "
            f"{short_repr(input_shape)}"
        )
    return (1, *dims[1:])


def _tensor(name: str, t, data_type: int | None = None) -> _Tensor:
    """A TensorProto's (or, with its values' ``data_type``, a SparseTensorProto's) shape and kind."""
    dims = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in dims):
        raise InputError(f"constant tensor '{name}' has a negative size in {dims}")
    return _Tensor(name, dims, (t.data_type if data_type is None else data_type) not in _INDEX_TYPES)


class _Importer:
    def __init__(self, model, path: Path, policy: str) -> None:
        self.model, self.path, self.policy = model, path, policy
        self.tensors: dict[str, _Tensor] = {}  # every weight-or-index constant, by a unique key
        self.const: dict[str, list[str]] = {}  # constant value name -> the weight tensors it comes from
        self.shapes: dict[str, tuple | None] = {}
        self.where: dict[str, str] = {}  # weight tensor key -> mapped / unmapped / digital
        self.ops: list[Op] = []
        self.onnx_rules = {t: r for r in registry.op_rules() for t in r.onnx}
        self.root: dict[str, str] = {}  # a folded op's output -> the activation it stands for
        self.gelu_of: dict[str, str] = {}  # erf output -> the GELU's input (to absorb x * (1 + erf))
        self.index: dict[int, int] = {}
        self.skip: set[int] = set()
        self.emit: dict[int, tuple[str, str]] = {}
        self.producer: dict = {}
        self.graph_inputs: set[str] = set()
        self.first_input = ""

    # ---- bookkeeping ---------------------------------------------------------------------------
    def add_constant(self, value_name: str, t: _Tensor) -> None:
        key = t.name
        while key in self.tensors:  # a subgraph may reuse a name
            key += "'"
        t.name = key
        self.tensors[key] = t
        self.const[value_name] = [key] if t.weight else []
        self.shapes[value_name] = t.dims

    def mark(self, keys, category: str) -> None:
        rank = {"mapped": 3, "unmapped": 2, "digital": 1}
        for k in keys:
            if self.tensors[k].weight and rank[category] > rank.get(self.where.get(k, ""), 0):
                self.where[k] = category

    def sources(self, names) -> list[str]:
        return list(dict.fromkeys(k for n in names for k in self.const.get(n, [])))

    def shape(self, name: str, label: str, op_type: str) -> tuple[int, ...]:
        s = self.shapes.get(name)
        if s and s[0] is None and all(d is not None for d in s[1:]):
            s = (1, *s[1:])  # only the leading (batch) size is unknown: the input's batch is 1
        if s is None or any(d is None for d in s):
            raise InputError(
                f"{self.path}: {op_type} '{label}': the shape of tensor '{name}' is unknown "
                f"({'no shape' if s is None else s}); ONNX shape inference could not infer it. Export "
                "the model with fixed sizes, or pass input_shape="
            )
        return s

    def unmap(self, label: str, source_type: str, keys: list[str]) -> None:
        keys = [k for k in keys if self.tensors[k].weight]
        self.mark(keys, "unmapped")
        self.ops.append(unmapped_op(label, source_type, sum(self.tensors[k].size for k in keys)))

    # ---- the graph -----------------------------------------------------------------------------
    def run(self, name: str) -> Workload:
        import onnx

        g = self.model.graph
        for t in g.initializer:
            self.add_constant(t.name, _tensor(t.name, t))
        for sp in g.sparse_initializer:
            self.add_constant(sp.values.name, _tensor(sp.values.name, sp, sp.values.data_type))
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            if vi.name in self.const:
                continue
            tt = vi.type.tensor_type
            self.shapes.setdefault(
                vi.name,
                tuple(d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None for d in tt.shape.dim)
                if tt.HasField("shape")
                else None,
            )
        first_input = next(vi.name for vi in g.input if vi.name not in self.const)
        unknown = [
            o
            for node in g.node
            for o in node.output
            if o and o not in self.const and ((dims := self.shapes.get(o)) is None or None in dims)
        ]
        if unknown:  # shape inference lost some sizes: run the graph once on zeros to read them
            for key, shape in _shapes_by_running(self.model).items():
                if key in unknown or key not in self.shapes:
                    self.shapes[key] = shape
        self.first_input = first_input
        self.graph_inputs = {vi.name for vi in g.input if vi.name not in self.const}
        self.index = {node.output[0]: i for i, node in enumerate(g.node) if node.output}
        self.producer = {o: node for node in g.node for o in node.output}
        self.find_layer_norms(g)
        for i, node in enumerate(g.node):
            label = node.name or f"{node.op_type}_{i}"
            try:
                self.node(node, label, onnx)
            except CimkitError:
                raise
            except Exception as exc:  # noqa: BLE001 - a node the checker let through but that makes no sense
                raise InputError(
                    f"{self.path}: node '{label}' ({node.op_type}) is malformed: {type(exc).__name__}: "
                    f"{short_repr(str(exc), 200)}"
                ) from None
        where = f"{self.path}"
        for op in self.ops:
            check_op_sizes(op, where)
        counts = {"total": 0, "mapped": 0, "digital": 0, "unmapped": 0, "unused": 0}
        unused = []
        for key, t in self.tensors.items():
            if not t.weight or (t.size <= 1 and self.where.get(key) not in ("mapped", "unmapped")):
                continue  # a scalar (a scale, an eps, a literal 1.0) is not a weight unless an array holds it
            counts["total"] += t.size
            category = self.where.get(key, "unused")
            counts[category] += t.size
            if category == "unused":
                unused.append((key, t.dims, t.size))
        if not self.ops:
            raise InputError(
                f"{self.path}: no operation of the graph depends on its input; cimkit costs the ops "
                f"that process the input ({counts['total']:,} weights found, all in constants)"
            )
        wl = Workload(name, tuple(self.shapes.get(first_input) or ()), self.ops, counts)
        resolve_unmapped(str(self.path), wl.unmapped_ops, self.policy, counts)
        warn_unused(str(self.path), unused)
        return wl

    def find_silu(self, g, consumers) -> None:
        """SiLU decomposed by an exporter (or written by hand): s = Sigmoid(x); y = Mul(x, s), s used by the Mul
        only. Its op is emitted at the Mul; the Sigmoid is skipped."""
        for node in g.node:
            if node.op_type != "Sigmoid" or node.domain not in _STANDARD_DOMAINS or not node.input:
                continue
            users = consumers.get(node.output[0], [])
            if (
                len(users) == 1
                and users[0].op_type == "Mul"
                and sorted(users[0].input) == sorted([node.input[0], node.output[0]])
            ):
                self.skip.add(self.index[node.output[0]])
                self.emit[self.index[users[0].output[0]]] = ("act:silu", node.input[0])

    def find_layer_norms(self, g) -> None:
        """LayerNorm decomposed by an exporter: m = ReduceMean(x); d = Sub(x, m); v = ReduceMean(Pow(d, 2));
        y = Div(d, Sqrt(Add(v, eps))). Its op is emitted at the Div; the other nodes are skipped."""
        consumers: dict[str, list] = {}
        for node in g.node:
            for n in node.input:
                consumers.setdefault(n, []).append(node)
        self.find_silu(g, consumers)

        def one(name: str, op_type: str, *also: str):
            for c in consumers.get(name, []):
                if c.op_type == op_type and all(a in c.input for a in also):
                    return c
            return None

        for node in g.node:
            if node.op_type != "ReduceMean" or node.domain not in _STANDARD_DOMAINS or not node.input:
                continue
            x, mean = node.input[0], node.output[0]
            sub = one(mean, "Sub", x)
            pow_ = sub and one(sub.output[0], "Pow")
            var = pow_ and one(pow_.output[0], "ReduceMean")
            eps = var and one(var.output[0], "Add")
            sqrt = eps and one(eps.output[0], "Sqrt")
            div = sqrt and one(sqrt.output[0], "Div", sub.output[0])
            if div is not None:
                self.skip.update(self.index[n.output[0]] for n in (node, sub, pow_, var, eps, sqrt))
                self.emit[self.index[div.output[0]]] = ("norm:layer_norm", x)

    def subgraph_refs(self, node, onnx) -> list[str]:
        """Weight tensors a control-flow node's bodies hold or use (registered as constants here)."""
        keys: list[str] = []
        for attr in node.attribute:
            graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for sub in graphs:
                for t in sub.initializer:
                    self.add_constant(f"{node.name}/{t.name}", _tensor(t.name, t))
                    keys += self.const[f"{node.name}/{t.name}"]
                for inner in sub.node:
                    keys += self.sources(inner.input)
                    if inner.op_type == "Constant":
                        keys += self.constant_node(inner, onnx, prefix=f"{node.name}/")
                    if inner.op_type in _CONTROL_FLOW:
                        keys += self.subgraph_refs(inner, onnx)
        return list(dict.fromkeys(keys))

    def constant_node(self, node, onnx, prefix: str = "") -> list[str]:
        """Register a Constant node's value; the weight tensors it adds."""
        out = prefix + node.output[0]
        for attr in node.attribute:
            if attr.name == "value":
                self.add_constant(out, _tensor(out, attr.t))
            elif attr.name == "sparse_value":
                self.add_constant(out, _tensor(out, attr.sparse_tensor, attr.sparse_tensor.values.data_type))
            elif attr.name == "value_floats":
                self.add_constant(out, _Tensor(out, (len(attr.floats),), True))
            elif attr.name == "value_float":
                self.add_constant(out, _Tensor(out, (), True))
            elif attr.name in ("value_ints", "value_strings"):
                self.add_constant(out, _Tensor(out, (len(attr.ints) or len(attr.strings),), False))
            elif attr.name in ("value_int", "value_string"):
                self.add_constant(out, _Tensor(out, (), False))
        return self.const.get(out, [])

    def node(self, node, label: str, onnx) -> None:
        op = node.op_type
        standard = node.domain in _STANDARD_DOMAINS
        typ = op if standard else f"{node.domain}.{op}"
        ins = [n for n in node.input if n]
        outs = list(node.output)
        held = self.sources(ins)
        if standard and op == "Constant":
            self.constant_node(node, onnx)
            return
        if standard and op in _CONTROL_FLOW:
            keys = list(dict.fromkeys(held + self.subgraph_refs(node, onnx)))
            if any(self.tensors[k].weight and len(self.tensors[k].dims) >= 2 for k in keys):
                self.unmap(label, f"{op} whose body uses weights", keys)
            else:
                self.mark(keys, "digital")
            return
        if standard and op in ("Shape", "Size"):  # the input's shape is fixed: a constant
            for o in outs:
                self.const[o] = []
            return
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        rule = self.onnx_rules.get(op) if standard else None
        if rule is not None and rule.handler == "embedding" and self.embedding(label, ins, outs):
            return
        if ins and all(n in self.const for n in ins) and not (standard and op in _UNMAPPABLE):
            for o in outs:  # computed from constants only: a constant (e.g. a Transpose of a weight)
                self.const[o] = held
            return
        index = self.index.get(outs[0], -1) if outs else -1
        if index in self.skip:  # part of a recognised decomposition (its op is emitted at its last node)
            self.mark(held, "digital")
            return
        if index in self.emit:
            fn, x_name = self.emit[index]
            x = self.shape(x_name, label, op)
            y = self.shape(outs[0], label, op)
            self.ops.append(digital_op(label, registry.OP_RULES.get(fn), x, y, {"normalized": 1}))
            self.mark(held, "digital")
            return
        if standard and op in _UNMAPPABLE:
            self.unmap(label, _UNMAPPABLE[op], held)
        elif rule is not None and rule.handler == "conv":
            self.conv(node, label, ins, outs, attrs)
        elif rule is not None and rule.handler == "linear":  # Gemm
            self.gemm(label, ins, outs, attrs)
        elif rule is not None and rule.handler == "matmul":
            self.matmul(label, ins, outs)
        elif rule is not None and rule.handler == "einsum":
            self.einsum(label, ins, outs, attrs)
        elif rule is not None and rule.handler == "digital":
            self.digital(label, op, rule, ins, outs, attrs, held)
        elif standard and op in registry.DATA_ONNX:
            self.mark(held, "digital")  # data movement: nothing the arrays hold
            data = [n for n in ins if n not in self.const]
            for o in outs:  # the output stands for its input (a folded op after it finds the same root)
                self.root[o] = self.root_of(data[0]) if data else o
        elif any(self.tensors[k].weight and len(self.tensors[k].dims) >= 2 for k in held):
            self.unmap(label, f"{typ} on a weight tensor", held)
        else:  # a node type no rule names: kept, with its shape
            self.mark(held, "digital")
            data = [n for n in ins if n not in self.const]
            x_dims = self.shapes.get(data[0]) if data else None
            y_dims = self.shapes.get(outs[0]) if outs else None
            known = lambda s: tuple(d for d in s if d is not None) if s else ()  # noqa: E731
            self.ops.append(
                unmapped_op(label, typ, 0, registry.per_inference(known(x_dims)), registry.per_inference(known(y_dims)))
            )

    def root_of(self, name: str) -> str:
        while name in self.root and self.root[name] != name:
            name = self.root[name]
        return name

    def digital(self, label, op, rule, ins, outs, attrs, held) -> None:
        data = [n for n in ins if n not in self.const]
        self.mark(held, "digital")
        act_first = not ins or ins[0] not in self.const
        if len(data) == 1 and op in ("Sub", "Div", "Pow") and not act_first and op != "Sub":
            # c / x: a reciprocal (times c, folded); c ** x = exp(x ln c); c - x is listed as a sub
            rule = registry.OP_RULES.get("eltwise:reciprocal" if op == "Div" else "eltwise:exp")
        if (
            rule.fold_constant
            and len(data) == 1
            and (act_first or op not in ("Sub", "Div"))
            and self.root_of(data[0]) not in self.graph_inputs
        ):
            self.root[outs[0]] = self.root_of(data[0])  # a bias add or a scale: folded into the op before it
            return
        if op == "Sum" and len(data) > 2:  # variadic: n inputs are n - 1 adds per element
            x, y = self.shape(data[0], label, op), self.shape(outs[0], label, op)
            self.ops += [digital_op(label if i == 0 else f"{label}_{i}", rule, x, y) for i in range(len(data) - 1)]
            return
        if op == "Mul" and len(data) == 2:  # x * (1 + erf(x / sqrt 2)): the rest of a GELU already listed
            a, b = (self.root_of(n) for n in data)
            if self.gelu_of.get(b) == a or self.gelu_of.get(a) == b:
                self.root[outs[0]] = b if b in self.gelu_of else a
                return
        x = self.shape(data[0], label, op) if data else ()
        y = self.shape(outs[0], label, op)
        inputs = [Arg(tuple(self.shapes.get(n) or ()), n in self.const) for n in ins]
        params = rule.onnx_params(attrs, inputs) if rule.onnx_params else {}
        if op == "Erf" and data:  # erf(x / sqrt 2): the GELU of the exporters' decomposition
            root = self.root_of(data[0])
            src = self.producer.get(data[0])
            if src is not None and src.op_type in ("Div", "Mul") and any(n in self.const for n in src.input):
                self.gelu_of[outs[0]] = root
                self.root[outs[0]] = outs[0]
                x = self.shapes.get(root) or x
                self.ops.append(digital_op(label, registry.OP_RULES.get("act:gelu"), x, y))
                return
        self.ops.append(digital_op(label, rule, x, y, params))

    def embedding(self, label, ins, outs) -> bool:
        """Gather(table, indices) on a constant weight table of 2 dims: an embedding lookup."""
        if len(ins) < 2 or ins[0] not in self.const:
            return False
        keys = [k for k in self.const[ins[0]] if self.tensors[k].weight]
        table = self.shapes.get(ins[0])
        if not keys or table is None or len(table) != 2:
            return False
        y = self.shapes.get(outs[0])
        if y is None or None in y[1:]:  # indices computed from the input's shape that shape inference lost:
            ids = self.shapes.get(self.first_input) or ()  # one lookup per token of the first input (the ids)
            if None in ids:
                y = self.shape(outs[0], label, "Gather")  # the error naming the tensor
            y = (*ids, table[1])
            self.shapes[outs[0]] = y
        y = (1, *y[1:]) if y[0] is None else tuple(y)
        idx = tuple(y[:-1])  # the indices' shape (it may be unknown where the output's is inferred)
        self.ops.append(embedding_op(label, table[0], table[1], idx, y))
        self.mark(keys, "digital")
        return True

    def einsum(self, label, ins, outs, attrs) -> None:
        equation = attrs.get("equation", b"")
        equation = equation.decode() if isinstance(equation, bytes) else str(equation)
        shapes = [self.shape(n, label, "Einsum") for n in ins]
        dims = einsum_operands(equation, shapes)
        held = self.sources(ins)
        if dims is None:
            self.unmap(label, f"Einsum {equation!r}", held)
            return
        g, m, k, n = dims
        const = [n_ for n_ in ins if n_ in self.const]
        if const:
            x = shapes[[i for i, n_ in enumerate(ins) if n_ not in self.const][0]]
            self.ops.append(einsum_linear(label, dims, ins[0] in self.const, x, self.shape(outs[0], label, "Einsum")))
            self.mark(self.const[const[0]], "mapped")
        else:
            self.ops.append(matmul_op(label, g, m, k, n))

    # ---- weighted ops --------------------------------------------------------------------------
    def conv(self, node, label, ins, outs, attrs) -> None:
        if len(ins) < 2 or ins[1] not in self.const:
            self.unmap(label, "Conv with a weight computed at run time", self.sources(ins))
            return
        w = self.shapes[ins[1]]
        if w is None or len(w) not in (3, 4) or any(d is None for d in w):
            self.unmap(
                label,
                f"Conv with a {len(w) - 2 if w else '?'}-D kernel (cimkit maps 1-D and 2-D ones)",
                self.sources(ins),
            )
            return
        groups = attrs.get("group", 1)
        if not isinstance(groups, int) or groups < 1 or w[0] % groups:
            raise InputError(
                f"{self.path}: Conv '{label}': group = {short_repr(groups)} must be a positive divisor of "
                f"the {w[0]} output channels"
            )
        x, y = self.shape(ins[0], label, "Conv"), self.shape(outs[0], label, "Conv")
        if len(x) != len(w) or len(y) != len(w):
            raise InputError(
                f"{self.path}: Conv '{label}': input {x} and output {y} must have {len(w)} dims like the weight {w}"
            )
        if x[1] != w[1] * groups:
            raise InputError(
                f"{self.path}: Conv '{label}': the input has {x[1]} channels but the weight {w} with "
                f"group = {groups} expects {w[1] * groups}"
            )
        k = tuple(w[2:]) if len(w) == 4 else (1, w[2])
        strides = tuple(attrs.get("strides", [1] * (len(w) - 2)))
        stride = strides if len(strides) == 2 else (1, strides[0]) if len(strides) == 1 else (1, 1)
        in_f, out_f = w[1] * k[0] * k[1], w[0] // groups
        vectors = math.prod(y[2:])
        self.ops.append(
            Op(
                label,
                "conv",
                in_f,
                out_f,
                groups,
                k,
                stride,
                tuple(x[1:]),
                tuple(y[1:]),
                vectors,
                vectors * in_f * out_f * groups,
                fn="conv",
            )
        )
        self.mark(self.const[ins[1]], "mapped")
        self.mark(self.sources(ins[2:]), "digital")

    def gemm(self, label, ins, outs, attrs) -> None:
        a_name, b_name = ins[0], ins[1]
        a, b = self.shape(a_name, label, "Gemm"), self.shape(b_name, label, "Gemm")
        y = self.shape(outs[0], label, "Gemm")
        if len(a) != 2 or len(b) != 2:
            raise InputError(f"{self.path}: Gemm '{label}': operands {a} and {b} must be 2-D")
        m, k = (a[1], a[0]) if attrs.get("transA", 0) else a
        k2, n = (b[1], b[0]) if attrs.get("transB", 0) else b
        if k != k2:
            raise InputError(
                f"{self.path}: Gemm '{label}': inner sizes differ ({a} x {b}, transA "
                f"{attrs.get('transA', 0)}, transB {attrs.get('transB', 0)})"
            )
        self.mark(self.sources(ins[2:]), "digital")

        def per_inference(shape):  # (1, K) -> (K,): shapes are given without a batch dim of 1
            return tuple(shape[1:]) if shape[0] == 1 else tuple(shape)

        if b_name in self.const:  # x @ W: one vector per row
            self.ops.append(
                Op(
                    label,
                    "linear",
                    k,
                    n,
                    in_shape=per_inference(a),
                    out_shape=per_inference(y),
                    vectors=m,
                    macs=m * k * n,
                    fn="linear",
                )
            )
            self.mark(self.const[b_name], "mapped")
        elif a_name in self.const:  # W @ x: one vector per column, W is n_out = m rows of k
            self.ops.append(
                Op(
                    label,
                    "linear",
                    k,
                    m,
                    in_shape=per_inference(b),
                    out_shape=per_inference(y),
                    vectors=n,
                    macs=m * k * n,
                    fn="linear",
                )
            )
            self.mark(self.const[a_name], "mapped")
        else:
            self.ops.append(matmul_op(label, 1, m, k, n))

    def matmul(self, label, ins, outs) -> None:
        a_name, b_name = ins[0], ins[1]
        a, b = self.shape(a_name, label, "MatMul"), self.shape(b_name, label, "MatMul")
        y = self.shape(outs[0], label, "MatMul")
        for wname, w in ((b_name, b), (a_name, a)):
            if wname in self.const:
                if len(w) > 2:
                    self.unmap(label, f"MatMul with a {len(w)}-D constant operand", self.const[wname])
                    return
                if wname == b_name:  # x @ W, W (k, n) or (k,)
                    k, n = w[0], (w[1] if len(w) == 2 else 1)
                    vectors = math.prod(a[:-1])
                    x = a
                else:  # W @ x, W (n, k) or (k,)
                    k, n = w[-1], (w[0] if len(w) == 2 else 1)
                    vectors = math.prod(b[:-2]) * b[-1] if len(b) >= 2 else 1
                    x = b
                self.ops.append(linear_op(label, k, n, x, y, vectors))
                self.mark(self.const[wname], "mapped")
                return
        self.ops.append(batched_matmul(label, a, b, y))
