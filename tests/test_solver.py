"""Fast solver (memsim.solve*) against the scipy reference, closed forms and Kirchhoff's law.

Tolerances: ohmic column currents within 1e-9 relative of spsolve;
closed forms with ideal wires within 1e-12 relative; nonlinear cells within 1e-9 relative of
the reference Newton (both converge to 1e-10 or better).
"""
import math
import warnings

import zlib

import numpy as np
import pytest

import memsim
from memsim.circuit.bias import Bias, read_bias
from memsim.solver import effective_matrix, solve, solve_bias, solve_read
from memsim.solver.reference import reference_solve, reference_solve_bias

RTOL_OHMIC = 1e-9
RTOL_CLOSED = 1e-12
RTOL_NONLINEAR = 1e-9


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def random_g(rng, shape, lo=1e-7, hi=1e-3):
    return 10 ** rng.uniform(math.log10(lo), math.log10(hi), shape)


# ---------------------------------------------------------------------------------------------
# ohmic cells
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (5, 8), (8, 5), (33, 17)])
@pytest.mark.parametrize("r", [0.01, 1.0, 100.0])
def test_ohmic_matches_spsolve(shape, r):
    rng = np.random.default_rng(zlib.crc32(repr((shape, r)).encode()))
    xb = memsim.Crossbar.ohmic(random_g(rng, shape), r_row=r, r_col=r * 0.5)
    v = rng.uniform(-0.5, 0.5, shape[0])
    res = solve(xb, v)
    ref = reference_solve(xb, v)
    assert res.engine == "memsim" and res.info["converged"]
    assert res.i_col.shape == (shape[1],) and res.v_row.shape == shape and res.v_col.shape == shape
    assert rel_err(res.i_col, ref.i_col) < RTOL_OHMIC
    assert np.max(np.abs(res.v_row - ref.v_row)) < 1e-10 * 0.5
    assert np.max(np.abs(res.v_col - ref.v_col)) < 1e-10 * 0.5


@pytest.mark.parametrize("shape,r", [((64, 64), 1.0), ((96, 128), 100.0), ((256, 256), 1.0)])
def test_ohmic_matches_spsolve_larger(shape, r):
    rng = np.random.default_rng(7)
    xb = memsim.Crossbar.ohmic(random_g(rng, shape), r_row=r, r_col=r)
    v = rng.uniform(0, 0.3, shape[0])
    assert rel_err(solve(xb, v).i_col, reference_solve(xb, v).i_col) < RTOL_OHMIC


@pytest.mark.parametrize("r_row,r_col", [(0.0, 0.0), (0.0, 3.0), (3.0, 0.0)])
def test_ohmic_zero_wire_resistance(r_row, r_col):
    rng = np.random.default_rng(3)
    g = random_g(rng, (12, 7))
    g[2, :] = 0.0  # an open row of cells is a valid circuit
    g[:, 4] = 0.0
    xb = memsim.Crossbar.ohmic(g, r_row=r_row, r_col=r_col)
    v = rng.uniform(-1, 1, 12)
    res = solve(xb, v)
    if r_row == r_col == 0.0:
        np.testing.assert_allclose(res.i_col, v @ g, rtol=1e-14, atol=0)
        np.testing.assert_array_equal(res.v_row, np.repeat(v[:, None], 7, axis=1))
        np.testing.assert_array_equal(res.v_col, 0.0)
    assert rel_err(res.i_col, reference_solve(xb, v).i_col) < RTOL_OHMIC
    assert res.i_col[4] == 0.0


@pytest.mark.parametrize("r", [0.5, 20.0])
def test_kirchhoff_current_balance(r):
    rng = np.random.default_rng(11)
    xb = memsim.Crossbar.ohmic(random_g(rng, (40, 30), 1e-6, 1e-4), r_row=r, r_col=r)
    v = rng.uniform(0, 0.4, 40)
    res = solve(xb, v, cells=True)
    i_in = (v - res.v_row[:, 0]) / r  # current delivered by each row driver
    assert abs(i_in.sum() - res.i_col.sum()) < 1e-10 * abs(res.i_col.sum())
    # the sense current is the current in the last column segment, and all cells' current
    np.testing.assert_allclose(res.i_col, res.v_col[-1] / r, rtol=1e-8)
    np.testing.assert_allclose(res.i_col, res.i_cell.sum(axis=0), rtol=1e-13)


def test_single_row_ladder_closed_form():
    """One driven row over C equal cells into grounded (ideal) columns: a uniform ladder.

    With 2 cosh(theta) = 2 + G r, the node voltages are
    V_j = V cosh(theta (C - 1/2 - j)) / cosh(theta (C + 1/2)).
    """
    n_cols, g, r, v = 50, 1e-3, 2.0, 0.3
    xb = memsim.Crossbar.ohmic(np.full((1, n_cols), g), r_row=r, r_col=0.0)
    res = solve(xb, [v])
    theta = math.acosh(1 + g * r / 2)
    j = np.arange(n_cols)
    expected = v * np.cosh(theta * (n_cols - 0.5 - j)) / math.cosh(theta * (n_cols + 0.5))
    np.testing.assert_allclose(res.v_row[0], expected, rtol=1e-12)
    np.testing.assert_allclose(res.i_col, g * expected, rtol=1e-12)


def test_single_cell_series():
    xb = memsim.Crossbar.ohmic([[2e-4]], r_row=150.0, r_col=350.0)
    res = solve(xb, [0.25])
    assert res.i_col[0] == pytest.approx(0.25 / (150.0 + 1 / 2e-4 + 350.0), rel=1e-14)


