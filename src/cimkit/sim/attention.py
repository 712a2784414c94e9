"""``nn.MultiheadAttention`` with its weight products on crossbars.

Only the projections hold weights, so only they run on the chip: the input projection (one
(3E, E) matrix when query, key and value have the embedding size E, as the packed
``in_proj_weight`` of PyTorch; three matrices when ``kdim``/``vdim`` differ) and the output
projection. The attention itself, ``softmax(Q K^T / sqrt(d)) V``, multiplies two activations: by default
it stays digital, with everything PyTorch does around it (masks, causal hint, dropout in training,
attention weights, ``bias_k`` / ``bias_v``, ``add_zero_attn``), run through
``F.multi_head_attention_forward`` itself, fed the projections the crossbars computed, so its semantics are
PyTorch's own. When the spec routes dynamic matmuls to the crossbars (``routing: {matmul: crossbar}``) it is
written out with ``@`` and a softmax, PyTorch's masks applied the same way, so that Q K^T and A V run on
arrays written per input (``cimkit.sim.dynamic``); ``bias_k`` / ``bias_v`` / ``add_zero_attn`` keep the
digital path (with a warning that the attention stays digital).
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..spec import HardwareSpec
from .dynamic import routes_matmul_to_crossbar
from .layers import CIMLinear, layer_seed


def _no_fused_paths(module: nn.Module, args: tuple) -> None:
    """A forward pre-hook that does nothing: its presence makes the fused fast path of
    ``nn.TransformerEncoderLayer`` (which reads ``self_attn.in_proj_weight`` directly and would
    skip the crossbars) stand aside."""


class CIMMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` with its projections on crossbars: built from a digital module
    (``from_module``, the converter ``cimkit.convert`` registers), with the same ``forward``
    signature and outputs (on the ``ideal`` preset equal to the digital module's, to float rounding).

    Submodules: ``in_proj``, a ``CIMLinear`` of (3E, E) (when ``_qkv_same_embed_dim``), or
    ``q_proj``, ``k_proj``, ``v_proj`` (when ``kdim``/``vdim`` differ from ``embed_dim``); and
    ``out_proj``. The attributes PyTorch's transformer layers read are kept (``embed_dim``,
    ``num_heads``, ``batch_first``, ``_qkv_same_embed_dim``, ``dropout``, ``bias_k``, ``bias_v``,
    ``add_zero_attn``), and ``in_proj_weight``, ``in_proj_bias``, ``q_proj_weight``,
    ``k_proj_weight``, ``v_proj_weight`` and ``out_proj.weight`` / ``out_proj.bias`` read the
    weights the crossbars are programmed from (the ``weight`` and ``bias`` of those CIMLinear
    layers). A forward pre-hook keeps the fused fast path of ``nn.TransformerEncoderLayer``, which
    would read those weights and bypass the crossbars, out of the way.
    """

    # set with setattr when q, k and v have separate projections
    q_proj: CIMLinear
    k_proj: CIMLinear
    v_proj: CIMLinear

    def __init__(self, mha: nn.MultiheadAttention, spec: HardwareSpec, *, seed: int, name: str) -> None:
        super().__init__()
        self.embed_dim, self.kdim, self.vdim = mha.embed_dim, mha.kdim, mha.vdim
        self.num_heads, self.head_dim = mha.num_heads, mha.head_dim
        self.dropout, self.batch_first = mha.dropout, mha.batch_first
        self._qkv_same_embed_dim = mha._qkv_same_embed_dim
        self.add_zero_attn = mha.add_zero_attn
        self.layer_name = name
        # appended keys/values (add_bias_kv) are concatenated to K and V, not multiplied: digital
        self.bias_k = None if mha.bias_k is None else nn.Parameter(mha.bias_k.detach().clone())
        self.bias_v = None if mha.bias_v is None else nn.Parameter(mha.bias_v.detach().clone())

        def crossbar(part: str, weight: torch.Tensor, bias: torch.Tensor | None) -> CIMLinear:
            return CIMLinear.from_weight(weight, bias, spec, seed=layer_seed(seed, part), name=f"{name}.{part}")

        e = self.embed_dim
        b = mha.in_proj_bias
        if self._qkv_same_embed_dim:
            self.in_proj = crossbar("in_proj", mha.in_proj_weight, b)
        else:
            for i, part in enumerate(("q_proj", "k_proj", "v_proj")):
                setattr(
                    self,
                    part,
                    crossbar(part, getattr(mha, f"{part}_weight"), None if b is None else b[i * e : (i + 1) * e]),
                )
        self.out_proj = crossbar("out_proj", mha.out_proj.weight, mha.out_proj.bias)
        # with dynamic matmuls routed to the crossbars the attention is written out for them to find
        self.attention_on_arrays = routes_matmul_to_crossbar(spec)
        self.register_forward_pre_hook(_no_fused_paths)

    @classmethod
    def from_module(
        cls, m: nn.MultiheadAttention, spec: HardwareSpec, *, seed: int, name: str
    ) -> "CIMMultiheadAttention":
        """The converter ``cimkit.convert`` registers for ``nn.MultiheadAttention``."""
        return cls(m, spec, seed=seed, name=name)

    # ---- the digital module's weight attributes, read from the programmed-from copies --------------
    @property
    def in_proj_weight(self) -> torch.Tensor | None:
        """The packed (3E, E) input projection the crossbar holds, or None when q/k/v are separate."""
        return self.in_proj.weight if self._qkv_same_embed_dim else None

    @property
    def in_proj_bias(self) -> torch.Tensor | None:
        """The (3E,) input projection bias (added digitally), or None for ``bias=False``."""
        if self._qkv_same_embed_dim:
            return self.in_proj.bias
        parts = [self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]  # all three have a bias, or none
        return None if parts[0] is None else torch.cat(cast(list[torch.Tensor], parts))

    @property
    def q_proj_weight(self) -> torch.Tensor | None:
        return None if self._qkv_same_embed_dim else self.q_proj.weight

    @property
    def k_proj_weight(self) -> torch.Tensor | None:
        return None if self._qkv_same_embed_dim else self.k_proj.weight

    @property
    def v_proj_weight(self) -> torch.Tensor | None:
        return None if self._qkv_same_embed_dim else self.v_proj.weight

    # ---- forward -------------------------------------------------------------------------------------
    def _project(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor):
        """Q, K and V from the crossbars. With the packed matrix, self-attention reads the arrays
        once; other inputs read them once each and keep their third of the outputs."""
        e = self.embed_dim
        if not self._qkv_same_embed_dim:
            return self.q_proj(query), self.k_proj(key), self.v_proj(value)
        if query is key and key is value:
            return self.in_proj(query).split(e, dim=-1)
        q = self.in_proj(query)[..., :e]
        kv = self.in_proj(key)
        if key is value:
            return q, kv[..., e : 2 * e], kv[..., 2 * e :]
        return q, kv[..., e : 2 * e], self.in_proj(value)[..., 2 * e :]

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As ``nn.MultiheadAttention.forward``: (attention output, attention weights or None)."""
        is_batched = query.dim() == 3
        if self.batch_first and is_batched:  # to (L, N, E), keeping which inputs are the same tensor
            if key is value:
                if query is key:
                    query = key = value = query.transpose(1, 0)
                else:
                    query, key = (x.transpose(1, 0) for x in (query, key))
                    value = key
            else:
                query, key, value = (x.transpose(1, 0) for x in (query, key, value))
        q, k, v = self._project(query, key, value)
        if self.attention_on_arrays and self.bias_k is None and self.bias_v is None and not self.add_zero_attn:
            out, weights = self._attend(
                q, k, v, key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal, is_batched
            )
            out = self.out_proj(out)
            if self.batch_first and is_batched:
                out = out.transpose(1, 0)
            return out, weights
        # PyTorch's attention on the crossbar projections: identity projection matrices (exact in
        # floating point: one product by 1, the rest by 0) leave Q, K, V and the heads' output as
        # they are, so masks, dropout, bias_k/bias_v and the returned weights follow PyTorch exactly
        eye = torch.eye(self.embed_dim, dtype=q.dtype, device=q.device)
        out, weights = F.multi_head_attention_forward(
            q,
            k,
            v,
            self.embed_dim,
            self.num_heads,
            None,
            None,
            self.bias_k,
            self.bias_v,
            self.add_zero_attn,
            self.dropout,
            eye,
            None,
            training=self.training,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            use_separate_proj_weight=True,
            q_proj_weight=eye,
            k_proj_weight=eye,
            v_proj_weight=eye,
            average_attn_weights=average_attn_weights,
            is_causal=is_causal,
        )
        out = self.out_proj(out)
        if self.batch_first and is_batched:
            out = out.transpose(1, 0)
        return out, weights

    def _attend(self, q, k, v, key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal, is_batched):
        """``nn.MultiheadAttention``'s attention written out with ``@`` and a softmax, so that a spec routing
        dynamic matmuls to the crossbars runs Q K^T and A V there (``cimkit.sim.dynamic``); the masks are
        PyTorch's (boolean True: not attended; float: added; ``is_causal`` is a hint that ``attn_mask`` is
        causal, which must then be given)."""
        if not is_batched:
            q, k, v = q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        if is_causal and attn_mask is None:
            raise InputError(
                f"{self.layer_name}: is_causal is a hint that attn_mask is the causal mask; give "
                "attn_mask as well (as nn.MultiheadAttention requires)"
            )
        (lq, n, e), s, h = q.shape, k.shape[0], self.num_heads
        d = e // h

        def additive(m: torch.Tensor) -> torch.Tensor:
            if m.dtype == torch.bool:
                return torch.zeros(m.shape, dtype=q.dtype, device=q.device).masked_fill(m, float("-inf"))
            return m.to(q.dtype)

        mask = None if attn_mask is None else additive(attn_mask)
        if mask is not None and mask.dim() == 2:
            mask = mask.unsqueeze(0)
        if key_padding_mask is not None:
            pad = additive(key_padding_mask).view(n, 1, 1, s).expand(n, h, 1, s).reshape(n * h, 1, s)
            mask = pad if mask is None else mask + pad
        qh, kh, vh = (t.reshape(t.shape[0], n * h, d).transpose(0, 1) for t in (q, k, v))
        scores = (qh * (1.0 / math.sqrt(d))) @ kh.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        probs = torch.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            probs = F.dropout(probs, self.dropout)
        out = (probs @ vh).transpose(0, 1).reshape(lq, n, e)
        weights = None
        if need_weights:
            weights = probs.view(n, h, lq, s)
            weights = weights.mean(dim=1) if average_attn_weights else weights
            if not is_batched:
                weights = weights.squeeze(0)
        return (out if is_batched else out.squeeze(1)), weights

    def extra_repr(self) -> str:
        return (
            f"{self.layer_name}: embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"
        )
