"""The solver's conjugate-gradient Newton step (kernel-only module: no policy, no I/O).

:func:`newton_step_sym` is the one CG loop of the symmetric (two-terminal cell) Newton step:
the row nodes eliminated line by line, conjugate gradients on the Schur system of the column
nodes, preconditioned with the column-line solves.  Where no line is merged (r_row > 0 and
r_col > 0) its passes are fused so that each CG iteration reads and writes every (R, C) array
in three passes over the array rows instead of a dozen: the Schur product is formed row line
by row line (cell coupling, tridiagonal row solve, cell coupling back and column wires, with
the previous search direction updated just ahead of the row that needs it), the CG updates
share a pass with the forward half of the column-line solves, and the backward half carries
the next dot product.  On a 512x512 array the arrays no longer fit in cache, so the traffic
is the time.  The two-level preconditioner of :mod:`memsim.solver.coarse` rides on the same
passes (``cg_advance``, ``cg_finish``, the coarse-grid transfers folded in; the banded coarse
solve runs in scipy, called in object mode once per iteration), and merged lines take the
generic passes of :mod:`memsim.solver._lines`.  The non-symmetric (1T1R) step is BiCGStab
(:func:`memsim.solver._lines.schur_bicgstab`): another Krylov method, not another copy.

Conventions as in :mod:`memsim.solver._lines`: ``inv_r``/``inv_c`` hold the inverse pivots
of the row and column lines, ``coef`` the cell couplings (B1 = B2), ``d_col`` the column-side
cell terms; ``driven``/``held`` say whether a line end is driven (their factorisations
already include the end segment).
"""
import numpy as np
from numba import njit, objmode

from ._lines import _FAST, _dot, newton_back, newton_rhs, row_max_weighted, schur_apply, solve_cols


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _row_solve(rhs, g_r, inv_row, out):
    """out = Dr_i^-1 rhs for one (non-merged) row line."""
    n_cols = rhs.size
    y = 0.0
    for k in range(n_cols):
        j = n_cols - 1 - k
        y = (rhs[j] + g_r * y) * inv_row[j]
        out[j] = y
    for j in range(1, n_cols):
        out[j] += g_r * inv_row[j] * out[j - 1]


#: Preconditioners of :func:`newton_step_sym`: the column-line solves with the fused passes
#: (no line merged), the same plus the coarse-grid correction of :mod:`memsim.solver.coarse`,
#: or the generic passes of :mod:`memsim.solver._lines` (any line merged: one unknown per
#: ideal line, where fusing buys nothing).
LINES = 0
TWO_LEVEL = 1
GENERIC = 2
#: ``newton_step_sym``'s arguments where there is no coarse grid.
NO_GRID = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
NO_FACTOR = np.zeros((0, 0))
NO_ORDER = np.zeros(0, np.int64)


def coarse_solve(factor, order, r_coarse):
    """The coarse correction (:meth:`memsim.solver.coarse.CoarseGrid.correction`) from its banded
    Cholesky factor: plain Python (scipy), which the kernel calls in object mode."""
    import scipy.linalg
    m_i, m_j = r_coarse.shape
    rhs = np.zeros(2 * m_i * m_j)
    rhs[2 * order + 1] = r_coarse.ravel()
    x = scipy.linalg.cho_solve_banded((factor, True), rhs, check_finite=False)
    return np.ascontiguousarray(x[2 * order + 1].reshape(m_i, m_j))


@njit(cache=True)
def _coarse(factor, order, r_coarse):
    with objmode(e="float64[:, ::1]"):
        e = coarse_solve(factor, order, r_coarse)
    return e


