"""Slow, obviously correct reference solvers (scipy.sparse), for testing the fast kernels.

The full nodal system is assembled element by element, as a netlist would list it: every
wire segment a conductance stamp, every row driver and column sense node a fixed node, every
cell a stamp.  A wire of 0 ohm is not stamped; its two ends are the same node.  Linear cells:
one ``spsolve``.  Nonlinear cells: Newton with the numpy device functions of
:mod:`memsim.devices` (the 1T1R internal node is an unknown here, not eliminated), a
finite-difference transistor Jacobian, ``spsolve`` per step and backtracking.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import spsolve

from ..circuit.array import Crossbar
from ..circuit.bias import Bias, mvm_bias
from ..circuit.result import SolveResult
from ..devices import current as rram_current
from ..devices import dcurrent_dv
from ._nodal import branch_stamp, channel_branch, damped_newton
from ._nodal import stamp as _stamp


class _Nodes:
    """Node numbering with r = 0 merging; fixed nodes carry their voltage."""

    def __init__(self, xb: Crossbar, bias: Bias, internal: bool):
        n_rows, n_cols = xb.shape
        self.count = 0
        self.fixed = {}
        self.row = np.empty((n_rows, n_cols), dtype=np.int64)
        self.col = np.empty((n_rows, n_cols), dtype=np.int64)
        self.resistors = []  # (node a, node b, conductance)
        for i in range(n_rows):
            driven = not np.isnan(bias.v_row[i])
            if xb.r_row == 0:
                node = self._new()
                self.row[i, :] = node
                if driven:
                    self.fixed[node] = float(bias.v_row[i])
                continue
            for j in range(n_cols):
                self.row[i, j] = self._new()
                if j > 0:
                    self.resistors.append((self.row[i, j - 1], self.row[i, j], 1.0 / xb.r_row))
            if driven:
                end = self._new()
                self.fixed[end] = float(bias.v_row[i])
                self.resistors.append((end, self.row[i, 0], 1.0 / xb.r_row))
        self.sense = {}
        for j in range(n_cols):
            held = not np.isnan(bias.v_col[j])
            if xb.r_col == 0:
                node = self._new()
                self.col[:, j] = node
                if held:
                    self.fixed[node] = float(bias.v_col[j])
                    self.sense[j] = ("merged", node)
                continue
            for i in range(n_rows):
                self.col[i, j] = self._new()
                if i > 0:
                    self.resistors.append((self.col[i - 1, j], self.col[i, j], 1.0 / xb.r_col))
            if held:
                end = self._new()
                self.fixed[end] = float(bias.v_col[j])
                self.resistors.append((self.col[n_rows - 1, j], end, 1.0 / xb.r_col))
                self.sense[j] = ("wire", end)
        self.internal = None
        if internal:
            self.internal = np.arange(self.count, self.count + n_rows * n_cols).reshape(n_rows, n_cols)
            self.count += n_rows * n_cols
        self.fixed_index = np.array(sorted(self.fixed), dtype=np.int64)
        self.fixed_value = np.array([self.fixed[k] for k in self.fixed_index])
        is_free = np.ones(self.count, dtype=bool)
        is_free[self.fixed_index] = False
        self.free_index = np.nonzero(is_free)[0]

    def _new(self):
        self.count += 1
        return self.count - 1

    def wire_matrix(self):
        a, b, g = (np.array(x) for x in zip(*self.resistors)) if self.resistors else \
            (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
        return _stamp(self.count, a, b, g).tocsc()


def _column_currents(xb, bias, nodes, voltages, i_cell):
    i_col = np.zeros(xb.cols)
    for j, (how, node) in nodes.sense.items():
        if how == "wire":
            i_col[j] = (voltages[nodes.col[-1, j]] - voltages[node]) / xb.r_col
        else:  # merged column: the current into the held node is what its cells deliver
            i_col[j] = i_cell[:, j].sum()
    return i_col


def reference_solve_bias(xb: Crossbar, bias: Bias, *, tol: float = 1e-13,
                         max_iter: int = 200) -> SolveResult:
    """Reference solution of ``xb`` under ``bias`` (any cell kind); engine="reference"."""
    nodes = _Nodes(xb, bias, internal=xb.kind == "1t1r")
    n = nodes.count
    wires = nodes.wire_matrix()
    free, fixed = nodes.free_index, nodes.fixed_index
    ra, ca = nodes.row.ravel(), nodes.col.ravel()
    voltages = np.zeros(n)
    voltages[fixed] = nodes.fixed_value
    if xb.kind == "ohmic":
        matrix = (wires + _stamp(n, ra, ca, xb.g.ravel())).tocsc()
        a_ff = matrix[free][:, free]
        a_fk = matrix[free][:, fixed]
        voltages[free] = spsolve(a_ff.tocsc(), -(a_fk @ nodes.fixed_value)) if free.size else []
        i_cell = xb.g * (voltages[nodes.row] - voltages[nodes.col])
        info = {"iterations": 1}
    else:
        known = nodes.fixed_value
        voltages[free] = known.mean() if known.size else 0.0
        if nodes.internal is not None:
            voltages[nodes.internal] = voltages[nodes.row]
        voltages, iterations = _newton(xb, nodes, wires, voltages, tol, max_iter)
        i_cell = rram_current(voltages[nodes.row] - voltages[nodes.internal if nodes.internal is not None
                                                             else nodes.col], xb.gap, xb.device_params)
        info = {"iterations": iterations}
    i_col = _column_currents(xb, bias, nodes, voltages, i_cell)
    return SolveResult(i_col=i_col, v_row=voltages[nodes.row], v_col=voltages[nodes.col], i_cell=i_cell,
                       engine="reference", info=info)


def _cell_branches(xb, nodes, voltages):
    """Cell branches as (node p, node q, current p -> q (A), its d/dv(p), its d/dv(q) (S))."""
    p = xb.device_params
    if xb.kind == "device":
        a, b = nodes.row.ravel(), nodes.col.ravel()
        dv = voltages[a] - voltages[b]
        g = dcurrent_dv(dv, xb.gap.ravel(), p)
        return [(a, b, rram_current(dv, xb.gap.ravel(), p), g, -g)]
    a, d, c = nodes.row.ravel(), nodes.internal.ravel(), nodes.col.ravel()
    gap = xb.gap.ravel()
    vg = np.repeat(xb.v_gate, xb.cols)
    i_r = rram_current(voltages[a] - voltages[d], gap, p)
    g_r = dcurrent_dv(voltages[a] - voltages[d], gap, p)
    return [(a, d, i_r, g_r, -g_r), (d, c, *channel_branch(vg, voltages[d], voltages[c], xb.transistor))]


def _newton(xb, nodes, wires, voltages, tol, max_iter):
    n = nodes.count
    scale = max(np.abs(nodes.fixed_value).max(initial=0.0), 1e-3)

    def residual(v):
        f = wires @ v
        for p, q, i, _, _ in _cell_branches(xb, nodes, v):
            np.add.at(f, p, i)
            np.add.at(f, q, -i)
        return f

    def jacobian(v):
        branches = _cell_branches(xb, nodes, v)
        p, q, _, di_dvp, di_dvq = (np.concatenate(column) for column in zip(*branches))
        return (wires + branch_stamp(n, p, q, di_dvp, di_dvq)).tocsc()

    def factor(matrix):
        return lambda rhs: spsolve(matrix, rhs)

    return damped_newton(residual, jacobian, factor, voltages, nodes.free_index, tol=tol * scale,
                         max_iter=max_iter, what="the reference Newton solve")


def reference_solve(xb: Crossbar, v, **options) -> SolveResult:
    """Reference MVM read (rows at ``v`` (R,), columns sensed at 0 V)."""
    return reference_solve_bias(xb, mvm_bias(np.asarray(v, dtype=float), xb.cols), **options)
