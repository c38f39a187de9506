"""Numba kernels of the nonlinear cell currents and their derivatives (kernel-only module).

(Ohmic cells need no kernel: the solver computes g (vr - vc) with numpy.)

Each kernel fills ``i_cell`` (A, row node -> column node), ``d_vr`` = dI/dV(row node) and
``d_vc`` = dI/dV(column node), all (R, C).  For a two-terminal cell d_vc = -d_vr; a 1T1R
cell also depends on the absolute column (source) voltage through the transistor's gate
drive, so d_vc != -d_vr there.
"""
from numba import njit

from ..devices.kernels import cell_current, mosfet_current


@njit(cache=True, nogil=True)
def device_cells(vr, vc, gap, p_dev, i_cell, d_vr, d_vc):
    n_rows, n_cols = vr.shape
    for i in range(n_rows):
        for j in range(n_cols):
            current, g = cell_current(vr[i, j] - vc[i, j], gap[i, j], p_dev)
            i_cell[i, j] = current
            d_vr[i, j] = g
            d_vc[i, j] = -g


@njit(cache=True, nogil=True, inline="always")
def _transistor(vd, vs, vg, p_mos):
    """Channel current d -> s (A) with d/dvd and d/dvs; drain and source swap for vd < vs."""
    if vd >= vs:
        current, gm, gds = mosfet_current(vg - vs, vd - vs, p_mos)
        return current, gds, -gm - gds
    current, gm, gds = mosfet_current(vg - vd, vs - vd, p_mos)
    return -current, gm + gds, -gds


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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
