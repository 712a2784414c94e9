"""Quadratic fits of the operators' polynomials, made once from floats when a polynomial is built."""

from __future__ import annotations

import math
from collections.abc import Callable


def chebyshev_quadratic(f: Callable[[float], float], lo: float, hi: float) -> tuple[float, float, float]:
    """``(k0, k1, k2)`` of the quadratic ``k0 + k1 v + k2 v**2`` in ``v = t - lo`` that interpolates ``f(t)`` at
    the three Chebyshev nodes of ``[lo, hi]``: within ``max|f'''| (hi - lo)**3 / 192`` of ``f`` there (the
    interpolation remainder), close to the best quadratic's error."""
    h = hi - lo
    v = [h / 2 + h / 2 * math.cos((2 * i + 1) * math.pi / 6) for i in range(3)]
    y = [f(lo + vi) for vi in v]
    d01 = (y[1] - y[0]) / (v[1] - v[0])  # Newton's divided differences
    d12 = (y[2] - y[1]) / (v[2] - v[1])
    k2 = (d12 - d01) / (v[2] - v[0])
    k1 = d01 - k2 * (v[0] + v[1])
    return y[0] - k1 * v[0] - k2 * v[0] ** 2, k1, k2
