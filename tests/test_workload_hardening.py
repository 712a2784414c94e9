"""Workload importers never give a silently wrong answer: every weight of a model is mapped, refused
or reported; malformed inputs raise one ``InputError`` naming the file, the place and what is allowed."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import cimkit as ck
from cimkit.errors import CimkitError, InputError
from cimkit.workload import load_workload

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


# ---- helpers -------------------------------------------------------------------------------------
def _export(model: nn.Module, shape, path: Path, dtype=torch.float32) -> Path:
    """``model`` as ONNX via the TorchScript exporter (offline; no onnxscript needed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(shape, dtype=dtype),), str(path), dynamo=False)
    return path


def _graph(path: Path, nodes, inits: dict[str, tuple], x_shape, y_shape, extra_opsets=()) -> Path:
    """An ONNX model of ``nodes`` with all-zero float initializers of the given shapes."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        [numpy_helper.from_array(np.zeros(s, np.float32), n) for n, s in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), *extra_opsets])
    onnx.save(model, str(path))
    return path


def _initializer_weights(path: Path) -> int:
    """Elements of the float initializers and float Constant nodes of an ONNX file, read with onnx directly."""
    model = onnx.load(str(path))
    constants = [a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return sum(math.prod(t.dims) for t in [*model.graph.initializer, *constants] if t.data_type == TensorProto.FLOAT)


def _balanced(wl: ck.Workload) -> None:
    c = wl.weight_counts
    assert c is not None and c["total"] == c["mapped"] + c["digital"] + c["unmapped"] + c["unused"]


class _LinearLstmLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.lstm, self.b = nn.Linear(16, 32), nn.LSTM(32, 64, batch_first=True), nn.Linear(64, 4)

    def forward(self, x):
        return self.b(self.lstm(self.a(x))[0])


# ---- ONNX: ops with weights the cost model cannot map --------------------------------------------
def test_onnx_lstm_is_refused_naming_it_and_its_weights(tmp_path):
    path = _export(_LinearLstmLinear(), (1, 5, 16), tmp_path / "lstm.onnx")
    with pytest.raises(InputError, match=r"LSTM.*weights.*unmapped='warn'") as info:
        ck.Workload.from_onnx(path)
    total = _initializer_weights(path)
    assert f"of the model's {total:,} weights" in str(info.value)


def test_onnx_lstm_kept_as_unmapped_with_warn_and_every_weight_counted(tmp_path):
    path = _export(_LinearLstmLinear(), (1, 5, 16), tmp_path / "lstm.onnx")
    with pytest.warns(UserWarning, match="LSTM"):
        wl = ck.Workload.from_onnx(path, unmapped="warn")
    (lstm,) = wl.unmapped_ops
    assert lstm.source_type == "LSTM" and lstm.unmapped_weights > 20000
    assert [o.in_features * o.out_features for o in wl.weighted_ops] == [16 * 32, 64 * 4]
    _balanced(wl)
    assert wl.weight_counts["total"] == _initializer_weights(path)
    assert wl.weight_counts["mapped"] == wl.weights and wl.weight_counts["unmapped"] == lstm.unmapped_weights
    # the cost model prices nothing for the unmapped op, and it stays visible in the report
    without = ck.Workload(wl.name, wl.input_shape, [o for o in wl.ops if o.kind != "unmapped"])
    r, r0 = ck.estimate(wl, "rram-22nm"), ck.estimate(without, "rram-22nm")
    assert r.energy_j == pytest.approx(r0.energy_j) and r.latency_s == pytest.approx(r0.latency_s)
    assert any(layer["kind"] == "unmapped" for layer in r.layers)


@pytest.mark.parametrize(
    "op_type,inits,x_shape,y_shape,attrs",
    [
        ("GRU", {"W": (1, 12, 3), "R": (1, 12, 4)}, [5, 1, 3], [5, 1, 1, 4], {"hidden_size": 4}),
        ("RNN", {"W": (1, 4, 3), "R": (1, 4, 4)}, [5, 1, 3], [5, 1, 1, 4], {"hidden_size": 4}),
        ("ConvTranspose", {"W": (2, 4, 3, 3)}, [1, 2, 6, 6], [1, 4, 8, 8], {}),
    ],
)
def test_onnx_recurrent_and_transposed_layers_are_refused(tmp_path, op_type, inits, x_shape, y_shape, attrs):
    node = helper.make_node(op_type, ["x", *inits], ["y"], name="layer", **attrs)
    path = _graph(tmp_path / "m.onnx", [node], inits, x_shape, y_shape)
    held = sum(math.prod(s) for s in inits.values())
    with pytest.raises(InputError, match=rf"'layer' \({op_type}.*{held:,} weights"):
        ck.Workload.from_onnx(path)
    with pytest.warns(UserWarning, match=op_type):
        wl = ck.Workload.from_onnx(path, unmapped="warn")
    assert [o.kind for o in wl.ops] == ["unmapped"] and wl.unmapped_weights == held


def test_onnx_conv3d_is_never_read_as_1d(tmp_path):
    path = _export(nn.Sequential(nn.Conv3d(2, 4, 3), nn.ReLU()), (1, 2, 6, 6, 6), tmp_path / "c3.onnx")
    with pytest.raises(InputError, match="3-D kernel"):
        ck.Workload.from_onnx(path)
    with pytest.warns(UserWarning, match="3-D kernel"):
        wl = ck.Workload.from_onnx(path, unmapped="warn")
    assert not wl.weighted_ops and wl.unmapped_weights == 4 * 2 * 27 + 4


def test_onnx_conv1d_still_maps(tmp_path):
    path = _export(nn.Sequential(nn.Conv1d(2, 4, 3, stride=2)), (1, 2, 11), tmp_path / "c1.onnx")
    (conv,) = ck.Workload.from_onnx(path).ops
    assert (conv.kind, conv.in_features, conv.out_features, conv.kernel, conv.stride, conv.vectors) == (
        "conv",
        6,
        4,
        (1, 3),
        (1, 2),
        5,
    )


def test_onnx_embedding_gather_is_an_embedding_op_on_digital_memory(tmp_path):
    model = nn.Sequential(nn.Embedding(100, 8), nn.Linear(8, 2))
    path = _export(model, (1, 5), tmp_path / "emb.onnx", dtype=torch.long)
    emb, fc = ck.Workload.from_onnx(path).ops
    assert (emb.kind, emb.fn, emb.in_features, emb.out_features, emb.vectors, emb.elements, emb.weights) == (
        "embedding",
        "embedding",
        100,
        8,
        5,
        40,
        0,
    )  # the table is digital memory, not crossbar weights
    assert fc.kind == "linear" and fc.vectors == 5


def test_onnx_custom_op_on_a_weight_and_loop_with_weights_are_refused(tmp_path):
    custom = _graph(
        tmp_path / "custom.onnx",
        [helper.make_node("Foo", ["x", "w"], ["y"], name="f", domain="my.ops")],
        {"w": (3, 5)},
        [1, 3],
        [1, 5],
        [helper.make_opsetid("my.ops", 1)],
    )
    with pytest.raises(InputError, match=r"'f' \(my.ops.Foo on a weight tensor, 15 weights"):
        ck.Workload.from_onnx(custom)
    body = helper.make_graph(
        [helper.make_node("MatMul", ["xin", "w"], ["xo"]), helper.make_node("Identity", ["cond"], ["cond_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("xin", TensorProto.FLOAT, [1, 3]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("xo", TensorProto.FLOAT, [1, 3]),
        ],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["n", "", "x"], ["y"], name="loop", body=body)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [
            numpy_helper.from_array(np.zeros((3, 3), np.float32), "w"),
            numpy_helper.from_array(np.array(3, np.int64), "n"),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "loop.onnx"))
    with pytest.raises(InputError, match=r"'loop' \(Loop whose body uses weights, 9 weights"):
        ck.Workload.from_onnx(tmp_path / "loop.onnx")


def test_onnx_weight_accounting_matches_the_initializers(tmp_path):
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)
    )
    path = _export(model, (1, 3, 8, 8), tmp_path / "cnn.onnx")
    wl = ck.Workload.from_onnx(path)
    _balanced(wl)
    assert wl.weight_counts["total"] == _initializer_weights(path)
    assert wl.weight_counts["mapped"] == wl.weights and wl.weight_counts["unused"] == 0


def test_onnx_unused_initializer_is_reported(tmp_path):
    path = _graph(
        tmp_path / "dead.onnx",
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"w": (3, 5), "dead": (10, 10)},
        [1, 3],
        [1, 5],
    )
    with pytest.warns(UserWarning, match=r"100 weights in 1 tensor\(s\) are used by no op.*'dead' \(10, 10\)"):
        wl = ck.Workload.from_onnx(path)
    assert wl.weight_counts == {"total": 115, "mapped": 15, "digital": 0, "unmapped": 0, "unused": 100}


# ---- ONNX: weight-stationary products the old importer priced as dynamic or miscounted ------------
def test_onnx_transposed_weight_and_weight_on_the_left_are_linear_layers(tmp_path):
    t = _graph(
        tmp_path / "t.onnx",
        [helper.make_node("Transpose", ["w"], ["wt"]), helper.make_node("MatMul", ["x", "wt"], ["y"], name="mm")],
        {"w": (5, 3)},
        [1, 3],
        [1, 5],
    )
    (op,) = ck.Workload.from_onnx(t).ops
    assert (op.kind, op.in_features, op.out_features, op.vectors) == ("linear", 3, 5, 1)
    left = _graph(
        tmp_path / "l.onnx",
        [helper.make_node("MatMul", ["w", "x"], ["y"], name="mm")],
        {"w": (5, 3)},
        [1, 3, 7],
        [1, 5, 7],
    )
    (op,) = ck.Workload.from_onnx(left).ops
    assert (op.kind, op.in_features, op.out_features, op.vectors, op.macs) == ("linear", 3, 5, 7, 105)


def test_onnx_gemm_transposed_input_counts_its_rows(tmp_path):
    path = _graph(
        tmp_path / "g.onnx",
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="g", transA=1, transB=1)],
        {"w": (5, 3)},
        [3, 2],
        [2, 5],
    )
    (op,) = ck.Workload.from_onnx(path).ops
    assert (op.kind, op.in_features, op.out_features, op.vectors, op.macs) == ("linear", 3, 5, 2, 30)


def test_onnx_symbolic_sizes_are_refused_or_fixed_by_input_shape(tmp_path):
    path = _graph(
        tmp_path / "s.onnx",
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"w": (3, 5)},
        ["N", "T", 3],
        ["N", "T", 5],
    )
    with pytest.raises(InputError, match=r"symbolic sizes \['T'\].*input_shape"):
        ck.Workload.from_onnx(path)
    (op,) = ck.Workload.from_onnx(path, input_shape=(1, 7, 3)).ops
    assert (op.vectors, op.macs) == (7, 105)
    with pytest.raises(InputError, match="has 2 dims but input 'x' has 3"):
        ck.Workload.from_onnx(path, input_shape=(1, 3))


def test_onnx_external_data_is_found_beside_the_model(tmp_path, monkeypatch):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [numpy_helper.from_array(np.ones((64, 64), np.float32), "w")],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        str(tmp_path / "ext.onnx"),
        save_as_external_data=True,
        location="ext.data",
        size_threshold=0,
    )
    monkeypatch.chdir(tmp_path.parent)
    assert ck.Workload.from_onnx(tmp_path / "ext.onnx").weights == 64 * 64
    (tmp_path / "ext.data").unlink()
    with pytest.raises(InputError, match="ext.data"):
        ck.Workload.from_onnx(tmp_path / "ext.onnx")


def test_onnx_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        ck.Workload.from_onnx(tmp_path)
    with pytest.raises(InputError, match="unmapped = 'ignore': allowed values are 'error'"):
        ck.Workload.from_onnx(tmp_path / "x.onnx", unmapped="ignore")


# ---- torch -------------------------------------------------------------------------------------------
class _Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it, the forward-hook fallback runs."""

    def __init__(self, layer: nn.Module, head_in: int):
        super().__init__()
        self.layer, self.head = layer, nn.Linear(head_in, 2)

    def forward(self, x):
        if x.sum() > 0:
            return x
        y = self.layer(x)
        y = y[0] if isinstance(y, tuple) else y
        return self.head(y.flatten(1))


