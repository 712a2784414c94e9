"""ONNX model -> Workload (shapes by ONNX shape inference; weights are read for their shapes only).

The importer follows the same policy as ``Workload.from_torch``: Conv with a 1-D or 2-D kernel,
Gemm / MatMul with a constant operand of at most 2 dims map onto arrays; activations, pooling,
normalization, softmax, element-wise ops and dynamic matmuls run on digital units. An op holding
weights the cost model cannot map (LSTM / GRU / RNN, ConvTranspose, Conv with a 3-D kernel, a Gather
on a weight table (an embedding), quantized convolutions, a custom op consuming a weight matrix, a
Loop / If / Scan whose body uses weights) raises an ``InputError`` naming it, unless ``unmapped="warn"``
keeps it as an op of kind "unmapped" (not priced). Every weight tensor of the model (initializers and
Constant nodes of a weight type, in subgraphs too) is counted in ``Workload.weight_counts``; tensors used
by no op are warned about.

Constant subexpressions (a Transpose of a weight, a Reshape of a constant) are followed, so that
``MatMul(x, Transpose(W))`` is a mapped layer whose weight is ``W``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import CimkitError, InputError, short_repr
from .core import Op, Workload, check_op_sizes, resolve_unmapped, unmapped_op, warn_unused

_ACT = {"Relu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Gelu", "LeakyRelu", "Clip", "Erf", "PRelu", "Elu",
        "Selu", "Celu", "Mish", "Softplus", "Softsign", "ThresholdedRelu", "Swish"}
_POOL = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool"}
_NORM = {"BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization",
         "RMSNormalization", "LpNormalization", "MeanVarianceNormalization"}
_ELTWISE = {"Add", "Mul", "Sub", "Div"}
_SOFTMAX = {"Softmax", "LogSoftmax"}
#: op types that always hold weights the cost model cannot map
_UNMAPPABLE = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "RNN", "ConvTranspose": "ConvTranspose",
               "ConvInteger": "ConvInteger (quantized)", "QLinearConv": "QLinearConv (quantized)",
               "MatMulInteger": "MatMulInteger (quantized)", "QLinearMatMul": "QLinearMatMul (quantized)",
               "DeformConv": "DeformConv", "Einsum": "Einsum"}
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


def workload_from_onnx(path: Path, name: str | None = None, unmapped: str = "error",
                       input_shape: tuple[int, ...] | None = None) -> Workload:
    """The workload of the ONNX model at ``path``; see the module docstring for the policy."""
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an ONNX model file (.onnx)")
    if not path.is_file():
        raise InputError(f"no such ONNX file: {path}")
    try:
        import onnx  # noqa: F401
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise InputError("reading ONNX models needs the 'onnx' package: pip install onnx") from None
    model = _load(path, input_shape)
    try:
        return _Importer(model, path, unmapped).run(name or path.stem)
    except CimkitError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed graph that passed the checker is the file's fault
        raise InputError(f"{path}: malformed ONNX graph ({type(exc).__name__}: {short_repr(str(exc), 200)})") from None


def _load(path: Path, input_shape):
    """Load, check, fix the input shape (batch 1) and infer shapes; any failure is an ``InputError``."""
    import onnx
    from onnx import shape_inference

    try:
        # checked from the path, so that external data files are looked for beside the model (and only
        # there); loaded without them: the importer reads shapes, never weight values
        onnx.checker.check_model(str(path))
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse/validation failure is the file's fault
        raise InputError(f"{path} is not a valid ONNX model: {type(exc).__name__}: {short_repr(str(exc), 300)}") from None
    g = model.graph
    init_names = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    inputs = [vi for vi in g.input if vi.name not in init_names]
    if not inputs:
        raise InputError(f"{path}: the graph has no non-constant input")
    for i, vi in enumerate(inputs):
        tt = vi.type.tensor_type
        if i == 0 and input_shape is not None:
            dims = _check_shape(input_shape, path)
            if tt.HasField("shape") and len(tt.shape.dim) != len(dims):
                raise InputError(f"{path}: input_shape {dims} has {len(dims)} dims but input '{vi.name}' has "
                                 f"{len(tt.shape.dim)}")
            tt.shape.Clear()
            for d in dims:
                tt.shape.dim.add().dim_value = d
            continue
        if not tt.HasField("shape"):
            raise InputError(f"{path}: input '{vi.name}' has no shape; pass input_shape=(1, ...) (batch dim first)")
        for j, d in enumerate(tt.shape.dim):
            if j == 0 and not (d.HasField("dim_value") and d.dim_value > 0):
                d.Clear()
                d.dim_value = 1  # a symbolic batch: costs are per inference
        symbolic = [d.dim_param or "?" for d in tt.shape.dim if not (d.HasField("dim_value") and d.dim_value > 0)]
        if symbolic:
            fix = ("pass input_shape=(1, ...) with every size" if i == 0 else
                   "export the model with fixed sizes (input_shape fixes the first input only)")
            raise InputError(f"{path}: input '{vi.name}' has symbolic sizes {symbolic}; {fix}")
    del g.value_info[:]  # inferred again from the fixed input shapes
    try:
        return shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: ONNX shape inference failed: {type(exc).__name__}: {short_repr(str(exc), 300)}") from None


def _check_shape(input_shape, path) -> tuple[int, ...]:
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = ()
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 2**20 for d in dims):
        raise InputError(f"{path}: input_shape must be a tuple of integers from 1 to 2**20, batch dim first, got "
                         f"{short_repr(input_shape)}")
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
        if s is None or any(d is None for d in s):
            raise InputError(f"{self.path}: {op_type} '{label}': the shape of tensor '{name}' is unknown "
                             f"({'no shape' if s is None else s}); ONNX shape inference could not infer it. Export "
                             "the model with fixed sizes, or pass input_shape=")
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
            self.shapes.setdefault(vi.name, tuple(d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None
                                                  for d in tt.shape.dim) if tt.HasField("shape") else None)
        first_input = next(vi.name for vi in g.input if vi.name not in self.const)
        for i, node in enumerate(g.node):
            label = node.name or f"{node.op_type}_{i}"
            try:
                self.node(node, label, onnx)
            except CimkitError:
                raise
            except Exception as exc:  # noqa: BLE001 - a node the checker let through but that makes no sense
                raise InputError(f"{self.path}: node '{label}' ({node.op_type}) is malformed: {type(exc).__name__}: "
                                 f"{short_repr(str(exc), 200)}") from None
        where = f"{self.path}"
        for op in self.ops:
            check_op_sizes(op, where)
        counts = {"total": 0, "mapped": 0, "digital": 0, "unmapped": 0, "unused": 0}
        unused = []
        for key, t in self.tensors.items():
            if not t.weight:
                continue
            counts["total"] += t.size
            category = self.where.get(key, "unused")
            counts[category] += t.size
            if category == "unused":
                unused.append((key, t.dims, t.size))
        if not self.ops:
            raise InputError(f"{self.path}: no operation of the graph depends on its input; cimkit costs the ops "
                             f"that process the input ({counts['total']:,} weights found, all in constants)")
        wl = Workload(name, tuple(self.shapes.get(first_input) or ()), self.ops, counts)
        resolve_unmapped(str(self.path), wl.unmapped_ops, self.policy, counts)
        warn_unused(str(self.path), unused)
        return wl

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
        if ins and all(n in self.const for n in ins) and not (standard and op in _UNMAPPABLE):
            for o in outs:  # computed from constants only: a constant (e.g. a Transpose of a weight)
                self.const[o] = held
            return
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if standard and op in _UNMAPPABLE:
            self.unmap(label, _UNMAPPABLE[op], held)
        elif standard and op == "Conv":
            self.conv(node, label, ins, outs, attrs)
        elif standard and op == "Gemm":
            self.gemm(label, ins, outs, attrs)
        elif standard and op == "MatMul":
            self.matmul(label, ins, outs)
        elif standard and op == "Gather" and ins[0] in self.const and ins[1] not in self.const and any(
                self.tensors[k].weight and len(self.tensors[k].dims) >= 2 for k in self.const[ins[0]]):
            self.unmap(label, "Gather on a weight table (embedding lookup)", self.const[ins[0]])
        elif standard and (op in _ACT or op in _POOL or op in _NORM or op in _ELTWISE or op in _SOFTMAX):
            kind = ("act" if op in _ACT else "pool" if op in _POOL else "norm" if op in _NORM else "eltwise"
                    if op in _ELTWISE else "softmax")
            data = [n for n in ins if n not in self.const]
            x = self.shape(data[0], label, op) if data else ()
            y = self.shape(outs[0], label, op)
            elements = math.prod(y[1:]) if len(y) >= 2 else math.prod(y)
            self.ops.append(Op(label, kind, in_shape=tuple(x[1:]), out_shape=tuple(y[1:]), elements=elements))
            self.mark(held, "digital")
        elif any(self.tensors[k].weight and len(self.tensors[k].dims) >= 2 for k in held) and (
                not standard or op not in _DATA_OPS):
            self.unmap(label, f"{typ} on a weight tensor", held)
        else:
            self.mark(held, "digital")  # data movement, shapes, scalars: nothing the arrays hold

    # ---- weighted ops --------------------------------------------------------------------------
    def conv(self, node, label, ins, outs, attrs) -> None:
        if len(ins) < 2 or ins[1] not in self.const:
            self.unmap(label, "Conv with a weight computed at run time", self.sources(ins))
            return
        w = self.shapes[ins[1]]
        if w is None or len(w) not in (3, 4) or any(d is None for d in w):
            self.unmap(label, f"Conv with a {len(w) - 2 if w else '?'}-D kernel (cimkit maps 1-D and 2-D ones)",
                       self.sources(ins))
            return
        groups = attrs.get("group", 1)
        if not isinstance(groups, int) or groups < 1 or w[0] % groups:
            raise InputError(f"{self.path}: Conv '{label}': group = {short_repr(groups)} must be a positive divisor of "
                             f"the {w[0]} output channels")
        x, y = self.shape(ins[0], label, "Conv"), self.shape(outs[0], label, "Conv")
        if len(x) != len(w) or len(y) != len(w):
            raise InputError(f"{self.path}: Conv '{label}': input {x} and output {y} must have {len(w)} dims like "
                             f"the weight {w}")
        if x[1] != w[1] * groups:
            raise InputError(f"{self.path}: Conv '{label}': the input has {x[1]} channels but the weight {w} with "
                             f"group = {groups} expects {w[1] * groups}")
        k = tuple(w[2:]) if len(w) == 4 else (1, w[2])
        strides = tuple(attrs.get("strides", [1] * (len(w) - 2)))
        stride = strides if len(strides) == 2 else (1, strides[0]) if len(strides) == 1 else (1, 1)
        in_f, out_f = w[1] * k[0] * k[1], w[0] // groups
        vectors = math.prod(y[2:])
        self.ops.append(Op(label, "conv", in_f, out_f, groups, k, stride, tuple(x[1:]), tuple(y[1:]), vectors,
                           vectors * in_f * out_f * groups))
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
            raise InputError(f"{self.path}: Gemm '{label}': inner sizes differ ({a} x {b}, transA "
                             f"{attrs.get('transA', 0)}, transB {attrs.get('transB', 0)})")
        self.mark(self.sources(ins[2:]), "digital")

        def per_inference(shape):  # (1, K) -> (K,): shapes are given without a batch dim of 1
            return tuple(shape[1:]) if shape[0] == 1 else tuple(shape)

        if b_name in self.const:  # x @ W: one vector per row
            self.ops.append(Op(label, "linear", k, n, in_shape=per_inference(a), out_shape=per_inference(y), vectors=m,
                               macs=m * k * n))
            self.mark(self.const[b_name], "mapped")
        elif a_name in self.const:  # W @ x: one vector per column, W is n_out = m rows of k
            self.ops.append(Op(label, "linear", k, m, in_shape=per_inference(b), out_shape=per_inference(y),
                               vectors=n, macs=m * k * n))
            self.mark(self.const[a_name], "mapped")
        else:
            self.ops.append(Op(label, "matmul", k, n, 1, in_shape=per_inference(a), out_shape=per_inference(y),
                               vectors=m, macs=m * k * n))

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
                self.ops.append(Op(label, "linear", k, n, in_shape=tuple(x[1:]), out_shape=tuple(y[1:]),
                                   vectors=vectors, macs=vectors * k * n))
                self.mark(self.const[wname], "mapped")
                return
        m, k = (a[-2] if len(a) >= 2 else 1), a[-1]
        n = b[-1] if len(b) >= 2 else 1
        batch = math.prod(y[:-2]) if len(y) > 2 else 1
        self.ops.append(Op(label, "matmul", k, n, 1, in_shape=tuple(a[1:]), out_shape=tuple(y[1:]), vectors=batch * m,
                           macs=batch * m * k * n))


#: standard ops that move, reshape or combine data: a weight-type constant they consume (a class token,
#: a position embedding, a padding value) is data a digital unit handles, not a matrix for the arrays
_DATA_OPS = {"Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Cast", "CastLike", "Dropout",
             "Shape", "Size", "Gather", "GatherElements", "GatherND", "Concat", "Slice", "Split", "Expand", "Tile",
             "Pad", "ConstantOfShape", "Where", "Resize", "Upsample", "Sqrt", "Pow", "ReduceMean", "ReduceSum",
             "ReduceMax", "Equal", "Less", "Greater", "And", "Or", "Not", "Neg", "Abs", "Exp", "Log", "Reciprocal",
             "Min", "Max", "Sum", "Mean", "DepthToSpace", "SpaceToDepth", "QuantizeLinear", "DequantizeLinear",
             "Range", "Trilu", "ScatterND", "ScatterElements", "CumSum", "TopK", "ArgMax", "ArgMin"}