def test_two_by_two_floating_sneak_path():
    """Floating read of (0, 0) in a 2x2 array: the sneak path is three cells in series."""
    g_s, g_u, v = 1e-5, 1e-4, 0.2
    xb = memsim.Crossbar.ohmic([[g_s, g_u], [g_u, g_u]], r_row=0.0, r_col=0.0)
    res = solve_read(xb, 0, 0, v, "floating")
    assert res.i_col[0] == pytest.approx(v * (g_s + g_u / 3), rel=RTOL_CLOSED)
    assert res.i_col[1] == 0.0  # a floating column senses nothing


@pytest.mark.parametrize("scheme", ["floating", "v/2", "v/3", "grounded"])
@pytest.mark.parametrize("shape", [(2, 2), (5, 7), (16, 16)])
def test_ideal_wire_read_closed_forms(scheme, shape):
    """docs/design.md's read formulas: selected g_s, every other cell g_u, ideal wires."""
    n_rows, n_cols = shape
    g_s, g_u, v = 4e-6, 4e-5, 0.2
    g = np.full(shape, g_u)
    row, col = n_rows // 2, n_cols - 1
    g[row, col] = g_s
    xb = memsim.Crossbar.ohmic(g, r_row=0.0, r_col=0.0)
    expected = {
        "floating": v * (g_s + 1 / (1 / ((n_cols - 1) * g_u) + 1 / ((n_rows - 1) * (n_cols - 1) * g_u)
                                    + 1 / ((n_rows - 1) * g_u))),
        "v/2": v * g_s + (n_rows - 1) * g_u * v / 2,
        "v/3": v * g_s + (n_rows - 1) * g_u * v / 3,
        "grounded": v * g_s,
    }[scheme]
    res = solve_read(xb, row, col, v, scheme)
    assert res.i_col[col] == pytest.approx(expected, rel=RTOL_CLOSED)


@pytest.mark.parametrize("scheme", ["floating", "v/2", "v/3", "grounded"])
@pytest.mark.parametrize("r", [0.0, 2.5, 100.0])
def test_ohmic_read_schemes_match_reference(scheme, r):
    rng = np.random.default_rng(5)
    xb = memsim.Crossbar.ohmic(random_g(rng, (9, 12), 1e-6, 1e-4), r_row=r, r_col=2 * r)
    bias = read_bias(9, 12, 4, 7, 0.3, scheme)
    res = solve_bias(xb, bias)
    ref = reference_solve_bias(xb, bias)
    assert rel_err(res.i_col, ref.i_col) < RTOL_OHMIC
    assert np.max(np.abs(res.v_row - ref.v_row)) < 1e-10 * 0.3
    assert res.info["scheme"] == scheme and res.info["selected"] == (4, 7)


def test_general_bias_mixed_floating_lines():
    rng = np.random.default_rng(9)
    xb = memsim.Crossbar.ohmic(random_g(rng, (6, 5), 1e-6, 1e-4), r_row=4.0, r_col=1.0)
    bias = Bias(np.array([0.2, np.nan, -0.1, np.nan, 0.0, 0.3]), np.array([0.0, np.nan, 0.05, 0.0, np.nan]))
    res = solve_bias(xb, bias)
    assert rel_err(res.i_col, reference_solve_bias(xb, bias).i_col) < RTOL_OHMIC
    assert res.i_col[1] == 0.0 and res.i_col[4] == 0.0


def test_batch_and_effective_matrix_agree_with_single_solves():
    rng = np.random.default_rng(2)
    xb = memsim.Crossbar.ohmic(random_g(rng, (12, 10), 1e-6, 1e-4), r_row=5.0, r_col=5.0)
    few = rng.uniform(0, 0.3, (3, 12))
    many = rng.uniform(0, 0.3, (40, 12))  # more vectors than rows: the effective-matrix path
    singles = np.array([solve(xb, x).i_col for x in many])
    res_few = solve(xb, few)
    assert res_few.i_col.shape == (3, 10) and res_few.v_row.shape == (3, 12, 10)
    np.testing.assert_allclose(res_few.i_col, [solve(xb, x).i_col for x in few], rtol=1e-12)
    res_many = solve(xb, many)
    assert res_many.info["method"] == "effective-matrix"
    np.testing.assert_allclose(res_many.i_col, singles, rtol=1e-9)
    np.testing.assert_allclose(res_many.v_row[7], solve(xb, many[7]).v_row, rtol=1e-9)
    assert solve(xb, many, voltages=False).v_row is None
    m = effective_matrix(xb)
    assert m.shape == (10, 12)
    np.testing.assert_allclose(many @ m.T, singles, rtol=1e-9)


@pytest.mark.parametrize("r", [10.0, 100.0])
def test_512_converges(r):
    rng = np.random.default_rng(512)
    xb = memsim.Crossbar.ohmic(rng.uniform(1e-6, 1e-4, (512, 512)), r_row=r, r_col=r)
    v = rng.uniform(0, 0.3, 512)
    res = solve(xb, v)
    assert res.info["converged"] and res.info["residual"] <= 1e-10
    i_in = (v - res.v_row[:, 0]) / r
    assert abs(i_in.sum() - res.i_col.sum()) < 1e-9 * res.i_col.sum()


