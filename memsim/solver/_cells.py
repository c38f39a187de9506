"""Numba kernels of the nonlinear cell currents and their derivatives (kernel-only module).

(Ohmic cells need no kernel: the solver computes g (vr - vc) with numpy.)

Each kernel fills ``i_cell`` (A, row node -> column node), ``d_vr`` = dI/dV(row node) and
``d_vc`` = dI/dV(column node), all (R, C).  For a two-terminal cell d_vc = -d_vr (which
:func:`device_cells_scaled` leaves implied); a 1T1R cell also depends on the absolute column
(source) voltage through the transistor's gate drive, so d_vc != -d_vr there.

The ``*_scaled`` kernels are the built-in RRAM model (``rram_current``: I0 exp(-gap/g0)
sinh(V/V0)) with the per-cell prefactor I0 exp(-gap/g0) computed once per solve
(:func:`rram_scale`) and sinh, cosh from one expm1 (:func:`_sinh_cosh_expm1`): one
transcendental per evaluation instead of three, the same values to a few ulp.  Where every
cell's argument is known up front (the prefactor, the two-terminal cell, a 1T1R cell's first
evaluation at its predicted node) the exponentials are numpy's: its expm1 and exp run in SIMD
lanes (AVX2 / AVX-512 where the CPU has them), several times a loop of scalar ``math`` calls;
the rest of such an evaluation is a kernel on either side of the numpy call.
"""
import math

import numpy as np
from numba import njit

from ..devices.kernels import G0, I0, V0, cell_current, mosfet_current


@njit(cache=True, nogil=True, error_model="numpy")
def device_cells(vr, vc, gap, p_dev, i_cell, d_vr, d_vc):
    n_rows, n_cols = vr.shape
    for i in range(n_rows):
        for j in range(n_cols):
            current, g = cell_current(vr[i, j] - vc[i, j], gap[i, j], p_dev)
            i_cell[i, j] = current
            d_vr[i, j] = g
            d_vc[i, j] = -g


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _transistor(vd, vs, vg, p_mos):
    """Channel current d -> s (A) with d/dvd and d/dvs; drain and source swap for vd < vs."""
    if vd >= vs:
        current, gm, gds = mosfet_current(vg - vs, vd - vs, p_mos)
        return current, gds, -gm - gds
    current, gm, gds = mosfet_current(vg - vd, vs - vd, p_mos)
    return -current, gm + gds, -gds


@njit(cache=True, nogil=True, error_model="numpy")
def series_node(vr, vc, vg, gap, p_dev, p_mos, vd_guess):
    """Internal node voltage of one 1T1R cell: RRAM current (vr -> vd) = channel current (vd -> vc).

    Safeguarded Newton inside the bracket [min(vr, vc), max(vr, vc)], where the mismatch is
    monotone.  Returns (vd, current, d current/d vr, d current/d vc).
    """
    lo = min(vr, vc)
    hi = max(vr, vc)
    if hi == lo:
        i_r, g_r = cell_current(0.0, gap, p_dev)
        i_m, m_d, m_s = _transistor(vr, vc, vg, p_mos)
        return vr, 0.0, g_r * m_d / (g_r + m_d), g_r * m_s / (g_r + m_d)
    vd = min(max(vd_guess, lo), hi)
    tol = 4e-16 * max(abs(lo), abs(hi)) + 1e-300
    for _ in range(200):
        i_r, g_r = cell_current(vr - vd, gap, p_dev)
        i_m, m_d, m_s = _transistor(vd, vc, vg, p_mos)
        mismatch = i_r - i_m  # decreasing in vd
        if mismatch > 0.0:
            lo = vd
        elif mismatch < 0.0:
            hi = vd
        else:
            break
        slope = -(g_r + m_d)
        step = -mismatch / slope if slope < 0.0 else 0.0
        if slope < 0.0 and abs(step) <= tol:
            # Converged.  Tested before the bracket: Newton nears the root from one side (the
            # mismatch is convex or concave there), so vd is a bracket end, and a last step below
            # one ulp would otherwise read as leaving the bracket and start ~50 bisections.
            vd = min(max(vd + step, lo), hi)
            break
        new = vd + step
        if not (lo < new < hi) or slope >= 0.0:
            new = 0.5 * (lo + hi)
        if abs(new - vd) <= tol or hi - lo <= tol:
            vd = new
            break
        vd = new
    i_r, g_r = cell_current(vr - vd, gap, p_dev)
    i_m, m_d, m_s = _transistor(vd, vc, vg, p_mos)
    # Implicit derivative of the series current: d vd = (g_r d vr - m_s d vc) / (g_r + m_d).
    denom = g_r + m_d
    # Both branch currents agree at the root; the one less sensitive to the rounding of vd is
    # the more precise (an off transistor's leakage, not the RRAM's near-zero voltage).
    current = i_m if m_d < g_r else i_r
    return vd, current, g_r * m_d / denom, g_r * m_s / denom


