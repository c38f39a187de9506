"""Numba kernels of the crossbar's line structure (kernel-only module: no policy, no I/O).

Unknowns are the row-node voltages ``vr`` and column-node voltages ``vc``, both (R, C).
A linearised crossbar (cells replaced by their conductance derivatives) has the block form

    [ Dr   -B1 ] [dr]   [-fr]       Dr: row lines (tridiagonal per row) + row-side cell terms
    [ -B2   Dc ] [dc] = [-fc]       Dc: column lines (tridiagonal per column) + column-side terms

with B1, B2 diagonal couplings (B1 = B2 for reciprocal cells).  Eliminating the row nodes,
``dr = Dr^-1 (-fr + B1 dc)``, leaves the Schur system ``(Dc - B2 Dr^-1 B1) dc = -fc - B2 Dr^-1 fr``
on the column nodes, solved by conjugate gradients (or BiCGStab when B1 != B2) preconditioned
with the column-line solves ``Dc^-1``.  Every operator application is one sweep of
tridiagonal solves along the rows: this is the line-structure lever of docs/design.md.

Line modes.  A line with wire resistance r > 0 is a chain of nodes, driven through one
segment at its driven end (rows: left end, columns: bottom end) or floating.  With r == 0
(``merged``) a line is one node: fixed at its drive voltage when driven (no unknown), or a
single unknown stored at index 0 of the line (the other entries of the line stay 0).

Tridiagonal factorisation without cancellation.  Eliminating from the open end of a line,
the pivots are ``g + e_k`` with ``e_0 = G_0``, ``e_k = G_k + g e_(k-1) / (g + e_(k-1))``
(g: wire segment conductance, G_k: the cell term on the diagonal), and the last pivot (at
the driven end) ``e_(n-1) + g * driven``.  All terms are non-negative, so a 1 milliohm wire
next to a 1e-7 S cell keeps full precision (the textbook form ``2g + G - g^2/pivot`` loses it).

Error model.  The solver's kernels (this module, :mod:`memsim.solver._cells`,
:mod:`memsim.solver._pcg`) compile with ``error_model="numpy"``: a float division by zero gives
inf or NaN, as numpy's does (the convergence check then refuses the iterate), instead of raising
ZeroDivisionError from inside a kernel.  Without that exception branch LLVM runs loops that
divide in vector lanes (128x128: factor_cols 21 -> 5.7 us, the device cells' sinh and cosh
23 -> 7 us); with it, every division was a scalar one.
"""
import numpy as np
from numba import njit

#: Floating-point freedoms of the passes that gain from them (the Schur products, the dot
#: products, the merit, BiCGStab's update passes, the line-current scale): sums may be
#: reassociated (a dot product then runs in vector lanes instead of one add after another) and
#: a multiply-add may be one fused instruction.  No finite-math assumption: a NaN or an infinity
#: still propagates.  Rounding differs from the strict order by ulps, far inside the Krylov
#: tolerances.  Loops that fuse a sum with a line sweep stay strict (LLVM's vectorised form of
#: those measured slower), or leave the sum to a pass of its own (the backward column sweep's
#: dot: 13.7 -> 9.4 us at 128x128).
_FAST = {"reassoc", "contract"}


