"""HAD's binarized attention as ops of a workload: ``with_hamming_attention`` (``Workload.with_hamming_attention``).

Hamming Attention Distillation (HAD; Horton et al., arXiv 2502.01770) binarizes queries and keys to
{-1, +1}, so that q . k = d - 2 Hamming(q, k) (an XNOR and a popcount, or the match line of a CAM row),
keeps only the N largest scores of each query and runs the softmax and A V on those N. The transform
rewrites every attention of a workload, recognised as a dynamic ``matmul`` Q K^T (groups g, vectors Lq,
in d, out Lk), a ``softmax`` over its Lk scores (elements g Lq Lk, reduce Lk) and a ``matmul`` A V (groups
g, vectors Lq, in Lk), into

* ``hamming_score`` (kind registered in ``cimkit.workload.registry``, default unit ``cam_attention``): groups g,
  vectors Lq queries, in_features d key bits, out_features Lk keys; elements g Lq Lk scores. It takes the
  place of Q K^T; ``macs`` 0 (a Hamming score is no multiply-accumulate: a report's operation count, TOPS
  and TOPS/W count the products HAD keeps);
* ``topn`` (default unit ``cam_attention``): groups g, vectors Lq, in_features Lk candidates, out_features
  N kept, elements g Lq N, reduce Lk;
* the softmax over the N kept scores (elements g Lq N, reduce N; the scale sigma_Q sigma_K and the affine
  map d - 2 H fold into it as constant scales do);
* a sparse A V: a ``matmul`` with fn ``"sparse_matmul"`` of groups g, vectors Lq, in_features Lk (the rows
  of V a chip holds: each query picks its own N) and out_features d_v, on inputs (g, Lq, N) and with
  ``macs`` g Lq N d_v: N/Lk of the dense product's. The cost model drives macs / (vectors x out) = g N rows
  per query when it runs on the crossbar (``cimkit.cost.events``) and writes all Lk rows of V.

Ops between Q K^T and the softmax (a mask add on the scores) and between the softmax and A V stay as
they are; every other op of the workload is kept. Binarizing Q and K is their sign bit (no op).
N larger than Lk keeps all Lk keys (``topn`` then selects nothing away).
"""

from __future__ import annotations

from ..errors import InputError, short_repr

HAMMING, TOPN = "hamming_score", "topn"
#: ``Op.fn`` of the sparse A V (a ``matmul`` whose ``macs`` count the N of in_features rows each query drives)
SPARSE_MATMUL = "sparse_matmul"


def hamming_op(name: str, groups: int, queries: int, bits: int, keys: int):
    """Hamming scores of ``groups`` x ``queries`` binarized queries of ``bits`` bits against ``keys`` keys."""
    from .core import Op

    g, m, d, n = (int(v) for v in (groups, queries, bits, keys))
    lead = (g,) if g != 1 else ()
    return Op(
        name,
        HAMMING,
        d,
        n,
        g,
        in_shape=(*lead, m, d),
        out_shape=(*lead, m, n),
        vectors=m,
        macs=0,
        elements=g * m * n,
        fn=HAMMING,
    )


def topn_op(name: str, groups: int, queries: int, keys: int, n_top: int):
    """Top ``n_top`` of ``keys`` scores per query, ``groups`` x ``queries`` queries."""
    from .core import Op

    g, m, n, k = (int(v) for v in (groups, queries, keys, n_top))
    lead = (g,) if g != 1 else ()
    return Op(
        name,
        TOPN,
        n,
        k,
        g,
        in_shape=(*lead, m, n),
        out_shape=(*lead, m, k),
        vectors=m,
        macs=0,
        elements=g * m * k,
        fn=TOPN,
        reduce=n,
    )


def sparse_matmul_op(name: str, groups: int, queries: int, keys: int, n_top: int, width: int):
    """A V on the ``n_top`` of ``keys`` rows of V each query selects: in_features ``keys`` (the rows stored),
    inputs (groups, queries, n_top), ``macs`` groups x queries x n_top x width."""
    from .core import Op

    g, m, n, k, w = (int(v) for v in (groups, queries, keys, n_top, width))
    lead = (g,) if g != 1 else ()
    return Op(
        name,
        "matmul",
        n,
        w,
        g,
        in_shape=(*lead, m, k),
        out_shape=(*lead, m, w),
        vectors=m,
        macs=g * m * k * w,
        fn=SPARSE_MATMUL,
    )


def _scores_of(op) -> int:
    return int(op.groups) * int(op.vectors) * int(op.out_features)


