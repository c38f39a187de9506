"""Numba kernel of the batched read of a nonlinear crossbar (kernel-only module).

Used by :class:`memsim.nn.tile.NonlinearBatched`, which chooses the parameters and checks
the result against :func:`memsim.solver.solve`.  For given cell currents I (A) the wires are
linear: the drop along row i up to cell j is ``r sum_m I_im (min(m, j) + 1)`` and column node
(i, j) sits ``r sum_m I_mj (R - max(i, m))`` above the sense node (rows driven at their left
end through one segment, columns sensed below row R-1 through one segment).  The cell
voltages u solve ``u = v - drops(f(u))``; the iteration is Chebyshev's on the Jacobian's
eigenvalue interval [1, 1 + lam_max] (Saad, Iterative Methods for Sparse Linear Systems,
2nd ed., Algorithm 12.1), one input vector per thread.
"""
import math

import numpy as np
from numba import njit, prange

from ._cells import _transistor, series_node

#: Newton steps on a 1T1R cell's internal node per sweep (warm-started from the last sweep;
#: the first evaluation solves it fully with the exact solver's series_node).
NODE_STEPS = 2


@njit(cache=True, nogil=True, inline="always")
def _wires(i_cell, r, drop, vc, seg):
    """drop = row-node drop + column-node rise, vc = column-node voltage (both (R, C), V)."""
    n_rows, n_cols = i_cell.shape
    for i in range(n_rows):
        acc = 0.0
        for j in range(n_cols - 1, -1, -1):
            acc += i_cell[i, j]
            drop[i, j] = acc
        acc = 0.0
        for j in range(n_cols):
            acc += drop[i, j]
            drop[i, j] = r * acc
    for j in range(n_cols):
        seg[j] = 0.0
    for i in range(n_rows):
        for j in range(n_cols):
            seg[j] += i_cell[i, j]
            vc[i, j] = seg[j]  # current through the column segment below node (i, j)
    for j in range(n_cols):
        seg[j] = 0.0
    for i in range(n_rows - 1, -1, -1):
        for j in range(n_cols):
            seg[j] += r * vc[i, j]
            vc[i, j] = seg[j]
            drop[i, j] += seg[j]


@njit(cache=True, nogil=True, inline="always")
def _cells(u, vc, vd, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, i_cell, first, exact_node):
    n_rows, n_cols = u.shape
    for i in range(n_rows):
        for j in range(n_cols):
            if one_t and not exact_node:
                vr = u[i, j] + vc[i, j]
                lo = min(vr, vc[i, j])
                hi = max(vr, vc[i, j])
                steps = NODE_STEPS
                if first:  # the series divider of the on-transistor as the first guess
                    g_on = p_mos[0] * max(v_gate - vc[i, j] - p_mos[1], 1e-3)
                    node = vc[i, j] + u[i, j] * prefactor[i, j] * inv_v0 / (prefactor[i, j] * inv_v0 + g_on)
                    steps = NODE_STEPS + 3
                else:
                    node = min(max(vd[i, j], lo), hi)
                for _ in range(steps):
                    e = math.exp((vr - node) * inv_v0)
                    i_r = prefactor[i, j] * 0.5 * (e - 1.0 / e)
                    g_r = prefactor[i, j] * inv_v0 * 0.5 * (e + 1.0 / e)
                    i_m, m_d, _ = _transistor(node, vc[i, j], v_gate, p_mos)
                    node = min(max(node + (i_r - i_m) / (g_r + m_d), lo), hi)
                vd[i, j] = node
                i_cell[i, j] = _transistor(node, vc[i, j], v_gate, p_mos)[0]
            elif one_t:
                node, current, _, _ = series_node(u[i, j] + vc[i, j], vc[i, j], v_gate, gap[i, j], p_dev, p_mos,
                                                  vd[i, j])
                vd[i, j] = node
                i_cell[i, j] = current
            else:
                i_cell[i, j] = prefactor[i, j] * math.sinh(u[i, j] * inv_v0)


@njit(cache=True, parallel=True)
def batched_read(v, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, r, lam_max, max_iter, stop, i_col,
                 iterations):
    """Column currents ``i_col`` (B, C), A, of row voltages ``v`` (B, R), V; ``iterations``
    (B,) receives the sweeps each vector took (max_iter + 1: not converged to ``stop`` V)."""
    n_batch, n_rows = v.shape
    n_cols = prefactor.shape[1]
    theta = 1.0 + 0.5 * lam_max
    delta = 0.5 * lam_max
    for b in prange(n_batch):
        u = np.empty((n_rows, n_cols))
        step = np.empty((n_rows, n_cols))
        i_cell = np.empty((n_rows, n_cols))
        drop = np.empty((n_rows, n_cols))
        vc = np.zeros((n_rows, n_cols))
        vd = np.empty((n_rows, n_cols))
        seg = np.empty(n_cols)
        for i in range(n_rows):
            for j in range(n_cols):
                u[i, j] = v[b, i]
                vd[i, j] = 0.0
        _cells(u, vc, vd, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, i_cell, True, r == 0.0 or lam_max == 0.0)
        done = max_iter + 1
        if r > 0.0 and lam_max > 0.0:
            _wires(i_cell, r, drop, vc, seg)
            for i in range(n_rows):
                for j in range(n_cols):
                    step[i, j] = (v[b, i] - drop[i, j] - u[i, j]) / theta
            sigma = theta / delta
            rho = 1.0 / sigma
            for n in range(max_iter):
                for i in range(n_rows):
                    for j in range(n_cols):
                        u[i, j] += step[i, j]
                _cells(u, vc, vd, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, i_cell, False, False)
                _wires(i_cell, r, drop, vc, seg)
                rho_next = 1.0 / (2.0 * sigma - rho)
                largest = 0.0
                for i in range(n_rows):
                    for j in range(n_cols):
                        s = rho_next * rho * step[i, j] + 2.0 * rho_next / delta * (v[b, i] - drop[i, j] - u[i, j])
                        step[i, j] = s
                        largest = max(largest, abs(s))
                rho = rho_next
                if largest <= stop:
                    done = n + 1
                    break
        else:
            done = 1
        iterations[b] = done
        for j in range(n_cols):
            i_col[b, j] = 0.0
        for i in range(n_rows):
            for j in range(n_cols):
                i_col[b, j] += i_cell[i, j]