@njit(cache=True, nogil=True, error_model="numpy")
def newton_step_sym(f_row, f_col, d_col, coef, g_r, g_c, rows_merged, cols_merged, driven, held, inv_r, inv_c,
                    rel_tol, stop_bound, max_iter, recompute, dr, dc, work, mode, grid_i, grid_j, factor, order):
    """Solve the linearised symmetric system for (dr, dc) given the KCL residuals (fr, fc): the
    Schur system on the column nodes by preconditioned conjugate gradients, the one CG loop of
    the solver, with the preconditioner and passes of ``mode`` (:data:`LINES`,
    :data:`TWO_LEVEL` with the coarse grid ``grid_i``, ``grid_j`` (lo, hi, w) and its banded
    factor and point ``order``, or :data:`GENERIC`; the others take :data:`NO_GRID` etc.).

    With :data:`LINES`, CG also stops once the column half of the comparison bound of
    :func:`memsim.solver._lines.kcl_majorant` on its residual (which is the column nodes' KCL
    residual after the step; the row nodes' is rounding) is at most ``stop_bound`` (V; 0: never):
    the step's own error is then certified that small, however large ``rel_tol`` still finds
    the residual.

    ``dc`` receives the update (the solve starts from zero); ``work`` is (7, R, C) scratch
    space (a solve's Newton steps share it: fresh 2 MB arrays at 512x512 cost their page faults
    at every step).  Returns (CG iterations, relative residual ||r|| / ||rhs||): recomputed from
    dc at the end (one more product) when ``recompute``, else CG's recursive estimate.
    """
    n_rows, n_cols = f_row.shape
    rhs = work[0]
    r = work[1]
    z = work[2]
    p = work[3]
    q = work[4]
    t_row = work[5]
    s_row = work[6]
    if mode == LINES:
        # each pass consumes a row of z before it writes that row of q (schur_rows updates p
        # a row ahead; the CG update reads q where it writes z), and a zero start's residual
        # is the right-hand side itself: two arrays fewer help a 128x128 solve stay in cache
        z = q
        if not recompute:
            r = rhs
    line = np.empty((4, n_cols))
    solved = np.empty((4, n_cols))
    lo_i, hi_i, w_i = grid_i
    lo_j, hi_j, w_j = grid_j
    m_i = 0
    m_j = 0
    if mode == TWO_LEVEL:
        m_i = hi_i[n_rows - 1] + 1
        m_j = hi_j[n_cols - 1] + 1
    half = np.empty((m_i, n_cols))
    r_coarse = np.empty((m_i, m_j))
    if mode == GENERIC:
        newton_rhs(f_row, f_col, coef, g_r, rows_merged, cols_merged, driven, held, inv_r, rhs)
        norm_b = np.sqrt(_dot(rhs, rhs))
    else:
        norm_b = step_rhs(f_row, f_col, coef, g_r, inv_r, line, rhs)
    iterations = 0
    rel = 0.0
    dc[:] = 0.0
    if norm_b != 0.0:
        # from dc = 0: r = rhs; z = M^-1 r; p = z
        if r is not rhs:
            r[:] = rhs
        if mode == LINES:
            rz = _col_solve_dot(r, g_c, inv_c, z)
        elif mode == TWO_LEVEL:
            p[:] = 0.0
            q[:] = 0.0
            cg_advance(dc, r, p, q, 0.0, g_c, inv_c, z, lo_i, hi_i, w_i, lo_j, hi_j, w_j, half, r_coarse)
            rz = cg_finish(r, g_c, inv_c, z, _coarse(factor, order, r_coarse), lo_i, hi_i, w_i, lo_j, hi_j, w_j,
                           half)
        else:
            solve_cols(r, g_c, cols_merged, held, inv_c, z)
            rz = _dot(r, z)
        for i in range(n_rows):
            for j in range(n_cols):
                p[i, j] = z[i, j]
        target = rel_tol * norm_b
        beta = 0.0
        rr = norm_b * norm_b
        for iterations in range(1, max_iter + 1):
            # p = z + beta p (row by row, just ahead of use) and q = K p
            if mode == GENERIC:
                if iterations > 1:
                    for i in range(n_rows):
                        for j in range(n_cols):
                            p[i, j] = z[i, j] + beta * p[i, j]
                schur_apply(p, d_col, coef, coef, g_r, g_c, rows_merged, cols_merged, driven, held, inv_r,
                            t_row, s_row, q)
                pq = _dot(p, q)
            else:
                pq = schur_rows(p, z, beta, d_col, coef, g_r, g_c, held, inv_r, line, solved, q, iterations > 1)
            if pq <= 0.0:
                break
            alpha = rz / pq
            # x += alpha p, r -= alpha q (with the forward sweep of z = Dc^-1 r where the mode fuses it)
            if mode == TWO_LEVEL:
                rr = cg_advance(dc, r, p, q, alpha, g_c, inv_c, z, lo_i, hi_i, w_i, lo_j, hi_j, w_j, half,
                                r_coarse)
            else:
                fused = mode == LINES
                rr = 0.0
                for i in range(n_rows):
                    for j in range(n_cols):
                        dc[i, j] += alpha * p[i, j]
                        value = r[i, j] - alpha * q[i, j]
                        r[i, j] = value
                        rr += value * value
                        if fused:
                            if i == 0:
                                z[i, j] = value * inv_c[i, j]
                            else:
                                z[i, j] = (value + g_c * z[i - 1, j]) * inv_c[i, j]
            if np.sqrt(rr) <= target:
                break
            # max |r| >= rms |r|: the weighted row maxima only once that can pass
            if mode == LINES and stop_bound > 0.0 and np.sqrt(rr / r.size) <= g_c * stop_bound:
                if row_max_weighted(r) <= g_c * stop_bound:
                    break
            if mode == LINES:
                rz_new = _col_back_dot(r, g_c, inv_c, z)
            elif mode == TWO_LEVEL:
                rz_new = cg_finish(r, g_c, inv_c, z, _coarse(factor, order, r_coarse), lo_i, hi_i, w_i, lo_j,
                                   hi_j, w_j, half)
            else:
                solve_cols(r, g_c, cols_merged, held, inv_c, z)
                rz_new = _dot(r, z)
            beta = rz_new / rz
            rz = rz_new
        if recompute:  # the residual recomputed from dc (not the recursive estimate)
            if mode == GENERIC:
                schur_apply(dc, d_col, coef, coef, g_r, g_c, rows_merged, cols_merged, driven, held, inv_r,
                            t_row, s_row, q)
            else:
                schur_rows(dc, dc, 0.0, d_col, coef, g_r, g_c, held, inv_r, line, solved, q, False)
            rr = 0.0
            for i in range(n_rows):
                for j in range(n_cols):
                    value = rhs[i, j] - q[i, j]
                    rr += value * value
        rel = np.sqrt(rr) / norm_b
    if mode == GENERIC:
        dr[:] = 0.0  # merged lines use only part of dr
        newton_back(f_row, dc, coef, g_r, rows_merged, cols_merged, driven, held, inv_r, dr)
    else:
        step_back(f_row, dc, coef, g_r, inv_r, line, dr)
    return iterations, rel


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def step_rhs(f_row, f_col, coef, g_r, inv_r, line, rhs):
    """rhs = -fc - B Dr^-1 fr, the Schur system's right-hand side; returns ||rhs||."""
    _rows_solve_all(f_row, f_row, f_row, 1, g_r, inv_r, line, rhs)
    n_rows, n_cols = f_row.shape
    norm_b = 0.0
    for i in range(n_rows):
        for j in range(n_cols):
            value = -f_col[i, j] - coef[i, j] * rhs[i, j]
            rhs[i, j] = value
            norm_b += value * value
    return np.sqrt(norm_b)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def step_back(f_row, dc, coef, g_r, inv_r, line, dr):
    """dr = Dr^-1 (B dc - fr): the row nodes' update from the column nodes'."""
    _rows_solve_all(coef, dc, f_row, 2, g_r, inv_r, line, dr)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _rows_solve_all(a, scale, b, form, g_r, inv_r, line, out):
    """out = Dr^-1 rhs for every row line, rhs as in :func:`_rows_solve` (solved straight into
    ``out``'s rows)."""
    n_rows = a.shape[0]
    i0 = 0
    while i0 < n_rows:
        count = 4 if i0 + 4 <= n_rows else 1
        _rows_solve(a, scale, b, form, g_r, inv_r, i0, line, out[i0:i0 + count], count)
        i0 += count


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _row_solve4(rhs, g_r, inv_r, i, out):
    """out[k] = Dr^-1 rhs[k] for the four row lines i..i+3 in lockstep.

    A tridiagonal solve is a chain of dependent multiply-adds; four independent chains in
    one loop keep the floating-point units busy instead of waiting on each result.
    """
    n_cols = rhs.shape[1]
    y0 = 0.0
    y1 = 0.0
    y2 = 0.0
    y3 = 0.0
    for k in range(n_cols):
        j = n_cols - 1 - k
        y0 = (rhs[0, j] + g_r * y0) * inv_r[i, j]
        y1 = (rhs[1, j] + g_r * y1) * inv_r[i + 1, j]
        y2 = (rhs[2, j] + g_r * y2) * inv_r[i + 2, j]
        y3 = (rhs[3, j] + g_r * y3) * inv_r[i + 3, j]
        out[0, j] = y0
        out[1, j] = y1
        out[2, j] = y2
        out[3, j] = y3
    y0 = out[0, 0]
    y1 = out[1, 0]
    y2 = out[2, 0]
    y3 = out[3, 0]
    for j in range(1, n_cols):
        y0 = out[0, j] + g_r * inv_r[i, j] * y0
        y1 = out[1, j] + g_r * inv_r[i + 1, j] * y1
        y2 = out[2, j] + g_r * inv_r[i + 2, j] * y2
        y3 = out[3, j] + g_r * inv_r[i + 3, j] * y3
        out[0, j] = y0
        out[1, j] = y1
        out[2, j] = y2
        out[3, j] = y3


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _rows_solve(a, scale, b, form, g_r, inv_r, i0, line, solved, count):
    """solved[k] = Dr^-1 rhs_k for the rows i0 + k, k < count (4 or 1), where rhs is
    ``a * scale`` (form 0), ``a`` (form 1) or ``a * scale - b`` (form 2), row i0 + k."""
    n_cols = a.shape[1]
    if form == 1:  # the rows themselves: nothing to form
        if count == 4:
            _row_solve4(a[i0:i0 + 4], g_r, inv_r, i0, solved)
        else:
            _row_solve(a[i0], g_r, inv_r[i0], solved[0])
        return
    for k in range(count):
        i = i0 + k
        if form == 0:
            for j in range(n_cols):
                line[k, j] = a[i, j] * scale[i, j]
        else:
            for j in range(n_cols):
                line[k, j] = a[i, j] * scale[i, j] - b[i, j]
    if count == 4:
        _row_solve4(line, g_r, inv_r, i0, solved)
    else:
        _row_solve(line[0], g_r, inv_r[i0], solved[0])


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def schur_rows(p, z, beta, d_col, coef, g_r, g_c, held, inv_r, line, solved, q, update):
    """q = (Dc - B Dr^-1 B) p, four row lines at a time; returns p . q.

    With ``update``, p is first replaced by z + beta p, each row just before it is read.
    """
    n_rows, n_cols = p.shape
    if update:
        for j in range(n_cols):
            p[0, j] = z[0, j] + beta * p[0, j]
    pq = 0.0
    i0 = 0
    while i0 < n_rows:
        count = 4 if i0 + 4 <= n_rows else 1
        if update:
            for i in range(i0 + 1, min(i0 + count + 1, n_rows)):
                for j in range(n_cols):
                    p[i, j] = z[i, j] + beta * p[i, j]
        _rows_solve(coef, p, p, 0, g_r, inv_r, i0, line, solved, count)
        for k in range(count):
            i = i0 + k
            if i == 0 or i == n_rows - 1:
                for j in range(n_cols):
                    pij = p[i, j]
                    value = d_col[i, j] * pij - coef[i, j] * solved[k, j]
                    if i > 0:
                        value += g_c * (pij - p[i - 1, j])
                    if i < n_rows - 1:
                        value += g_c * (pij - p[i + 1, j])
                    elif held[j]:
                        value += g_c * pij
                    q[i, j] = value
                    pq += pij * value
            else:
                for j in range(n_cols):
                    pij = p[i, j]
                    value = (d_col[i, j] * pij - coef[i, j] * solved[k, j]
                             + g_c * (2.0 * pij - p[i - 1, j] - p[i + 1, j]))
                    q[i, j] = value
                    pq += pij * value
        i0 += count
    return pq


