"""Property tests: whatever bytes or rows reach the NeuroSim CSV reader or the ONNX importer, the only
exception is a ``CimkitError`` with a message (never a traceback from inside a parser), nothing hangs,
and valid NeuroSim rows give exactly the ops and MACs computed directly from the file's definition.

Seeded (``derandomize=True``) so that CI runs the same examples every time; each example is a few
hundred bytes, so the whole file runs in seconds.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cimkit as ck
from cimkit.errors import CimkitError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

FUZZ = settings(
    max_examples=120,
    deadline=3000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_workload")


def _accepts_or_refuses_cleanly(read, path):
    """``read(path)`` returns a Workload or raises a CimkitError with a non-empty message; nothing else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the importers warn about unmapped / unused weights
        try:
            wl = read(path)
        except CimkitError as exc:
            assert str(exc).strip()
            return None
    assert isinstance(wl, ck.Workload) and wl.ops
    return wl


# ---- NeuroSim CSV ---------------------------------------------------------------------------------
_ODD_FIELD = st.one_of(
    st.integers(-5, 2**21).map(str),
    st.sampled_from(
        [
            "",
            " 3",
            "3.0",
            "1e1",
            "3.5",
            "1e30",
            "1e400",
            "inf",
            "-inf",
            "nan",
            "0x10",
            "3_2",
            "x",
            "\t",
            '"4"',
            "2**20",
            "1048577",
            "\uff19",
            "9" * 50,
        ]
    ),
    st.text(max_size=8),
)
_VALID_ROW = st.tuples(*[st.integers(1, 40)] * 6, st.integers(0, 1), st.integers(1, 4)).map(
    lambda r: [str(v) for v in r]
)


@st.composite
def _row(draw):
    """A valid row, often with one field replaced by an odd value, a field more or a field less."""
    row = draw(_VALID_ROW)
    change = draw(st.sampled_from(["none", "none", "field", "field", "drop", "add", "random"]))
    if change == "field":
        row[draw(st.integers(0, 7))] = draw(_ODD_FIELD)
    elif change == "drop":
        del row[draw(st.integers(0, 7))]
    elif change == "add":
        row.append(draw(st.sampled_from(["", "1", "x"])))
    elif change == "random":
        row = draw(st.lists(_ODD_FIELD, max_size=10))
    return row


@FUZZ
@given(data=st.binary(max_size=300))
def test_csv_random_bytes(workdir, data):
    path = workdir / "bytes.csv"
    path.write_bytes(data)
    _accepts_or_refuses_cleanly(ck.Workload.from_neurosim_csv, path)