@pytest.mark.parametrize(
    "layer,shape,head_in,type_name",
    [
        (nn.LSTM(8, 16, batch_first=True), (1, 4, 8), 64, "LSTM"),
        (nn.Conv3d(2, 2, 3), (1, 2, 4, 4, 4), 16, "Conv3d"),
    ],
)
def test_torch_hook_fallback_refuses_unmapped_layers(layer, shape, head_in, type_name):
    held = sum(p.numel() for p in layer.parameters())
    with (
        pytest.warns(UserWarning, match="torch.fx could not trace"),
        pytest.raises(InputError, match=rf"'layer' \({type_name}, {held:,} weights\)"),
    ):
        ck.Workload.from_torch(_Untraceable(layer, head_in), shape)
    with pytest.warns(UserWarning) as record:
        wl = ck.Workload.from_torch(_Untraceable(layer, head_in), shape, unmapped="warn")
    messages = [str(w.message) for w in record]
    assert any("could not trace" in m for m in messages) and any(
        "kept 1 op(s) as 'unmapped'" in m and type_name in m for m in messages
    )
    assert all(w.filename == __file__ for w in record)  # attributed to the caller's line
    # the eager fallback sees the branch condition too: x.sum() (a reduction) and > 0 (a comparison)
    assert [(o.kind, o.fn) for o in wl.ops] == [
        ("pool", "sum"),
        ("eltwise", "cmp"),
        ("unmapped", ""),
        ("linear", "linear"),
    ]
    assert wl.unmapped_weights == held
    _balanced(wl)
    assert wl.weight_counts["total"] == held + head_in * 2 + 2


