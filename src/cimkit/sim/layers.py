"""CIM layers: ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` whose products run through crossbars.

Each layer programs its weights once (a chip sample: buffers), then every forward runs the datapath
DAC -> per-array partial sums -> read noise -> ADC -> shift-and-add -> digital corrections.
Partial sums come block by block (a row tile, or some input passes of one; all weight slices at once)
from exact int8 products on CPU or float32 ones, or from one dense convolution per row tile, and
each block is converted and accumulated while it is in cache. Read noise is sampled at the array
outputs from its exact variance sum_i x_i^2 var_ij, never by materializing a noisy conductance per
input vector.
"""

from __future__ import annotations

import math
import numbers
import warnings
import zlib

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..mapping import ArrayMapping, map_matrix
from ..spec import HardwareSpec
from . import program as prog
from .intmm import Int8Split, codes_to_int8, int_mm_available, int_product, split_int8
from .quant import adc_code_limits, aligned_adc_step, bit_planes, input_code_limits, quantize_input
from .rng import CounterNormal

#: dtype of the read-noise variance product: it needs ~3 significant digits, and bf16 runs ~4x
#: faster than float32 on CPUs with AVX512-BF16 (relative error of the noise std below 0.3%).
VARIANCE_DTYPE = torch.bfloat16
_CALIB_SAMPLES = 1 << 16
#: values per block of partial sums: large enough to amortize per-call costs, small enough (8 MB)
#: that a block's product, noise, conversion and shift-and-add run in the last-level cache
CHUNK = 1 << 21


