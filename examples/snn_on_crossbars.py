"""SNN: a spiking network (snnTorch) trained on rate-coded digits, run on crossbars with neuron mismatch, and
priced from its measured spikes.

A 64-64-10 network of ``snn.Leaky`` neurons reads scikit-learn's 8x8 digits as 10 steps of Poisson-like
spikes (``cimkit.snn.tasks.encode_images``) and is trained with backpropagation through time (snnTorch's
surrogate gradient). ``ck.convert`` puts its ``nn.Linear`` layers on ``rram-22nm`` crossbars that read each
step's spikes in one binary pass, and its neurons on the chip's neuron unit with 5% threshold mismatch.
``snn_activity_report`` runs the network once and prices each layer's array reads at its measured spike
density.

Expect the float SNN at 0.967 accuracy, the chip at 0.955, spike rates of about 0.3 (hidden) and 0.09
(output) per neuron and step, and about 3.2 nJ and 0.64 us per inference. Seeded; a rerun prints the same numbers.
Needs snntorch (a cimkit dependency).
Run: python examples/snn_on_crossbars.py   (about 8 s of CPU)
"""

import snntorch as snn
import torch
import torch.nn.functional as F
from torch import nn

import cimkit as ck
from cimkit.data import digits
from cimkit.snn.cost import snn_activity_report
from cimkit.snn.tasks import encode_images

STEPS = 10


class SpikingMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(64, 64), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(64, 10), snn.Leaky(beta=0.9)

    def forward(self, spikes):  # time-major spikes [T, batch, 64] -> output spikes [T, batch, 10]
        m1, m2, out = self.lif1.reset_mem(), self.lif2.reset_mem(), []
        for t in range(spikes.shape[0]):
            s1, m1 = self.lif1(self.fc1(spikes[t]), m1)
            s2, m2 = self.lif2(self.fc2(s1), m2)
            out.append(s2)
        return torch.stack(out)


torch.manual_seed(0)
data = digits()
x_train = encode_images(data.x_train.flatten(1), "rate", STEPS, seed=0)  # [T, N, 64] of 0/1
x_test = encode_images(data.x_test.flatten(1), "rate", STEPS, seed=1)
net = SpikingMLP()
opt = torch.optim.Adam(net.parameters(), lr=5e-3)
gen = torch.Generator().manual_seed(0)
for _epoch in range(8):
    for batch in torch.randperm(len(data.y_train), generator=gen).split(128):
        opt.zero_grad()
        F.cross_entropy(net(x_train[:, batch]).sum(0), data.y_train[batch]).backward()  # BPTT on spike counts
        opt.step()
net.eval()


def accuracy(m: nn.Module) -> float:
    with torch.no_grad():
        return float((m(x_test).sum(0).argmax(1) == data.y_test).float().mean())


print(f"float SNN ({STEPS} steps): accuracy {accuracy(net):.3f}")
spec = ck.HardwareSpec.preset("rram-22nm").replace(**{"neuron.threshold_sigma_rel": 0.05})
chip = ck.calibrate(ck.convert(net, spec, seed=1), [(x_train[:, :256],)])  # ADC ranges from spikes
print(chip.cim_summary)
print(f"SNN on rram-22nm (1-bit spike reads, 5% threshold mismatch): accuracy {accuracy(chip):.3f}")

report = snn_activity_report(net, x_test[:, :64])  # one run: spike density of every layer and step
print(report)
cost = ck.estimate(report.workload, spec)
print(f"event-driven cost: {cost.energy_j * 1e9:.2f} nJ and {cost.latency_s * 1e6:.2f} us per inference")