@pytest.mark.parametrize(
    "layer,shape,type_name",
    [
        (nn.LSTM(8, 8), (1, 4, 8), "LSTM"),
        (nn.GRU(8, 8), (1, 4, 8), "GRU"),
        (nn.Conv3d(2, 2, 3), (1, 2, 5, 5, 5), "Conv3d"),
        (nn.ConvTranspose2d(2, 2, 3), (1, 2, 5, 5), "ConvTranspose2d"),
    ],
)
def test_torch_fx_refuses_unmapped_layers(layer, shape, type_name):
    with pytest.raises(InputError, match=rf"'0' \({type_name}, [\d,]+ weights\).*unmapped='warn'"):
        ck.Workload.from_torch(nn.Sequential(layer), shape)


def test_torch_bare_layers_trace_to_one_op():
    (op,) = ck.Workload.from_torch(nn.Linear(4, 3), (1, 4)).ops
    assert (op.kind, op.in_features, op.out_features, op.macs) == ("linear", 4, 3, 12)
    (op,) = ck.Workload.from_torch(nn.Conv2d(3, 4, 3, stride=2), (1, 3, 9, 9)).ops
    assert (op.kind, op.in_features, op.out_features, op.stride, op.vectors) == ("conv", 27, 4, (2, 2), 16)


