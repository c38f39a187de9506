"""Sparse nodal solver for 3D arrays (:class:`~memsim.circuit.stacked.StackedCrossbar`, :class:`~memsim.circuit.stacked.VerticalArray`).

The 2D solver's lever, eliminating whole lines with tridiagonal solves and running CG on the
column nodes only, needs every cell to join one row line to one column line.  In a stack a
line layer is shared by two cell layers, and a vertical array's planes are 2D sheets, so
neither topology has that structure; here the circuit of :func:`memsim.circuit.stacked.circuit` is
assembled as one sparse conductance matrix and solved directly:

- 0-ohm segments merge their nodes (connected components), held terminals are the fixed
  nodes, islands with no path to a held node are pinned at 0 V and reported in ``info``;
- ohmic cells: one sparse LU (SuperLU, ``MMD_AT_PLUS_A`` ordering on the symmetric matrix);
- RRAM cells and the select transistors: damped Newton on the same equations as the SPICE
  models (the compact model's exact derivative, the reduced Shichman-Hodges transistor by
  central differences), one sparse LU per step, started from the linear circuit with each
  cell at its small-signal conductance, step-halving on the residual norm.

``method="cg"`` solves the linear systems with Jacobi-preconditioned conjugate gradients
instead, for comparison (scripts/bench_3d.py measures both).
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from .. import units
from ..circuit.stacked import StackBias, StackResult, circuit, mvm_bias, read_bias, terminal_currents
from ..devices.rram import current as rram_current
from ..devices.rram import dcurrent_dv
from ..errors import ConvergenceError, ResourceLimitError
from ._nodal import branch_stamp, channel_branch, damped_newton, stamp


class _StackSystem:
    """A 3D array's circuit (:func:`memsim.circuit.stacked.circuit`) with its 0-ohm nodes merged,
    split into free and fixed unknowns."""

    def __init__(self, array, ckt):
        zero = ckt.res_r == 0
        n0 = ckt.n_nodes
        links = sp.coo_matrix((np.ones(int(zero.sum())), (ckt.res_a[zero], ckt.res_b[zero])), shape=(n0, n0))
        self.count, label = connected_components(links, directed=False)
        self.label = label
        keep = ~zero
        self.res_a, self.res_b = label[ckt.res_a[keep]], label[ckt.res_b[keep]]
        self.res_g = 1.0 / ckt.res_r[keep]
        self.cell_a, self.cell_b = label[ckt.cell_a], label[ckt.cell_b]
        self.mos_d, self.mos_s, self.mos_vg = label[ckt.mos_d], label[ckt.mos_s], ckt.mos_vg
        fixed = np.full(self.count, np.nan)
        for node, volts in zip(label[ckt.term_node], ckt.term_v):
            if not np.isnan(fixed[node]) and fixed[node] != volts:
                raise ValueError("two held terminals joined by 0-ohm wires are held at different voltages")
            fixed[node] = volts
        # Islands with no conducting path to a held node have no defined voltage: pin them at 0 V.
        if array.kind == "ohmic":
            conducting = array.g.ravel() > 0
            ea, eb = self.cell_a[conducting], self.cell_b[conducting]
        else:
            ea, eb = self.cell_a, self.cell_b
        edges_a = np.concatenate([self.res_a, ea, self.mos_d])
        edges_b = np.concatenate([self.res_b, eb, self.mos_s])
        graph = sp.coo_matrix((np.ones(edges_a.size), (edges_a, edges_b)), shape=(self.count, self.count))
        _, island = connected_components(graph, directed=False)
        anchored = np.zeros(island.max() + 1 if island.size else 0, dtype=bool)
        anchored[island[~np.isnan(fixed)]] = True
        loose = ~anchored[island] & np.isnan(fixed)
        self.floating_nodes = int(loose.sum())
        fixed[loose] = 0.0
        self.fixed_mask = ~np.isnan(fixed)
        self.fixed_values = fixed
        self.free = np.nonzero(~self.fixed_mask)[0]
        self.wires = stamp(self.count, self.res_a, self.res_b, self.res_g).tocsr()


def _factor(matrix):
    return splu(matrix, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True}).solve


class _TwoLevel:
    """Conjugate gradients preconditioned by the wires and one mean per wire component.

    The fine level solves the circuit with every cell cut, each cell's conductance left on the
    diagonal: independent lines (tridiagonal), planes (2D grids) and pillars, each factorised
    on its own (SuperLU; lines and pillars together, no fill).  Cells (MOhm) are weak against
    wires (ohm), so that leaves the common mode of each component (a floating line rising as a
    whole) poorly approximated; the coarse level solves it, one unknown per component (its
    mean), with the exact Galerkin matrix P^T A P.  The two levels act additively (a symmetric
    preconditioner).
    """

    #: Components larger than this (planes) are factorised one by one.
    BLOCK = 1000

    def __init__(self, wires_ff, tol):
        wires_ff = wires_ff.tocsr()
        self.wires_offdiag = (wires_ff - sp.diags(wires_ff.diagonal())).tocsr()
        n = wires_ff.shape[0]
        graph = self.wires_offdiag.copy()
        graph.data[:] = 1.0
        count, label = connected_components(graph, directed=False)
        sizes = np.bincount(label, minlength=count)
        # Coarse unknowns ordered small components first: a plane's coarse row is dense (it meets
        # every pillar), and eliminated last in natural order it fills only the planes' block.
        rank = np.empty(count, dtype=np.int64)
        rank[np.argsort(sizes, kind="stable")] = np.arange(count)
        self.prolong = sp.csr_matrix((np.ones(n), (np.arange(n), rank[label])), shape=(n, count))
        big = np.nonzero(sizes > self.BLOCK)[0]
        blocks = [np.nonzero(label == c)[0] for c in big]
        rest = np.nonzero(~np.isin(label, big))[0]
        self.blocks = [b for b in blocks + [rest] if b.size]
        self.tol = tol
        self.iterations = 0
        self._fine = None

    def __call__(self, matrix):
        from scipy.sparse.linalg import LinearOperator, cg
        if self._fine is None:
            # Factorised once per solve: Newton changes only the cells' share of the diagonal,
            # small against the wires', so the first factors stay a good preconditioner (CG
            # still runs to its tolerance on the true matrix).  Factorising again at every
            # Newton step was half of a 1T1R solve's time.
            fine_matrix = (self.wires_offdiag + sp.diags(matrix.diagonal())).tocsr()
            self._fine = [(idx, _factor(fine_matrix[idx][:, idx].tocsc())) for idx in self.blocks]
        solvers = self._fine

        def fine(r):
            out = np.empty_like(r)
            for idx, solve_block in solvers:
                out[idx] = solve_block(r[idx])
            return out
        p = self.prolong
        coarse = splu((p.T @ matrix @ p).tocsc(), permc_spec="NATURAL", options={"SymmetricMode": True}).solve
        precond = LinearOperator(matrix.shape, lambda r: fine(r) + p @ coarse(p.T @ r), dtype=float)
        limit = 2000

        def run(rhs):
            counter = [0]

            def count(_):
                counter[0] += 1
            x, status = cg(matrix, rhs, rtol=self.tol, atol=0.0, maxiter=limit, M=precond, callback=count)
            if status != 0:
                raise ConvergenceError(f"the 3D conjugate-gradient solve did not converge in {limit} iterations")
            self.iterations += counter[0]
            return x
        return run


#: Bytes a solve allocates per cell, measured peak (about 1 kB per node, two nodes per cell) with
#: a margin for Newton's Jacobian.
BYTES_PER_CELL = 2500


def _check_stack_memory(array) -> None:
    """Refuse a 3D solve planned above $MEMSIM_MAX_RAM_FRACTION of the RAM (:data:`BYTES_PER_CELL`),
    the budget the 2D solver's own check reads (:func:`memsim.solver.core.ram_budget`)."""
    from .core import ram_budget

    fraction, total = ram_budget()
    need = BYTES_PER_CELL * array.cells.size
    if need > fraction * total:
        raise ResourceLimitError(
            f"solving this {'x'.join(map(str, array.cells.shape))} array would allocate about {need / 2**30:.1f} GiB, "
            f"more than {fraction:.0%} of the {total / 2**30:.0f} GiB of RAM; solve fewer layers or smaller ones, "
            "or raise MEMSIM_MAX_RAM_FRACTION")


