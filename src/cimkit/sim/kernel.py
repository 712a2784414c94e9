"""The crossbar datapath as named stages, and its autograd function.

One forward of a tile through a layout runs these stages, in order:

``input``       the layer's input value, before the DAC (calibration of input ranges observes it);
``encode``      DAC codes: integers (or the input itself without a DAC); same shape as ``input``;
``read``        one chunk of array partial sums, before noise (dims: ``info.dims``, see
                ``layout``; chunks repeat);
``noise``       the same chunk with read noise added;
``adc``         the chunk after the ADC, as integer codes (``info.step``: value per code, per
                slice); while ADC ranges are calibrated the converter is bypassed and this is
                the analog partial sum (ADC calibration observes it);
``accumulate``  shift-and-add of all blocks (slices, passes, row tiles), in the output layout,
                before the digital corrections;
``output``      the product after the digital corrections (offset, drift, scale, bias).

A stage hook ``hook(tile, value, info) -> Tensor | None`` sees each stage's value and may return a
replacement (same shape); returning None or the value itself changes nothing. Hooks cost nothing
when none is registered. Read noise is sampled at the array outputs from its exact variance
``sum_i x_i^2 var_ij``, never by materializing a noisy conductance per input vector.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..spec.model import PeripherySpec
from ..spec.units import DAC_MODES
from . import fused, quant
from .intmm import IntTerms
from .layout import Chunk, Layout, LinearLayout

STAGES = ("input", "encode", "read", "noise", "adc", "accumulate", "output")
BACKWARD_MODES = ("straight_through", "chip")


@dataclass
class StageInfo:
    """What a stage hook is told besides the value."""

    stage: str
    layer: str  # the tile's layer name
    dims: str = ""  # named dims of a chunk (read/noise/adc), see layout.Layout
    pass_index: int | None = None  # the input pass of a chunk (None: the chunk holds several passes)
    first_pass: int = 0  # the input pass of the chunk's first index along its P dim
    row_tile: int | None = None  # the row tile (array row block) whose partial sums a chunk holds
    first_row: int = 0  # the chunk's first index along its batch / position dim (B or M) within the block
    step: torch.Tensor | None = None  # ADC value per code, per slice (S,) or per pass and slice (P, S) (adc
    # stage); None: no conversion
    code_limits: tuple[int, int] | None = None  # the ADC's smallest and largest output code (adc stage; None: no
    # conversion); negative codes are two's complement


@dataclass
class Encoding:
    """How the DAC encoded one forward's input: value per code, signedness and code limits."""

    scale: float
    signed: bool
    bits: int | None

    def clip_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """Where the DAC passes ``x`` unclipped (straight-through gradients flow only there)."""
        if self.bits is None:
            return None
        lo, hi = quant.input_code_limits(self.bits, self.signed)
        return (x >= lo * self.scale) & (x <= hi * self.scale)

    def quantized(self, x: torch.Tensor) -> torch.Tensor:
        """The input values the chip saw (DAC codes times the scale)."""
        if self.bits is None:
            return x
        return quant.quantize_input(x, self.bits, self.scale, self.signed) * self.scale


def _hook(tile, stage: str, value: torch.Tensor, **info) -> torch.Tensor:
    for fn in tile.stage_hooks[stage].values():
        out = fn(tile, value, StageInfo(stage, tile.name, **info))
        if out is not None:
            if not isinstance(out, torch.Tensor) or out.shape != value.shape:
                raise InputError(
                    f"{tile.name}: a '{stage}' stage hook returned "
                    f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}; "
                    f"it must return None or a tensor of shape {tuple(value.shape)}"
                )
            value = out
    return value


_POOL = threading.local()