# ---------------------------------------------------------------------------------------------
# bad input, singular circuits, convergence failures
# ---------------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_value_errors():
    xb = memsim.Crossbar.ohmic(np.full((3, 4), 1e-5))
    with pytest.raises(ValueError, match=r"v must have shape \(3,\)"):
        solve(xb, np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        solve(xb, [0.1, np.nan, 0.2])
    with pytest.raises(ValueError, match="on_fail"):
        solve(xb, np.zeros(3), on_fail="ignore")
    with pytest.raises(ValueError, match="tol"):
        solve(xb, np.zeros(3), tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        solve(xb, np.zeros(3), max_iter=0)
    with pytest.raises(ValueError, match="selected row"):
        solve_read(xb, 3, 0)
    with pytest.raises(ValueError, match="bias scheme"):
        solve_read(xb, 0, 0, scheme="v/4")
    with pytest.raises(ValueError, match="v_row of shape"):
        solve_bias(xb, Bias(np.zeros(2), np.zeros(4)))
    with pytest.raises(ValueError, match="drives no line"):
        solve_bias(xb, Bias(np.full(3, np.nan), np.full(4, np.nan)))


@pytest.mark.parametrize("r", [0.0, 1.0])
def test_isolated_floating_line_is_a_clear_error(r):
    g = np.full((3, 4), 1e-5)
    g[1, :] = 0.0  # row 1 floats in the floating scheme and touches nothing
    xb = memsim.Crossbar.ohmic(g, r_row=r, r_col=r)
    with pytest.raises(ValueError, match=r"singular: floating rows \[1\]"):
        solve_read(xb, 0, 0, 0.2, "floating")
    # driven, the same open row is fine
    assert solve_read(xb, 0, 0, 0.2, "grounded").i_col[0] > 0


def test_convergence_failure_raises_or_warns():
    # nonlinear cells: one Newton step cannot reach tol (an ohmic solve may prove its first step)
    xb = memsim.Crossbar.device(g_read=np.full((4, 4), 1e-4), r_row=10.0, r_col=10.0)
    with pytest.raises(memsim.ConvergenceError) as info:
        solve(xb, np.full(4, 0.2), max_iter=1)
    assert info.value.residual > 1e-10
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = solve(xb, np.full(4, 0.2), max_iter=1, on_fail="warn")
    assert any("did not converge" in str(w.message) for w in caught)
    assert not res.info["converged"]


def test_import_memsim_does_not_load_the_solver():
    import subprocess
    import sys
    code = ("import sys, memsim; assert 'memsim.solver' not in sys.modules; "
            "assert 'numba' not in sys.modules, 'numba imported'; memsim.solve; "
            "assert 'memsim.solver' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# nonlinear cells: RRAM (0T1R) and 1T1R
# ---------------------------------------------------------------------------------------------
def nonlinear_crossbar(kind, shape, r, rng, v_gate=1.8):
    g_read = rng.uniform(6e-6, 1e-4, shape)
    if kind == "device":
        return memsim.Crossbar.device(g_read=g_read, r_row=r, r_col=0.7 * r)
    return memsim.Crossbar.one_t_one_r(g_read=g_read, r_row=r, r_col=0.7 * r, v_gate=v_gate)


@pytest.mark.parametrize("kind", ["device", "1t1r"])
@pytest.mark.parametrize("r", [0.0, 1.0, 100.0])
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (11, 8)])
def test_nonlinear_mvm_matches_reference_newton(kind, r, shape):
    rng = np.random.default_rng(zlib.crc32(repr((kind, r, shape)).encode()))
    xb = nonlinear_crossbar(kind, shape, r, rng)
    v = rng.uniform(-0.4, 0.4, shape[0])  # both polarities: odd RRAM, swapped transistor
    res = solve(xb, v, cells=True)
    ref = reference_solve(xb, v)
    assert res.info["converged"]
    assert rel_err(res.i_col, ref.i_col) < RTOL_NONLINEAR
    assert rel_err(res.i_cell, ref.i_cell) < RTOL_NONLINEAR
    assert np.max(np.abs(res.v_col - ref.v_col)) < 1e-10 * 0.4


@pytest.mark.parametrize("kind", ["device", "1t1r"])
@pytest.mark.parametrize("scheme", ["floating", "v/2", "v/3", "grounded"])
@pytest.mark.parametrize("r", [0.0, 2.0, 100.0])
@pytest.mark.parametrize("shape", [(7, 9), (32, 36)])  # 32x36: Newton from the linear start (1024 cells on)
def test_nonlinear_reads_match_reference_newton(kind, scheme, r, shape):
    rng = np.random.default_rng(17)
    n_rows, n_cols = shape
    # mixed gate drives, some off: rows switched off on purpose
    v_gate = np.where(rng.random(n_rows) < 0.3, 0.0, rng.uniform(0.8, 1.8, n_rows))
    xb = nonlinear_crossbar(kind, shape, r, rng, v_gate=v_gate)
    bias = read_bias(n_rows, n_cols, 2, 3, 0.3, scheme)
    res = solve_bias(xb, bias)
    ref = reference_solve_bias(xb, bias)
    assert rel_err(res.i_col, ref.i_col) < RTOL_NONLINEAR
    assert np.max(np.abs(res.v_row - ref.v_row)) < 1e-9 * 0.3


def test_device_kirchhoff_and_odd_symmetry():
    rng = np.random.default_rng(4)
    xb = nonlinear_crossbar("device", (20, 15), 5.0, rng)
    v = rng.uniform(0, 0.5, 20)
    pos, neg = solve(xb, v), solve(xb, -v)
    np.testing.assert_allclose(neg.i_col, -pos.i_col, rtol=1e-12)  # sinh is odd, wires linear
    i_in = (v - pos.v_row[:, 0]) / 5.0
    assert abs(i_in.sum() - pos.i_col.sum()) < 1e-9 * pos.i_col.sum()
    # nonlinearity: doubling the input more than doubles the current
    assert np.all(solve(xb, 2 * v).i_col > 2 * pos.i_col)


def test_gate_off_isolates_a_1t1r_cell():
    """Only row 2's gate is on: a floating read of (2, 3) then sees its own cell alone.

    The sensed current equals that of a 1x1 crossbar with the same wire path (col + 1 row
    segments, rows - row column segments), up to the transistors' leakage g_leak (1e-12 S).
    """
    rng = np.random.default_rng(8)
    n_rows, n_cols, row, col, r = 6, 5, 2, 3, 10.0
    v_gate = np.zeros(n_rows)
    v_gate[row] = 1.8
    g_read = rng.uniform(6e-6, 1e-4, (n_rows, n_cols))
    xb = memsim.Crossbar.one_t_one_r(g_read=g_read, v_gate=v_gate, r_row=r, r_col=r)
    res = solve_read(xb, row, col, 0.3, "floating")
    alone = memsim.Crossbar.one_t_one_r(gap=xb.gap[row:row + 1, col:col + 1], v_gate=1.8,
                                        r_row=r * (col + 1), r_col=r * (n_rows - row))
    single = solve(alone, [0.3]).i_col[0]
    assert res.i_col[col] == pytest.approx(single, rel=1e-5)
    # and with every gate off nothing but leakage reaches the sense node
    off = memsim.Crossbar.one_t_one_r(gap=xb.gap, v_gate=0.0, r_row=r, r_col=r)
    assert abs(solve(off, np.full(n_rows, 0.3)).i_col).max() < 1e-12 * 0.3 * n_rows * 1.01


def test_1t1r_gate_limits_current():
    rng = np.random.default_rng(12)
    g_read = rng.uniform(5e-5, 1e-4, (4, 4))
    weak = memsim.Crossbar.one_t_one_r(g_read=g_read, v_gate=0.6, r_row=1.0, r_col=1.0)
    strong = memsim.Crossbar.one_t_one_r(g_read=g_read, v_gate=1.8, r_row=1.0, r_col=1.0)
    v = np.full(4, 0.4)
    assert np.all(solve(weak, v).i_col < solve(strong, v).i_col)


@pytest.mark.slow
def test_device_512_at_100_ohm_converges():
    rng = np.random.default_rng(100)
    xb = memsim.Crossbar.device(g_read=rng.uniform(5e-6, 1e-4, (512, 512)), r_row=100.0, r_col=100.0)
    v = rng.uniform(0, 0.3, 512)
    res = solve(xb, v)
    assert res.info["converged"] and res.info["residual"] <= 1e-10
    i_in = (v - res.v_row[:, 0]) / 100.0
    assert abs(i_in.sum() - res.i_col.sum()) < 1e-9 * res.i_col.sum()


# ---------------------------------------------------------------------------------------------
# the direct effective matrix (block elimination) against spsolve, one unit drive per row
# ---------------------------------------------------------------------------------------------
def reference_matrix(xb):
    return np.array([reference_solve(xb, np.eye(xb.rows)[k]).i_col for k in range(xb.rows)]).T


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (9, 13), (13, 9), (24, 24)])
@pytest.mark.parametrize("r_row,r_col", [(2.5, 2.5), (0.01, 0.02), (100.0, 50.0), (0.0, 3.0), (3.0, 0.0),
                                         (0.0, 0.0), (1e4, 1e4)])
