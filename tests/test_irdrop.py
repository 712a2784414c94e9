"""The exact IR-drop solver against an independent nodal analysis, and the first-order model."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from cimkit.errors import InputError
from cimkit.sim import first_order_ir_drop, ir_drop_transfer, irdrop, solve_ir_drop
from cimkit.sim.irdrop import ir_drop_transfers


def reference_currents(g, v, r):
    """Dense modified nodal analysis built resistor by resistor (independent of the solver)."""
    rows, cols = g.shape
    row = lambda i, j: i * cols + j  # noqa: E731
    col = lambda i, j: rows * cols + i * cols + j  # noqa: E731
    n = 2 * rows * cols
    a = np.zeros((n, n))
    b = np.zeros(n)

    def resistor(p, q, cond):  # q = None: to a fixed potential handled by the caller
        a[p, p] += cond
        if q is not None:
            a[q, q] += cond
            a[p, q] -= cond
            a[q, p] -= cond

    for i in range(rows):
        resistor(row(i, 0), None, 1 / r)
        b[row(i, 0)] += v[i] / r
        for j in range(cols):
            if j + 1 < cols:
                resistor(row(i, j), row(i, j + 1), 1 / r)
            if i + 1 < rows:
                resistor(col(i, j), col(i + 1, j), 1 / r)
            resistor(row(i, j), col(i, j), g[i, j])
    for j in range(cols):
        resistor(col(rows - 1, j), None, 1 / r)
    x = np.linalg.solve(a, b)
    return np.array([x[col(rows - 1, j)] / r for j in range(cols)])


@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (6, 2), (5, 5)])
@pytest.mark.parametrize("r", [0.1, 5.0, 300.0])
def test_exact_to_1e9_against_independent_nodal_analysis(shape, r):
    rng = np.random.default_rng(shape[0] * 10 + shape[1])
    g = rng.uniform(1e-6, 1e-3, shape)
    v = rng.uniform(-0.5, 0.5, shape[0])
    got = solve_ir_drop(g, v, r)
    ref = reference_currents(g, v, r)
    assert np.allclose(got, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


def test_single_cell_closed_form():
    assert solve_ir_drop(np.array([[1e-3]]), np.array([1.0]), 10.0)[0] == pytest.approx(1 / (20 + 1000), rel=1e-12)


def test_batches_numpy_and_torch_in_and_out():
    rng = np.random.default_rng(0)
    g = rng.uniform(1e-6, 1e-4, (16, 12))
    v = rng.uniform(0, 0.3, (7, 16))
    out = solve_ir_drop(g, v, 2.0)
    assert out.shape == (7, 12) and isinstance(out, np.ndarray)
    tout = solve_ir_drop(torch.tensor(g), torch.tensor(v), 2.0)
    assert isinstance(tout, torch.Tensor) and tout.dtype == torch.float64 and np.allclose(tout.numpy(), out)
    assert np.allclose(solve_ir_drop(g, v[3], 2.0), out[3])
    assert np.allclose(solve_ir_drop(g.T.copy(), rng.uniform(0, 0.3, (3, 12)), 2.0).shape, (3, 16))


def test_zero_wire_resistance_is_ohms_law_and_drop_only_lowers_current():
    rng = np.random.default_rng(1)
    g = rng.uniform(1e-6, 1e-4, (8, 8))
    v = rng.uniform(0, 0.5, (4, 8))
    assert np.allclose(solve_ir_drop(g, v, 0.0), v @ g)
    assert np.all(solve_ir_drop(g, v, 5.0) < v @ g)


def test_first_order_error_is_second_order_in_wire_resistance():
    rng = np.random.default_rng(2)
    g = rng.uniform(1e-6, 1e-4, (32, 32))
    v = rng.uniform(0, 0.5, (8, 32))
    errs = []
    for r in (0.5, 1.0, 2.0):
        exact = solve_ir_drop(g, v, r)
        first = v @ first_order_ir_drop(torch.tensor(g), r).numpy()
        errs.append(np.abs(first - exact).max())
    assert 3.2 < errs[1] / errs[0] < 4.8 and 3.2 < errs[2] / errs[1] < 4.8


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(conductances_s=np.ones(3)), "shape"),
        (dict(voltages_v=np.ones(5)), "voltages_v must have shape"),
        (dict(conductances_s=-np.ones((4, 3))), "non-negative"),
        (dict(voltages_v=np.array([1, np.nan, 0, 0])), "non-finite"),
        (dict(wire_resistance_ohm=-1.0), "wire_resistance_ohm"),
    ],
)
def test_bad_input(bad, match):
    args = dict(conductances_s=np.full((4, 3), 1e-5), voltages_v=np.ones(4), wire_resistance_ohm=1.0)
    args.update(bad)
    with pytest.raises(InputError, match=match):
        solve_ir_drop(**args)


def sparse_reference_transfer(g, r):
    """T of one array by a sparse LU of the full nodal matrix (the solver cimkit used before the
    block elimination): row-node voltages first, then column-node ones; one solve per row driver."""
    rows, cols = g.shape
    n = rows * cols
    w = 1.0 / r
    idx = np.arange(n).reshape(rows, cols)
    gi = g.ravel()
    row_diag = np.full((rows, cols), 2 * w)
    row_diag[:, -1] = w
    col_diag = np.full((rows, cols), 2 * w)
    col_diag[0, :] = w
    a_i, a_j = [np.arange(2 * n)], [np.arange(2 * n)]
    a_v = [np.concatenate([row_diag.ravel() + gi, col_diag.ravel() + gi])]
    left, right = idx[:, :-1].ravel(), idx[:, 1:].ravel()
    up, down = idx[:-1, :].ravel() + n, idx[1:, :].ravel() + n
    cell = np.arange(n)
    for p, q, v in ((left, right, -w), (up, down, -w), (cell, cell + n, -gi)):
        a_i += [p, q]
        a_j += [q, p]
        a_v += [np.broadcast_to(v, p.shape)] * 2
    a = sp.csc_matrix((np.concatenate(a_v), (np.concatenate(a_i), np.concatenate(a_j))), shape=(2 * n, 2 * n))
    rhs = np.zeros((2 * n, rows))
    rhs[np.arange(rows) * cols, np.arange(rows)] = w
    sol = spla.splu(a, permc_spec="MMD_AT_PLUS_A").solve(rhs)
    return sol[n + (rows - 1) * cols + np.arange(cols), :].T * w


def assert_transfers_equal(got, ref, rtol=1e-9):
    """Agreement to ``rtol`` of each array's largest entry (tiny entries are sums of long paths)."""
    assert got.shape == ref.shape
    scale = np.abs(ref).max(axis=(-2, -1), keepdims=True)
    assert np.all(np.abs(got - ref) <= rtol * scale), np.max(np.abs(got - ref) / np.where(scale > 0, scale, 1))


