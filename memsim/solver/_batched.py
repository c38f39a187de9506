"""Numba kernels of the batched read of a nonlinear crossbar (kernel-only module).

Used by :class:`memsim.solver.TileRead` (its "batched" path), which chooses the parameters
and checks the result against :func:`memsim.solver.solve`.  For given cell currents I (A) the
wires are linear: the drop along row i up to cell j is ``r_row sum_m I_im (min(m, j) + 1)``
and column node (i, j) sits ``r_col sum_m I_mj (R - max(i, m))`` above the sense node (rows
driven at their left end through one segment, columns sensed below row R-1 through one
segment).  The cell voltages u solve ``u = v - drops(f(u))``; the iteration is Chebyshev's on
the Jacobian's eigenvalue interval [1, 1 + lam_max] (Saad, Iterative Methods for Sparse Linear
Systems, 2nd ed., Algorithm 12.1), input vectors in parallel chunks, each with its own work
arrays.

Both drops are prefix sums in the order of a pass (row by row, each row left to right), written
once (:func:`_row_drops`, :func:`_column_rise`) and used by the read (:func:`batched_read`)
and by :func:`wire_drops` (the spectral bound's power iteration): with ``A_j = sum_(m<=j)
I_im``, ``B_j = sum_(m<=j) (m + 1) I_im`` and the row total T the row drop is ``r_row (B_j +
(j + 1) (T - A_j))``; with ``P_i = sum_(m<=i) I_mj``, ``Q_i = sum_(m<=i) (R - m) I_mj`` and ``W
= Q_(R-1)`` the column node sits ``r_col ((R - i) P_i - Q_i + W)`` above the sense node.  A
pass stores the row drop and ``(R - i) P_i - Q_i`` per cell and W per column; the next pass
adds ``r_col W`` when it takes the Chebyshev step of row i, applies it and evaluates the row's
cells at once.  Three (R, C) work arrays per vector for selector-less cells (five for 1T1R)
stay in a core's cache at 128 x 128.
"""
import math

import numpy as np
from numba import njit, prange

from ..devices.kernels import table_current
from ._cells import series_node

#: Newton steps on a 1T1R cell's internal node per pass, warm-started from the last pass (on
#: ideal wires, where there is one evaluation only, the exact solver's series_node solves the
#: node fully).
NODE_STEPS = 1
#: ... in the first pass, from the divider of the on-transistor and the RRAM's small-signal
#: conductance.
FIRST_NODE_STEPS = 2


@njit(cache=True, nogil=True, inline="always")
def _sinh_cosh_series(x):
    """(sinh(x), cosh(x)) by their Taylor series to x^15 and x^16 (relative error below 1e-13
    for |x| <= 1; no exp, no branch)."""
    x2 = x * x
    sh = x * (1.0 + x2 * (1.0 / 6.0) * (1.0 + x2 * (1.0 / 20.0) * (1.0 + x2 * (1.0 / 42.0) * (
        1.0 + x2 * (1.0 / 72.0) * (1.0 + x2 * (1.0 / 110.0) * (1.0 + x2 * (1.0 / 156.0) * (
            1.0 + x2 * (1.0 / 210.0))))))))
    ch = 1.0 + x2 * 0.5 * (1.0 + x2 * (1.0 / 12.0) * (1.0 + x2 * (1.0 / 30.0) * (1.0 + x2 * (1.0 / 56.0) * (
        1.0 + x2 * (1.0 / 90.0) * (1.0 + x2 * (1.0 / 132.0) * (1.0 + x2 * (1.0 / 182.0) * (
            1.0 + x2 * (1.0 / 240.0))))))))
    return sh, ch


@njit(cache=True, nogil=True, inline="always")
def _device_row(u_i, pref_i, inv_v0, gap_i, p_dev, cur):
    """Currents ``cur`` (C,) of the selector-less cells of one row (cell voltages ``u_i``,
    prefactors ``pref_i``): the series where |u/V0| <= 1 (the whole row in one vectorised loop),
    math.sinh for the rest; a tabulated device (``p_dev`` a packed table) from its table."""
    if p_dev[0] < 0.0:
        for j in range(u_i.shape[0]):
            cur[j] = table_current(u_i[j], gap_i[j], p_dev)[0]
        return
    over = 0
    for j in range(u_i.shape[0]):
        x = u_i[j] * inv_v0
        sh, _ = _sinh_cosh_series(x)  # the unused cosh is compiled away
        cur[j] = pref_i[j] * sh
        over += abs(x) > 1.0
    if over:
        for j in range(u_i.shape[0]):
            x = u_i[j] * inv_v0
            if abs(x) > 1.0:
                cur[j] = pref_i[j] * math.sinh(x)