def test_effective_matrix_direct_matches_spsolve(shape, r_row, r_col):
    """Stiff wires (0.01 ohm) take the cancellation-free block update, 2.5 ohm the explicit
    inverse, merged lines their closed forms; C > R runs on the adjoint (turned) crossbar."""
    rng = np.random.default_rng(zlib.crc32(repr((shape, r_row, r_col)).encode()))
    g = random_g(rng, shape)
    g[0, -1] = 0.0  # an open cell is a valid circuit
    xb = memsim.Crossbar.ohmic(g, r_row=r_row, r_col=r_col)
    m = effective_matrix(xb)
    assert m.shape == (shape[1], shape[0]) and m.flags.c_contiguous
    ref = reference_matrix(xb)
    if np.max(np.abs(ref)) == 0.0:
        np.testing.assert_array_equal(m, 0.0)
    else:
        assert rel_err(m, ref) < RTOL_OHMIC
    assert np.all(m >= -1e-12 * np.max(np.abs(ref)))  # a passive network: no negative transfer


@pytest.mark.parametrize("r_row,r_col", [(1.0, 1.0), (0.0, 2.0), (2.0, 0.0)])
def test_effective_matrix_open_lines(r_row, r_col):
    """Rows and columns whose cells are all open (G = 0) are valid circuits: zero transfer."""
    rng = np.random.default_rng(29)
    g = random_g(rng, (10, 8))
    g[3, :] = 0.0
    g[:, 5] = 0.0
    xb = memsim.Crossbar.ohmic(g, r_row=r_row, r_col=r_col)
    m = effective_matrix(xb)
    assert rel_err(m, reference_matrix(xb)) < RTOL_OHMIC
    assert np.all(m[:, 3] == 0.0) and np.all(m[5, :] == 0.0)
    assert np.all(effective_matrix(memsim.Crossbar.ohmic(np.zeros((4, 3)), r_row=r_row, r_col=r_col)) == 0.0)


