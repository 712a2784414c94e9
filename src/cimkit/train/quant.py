"""Quantization shared by hardware-aware training, HERO and in-situ training: post-training (PTQ) and
quantization-aware (QAT), per layer or per output channel, symmetric or asymmetric (affine).

The grids are the crossbar datapath's (``cimkit.sim.quant.input_code_limits``):

* symmetric: zero point 0 and signed codes ``-(2**(b-1) - 1) .. 2**(b-1) - 1`` (the DAC's grid, so 0 and
  +-max are exact and the grid needs no zero-point correction on the chip);
* asymmetric: codes ``0 .. 2**b - 1`` and an integer zero point ``z`` with ``value = (code - z) * scale``;
  the observed range is widened to contain 0, so 0 is a code (``z``) and dequantizes to exactly 0.

``fake_quantize`` is ``(clamp(round(x / scale) + z, lo, hi) - z) * scale`` (round half to even, as
``torch.round`` and the ADC of ``cimkit.sim.quant``), computed on float tensors holding integer codes.
Its gradient is the *clipped straight-through estimator* of PyTorch's ``FakeQuantize``: 1 where the code
``round(x / scale) + z`` lies in ``lo..hi``, 0 where it was clipped; the scale and the zero point get no
gradient (they follow the observed range, they are not learned as in LSQ).

Fake quantization runs in float32 for 16-bit float tensors (codes up to 2**16 are not exact in float16)
and returns the input's dtype; float32 and float64 run as they are.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.conv import _ConvNd

from ..errors import InputError, short_repr
from ..ops.grid import check_dim, check_int
from ..sim.convert import copy_model
from ..sim.quant import input_code_limits

Granularity = Literal["per_layer", "per_channel"]
Observer = Literal["minmax", "percentile"]

GRANULARITIES: tuple[str, ...] = ("per_layer", "per_channel")
OBSERVERS: tuple[str, ...] = ("minmax", "percentile")

#: layers whose weights are quantized: the ones ``cimkit.convert`` maps onto crossbars
QUANTIZABLE: tuple[type[nn.Linear] | type[nn.Conv1d] | type[nn.Conv2d], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)


# ---- configuration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantConfig:
    """How one tensor kind (weights or activations) is quantized.

    ``bits``: 2..16 (a symmetric grid of 1 bit has only the code 0; 16 keeps every code and product
    exact in float32). ``granularity``: ``"per_layer"`` (one scale per tensor) or ``"per_channel"`` (one
    per output channel, dim 0 of a weight; for activations, one per input feature / channel).
    ``symmetric``: zero point 0 and the DAC's signed codes, else an affine zero point and codes
    ``0..2**bits-1``. ``observer``: the range is ``"minmax"`` (the extremes) or ``"percentile"`` (the
    ``percentile``-th percentile of ``|x|`` when symmetric, of ``x`` and its mirror ``100 - percentile``
    when asymmetric; values beyond are clipped). ``percentile`` (in (50, 100]) is used by that observer only.
    """

    bits: int = 8
    granularity: Granularity = "per_channel"
    symmetric: bool = True
    observer: Observer = "minmax"
    percentile: float = 99.99

    def __post_init__(self) -> None:
        fn = "QuantConfig"
        object.__setattr__(
            self,
            "bits",
            check_int(
                fn,
                "bits",
                self.bits,
                2,
                16,
                "a symmetric grid needs 2 bits for a nonzero code; 16 bits keep codes exact in float32",
            ),
        )
        for name, value, allowed in (
            ("granularity", self.granularity, GRANULARITIES),
            ("observer", self.observer, OBSERVERS),
        ):
            if not isinstance(value, str) or value not in allowed:
                raise InputError(
                    f"{fn}: {name} = {short_repr(value)} is not allowed; allowed: {', '.join(repr(a) for a in allowed)}"
                )
        if not isinstance(self.symmetric, bool):
            raise InputError(
                f"{fn}: symmetric = {short_repr(self.symmetric)} is not allowed; it must be True "
                f"(zero point 0, signed codes) or False (affine zero point, codes 0..2**bits-1)"
            )
        p = self.percentile
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(p) or not 50 < p <= 100:
            raise InputError(
                f"{fn}: percentile = {short_repr(p)} is not allowed; a number in (50, 100] (the "
                f"percentile of the values that sets the range of the 'percentile' observer)"
            )
        object.__setattr__(self, "percentile", float(p))

    @property
    def code_limits(self) -> tuple[int, int]:
        """Smallest and largest code: the DAC's symmetric signed codes, or ``0..2**bits-1`` when affine."""
        return input_code_limits(self.bits, signed=self.symmetric)


