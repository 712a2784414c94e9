"""Module forms of the integer-only operators and ``swap_integer_ops``, which puts them into a model.

The modules are for inference: their integer data path has no gradient with respect to the input.
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from ..errors import InputError, short_repr
from . import intgelu, intnorm, intsoftmax
from .grid import check_int
from .intgelu import DEFAULT_ERF, ErfPoly, int_gelu
from .intnorm import int_layernorm
from .intsoftmax import DEFAULT_EXP, ExpPoly, int_softmax


def _legacy_softmax_dim(ndim: int) -> int:
    """torch's implicit softmax dim for ``nn.Softmax(dim=None)``: 0 for 0-, 1- and 3-d inputs, else 1."""
    return 0 if ndim in (0, 1, 3) else 1


class IntSoftmax(nn.Module):
    """``int_softmax`` along ``dim`` (None: torch's deprecated implicit dim, as ``nn.Softmax(dim=None)``)."""

    def __init__(
        self, dim: int | None = -1, input_bits: int = 16, output_bits: int = 8, *, exp: ExpPoly = DEFAULT_EXP
    ) -> None:
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, numbers.Integral)):
            raise InputError(f"IntSoftmax: dim = {short_repr(dim)} is not allowed; it must be an int or None")
        self.dim = dim
        self.input_bits = check_int(
            "IntSoftmax", "input_bits", input_bits, *intsoftmax.INPUT_BITS, intsoftmax.INPUT_BITS_WHY
        )
        self.output_bits = check_int(
            "IntSoftmax", "output_bits", output_bits, *intsoftmax.OUTPUT_BITS, intsoftmax.OUTPUT_BITS_WHY
        )
        self.exp = exp

    @classmethod
    def from_float(
        cls, module: nn.Softmax, *, input_bits: int = 16, output_bits: int = 8, exp: ExpPoly = DEFAULT_EXP
    ) -> IntSoftmax:
        """The integer form of ``module`` (its ``dim``)."""
        if not isinstance(module, nn.Softmax):
            raise InputError(f"IntSoftmax.from_float: got a {type(module).__name__}; it takes an nn.Softmax")
        return cls(module.dim, input_bits, output_bits, exp=exp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = _legacy_softmax_dim(x.dim()) if self.dim is None else self.dim
        return int_softmax(x, dim, input_bits=self.input_bits, output_bits=self.output_bits, exp=self.exp)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, input_bits={self.input_bits}, output_bits={self.output_bits}, exp={self.exp.name}"


class IntGELU(nn.Module):
    """``int_gelu``: I-BERT's i-GELU; the output is on the input grid."""

    def __init__(self, input_bits: int = 16, *, erf: ErfPoly = DEFAULT_ERF) -> None:
        super().__init__()
        self.input_bits = check_int("IntGELU", "input_bits", input_bits, *intgelu.INPUT_BITS, intgelu.INPUT_BITS_WHY)
        self.erf = erf

    @classmethod
    def from_float(cls, module: nn.GELU, *, input_bits: int = 16, erf: ErfPoly = DEFAULT_ERF) -> IntGELU:
        """The integer form of ``module``; both ``approximate='none'`` and ``'tanh'`` (which differ by at
        most 4.7e-4, well under the polynomial's error) become i-GELU."""
        if not isinstance(module, nn.GELU):
            raise InputError(f"IntGELU.from_float: got a {type(module).__name__}; it takes an nn.GELU")
        return cls(input_bits, erf=erf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return int_gelu(x, input_bits=self.input_bits, erf=self.erf)

    def extra_repr(self) -> str:
        return f"input_bits={self.input_bits}, erf={self.erf.name}"


class IntLayerNorm(nn.Module):
    """``int_layernorm`` with ``weight`` and ``bias`` parameters named and shaped as ``nn.LayerNorm``'s (so a
    LayerNorm's state dict loads into it)."""

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        input_bits: int = 16,
        output_bits: int = 16,
        integer_bits: int | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.input_bits = check_int(
            "IntLayerNorm", "input_bits", input_bits, *intnorm.INPUT_BITS, intnorm.INPUT_BITS_WHY
        )
        self.output_bits = check_int(
            "IntLayerNorm", "output_bits", output_bits, *intnorm.OUTPUT_BITS, intnorm.OUTPUT_BITS_WHY
        )
        self.integer_bits = integer_bits
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.ones(shape, **kw)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(shape, **kw)) if elementwise_affine and bias else None

    @classmethod
    def from_float(
        cls, module: nn.LayerNorm, *, input_bits: int = 16, output_bits: int = 16, integer_bits: int | None = None
    ) -> IntLayerNorm:
        """The integer form of ``module``, with copies of its weight and bias (``module`` is left as is)."""
        if not isinstance(module, nn.LayerNorm):
            raise InputError(f"IntLayerNorm.from_float: got a {type(module).__name__}; it takes an nn.LayerNorm")
        w, b = module.weight, module.bias
        ref = w if w is not None else b
        new = cls(
            module.normalized_shape,
            module.eps,
            w is not None,
            b is not None,
            input_bits=input_bits,
            output_bits=output_bits,
            integer_bits=integer_bits,
            device=None if ref is None else ref.device,
            dtype=None if ref is None else ref.dtype,
        )
        with torch.no_grad():
            if w is not None and new.weight is not None:
                new.weight.copy_(w)
            if b is not None and new.bias is not None:
                new.bias.copy_(b)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return int_layernorm(
            x,
            self.normalized_shape,
            self.weight,
            self.bias,
            self.eps,
            input_bits=self.input_bits,
            output_bits=self.output_bits,
            integer_bits=self.integer_bits,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"input_bits={self.input_bits}, output_bits={self.output_bits}"
        )


def swap_integer_ops(
    model: nn.Module,
    *,
    softmax_bits: int = 8,
    input_bits: int = 16,
    gelu: bool = True,
    layernorm: bool = True,
    layernorm_bits: int = 16,
    inplace: bool = False,
) -> nn.Module:
    """Replace the ``nn.Softmax`` (always), ``nn.GELU`` (if ``gelu``) and ``nn.LayerNorm`` (if ``layernorm``)
    submodules of ``model`` (and subclasses; ``model`` itself too) by ``IntSoftmax`` (``softmax_bits``
    output bits), ``IntGELU`` and ``IntLayerNorm`` (``layernorm_bits`` output bits), all on
    ``input_bits``-bit input grids.

    Returns the model with the integer ops: a deep copy, ``model`` untouched, unless ``inplace``. The
    returned model's ``swapped`` attribute maps each replaced submodule's qualified name ("" for the root)
    to the class it replaced, e.g. ``{"encoder.0.act": "GELU"}``; ``len(m.swapped)`` is the count. Functional
    calls (``F.softmax`` in a forward) are not modules and are not replaced.
    """
    fn = "swap_integer_ops"
    if not isinstance(model, nn.Module):
        raise InputError(f"{fn}: model is a {type(model).__name__}; it must be a torch.nn.Module")
    check_int(fn, "softmax_bits", softmax_bits, *intsoftmax.OUTPUT_BITS, intsoftmax.OUTPUT_BITS_WHY)
    check_int(
        fn,
        "input_bits",
        input_bits,
        2,
        min(intsoftmax.INPUT_BITS[1], intgelu.INPUT_BITS[1], intnorm.INPUT_BITS[1] if layernorm else 32),
        "the softmax, GELU and LayerNorm input grids (LayerNorm: 2..16)",
    )
    check_int(fn, "layernorm_bits", layernorm_bits, *intnorm.OUTPUT_BITS, intnorm.OUTPUT_BITS_WHY)

    def convert(module: nn.Module) -> nn.Module | None:
        if isinstance(module, nn.Softmax):
            return IntSoftmax.from_float(module, input_bits=input_bits, output_bits=softmax_bits)
        if gelu and isinstance(module, nn.GELU):
            return IntGELU.from_float(module, input_bits=input_bits)
        if layernorm and isinstance(module, nn.LayerNorm):
            return IntLayerNorm.from_float(module, input_bits=input_bits, output_bits=layernorm_bits)
        return None

    root = model if inplace else copy.deepcopy(model)
    swapped: dict[str, str] = {}
    done: dict[int, nn.Module] = {}  # a module shared by several parents becomes one shared integer module

    def visit(parent: nn.Module, prefix: str) -> None:
        for name, child in list(parent._modules.items()):  # named_children() skips a repeated module
            if child is None:
                continue
            qualified = f"{prefix}{name}"
            new = done[id(child)] if id(child) in done else convert(child)
            if new is None:
                visit(child, qualified + ".")
                continue
            new.train(child.training)
            done[id(child)] = new
            setattr(parent, name, new)
            swapped[qualified] = type(child).__name__

    replaced_root = convert(root)
    if replaced_root is not None:
        replaced_root.train(root.training)
        swapped[""] = type(root).__name__
        root = replaced_root
    else:
        visit(root, "")
    root.swapped = swapped  # type: ignore[assignment]  # stubs: Module.__setattr__ takes any value
    return root
