"""Streaming quantiles of magnitudes, from every observed value, in bounded memory.

Calibration sets a converter's range to a high percentile (99.99 by default) of the magnitudes it sees:
the partial sums of every column of every read, or a layer's inputs. Keeping them all does not fit in
memory, and an evenly strided subsample aliases with the layout (a stride that is a multiple of the
column count sees the same few columns of every row). ``MagnitudeHistogram`` counts every value into
logarithmic bins instead (log-uniform interpolation within the bin that holds the quantile): a quantile is
then within one bin of the exact order statistic, a relative width of ``2**(1/BINS_PER_OCTAVE) - 1``
(0.54%), whatever the number of values, in 80 kB per range.
"""

from __future__ import annotations

import math

import torch

#: bins per factor of two: the relative resolution of a quantile
BINS_PER_OCTAVE = 128
#: magnitudes from 2**-LOG2_SPAN to 2**LOG2_SPAN have their own bins; smaller (nonzero) ones count in the
#: first bin, larger ones in the last
LOG2_SPAN = 40
_BINS = 1 + 2 * LOG2_SPAN * BINS_PER_OCTAVE  # bin 0 holds exact zeros


class MagnitudeHistogram:
    """Counts of |value| per group in logarithmic bins; ``quantile`` reads a percentile back.

    Bin b >= 1 holds magnitudes in [2**((b-1)/BPO - SPAN), 2**(b/BPO - SPAN)); bin 0 holds zeros."""

    def __init__(self, groups: int) -> None:
        self.groups = int(groups)
        self.counts = torch.zeros(self.groups, _BINS, dtype=torch.int64)

    def add(self, values: torch.Tensor, first: int = 0) -> None:
        """Count ``values`` (k, n) into groups ``first + [0, k)``, any sign (magnitudes are counted); NaN is
        refused by the caller."""
        k = values.shape[0]
        if not 0 <= first <= self.groups - k:
            raise ValueError(f"groups {first}..{first + k - 1} of a histogram of {self.groups}")
        v = values.detach().reshape(k, -1).abs().float()
        b = torch.log2(v).add_(LOG2_SPAN).mul_(BINS_PER_OCTAVE).floor_().add_(1)
        b = b.clamp_(1, _BINS - 1).nan_to_num_(0).to(torch.int64)  # log2(0) = -inf clamps to 1: fixed below
        b[v == 0] = 0
        flat = b + (torch.arange(k, device=b.device) * _BINS).view(-1, 1)
        self.counts[first : first + k] += torch.bincount(flat.reshape(-1), minlength=k * _BINS).view(k, _BINS).cpu()

    @property
    def total(self) -> torch.Tensor:
        """Values counted per group."""
        return self.counts.sum(1)

    def quantile(self, q: float) -> torch.Tensor:
        """Per group, the ``q`` quantile (0 < q <= 1) of the magnitudes, within one bin of the ceil(q * n)-th
        smallest (log-uniform within its bin); 0 when that value is 0, NaN for a group that saw nothing."""
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], got {q}")
        total = self.total
        rank = torch.clamp(torch.ceil(total.double() * q), min=1).to(torch.int64).view(-1, 1)
        cum = self.counts.cumsum(1)
        b = torch.searchsorted(cum, rank).clamp_(max=_BINS - 1)  # the bin holding the rank-th value
        before = torch.gather(cum, 1, b) - torch.gather(self.counts, 1, b)
        within = (rank - before).double() / torch.gather(self.counts, 1, b).clamp(min=1).double()
        value = torch.exp2((b.double() - 1 + within) / BINS_PER_OCTAVE - LOG2_SPAN).view(-1)
        b = b.view(-1)
        value = torch.where(b == 0, torch.zeros_like(value), value)
        return torch.where(total > 0, value, torch.full_like(value, math.nan)).float()
