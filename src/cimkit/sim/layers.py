"""CIM layers: ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` whose products run through crossbars.

A layer is a layout (``layout.py``: how its inputs meet the arrays) around a tile (``tile.py``: the
programmed chip). Its float weights stay ``nn.Parameter``s, what the chip is programmed from, so a
converted model trains with any torch optimizer; the backward pass is chosen per layer
(``backward_mode``: ``straight_through`` or ``chip``, see ``kernel.ChipProduct``). The chip is
reprogrammed when the weights change (each optimizer step), and each such programming draws a fresh
programming-noise sample from the seeded stream, as writing a chip anew would (``program_noise``:
``per_step``; ``per_epoch``: a new sample at ``cimkit.sim.new_epoch``; ``fixed``: one sample).
"""

from __future__ import annotations

import ctypes
import functools
import math
import zlib
from typing import Any

import torch
from torch import nn

from ..errors import InputError, short_repr
from ..mapping import ArrayMapping, map_matrix
from ..spec import HardwareSpec
from .histogram import MagnitudeHistogram
from .kernel import BACKWARD_MODES, INPUT_MODES, ChipProduct, run
from .layout import Layout, LinearLayout, conv_layout, pair
from .tile import CrossbarTile, keep_dtypes

PROGRAM_NOISE = ("per_step", "per_epoch", "fixed")
WEIGHT_RANGES = ("dynamic", "fixed")


@functools.lru_cache(maxsize=1)
def _memcmp():
    try:
        fn = ctypes.CDLL(None).memcmp
    except Exception:  # noqa: BLE001 - no C library to call (Windows, unusual platforms): torch.equal does it
        return None
    fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return fn


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """``torch.equal(a, b)``, about 6x faster for contiguous CPU tensors of one dtype and shape (a byte compare
    first: equal bytes are equal values, since programmed weights are finite; differing bytes are confirmed by
    ``torch.equal``, which takes -0.0 for 0.0)."""
    fn = _memcmp()
    if (
        fn is not None
        and a.device.type == b.device.type == "cpu"
        and a.dtype == b.dtype
        and a.shape == b.shape
        and a.is_contiguous()
        and b.is_contiguous()
    ):
        if fn(a.data_ptr(), b.data_ptr(), a.numel() * a.element_size()) == 0:
            return True
    return torch.equal(a, b)


