"""Two-level conjugate gradients for ohmic crossbars whose wires are long against their cells.

The single-level CG of :mod:`memsim.solver._pcg` (row lines eliminated, column-line solves as
the preconditioner) is slow when the wires are resistive for their length: once a line is
longer than about ``2 pi sqrt(g_wire / g_cell)`` nodes, the cells tie its row and column
nodes together and the slow error modes are smooth in both directions with equal row and
column voltages, a two-dimensional Laplace problem on the wires that neither line solve sees
(at 1024x1024, 100 ohm and cells of 1-100 uS, about 140 iterations for twelve decades).

The coarse level (setup here, numpy and scipy; the per-iteration passes are kernels in
:mod:`memsim.solver._pcg`):

- ``m_i x m_j`` coarse points, linear interpolation between them along the array rows and
  along the columns (``P = P_rows (x) P_cols``, a point every few nodes);
- two unknowns per point, the row wires' and the column wires' voltage, and the Galerkin
  matrix ``A0 = diag(P, P)^T A diag(P, P)`` of the full nodal matrix ``A`` (wires, drivers,
  sense ends, cells), assembled from Kronecker products of the small 1D pieces (the cells
  through their interpolation weights) without forming ``A``;
- ``A0`` is banded (points ordered along the shorter side, the two unknowns of a point next
  to each other) and factorised once by LAPACK's banded Cholesky (scipy.linalg.cholesky_banded);
- the preconditioner is additive: ``z = Dc^-1 r + P [A0^-1 (0, P^T r)]_columns``, i.e. the
  coarse correction of the column nodes with the coarse row wires free, so the cells of the
  coarse problem keep their coupling and a short wire does not make the correction too large.

The restriction rides on the pass that updates the residual and the prolongation on the
backward column sweep, so an iteration reads and writes the arrays as often as before; at
1024x1024 and 100 ohm the count falls to about 25 iterations.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from . import _pcg

#: Nodes between coarse points (measured at 1024x1024, 100 ohm: 8 to 16 give 24 CG iterations,
#: 22 gives 24, 45 gives 32) ...
STEP = 16
#: ... unless that makes more points than this along one side (the banded factor's work grows
#: with the cube of the shorter side's count).
MAX_POINTS = 64
#: Where the coarse level is used (:func:`pays`): a wire-to-cell coupling (:func:`coupling`)
#: and a number of cells at least these.  Measured against the one-level CG (2 cores, cells of
#: 1-100 uS): 1024x1024 at coupling 530 1.8x faster, 5300 4.5x; 512x512 at 130 0.95x, 400
#: 1.15x, 1300 1.9x; 256x256 at 330 0.83x, 990 1.17x; 128x128 at 830 0.66x (the setup and the
#: per-iteration coarse solve are fixed costs that small arrays do not earn back).
MIN_COUPLING = 400.0
MIN_CELLS = 512 * 512


def coupling(g: np.ndarray, r_row: float, r_col: float) -> float:
    """How resistive the wires are for their length: mean cell conductance x wire resistance x
    line length^2, the larger of the rows' and the columns' ((2 pi length / distance)^2 for the
    distance over which the cells tie a row to the columns).  Below about 30 the lines are short
    against that distance and the one-level CG needs few iterations (30 at 512x512 and 2.5 ohm:
    20 iterations; 1300 at 100 ohm: 93)."""
    n_rows, n_cols = g.shape
    return float(np.mean(g)) * max(r_row * n_cols * n_cols, r_col * n_rows * n_rows)


def pays(g: np.ndarray, r_row: float, r_col: float) -> bool:
    """Whether the two-level CG is worth its setup for these cells and wires (both r > 0)."""
    return g.size >= MIN_CELLS and coupling(g, r_row, r_col) >= MIN_COUPLING


def interpolation(n: int, step: int):
    """Linear interpolation to n fine nodes from coarse points on the nodes 0, step, 2 step, ...
    and n - 1: (lo, hi, w), node k = w[k] * point lo[k] + (1 - w[k]) * point hi[k].

    The points sit on nodes, so no wire segment straddles one and the Galerkin product of a
    line's Laplacian couples neighbouring points only (a narrow band)."""
    points = np.append(np.arange(0, n - 1, step), n - 1) if n > 1 else np.zeros(1, np.int64)
    if points.size == 1:
        return np.zeros(n, np.int64), np.zeros(n, np.int64), np.ones(n)
    k = np.arange(n)
    lo = np.minimum(np.searchsorted(points, k, side="right") - 1, points.size - 2)
    return lo, lo + 1, 1.0 - (k - points[lo]) / (points[lo + 1] - points[lo])


def _matrix(n: int, m: int, lo, hi, w):
    """The n x m interpolation matrix."""
    k = np.arange(n)
    return sp.coo_matrix((np.concatenate([w, 1.0 - w]), (np.concatenate([k, k]), np.concatenate([lo, hi]))),
                         shape=(n, m)).tocsr()