def test_effective_matrix_very_resistive_rows():
    """Row lines whose Green's function spans more than the exponent range (the exp form)."""
    rng = np.random.default_rng(23)
    xb = memsim.Crossbar.ohmic(random_g(rng, (3, 300)), r_row=1e6, r_col=10.0)
    m = effective_matrix(xb)
    assert rel_err(m, reference_matrix(xb)) < RTOL_OHMIC


def test_effective_matrix_methods_agree_and_bad_method():
    rng = np.random.default_rng(21)
    xb = memsim.Crossbar.ohmic(rng.uniform(1e-6, 1e-4, (40, 56)), r_row=2.5, r_col=2.5)
    direct = effective_matrix(xb, method="direct")
    np.testing.assert_allclose(direct, effective_matrix(xb, method="unit-solves"), rtol=1e-9,
                               atol=1e-9 * np.abs(direct).max())
    with pytest.raises(ValueError, match="method must be one of"):
        effective_matrix(xb, method="lu")


@pytest.mark.parametrize("shape,r", [((30, 20), 1.0), ((20, 30), 100.0)])
def test_ohmic_batch_currents_only_match_single_solves(shape, r):
    rng = np.random.default_rng(33)
    xb = memsim.Crossbar.ohmic(rng.uniform(1e-6, 1e-4, shape), r_row=r, r_col=r)
    many = rng.uniform(0, 0.3, (50, shape[0]))
    res = solve(xb, many, voltages=False)
    assert res.info["method"] == "effective-matrix" and res.info["matrix_method"] == "direct"
    assert res.info["converged"] and res.info["check_relative"] < 1e-9
    assert res.v_row is None and res.i_col.shape == (50, shape[1])
    singles = np.array([solve(xb, x).i_col for x in many[:5]])
    np.testing.assert_allclose(res.i_col[:5], singles, rtol=1e-9)
    assert rel_err(res.i_col[3], reference_solve(xb, many[3]).i_col) < RTOL_OHMIC


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (5, 3), (9, 7), (16, 12)])
def test_fused_symmetric_newton_step_matches_generic_kernel(shape):
    """_pcg.newton_step_sym's fused passes (rows four at a time) against its generic passes (the
    _lines kernels that merged lines take)."""
    from memsim.solver import _lines, _pcg
    rng = np.random.default_rng(zlib.crc32(repr(shape).encode()))
    n_rows, n_cols = shape
    g = random_g(rng, shape, 1e-6, 1e-3)
    g_r, g_c = 1 / 2.0, 1 / 7.0
    driven = rng.random(n_rows) < 0.7
    held = rng.random(n_cols) < 0.7
    held[0] = True
    inv_r = np.zeros(shape)
    inv_c = np.zeros(shape)
    _lines.factor_rows(g, g_r, False, driven, inv_r)
    _lines.factor_cols(g, g_c, False, held, inv_c)
    f_row = rng.normal(size=shape) * 1e-5
    f_col = rng.normal(size=shape) * 1e-5
    out = []
    none = (_pcg.NO_GRID, _pcg.NO_GRID, _pcg.NO_FACTOR, _pcg.NO_ORDER)
    for fused in (False, True):
        dr, dc = np.zeros(shape), np.zeros(shape)
        if fused:
            dc[:] = 1e-3  # stale contents: the solve starts from zero whatever dc holds
        _, rel = _pcg.newton_step_sym(f_row, f_col, g, g, g_r, g_c, False, False, driven, held, inv_r, inv_c, 1e-14,
                                      0.0, 1000, True, dr, dc, np.full((7, *shape), np.nan),  # scratch: never read first
                                      _pcg.LINES if fused else _pcg.GENERIC, *none)
        assert rel < 1e-12  # recomputed from dc
        out.append((dr, dc))
    for generic, fused in zip(*out):
        np.testing.assert_allclose(fused, generic, rtol=0, atol=1e-11 * np.abs(generic).max())


# ---------------------------------------------------------------------------------------------
# two-level CG (memsim/solver/coarse.py): resistive wires, long lines
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def two_level_everywhere(monkeypatch):
    """The two-level CG on small arrays too (it is chosen for large ones, where it pays)."""
    from memsim.solver import coarse
    monkeypatch.setattr(coarse, "MIN_CELLS", 0)
    monkeypatch.setattr(coarse, "MIN_COUPLING", 30.0)


def test_two_level_cg_is_chosen_for_long_resistive_lines_only():
    from memsim.solver.coarse import pays
    g = np.full((512, 512), 5e-5)
    assert pays(g, 100.0, 100.0) and pays(np.full((1024, 1024), 5e-5), 10.0, 10.0)
    assert not pays(g, 2.5, 2.5) and not pays(g[:128, :128], 1000.0, 1000.0)


@pytest.mark.parametrize("n,step", [(1, 2), (2, 2), (3, 2), (10, 4), (11, 3), (64, 9)])
def test_coarse_interpolation_is_linear_between_points_on_nodes(n, step):
    from memsim.solver.coarse import interpolation
    lo, hi, w = interpolation(n, step)
    points = sorted(set(range(0, n - 1, step)) | {n - 1})
    assert hi[-1] + 1 == len(points) and np.all((w >= 0) & (w <= 1))
    # linear data on the points is reproduced exactly at every node (x = k); a point node is its point
    x = np.array(points, float)
    np.testing.assert_allclose(w * x[lo] + (1 - w) * x[hi], np.arange(n), rtol=0, atol=1e-12)
    for index, node in enumerate(points):
        assert (lo[node] == index and w[node] == 1.0) or (hi[node] == index and w[node] == 0.0)


