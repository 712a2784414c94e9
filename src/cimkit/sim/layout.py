"""Layouts: how a layer's inputs meet the arrays of its tile, and how gradients flow back.

A layout knows shapes only: how input codes are placed on array rows (``place``), how the array
matrices are arranged for the fastest product of that placement (``compute_arrays``), how partial
sums come out block by block (``partial_sums``) and back into the layer's output shape
(``finalize``). The datapath stages around it (DAC, noise, ADC, shift-and-add) live in
``kernel.run`` and the programmed chip in ``tile.CrossbarTile``; a layer is a layout plus a tile.

Partial-sum blocks have named dims (``inner_dims``): T row tile, P input pass, B batch, S slice,
G group, N output, L output position. T, P and S are summed by shift-and-add, blocks too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..mapping import ArrayMapping
from .intmm import Int8Split, codes_to_int8, int_product

#: values per block of partial sums: large enough to amortize per-call costs, small enough (8 MB)
#: that a block's product, noise, conversion and shift-and-add run in the last-level cache
CHUNK = 1 << 21

Scratch = Callable[[str, tuple, torch.device, torch.dtype], torch.Tensor]
Block = tuple[torch.Tensor, "torch.Tensor | None", "int | None"]


@dataclass
class Arrays:
    """A tile's effective matrices in one layout's compute form (derived, never saved)."""

    signal: torch.Tensor
    variance: torch.Tensor | None
    int_split: Int8Split | None = None


class Layout:
    """Base of the layouts; subclasses fill in the shape logic."""

    inner_dims: str = ""

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

    def partial_sums(self, xl: torch.Tensor, xl2: torch.Tensor | None, passes: int, code_max: float,
                     arrays: Arrays, scratch: Scratch) -> Iterator[Block]:
        """Yield (partial sums, their read-noise variance or None, pass index or None when the block
        holds all passes) block by block; a block's dims are ``inner_dims``. ``code_max``: the
        largest input code. Blocks may be scratch views, valid until the next one."""
        raise NotImplementedError

    def finalize(self, acc: torch.Tensor) -> torch.Tensor:
        """The reduced partial sums (block dims with T, P, S summed out) in the output layout."""
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

    inner_dims = "BSN"

    def compute_arrays(self, m):
        g, t, rp, s, n = m.shape
        return m.reshape(t, rp, s * n).contiguous()

    def place(self, x):
        m = self.mapping
        pad = m.row_tiles * m.rows_per_tile - x.shape[1]
        if pad:
            x = F.pad(x, (0, pad))
        return x.view(x.shape[0], m.row_tiles, m.rows_per_tile).transpose(0, 1).contiguous()  # (T, PB, Rp)

    def partial_sums(self, xl, xl2, passes, code_max, arrays, scratch):
        m = self.mapping
        t, pb, _ = xl.shape
        b, cols = pb // passes, arrays.signal.shape[-1]
        split = arrays.int_split if xl.device.type == "cpu" and xl.dtype == torch.float32 else None
        x8 = None if split is None else codes_to_int8(xl, code_max)
        per = max(1, CHUNK // (b * cols))  # input passes per block: the block's products stay in cache
        for i in range(t):
            for p0 in range(0, passes, per):
                k = min(per, passes - p0)
                rows = slice(p0 * b, (p0 + k) * b)
                out = scratch("signal", (k * b, cols), xl.device, xl.dtype)
                if x8 is not None:
                    ps = int_product(x8[0][i, rows], x8[1], split, i, out,
                                     scratch("int32", (k * b, cols), xl.device, torch.int32))
                else:
                    ps = torch.mm(xl[i, rows], arrays.signal[i], out=out)
                ps = ps.view(k, b, m.slices, m.out_features)
                var = None
                if xl2 is not None:
                    var = torch.mm(xl2[i, rows], arrays.variance[i],
                                   out=scratch("variance", (k * b, cols), xl.device, xl2.dtype))
                    var = var.view(ps.shape)
                for j in range(k):
                    yield ps[j], None if var is None else var[j], p0 + j

    def finalize(self, acc):
        return acc

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

    ``kernel_aligned`` mappings keep whole kernels in one array and run one dense convolution per
    row tile; otherwise inputs are unfolded (im2col) and all row tiles run in one batched product.
    """

    def __init__(self, mapping: ArrayMapping, *, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], groups: int, in_channels: int, out_channels: int, aligned: bool,
                 pre_pad: tuple[int, int, int, int], padding_mode: str) -> None:
        super().__init__(mapping)
        self.kernel, self.stride, self.dilation, self.groups = kernel, stride, dilation, groups
        self.in_channels, self.out_channels, self.aligned = in_channels, out_channels, aligned
        self.pre_pad, self.padding_mode = pre_pad, padding_mode
        self.inner_dims = "BGSNL" if aligned else "GPBLSN"
        self.ones_w = torch.ones(groups, in_channels // groups, *kernel)
        self._out_hw: tuple[int, int] = (0, 0)

    @property
    def key(self) -> tuple:
        return (type(self).__name__, self.aligned, self.kernel)

    def prepare(self, x):
        if any(self.pre_pad):
            x = F.pad(x, self.pre_pad, mode=self.padding_mode)
        return x

    def compute_arrays(self, m):
        g, t, rp, s, n = m.shape
        mp = self.mapping
        if self.aligned:  # (T, G*S*N, channels per array, kh, kw): one dense convolution per row tile
            cpa = rp // mp.kernel_size
            m = m.reshape(g, t, cpa, mp.kernel_size, s, n).permute(1, 0, 4, 5, 2, 3)
            return m.reshape(t, g * s * n, cpa, *self.kernel).contiguous()
        return m.transpose(0, 1).reshape(t * g, rp, s * n).contiguous()

    def place(self, x):
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

    def partial_sums(self, xl, xl2, passes, code_max, arrays, scratch):
        mp = self.mapping
        g, t, s, n = mp.groups, mp.row_tiles, mp.slices, mp.out_features
        if self.aligned:
            pb = xl.shape[0]
            cpa = mp.rows_per_tile // mp.kernel_size
            for i in range(t):
                outs = []
                for inp, w in ((xl, arrays.signal), (xl2, arrays.variance)):
                    if inp is None:
                        outs.append(None)
                        continue
                    first, channels = i * cpa, min(cpa, inp.shape[2] - i * cpa)
                    tile_in = inp if t == 1 else inp[:, :, first:first + channels]
                    y = F.conv2d(tile_in.reshape(pb, -1, *inp.shape[-2:]), w[i][:, :channels], stride=self.stride,
                                 dilation=self.dilation, groups=g)
                    self._out_hw = tuple(y.shape[-2:])
                    outs.append(y.view(passes, pb // passes, g, s, n, -1))
                for p in range(passes):
                    yield outs[0][p], None if outs[1] is None else outs[1][p], p
            return
        tg, rows_l, _ = xl.shape
        shape = (tg, rows_l, arrays.signal.shape[-1])
        ps = torch.bmm(xl, arrays.signal, out=scratch("signal", shape, xl.device, xl.dtype))
        l = self._out_hw[0] * self._out_hw[1]
        ps = ps.view(t, g, passes, rows_l // passes // l, l, s, n)
        var = None
        if xl2 is not None:
            var = torch.bmm(xl2, arrays.variance, out=scratch("variance", shape, xl.device, xl2.dtype))
            var = var.view(ps.shape)
        for i in range(t):
            yield ps[i], None if var is None else var[i], None

    def finalize(self, acc):
        if not self.aligned:  # (G, B, L, N) -> (B, G, N, L)
            acc = acc.permute(1, 0, 3, 2)
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
    return ConvLayout(mapping, kernel=kernel, stride=pair(conv.stride), dilation=dilation, groups=conv.groups,
                      in_channels=conv.in_channels, out_channels=conv.out_channels,
                      aligned=kernel_aligned and kernel[0] * kernel[1] <= mapping.rows,
                      pre_pad=pre_pad, padding_mode=mode)


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
