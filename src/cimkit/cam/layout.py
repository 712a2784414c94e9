"""Placing a compiled CAM program on arrays of ``rows`` x ``cols`` features.

Rows (root-to-leaf paths) fill row blocks, features fill feature blocks; an array is one (row block,
feature block) pair, and a match line may be split into segments of ``group_cols`` features that are
evaluated one after another. Two placements:

- ``reorder=False`` (X-TIME style): features in the model's order; each tree's rows kept together,
  trees packed first-fit into row blocks (a tree larger than an array spans whole blocks).
- ``reorder=True`` (MonoSparse style): features sorted by how many rows test them, most tested first,
  so the first segments disable most rows and rarely tested features gather at the end; rows sorted by
  which segments they test, rarest segment first, so that rows leaving a segment all don't-care share
  row blocks and whole segments and arrays can be skipped.

Both the functional check (which rows remain enabled) and the energy model read this one layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mapping import ceil_div
from .program import CamProgram
from .spec import CamSpec


@dataclass(frozen=True)
class CamLayout:
    """A CAM program placed on arrays (``layout``): which program row each physical row slot holds, the
    physical feature order, the match-line segments and the don't-care cells in physical order."""

    spec: CamSpec
    slot_row: np.ndarray  # (blocks * spec.rows,) program row in each physical row slot, -1 = unused
    feature_order: np.ndarray  # (features,) program feature in each physical feature position
    segments: tuple[tuple[int, int, int], ...]  # (feature block, first, last+1) physical feature positions
    dont_care: np.ndarray  # (slots, features) in physical order; unused slots are all don't-care

    @property
    def row_blocks(self) -> int:
        return len(self.slot_row) // self.spec.rows

    @property
    def feature_blocks(self) -> int:
        return ceil_div(len(self.feature_order), self.spec.cols)

    @property
    def used(self) -> np.ndarray:
        """(slots,) True where a slot holds a program row."""
        return self.slot_row >= 0

    def tested_columns(self) -> np.ndarray:
        """(row blocks, segments) how many features of the segment some row of the block tests."""
        t = np.any((~self.dont_care).reshape(self.row_blocks, self.spec.rows, -1), axis=1)  # (blocks, features)
        return np.stack([t[:, a:b].sum(axis=1) for _, a, b in self.segments], axis=1)

    def tested(self) -> np.ndarray:
        """(row blocks, segments) True where some row of the block tests a feature of the segment."""
        return self.tested_columns() > 0

    def array_sparsity(self) -> float:
        """Fraction of don't-care cells over the programmed rows of the arrays that hold any tested cell
        (cells of real features only)."""
        dc = self.dont_care[self.used]
        blocks = np.flatnonzero(self.used) // self.spec.rows
        tested = self.arrays_tested()
        cells = dcs = 0
        for k in range(self.feature_blocks):
            cols = slice(k * self.spec.cols, (k + 1) * self.spec.cols)
            keep = tested[blocks, k]
            cells += dc[keep, cols].size
            dcs += dc[keep, cols].sum()
        return float(dcs / max(cells, 1))

    def arrays_tested(self) -> np.ndarray:
        """(row blocks, feature blocks) True where the array holds at least one tested cell."""
        seg_block = np.array([k for k, _, _ in self.segments])
        tested = self.tested()
        return np.stack([tested[:, seg_block == k].any(axis=1) for k in range(self.feature_blocks)], axis=1)


def _pack_trees(prog: CamProgram, rows: int) -> np.ndarray:
    """First-fit in model order: a tree starts a new block when it does not fit in the current one."""
    slots: list[int] = []
    for r in prog.tree_rows:
        n = r.stop - r.start
        free = (-len(slots)) % rows
        if n > free and free:
            slots.extend([-1] * free)
        slots.extend(range(r.start, r.stop))
    slots.extend([-1] * ((-len(slots)) % rows))
    return np.array(slots, dtype=np.int64)


def layout(prog: CamProgram, spec: CamSpec, *, reorder: bool, sequential: bool) -> CamLayout:
    """The physical placement of ``prog`` on ``spec``'s arrays (see the module docstring)."""
    dc = prog.dont_care
    n_features = prog.n_features
    if reorder:
        feature_order = np.argsort(-(~dc).sum(axis=0), kind="stable")
    else:
        feature_order = np.arange(n_features)
    width = spec.group_cols if sequential else spec.cols
    segments = tuple(
        (a // spec.cols, a, min(a + width, (a // spec.cols + 1) * spec.cols, n_features))
        for k in range(0, n_features, spec.cols)
        for a in range(k, min(k + spec.cols, n_features), width)
    )
    if reorder:
        tested = np.stack([(~dc[:, feature_order[a:b]]).any(axis=1) for _, a, b in segments], axis=1)
        rarity = np.argsort(tested.sum(axis=0), kind="stable")  # rarest segment is the primary key
        order = np.lexsort(tuple(~tested[:, s] for s in rarity[::-1]))
        slot_row = np.concatenate([order, -np.ones((-len(order)) % spec.rows, dtype=np.int64)])
    else:
        slot_row = _pack_trees(prog, spec.rows)
    dont_care = np.ones((len(slot_row), n_features), dtype=bool)
    used = slot_row >= 0
    dont_care[used] = dc[slot_row[used]][:, feature_order]
    return CamLayout(spec, slot_row, feature_order, segments, dont_care)
