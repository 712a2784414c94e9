"""Hamming attention (HAD) against float attention on CPU, in evaluation, measured side by side.

For each sequence length L and kept keys N: float attention as three ops (Q . K^T, softmax, A . V; the
reference the issue names) and torch's fused ``scaled_dot_product_attention``, against
``cimkit.ops.HammingAttention`` in eval mode with the sign binarizer (packing Q and K signs into 64-bit
words, XNOR-popcount similarity, exact top-N with ties to the lower key index, softmax over the N kept
logits, sparse A . V gathering N value rows per query). The time of each is the best of ``--repeat`` runs;
the ratio is Hamming / float (below 1: Hamming faster). At L = 512 a breakdown of the Hamming path's steps,
and torch.topk (the naive selection) for comparison.

    .venv/bin/python benchmarks/bench_hamming_attention.py             # batch 1, 12 heads, head_dim 64
    .venv/bin/python benchmarks/bench_hamming_attention.py --lengths 512 --n-top 32 --repeat 30
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from cimkit.ops import HammingAttention, pack_signs
from cimkit.ops.hamming import _hamming, hamming_top_n


def best_ms(fns: dict, repeat: int) -> dict:
    """The best time of each callable over ``repeat`` rounds, in ms; the callables run in turn within each
    round (interleaved), so that a slow spell of a shared machine hits them alike."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: t * 1e3 for name, t in best.items()}


def float_attention(q, k, v):
    return torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5, dim=-1), v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024])
    ap.add_argument("--n-top", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    print(
        f"CPU, torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}; batch "
        f"{args.batch}, {args.heads} heads, head_dim {args.head_dim}; best of {args.repeat} runs, ms"
    )
    print(f"{'L':>5} {'N':>4} {'float 3-op':>10} {'sdpa':>8} {'hamming':>8} {'ham/float':>9} {'ham/sdpa':>8}")
    with torch.inference_mode():
        for length in args.lengths:
            shape = (args.batch, args.heads, length, args.head_dim)
            q, k, v = (torch.randn(shape, generator=g) for _ in range(3))
            fns = {"float": lambda: float_attention(q, k, v), "sdpa": lambda: F.scaled_dot_product_attention(q, k, v)}
            for n in args.n_top:
                if n <= length:
                    m = HammingAttention(n, "sign").eval()
                    m.sigma_q.fill_(1.0)
                    m.sigma_k.fill_(1.0)
                    fns[n] = lambda m=m: m(q, k, v)
            t = best_ms(fns, args.repeat)
            for n in args.n_top:
                if n in t:
                    print(
                        f"{length:>5} {n:>4} {t['float']:>10.2f} {t['sdpa']:>8.2f} {t[n]:>8.2f} "
                        f"{t[n] / t['float']:>9.2f} {t[n] / t['sdpa']:>8.2f}"
                    )
        length, n = 512, 32
        if length in args.lengths:
            shape = (args.batch, args.heads, length, args.head_dim)
            q, k, v = (torch.randn(shape, generator=g) for _ in range(3))
            qw, kw = pack_signs(q).numpy(), pack_signs(k).numpy()
            idx, _ = hamming_top_n(qw, kw, n, d=args.head_dim)
            rows = torch.from_numpy(idx) + (torch.arange(args.batch * args.heads) * length).view(
                args.batch, args.heads, 1, 1
            )
            p = torch.softmax(torch.randn(*idx.shape, generator=g), -1)
            sim = (args.head_dim - 2 * torch.from_numpy(_hamming(qw, kw).astype(np.int16))).float()
            m = HammingAttention(n, "sign").eval()
            m.sigma_q.fill_(1.0)
            m.sigma_k.fill_(1.0)
            steps = {
                "the whole module (eval, sign)": lambda: m(q, k, v),
                "pack Q and K signs": lambda: (pack_signs(q), pack_signs(k)),
                f"XNOR-popcount + exact top-{n} (hamming_top_n)": lambda: hamming_top_n(qw, kw, n, d=args.head_dim),
                f"softmax over {n}": lambda: torch.softmax(p, -1),
                f"sparse A.V ({n} rows gathered, embedding_bag)": lambda: F.embedding_bag(
                    rows.view(-1, n), v.reshape(-1, args.head_dim), per_sample_weights=p.reshape(-1, n), mode="sum"
                ),
                "for comparison: XNOR-popcount alone, all scores": lambda: _hamming(qw, kw),
                f"for comparison: torch.topk({n}) on the scores": lambda: torch.topk(sim, n, dim=-1),
                "for comparison: float attention (3 ops)": lambda: float_attention(q, k, v),
                "for comparison: float Q.K^T alone": lambda: torch.matmul(q, k.transpose(-1, -2)),
            }
            print(f"\nL = {length}, N = {n}: the Hamming path step by step")
            for name, ms in best_ms(steps, args.repeat).items():
                print(f"  {name:<50} {ms:8.2f} ms")


if __name__ == "__main__":
    main()