# ---------------------------------------------------------------------------------------------
# line factorisations and solves
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def factor_rows(diag, g_w, merged, driven, inv):
    """Inverse pivots of the row-line blocks of Dr into ``inv`` (R, C).

    ``diag`` (R, C): cell terms on the row diagonal (S); ``g_w``: row segment conductance (S);
    ``merged``: r_row == 0; ``driven`` (R,): the row's left end is driven.

    Each term e_k of the module's recurrence is carried as a ratio x / y, which the recurrence
    maps without a division: y' = g y + x, x' = G y' + g x (the same non-negative terms, so no
    cancellation).  The chain along a row, four rows at a time, is then multiply-adds only; the
    pivots' divisions, inv = y / (g y + x), follow in a separate pass that runs in vector lanes
    (128x128: 35 -> 21 us; a divide on the chain waits for the one before).  Every eight nodes
    the pair is scaled back to y = 1, since it grows or shrinks by g + e per node.
    """
    n_rows, n_cols = diag.shape
    if merged:
        for i in range(n_rows):
            if not driven[i]:
                total = 0.0
                for j in range(n_cols):
                    total += diag[i, j]
                inv[i, 0] = 1.0 / total
        return
    xs = np.empty((4, n_cols))  # the chain's x; its y goes to inv until the divisions
    i = 0
    while i < n_rows:
        count = 4 if i + 4 <= n_rows else 1
        if count == 4:
            _ratio_chain4(diag, g_w, inv, xs, i)
        else:
            _ratio_chain1(diag, g_w, inv, xs, i)
        for k in range(count):
            row = i + k
            for j in range(1, n_cols):
                y = inv[row, j]
                inv[row, j] = y / (g_w * y + xs[k, j])
            y = inv[row, 0]  # the driven (left) end: its driver's segment too
            inv[row, 0] = y / (xs[k, 0] + g_w * y) if driven[row] else y / xs[k, 0]
        i += count


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ratio_chain4(diag, g_w, y_out, x_out, i):
    """:func:`factor_rows`' (x, y) chains of rows i..i+3, from the open (right) end."""
    last = diag.shape[1] - 1
    x0 = diag[i, last]
    x1 = diag[i + 1, last]
    x2 = diag[i + 2, last]
    x3 = diag[i + 3, last]
    y0 = y1 = y2 = y3 = 1.0
    for k in range(4):
        x_out[k, last] = diag[i + k, last]
        y_out[i + k, last] = 1.0
    j = last - 1
    while j >= 0:
        stop = max(j - 7, 0)
        while j >= stop:
            y0 = g_w * y0 + x0
            y1 = g_w * y1 + x1
            y2 = g_w * y2 + x2
            y3 = g_w * y3 + x3
            x0 = diag[i, j] * y0 + g_w * x0
            x1 = diag[i + 1, j] * y1 + g_w * x1
            x2 = diag[i + 2, j] * y2 + g_w * x2
            x3 = diag[i + 3, j] * y3 + g_w * x3
            x_out[0, j] = x0
            x_out[1, j] = x1
            x_out[2, j] = x2
            x_out[3, j] = x3
            y_out[i, j] = y0
            y_out[i + 1, j] = y1
            y_out[i + 2, j] = y2
            y_out[i + 3, j] = y3
            j -= 1
        x0 /= y0
        x1 /= y1
        x2 /= y2
        x3 /= y3
        y0 = y1 = y2 = y3 = 1.0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ratio_chain1(diag, g_w, y_out, x_out, i):
    """:func:`_ratio_chain4` for one row."""
    last = diag.shape[1] - 1
    x = diag[i, last]
    y = 1.0
    x_out[0, last] = x
    y_out[i, last] = 1.0
    j = last - 1
    while j >= 0:
        stop = max(j - 7, 0)
        while j >= stop:
            y = g_w * y + x
            x = diag[i, j] * y + g_w * x
            x_out[0, j] = x
            y_out[i, j] = y
            j -= 1
        x /= y
        y = 1.0


@njit(cache=True, nogil=True, error_model="numpy")
def factor_cols(diag, g_w, merged, held, inv):
    """Inverse pivots of the column-line blocks of Dc into ``inv`` (R, C); open end at row 0."""
    n_rows, n_cols = diag.shape
    if merged:
        for j in range(n_cols):
            if not held[j]:
                total = 0.0
                for i in range(n_rows):
                    total += diag[i, j]
                inv[0, j] = 1.0 / total
        return
    e = np.empty(n_cols)
    for j in range(n_cols):
        e[j] = diag[0, j]
    for i in range(n_rows - 1):
        if i > 0:
            for j in range(n_cols):
                e[j] = diag[i, j] + g_w * e[j] * inv[i - 1, j]
        for j in range(n_cols):
            inv[i, j] = 1.0 / (g_w + e[j])
    last = n_rows - 1
    for j in range(n_cols):
        if last > 0:
            e[j] = diag[last, j] + g_w * e[j] * inv[last - 1, j]
        inv[last, j] = 1.0 / (e[j] + g_w) if held[j] else 1.0 / e[j]


