"""Integer-only GELU: I-BERT's i-GELU (Kim et al., ICML 2021, Sec. 3.5, Algorithm 2), optionally piecewise.

``GELU(x) = x (1 + erf(x / sqrt 2)) / 2`` with ``erf(w) = sgn(w) P(min(|w|, clip))`` and ``P`` a
second-order polynomial of the clipped ``|w|`` (``erf`` is exactly 1 from the clip point on). I-BERT's
``P`` is one quadratic on ``[0, 1.769]``, ``a (|w| + b)**2 + 1`` (``ErfPoly.ibert``: GELU off by up to
1.8e-2). The default cuts ``[0, 3.25]`` into 13 segments of 1/4, each with its own quadratic (a table of
3 x 13 integers; ``ErfPoly.chebyshev``): GELU off by at most 8e-5, 230 times less for the same arithmetic
per element (one table look-up, two multiplies).

Data path (int64 from the input grid to the output codes):

1. ``w = |q| s / sqrt 2`` in fixed point with 30 fraction bits (one multiply and shift; codes past the
   clip point are clipped first, so the product stays below 2**62);
2. segment ``j = w // width``, offset ``v = w - j width``; ``erf = k0[j] + (k1[j] + k2[j] v) v`` in Q30
   (Horner, rounded shifts), held in ``[0, 1]``; ``erf = 1`` from the clip point on;
3. ``GELU = (q + |q| erf) / 2``, rounded to an integer: the output lies on the input grid ``k * s`` with
   ``|k| <= |q|``, so it fits the same ``input_bits`` code the next crossbar's DAC takes.

Error (measured on a 480,001-point grid over [-12, 12], beyond which it only shrinks):
``|out - GELU(q s)| <= erf.bound + s / 2 + 1e-7`` (the polynomial, the output grid's half step, the
fixed-point rounding); against ``GELU(x)`` add ``1.13 s / 2`` (GELU's slope is at most 1.129).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..errors import InputError
from .fit import chebyshev_quadratic
from .grid import check_float_tensor, check_int, check_scale, out_dtype, to_grid
from .intmath import fixed_step, shift_round

FRAC_BITS = 30  #: fraction bits of w = |x| / sqrt 2 and of erf
INPUT_BITS = (2, 32)
INPUT_BITS_WHY = "32-bit codes times Q30 erf values stay below 2**62"


@dataclass(frozen=True)
class ErfPoly:
    """``erf(w) ~ k0[j] + k1[j] v + k2[j] v**2`` for ``|w| = j width + v``, ``0 <= v < width``, on
    ``[0, clip)``, ``clip = width * len(coefficients)``; 1 from ``clip`` on. ``coefficients`` holds
    ``(k0, k1, k2)`` per segment; ``bound`` is the largest ``|GELU_poly(x) - GELU(x)|`` over all ``x``
    (the polynomial alone, measured on a dense grid)."""

    width: float
    coefficients: tuple[tuple[float, float, float], ...]
    bound: float
    name: str = ""

    def __post_init__(self) -> None:
        ok = 0 < self.width < 2 and 1 <= len(self.coefficients) <= 256 and self.width * len(self.coefficients) < 8
        ok = ok and all(
            abs(k1) + abs(k2) * self.width < 2 and abs(k2) < 2 and abs(k0) <= 1.5 for k0, k1, k2 in self.coefficients
        )
        if not ok:
            raise InputError(
                f"ErfPoly: width = {self.width!r} with {len(self.coefficients)} segment(s) is out of "
                f"the fixed-point range; allowed: 0 < width < 2, 1..256 segments, clip < 8, and per "
                f"segment |k0| <= 1.5, |k2| < 2, |k1| + |k2| width < 2"
            )

    @property
    def clip(self) -> float:
        """Where erf becomes exactly 1."""
        return self.width * len(self.coefficients)

    @classmethod
    def ibert(cls, a: float = -0.2888, b: float = -1.769, bound: float = 1.82e-2) -> ErfPoly:
        """I-BERT's ``erf(w) ~ sgn(w) (a (min(|w|, -b) + b)**2 + 1)`` (the paper's and the reference
        implementation's coefficients): one segment of width ``-b``. GELU error up to 1.815e-2 (at
        ``|x| = 2.5``)."""
        return cls(-b, ((a * b * b + 1, 2 * a * b, a),), bound, "I-BERT")

    @classmethod
    def chebyshev(cls, width: float = 0.25, segments: int = 13, bound: float = 8.0e-5) -> ErfPoly:
        """Per segment, the quadratic interpolating ``erf`` at its three Chebyshev nodes (within
        ``max|erf'''| width**3 / 192`` of erf: 1.8e-4 at width 1/4). The default, 13 segments of 1/4 up to
        ``clip = 3.25`` (where ``1 - erf`` is 4e-6), keeps GELU within 7.94e-5 (stated: 8e-5); give
        ``bound`` (measured) for other choices."""
        coefs = tuple(chebyshev_quadratic(math.erf, j * width, (j + 1) * width) for j in range(segments))
        return cls(width, coefs, bound, f"Chebyshev/{segments}x{width:g}")

    def erf(self, w: torch.Tensor) -> torch.Tensor:
        """The polynomial in float (for checks and plots; the data path uses ``gelu_codes``)."""
        a = w.abs().clamp(max=self.clip)
        j = torch.clamp(torch.floor(a / self.width), max=len(self.coefficients) - 1).long()
        k = torch.tensor(self.coefficients, dtype=w.dtype, device=w.device)[j]
        v = a - j * self.width
        inside = k[..., 0] + (k[..., 1] + k[..., 2] * v) * v
        return torch.sign(w) * torch.where(a >= self.clip, torch.ones_like(a), inside)


#: I-BERT's one quadratic: GELU error up to 1.82e-2
IBERT_ERF = ErfPoly.ibert()
#: 13 quadratics of width 1/4: GELU error up to 8e-5
DEFAULT_ERF = ErfPoly.chebyshev()


@lru_cache(maxsize=1024)
def _step(scale: float, clip: float) -> tuple[int, int, int]:
    """``(mult, shift, n_clip)``: ``w = (min(|q|, n_clip) * mult) >> shift`` is ``|q| s / sqrt 2`` in Q30 up to
    the clip point. The step is capped at ``2 clip`` per code (past it every ``|q| >= 1`` is clipped)."""
    step = min(scale / math.sqrt(2.0), 2 * clip)
    n_clip = math.ceil(clip / step)
    return (*fixed_step(step, n_clip, FRAC_BITS), n_clip)


@lru_cache(maxsize=64)
def _table(poly: ErfPoly) -> tuple[int, int, tuple[tuple[int, ...], ...]]:
    """``(width, clip, coefficients)`` in Q30."""
    fp = tuple(tuple(round(math.ldexp(k, FRAC_BITS)) for k in ks) for ks in poly.coefficients)
    return round(math.ldexp(poly.width, FRAC_BITS)), round(math.ldexp(poly.clip, FRAC_BITS)), fp


def gelu_codes(q: torch.Tensor, scale: float, *, erf: ErfPoly = DEFAULT_ERF) -> torch.Tensor:
    """The integer kernel of ``int_gelu``: int64 codes ``q`` (step ``scale``, ``|q| < 2**31``) in, int64 codes
    ``k`` on the same grid out, ``k * scale ~ GELU(q * scale)``."""
    if q.dtype != torch.int64:
        raise InputError(f"gelu_codes: q has dtype {q.dtype}; it takes int64 codes (x = q * scale)")
    step = check_scale("gelu_codes", scale)
    if step is None:
        raise InputError("gelu_codes: scale = None is not allowed; give the step of q's grid (a positive number)")
    scale = step
    mult, shift, n_clip = _step(scale, erf.clip)
    width, clip, coefs = _table(erf)
    n = q.abs()
    w = (torch.clamp(n, max=n_clip) * mult) >> shift
    j = torch.clamp(torch.div(w, width, rounding_mode="floor"), max=len(coefs) - 1)
    v = w - j * width
    k = torch.tensor(coefs, dtype=torch.int64, device=q.device)[j]
    inner = k[..., 1] + shift_round(k[..., 2] * v, FRAC_BITS)
    erf_w = (k[..., 0] + shift_round(inner * v, FRAC_BITS)).clamp(0, 1 << FRAC_BITS)  # erf(|w|) in Q30
    erf_w = torch.where(w >= clip, 1 << FRAC_BITS, erf_w)
    return shift_round((q << FRAC_BITS) + n * erf_w, FRAC_BITS + 1)


def int_gelu(
    x: torch.Tensor, *, input_bits: int = 16, input_scale: float | None = None, erf: ErfPoly = DEFAULT_ERF
) -> torch.Tensor:
    """Integer-only GELU (I-BERT's i-GELU, by default with a 13-segment erf) of ``x``, any shape.

    ``x`` goes onto the signed ``input_bits`` grid (step ``input_scale``, or ``max|x|`` over
    ``2**(input_bits-1) - 1``); the result is on the same grid, ``k * s`` with integer ``|k| <= |q|``, as a
    float tensor (float32 or float64 as ``x``; float32 for 16-bit floats). Error bounds: module docstring
    (8e-5 + s / 2 with the default polynomial, 1.82e-2 + s / 2 with ``erf=IBERT_ERF``).
    ``input_bits``: 2..32."""
    fn = "int_gelu"
    check_float_tensor(fn, x)
    bits = check_int(fn, "input_bits", input_bits, *INPUT_BITS, INPUT_BITS_WHY)
    q, s = to_grid(x, bits, check_scale(fn, input_scale))
    return gelu_codes(q, s, erf=erf).to(out_dtype(x)) * s