def layer_seed(seed: int, name: str) -> int:
    """Seed of one layer's random effects, derived from the model seed and the layer's name."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**62)


class CIMLayer(nn.Module):
    """Base of the crossbar layers: a ``tile`` (the programmed chip) read through a ``layout``."""

    #: backward passes this layer can compute
    backward_modes: tuple[str, ...] = BACKWARD_MODES
    #: the class of its programmed chip
    tile_class: type[CrossbarTile] = CrossbarTile
    #: whether its arrays are written at every input (dynamic matmuls) rather than programmed once
    writes_per_input: bool = False
    # (annotations only, for type checkers: registered buffers are Tensors)
    programmed_weight: torch.Tensor

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        spec: HardwareSpec,
        mapping: ArrayMapping,
        layout: Layout,
        *,
        seed: int,
        name: str,
    ) -> None:
        super().__init__()
        if not torch.isfinite(weight).all():
            raise InputError(f"{name}: weight has non-finite values; cannot program it")
        self.spec, self.mapping, self.layer_name, self.layout = spec, mapping, name, layout
        self.seed = int(seed)
        self.weight = nn.Parameter(weight.detach().float().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().float().clone())
        self.tile = self.tile_class(spec, mapping, seed=self.seed, name=name)
        if weight.device.type != "cpu":
            self.tile.to(weight.device)
        self._backward_mode = "straight_through"
        self._program_noise = "per_step"
        self._weight_range = "dynamic"
        self.tile.program(self.weight)
        # the weights the chip holds now: compared with ``weight`` at each forward (an optimizer may
        # change weights without bumping their version, and copies move them)
        self.register_buffer("programmed_weight", self.weight.detach().clone(), persistent=False)
        self._stale = False  # weights loaded without a chip: program them at the next forward
        self._loaded_chip = False
        self._calib_data: dict[str, Any] = {}
        self._calib_handle: Any = None
        # fused paths such as nn.TransformerEncoderLayer's fast path read weights directly and would
        # bypass the crossbar; they stand aside for modules with forward hooks
        self.register_forward_pre_hook(_no_fused_paths)
        self.register_load_state_dict_post_hook(_after_load)

    # ---- training settings -------------------------------------------------------------------
    def allowed(self, setting: str) -> tuple[str, ...]:
        """The values this layer accepts for ``setting`` (``backward_mode``, ``program_noise``,
        ``weight_range``)."""
        return {"backward_mode": self.backward_modes, "program_noise": PROGRAM_NOISE, "weight_range": WEIGHT_RANGES}[
            setting
        ]

    def check_setting(self, setting: str, value: str) -> None:
        """Raise InputError unless ``value`` is one this layer can do for ``setting``."""
        allowed = self.allowed(setting)
        if value not in allowed:
            raise InputError(
                f"{self.layer_name}: {setting} {value!r} is not one this {type(self).__name__} "
                f"can do; choose from {', '.join(allowed)}"
            )

    @property
    def backward_mode(self) -> str:
        """``straight_through`` or ``chip`` (see ``kernel.ChipProduct``)."""
        return self._backward_mode

    @backward_mode.setter
    def backward_mode(self, mode: str) -> None:
        self.check_setting("backward_mode", mode)
        self._backward_mode = mode

    @property
    def program_noise(self) -> str:
        """When programming noise is redrawn: ``per_step`` (at each reprogramming after a weight
        change), ``per_epoch`` (at ``new_epoch``) or ``fixed`` (never)."""
        return self._program_noise

    @program_noise.setter
    def program_noise(self, policy: str) -> None:
        self.check_setting("program_noise", policy)
        self._program_noise = policy

    @property
    def input_mode(self) -> str:
        """How inputs reach the rows (``kernel.INPUT_MODES``): "dac" (the spec's DAC), "spikes" (0 / 1 inputs in
        one binary pass), "auto" (spikes when a forward's input is all 0 / 1, else the DAC)."""
        return self.tile.input_mode

    @input_mode.setter
    def input_mode(self, mode: str) -> None:
        if mode not in INPUT_MODES:
            raise InputError(
                f"{self.layer_name}: input_mode must be one of {', '.join(INPUT_MODES)}, got {short_repr(mode)}"
            )
        self.tile.input_mode = mode

    @property
    def weight_range(self) -> str:
        """``dynamic``: the programmed range follows the weights at each programming (nothing
        clips); ``fixed``: the range of the current programming is frozen, weights beyond it clip
        (and get no straight-through gradient)."""
        return self._weight_range

    @weight_range.setter
    def weight_range(self, policy: str) -> None:
        self.check_setting("weight_range", policy)
        self._weight_range = policy
        self.tile.fixed_scale = policy == "fixed"

    def new_epoch(self) -> None:
        """With ``program_noise='per_epoch'``: program the next programming-noise sample."""
        if self._program_noise == "per_epoch":
            self._program(next_sample=True)

    # ---- the chip ----------------------------------------------------------------------------
    def _program(self, next_sample: bool) -> None:
        self.tile.program(self.weight, next_sample=next_sample)
        self.programmed_weight.copy_(self.weight.detach())
        self._stale = False

    def _sync_chip(self) -> None:
        """Reprogram when the weights differ from those the chip holds (an optimizer step, a load
        of bare weights, an edit): with ``program_noise='per_step'`` each such reprogramming draws
        the next programming-noise sample, as writing the new weights to a chip would; reads of an
        unchanged chip never resample it, in any mode."""
        if self._stale or not same_values(self.weight.detach(), self.programmed_weight):
            self._program(next_sample=self._program_noise == "per_step" and not self._stale)

    def matrix_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight in the shape the layout's ideal product uses."""
        return weight

    @property
    def coding(self):
        return self.tile.coding

    @property
    def w_scale(self) -> torch.Tensor:
        return self.tile.w_scale

    @property
    def input_range(self) -> torch.Tensor:
        return self.tile.input_range

    @property
    def input_signed(self) -> torch.Tensor:
        return self.tile.input_signed

    @property
    def adc_full_scale(self) -> torch.Tensor:
        return self.tile.adc_full_scale

    @property
    def t_inference_s(self) -> float:
        """Seconds after programming at which the chip is read (``set_time`` changes it)."""
        return self.tile.t_inference_s

    def set_time(self, t_inference_s: float) -> None:
        """Re-read the programmed chip at ``t_inference_s`` seconds after programming (drift and
        time-dependent 1/f noise). Programmed values and drift exponents are kept, not resampled."""
        self.tile.set_time(t_inference_s)

    def register_stage_hook(self, stage: str, hook):
        """Call ``hook(tile, value, info)`` at a datapath stage (``kernel.STAGES``) of every forward;
        it may return a replacement value. Returns a handle whose ``remove()`` detaches it."""
        return self.tile.register_stage_hook(stage, hook)

    # ---- forward -----------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def _to_product(self, x: torch.Tensor) -> torch.Tensor:
        """The input in the form the layout's product reads (differentiable)."""
        return self.layout.prepare(x)

    def _from_product(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.is_complex():
            raise InputError(
                f"{self.layer_name}: expected a real tensor, got "
                f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}"
            )
        self._check_input(x)
        xp = self._to_product(x.to(torch.float64 if x.dtype == torch.float64 else torch.float32))
        params = (self.weight,) if self.bias is None else (self.weight, self.bias)
        grad = torch.is_grad_enabled() and (xp.requires_grad or any(p.requires_grad for p in params))
        self._sync_chip()
        if grad:
            y = ChipProduct.apply(xp, self.weight, self.bias, self)
        else:
            with torch.no_grad():
                y = run(self.tile, self.layout, xp, self.bias)[0]
        y = self._from_product(y, x)
        return y.to(x.dtype) if x.is_floating_point() else y

    # ---- saved state -------------------------------------------------------------------------
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self._sync_chip()  # the saved chip holds the saved weights (e.g. right after an optimizer step)
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._loaded_chip = prefix + "tile.g_programmed" in state_dict
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _apply(self, fn, recurse=True):
        """Moves between devices apply; dtype casts (``.double()``, ``.half()``) do not: the weights
        the chip is programmed from stay float32 and ``forward`` returns the dtype of its input."""
        return super()._apply(keep_dtypes(fn), recurse)

    # ---- calibration -------------------------------------------------------------------------
    def begin_calibration(self, stage: str) -> None:
        """Observe the input (``stage='input'``) or ADC (``'adc'``, the converter bypassed) stage
        until ``end_calibration``: every value seen is counted (``MagnitudeHistogram``), per ADC range
        (slice, or input bit and slice) for the ADC stage."""
        self.tile.calibrating = stage
        ranges = 1 if stage == "input" else self.tile.adc_full_scale.numel()
        self._calib_data = {"hist": MagnitudeHistogram(ranges), "min": math.inf}
        observer = self._observe_input if stage == "input" else self._observe_adc
        self._calib_handle = self.tile.register_stage_hook(stage, observer)

    def _observe_input(self, tile, value, info) -> None:
        self._calib_data["hist"].add(value.reshape(1, -1))
        self._calib_data["min"] = min(self._calib_data["min"], float(value.min()))

    def _observe_adc(self, tile, value, info) -> None:
        if info.step is not None:  # not bypassed: nothing analog to observe
            return
        s = self.mapping.slices
        if self.spec.periphery.adc_range_per_input_bit:  # ranges (pass, slice): this chunk's passes' rows
            per_range = value.movedim((info.dims.index("P"), info.dims.index("S")), (0, 1))
            self._calib_data["hist"].add(per_range.reshape(per_range.shape[0] * s, -1), first=info.first_pass * s)
        else:
            self._calib_data["hist"].add(value.movedim(info.dims.index("S"), 0).reshape(s, -1))

    def end_calibration(self, percentile: float) -> None:
        """Set the observed stage's range to the ``percentile`` of the observed magnitudes (ADC ranges no
        read reached stay uncalibrated)."""
        tile, data = self.tile, self._calib_data
        stage = tile.calibrating
        self.cancel_calibration()
        if not data or not bool((data["hist"].total > 0).any()):
            return
        full = data["hist"].quantile(percentile / 100.0)
        if stage == "input":
            tile.input_range.fill_(float(full[0]))
            tile.input_signed.fill_(data["min"] < 0)
        elif stage == "adc":
            tile.adc_full_scale.copy_(full.view_as(tile.adc_full_scale).clamp(min=1e-9))

    def cancel_calibration(self) -> None:
        """Stop observing (a calibration interrupted by an error or Ctrl-C): the ranges stay as they were."""
        if self._calib_handle is not None:
            self._calib_handle.remove()
        self.tile.calibrating, self._calib_data, self._calib_handle = None, {}, None
        self.tile._consts = None

    def extra_repr(self) -> str:
        """One line for ``print(cim_model)``: the matrix, its arrays, how inputs are driven and outputs
        converted, whether the ranges are calibrated (``cimkit.sim.summary`` gives the same as a table)."""
        from .summary import calibrated

        m, p = self.mapping, self.spec.periphery
        groups = f" x {m.groups} groups" if m.groups > 1 else ""
        dac = "analog input" if p.input_bits is None else f"input {p.input_bits} b"
        adc = "ideal ADC" if p.adc_bits is None else f"ADC {p.adc_bits} b ({p.adc_range} range)"
        return (
            f"{self.layer_name}: {m.in_features}x{m.out_features}{groups}, {m.arrays} "
            f"arra{'ys' if m.arrays != 1 else 'y'} {m.rows}x{m.cols} ({m.utilization:.0%} used), {m.slices} "
            f"slice{'s' if m.slices != 1 else ''} x {m.bits_per_cell} b/cell{', differential' if m.differential else ''}, "
            f"{dac} x {m.input_passes} pass{'es' if m.input_passes != 1 else ''}, {adc}, "
            f"calibrated: {'yes' if calibrated(self) else 'no'}, bias={self.bias is not None}, "
            f"backward {self._backward_mode}"
        )


def _no_fused_paths(module: nn.Module, args: tuple) -> None:
    """A forward pre-hook that does nothing: its presence turns off fused fast paths of enclosing
    modules (they check for hooks) that would read ``weight`` and skip the crossbar."""


def _after_load(module: "CIMLayer", incompatible_keys) -> None:
    """After a load: a loaded chip is kept as it is (it matches the loaded weights); weights loaded
    without a chip are programmed at the next forward."""
    if module._loaded_chip:
        module.programmed_weight.copy_(module.weight.detach())
        module._stale = False
    else:
        module._stale = True
    module._loaded_chip = False


def magnitude_percentile(magnitudes: torch.Tensor, percentile: float) -> float:
    """The ``percentile`` (0 to 100) of the magnitudes of a tensor, counted from every value (within one bin of
    ``MagnitudeHistogram``, 0.27%): the range ``calibrate`` gives an input DAC."""
    hist = MagnitudeHistogram(1)
    hist.add(magnitudes.reshape(1, -1))
    return float(hist.quantile(percentile / 100.0)[0])


class CIMLinear(CIMLayer):
    """``nn.Linear`` on crossbars: the input dimension is cut into row tiles."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        spec: HardwareSpec,
        mapping: ArrayMapping,
        *,
        seed: int,
        name: str,
    ) -> None:
        super().__init__(weight, bias, spec, mapping, LinearLayout(mapping), seed=seed, name=name)

    @classmethod
    def from_module(cls, m: nn.Linear, spec: HardwareSpec, *, seed: int, name: str) -> "CIMLinear":
        return cls.from_weight(m.weight, m.bias, spec, seed=seed, name=name)

    @classmethod
    def from_weight(
        cls, weight: torch.Tensor, bias: torch.Tensor | None, spec: HardwareSpec, *, seed: int, name: str
    ) -> "CIMLinear":
        """A crossbar ``y = x @ weight.T + bias`` from a (out_features, in_features) weight."""
        if weight.dim() != 2:
            raise InputError(f"{name}: a linear weight must have 2 dims (out, in), got shape {tuple(weight.shape)}")
        mapping = map_matrix(weight.shape[1], weight.shape[0], spec, name=name)
        return cls(weight, bias, spec, mapping, seed=seed, name=name)

    @property
    def in_features(self) -> int:
        return self.mapping.in_features

    @property
    def out_features(self) -> int:
        return self.mapping.out_features

    def _check_input(self, x):
        if x.dim() == 0 or x.shape[-1] != self.mapping.in_features:
            raise InputError(
                f"{self.layer_name}: expected inputs with {self.mapping.in_features} features, "
                f"got shape {tuple(x.shape)}"
            )

    def _to_product(self, x):
        return x.reshape(-1, x.shape[-1])

    def _from_product(self, y, x):
        return y.reshape(*x.shape[:-1], -1)


class _CIMConvNd(CIMLayer):
    """Shared by the 1-d and 2-d convolutions (1-d runs as 2-d with a height of one)."""

    _input_dims = 4

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, spec: HardwareSpec, *, seed: int, name: str) -> None:
        kernel = pair(conv.kernel_size)
        kk = kernel[0] * kernel[1]
        mapping = map_matrix(
            conv.in_channels // conv.groups * kk,
            conv.out_channels // conv.groups,
            spec,
            kernel_size=kk,
            groups=conv.groups,
            name=name,
        )
        layout = conv_layout(conv, mapping, spec.array.conv_mapping == "kernel_aligned")
        self.in_channels, self.out_channels, self.groups = conv.in_channels, conv.out_channels, conv.groups
        self.kernel_size, self.stride, self.dilation = tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.dilation)
        super().__init__(conv.weight, conv.bias, spec, mapping, layout, seed=seed, name=name)

    @property
    def aligned(self) -> bool:
        return self.layout.aligned  # type: ignore[attr-defined]  # a conv layout's

    def matrix_weight(self, weight):
        return weight.reshape(self.out_channels, self.in_channels // self.groups, *self.layout.kernel)

    def _check_input(self, x):
        if x.dim() != self._input_dims or x.shape[1] != self.in_channels:
            raise InputError(
                f"{self.layer_name}: expected input of {self._input_dims} dims with "
                f"{self.in_channels} channels, got shape {tuple(x.shape)}"
            )

    def _to_product(self, x):
        return self.layout.prepare(self._as_2d(x))

    def _from_product(self, y, x):
        return self._from_2d(y)

    @classmethod
    def from_module(cls, m: nn.Conv1d | nn.Conv2d, spec: HardwareSpec, *, seed: int, name: str) -> "_CIMConvNd":
        return cls(m, spec, seed=seed, name=name)


class CIMConv2d(_CIMConvNd):
    """``nn.Conv2d`` on crossbars (grouped and depthwise included)."""

    _input_dims = 4

    def _as_2d(self, x):
        return x

    def _from_2d(self, y):
        return y


class CIMConv1d(_CIMConvNd):
    """``nn.Conv1d`` on crossbars, run as a 2-d convolution of height one."""

    _input_dims = 3

    def _as_2d(self, x):
        return x.unsqueeze(2)

    def _from_2d(self, y):
        return y.squeeze(2)