def test_torch_parameters_used_functionally_are_mapped():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Parameter(torch.zeros(6, 4))  # used by F.linear
            self.w = nn.Parameter(torch.zeros(6, 5))  # used by a matmul: a weight, not an activation
            self.cls = nn.Parameter(torch.zeros(1, 1, 4))  # data (a class token), not a matrix

        def forward(self, x):
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
            return torch.nn.functional.linear(x, self.proj) @ self.w

    wl = ck.Workload.from_torch(Custom(), (1, 3, 4))
    assert [(o.name, o.kind, o.in_features, o.out_features, o.vectors) for o in wl.weighted_ops] == [
        ("proj", "linear", 4, 6, 4),
        ("w", "linear", 6, 5, 4),
    ]
    assert wl.weight_counts == {"total": 58, "mapped": 54, "digital": 4, "unmapped": 0, "unused": 0}


def test_dynamic_matmul_holds_no_weights():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k = nn.Linear(32, 32, bias=False), nn.Linear(32, 32, bias=False)

        def forward(self, x):
            return self.q(x) @ self.k(x).transpose(-1, -2)

    wl = ck.Workload.from_torch(Attention(), (1, 10, 32))
    assert wl.weights == 2 * 32 * 32 == wl.weight_counts["mapped"]


def test_torch_unused_parameters_are_reported():
    class Aux(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.aux = nn.Linear(3, 3), nn.Linear(3, 3)

        def forward(self, x):
            return self.a(x)

    with pytest.warns(UserWarning, match=r"12 weights in 2 tensor\(s\) are used by no op.*'aux.weight'"):
        wl = ck.Workload.from_torch(Aux(), (1, 3))
    assert wl.weight_counts["unused"] == 12


@pytest.mark.parametrize(
    "model,shape,reason",
    [
        (nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), (1, 3, 32, 32), "mat1 and mat2 shapes cannot be multiplied"),
        (nn.Sequential(nn.Conv2d(3, 4, 3)), (1, 1, 32, 32), "expected input.*to have 3 channels"),
    ],
)
def test_torch_wrong_input_shape_is_one_clear_error(model, shape, reason, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'could not trace' warning before the error
        with pytest.raises(InputError, match=rf"rejected an all-zero input of shape \(1, .*{reason}.*input_shape"):
            ck.Workload.from_torch(model, shape)
    assert "Traceback" not in capsys.readouterr().err


def test_torch_forward_failing_for_other_reasons():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    class TwoInputs(nn.Module):
        def forward(self, x, y):
            return x + y

    with pytest.raises(InputError, match="ValueError: boom"):
        ck.Workload.from_torch(Boom(), (1, 3))
    with pytest.raises(InputError, match="missing 1 required positional argument"):
        ck.Workload.from_torch(TwoInputs(), (1, 3))
    with pytest.raises(InputError, match=r"integers from 1 to 2\*\*20.*\(1, 3.5\)"):
        ck.Workload.from_torch(nn.Linear(3, 3), (1, 3.5))
    with pytest.raises(InputError, match="unmapped = 'skip'"):
        ck.Workload.from_torch(nn.Linear(3, 3), (1, 3), unmapped="skip")


# ---- NeuroSim CSV ---------------------------------------------------------------------------------
GOOD = "32,32,3,3,3,128,0,1"


@pytest.mark.parametrize(
    "row,match",
    [
        (
            "32,32,inf,3,3,128,0,1",
            r"net.csv:1: column 3 \(C_in\) = 'inf' is not a finite number; allowed: an integer from 1 to 2\*\*20",
        ),
        ("32,nan,3,3,3,128,0,1", r"net.csv:1: column 2 \(IFM_W\) = 'nan' is not a finite number"),
        (
            "32,32,1e30,3,3,128,0,1",
            r"net.csv:1: column 3 \(C_in\) = '1e30' is out of range; allowed: an integer from 1 to 2\*\*20",
        ),
        (
            "32,32," + "9" * 200_000 + ",3,3,128,0,1",
            r"net.csv:1: column 3 \(C_in\) = '9{20,}.*\(200,002 characters\) is 200,000 characters long",
        ),
        (
            "32,32,3,3,3,128,0",
            r"net.csv:1: 7 column\(s\), expected 8: IFM_H, IFM_W, C_in, K_H, K_W, C_out, pool, stride",
        ),
        ("32,32,3,3,3,128,0,1,5", r"net.csv:1: 9 column\(s\), expected 8"),
        ("32,32,3.5,3,3,128,0,1", r"net.csv:1: column 3 \(C_in\) = '3.5' is not an integer"),
        ("32,32,3,-3,3,128,0,1", r"net.csv:1: column 4 \(K_H\) = '-3' is out of range"),
        ("32,32,3,3,3,128,2,1", r"net.csv:1: column 7 \(pool\) = '2' is not a pool flag; allowed: 0 or 1"),
        ("1048576,1048576,1048576,3,3,128,0,1", r"net.csv:1: layer 'layer1' would take .* at most 2\*\*53"),
        ("1,1,8,1,1,8,1,1", r"net.csv:1: pool = 1 after a 1 x 1 output map"),
        (f"{GOOD}\n\n32,32,x,3,3,128,0,1", r"net.csv:3: column 3 \(C_in\) = 'x' is not a number"),
    ],
)
def test_neurosim_csv_bad_rows(tmp_path, row, match):
    path = tmp_path / "net.csv"
    path.write_text(row + "\n")
    with pytest.raises(InputError, match=match) as info:
        ck.Workload.from_neurosim_csv(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "no layers: the file is empty"),
        (b"\n  \n,,,\n", "no layers: the file is empty or holds only blank lines"),
        (b"\x00\x01\x02\x03", r"binary content \(NUL bytes\)"),
        (GOOD.encode() + b"\xe9\n", r"not UTF-8 text \(byte 19"),
        (GOOD.encode("utf-16"), "UTF-16 text"),
    ],
)
def test_neurosim_csv_bad_files(tmp_path, content, match):
    path = tmp_path / "net.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        ck.Workload.from_neurosim_csv(path)
    with pytest.raises(InputError, match="is a folder"):
        ck.Workload.from_neurosim_csv(tmp_path)


