"""IR drop in a resistive crossbar: an exact nodal solver and the first-order model it validates.

Circuit (both models): row i is driven at its left end by a source of ``voltages_v[i]``; every column
is held at 0 V at its bottom end; a wire segment of ``wire_resistance_ohm`` lies between the driver
and the first cell of each row, between neighbouring cells along rows and along columns, and between
the last cell of each column and ground. Cell (i, j) is a conductance ``conductances_s[i, j]`` from
row node (i, j) to column node (i, j). The output is the current into ground of each column.

The network is linear, so the column currents are ``V @ T`` with a transfer matrix T of the array
alone: the simulator folds either model into a static effective conductance, at no run-time cost.

The exact T comes from a direct block elimination of the nodal equations (``ir_drop_transfers``):
the row nodes of each row form a tridiagonal chain whose inverse has a closed form, so they are
eliminated first, exactly; what is left couples the column nodes of neighbouring rows only, a block
tridiagonal SPD system swept row by row with one dense Cholesky factorization per row.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

from ..errors import InputError

ArrayLike = np.ndarray | torch.Tensor
T = TypeVar("T")

# Arrays per torch call in the sweep: large enough to amortize the per-call overhead, small enough
# to keep a job's working set at a few MB whatever the batch.
_JOB_ARRAYS = 16
# Above this range of the row chains' log factors the outer-product form of the cell coupling could
# overflow (exp(600) ~ 4e260); the slower direct form is used instead.
_OUTER_FORM_MAX_LOG = 600.0


def _as_numpy(a: ArrayLike, name: str) -> np.ndarray:
    out = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if not np.issubdtype(out.dtype, np.number):
        raise InputError(f"{name} must be numeric, got dtype {out.dtype}")
    out = out.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{name} contains non-finite values")
    return out


def _wire_resistance(wire_resistance_ohm: float) -> float:
    try:
        r = float(wire_resistance_ohm)
    except (TypeError, ValueError):
        raise InputError(f"wire_resistance_ohm must be a number, got {wire_resistance_ohm!r}") from None
    if not np.isfinite(r) or r < 0:
        raise InputError(f"wire_resistance_ohm must be finite and >= 0, got {wire_resistance_ohm}")
    return r


def _row_chains(gp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of every row's chain of row nodes, in closed form (units of the wire conductance).

    ``gp`` (..., C): cell conductances times the wire resistance. The row nodes of a row have the
    nodal matrix K = tridiag(-1, d, -1), d_j = 2 + gp_j (1 + gp_j at the open far end; at j = 0 one
    of the 2 is the driver's segment). K is an SPD M-matrix, so its inverse is semiseparable:
    K^-1[j, k] = m_k exp(l_k - l_j) for j <= k, with the forward pivots p_0 = d_0,
    p_j = d_j - 1/p_{j-1}, l_j = -sum_{i<j} log p_i (p_i >= 1 before the end, so l falls) and the
    diagonal m_{C-1} = 1/p_{C-1}, m_j = (1 + m_{j+1}/p_j)/p_j. Sums of positive terms only, so no
    cancellation. Returns (l, m), each shaped like ``gp``.
    """
    cols = gp.shape[-1]
    flat = np.ascontiguousarray(gp.reshape(-1, cols).T)  # (C, chains): one contiguous row per step
    d = flat + 2.0
    d[-1] -= 1.0
    p = np.empty_like(d)
    p[0] = d[0]
    for j in range(1, cols):
        np.subtract(d[j], 1.0 / p[j - 1], out=p[j])
    ip = 1.0 / p
    m = np.empty_like(d)
    m[-1] = ip[-1]
    for j in range(cols - 2, -1, -1):
        m[j] = ip[j] * (1.0 + ip[j] * m[j + 1])
    log_f = np.zeros_like(d)
    np.cumsum(np.log(ip[:-1]), axis=0, out=log_f[1:])
    return log_f.T.reshape(gp.shape), m.T.reshape(gp.shape)


