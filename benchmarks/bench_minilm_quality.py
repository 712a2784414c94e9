"""MiniLM-L6 sentence classification (tweet sentiment, 3 classes) against integer operator widths and chips.

The classifier is MiniLM fine-tuned on tweets (``cimkit.text.fine_tuned_classifier``: 4,000 training tweets,
one epoch, seed 0; cached after the first run). Accuracy on held-out tweets:
- float, then softmax as ``int_softmax`` at 16, 8, 6 and 4 output bits (16-bit input grids), then softmax,
  GELU and LayerNorm all integer (``cimkit.ops.integer_functions``);
- on simulated chips: the 36 encoder linears (and the head) on crossbars, and in the "attention on arrays"
  variants the 12 dynamic matmuls too (arrays rewritten per input), calibrated on 64 training tweets, next
  to the chip's energy per inference for MiniLM-L6 at 64 tokens (cost model, same spec).
Target (issue 14): at most 1 point lost at 8-bit softmax.

Run: python benchmarks/bench_minilm_quality.py [--test N] [--chip-test N] [--skip-chips] [--skip-widths]
     [--only TEXT] [--threads N] [--smoke]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

import cimkit as ck
from cimkit.data.tweets import tweets
from cimkit.ops import integer_functions
from cimkit.text import accuracy, fine_tuned_classifier

CHIPS = {  # name: (preset, changes)
    "pcm": ("pcm", {}),
    "rram-22nm": ("rram-22nm", {}),
    "rram-22nm, sign-magnitude, per-bit ADC": (
        "rram-22nm",
        {"periphery.signed_inputs": "sign_magnitude", "periphery.adc_range_per_input_bit": True},
    ),
    "rram-22nm, differential, sign-magnitude, per-bit": (
        "rram-22nm",
        {
            "periphery.signed_inputs": "sign_magnitude",
            "periphery.adc_range_per_input_bit": True,
            "array.signed_mapping": "differential",
        },
    ),
    "rram-22nm, differential, sign-magnitude, per-bit, 8-bit ADC": (
        "rram-22nm",
        {
            "periphery.signed_inputs": "sign_magnitude",
            "periphery.adc_range_per_input_bit": True,
            "array.signed_mapping": "differential",
            "periphery.adc_bits": 8,
        },
    ),
    "pcm, attention on arrays": ("pcm", {"routing": {"matmul": "crossbar"}}),
    "rram-22nm, differential, sign-magnitude, per-bit, attention on arrays": (
        "rram-22nm",
        {
            "periphery.signed_inputs": "sign_magnitude",
            "periphery.adc_range_per_input_bit": True,
            "array.signed_mapping": "differential",
            "routing": {"matmul": "crossbar"},
        },
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", type=int, default=2000, help="held-out tweets for the operator widths")
    parser.add_argument("--chip-test", type=int, default=500, help="held-out tweets per chip")
    parser.add_argument("--skip-chips", action="store_true")
    parser.add_argument("--skip-widths", action="store_true", help="chips only")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the chips whose name contains TEXT, or is exactly NAME for =NAME (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a CI-sized run: a classifier fine-tuned on 36 tweets (16 tokens), 50 test tweets, the pcm chips on 10",
    )
    args = parser.parse_args()
    tuning = {}
    if args.smoke:
        tuning = dict(train=36, batch=12, max_len=16)
        args.test, args.chip_test, args.only = 50, 10, args.only or ["pcm"]
    warnings.simplefilter("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.time()
    tok, model = fine_tuned_classifier(
        **tuning, progress=lambda s, n, loss: print(f"\rfine-tuning {s}/{n} loss {loss:.3f}", end="", flush=True)
    )
    print(f"\nclassifier ready in {time.time() - t0:.0f} s")
    data = tweets(test=args.test)
    texts, labels = data.test_text, data.y_test
    if not args.skip_widths:
        widths(model, tok, texts, labels)
    if not args.skip_chips:
        chips(
            model,
            tok,
            data,
            args.chip_test,
            args.only,
            calibration=8 if args.smoke else 64,
            max_len=tuning.get("max_len", 64),
        )


def widths(model, tok, texts, labels) -> None:
    base = accuracy(model, tok, texts, labels)
    print(f"\n{'variant':52} {'accuracy':>9} {'vs float':>9}")
    print(f"{'float':52} {base:9.4f} {0:+9.4f}")
    for bits in (16, 8, 6, 4):
        acc = accuracy(model, tok, texts, labels, context=lambda b=bits: integer_functions(softmax_bits=b))
        print(f"{f'int_softmax {bits}-bit output':52} {acc:9.4f} {acc - base:+9.4f}")
    acc = accuracy(
        model, tok, texts, labels, context=lambda: integer_functions(softmax_bits=8, gelu=True, layernorm_bits=16)
    )
    print(f"{'all integer (softmax 8, GELU, LayerNorm 16)':52} {acc:9.4f} {acc - base:+9.4f}")


def chips(model, tok, data, n: int, only: list[str], calibration: int = 64, max_len: int = 64) -> None:
    texts, labels = data.test_text, data.y_test
    sub_texts, sub_labels = texts[:n], labels[:n]
    sub_base = accuracy(model, tok, sub_texts, sub_labels)
    calib = tok(data.train_text[:calibration], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    wl = ck.zoo.workload("minilm-l6", seq_len=64)
    print(
        f"\n{'chip (first %d test tweets; float %.4f)' % (n, sub_base):52} {'accuracy':>9} {'vs float':>9} "
        f"{'energy uJ':>10} {'s':>6}"
    )
    for name, (preset, changes) in CHIPS.items():
        if only and not any(name == o[1:] if o.startswith("=") else o in name for o in only):
            continue
        t = time.time()
        spec = ck.HardwareSpec.preset(preset).replace(**changes)
        cim = ck.calibrate(ck.convert(model, spec, seed=0), [calib])
        acc = accuracy(cim, tok, sub_texts, sub_labels)
        energy = ck.estimate(wl, spec).energy_j * 1e6
        print(f"{name:52} {acc:9.4f} {acc - sub_base:+9.4f} {energy:10.1f} {time.time() - t:6.0f}", flush=True)


if __name__ == "__main__":
    main()
