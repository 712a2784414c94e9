"""The programmed chip of one layer: what its cells hold, how it is read, and how it is updated.

A ``CrossbarTile`` holds the state a real chip would: the programmed conductances of every cell
(level units, see ``program``), their drift exponents, which cells are stuck, the digital weight
scale, the time at which it is read, the position of its read-noise stream, and its periphery's
calibrated DAC and ADC ranges. That is its ``state_dict``, so a saved model is the chip: loading it
anywhere reproduces the same reads bit for bit. The effective matrices at the read time (drift,
IR drop, read-noise variances) are derived caches, rebuilt on load and never saved.

The tile's own operations are those of a matrix on crossbars: ``read`` (``x W^T``),
``read_transposed`` (``d W``, driving the columns and sensing the rows), ``update`` (an
outer-product update of the conductances) and ``get_weights`` (what the chip holds, in weight
units). Layers (``CIMLinear``, ``CIMConv2d``, ...) add a layout around it.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections import OrderedDict

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..errors import InputError, short_repr
from ..io import dict_differences
from ..mapping import ArrayMapping, ceil_div
from ..spec import HardwareSpec
from ..spec.update import UpdateDevice
from . import program as prog
from . import quant
from .intmm import bf16_is_fast, int8_is_fast, split_int8
from .kernel import STAGES, dac, drive, run
from .layout import Arrays, Layout, LinearLayout
from .rng import CounterNormal
from .update import WriteCounts, apply_pulses, count_writes, pulses_for

#: update models a tile names by a string (besides these, an ``UpdateDevice`` gives a pulse-based model)
UPDATE_MODELS = ("ideal",)
_PROGRAM_SALT = 0x9E0C4A11
_WRITE_SALT = 0x3C79AC49
_READ_SALT = 0x5EED


def variance_dtype() -> torch.dtype:
    """dtype of the read-noise variance product: it needs ~3 significant digits, so bf16 where the
    CPU multiplies bf16 natively (4x faster than float32, noise std within 0.3%), float32 elsewhere."""
    return torch.bfloat16 if bf16_is_fast() else torch.float32


def spec_fingerprint(spec: HardwareSpec) -> dict:
    """The parts of a spec that decide what a chip computes (not its name, description or the
    cost-only technology and chip sections): two tiles with equal fingerprints hold the same kind
    of chip."""
    d = spec.model_dump(mode="json")
    return {k: d[k] for k in ("weight_bits", "weight_scale", "device", "array", "periphery")}


class CrossbarTile(nn.Module):
    """One layer's programmed crossbars (see the module docstring). ``seed`` fixes every random
    effect: stuck cells (drawn once: a defect of the chip), the programming noise of each
    programming (sample ``program_index`` of a counter-based stream) and the read noise."""

    # buffers (registered in __init__)
    g_programmed: torch.Tensor
    drift_exponent: torch.Tensor | None
    stuck: torch.Tensor | None
    w_scale: torch.Tensor
    inference_time_s: torch.Tensor
    program_index: torch.Tensor
    write_count: torch.Tensor
    rng_state: torch.Tensor
    input_range: torch.Tensor
    input_signed: torch.Tensor
    adc_full_scale: torch.Tensor
    spec_json: torch.Tensor

    def __init__(self, spec: HardwareSpec, mapping: ArrayMapping, *, seed: int, name: str) -> None:
        super().__init__()
        self.spec, self.mapping, self.name = spec, mapping, name
        self.seed = int(seed)
        self.coding = prog.level_coding(spec, mapping.slices)
        self.g_unit_s, self.beta = prog.conductance_units(spec, self.coding)
        #: digital offset per unit of input code with offset mapping: O + beta * sum of slice weights
        self.offset_per_code = self.coding.offset_code + self.beta * sum(self.coding.slice_weights)
        self.update_model = "ideal"
        self.input_mode = "dac"  # kernel.INPUT_MODES: set through the layer's input_mode
        m = mapping
        shape = (2 if m.differential else 1, m.groups, m.row_tiles, m.rows_per_tile, m.slices, m.out_features)
        gen = torch.Generator().manual_seed(self.seed)
        self.register_buffer("g_programmed", torch.zeros(shape))
        self.register_buffer("drift_exponent", None)
        self.register_buffer("stuck", prog.draw_stuck_cells(shape, spec, gen))
        self.register_buffer("w_scale", torch.zeros(m.groups, m.out_features))
        self.register_buffer("inference_time_s", torch.tensor(float(spec.device.drift_t0_s), dtype=torch.float64))
        self.register_buffer("program_index", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("write_count", torch.tensor(0, dtype=torch.int64))  # pulse-based updates so far
        self.register_buffer("rng_state", torch.tensor([self.seed ^ _READ_SALT, 0], dtype=torch.int64))
        self.register_buffer("input_range", torch.tensor(float("nan")))
        self.register_buffer("input_signed", torch.tensor(False))
        # calibrated ADC full scales: per slice (S,), or per input bit plane and slice (P, S) with
        # periphery.adc_range_per_input_bit (P: the most planes an input drives; NaN: not calibrated)
        per_bit = spec.periphery.adc_range_per_input_bit
        self.register_buffer(
            "adc_full_scale",
            torch.full((spec.periphery.max_input_planes, m.slices) if per_bit else (m.slices,), float("nan")),
        )
        self.register_buffer("spec_json", _encode_json(spec_fingerprint(spec)))
        self.rng = CounterNormal(self.seed ^ _READ_SALT)
        self._program_stream = CounterNormal(self.seed ^ _PROGRAM_SALT)
        self._write_stream = CounterNormal(self.seed ^ _WRITE_SALT)  # cycle-to-cycle write noise
        self.fixed_scale = False
        self._matrix_layout = LinearLayout(mapping)  # how read() lays a (batch, K) input on the arrays
        self.calibrating: str | None = None
        self.stage_hooks: dict[str, OrderedDict] = {s: OrderedDict() for s in STAGES}
        self._scratch: dict[str, torch.Tensor] = {}
        self._arrays: dict = {}
        self._consts: dict | None = None
        self._warned_uncalibrated = False
        self.signal: torch.Tensor | None = None  # (G, T, Rp, S, N), derived
        self.variance: torch.Tensor | None = None
        self.drift_gain = 1.0

    # ---- programming -------------------------------------------------------------------------
    def program(self, weights: torch.Tensor, next_sample: bool = False) -> None:
        """Program ``weights`` (out_features x in_features per group, any layer shape that
        reshapes to (groups, N, K)) into the cells, with programming-noise sample
        ``program_index`` (advanced first with ``next_sample``). With a frozen weight range
        (``fixed_scale``) weights beyond it clip. Refused weights leave the chip as it was."""
        m = self.mapping
        if not isinstance(weights, torch.Tensor) or weights.numel() != m.groups * m.out_features * m.in_features:
            raise InputError(
                f"{self.name}: program() needs {m.groups * m.out_features * m.in_features} weights "
                f"({m.groups} group(s) of {m.out_features}x{m.in_features}), got "
                f"{tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__}"
            )
        w3 = weights.detach().to("cpu", torch.float32).reshape(m.groups, m.out_features, m.in_features)
        # finiteness is checked before any state is touched, on the channel ranges (NaN and inf
        # propagate to them) that a range following the weights needs anyway
        if self.fixed_scale:
            scale = self.w_scale.cpu()
            peaks = torch.stack(torch.aminmax(w3))
        else:
            scale = peaks = prog.weight_scale(w3, self.coding, self.spec.weight_scale == "per_channel")
        if not bool(torch.isfinite(peaks).all()):
            raise InputError(f"{self.name}: weight has non-finite values; cannot program it")
        if next_sample:
            self.program_index += 1
        stream = self._program_stream
        stream.draws = 2 * int(self.program_index)  # noise, then drift exponents: one sample per programming

        def normal(shape):  # into a reused buffer: fresh 8 MB allocations page-fault at every step
            return stream.sample(shape, out=self.scratch("program_noise", shape, torch.device("cpu"), torch.float32))

        stuck = None if self.stuck is None else self.stuck.cpu()
        cpu = self.g_programmed.device.type == "cpu"
        state, w_scale, _ = prog.program(
            w3,
            self.spec,
            m,
            normal,
            stuck,
            scale,
            out=self.g_programmed if cpu else None,
            work=self._workspace("program_"),
        )
        device = self.g_programmed.device
        if state.g_prog is not self.g_programmed:  # written in place on CPU; copied in place elsewhere
            self.g_programmed.copy_(state.g_prog)
        self.w_scale.copy_(w_scale)
        if state.nu is not None:
            if self.drift_exponent is None:
                self.drift_exponent = state.nu.to(device)
            else:
                self.drift_exponent.copy_(state.nu)
        self.rederive()

    def _workspace(self, prefix: str) -> prog.Workspace:
        cpu = torch.device("cpu")
        return lambda name, shape: self.scratch(prefix + name, shape, cpu, torch.float32)

    def get_weights(self) -> torch.Tensor:
        """What the chip holds, read back in weight units at the current read time: (groups, N, K)
        (drift, IR drop and stuck cells included; read noise not)."""
        if self.signal is None:
            self.rederive()
        assert self.signal is not None  # rederive() sets it
        m = self.mapping
        codes = torch.einsum("gtrsn,s->gntr", self.signal, self._slice_weights(self.signal.device))
        codes = codes.reshape(m.groups, m.out_features, -1)[..., : m.in_features] * self.drift_gain
        if not m.differential:
            codes = codes - self.offset_per_code
        return codes * self.w_scale.unsqueeze(-1)

    def _state(self, rows: slice | None = None) -> prog.ProgrammedState:
        g = self.g_programmed if rows is None else self.g_programmed[:, :, rows]
        nu = self.drift_exponent if rows is None or self.drift_exponent is None else self.drift_exponent[:, :, rows]
        return prog.ProgrammedState(g.cpu(), None if nu is None else nu.cpu(), self.g_unit_s, self.beta)

    def rederive(self, row_tiles: torch.Tensor | None = None) -> None:
        """Rebuild the effective matrices at the read time: all, or only the row tiles
        ``row_tiles`` (indices) when an update touched only those (without global drift
        compensation, whose gain depends on every array)."""
        device = self.g_programmed.device
        t_s = self.t_inference_s
        if (
            row_tiles is not None
            and self.signal is not None
            and not (self.spec.periphery.drift_compensation == "global" and self.drift_exponent is not None)
        ):  # partial
            for t in row_tiles.tolist():
                rows = slice(t, t + 1)
                sig, var, _ = prog.effective(self._state(rows), self.spec, self.mapping, t_s)
                self.signal[:, rows] = sig.to(device)
                if var is not None:
                    assert self.variance is not None  # same spec as the full derivation: it has variances too
                    self.variance[:, rows] = var.to(device)
        else:  # into reused buffers: the arrays derived from them are rebuilt below anyway
            sig, var, gain = prog.effective(self._state(), self.spec, self.mapping, t_s, self._workspace("derived_"))
            self.signal = sig.to(device)
            self.variance = None if var is None else var.to(device)
            self.drift_gain = gain
        self._arrays = {}
        self._consts = None

    def arrays(self, layout: Layout, dtype: torch.dtype, device: torch.device) -> Arrays:
        """The effective matrices in ``layout``'s compute form (cached until the chip changes)."""
        key = (layout.key, dtype, device)
        hit = self._arrays.get(key)
        if hit is not None:
            return hit
        if self.signal is None:
            self.rederive()
        assert self.signal is not None  # rederive() sets it
        signal = layout.compute_arrays(self.signal).to(device, dtype)
        var = None
        if self.variance is not None:
            var_dtype = variance_dtype() if dtype == torch.float32 and device.type == "cpu" else dtype
            var = layout.compute_arrays(self.variance).to(device, var_dtype)
        split = var_split = None
        if dtype == torch.float32 and device.type == "cpu" and self._integer_inputs() and int8_is_fast():
            split = split_int8(signal)
            if self.variance is not None:  # two terms: each cell within 1.6e-5 of the largest cell's variance
                var_split = split_int8(layout.compute_arrays(self.variance).to(device, torch.float32), max_terms=2)
        self._arrays[key] = out = Arrays(signal, var, split, var_split)
        return out

    def _integer_inputs(self) -> bool:
        """Whether every array input is an int8-representable code (bit planes, or DAC codes of at
        most 8 bits), so that partial sums can run on the exact integer path."""
        p = self.spec.periphery
        return p.input_bits is not None and (p.dac.bit_planes or p.input_bits <= 8)

    # ---- read time ---------------------------------------------------------------------------
    @property
    def t_inference_s(self) -> float:
        """Seconds after programming at which the chip is read (``set_time`` changes it)."""
        return float(self.inference_time_s)

    def set_time(self, t_inference_s: float) -> None:
        """Read the programmed chip at ``t_inference_s`` seconds after programming (drift and
        time-dependent 1/f noise). Programmed values and drift exponents are kept, not resampled."""
        if (
            isinstance(t_inference_s, bool)
            or not isinstance(t_inference_s, numbers.Real)
            or not (math.isfinite(t_inference_s) and t_inference_s > 0)
        ):
            raise InputError(f"{self.name}: t_inference_s must be a positive number of seconds, got {t_inference_s}")
        self.inference_time_s.fill_(float(t_inference_s))
        self.rederive()

    # ---- periphery constants -----------------------------------------------------------------
    def constants(self, device: torch.device) -> dict:
        """Per-forward constants as Python values and device tensors, rebuilt only when calibration,
        the chip or the device change (reading buffers every forward costs more than the
        arithmetic on small layers)."""
        c = self._consts
        if c is None or c["device"] != device:
            in_range = float(self.input_range)
            c = self._consts = {
                "device": device,
                "input_range": in_range if math.isfinite(in_range) else None,
                "input_signed": bool(self.input_signed),
                "adc_full_scale": self.adc_full_scale.clamp(min=1e-12).to(device),  # NaN where not calibrated
                "slice_weights": self._slice_weights(device),
                "steps": {},
            }
        return c

    def _slice_weights(self, device) -> torch.Tensor:
        return torch.tensor(self.coding.slice_weights, device=device)

    def adc_steps(self, signed: bool, code_max: float, device: torch.device, passes: int = 1) -> torch.Tensor | None:
        """ADC step (partial-sum units per code) per slice (S,), or per input pass and slice (passes, S) with
        calibrated per-input-bit ranges; None without conversion."""
        p = self.spec.periphery
        if p.adc_bits is None or self.calibrating is not None:
            return None
        consts = self.constants(device)
        key = (signed, code_max, passes)
        if key in consts["steps"]:
            return consts["steps"][key]
        top = quant.adc_code_limits(p.adc_bits, signed)[1]
        if p.adc_range == "calibrated":
            full = consts["adc_full_scale"]
            if p.adc_range_per_input_bit:
                full = full[:passes]
            if full.shape[0] > 0 and bool(torch.isfinite(full).all()):
                steps = consts["steps"][key] = full / top
                return steps
            if not self._warned_uncalibrated:
                warnings.warn(
                    f"{self.name}: periphery.adc_range is 'calibrated' but cimkit.calibrate() has not "
                    "been run; using the fixed full-scale range",
                    stacklevel=4,
                )
                self._warned_uncalibrated = True
        steps = torch.full(
            (self.mapping.slices,), self.fixed_adc_step(self.mapping.rows, signed, code_max), device=device
        )
        if p.adc_range == "fixed" and p.input_bits is not None:  # analog inputs: code_max varies per batch
            consts["steps"][key] = steps
        return steps

    def fixed_adc_step(self, rows: int, signed: bool, code_max: float) -> float:
        """The power-of-two step of an ADC whose range covers ``rows`` cells at their top level
        driven by the largest code."""
        bits = self.spec.periphery.adc_bits
        if bits is None:
            raise InputError(f"{self.name}: the spec has no ADC (periphery.adc_bits is None), so no ADC step")
        level_max = self.coding.top_level + (0.0 if self.mapping.differential else self.beta)
        return quant.aligned_adc_step(rows * level_max * code_max, bits, signed)

    def scratch(self, name: str, shape, device, dtype) -> torch.Tensor:
        """A scratch tensor reused across forwards (fresh large allocations page-fault on CPU)."""
        shape = tuple(shape)
        buf = self._scratch.get(name)
        if buf is None or tuple(buf.shape) != shape or buf.device != device or buf.dtype != dtype:
            buf = self._scratch[name] = torch.empty(shape, device=device, dtype=dtype)
        return buf

    # ---- stage hooks ---------------------------------------------------------------------------
    def register_stage_hook(self, stage: str, hook) -> RemovableHandle:
        """Call ``hook(tile, value, info)`` at ``stage`` of every read (see ``kernel`` for the stages
        and what each value is); it may return a replacement. Returns a handle with ``remove()``."""
        if stage not in STAGES:
            raise InputError(f"{self.name}: unknown datapath stage {stage!r}; the stages are {', '.join(STAGES)}")
        if not callable(hook):
            raise InputError(f"{self.name}: a stage hook must be callable, got {type(hook).__name__}")
        handle = RemovableHandle(self.stage_hooks[stage])
        self.stage_hooks[stage][handle.id] = hook
        return handle

    # ---- matrix operations ---------------------------------------------------------------------
    def read(self, x: torch.Tensor) -> torch.Tensor:
        """The chip's ``x @ W^T`` for inputs ``x`` (batch, in_features): DAC, array reads, read
        noise, ADC and shift-and-add as in a layer's forward. Dense (one group) tiles only."""
        m = self.mapping
        if m.groups != 1:
            raise InputError(
                f"{self.name}: read() takes one group; this tile holds {m.groups} (read it through its layer)"
            )
        x = _matrix(x, m.in_features, f"{self.name}: read()")
        with torch.no_grad():
            return run(self, self._matrix_layout, x.float() if x.dtype != torch.float64 else x)[0]

    def read_transposed(self, d: torch.Tensor) -> torch.Tensor:
        """The chip's ``d @ W`` for ``d`` (batch, out_features) or (batch, groups, out_features):
        the columns are driven with DAC codes of ``d`` (times the digital weight scale) and the rows
        sensed, one ADC conversion per row and column array and slice, then shift-and-add; read
        noise is sampled from the same per-cell variances. A ``calibrated`` ADC has no calibration
        data for gradients: it ranges to each read's largest partial sum per slice. Returns (batch, in_features) (or with the
        groups dim)."""
        m = self.mapping
        grouped = d.dim() == 3
        if not grouped:
            d = _matrix(d, m.out_features, f"{self.name}: read_transposed()").unsqueeze(1)
        elif tuple(d.shape[1:]) != (m.groups, m.out_features):
            raise InputError(
                f"{self.name}: read_transposed() needs (batch, {m.groups}, {m.out_features}), got {tuple(d.shape)}"
            )
        with torch.no_grad():
            out = self._read_transposed(d.float() if d.dtype != torch.float64 else d)
        return out if grouped else out.squeeze(1)

    def _read_transposed(self, d: torch.Tensor) -> torch.Tensor:
        m, p = self.mapping, self.spec.periphery
        if self.signal is None:
            self.rederive()
        assert self.signal is not None  # rederive() sets it
        dtype, device = d.dtype, d.device
        d = d * self.w_scale.to(device, dtype)  # per-output scales are applied digitally before the DAC
        b = d.shape[0]
        d_range = float(d.abs().max())
        codes, enc = dac(d, p.input_bits, d_range, signed=True)  # gradients: their own range
        planes, plane_w, binary, code_max = drive(codes, enc, p, max(d_range, 1e-30))
        scale = enc.scale
        # columns of one row block sit on `col_arrays` arrays; each array senses its own outputs
        per_array = m.outputs_per_array
        col_arrays = ceil_div(m.out_features, per_array)
        pad_n = col_arrays * per_array - m.out_features
        npass = planes.shape[0]

        k = m.in_features  # each row is its own output here: the padding rows of the last tile are left out

        def by_array(mat: torch.Tensor) -> torch.Tensor:  # (G, T, Rp, S, N) -> (G*C, n, K*S)
            g_, t_, r_, s_, _ = mat.shape
            mat = mat.reshape(g_, t_ * r_, s_, -1)[:, :k]
            mat = torch.nn.functional.pad(mat, (0, pad_n)).reshape(g_, k, s_, col_arrays, per_array)
            return mat.permute(0, 3, 4, 1, 2).reshape(g_ * col_arrays, per_array, k * s_)

        def on_columns(v: torch.Tensor) -> torch.Tensor:  # (P, B, G, N) -> (G*C, P*B, n)
            v = torch.nn.functional.pad(v, (0, pad_n)).reshape(npass * b, m.groups, col_arrays, per_array)
            return v.permute(1, 2, 0, 3).reshape(m.groups * col_arrays, npass * b, per_array)

        shape = (m.groups, col_arrays, npass, b, k, m.slices)
        ps = torch.bmm(on_columns(planes), by_array(self.signal.to(device, dtype))).view(shape)
        if self.variance is not None:
            sq = planes if binary else planes * planes
            var = torch.bmm(on_columns(sq), by_array(self.variance.to(device, dtype))).view(shape)
            ps = ps + self.rng.sample(shape, device).to(dtype) * var.sqrt()
        sw = self._slice_weights(device).to(dtype)
        if p.adc_bits is not None:
            step: torch.Tensor | float
            adc_signed = m.differential or (npass == 1)
            if p.adc_range == "calibrated":  # no calibration data for gradients: range to this read, per slice
                top = quant.adc_code_limits(p.adc_bits, adc_signed)[1]
                step = ps.abs().amax(dim=(0, 1, 2, 3, 4)).clamp(min=1e-12) / top
            else:
                step = self.fixed_adc_step(per_array, adc_signed, code_max)
            ps = quant.adc_(ps, 1.0 / step, p.adc_bits, adc_signed) * step
        pw = torch.tensor(plane_w, device=device, dtype=dtype)
        rows = torch.einsum("gcpbks,p,s->bgk", ps, pw, sw)
        if self.drift_gain != 1.0:
            rows = rows * self.drift_gain
        if not m.differential:
            rows = rows - self.offset_per_code * codes.sum(-1, keepdim=True)
        return rows * scale

    def update(self, x: torch.Tensor, d: torch.Tensor, lr: float) -> WriteCounts | None:
        """Outer-product update ``W <- W - lr * d^T x`` applied to the conductances in place
        (``apply_delta``). ``x``: (batch, in_features), ``d``: (batch, out_features)."""
        m = self.mapping
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr):
            raise InputError(f"{self.name}: update() lr must be a finite number, got {lr!r}")
        x = _matrix(x, m.in_features, f"{self.name}: update() x")
        d = _matrix(d, m.out_features, f"{self.name}: update() d")
        if x.shape[0] != d.shape[0]:
            raise InputError(f"{self.name}: update() x and d need the same batch, got {x.shape[0]} and {d.shape[0]}")
        dev = self.g_programmed.device
        return self.apply_delta(-float(lr) * (d.to(dev, torch.float32).t() @ x.to(dev, torch.float32)))

    def apply_delta(self, dw: torch.Tensor) -> WriteCounts | None:
        """Move the programmed weights by ``dw`` (out_features x in_features, weight units) in place,
        with the tile's ``update_model``: ``"ideal"`` moves every cell by exactly its share, within its
        conductance range; an ``UpdateDevice`` (``cimkit.spec.update``) turns each cell's share into whole
        write pulses along the device's nonlinear curves, with cycle-to-cycle noise from the tile's seeded
        write stream. A differential pair takes a rise by depressing its negative cell as far as G_min, then
        potentiating its positive cell with the rest (a fall the other way round). Returns the
        write events (``cimkit.sim.update.WriteCounts``) of a device model, None for the ideal one. Only the
        row tiles the update touched are re-derived."""
        m = self.mapping
        device = self.update_model
        if not isinstance(device, UpdateDevice) and device not in UPDATE_MODELS:
            raise InputError(
                f"{self.name}: update model {short_repr(device)} is unknown; give one of "
                f"{', '.join(UPDATE_MODELS)} or a cimkit.spec.update.UpdateDevice"
            )
        if m.groups != 1:
            raise InputError(f"{self.name}: update() takes one group; this tile holds {m.groups}")
        if m.slices != 1:
            raise InputError(
                f"{self.name}: update() needs one cell per weight; this tile spreads each weight "
                f"over {m.slices} slices (weight_bits {self.spec.weight_bits}, "
                f"bits_per_cell {self.spec.device.bits_per_cell})"
            )
        if not isinstance(dw, torch.Tensor) or tuple(dw.shape) != (m.out_features, m.in_features):
            raise InputError(
                f"{self.name}: apply_delta() needs a ({m.out_features}, {m.in_features}) tensor, got "
                f"{tuple(dw.shape) if isinstance(dw, torch.Tensor) else type(dw).__name__}"
            )
        if not bool(torch.isfinite(dw).all()):
            raise InputError(f"{self.name}: apply_delta() got non-finite weight changes")
        dw = dw.to(self.g_programmed.device, torch.float32)
        scale = self.w_scale[0].unsqueeze(-1)
        dcode = torch.where(scale > 0, dw / torch.where(scale > 0, scale, 1.0), 0.0)
        if self.drift_gain != 1.0:
            dcode = dcode / self.drift_gain
        pad = m.row_tiles * m.rows_per_tile - m.in_features
        dlev = torch.nn.functional.pad(dcode, (0, pad)).reshape(m.out_features, m.row_tiles, m.rows_per_tile)
        dlev = dlev.permute(1, 2, 0)  # (T, Rp, N)
        g = self.g_programmed
        before = g.clone()
        counts = None
        if isinstance(device, UpdateDevice):
            counts = self._pulse(dlev, device)
        else:
            self._move_ideal(dlev)
        if self.stuck is not None:
            top = self.beta + self.coding.top_level
            g.masked_fill_(self.stuck == 1, top).masked_fill_(self.stuck == 2, self.beta)
        changed = (g != before).movedim(2, 0).reshape(m.row_tiles, -1).any(dim=1)  # per row tile
        self.rederive(torch.nonzero(changed).flatten())
        return counts

    def _move_ideal(self, dlev: torch.Tensor) -> None:
        g = self.g_programmed
        top = self.beta + self.coding.top_level

        def move(cells: torch.Tensor, step: torch.Tensor) -> None:
            """Cells with a step move by it, up to the end of the range (a cell already beyond the
            range, from programming noise, is not pulled back against its step)."""
            moved = cells + step
            moved = torch.where(
                step > 0,
                torch.minimum(moved, torch.clamp(cells, min=top)),
                torch.maximum(moved, torch.clamp(cells, max=self.beta)),
            )
            cells.copy_(torch.where(step != 0, moved, cells))

        if self.mapping.differential:
            plus, minus = g[0, 0, :, :, 0], g[1, 0, :, :, 0]
            to_plus, to_minus = split_pair(dlev, (plus - self.beta).clamp(min=0), (minus - self.beta).clamp(min=0))
            move(minus, to_minus)
            move(plus, to_plus)
        else:
            move(g[0, 0, :, :, 0], dlev)

    def _pulse(self, dlev: torch.Tensor, device: UpdateDevice) -> WriteCounts:
        """Write pulses for level changes ``dlev`` (T, Rp, N) on the device's curves (see ``apply_delta``)."""
        g = self.g_programmed
        span = self.coding.top_level
        cells = g[:, 0, :, :, 0]  # (cell, T, Rp, N): level units, beta at G_min
        norm = ((cells - self.beta) / span).clamp(0.0, 1.0)
        change = dlev / span
        if self.mapping.differential:
            want = torch.stack(split_pair(change, norm[0], norm[1]))
        else:
            want = change.unsqueeze(0)
        pulses = pulses_for(want, device)
        self.write_count += 1
        self._write_stream.draws = int(self.write_count)
        noise = None
        if device.c2c_frac > 0:
            noise = self._write_stream.sample(tuple(norm.shape), g.device)
        new = apply_pulses(norm, pulses, device, noise)
        g_us = (self.beta + norm.double() * span) * self.g_unit_s * 1e6  # before the write
        counts = count_writes(pulses, g_us, self.mapping.outputs_per_array)
        written = pulses != 0
        cells.copy_(torch.where(written, self.beta + new * span, cells))
        return counts

    def weight_clip_mask(self, w: torch.Tensor) -> torch.Tensor | None:
        """Where a weight lies inside the programmed range (None when the range follows the
        weights and nothing clips)."""
        if not self.fixed_scale:
            return None
        limit = (self.w_scale.reshape(-1) * self.coding.max_weight_code).to(w.device, w.dtype)
        return (w.reshape(limit.shape[0], -1).abs() <= limit.unsqueeze(-1)).reshape(w.shape)

    # ---- saved state ---------------------------------------------------------------------------
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self.rng_state[0], self.rng_state[1] = self.rng.seed, self.rng.draws
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        key = prefix + "spec_json"
        if key in state_dict:
            mine, theirs = spec_fingerprint(self.spec), _decode_json(state_dict[key])
            if theirs is not None and theirs != mine:
                raise InputError(
                    f"{self.name}: the state dict was saved from a chip with a different spec; "
                    f"differs in {'; '.join(dict_differences(theirs, mine))} (saved -> this model)"
                )
        for name in ("g_programmed", "drift_exponent", "stuck", "w_scale", "adc_full_scale"):
            k = prefix + name
            mine = getattr(self, name)
            if k in state_dict and mine is not None and tuple(state_dict[k].shape) != tuple(mine.shape):
                raise InputError(
                    f"{self.name}: saved {name} has shape {tuple(state_dict[k].shape)}, this layer's "
                    f"is {tuple(mine.shape)} (a different layer shape or mapping)"
                )
            if k in state_dict and mine is None:  # present in the saved chip only (e.g. drift exponents)
                setattr(self, name, torch.empty_like(state_dict[k]))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if prefix + "write_count" in missing_keys:  # saved before pulse-based updates existed: none were made
            missing_keys.remove(prefix + "write_count")
            self.write_count.zero_()
        if prefix + "rng_state" in state_dict:  # a load without the chip's stream leaves it where it is
            self.rng.load_state_dict({"seed": int(self.rng_state[0]), "draws": int(self.rng_state[1])})
        self.rederive()

    def _apply(self, fn, recurse=True):
        """Moves between devices apply; dtype casts do not (the chip has its own number formats)."""
        out = super()._apply(keep_dtypes(fn), recurse)
        if self.signal is not None:
            dev = self.g_programmed.device
            self.signal = self.signal.to(dev)
            self.variance = None if self.variance is None else self.variance.to(dev)
        self._arrays, self._consts, self._scratch = {}, None, {}
        return out

    def extra_repr(self) -> str:
        m = self.mapping
        return (
            f"{m.groups}x{m.out_features}x{m.in_features} on {m.arrays} arrays {m.rows}x{m.cols}, {m.slices} slice(s)"
        )


