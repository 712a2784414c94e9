"""Integer primitives of the integer-only operators: bit length, floor square root, rounded division.

Every function here takes and returns int64 tensors and uses only integer tensor ops (comparisons,
shifts, additions, multiplications, floor division), so the operators built on them stay integer-only
on the data path and run the same on CPU and CUDA. Inputs must be non-negative where stated; values
must stay below 2**63 (the callers size their operands for that and say how).
"""

from __future__ import annotations

import math

import torch

_HALVES = (32, 16, 8, 4, 2, 1)


def bit_length(n: torch.Tensor) -> torch.Tensor:
    """Number of bits of each non-negative int64 ``n`` (0 for 0), like Python's ``int.bit_length``,
    by a six-step binary search on shifts."""
    length = torch.zeros_like(n)
    v = n
    for half in _HALVES:
        big = v >= (1 << half)
        length = length + big * half
        v = torch.where(big, v >> half, v)
    return length + (v > 0)


def isqrt(n: torch.Tensor) -> torch.Tensor:
    """Exact ``floor(sqrt(n))`` of each non-negative int64 ``n`` (< 2**63), by integer Newton iterations.

    Starts at ``2**ceil(bits / 2)``, which is at least ``sqrt(n)``; from above, Newton's integer step
    ``(x + n // x) // 2`` decreases strictly until it reaches ``floor(sqrt(n))`` and then stops
    decreasing, so iterating while any element still decreases gives the exact floor (at most about
    seven rounds for 63-bit inputs, since the start is within a factor of 2).
    """
    if bool((n < 0).any()):
        raise ValueError("isqrt takes non-negative integers")
    x = torch.ones_like(n) << ((bit_length(n) + 1) >> 1)
    while True:
        y = (x + torch.div(n, x.clamp(min=1), rounding_mode="floor")) >> 1
        smaller = y < x
        if not bool(smaller.any()):
            return x
        x = torch.where(smaller, y, x)


def round_div(num: torch.Tensor, den: torch.Tensor | int) -> torch.Tensor:
    """``round(num / den)`` for positive ``den`` (halves round up, towards +inf), exactly in integers:
    ``floor((2 num + den) / (2 den))``. ``2 |num| + den`` must stay below 2**63."""
    return torch.div(2 * num + den, 2 * den, rounding_mode="floor")


def shift_round(num: torch.Tensor, shift: int) -> torch.Tensor:
    """``round(num / 2**shift)`` (halves up) by an arithmetic right shift; ``shift >= 1``."""
    return (num + (1 << (shift - 1))) >> shift


def shift_left(num: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``floor(num * 2**shift)`` for per-element shifts of either sign (right shifts floor; shifts past 63
    bits give 0, or -1 for negative ``num`` shifted right)."""
    return torch.where(shift >= 0, num << shift.clamp(0, 63), num >> (-shift).clamp(0, 63))


def fixed_step(step: float, n_clip: int, frac_bits: int) -> tuple[int, int]:
    """Integer ``(mult, shift)`` with ``(n * mult) >> shift ~ n * step * 2**frac_bits`` for integers
    ``0 <= n <= n_clip``: the one place a float step becomes an integer multiplier. ``mult`` has
    ``62 - n_clip.bit_length()`` bits (relative error below ``2**-(61 - n_clip.bit_length())``), so
    ``n * mult`` stays below 2**62. The caller keeps ``n_clip * step`` small (the range it cares about)."""
    bits = 62 - int(n_clip).bit_length()
    m, e = math.frexp(step)
    shift = bits - e - frac_bits
    if shift < 0:
        raise ValueError(f"fixed_step: step {step} with n_clip {n_clip} needs a left shift; clip the step")
    return round(math.ldexp(m, bits)), shift