# ---- the math --------------------------------------------------------------------------------------
def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for 16-bit floats (their integers above 2048 are not exact), else the dtype itself."""
    return torch.promote_types(dtype, torch.float32)


def _quantile(rows: torch.Tensor, q: float) -> torch.Tensor:
    """The ``q``-quantile (0..1, linear interpolation as ``torch.quantile``) of each row of ``rows``
    (C, n), with ``kthvalue`` (no size limit, unlike ``torch.quantile``, and no full sort)."""
    n = rows.shape[1]
    pos = q * (n - 1)
    i = min(int(math.floor(pos)), n - 1)
    low = rows.kthvalue(i + 1, dim=1).values
    frac = pos - i
    if frac == 0.0 or i + 1 >= n:
        return low
    return low + frac * (rows.kthvalue(i + 2, dim=1).values - low)


def _observe(rows: torch.Tensor, cfg: QuantConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The range ``(lo, hi)`` of each row of ``rows`` (C, n) as the observer sees it, with
    ``lo <= 0 <= hi`` (symmetric: ``lo == -hi``), so that 0 is always on the grid."""
    p = cfg.percentile / 100.0
    if cfg.symmetric:
        mag = rows.abs()
        top = mag.amax(dim=1) if cfg.observer == "minmax" else _quantile(mag, p)
        return -top, top
    if cfg.observer == "minmax":
        lo, hi = torch.aminmax(rows, dim=1)
    else:
        lo, hi = _quantile(rows, 1.0 - p), _quantile(rows, p)
    return lo.clamp(max=0), hi.clamp(min=0)


def _params_from_range(lo: torch.Tensor, hi: torch.Tensor, cfg: QuantConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point of the grid that spans ``lo..hi`` (``lo <= 0 <= hi``).

    Symmetric: ``max(-lo, hi)`` is the largest code times the scale. Affine: ``hi - lo`` spans all codes
    and ``z = round(-lo / scale)``, so the grid covers ``lo..hi`` up to half a step at either end. An empty
    range (a channel of zeros) gets scale 1 (any scale gives the codes 0); scales stay >= the dtype's
    smallest normal number, so nothing divides by zero."""
    qlo, qhi = cfg.code_limits
    tiny = torch.finfo(lo.dtype).tiny
    if cfg.symmetric:
        top = torch.maximum(-lo, hi)
        scale = torch.where(top > 0, top / qhi, torch.ones_like(top)).clamp_min(tiny)
        return scale, torch.zeros_like(scale)
    span = hi - lo
    scale = torch.where(span > 0, span / (qhi - qlo), torch.ones_like(span)).clamp_min(tiny)
    return scale, torch.clamp(torch.round((0.0 - lo) / scale), qlo, qhi)  # 0.0 - lo: never -0.0


def _rows(x: torch.Tensor, dim: int | None) -> torch.Tensor:
    """``x`` as (C, n): one row per index of ``dim`` (per channel), or one row (``dim`` None)."""
    if dim is None:
        return x.reshape(1, -1)
    return x.movedim(dim, 0).reshape(x.shape[dim], -1)


def _shaped(t: torch.Tensor, ndim: int, dim: int | None) -> torch.Tensor:
    """Per-row parameters (C,) shaped to broadcast against a tensor of ``ndim`` dims along ``dim``
    (0-d for a per-layer parameter)."""
    if dim is None:
        return t.reshape(())
    shape = [1] * ndim
    shape[dim] = t.shape[0]
    return t.reshape(shape)


def _params(x: torch.Tensor, cfg: QuantConfig, dim: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``quant_params`` without the argument checks (``dim`` normalized, None when per layer)."""
    x = x.detach().to(_compute_dtype(x.dtype))
    if x.numel() == 0:  # nothing to observe: any grid gives the same (empty) result
        ones = torch.ones(x.shape[dim] if dim is not None else 1, dtype=x.dtype, device=x.device)
        return _shaped(ones, x.dim(), dim), _shaped(torch.zeros_like(ones), x.dim(), dim)
    scale, zero_point = _params_from_range(*_observe(_rows(x, dim), cfg), cfg)
    return _shaped(scale, x.dim(), dim), _shaped(zero_point, x.dim(), dim)


class _FakeQuantize(torch.autograd.Function):
    """``(clamp(round(x / s) + z, lo, hi) - z) * s`` with the clipped straight-through gradient."""

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        scale: torch.Tensor,
        zero_point: torch.Tensor,  # type: ignore[override]
        lo: int,
        hi: int,
    ) -> torch.Tensor:
        codes = torch.round(x / scale) + zero_point
        inside = (codes >= lo) & (codes <= hi)
        ctx.save_for_backward(inside)
        return codes.clamp_(lo, hi).sub_(zero_point).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None


