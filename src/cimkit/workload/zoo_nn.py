"""The zoo's networks as torch modules, in plain torch (no torchvision): imported by ``zoo`` only when a
CNN workload or a model is asked for, so that ``import cimkit.workload`` does not import torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def lenet() -> nn.Module:
    """LeNet-5 for 1x28x28 digits."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def vgg8() -> nn.Module:
    """VGG8 for CIFAR-10 (3x32x32), the network of DNN+NeuroSim's NetWork_VGG8.csv."""

    def block(cin, cout, pool):
        layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
        return layers + ([nn.MaxPool2d(2)] if pool else [])

    return nn.Sequential(
        *block(3, 128, False),
        *block(128, 128, True),
        *block(128, 256, False),
        *block(256, 256, True),
        *block(256, 512, False),
        *block(512, 512, True),
        nn.Flatten(),
        nn.Linear(8192, 1024),
        nn.ReLU(),
        nn.Linear(1024, 10),
    )


def vgg16(classes: int = 1000) -> nn.Module:
    """VGG16 for ImageNet (3x224x224), Simonyan & Zisserman 2015, configuration D."""
    cfg: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers: list[nn.Module] = []
    cin = 3
    for v in cfg:
        if isinstance(v, str):  # "M
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Linear(4096, classes),
    )


def alexnet(classes: int = 1000) -> nn.Module:
    """AlexNet for ImageNet (3x224x224), the single-tower layout (Krizhevsky 2014)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d(6),
        nn.Flatten(),
        nn.Linear(256 * 36, 4096),
        nn.ReLU(),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Linear(4096, classes),
    )


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.down = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + self.down(x))


def resnet18(classes: int = 1000) -> nn.Module:
    """ResNet-18 for ImageNet (He et al. 2016)."""
    layers, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_Basic(cin, cout, stride), _Basic(cout, cout, 1)]
        cin = cout
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(512, classes),
    )


def resnet20(classes: int = 10) -> nn.Module:
    """ResNet-20 for CIFAR-10 (He et al. 2016, section 4.2)."""
    layers, cin = [], 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        layers += [_Basic(cin, cout, stride), _Basic(cout, cout, 1), _Basic(cout, cout, 1)]
        cin = cout
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 1, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, classes),
    )


class _SE(nn.Module):
    def __init__(self, c: int, squeeze: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


class _InvertedResidual(nn.Module):
    def __init__(self, cin, k, exp, cout, se, act, stride) -> None:
        super().__init__()
        act_layer = nn.Hardswish if act == "HS" else nn.ReLU
        layers: list[nn.Module] = []
        if exp != cin:
            layers += [nn.Conv2d(cin, exp, 1, bias=False), nn.BatchNorm2d(exp), act_layer()]
        layers += [nn.Conv2d(exp, exp, k, stride, k // 2, groups=exp, bias=False), nn.BatchNorm2d(exp), act_layer()]
        if se:
            layers.append(_SE(exp, _make_divisible(exp // 4)))
        layers += [nn.Conv2d(exp, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return y + x if self.residual else y


def _make_divisible(v: int, divisor: int = 8) -> int:
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


def mobilenetv3(classes: int = 1000) -> nn.Module:
    """MobileNetV3-Large for ImageNet (Howard et al. 2019, Table 1)."""
    cfg = [  # kernel, expansion, out, SE, activation, stride
        (3, 16, 16, False, "RE", 1),
        (3, 64, 24, False, "RE", 2),
        (3, 72, 24, False, "RE", 1),
        (5, 72, 40, True, "RE", 2),
        (5, 120, 40, True, "RE", 1),
        (5, 120, 40, True, "RE", 1),
        (3, 240, 80, False, "HS", 2),
        (3, 200, 80, False, "HS", 1),
        (3, 184, 80, False, "HS", 1),
        (3, 184, 80, False, "HS", 1),
        (3, 480, 112, True, "HS", 1),
        (3, 672, 112, True, "HS", 1),
        (5, 672, 160, True, "HS", 2),
        (5, 960, 160, True, "HS", 1),
        (5, 960, 160, True, "HS", 1),
    ]
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish()]
    cin = 16
    for k, exp, cout, se, act, s in cfg:
        layers.append(_InvertedResidual(cin, k, exp, cout, se, act, s))
        cin = cout
    layers += [
        nn.Conv2d(cin, 960, 1, bias=False),
        nn.BatchNorm2d(960),
        nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(960, 1280),
        nn.Hardswish(),
        nn.Linear(1280, classes),
    ]
    return nn.Sequential(*layers)


def _attend(layer: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The attention core of the encoder and ViT layers (q, k, v: batch, heads, length, head_dim): scaled
    dot-product attention, or the layer's ``attention_core`` module when it has one (the hook point that
    ``cimkit.ops.swap_hamming_attention`` fills; a layer without one computes exactly what it always did)."""
    core = getattr(layer, "attention_core", None)
    return F.scaled_dot_product_attention(q, k, v) if core is None else core(q, k, v)


