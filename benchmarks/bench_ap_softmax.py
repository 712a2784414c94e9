"""AP softmax (cimkit.ap) vs GPU rooflines: energy, latency and EDP of one BERT-base attention layer's
softmax (12 heads, L x L scores, prefill) for L = 128..4096, next to SoftmAP's "up to ~1000x" EDP
(Rakka et al., arXiv 2411.17847), for two integer kernels:

* wide: cimkit.ops.int_softmax's default (16-bit input codes, 8-bit outputs, 64-segment Chebyshev exp,
  ``WIDE`` internal widths: 30 fraction bits, exp(0) = 2**38, 60-62-bit intermediates);
* low:  a low-precision kernel (8-bit input codes, 8-bit outputs, I-BERT's exp polynomial,
  ``LOW_PRECISION`` widths: 10 fraction bits, exp(0) = 2**16, a 16-bit multiplier). SoftmAP runs an
  integer-only low-precision softmax, but its bit widths were not readable here: these are cimkit's
  choice (the kernel's own rounding at the order of the 8-bit output step), not SoftmAP's published ones.

For each kernel the softmax error against float softmax is measured (synthetic scores N(0, 2^2), seeded;
against softmax(x) and against softmax(q s) of the quantized scores, i.e. the kernel alone) and the AP
program's output is checked bit for bit against the integer reference. The GPU side is a ROOFLINE FROM
PUBLISHED FIGURES, NOT MEASURED (fp16 scores read and probabilities written once at peak bandwidth, board
power). Run:
    .venv/bin/python benchmarks/bench_ap_softmax.py
"""

from __future__ import annotations

import argparse
import time

import torch

from cimkit.ap import ap_softmax_codes
from cimkit.ap.cost import ap_softmax_cost, gpu_softmax_roofline
from cimkit.ops.intsoftmax import (
    DEFAULT_EXP,
    IBERT_EXP,
    LOW_PRECISION,
    WIDE,
    SoftmaxWidths,
    softmax_codes,
    softmax_error_bound,
)

LENGTHS = (128, 256, 512, 1024, 2048, 4096)