def _fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, cfg: QuantConfig) -> torch.Tensor:
    """``fake_quantize`` without the argument checks (``scale``, ``zero_point`` already tensors)."""
    ct = _compute_dtype(x.dtype)
    lo, hi = cfg.code_limits
    y = _FakeQuantize.apply(x.to(ct), scale.to(ct), zero_point.to(ct), lo, hi)
    return y.to(x.dtype)


def _check_tensor(fn: str, name: str, x: object) -> torch.Tensor:
    """``x`` as a floating-point tensor with finite values, else an InputError naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{fn}: {name} is a {type(x).__name__}; it must be a torch.Tensor")
    if not x.is_floating_point():
        raise InputError(f"{fn}: {name} has dtype {x.dtype}; it must be a floating-point tensor")
    if x.numel() and not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise InputError(
            f"{fn}: {name} has non-finite values (first at index {bad}: {x[tuple(bad)].item()}); "
            f"a quantization grid needs finite values"
        )
    return x


def _check_config(fn: str, name: str, cfg: object) -> QuantConfig:
    if not isinstance(cfg, QuantConfig):
        raise InputError(
            f"{fn}: {name} = {short_repr(cfg)} is not allowed; it must be a cimkit.train.quant.QuantConfig"
        )
    return cfg


def quant_params(x: torch.Tensor, cfg: QuantConfig, *, dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid of ``x`` under ``cfg``: ``(scale, zero_point)``, from the range the observer sees.

    Per layer they are 0-d tensors; per channel they have ``x``'s number of dims with the channel count
    at ``dim`` and 1 elsewhere, so they broadcast against ``x`` (``dim``: the channel axis, default 0, the
    output channel of a weight; ignored per layer). Both are in ``x``'s dtype (float32 for 16-bit floats);
    the zero point holds an integer code (0 when symmetric). ``x`` is read, never differentiated."""
    fn = "quant_params"
    cfg = _check_config(fn, "cfg", cfg)
    x = _check_tensor(fn, "x", x)
    axis: int | None = None
    if cfg.granularity == "per_channel":
        if x.dim() == 0:
            raise InputError(
                f"{fn}: per_channel quantization needs a tensor with a channel dim; x is 0-d "
                f"(use granularity='per_layer')"
            )
        axis = check_dim(fn, 0 if dim is None else dim, x.dim())
    return _params(x, cfg, axis)