_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _expected_macs(text: str):
    """The file's MACs by the documented rules (8 integer fields per non-blank line, a trailing comma
    allowed, sizes 1..2**20, pool 0 or 1, a pooled map at least 2 x 2), or None if it must be refused."""
    macs, layers = 0, 0
    for line in text.split("\n"):
        fields = [f.strip() for f in line.rstrip("\r").split(",")]
        if not any(fields):
            continue
        while not fields[-1]:
            fields.pop()
        if len(fields) != 8 or not all(_NUMBER.fullmatch(f) for f in fields):
            return None
        values = [float(f) for f in fields]
        if not all(math.isfinite(v) and v == int(v) for v in values):
            return None
        h, w, cin, kh, kw, cout, pool, stride = (int(v) for v in values)
        if pool not in (0, 1) or not all(1 <= v <= 2**20 for v in (h, w, cin, kh, kw, cout, stride)):
            return None
        ho, wo = -(-h // stride), -(-w // stride)
        if pool and (ho < 2 or wo < 2):
            return None
        macs += ho * wo * cin * kh * kw * cout
        layers += 1
    return macs if layers else None


@FUZZ
@given(rows=st.lists(_row(), max_size=5), sep=st.sampled_from(["\n", "\r\n", "\r"]))
def test_csv_random_rows(workdir, rows, sep):
    """Accepted exactly when the documented rules accept the file, and then with the MACs they give."""
    text = sep.join(",".join(r) for r in rows)
    path = workdir / "rows.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    wl = _accepts_or_refuses_cleanly(ck.Workload.from_neurosim_csv, path)
    try:
        expected = _expected_macs(text.encode("utf-8", "surrogatepass").decode("utf-8-sig"))
    except UnicodeDecodeError:
        expected = None
    assert (wl.macs if wl is not None else None) == expected


_ROW = st.tuples(
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(1, 64),
    st.integers(1, 7),
    st.integers(1, 7),
    st.integers(1, 64),
    st.integers(0, 1),
    st.integers(1, 4),
)


@FUZZ
@given(rows=st.lists(_ROW, min_size=1, max_size=6))
def test_csv_valid_rows_give_the_direct_op_count_and_macs(workdir, rows):
    path = workdir / "valid.csv"
    path.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    ops = macs = 0
    empty_pool = False
    for h, w, cin, kh, kw, cout, pool, stride in rows:
        ho, wo = -(-h // stride), -(-w // stride)  # 'same' padding
        ops += 1 + pool
        macs += ho * wo * cin * kh * kw * cout
        empty_pool |= bool(pool) and (ho < 2 or wo < 2)
    if empty_pool:  # a 2x2 pool on a 1-wide map would leave nothing: refused, by line
        with pytest.raises(CimkitError, match=r"valid.csv:\d+: pool = 1 after a"):
            ck.Workload.from_neurosim_csv(path)
        return
    wl = ck.Workload.from_neurosim_csv(path)
    assert len(wl.ops) == ops and wl.macs == macs
    assert [o.weights for o in wl.weighted_ops] == [cin * kh * kw * cout for _, _, cin, kh, kw, cout, _, _ in rows]


# ---- ONNX -------------------------------------------------------------------------------------------
def _init(name, shape):
    return numpy_helper.from_array(np.full(shape, 0.5, np.float32), name)


def _seed_models() -> list[bytes]:
    """Small valid models covering the importer's branches: conv / pool / gemm, conv1d + norm, matmul
    with a transposed weight + softmax, an LSTM, an embedding gather."""
    vi = helper.make_tensor_value_info
    f = TensorProto.FLOAT
    graphs = [
        helper.make_graph(
            [
                helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                helper.make_node("Relu", ["c"], ["r"]),
                helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                helper.make_node("Flatten", ["p"], ["fl"]),
                helper.make_node("Gemm", ["fl", "fc", "fb"], ["y"], transB=1),
            ],
            "cnn",
            [vi("x", f, [1, 1, 6, 6])],
            [vi("y", f, [1, 3])],
            [_init("w", (2, 1, 3, 3)), _init("b", (2,)), _init("fc", (3, 18)), _init("fb", (3,))],
        ),
        helper.make_graph(
            [
                helper.make_node("Conv", ["x", "w"], ["c"], strides=[2]),
                helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"]),
            ],
            "c1",
            [vi("x", f, [1, 2, 9])],
            [vi("y", f, [1, 3, 4])],
            [_init("w", (3, 2, 3)), _init("s", (3,)), _init("bb", (3,)), _init("m", (3,)), _init("v", (3,))],
        ),
        helper.make_graph(
            [
                helper.make_node("Transpose", ["w"], ["wt"]),
                helper.make_node("MatMul", ["x", "wt"], ["mm"]),
                helper.make_node("Add", ["mm", "b"], ["a"]),
                helper.make_node("Softmax", ["a"], ["y"], axis=-1),
            ],
            "mlp",
            [vi("x", f, [1, 4, 5])],
            [vi("y", f, [1, 4, 6])],
            [_init("w", (6, 5)), _init("b", (6,))],
        ),
        helper.make_graph(
            [
                helper.make_node("LSTM", ["x", "W", "R"], ["h"], hidden_size=3),
                helper.make_node("Squeeze", ["h", "ax"], ["y"]),
            ],
            "lstm",
            [vi("x", f, [4, 1, 2])],
            [vi("y", f, [4, 1, 3])],
            [_init("W", (1, 12, 2)), _init("R", (1, 12, 3)), numpy_helper.from_array(np.array([1], np.int64), "ax")],
        ),
        helper.make_graph(
            [
                helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT64),
                helper.make_node("Gather", ["E", "i"], ["e"]),
                helper.make_node("MatMul", ["e", "w"], ["y"]),
            ],
            "emb",
            [vi("x", f, [1, 3])],
            [vi("y", f, [1, 3, 2])],
            [_init("E", (10, 4)), _init("w", (4, 2))],
        ),
    ]
    return [helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString() for g in graphs]


SEEDS = _seed_models()


def _read_onnx(unmapped):
    return lambda path: ck.Workload.from_onnx(path, unmapped=unmapped)


def test_seed_models_are_valid(workdir):
    """The fuzzing below starts from models the importer reads (so mutations test more than the parser)."""
    for i, data in enumerate(SEEDS):
        path = workdir / f"seed{i}.onnx"
        path.write_bytes(data)
        assert _accepts_or_refuses_cleanly(_read_onnx("warn"), path) is not None


@FUZZ
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
    unmapped=st.sampled_from(["error", "warn"]),
)
def test_onnx_bytes_flipped(workdir, seed, edits, unmapped):
    data = bytearray(SEEDS[seed])
    for where, value in edits:
        data[int(where * len(data))] = value
    path = workdir / "flipped.onnx"
    path.write_bytes(bytes(data))
    _accepts_or_refuses_cleanly(_read_onnx(unmapped), path)


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), cut=st.floats(0, 1, exclude_max=True))
def test_onnx_truncated(workdir, seed, cut):
    path = workdir / "truncated.onnx"
    path.write_bytes(SEEDS[seed][: int(cut * len(SEEDS[seed]))])
    _accepts_or_refuses_cleanly(_read_onnx("warn"), path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_onnx_random_bytes(workdir, data):
    path = workdir / "random.onnx"
    path.write_bytes(data)
    _accepts_or_refuses_cleanly(_read_onnx("error"), path)


_OP_TYPES = [
    "Conv",
    "MatMul",
    "Gemm",
    "LSTM",
    "GRU",
    "ConvTranspose",
    "Gather",
    "Relu",
    "Add",
    "Softmax",
    "Loop",
    "Transpose",
    "Reshape",
    "Foo",
    "MaxPool",
    "BatchNormalization",
    "Einsum",
    "Identity",
]
_VALUES = [0, 1, 2, 3, -1, 7, 2**31, 2**40]


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), data=st.data())
def test_onnx_fields_perturbed(workdir, seed, data):
    """A valid model with one structural field changed: an op type, an attribute, a weight's dims or
    rank, an input name, a graph input dim, a domain, or a node removed."""
    model = onnx.load_from_string(SEEDS[seed])
    g = model.graph
    node = g.node[data.draw(st.integers(0, len(g.node) - 1))]
    change = data.draw(
        st.sampled_from(["op_type", "attribute", "dims", "rank", "input", "input_dim", "remove", "domain"])
    )
    if change == "op_type":
        node.op_type = data.draw(st.sampled_from(_OP_TYPES))
    elif change == "attribute" and node.attribute:
        attr = node.attribute[data.draw(st.integers(0, len(node.attribute) - 1))]
        if attr.ints:
            attr.ints[data.draw(st.integers(0, len(attr.ints) - 1))] = data.draw(st.sampled_from(_VALUES))
        else:
            attr.i = data.draw(st.sampled_from(_VALUES))
    elif change == "dims":
        t = g.initializer[data.draw(st.integers(0, len(g.initializer) - 1))]
        if t.dims:
            t.dims[data.draw(st.integers(0, len(t.dims) - 1))] = data.draw(st.sampled_from(_VALUES))
    elif change == "rank":  # a weight with a dim more or less (its data no longer matches: the file is corrupt)
        t = g.initializer[data.draw(st.integers(0, len(g.initializer) - 1))]
        if t.dims and data.draw(st.booleans()):
            del t.dims[-1]
        else:
            t.dims.append(data.draw(st.sampled_from([1, 2, 3])))
    elif change == "input" and node.input:
        names = [t.name for t in g.initializer] + ["x", "missing", ""]
        node.input[data.draw(st.integers(0, len(node.input) - 1))] = data.draw(st.sampled_from(names))
    elif change == "input_dim":
        dims = g.input[0].type.tensor_type.shape.dim
        dims[data.draw(st.integers(0, len(dims) - 1))].dim_value = data.draw(st.sampled_from(_VALUES))
    elif change == "remove":
        g.node.remove(node)
    elif change == "domain":
        node.domain = data.draw(st.sampled_from(["com.example", "ai.onnx.ml", ""]))
    path = workdir / "perturbed.onnx"
    path.write_bytes(model.SerializeToString())
    wl = _accepts_or_refuses_cleanly(_read_onnx(data.draw(st.sampled_from(["error", "warn"]))), path)
    if wl is not None:  # whatever was accepted is self-consistent: each weight counted once, nothing negative
        c = wl.weight_counts
        assert c["total"] == c["mapped"] + c["digital"] + c["unmapped"] + c["unused"]
        assert all(v >= 0 for v in c.values())
        assert all(op.macs >= 0 and op.weights >= 0 and op.elements >= 0 for op in wl.ops)
        assert math.isfinite(float(wl.macs))