def errors(L: int, input_bits: int, output_bits: int, exp, widths, rows: int = 64) -> dict:
    """Max and mean |error| of the integer softmax against float64 softmax on ``rows`` rows of N(0, 2^2)
    scores of length L (grid: max|x| over the largest code), and the AP program's equality on 2 rows."""
    x = torch.randn(rows, L, generator=torch.Generator().manual_seed(L), dtype=torch.float64) * 2.0
    top = (1 << (input_bits - 1)) - 1
    s = float(x.abs().max()) / top
    q = torch.clamp(torch.round(x / s), -top - 1, top).to(torch.int64)
    y = softmax_codes(q, s, output_bits=output_bits, exp=exp, widths=widths).double() * 2.0**-output_bits
    ref, ref_q = torch.softmax(x, -1), torch.softmax(q.double() * s, -1)
    ap = ap_softmax_codes(q[:2], s, input_bits=input_bits, output_bits=output_bits, exp=exp, widths=widths)
    same = torch.equal(ap.codes, softmax_codes(q[:2], s, output_bits=output_bits, exp=exp, widths=widths))
    return {
        "max": float((y - ref).abs().max()),
        "mean": float((y - ref).abs().mean()),
        "max_q": float((y - ref_q).abs().max()),
        "mean_q": float((y - ref_q).abs().mean()),
        "bound": softmax_error_bound(output_bits, L, exp=exp, widths=widths, input_scale=s),
        "ap_equal": same,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--low-input-bits", type=int, default=8)
    ap.add_argument("--low-output-bits", type=int, default=8)
    ap.add_argument("--low-exp", choices=["default", "ibert"], default="ibert")
    ap.add_argument("--low-frac-bits", type=int, default=LOW_PRECISION.frac_bits)
    ap.add_argument("--low-exp-bits", type=int, default=LOW_PRECISION.exp_bits)
    ap.add_argument("--low-table-bits", type=int, default=LOW_PRECISION.table_bits)
    ap.add_argument("--low-mult-bits", type=int, default=LOW_PRECISION.mult_bits)
    args = ap.parse_args()
    low = SoftmaxWidths(args.low_frac_bits, args.low_exp_bits, args.low_table_bits, args.low_mult_bits, "low")
    kernels = {
        "wide": dict(input_bits=16, output_bits=8, exp=DEFAULT_EXP, widths=WIDE),
        "low": dict(
            input_bits=args.low_input_bits,
            output_bits=args.low_output_bits,
            exp=IBERT_EXP if args.low_exp == "ibert" else DEFAULT_EXP,
            widths=low,
        ),
    }
    t0 = time.time()
    print(
        f"softmax of one attention layer, {args.heads} heads x L queries x L scores; GPU = roofline from published "
        "figures, not measured (fp16, peak bandwidth, board power)"
    )
    for name, k in kernels.items():
        w = k["widths"]
        print(
            f"\n== {name} kernel: input {k['input_bits']} b, output {k['output_bits']} b, exp {k['exp'].name}, "
            f"frac_bits {w.frac_bits}, exp_bits {w.exp_bits}, table_bits {w.table_bits}, mult_bits {w.mult_bits}"
        )
        print(
            "softmax error vs float64 softmax (scores N(0, 2^2), 64 rows; 'kernel' = vs softmax of the quantized "
            "scores); AP program == integer reference bit for bit:"
        )
        for L in (128, 1024):
            e = errors(L, **k)
            print(
                f"  L={L:>5}: max {e['max']:.2e}  mean {e['mean']:.2e}  | kernel: max {e['max_q']:.2e}  mean "
                f"{e['mean_q']:.2e}  | bound {e['bound']:.2e}  | AP equal: {e['ap_equal']}"
            )
        print(
            f"{'L':>5} {'passes':>7} {'cols':>5} {'tiles':>8} {'rounds':>6} {'AP E (J)':>10} {'AP t (s)':>10} "
            f"{'A100 E':>10} {'A100 t':>10} {'3090 E':>10} {'3090 t':>10} {'EDP A100/AP':>12} {'EDP 3090/AP':>12}"
        )
        for L in LENGTHS:
            a = ap_softmax_cost(L, args.heads, **k)
            g1, g2 = gpu_softmax_roofline(L, args.heads, "a100"), gpu_softmax_roofline(L, args.heads, "rtx3090")
            print(
                f"{L:>5} {a.passes:>7} {a.columns:>5} {a.tiles:>8} {a.rounds:>6} {a.energy_j:>10.3e} "
                f"{a.latency_s:>10.3e} {g1.energy_j:>10.3e} {g1.latency_s:>10.3e} {g2.energy_j:>10.3e} "
                f"{g2.latency_s:>10.3e} {g1.edp_js / a.edp_js:>12.3g} {g2.edp_js / a.edp_js:>12.3g}"
            )
        b = a.breakdown_j
        print(
            f"AP energy at L={L} by part: "
            + ", ".join(f"{p} {v / a.energy_j:.1%}" for p, v in b.items())
            + f"; per score {a.energy_j / (args.heads * L * L) * 1e12:.3f} pJ (A100 roofline "
            f"{g1.energy_j / (args.heads * L * L) * 1e12:.3f} pJ)"
        )
        print(f"AP area (2**20 words x {a.columns} columns x 0.52 um^2): {a.area_mm2:.0f} mm^2")
        print(
            f"passes (compares + writes + reads + counts) by program step at L={L}: "
            + ", ".join(f"{s} {sum(v)}" for s, v in a.steps.items() if sum(v))
        )
        one = ap_softmax_cost(L, args.heads, ap_rows=a.tiles * 256, **k)  # an AP holding the whole layer
        print(
            f"sensitivity, not the result: an AP holding the whole L={L} layer in one round ({one.area_mm2:.3g} "
            f"mm^2) gives EDP A100/AP {g1.edp_js / one.edp_js:.3g}"
        )
    print(
        "\nSoftmAP (arXiv 2411.17847) reports up to ~1000x (three orders of magnitude) better EDP than A100 "
        "and RTX3090 (measured GPUs, its own low-precision AP program and AP figures)."
    )
    print(f"({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
