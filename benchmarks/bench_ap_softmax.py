"""AP softmax (cimkit.ap) vs GPU rooflines: energy, latency and EDP of one BERT-base attention layer's
softmax (12 heads, L x L scores, prefill) for L = 128..4096, next to SoftmAP's "up to ~1000x" EDP
(Rakka et al., arXiv 2411.17847). The GPU side is a ROOFLINE FROM PUBLISHED FIGURES, NOT MEASURED
(fp16 scores read and probabilities written once at peak bandwidth, board power). Run:
    .venv/bin/python benchmarks/bench_ap_softmax.py [--input-bits 16] [--output-bits 8]
"""

from __future__ import annotations

import argparse
import time

from cimkit.ap.cost import ap_softmax_cost, gpu_softmax_roofline
from cimkit.ops.intsoftmax import DEFAULT_EXP, IBERT_EXP


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input-bits", type=int, default=16)
    ap.add_argument("--output-bits", type=int, default=8)
    ap.add_argument("--exp", choices=["default", "ibert"], default="default")
    ap.add_argument("--heads", type=int, default=12)
    args = ap.parse_args()
    exp = IBERT_EXP if args.exp == "ibert" else DEFAULT_EXP
    print(f"softmax of one attention layer, {args.heads} heads, input {args.input_bits} b, output "
          f"{args.output_bits} b, exp {exp.name}; GPU = roofline from published figures, not measured")
    head = (f"{'L':>5} {'passes':>7} {'tiles':>8} {'rounds':>6} {'AP E (J)':>10} {'AP t (s)':>10} "
            f"{'A100 E':>10} {'A100 t':>10} {'3090 E':>10} {'3090 t':>10} {'EDP A100/AP':>12} {'EDP 3090/AP':>12}")
    print(head)
    t0 = time.time()
    for L in (128, 256, 512, 1024, 2048, 4096):
        a = ap_softmax_cost(L, args.heads, input_bits=args.input_bits, output_bits=args.output_bits, exp=exp)
        g1, g2 = gpu_softmax_roofline(L, args.heads, "a100"), gpu_softmax_roofline(L, args.heads, "rtx3090")
        print(f"{L:>5} {a.passes:>7} {a.tiles:>8} {a.rounds:>6} {a.energy_j:>10.3e} {a.latency_s:>10.3e} "
              f"{g1.energy_j:>10.3e} {g1.latency_s:>10.3e} {g2.energy_j:>10.3e} {g2.latency_s:>10.3e} "
              f"{g1.edp_js / a.edp_js:>12.3g} {g2.edp_js / a.edp_js:>12.3g}")
    b = a.breakdown_j
    print("AP energy at L=4096 by part: " + ", ".join(f"{k} {v / a.energy_j:.0%}" for k, v in b.items()))
    print("SoftmAP (arXiv 2411.17847) reports up to ~1000x (three orders of magnitude) better EDP than A100 "
          "and RTX3090 (measured GPUs, their own low-precision AP program and AP figures).")
    print(f"({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