@njit(cache=True, nogil=True, error_model="numpy")
def _col_solve_dot(r, g_c, inv_c, z):
    """z = Dc^-1 r (non-merged column lines); returns r . z."""
    n_rows, n_cols = r.shape
    for j in range(n_cols):
        z[0, j] = r[0, j] * inv_c[0, j]
    for i in range(1, n_rows):
        for j in range(n_cols):
            z[i, j] = (r[i, j] + g_c * z[i - 1, j]) * inv_c[i, j]
    return _col_back_dot(r, g_c, inv_c, z)


@njit(cache=True, nogil=True, error_model="numpy")
def _col_back_dot(r, g_c, inv_c, z):
    """The backward sweep of z = Dc^-1 r after the forward one; returns r . z.  The dot is its
    own reassociated pass (:func:`memsim.solver._lines._dot`, arrays still in cache): summed in
    the sweep, in strict order, it kept the sweep out of vector lanes (128x128: 13.7 -> 9.4 us)."""
    n_rows, n_cols = r.shape
    for i in range(n_rows - 2, -1, -1):
        for j in range(n_cols):
            z[i, j] += g_c * inv_c[i, j] * z[i + 1, j]
    return _dot(r, z)


# -- the passes of the two-level CG (memsim.solver.coarse drives them, one iteration at a time) --
# A coarse grid is given per direction as (lo, hi, w): fine index k interpolates the coarse
# values at lo[k] and hi[k] with weights w[k] and 1 - w[k] (P = P_rows (x) P_cols).  Along the
# array rows the transfer is a whole-line multiply-add into an (m_i, C) buffer, so the pass over
# the (R, C) arrays stays vectorised; the column direction is done on that small buffer.