METHODS = ("auto", "splu", "pcg")
#: Unknowns above which ``method="auto"`` uses the two-level conjugate gradients.
AUTO_PCG = 20000
#: Relative residual at which the conjugate gradients stop.
PCG_RTOL = 1e-13


def solve(array, bias: StackBias, *, method: str = "auto", tol: float = 1e-12, max_iter: int = 100) -> StackResult:
    """DC operating point of ``array`` under ``bias`` (see :mod:`memsim.circuit.stacked`); engine "memsim".

    ``tol``: Newton stops when the largest voltage update is below ``tol`` x the largest held
    voltage (RRAM cells), or stalls below 1000 ``tol`` x that voltage (the rounding floor).  Returns a :class:`~memsim.circuit.stacked.StackResult`.
    """
    method = units.choice(method, METHODS, "method")
    _check_stack_memory(array)
    t_start = time.perf_counter()
    ckt = circuit(array, bias)
    system = _StackSystem(array, ckt)
    if method == "auto":
        method = "pcg" if system.free.size > AUTO_PCG else "splu"
    if method == "pcg":
        factor = _TwoLevel(system.wires[system.free][:, system.free], PCG_RTOL)
    else:
        factor = _factor
    v = system.fixed_values.copy()
    fixed = system.fixed_mask
    free = system.free
    info = {"floating_nodes": system.floating_nodes, "unknowns": int(free.size), "method": method}
    if array.kind == "ohmic":
        matrix = (system.wires + stamp(system.count, system.cell_a, system.cell_b, array.g.ravel())).tocsr()
        rows = matrix[free]
        if free.size:
            v[free] = factor(rows[:, free].tocsc())(-(rows[:, fixed] @ v[fixed]))
        info["iterations"] = 1
        flow = matrix @ v
    else:
        v, iterations, flow = _newton(array, system, factor, v, tol, max_iter)
        info["iterations"] = iterations
    # Current into each held terminal from the array: minus what its node sends into the elements.
    i_terminal = -flow[system.label[ckt.term_node]]
    v_full = v[system.label]
    v_cell = (v_full[ckt.cell_a] - v_full[ckt.cell_b]).reshape(array.cells.shape)
    i_cell = array.g * v_cell if array.kind == "ohmic" else rram_current(v_cell, array.gap, array.device_params)
    if method == "pcg":
        info["cg_iterations"] = getattr(factor, "iterations", 0)
    info["wall_s"] = time.perf_counter() - t_start
    return StackResult(terminal_currents(ckt, i_terminal), i_cell, v_cell, v_full, "memsim", info)


