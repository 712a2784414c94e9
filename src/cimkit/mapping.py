"""Layer -> arrays: the one place that decides how a weight matrix is laid onto crossbars.

The functional simulator partitions a weight matrix into exactly the arrays, weight slices and input
passes described here, and the cost model counts reads, conversions and area from the same object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    def outputs_per_array(self) -> int:
        """Outputs (weights of one row) whose cells fit side by side in one array's columns (at least 1)."""
        return max(1, self.cols // self.columns_per_weight)

    @property
    def col_tiles(self) -> int:
        return ceil_div(self.used_columns, self.cols)

    @property
    def groups_per_array(self) -> int:
        """Groups sharing one array (block-diagonal packing of depthwise and small grouped layers)."""
        return int(
            arrays_for(
                np.array(self.in_features),
                np.array(self.out_features),
                np.array(self.groups),
                self.rows,
                self.cols,
                self.rows_per_tile,
                self.columns_per_weight,
            )[3]
        )

    @property
    def arrays(self) -> int:
        return ceil_div(self.groups, self.groups_per_array) * self.row_tiles * self.col_tiles

    @property
    def cells_used(self) -> int:
        return cells_for(self.in_features, self.out_features, self.groups, self.columns_per_weight)

    @property
    def utilization(self) -> float:
        """Fraction of the mapped arrays' cells that hold a weight."""
        return self.cells_used / (self.arrays * self.rows * self.cols)

    @property
    def adc_conversions_per_vector(self) -> int:
        """ADC conversions for one input vector: every row block, slice, output and input pass
        (a differential pair is subtracted in analog and converted once)."""
        return self.groups * self.row_tiles * self.slices * self.out_features * self.input_passes


# ---- the formulas, written so that they also run elementwise on numpy integer arrays (the cost model
# evaluates thousands of configurations at once with exactly these) -------------------------------
def ceil_div(a, b):
    """ceil(a / b) for positive integers (Python ints or numpy arrays)."""
    return -(-a // b)


def slices_for(weight_bits, bits_per_cell, differential):
    """Cells per weight magnitude: the stored bits (one fewer with a differential pair) over the
    bits per cell, at least one."""
    stored = weight_bits - differential
    return (
        np.maximum(1, ceil_div(stored, bits_per_cell))
        if isinstance(stored, np.ndarray)
        else max(1, ceil_div(stored, bits_per_cell))
    )


def rows_per_tile_for(rows, kernel_size, kernel_aligned):
    """Rows used per array: whole K-tap kernels when kernel-aligned (and a kernel fits), else all rows."""
    aligned = (rows // kernel_size) * kernel_size
    use = kernel_aligned & (kernel_size > 1) & (kernel_size <= rows)
    return np.where(use, aligned, rows) if isinstance(use, np.ndarray) else (aligned if use else rows)


def arrays_for(in_features, out_features, groups, rows, cols, rows_per_tile, columns_per_weight):
    """Arrays of one layer copy, with small groups (depthwise) packed block-diagonally into arrays."""
    row_tiles = ceil_div(in_features, rows_per_tile)
    col_tiles = ceil_div(out_features * columns_per_weight, cols)
    per_array = np.minimum(rows // np.maximum(in_features, 1), cols // np.maximum(out_features * columns_per_weight, 1))
    packable = (row_tiles == 1) & (col_tiles == 1)
    groups_per_array = np.where(packable, np.maximum(per_array, 1), 1)
    return ceil_div(groups, groups_per_array) * row_tiles * col_tiles, row_tiles, col_tiles, groups_per_array


def rows_written_per_array_for(in_features, rows_per_tile, groups_per_array):
    """Rows written into one array when a matrix is (re)programmed: its rows in that array (whole groups
    packed block-diagonally each add theirs); an array writes one row at a time."""
    return np.minimum(in_features, rows_per_tile) * groups_per_array


def cells_for(in_features, out_features, groups, columns_per_weight):
    """Cells a matrix occupies (and that programming it writes): every weight on its columns."""
    return groups * in_features * out_features * columns_per_weight


def input_passes(spec: HardwareSpec) -> int:
    """Array reads (and ADC conversions) per input vector, from ``periphery.dac_mode`` (``DAC_MODES``)."""
    return int(spec.periphery.input_passes)


def pulses_per_read(spec: HardwareSpec) -> int:
    """Input pulses within one array read (an integrating converter sums them), from ``DAC_MODES``."""
    return int(spec.periphery.pulses_per_read)


def weight_slices(spec: HardwareSpec) -> int:
    """Cells needed per weight magnitude (per polarity with a differential pair)."""
    if spec.weight_bits is None:
        return 1
    return slices_for(spec.weight_bits, spec.device.bits_per_cell, int(spec.array.signed_mapping == "differential"))


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
    aligned = spec.array.conv_mapping == "kernel_aligned"
    if aligned and 1 < kernel_size <= rows and in_features % kernel_size:
        raise MappingError(f"{name}: {in_features} rows is not a whole number of {kernel_size}-tap kernels")
    rows_per_tile = rows_per_tile_for(rows, kernel_size, aligned)
    return ArrayMapping(
        in_features=in_features,
        out_features=out_features,
        groups=groups,
        rows=rows,
        cols=spec.array.cols,
        rows_per_tile=rows_per_tile,
        row_tiles=ceil_div(in_features, rows_per_tile),
        slices=weight_slices(spec),
        bits_per_cell=spec.device.bits_per_cell,
        differential=spec.array.signed_mapping == "differential",
        input_passes=input_passes(spec),
        kernel_size=kernel_size,
    )
