"""A functional, bit-level associative processor (AP): a CAM whose rows are words and whose columns are bits,
computing by ``compare`` (search a key on selected columns of every row at once; matching rows are tagged)
and ``write`` (write a value into selected columns of the tagged rows) passes.

Model (Fouda, Yantir, Eltawil, Kurdahi, "In-memory associative processors: tutorial, potential, and
challenges", IEEE TCAS-II 2022, arXiv 2203.00662; and Yavits et al. / the LUT pass-ordering method of
"In-memory multi-valued associative processor", arXiv 2110.09643):

* state: a boolean matrix, stored column-major as a torch tensor ``mem[column, row]``;
* ``compare(columns, key)``: one pass; tags every row whose bits on ``columns`` equal ``key`` (an empty key
  tags every row). Priced per row searched and per key bit;
* ``write(columns, value)``: one pass; writes ``value`` into ``columns`` of the tagged rows. ``value`` is one
  constant, or one per group (each tile has its own bit-line drivers, so a tile can write its own scalar).
  Priced per row written and per bit;
* per-tile reductions of the tag vector (``count``/``any``, the AP's responder count; Problem 4.1-style
  associative-memory primitive) are one cycle each and combined across the tiles of a group by the
  controller (a digital adder), so a group spread over several tiles computes what one big AP would;
* ``read`` of the first tagged row (first-responder resolution), one pass.

Rows belong to *groups* (one softmax row each); a group longer than ``tile_rows`` spans several tiles that
run the same pass sequence in lock step. Data-dependent control (max search, selection) never changes the
pass sequence: it only enables or disables a write per group (``enable``), so the pass count of a program is
independent of the data and of the number of rows.

Arithmetic is built from truth-table (LUT) passes: ``lut`` enumerates a bit-level function's truth table,
keeps the entries whose outputs differ from their inputs, and orders them so that no row rewritten by one
pass is matched by a later one (the ordering rule of arXiv 2110.09643). An in-place full add has four such
entries, so an m-bit add is 4m compare + 4m write passes = 8m cycles, as the AP tutorial states.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch

from ..errors import InputError

Col = Optional[int]  #: a column index, or None for a constant-zero bit (a field narrower than its operand)
Field = tuple  #: columns of an unsigned integer, least significant first (entries Col)


@dataclass
class PassStats:
    """What a program did, for pricing: pass counts and the cell-bits each kind of pass touched.

    ``compare_row_bits`` sums rows x key bits over compares (every row of the array is searched),
    ``compare_rows`` sums rows over compares (match-line precharge and sense per row), ``write_row_bits``
    sums written rows x written bits over writes. ``by_step`` holds (compares, writes, reads, reductions)
    per named program step."""

    compares: int = 0
    writes: int = 0
    reads: int = 0
    reductions: int = 0
    compare_rows: int = 0
    compare_row_bits: int = 0
    write_row_bits: int = 0
    by_step: dict = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        """One cycle per compare, write, read and tag reduction (assumption: single-cycle passes)."""
        return self.compares + self.writes + self.reads + self.reductions


class AP:
    """An associative processor holding ``groups`` (int64, one group id per row, ids 0..n_groups-1).

    ``tile_rows``: rows per physical array; a group of more rows spans ``ceil(n / tile_rows)`` tiles.
    Columns are allocated on demand (``alloc``); ``columns_used`` is the row width a program needs."""

    def __init__(self, groups: torch.Tensor, n_groups: int, tile_rows: int) -> None:
        if groups.dim() != 1 or groups.numel() == 0:
            raise InputError(f"AP: groups has shape {tuple(groups.shape)}; it must be a non-empty 1-D tensor")
        self.rows = int(groups.numel())
        self.group = groups.to(torch.int64)
        self.n_groups = int(n_groups)
        self.tile_rows = int(tile_rows)
        sizes = torch.bincount(self.group, minlength=self.n_groups)
        self.tiles = int(((sizes + self.tile_rows - 1) // self.tile_rows).sum())
        self.mem = torch.zeros((0, self.rows), dtype=torch.bool)
        self.tag = torch.ones(self.rows, dtype=torch.bool)
        self.stats = PassStats()
        self._write_bits = torch.zeros((), dtype=torch.int64)  # summed lazily (no sync per write)
        self._step = "other"
        with self.step("setup"):
            self.carry = self.alloc(1, clear=True)[0]  # scratch carry/borrow column, kept at 0 between operations

    # ---- bookkeeping -------------------------------------------------------------------------------------
    @contextmanager
    def step(self, name: str):
        """Attribute the passes inside to ``name`` in ``stats.by_step``."""
        before, old = self._counts(), self._step
        self._step = name
        try:
            yield
        finally:
            after = self._counts()
            prev = self.stats.by_step.get(name, (0, 0, 0, 0))
            self.stats.by_step[name] = tuple(p + a - b for p, a, b in zip(prev, after, before))
            self._step = old

    def _counts(self):
        s = self.stats
        return (s.compares, s.writes, s.reads, s.reductions)

    def finish_stats(self) -> PassStats:
        self.stats.write_row_bits = int(self._write_bits)
        return self.stats

    @property
    def columns_used(self) -> int:
        return int(self.mem.shape[0])

    def alloc(self, width: int, *, clear: bool = True) -> Field:
        """``width`` fresh columns. ``clear`` writes them to 0 in one tag-all compare + one write (a real
        array holds stale bits); without it the caller overwrites every row first (a table lookup)."""
        start = self.mem.shape[0]
        self.mem = torch.cat([self.mem, torch.zeros((width, self.rows), dtype=torch.bool)])
        cols = tuple(range(start, start + width))
        if clear and width:
            self.compare((), ())
            self.write(cols, 0)
        return cols

    # ---- the primitives ----------------------------------------------------------------------------------
    def compare(self, columns: Sequence[int], key: Sequence[int]) -> torch.Tensor:
        """One compare pass: tag the rows whose ``columns`` hold ``key`` (bits); returns the tag vector."""
        tag = torch.ones(self.rows, dtype=torch.bool)
        for c, k in zip(columns, key, strict=True):
            tag &= self.mem[c] if k else ~self.mem[c]
        self.tag = tag
        s = self.stats
        s.compares += 1
        s.compare_rows += self.rows
        s.compare_row_bits += self.rows * len(columns)
        return tag

    def write(self, columns: Sequence[int], value, enable: torch.Tensor | None = None) -> None:
        """One write pass: ``value`` into ``columns`` (LSB first) of the tagged rows. ``value``: an int or a
        tuple of bits (the same for all rows), or an int64 tensor of one value per group (per-tile drivers).
        ``enable``: bool per group; rows of disabled groups are not written (per-tile write enable)."""
        rows = self.tag if enable is None else self.tag & enable[self.group]
        if isinstance(value, torch.Tensor):
            v = value[self.group]
            for i, c in enumerate(columns):
                bit = ((v >> i) & 1).bool()
                self.mem[c] = torch.where(rows, bit, self.mem[c])
        else:
            bits = value if isinstance(value, tuple) else tuple((int(value) >> i) & 1 for i in range(len(columns)))
            for c, b in zip(columns, bits, strict=True):
                self.mem[c] = self.mem[c] | rows if b else self.mem[c] & ~rows
        self.stats.writes += 1
        self._write_bits = self._write_bits + rows.sum() * len(columns)

    def count(self) -> torch.Tensor:
        """Tagged rows per group (per-tile responder counts, summed by the controller): one cycle."""
        self.stats.reductions += 1
        return torch.zeros(self.n_groups, dtype=torch.int64).index_add_(0, self.group, self.tag.long())

    def read(self, columns: Sequence[int]) -> torch.Tensor:
        """One read pass: per group, the value in ``columns`` of its first tagged row (0 if none)."""
        self.stats.reads += 1
        val = self.value(columns)
        first = torch.full((self.n_groups,), self.rows, dtype=torch.int64)
        idx = torch.arange(self.rows).masked_fill(~self.tag, self.rows)
        first = first.scatter_reduce(0, self.group, idx, reduce="amin")
        out = torch.zeros(self.n_groups, dtype=torch.int64)
        ok = first < self.rows
        out[ok] = val[first[ok]]
        return out

    # ---- host access (loading data and reading results; not AP passes) -----------------------------------
    def load(self, columns: Field, values: torch.Tensor) -> None:
        """Store ``values`` (int64 per row, two's complement cut to the field) in ``columns`` as the host
        writes the inputs (priced separately as a load, one row per cycle per tile)."""
        for i, c in enumerate(columns):
            self.mem[c] = ((values >> i) & 1).bool()

    def value(self, columns: Sequence[Col]) -> torch.Tensor:
        """The unsigned integer in ``columns`` of every row (for reading results and for checks)."""
        out = torch.zeros(self.rows, dtype=torch.int64)
        for i, c in enumerate(columns):
            if c is not None:
                out |= self.mem[c].long() << i
        return out

    # ---- truth-table passes ------------------------------------------------------------------------------
    def lut(
        self,
        inputs: Sequence[Col],
        outputs: Sequence[int],
        fn: Callable[..., tuple],
        *,
        gate: Sequence[tuple[int, int]] = (),
        enable: torch.Tensor | None = None,
    ) -> None:
        """Apply the bit function ``fn(*input_bits) -> output_bits`` in place on every row (gated to the rows
        whose ``gate`` columns hold the given bits): one compare + one write per truth-table entry whose
        outputs differ from the current bits, in an order where no rewritten row matches a later entry.
        ``outputs`` are positions in ``inputs`` (written columns must be inputs, so unchanged entries are
        skipped); a ``None`` input is a constant 0 (its entries with a 1 are dropped)."""
        live = [(i, c) for i, c in enumerate(inputs) if c is not None]
        written = [c for c in (inputs[o] for o in outputs) if c is not None]
        if len(written) != len(outputs):
            raise ValueError("AP.lut: every output must be an input column, not a constant-zero (None) input")
        for x, y in lut_passes(tuple(c is None for c in inputs), tuple(outputs), fn):
            self.compare([g for g, _ in gate] + [c for _, c in live], [v for _, v in gate] + [x[i] for i, _ in live])
            self.write(written, y, enable)


def lut_passes(zero_mask: tuple, outputs: tuple, fn) -> list:
    """The ordered (input bits, output bits) entries ``AP.lut`` runs (see there). Raises if no order exists."""
    n = len(zero_mask)
    live = [i for i in range(n) if not zero_mask[i]]
    changed = {}
    for bits in itertools.product((0, 1), repeat=len(live)):
        x = [0] * n
        for i, b in zip(live, bits):
            x[i] = b
        y = tuple(fn(*x))
        if y != tuple(x[o] for o in outputs):
            nxt = list(x)
            for o, b in zip(outputs, y):
                nxt[o] = b
            changed[tuple(x)] = (y, tuple(nxt))
    order, done = [], set()
    pending = dict(changed)
    while pending:
        ready = [entry for entry, (_, nxt) in pending.items() if nxt not in pending]
        if not ready:
            raise ValueError("lut_passes: the truth table has a cycle; no pass order exists")
        for entry in sorted(ready):
            order.append((entry, pending.pop(entry)[0]))
            done.add(entry)
    return order