class _EncoderLayer(nn.Module):
    """A BERT encoder layer (post-norm): attention with its own q, k, v and output projections and
    scaled dot-product attention, then a GELU feed-forward block."""

    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.output = (nn.Linear(d, d) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.intermediate, self.act, self.out = nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d)

    def forward(self, x):
        b, length, d = x.shape
        split = lambda t: t.view(b, length, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        a = _attend(self, split(self.query(x)), split(self.key(x)), split(self.value(x)))
        x = self.norm1(self.output(a.transpose(1, 2).reshape(b, length, d)) + x)
        return self.norm2(self.out(self.act(self.intermediate(x))) + x)


class BertEncoder(nn.Module):
    """A BERT encoder on token ids (batch, length): word, token-type and position embeddings, LayerNorm,
    ``layers`` encoder layers (no pooler)."""

    def __init__(
        self,
        layers: int = 12,
        d: int = 768,
        heads: int = 12,
        ff: int = 3072,
        vocab: int = 30522,
        max_len: int = 512,
        types: int = 2,
    ) -> None:
        super().__init__()
        self.word, self.token_type, self.position = (
            nn.Embedding(vocab, d),
            nn.Embedding(types, d),
            nn.Embedding(max_len, d),
        )
        self.norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(_EncoderLayer(d, heads, ff) for _ in range(layers))

    def forward(self, ids):
        length = ids.shape[1]
        x = self.word(ids) + self.token_type(torch.zeros_like(ids))
        x = self.norm(x + self.position(torch.arange(length, device=ids.device)[None]))
        for layer in self.layers:
            x = layer(x)
        return x


# ---- vision transformers (ViT / DeiT) -------------------------------------------------------------------
class _Attention(nn.Module):
    """Multi-head self-attention with one packed q, k, v projection (d -> 3d, as timm's ``Attention`` and
    GPT-2's ``c_attn``) and an output projection."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        b, length, d = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        a = _attend(self, q, k, v)
        return self.proj(a.transpose(1, 2).reshape(b, length, d))


class _VitBlock(nn.Module):
    """A pre-norm ViT block (timm ``Block``): x + attn(norm1(x)), then x + mlp(norm2(x)) with a GELU MLP."""

    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d, eps=1e-6), _Attention(d, heads)
        self.norm2, self.fc1, self.act, self.fc2 = (
            nn.LayerNorm(d, eps=1e-6),
            nn.Linear(d, ff),
            nn.GELU(),
            nn.Linear(ff, d),
        )

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class VisionTransformer(nn.Module):
    """A ViT / DeiT classifier on (batch, channels, image, image) (timm ``VisionTransformer`` layout):
    a ``patch`` x ``patch`` convolution with stride ``patch`` as the patch embedding, a class token (and
    with ``distilled`` a distillation token, DeiT's second head), learned position embeddings added to
    every token, ``layers`` pre-norm blocks, a final LayerNorm, and a linear head on the class token
    (with ``distilled``, a second head on the distillation token; the two outputs averaged, as timm does
    at inference)."""

    def __init__(
        self,
        layers: int = 12,
        d: int = 192,
        heads: int = 3,
        ff: int = 768,
        image: int = 224,
        patch: int = 16,
        channels: int = 3,
        classes: int = 1000,
        distilled: bool = False,
    ) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(channels, d, patch, stride=patch)
        extra = 2 if distilled else 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, d)) if distilled else None
        self.pos_embed = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + extra, d))
        self.blocks = nn.ModuleList(_VitBlock(d, heads, ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, classes)
        self.head_dist = nn.Linear(d, classes) if distilled else None
        for p in (self.cls_token, self.pos_embed, *([] if self.dist_token is None else [self.dist_token])):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, images):
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        b = x.shape[0]
        tokens = [self.cls_token.expand(b, -1, -1)]
        if self.dist_token is not None:
            tokens.append(self.dist_token.expand(b, -1, -1))
        x = torch.cat([*tokens, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        if self.head_dist is None:
            return self.head(x[:, 0])
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


# ---- decoders (GPT-2, Llama-style) -------------------------------------------------------------------------
class KVCache(nn.Module):
    """The key (or value) cache of one attention layer: holds ``cached`` earlier tokens' keys, shape
    (1, heads, cached, head_dim), and returns them followed by the new tokens' keys (the cache read and
    the cache write of one step). The op registry lists it as one op of kind "kv_cache"
    (``cimkit.workload.kv_cache``); the held keys are zeros here (shapes, not a generation loop)."""

    def __init__(self, heads: int, head_dim: int, cached: int = 0) -> None:
        super().__init__()
        self.register_buffer("cache", torch.zeros(1, heads, cached, head_dim), persistent=False)

    def forward(self, new):
        return torch.cat((self.cache.expand(new.shape[0], -1, -1, -1), new), dim=2)


class _GPT2Block(nn.Module):
    """A GPT-2 block (pre-norm): x + c_proj(attention(c_attn(ln_1(x)))), then x + mlp(ln_2(x)) with the
    tanh form of GELU (GPT-2's ``gelu_new``); causal attention over the cached and the new tokens."""

    def __init__(self, d: int, heads: int, ff: int, cached: int) -> None:
        super().__init__()
        self.heads, self.cached = heads, cached
        self.ln_1, self.c_attn, self.c_proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.k_cache, self.v_cache = KVCache(heads, d // heads, cached), KVCache(heads, d // heads, cached)
        self.ln_2, self.c_fc = nn.LayerNorm(d), nn.Linear(d, ff)
        self.act, self.mlp_proj = nn.GELU(approximate="tanh"), nn.Linear(ff, d)

    def forward(self, x):
        b, length, d = x.shape
        split = lambda t: t.view(b, length, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        k, v = self.k_cache(split(k)), self.v_cache(split(v))
        a = F.scaled_dot_product_attention(split(q), k, v, is_causal=self.cached == 0)
        x = self.c_proj(a.transpose(1, 2).reshape(b, length, d)) + x
        return self.mlp_proj(self.act(self.c_fc(self.ln_2(x)))) + x


class GPT2(nn.Module):
    """GPT-2 (Radford et al. 2019) on token ids (batch, length): token and learned position embeddings,
    ``layers`` pre-norm blocks, a final LayerNorm and the LM head, a linear over the vocabulary whose weight
    is the token embedding's (tied). ``cached`` > 0 is the decode step: each block holds the keys and values
    of ``cached`` earlier tokens and the input is the next token (length 1), at position ``cached``."""

    def __init__(
        self,
        layers: int = 12,
        d: int = 768,
        heads: int = 12,
        ff: int = 3072,
        vocab: int = 50257,
        max_len: int = 1024,
        cached: int = 0,
    ) -> None:
        super().__init__()
        self.cached = cached
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(_GPT2Block(d, heads, ff, cached) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids):
        positions = torch.arange(self.cached, self.cached + ids.shape[1], device=ids.device)
        x = self.wte(ids) + self.wpe(positions[None])
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def _rotate_half(x):
    """(x1, x2) -> (-x2, x1) on the last dim's halves (Hugging Face's ``rotate_half``)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class _LlamaBlock(nn.Module):
    """A Llama decoder layer (pre-norm, RMSNorm): grouped-query attention (``heads`` query heads share
    ``kv_heads`` key / value heads) with rotary position embedding on q and k, then a SwiGLU MLP
    down(silu(gate(x)) * up(x)); no biases."""

    def __init__(self, d: int, heads: int, kv_heads: int, head_dim: int, ff: int, cached: int, eps: float) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim, self.cached = heads, kv_heads, head_dim, cached
        self.input_layernorm = nn.RMSNorm(d, eps=eps)
        self.q_proj = nn.Linear(d, heads * head_dim, bias=False)
        self.k_proj = nn.Linear(d, kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(d, kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(heads * head_dim, d, bias=False)
        self.k_cache, self.v_cache = KVCache(kv_heads, head_dim, cached), KVCache(kv_heads, head_dim, cached)
        self.post_attention_layernorm = nn.RMSNorm(d, eps=eps)
        self.gate_proj, self.up_proj = nn.Linear(d, ff, bias=False), nn.Linear(d, ff, bias=False)
        self.act, self.down_proj = nn.SiLU(), nn.Linear(ff, d, bias=False)

    def forward(self, x, cos, sin):
        b, length, d = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, length, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(b, length, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(b, length, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        k, v = self.k_cache(k), self.v_cache(v)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.cached == 0, enable_gqa=True)
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, length, self.heads * self.head_dim))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(self.act(self.gate_proj(h)) * self.up_proj(h))


class LlamaDecoder(nn.Module):
    """A Llama-style decoder (SmolLM2's architecture) on token ids (batch, length): token embedding,
    ``layers`` blocks, a final RMSNorm and the LM head tied to the token embedding. Rotary position
    embedding: the cos and sin of each position are read from tables (``max_len`` x ``head_dim``, as
    Hugging Face's ``LlamaRotaryEmbedding`` computes them with base ``rope_theta``) once per forward and
    applied to q and k in every layer as element-wise ops (q cos + rotate_half(q) sin). ``cached`` as for
    ``GPT2``."""

    def __init__(
        self,
        layers: int = 30,
        d: int = 576,
        heads: int = 9,
        kv_heads: int = 3,
        head_dim: int = 64,
        ff: int = 1536,
        vocab: int = 49152,
        max_len: int = 8192,
        rope_theta: float = 100000.0,
        eps: float = 1e-5,
        cached: int = 0,
    ) -> None:
        super().__init__()
        self.cached = cached
        self.embed_tokens = nn.Embedding(vocab, d)
        inv_freq = 1.0 / rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos_table", angles.cos(), persistent=False)
        self.register_buffer("sin_table", angles.sin(), persistent=False)
        self.layers = nn.ModuleList(_LlamaBlock(d, heads, kv_heads, head_dim, ff, cached, eps) for _ in range(layers))
        self.norm = nn.RMSNorm(d, eps=eps)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.embed_tokens.weight

    def forward(self, ids):
        positions = torch.arange(self.cached, self.cached + ids.shape[1], device=ids.device)[None]
        x = self.embed_tokens(ids)
        cos = F.embedding(positions, self.cos_table)[:, None]
        sin = F.embedding(positions, self.sin_table)[:, None]
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.norm(x))