def _line_laplacian(n: int, g_wire: float):
    """g_wire times the path Laplacian of n nodes (the line's own segments, no end segment)."""
    main = np.zeros(n)
    main[:-1] += g_wire
    main[1:] += g_wire
    off = np.full(n - 1, -g_wire)
    return sp.diags([off, main, off], [-1, 0, 1], shape=(n, n), format="csr")


def _pairs(n: int, lo, hi, w):
    """The products P[k, a] P[k, b] (|a - b| <= 1) as an n x 3m matrix, column 3a + (b - a + 1)."""
    k = np.arange(n)
    rows, cols, vals = [], [], []
    for a, wa in ((lo, w), (hi, 1.0 - w)):
        for b, wb in ((lo, w), (hi, 1.0 - w)):
            rows.append(k)
            cols.append(3 * a + (b - a + 1))
            vals.append(wa * wb)
    m = int(hi[-1]) + 1
    return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, 3 * m)).tocsr()


def _cell_galerkin(g, grid_i, grid_j):
    """P^T diag(g) P for P = P_rows (x) P_cols, in coarse point numbering I * m_j + J."""
    m_i, m_j = int(grid_i[1][-1]) + 1, int(grid_j[1][-1]) + 1
    q_i = _pairs(g.shape[0], *grid_i)
    q_j = _pairs(g.shape[1], *grid_j)
    u = np.asarray((q_j.T @ np.asarray(q_i.T @ g).T).T)  # (3 m_i, 3 m_j)
    pid_i, pid_j = np.meshgrid(np.arange(3 * m_i), np.arange(3 * m_j), indexing="ij")
    a, da = np.divmod(pid_i, 3)
    b, db = np.divmod(pid_j, 3)
    a2, b2 = a + da - 1, b + db - 1
    keep = (a2 >= 0) & (a2 < m_i) & (b2 >= 0) & (b2 < m_j) & (u != 0.0)
    return sp.coo_matrix((u[keep], ((a * m_j + b)[keep], (a2 * m_j + b2)[keep])),
                         shape=(m_i * m_j, m_i * m_j)).tocsr()


class CoarseGrid:
    """The factorised coarse problem of one ohmic crossbar and bias structure."""

    def __init__(self, g, g_r: float, g_c: float, driven, held, step: int = STEP):
        n_rows, n_cols = g.shape
        self.grid_i = interpolation(n_rows, max(2, step, math.ceil((n_rows - 1) / (MAX_POINTS - 1))))
        self.grid_j = interpolation(n_cols, max(2, step, math.ceil((n_cols - 1) / (MAX_POINTS - 1))))
        self.m_i, self.m_j = int(self.grid_i[1][-1]) + 1, int(self.grid_j[1][-1]) + 1
        p_i = _matrix(n_rows, self.m_i, *self.grid_i)
        p_j = _matrix(n_cols, self.m_j, *self.grid_j)
        ends_row = sp.diags(np.asarray(driven, float))
        ends_col = sp.diags(np.asarray(held, float))
        first = sp.coo_matrix(([1.0], ([0], [0])), shape=(n_cols, n_cols))
        last = sp.coo_matrix(([1.0], ([n_rows - 1], [n_rows - 1])), shape=(n_rows, n_rows))
        cells = _cell_galerkin(g, self.grid_i, self.grid_j)
        a_rr = (sp.kron(p_i.T @ p_i, p_j.T @ _line_laplacian(n_cols, g_r) @ p_j)
                + g_r * sp.kron(p_i.T @ ends_row @ p_i, p_j.T @ first @ p_j) + cells)
        a_cc = (sp.kron(p_i.T @ _line_laplacian(n_rows, g_c) @ p_i, p_j.T @ p_j)
                + g_c * sp.kron(p_i.T @ last @ p_i, p_j.T @ ends_col @ p_j) + cells)
        a0 = sp.bmat([[a_rr, -cells], [-cells, a_cc]]).tocoo()
        # band order: points along the shorter side first, a point's two unknowns together
        size = self.m_i * self.m_j
        point = np.arange(size)
        i, j = np.divmod(point, self.m_j)
        band = i * self.m_j + j if self.m_j <= self.m_i else j * self.m_i + i
        self.order = band  # coarse point -> band position
        new = np.concatenate([2 * band, 2 * band + 1])
        rows, cols = new[a0.row], new[a0.col]
        lower = rows >= cols
        width = int((rows - cols)[lower].max())
        ab = np.zeros((width + 1, 2 * size))
        np.add.at(ab, ((rows - cols)[lower], cols[lower]), a0.data[lower])
        self.factor = scipy.linalg.cholesky_banded(ab, lower=True, check_finite=False)
        self._rhs = np.zeros(2 * size)

    def correction(self, r_coarse: np.ndarray) -> np.ndarray:
        """The column part of A0^-1 (0, r_coarse): (m_i, m_j) coarse column-wire voltages."""
        return _pcg.coarse_solve(self.factor, self.order, r_coarse)
