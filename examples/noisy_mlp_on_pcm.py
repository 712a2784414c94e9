"""Train a small MLP on sklearn's 8x8 digits, then read it on a PCM chip over a day of drift.

Run: python examples/noisy_mlp_on_pcm.py   (a few seconds)
"""

import torch
from torch import nn

import cimkit as ck
from cimkit.data import digits

torch.manual_seed(0)
data = digits()
x_train, x_test = data.x_train.flatten(1), data.x_test.flatten(1)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(150):
    opt.zero_grad()
    nn.functional.cross_entropy(model(x_train), data.y_train).backward()
    opt.step()


def accuracy(m: nn.Module) -> float:
    with torch.no_grad():
        return float((m(x_test).argmax(1) == data.y_test).float().mean())


print(f"float: {accuracy(model):.3f}")
chip = ck.calibrate(ck.convert(model, "pcm", seed=0), [x_train])
print(chip.cim_summary)
for t_s in (20.0, 3600.0, 86400.0):
    ck.set_time(chip, t_s)
    print(f"PCM chip read {t_s:>8.0f} s after programming: {accuracy(chip):.3f}")