def test_neurosim_csv_accepts_trailing_commas_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "net.csv"
    path.write_bytes(b"\xef\xbb\xbf32,32,3,3,3,16,1,1,\r\n\r\n16, 16, 16, 3, 3, 8, 0, 2\r\n")
    wl = ck.Workload.from_neurosim_csv(path)
    assert [o.kind for o in wl.ops] == ["conv", "pool", "conv"]
    assert wl.macs == 32 * 32 * 27 * 16 + 8 * 8 * 144 * 8


# ---- outputs and names ----------------------------------------------------------------------------
def test_to_json_is_atomic(tmp_path, monkeypatch):
    wl = ck.zoo.workload("lenet")
    path = tmp_path / "wl.json"
    path.write_text("previous")
    real = Path.write_text

    def half_then_fail(self, data, *args, **kwargs):
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(CimkitError, match="No space left"):
        wl.to_json(path)
    monkeypatch.undo()
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["wl.json"]
    wl.to_json(path)
    assert path.read_text() == wl.to_json()
    with pytest.raises(InputError, match="is a folder"):
        wl.to_json(tmp_path)


def test_load_workload_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"unknown workload 'nonet': not a zoo network \(lenet, vgg8"):
        load_workload("nonet")
    with pytest.raises(InputError, match=r"workload missing.onnx: no such ONNX model"):
        load_workload("missing.onnx")
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(InputError, match="dir.onnx: is a folder"):
        load_workload("dir.onnx")
    with pytest.raises(InputError, match=r"unsupported file type '.txt'; give an .onnx model, a NeuroSim .csv"):
        load_workload("net.txt")
    with pytest.raises(InputError, match="is a folder; give a zoo name"):
        load_workload(str(tmp_path))
    _export(nn.Sequential(nn.Linear(4, 3)), (1, 4), tmp_path / "upper.ONNX")
    assert load_workload("upper.ONNX").weights == 12
    (tmp_path / "NET.CSV").write_text(GOOD + "\n")
    assert len(load_workload("NET.CSV")) == 1
    assert issubclass(InputError, CimkitError) and issubclass(CimkitError, ValueError)


