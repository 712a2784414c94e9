"""Estimate: area, energy, latency and TOPS/W of VGG8 (CIFAR-10 shapes) on an RRAM chip, and how the ADC
resolution moves them.

``ck.zoo.workload("vgg8")`` gives the network's layer shapes (no weights needed); ``ck.estimate`` maps it
onto the ``rram-22nm`` preset (DNN+NeuroSim V1.3's default configuration: 2-bit cells, 128x128 arrays,
8-bit bit-serial inputs, 5-bit ADCs) and prices every layer and component analytically, in milliseconds.
``ck.estimate_many`` prices several chips in one vectorized call: here ADCs of 3 to 8 bits.

Expect about 59 mm^2, 75 uJ and 1.7 ms per image (16 TOPS/W), and energy and area rising with the ADC
bits (61 uJ at 3 bits, 187 uJ at 8). Writes
``vgg8_rram-22nm.json`` (the whole report) and ``vgg8_layers.csv`` (one row per layer) into the current
directory. Deterministic (an analytical model: nothing random).
Run: python examples/estimate_vgg8.py   (about 4 s of CPU)
"""

import cimkit as ck

workload = ck.zoo.workload("vgg8")  # or ck.Workload.from_torch(model, input_shape=(1, 3, 32, 32))
spec = ck.HardwareSpec.preset("rram-22nm")
rep = ck.estimate(workload, spec)
print(
    f"VGG8 on rram-22nm: area {rep.area_mm2:.2f} mm^2, energy {rep.energy_j * 1e6:.2f} uJ/image, "
    f"latency {rep.latency_s * 1e3:.3f} ms/image, {rep.tops_per_w:.1f} TOPS/W, {rep.arrays} arrays"
)
top = sorted(rep.energy_breakdown_j.items(), key=lambda kv: -kv[1])[:4]
print("energy by component: " + ", ".join(f"{name} {100 * e / rep.energy_j:.0f}%" for name, e in top))
rep.to_json("vgg8_rram-22nm.json")
rep.to_csv("vgg8_layers.csv")

bits = range(3, 9)
many = ck.estimate_many(workload, [spec.replace(**{"periphery.adc_bits": b}) for b in bits])
for b, e, lat, a in zip(bits, many.energy_j, many.latency_s, many.area_mm2):
    print(f"  {b}-bit ADCs: energy {e * 1e6:7.2f} uJ, latency {lat * 1e3:.3f} ms, area {a:6.2f} mm^2")