def chunk_scratch(name: str, shape, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A scratch tensor for one chunk's partial sums, valid until the next chunk: one buffer per name, device
    and dtype, shared by all layers (they read one after another) and reused across forwards (fresh large
    allocations page-fault on CPU), so memory does not grow with the number of layers. Per thread: models
    read in parallel threads never share one."""
    pool = getattr(_POOL, "buffers", None)
    if pool is None:
        pool = _POOL.buffers = {}
    n = math.prod(shape)
    key = (name, device, dtype)
    buf = pool.get(key)
    if buf is None or buf.numel() < n:
        buf = pool[key] = torch.empty(n, device=device, dtype=dtype)
    return buf[:n].view(tuple(shape))


def dac(x: torch.Tensor, bits: int | None, x_range: float, signed: bool) -> tuple[torch.Tensor, Encoding]:
    """DAC codes of ``x`` with ``bits`` bits whose top code stands for ``x_range`` (no DAC: the
    values themselves), and how they were made."""
    if bits is None:
        return x, Encoding(1.0, signed, None)
    if signed and bits < 2:
        raise InputError(
            f"a {bits}-bit DAC has no negative code, but these inputs (or, in a transposed read, "
            "these errors) are signed; set periphery.input_bits >= 2"
        )
    top = quant.input_code_limits(bits, signed)[1]
    scale = x_range / top if x_range > 0 else 1.0
    return quant.quantize_input(x, bits, scale, signed), Encoding(scale, signed, bits)


#: how a layer's inputs reach its rows (``CIMLayer.input_mode``): "dac": through the spec's DAC
#: (``periphery.input_bits`` codes, bit-serial or as its ``dac_mode`` drives them); "spikes": the inputs are
#: spikes (0 / 1) and drive the rows in one binary pass, whatever the DAC (anything else is an error);
#: "auto": spikes when a forward's input is all 0 / 1, else the DAC (what ``convert`` sets in spiking networks)
INPUT_MODES = ("dac", "spikes", "auto")
#: the encoding of spikes: the value 1 is code 1, one unsigned bit
SPIKES = Encoding(1.0, False, 1)


def is_binary(x: torch.Tensor, x_min: float | None = None, x_max: float | None = None) -> bool:
    """Whether every value of ``x`` is 0 or 1 (spikes); ``x_min`` / ``x_max``: its extremes when already known.
    An empty tensor is binary; NaN is not."""
    if x.numel() == 0:
        return True
    if x_min is None or x_max is None:
        x_min, x_max = (float(v) for v in torch.aminmax(x))
    return x_min >= 0 and x_max <= 1 and int(torch.count_nonzero(x.frac())) == 0  # in [0, 1]: no fraction


def reads_spikes(tile, x: torch.Tensor, x_min: float, x_max: float) -> bool:
    """Whether this forward reads ``x`` as spikes (one binary pass): under input mode "auto" when every value
    is 0 or 1; under "spikes" always (an ``InputError`` naming the layer for any other value)."""
    binary = is_binary(x, x_min, x_max)
    if not binary and tile.input_mode == "spikes":
        raise InputError(
            f"{tile.name}: input_mode is 'spikes' but the input has values other than 0 and 1 "
            f"(range [{x_min:g}, {x_max:g}]); set the layer's input_mode to 'auto' or 'dac' to read "
            "such inputs through the DAC"
        )
    return binary


def encode(tile, x: torch.Tensor, x_min: float, x_max: float) -> tuple[torch.Tensor, Encoding]:
    """The input DAC of a forward: calibrated ranges unless the input range is being calibrated
    (then the range is this batch's)."""
    consts = tile.constants(x.device)
    calibrated = consts["input_range"] is not None and tile.calibrating != "input"
    signed = consts["input_signed"] if calibrated else x_min < 0
    x_range = consts["input_range"] if calibrated else max(-x_min, x_max)
    return dac(x, tile.spec.periphery.input_bits, x_range, signed)


def drive(
    codes: torch.Tensor, enc: Encoding, periphery: PeripherySpec, analog_peak: float
) -> tuple[torch.Tensor, list[float], bool, float]:
    """How codes drive the lines: the input passes stacked on a new leading dim (bit planes, LSB first, for
    a DAC mode of ``cimkit.spec.units.DAC_MODES`` that drives bit planes: two's complement, or the two
    phases of ``periphery.signed_inputs: sign_magnitude`` when the codes are signed; one pass otherwise),
    the weight of each pass, whether the passes are binary, and the largest code (``analog_peak`` without
    a DAC)."""
    if enc.bits == 1 and not enc.signed:  # binary inputs (spikes, or a 1-bit DAC): one binary pass
        return codes.unsqueeze(0), [1.0], True, 1.0
    if DAC_MODES.get(periphery.dac_mode, "periphery.dac_mode").bit_planes and enc.bits is not None:
        if enc.signed and periphery.signed_inputs == "sign_magnitude":
            planes, plane_w = quant.sign_magnitude_planes(codes, enc.bits)
        else:
            planes, plane_w = quant.bit_planes(codes, enc.bits, enc.signed)
        return planes, plane_w, True, 1.0
    code_max = float(quant.input_code_limits(enc.bits, enc.signed)[1]) if enc.bits else analog_peak
    return codes.unsqueeze(0), [1.0], False, code_max


def packed_planes(
    layout: Layout, arrays, codes: torch.Tensor, enc: Encoding, periphery: PeripherySpec
) -> tuple[torch.Tensor, list[float]] | None:
    """Bit planes of at most 8 bits, for a layout that reads them packed (``Layout.reads_packed_planes``), as
    one byte per input whose bit p is plane p (LSB first; two's complement for signed codes), and the planes'
    weights; None when the codes are not driven as such planes (one pass, sign-magnitude phases, more bits)."""
    bits = enc.bits
    if (
        bits is None
        or not 1 < bits <= 8
        or not DAC_MODES.get(periphery.dac_mode, "periphery.dac_mode").bit_planes
        or (enc.signed and periphery.signed_inputs == "sign_magnitude")
        or not layout.reads_packed_planes(arrays, codes)
    ):
        return None
    weights = quant.plane_weights(bits, enc.signed)
    if enc.signed:
        return torch.remainder(codes.to(torch.int32), 2**bits).to(torch.uint8), weights
    return codes.to(torch.uint8), weights


def run(tile, layout: Layout, x: torch.Tensor, bias: torch.Tensor | None = None) -> tuple[torch.Tensor, Encoding]:
    """One read of ``tile`` through ``layout``: ``x`` in the layout's prepared form (float32, or
    float64 for exact gradient checks on ideal chips). Returns the output and the DAC encoding."""
    p = tile.spec.periphery
    hooks = tile.stage_hooks
    if hooks["input"]:
        x = _hook(tile, "input", x)
    x_min, x_max = (float(v) for v in torch.aminmax(x))  # NaN and inf propagate to these
    if not (math.isfinite(x_min) and math.isfinite(x_max)):
        raise InputError(f"{tile.name}: input has non-finite values (NaN or inf)")
    if tile.input_mode != "dac" and reads_spikes(tile, x, x_min, x_max):
        codes, enc = x, SPIKES
    else:
        codes, enc = encode(tile, x, x_min, x_max)
    if hooks["encode"]:
        codes = _hook(tile, "encode", codes)
    signed = enc.signed
    arrays = tile.arrays(layout, x.dtype, x.device)
    packed = packed_planes(layout, arrays, codes, enc, p)
    if packed is not None:  # the bit planes as the bits of one byte per input
        xin, plane_w = packed
        passes, binary, code_max = len(plane_w), True, 1.0
    else:
        planes, plane_w, binary, code_max = drive(codes, enc, p, max(-x_min, x_max))
        xin, passes = planes.flatten(0, 1), planes.shape[0]
    to_variance = None
    if arrays.variance is not None:  # elementwise squares commute with the layout's moves, pads and unfolds
        var_dtype = arrays.variance.dtype
        to_variance = (lambda v: v.to(var_dtype)) if binary else (lambda v: (v * v).to(var_dtype))

    adc_signed = tile.mapping.differential or (signed and passes == 1)
    steps = tile.adc_steps(adc_signed, code_max, x.device, passes)  # (S,), or (P, S) per input bit
    slice_f = tile.constants(x.device)["slice_weights"].to(x.dtype)
    inv_steps, lo, hi = None, 0, 0
    if steps is not None:
        inv_steps = (1.0 / steps).to(x.dtype)
        slice_f = slice_f * steps.to(x.dtype)
        lo, hi = quant.adc_code_limits(p.adc_bits, adc_signed)
    f = torch.tensor(plane_w, device=x.device, dtype=x.dtype).view(-1, 1) * slice_f  # (P, S)
    staged = hooks["read"] or hooks["noise"] or hooks["adc"]
    chunks: Iterable[Chunk]
    if (
        steps is None
        and to_variance is None
        and passes == 1
        and not staged
        and isinstance(layout, LinearLayout)
        and arrays.int_split is None
    ):
        # no conversion, no read noise, one float pass: the row tiles' partial sums add up as one product (in
        # another float32 summation order than the chunked path a read / noise / adc hook takes)
        acc = (xin @ arrays.dense(f, xin.shape[1])).unsqueeze(0)
        chunks = ()
    else:
        xl = layout.place(xin)
        o, r, m, s, z = layout.block_shape(xl, 1 if packed is not None else passes)
        r = passes
        acc = torch.zeros((o, m, z), device=x.device, dtype=x.dtype)
        chunks = layout.chunks(xl, passes, code_max, arrays, to_variance, chunk_scratch, binary, packed is not None)
    # one noise draw per row tile's block, taken up front, so the chunking never changes the numbers
    counters = [tile.rng.next_counter() if to_variance is not None else 0 for _ in range(tile.mapping.row_tiles)]
    dims = layout.block_dims
    # chunk by chunk, so that each chunk's noise, conversion and shift-and-add run in cache
    for ch in chunks:
        c, var = ch.signal, ch.variance
        where = fused.Place(r, m, ch.r0, ch.m0, counters[ch.tile])
        if not staged:
            fused.read_chain(c, var, tile.rng, where, inv_steps, lo, hi, f, acc)
            continue
        info = {
            "dims": dims,
            "pass_index": ch.r0 if c.shape[1] == 1 else None,
            "first_pass": ch.r0,
            "row_tile": ch.tile,
            "first_row": ch.m0,
        }
        if isinstance(c, IntTerms):  # stages see float32 values
            var = c.variance() if c.n_variance else var
            c = c.signal()
        if hooks["read"]:
            c = _hook(tile, "read", c, **info).contiguous()
        if var is not None:
            fused.add_read_noise(c, var, tile.rng, where)
        if hooks["noise"]:
            c = _hook(tile, "noise", c, **info).contiguous()
        if inv_steps is not None:  # set with steps
            fused.convert(c, inv_steps, lo, hi, where)
        if hooks["adc"]:
            c = _hook(tile, "adc", c, step=steps, code_limits=(lo, hi) if steps is not None else None, **info)
        fused.shift_add(c, f, acc, where)  # an adc hook's value is summed as it is
    y = layout.finalize(acc)
    if hooks["accumulate"]:
        y = _hook(tile, "accumulate", y)
    if tile.drift_gain != 1.0:
        y = y * tile.drift_gain
    if not tile.mapping.differential:
        y = y - tile.offset_per_code * layout.row_sums(codes)
    y = y * (enc.scale * layout.out_view(tile.w_scale.reshape(-1).to(y.dtype)))
    if bias is not None:
        y = y + layout.out_view(bias.detach().to(y.dtype))
    if hooks["output"]:
        y = _hook(tile, "output", y)
    return y, enc


class ChipProduct(torch.autograd.Function):
    """``y = chip(x; W) + b`` with a selectable backward pass (the layer's ``backward_mode``):

    ``straight_through``: gradients of the ideal product ``x W^T + b``, zero where the DAC clipped
    the input or the weight range clipped the weight (hardware-aware training);
    ``chip``: the input gradient is a transposed read of the same programmed arrays (DAC, read
    noise, ADC included), the weight gradient the outer product of the error and the input the
    chip saw (after its DAC)."""

    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        y, enc = run(layer.tile, layer.layout, x, bias)
        ctx.layer, ctx.enc, ctx.layout = layer, enc, layer.layout  # a layer may be re-laid before backward
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx, d):
        x, weight = ctx.saved_tensors
        layer, enc, layout = ctx.layer, ctx.enc, ctx.layout
        w = layer.matrix_weight(weight).to(d.dtype)
        dx = dw = db = None
        chip = layer.backward_mode == "chip"
        if ctx.needs_input_grad[0]:
            if chip:
                dx = layout.from_matrix_grad(layer.tile.read_transposed(layout.to_matrix_grad(d)), x.shape)
            else:
                dx = layout.input_grad(d, w, x.shape)
            mask = enc.clip_mask(x)  # the forward's derivative is zero where the DAC clipped
            if mask is not None:
                dx = dx * mask
        x_seen = enc.quantized(x) if chip else x
        if ctx.needs_input_grad[1]:
            dw = layout.weight_grad(d, x_seen.to(d.dtype), w.shape)
            if layer.backward_mode == "straight_through":
                mask = layer.tile.weight_clip_mask(w)
                if mask is not None:
                    dw = dw * mask
            dw = dw.reshape(weight.shape).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = layout.bias_grad(d)
        return dx, dw, db, None