def fake_quantize(
    x: torch.Tensor, scale: torch.Tensor | float, zero_point: torch.Tensor | float, cfg: QuantConfig
) -> torch.Tensor:
    """``x`` rounded to the grid ``(scale, zero_point)`` of ``cfg.bits`` bits and back to floats:
    ``(clamp(round(x / scale) + zero_point, lo, hi) - zero_point) * scale``, in ``x``'s dtype.

    Grid values come back unchanged; inside the grid's range the error is at most ``scale / 2``; 0 maps to
    exactly 0. Gradient: the clipped straight-through estimator (1 where the code was not clipped, else 0;
    none to ``scale`` and ``zero_point``). ``scale`` and ``zero_point`` must broadcast to ``x``'s shape (as
    ``quant_params`` returns them)."""
    fn = "fake_quantize"
    cfg = _check_config(fn, "cfg", cfg)
    x = _check_tensor(fn, "x", x)
    ct = _compute_dtype(x.dtype)
    s = torch.as_tensor(scale, dtype=ct, device=x.device)
    z = torch.as_tensor(zero_point, dtype=ct, device=x.device)
    if not bool((torch.isfinite(s) & (s > 0)).all()):
        raise InputError(
            f"{fn}: scale = {short_repr(scale)} is not allowed; every scale must be a positive "
            f"finite number (the grid step)"
        )
    lo, hi = cfg.code_limits
    ok = (z == 0) if cfg.symmetric else (z == torch.round(z)) & (z >= lo) & (z <= hi)
    if not bool(ok.all()):
        allowed = "0 (a symmetric grid" if cfg.symmetric else f"integer codes in {lo}..{hi} (the code of 0"
        raise InputError(
            f"{fn}: zero_point = {short_repr(zero_point)} is not allowed; it must be {allowed} of {cfg.bits} bits)"
        )
    try:
        fits = torch.broadcast_shapes(x.shape, s.shape, z.shape) == x.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise InputError(
            f"{fn}: scale {tuple(s.shape)} and zero_point {tuple(z.shape)} do not broadcast "
            f"to the shape of x {tuple(x.shape)}; use the shapes quant_params returns"
        )
    return _fake_quantize(x, s, z, cfg)


def _quantize_weight(w: torch.Tensor, cfg: QuantConfig) -> torch.Tensor:
    """A weight fake-quantized under ``cfg`` (per channel along dim 0), with the STE gradient."""
    scale, zero_point = _params(w, cfg, 0 if cfg.granularity == "per_channel" else None)
    return _fake_quantize(w, scale, zero_point, cfg)


