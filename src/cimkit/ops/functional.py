"""Integer operators for models that call softmax, GELU and LayerNorm as functions.

Hugging Face transformers compute attention probabilities with ``nn.functional.softmax`` inside their
attention functions and GELU through their own ``GELUActivation`` (which calls ``nn.functional.gelu``), so
swapping modules (``swap_integer_ops``) reaches only their LayerNorms. ``integer_functions(...)`` is a
context manager (a ``TorchFunctionMode``) under which those calls run the integer operators instead,
whatever module makes them:

    with cimkit.ops.integer_functions(softmax_bits=8):
        logits = model(**batch)

Input grids are per call (``max|x|`` of the tensor over the grid's top code), as a chip that scales each
tensor dynamically would; attention masks reach softmax as very large negative scores (``finfo.min`` or
-inf): those positions are put at the grid's lowest code, whose exp vanishes at any output width the
operators allow (below 2**-24 whenever the unmasked scores span less than 16 ln 2 of the grid's range).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import InputError
from .grid import check_int
from .intgelu import INPUT_BITS as GELU_BITS
from .intgelu import int_gelu
from .intnorm import int_layernorm
from .intsoftmax import DEFAULT_EXP, INPUT_BITS, OUTPUT_BITS, WIDE, ExpPoly, SoftmaxWidths, int_softmax

_SOFTMAX = {torch.softmax, F.softmax, torch.Tensor.softmax, torch.special.softmax}
_GELU = {F.gelu}
_LAYER_NORM = {F.layer_norm}


def _masked_softmax(
    x: torch.Tensor,
    dim: int,
    input_bits: int,
    output_bits: int,
    exp: ExpPoly = DEFAULT_EXP,
    widths: SoftmaxWidths = WIDE,
) -> torch.Tensor:
    masked = ~(x > torch.finfo(x.dtype).min / 2)  # -inf and finfo.min masks (and sums with them)
    if not bool(masked.any()):
        return int_softmax(x, dim, input_bits=input_bits, output_bits=output_bits, exp=exp, widths=widths)
    live = torch.where(masked, torch.zeros_like(x), x)
    top = float(live.abs().max()) or 1.0
    lowest = -top  # the grid's lowest code for a tensor whose largest magnitude is ``top``
    return int_softmax(
        torch.where(masked, torch.full_like(x, lowest), x),
        dim,
        input_bits=input_bits,
        output_bits=output_bits,
        exp=exp,
        widths=widths,
    )


class _IntegerFunctions(TorchFunctionMode):
    def __init__(
        self,
        softmax_bits: int | None,
        input_bits: int,
        gelu: bool,
        layernorm_bits: int | None,
        softmax_input_bits: int,
        softmax_exp: ExpPoly,
        softmax_widths: SoftmaxWidths,
    ) -> None:
        super().__init__()
        self.softmax_bits, self.input_bits, self.gelu, self.layernorm_bits = (
            softmax_bits,
            input_bits,
            gelu,
            layernorm_bits,
        )
        self.softmax_input_bits, self.softmax_exp, self.softmax_widths = softmax_input_bits, softmax_exp, softmax_widths
        self.calls = {"softmax": 0, "gelu": 0, "layer_norm": 0}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _SOFTMAX and self.softmax_bits is not None:
            x = args[0]
            dim = kwargs.pop("dim", args[1] if len(args) > 1 else None)
            dtype = kwargs.pop("dtype", args[2] if len(args) > 2 else None)
            if dim is None:
                raise InputError("integer_functions: a softmax without dim (implicit dims are deprecated in torch)")
            if dtype is not None:
                x = x.to(dtype)
            self.calls["softmax"] += 1
            return _masked_softmax(
                x, dim, self.softmax_input_bits, self.softmax_bits, self.softmax_exp, self.softmax_widths
            ).to(x.dtype)
        if func in _GELU and self.gelu:
            if kwargs.get("approximate", "none") not in ("none",):
                return func(*args, **kwargs)  # the tanh form is another function: left as it is
            self.calls["gelu"] += 1
            x = args[0]
            return int_gelu(x, input_bits=self.input_bits).to(x.dtype)
        if func in _LAYER_NORM and self.layernorm_bits is not None:
            names = ("input", "normalized_shape", "weight", "bias", "eps")
            bound = {**dict(zip(names, args)), **kwargs}
            x = bound["input"]
            self.calls["layer_norm"] += 1
            return int_layernorm(
                x,
                bound["normalized_shape"],
                bound.get("weight"),
                bound.get("bias"),
                bound.get("eps", 1e-5),
                input_bits=min(self.input_bits, 16),
                output_bits=self.layernorm_bits,
            ).to(x.dtype)
        return func(*args, **kwargs)


@contextlib.contextmanager
def integer_functions(
    *,
    softmax_bits: int | None = 8,
    input_bits: int = 16,
    gelu: bool = False,
    layernorm_bits: int | None = None,
    softmax_input_bits: int | None = None,
    softmax_exp: ExpPoly = DEFAULT_EXP,
    softmax_widths: SoftmaxWidths = WIDE,
):
    """Run softmax (``softmax_bits`` output bits; None leaves it float), GELU (``gelu=True``; the exact erf
    form only) and LayerNorm (``layernorm_bits`` output bits; None leaves it float) calls made inside the
    block as the integer operators, on ``input_bits`` input grids (LayerNorm's at most 16; softmax's
    ``softmax_input_bits`` when given). ``softmax_exp`` and ``softmax_widths``: the softmax kernel's exp
    polynomial and internal widths (``int_softmax``'s ``exp`` and ``widths``; e.g. those of an associative
    processor's program). Yields a dict counting the calls replaced, by operator."""
    if softmax_bits is not None:
        check_int("integer_functions", "softmax_bits", softmax_bits, *OUTPUT_BITS, "the output grids int_softmax takes")
    if softmax_input_bits is None:
        softmax_input_bits = input_bits
    check_int(
        "integer_functions", "softmax_input_bits", softmax_input_bits, *INPUT_BITS, "the input grids int_softmax takes"
    )
    if not isinstance(softmax_exp, ExpPoly) or not isinstance(softmax_widths, SoftmaxWidths):
        raise InputError(
            f"integer_functions: softmax_exp must be an ExpPoly and softmax_widths a SoftmaxWidths, "
            f"got {type(softmax_exp).__name__} and {type(softmax_widths).__name__}"
        )
    check_int(
        "integer_functions",
        "input_bits",
        input_bits,
        max(INPUT_BITS[0], GELU_BITS[0]),
        min(INPUT_BITS[1], GELU_BITS[1]),
        "the input grids int_softmax and int_gelu take",
    )
    if layernorm_bits is not None:
        check_int("integer_functions", "layernorm_bits", layernorm_bits, 2, 24, "the output codes int_layernorm takes")
    if not isinstance(gelu, bool):
        raise InputError(f"integer_functions: gelu = {gelu!r}; give True or False")
    mode = _IntegerFunctions(
        softmax_bits, input_bits, gelu, layernorm_bits, softmax_input_bits, softmax_exp, softmax_widths
    )
    with mode:
        yield mode.calls