@njit(cache=True, nogil=True, error_model="numpy")
def solve_rows(rhs, g_w, merged, driven, inv, out):
    """out = Dr^-1 rhs, both (R, C) row-space arrays."""
    n_rows, n_cols = rhs.shape
    for i in range(n_rows):
        if merged:
            for j in range(n_cols):
                out[i, j] = 0.0
            if not driven[i]:
                out[i, 0] = rhs[i, 0] * inv[i, 0]
            continue
        y = 0.0
        for k in range(n_cols):
            j = n_cols - 1 - k
            y = (rhs[i, j] + g_w * y) * inv[i, j]
            out[i, j] = y
        for j in range(1, n_cols):
            out[i, j] += g_w * inv[i, j] * out[i, j - 1]


@njit(cache=True, nogil=True, error_model="numpy")
def solve_cols(rhs, g_w, merged, held, inv, out):
    """out = Dc^-1 rhs, both (R, C) column-space arrays."""
    n_rows, n_cols = rhs.shape
    if merged:
        for i in range(n_rows):
            for j in range(n_cols):
                out[i, j] = 0.0
        for j in range(n_cols):
            if not held[j]:
                out[0, j] = rhs[0, j] * inv[0, j]
        return
    for j in range(n_cols):
        out[0, j] = rhs[0, j] * inv[0, j]
    for i in range(1, n_rows):
        for j in range(n_cols):
            out[i, j] = (rhs[i, j] + g_w * out[i - 1, j]) * inv[i, j]
    for i in range(n_rows - 2, -1, -1):
        for j in range(n_cols):
            out[i, j] += g_w * inv[i, j] * out[i + 1, j]


@njit(cache=True, nogil=True, error_model="numpy")
def apply_cols(p, diag, g_w, merged, held, out):
    """out = Dc p: column wires plus the column-side cell terms ``diag``."""
    n_rows, n_cols = p.shape
    if merged:
        for i in range(n_rows):
            for j in range(n_cols):
                out[i, j] = 0.0
        for j in range(n_cols):
            if not held[j]:
                total = 0.0
                for i in range(n_rows):
                    total += diag[i, j]
                out[0, j] = total * p[0, j]
        return
    for i in range(n_rows):
        for j in range(n_cols):
            value = diag[i, j] * p[i, j]
            if i > 0:
                value += g_w * (p[i, j] - p[i - 1, j])
            if i < n_rows - 1:
                value += g_w * (p[i, j] - p[i + 1, j])
            elif held[j]:
                value += g_w * p[i, j]
            out[i, j] = value


@njit(cache=True, nogil=True, error_model="numpy")
def cols_to_rows(p, coef, rows_merged, driven, cols_merged, held, out):
    """out = B p: column-space ``p`` through the cell couplings ``coef`` into row space."""
    n_rows, n_cols = p.shape
    for i in range(n_rows):
        for j in range(n_cols):
            out[i, j] = 0.0
    for i in range(n_rows):
        if rows_merged and driven[i]:
            continue
        for j in range(n_cols):
            if cols_merged:
                if held[j]:
                    continue
                value = coef[i, j] * p[0, j]
            else:
                value = coef[i, j] * p[i, j]
            if rows_merged:
                out[i, 0] += value
            else:
                out[i, j] = value