@njit(cache=True, nogil=True, error_model="numpy")
def one_t_one_r_cells(vr, vc, gap, v_gate, p_dev, p_mos, vd, i_cell, d_vr, d_vc):
    """1T1R cells; ``vd`` (R, C) holds the internal-node guesses in and the solutions out."""
    n_rows, n_cols = vr.shape
    for i in range(n_rows):
        vg = v_gate[i]
        for j in range(n_cols):
            node, current, a, b = series_node(vr[i, j], vc[i, j], vg, gap[i, j], p_dev, p_mos,
                                              vd[i, j])
            vd[i, j] = node
            i_cell[i, j] = current
            d_vr[i, j] = a
            d_vc[i, j] = b


# ---------------------------------------------------------------------------------------------
# the built-in RRAM model with its per-cell prefactor computed once
# ---------------------------------------------------------------------------------------------
def rram_scale(gap, p_dev, out):
    """out = I0 exp(-gap / g0) (A): the built-in model's prefactor per cell."""
    np.multiply(gap, -1.0 / p_dev[G0], out=out)
    np.exp(out, out=out)
    out *= p_dev[I0]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sinh_cosh_expm1(e):
    """(sinh x, cosh x) from e = expm1(x): sinh = e (1 + 1 / (1 + e)) / 2 keeps full relative
    precision at small x (no cancellation), cosh = (1 + e + 1 / (1 + e)) / 2."""
    inv = 1.0 / (1.0 + e)
    return 0.5 * e * (1.0 + inv), 0.5 * (1.0 + e + inv)


def device_cells_scaled(vr, vc, scale, p_dev, i_cell, d_vr):
    """:func:`device_cells` for the built-in model, ``scale`` from :func:`rram_scale`, without
    d_vc (a two-terminal cell's is -d_vr): the arguments (vr - vc) / V0 in one pass, their
    expm1 by numpy, sinh and cosh from it in another (:func:`_sinh_cosh_expm1`); ``i_cell``
    holds the exponentials in between."""
    inv_v0 = 1.0 / p_dev[V0]
    _scaled_difference(vr, vc, inv_v0, i_cell)
    np.expm1(i_cell, out=i_cell)
    _device_from_expm1(i_cell, scale, inv_v0, d_vr)


@njit(cache=True, nogil=True, error_model="numpy")
def _scaled_difference(vr, vc, factor, out):
    n_rows, n_cols = vr.shape
    for i in range(n_rows):
        for j in range(n_cols):
            out[i, j] = (vr[i, j] - vc[i, j]) * factor