@njit(cache=True, nogil=True, error_model="numpy")
def cg_advance(dc, r, p, q, alpha, g_c, inv_c, z, lo_i, hi_i, w_i, lo_j, hi_j, w_j, half, r_coarse):
    """dc += alpha p and r -= alpha q (p and q finite: alpha = 0 leaves both), the forward sweep of
    z = Dc^-1 r and the restriction r_coarse = P^T r (via half = P_rows^T r), in one pass;
    returns r . r."""
    n_rows, n_cols = r.shape
    half[:] = 0.0
    rr = 0.0
    for i in range(n_rows):
        to_lo = half[lo_i[i]]
        to_hi = half[hi_i[i]]
        w_lo = w_i[i]
        w_hi = 1.0 - w_lo
        if i == 0:  # z's sweep starts here
            for j in range(n_cols):
                dc[i, j] += alpha * p[i, j]
                value = r[i, j] - alpha * q[i, j]
                r[i, j] = value
                rr += value * value
                z[i, j] = value * inv_c[i, j]
                to_lo[j] += w_lo * value
                to_hi[j] += w_hi * value
        else:
            for j in range(n_cols):
                dc[i, j] += alpha * p[i, j]
                value = r[i, j] - alpha * q[i, j]
                r[i, j] = value
                rr += value * value
                z[i, j] = (value + g_c * z[i - 1, j]) * inv_c[i, j]
                to_lo[j] += w_lo * value
                to_hi[j] += w_hi * value
    r_coarse[:] = 0.0
    for k in range(half.shape[0]):
        for j in range(n_cols):
            r_coarse[k, lo_j[j]] += w_j[j] * half[k, j]
            r_coarse[k, hi_j[j]] += (1.0 - w_j[j]) * half[k, j]
    return rr


@njit(cache=True, nogil=True, error_model="numpy")
def cg_finish(r, g_c, inv_c, z, e_coarse, lo_i, hi_i, w_i, lo_j, hi_j, w_j, half):
    """The backward sweep of z = Dc^-1 r after cg_advance's forward one, plus the coarse
    correction z += P e_coarse (via half = e_coarse P_cols^T); returns r . z."""
    n_rows, n_cols = r.shape
    for k in range(half.shape[0]):
        for j in range(n_cols):
            half[k, j] = w_j[j] * e_coarse[k, lo_j[j]] + (1.0 - w_j[j]) * e_coarse[k, hi_j[j]]
    fine = np.zeros(n_cols)  # the line solve's part of the row below
    rz = 0.0
    for i in range(n_rows - 1, -1, -1):
        a, b, w = lo_i[i], hi_i[i], w_i[i]
        for j in range(n_cols):
            value = z[i, j] + g_c * inv_c[i, j] * fine[j]
            fine[j] = value
            value += w * half[a, j] + (1.0 - w) * half[b, j]
            z[i, j] = value
            rz += r[i, j] * value
    return rz
