"""ONNX model -> Workload (shapes by ONNX shape inference; weights are only read for their shapes)."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import InputError
from .core import Op, Workload

_ACT = {"Relu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Gelu", "LeakyRelu", "Clip", "Erf"}
_POOL = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
_NORM = {"BatchNormalization", "LayerNormalization", "InstanceNormalization"}
_ELTWISE = {"Add", "Mul", "Sub", "Div"}


def workload_from_onnx(path: Path, name: str | None = None) -> Workload:
    import onnx
    from onnx import numpy_helper, shape_inference

    if not path.is_file():
        raise InputError(f"no such ONNX file: {path}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        model = shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - any parse/validation failure is the file's fault
        raise InputError(f"{path} is not a valid ONNX model: {type(exc).__name__}: {exc}") from None
    g = model.graph
    init = {t.name: tuple(numpy_helper.to_array(t).shape) for t in g.initializer}
    shapes: dict[str, tuple[int, ...]] = dict(init)
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = tuple(d.dim_value if d.dim_value > 0 else 1 for d in vi.type.tensor_type.shape.dim)
        shapes.setdefault(vi.name, dims)
    inputs = [vi for vi in g.input if vi.name not in init]
    if not inputs:
        raise InputError(f"{path}: the graph has no non-constant input")
    ops: list[Op] = []
    for i, node in enumerate(g.node):
        label = node.name or f"{node.op_type}_{i}"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        x = shapes.get(node.input[0], ()) if node.input else ()
        y = shapes.get(node.output[0], ()) if node.output else ()
        if node.op_type == "Conv":
            w = init.get(node.input[1])
            if w is None:
                raise InputError(f"{path}: Conv '{label}' has no constant weight; cimkit maps weight-stationary convs")
            groups = int(attrs.get("group", 1))
            k = tuple(w[2:]) if len(w) == 4 else (1, w[2])
            in_f, out_f = w[1] * k[0] * k[1], w[0] // groups
            vectors = math.prod(y[2:]) if len(y) > 2 else 1
            stride = tuple(attrs.get("strides", [1, 1]))
            ops.append(Op(label, "conv", in_f, out_f, groups, k, stride if len(stride) == 2 else (1, stride[0]),
                          x[1:], y[1:], vectors, vectors * in_f * out_f * groups))
        elif node.op_type in ("Gemm", "MatMul"):
            b = init.get(node.input[1])
            if b is not None and len(b) == 2:
                in_f, out_f = (b[1], b[0]) if attrs.get("transB", 0) else (b[0], b[1])
                vectors = math.prod(x[:-1]) if len(x) > 1 else 1
                ops.append(Op(label, "linear", in_f, out_f, 1, in_shape=x[1:], out_shape=y[1:], vectors=vectors,
                              macs=vectors * in_f * out_f))
            else:
                a, bb = x, shapes.get(node.input[1], ())
                if len(a) >= 2 and len(bb) >= 2:
                    batch = math.prod(y[:-2]) if len(y) > 2 else 1
                    ops.append(Op(label, "matmul", a[-1], bb[-1], 1, in_shape=a[1:], out_shape=y[1:],
                                  vectors=batch * a[-2], macs=batch * a[-2] * a[-1] * bb[-1]))
        else:
            kind = ("act" if node.op_type in _ACT else "pool" if node.op_type in _POOL else "norm"
                    if node.op_type in _NORM else "eltwise" if node.op_type in _ELTWISE else "softmax"
                    if node.op_type == "Softmax" else None)
            if kind:
                ops.append(Op(label, kind, in_shape=x[1:], out_shape=y[1:], elements=math.prod(y[1:]) if y else 0))
    input_shape = shapes.get(inputs[0].name, ())
    return Workload(name or path.stem, input_shape, ops)