@njit(cache=True, nogil=True, error_model="numpy")
def _device_from_expm1(i_cell, scale, inv_v0, d_vr):
    """Currents into ``i_cell``, which holds e = expm1((vr - vc) / V0) on entry, and conductances
    into ``d_vr``.  In place through one argument: LLVM's check that the arrays of a loop do not
    overlap fails for two arguments that are the same array, and the loop then runs without
    vector lanes (128x128: 24 us instead of 6)."""
    n_rows, n_cols = i_cell.shape
    for i in range(n_rows):
        for j in range(n_cols):
            sh, ch = _sinh_cosh_expm1(i_cell[i, j])
            a = scale[i, j]
            i_cell[i, j] = a * sh
            d_vr[i, j] = a * inv_v0 * ch


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mismatch(vr, vc, vg, scale, inv_v0, p_mos, vd):
    """The built-in RRAM's current (vr -> vd) and the channel's (vd -> vc) at the node voltage vd:
    (i_r, g_r, i_m, m_d, m_s, slope = g_r + m_d, Newton step (i_r - i_m) / slope or 0)."""
    return _mismatch_expm1(math.expm1((vr - vd) * inv_v0), vc, vg, scale, inv_v0, p_mos, vd)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mismatch_expm1(e, vc, vg, scale, inv_v0, p_mos, vd):
    """:func:`_mismatch` from e = expm1((vr - vd) / V0)."""
    sh, ch = _sinh_cosh_expm1(e)
    i_r = scale * sh
    g_r = scale * inv_v0 * ch
    i_m, m_d, m_s = _transistor(vd, vc, vg, p_mos)
    slope = g_r + m_d
    step = (i_r - i_m) / slope if slope > 0.0 else 0.0
    return i_r, g_r, i_m, m_d, m_s, slope, step


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _node_result(vd, step, i_r, g_r, i_m, m_d, m_s, slope):
    """(vd + step, current, d current/d vr, d current/d vc, d vd/d vr, d vd/d vc) with the last
    Newton step taken to first order: node and current then err by O(step^2)."""
    inv = 1.0 / slope
    current = i_m + m_d * step if m_d < g_r else i_r - g_r * step
    return vd + step, current, g_r * m_d * inv, g_r * m_s * inv, g_r * inv, -m_s * inv


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _bracket(vr, vc, vd_guess, tol_abs):
    """The series node's bracket [lo, hi] (between its two terminals), the guess inside it and
    the stop on a Newton step: an ulp of the terminal voltages, or ``tol_abs`` where larger."""
    lo = min(vr, vc)
    hi = max(vr, vc)
    return lo, hi, min(max(vd_guess, lo), hi), max(4e-16 * max(abs(lo), abs(hi)) + 1e-300, tol_abs)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _series_node_scaled(vr, vc, vg, scale, inv_v0, p_mos, vd_guess, tol_abs):
    """:func:`series_node` for the built-in model (prefactor ``scale``, 1 / V0 = ``inv_v0``).

    The same safeguarded Newton; where it stops on its own step (|step| <= tol), it keeps vd
    and the currents it has just evaluated instead of evaluating them again one sub-ulp step
    further (the two branch currents then agree to that step times the slope, an ulp).
    ``tol_abs`` (V) loosens the stop while the array's own Newton steps are still large: the
    node need not be found to an ulp when the voltages around it are about to move (0 keeps
    the ulp test).
    Returns (vd, current, d current/d vr, d current/d vc, d vd/d vr, d vd/d vc)."""
    lo, hi, vd, tol = _bracket(vr, vc, vd_guess, tol_abs)
    if hi == lo:
        g_r = scale * inv_v0
        i_m, m_d, m_s = _transistor(vr, vc, vg, p_mos)
        denom = g_r + m_d
        return vr, 0.0, g_r * m_d / denom, g_r * m_s / denom, g_r / denom, -m_s / denom
    for _ in range(200):
        i_r, g_r, i_m, m_d, m_s, slope, step = _mismatch(vr, vc, vg, scale, inv_v0, p_mos, vd)
        mismatch = i_r - i_m  # decreasing in vd
        if mismatch > 0.0:
            lo = vd
        elif mismatch < 0.0:
            hi = vd
        else:
            break
        if slope > 0.0 and abs(step) <= tol:
            # the last step taken to first order (an ulp in the ulp test), so a loose tol_abs costs
            # no first-order error; kept inside the bracket
            return _node_result(vd, min(max(vd + step, lo), hi) - vd, i_r, g_r, i_m, m_d, m_s, slope)
        new = vd + step
        if not (lo < new < hi) or slope <= 0.0:
            new = 0.5 * (lo + hi)
        if abs(new - vd) <= tol or hi - lo <= tol:
            vd = new
            break
        vd = new
    i_r, g_r, i_m, m_d, m_s, denom, _ = _mismatch(vr, vc, vg, scale, inv_v0, p_mos, vd)
    current = i_m if m_d < g_r else i_r
    return vd, current, g_r * m_d / denom, g_r * m_s / denom, g_r / denom, -m_s / denom


def one_t_one_r_cells_scaled(vr, vc, scale, p_dev, v_gate, p_mos, state, tol_abs, i_cell, d_vr, d_vc):
    """:func:`one_t_one_r_cells` for the built-in model, ``scale`` from :func:`rram_scale`;
    ``tol_abs`` as in :func:`_series_node_scaled`.

    ``state`` (5, R, C): the internal nodes, the (vr, vc) they were solved at and their
    sensitivities d vd/d vr, d vd/d vc, in and out.  Each cell's Newton starts from the
    first-order prediction vd + (d vd/d vr) (vr - vr_then) + (d vd/d vc) (vc - vc_then), so
    once the array's Newton steps are small one or two evaluations find the node again.  The
    first evaluation's exponentials, at every predicted node, are numpy's (in ``d_vc``, the
    predictions in ``d_vr``); a cell whose prediction is not within one small Newton step takes
    the safeguarded Newton of :func:`_series_node_scaled` from it."""
    inv_v0 = 1.0 / p_dev[V0]
    _predicted_nodes(vr, vc, inv_v0, state, tol_abs, d_vr, d_vc)
    np.expm1(d_vc, out=d_vc)
    _one_t_one_r_from_expm1(vr, vc, scale, inv_v0, v_gate, p_mos, state, tol_abs, i_cell, d_vr, d_vc)


