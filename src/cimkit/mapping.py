"""Layer -> arrays: the one place that decides how a weight matrix is laid onto crossbars.

The functional simulator partitions a weight matrix into exactly the arrays, weight slices and input
passes described here, and the cost model counts reads, conversions and area from the same object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import MappingError
from .spec import HardwareSpec


@dataclass(frozen=True)
class ArrayMapping:
    """How one (per-group) weight matrix of ``in_features`` x ``out_features`` sits on arrays.

    Rows of the matrix (the input dimension) are cut into ``row_tiles`` blocks of ``rows_per_tile``
    rows; each weight takes ``slices`` cells (``columns_per_weight`` columns with a differential
    pair); the columns of one row block fill ``col_tiles`` arrays. ``groups`` independent matrices
    (grouped or depthwise convolution) are mapped the same way.
    """

    in_features: int
    out_features: int
    groups: int
    rows: int
    cols: int
    rows_per_tile: int
    row_tiles: int
    slices: int
    bits_per_cell: int
    differential: bool
    input_passes: int
    kernel_size: int = 1

    @property
    def columns_per_weight(self) -> int:
        return self.slices * (2 if self.differential else 1)

    @property
    def used_columns(self) -> int:
        """Physical columns per row block of one group."""
        return self.out_features * self.columns_per_weight

    @property
    def col_tiles(self) -> int:
        return math.ceil(self.used_columns / self.cols)

    @property
    def arrays(self) -> int:
        return self.groups * self.row_tiles * self.col_tiles

    @property
    def cells_used(self) -> int:
        return self.groups * self.in_features * self.used_columns

    @property
    def utilization(self) -> float:
        """Fraction of the mapped arrays' cells that hold a weight."""
        return self.cells_used / (self.arrays * self.rows * self.cols)

    @property
    def adc_conversions_per_vector(self) -> int:
        """ADC conversions for one input vector: every row block, slice, output and input pass
        (a differential pair is subtracted in analog and converted once)."""
        return self.groups * self.row_tiles * self.slices * self.out_features * self.input_passes


def weight_slices(spec: HardwareSpec) -> int:
    """Cells needed per weight magnitude (per polarity with a differential pair)."""
    if spec.weight_bits is None:
        return 1
    stored_bits = spec.weight_bits - 1 if spec.array.signed_mapping == "differential" else spec.weight_bits
    return max(1, math.ceil(stored_bits / spec.device.bits_per_cell))


def map_matrix(
    in_features: int,
    out_features: int,
    spec: HardwareSpec,
    *,
    kernel_size: int = 1,
    groups: int = 1,
    name: str = "layer",
) -> ArrayMapping:
    """Map a (per-group) matrix with ``in_features`` rows (C_in/groups * K for a convolution with
    ``kernel_size`` = K = kh*kw taps) and ``out_features`` columns onto ``spec``'s arrays."""
    if in_features <= 0 or out_features <= 0 or groups <= 0:
        raise MappingError(
            f"{name}: cannot map a weight matrix of {in_features} x {out_features} in {groups} groups; "
            "all must be positive"
        )
    rows = spec.array.rows
    if kernel_size > 1 and spec.array.conv_mapping == "kernel_aligned" and kernel_size <= rows:
        if in_features % kernel_size:
            raise MappingError(f"{name}: {in_features} rows is not a whole number of {kernel_size}-tap kernels")
        rows_per_tile = (rows // kernel_size) * kernel_size
    else:
        rows_per_tile = rows
    p = spec.periphery
    return ArrayMapping(
        in_features=in_features,
        out_features=out_features,
        groups=groups,
        rows=rows,
        cols=spec.array.cols,
        rows_per_tile=rows_per_tile,
        row_tiles=math.ceil(in_features / rows_per_tile),
        slices=weight_slices(spec),
        bits_per_cell=spec.device.bits_per_cell,
        differential=spec.array.signed_mapping == "differential",
        input_passes=p.input_bits if p.dac_mode == "bit_serial" else 1,
        kernel_size=kernel_size,
    )