@pytest.mark.parametrize("shape,r_row,r_col", [((5, 7), 300.0, 1000.0), ((9, 4), 50.0, 20.0), ((2, 3), 1.0, 1.0)])
def test_coarse_correction_is_the_galerkin_solve_of_the_full_nodal_matrix(shape, r_row, r_col):
    """CoarseGrid.correction against P^T A P built densely from the reference's own assembly."""
    from memsim.solver.coarse import CoarseGrid
    from memsim.solver.reference import _Nodes, _stamp
    rng = np.random.default_rng(zlib.crc32(repr(shape).encode()))
    xb = memsim.Crossbar.ohmic(random_g(rng, shape, 1e-6, 1e-3), r_row=r_row, r_col=r_col)
    v_row = np.where(rng.random(shape[0]) < 0.6, 0.1, np.nan)
    v_col = np.where(rng.random(shape[1]) < 0.6, 0.0, np.nan)
    v_row[0], v_col[0] = 0.1, 0.0
    nodes = _Nodes(xb, Bias(v_row, v_col), False)
    full = nodes.wire_matrix() + _stamp(nodes.count, nodes.row.ravel(), nodes.col.ravel(), xb.g.ravel())
    index = np.concatenate([nodes.row.ravel(), nodes.col.ravel()])
    a = full.toarray()[np.ix_(index, index)]  # fixed driver / sense nodes eliminated: they are known
    grid = CoarseGrid(xb.g, 1 / r_row, 1 / r_col, ~np.isnan(v_row), ~np.isnan(v_col), step=3)

    def dense(n, lo, hi, w):
        p = np.zeros((n, hi[-1] + 1))
        np.add.at(p, (np.arange(n), lo), w)
        np.add.at(p, (np.arange(n), hi), 1 - w)
        return p

    p = np.kron(dense(shape[0], *grid.grid_i), dense(shape[1], *grid.grid_j))
    zero = np.zeros_like(p)
    p_full = np.block([[p, zero], [zero, p]])
    r_coarse = rng.normal(size=(grid.m_i, grid.m_j))
    expected = np.linalg.solve(p_full.T @ a @ p_full, np.concatenate([np.zeros(p.shape[1]), r_coarse.ravel()]))
    expected = expected[p.shape[1]:].reshape(grid.m_i, grid.m_j)
    assert rel_err(grid.correction(r_coarse), expected) < 1e-10


@pytest.mark.parametrize("shape", [(2, 2), (3, 7), (7, 3), (17, 9), (33, 31), (40, 65)])
@pytest.mark.parametrize("r_row,r_col", [(1e6, 1e6), (3e5, 2e6)])
def test_two_level_cg_matches_spsolve(shape, r_row, r_col, two_level_everywhere):
    """Wire resistance for the length: r x (longest line) fixed, so every size takes the coarse path."""
    rng = np.random.default_rng(zlib.crc32(repr((shape, r_row)).encode()))
    n = max(shape)
    xb = memsim.Crossbar.ohmic(rng.uniform(1e-6, 1e-4, shape), r_row=r_row / n, r_col=r_col / n)
    v = rng.uniform(-0.3, 0.3, shape[0])
    res = solve(xb, v)
    assert res.info["converged"] and res.info["coarse_points"] is not None
    ref = reference_solve(xb, v)
    assert rel_err(res.i_col, ref.i_col) < RTOL_OHMIC
    assert np.max(np.abs(res.v_col - ref.v_col)) < 1e-10 * 0.3


@pytest.mark.parametrize("scheme", ["floating", "v/2", "v/3"])
def test_two_level_cg_read_schemes_match_reference(scheme, two_level_everywhere):
    rng = np.random.default_rng(zlib.crc32(scheme.encode()))
    xb = memsim.Crossbar.ohmic(rng.uniform(1e-6, 1e-4, (23, 30)), r_row=5e3, r_col=5e3)
    res = solve_read(xb, 4, 7, 0.2, scheme)
    assert res.info["coarse_points"] is not None
    assert rel_err(res.i_col, reference_solve_bias(xb, read_bias(23, 30, 4, 7, 0.2, scheme)).i_col) < RTOL_OHMIC


def test_two_level_newton_step_matches_fused_kernel():
    """_pcg.newton_step_sym with the coarse correction (floating lines, stale contents in dc)
    against the one-level preconditioner."""
    from memsim.solver import _lines, _pcg
    from memsim.solver.coarse import CoarseGrid
    rng = np.random.default_rng(41)
    shape = (21, 13)
    g = rng.uniform(1e-6, 1e-4, shape)
    g_r, g_c = 1 / 2e3, 1 / 7e3
    driven = rng.random(shape[0]) < 0.7
    held = rng.random(shape[1]) < 0.7
    held[0] = True
    inv_r, inv_c = np.zeros(shape), np.zeros(shape)
    _lines.factor_rows(g, g_r, False, driven, inv_r)
    _lines.factor_cols(g, g_c, False, held, inv_c)
    f_row = rng.normal(size=shape) * 1e-5
    f_col = rng.normal(size=shape) * 1e-5
    grid = CoarseGrid(g, g_r, g_c, driven, held, step=5)
    out = []
    for two_level in (False, True):
        dr, dc = np.zeros(shape), np.full(shape, 1e-3)
        coarse = ((grid.grid_i, grid.grid_j, grid.factor, grid.order) if two_level else
                  (_pcg.NO_GRID, _pcg.NO_GRID, _pcg.NO_FACTOR, _pcg.NO_ORDER))
        _, rel = _pcg.newton_step_sym(f_row, f_col, g, g, g_r, g_c, False, False, driven, held, inv_r, inv_c, 1e-14,
                                      0.0, 1000, False, dr, dc, np.full((7, *shape), np.nan),
                                      _pcg.TWO_LEVEL if two_level else _pcg.LINES, *coarse)
        assert rel < 1e-14
        out.append((dr, dc))
    for single, two in zip(*out):
        np.testing.assert_allclose(two, single, rtol=0, atol=1e-11 * np.abs(single).max())


