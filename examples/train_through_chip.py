"""Training: train an MLP through a simulated RRAM chip (hardware-aware training), watch its ADCs with a
stage hook, and save the chip.

A 64-64-10 MLP is converted onto the ``rram-22nm`` preset before training; ``ck.sim.configure`` gives its
crossbar layers straight-through gradients and a fresh programming-noise sample at every optimizer step,
so Adam learns weights that work on the noisy, quantized chip (scikit-learn's 8x8 digits). A stage hook on
the first layer's ADC counts conversions at the top code (saturation), and the chip's state dict (cells,
calibrated ranges, random streams) reloaded into another conversion reads bit for bit the same.
``cimkit.train`` has the packaged versions (``HardwareAwareTrainer``, in-situ BP / DFA through device
write pulses: ``docs/training.md``).

Expect ``before training: accuracy 0.089``, ``after 4 epochs through the chip: accuracy 0.950``, well under 1% of
conversions at the ADC's top code, and ``reloaded chip reads the same: True``. Seeded; a rerun prints the
same numbers.
Run: python examples/train_through_chip.py   (about 8 s of CPU)
"""

import io

import torch
from torch import nn

import cimkit as ck
from cimkit.data import digits

EPOCHS = 4
torch.manual_seed(0)
data = digits()
x_train, x_test = data.x_train.flatten(1), data.x_test.flatten(1)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

# the converted model keeps its float weights as Parameters: any optimizer trains it through the chip
chip = ck.calibrate(ck.convert(model, "rram-22nm", seed=0), [x_train])
ck.sim.configure(chip, backward="straight_through", program_noise="per_step")
opt = torch.optim.Adam(chip.parameters(), lr=1e-2)


def accuracy(m: nn.Module) -> float:
    with torch.no_grad():
        return float((m(x_test).argmax(1) == data.y_test).float().mean())


print(f"before training: accuracy {accuracy(chip):.3f}")
gen = torch.Generator().manual_seed(0)
for _epoch in range(EPOCHS):
    order = torch.randperm(len(x_train), generator=gen)
    for i in range(0, len(order), 128):
        batch = order[i : i + 128]
        opt.zero_grad()
        nn.functional.cross_entropy(chip(x_train[batch]), data.y_train[batch]).backward()
        opt.step()  # the next forward programs the new weights, with a fresh programming-noise sample
print(f"after {EPOCHS} epochs through the chip: accuracy {accuracy(chip):.3f}")

# a stage hook: the share of ADC conversions at the top code of the first layer
saturated = []
top = 2 ** chip[0].spec.periphery.adc_bits - 1
handle = chip[0].register_stage_hook(
    "adc", lambda tile, codes, info: saturated.append(float((codes >= top).float().mean()))
)
accuracy(chip)
handle.remove()
print(f"layer 0: {100 * sum(saturated) / len(saturated):.2f}% of conversions at the ADC's top code")

# the saved model is the chip: loading it into another conversion reproduces its reads bit for bit
buf = io.BytesIO()
torch.save(chip.state_dict(), buf)
buf.seek(0)
copy = ck.convert(model, "rram-22nm", seed=123)
copy.load_state_dict(torch.load(buf, weights_only=True))
with torch.no_grad():
    print("reloaded chip reads the same:", torch.equal(copy(x_test), chip(x_test)))