def test_workload_str_lists_unmapped_ops_and_the_weight_accounting(tmp_path):
    path = _export(_LinearLstmLinear(), (1, 5, 16), tmp_path / "lstm.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wl = ck.Workload.from_onnx(path, unmapped="warn")
    text = str(wl)
    assert "UNMAPPED" in text and "LSTM" in text and f"model weights: {wl.weight_counts['total']:,}" in text
    assert '"kind": "unmapped"' in wl.to_json() and '"weight_counts"' in wl.to_json()


def test_zoo_workloads_account_for_every_weight():
    for name in ("lenet", "resnet20", "mobilenetv3"):
        wl = ck.zoo.workload(name)
        _balanced(wl)
        assert wl.weight_counts["unmapped"] == 0 and wl.weight_counts["unused"] == 0
        assert wl.weight_counts["mapped"] == wl.weights


def test_importers_take_paths():
    with pytest.raises(InputError, match="a path to an ONNX model file, got BytesIO"):
        ck.Workload.from_onnx(io.BytesIO(b"x"))
    with pytest.raises(InputError, match="a path to a NeuroSim network file, got int"):
        ck.Workload.from_neurosim_csv(3)


def test_models_with_nothing_to_cost_are_refused(tmp_path):
    # the graph's only op reads constants: its output does not depend on the input
    path = _graph(
        tmp_path / "const.onnx",
        [helper.make_node("MatMul", ["w", "w"], ["m"]), helper.make_node("Add", ["x", "m"], ["y"])],
        {"w": (3, 3)},
        [3, 3],
        [3, 3],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wl = ck.Workload.from_onnx(path)  # the Add on the input is an op: accepted
    assert [o.kind for o in wl.ops] == ["eltwise"]
    path = _graph(
        tmp_path / "none.onnx", [helper.make_node("MatMul", ["w", "w"], ["y"])], {"w": (3, 3)}, [3, 3], [3, 3]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="no operation of the graph depends on its input"):
            ck.Workload.from_onnx(path)
    with pytest.raises(InputError, match="no operation to cost"):
        ck.Workload.from_torch(nn.Identity(), (1, 3))


def test_converted_models_are_refused_with_a_pointer_to_the_float_model():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = ck.convert(model, "rram-22nm")
    with pytest.raises(
        InputError,
        match=r"layer '0' \(CIMConv2d\) is a crossbar layer made by cimkit.convert; trace "
        "the float model",
    ):
        ck.Workload.from_torch(converted, (1, 1, 8, 8))
