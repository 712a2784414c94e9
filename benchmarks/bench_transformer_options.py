"""What a transformer layer needs from the converters: error of one Linear(512, 256) on ``rram-22nm``
(noise off, 5-bit ADC) with ReLU and with signed inputs, for the input and weight codings and ADC ranges
the spec offers, next to what each option costs on MiniLM-L6 at sequence length 128 (cost model).

Relative error is ||y - y_float|| / ||y_float|| over 256 input vectors, after ``cimkit.calibrate`` on the
same inputs. Issue 14 quotes, for the same layer set up the same way in Sandia's CrossSim and in cimkit
before these options: 0.21 (ReLU) and 0.48 (signed) with offset-mapped weights, 0.19 with sign-magnitude
inputs, 0.17 / 0.05 with differential weights, 0.09 / 0.11 with ranges per input bit, 0.01 without ADC.

Then (``--minilm``; needs the transformers extra) MiniLM-L6 end to end: cosine of the mean-pooled embeddings of
8 sentences to float, after ``calibrate`` on the same tokenizer batch, noise on, for presets and options, with
the 12 dynamic matmuls (Q K^T, A V) digital or on crossbars rewritten per input (``routing: {matmul:
crossbar}``), next to the energy of MiniLM-L6 at 128 tokens for the same spec.

Run: python benchmarks/bench_transformer_options.py [--minilm [--only NAME ...]]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from torch import nn

import cimkit as ck

OPTIONS = {  # name: spec changes on rram-22nm without noise
    "offset, two's complement": {},
    "offset, sign-magnitude": {"periphery.signed_inputs": "sign_magnitude"},
    "offset, per-bit ADC ranges": {"periphery.adc_range_per_input_bit": True},
    "offset, sign-magnitude, per-bit": {
        "periphery.signed_inputs": "sign_magnitude",
        "periphery.adc_range_per_input_bit": True,
    },
    "differential, two's complement": {"array.signed_mapping": "differential"},
    "differential, sign-magnitude": {
        "array.signed_mapping": "differential",
        "periphery.signed_inputs": "sign_magnitude",
    },
    "differential, sign-magnitude, per-bit": {
        "array.signed_mapping": "differential",
        "periphery.signed_inputs": "sign_magnitude",
        "periphery.adc_range_per_input_bit": True,
    },
    "no ADC (reference)": {"periphery.adc_bits": None},
}


def rel_err(spec: ck.HardwareSpec, layer: nn.Module, x: torch.Tensor) -> float:
    cim = ck.calibrate(ck.convert(layer, spec, seed=0), [x])
    with torch.no_grad():
        y, ref = cim(x), layer(x)
    return float((y - ref).norm() / ref.norm())


SENTENCES = [
    "the movie was great fun",
    "I hated every minute of it",
    "a quiet film about loss",
    "what a waste of time",
    "the weather is lovely today",
    "he never called back",
    "best pizza in town",
    "I am so tired of this",
]
MINILM_CHIPS = {  # name: (preset, changes)
    "ideal": ("ideal", {}),
    "sram": ("sram", {}),
    "neurram": ("neurram", {}),
    "pcm": ("pcm", {}),
    "rram-22nm": ("rram-22nm", {}),
    "rram-22nm, sign-magnitude, per-bit": (
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
}


def minilm(only: list[str]) -> None:
    from cimkit.text import load_minilm

    tok, bert = load_minilm()
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    mask = batch["attention_mask"].unsqueeze(-1).float()

    def pooled(model):
        with torch.no_grad():
            return (model(**batch).last_hidden_state * mask).sum(1) / mask.sum(1)

    ref = pooled(bert)
    wl = ck.zoo.workload("minilm-l6", seq_len=128)
    print(f"\n{'MiniLM-L6 chip':50} {'attention':>9} {'cosine':>7} {'uJ':>7} {'s':>5}")
    for name, (preset, changes) in MINILM_CHIPS.items():
        if only and name not in only:
            continue
        for route in ({}, {"matmul": "crossbar"}):
            t = time.time()
            spec = ck.HardwareSpec.preset(preset).replace(routing=route, **changes)
            chip = ck.calibrate(ck.convert(bert, spec, seed=0), [batch])
            cos = float(torch.nn.functional.cosine_similarity(pooled(chip), ref).mean())
            energy = f"{'-':>7}"  # ideal converters have no price; a chip too small for MiniLM no energy
            if spec.periphery.adc_bits is not None and spec.periphery.input_bits is not None:
                rep = ck.estimate(wl, spec)
                energy = f"{rep.energy_j * 1e6:7.1f}" if rep.feasible else f"{'too small':>7}"
            print(
                f"{name:50} {'arrays' if route else 'digital':>9} {cos:7.3f} {energy} {time.time() - t:5.0f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minilm", action="store_true", help="also MiniLM-L6 end to end on chips")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="MiniLM chips whose name is NAME (repeatable; default: all)",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    layer = nn.Linear(512, 256)
    x = torch.randn(256, 512)
    base = ck.HardwareSpec.preset("rram-22nm").replace(
        **{"device.programming_noise_frac": 0.0, "device.read_noise_model": "none"}
    )
    wl = ck.zoo.workload("minilm-l6", seq_len=128)
    print(f"{'option':40} {'ReLU':>6} {'signed':>7} {'MiniLM uJ':>10} {'MiniLM ms':>10} {'passes':>7}")
    for name, changes in OPTIONS.items():
        spec = base.replace(**changes)
        if spec.periphery.adc_bits is None:  # an ideal converter has no price
            cost = f"{'-':>10} {'-':>10}"
        else:
            rep = ck.estimate(wl, spec)
            cost = f"{rep.energy_j * 1e6:10.1f} {rep.latency_s * 1e3:10.3f}"
        print(
            f"{name:40} {rel_err(spec, layer, x.relu()):6.3f} {rel_err(spec, layer, x):7.3f} {cost} "
            f"{spec.periphery.input_passes:7d}"
        )
    if args.minilm:
        minilm(args.only)


if __name__ == "__main__":
    main()
