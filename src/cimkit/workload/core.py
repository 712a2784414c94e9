"""Workloads: an ordered list of operations with shapes (no weights), for the cost model.

Shapes are per inference (batch 1). A weight-stationary op (convolution, linear) is a matrix of
``in_features`` x ``out_features`` per group, applied to ``vectors`` input vectors; a dynamic matmul
(attention's Q K^T) multiplies two activations; the rest (pooling, activations, element-wise,
softmax, normalization) run on digital units.

Kinds are strings registered in ``cimkit.workload.registry`` (``kinds()``), each with its default unit
and its digital event counts; ``fn`` names the function (gelu, layer_norm, softmax, add, ...).

A dynamic ``matmul`` (both operands activations) is ``groups`` independent products (batch x heads)
A @ B, A of ``vectors`` x ``in_features``, B (the operand an array would hold) of ``in_features`` x
``out_features``: Q K^T with h heads, length L, head width d is groups h, vectors L, in d, out L.
An ``embedding`` is a table lookup (in_features = table rows, out_features = width, vectors = tokens);
its table is digital memory, not crossbar weights.

Spiking networks (``cimkit.snn.cost.snn_workload``): a weighted op with ``binary_input`` reads 1-bit spikes, one
pass and one pulse per input vector whatever the chip's DAC, at ``activity`` = the measured spike density; a
``neuron`` op (fn ``lif_subtract``, ``synaptic_zero``, ``fang``, ...; ``cimkit.workload.registry.NEURON_EVENTS``)
is ``elements`` neuron updates (neurons x time steps) on the digital unit, with ``activity`` its measured spike
rate (spikes per neuron-step). Shapes of an SNN op lead with the time steps (``(T, features)``).

An op that no rule matches and that holds no weights (a custom function) is kept as kind "unmapped"
with its shapes and output size, and a warning lists it. An op that holds weights the cost model
cannot map (an LSTM, a transposed or 3-D convolution) is never dropped: the importers refuse it with an ``InputError`` naming it, or, when
the caller passes ``unmapped="warn"``, keep it as an op of kind ``"unmapped"`` (with the weights it holds
in ``unmapped_weights``) and warn. The cost model prices nothing for an unmapped op, but it stays listed
in the workload and in the report's layers.

Every importer of a real model also counts the model's weights (``Workload.weight_counts``): on mapped
layers, held by digital ops (biases, normalization), on unmapped ops, and used by no op, so that a
workload never silently covers only part of a model.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal, Mapping

from ..errors import InputError, short_repr

#: the built-in kinds (``cimkit.workload.registry.kinds()`` is the full, open list)
OpKind = Literal["conv", "linear", "matmul", "pool", "act", "eltwise", "softmax", "norm", "embedding", "unmapped"]
WEIGHTED = ("conv", "linear")
#: what the importers do with an op holding weights the cost model cannot map
UNMAPPED_POLICIES = ("error", "warn")
#: what the cost model maps onto arrays, for error messages
SUPPORTED = (
    "Linear / Gemm / MatMul with a constant 2-D weight, Conv1d and Conv2d (ONNX Conv with a 3-D or 4-D "
    "kernel); digital ops: activations, pooling, normalization, softmax, element-wise, dynamic matmuls"
)
#: sanity bounds on one op (the cost model computes in float64 and int64): a layer with more weights or
#: MACs is a corrupt or mistyped description, not a network
MAX_LAYER_WEIGHTS = 2**40
MAX_MACS = 2**53
#: a NeuroSim network file is a few hundred bytes; anything this large is not one
MAX_CSV_BYTES = 1 << 20
#: the largest size (feature-map side, channels, kernel side, stride) a NeuroSim row may give
MAX_CSV_DIM = 2**20


def check_unmapped_policy(unmapped: object) -> str:
    """``unmapped`` if it is one of ``UNMAPPED_POLICIES``, else an ``InputError``."""
    if not isinstance(unmapped, str) or unmapped not in UNMAPPED_POLICIES:
        raise InputError(
            f"unmapped = {short_repr(unmapped)}: allowed values are 'error' (refuse a model with ops "
            "whose weights cimkit cannot map) and 'warn' (keep them as 'unmapped' ops, not priced)"
        )
    return unmapped


def check_op_sizes(op: "Op", where: str) -> None:
    """Refuse an op whose weights or MACs exceed ``MAX_LAYER_WEIGHTS`` / ``MAX_MACS`` (a corrupt input)."""
    if op.weights > MAX_LAYER_WEIGHTS:
        raise InputError(
            f"{where}: layer '{op.name}' would hold {op.weights:,} weights; at most 2**40 "
            f"({MAX_LAYER_WEIGHTS:,}) per layer are accepted"
        )
    if op.macs > MAX_MACS or op.elements > MAX_MACS:
        raise InputError(
            f"{where}: layer '{op.name}' would take {max(op.macs, op.elements):,} operations per "
            f"inference; at most 2**53 ({MAX_MACS:,}, exact in float64) are accepted"
        )


def warn_caller(message: str) -> None:
    """``warnings.warn`` attributed to the first caller outside cimkit (the user's line)."""
    import sys

    package = str(Path(__file__).resolve().parent.parent)
    level = 2  # stacklevel 1 is this function, 2 its caller
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _listing(items: list[tuple[str, str, int]], limit: int = 6) -> str:
    text = ", ".join(f"'{n}' ({t}, {w:,} weights)" for n, t, w in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def resolve_unmapped(source: str, unmapped: list["Op"], policy: str, counts: dict[str, int]) -> None:
    """Apply the ``unmapped`` policy to the ops of kind "unmapped" holding weights that an importer found
    in ``source``: raise an ``InputError`` naming each (policy "error") or warn (policy "warn"). Weightless
    ones (no rule matched) are kept under either policy, with a warning listing them. ``counts`` is the
    weight accounting (see ``Workload.weight_counts``) the message quotes."""
    unknown = [op for op in unmapped if not op.unmapped_weights]
    if unknown:
        listing = ", ".join(f"'{op.name}' ({op.source_type}, shape {op.out_shape})" for op in unknown[:6])
        more = f" and {len(unknown) - 6} more" if len(unknown) > 6 else ""
        warn_caller(
            f"{source}: {len(unknown)} op(s) that no rule matches kept as 'unmapped' (listed in the workload, "
            f"not priced): {listing}{more}; register a rule with cimkit.workload.registry.register_op"
        )
    unmapped = [op for op in unmapped if op.unmapped_weights]
    if not unmapped:
        return
    items = [(op.name, op.source_type, op.unmapped_weights) for op in unmapped]
    held = f"{counts.get('mapped', 0):,} of the model's {counts.get('total', 0):,} weights are on mapped layers"
    if policy == "error":
        raise InputError(
            f"{source}: {len(items)} op(s) that cimkit's cost model cannot map: {_listing(items)}; "
            f"{held}. cimkit maps {SUPPORTED}. Pass unmapped='warn' to keep them in the workload as "
            "'unmapped' ops that are listed but not priced"
        )
    warn_caller(
        f"{source}: kept {len(items)} op(s) as 'unmapped' (listed in the workload, not priced): "
        f"{_listing(items)}; {held}, {counts.get('unmapped', 0):,} are on unmapped ops"
    )


def warn_unused(source: str, unused: list[tuple[str, tuple[int, ...], int]]) -> None:
    """Warn about weight tensors that no op of the model uses (they are counted as 'unused')."""
    if not unused:
        return
    total = sum(n for _, _, n in unused)
    names = ", ".join(f"'{name}' {tuple(shape)}" for name, shape, _ in unused[:6])
    more = f" and {len(unused) - 6} more" if len(unused) > 6 else ""
    warn_caller(
        f"{source}: {total:,} weights in {len(unused)} tensor(s) are used by no op and were not counted: {names}{more}"
    )


@dataclass(frozen=True)
class Op:
    """One operation of a workload."""

    name: str
    kind: str  # a registered op kind (``OpKind`` lists the built-in ones; ``registry.register_kind`` adds more)
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
    unmapped_weights: int = 0  # kind "unmapped": the weights the op holds, which no array stores
    source_type: str = ""  # kind "unmapped": the op's type in the source model (e.g. 'LSTM', 'ConvTranspose')
    fn: str = ""  # the function, lower case: gelu, layer_norm, softmax, add, max_pool, matmul, embedding, ...
    reduce: int = 0  # softmax and norm: length of the reduced axis (rows = elements // reduce)
    activity: float | None = None  # fraction of 1 bits in the input bit streams; None: the chip's input_activity
    #: the op's input vectors are spikes (0/1): read in one pass with one pulse (never bit-serially through the
    #: ``periphery.input_bits`` DAC), each row driven as a 1-bit drive, moved as 1 bit per element; ``activity`` is
    #: then the spike density (spikes per input element), so array reads happen only where there are spikes
    binary_input: bool = False

    @property
    def weighted(self) -> bool:
        """Whether the op's weights are mapped onto arrays (the kind is registered as weighted)."""
        if self.kind in WEIGHTED:
            return True
        from .registry import KINDS

        return self.kind in KINDS and KINDS.get(self.kind).weighted

    @property
    def rows(self) -> int:
        """Softmax and norm: the rows reduced over (elements // reduce); else the elements."""
        return self.elements // self.reduce if self.reduce > 0 else self.elements

    @property
    def weights(self) -> int:
        """Weights mapped onto arrays (0 for every op but conv and linear)."""
        return self.groups * self.in_features * self.out_features if self.weighted else 0

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


def unmapped_op(name: str, source_type: str, weights: int, in_shape=(), out_shape=()) -> Op:
    """An op the cost model cannot map or no rule matches, kept visible (not priced): its shapes (without
    the batch dim), its output size as ``elements`` and the weights it holds."""
    in_shape, out_shape = tuple(int(d) for d in in_shape), tuple(int(d) for d in out_shape)
    return Op(
        name,
        "unmapped",
        in_shape=in_shape,
        out_shape=out_shape,
        elements=math.prod(out_shape) if out_shape else 0,
        unmapped_weights=int(weights),
        source_type=source_type,
    )


@dataclass
class Workload:
    """An ordered list of ``Op`` with the input shape it was traced for.

    ``weight_counts`` (set by the torch and ONNX importers, None for hand-built and NeuroSim
    workloads): the source model's weights (parameters / weight initializers, each tensor once) as
    ``total`` = ``mapped`` (on conv / linear ops) + ``digital`` (biases, normalization and other
    tensors digital ops use) + ``unmapped`` (on ops of kind "unmapped") + ``unused`` (used by no op).
    ``weights`` counts the mapped ops' matrices, once per op (a tensor two ops use counts twice).
    """

    name: str
    input_shape: tuple[int, ...]
    ops: list[Op] = field(default_factory=list)
    weight_counts: dict[str, int] | None = None

    @property
    def weighted_ops(self) -> list[Op]:
        return [op for op in self.ops if op.weighted]

    @property
    def unmapped_ops(self) -> list[Op]:
        """Ops holding weights the cost model cannot map (kept, listed, not priced)."""
        return [op for op in self.ops if op.kind == "unmapped"]

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def weights(self) -> int:
        """Weights on the ops the cost model maps onto arrays."""
        return sum(op.weights for op in self.ops)

    @property
    def unmapped_weights(self) -> int:
        """Weights held by ops of kind "unmapped" (not priced)."""
        return sum(op.unmapped_weights for op in self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def __str__(self) -> str:
        lines = [
            f"Workload '{self.name}' for input {self.input_shape}: {len(self.weighted_ops)} weighted ops, "
            f"{self.weights / 1e6:.2f} M weights, {self.macs / 1e9:.3f} GMAC"
        ]
        if self.weight_counts:
            c = self.weight_counts
            lines.append(
                f"  model weights: {c.get('total', 0):,} = {c.get('mapped', 0):,} mapped + "
                f"{c.get('digital', 0):,} on digital ops + {c.get('unmapped', 0):,} unmapped + "
                f"{c.get('unused', 0):,} unused"
            )
        for op in self.ops:
            if op.kind in ("conv", "linear", "matmul"):
                spikes = (
                    f"  spikes, density {op.activity:.4f}"
                    if op.binary_input and op.activity is not None
                    else "  spikes"
                    if op.binary_input
                    else ""
                )
                lines.append(
                    f"  {op.kind:7} {op.name:30} {op.in_features:>6} x {op.out_features:<6} g{op.groups:<4} "
                    f"x{op.vectors:<6} {op.macs / 1e6:9.2f} MMAC{spikes}"
                )
            elif op.kind == "unmapped":
                lines.append(
                    f"  UNMAPPED {op.name:29} {op.source_type}, {op.unmapped_weights:,} weights, shape "
                    f"{op.out_shape} (not priced)"
                )
            elif op.kind == "neuron":
                rate = "" if op.activity is None else f", {op.activity:.4f} spikes per update"
                lines.append(f"  {op.kind:7} {op.name:30} {op.fn:12} {op.elements:>10,} neuron updates{rate}")
            else:
                lines.append(f"  {op.kind:7} {op.name:30} {op.fn:12} {op.elements:>10,} elements")
        return "\n".join(lines)

    def with_activity(self, activity: Mapping[str, float]) -> "Workload":
        """A copy whose ops named in ``activity`` take that input activity (the fraction of 1 bits in their
        input bit streams, in [0, 1]; ``cimkit.workload.measure_activity`` measures it from data); the
        other ops keep theirs (None: the chip's ``input_activity``)."""
        import dataclasses

        if not isinstance(activity, Mapping):
            raise InputError(
                f"with_activity: expected a dict of op name -> fraction of 1 bits, got {type(activity).__name__}"
            )
        names = {op.name for op in self.ops}
        for name, a in activity.items():
            if name not in names:
                raise InputError(
                    f"with_activity: workload '{self.name}' has no op named {name!r}; its weighted ops: "
                    f"{', '.join(op.name for op in self.weighted_ops[:8])}"
                )
            if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 <= a <= 1:
                raise InputError(f"with_activity: op {name!r} gets activity = {a!r}; it must be a fraction in [0, 1]")
        ops = [
            dataclasses.replace(op, activity=float(activity[op.name])) if op.name in activity else op for op in self.ops
        ]
        return Workload(self.name, self.input_shape, ops, self.weight_counts)

    def with_hamming_attention(self, n_top: int = 32) -> "Workload":
        """A copy whose every attention (Q K^T, softmax, A V) is HAD's binarized attention (Horton et al., arXiv
        2502.01770): a ``hamming_score`` op (binarized queries against binarized keys), a ``topn`` op keeping
        ``n_top`` keys per query, the softmax over those and a sparse A V over their rows of V; the other ops
        are kept. ``hamming_score`` and ``topn`` run on the ``cam_attention`` unit (``cimkit.workload.hamming``)."""
        from .hamming import with_hamming_attention

        return with_hamming_attention(self, n_top)

    def to_json(self, path: str | Path | None = None) -> str:
        """The workload as JSON text; with ``path``, also written there atomically (a crash or a full
        disk never leaves a truncated file)."""
        text = json.dumps(
            {
                "name": self.name,
                "input_shape": self.input_shape,
                "weight_counts": self.weight_counts,
                "ops": [asdict(op) for op in self.ops],
            },
            indent=1,
        )
        if path is not None:
            from ..io import atomic_write

            atomic_write(path, text)
        return text

    # ---- constructors --------------------------------------------------------------------------
    @classmethod
    def from_torch(
        cls,
        model,
        input_shape: tuple[int, ...],
        name: str | None = None,
        *,
        unmapped: str = "error",
        tracer="auto",
        input_dtype=None,
    ) -> "Workload":
        """Trace a PyTorch model on one all-zero input of ``input_shape`` (batch dim included; set to 1,
        costs are per inference; ``input_dtype`` e.g. ``torch.long`` for token ids).

        ``tracer``: "fx" (torch.fx symbolic tracing with shape propagation), "export" (``torch.export``,
        non-strict: the ATen graph of the model on the example's shapes), "eager" (runs the model once and
        records every module and torch function call: handles data-dependent Python control flow),
        "hooks" (forward hooks on modules only: misses functional ops), "auto", or a fallback chain of
        them tried in order, e.g. ``("export", "hooks")``. Every frontend dispatches through
        ``cimkit.workload.registry``, so all give the same op for the same construct.

        "auto" tries fx, then export, then eager, then hooks, and warns naming why each one before the one
        used could not trace the model (torch's reason, first line, and the model's line where known): fx
        first because its graph is exact for plain torch models and fastest; export next because it traces
        what fx cannot (Hugging Face models: Python on shapes, tensor item assignment, model-output classes)
        and sees every ATen op, without running the model; eager next because it handles control flow on
        tensor values, which export refuses, though it records only the branches the all-zero input takes;
        hooks last, when the recorder cannot run, with a warning listing the functional ops it misses
        (e.g. "2 matmul (attention), 1 softmax"). A tracer given alone that cannot trace the model raises
        an ``InputError`` with torch's reason.

        Hugging Face models through export: sdpa attention (``F.scaled_dot_product_attention`` and its
        fused CPU / flash variants) is its Q K^T and A V matmuls and a softmax; GPT-2's ``Conv1D``
        (``addmm`` with a weight parameter) is a linear layer; embeddings are table lookups; ops are named
        by module path (``encoder.layer.0.attention.self.query``). The sequence length is that of
        ``input_shape``, e.g. ``(1, 128)`` with ``input_dtype=torch.long``; token ids longer than the model's
        ``config.max_position_embeddings`` raise an ``InputError`` naming both.

        A layer holding weights that cimkit cannot map (LSTM/GRU/RNN, ConvTranspose, Conv3d, ...) raises
        an ``InputError`` naming it, unless ``unmapped="warn"``: then it is kept as an op of kind
        "unmapped" (not priced) and a warning names it. An op no rule matches that holds no weights is
        kept as "unmapped" with its shape under either policy. A model that fails on the input raises one
        ``InputError`` with torch's reason."""
        from .trace import trace_torch

        return trace_torch(
            model,
            input_shape,
            name or type(model).__name__,
            check_unmapped_policy(unmapped),
            tracer=tracer,
            input_dtype=input_dtype,
        )

    @classmethod
    def from_onnx(
        cls,
        path: str | Path,
        name: str | None = None,
        *,
        unmapped: str = "error",
        input_shape: tuple[int, ...] | None = None,
        dims: dict[str, int] | None = None,
    ) -> "Workload":
        """Read an ONNX model (shapes by ONNX shape inference; weights are read for their shapes only).

        ``unmapped`` as for ``from_torch``. A model exported with symbolic sizes needs them bound: ``dims``
        binds them by name in every input (``{"sequence": 128}``), ``input_shape`` fixes the shape of the
        first graph input; a symbolic batch dim left unbound is taken as 1 (costs are per inference). An
        unbound symbolic size, or a name no input uses, raises an ``InputError`` naming it."""
        from .onnx_import import workload_from_onnx

        return workload_from_onnx(
            _as_path(path, "an ONNX model file"), name, check_unmapped_policy(unmapped), input_shape, dims
        )

    @classmethod
    def from_neurosim_csv(cls, path: str | Path, name: str | None = None) -> "Workload":
        """Read DNN+NeuroSim's network description: one layer per line, 8 comma-separated columns IFM_H,
        IFM_W, C_in, K_H, K_W, C_out, pooling-follows (0/1), stride (a trailing comma and blank lines are
        allowed). Convolutions use 'same' padding.

        Each size must be an integer from 1 to 2**20 and the pool flag 0 or 1; a layer may hold at most
        2**40 weights and take at most 2**53 MACs. Anything else (non-integers like 3.5, inf, nan,
        negative or absurd sizes, missing columns, non-UTF-8 or binary content, an empty file) raises an
        ``InputError`` naming the file, the line, the column and the value."""
        return _read_neurosim_csv(_as_path(path, "a NeuroSim network file"), name)


def _as_path(path, what: str) -> Path:
    if not isinstance(path, (str, Path)):
        raise InputError(f"expected a path to {what}, got {type(path).__name__}")
    return Path(path)


#: the 8 columns of a NeuroSim network file, in order
NEUROSIM_COLUMNS = ("IFM_H", "IFM_W", "C_in", "K_H", "K_W", "C_out", "pool", "stride")
_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_MAX_FIELD_CHARS = 40


def _csv_value(text: str, column: str, where: str) -> int:
    """The integer in one NeuroSim field, or an ``InputError`` naming ``where``, the column and the value."""
    allowed = "0 or 1" if column == "pool" else f"an integer from 1 to 2**20 ({MAX_CSV_DIM:,})"

    def bad(why: str) -> InputError:
        return InputError(
            f"{where}: column {NEUROSIM_COLUMNS.index(column) + 1} ({column}) = {short_repr(text)} "
            f"{why}; allowed: {allowed}"
        )

    value = text.strip()
    if not value:
        raise bad("is empty")
    if len(value) > _MAX_FIELD_CHARS:
        raise bad(f"is {len(value):,} characters long, not a size")
    if _INT_RE.fullmatch(value):
        number = int(value)
    elif _FLOAT_RE.fullmatch(value):
        f = float(value)
        if not math.isfinite(f):
            raise bad("is too large")
        if f != int(f):
            raise bad("is not an integer")
        number = int(f)
    elif value.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise bad("is not a finite number")
    else:
        raise bad("is not a number")
    if column == "pool":
        if number not in (0, 1):
            raise bad("is not a pool flag")
    elif not 1 <= number <= MAX_CSV_DIM:
        raise bad("is out of range")
    return number


def _csv_text(path: Path) -> str:
    """The text of a NeuroSim file: a UTF-8 file of at most ``MAX_CSV_BYTES`` bytes, else an error."""
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a NeuroSim network file (.csv)")
    if not path.is_file():
        raise InputError(f"no such NeuroSim network file: {path}")
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise InputError(
                f"{path}: {size:,} bytes is too large for a NeuroSim network file (at most {MAX_CSV_BYTES:,})"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the NeuroSim network file {path}: {exc.strerror or exc}") from None
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(f"{path}: UTF-16 text; save the NeuroSim network file as UTF-8")
    if b"\x00" in raw:
        raise InputError(f"{path}: binary content (NUL bytes); a NeuroSim network file is comma-separated text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); a NeuroSim "
            "network file is comma-separated text"
        ) from None


def _read_neurosim_csv(path: Path, name: str | None) -> Workload:
    text = _csv_text(path)
    ops: list[Op] = []
    layer = 0
    total_macs = 0
    for line, raw_line in enumerate(text.split("\n"), 1):
        where = f"{path}:{line}"
        row = [c.strip() for c in raw_line.rstrip("\r").split(",")]
        if not any(row):
            continue  # blank line
        while not row[-1]:
            row.pop()  # a trailing comma
        if len(row) != len(NEUROSIM_COLUMNS):
            raise InputError(
                f"{where}: {len(row)} column(s), expected 8: {', '.join(NEUROSIM_COLUMNS)} "
                f"(got {short_repr(','.join(row))})"
            )
        h, w, cin, kh, kw, cout, pool, stride = (_csv_value(c, col, where) for c, col in zip(row, NEUROSIM_COLUMNS))
        layer += 1
        ho, wo = math.ceil(h / stride), math.ceil(w / stride)
        kind = "linear" if (h, w, kh, kw) == (1, 1, 1, 1) else "conv"
        op = Op(
            f"layer{layer}",
            kind,
            cin * kh * kw,
            cout,
            1,
            (kh, kw),
            (stride, stride),
            (cin, h, w),
            (cout, ho, wo),
            ho * wo,
            ho * wo * cin * kh * kw * cout,
        )
        check_op_sizes(op, where)
        total_macs += op.macs
        if total_macs > MAX_MACS:
            raise InputError(
                f"{where}: the layers up to this line take {total_macs:,} MACs per inference; at most "
                f"2**53 ({MAX_MACS:,}, exact in float64) are accepted"
            )
        ops.append(op)
        if pool:
            if ho < 2 or wo < 2:
                raise InputError(
                    f"{where}: pool = 1 after a {ho} x {wo} output map would leave an empty map; "
                    "pooling (2 x 2) needs an output of at least 2 x 2"
                )
            ops.append(
                Op(
                    f"layer{layer}_pool",
                    "pool",
                    in_shape=(cout, ho, wo),
                    out_shape=(cout, ho // 2, wo // 2),
                    elements=cout * (ho // 2) * (wo // 2),
                )
            )
    if not ops:
        raise InputError(
            f"{path}: no layers: the file is empty or holds only blank lines; a NeuroSim network file "
            f"has one line per layer with 8 integers: {', '.join(NEUROSIM_COLUMNS)}"
        )
    return Workload(name or path.stem, ops[0].in_shape, ops)
