"""What a transformer layer needs from the converters: error of one Linear(512, 256) on ``rram-22nm``
(noise off, 5-bit ADC) with ReLU and with signed inputs, for the input and weight codings and ADC ranges
the spec offers, next to what each option costs on MiniLM-L6 at sequence length 128 (cost model).

Relative error is ||y - y_float|| / ||y_float|| over 256 input vectors, after ``cimkit.calibrate`` on the
same inputs. Issue 14 quotes, for the same layer set up the same way in Sandia's CrossSim and in cimkit
before these options: 0.21 (ReLU) and 0.48 (signed) with offset-mapped weights, 0.19 with sign-magnitude
inputs, 0.17 / 0.05 with differential weights, 0.09 / 0.11 with ranges per input bit, 0.01 without ADC.

Run: python benchmarks/bench_transformer_options.py
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

import cimkit as ck

OPTIONS = {  # name: spec changes on rram-22nm without noise
    "offset, two's complement": {},
    "offset, sign-magnitude": {"periphery.signed_inputs": "sign_magnitude"},
    "offset, per-bit ADC ranges": {"periphery.adc_range_per_input_bit": True},
    "offset, sign-magnitude, per-bit": {"periphery.signed_inputs": "sign_magnitude",
                                        "periphery.adc_range_per_input_bit": True},
    "differential, two's complement": {"array.signed_mapping": "differential"},
    "differential, sign-magnitude": {"array.signed_mapping": "differential", "periphery.signed_inputs": "sign_magnitude"},
    "differential, sign-magnitude, per-bit": {"array.signed_mapping": "differential",
                                              "periphery.signed_inputs": "sign_magnitude",
                                              "periphery.adc_range_per_input_bit": True},
    "no ADC (reference)": {"periphery.adc_bits": None},
}


def rel_err(spec: ck.HardwareSpec, layer: nn.Module, x: torch.Tensor) -> float:
    cim = ck.calibrate(ck.convert(layer, spec, seed=0), [x])
    with torch.no_grad():
        y, ref = cim(x), layer(x)
    return float((y - ref).norm() / ref.norm())


def main() -> None:
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    layer = nn.Linear(512, 256)
    x = torch.randn(256, 512)
    base = ck.HardwareSpec.preset("rram-22nm").replace(**{"device.programming_noise_frac": 0.0,
                                                          "device.read_noise_model": "none"})
    wl = ck.zoo.workload("minilm-l6", seq_len=128)
    print(f"{'option':40} {'ReLU':>6} {'signed':>7} {'MiniLM uJ':>10} {'MiniLM ms':>10} {'passes':>7}")
    for name, changes in OPTIONS.items():
        spec = base.replace(**changes)
        if spec.periphery.adc_bits is None:  # an ideal converter has no price
            cost = f"{'-':>10} {'-':>10}"
        else:
            rep = ck.estimate(wl, spec)
            cost = f"{rep.energy_j * 1e6:10.1f} {rep.latency_s * 1e3:10.3f}"
        print(f"{name:40} {rel_err(spec, layer, x.relu()):6.3f} {rel_err(spec, layer, x):7.3f} {cost} "
              f"{spec.periphery.input_passes:7d}")


if __name__ == "__main__":
    main()
