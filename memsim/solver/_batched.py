"""Numba kernel of the batched read of a nonlinear crossbar (kernel-only module).

Used by :class:`memsim.nn.tile.NonlinearBatched`, which chooses the parameters and checks
the result against :func:`memsim.solver.solve`.  For given cell currents I (A) the wires are
linear: the drop along row i up to cell j is ``r sum_m I_im (min(m, j) + 1)`` and column node
(i, j) sits ``r sum_m I_mj (R - max(i, m))`` above the sense node (rows driven at their left
end through one segment, columns sensed below row R-1 through one segment).  The cell
voltages u solve ``u = v - drops(f(u))``; the iteration is Chebyshev's on the Jacobian's
eigenvalue interval [1, 1 + lam_max] (Saad, Iterative Methods for Sparse Linear Systems,
2nd ed., Algorithm 12.1), input vectors in parallel chunks, each with its own work arrays.
"""
import math

import numpy as np
from numba import njit, prange

from ._cells import _transistor, series_node

#: Newton steps on a 1T1R cell's internal node per sweep, warm-started from the last sweep (the
#: first sweep starts from the on-transistor divider and takes 3 more; on ideal wires, where
#: there is one evaluation only, the exact solver's series_node solves the node fully).
NODE_STEPS = 1


@njit(cache=True, nogil=True, inline="always")
def _sinh(x):
    """sinh(x): its Taylor series to x^15 for |x| <= 1 (relative error below 1e-13, Horner's
    rule, no exp), math.sinh beyond."""
    if abs(x) > 1.0:
        return math.sinh(x)
    x2 = x * x
    return x * (1.0 + x2 / 6.0 * (1.0 + x2 / 20.0 * (1.0 + x2 / 42.0 * (1.0 + x2 / 72.0 * (
        1.0 + x2 / 110.0 * (1.0 + x2 / 156.0 * (1.0 + x2 / 210.0)))))))


@njit(cache=True, nogil=True, inline="always")
def _cells(i, u, vc, vd, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, i_cell, first, exact_node):
    """Currents of the cells of row i (1T1R: and their internal nodes ``vd``)."""
    n_cols = u.shape[1]
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
            current = 0.0
            for _ in range(steps):
                e = math.exp((vr - node) * inv_v0)
                i_r = prefactor[i, j] * 0.5 * (e - 1.0 / e)
                g_r = prefactor[i, j] * inv_v0 * 0.5 * (e + 1.0 / e)
                i_m, m_d, _ = _transistor(node, vc[i, j], v_gate, p_mos)
                new = min(max(node + (i_r - i_m) / (g_r + m_d), lo), hi)
                current = i_m + m_d * (new - node)  # the channel current at the new node, to first order
                node = new
            vd[i, j] = node
            i_cell[i, j] = current
        elif one_t:
            node, current, _, _ = series_node(u[i, j] + vc[i, j], vc[i, j], v_gate, gap[i, j], p_dev, p_mos,
                                              vd[i, j])
            vd[i, j] = node
            i_cell[i, j] = current
        else:
            i_cell[i, j] = prefactor[i, j] * _sinh(u[i, j] * inv_v0)


@njit(cache=True, nogil=True, inline="always")
def _down(v_b, u, step, vc, vd, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, r, i_cell, drop, col, seg,
          first, exact_node):
    """Top to bottom: u += step (not on the first pass), the cell currents, each row's drop
    (``drop``), and the column currents below each node (``col``)."""
    n_rows, n_cols = u.shape
    for j in range(n_cols):
        seg[j] = 0.0
    for i in range(n_rows):
        if not first:
            for j in range(n_cols):
                u[i, j] += step[i, j]
        _cells(i, u, vc, vd, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, i_cell, first, exact_node)
        acc = 0.0
        for j in range(n_cols - 1, -1, -1):
            acc += i_cell[i, j]
            drop[i, j] = acc  # current through the row segment left of node (i, j)
        acc = 0.0
        for j in range(n_cols):
            acc += drop[i, j]
            drop[i, j] = r * acc
            seg[j] += i_cell[i, j]
            col[i, j] = seg[j]  # current through the column segment below node (i, j)


@njit(cache=True, nogil=True, inline="always")
def _up(v_b, u, step, vc, drop, col, seg, r, keep, gain):
    """Bottom to top: the column-node voltages ``vc`` and the Chebyshev step
    ``keep step + gain (v - row drop - vc - u)``; returns the largest |step|, V."""
    n_rows, n_cols = u.shape
    for j in range(n_cols):
        seg[j] = 0.0
    largest = 0.0
    for i in range(n_rows - 1, -1, -1):
        for j in range(n_cols):
            seg[j] += r * col[i, j]
            vc[i, j] = seg[j]
            s = keep * step[i, j] + gain * (v_b[i] - drop[i, j] - seg[j] - u[i, j])
            step[i, j] = s
            largest = max(largest, abs(s))
    return largest


@njit(cache=True, parallel=True)
def batched_read(v, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, r, lam_max, max_iter, stop, n_chunks,
                 i_col, iterations):
    """Column currents ``i_col`` (B, C), A, of row voltages ``v`` (B, R), V; ``iterations``
    (B,) receives the sweeps each vector took (max_iter + 1: not converged to ``stop`` V).
    The batch is split into ``n_chunks`` parts run in parallel, each with its own work arrays."""
    n_batch, n_rows = v.shape
    n_cols = prefactor.shape[1]
    theta = 1.0 + 0.5 * lam_max
    delta = 0.5 * lam_max
    wired = r > 0.0 and lam_max > 0.0
    n_chunks = max(1, min(n_batch, n_chunks))
    for chunk in prange(n_chunks):
        # work arrays once per chunk of vectors (a fresh 128 kB array per vector costs page faults)
        u = np.empty((n_rows, n_cols))
        step = np.empty((n_rows, n_cols))
        i_cell = np.empty((n_rows, n_cols))
        drop = np.empty((n_rows, n_cols))
        col = np.empty((n_rows, n_cols))
        vc = np.empty((n_rows, n_cols))
        vd = np.empty((n_rows, n_cols))
        seg = np.empty(n_cols)
        for b in range(chunk * n_batch // n_chunks, (chunk + 1) * n_batch // n_chunks):
            v_b = v[b]
            for i in range(n_rows):
                for j in range(n_cols):
                    u[i, j] = v_b[i]
                    step[i, j] = 0.0
                    vc[i, j] = 0.0
                    vd[i, j] = 0.0
            _down(v_b, u, step, vc, vd, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, r, i_cell, drop, col,
                  seg, True, not wired)
            done = 1
            if wired:
                done = max_iter + 1
                _up(v_b, u, step, vc, drop, col, seg, r, 0.0, 1.0 / theta)
                sigma = theta / delta
                rho = 1.0 / sigma
                for n in range(max_iter):
                    _down(v_b, u, step, vc, vd, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, r, i_cell, drop,
                          col, seg, False, False)
                    rho_next = 1.0 / (2.0 * sigma - rho)
                    largest = _up(v_b, u, step, vc, drop, col, seg, r, rho_next * rho, 2.0 * rho_next / delta)
                    rho = rho_next
                    if largest <= stop:
                        done = n + 1
                        break
            iterations[b] = done
            for j in range(n_cols):
                i_col[b, j] = col[n_rows - 1, j]
