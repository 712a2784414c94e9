"""Fast, reproducible Gaussian noise for per-read effects.

Read noise must be fresh for every array output of every product, which on CPU makes
``torch.randn`` (a serial Mersenne Twister, ~0.4 G samples/s here) the largest cost of a noisy
crossbar forward. ``CounterNormal`` hashes a 64-bit counter with the SplitMix64 finalizer
(vectorized int64 ops; every draw gets its own 2**40-long counter range, so streams never overlap)
and maps each 16-bit quarter of the hash through an inverse-CDF table of the standard normal:
four samples per hash, identical on CPU and CUDA, reproducible from a seed. The table holds 65,536
equiprobable quantiles (tails truncated beyond |z| = 4.4), rescaled to unit variance exactly.
"""

from __future__ import annotations

import functools
from statistics import NormalDist

import torch

_TABLE_BITS = 16
_COUNTER_BITS = 40
#: hashes per chunk: bounds the scratch memory of large draws (measured no slower than one pass)
_CHUNK_QUADS = 1 << 17


def _signed64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= (1 << 63) else v


_GOLDEN = _signed64(0x9E3779B97F4A7C15)
_MIX1 = _signed64(0xBF58476D1CE4E5B9)
_MIX2 = _signed64(0x94D049BB133111EB)


def _splitmix_(h: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """The SplitMix64 finalizer of counters ``h`` (int64, wrapping), in place; ``tmp``: scratch like ``h``.
    z = h * golden; z ^= z >>> 30; z *= M1; z ^= z >>> 27; z *= M2; z ^= z >>> 31 (``>>>``: logical)."""
    h.mul_(_GOLDEN)
    for shift, mult in ((30, _MIX1), (27, _MIX2), (31, None)):
        torch.bitwise_right_shift(h, shift, out=tmp).bitwise_and_((1 << (64 - shift)) - 1)
        h.bitwise_xor_(tmp)
        if mult is not None:
            h.mul_(mult)
    return h


@functools.lru_cache(maxsize=8)
def quantile_table(device: torch.device) -> torch.Tensor:
    """The 65,536 equiprobable standard-normal quantiles (float32) the 16-bit indices pick from."""
    n = 1 << _TABLE_BITS
    nd = NormalDist()
    z = torch.tensor([nd.inv_cdf((k + 0.5) / n) for k in range(n)], dtype=torch.float64)
    z /= z.pow(2).mean().sqrt()
    return z.to(device=device, dtype=torch.float32)


@functools.lru_cache(maxsize=16)
def _counter(n: int, device: torch.device) -> torch.Tensor:
    return torch.arange(n, dtype=torch.int64, device=device)


class CounterNormal:
    """A stream of standard-normal float32 samples determined by ``seed`` and the draw order."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.draws = 0
        self._scratch: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "draws": self.draws}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.draws = int(state["seed"]), int(state["draws"])

    def _buffers(self, quads: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        key = (quads, device)
        if key not in self._scratch:
            self._scratch = {
                key: (
                    torch.empty(quads, dtype=torch.int64, device=device),
                    torch.empty(quads, dtype=torch.int64, device=device),
                    torch.empty(4 * quads, dtype=torch.int32, device=device),
                )
            }
        return self._scratch[key]

    def sample(
        self, shape: tuple[int, ...] | torch.Size, device: torch.device | str = "cpu", out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``shape`` standard-normal samples (float32), written into ``out`` when given."""
        return self.fill(self.next_counter(), shape, device, out)

    def next_counter(self) -> int:
        """The first counter of the next draw, and the draw is taken: every draw of the stream starts
        at its own multiple of 2**40. Samples of that draw are ``fill(counter, ...)``."""
        base = (self.seed * 0x100000001B3 + self.draws) % (1 << (63 - _COUNTER_BITS))
        self.draws += 1
        return base << _COUNTER_BITS

    def at(self, counter: int, n: int, index: torch.Tensor) -> torch.Tensor:
        """Samples ``index`` (int64 flat indices) of the ``n`` samples of the draw at ``counter``: the same
        values ``fill(counter, (n,))[index]`` has, without making the others."""
        two_q = 2 * ((n + 3) // 4)
        upper = index >= two_q
        k = torch.where(upper, index - two_q, index)
        h = _splitmix_((k >> 1).add_(counter), torch.empty_like(k))
        word = (h >> ((k & 1) * 32)).bitwise_and_(0xFFFFFFFF)
        idx = torch.where(upper, word >> 16, word).bitwise_and_(0xFFFF)
        return quantile_table(index.device)[idx]

    def fill(
        self,
        counter: int,
        shape: tuple[int, ...] | torch.Size,
        device: torch.device | str = "cpu",
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The ``shape`` samples of the draw that starts at ``counter`` (see ``next_counter``); flat sample
        ``e`` of ``n`` (``q = ceil(n / 4)``) comes from hash ``e // 2`` (its 32-bit word ``e % 2``, low 16
        bits) when ``e < 2q``, else from hash ``(e - 2q) // 2`` (high 16 bits of the word)."""
        device = torch.device(device) if out is None else out.device
        n = 1
        for s in shape:
            n *= int(s)
        quads = (n + 3) // 4
        table = quantile_table(device)
        if out is None:
            out = torch.empty(shape, dtype=torch.float32, device=device)
        flat = out.view(-1)
        h_all, tmp_all, idx_all = self._buffers(min(quads, _CHUNK_QUADS), device)
        # hash i gives samples 2i, 2i+1 (its low 16-bit halves) and 2q+2i, 2q+2i+1 (its high ones);
        # chunks of hashes give the same samples as one pass
        for first in range(0, quads, _CHUNK_QUADS):
            count = min(_CHUNK_QUADS, quads - first)
            h, tmp, idx = h_all[:count], tmp_all[:count], idx_all[: 4 * count]
            _splitmix_(torch.add(_counter(count, device), counter + first, out=h), tmp)
            halves = h.view(torch.int32)  # two 32-bit words per hash
            low, high = idx[: 2 * count], idx[2 * count :]
            torch.bitwise_and(halves, 0xFFFF, out=low)
            torch.bitwise_right_shift(halves, 16, out=high).bitwise_and_(0xFFFF)
            for part, start in ((low, 2 * first), (high, 2 * quads + 2 * first)):
                stop = min(start + 2 * count, n)
                if stop > start:
                    torch.index_select(table, 0, part[: stop - start], out=flat[start:stop])
        return out
