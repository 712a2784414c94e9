"""Hamming attention (HAD): binary queries and keys, XNOR-popcount scores and only the top-N keys per query,
distilled from a full-precision teacher; then what it saves on a CIM chip for BERT-base.

The teacher is a small transformer that reads each 8x8 digit (scikit-learn's digits) as 8 row tokens; its
attention is a ``cimkit.ops.HammingAttention`` with every key and no binarization, which is standard
scaled dot-product attention. The student is a copy whose attention binarizes Q and K to +-sigma (sigma
calibrated per layer from data) and keeps the 3 best of 8 keys per query. ``distill`` trains it through
HAD's four stages (scaled tanh, sharp tanh, sign with a straight-through gradient, fine-tuning) with
KL losses on the attention maps and the logits (Horton et al., arXiv 2502.01770).

The cost side: ``Workload.with_hamming_attention(32)`` rewrites each attention of BERT-base (512 tokens)
into a Hamming search in CAM rows plus a top-32 selection, a softmax over 32 and a sparse A V.

Expect the teacher at 0.922, the student at 0.886 right after binarization and 0.928 after 160
distillation steps, and the attention energy of BERT-base at 512 tokens falling from 2.40 to 0.19 mJ per
inference (92% less; the whole model 11.5 -> 6.9 mJ). Seeded; a rerun prints the same numbers.
Run: python examples/hamming_attention.py   (about 7 s of CPU)
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

import cimkit as ck
from cimkit.data import digits
from cimkit.ops import HammingAttention, calibrate_hamming_scales, distill, had_stages, hamming_modules


class TinyTransformer(nn.Module):
    """Rows of an 8x8 image as 8 tokens -> one pre-norm encoder layer whose attention is ``self.core``."""

    def __init__(self, d: int = 32, heads: int = 2, ff: int = 64) -> None:
        super().__init__()
        self.heads = heads
        self.embed, self.position = nn.Linear(8, d), nn.Parameter(torch.zeros(1, 8, d))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.core = HammingAttention(n_top=None, binarizer="none")  # full precision, every key: standard attention
        self.fc1, self.fc2, self.head = nn.Linear(d, ff), nn.Linear(ff, d), nn.Linear(d, 10)

    def forward(self, images):
        x = self.embed(images.flatten(0, 1)) + self.position  # (batch, 8 tokens, d)
        b, length, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(self.core(q, k, v).transpose(1, 2).reshape(b, length, d))
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return self.head(self.norm3(x).mean(1))


torch.manual_seed(0)
data = digits()
teacher = TinyTransformer()
opt = torch.optim.Adam(teacher.parameters(), lr=3e-3)
gen = torch.Generator().manual_seed(0)
for _epoch in range(6):
    for batch in torch.randperm(len(data.y_train), generator=gen).split(64):
        opt.zero_grad()
        F.cross_entropy(teacher(data.x_train[batch]), data.y_train[batch]).backward()
        opt.step()
teacher.eval()


def accuracy(m: nn.Module) -> float:
    with torch.no_grad():
        return float((m.eval()(data.x_test).argmax(1) == data.y_test).float().mean())


print(f"teacher (float attention): accuracy {accuracy(teacher):.3f}")
student = copy.deepcopy(teacher)
for _name, attention in hamming_modules(student):
    attention.n_top, attention.binarizer = 3, "sign"  # binary Q and K, the 3 best of 8 keys per query
batches = list(data.x_train.split(64))
calibrate_hamming_scales(student, batches)  # sigma_Q and sigma_K per layer, from the data
print(f"student, binarized and top-3, before distillation: accuracy {accuracy(student):.3f}")
history = distill(student, teacher, batches, stages=had_stages(40, lr=2e-3), seed=0)
print(f"student after {len(history)} distillation steps: accuracy {accuracy(student):.3f}")

# the hardware side: standard attention against HAD (keys in CAM rows, top-32) for BERT-base at 512 tokens
spec = ck.HardwareSpec.preset("rram-22nm")
bert = ck.zoo.workload("bert-base", seq_len=512)
dense, had = ck.estimate(bert, spec), ck.estimate(bert.with_hamming_attention(32), spec)
attention_kinds = ("matmul", "softmax", "hamming_score", "topn")  # Q K^T (or the CAM search), top-N, softmax, A V


def attention_j(rep) -> float:
    return sum(v["energy_j"] for kind, v in rep.by_kind().items() if kind in attention_kinds)


print(
    f"BERT-base, 512 tokens: attention {attention_j(dense) * 1e3:.2f} mJ -> {attention_j(had) * 1e3:.2f} mJ "
    f"per inference with HAD ({100 * (1 - attention_j(had) / attention_j(dense)):.0f}% less); whole model "
    f"{dense.energy_j * 1e3:.2f} mJ -> {had.energy_j * 1e3:.2f} mJ"
)
