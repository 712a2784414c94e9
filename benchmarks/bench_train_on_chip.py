"""Hardware-aware fine-tuning through the simulated chip, with each backward pass.

The demo's CNN (trained in float on 4,000 MNIST digits) is converted to an RRAM chip with more
programming noise than the preset (6% of g_max, an assumption for a chip without write-verify) and
loses accuracy. It is then fine-tuned through the chip: the forward pass is the chip's (a fresh
programming-noise sample at every step), the backward pass straight-through or the chip's own. The
fine-tuned weights are finally programmed onto chips it has never seen (other seeds).

Run: python benchmarks/bench_train_on_chip.py [--epochs N]   (5-8 minutes for one epoch on 2 CPU cores, most
of it the chip backward: a transposed read per bit plane and slice of every convolution position)
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import torch
from torch import nn

import cimkit as ck
from cimkit.data import mnist
from cimkit.demo import accuracy, small_cnn, train_or_load

SPEC = ck.HardwareSpec.preset("rram-22nm").replace(**{"device.programming_noise_frac": 0.06})
TEST_SEEDS = (11, 12, 13)


def on_fresh_chips(weights: dict, data) -> list[float]:
    """Test accuracy of ``weights`` programmed onto chips of seeds ``TEST_SEEDS``."""
    plain = small_cnn()
    plain.load_state_dict({k: v for k, v in weights.items() if ".tile." not in k})
    accs = []
    for seed in TEST_SEEDS:
        chip = ck.calibrate(ck.convert(plain, SPEC, seed=seed), [data.x_train[:500]])
        accs.append(accuracy(chip, data.x_test, data.y_test))
    return accs


def fine_tune(model: nn.Module, data, backward: str, epochs: int) -> dict:
    chip = ck.calibrate(ck.convert(model, SPEC, seed=0), [data.x_train[:500]])
    ck.sim.configure(chip, backward=backward, program_noise="per_step")
    opt = torch.optim.Adam(chip.parameters(), lr=3e-4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        chip.train()
        order = torch.randperm(len(data.y_train), generator=gen)
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(chip(data.x_train[idx]), data.y_train[idx]).backward()
            opt.step()
    return chip.state_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    data = mnist()
    model = train_or_load(data.x_train, data.y_train)
    print(f"float CNN: {accuracy(model, data.x_test, data.y_test):.3f} test accuracy on {len(data.y_test)} digits")
    rows = [("converted, no fine-tuning", on_fresh_chips(model.state_dict(), data))]
    for backward in ("straight_through", "chip"):
        tuned = fine_tune(model, data, backward, args.epochs)
        rows.append((f"fine-tuned {args.epochs} epoch(s), {backward}", on_fresh_chips(tuned, data)))
    print(f"\nrram-22nm with 6% programming noise; accuracy on chips {TEST_SEEDS} (unseen in training):")
    for label, accs in rows:
        print(
            f"  {label:42} {statistics.mean(accs):.3f} +- {statistics.stdev(accs):.3f}  "
            f"({', '.join(f'{a:.3f}' for a in accs)})"
        )


if __name__ == "__main__":
    main()