# ---- QAT layers ------------------------------------------------------------------------------------
class QATLayer(nn.Module):
    """What the QAT layers add to ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d``: a forward on fake-quantized
    weights (from the current weights at every call) and, with an activation config, fake-quantized inputs.

    The layers are the original modules with their class swapped (``prepare_qat``), so parameters, their
    names (``weight``, ``bias``) and hooks stay; the input observer adds the buffers ``act_lo``, ``act_hi``
    (the running range, shape (C,), C = 1 per layer) and ``act_seen`` (training batches observed). In
    training each batch's range is folded in with an exponential moving average (``momentum``; the first
    batch sets it); in eval the range is frozen (before any training batch, each batch uses its own range).
    """

    weight: torch.Tensor
    weight_config: QuantConfig
    act_config: QuantConfig | None
    momentum: float
    act_lo: torch.Tensor
    act_hi: torch.Tensor
    act_seen: torch.Tensor

    def _init_qat(self, weight: QuantConfig, activation: QuantConfig | None, momentum: float) -> None:
        self.weight_config = weight
        self.act_config = activation
        self.momentum = momentum
        if activation is not None:
            channels = self._in_channels() if activation.granularity == "per_channel" else 1
            dtype, device = _compute_dtype(self.weight.dtype), self.weight.device
            self.register_buffer("act_lo", torch.zeros(channels, dtype=dtype, device=device))
            self.register_buffer("act_hi", torch.zeros(channels, dtype=dtype, device=device))
            self.register_buffer("act_seen", torch.zeros((), dtype=torch.long, device=self.weight.device))

    def _in_channels(self) -> int:
        raise NotImplementedError

    def _channel_dim(self, x: torch.Tensor) -> int:
        raise NotImplementedError

    def quantized_weight(self) -> torch.Tensor:
        """The weight on its grid, differentiable with the straight-through estimator."""
        return _quantize_weight(self.weight, self.weight_config)

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` fake-quantized with the observer's range (unchanged without an activation config)."""
        cfg = self.act_config
        if cfg is None:
            return x
        dim = self._channel_dim(x) if cfg.granularity == "per_channel" else None
        if self.training:
            lo, hi = _observe(_rows(x.detach().to(self.act_lo.dtype), dim), cfg)
            with torch.no_grad():
                first = self.act_seen == 0
                m = self.momentum
                self.act_lo.copy_(torch.where(first, lo, self.act_lo + m * (lo - self.act_lo)))
                self.act_hi.copy_(torch.where(first, hi, self.act_hi + m * (hi - self.act_hi)))
                self.act_seen.add_(1)
            lo, hi = self.act_lo, self.act_hi
        elif int(self.act_seen) == 0:
            lo, hi = _observe(_rows(x.detach().to(self.act_lo.dtype), dim), cfg)
        else:
            lo, hi = self.act_lo, self.act_hi
        scale, zero_point = _params_from_range(lo, hi, cfg)
        return _fake_quantize(x, _shaped(scale, x.dim(), dim), _shaped(zero_point, x.dim(), dim), cfg)

    def extra_repr(self) -> str:
        w = self.weight_config
        text = f"weight={w.bits}b {w.granularity} {'sym' if w.symmetric else 'affine'}"
        a = self.act_config
        if a is not None:
            text += f", input={a.bits}b {a.granularity} {'sym' if a.symmetric else 'affine'}"
        return f"{super().extra_repr()}, {text}"


class QATLinear(QATLayer, nn.Linear):
    """``nn.Linear`` on fake-quantized weights (and inputs); see ``QATLayer``."""

    def _in_channels(self) -> int:
        return self.in_features

    def _channel_dim(self, x: torch.Tensor) -> int:
        return x.dim() - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.quantize_input(x), self.quantized_weight(), self.bias)


class _QATConv(QATLayer, _ConvNd):
    """What the QAT convolutions share: channels on dim 1 of a batched input (dim 0 unbatched)."""

    def _in_channels(self) -> int:
        return self.in_channels

    def _channel_dim(self, x: torch.Tensor) -> int:
        return 1 if x.dim() == len(self.kernel_size) + 2 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.quantize_input(x), self.quantized_weight(), self.bias)


class QATConv1d(_QATConv, nn.Conv1d):
    """``nn.Conv1d`` on fake-quantized weights (and inputs); see ``QATLayer``."""


class QATConv2d(_QATConv, nn.Conv2d):
    """``nn.Conv2d`` on fake-quantized weights (and inputs); see ``QATLayer``."""


_QAT_OF: dict[type[nn.Module], type[QATLayer]] = {nn.Linear: QATLinear, nn.Conv1d: QATConv1d, nn.Conv2d: QATConv2d}
_BASE_OF: dict[type[QATLayer], type[nn.Module]] = {q: b for b, q in _QAT_OF.items()}
_QAT_ATTRIBUTES = ("weight_config", "act_config", "momentum")
_QAT_BUFFERS = ("act_lo", "act_hi", "act_seen")


# ---- model-level API -------------------------------------------------------------------------------
def _check_model(fn: str, model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise InputError(f"{fn}: model is a {type(model).__name__}; it must be a torch.nn.Module")
    return model


def _skipped(fn: str, model: nn.Module, skip: Iterable[str] | str) -> set[int]:
    """Ids of the modules named in ``skip`` and of everything inside them (a name must exist)."""
    names = (skip,) if isinstance(skip, str) else tuple(skip)
    modules = list(model.named_modules(remove_duplicate=False))
    known = {name for name, _ in modules}
    for s in names:
        if not isinstance(s, str) or s not in known:
            some = ", ".join(repr(n) for n in sorted(known - {""})[:12])
            raise InputError(
                f"{fn}: skip names {short_repr(s)}, which is not a module of the model; allowed: "
                f"module names as in model.named_modules() ({some}{', ...' if len(known) > 13 else ''})"
            )
    return {id(m) for name, m in modules if any(s == "" or name == s or name.startswith(s + ".") for s in names)}


def _layers(
    fn: str, model: nn.Module, skip: Iterable[str] | str, exact: bool
) -> list[tuple[str, nn.Linear | nn.Conv1d | nn.Conv2d]]:
    """The quantizable layers of ``model`` not skipped, each once (a shared module under its first name):
    by ``isinstance`` (PTQ: the weights are data) or by exact type (QAT: a subclass may compute otherwise)."""
    skipped = _skipped(fn, model, skip)
    found: list[tuple[str, nn.Linear | nn.Conv1d | nn.Conv2d]] = []
    seen: set[int] = set()
    for name, m in model.named_modules():
        if isinstance(m, QATLayer):
            raise InputError(
                f"{fn}: layer {name!r} is already a {type(m).__name__}; pass the model before "
                f"prepare_qat, or bake it with convert_qat first"
            )
        exact_ok = not exact or type(m) in QUANTIZABLE
        if isinstance(m, QUANTIZABLE) and exact_ok and id(m) not in skipped and id(m) not in seen:
            seen.add(id(m))
            if nn.parameter.is_lazy(m.weight):
                raise InputError(
                    f"{fn}: layer {name!r} ({type(m).__name__}) has an uninitialized lazy weight; "
                    f"run one forward pass first"
                )
            _check_tensor(fn, f"the weight of layer {name!r}", m.weight.detach())
            found.append((name, m))
    if not found:
        kinds = ", ".join(f"nn.{t.__name__}" for t in QUANTIZABLE)
        raise InputError(
            f"{fn}: the model ({type(model).__name__}) has no quantizable layers"
            f"{' left after skip' if skipped else ''}; allowed: {kinds}"
            + (" (exactly these types: subclasses may compute otherwise)" if exact else "")
        )
    return found


def quantize_weights(
    model: nn.Module,
    bits: int = 8,
    *,
    granularity: Granularity = "per_channel",
    symmetric: bool = True,
    skip: Iterable[str] | str = (),
) -> nn.Module:
    """Post-training quantization: a deep copy of ``model`` whose ``nn.Linear`` / ``nn.Conv1d`` /
    ``nn.Conv2d`` weights (and those of their subclasses) hold their fake-quantized float values (min/max
    range, ``bits``, ``granularity``, ``symmetric`` as in ``QuantConfig``). The original is untouched.

    Biases stay in float: the chip adds them in the digital periphery at the accumulator's precision.
    ``skip``: module names (as in ``named_modules()``) left in float with everything inside them, e.g. the
    first and last layers. A weight shared by several layers is quantized once."""
    fn = "quantize_weights"
    model = _check_model(fn, model)
    cfg = QuantConfig(bits=bits, granularity=granularity, symmetric=symmetric)
    qmodel = copy_model(model)
    done: set[int] = set()
    with torch.no_grad():
        for _, m in _layers(fn, qmodel, skip, exact=False):
            if id(m.weight) not in done:
                done.add(id(m.weight))
                m.weight.copy_(_quantize_weight(m.weight, cfg))
    return qmodel


def prepare_qat(
    model: nn.Module,
    weight: QuantConfig | None = None,
    activation: QuantConfig | None = None,
    *,
    momentum: float = 0.1,
    skip: Iterable[str] | str = (),
) -> nn.Module:
    """Quantization-aware training: a deep copy of ``model`` whose ``nn.Linear`` / ``nn.Conv1d`` /
    ``nn.Conv2d`` layers (exactly these types) become ``QATLinear`` / ``QATConv1d`` / ``QATConv2d``.

    Every forward fake-quantizes the current weights under ``weight`` (default ``QuantConfig()``: 8 bits,
    per channel, symmetric) and, with ``activation``, the layer's input (running range, EMA ``momentum``
    in (0, 1], frozen in eval mode; see ``QATLayer``). Gradients pass by the straight-through estimator, so
    the copy trains with any torch optimizer (build it on the copy's parameters). The weights keep their
    state_dict keys (``layer.weight``, ``layer.bias``); an activation config adds ``act_lo``, ``act_hi``
    and ``act_seen`` buffers per layer. ``skip`` as in ``quantize_weights``. ``convert_qat`` bakes the
    result back into plain modules."""
    fn = "prepare_qat"
    model = _check_model(fn, model)
    weight = QuantConfig() if weight is None else _check_config(fn, "weight", weight)
    if activation is not None:
        activation = _check_config(fn, "activation", activation)
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0 < momentum <= 1:
        raise InputError(
            f"{fn}: momentum = {short_repr(momentum)} is not allowed; a number in (0, 1] (the "
            f"weight of a new batch in the running input range)"
        )
    qmodel = copy_model(model)
    for _, m in _layers(fn, qmodel, skip, exact=True):
        m.__class__ = _QAT_OF[type(m)]
        m._init_qat(weight, activation, float(momentum))  # type: ignore[attr-defined]
    return qmodel


def convert_qat(model: nn.Module) -> nn.Module:
    """A deep copy of a ``prepare_qat`` model with each QAT layer turned back into its plain module
    (``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``) holding the fake-quantized weights, so that it can go to
    ``cimkit.convert``; its state_dict keys are the original model's.

    With weight quantization only, the result computes exactly what the QAT model computes in eval mode.
    Input quantization is dropped (a plain module cannot hold it): on the chip the DAC quantizes inputs
    with the spec's bits; the running ranges stay readable on the QAT model (``act_lo``, ``act_hi``)."""
    fn = "convert_qat"
    model = _check_model(fn, model)
    out = copy_model(model)
    layers = {id(m): m for m in out.modules() if isinstance(m, QATLayer)}
    if not layers:
        raise InputError(
            f"{fn}: the model ({type(model).__name__}) has no QAT layers; allowed: a model returned by prepare_qat"
        )
    with torch.no_grad():
        for m in layers.values():
            _check_tensor(fn, f"the weight of a {type(m).__name__}", m.weight.detach())
            m.weight.copy_(m.quantized_weight())
            for name in _QAT_BUFFERS:
                m._buffers.pop(name, None)
            for name in _QAT_ATTRIBUTES:
                m.__dict__.pop(name, None)
            m.__class__ = _BASE_OF[type(m)]  # type: ignore[assignment]  # the class swap undoes prepare_qat's
    return out


def quantization_error(model: nn.Module, qmodel: nn.Module) -> dict[str, float]:
    """Per layer, the relative weight error ``||w_q - w|| / ||w||`` (0 for an all-zero weight) between
    ``model`` and its quantized version ``qmodel`` (from ``quantize_weights``, ``prepare_qat`` — its
    fake-quantized weights — or ``convert_qat``), for the quantizable layers both have under one name."""
    fn = "quantization_error"
    model, qmodel = _check_model(fn, model), _check_model(fn, qmodel)
    theirs = dict(qmodel.named_modules())
    errors: dict[str, float] = {}
    with torch.no_grad():
        for name, m in model.named_modules():
            q = theirs.get(name)
            if not isinstance(m, QUANTIZABLE) or not isinstance(q, QUANTIZABLE) or m.weight.shape != q.weight.shape:
                continue
            w = m.weight
            wq = q.quantized_weight() if isinstance(q, QATLayer) else q.weight
            w64, wq64 = w.detach().double(), wq.detach().double().to(w.device)
            norm = float(torch.linalg.vector_norm(w64))
            diff = float(torch.linalg.vector_norm(wq64 - w64))
            errors[name] = diff / norm if norm > 0 else diff
    if not errors:
        raise InputError(
            f"{fn}: model and qmodel have no quantizable layers of the same name and shape; "
            f"qmodel must be a quantized copy of model"
        )
    return errors


__all__ = [
    "GRANULARITIES",
    "OBSERVERS",
    "QUANTIZABLE",
    "QATConv1d",
    "QATConv2d",
    "QATLayer",
    "QATLinear",
    "QuantConfig",
    "convert_qat",
    "fake_quantize",
    "prepare_qat",
    "quant_params",
    "quantization_error",
    "quantize_weights",
]