def find_attention(ops: list) -> list[tuple[int, int, int]]:
    """(Q K^T, softmax, A V) op indices of every attention in ``ops``: a dense dynamic matmul (groups g,
    vectors Lq, out Lk), the first softmax after it over rows of Lk with g Lq Lk elements, and the first
    dense matmul after that of groups g, vectors Lq, in Lk; only ops that neither hold weights nor are
    matmuls may lie between them."""
    found = []
    i = 0
    while i < len(ops):
        qk = ops[i]
        if qk.kind != "matmul" or qk.fn == SPARSE_MATMUL:
            i += 1
            continue
        match = None
        j = i + 1
        while j < len(ops) and ops[j].kind not in ("matmul", HAMMING, TOPN) and not ops[j].weighted:
            sm = ops[j]
            if sm.kind == "softmax" and sm.reduce == qk.out_features and sm.elements == _scores_of(qk):
                k = j + 1
                while k < len(ops) and ops[k].kind != "matmul" and not ops[k].weighted:
                    k += 1
                if k < len(ops):
                    av = ops[k]
                    if (
                        av.kind == "matmul"
                        and av.fn != SPARSE_MATMUL
                        and av.groups == qk.groups
                        and av.vectors == qk.vectors
                        and av.in_features == qk.out_features
                    ):
                        match = (i, j, k)
                break
            j += 1
        if match:
            found.append(match)
            i = match[2] + 1
        else:
            i += 1
    return found


def with_hamming_attention(workload, n_top: int = 32):
    """A copy of ``workload`` whose every attention (Q K^T, softmax, A V; ``find_attention``) is HAD's: a
    ``hamming_score`` op, a ``topn`` op keeping ``n_top`` keys per query (all of them where a sequence has fewer),
    the softmax over those and a sparse A V over their rows of V (see the module docstring). The ops keep
    their names for what they replace (``<attention>.qk`` becomes the hamming_score op of that name); the new top-N
    op is named after the softmax with ``.topn``. An ``InputError`` for an ``n_top`` that is not a whole
    number >= 1 or a workload without attention."""
    from .core import Workload
    from .registry import OP_RULES, digital_op

    if isinstance(n_top, bool) or not isinstance(n_top, int) or n_top < 1:
        raise InputError(
            f"with_hamming_attention: n_top = {short_repr(n_top)}; it must be a whole number >= 1 (the "
            "keys kept per query, HAD's N)"
        )
    if not isinstance(workload, Workload):
        raise InputError(f"with_hamming_attention: expected a cimkit Workload, got {type(workload).__name__}")
    ops = list(workload.ops)
    found = find_attention(ops)
    if not found:
        raise InputError(
            f"with_hamming_attention: workload '{workload.name}' has no attention to rewrite: no "
            "dynamic matmul Q K^T followed by a softmax over its scores and a matmul A V of the same "
            "groups and queries"
        )
    softmax_rule = OP_RULES.get("softmax:softmax")
    new: dict[int, list] = {}
    for i, j, k in found:
        qk, sm, av = ops[i], ops[j], ops[k]
        g, m, d, lk = int(qk.groups), int(qk.vectors), int(qk.in_features), int(qk.out_features)
        n = min(n_top, lk)
        lead = (g,) if g != 1 else ()
        kept = (*lead, m, n)
        softmax = digital_op(sm.name, softmax_rule, kept, kept, {"dim": -1})
        if sm.fn and sm.fn != softmax.fn:
            softmax = _replace(softmax, fn=sm.fn)
        new[i] = [hamming_op(qk.name, g, m, d, lk)]
        new[j] = [topn_op(f"{sm.name}.topn", g, m, lk, n), softmax]
        new[k] = [sparse_matmul_op(av.name, g, m, lk, n, int(av.out_features))]
    out = []
    for index, op in enumerate(ops):
        out.extend(new.get(index, [op]))
    return Workload(f"{workload.name}+had{n_top}", workload.input_shape, out, workload.weight_counts)


def _replace(op, **changes):
    import dataclasses

    return dataclasses.replace(op, **changes)


def attention_ops(workload) -> list[str]:
    """Names of the ops of ``workload`` from each attention's scores to its output: Q K^T to A V
    (``find_attention``) and the ops between them, or in a HAD workload each hamming_score op to the sparse A V
    after it."""
    ops = list(workload.ops)
    spans = [(i, k) for i, _, k in find_attention(ops)]
    for i, op in enumerate(ops):
        if op.kind == HAMMING:
            end = next(
                (k for k in range(i + 1, len(ops)) if ops[k].kind == "matmul" and ops[k].fn == SPARSE_MATMUL), None
            )
            if end is not None:
                spans.append((i, end))
    inside = sorted({index for i, k in spans for index in range(i, k + 1)})
    return [ops[index].name for index in inside]


__all__ = [
    "HAMMING",
    "TOPN",
    "SPARSE_MATMUL",
    "hamming_op",
    "topn_op",
    "sparse_matmul_op",
    "find_attention",
    "with_hamming_attention",
    "attention_ops",
]
