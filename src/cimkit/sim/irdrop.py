"""IR drop in a resistive crossbar: an exact nodal solver and the first-order model it validates.

Circuit (both models): row i is driven at its left end by a source of ``voltages_v[i]``; every column
is held at 0 V at its bottom end; a wire segment of ``wire_resistance_ohm`` lies between the driver
and the first cell of each row, between neighbouring cells along rows and along columns, and between
the last cell of each column and ground. Cell (i, j) is a conductance ``conductances_s[i, j]`` from
row node (i, j) to column node (i, j). The output is the current into ground of each column.

The network is linear, so the column currents are ``V @ T`` with a transfer matrix T of the array
alone: the simulator folds either model into a static effective conductance, at no run-time cost.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from ..errors import InputError

ArrayLike = np.ndarray | torch.Tensor


def _as_numpy(a: ArrayLike, name: str) -> np.ndarray:
    out = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if not np.issubdtype(out.dtype, np.number):
        raise InputError(f"{name} must be numeric, got dtype {out.dtype}")
    out = out.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{name} contains non-finite values")
    return out


def _nodal_matrix(g: np.ndarray, r: float) -> sp.csc_matrix:
    """Conductance matrix of the 2*R*C unknowns: row-node voltages first, then column-node ones."""
    rows, cols = g.shape
    n = rows * cols
    w = 1.0 / r
    idx = np.arange(n).reshape(rows, cols)
    gi = g.ravel()
    # row wires: a segment from the driver to column 0 (to a known source) and between neighbours
    row_diag = np.full((rows, cols), 2 * w)
    row_diag[:, -1] = w
    # column wires: between neighbours, and from the last row to ground
    col_diag = np.full((rows, cols), 2 * w)
    col_diag[0, :] = w
    diag = np.concatenate([row_diag.ravel() + gi, col_diag.ravel() + gi])
    a_i = [np.arange(2 * n)]
    a_j = [np.arange(2 * n)]
    a_v = [diag]
    # row neighbours (j, j+1) and column neighbours (i, i+1), both symmetric
    left, right = idx[:, :-1].ravel(), idx[:, 1:].ravel()
    up, down = idx[:-1, :].ravel() + n, idx[1:, :].ravel() + n
    for p, q in ((left, right), (up, down)):
        a_i += [p, q]
        a_j += [q, p]
        a_v += [np.full(p.size, -w)] * 2
    cell = np.arange(n)
    a_i += [cell, cell + n]
    a_j += [cell + n, cell]
    a_v += [-gi, -gi]
    return sp.csc_matrix(
        (np.concatenate(a_v), (np.concatenate(a_i), np.concatenate(a_j))), shape=(2 * n, 2 * n)
    )


def ir_drop_transfer(conductances_s: ArrayLike, wire_resistance_ohm: float) -> np.ndarray:
    """Exact transfer matrix T (rows, cols): column currents (A) = voltages (V) @ T.

    One sparse LU factorization of the nodal system, then one solve per column with the adjoint
    (the system is symmetric): the currents to ground are read off the bottom column nodes.
    """
    g = _as_numpy(conductances_s, "conductances_s")
    if g.ndim != 2:
        raise InputError(f"conductances_s must have shape (rows, cols), got {g.shape}")
    if np.any(g < 0):
        raise InputError("conductances_s must be non-negative")
    r = float(wire_resistance_ohm)
    if not np.isfinite(r) or r < 0:
        raise InputError(f"wire_resistance_ohm must be finite and >= 0, got {wire_resistance_ohm}")
    if r == 0:
        return g.copy()
    rows, cols = g.shape
    n = rows * cols
    lu = spla.splu(_nodal_matrix(g, r), permc_spec="MMD_AT_PLUS_A")
    if rows <= cols:
        rhs = np.zeros((2 * n, rows))
        rhs[np.arange(rows) * cols, np.arange(rows)] = 1.0 / r  # driver current into node (i, 0)
        sol = lu.solve(rhs)
        bottom = n + (rows - 1) * cols + np.arange(cols)
        return (sol[bottom, :] / r).T
    rhs = np.zeros((2 * n, cols))
    rhs[n + (rows - 1) * cols + np.arange(cols), np.arange(cols)] = 1.0 / r
    sol = lu.solve(rhs)
    return sol[np.arange(rows) * cols, :] / r


def solve_ir_drop(
    conductances_s: ArrayLike, voltages_v: ArrayLike, wire_resistance_ohm: float
) -> ArrayLike:
    """Exact column output currents (A) of a crossbar with wire resistance.

    ``conductances_s``: (rows, cols) in siemens; ``voltages_v``: (rows,) or (batch, rows) in volts;
    ``wire_resistance_ohm``: one wire segment. Returns (cols,) or (batch, cols), numpy or torch as
    the voltages were given (torch: same dtype and device as ``voltages_v``).
    """
    v = _as_numpy(voltages_v, "voltages_v")
    g_shape = tuple(conductances_s.shape)
    if len(g_shape) != 2:
        raise InputError(f"conductances_s must have shape (rows, cols), got {g_shape}")
    if v.ndim not in (1, 2) or v.shape[-1] != g_shape[0]:
        raise InputError(
            f"voltages_v must have shape ({g_shape[0]},) or (batch, {g_shape[0]}) for {g_shape[0]} rows, "
            f"got {v.shape}"
        )
    currents = v @ ir_drop_transfer(conductances_s, wire_resistance_ohm)
    if isinstance(voltages_v, torch.Tensor):
        dtype = voltages_v.dtype if voltages_v.is_floating_point() else torch.float64
        return torch.as_tensor(currents, dtype=dtype, device=voltages_v.device)
    return currents


def first_order_ir_drop(conductances_s: torch.Tensor, wire_resistance_ohm: float) -> torch.Tensor:
    """Effective conductances (S) under IR drop to first order in r*G (same circuit as above).

    Currents are taken without drop, the wire drops they cause are summed, and the cell current is
    corrected by its node voltages. Row drop at (i, j): r * sum_{k<=j} sum_{m>=k} G_im * V_i; column
    rise at (i, j): r * sum_{k>=i} sum_{m<=k} G_mj * V_m. Both are linear in V, so the result is a
    static matrix: G_eff = G * (1 - r * (row_term + column_term)). Valid while r * G * N^2 << 1;
    ``solve_ir_drop`` gives the exact answer.
    """
    g = conductances_s
    downstream = torch.flip(torch.cumsum(torch.flip(g, [-1]), -1), [-1])  # sum_{m>=k} G_im
    row_term = torch.cumsum(downstream, -1)
    upstream = torch.cumsum(g, -2)  # sum_{m<=k} G_mj
    col_term = torch.flip(torch.cumsum(torch.flip(upstream, [-2]), -2), [-2])
    return g * (1 - wire_resistance_ohm * (row_term + col_term))
