"""Pruned channels on noisy chips (issue 9): zero every other unit of the demo CNN's first fully
connected layer, then run it on the noisy presets over three chip samples.

Before the fix an all-zero channel got a digital weight scale of 1, so its cells' full-size programming
noise reached the output; now it gets scale 0 and the channel outputs exactly zero.

Run: .venv/bin/python benchmarks/bench_pruned_cnn.py
"""

import statistics
import warnings

import torch

import cimkit as ck
from cimkit.data import mnist
from cimkit.demo import accuracy, cim_accuracy, train_or_load


def main() -> None:
    warnings.simplefilter("ignore")
    data = mnist()
    model = train_or_load(data.x_train, data.y_train)
    with torch.no_grad():
        fc = model[7]
        fc.weight[::2] = 0.0
        fc.bias[::2] = 0.0
    print(f"pruned CNN, float: {accuracy(model, data.x_test, data.y_test):.1%}")
    for preset in ("rram-22nm", "pcm"):
        spec = ck.HardwareSpec.preset(preset)
        accs = [cim_accuracy(model, spec, seed, data.x_train[:256], data.x_test, data.y_test) for seed in range(3)]
        print(f"{preset:10} mean {statistics.mean(accs):.1%}  chips {', '.join(f'{a:.1%}' for a in accs)}")


if __name__ == "__main__":
    main()
