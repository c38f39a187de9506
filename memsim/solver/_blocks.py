"""Dense block elimination of an ohmic crossbar's MVM read (kernel-only module: no policy).

The effective matrix M (C x R, i_col = M v) of linear cells, computed directly: no iteration.

Order the column-line nodes by array row: block i holds the C column nodes of array row i.
Eliminating row line i (a tridiagonal chain Dr_i = W + diag(G_i), W its wires) leaves on
block i the dense conductance ``S_i = diag(G_i) - G_i Dr_i^-1 G_i`` and the drive
``b_i v_i`` with ``b_i = g_r G_i Dr_i^-1 e_0``.  The column wires couple block i only to
blocks i - 1 and i + 1 through ``g_c I``: a block-tridiagonal SPD system.  Sweeping from
the open top end (row 0) to the sensed bottom end,

    E_0 = S_0,   E_i = S_i + g_c (g_c I + E_(i-1))^-1 E_(i-1)
    Y_0 = b_0 e_0^T,   Y_i = g_c (g_c I + E_(i-1))^-1 Y_(i-1) + b_i e_i^T
    M = g_c (g_c I + E_(R-1))^-1 Y_(R-1)

(E_i: the conductance of rows 0..i seen from the column nodes of row i, less the wire to
row i + 1).  Only the last block is needed, so there is no back substitution.  The update
``g_c (g_c I + E)^-1 E`` (Cholesky solves with C + i right-hand sides) has no cancellation;
the equal ``g_c I - g_c^2 (g_c I + E)^-1`` needs only the inverse (potri, half the flops)
but loses about eps g_c / E per entry, so it is used once E's mean diagonal has reached
1e-4 g_c (from the first row at 2.5 ohm and 1e-4 S cells; after many rows for wires of
milliohms).  Cost about R (C^3 + C^2 R) flops in LAPACK/BLAS, whence the caller puts the
smaller side of the array in the blocks.

Row lines in closed form.  Dr_i^-1 of a chain driven at its left end is semiseparable: for
j <= k, ``(Dr^-1)_jk = (1/d_k) prod_(m=j..k-1) g_r / (g_r + h_m)`` where ``h_m`` is the
conductance to ground at node m looking left (its cell plus the wire towards the driver) and
``d_k`` the full diagonal conductance of node k seen from both sides; all are sums of
positive terms (no cancellation).  With ``L_k = sum_(m<k) log(g_r / (g_r + h_m))`` the
product is ``exp(L_k - L_j)``, an outer product ``exp(-L_j) exp(L_k)`` while |L| stays
far from the exponent range.
"""
import numpy as np
from numba import njit
from scipy.linalg import blas, lapack

_OUTER_LOG_LIMIT = 600.0  # |L| below this: exp(-L_j) * exp(L_k) neither overflows nor underflows
_INVERSE_FROM = 1e-4  # mean diagonal of E / g_c from which the explicit-inverse update is accurate


def row_lines(g, g_r):
    """Per row i of ``g`` (R, C): (log-products L (R, C), diagonal conductances d (R, C)).

    Row i is a chain of C nodes, node 0 tied to its driver through g_r, node j to node j + 1
    through g_r, node j to ground (the column node, held in this elimination) through g[i, j].
    """
    n_rows, n_cols = g.shape
    left = np.empty((n_rows, n_cols))  # conductance to ground through the wire on the left
    right = np.zeros((n_rows, n_cols))  # ... through the wire on the right
    left[:, 0] = g_r
    for j in range(1, n_cols):
        h = g[:, j - 1] + left[:, j - 1]
        left[:, j] = g_r * h / (g_r + h)
    for j in range(n_cols - 2, -1, -1):
        e = g[:, j + 1] + right[:, j + 1]
        right[:, j] = g_r * e / (g_r + e)
    d = g + left + right
    logs = np.zeros((n_rows, n_cols))
    if n_cols > 1:
        np.cumsum(-np.log1p((g[:, :-1] + left[:, :-1]) / g_r), axis=1, out=logs[:, 1:])
    return logs, d