def _flow(array, system, v):
    """Current leaving each node into the elements (A), the Newton residual at free nodes."""
    a, b = system.cell_a, system.cell_b
    i_cell = rram_current(v[a] - v[b], array.gap.ravel(), array.device_params)
    flow = system.wires @ v
    flow += np.bincount(a, i_cell, system.count) - np.bincount(b, i_cell, system.count)
    if system.mos_d.size:
        i_mos = channel_branch(system.mos_vg, v[system.mos_d], v[system.mos_s], array.transistor)[0]
        flow += np.bincount(system.mos_d, i_mos, system.count) - np.bincount(system.mos_s, i_mos, system.count)
    return flow


def _jacobian(array, system, v):
    a, b = system.cell_a, system.cell_b
    g = dcurrent_dv(v[a] - v[b], array.gap.ravel(), array.device_params)
    jac = system.wires + stamp(system.count, a, b, g)
    if system.mos_d.size:
        _, k_d, k_s = channel_branch(system.mos_vg, v[system.mos_d], v[system.mos_s], array.transistor)
        jac = jac + branch_stamp(system.count, system.mos_d, system.mos_s, k_d, k_s)
    return jac.tocsr()


def _newton(array, system, factor, v, tol, max_iter):
    free, fixed = system.free, system.fixed_mask
    scale = max(float(np.abs(system.fixed_values[fixed]).max(initial=0.0)), 1e-3)
    if free.size:
        # Start from the linear circuit with every cell at its small-signal conductance.
        start = _jacobian(array, system, np.zeros_like(v))[free]
        v[free] = factor(start[:, free].tocsc())(-(start[:, fixed] @ v[fixed]))
    # Converged: below tol, or stalled at the rounding floor of the nodal matrix (MOhm cells on
    # ohm wires put it near 1e-12 V), which Newton's quadratic steps cannot pass.
    v, iterations = damped_newton(lambda x: _flow(array, system, x), lambda x: _jacobian(array, system, x), factor,
                                  v, free, tol=tol * scale, stall_tol=1e3 * tol * scale, max_iter=max_iter,
                                  what="the 3D Newton solve")
    return v, iterations, _flow(array, system, v)


def solve_read(array, cell, v_read: float = 0.2, scheme: str = "v/2", **options) -> StackResult:
    """Single-cell read of ``cell`` = (layer, row, col) with a bias scheme (:func:`memsim.circuit.stacked.read_bias`)."""
    return solve(array, read_bias(array, cell, v_read, scheme), **options)


def solve_mvm(array, v_in, layer: int | None = None, others: str = "floating", **options) -> StackResult:
    """MVM read (:func:`memsim.circuit.stacked.mvm_bias`); the output is ``result.sensed(array, bias)``."""
    return solve(array, mvm_bias(array, v_in, layer, others), **options)


def write_exposure(array, cell, v_write: float, scheme: str = "v/2", **options) -> np.ndarray:
    """Write bias: the largest |voltage| (V) on an unselected cell of each layer, shape (layers,),
    while ``cell`` = (layer, row, col) is written at ``v_write`` with ``scheme``: what decides
    write disturb (a DC operating point; the transient of the pulse is not simulated here).
    The selected cell's own voltage is ``result.v_cell[cell]`` of :func:`solve_read`."""
    result = solve_read(array, cell, v_write, scheme, **options)
    exposure = np.abs(result.v_cell).copy()
    exposure[tuple(int(x) for x in cell)] = 0.0
    return exposure.reshape(exposure.shape[0], -1).max(axis=1)
