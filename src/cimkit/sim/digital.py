"""The digital unit's products of two activations (attention scores, attention-weighted values) computed with
its approximate multiplier and adders (``digital.multiplier``, ``digital.adder``; ``cimkit.ops.approx``).

Each operand is put on a signed grid of ``digital.data_bits`` bits with one scale per operand matrix (per batch
element and head: its largest magnitude at the top code ``2**(data_bits-1) - 1``), every product of codes goes through the
approximate multiplier on the codes' magnitudes (sign applied after), the ``K`` products of an output are summed
by the adder (a balanced tree when approximate), and the integer sums are scaled back. Gradients are
straight-through: those of the float product (the approximate arithmetic has no useful derivative).
"""

from __future__ import annotations

import torch

from ..ops import approx
from ..spec.model import DigitalSpec


def _codes(x: torch.Tensor, top: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed codes of ``x`` (..., M, K) and their scales (..., 1, 1): one scale per matrix, so one input's
    products never depend on the other inputs of its batch."""
    peak = x.detach().abs().amax(dim=(-2, -1), keepdim=True).to(torch.float64)
    scale = torch.where(peak > 0, peak / top, torch.ones_like(peak))
    return torch.round(x.detach().to(torch.float64) / scale).clamp(-top, top).to(torch.int64), scale


class DigitalProduct:
    """``a @ b`` (torch.matmul shapes, batch dims broadcast) as the digital unit of ``spec`` computes it."""

    def __init__(self, digital: DigitalSpec) -> None:
        self.bits = digital.data_bits
        self.multiplier = approx.parse_multiplier(digital.multiplier, bits=self.bits)
        self.adder = approx.parse_adder(digital.adder)

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        top = 2 ** (self.bits - 1) - 1
        qa, sa = _codes(a, top)
        qb, sb = _codes(b, top)
        batch = torch.broadcast_shapes(qa.shape[:-2], qb.shape[:-2])
        scale = (sa * sb).expand(*batch, 1, 1)
        qa = qa.expand(*batch, *qa.shape[-2:]).reshape(-1, *qa.shape[-2:])
        qb = qb.expand(*batch, *qb.shape[-2:]).reshape(-1, *qb.shape[-2:])
        out = (
            torch.stack([approx.approx_matmul(x, y, self.multiplier, self.adder) for x, y in zip(qa, qb)])
            if len(qa)
            else torch.zeros(0, a.shape[-2], b.shape[-1], dtype=torch.int64)
        )
        value = (out.reshape(*batch, a.shape[-2], b.shape[-1]).to(torch.float64) * scale).to(a.dtype)
        if not (a.requires_grad or b.requires_grad):
            return value
        exact = torch.matmul(a, b)
        return exact + (value - exact).detach()
