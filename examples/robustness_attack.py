"""Robustness: an adversarial attack on the float model and on the chip, and one point of a fault campaign.

A 64-48-10 MLP trained on scikit-learn's 8x8 digits is converted onto ``rram-22nm``. FGSM (from the
Adversarial Robustness Toolbox, through ``cimkit.robust``) attacks both at L-inf budgets 0.05 and 0.1:
on the chip every query is a read with fresh read noise and the gradient flows straight through the
crossbars (BPDA). Then ``fault_campaign`` (one ``ck.simulate`` per fault rate, through ``Faults``) samples
three chips where 5% of the columns read 0, against the same chips without faults (mean and 95% band over
the chips, 360 test digits).

Expect clean accuracy 0.98 (float) and 0.97 (chip) on 100 test digits, 0.36 and 0.44 at eps 0.1, and
0.96 -> 0.85 with 5% dead columns. Seeded; a rerun prints the same numbers.
Run: python examples/robustness_attack.py   (about 7 s of CPU)
"""

import torch
from torch import nn

import cimkit as ck
from cimkit.data import digits
from cimkit.robust import accuracy_vs_strength, fault_campaign

torch.manual_seed(0)
d = digits()
model = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
opt = torch.optim.Adam(model.parameters(), 1e-2)
for _ in range(150):
    opt.zero_grad()
    nn.functional.cross_entropy(model(d.x_train), d.y_train).backward()
    opt.step()
model.eval()
chip = ck.calibrate(ck.convert(model, "rram-22nm", seed=0), [d.x_train[:256]])
x, y = d.x_test[:100], d.y_test[:100]

curve = accuracy_vs_strength({"float": model, "chip": chip}, "fgsm", x, y, [0.0, 0.05, 0.1], seed=0)
for row in curve.records():
    print(f"FGSM eps {row['strength']:.2f} on {row['model']:>5}: accuracy {row['accuracy']:.3f}")

campaign = fault_campaign(
    model, "rram-22nm", d.x_test, d.y_test, kind="dead_column", rates=[0.0, 0.05], chips=3, calibration=d.x_train[:256]
)
for row in campaign.records():
    print(
        f"dead columns {row['dead_column_rate']:.0%}: accuracy {row['mean_accuracy']:.3f} "
        f"(95% band {row['low']:.3f}-{row['high']:.3f}, {row['chips']} chips)"
    )
