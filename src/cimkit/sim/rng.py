"""Fast, reproducible Gaussian noise for per-read effects.

Read noise must be fresh for every array output of every product, which on CPU makes
``torch.randn`` (a serial Mersenne Twister) the single largest cost of a noisy crossbar forward.
``CounterNormal`` instead hashes a counter with a key (two rounds of the murmur3 32-bit finalizer,
vectorized integer ops) and maps 16-bit halves of each hash through an inverse-CDF table of the
standard normal: about 2.5x faster on 2 CPU cores, identical on CPU and CUDA, and reproducible from
a seed. The table has 65,536 equiprobable quantiles (tails truncated beyond |z| = 4.4), rescaled to
unit variance exactly.
"""

from __future__ import annotations

import functools
from statistics import NormalDist

import torch

_TABLE_BITS = 16
_MASK32 = 0xFFFFFFFF


def _signed32(v: int) -> int:
    v &= _MASK32
    return v - (1 << 32) if v >= (1 << 31) else v


@functools.lru_cache(maxsize=8)
def _quantile_table(device: torch.device) -> torch.Tensor:
    n = 1 << _TABLE_BITS
    nd = NormalDist()
    z = torch.tensor([nd.inv_cdf((k + 0.5) / n) for k in range(n)], dtype=torch.float64)
    z /= z.pow(2).mean().sqrt()
    return z.to(device=device, dtype=torch.float32)


@functools.lru_cache(maxsize=8)
def _counter(n: int, device: torch.device) -> torch.Tensor:
    return torch.arange(n, dtype=torch.int32, device=device)


def _fmix32_(h: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """murmur3 finalizer, in place on int32 (logical shifts via masks; multiplication wraps)."""
    for shift, mult in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        torch.bitwise_right_shift(h, shift, out=tmp)
        tmp.bitwise_and_((1 << (32 - shift)) - 1)
        h.bitwise_xor_(tmp).mul_(_signed32(mult))
    torch.bitwise_right_shift(h, 16, out=tmp)
    tmp.bitwise_and_(0xFFFF)
    return h.bitwise_xor_(tmp)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


class CounterNormal:
    """A stream of standard-normal float32 samples determined by ``seed`` and the draw order."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.draws = 0

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "draws": self.draws}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.draws = int(state["seed"]), int(state["draws"])

    def sample(self, shape: tuple[int, ...] | torch.Size, device: torch.device | str = "cpu") -> torch.Tensor:
        device = torch.device(device)
        n = 1
        for s in shape:
            n *= int(s)
        half = (n + 1) // 2
        key = _splitmix64(self.seed * 0x100000001B3 + self.draws)
        self.draws += 1
        h = _counter(half, device) + _signed32(key)
        tmp = torch.empty_like(h)
        _fmix32_(h, tmp)
        h.bitwise_xor_(_signed32(key >> 32))
        _fmix32_(h, tmp)
        idx = torch.empty(2 * half, dtype=torch.int32, device=device)
        torch.bitwise_and(h, 0xFFFF, out=idx[:half])
        torch.bitwise_right_shift(h, 16, out=idx[half:]).bitwise_and_(0xFFFF)
        out = torch.index_select(_quantile_table(device), 0, idx[:n])
        return out.view(shape)