@njit(cache=True, nogil=True, inline="always")
def _channel(node, vc, v_gate, beta, vto, lam, leak):
    """Channel current node -> column node (A) and its derivative in the node voltage: the
    kernel's Shichman-Hodges transistor (:func:`memsim.solver._cells._transistor`) written
    with selects instead of early returns, so that a row of cells vectorises."""
    source = min(node, vc)
    vds = abs(node - vc)
    vov = v_gate - source - vto
    clm = 1.0 + lam * vds
    linear = vds < vov
    core = beta * (vov - 0.5 * vds) * vds if linear else 0.5 * beta * vov * vov
    gm = beta * (vds if linear else vov) * clm
    gds = beta * (vov - vds) * clm + core * lam if linear else core * lam
    if vov <= 0.0:
        core = 0.0
        gm = 0.0
        gds = 0.0
    ids = core * clm + leak * vds
    gds += leak
    if node >= vc:
        return ids, gds
    return -ids, gm + gds


@njit(cache=True, nogil=True, inline="always")
def _one_t_row(i, u, vc, vd, prefactor, inv_v0, v_gate, gap, p_dev, p_mos, cur, first, exact_node):
    """Currents ``cur`` (C,) of the 1T1R cells of row i, cell voltages u[i], column-node
    voltages ``vc`` (C,); their internal nodes ``vd`` are updated.

    The node takes NODE_STEPS Newton steps from the last pass's (the first pass: from the
    divider of the on-transistor and the RRAM's small-signal conductance, FIRST_NODE_STEPS).  A
    row whose cell voltages all lie within V0 (the RRAM voltage is at most the cell's) runs as
    vectorised loops with the series sinh and cosh; other rows take math.exp cell by cell.
    """
    n_cols = u.shape[1]
    u_i = u[i]
    vd_i = vd[i]
    pref_i = prefactor[i]
    beta, vto, lam, leak = p_mos[0], p_mos[1], p_mos[2], p_mos[3]  # scalars: no aliasing in the loops
    over = 0
    for j in range(n_cols):
        over += abs(u_i[j] * inv_v0) > 1.0
        if first:  # the node between two linear conductances: the guess every path starts from
            g_on = beta * max(v_gate - vc[j] - vto, 1e-3)
            g_rram = pref_i[j] * inv_v0
            vd_i[j] = vc[j] + u_i[j] * g_rram / (g_rram + g_on)
    if p_dev[0] < 0.0 and not exact_node:  # a tabulated device: Newton steps through its table
        gap_i = gap[i]
        for _ in range(FIRST_NODE_STEPS if first else NODE_STEPS):
            for j in range(n_cols):
                vd_i[j], cur[j] = _node_step_table(u_i[j], vc[j], vd_i[j], v_gate, beta, vto, lam, leak, gap_i[j],
                                                   p_dev)
        return
    if exact_node:
        for j in range(n_cols):
            node, current, _, _ = series_node(u_i[j] + vc[j], vc[j], v_gate, gap[i, j], p_dev, p_mos, vd_i[j])
            vd_i[j] = node
            cur[j] = current
        return
    steps = FIRST_NODE_STEPS if first else NODE_STEPS
    for _ in range(steps):
        if over:
            for j in range(n_cols):
                vd_i[j], cur[j] = _node_step(u_i[j], vc[j], vd_i[j], pref_i[j], inv_v0, v_gate, beta, vto, lam, leak,
                                             True)
        else:
            for j in range(n_cols):
                vd_i[j], cur[j] = _node_step(u_i[j], vc[j], vd_i[j], pref_i[j], inv_v0, v_gate, beta, vto, lam, leak,
                                             False)