@njit(cache=True, nogil=True, error_model="numpy")
def rows_to_cols(s, coef, rows_merged, driven, cols_merged, held, out):
    """out = B s: row-space ``s`` through the cell couplings ``coef`` into column space."""
    n_rows, n_cols = s.shape
    for i in range(n_rows):
        for j in range(n_cols):
            out[i, j] = 0.0
    for i in range(n_rows):
        if rows_merged and driven[i]:
            continue
        for j in range(n_cols):
            if cols_merged and held[j]:
                continue
            value = coef[i, j] * (s[i, 0] if rows_merged else s[i, j])
            if cols_merged:
                out[0, j] += value
            else:
                out[i, j] = value


# ---------------------------------------------------------------------------------------------
# the Schur system on the column nodes
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def schur_apply(p, d_col, b1, b2, g_r, g_c, rows_merged, cols_merged, driven, held, inv_r,
                t_row, s_row, out):
    """out = (Dc - B2 Dr^-1 B1) p; ``t_row``, ``s_row`` are (R, C) scratch arrays."""
    if not rows_merged and not cols_merged:
        _schur_apply_lines(p, d_col, b1, b2, g_r, g_c, held, inv_r, t_row, s_row, out)
        return
    cols_to_rows(p, b1, rows_merged, driven, cols_merged, held, t_row)
    solve_rows(t_row, g_r, rows_merged, driven, inv_r, s_row)
    rows_to_cols(s_row, b2, rows_merged, driven, cols_merged, held, t_row)
    apply_cols(p, d_col, g_c, cols_merged, held, out)
    n_rows, n_cols = p.shape
    for i in range(n_rows):
        for j in range(n_cols):
            out[i, j] -= t_row[i, j]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _schur_apply_lines(p, d_col, b1, b2, g_r, g_c, held, inv_r, t_row, s_row, out):
    """:func:`schur_apply` where no line is merged, in one pass over the array rows: each row's
    B1 p, its tridiagonal solve and the column terms while the row is in cache, four rows'
    solves in lockstep (independent chains of multiply-adds).  The same operations in the same
    order as the general path, so the same result to the bit."""
    n_rows, n_cols = p.shape
    i0 = 0
    while i0 < n_rows:
        count = 4 if i0 + 4 <= n_rows else 1
        for i in range(i0, i0 + count):
            for j in range(n_cols):
                t_row[i, j] = b1[i, j] * p[i, j]
        if count == 4:
            y0 = y1 = y2 = y3 = 0.0
            for k in range(n_cols):
                j = n_cols - 1 - k
                y0 = (t_row[i0, j] + g_r * y0) * inv_r[i0, j]
                y1 = (t_row[i0 + 1, j] + g_r * y1) * inv_r[i0 + 1, j]
                y2 = (t_row[i0 + 2, j] + g_r * y2) * inv_r[i0 + 2, j]
                y3 = (t_row[i0 + 3, j] + g_r * y3) * inv_r[i0 + 3, j]
                s_row[i0, j] = y0
                s_row[i0 + 1, j] = y1
                s_row[i0 + 2, j] = y2
                s_row[i0 + 3, j] = y3
            for j in range(1, n_cols):
                s_row[i0, j] += g_r * inv_r[i0, j] * s_row[i0, j - 1]
                s_row[i0 + 1, j] += g_r * inv_r[i0 + 1, j] * s_row[i0 + 1, j - 1]
                s_row[i0 + 2, j] += g_r * inv_r[i0 + 2, j] * s_row[i0 + 2, j - 1]
                s_row[i0 + 3, j] += g_r * inv_r[i0 + 3, j] * s_row[i0 + 3, j - 1]
        else:
            y = 0.0
            for k in range(n_cols):
                j = n_cols - 1 - k
                y = (t_row[i0, j] + g_r * y) * inv_r[i0, j]
                s_row[i0, j] = y
            for j in range(1, n_cols):
                s_row[i0, j] += g_r * inv_r[i0, j] * s_row[i0, j - 1]
        for i in range(i0, i0 + count):
            for j in range(n_cols):
                value = d_col[i, j] * p[i, j]
                if i > 0:
                    value += g_c * (p[i, j] - p[i - 1, j])
                if i < n_rows - 1:
                    value += g_c * (p[i, j] - p[i + 1, j])
                elif held[j]:
                    value += g_c * p[i, j]
                out[i, j] = value - b2[i, j] * s_row[i, j]
        i0 += count


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _dot(a, b):
    total = 0.0
    n_rows, n_cols = a.shape
    for i in range(n_rows):
        for j in range(n_cols):
            total += a[i, j] * b[i, j]
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def schur_bicgstab(rhs, x, d_col, b1, b2, g_r, g_c, rows_merged, cols_merged, driven, held, inv_r,
                   inv_c, rel_tol, max_iter, recompute, work):
    """Right-preconditioned BiCGStab on the non-symmetric Schur system from x = 0; the solution
    into ``x``.

    ``work`` is (10, R, C) scratch space.  Returns (iterations, relative residual): recomputed
    from x (one more product) when ``recompute``, else the method's recursive estimate.
    """
    n_rows, n_cols = rhs.shape
    r = work[0]
    r0 = work[1]
    p = work[2]
    v = work[3]
    ph = work[4]
    sh = work[5]
    s = work[6]
    t = work[7]
    t_row = work[8]
    s_row = work[9]
    p[:] = 0.0
    v[:] = 0.0
    x[:] = 0.0
    norm_b = np.sqrt(_dot(rhs, rhs))
    if norm_b == 0.0:
        return 0, 0.0
    r[:] = rhs  # from x = 0 the residual is the right-hand side
    r0[:] = rhs
    rr = norm_b * norm_b
    rho = 1.0
    alpha = 1.0
    omega = 1.0
    r0r = rr  # r0 . r, carried from the pass that updates r
    target = rel_tol * norm_b
    iterations = 0
    if np.sqrt(rr) <= target:
        return 0, np.sqrt(rr) / norm_b
    for iterations in range(1, max_iter + 1):
        rho_new = r0r
        if rho_new == 0.0:
            break
        beta = (rho_new / rho) * (alpha / omega)
        rho = rho_new
        for i in range(n_rows):
            for j in range(n_cols):
                p[i, j] = r[i, j] + beta * (p[i, j] - omega * v[i, j])
        solve_cols(p, g_c, cols_merged, held, inv_c, ph)
        schur_apply(ph, d_col, b1, b2, g_r, g_c, rows_merged, cols_merged, driven, held, inv_r,
                    t_row, s_row, v)
        r0v = _dot(r0, v)
        if r0v == 0.0:
            break
        alpha = rho / r0v
        ss = 0.0
        for i in range(n_rows):
            for j in range(n_cols):
                s[i, j] = r[i, j] - alpha * v[i, j]
                ss += s[i, j] * s[i, j]
        if np.sqrt(ss) <= target:
            for i in range(n_rows):
                for j in range(n_cols):
                    x[i, j] += alpha * ph[i, j]
            rr = ss
            break
        solve_cols(s, g_c, cols_merged, held, inv_c, sh)
        schur_apply(sh, d_col, b1, b2, g_r, g_c, rows_merged, cols_merged, driven, held, inv_r,
                    t_row, s_row, t)
        tt = 0.0
        ts = 0.0
        for i in range(n_rows):
            for j in range(n_cols):
                tt += t[i, j] * t[i, j]
                ts += t[i, j] * s[i, j]
        if tt == 0.0:
            break
        omega = ts / tt
        rr = 0.0
        r0r = 0.0
        for i in range(n_rows):
            for j in range(n_cols):
                x[i, j] += alpha * ph[i, j] + omega * sh[i, j]
                value = s[i, j] - omega * t[i, j]
                r[i, j] = value
                rr += value * value
                r0r += r0[i, j] * value
        if np.sqrt(rr) <= target or omega == 0.0:
            break
    if recompute:
        schur_apply(x, d_col, b1, b2, g_r, g_c, rows_merged, cols_merged, driven, held, inv_r,
                    t_row, s_row, t)
        rr = 0.0
        for i in range(n_rows):
            for j in range(n_cols):
                d = rhs[i, j] - t[i, j]
                rr += d * d
    return iterations, np.sqrt(rr) / norm_b