def _sweep(gp: torch.Tensor, log_f: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Transfer matrices (b, R, C) of arrays of any shape, in units of the wire conductance.

    The work is R factorizations of C x C matrices, so callers pass the tall orientation (R >= C).

    With the row nodes eliminated, the column nodes of row i obey S_i x_i - x_{i-1} - x_{i+1} = c_i,
    S_i = diag(cd_i + gp_i) - D_i K_i^-1 D_i (cd = 1 on the top row, 2 below: column wire segments
    and, under the last row, the ground segment) and c_i = D_i K_i^-1 e_0 (unit drive of row i).
    Forward elimination: Shat_0 = S_0, Shat_i = S_i - Shat_{i-1}^-1, and the eliminated right-hand
    sides (one column per driven row) chat_i = Shat_{i-1}^-1 chat_{i-1} + c_i e_i^T. The bottom
    column nodes are then Shat_{R-1}^-1 chat_{R-1}: the column currents, as no back substitution is
    needed. Every Shat is SPD (a Schur complement of an SPD matrix), hence Cholesky.
    Returns T and whether every factorization succeeded.
    """
    b, rows, cols = gp.shape
    f64 = torch.float64
    outer = bool((-log_f).max() <= _OUTER_FORM_MAX_LOG) if log_f.numel() else True
    if outer:  # K^-1[j, k] = min(a_j b_k, b_j a_k), a = exp(-l), b = m exp(l) (a/b rises with j)
        ua = gp * torch.exp(-log_f)
        vb = gp * m * torch.exp(log_f)
    else:
        jk = torch.maximum(torch.arange(cols)[:, None], torch.arange(cols)[None, :])
    # c_i = gp * K^-1[:, 0] = gp_j m_j exp(l_j)
    drive = gp * m * torch.exp(log_f)
    diag = gp + 2.0
    diag[:, 0] -= 1.0
    chat = torch.zeros(b, cols, rows, dtype=f64)
    chat[:, :, 0] = drive[:, 0]
    inv_prev = None
    failed = torch.zeros(b, dtype=torch.int32)
    for i in range(rows):
        if outer:
            a_i, b_i = ua[:, i], vb[:, i]
            s = torch.minimum(a_i[:, :, None] * b_i[:, None, :], b_i[:, :, None] * a_i[:, None, :])
        else:
            l_i = log_f[:, i]
            s = torch.exp(-(l_i[:, :, None] - l_i[:, None, :]).abs()) * m[:, i][:, jk]
            s *= gp[:, i, :, None] * gp[:, i, None, :]
        s.neg_()
        s.diagonal(dim1=-2, dim2=-1).add_(diag[:, i])
        if inv_prev is not None:
            s -= inv_prev
        chol, info = torch.linalg.cholesky_ex(s)
        failed |= info
        if i == rows - 1:
            break
        inv_prev = torch.cholesky_inverse(chol)
        chat[:, :, : i + 1] = inv_prev @ chat[:, :, : i + 1]
        chat[:, :, i + 1] = drive[:, i + 1]
    bottom = torch.cholesky_solve(chat, chol)
    return bottom.mT, not bool(failed.any())


@functools.cache
def _thread_local_torch_threads() -> bool:
    """Whether torch.set_num_threads in one thread leaves the others' OpenMP teams alone."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def _in_threads(jobs: list[Callable[[], T]]) -> list[T]:
    """Run ``jobs`` on up to torch.get_num_threads() threads, each running torch single-threaded.

    The sweep is hundreds of small LAPACK and elementwise calls. Run by an OpenMP team, each call ends
    in a barrier that waits for the slowest thread, and on a machine shared with other processes that
    thread is often descheduled: on 2 busy cores a 0.3 s solve took 4 to 35 s that way. Independent
    threads only wait for themselves, at the end; torch calls release the GIL, so they do run in
    parallel (4 arrays of 128 x 128 on 2 idle cores: 0.17 s against 0.31 s in one thread). The team
    size is a per-thread setting with torch's OpenMP backend (set_num_threads also writes a global
    default for threads yet to start, so the caller's count is written back at the end); with other
    backends it is global, and the jobs run in the calling thread as torch is set up.
    """
    threads = torch.get_num_threads()
    if threads == 1 or not _thread_local_torch_threads():
        return [job() for job in jobs]

    def run(job: Callable[[], T]) -> T:
        torch.set_num_threads(1)
        return job()

    try:
        with ThreadPoolExecutor(min(threads, len(jobs))) as pool:
            return list(pool.map(run, jobs))
    finally:
        torch.set_num_threads(threads)


def ir_drop_transfers(conductances_s: ArrayLike, wire_resistance_ohm: float) -> np.ndarray:
    """Exact transfer matrices of a batch of arrays: column currents (A) = voltages (V) @ T[k].

    ``conductances_s``: (batch, rows, cols) in siemens, numpy or torch; ``wire_resistance_ohm``: one
    wire segment (same for every array). Returns float64 numpy (batch, rows, cols); with no wire
    resistance, the conductances themselves.

    A direct solve of the nodal equations (see ``_sweep``): per array, one closed-form tridiagonal
    inverse per row and one dense Cholesky factorization and inverse per row (of the shorter side:
    a wide array is solved as its mirror image, T(G)[i, j] = T(G')[C-1-j, R-1-i] with
    G'[a, b] = G[R-1-b, C-1-a], by reciprocity), in float64: it agrees with a sparse LU of the full
    nodal matrix to ~1e-12 relative. Arrays are solved in parallel threads (see ``_in_threads``).
    """
    g = _as_numpy(conductances_s, "conductances_s")
    if g.ndim != 3 or g.shape[1] == 0 or g.shape[2] == 0:
        raise InputError(f"conductances_s must have shape (batch, rows, cols) with rows, cols >= 1, got {g.shape}")
    if np.any(g < 0):
        raise InputError("conductances_s must be non-negative")
    r = _wire_resistance(wire_resistance_ohm)
    if r == 0 or g.shape[0] == 0:
        return g.copy()
    wide = g.shape[1] < g.shape[2]
    if wide:  # sweep along the longer side: R steps of C^3 work
        g = g[:, ::-1, ::-1].transpose(0, 2, 1)
    gp = np.ascontiguousarray(g) * r
    log_f, m = _row_chains(gp)
    per_job = min(_JOB_ARRAYS, math.ceil(len(gp) / max(1, torch.get_num_threads())))
    parts = [tuple(torch.from_numpy(x[k : k + per_job]) for x in (gp, log_f, m)) for k in range(0, len(gp), per_job)]
    results = _in_threads([functools.partial(_sweep, *part) for part in parts])
    if not all(ok for _, ok in results):
        raise InputError(
            "conductances_s * wire_resistance_ohm is out of the range the solver can factor "
            f"(largest {gp.max():.3g}); the nodal matrix lost positive definiteness in rounding"
        )
    t = torch.cat([x for x, _ in results]).numpy() / r
    if wide:
        t = t[:, ::-1, ::-1].transpose(0, 2, 1)
    if not np.all(np.isfinite(t)):
        raise InputError(f"conductances_s * wire_resistance_ohm overflows the solver (largest {gp.max():.3g})")
    return np.ascontiguousarray(t)


def ir_drop_transfer(conductances_s: ArrayLike, wire_resistance_ohm: float) -> np.ndarray:
    """Exact transfer matrix T (rows, cols) of one array: column currents (A) = voltages (V) @ T.

    ``ir_drop_transfers`` of a batch of one.
    """
    g = _as_numpy(conductances_s, "conductances_s")
    if g.ndim != 2:
        raise InputError(f"conductances_s must have shape (rows, cols), got {g.shape}")
    return ir_drop_transfers(g[None], wire_resistance_ohm)[0]


def solve_ir_drop(conductances_s: ArrayLike, voltages_v: ArrayLike, wire_resistance_ohm: float) -> ArrayLike:
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
            f"voltages_v must have shape ({g_shape[0]},) or (batch, {g_shape[0]}) for {g_shape[0]} rows, got {v.shape}"
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