@njit(cache=True, nogil=True)
def add_row_block(out, src, scale, shift, g_row, logs, d):
    """out = scale * src + shift I + S for one row line; out may be src (in place).

    ``S = diag(G) - G Dr^-1 G`` with ``(Dr^-1)_jk = exp(L_k - L_j) / d_k`` for j <= k (from
    :func:`row_lines`).  Only the upper triangle of ``src`` (C x C) is read, so it may be
    LAPACK's one-triangle output seen transposed, or a matrix symmetric up to rounding;
    ``out`` is filled symmetric.
    """
    n = g_row.size
    outer = -logs[n - 1] < _OUTER_LOG_LIMIT
    a = np.empty(n)
    c = np.empty(n)
    if outer:  # exp(L_k - L_j) = exp(-L_j) exp(L_k): one product per entry
        for j in range(n):
            a[j] = g_row[j] * np.exp(-logs[j])
            c[j] = g_row[j] * np.exp(logs[j]) / d[j]
    for p in range(n):
        for q in range(p, n):
            if outer:
                value = a[p] * c[q]
            else:
                value = g_row[p] * g_row[q] * np.exp(logs[q] - logs[p]) / d[q]
            value = scale * src[p, q] - value
            out[p, q] = value
            out[q, p] = value
        out[p, p] += g_row[p] + shift


def row_drive(g_row, logs, d, g_r):
    """b = g_r G Dr^-1 e_0 of one row line (the column-node drive per volt on the row)."""
    return g_r * g_row * np.exp(logs) / d  # L_0 = 0


def effective_matrix_blocks(g, r_row, r_col):
    """M (C, R) of the ohmic MVM read of conductances ``g`` (R, C), S; wires in ohm (0: merged).

    Direct: raises numpy.linalg.LinAlgError if a factorisation fails (it cannot for g >= 0
    and r > 0, but the caller turns it into a clear error rather than trusting that).
    """
    g = np.ascontiguousarray(g, dtype=np.float64)
    n_rows, n_cols = g.shape
    g_r = 0.0 if r_row == 0.0 else 1.0 / r_row
    g_c = 0.0 if r_col == 0.0 else 1.0 / r_col
    if r_row != 0.0:
        logs, d = row_lines(g, g_r)
    if r_col == 0.0:  # every column one node held at 0 V: the rows decouple
        return g.T.copy() if r_row == 0.0 else row_drive(g, logs, d, g_r).T.copy()

    def add_line(i, out, src, scale, shift):  # out = scale * src + shift I + S_i (upper of src); b_i
        if r_row == 0.0:  # row nodes fixed at the drive: the cells alone
            add_row_block(out, src, scale, shift, g[i], np.zeros(n_cols), np.ones(n_cols) * np.inf)
            return g[i]
        add_row_block(out, src, scale, shift, g[i], logs[i], d[i])
        return row_drive(g[i], logs[i], d[i], g_r)

    # work = [E | Y]: E (C x C), then Y's columns 0..R-1, updated in place block by block
    work = np.zeros((n_cols, n_cols + n_rows), order="F")
    e = work[:, :n_cols]
    pivot = np.empty((n_cols, n_cols), order="F")
    diag = np.diag_indices(n_cols)
    work[:, n_cols] = add_line(0, e.T, e.T, 0.0, 0.0)
    for i in range(1, n_rows + 1):
        pivot[:] = e
        pivot[diag] += g_c
        chol, info = lapack.dpotrf(pivot, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"block pivot {i} is not positive definite (LAPACK dpotrf info={info})")
        if i == n_rows:
            x, info = lapack.dpotrs(chol, work[:, n_cols:], lower=1, overwrite_b=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"last block solve failed (LAPACK dpotrs info={info})")
            return g_c * x
        y = work[:, n_cols:n_cols + i]
        if np.trace(e) >= _INVERSE_FROM * g_c * n_cols:
            # g_c (g_c I + E)^-1 E = g_c I - g_c^2 (g_c I + E)^-1: one inverse (potri, C^3 flops)
            # instead of C + i right-hand sides; its cancellation costs eps g_c / E per entry
            inv, info = lapack.dpotri(chol, lower=1, overwrite_c=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"block inverse {i} failed (LAPACK dpotri info={info})")
            y[:] = blas.dsymm(g_c, inv, y, lower=1)
            b = add_line(i, e.T, inv.T, -g_c * g_c, g_c)
        else:
            x, info = lapack.dpotrs(chol, work[:, :n_cols + i], lower=1, overwrite_b=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"block solve {i} failed (LAPACK dpotrs info={info})")
            work[:, :n_cols + i] = x  # a no-op when LAPACK solved in place
            y *= g_c
            b = add_line(i, e.T, e.T, g_c, 0.0)  # E_i = S_i + g_c (g_c I + E)^-1 E
        work[:, n_cols + i] = b
    raise AssertionError("unreachable")