def split_pair(
    change: torch.Tensor, plus_room: torch.Tensor, minus_room: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """How a differential pair takes a weight change: a rise lowers G- by as much of it as G- has above
    G_min (``minus_room``), then raises G+ by the rest; a fall lowers G+ first, then raises G-. Returns the
    changes of (G+, G-), in the units of ``change``."""
    rise, fall = change.clamp(min=0), (-change).clamp(min=0)
    from_minus, from_plus = torch.minimum(rise, minus_room), torch.minimum(fall, plus_room)
    return rise - from_minus - from_plus, fall - from_plus - from_minus


def keep_dtypes(fn):
    """``fn`` of ``Module._apply`` with its dtype casts dropped and its device moves kept."""

    def same_dtype(t: torch.Tensor) -> torch.Tensor:
        out = fn(t)
        return out if out.dtype == t.dtype else t.to(out.device)

    return same_dtype


def _matrix(x, features: int, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.is_complex() or x.dim() != 2 or x.shape[1] != features:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{what} needs a real tensor of shape (batch, {features}), got {got}")
    if not torch.isfinite(x).all():
        raise InputError(f"{what} has non-finite values (NaN or inf)")
    return x


def _encode_json(d: dict) -> torch.Tensor:
    return torch.tensor(list(json.dumps(d, sort_keys=True).encode()), dtype=torch.uint8)


def _decode_json(t: torch.Tensor) -> dict | None:
    try:
        return json.loads(bytes(t.to(torch.uint8).tolist()).decode())
    except (ValueError, UnicodeDecodeError):
        return None
