"""Hamming attention (HAD: Horton et al., "Hamming Attention Distillation", arXiv 2502.01770): queries and
keys binarized to {-1, +1}, their similarity counted as ``d - 2 * Hamming(q, k)`` (an XNOR and a popcount on
a digital chip, a match line on a CAM), only the ``n_top`` largest scores of each query kept before the
softmax, values and outputs at full precision.

Taken from the paper: per-layer scales from data, ``sigma_Q`` (``sigma_K``) the mean over calibration
batches of the standard deviation of the layer's queries (keys) (100 batches in the paper);
``Q_b = sigma_Q * sign(Q / sigma_Q)``, ``K_b = sigma_K * sign(K / sigma_K)``, so that
``Q_b . K_b = sigma_Q * sigma_K * (d - 2 * Hamming)``; top-N sparsification of the attention matrix before
the softmax; the training binarizers of the four distillation stages (``binarize``, and
``cimkit.ops.had_train`` for the schedule).

Assumed here (the paper does not say, or we did not find it): sign(0) = +1 (a stored bit 1 for x >= 0,
so that every vector is in {-1, +1}^d); the logits are ``Q_b . K_b`` times the model's own scaling
(1/sqrt(head_dim) in BERT and ViT); the scales are one number per layer (all heads), the standard deviation
of all entries of a batch's Q (K), padding tokens included; ties at the N-th score are broken by the key
index, the lower index kept (``top_n_mask``); a key the attention mask blocks ranks below every key it does
not block, and is kept only when fewer than N keys are left (its probability is then that of the blocked
score, zero in practice).

In evaluation with the ``"sign"`` binarizer on CPU the module runs the packed data path: signs packed into
64-bit words (``pack_signs``), ``popcount(q xor k)`` with numpy's ``bitwise_count`` (a byte lookup table on
numpy < 2), the N best keys of each query found by ``np.partition`` on the unique integers
``popcount << s | key_index`` (``hamming_top_n``; exact, ties by index, 16-bit words up to 512 keys at
d = 64), a softmax over the N kept logits, and the sparse ``A . V`` as a weighted gather of N value rows
per query (``F.embedding_bag``): no float score matrix, no sort, no dense A . V. In training (and on other
devices) the same values come from a float product of the binarized tensors (exact for the sign: a sum of
at most d products of +-1 times a scale), which carries the straight-through gradient.
``benchmarks/bench_hamming_attention.py`` times both against float attention.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterable, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, check_int, check_real, short_repr

#: the binarizers: "none" (full precision), the three training stages of HAD, "sign" (also in evaluation)
BINARIZERS = ("none", "scaled_tanh", "sharp_tanh", "sign")

_LUT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)  # popcount of a byte


# ---- bits ------------------------------------------------------------------------------------------------
def pack_signs(x: torch.Tensor) -> torch.Tensor:
    """The signs of ``x`` (..., d) packed into int64 words (..., ceil(d / 64)): bit ``i % 64`` of word
    ``i // 64`` is 1 where ``x[..., i] >= 0`` (sign +1; zero counts as +1) and 0 where it is negative; the
    padding bits of the last word are 0. A CPU tensor is returned (the packing runs in numpy)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] < 1:
        raise InputError(f"pack_signs: x = {short_repr(x)}; give a tensor (..., d) with d >= 1")
    d = x.shape[-1]
    words = (d + 63) // 64
    x = x.detach().cpu()
    if x.dtype in (torch.bfloat16, torch.float16) or x.is_complex():
        x = x.float()
    bits = x.numpy() >= 0  # numpy: one pass, no thread pool for a small comparison
    packed = np.packbits(bits, axis=-1, bitorder="little")  # (..., ceil(d / 8)) bytes
    if packed.shape[-1] != 8 * words:
        packed = np.concatenate([packed, np.zeros((*packed.shape[:-1], 8 * words - packed.shape[-1]), np.uint8)], -1)
    return torch.from_numpy(np.ascontiguousarray(packed).view(np.int64))