@njit(cache=True, nogil=True, inline="always")
def _node_step(u, vc, node, prefactor, inv_v0, v_gate, beta, vto, lam, leak, use_exp):
    """One Newton step on the internal node of a 1T1R cell (cell voltage u, column node vc,
    node guess ``node``): the new node and, to first order, the channel current there.  The
    RRAM's sinh and cosh by math.exp when ``use_exp``, else by their series (|x| <= 1)."""
    vr = u + vc
    lo = min(vr, vc)
    hi = max(vr, vc)
    node = min(max(node, lo), hi)
    x = (vr - node) * inv_v0
    if use_exp:
        e = math.exp(x)
        sh = 0.5 * (e - 1.0 / e)
        ch = 0.5 * (e + 1.0 / e)
    else:
        sh, ch = _sinh_cosh_series(x)
    i_m, m_d = _channel(node, vc, v_gate, beta, vto, lam, leak)
    new = min(max(node + (prefactor * sh - i_m) / (prefactor * inv_v0 * ch + m_d), lo), hi)
    return new, i_m + m_d * (new - node)


@njit(cache=True, nogil=True, inline="always")
def _node_step_table(u, vc, node, v_gate, beta, vto, lam, leak, state, p_dev):
    """:func:`_node_step` for a tabulated device (``p_dev`` a packed table): the RRAM current
    and slope from the table at the cell's state."""
    vr = u + vc
    lo = min(vr, vc)
    hi = max(vr, vc)
    node = min(max(node, lo), hi)
    i_r, g_r = table_current(vr - node, state, p_dev)
    i_m, m_d = _channel(node, vc, v_gate, beta, vto, lam, leak)
    new = min(max(node + (i_r - i_m) / (g_r + m_d), lo), hi)
    return new, i_m + m_d * (new - node)


@njit(cache=True, nogil=True, inline="always")
def _row_drops(cur, r_row, drop_i):
    """Row-node drops ``drop_i`` (C,), V, of one row's cell currents ``cur`` (C,), A: the row is
    driven at its left end, ``r_row`` ohm per segment (prefix sums, one sequential loop)."""
    total = 0.0
    for j in range(cur.shape[0]):
        total += cur[j]
    a = 0.0
    b = 0.0
    for j in range(cur.shape[0]):
        a += cur[j]
        b += (j + 1) * cur[j]
        drop_i[j] = r_row * (b + (j + 1) * (total - a))


@njit(cache=True, nogil=True, inline="always")
def _column_rise(cur, below, p_sum, q_sum, rise_i):
    """Add row i's cell currents ``cur`` (C,) to the column prefix sums ``p_sum`` (P_i) and
    ``q_sum`` (Q_i) and store ``(R - i) P_i - Q_i`` in ``rise_i``; ``below`` is R - i.  The
    column node (i, j) sits ``r_col (rise_i[j] + Q_(R-1)[j])`` above the sense node."""
    for j in range(cur.shape[0]):
        p_sum[j] += cur[j]
        q_sum[j] += below * cur[j]
        rise_i[j] = below * p_sum[j] - q_sum[j]


@njit(cache=True, nogil=True)
def wire_drops(i_cell, r_row, r_col, out):
    """Row-node drop plus column-node rise ``out`` (R, C), V, for cell currents ``i_cell``
    (R, C), A: the wires' voltage ``drops(I)`` of the read, with the read's own prefix sums."""
    n_rows, n_cols = i_cell.shape
    p_sum = np.zeros(n_cols)
    q_sum = np.zeros(n_cols)
    rise = np.empty((n_rows, n_cols))
    for i in range(n_rows):
        _row_drops(i_cell[i], r_row, out[i])
        _column_rise(i_cell[i], n_rows - i, p_sum, q_sum, rise[i])
    for i in range(n_rows):
        for j in range(n_cols):
            out[i, j] += r_col * (rise[i, j] + q_sum[j])