def layer_seed(seed: int, name: str) -> int:
    """Seed of one layer's random effects, derived from the model seed and the layer's name."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**62)


class CIMLayer(nn.Module):
    """Base of the crossbar layers; subclasses say how partial sums are laid out."""

    #: dims of one chunk of partial sums: T row tile, P input pass, B batch, S slice, G group,
    #: N output, L output position. T, P and S are summed (shift-and-add); chunks are summed too.
    inner_dims: str = ""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, spec: HardwareSpec,
                 mapping: ArrayMapping, *, seed: int, name: str) -> None:
        super().__init__()
        if not torch.isfinite(weight).all():
            raise InputError(f"{name}: weight has non-finite values; cannot program it")
        self.spec, self.mapping, self.layer_name = spec, mapping, name
        self.seed = int(seed)
        gen = torch.Generator().manual_seed(self.seed)
        w3 = weight.detach().float().reshape(mapping.groups, mapping.out_features, mapping.in_features)
        self._state, w_scale, self.coding = prog.program(w3.cpu(), spec, mapping, gen)
        self._keep_state = self._state.nu is not None or spec.device.read_noise_model == "pcm"
        self.register_buffer("g_programmed", None)
        self.register_buffer("drift_exponent", None)
        self.register_buffer("w_scale", w_scale.reshape(-1).to(weight.device))
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.register_buffer("input_range", torch.tensor(float("nan")))
        self.register_buffer("input_signed", torch.tensor(False))
        self.register_buffer("adc_full_scale", torch.full((mapping.slices,), float("nan")))
        self._rng = CounterNormal(self.seed ^ 0x5EED)
        self._calibrating: str | None = None
        self._calib_data: dict[str, list[torch.Tensor]] = {}
        self._scratch: dict[str, torch.Tensor] = {}
        self._warned_uncalibrated = False
        self._consts: dict | None = None
        # the weights the chip was programmed from, in the module's own shape: models that read
        # ``layer.weight`` (nn.TransformerEncoderLayer does) keep working
        self.register_buffer("weight", weight.detach().float().clone())
        # the read time is part of the chip's saved state: loading reproduces the same reads
        self.register_buffer("inference_time_s", torch.tensor(float(spec.device.drift_t0_s), dtype=torch.float64))
        # fused paths such as nn.TransformerEncoderLayer's fast path read weights directly and would
        # bypass the crossbar; they stand aside for modules with forward hooks
        self.register_forward_pre_hook(_no_fused_paths)
        # the programmed chip, kept (as buffers, so it is saved) only when reading it depends on time
        self.register_buffer("g_programmed", self._state.g_prog.to(weight.device) if self._keep_state else None)
        self.register_buffer("drift_exponent", None if self._state.nu is None else self._state.nu.to(weight.device))
        self._load_effective(weight.device)
        self._state.g_prog, self._state.nu = torch.empty(0), None  # the buffers hold them from here on

    # ---- programming state -------------------------------------------------------------------
    def _load_effective(self, device: torch.device) -> None:
        state = prog.ProgrammedState(
            self._state.g_prog if self.g_programmed is None else self.g_programmed.cpu(),
            None if self.drift_exponent is None else self.drift_exponent.cpu(),
            self._state.g_unit_s, self._state.beta)
        signal, var, gain = prog.effective(state, self.spec, self.mapping, self.t_inference_s)
        self.drift_gain = gain
        self.register_buffer("signal_w", self._to_compute_layout(signal).to(device))
        self.register_buffer(
            "var_w", None if var is None else self._to_compute_layout(var).to(device, VARIANCE_DTYPE)
        )
        self._split_for_integers()

    def _split_for_integers(self) -> None:
        self._int_split: Int8Split | None = None
        if self._integer_inputs() and int_mm_available():
            self._int_split = split_int8(self.signal_w.cpu())

    def set_time(self, t_inference_s: float) -> None:
        """Re-read the programmed chip at ``t_inference_s`` seconds after programming (drift and
        time-dependent 1/f noise). Programmed values and drift exponents are kept, not resampled."""
        if (isinstance(t_inference_s, bool) or not isinstance(t_inference_s, numbers.Real)
                or not (math.isfinite(t_inference_s) and t_inference_s > 0)):
            raise InputError(f"{self.layer_name}: t_inference_s must be a positive number of seconds, got {t_inference_s}")
        self.inference_time_s.fill_(float(t_inference_s))
        if self._keep_state:
            self._load_effective(self.signal_w.device)
        self._consts = None

    def _integer_inputs(self) -> bool:
        """Whether every array input is an int8-representable code (bit planes, or DAC codes of at
        most 8 bits), so that partial sums can run on the exact integer path."""
        p = self.spec.periphery
        return p.input_bits is not None and (p.dac_mode == "bit_serial" or p.input_bits <= 8)

    # ---- layout hooks --------------------------------------------------------------------------
    def _to_compute_layout(self, m: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        """Input codes (or bit planes, passes stacked on the batch dim) laid out for the arrays."""
        raise NotImplementedError

    def _partial_sums(self, xl: torch.Tensor, xl2: torch.Tensor | None, passes: int, code_max: float):
        """Yield (partial sums, their read-noise variance or None, pass index or None when the chunk
        holds all passes) chunk by chunk; a chunk's dims are ``inner_dims``. ``code_max``: the largest
        input code. Chunks may be scratch views, valid until the next one."""
        raise NotImplementedError

    def _finalize(self, acc: torch.Tensor) -> torch.Tensor:
        """The reduced partial sums (chunk dims with T, P, S summed out) in the layer's output layout."""
        raise NotImplementedError

    def _row_sums(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x

    # ---- datapath --------------------------------------------------------------------------------
    def _constants(self, device: torch.device) -> dict:
        """Per-forward constants as Python values and device tensors, rebuilt only when calibration,
        the inference time or the device change (reading buffers every forward costs more than the
        arithmetic on small layers)."""
        c = self._consts
        if c is None or c["device"] != device:
            in_range = float(self.input_range)
            adc_ok = bool(torch.isfinite(self.adc_full_scale).all())
            c = self._consts = {
                "device": device,
                "input_range": in_range if math.isfinite(in_range) else None,
                "input_signed": bool(self.input_signed),
                "adc_full_scale": self.adc_full_scale.clamp(min=1e-12).to(device) if adc_ok else None,
                "slice_weights": torch.tensor(self.coding.slice_weights, device=device),
                "steps": {},
            }
        return c

    @property
    def t_inference_s(self) -> float:
        """Seconds after programming at which the chip is read (``set_time`` changes it)."""
        return float(self.inference_time_s)

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._consts = None
        if self._keep_state:  # re-derive the effective arrays at the loaded read time
            self._load_effective(self.signal_w.device)
        else:
            self._split_for_integers()

    def _apply(self, fn, recurse=True):
        """Moves between devices apply; dtype casts (``.double()``, ``.half()``) do not: the chip's
        datapath has its own number formats, and ``forward`` returns the dtype of its input."""

        def same_dtype(t: torch.Tensor) -> torch.Tensor:
            out = fn(t)
            return out if out.dtype == t.dtype else t.to(out.device)

        out = super()._apply(same_dtype, recurse)
        self._consts = None
        self._split_for_integers()
        return out

    def _dac(self, x: torch.Tensor, x_min: float, x_max: float) -> tuple[torch.Tensor, float, bool]:
        """Input codes, the input scale (value per code) and whether codes are signed."""
        bits = self.spec.periphery.input_bits
        consts = self._constants(x.device)
        if self._calibrating == "input":
            self._record("input", x.detach().abs().flatten())
            self._record("input_min", torch.tensor([x_min]))
        calibrated = consts["input_range"] is not None and self._calibrating != "input"
        signed = consts["input_signed"] if calibrated else x_min < 0
        if bits is None:
            return x, 1.0, signed
        top = input_code_limits(bits, signed)[1]
        x_range = consts["input_range"] if calibrated else max(-x_min, x_max)
        scale = x_range / top if x_range > 0 else 1.0
        return quantize_input(x, bits, scale, signed), scale, signed

    def _adc_steps(self, signed: bool, code_max: float) -> torch.Tensor | None:
        p = self.spec.periphery
        if p.adc_bits is None or self._calibrating is not None:
            return None
        consts = self._constants(self.signal_w.device)
        key = (signed, code_max)
        if key in consts["steps"]:
            return consts["steps"][key]
        top = adc_code_limits(p.adc_bits, signed)[1]
        if p.adc_range == "calibrated":
            if consts["adc_full_scale"] is not None:
                steps = consts["steps"][key] = consts["adc_full_scale"] / top
                return steps
            if not self._warned_uncalibrated:
                warnings.warn(
                    f"{self.layer_name}: periphery.adc_range is 'calibrated' but cimkit.calibrate() has not "
                    "been run; using the fixed full-scale range", stacklevel=3)
                self._warned_uncalibrated = True
        level_max = self.coding.top_level + (0.0 if self.mapping.differential else self._state.beta)
        full_scale = self.mapping.rows * level_max * code_max
        step = aligned_adc_step(full_scale, p.adc_bits, signed)
        steps = torch.full((self.mapping.slices,), step, device=self.signal_w.device)
        if p.adc_range == "fixed" and p.input_bits is not None:  # analog inputs: code_max varies per batch
            consts["steps"][key] = steps
        return steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.is_complex():
            raise InputError(f"{self.layer_name}: expected a real tensor, got "
                             f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
        with torch.no_grad():
            y = self._forward(self._prepare(x.float()))
        return y.to(x.dtype) if x.is_floating_point() else y

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.spec.periphery
        x_min, x_max = (float(v) for v in torch.aminmax(x))  # NaN and inf propagate to these
        if not (math.isfinite(x_min) and math.isfinite(x_max)):
            raise InputError(f"{self.layer_name}: input has non-finite values (NaN or inf)")
        codes, in_scale, signed = self._dac(x, x_min, x_max)
        if p.dac_mode == "bit_serial" and p.input_bits is not None:
            planes, plane_w = bit_planes(codes, p.input_bits, signed)
            xin, passes, binary, code_max = planes.flatten(0, 1), p.input_bits, True, 1.0
        else:
            xin, passes, binary, plane_w = codes, 1, False, [1.0]
            code_max = float(input_code_limits(p.input_bits, signed)[1]) if p.input_bits else max(-x_min, x_max)
        xl = self._layout(xin)
        # elementwise squares commute with the layout's moves and pads: square the laid-out input
        xl2 = None if self.var_w is None else (xl if binary else xl * xl).to(VARIANCE_DTYPE)

        adc_signed = self.mapping.differential or (signed and passes == 1)
        steps = self._adc_steps(adc_signed, code_max)
        inner = self.inner_dims
        slice_f = self._constants(x.device)["slice_weights"]
        if steps is not None:
            lo, hi = adc_code_limits(p.adc_bits, adc_signed)
            inv_steps = _bcast(1.0 / steps, inner, "S")
            slice_f = slice_f * steps
        pass_f = torch.tensor(plane_w, device=x.device)
        inner_f = _bcast(slice_f, inner, "S")
        if "P" in inner:
            inner_f = inner_f * _bcast(pass_f, inner, "P")
        reduce = tuple(i for i, d in enumerate(inner) if d in "TPS")
        acc = None
        # chunk by chunk (arrays and passes), so that noise, conversion and the weighted sum of each
        # run in cache on reused buffers
        for c, var, pass_idx in self._partial_sums(xl, xl2, passes, code_max):
            if var is not None:
                noise = self._buffer("noise", c.shape, c.device, torch.float32)
                std = self._buffer("std", c.shape, c.device, torch.float32)
                self._rng.sample(c.shape, out=noise)
                c.addcmul_(noise, torch.sqrt(var, out=std))
            if self._calibrating == "adc":
                per_slice = c.movedim(inner.index("S"), 0).reshape(self.mapping.slices, -1)
                self._record("adc", _subsample(per_slice.abs(), dim=1))
            if steps is not None:
                c.mul_(inv_steps).round_().clamp_(lo, hi)
            f = inner_f if pass_idx is None else inner_f * pass_f[pass_idx]
            if all(c.shape[d] == 1 for d in reduce):  # nothing to sum inside: accumulate c * f in one pass
                c, f = c.squeeze(reduce), f.squeeze(reduce)
                acc = c * f if acc is None else acc.addcmul_(c, f)
            else:
                part = c.mul_(f).sum(reduce)
                acc = part if acc is None else acc.add_(part)
        y = self._finalize(acc)
        if self.drift_gain != 1.0:
            y = y * self.drift_gain
        if not self.mapping.differential:
            offset = self.coding.offset_code + self._state.beta * sum(self.coding.slice_weights)
            y = y - offset * self._row_sums(codes)
        y = y * (in_scale * self._out_view(self.w_scale))
        if self.bias is not None:
            y = y + self._out_view(self.bias)
        return y

    def _buffer(self, name: str, shape, device, dtype) -> torch.Tensor:
        """A scratch tensor reused across forwards (fresh large allocations page-fault on CPU)."""
        shape = tuple(shape)
        buf = self._scratch.get(name)
        if buf is None or tuple(buf.shape) != shape or buf.device != device or buf.dtype != dtype:
            buf = self._scratch[name] = torch.empty(shape, device=device, dtype=dtype)
        return buf

    def _out_view(self, per_channel: torch.Tensor) -> torch.Tensor:
        return per_channel

    # ---- calibration -----------------------------------------------------------------------------
    def _record(self, key: str, values: torch.Tensor) -> None:
        self._calib_data.setdefault(key, []).append(values.detach().float().cpu())

    def begin_calibration(self, stage: str) -> None:
        self._calibrating = stage
        self._calib_data = {}

    def end_calibration(self, percentile: float) -> None:
        q = percentile / 100.0
        stage, data = self._calibrating, self._calib_data
        self._calibrating, self._calib_data = None, {}
        self._consts = None
        if stage == "input" and "input" in data:
            samples = _subsample(torch.cat(data["input"]), dim=0)
            self.input_range.fill_(float(torch.quantile(samples, q)))
            self.input_signed.fill_(bool(torch.cat(data["input_min"]).min() < 0))
        elif stage == "adc" and "adc" in data:
            samples = torch.cat(data["adc"], dim=1)
            full = torch.quantile(_subsample(samples, dim=1), q, dim=1)
            self.adc_full_scale.copy_(full.clamp(min=1e-9))

    def extra_repr(self) -> str:
        m = self.mapping
        return (f"{self.layer_name}: {m.in_features}x{m.out_features} (groups {m.groups}) on {m.arrays} arrays "
                f"{m.rows}x{m.cols}, {m.slices} slice(s), {m.input_passes} pass(es), "
                f"utilization {m.utilization:.0%}")


def _no_fused_paths(module: nn.Module, args: tuple) -> None:
    """A forward pre-hook that does nothing: its presence turns off fused fast paths of enclosing
    modules (they check for hooks) that would read ``weight`` and skip the crossbar."""


def _bcast(values: torch.Tensor, dims: str, dim: str) -> torch.Tensor:
    """``values`` along ``dim`` of a tensor whose dims are named by ``dims``, broadcastable."""
    shape = [1] * len(dims)
    shape[dims.index(dim)] = -1
    return values.view(shape)


def _subsample(values: torch.Tensor, dim: int) -> torch.Tensor:
    n = values.shape[dim]
    if n <= _CALIB_SAMPLES:
        return values
    # integer arithmetic: a float32 linspace rounds indices past 2**24 out of bounds
    idx = torch.arange(_CALIB_SAMPLES, device=values.device, dtype=torch.int64) * (n - 1) // (_CALIB_SAMPLES - 1)
    return values.index_select(dim, idx)


class CIMLinear(CIMLayer):
    """``nn.Linear`` on crossbars: the input dimension is cut into row tiles, one bmm for all."""

    inner_dims = "BSN"

    @classmethod
    def from_module(cls, m: nn.Linear, spec: HardwareSpec, *, seed: int, name: str) -> "CIMLinear":
        return cls.from_weight(m.weight, m.bias, spec, seed=seed, name=name)

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None, spec: HardwareSpec, *, seed: int,
                    name: str) -> "CIMLinear":
        """A crossbar ``y = x @ weight.T + bias`` from a (out_features, in_features) weight."""
        if weight.dim() != 2:
            raise InputError(f"{name}: a linear weight must have 2 dims (out, in), got shape {tuple(weight.shape)}")
        mapping = map_matrix(weight.shape[1], weight.shape[0], spec, name=name)
        return cls(weight, bias, spec, mapping, seed=seed, name=name)

    def _to_compute_layout(self, m: torch.Tensor) -> torch.Tensor:
        g, t, rp, s, n = m.shape
        return m.reshape(t, rp, s * n).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.mapping.in_features:
            raise InputError(f"{self.layer_name}: expected inputs with {self.mapping.in_features} features, "
                             f"got shape {tuple(x.shape)}")
        lead = x.shape[:-1]
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)

    def _layout(self, x):
        m = self.mapping
        pad = m.row_tiles * m.rows_per_tile - x.shape[1]
        if pad:
            x = F.pad(x, (0, pad))
        return x.view(x.shape[0], m.row_tiles, m.rows_per_tile).transpose(0, 1).contiguous()  # (T, PB, Rp)

    def _partial_sums(self, xl, xl2, passes, code_max):
        m = self.mapping
        t, pb, _ = xl.shape
        b, cols = pb // passes, self.signal_w.shape[-1]
        split = self._int_split if xl.device.type == "cpu" else None
        x8 = None if split is None else codes_to_int8(xl, code_max)
        per = max(1, CHUNK // (b * cols))  # input passes per block: the block's products stay in cache
        for i in range(t):
            for p0 in range(0, passes, per):
                k = min(per, passes - p0)
                rows = slice(p0 * b, (p0 + k) * b)
                out = self._buffer("signal", (k * b, cols), xl.device, torch.float32)
                if x8 is not None:
                    scratch = self._buffer("int32", (k * b, cols), xl.device, torch.int32)
                    ps = int_product(x8[0][i, rows], x8[1], split, i, out, scratch)
                else:
                    ps = torch.mm(xl[i, rows], self.signal_w[i], out=out)
                ps = ps.view(k, b, m.slices, m.out_features)
                var = None
                if xl2 is not None:
                    var = torch.mm(xl2[i, rows], self.var_w[i],
                                   out=self._buffer("variance", (k * b, cols), xl.device, VARIANCE_DTYPE))
                    var = var.view(ps.shape)
                for j in range(k):
                    yield ps[j], None if var is None else var[j], p0 + j

    def _finalize(self, acc):
        return acc

    def _row_sums(self, codes):
        return codes.sum(-1, keepdim=True)


class _CIMConvNd(CIMLayer):
    """Shared by the 1-d and 2-d convolutions (1-d runs as 2-d with a height of one)."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, spec: HardwareSpec, *, seed: int, name: str) -> None:
        kernel = _pair(conv.kernel_size)
        self.kernel, self.stride = kernel, _pair(conv.stride)
        self.dilation = _pair(conv.dilation)
        self.groups = conv.groups
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.pre_pad, self.padding_mode = _explicit_padding(conv, kernel, self.dilation)
        kk = kernel[0] * kernel[1]
        mapping = map_matrix(conv.in_channels // conv.groups * kk, conv.out_channels // conv.groups, spec,
                             kernel_size=kk, groups=conv.groups, name=name)
        self.aligned = spec.array.conv_mapping == "kernel_aligned" and kk <= mapping.rows
        super().__init__(conv.weight, conv.bias, spec, mapping, seed=seed, name=name)
        self.register_buffer("ones_w", torch.ones(conv.groups, conv.in_channels // conv.groups, *kernel))
        self.inner_dims = "BGSNL" if self.aligned else "GPBLSN"

    def _prepare(self, x):
        if x.dim() != self._input_dims or x.shape[1] != self.in_channels:
            raise InputError(f"{self.layer_name}: expected input of {self._input_dims} dims with "
                             f"{self.in_channels} channels, got shape {tuple(x.shape)}")
        x = self._as_2d(x)
        if any(self.pre_pad):
            x = F.pad(x, self.pre_pad, mode=self.padding_mode)
        return x

    def _to_compute_layout(self, m):
        g, t, rp, s, n = m.shape
        mp = self.mapping
        if self.aligned:  # (T, G*S*N, channels per array, kh, kw): one dense convolution per row tile
            cpa = rp // mp.kernel_size
            m = m.reshape(g, t, cpa, mp.kernel_size, s, n).permute(1, 0, 4, 5, 2, 3)
            return m.reshape(t, g * s * n, cpa, *self.kernel).contiguous()
        return m.transpose(0, 1).reshape(t * g, rp, s * n).contiguous()

    def _layout(self, x):
        mp = self.mapping
        pb, c, h, wd = x.shape
        g, t = mp.groups, mp.row_tiles
        if self.aligned:  # (PB, G, C/G, H, W): tile i reads channels [i*cpa, (i+1)*cpa) of each group
            return x.view(pb, g, c // g, h, wd)
        cols = F.unfold(x, self.kernel, dilation=self.dilation, stride=self.stride)  # (pb, c*kk, L)
        self._out_hw = _conv_out_hw((h, wd), self.kernel, self.stride, self.dilation)
        l = cols.shape[-1]
        cols = cols.view(pb, g, mp.in_features, l)
        pad = t * mp.rows_per_tile - mp.in_features
        if pad:
            cols = F.pad(cols, (0, 0, 0, pad))
        return cols.view(pb, g, t, mp.rows_per_tile, l).permute(2, 1, 0, 4, 3).reshape(t * g, pb * l, mp.rows_per_tile)

    def _partial_sums(self, xl, xl2, passes, code_max):
        mp = self.mapping
        g, t, s, n = mp.groups, mp.row_tiles, mp.slices, mp.out_features
        if self.aligned:
            pb = xl.shape[0]
            cpa = mp.rows_per_tile // mp.kernel_size
            for i in range(t):
                outs = []
                for inp, w in ((xl, self.signal_w), (xl2, self.var_w)):
                    if inp is None:
                        outs.append(None)
                        continue
                    first, channels = i * cpa, min(cpa, inp.shape[2] - i * cpa)
                    tile_in = inp if t == 1 else inp[:, :, first:first + channels]
                    y = F.conv2d(tile_in.reshape(pb, -1, *inp.shape[-2:]), w[i][:, :channels], stride=self.stride,
                                 dilation=self.dilation, groups=g)
                    self._out_hw = y.shape[-2:]
                    outs.append(y.view(passes, pb // passes, g, s, n, -1))
                for p in range(passes):
                    yield outs[0][p], None if outs[1] is None else outs[1][p], p
            return
        tg, rows_l, _ = xl.shape
        shape = (tg, rows_l, self.signal_w.shape[-1])
        ps = torch.bmm(xl, self.signal_w, out=self._buffer("signal", shape, xl.device, torch.float32))
        ps = ps.view(t, g, passes, rows_l // passes // self._l(), self._l(), s, n)
        var = None
        if xl2 is not None:
            var = torch.bmm(xl2, self.var_w, out=self._buffer("variance", shape, xl.device, VARIANCE_DTYPE))
            var = var.view(ps.shape)
        for i in range(t):
            yield ps[i], None if var is None else var[i], None

    def _l(self) -> int:
        return self._out_hw[0] * self._out_hw[1]

    def _finalize(self, acc):
        if not self.aligned:  # (G, B, L, N) -> (B, G, N, L)
            acc = acc.permute(1, 0, 3, 2)
        return self._from_2d(acc.reshape(acc.shape[0], self.out_channels, *self._out_hw))

    def _row_sums(self, codes):
        s = F.conv2d(codes, self.ones_w, stride=self.stride, dilation=self.dilation, groups=self.groups)
        b, g, h, w = s.shape
        s = s.unsqueeze(2).expand(b, g, self.out_channels // g, h, w).reshape(b, self.out_channels, h, w)
        return self._from_2d(s)

    def _out_view(self, per_channel):
        return per_channel.view(-1, *([1] * (self._input_dims - 2)))

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


def _pair(v: tuple[int, ...]) -> tuple[int, int]:
    """A convolution parameter as (height, width); a 1-d convolution has height one."""
    v = tuple(v)
    return (1, v[0]) if len(v) == 1 else (v[0], v[1])


def _conv_out_hw(hw, kernel, stride, dilation):
    return tuple((hw[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(2))


def _explicit_padding(conv, kernel, dilation) -> tuple[tuple[int, int, int, int], str]:
    """Padding as an F.pad tuple (left, right, top, bottom) applied before the array product."""
    pad = conv.padding
    if isinstance(pad, str):
        if pad == "valid":
            pads = [(0, 0), (0, 0)]
        else:  # 'same' (stride 1): PyTorch puts the odd extra element on the right/bottom
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
    else:
        ph, pw = (0, pad[0]) if len(pad) == 1 else pad
        pads = [(ph, ph), (pw, pw)]
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    return (pads[1][0], pads[1][1], pads[0][0], pads[0][1]), mode