def _popcount(x: np.ndarray) -> np.ndarray:
    """Bits set in each element of an unsigned integer array (uint8 counts)."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0: the CPU's popcount instruction
        return np.bitwise_count(x)
    return _LUT[x.view(np.uint8)].reshape(*x.shape, x.itemsize).sum(-1, dtype=np.uint8)


def _popcount_into(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """``out[...] = popcount(x)`` without a temporary where numpy has ``bitwise_count`` (``scratch``: uint8
    of x's shape, used when ``out`` is wider than uint8)."""
    if not hasattr(np, "bitwise_count"):
        np.copyto(out, _popcount(x))
    elif out.dtype == np.uint8:
        np.bitwise_count(x, out=out)
    else:
        np.bitwise_count(x, out=scratch)
        np.copyto(out, scratch)


def _hamming(qw: np.ndarray, kw: np.ndarray) -> np.ndarray:
    """Hamming distances (..., Lq, Lk) between packed words qw (..., Lq, W) and kw (..., Lk, W), uint8 when
    W = 1 (d <= 64), else uint16 (d <= 65535)."""
    qu, ku = qw.view(np.uint64), kw.view(np.uint64)
    dist = _popcount(np.bitwise_xor(qu[..., :, None, 0], ku[..., None, :, 0]))
    if qu.shape[-1] > 1:
        dist = dist.astype(np.uint16)
        for w in range(1, qu.shape[-1]):
            dist += _popcount(np.bitwise_xor(qu[..., :, None, w], ku[..., None, :, w]))
    return dist


def popcount_similarity(q_words: torch.Tensor, k_words: torch.Tensor, d: int) -> torch.Tensor:
    """``d - 2 * popcount(q xor k)`` for every query and key (int32, (..., Lq, Lk)): the dot product of the
    two {-1, +1}^d sign vectors that ``pack_signs`` packed into ``q_words`` (..., Lq, W) and ``k_words``
    (..., Lk, W), exactly (XNOR-popcount: matching bits count +1, differing bits -1)."""
    fn = "popcount_similarity"
    for name, w in (("q_words", q_words), ("k_words", k_words)):
        if not isinstance(w, torch.Tensor) or w.dtype != torch.int64 or w.dim() < 2:
            raise InputError(f"{fn}: {name} = {short_repr(w)}; give the int64 words of pack_signs, (..., L, words)")
    if q_words.shape[-1] != k_words.shape[-1] or q_words.shape[:-2] != k_words.shape[:-2]:
        raise InputError(
            f"{fn}: q_words {tuple(q_words.shape)} and k_words {tuple(k_words.shape)} must agree in "
            "every dimension but the sequence length (dimension -2)"
        )
    check_int(fn, "d", d, 64 * q_words.shape[-1] - 63, 64 * q_words.shape[-1], "the bits the words hold")
    dist = _hamming(q_words.cpu().contiguous().numpy(), k_words.cpu().contiguous().numpy())
    return d - 2 * torch.from_numpy(dist.astype(np.int32))


# ---- top-N -----------------------------------------------------------------------------------------------
def top_n_mask(scores: torch.Tensor, n: int) -> torch.Tensor:
    """A bool mask of ``scores``' shape with exactly ``n`` True entries in each row (last dimension): the
    ``n`` largest scores, ties broken by position, the lower index kept (a stable descending sort)."""
    if not isinstance(scores, torch.Tensor) or scores.dim() < 1:
        raise InputError(f"top_n_mask: scores = {short_repr(scores)}; give a tensor (..., L)")
    n = check_int("top_n_mask", "n", n, 1, max(scores.shape[-1], 1), f"the row has {scores.shape[-1]} entries")
    order = torch.sort(scores.detach(), dim=-1, descending=True, stable=True).indices[..., :n]
    return torch.zeros(scores.shape, dtype=torch.bool, device=scores.device).scatter_(-1, order, True)


def _key_layout(length: int, largest: int) -> tuple[int, type]:
    """(shift, dtype) of the unique selection keys ``distance << shift | index``: 16-bit words when the
    distance (at most ``largest``) and the index fit (d = 64 and up to 512 keys), else 32 or 64 bits."""
    shift = max(1, (length - 1).bit_length())
    for dtype, bits in ((np.uint16, 16), (np.uint32, 32), (np.uint64, 64)):
        if shift + int(largest).bit_length() <= bits:
            return shift, dtype
    raise InputError(f"Hamming top-N: {length} keys with distances up to {largest} do not fit a 64-bit key")


_EXECUTOR: list = [None, 0]


def _executor(threads: int):
    """A thread pool of ``threads`` workers, made once (again when more are asked)."""
    from concurrent.futures import ThreadPoolExecutor

    if _EXECUTOR[1] < threads:
        _EXECUTOR[:] = [ThreadPoolExecutor(threads, thread_name_prefix="cimkit-hamming"), threads]
    return _EXECUTOR[0]


def _top_n_heads(qf, kf, bl, n, d, shift, dtype, out, h0: int, h1: int) -> None:
    """``hamming_top_n``'s work for heads h0..h1-1 (rows of ``out``), in blocks of query rows."""
    lq, words = qf.shape[1], qf.shape[2]
    lk = kf.shape[1]
    index = np.arange(lk, dtype=dtype)
    count_type = np.uint8 if words == 1 else np.uint16  # d + 1 <= 65 fits a byte
    rows = max(1, min(lq, (1 << 18) // max(lk, 1)))  # about 2 MiB of xor words per block
    xor = np.empty((rows, lk), np.uint64)
    count, extra = np.empty((rows, lk), count_type), np.empty((rows, lk), np.uint8)
    keys = np.empty((rows, lk), dtype)
    for h in range(h0, h1):
        for r in range(0, lq, rows):
            m = min(rows, lq - r)
            x, c, key = xor[:m], count[:m], keys[:m]
            np.bitwise_xor(qf[h, r : r + m, None, 0], kf[h, None, :, 0], out=x)
            _popcount_into(x, c, extra[:m])
            for w in range(1, words):
                np.bitwise_xor(qf[h, r : r + m, None, w], kf[h, None, :, w], out=x)
                _popcount_into(x, extra[:m], extra[:m])
                c += extra[:m]
            if bl is not None:
                np.copyto(c, d + 1, where=bl[h, r : r + m])
            np.left_shift(c, shift, out=key, dtype=dtype)
            key |= index
            out[h, r : r + m] = np.partition(key, n - 1, axis=-1)[:, :n] if n < lk else key


def hamming_top_n(
    q_words: np.ndarray, k_words: np.ndarray, n: int, *, d: int, blocked: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` keys nearest each query in Hamming distance (largest ``d - 2 * distance``), exactly, ties
    to the lower key index: (indices, distances), int64, (..., Lq, n), the kept keys of a row in no
    particular order. ``q_words`` (..., Lq, W) and ``k_words`` (..., Lk, W) are packed signs
    (``pack_signs``) as numpy int64; ``blocked`` (bool, broadcastable to (..., Lq, Lk)) marks keys that rank
    after every other (their distance reads ``d + 1``).

    How: per block of query rows (a head at L = 512), ``popcount(q xor k)`` (uint8 for W = 1) becomes the
    unique integer ``distance << s | key_index`` (``s`` the index's bits; 16-bit words while they fit) and
    ``np.partition`` (linear-time selection, SIMD on x86) finds the ``n`` smallest; the blocks keep the
    temporaries in cache, and the heads are shared among ``torch.get_num_threads()`` threads (numpy
    releases the GIL in these loops). No float score and no sort of the whole row."""
    qu, ku = q_words.view(np.uint64), k_words.view(np.uint64)
    lead, lq, words = qu.shape[:-2], qu.shape[-2], qu.shape[-1]
    lk = ku.shape[-2]
    if ku.shape[:-2] != lead or ku.shape[-1] != words:
        raise InputError(
            f"hamming_top_n: q_words {q_words.shape} and k_words {k_words.shape} must agree in every "
            "dimension but the sequence length (dimension -2)"
        )
    n = check_int("hamming_top_n", "n", n, 1, lk, f"the keys kept per query, at most the {lk} keys")
    heads = int(np.prod(lead, dtype=np.int64))
    qf, kf = qu.reshape(heads, lq, words), ku.reshape(heads, lk, words)
    bl = None if blocked is None else np.broadcast_to(blocked, (*lead, lq, lk)).reshape(heads, lq, lk)
    shift, dtype = _key_layout(lk, d + 1)
    out: np.ndarray = np.empty((heads, lq, n), dtype)
    work = (qf, kf, bl, n, d, shift, dtype, out)
    threads = min(heads, torch.get_num_threads())
    if threads > 1 and heads * lq * lk >= 1 << 18:  # numpy's ufuncs and partition release the GIL
        bounds = [heads * i // threads for i in range(threads + 1)]
        list(_executor(threads).map(lambda i: _top_n_heads(*work, bounds[i], bounds[i + 1]), range(threads)))
    else:
        _top_n_heads(*work, 0, heads)
    idx = (out & dtype((1 << shift) - 1)).astype(np.int64).reshape(*lead, lq, n)
    dist = (out >> dtype(shift)).astype(np.int64).reshape(*lead, lq, n)
    return idx, dist


# ---- binarizers ------------------------------------------------------------------------------------------
class _SignSTE(torch.autograd.Function):
    """sign(x) in {-1, +1} (sign(0) = +1); backward: the gradient of ``sigma * sign(x)`` taken as 1 where
    ``|x / sigma| <= clip`` and 0 beyond, divided by sigma (so that ``sigma * _SignSTE(x)`` has it)."""

    @staticmethod
    def forward(ctx, x, sigma, clip):
        ctx.save_for_backward(x, sigma)
        ctx.clip = clip
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, sigma = ctx.saved_tensors
        return grad * ((x / sigma).abs() <= ctx.clip).to(grad.dtype) / sigma, None, None


def binarize(
    x: torch.Tensor, sigma: torch.Tensor | float, binarizer: str, c: float = 1.0, ste_clip: float = 2.0
) -> torch.Tensor:
    """``x`` (queries or keys) through the binarizer of one HAD training stage, with the layer's scale
    ``sigma`` (a positive scalar, units of x):

    * ``"none"``: ``x`` (full precision);
    * ``"scaled_tanh"`` (stage 1, c decaying 5 -> 1): ``c * sigma * tanh(x / (c * sigma))``, close to x for
      large c and equal to the sharp form at c = 1;
    * ``"sharp_tanh"`` (stage 2, c decaying 1 -> 0.05): ``sigma * tanh(x / (c * sigma))``, which tends to the
      sign as c -> 0;
    * ``"sign"`` (stages 3 and 4, and evaluation): ``sigma * sign(x)`` (sign(0) = +1) with a straight-through
      gradient: d/dx = 1 where ``|x / sigma| <= ste_clip``, 0 beyond (the paper's "clipped at 2").

    The stage names, the constants' ranges and the clip at 2 are the paper's; the exact placement of c in
    the two tanh forms is our reading of "scaled tanh" and "sharp tanh" (continuous from one stage to the
    next at c = 1)."""
    if binarizer == "none":
        return x
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if binarizer == "scaled_tanh":
        return c * sigma * torch.tanh(x / (c * sigma))
    if binarizer == "sharp_tanh":
        return sigma * torch.tanh(x / (c * sigma))
    if binarizer == "sign":
        return sigma * _SignSTE.apply(x, sigma, float(ste_clip))
    raise InputError(f"binarize: binarizer = {short_repr(binarizer)} is not allowed; one of {', '.join(BINARIZERS)}")


# ---- the module ------------------------------------------------------------------------------------------
class HammingAttention(nn.Module):
    """Attention from given queries, keys and values (batch, heads, L, head_dim), with binarized Q and K
    and top-N sparsification (HAD; the module docstring says what is from the paper and what is assumed).

    ``forward(q, k, v, attention_mask=None, scaling=None)`` returns the output (batch, heads, Lq, head_dim_v).
    ``attention_mask``: as Hugging Face passes it, additive float (0 where attended, a very large negative
    number such as ``finfo.min`` or -inf where blocked), or bool (True where attended, torch's convention),
    broadcastable to (batch, heads, Lq, Lk). ``scaling``: the logits' factor, default 1/sqrt(head_dim).

    Settings (attributes; the distillation trainer changes ``binarizer`` and ``c`` between steps):
    ``n_top`` (None: every key; else the N best keys of each query; more than the keys there are is an
    ``InputError`` unless ``allow_short``, which then keeps every key), ``binarizer`` (one of
    ``BINARIZERS``), ``c`` (the tanh constant of the two tanh stages), ``ste_clip`` (the sign's
    straight-through window, in units of sigma), ``dropout`` (on the probabilities, training only).

    Buffers ``sigma_q`` and ``sigma_k`` (scalars, units of Q and K) hold the layer's scales; they start
    uncalibrated (NaN) and any binarizer but "none" refuses to run until ``calibrate_hamming_scales`` (or
    the caller) sets them. While ``calibrating`` is set the module runs full-precision attention and adds
    each batch's standard deviations to its sums. With ``record`` set, ``attention_map`` keeps the last
    probabilities (batch, heads, Lq, Lk; zeros outside the kept keys), with their gradient, and on the
    differentiable path (training, binarizers other than the packed sign) ``attention_logits`` keeps the
    logits before the top-N selection (mask added): the distillation loss compares the teacher's map
    with their softmax, which gives every key a gradient (the top-N map has none outside its keys).
    """

    sigma_q: torch.Tensor
    sigma_k: torch.Tensor

    def __init__(
        self,
        n_top: int | None = None,
        binarizer: str = "sign",
        *,
        c: float = 1.0,
        ste_clip: float = 2.0,
        dropout: float = 0.0,
        allow_short: bool = False,
    ) -> None:
        super().__init__()
        fn = "HammingAttention"
        if n_top is not None:
            n_top = check_int(fn, "n_top", n_top, 1, 1 << 31, "the keys kept per query; None keeps every key")
        if binarizer not in BINARIZERS:
            raise InputError(
                f"{fn}: binarizer = {short_repr(binarizer)} is not allowed; one of {', '.join(BINARIZERS)}"
            )
        self.n_top, self.binarizer = n_top, binarizer
        self.c = check_real(
            fn, "c", c, 0.0, lo_open=True, why="the tanh constant: 5 -> 1 in stage 1, 1 -> 0.05 in stage 2"
        )
        self.ste_clip = check_real(
            fn, "ste_clip", ste_clip, 0.0, lo_open=True, why="the straight-through window, in units of sigma"
        )
        dropout = check_real(fn, "dropout", dropout, 0.0, 1.0, hi_open=True, why="a probability")
        self.dropout, self.allow_short = dropout, bool(allow_short)
        self.register_buffer("sigma_q", torch.tensor(float("nan")))
        self.register_buffer("sigma_k", torch.tensor(float("nan")))
        self.name: str = ""  # the qualified name in its model (set by swap_hamming_attention), for messages
        self.calibrating: bool = False
        self.record: bool = False
        self.attention_map: torch.Tensor | None = None
        self.attention_logits: torch.Tensor | None = None
        self._sums: list[float] = [0.0, 0.0, 0]  # sum of std(Q), sum of std(K), batches

    # -- checks --
    def _check(self, q, k, v, attention_mask):
        fn = f"HammingAttention{f' {self.name!r}' if self.name else ''}"
        for name, t in (("q", q), ("k", k), ("v", v)):
            if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() != 4:
                raise InputError(
                    f"{fn}: {name} = {short_repr(t)}; give a floating-point tensor (batch, heads, length, head_dim)"
                )
        if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3] or q.shape[-1] != k.shape[-1]:
            raise InputError(
                f"{fn}: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do not fit: q and k "
                "need the same batch, heads and head_dim, k and v the same batch, heads and length"
            )
        lk = k.shape[2]
        if self.n_top is not None and self.n_top > lk and not self.allow_short:
            raise InputError(
                f"{fn}: n_top = {self.n_top} is more than the {lk} keys of this input; give n_top <= "
                f"{lk}, or allow_short=True to keep every key of shorter sequences"
            )
        if attention_mask is not None:
            if not isinstance(attention_mask, torch.Tensor):
                raise InputError(f"{fn}: attention_mask = {short_repr(attention_mask)}; give a tensor or None")
            try:
                torch.broadcast_shapes(attention_mask.shape, (q.shape[0], q.shape[1], q.shape[2], lk))
            except RuntimeError:
                raise InputError(
                    f"{fn}: attention_mask {tuple(attention_mask.shape)} does not broadcast to the "
                    f"scores (batch, heads, Lq, Lk) = {(q.shape[0], q.shape[1], q.shape[2], lk)}"
                ) from None
        if (
            self.binarizer != "none"
            and not self.calibrating
            and not (
                math.isfinite(float(self.sigma_q))
                and math.isfinite(float(self.sigma_k))
                and float(self.sigma_q) > 0
                and float(self.sigma_k) > 0
            )
        ):
            raise InputError(
                f"{fn}: the scales sigma_q = {float(self.sigma_q)}, sigma_k = {float(self.sigma_k)} are not "
                f"calibrated; binarizer {self.binarizer!r} needs them: call cimkit.ops."
                "calibrate_hamming_scales(model, batches) first (or set binarizer='none')"
            )

    # -- forward --
    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        scaling: float | None = None,
    ) -> torch.Tensor:
        self._check(q, k, v, attention_mask)
        scaling = q.shape[-1] ** -0.5 if scaling is None else float(scaling)
        if self.calibrating:
            with torch.no_grad():
                self._sums[0] += float(q.float().std())
                self._sums[1] += float(k.float().std())
                self._sums[2] += 1
            return self._float(q, k, v, attention_mask, scaling, "none", k.shape[2])
        n = self._kept(k.shape[2])
        bias, blocked = _split_mask(attention_mask, q.dtype)
        if self.binarizer == "sign" and not self.training and q.device.type == "cpu" and bias is None:
            return self._packed(q, k, v, attention_mask, blocked, scaling, n)
        return self._float(q, k, v, attention_mask, scaling, self.binarizer, n)

    def _float(self, q, k, v, attention_mask, scaling, binarizer, n):
        """Differentiable path: binarized Q, K; float logits; top-N mask; softmax; A . V."""
        if binarizer == "sign":  # +-1 products sum exactly: ties where the packed path has them
            sq = _SignSTE.apply(q, self.sigma_q.to(q.dtype), self.ste_clip)
            sk = _SignSTE.apply(k, self.sigma_k.to(k.dtype), self.ste_clip)
            logits = torch.matmul(sq, sk.transpose(-1, -2)) * self._scale(scaling)
        else:
            qb = binarize(q, self.sigma_q, binarizer, self.c, self.ste_clip)
            kb = binarize(k, self.sigma_k, binarizer, self.c, self.ste_clip)
            logits = torch.matmul(qb, kb.transpose(-1, -2)) * scaling
        if attention_mask is not None:
            logits = logits + _additive(attention_mask, logits.dtype)
        if self.record:
            self.attention_logits = logits
        if n < k.shape[2]:
            logits = logits.masked_fill(~top_n_mask(logits, n), float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if self.record:
            self.attention_map = probs
        if self.training and self.dropout > 0:
            probs = F.dropout(probs, self.dropout)
        return torch.matmul(probs, v)

    def _packed(self, q, k, v, attention_mask, blocked, scaling, n):
        """Evaluation path with the sign binarizer: packed XNOR-popcount, exact top-N, sparse A . V."""
        b, h, lq, d = q.shape
        lk = k.shape[2]
        idx, kept = hamming_top_n(
            pack_signs(q).numpy(),
            pack_signs(k).numpy(),
            n,
            d=d,
            blocked=None if blocked is None else blocked.cpu().numpy(),
        )
        # few torch ops on purpose: each is a parallel region, and on a busy machine each can stall
        sim = (d - 2 * np.minimum(kept, d)).astype(np.float32)  # a kept blocked key's own similarity is irrelevant
        sim *= np.float32(self._scale(scaling))
        logits = torch.from_numpy(sim).to(v.dtype)
        idx_t = torch.from_numpy(idx)
        if attention_mask is not None:
            logits = logits + torch.gather(_additive(attention_mask, v.dtype).expand(b, h, lq, lk), -1, idx_t)
        probs = torch.softmax(logits, dim=-1)
        if self.record or n == lk:
            dense = torch.zeros(b, h, lq, lk, dtype=v.dtype).scatter_(-1, idx_t, probs)
            if self.record:
                self.attention_map, self.attention_logits = dense, None
            if n == lk:
                return torch.matmul(dense, v)
        rows = torch.from_numpy(idx + (np.arange(b * h) * lk).reshape(b, h, 1, 1))  # rows of v as (b * h * lk, dv)
        out = F.embedding_bag(
            rows.view(-1, n), v.reshape(b * h * lk, -1), per_sample_weights=probs.reshape(-1, n), mode="sum"
        )
        return out.view(b, h, lq, -1)

    def _scale(self, scaling: float) -> float:
        """The logit of similarity 1: sigma_Q * sigma_K * scaling (one float for both paths)."""
        return float(np.float32(float(self.sigma_q) * float(self.sigma_k) * scaling))

    def _kept(self, lk: int) -> int:
        return lk if self.n_top is None else min(self.n_top, lk)

    # -- calibration --
    def start_calibration(self) -> None:
        """Reset the sums and run full-precision attention, collecting each batch's std of Q and K."""
        self._sums, self.calibrating = [0.0, 0.0, 0], True

    def finish_calibration(self) -> tuple[float, float]:
        """Set sigma_q, sigma_k to the mean of the collected standard deviations; returns them."""
        self.calibrating = False
        sq, sk, count = self._sums
        if count == 0:
            raise InputError(
                f"calibrate_hamming_scales: the attention {self.name!r} saw no batch; the batches never reached it"
            )
        self.sigma_q.fill_(sq / count)
        self.sigma_k.fill_(sk / count)
        return sq / count, sk / count

    def extra_repr(self) -> str:
        return (
            f"n_top={self.n_top}, binarizer={self.binarizer!r}, c={self.c:g}, ste_clip={self.ste_clip:g}, "
            f"sigma_q={float(self.sigma_q):.4g}, sigma_k={float(self.sigma_k):.4g}"
        )


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An attention mask as an additive float tensor (bool True -> 0, False -> finfo.min)."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
    return mask.to(dtype)


def _split_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(bias, blocked): a mask that only blocks keys (values 0 and <= finfo.min / 2 or -inf, or bool) gives
    bias None and the blocked positions; a mask with other finite values is a bias on the scores (the
    float path then ranks the biased scores)."""
    if mask is None:
        return None, None
    if mask.dtype == torch.bool:
        return None, ~mask
    blocked = ~(mask > torch.finfo(mask.dtype).min / 2)
    if bool(((mask != 0) & ~blocked).any()):
        return mask, None
    return None, blocked


# ---- putting it into models ------------------------------------------------------------------------------
class HammingSelfAttention(nn.Module):
    """A Hugging Face BERT-style self-attention (``BertSelfAttention`` and its copies: ``query``, ``key``,
    ``value`` Linears, ``num_attention_heads``, ``attention_head_size``, ``scaling``) whose attention runs
    in ``core``, a ``HammingAttention``. Same signature and outputs as the module it replaces:
    ``(attn_output, attn_weights)``, the weights only while ``core.record`` is set (else None). The
    projections are the replaced module's (parameter names unchanged); caches (decoders) are refused."""

    def __init__(self, module: nn.Module, core: HammingAttention) -> None:
        super().__init__()
        hf = cast(Any, module)  # duck-typed: the attributes of a BERT-style self-attention
        self.query, self.key, self.value = hf.query, hf.key, hf.value
        self.num_attention_heads = int(hf.num_attention_heads)
        self.attention_head_size = int(hf.attention_head_size)
        self.scaling = float(getattr(module, "scaling", self.attention_head_size**-0.5))
        self.config = getattr(module, "config", None)
        self.is_decoder = bool(getattr(module, "is_decoder", False))
        self.is_causal = bool(getattr(module, "is_causal", False))
        self.layer_idx = getattr(module, "layer_idx", None)
        self.core = core

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, cache=None, **kwargs):
        if cache is not None or kwargs.get("past_key_values") is not None or kwargs.get("past_key_value") is not None:
            raise InputError(
                "HammingSelfAttention: key/value caches (decoding) are not supported; HAD here is for encoders"
            )
        shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
        q = self.query(hidden_states).view(shape).transpose(1, 2)
        k = self.key(hidden_states).view(shape).transpose(1, 2)
        v = self.value(hidden_states).view(shape).transpose(1, 2)
        if attention_mask is None and self.is_causal:  # under sdpa, a causal model passes no mask
            n = hidden_states.shape[-2]
            attention_mask = torch.ones(n, n, dtype=torch.bool, device=hidden_states.device).tril()
        out = self.core(q, k, v, attention_mask, self.scaling)
        out = out.transpose(1, 2).reshape(*hidden_states.shape[:-1], -1).contiguous()
        return out, (self.core.attention_map if self.core.record else None)


def _is_hf_self_attention(module: nn.Module) -> bool:
    return (
        "SelfAttention" in type(module).__name__
        and all(isinstance(getattr(module, n, None), nn.Linear) for n in ("query", "key", "value"))
        and isinstance(getattr(module, "num_attention_heads", None), int)
        and isinstance(getattr(module, "attention_head_size", None), int)
    )


def _score_terms(module: nn.Module) -> str | None:
    """What a BERT-shaped self-attention adds to Q K^T besides the mask (rotary or relative positions, a
    relative-position bias: ESM, Swin, BEiT, LayoutLMv2, ...), which a swap would silently drop; None when
    nothing (absolute positions only, as in BERT, RoBERTa and MiniLM)."""
    kind = getattr(module, "position_embedding_type", None) or getattr(
        getattr(module, "config", None), "position_embedding_type", None
    )
    if kind not in (None, "absolute"):
        return f"position_embedding_type {kind!r}"
    for name, _ in module.named_children():
        if "rotary" in name or "relative" in name or "position" in name:
            return f"its submodule {name!r}"
    for name in vars(module):
        if ("rotary" in name or "relative_position" in name) and getattr(module, name) is not None:
            return f"its attribute {name!r}"
    return None


def swap_hamming_attention(
    model: nn.Module,
    n_top: int | None = 32,
    binarizer: str = "sign",
    *,
    c: float = 1.0,
    ste_clip: float = 2.0,
    allow_short: bool = False,
    inplace: bool = False,
) -> nn.Module:
    """Put a ``HammingAttention(n_top, binarizer, ...)`` into every attention of ``model``:

    * Hugging Face BERT-style self-attention (MiniLM, BERT, RoBERTa: a ``*SelfAttention`` module with
      ``query``, ``key``, ``value`` Linears) is replaced by a ``HammingSelfAttention`` (its projections
      kept; the attention-probability dropout of the model's config carried over);
    * cimkit's own encoder and ViT layers (``workload.zoo_nn`` ``BertEncoder``, ``VisionTransformer``) get
      the module as their ``attention_core`` (the hook point of their attention).

    Returns the model: a deep copy, ``model`` untouched, unless ``inplace``; its ``swapped`` attribute maps
    each changed module's qualified name to the class it was. The scales start uncalibrated: call
    ``calibrate_hamming_scales`` before running a binarizer other than "none". An ``InputError`` when the
    model has no attention this function knows.
    """
    from ..workload import zoo_nn

    fn = "swap_hamming_attention"
    if not isinstance(model, nn.Module):
        raise InputError(f"{fn}: model is a {type(model).__name__}; it must be a torch.nn.Module")
    HammingAttention(n_top, binarizer, c=c, ste_clip=ste_clip, allow_short=allow_short)  # checks the settings
    root = model if inplace else copy.deepcopy(model)
    swapped: dict[str, str] = {}

    def core(qualified: str, dropout: float = 0.0) -> HammingAttention:
        m = HammingAttention(n_top, binarizer, c=c, ste_clip=ste_clip, dropout=dropout, allow_short=allow_short)
        m.name = qualified
        return m

    for name, module in list(root.named_modules()):
        if isinstance(module, (zoo_nn._EncoderLayer, zoo_nn._Attention)):
            module.attention_core = core(f"{name}.attention_core" if name else "attention_core")
            swapped[name] = type(module).__name__
    for name, module in list(root.named_modules()):
        if _is_hf_self_attention(module) and not isinstance(module, HammingSelfAttention):
            extra = _score_terms(module)
            if extra is not None:
                raise InputError(
                    f"{fn}: {name} ({type(module).__name__}) adds position terms to its scores "
                    f"({extra}); HammingSelfAttention computes Q K^T and the mask only and would drop "
                    "them, so it swaps only attention with absolute positions (BERT, RoBERTa, MiniLM)"
                )
            p = getattr(getattr(module, "dropout", None), "p", 0.0)
            new = HammingSelfAttention(module, core(f"{name}.core", float(p)))
            new.train(module.training)
            parent_name, _, attr = name.rpartition(".")
            setattr(root.get_submodule(parent_name) if parent_name else root, attr, new)
            swapped[name] = type(module).__name__
    if not swapped:
        raise InputError(
            f"{fn}: found no attention to swap in a {type(model).__name__}; it knows Hugging Face "
            "BERT-style *SelfAttention modules and cimkit's zoo encoder and ViT layers"
        )
    for _, m in hamming_modules(root):
        m.train(root.training)
    root.swapped = swapped  # type: ignore[assignment]  # stubs: Module.__setattr__ takes any value
    return root


def hamming_modules(model: nn.Module) -> list[tuple[str, HammingAttention]]:
    """The ``HammingAttention`` modules of ``model`` with their qualified names, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, HammingAttention)]


def set_hamming_stage(model: nn.Module, binarizer: str, c: float | None = None) -> None:
    """Set the binarizer (and the tanh constant ``c``, when given) of every ``HammingAttention`` in ``model``."""
    if binarizer not in BINARIZERS:
        raise InputError(
            f"set_hamming_stage: binarizer = {short_repr(binarizer)} is not allowed; one of {', '.join(BINARIZERS)}"
        )
    if c is not None:
        c = check_real("set_hamming_stage", "c", c, 0.0, lo_open=True, why="the tanh constant")
    for _, m in hamming_modules(model):
        m.binarizer = binarizer
        if c is not None:
            m.c = c


def run_batch(model: nn.Module, batch):
    """``model`` on one batch of a loader: a dict as keyword arguments (Hugging Face), a tuple or list by its
    first element (``(inputs, labels)``), anything else as the one argument."""
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise InputError("a batch is an empty tuple; give (inputs, ...) or a tensor or a dict")
        return model(batch[0])
    return model(batch)


def calibrate_hamming_scales(
    model: nn.Module, batches: Iterable, num_batches: int = 100
) -> dict[str, tuple[float, float]]:
    """Set each ``HammingAttention``'s ``sigma_q`` and ``sigma_k`` in ``model`` to the mean, over the first
    ``num_batches`` batches of ``batches`` (fewer if it runs out; at least one), of the standard deviation
    of the layer's queries and keys (HAD's per-layer scales; 100 batches in the paper). The attention runs
    at full precision over every key meanwhile (the statistics are those of the full-precision model, before any
    binarization), under ``torch.no_grad`` in eval mode; the model's mode is restored. Batches are run as
    ``run_batch`` says. Returns ``{name: (sigma_q, sigma_k)}``."""
    fn = "calibrate_hamming_scales"
    if not isinstance(model, nn.Module):
        raise InputError(f"{fn}: model is a {type(model).__name__}; it must be a torch.nn.Module")
    num_batches = check_int(fn, "num_batches", num_batches, 1, 1 << 40, "batches averaged; 100 in the paper")
    modules = hamming_modules(model)
    if not modules:
        raise InputError(f"{fn}: the model has no HammingAttention; call swap_hamming_attention first")
    was_training = model.training
    model.eval()
    for _, m in modules:
        m.start_calibration()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                if seen >= num_batches:
                    break
                run_batch(model, batch)
                seen += 1
    finally:
        for _, m in modules:
            m.calibrating = False
        model.train(was_training)
    if seen == 0:
        raise InputError(f"{fn}: batches gave no batch; give at least one")
    return {name: m.finish_calibration() for name, m in modules}