@njit(cache=True, nogil=True, error_model="numpy")
def newton_rhs(f_row, f_col, b2, g_r, rows_merged, cols_merged, driven, held, inv_r, rhs):
    """rhs = -fc - B2 Dr^-1 fr: the Schur system's right-hand side for the KCL residuals (fr, fc).

    A Newton step on merged lines is ``newton_rhs``, then CG (B1 = B2, in
    :func:`memsim.solver._pcg.newton_step_sym`) or :func:`schur_bicgstab` for dc, then
    :func:`newton_back` for dr.  ``inv_r``/``inv_c`` hold the factorisations of Dr and Dc.
    """
    n_rows, n_cols = f_row.shape
    s_row = np.empty((n_rows, n_cols))
    solve_rows(f_row, g_r, rows_merged, driven, inv_r, s_row)
    rows_to_cols(s_row, b2, rows_merged, driven, cols_merged, held, rhs)
    for i in range(n_rows):
        for j in range(n_cols):
            rhs[i, j] = -f_col[i, j] - rhs[i, j]


@njit(cache=True, nogil=True, error_model="numpy")
def newton_back(f_row, dc, b1, g_r, rows_merged, cols_merged, driven, held, inv_r, dr):
    """dr = Dr^-1 (B1 dc - fr): the row-node update once the column-node update dc is known."""
    n_rows, n_cols = f_row.shape
    rhs = np.empty((n_rows, n_cols))
    cols_to_rows(dc, b1, rows_merged, driven, cols_merged, held, rhs)
    for i in range(n_rows):
        for j in range(n_cols):
            rhs[i, j] -= f_row[i, j]
    solve_rows(rhs, g_r, rows_merged, driven, inv_r, dr)


