"""Argument checks and the input grid shared by the integer-only operators.

A float tensor enters an integer operator once, here: ``q = clamp(round(x / s))`` on the signed grid of
``bits`` bits (codes ``-(2**(bits-1) - 1) .. 2**(bits-1) - 1``, the DAC's symmetric grid of
``cimkit.sim.quant``), as int64. ``s`` is the caller's ``input_scale`` or, by default, the tensor's
largest ``|x|`` over the largest code (one scale per tensor, so the largest value lands on a code).
The division is done in float64, so codes of up to 32 bits are exact.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..errors import InputError, check_int, check_real, short_repr  # noqa: F401 - check_int: ops import it from here
from ..sim.quant import input_code_limits, quantize_input


def check_scale(fn: str, scale) -> float | None:
    """``input_scale`` as a positive finite float (None stays None: the tensor's own scale)."""
    if scale is None:
        return None
    if isinstance(scale, torch.Tensor) and scale.numel() == 1 and scale.is_floating_point():
        scale = float(scale)
    return check_real(
        fn,
        "input_scale",
        scale,
        0.0,
        lo_open=True,
        why="the step of the input grid, in the units of x; or None for max|x| over the largest code",
    )


def check_float_tensor(fn: str, x, name: str = "x") -> torch.Tensor:
    """``x`` must be a floating-point tensor with finite values only (integer codes go to the ``*_codes``
    kernels instead)."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{fn}: {name} is a {type(x).__name__}; it must be a torch.Tensor")
    if not x.is_floating_point():
        raise InputError(
            f"{fn}: {name} has dtype {x.dtype}; it must be a floating-point tensor (float16, bfloat16, "
            f"float32 or float64). Integer codes already on a grid go to the integer kernel "
            f"(softmax_codes, gelu_codes, layernorm_codes) with their scale"
        )
    if x.numel() and not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise InputError(
            f"{fn}: {name} has non-finite values (first at index {bad}: {x[tuple(bad)].item()}); "
            f"the input grid needs finite values"
        )
    return x


def check_dim(fn: str, dim, ndim: int) -> int:
    """``dim`` normalized to ``0..ndim-1`` (a 0-d tensor counts as one dim, as in torch.softmax)."""
    n = max(ndim, 1)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -n <= int(dim) < n:
        raise InputError(
            f"{fn}: dim = {short_repr(dim)} is out of range for a tensor of {ndim} dim(s); "
            f"allowed: integers {-n}..{n - 1}"
        )
    return int(dim) % n


def grid_scale(x: torch.Tensor, bits: int, scale: float | None) -> float:
    """The input grid's step: ``scale`` if given, else ``max|x| / (2**(bits-1) - 1)`` (1.0 for an all-zero
    or empty tensor, where any step gives the same codes)."""
    if scale is not None:
        return scale
    top = float(x.detach().abs().max()) if x.numel() else 0.0
    if top == 0.0:
        return 1.0
    return max(top / input_code_limits(bits, signed=True)[1], math.ulp(0.0))


def to_grid(x: torch.Tensor, bits: int, scale: float | None) -> tuple[torch.Tensor, float]:
    """``(q, s)``: int64 codes ``clamp(round(x / s))`` on the signed ``bits``-bit grid (values beyond the
    largest code saturate) and the step ``s`` (see ``grid_scale``). The one float-to-integer step."""
    s = grid_scale(x, bits, scale)
    return quantize_input(x.detach().double(), bits, s, signed=True).to(torch.int64), s


def out_dtype(x: torch.Tensor) -> torch.dtype:
    """Float dtype of an operator's result: float32 or float64 as ``x``; float32 for 16-bit floats, which
    cannot hold every value of the output grids (float32 holds k / 2**24 exactly for |k| <= 2**24)."""
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
