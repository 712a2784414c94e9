"""Workloads: an ordered list of operations with shapes (no weights), for the cost model.

Shapes are per inference (batch 1). A weight-stationary op (convolution, linear) is a matrix of
``in_features`` x ``out_features`` per group, applied to ``vectors`` input vectors; a dynamic matmul
(attention's Q K^T) multiplies two activations; the rest (pooling, activations, element-wise,
softmax, normalization) run on digital units.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import InputError

OpKind = Literal["conv", "linear", "matmul", "pool", "act", "eltwise", "softmax", "norm"]
WEIGHTED = ("conv", "linear")


@dataclass(frozen=True)
class Op:
    """One operation of a workload."""

    name: str
    kind: OpKind
    in_features: int = 0  # rows of the (per-group) weight matrix: C_in/groups * kh * kw
    out_features: int = 0  # columns per group: C_out/groups
    groups: int = 1
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    in_shape: tuple[int, ...] = ()  # activation shape without the batch dim, e.g. (C, H, W)
    out_shape: tuple[int, ...] = ()
    vectors: int = 1  # input vectors per inference (output positions of a convolution, tokens)
    macs: int = 0  # multiply-accumulates per inference
    elements: int = 0  # elements processed by a digital op (its output size)

    @property
    def weighted(self) -> bool:
        return self.kind in WEIGHTED

    @property
    def weights(self) -> int:
        return self.groups * self.in_features * self.out_features

    @property
    def input_elements(self) -> int:
        return math.prod(self.in_shape) if self.in_shape else 0

    @property
    def output_elements(self) -> int:
        return math.prod(self.out_shape) if self.out_shape else 0

    def neurosim_ops(self) -> int:
        """Operations as DNN+NeuroSim counts them: 2 x IFM_H x IFM_W x C_in x K x K x C_out (the input
        map size, not the output size); for other ops 2 x MACs."""
        if self.kind == "conv" and len(self.in_shape) == 3:
            c, h, w = self.in_shape
            return 2 * h * w * self.in_features * self.out_features * self.groups
        return 2 * self.macs


@dataclass
class Workload:
    """An ordered list of ``Op`` with the input shape it was traced for."""

    name: str
    input_shape: tuple[int, ...]
    ops: list[Op] = field(default_factory=list)

    @property
    def weighted_ops(self) -> list[Op]:
        return [op for op in self.ops if op.weighted]

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def weights(self) -> int:
        return sum(op.weights for op in self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def __str__(self) -> str:
        lines = [f"Workload '{self.name}' for input {self.input_shape}: {len(self.weighted_ops)} weighted ops, "
                 f"{self.weights / 1e6:.2f} M weights, {self.macs / 1e9:.3f} GMAC"]
        for op in self.ops:
            if op.kind in ("conv", "linear", "matmul"):
                lines.append(f"  {op.kind:7} {op.name:30} {op.in_features:>6} x {op.out_features:<6} g{op.groups:<4} "
                             f"x{op.vectors:<6} {op.macs / 1e6:9.2f} MMAC")
        return "\n".join(lines)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps({"name": self.name, "input_shape": self.input_shape,
                           "ops": [asdict(op) for op in self.ops]}, indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    # ---- constructors --------------------------------------------------------------------------
    @classmethod
    def from_torch(cls, model, input_shape: tuple[int, ...], name: str | None = None) -> "Workload":
        """Trace a PyTorch model (torch.fx, or forward hooks when it cannot be traced)."""
        from .trace import trace_torch

        return trace_torch(model, tuple(input_shape), name or type(model).__name__)

    @classmethod
    def from_onnx(cls, path: str | Path, name: str | None = None) -> "Workload":
        from .onnx_import import workload_from_onnx

        return workload_from_onnx(Path(path), name)

    @classmethod
    def from_neurosim_csv(cls, path: str | Path, name: str | None = None) -> "Workload":
        """Read DNN+NeuroSim's network description: one layer per line, 8 columns IFM_H, IFM_W, C_in,
        K_H, K_W, C_out, pooling-follows (0/1), stride. Convolutions use 'same' padding."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such NeuroSim network file: {path}")
        ops: list[Op] = []
        with path.open() as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
        for i, row in enumerate(rows, 1):
            try:
                h, w, cin, kh, kw, cout, pool, stride = (int(float(c)) for c in row[:8])
            except ValueError:
                raise InputError(f"{path}:{i}: expected 8 integers (IFM_H, IFM_W, C_in, K_H, K_W, C_out, pool, "
                                 f"stride), got {row}") from None
            if len(row) < 8 or min(h, w, cin, kh, kw, cout, stride) <= 0:
                raise InputError(f"{path}:{i}: 8 positive sizes expected (pool may be 0), got {row}")
            ho, wo = math.ceil(h / stride), math.ceil(w / stride)
            kind = "linear" if (h, w, kh, kw) == (1, 1, 1, 1) else "conv"
            ops.append(Op(f"layer{i}", kind, cin * kh * kw, cout, 1, (kh, kw), (stride, stride), (cin, h, w),
                          (cout, ho, wo), ho * wo, ho * wo * cin * kh * kw * cout))
            if pool:
                ops.append(Op(f"layer{i}_pool", "pool", in_shape=(cout, ho, wo), out_shape=(cout, ho // 2, wo // 2),
                              elements=cout * (ho // 2) * (wo // 2)))
        if not ops:
            raise InputError(f"{path}: no layers found")
        first = ops[0].in_shape
        return cls(name or path.stem, first, ops)
