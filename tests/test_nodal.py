"""The scipy solvers' shared nodal helpers (memsim/solver/_nodal.py): stamps against matrices
written by hand, the damped Newton against a closed form, its step cap, stall test and failure."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

import memsim
from memsim.circuit.stacked import VerticalArray, read_bias
from memsim.errors import ConvergenceError
from memsim.solver import stacked
from memsim.solver._nodal import branch_stamp, damped_newton, stamp
from memsim.solver.reference import reference_solve

# Node 0 held at V, a resistor R to node 1, and from node 1 to node 2 (held at 0 V) a square-law
# element i = K v^2 (v > 0).  KCL at node 1: (x - V)/R + K x^2 = 0, so
# x = (sqrt(1 + 4 K R V) - 1) / (2 K R).
V, R, K = 1.0, 1e3, 2e-3
X_CLOSED = (np.sqrt(1 + 4 * K * R * V) - 1) / (2 * K * R)
FREE = np.array([1])
WIRES = stamp(3, np.array([0]), np.array([1]), np.array([1 / R])).tocsr()


def residual(v):
    f = WIRES @ v
    i = K * (v[1] - v[2]) ** 2
    f[1] += i
    f[2] -= i
    return f


def jacobian(v):
    g = 2 * K * (v[1] - v[2])
    return WIRES + branch_stamp(3, np.array([1]), np.array([2]), np.array([g]), np.array([-g]))


def lu(matrix):
    return lambda rhs: spsolve(matrix, rhs)


def test_stamps_against_hand_written_matrices():
    # 1 S between nodes 0 and 1, 2 S between 1 and 2
    got = stamp(3, np.array([0, 1]), np.array([1, 2]), np.array([1.0, 2.0])).toarray()
    np.testing.assert_array_equal(got, [[1, -1, 0], [-1, 3, -2], [0, -2, 2]])
    # current 0 -> 2 with d/dv0 = 3 S and d/dv2 = -0.5 S: rows 0 and 2, columns 0 and 2
    got = branch_stamp(3, np.array([0]), np.array([2]), np.array([3.0]), np.array([-0.5])).toarray()
    np.testing.assert_array_equal(got, [[3, 0, -0.5], [0, 0, 0], [-3, 0, 0.5]])
    assert sp.isspmatrix_coo(stamp(2, np.array([0]), np.array([1]), np.array([1.0])))


def test_newton_reaches_the_closed_form():
    start = np.array([V, 0.0, 0.0])
    v, iterations = damped_newton(residual, jacobian, lu, start, FREE, tol=1e-14, max_iter=50)
    assert v[1] == pytest.approx(X_CLOSED, rel=1e-12)
    assert v[0] == V and v[2] == 0.0 and start[1] == 0.0  # fixed nodes kept, start not changed
    assert 1 < iterations < 50


def test_step_is_capped_at_max_step():
    # From x = 1 V the first Newton update is -K/(1/R + 2K) = -0.4 V; the first trial moves max_step.
    trials = []

    def recording(v):
        trials.append(v[1])
        return residual(v)
    damped_newton(recording, jacobian, lu, np.array([V, 1.0, 0.0]), FREE, tol=1e-14, max_iter=50, max_step=0.05)
    assert trials[1] == pytest.approx(1.0 - 0.05, abs=1e-15)


def test_stall_test_accepts_a_noise_floor():
    # Updates that never fall below a 1e-10 V floor (alternating sign, as rounding leaves them):
    # accepted with stall_tol above the floor, a ConvergenceError without it.
    calls = [0]

    def noisy(matrix):
        calls[0] += 1
        return lambda rhs: spsolve(matrix, rhs) + (-1) ** calls[0] * 1e-10
    v, _ = damped_newton(residual, jacobian, noisy, np.array([V, 0.0, 0.0]), FREE, tol=1e-14, max_iter=50,
                         stall_tol=1e-9)
    assert v[1] == pytest.approx(X_CLOSED, abs=3e-10)
    with pytest.raises(ConvergenceError, match=r"the test solve did not converge in 50 iterations \(last update "
                                               r"[12]e-10 V, residual .* A\); raise it") as info:
        damped_newton(residual, jacobian, noisy, np.array([V, 0.0, 0.0]), FREE, tol=1e-14, max_iter=50,
                      what="the test solve", advice="raise it")
    assert 0.9e-10 < info.value.residual < 2.1e-10


def test_no_free_node_is_no_iteration():
    v, iterations = damped_newton(residual, jacobian, lu, np.array([V, 0.5, 0.0]), np.array([], dtype=int),
                                  tol=1e-14, max_iter=5)
    assert iterations == 0 and v[1] == 0.5


def test_both_solvers_report_failure_through_the_driver():
    rng = np.random.default_rng(5)
    xb = memsim.Crossbar.one_t_one_r(g_read=rng.uniform(1e-5, 1e-4, (3, 4)), r_row=2.0, r_col=2.0)
    with pytest.raises(ConvergenceError, match="the reference Newton solve did not converge in 1 iterations"):
        reference_solve(xb, np.full(3, 0.3), max_iter=1)
    array = VerticalArray.one_t_one_r(g_read=rng.uniform(1e-5, 1e-4, (2, 3, 3)), r_plane=3.0, r_pillar=2.0)
    with pytest.raises(ConvergenceError, match="the 3D Newton solve did not converge in 1 iterations"):
        stacked.solve(array, read_bias(array, (1, 1, 1), 0.3, "v/2"), max_iter=1)