# ---------------------------------------------------------------------------------------------
# KCL residual and voltage updates
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def kcl_residual(vr, vc, i_cell, g_r, g_c, rows_merged, cols_merged, driven, held, v_row, v_col,
                 f_row, f_col):
    """Currents leaving every free node (A): rows into (R, C) ``f_row``, columns into ``f_col``.

    ``vr``, ``vc``: full node voltages (merged lines hold their value in every entry);
    ``i_cell``: cell currents row -> column node.  Entries that are not unknowns are 0.
    """
    n_rows, n_cols = vr.shape
    if rows_merged:
        for i in range(n_rows):
            total = 0.0
            if not driven[i]:
                for j in range(n_cols):
                    total += i_cell[i, j]
            f_row[i, 0] = total
            for j in range(1, n_cols):
                f_row[i, j] = 0.0
    else:
        # the end nodes peeled off: the interior loop has no branch and runs in vector lanes
        last = n_cols - 1
        for i in range(n_rows):
            left = v_row[i] if driven[i] else vr[i, 0]  # an open end adds no current
            value = i_cell[i, 0] + g_r * (vr[i, 0] - left)
            if last > 0:
                value += g_r * (vr[i, 0] - vr[i, 1])
            f_row[i, 0] = value
            for j in range(1, last):
                f_row[i, j] = i_cell[i, j] + g_r * (vr[i, j] - vr[i, j - 1]) + g_r * (vr[i, j] - vr[i, j + 1])
            if last > 0:
                f_row[i, last] = i_cell[i, last] + g_r * (vr[i, last] - vr[i, last - 1])
    if cols_merged:
        for j in range(n_cols):
            total = 0.0
            if not held[j]:
                for i in range(n_rows):
                    total -= i_cell[i, j]
            f_col[0, j] = total
        for i in range(1, n_rows):
            for j in range(n_cols):
                f_col[i, j] = 0.0
        return
    last = n_rows - 1
    for i in range(n_rows):
        if 0 < i < last:
            for j in range(n_cols):
                f_col[i, j] = -i_cell[i, j] + g_c * (vc[i, j] - vc[i - 1, j]) + g_c * (vc[i, j] - vc[i + 1, j])
            continue
        for j in range(n_cols):
            value = -i_cell[i, j]
            if i > 0:
                value += g_c * (vc[i, j] - vc[i - 1, j])
            if i < last:
                value += g_c * (vc[i, j] - vc[i + 1, j])
            elif held[j]:
                value += g_c * (vc[i, j] - v_col[j])
            f_col[i, j] = value


