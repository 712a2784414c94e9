"""HAD's binarized attention on the CAM attention unit against standard attention, in the cost model, side by
side at the same sequence length and node (issue 15 point 4).

HAD (Horton et al., arXiv 2502.01770) reports 79% less area and 87% less power than "a custom hardware
implementation of standard attention". Here both run on one chip (a spec, default ``rram-22nm``: 22 nm,
NeuroSim-calibrated crossbars for the static projections) and the attention part is compared:

* standard: Q K^T (dense matmul), softmax over L, A V (dense matmul), on the digital unit (the default) or
  on crossbar arrays rewritten per input (``routing: {matmul: crossbar}``);
* HAD: ``Workload.with_hamming_attention(n_top)``: binarized Q against binarized K on the ``cam_attention``
  unit (keys in CAM rows, Hamming scores sensed on the match lines and converted, a counting-sort top-N
  selector), softmax over the N kept, and the sparse A V (N of L rows of V) on the same unit as the
  standard A V (digital or crossbar).

Attention part = the ops from each Q K^T (or hamming op) to its A V: energy and latency summed over those
layers (their buffer and wire traffic included; chip leakage and the layout factor are not); power = that
energy / that latency; area = what the attention adds to the chip (the chip's area for the workload minus
its area for the workload without those ops). Whole model = the chip's totals. Run:

    .venv/bin/python benchmarks/bench_hamming_cost.py
    .venv/bin/python benchmarks/bench_hamming_cost.py --spec pcm --n-top 16 --lengths 128 256 512
"""

from __future__ import annotations

import argparse
import time

import cimkit as ck
from cimkit.cost.estimate import energy_by_event
from cimkit.workload import Workload
from cimkit.workload.hamming import attention_ops

HAD_AREA, HAD_POWER = 0.79, 0.87  # HAD's reductions against its custom standard-attention hardware


def attention_part(wl: Workload, spec: ck.HardwareSpec, report) -> dict:
    """Energy (J), latency (s), power (W) and added area (mm^2) of ``wl``'s attention on ``spec``."""
    names = set(attention_ops(wl))
    rows = [r for r in report.layers if r["name"] in names]
    energy = sum(r["energy_j"] for r in rows)
    latency = sum(r["latency_s"] for r in rows)
    rest = Workload(wl.name + "-no-attention", wl.input_shape, [op for op in wl.ops if op.name not in names])
    area = report.area_mm2 - ck.estimate(rest, spec).area_mm2
    parts: dict[str, float] = {}
    for r in rows:
        for key, value in r.items():
            if key.startswith("energy_") and key != "energy_j" and value:
                parts[key[len("energy_") : -2]] = parts.get(key[len("energy_") : -2], 0.0) + value
    return {
        "energy_j": energy,
        "latency_s": latency,
        "power_w": energy / latency,
        "area_mm2": area,
        "parts": parts,
        "kinds": {r["kind"] for r in rows},
    }