def test_two_level_cg_cuts_iterations_on_long_resistive_lines(two_level_everywhere, monkeypatch):
    from memsim.solver import coarse
    rng = np.random.default_rng(96)
    xb = memsim.Crossbar.ohmic(rng.uniform(1e-6, 1e-4, (96, 128)), r_row=1e4, r_col=1e4)
    v = rng.uniform(0, 0.3, 96)
    two = solve(xb, v)
    monkeypatch.setattr(coarse, "MIN_COUPLING", math.inf)
    one = solve(xb, v)
    assert two.info["coarse_points"] is not None and one.info["coarse_points"] is None
    assert two.info["cg_iterations"] < one.info["cg_iterations"] / 2
    assert rel_err(two.i_col, one.i_col) < RTOL_OHMIC


def test_warm_up_compiles_every_kind():
    from memsim.solver import warm_up
    times = warm_up()
    assert set(times) == {"ohmic", "ohmic, resistive wires (two-level CG)", "ohmic, ideal wires", "ohmic read schemes",
                          "effective matrix", "device", "1t1r"}
    assert all(t >= 0.0 for t in times.values())


@pytest.mark.parametrize("r", [0.001953125, 1e-3])
def test_currents_through_milliohm_wires_are_within_tol_too(r):
    """Node voltages within tol leave a driver current (v_in - v_row[:, 0]) / r off by up to
    tol v / r: the solver also makes the KCL residual small against the line currents (a 1x1
    array once returned the ideal-wire start, whose driver current is 0 against 5e-8 A)."""
    for g, v in ((np.array([[5e-8]]), [1.0]), (np.full((3, 4), 2e-6), [0.3, 0.1, 0.2])):
        xb = memsim.Crossbar.ohmic(g, r_row=r, r_col=r)
        res = solve(xb, v)
        i_in = (np.asarray(v) - res.v_row[:, 0]) / r
        rounding = len(v) * 4 * np.finfo(float).eps * max(v) / r  # of v_in - v_row in double precision
        assert abs(i_in.sum() - res.i_col.sum()) <= 1e-9 * res.i_col.sum() + rounding
        np.testing.assert_allclose(res.i_col, reference_solve(xb, v).i_col, rtol=1e-9)


def _nodal_matrix(g, r_row, r_col):
    """The ohmic crossbar's nodal matrix (row nodes, then column nodes, row-major), every row
    driven at its left end and every column held at its bottom end, assembled here from its
    stamps: the independent reference for the residual bounds."""
    import scipy.sparse as sp
    n_rows, n_cols = g.shape

    def wire(n, r, open_end):
        lap = 2.0 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
        lap[open_end, open_end] = 1.0  # one neighbour; the other end's second is its driver / sense end
        return lap / r

    rows = sp.kron(sp.eye(n_rows), wire(n_cols, r_row, n_cols - 1))  # driver beside node 0
    cols = sp.kron(wire(n_rows, r_col, 0), sp.eye(n_cols))  # sense end beside node R - 1
    cells = sp.diags(g.ravel())
    return sp.bmat([[rows + cells, -cells], [-cells, cols + cells]]).tocsc()


@pytest.mark.parametrize("shape, r_row, r_col", [((7, 5), 2.0, 1.2), ((12, 30), 1e-3, 50.0), ((1, 6), 3.0, 0.5)])
def test_per_line_residual_bound_holds_and_is_tighter(shape, r_row, r_col):
    """kcl_majorant bounds |J^-1 f| for any residual f (here against spsolve of the assembled
    nodal matrix), equals the uniform bound ||J^-1||_inf ||f||_inf when every residual has the
    same size, is several times tighter when the residuals sit on the column nodes (as after a
    Newton step, whose row equations hold), and is NaN for a NaN residual."""
    from scipy.sparse.linalg import spsolve
    from memsim.solver import _lines
    from memsim.solver.core import _System

    rng = np.random.default_rng(zlib.crc32(repr((shape, r_row, r_col)).encode()))
    g = random_g(rng, shape)
    jac = _nodal_matrix(g, r_row, r_col)
    uniform = _System(memsim.Crossbar.ohmic(g, r_row=r_row, r_col=r_col), np.ones(shape[0], bool),
                      np.ones(shape[1], bool)).inverse_bound
    for trial in range(20):
        f_row = rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 3, shape)
        f_col = rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 3, shape)
        if trial % 4 == 0:
            f_row[:] = 0.0  # a Newton step's residual: column nodes only
        error = spsolve(jac, np.concatenate([f_row.ravel(), f_col.ravel()]))
        bound = _lines.kcl_majorant(f_row, f_col, r_row, r_col)
        largest = max(np.abs(f_row).max(), np.abs(f_col).max())
        assert np.abs(error).max() <= bound * (1 + 1e-9)
        assert bound <= uniform * largest * (1 + 1e-12)
    ones = np.ones(shape)
    assert _lines.kcl_majorant(ones, ones, r_row, r_col) == pytest.approx(uniform, rel=1e-12)
    if shape[0] > 1:
        columns_only = np.zeros(shape)
        columns_only[-1] = 1.0  # the row beside the sense ends
        assert _lines.kcl_majorant(np.zeros(shape), columns_only, r_row, r_col) < uniform / 3
    f_col = np.ones(shape)
    f_col[0, -1] = np.nan
    for r_wire in (r_col, 0.0):  # a merged column's residual too
        assert np.isnan(_lines.kcl_majorant(np.zeros(shape), f_col, r_row, r_wire))
    assert np.isnan(_lines.kcl_majorant(f_col, np.zeros(shape), r_row, r_col))
    assert np.isnan(_lines.kcl_majorant(f_col, np.zeros(shape), 0.0, r_col))