def series_nodes_step(vr, vc, scale, p_dev, v_gate, p_mos, state):
    """One Newton step of every built-in 1T1R cell's internal node ``state[0]`` at once (the
    exponentials by numpy), kept inside its bracket: a guess from far away then reaches the
    straight-line test of :func:`one_t_one_r_cells_scaled` instead of each cell's safeguarded
    Newton.  ``state[3]`` is scratch space, left 0."""
    inv_v0 = 1.0 / p_dev[V0]
    _scaled_difference(vr, state[0], inv_v0, state[3])
    np.expm1(state[3], out=state[3])
    _node_steps(vr, vc, scale, inv_v0, v_gate, p_mos, state)


@njit(cache=True, nogil=True, error_model="numpy")
def _node_steps(vr, vc, scale, inv_v0, v_gate, p_mos, state):
    """state[0] += its Newton step from e = expm1((vr - state[0]) / V0) in ``state[3]``, kept in
    the bracket; state[3] back to 0."""
    n_rows, n_cols = vc.shape
    for i in range(n_rows):
        vg = v_gate[i]
        for j in range(n_cols):
            vd = state[0, i, j]
            lo, hi, _, _ = _bracket(vr[i, j], vc[i, j], vd, 0.0)
            _, _, _, _, _, slope, step = _mismatch_expm1(state[3, i, j], vc[i, j], vg, scale[i, j], inv_v0, p_mos, vd)
            if slope > 0.0:
                state[0, i, j] = min(max(vd + step, lo), hi)
            state[3, i, j] = 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _predicted_nodes(vr, vc, inv_v0, state, tol_abs, node, arg):
    """node = the first-order prediction of each internal node, inside its bracket, and
    arg = (vr - node) / V0, the RRAM's exponent there."""
    n_rows, n_cols = vr.shape
    for i in range(n_rows):
        for j in range(n_cols):
            row = vr[i, j]
            col = vc[i, j]
            guess = state[0, i, j] + state[3, i, j] * (row - state[1, i, j]) + state[4, i, j] * (col - state[2, i, j])
            _, _, vd, _ = _bracket(row, col, guess, tol_abs)
            node[i, j] = vd
            arg[i, j] = (row - vd) * inv_v0


@njit(cache=True, nogil=True, error_model="numpy")
def _one_t_one_r_from_expm1(vr, vc, scale, inv_v0, v_gate, p_mos, state, tol_abs, i_cell, d_vr, d_vc):
    """The cells from their predicted nodes (``d_vr``) and expm1 of the exponents there (``d_vc``).

    Two passes: every cell by the straight-line case (its prediction within one small Newton
    step), then the safeguarded Newton of :func:`_series_node_scaled` for the cells where that
    failed, from their prediction (kept in ``state[0]`` meanwhile).  With the fallback's loop
    inside it, the first pass ran 3.4x slower (128x128: 165 -> 49 us) for the rare cell that
    needs it; every cell gets the same operations as before."""
    n_rows, n_cols = vr.shape
    retry = np.zeros((n_rows, n_cols), dtype=np.bool_)
    failed = 0
    for i in range(n_rows):
        vg = v_gate[i]
        for j in range(n_cols):
            row = vr[i, j]
            col = vc[i, j]
            vd = d_vr[i, j]
            lo, hi, _, tol = _bracket(row, col, vd, tol_abs)
            i_r, g_r, i_m, m_d, m_s, slope, step = _mismatch_expm1(d_vc[i, j], col, vg, scale[i, j], inv_v0, p_mos,
                                                                   vd)
            node, current, a, b, k_r, k_c = _node_result(vd, step, i_r, g_r, i_m, m_d, m_s, slope)
            if not (hi > lo and slope > 0.0 and abs(step) <= tol and lo <= vd + step <= hi):
                retry[i, j] = True
                failed += 1
                node = vd
            state[1, i, j] = row
            state[2, i, j] = col
            _store_cell(state, i_cell, d_vr, d_vc, i, j, node, current, a, b, k_r, k_c)
    if failed == 0:
        return
    for i in range(n_rows):
        vg = v_gate[i]
        for j in range(n_cols):
            if retry[i, j]:
                node, current, a, b, k_r, k_c = _series_node_scaled(vr[i, j], vc[i, j], vg, scale[i, j], inv_v0,
                                                                    p_mos, state[0, i, j], tol_abs)
                _store_cell(state, i_cell, d_vr, d_vc, i, j, node, current, a, b, k_r, k_c)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _store_cell(state, i_cell, d_vr, d_vc, i, j, node, current, a, b, k_r, k_c):
    """One 1T1R cell's results: its node and sensitivities into ``state``, its current and
    derivatives into the cell arrays."""
    state[0, i, j] = node
    state[3, i, j] = k_r
    state[4, i, j] = k_c
    i_cell[i, j] = current
    d_vr[i, j] = a
    d_vc[i, j] = b