@njit(cache=True, nogil=True, inline="always")
def _pass(v_b, u, step, drop, rise, vd, w, p_sum, q_sum, cur, vc, prefactor, inv_v0, one_t, v_gate, gap, p_dev,
          p_mos, r_row, r_col, keep, gain, stop, first, exact_node):
    """One pass, top row to bottom: unless ``first``, the Chebyshev step ``keep step + gain (v -
    row drop - column node - u)`` from the last pass's drops, applied to u; then the cells at
    the new u and their drops for the next pass.  Column currents end in ``p_sum``; returns
    how many steps exceeded ``stop`` V (a count, not a maximum: a count vectorises)."""
    n_rows, n_cols = u.shape
    for j in range(n_cols):
        p_sum[j] = 0.0
        q_sum[j] = 0.0
    over = 0
    for i in range(n_rows):
        u_i = u[i]
        step_i = step[i]
        drop_i = drop[i]
        rise_i = rise[i]
        if first:
            for j in range(n_cols):
                vc[j] = 0.0
        else:
            v_i = v_b[i]
            for j in range(n_cols):
                node = r_col * (rise_i[j] + w[j])  # column-node voltage of the last pass
                vc[j] = node
                s = keep * step_i[j] + gain * (v_i - drop_i[j] - node - u_i[j])
                step_i[j] = s
                u_i[j] += s
                over += abs(s) > stop
        if one_t:
            _one_t_row(i, u, vc, vd, prefactor, inv_v0, v_gate[i], gap, p_dev, p_mos, cur, first, exact_node)
        else:
            _device_row(u_i, prefactor[i], inv_v0, gap[i], p_dev, cur)
        _row_drops(cur, r_row, drop_i)
        _column_rise(cur, n_rows - i, p_sum, q_sum, rise_i)
    for j in range(n_cols):
        w[j] = q_sum[j]
    return over


@njit(cache=True, parallel=True, error_model="numpy", fastmath={'reassoc', 'nsz', 'contract', 'arcp'})
def batched_read(v, prefactor, inv_v0, one_t, v_gate, gap, p_dev, p_mos, r_row, r_col, lam_max, max_iter, stop,
                 n_chunks, i_col, iterations):
    """Column currents ``i_col`` (B, C), A, of row voltages ``v`` (B, R), V; ``iterations``
    (B,) receives the Chebyshev steps each vector took (max_iter + 1: not converged to ``stop``
    V; the currents are those at the cell voltages after the last step).  ``v_gate`` (R,) the
    1T1R gate voltage of each row.  The batch is split into ``n_chunks`` parts run in parallel,
    each with its own work arrays."""
    n_batch, n_rows = v.shape
    n_cols = prefactor.shape[1]
    theta = 1.0 + 0.5 * lam_max
    delta = 0.5 * lam_max
    wired = (r_row > 0.0 or r_col > 0.0) and lam_max > 0.0
    n_chunks = max(1, min(n_batch, n_chunks))
    for chunk in prange(n_chunks):
        # work arrays once per chunk of vectors (a fresh 128 kB array per vector costs page faults)
        u = np.empty((n_rows, n_cols))
        step = np.empty((n_rows, n_cols))
        drop = np.empty((n_rows, n_cols))
        rise = np.empty((n_rows, n_cols))
        vd = np.empty((n_rows, n_cols)) if one_t else np.empty((1, 1))
        w = np.empty(n_cols)
        p_sum = np.empty(n_cols)
        q_sum = np.empty(n_cols)
        cur = np.empty(n_cols)
        vc = np.empty(n_cols)
        for b in range(chunk * n_batch // n_chunks, (chunk + 1) * n_batch // n_chunks):
            v_b = v[b]
            for i in range(n_rows):
                for j in range(n_cols):
                    u[i, j] = v_b[i]
                    step[i, j] = 0.0
            _pass(v_b, u, step, drop, rise, vd, w, p_sum, q_sum, cur, vc, prefactor, inv_v0, one_t, v_gate, gap,
                  p_dev, p_mos, r_row, r_col, 0.0, 0.0, stop, True, not wired)
            done = 0
            if wired:
                done = max_iter + 1
                keep = 0.0
                gain = 1.0 / theta
                sigma = theta / delta
                rho = 1.0 / sigma
                for n in range(max_iter):
                    over = _pass(v_b, u, step, drop, rise, vd, w, p_sum, q_sum, cur, vc, prefactor, inv_v0, one_t,
                                 v_gate, gap, p_dev, p_mos, r_row, r_col, keep, gain, stop, False, False)
                    if over == 0:
                        done = n + 1
                        break
                    rho_next = 1.0 / (2.0 * sigma - rho)
                    keep = rho_next * rho
                    gain = 2.0 * rho_next / delta
                    rho = rho_next
            iterations[b] = done
            for j in range(n_cols):
                i_col[b, j] = p_sum[j]