@njit(cache=True, nogil=True, error_model="numpy")
def add_update(vr, vc, dr, dc, step, rows_merged, cols_merged, driven, held, lo, hi, out_r, out_c):
    """out = v + step * d, clipped to [lo, hi] (a projection; -inf, inf for none; a NaN stays
    NaN), spreading merged-line unknowns (index 0) over their line.  In place:
    :func:`add_update_in_place`."""
    _add_update(vr, vc, dr, dc, step, rows_merged, cols_merged, driven, held, lo, hi, out_r, out_c)


@njit(cache=True, nogil=True, error_model="numpy")
def add_update_in_place(vr, vc, dr, dc, step, rows_merged, cols_merged, driven, held, lo, hi):
    """:func:`add_update` into ``vr``, ``vc``.  Its own kernel: given the same array as input and
    output, LLVM's check that a loop's arrays do not overlap fails and the loop runs without
    vector lanes (128x128: 21 us instead of 11); here they are one argument."""
    _add_update(vr, vc, dr, dc, step, rows_merged, cols_merged, driven, held, lo, hi, vr, vc)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _add_update(vr, vc, dr, dc, step, rows_merged, cols_merged, driven, held, lo, hi, out_r, out_c):
    n_rows, n_cols = vr.shape
    for i in range(n_rows):
        for j in range(n_cols):
            if rows_merged:
                value = vr[i, j] + (0.0 if driven[i] else step * dr[i, 0])
            else:
                value = vr[i, j] + step * dr[i, j]
            out_r[i, j] = lo if value < lo else (hi if value > hi else value)
            if cols_merged:
                value = vc[i, j] + (0.0 if held[j] else step * dc[0, j])
            else:
                value = vc[i, j] + step * dc[i, j]
            out_c[i, j] = lo if value < lo else (hi if value > hi else value)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _larger(m, a):
    """max(m, a) for a >= 0 that keeps a NaN once either is one."""
    return m if (a <= m or m != m) else a


@njit(cache=True, nogil=True, error_model="numpy")
def max_abs2(a, b):
    """max(|a|, |b|) over two arrays of the same shape; NaN if either holds one (an update or a
    residual of NaN must fail every test against a tolerance, never pass as 0).

    One running maximum per column: independent lanes that the compiler vectorises (a single
    running maximum is a chain of dependent compares, about ten times slower)."""
    n_rows, n_cols = a.shape
    top = np.zeros(n_cols)
    for i in range(n_rows):
        for j in range(n_cols):
            top[j] = _larger(_larger(top[j], abs(a[i, j])), abs(b[i, j]))
    m = 0.0
    for j in range(n_cols):
        m = _larger(m, top[j])
    return m


