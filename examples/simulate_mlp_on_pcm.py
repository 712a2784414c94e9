"""Simulate: how accurate is a small MLP on a noisy PCM chip, on the day it is programmed and a day later?

Trains a 64-64-10 MLP on scikit-learn's 8x8 digits (float accuracy about 0.97), converts it onto the
``pcm`` preset (IBM PCM statistics: programming noise, 1/f read noise, drift with global drift
compensation), calibrates the ADC ranges, and reads the same programmed chip 20 s, 1 h and 1 day after
programming (accuracy drops by about 0.01). Then ``ck.simulate`` samples three chips (three programming
noise draws) and reports the mean and spread of their accuracy.

Expect lines such as ``float accuracy: 0.978`` and ``PCM, 3 chips: accuracy 0.971 +- 0.006``.
Seeded (torch.manual_seed and the chips' seeds): a rerun prints the same numbers.
Run: python examples/simulate_mlp_on_pcm.py   (about 5 s of CPU)
"""

import torch
from torch import nn

import cimkit as ck
from cimkit.data import digits

torch.manual_seed(0)
data = digits()  # scikit-learn's 1,797 8x8 digits, a fixed seeded 80/20 split
x_train, x_test = data.x_train.flatten(1), data.x_test.flatten(1)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(150):
    opt.zero_grad()
    nn.functional.cross_entropy(model(x_train), data.y_train).backward()
    opt.step()
model.eval()


def accuracy(m: nn.Module) -> float:
    with torch.no_grad():
        return float((m(x_test).argmax(1) == data.y_test).float().mean())


print(f"float accuracy: {accuracy(model):.3f}")
chip = ck.calibrate(ck.convert(model, "pcm", seed=0), [x_train])  # the original model is left untouched
print(chip.cim_summary)
for t_s in (20.0, 3600.0, 86400.0):
    ck.set_time(chip, t_s)  # the same programmed cells, read later (drift)
    print(f"PCM chip read {t_s:>8.0f} s after programming: accuracy {accuracy(chip):.3f}")

# several sampled chips: one conversion, calibration and test pass per programming-noise seed
result = ck.simulate(model, "pcm", x_test, data.y_test, chips=3, seed=0, calibration=x_train[:256])
print(f"PCM, {result.chips} chips: accuracy {result.mean_accuracy:.3f} +- {result.std_accuracy:.3f}")