def reduction(new: float, old: float) -> str:
    if old == 0:
        return "n/a (0 before)"
    return f"{1 - new / old:.1%}" if new <= old else f"{new / old - 1:+.1%} (more)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="rram-22nm")
    ap.add_argument("--models", nargs="+", default=["minilm-l6", "bert-base"])
    ap.add_argument("--lengths", nargs="+", type=int, default=[128, 512])
    ap.add_argument("--n-top", type=int, default=32)
    args = ap.parse_args()
    start = time.perf_counter()
    base = ck.HardwareSpec.preset(args.spec)
    cam = base.cam_attention
    print(
        f"spec {args.spec}: {base.technology.node_nm:g} nm, clock {base.technology.clock_hz / 1e9:g} GHz, digital "
        f"{base.digital.lanes} lanes x {base.digital.data_bits} bits; HAD N = {args.n_top}; CAM unit: "
        f"{cam.rows} x {cam.cols} arrays, {cam.adc_type} converters (1 per {cam.rows_per_adc} rows), figures at "
        f"{cam.figures_node_nm:g} nm scaled to {base.technology.node_nm:g} nm\n"
    )
    print(
        "| model | L | A V on | attention | energy | latency | power | area added | chip energy | chip latency "
        "| chip area |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    summary = []
    splits = []
    for name in args.models:
        for L in args.lengths:
            std = ck.zoo.workload(name, seq_len=L)
            had = std.with_hamming_attention(args.n_top)
            for av_unit in ("digital", "crossbar"):
                spec = base.replace(routing={"matmul": "crossbar"}) if av_unit == "crossbar" else base
                res = {}
                for label, wl in (("standard", std), ("HAD", had)):
                    rep = ck.estimate(wl, spec)
                    part = attention_part(wl, spec, rep)
                    res[label] = (rep, part)
                    print(
                        f"| {name} | {L} | {av_unit} | {label} | {part['energy_j'] * 1e6:.3f} uJ | "
                        f"{part['latency_s'] * 1e6:.2f} us | {part['power_w'] * 1e3:.2f} mW | "
                        f"{part['area_mm2']:.3f} mm^2 | {rep.energy_j * 1e6:.1f} uJ | {rep.latency_s * 1e3:.3f} ms | "
                        f"{rep.area_mm2:.2f} mm^2 |"
                    )
                (rs, ps), (rh, ph) = res["standard"], res["HAD"]
                summary.append((name, L, av_unit, ps, ph, rs, rh))
                if av_unit == "digital":
                    splits.append((name, L, ps, ph, energy_by_event(had, spec)))

    print(
        f"\nReductions, HAD against standard attention on the same chip (HAD's own: {HAD_AREA:.0%} area, "
        f"{HAD_POWER:.0%} power):\n"
    )
    print(
        "| model | L | A V on | attention energy | attention latency | attention power | attention area | chip "
        "energy | chip latency | chip area |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, L, av_unit, ps, ph, rs, rh in summary:
        print(
            f"| {name} | {L} | {av_unit} | {reduction(ph['energy_j'], ps['energy_j'])} | "
            f"{reduction(ph['latency_s'], ps['latency_s'])} | {reduction(ph['power_w'], ps['power_w'])} | "
            f"{reduction(ph['area_mm2'], ps['area_mm2'])} | {reduction(rh.energy_j, rs.energy_j)} | "
            f"{reduction(rh.latency_s, rs.latency_s)} | {reduction(rh.area_mm2, rs.area_mm2)} |"
        )

    print("\nWhere the attention's energy goes (A V on the digital unit), in uJ per inference:\n")
    print(
        "| model | L | attention | digital (MACs, softmax) | buffer + wires | CAM: key writes | CAM: match-line "
        "search | CAM: score conversions | CAM: partial-score adds | top-N selector |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, L, ps, ph, split in splits:
        for label, part in (("standard", ps), ("HAD", ph)):
            p = part["parts"]
            cam_ev = split.get("cam_attention", {}) if label == "HAD" else {}
            cells = [
                p.get("digital", 0.0),
                p.get("buffer", 0.0) + p.get("interconnect", 0.0),
                cam_ev.get("cam_bits_written", 0.0),
                cam_ev.get("cam_rows_searched", 0.0) + cam_ev.get("cam_bits_searched", 0.0),
                cam_ev.get("cam_conversions", 0.0),
                cam_ev.get("cam_partial_adds", 0.0),
                p.get("topn_selector", 0.0),
            ]
            print(f"| {name} | {L} | {label} | " + " | ".join(f"{c * 1e6:.3f}" for c in cells) + " |")
    name, L = args.models[-1], args.lengths[-1]
    std = ck.zoo.workload(name, seq_len=L)
    ps = attention_part(std, base, ck.estimate(std, base))
    print(
        f"\nSensitivity ({name}, L = {L}, A V digital): HAD's attention energy and its reduction against standard "
        f"attention ({ps['energy_j'] * 1e6:.1f} uJ), one knob at a time:\n"
    )
    print("| N | converter | score bits | HAD attention energy | CAM unit share | reduction | CAM + selector area |")
    print("|---|---|---|---|---|---|---|")
    for n_top, adc, bits in (
        (args.n_top, cam.adc_type, None),
        (args.n_top, "survey", None),
        (args.n_top, "mlsa", None),
        (args.n_top, cam.adc_type, 4),
        (16, cam.adc_type, None),
        (64, cam.adc_type, None),
        (128, cam.adc_type, None),
    ):
        spec = base.replace(**{"cam_attention.adc_type": adc, "cam_attention.score_bits": bits})
        had = std.with_hamming_attention(n_top)
        rep = ck.estimate(had, spec)
        ph = attention_part(had, spec, rep)
        unit = ph["parts"].get("cam_attention", 0.0) + ph["parts"].get("topn_selector", 0.0)
        print(
            f"| {n_top} | {adc} | {bits or 'exact'} | {ph['energy_j'] * 1e6:.2f} uJ | {unit / ph['energy_j']:.1%} | "
            f"{reduction(ph['energy_j'], ps['energy_j'])} | {ph['area_mm2']:.3f} mm^2 |"
        )
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