SHAPES = [(1, 1), (1, 9), (9, 1), (3, 4), (6, 2), (5, 5), (7, 12), (13, 5), (16, 16)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("r", [0.01, 1.0, 300.0])
def test_batch_equals_per_array_sparse_reference(shape, r):
    rng = np.random.default_rng(100 * shape[0] + shape[1])
    g = rng.uniform(1e-6, 1e-3, (3,) + shape)
    g[1].flat[rng.integers(g[1].size)] = 0.0  # an unprogrammed cell
    got = ir_drop_transfers(g, r)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    assert_transfers_equal(got, np.stack([sparse_reference_transfer(x, r) for x in g]))
    assert_transfers_equal(ir_drop_transfer(g[2], r), got[2], rtol=1e-12)


def test_rram_22nm_range_against_sparse_reference_to_1e_11():
    g_min, g_max = 1 / 900e3, 1 / 6e3  # the rram-22nm preset's cells, 1 ohm wire segments
    g = np.random.default_rng(7).uniform(g_min, g_max, (2, 40, 32))
    got = ir_drop_transfers(torch.tensor(g), 1.0)
    assert_transfers_equal(got, np.stack([sparse_reference_transfer(x, 1.0) for x in g]), rtol=1e-11)


@pytest.mark.parametrize("shape", [(4, 3), (2, 5)])
def test_batch_gives_the_nodal_currents(shape):
    rng = np.random.default_rng(3)
    g = rng.uniform(1e-6, 1e-3, (2,) + shape)
    v = rng.uniform(-0.5, 0.5, shape[0])
    for k, t in enumerate(ir_drop_transfers(g, 5.0)):
        ref = reference_currents(g[k], v, 5.0)
        assert np.allclose(v @ t, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


def test_direct_form_of_the_row_chains_when_the_outer_products_could_overflow(monkeypatch):
    rng = np.random.default_rng(4)
    g = rng.uniform(1e-6, 1e-3, (2, 9, 6))
    fast = ir_drop_transfers(g, 50.0)
    monkeypatch.setattr(irdrop, "_OUTER_FORM_MAX_LOG", -1.0)
    direct = ir_drop_transfers(g, 50.0)
    assert_transfers_equal(direct, fast, rtol=1e-12)
    assert_transfers_equal(direct, np.stack([sparse_reference_transfer(x, 50.0) for x in g]))


def test_batch_torch_input_threads_and_zero_wire_resistance():
    rng = np.random.default_rng(5)
    g = rng.uniform(1e-6, 1e-4, (5, 6, 7))
    threads = torch.get_num_threads()
    from_np = ir_drop_transfers(g, 2.0)
    assert torch.get_num_threads() == threads  # the solver's single-threaded workers leave it as it was
    assert np.array_equal(ir_drop_transfers(torch.tensor(g), 2.0), from_np)
    assert np.allclose(ir_drop_transfers(torch.tensor(g, dtype=torch.float32), 2.0), from_np, rtol=1e-6)
    same = ir_drop_transfers(g, 0.0)
    assert np.array_equal(same, g) and same is not g
    assert ir_drop_transfers(np.zeros((0, 3, 4)), 1.0).shape == (0, 3, 4)


def test_same_result_in_the_calling_thread(monkeypatch):
    """Without worker threads (one torch thread, or a torch whose thread count is global)."""
    g = np.random.default_rng(6).uniform(1e-6, 1e-3, (5, 8, 6))
    threaded = ir_drop_transfers(g, 3.0)
    monkeypatch.setattr(irdrop, "_thread_local_torch_threads", lambda: False)
    assert np.allclose(ir_drop_transfers(g, 3.0), threaded, rtol=1e-12, atol=0)
    monkeypatch.undo()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert np.allclose(ir_drop_transfers(g, 3.0), threaded, rtol=1e-12, atol=0)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(conductances_s=np.ones((4, 3))), "shape"),
        (dict(conductances_s=np.ones((1, 2, 4, 3))), "shape"),
        (dict(conductances_s=np.ones((2, 0, 3))), "shape"),
        (dict(conductances_s=-np.ones((2, 4, 3))), "non-negative"),
        (dict(conductances_s=np.full((2, 4, 3), np.nan)), "conductances_s contains non-finite"),
        (dict(conductances_s=np.full((2, 4, 3), "x")), "conductances_s must be numeric"),
        (dict(wire_resistance_ohm=-1.0), "wire_resistance_ohm"),
        (dict(wire_resistance_ohm=float("inf")), "wire_resistance_ohm"),
        (dict(wire_resistance_ohm="one"), "wire_resistance_ohm"),
    ],
)
def test_batch_bad_input(bad, match):
    args = dict(conductances_s=np.full((2, 4, 3), 1e-5), wire_resistance_ohm=1.0)
    args.update(bad)
    with pytest.raises(InputError, match=match):
        ir_drop_transfers(**args)
    with pytest.raises(InputError, match="shape"):
        ir_drop_transfer(np.full((2, 4, 3), 1e-5), 1.0)
