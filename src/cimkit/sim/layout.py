"""Layouts: how a layer's inputs meet the arrays of its tile, and how gradients flow back.

A layout knows shapes only: how input codes are placed on array rows (``place``), how the array
matrices are arranged for the fastest product of that placement (``compute_arrays``), how partial
sums come out chunk by chunk (``chunks``) and back into the layer's output shape (``finalize``).
The datapath stages around it (DAC, noise, ADC, shift-and-add) live in ``kernel.run`` and the
programmed chip in ``tile.CrossbarTile``; a layer is a layout plus a tile.

Each row tile's partial sums form one block of dims ``block_dims`` (O, R, M, S, Z): G group, P input
pass, B batch (M = B x L output positions for convolutions), S weight slice, N output. P and S are
summed by shift-and-add, and the row tiles' blocks too. Blocks come in chunks (ranges of passes and of
rows M) small enough to stay in cache, so memory does not grow with the batch or the image; read
noise is drawn per block, so the chunking never changes the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..mapping import ArrayMapping
from .intmm import Int8Split, IntTerms, codes_to_int8

#: partial sums per chunk: large enough to amortize per-call costs, small enough (8 MB) that a chunk's
#: product, noise, conversion and shift-and-add run in the last-level cache
CHUNK = 1 << 21

Scratch = Callable[[str, tuple, torch.device, torch.dtype], torch.Tensor]
ToVariance = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Chunk:
    """Partial sums (O, Rc, Mc, S, Z) of row tile ``tile``: passes ``r0 + [0, Rc)``, rows ``m0 + [0, Mc)``
    of its block, as float32 or as exact integer products (which may carry the variances); ``variance``:
    their read-noise variances (same dims) or None."""

    signal: torch.Tensor | IntTerms
    variance: torch.Tensor | None
    tile: int
    r0: int
    m0: int


@dataclass
class Arrays:
    """A tile's effective matrices in one layout's compute form (derived, never saved)."""

    signal: torch.Tensor
    variance: torch.Tensor | None
    int_split: Int8Split | None = None  # the signal as int8 terms (CPUs where int8 products pay)
    variance_split: Int8Split | None = None  # the variances as int8 terms (with ``int_split``, read noise)
    _dense: dict = field(default_factory=dict, repr=False)

    def int_terms(self, with_variance: bool) -> tuple[torch.Tensor, tuple[float, ...], int]:
        """The int8 terms side by side for one product: (T, Rp, J * S*N) int8, the J weights, and how many of
        the terms are the signal's (the rest are the variance's, ``with_variance``); cached."""
        key = ("int_terms", with_variance)
        hit = self._dense.get(key)
        if hit is None:
            assert self.int_split is not None
            parts = [self.int_split]
            if with_variance and self.variance_split is not None:
                parts.append(self.variance_split)
            terms = torch.cat([p.terms for p in parts])  # (J, T, Rp, SN)
            j, t, rp, sn = terms.shape
            weights = tuple(w for p in parts for w in p.weights)
            hit = self._dense[key] = (
                terms.permute(1, 2, 0, 3).reshape(t, rp, j * sn).contiguous(),
                weights,
                len(parts[0].weights),
            )
        return hit

    def int_col_sums(self, rows_used: torch.Tensor) -> torch.Tensor:
        """``int_split.column_sums(rows_used)`` (T, S*N), cached: the rows a shifted code reaches."""
        key = ("int_col_sums", tuple(rows_used.tolist()))
        hit = self._dense.get(key)
        if hit is None:
            assert self.int_split is not None
            hit = self._dense[key] = self.int_split.column_sums(rows_used)
        return hit

    def dense(self, f: torch.Tensor, rows: int) -> torch.Tensor:
        """A dense layout's tiles as one (rows, N) matrix whose slices are summed with the weights ``f`` (1, S):
        the product of reads that are neither converted nor noisy (cached per ``f``)."""
        key = tuple(f.reshape(-1).tolist())
        hit = self._dense.get(key)
        if hit is None:
            t, rp, sn = self.signal.shape
            s = f.numel()
            w = (self.signal.view(t, rp, s, sn // s) * f.reshape(1, 1, s, 1).to(self.signal.dtype)).sum(2)
            hit = self._dense[key] = w.reshape(t * rp, sn // s)[:rows].contiguous()
        return hit


def _int_path(arrays: Arrays, x: torch.Tensor, code_max: float) -> bool:
    """Whether partial sums run as int8 products: the tile has int8 terms (a CPU where they pay, integer
    codes) and these float32 CPU codes fit int8 (shifted by -128 above 127)."""
    return arrays.int_split is not None and x.device.type == "cpu" and x.dtype == torch.float32 and code_max <= 255


class Layout:
    """Base of the layouts; subclasses fill in the shape logic."""

    block_dims: str = ""

    def __init__(self, mapping: ArrayMapping) -> None:
        self.mapping = mapping

    @property
    def key(self) -> tuple:
        """Layouts with equal keys arrange a tile's matrices alike (the tile caches by it)."""
        return (type(self).__name__,)

    def compute_arrays(self, m: torch.Tensor) -> torch.Tensor:
        """``m`` (G, T, Rp, S, N) arranged for this layout's product."""
        raise NotImplementedError

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The layer input in the form the product reads (differentiable: padding, reshapes)."""
        return x

    def place(self, x: torch.Tensor) -> torch.Tensor:
        """Input codes (or bit planes, passes stacked on the batch dim) laid out for the arrays."""
        raise NotImplementedError

    def block_shape(self, xl: torch.Tensor, passes: int) -> tuple[int, int, int, int, int]:
        """(O, R, M, S, Z) of each row tile's block of partial sums for placed input ``xl``."""
        raise NotImplementedError

    def chunks(
        self,
        xl: torch.Tensor,
        passes: int,
        code_max: float,
        arrays: Arrays,
        to_variance: ToVariance | None,
        scratch: Scratch,
        binary: bool = False,
        packed: bool = False,
    ) -> Iterator[Chunk]:
        """The partial sums chunk by chunk, each tile's in order of passes then rows. ``code_max``: the
        largest input code; ``to_variance``: maps placed inputs to the inputs of the variance product
        (None: no read noise); ``binary``: the passes are 0 / 1 bit planes; ``packed``: ``xl`` holds them as
        the bits of one byte per input (``reads_packed_planes``). Chunks may be scratch views, valid until the
        next one."""
        raise NotImplementedError

    def reads_packed_planes(self, arrays: Arrays, codes: torch.Tensor) -> bool:
        """Whether ``chunks`` takes up to 8 bit planes of ``codes`` packed into bytes (``packed=True``)."""
        return False

    def finalize(self, acc: torch.Tensor) -> torch.Tensor:
        """The reduced partial sums (O, M, Z) in the output layout."""
        raise NotImplementedError

    def row_sums(self, codes: torch.Tensor) -> torch.Tensor:
        """Per output, the sum of the input codes its rows saw (offset-mapping correction)."""
        raise NotImplementedError

    def out_view(self, per_channel: torch.Tensor) -> torch.Tensor:
        """A per-output-channel vector, broadcastable against the output."""
        return per_channel

    # ---- gradients of the ideal product y = x W^T, in the prepared input form -------------------
    def input_grad(self, d: torch.Tensor, w: torch.Tensor, x_shape: torch.Size) -> torch.Tensor:
        raise NotImplementedError

    def weight_grad(self, d: torch.Tensor, x: torch.Tensor, w_shape: torch.Size) -> torch.Tensor:
        raise NotImplementedError

    def bias_grad(self, d: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to_matrix_grad(self, d: torch.Tensor) -> torch.Tensor:
        """Output gradients as matrix rows (M, G, N) for a transposed read of the tile."""
        raise NotImplementedError

    def from_matrix_grad(self, g: torch.Tensor, x_shape: torch.Size) -> torch.Tensor:
        """Row-side results of a transposed read (M, G, K) back in the prepared input's shape."""
        raise NotImplementedError


class LinearLayout(Layout):
    """A (batch, K) input on a dense matrix: the input dimension is cut into row tiles."""

    block_dims = "GPBSN"

    def compute_arrays(self, m):
        g, t, rp, s, n = m.shape
        return m.reshape(t, rp, s * n).contiguous()

    def place(self, x):
        m = self.mapping
        pad = m.row_tiles * m.rows_per_tile - x.shape[1]
        if pad:
            x = F.pad(x, (0, pad))
        return x.view(x.shape[0], m.row_tiles, m.rows_per_tile).transpose(0, 1).contiguous()  # (T, PB, Rp)

    def block_shape(self, xl, passes):
        return 1, passes, xl.shape[1] // passes, self.mapping.slices, self.mapping.out_features

    def chunks(self, xl, passes, code_max, arrays, to_variance, scratch, binary=False, packed=False):
        m = self.mapping
        t, pb, _ = xl.shape
        b, cols = pb // passes, arrays.signal.shape[-1]
        x8 = codes_to_int8(xl, code_max) if _int_path(arrays, xl, code_max) else None
        if x8 is not None:
            yield from self._int_chunks(x8, passes, arrays, to_variance, scratch, binary)
            return
        xl2 = None if to_variance is None else to_variance(xl)
        per = max(1, CHUNK // (b * cols))  # input passes per chunk: the chunk's products stay in cache
        for i in range(t):
            for p0 in range(0, passes, per):
                k = min(per, passes - p0)
                rows = slice(p0 * b, (p0 + k) * b)
                ps = torch.mm(xl[i, rows], arrays.signal[i], out=scratch("signal", (k * b, cols), xl.device, xl.dtype))
                var = None
                if xl2 is not None:
                    var = torch.mm(
                        xl2[i, rows], arrays.variance[i], out=scratch("variance", (k * b, cols), xl.device, xl2.dtype)
                    )
                    var = var.view(1, k, b, m.slices, m.out_features)
                yield Chunk(ps.view(1, k, b, m.slices, m.out_features), var, i, p0, 0)

    def _int_chunks(self, x8, passes, arrays, to_variance, scratch, binary):
        """The partial sums as exact integer products (``IntTerms``); binary passes read their variances in
        the same product."""
        m = self.mapping
        codes, shift = x8
        t, pb, _ = codes.shape
        b, cols = pb // passes, arrays.signal.shape[-1]
        with_var = to_variance is not None and binary and arrays.variance_split is not None
        terms, weights, n_signal = arrays.int_terms(with_var)
        j = len(weights)
        col_sums = arrays.int_col_sums(torch.full((t,), m.rows_per_tile)) if shift else None
        xl2 = None
        if to_variance is not None and not with_var:
            xl2 = to_variance(codes.float() + shift)
        per = max(1, CHUNK // (b * cols * j))
        for i in range(t):
            for p0 in range(0, passes, per):
                k = min(per, passes - p0)
                rows = slice(p0 * b, (p0 + k) * b)
                out = scratch("int32", (k * b, j * cols), codes.device, torch.int32)
                torch._int_mm(codes[i, rows], terms[i], out=out)
                var = None
                if xl2 is not None:
                    var = torch.mm(
                        xl2[i, rows],
                        arrays.variance[i],
                        out=scratch("variance", (k * b, cols), codes.device, xl2.dtype),
                    )
                    var = var.view(1, k, b, m.slices, m.out_features)
                it = IntTerms(
                    out.view(1, k, b, j, m.slices, m.out_features),
                    weights,
                    n_signal,
                    None if col_sums is None else col_sums[i : i + 1],
                    shift,
                )
                yield Chunk(it, var, i, p0, 0)

    def finalize(self, acc):
        return acc[0]

    def row_sums(self, codes):
        return codes.sum(-1, keepdim=True)

    def input_grad(self, d, w, x_shape):
        return d @ w

    def weight_grad(self, d, x, w_shape):
        return d.t() @ x

    def bias_grad(self, d):
        return d.sum(0)

    def to_matrix_grad(self, d):
        return d.unsqueeze(1)

    def from_matrix_grad(self, g, x_shape):
        return g.squeeze(1)


class ConvLayout(Layout):
    """A 2-d convolution (1-d runs as 2-d of height one) on its unrolled kernel matrix.

    Inputs are unfolded (im2col) chunk by chunk, and each row tile's rows of a chunk meet its arrays
    in one batched product over groups. ``kernel_aligned`` mappings keep whole kernels in one array
    (a tile holds whole input channels), which is only a different cut of the unfolded rows.
    """

    block_dims = "GPMSN"  # M: batch x output positions

    def __init__(
        self,
        mapping: ArrayMapping,
        *,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
        in_channels: int,
        out_channels: int,
        aligned: bool,
        pre_pad: tuple[int, int, int, int],
        padding_mode: str,
    ) -> None:
        super().__init__(mapping)
        self.kernel, self.stride, self.dilation, self.groups = kernel, stride, dilation, groups
        self.in_channels, self.out_channels, self.aligned = in_channels, out_channels, aligned
        self.pre_pad, self.padding_mode = pre_pad, padding_mode
        self.ones_w = torch.ones(groups, in_channels // groups, *kernel)
        self._out_hw: tuple[int, int] = (0, 0)

    @property
    def key(self) -> tuple:
        return (type(self).__name__,)

    def prepare(self, x):
        if any(self.pre_pad):
            x = F.pad(x, self.pre_pad, mode=self.padding_mode)
        return x

    def compute_arrays(self, m):
        g, t, rp, s, n = m.shape
        return m.transpose(0, 1).reshape(t * g, rp, s * n).contiguous()

    def place(self, x):
        self._out_hw = _conv_out_hw(tuple(x.shape[-2:]), self.kernel, self.stride, self.dilation)
        return x  # unfolded chunk by chunk

    def block_shape(self, xl, passes):
        mp = self.mapping
        return mp.groups, passes, xl.shape[0] // passes * self._out_hw[0] * self._out_hw[1], mp.slices, mp.out_features

    def _unfolded(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Inputs (n, C, H, W) unfolded as the arrays' rows see them: (G, n * L, C/G * kh * kw), rows in
        im2col's (channel, kh, kw) order, into ``out`` when given (a buffer of that many elements). Built in
        one copy from a strided window view of ``x``: each output row reads one small window, where im2col
        followed by a transpose moved every value twice, the second time across the whole matrix. Row tile
        i reads columns [i * Rp, (i + 1) * Rp) (aligned: Rp / (kh*kw) whole channels)."""
        mp = self.mapping
        x = x.contiguous()
        n, c, _, _ = x.shape
        (oh, ow), (kh, kw), (sh, sw), (dh, dw) = self._out_hw, self.kernel, self.stride, self.dilation
        sn, sc, sy, sx = x.stride()
        g = mp.groups
        windows = x.as_strided(
            (n, oh, ow, g, c // g, kh, kw), (sn, sh * sy, sw * sx, (c // g) * sc, sc, dh * sy, dw * sx)
        ).permute(3, 0, 1, 2, 4, 5, 6)
        if out is None:
            return windows.reshape(g, n * oh * ow, mp.in_features)
        out.view(windows.shape).copy_(windows)
        return out.view(g, n * oh * ow, mp.in_features)

    def _tile_major(self) -> bool:
        """Whether every row tile holds whole input channels (``Rp`` a multiple of kh * kw: kernel-aligned
        mappings, 1x1 kernels), so that its rows can be read in (kh, kw, channel) order from channels-last
        inputs, copying runs of channels instead of single values. Integer sums do not depend on the order
        of their rows, so only the integer path does this."""
        return self.mapping.rows_per_tile % (self.kernel[0] * self.kernel[1]) == 0

    def _tile_major_matrix(self, arrays: Arrays, name: str, m: torch.Tensor) -> torch.Tensor:
        """``m`` (T*G, Rp, X) with each tile's rows in (kh, kw, channel) order: a last tile with fewer
        channels has its kh * kw * channels rows first (zero rows after); cached in ``arrays``."""
        key = ("tile_major", name)
        hit = arrays._dense.get(key)
        if hit is not None:
            return hit
        mp = self.mapping
        k, rp, g = self.kernel[0] * self.kernel[1], mp.rows_per_tile, mp.groups
        cpt, channels = rp // k, mp.in_features // k
        out = torch.zeros_like(m)
        for i in range(mp.row_tiles):
            have = min(cpt, channels - i * cpt)
            within = (torch.arange(have).view(1, -1) * k + torch.arange(k).view(-1, 1)).reshape(-1)  # (kh*kw, have)
            out[i * g : (i + 1) * g, : k * have] = m[i * g : (i + 1) * g, within]
        arrays._dense[key] = out
        return out

    def _tile_split(self) -> tuple[int, int, int]:
        """(channels per full tile, full tiles, channels of a last partial tile (0: none)) of a tile-major
        mapping."""
        mp = self.mapping
        cpt = mp.rows_per_tile // (self.kernel[0] * self.kernel[1])
        channels = mp.in_features // (self.kernel[0] * self.kernel[1])
        return cpt, channels // cpt, channels % cpt

    def _unfolded_tiles(
        self, x: torch.Tensor, full: torch.Tensor | None, last: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """Inputs (n, C, H, W) unfolded tile by tile (``_tile_major``), each tile's rows in (kh, kw, channel)
        order: the full tiles into ``full`` as (G, T_full, n * L, Rp), a last partial tile into ``last`` as
        (G, 1, n * L, kh * kw * its channels). One copy each from a channels-last view, whose innermost runs
        are a tile's channels."""
        n, c, h, w = x.shape
        g = self.mapping.groups
        (oh, ow), (kh, kw), (sh, sw), (dh, dw) = self._out_hw, self.kernel, self.stride, self.dilation
        cpt, t_full, rest = self._tile_split()
        cg = c // g
        xcl = x.view(n, g, cg, h, w).permute(0, 3, 4, 1, 2).contiguous()  # (n, H, W, G, C/G)
        sn, sy, sx = h * w * c, w * c, c
        out = []
        for buf, tiles, width, first in ((full, t_full, cpt, 0), (last, 1, rest, t_full * cpt)):
            if buf is None or tiles == 0 or width == 0:
                continue
            windows = xcl.as_strided(
                (g, tiles, n, oh, ow, kh, kw, width),
                (cg, cpt, sn, sh * sy, sw * sx, dh * sy, dw * sx, 1),
                xcl.storage_offset() + first,
            )
            buf.view(windows.shape).copy_(windows)
            out.append(buf.view(g, tiles, n * oh * ow, kh * kw * width))
        return out

    def _parts(
        self, passes: int, b: int, per_image: int, images_first: bool = False
    ) -> list[tuple[int, int, int, int]]:
        """Chunks as (first pass, passes, first image, images): whole passes when an image's pass is small.
        ``images_first``: all passes of a block of images before the next block (the order in which a
        block's partial sums reach the accumulator is the same either way)."""
        images = max(1, CHUNK // per_image)
        if images >= b:  # whole passes per chunk
            return [(p0, min(images // b, passes - p0), 0, b) for p0 in range(0, passes, images // b)]
        blocks = range(0, b, images)
        if images_first:
            return [(p, 1, b0, min(images, b - b0)) for b0 in blocks for p in range(passes)]
        return [(p, 1, b0, min(images, b - b0)) for p in range(passes) for b0 in blocks]

    def reads_packed_planes(self, arrays, codes):
        return _int_path(arrays, codes, 255)

    def chunks(self, xl, passes, code_max, arrays, to_variance, scratch, binary=False, packed=False):
        if packed or _int_path(arrays, xl, code_max):
            yield from self._int_chunks(xl, passes, code_max, arrays, to_variance, scratch, binary, packed)
            return
        mp = self.mapping
        g, t, s, n = mp.groups, mp.row_tiles, mp.slices, mp.out_features
        pb, c, h, w = xl.shape
        b, l = pb // passes, self._out_hw[0] * self._out_hw[1]
        planes = xl.view(passes, b, c, h, w)
        rp = mp.rows_per_tile
        for p0, k, b0, nb in self._parts(passes, b, g * l * s * n):
            rows = self._unfolded(
                planes[p0 : p0 + k, b0 : b0 + nb].reshape(k * nb, c, h, w),
                scratch("rows", (g * k * nb * l * mp.in_features,), xl.device, xl.dtype),
            )
            rows2 = None if to_variance is None else to_variance(rows)
            for i in range(t):
                first, last = i * rp, min((i + 1) * rp, mp.in_features)  # the last tile may use fewer rows
                shape = (g, k * nb * l, s * n)
                ps = torch.bmm(
                    rows[:, :, first:last],
                    arrays.signal[i * g : (i + 1) * g, : last - first],
                    out=scratch("signal", shape, xl.device, xl.dtype),
                )
                var = None
                if rows2 is not None:
                    var = torch.bmm(
                        rows2[:, :, first:last],
                        arrays.variance[i * g : (i + 1) * g, : last - first],
                        out=scratch("variance", shape, xl.device, rows2.dtype),
                    )
                    var = var.view(g, k, nb * l, s, n)
                yield Chunk(ps.view(g, k, nb * l, s, n), var, i, p0, b0 * l)

    def _int_chunks(self, xl, passes, code_max, arrays, to_variance, scratch, binary, packed_input=False):
        """The partial sums as exact integer products (``IntTerms``), one int8 product per row tile and
        group; binary passes read their variances in the same product. Up to 8 binary passes are packed into
        one byte per input, so each window is unfolded once, not once per pass, and the passes' rows are
        bits of the unfolded bytes."""
        mp = self.mapping
        g, t, s, n = mp.groups, mp.row_tiles, mp.slices, mp.out_features
        pb, c, h, w = xl.shape
        b = pb if packed_input else pb // passes
        l, k_rows = self._out_hw[0] * self._out_hw[1], mp.in_features
        rp = mp.rows_per_tile
        with_var = to_variance is not None and binary and arrays.variance_split is not None
        terms, weights, n_signal = arrays.int_terms(with_var)
        j = len(weights)
        packed = packed_input or (binary and 1 < passes <= 8)
        if packed_input:
            source, shift = xl, 0.0
        elif packed:  # bit p of a byte: pass p
            planes = xl.view(passes, b, c, h, w)
            bits = torch.tensor([float(1 << p) for p in range(passes)], device=xl.device).view(-1, 1, 1, 1, 1)
            source, shift = (planes * bits).sum(0).to(torch.uint8), 0.0
        else:
            codes = codes_to_int8(xl, code_max)
            assert codes is not None  # _int_path checked code_max
            source, shift = codes[0].view(passes, b, c, h, w), codes[1]
        col_sums = None
        if shift:
            used = (k_rows - torch.arange(t) * rp).clamp(max=rp)
            col_sums = arrays.int_col_sums(used.repeat_interleave(g))
        tm = self._tile_major()
        need_rows2 = to_variance is not None and not with_var  # the variance product reads the codes' squares
        if tm:
            terms = self._tile_major_matrix(arrays, f"terms{j}", terms)
        var_matrix = arrays.variance
        if need_rows2 and tm:
            assert var_matrix is not None
            var_matrix = self._tile_major_matrix(arrays, "variance", var_matrix)
        kk = self.kernel[0] * self.kernel[1]

        def unfold(x: torch.Tensor, name: str, dtype: torch.dtype) -> list[torch.Tensor]:
            """Row blocks (G, tiles, M, width) that together hold every tile's rows, in tile order."""
            m_rows = x.shape[0] * l
            if not tm:
                buf = scratch(name, (g * m_rows * k_rows,), xl.device, dtype)
                return [self._unfolded(x, buf).unsqueeze(1)]
            cpt, t_full, rest = self._tile_split()
            full = scratch(name, (g * t_full * m_rows * rp,), xl.device, dtype) if t_full else None
            last = scratch(name + "_last", (g * m_rows * kk * rest,), xl.device, dtype) if rest else None
            return self._unfolded_tiles(x, full, last)

        def tile_rows(blocks: list[torch.Tensor], i: int) -> torch.Tensor:
            """Row tile i's rows (G, M, rows)."""
            if not tm:
                return blocks[0][:, 0, :, i * rp : min((i + 1) * rp, k_rows)]
            full = blocks[0].shape[1] if blocks[0].shape[-1] == rp else 0
            return blocks[0][:, i] if i < full else blocks[-1][:, i - full]

        windows: list[torch.Tensor] = []
        for p0, k, b0, nb in self._parts(passes, b, g * l * s * n * j, images_first=packed):
            m_rows = k * nb * l
            if packed:
                if p0 == 0:  # a new block of images: unfold its bytes once for all its passes
                    windows = unfold(source[b0 : b0 + nb], "bytes", torch.uint8)
                blocks = []
                for bi, window in enumerate(windows):
                    rows = scratch(f"rows8_{bi}", (*window.shape[:2], m_rows, window.shape[-1]), xl.device, torch.int8)
                    for q in range(k):  # pass p0 + q: bit p0 + q of the unfolded bytes
                        plane = rows.narrow(2, q * nb * l, nb * l)
                        torch.bitwise_right_shift(window, p0 + q, out=plane.view(torch.uint8))
                        plane.bitwise_and_(1)
                    blocks.append(rows)
            else:
                blocks = unfold(source[p0 : p0 + k, b0 : b0 + nb].reshape(k * nb, c, h, w), "rows8", torch.int8)
            blocks2 = None
            if need_rows2:
                assert to_variance is not None
                blocks2 = []
                for bi, rows in enumerate(blocks):
                    r2 = scratch(f"rows2_{bi}", rows.shape, xl.device, torch.float32)
                    blocks2.append(to_variance(torch.add(rows, shift, out=r2) if shift else r2.copy_(rows)))
            for i in range(t):
                rows = tile_rows(blocks, i)
                used = rows.shape[-1]
                out = scratch("int32", (g, m_rows, j * s * n), xl.device, torch.int32)
                for gi in range(g):
                    torch._int_mm(rows[gi], terms[i * g + gi, :used], out=out[gi])
                var = None
                if blocks2 is not None:
                    assert var_matrix is not None
                    var = torch.bmm(
                        tile_rows(blocks2, i),
                        var_matrix[i * g : (i + 1) * g, :used],
                        out=scratch("variance", (g, m_rows, s * n), xl.device, blocks2[0].dtype),
                    )
                    var = var.view(g, k, nb * l, s, n)
                it = IntTerms(
                    out.view(g, k, nb * l, j, s, n),
                    weights,
                    n_signal,
                    None if col_sums is None else col_sums[i * g : (i + 1) * g],
                    shift,
                )
                yield Chunk(it, var, i, p0, b0 * l)

    def finalize(self, acc):  # (G, B*L, N) -> (B, G*N, H, W)
        g, bl, n = acc.shape
        l = self._out_hw[0] * self._out_hw[1]
        acc = acc.view(g, bl // l, l, n).permute(1, 0, 3, 2)
        return acc.reshape(acc.shape[0], self.out_channels, *self._out_hw)

    def row_sums(self, codes):
        ones = self.ones_w.to(codes.device, codes.dtype)
        s = F.conv2d(codes, ones, stride=self.stride, dilation=self.dilation, groups=self.groups)
        b, g, h, w = s.shape
        return s.unsqueeze(2).expand(b, g, self.out_channels // g, h, w).reshape(b, self.out_channels, h, w)

    def out_view(self, per_channel):
        return per_channel.view(-1, 1, 1)

    def input_grad(self, d, w, x_shape):
        return torch.nn.grad.conv2d_input(x_shape, w, d, self.stride, 0, self.dilation, self.groups)

    def weight_grad(self, d, x, w_shape):
        return torch.nn.grad.conv2d_weight(x, w_shape, d, self.stride, 0, self.dilation, self.groups)

    def bias_grad(self, d):
        return d.sum((0, 2, 3))

    def to_matrix_grad(self, d):
        b, o, h, w = d.shape
        self._out_hw = (h, w)
        return d.permute(0, 2, 3, 1).reshape(b * h * w, self.groups, o // self.groups)

    def from_matrix_grad(self, g, x_shape):
        b, c, h, w = x_shape
        l = self._out_hw[0] * self._out_hw[1]
        cols = g.reshape(b, l, -1).transpose(1, 2)  # (B, C*kh*kw, L), unfold's order
        return F.fold(cols, (h, w), self.kernel, dilation=self.dilation, stride=self.stride)


def conv_layout(conv: nn.Conv1d | nn.Conv2d, mapping: ArrayMapping, kernel_aligned: bool) -> ConvLayout:
    """The layout of a PyTorch convolution (1-d as 2-d of height one)."""
    kernel = pair(conv.kernel_size)
    dilation = pair(conv.dilation)
    pre_pad, mode = _explicit_padding(conv, kernel, dilation)
    return ConvLayout(
        mapping,
        kernel=kernel,
        stride=pair(conv.stride),
        dilation=dilation,
        groups=conv.groups,
        in_channels=conv.in_channels,
        out_channels=conv.out_channels,
        aligned=kernel_aligned and kernel[0] * kernel[1] <= mapping.rows,
        pre_pad=pre_pad,
        padding_mode=mode,
    )


def pair(v: tuple[int, ...]) -> tuple[int, int]:
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