@njit(cache=True, nogil=True, error_model="numpy")
def row_max_weighted(f):
    """sum over rows i of (R - i) max_j |f(i, j)|: the column half of :func:`kcl_majorant`
    (divide by the column segment conductance).  Eight running maxima per row, so the compares
    of a row are independent; a NaN anywhere gives NaN."""
    n_rows, n_cols = f.shape
    lanes = np.empty(8)
    total = 0.0
    for i in range(n_rows):
        for k in range(8):
            lanes[k] = 0.0
        j = 0
        while j + 8 <= n_cols:
            for k in range(8):
                lanes[k] = _larger(lanes[k], abs(f[i, j + k]))
            j += 8
        m = 0.0
        for k in range(8):
            m = _larger(m, lanes[k])
        for k in range(j, n_cols):
            m = _larger(m, abs(f[i, k]))
        total += (n_rows - i) * m
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def kcl_majorant(f_row, f_col, r_row, r_col):
    """The comparison bound (V) on J^-1 f for KCL residuals ``f_row``, ``f_col`` (A), where
    :meth:`memsim.solver.core._System._inverse_bound` applies.

    W(i, j) = a(j) + b(i) on both nodes of cell (i, j), with a the voltages of a bare row wire
    carrying c(j) = max_i |f_row(i, j)| out of each node to its driver and b those of a bare column
    wire carrying d(i) = max_j |f_col(i, j)| to its sense end, has J W >= |f| (the cell terms
    cancel), so |J^-1 f| <= J^-1 |f| <= W and the bound is max W = r_row sum_j (j + 1) c(j) +
    r_col sum_i (R - i) d(i).  With c and d at their overall maximum this is the uniform bound
    ||J^-1||_inf ||f||_inf; per line it is several times tighter (a Newton step solves the row
    equations exactly, leaving rounding there).  NaN if any residual is (also for a merged line:
    0 times NaN)."""
    n_rows, n_cols = f_row.shape
    top = np.zeros(n_cols)
    for i in range(n_rows):
        for j in range(n_cols):
            top[j] = _larger(top[j], abs(f_row[i, j]))
    rows = 0.0
    for j in range(n_cols):
        rows += (j + 1) * top[j]
    return r_row * rows + r_col * row_max_weighted(f_col)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def line_current_scale(i_cell):
    """The largest line current: max over rows and columns of the sum of |i_cell| along it (a
    scale for the tolerance test: its sums reassociated)."""
    n_rows, n_cols = i_cell.shape
    cols = np.zeros(n_cols)
    top = 0.0
    for i in range(n_rows):
        row = 0.0
        for j in range(n_cols):
            value = abs(i_cell[i, j])
            row += value
            cols[j] += value
        top = max(top, row)
    for j in range(n_cols):
        top = max(top, cols[j])
    return top


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def merit(f_row, f_col, d_row, d_col, g_r, g_c, rows_merged, cols_merged, driven, held):
    """sum(f^2 / J_ii) over the free nodes: the KCL residuals weighted by the Jacobian's diagonal
    (cell terms ``d_row``/``d_col`` plus the wires; a merged line's one unknown has the sum of its
    cell terms, a fixed one weight 1), each diagonal floored at 1e-300."""
    n_rows, n_cols = f_row.shape
    total = 0.0
    for i in range(n_rows):
        if rows_merged:
            for j in range(n_cols):
                diag = 1.0
                if j == 0 and not driven[i]:
                    diag = 0.0
                    for k in range(n_cols):
                        diag += d_row[i, k]
                total += f_row[i, j] * f_row[i, j] / max(diag, 1e-300)
            continue
        for j in range(n_cols):
            if j == 0:
                wire = g_r * ((1.0 if driven[i] else 0.0) + (1.0 if n_cols > 1 else 0.0))
            elif j == n_cols - 1:
                wire = g_r
            else:
                wire = 2.0 * g_r
            total += f_row[i, j] * f_row[i, j] / max(d_row[i, j] + wire, 1e-300)
    if cols_merged:
        for j in range(n_cols):
            diag = 1.0
            if not held[j]:
                diag = 0.0
                for i in range(n_rows):
                    diag += d_col[i, j]
            total += f_col[0, j] * f_col[0, j] / max(diag, 1e-300)
            for i in range(1, n_rows):
                total += f_col[i, j] * f_col[i, j]
        return total
    for i in range(n_rows):
        for j in range(n_cols):
            if i == n_rows - 1:
                wire = g_c * ((1.0 if held[j] else 0.0) + (1.0 if n_rows > 1 else 0.0))
            elif i == 0:
                wire = g_c
            else:
                wire = 2.0 * g_c
            total += f_col[i, j] * f_col[i, j] / max(d_col[i, j] + wire, 1e-300)
    return total
