"""The exact IR-drop solver against an independent nodal analysis, and the first-order model."""

import numpy as np
import pytest
import torch

from cimkit.errors import InputError
from cimkit.sim import first_order_ir_drop, solve_ir_drop


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


@pytest.mark.parametrize("bad, match", [
    (dict(conductances_s=np.ones(3)), "shape"),
    (dict(voltages_v=np.ones(5)), "voltages_v must have shape"),
    (dict(conductances_s=-np.ones((4, 3))), "non-negative"),
    (dict(voltages_v=np.array([1, np.nan, 0, 0])), "non-finite"),
    (dict(wire_resistance_ohm=-1.0), "wire_resistance_ohm"),
])
def test_bad_input(bad, match):
    args = dict(conductances_s=np.full((4, 3), 1e-5), voltages_v=np.ones(4), wire_resistance_ohm=1.0)
    args.update(bad)
    with pytest.raises(InputError, match=match):
        solve_ir_drop(**args)
