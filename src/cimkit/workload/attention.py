"""Expansion rules: attention modules and functions as the ops they compute (registered in ``registry``).

``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` are leaf modules for torch.fx and take
data-dependent fast paths, and ``F.scaled_dot_product_attention`` is one fused call; each is expanded
here into its static products, dynamic products, softmax, norms, activations and residual adds, read
from the module's attributes (no torch import: the attributes are read by name).

Per head h of width d on B sequences, a query of length Lq and a key of length Lk (the module's
``batch_first`` says which dim is which: (B, L, E) when True, torch's default (L, B, E) when False,
(L, E) unbatched):

* in-projection: one linear E x 3E on Lq * B vectors when query, key and value are one tensor
  (self-attention, as torch computes it), E x E + E x 2E when key and value are one tensor, else three
  linears (key and value on Lk * B vectors);
* Q K^T: a matmul of groups h * B, vectors Lq, in d, out Lk; softmax over rows of Lk (h * B * Lq rows);
* A V: a matmul of groups h * B, vectors Lq, in Lk, out d; out-projection: a linear E x E on Lq * B vectors.

The torch frontends run batch 1 where dim 0 is the batch; for a model with a seq-first module they keep
the input shape as given (see ``trace.trace_torch``), so B is whatever that shape says.

The scale 1/sqrt(d) is a multiplication by a constant, folded like every constant scale (see
``OpRule.fold_constant``).
"""

from __future__ import annotations

import math

from .registry import OP_RULES, Arg, digital_op, linear_op, matmul_op, per_inference


def _sdpa(name: str, q: tuple, k: tuple, v: tuple) -> list:
    """QK^T, softmax, AV for q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv)."""
    groups = math.prod(q[:-2]) if len(q) > 2 else 1
    lq, d, lk, dv = q[-2], q[-1], k[-2], v[-1]
    softmax = OP_RULES.get("softmax:softmax")
    scores = (groups, lq, lk)
    return [
        matmul_op(f"{name}.qk", groups, lq, d, lk),
        digital_op(f"{name}.softmax", softmax, scores, scores, {"dim": -1}),
        matmul_op(f"{name}.av", groups, lq, lk, dv),
    ]


def expand_attention(name: str, module, inputs: list[Arg], out_shape: tuple, params: dict) -> list:
    """``nn.MultiheadAttention`` (``module`` given; inputs query, key, value) or
    ``F.scaled_dot_product_attention`` (``module`` None; inputs q, k, v of shape (..., L, d))."""
    if module is None:
        q, k, v = (a.shape for a in inputs[:3])
        return _sdpa(name, q, k, v)
    e, h = int(module.embed_dim), int(module.num_heads)
    d = e // h
    batch_first = bool(getattr(module, "batch_first", False))
    (lq, b), (lk, _) = (_tokens(a.shape, batch_first) for a in inputs[:2])
    kdim, vdim = int(getattr(module, "kdim", e)), int(getattr(module, "vdim", e))
    packed = bool(getattr(module, "_qkv_same_embed_dim", True))
    tq, tk = lq * b, lk * b  # vectors through the projections: every token of every sequence
    ops = []
    if packed and params.get("same_qk") and params.get("same_kv"):
        ops.append(linear_op(f"{name}.in_proj", e, 3 * e, (b, lq, e), (b, lq, 3 * e), tq))
    elif packed and params.get("same_kv"):
        ops += [
            linear_op(f"{name}.q_proj", e, e, (b, lq, e), (b, lq, e), tq),
            linear_op(f"{name}.kv_proj", e, 2 * e, (b, lk, e), (b, lk, 2 * e), tk),
        ]
    else:
        ops += [
            linear_op(f"{name}.q_proj", e, e, (b, lq, e), (b, lq, e), tq),
            linear_op(f"{name}.k_proj", kdim, e, (b, lk, kdim), (b, lk, e), tk),
            linear_op(f"{name}.v_proj", vdim, e, (b, lk, vdim), (b, lk, e), tk),
        ]
    ops += _sdpa(name, (b * h, lq, d), (b * h, lk, d), (b * h, lk, d))
    ops.append(linear_op(f"{name}.out_proj", e, e, (b, lq, e), (b, lq, e), tq))
    return ops


def _tokens(s: tuple, batch_first: bool) -> tuple[int, int]:
    """(sequence length, batch) of an attention input: (B, L, E) batch first, else (L, B, E); unbatched (L, E)."""
    if len(s) < 3:
        return (int(s[0]) if s else 1), 1
    return (int(s[1]), int(s[0])) if batch_first else (int(s[0]), int(s[1]))


def _activation_fn(layer) -> str:
    code = getattr(layer, "activation_relu_or_gelu", 0)
    if code in (1, 2):
        return "relu" if code == 1 else "gelu"
    act = getattr(layer, "activation", None)
    label = getattr(act, "__name__", None) or type(act).__name__
    return str(label).lower()


def expand_encoder_layer(name: str, module, inputs: list[Arg], out_shape: tuple, params: dict) -> list:
    """``nn.TransformerEncoderLayer`` (self-attention, then the feed-forward block; each with a residual
    add and a LayerNorm, before (``norm_first``) or after the block)."""
    x = inputs[0].shape
    e = int(module.self_attn.embed_dim)
    batch_first = bool(getattr(module.self_attn, "batch_first", False))
    length, batch = _tokens(x, batch_first)
    t = length * batch  # tokens through the feed-forward block
    ff = int(module.linear1.out_features)
    tok = (batch, length, e)
    layer_norm = OP_RULES.get("norm:layer_norm")
    add = OP_RULES.get("eltwise:add")
    act = OP_RULES.get(f"act:{_activation_fn(module)}") if f"act:{_activation_fn(module)}" in OP_RULES else None

    def norm(label: str):
        return digital_op(f"{name}.{label}", layer_norm, tok, tok, {"normalized": 1})

    attn = expand_attention(f"{name}.self_attn", module.self_attn, [Arg(x)] * 3, x, {"same_qk": True, "same_kv": True})
    hidden = (batch, length, ff)
    ffn = [linear_op(f"{name}.linear1", e, ff, tok, hidden, t)]
    if act is not None:
        ffn.append(digital_op(f"{name}.activation", act, hidden, hidden))
    else:
        from .core import unmapped_op

        ffn.append(
            unmapped_op(f"{name}.activation", _activation_fn(module), 0, per_inference(hidden), per_inference(hidden))
        )
    ffn.append(linear_op(f"{name}.linear2", ff, e, hidden, tok, t))
    res1 = digital_op(f"{name}.add1", add, tok, tok)
    res2 = digital_op(f"{name}.add2", add, tok, tok)
    if getattr(module, "norm_first", False):
        return [norm("norm1"), *attn, res1, norm("norm2"), *ffn, res2]
    return [*attn, res1, norm("norm1"), *ffn, res2, norm("norm2")]