@pytest.mark.parametrize("kind", ["ohmic", "device"])
def test_cg_steps_certified_by_the_residual_bound_are_within_tol(kind, monkeypatch):
    """A CG step that stops on the per-line bound (before its relative tolerance) still leaves
    every node within tol of the solution (a tol = 1e-14 solve), and stops sooner than one that
    may not."""
    from memsim.solver import core

    rng = np.random.default_rng(3)
    g = rng.uniform(6e-6, 1e-4, (96, 96))
    xb = memsim.Crossbar.of_kind(kind, g, r_row=2.0, r_col=1.2)
    v = rng.uniform(0.0, 0.3, 96)
    tight = solve(xb, v, tol=1e-14, on_fail="warn")
    for tol in (1e-10, 1e-8):
        res = solve(xb, v, tol=tol)
        assert res.info["converged"]
        for key in ("v_row", "v_col"):
            assert np.abs(getattr(res, key) - getattr(tight, key)).max() <= tol * v.max()
    certified = solve(xb, v).info["cg_iterations"]
    monkeypatch.setattr(core, "_CG_CERTIFY", 0.0)
    assert certified < solve(xb, v).info["cg_iterations"]


def _exact_inverse_pivots(diag, g_w, driven_end):
    """1 / pivots of one line's tridiagonal block, eliminated from its open end (the last entry of
    ``diag``; the first is the driven or held end) in exact rational arithmetic: T[k, k] = d_k + g
    per wire segment at node k (the end's driver segment where ``driven_end``), T[k, k + 1] = -g."""
    from fractions import Fraction
    g = Fraction(g_w)
    n = len(diag)
    pivot = None
    out = [None] * n
    for k in range(n - 1, -1, -1):
        segments = (k < n - 1) + (k > 0) + (k == 0 and driven_end)
        t = Fraction(diag[k]) + segments * g
        pivot = t if pivot is None else t - g * g / pivot
        out[k] = 1 / pivot
    return np.array([float(x) for x in out])


@pytest.mark.parametrize("g_w, lo, hi", [(0.5, 6e-6, 1e-4), (1e9, 1e-7, 1e-3), (1e-12, 1e-7, 1e-3), (2.0, 0.0, 1e-4)])
def test_line_factors_match_exact_elimination(g_w, lo, hi):
    """factor_rows (four-row ratio chains, rescaled every eight nodes, then vector divisions) and
    factor_cols give each line's inverse pivots to a few ulps of exact rational elimination, also
    for milliohm-against-1e-7 S lines where the textbook floating-point form loses them."""
    from memsim.solver import _lines

    rng = np.random.default_rng(zlib.crc32(repr((g_w, lo, hi)).encode()))
    for shape in ((1, 1), (6, 1), (6, 2), (6, 9), (5, 20), (9, 17)):
        diag = rng.uniform(lo, hi, shape)
        ends = rng.uniform(size=shape[0]) > 0.3
        if lo == 0.0:
            diag[rng.uniform(size=shape) < 0.3] = 0.0  # open cells: every line end driven
            ends[:] = True
        inv = np.empty(shape)
        _lines.factor_rows(diag, g_w, False, ends, inv)
        exact = np.array([_exact_inverse_pivots(diag[i], g_w, ends[i]) for i in range(shape[0])])  # open end right
        np.testing.assert_allclose(inv, exact, rtol=1e-14, atol=0)
        held = ends[:shape[1]] if shape[1] <= shape[0] else np.ones(shape[1], bool)
        _lines.factor_cols(diag, g_w, False, held, inv)
        exact = np.array([_exact_inverse_pivots(diag[::-1, j], g_w, held[j])[::-1] for j in range(shape[1])]).T  # open end at row 0
        np.testing.assert_allclose(inv, exact, rtol=1e-14, atol=0)


def test_largest_update_and_residual_are_nan_when_any_entry_is():
    """max_abs2 (the size of a Newton update and of a KCL residual, tested against tol) keeps a
    NaN: with the kernels' numpy error model a division by zero gives NaN instead of raising, and
    a maximum that skipped it would pass such an iterate as converged."""
    from memsim.solver import _lines

    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(2, 5, 19))
    assert _lines.max_abs2(a, b) == max(np.abs(a).max(), np.abs(b).max())
    for where in ((0, 0), (4, 18), (2, 9)):
        for first in (True, False):
            x, y = a.copy(), b.copy()
            (x if first else y)[where] = np.nan
            assert np.isnan(_lines.max_abs2(x, y))
