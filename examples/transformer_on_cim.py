"""Transformers: a small transformer classifier on crossbars, with attention products on arrays rewritten per
input and integer softmax / GELU / LayerNorm, then the cost of a BERT encoder on the same chip.

The model reads each 8x8 digit (scikit-learn's digits) as a sequence of 8 row tokens: one pre-norm encoder
layer (multi-head attention, GELU feed-forward, LayerNorm), about 0.9 accuracy after a few seconds of
training. On the chip, every ``nn.Linear`` runs on crossbars, and the spec's ``routing: {matmul:
crossbar}`` also puts Q K^T and A V on arrays that are rewritten at every input (with programming noise);
``digital.softmax_bits`` and friends run softmax, GELU and LayerNorm as integer-only kernels (I-BERT style).
The transformer options of ``docs/transformers.md`` keep signed inputs accurate (sign-magnitude inputs,
differential weights, one ADC range per input bit).

Expect ``float accuracy: 0.922`` and ``chip accuracy ...: 0.916``, the tiny model at about 170 nJ and 14 us
per image, and BERT-base at 128 tokens at about 4.7 mJ and 28 ms per inference, its energy split by op kind
(static linear layers 57%, attention matmuls 12%, ...), with the rewritten arrays lasting 2.8 h at 100
inferences per second on RRAM (10^6 write cycles).
Seeded; a rerun prints the same numbers.
Run: python examples/transformer_on_cim.py   (about 7 s of CPU)
"""

import torch
import torch.nn.functional as F
from torch import nn

import cimkit as ck
from cimkit.data import digits


class TinyTransformer(nn.Module):
    """Rows of an 8x8 image as 8 tokens -> one pre-norm encoder layer -> mean over tokens -> 10 classes."""

    def __init__(self, d: int = 32, heads: int = 2, ff: int = 64, tokens: int = 8, features: int = 8) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Linear(features, d)
        self.position = nn.Parameter(torch.zeros(1, tokens, d))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.act, self.fc2 = nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d)
        self.head = nn.Linear(d, 10)

    def forward(self, images):
        x = self.embed(images.flatten(0, 1)) + self.position  # (batch, 8 tokens, d)
        b, length, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5  # a dynamic matmul: no static weights
        a = F.softmax(scores, dim=-1) @ v
        x = x + self.proj(a.transpose(1, 2).reshape(b, length, d))
        x = x + self.fc2(self.act(self.fc1(self.norm2(x))))
        return self.head(self.norm3(x).mean(1))


torch.manual_seed(0)
data = digits()  # images (N, 1, 8, 8) in [0, 1]
model = TinyTransformer()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
gen = torch.Generator().manual_seed(0)
for _epoch in range(6):
    for batch in torch.randperm(len(data.y_train), generator=gen).split(64):
        opt.zero_grad()
        F.cross_entropy(model(data.x_train[batch]), data.y_train[batch]).backward()
        opt.step()
model.eval()


def accuracy(m: nn.Module) -> float:
    with torch.no_grad():
        return float((m(data.x_test).argmax(1) == data.y_test).float().mean())


print(f"float accuracy: {accuracy(model):.3f}")
spec = ck.HardwareSpec.preset("rram-22nm").replace(
    routing={"matmul": "crossbar"},  # Q K^T and A V on arrays written per input
    **{
        "periphery.signed_inputs": "sign_magnitude",
        "periphery.adc_range_per_input_bit": True,
        "array.signed_mapping": "differential",
        "digital.softmax_bits": 8,  # integer-only softmax, GELU and LayerNorm on the digital unit
        "digital.integer_gelu": True,
        "digital.layernorm_bits": 16,
    },
)
chip = ck.calibrate(ck.convert(model, spec, seed=0), [data.x_train[:256]])
print(f"{len(chip.cim_dynamic.sites)} attention products on rewritten arrays: {', '.join(chip.cim_dynamic.sites)}")
print(f"chip accuracy (rram-22nm, analog attention, integer softmax/GELU/LayerNorm): {accuracy(chip):.3f}")

# cost: this model traced from torch, and BERT-base from the zoo, on the same chip
tiny = ck.estimate(ck.Workload.from_torch(model, input_shape=(1, 1, 8, 8)), spec)
print(f"tiny transformer: {tiny.energy_j * 1e9:.2f} nJ, {tiny.latency_s * 1e6:.2f} us per image")
bert = ck.estimate(ck.zoo.workload("bert-base", seq_len=128), spec.replace(**{"chip.inferences_per_s": 100.0}))
shares = ", ".join(f"{kind} {100 * v['energy_j'] / bert.energy_j:.1f}%" for kind, v in bert.by_kind().items())
print(f"BERT-base, 128 tokens: {bert.energy_j * 1e3:.2f} mJ, {bert.latency_s * 1e3:.2f} ms per inference ({shares})")
life_h = bert.endurance["lifetime_s"] / 3600
print(f"BERT-base rewrites its attention arrays every inference: device lifetime {life_h:.1f} h at 100 inferences/s")
