"""The fast solver's Python layer: validation, bias handling, Newton policy, batches.

Same circuit as the ngspice netlist (docs/design.md, memsim/circuit/bias.py): row i driven at its left end
through one ``r_row`` segment, column j held at its bottom end through one ``r_col`` segment,
r = 0 merges a line into one node.  Nodal analysis on the row and column nodes; each Newton
step (for ohmic cells usually one) solves the linearised system with
the line-structured Schur-complement CG of :mod:`memsim.solver._pcg` (lines with r > 0,
reciprocal cells; with a coarse-grid correction from :mod:`memsim.solver.coarse` when ohmic
lines are long and resistive) or :mod:`memsim.solver._lines` (merged lines; BiCGStab for 1T1R).  The
effective matrix of ohmic cells is direct (:mod:`memsim.solver._blocks`).

Convergence is checked, never assumed: a solve is accepted when a full Newton update moves no
node by more than ``tol`` times the largest drive voltage (solved, or bounded from the KCL
residual by :meth:`_System._inverse_bound` for two-terminal cells); otherwise it raises
:class:`~memsim.errors.ConvergenceError` (or warns with ``on_fail="warn"``).
"""
from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
import time
import warnings

import numpy as np

from ..circuit.array import Crossbar, check_inputs, check_voltage
from ..circuit.bias import Bias, read_bias
from ..circuit.result import SolveResult
from ..errors import ConvergenceError, ResourceLimitError
from ..threads import one_blas_thread

_ON_FAIL = ("raise", "warn")
_MAX_STEP_V = 0.5  # largest node update per Newton step, V (line-search cap)
#: Arrays from this many cells start Newton from the linear array (:meth:`_System._linear_start`);
#: below it a solve is bound by its Python calls, and the start's (about 50 us) outweighs the
#: Newton step it saves (16x16 1T1R: 0.25 -> 0.30 ms; 32x32 even, 64x64 1.46 -> 1.15 ms).
_LINEAR_START_CELLS = 1024
#: The per-line residual bound (:meth:`_System.proves`) is tried where the uniform one is at most
#: this many times too large (measured: 4-5x tighter on 128x128 and 256x256 ohmic steps, whose
#: row equations hold to rounding), and a CG step stops once its residual's column half is
#: certified within this share of the tolerance (the rest is the row nodes' rounding).
_PER_LINE_REACH = 100.0
_CG_CERTIFY = 0.9
#: Newton updates at most this share of the largest drive are taken whole, without the line
#: search's merit passes: over 30 uV of a 0.3 V drive the cells' I-V is linear to 1e-8, so the
#: full step is the one the search would accept (the KCL residual after it is checked anyway).
_PLAIN_STEP = 1e-4


@functools.cache
def _kernels():
    # Imported lazily: numba compiles (or loads its cache) only when a solve runs.  Cached: an
    # import statement costs a few microseconds even for a loaded module, and a small solve
    # calls this a dozen times.
    from . import _cells, _lines
    return _lines, _cells


@functools.cache
def _krylov():
    """The CG Newton step's kernels (:mod:`memsim.solver._pcg`), imported lazily as :func:`_kernels`."""
    from . import _pcg
    return _pcg


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
def _check_options(xb, tol, max_iter, on_fail):
    if not isinstance(xb, Crossbar):
        raise ValueError(f"xb must be a memsim.Crossbar, got {type(xb).__name__}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not (0 < tol < 1):
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if on_fail not in _ON_FAIL:
        raise ValueError(f"on_fail must be one of {_ON_FAIL}, got {on_fail!r}")


#: Share of physical RAM a solve may plan to allocate before it is refused ($MEMSIM_MAX_RAM_FRACTION).
DEFAULT_RAM_FRACTION = 0.5


def memory_estimate(xb: Crossbar, batch: int, cells: bool, voltages: bool) -> int:
    """Bytes a solve will allocate: the outputs plus about 24 working (R, C) arrays per vector
    in flight (two, with the effective-matrix path's threads)."""
    plane = 8 * xb.rows * xb.cols
    outputs = batch * (8 * xb.cols + plane * ((2 if voltages else 0) + (1 if cells else 0)))
    return int(outputs + 24 * plane * 2)


def ram_budget() -> tuple[float, int]:
    """(fraction, total bytes): a solve may plan to use $MEMSIM_MAX_RAM_FRACTION of the RAM."""
    value = os.environ.get("MEMSIM_MAX_RAM_FRACTION", str(DEFAULT_RAM_FRACTION))
    try:
        fraction = float(value)
    except ValueError:
        raise ValueError(f"MEMSIM_MAX_RAM_FRACTION must be a number in (0, 1], got {value!r}") from None
    return fraction, _physical_ram()


@functools.cache
def _physical_ram() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _check_memory(xb: Crossbar, batch: int, cells: bool, voltages: bool) -> None:
    fraction, total = ram_budget()
    need = memory_estimate(xb, batch, cells, voltages)
    if need > fraction * total:
        raise ResourceLimitError(
            f"this solve would allocate about {need / 2**30:.1f} GiB ({batch} vectors on a {xb.rows}x{xb.cols} "
            f"array{', node voltages' if voltages else ''}{', cell currents' if cells else ''}), more than "
            f"{fraction:.0%} of the {total / 2**30:.0f} GiB of RAM; pass voltages=False / cells=False, split the "
            "batch, or raise MEMSIM_MAX_RAM_FRACTION")


def _calibrated(xb: Crossbar, calibration) -> Crossbar:
    """Apply a calibration (a memsim.calibrate.Calibration or the path of its JSON file)."""
    if calibration is None:
        return xb
    from ..devices.calibration import Calibration  # reads JSON: only when a calibration is given

    if not isinstance(calibration, Calibration):
        calibration = Calibration.load(calibration)
    return calibration.apply(xb)


def _check_table_range(xb: Crossbar, drives: np.ndarray) -> None:
    """Refuse drives (V, NaN: a floating line end) beyond the voltage range a Verilog-A device's
    table covers (no cell voltage exceeds the largest drive: the network is passive)."""
    v_max = getattr(xb.device_params, "v_max", None)
    if xb.kind == "ohmic" or v_max is None:
        return
    peak = float(np.nanmax(np.abs(drives)))
    if peak > v_max:
        raise ValueError(f"drives reach {peak:.4g} V, beyond the +/-{v_max:g} V that the {xb.device_params.module} "
                         "table covers; make the device with a larger v_max")


def _check_bias(xb: Crossbar, bias: Bias):
    if not isinstance(bias, Bias):
        raise ValueError(f"bias must be a memsim.Bias, got {type(bias).__name__}")
    v_row = np.asarray(bias.v_row, dtype=np.float64)
    v_col = np.asarray(bias.v_col, dtype=np.float64)
    if v_row.shape != (xb.rows,) or v_col.shape != (xb.cols,):
        raise ValueError(f"bias must have v_row of shape ({xb.rows},) and v_col of shape ({xb.cols},) "
                         f"for this {xb.rows}x{xb.cols} crossbar, got {v_row.shape} and {v_col.shape}")
    if np.any(np.isinf(v_row)) or np.any(np.isinf(v_col)):
        raise ValueError("bias voltages must be finite volts or NaN (floating line end), got inf")
    if np.all(np.isnan(v_row)) and np.all(np.isnan(v_col)):
        raise ValueError("bias drives no line: at least one row or column end must be held at a voltage")
    check_voltage(xb, np.nan_to_num(np.concatenate([v_row, v_col])))
    return v_row, v_col


def _check_connected(xb: Crossbar, driven, held):
    """Every floating line must reach a driven line through conducting cells (else singular)."""
    if np.all(driven) and np.all(held):
        return
    if xb.kind == "ohmic":
        conducting = xb.g > 0
    elif xb.kind == "1t1r" and getattr(xb.transistor, "g_leak", 0.0) == 0.0:
        # without drain-source leakage a switched-off transistor is an open circuit
        on = xb.v_gate > xb.transistor.vto
        conducting = np.broadcast_to(on[:, None], xb.shape)
    else:
        conducting = np.ones(xb.shape, dtype=bool)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    rows, cols = np.nonzero(conducting)
    n = xb.rows + xb.cols
    graph = coo_matrix((np.ones(rows.size), (rows, xb.rows + cols)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    anchored = np.zeros(label.max() + 1, dtype=bool)
    anchored[label[:xb.rows][driven]] = True
    anchored[label[xb.rows:][held]] = True
    bad = ~anchored[label]
    if np.any(bad):
        bad_rows = np.nonzero(bad[:xb.rows])[0].tolist()
        bad_cols = np.nonzero(bad[xb.rows:])[0].tolist()
        raise ValueError(
            "the circuit is singular: floating rows {} and columns {} connect to no driven line "
            "through any conducting cell (their voltage is undefined); drive or ground them, or "
            "give their cells a conductance > 0".format(_short(bad_rows), _short(bad_cols)))


def _short(indices, limit=8):
    text = ", ".join(map(str, indices[:limit]))
    return f"[{text}{', ...' if len(indices) > limit else ''}]"


# ---------------------------------------------------------------------------------------------
# one bias structure (which lines are driven), any number of drive vectors
# ---------------------------------------------------------------------------------------------
class _System:
    """The nodal system of ``xb`` for one pattern of driven / floating line ends."""

    def __init__(self, xb: Crossbar, driven, held, two_level=None):
        self.xb = xb
        self.two_level = two_level  # the coarse-grid correction: None chooses (coarse.pays)
        self.kind = xb.kind
        self.shape = xb.shape
        self.rows_merged = xb.r_row == 0.0
        self.cols_merged = xb.r_col == 0.0
        self.g_r = 0.0 if self.rows_merged else 1.0 / xb.r_row
        self.g_c = 0.0 if self.cols_merged else 1.0 / xb.r_col
        self.driven = np.ascontiguousarray(driven, dtype=np.bool_)
        self.held = np.ascontiguousarray(held, dtype=np.bool_)
        self.all_ends = bool(self.driven.all() and self.held.all())  # no line floats (an MVM read)
        self.symmetric = xb.kind != "1t1r"
        self.method = "schur-cg" if self.symmetric else "schur-bicgstab"  # the Krylov method on the Schur system
        n_rows, n_cols = self.shape
        self.cg_max_iter = 8 * (n_rows + n_cols) + 200
        self._linear_factors = None
        self.inverse_bound = self._inverse_bound()
        if xb.kind == "ohmic":
            self.g = np.ascontiguousarray(xb.g)
        else:
            self.gap = np.ascontiguousarray(xb.gap)
            self.p_dev = xb.device_params.as_array()
            self.scale = None  # the built-in model's prefactor I0 exp(-gap/g0), on first use
        if xb.kind == "1t1r":
            self.v_gate = np.ascontiguousarray(xb.v_gate, dtype=np.float64)
            p_mos = xb.transistor.as_array()
            # (beta, vto, lambda, g_leak); a card without leakage has g_leak = 0
            self.p_mos = np.ascontiguousarray(np.concatenate([p_mos, np.zeros(4 - p_mos.size)]))

    def _inverse_bound(self):
        """A bound on ||J^-1||_inf (ohm) for every Jacobian J of two-terminal cells with dI/dV >= 0,
        when every row is driven and every column held; else None.

        J is then a nonsingular M-matrix, and W(i, j) = a(j) + b(i) on both the row and the column
        node of (i, j), with a the voltages of a bare row wire carrying 1 A out of each of its nodes
        to its driver and b the same on a column wire, has J W >= 1: the cell terms g (W_row - W_col)
        vanish and the driver and sense segments only add.  So J^-1 1 <= W and
        ||J^-1||_inf <= max W = r_row C (C + 1) / 2 + r_col R (R + 1) / 2 (Varga, "Matrix Iterative
        Analysis", Springer 2000, section 3.5: the comparison bound for M-matrices)."""
        if self.kind == "1t1r" or not self.all_ends:
            return None  # a 1T1R cell's gate drive makes its row and column terms unequal
        n_rows, n_cols = self.shape
        return self.xb.r_row * n_cols * (n_cols + 1) / 2 + self.xb.r_col * n_rows * (n_rows + 1) / 2

    def proves(self, d_vr, f_row, f_col, limit):
        """(a bound (V) on the next full Newton update from the KCL residuals ``f_row``, ``f_col``,
        or None where :meth:`_inverse_bound` does not apply or the bound exceeds ``limit``; the
        largest residual, A).  The uniform bound ||J^-1||_inf ||f||_inf first; where it misses
        ``limit`` by less than a factor :data:`_PER_LINE_REACH`, the per-line one of
        :func:`memsim.solver._lines.kcl_majorant` (one more pass over the residuals)."""
        lines, _ = _kernels()
        kcl = lines.max_abs2(f_row, f_col)
        if self.inverse_bound is None or (d_vr is not None and self.p_dev[0] < 0.0 and np.min(d_vr) < 0.0):
            return None, kcl  # (a tabulated device may have a falling I-V somewhere)
        bound = self.inverse_bound * kcl
        if limit < bound <= _PER_LINE_REACH * limit:
            bound = lines.kcl_majorant(f_row, f_col, self.xb.r_row, self.xb.r_col)
        return (bound if bound <= limit else None), kcl

    def currents_within(self, tol, i_cell, kcl):
        """Whether the KCL residual ``kcl`` (A, the largest: the error of any current taken from
        the node voltages, a driver's or a wire's) is within ``tol`` of the largest line current."""
        lines, _ = _kernels()
        return kcl <= tol * lines.line_current_scale(i_cell)

    # -- pieces ---------------------------------------------------------------------------
    def initial(self, v_row, v_col, known):
        """Ideal-wire start: driven lines at their drive, floating lines at the mean of the
        ``known`` drives."""
        vr = np.empty(self.shape)
        vc = np.empty(self.shape)
        if self.all_ends:
            vr[:] = v_row[:, None]
            vc[:] = v_col
        else:
            mean = float(known.sum()) / known.size if known.size else 0.0
            vr[:] = np.where(self.driven, v_row, mean)[:, None]
            vc[:] = np.where(self.held, v_col, mean)[None, :]
        return vr, vc

    def cell_arrays(self):
        """(i_cell, d_vr, d_vc) buffers; linear cells need no derivative arrays (they are g, -g),
        the built-in two-terminal cell no d_vc (it is -d_vr)."""
        if self.kind == "ohmic":
            return np.empty(self.shape), None, None
        if self.kind == "device" and self.p_dev[0] >= 0.0:
            return np.empty(self.shape), np.empty(self.shape), None
        return tuple(np.empty(self.shape) for _ in range(3))

    def internal_nodes(self, vr, vc):
        """The 1T1R cells' internal-node guesses: vd = vr, or for the built-in model the state
        of :func:`memsim.solver._cells.one_t_one_r_cells_scaled` (no prediction yet) with vd
        from the divider of the RRAM's and the channel's conductances at zero bias, improved by
        one Newton step of all cells at once (:func:`memsim.solver._cells.series_nodes_step`)."""
        if self.p_dev[0] < 0.0:
            return vr.copy()
        state = np.zeros((5, *self.shape))
        g_cell, g_channel = self._zero_bias(vc)
        state[0] = (g_cell * vr + g_channel * vc) / (g_cell + g_channel)
        state[1] = vr
        state[2] = vc
        _kernels()[1].series_nodes_step(vr, vc, self._scale(), self.p_dev, self.v_gate, self.p_mos, state)
        return state

    def _zero_bias(self, vc):
        """(the built-in RRAM cells' conductance at zero bias, I0 exp(-gap/g0) / V0; for 1T1R
        cells their channels' at zero drain-source bias with the source at ``vc``, else None)."""
        g_cell = self._scale() / self.p_dev[_kernels()[1].V0]
        if self.kind != "1t1r":
            return g_cell, None
        beta, vto, _, g_leak = self.p_mos
        return g_cell, beta * np.maximum(self.v_gate[:, None] - vc - vto, 0.0) + g_leak

    def _scale(self):
        """The built-in model's prefactor I0 exp(-gap/g0) per cell, computed on first use."""
        if self.scale is None:
            _, cells = _kernels()
            self.scale = np.empty(self.shape)
            cells.rram_scale(self.gap, self.p_dev, self.scale)
        return self.scale

    def cells(self, vr, vc, vd, out, node_tol=0.0):
        """Cell currents and derivatives at (vr, vc) into out = (i_cell, d_vr, d_vc); 1T1R
        internal nodes of the built-in model found to ``node_tol`` (V, 0: to an ulp), with
        first-order errors removed (:func:`memsim.solver._cells.one_t_one_r_cells_scaled`)."""
        i_cell, d_vr, d_vc = out
        if self.kind == "ohmic":  # i = g (vr - vc), as numpy computes it: no kernel to compile
            np.multiply(self.g, np.subtract(vr, vc, out=i_cell), out=i_cell)
            return
        _, cells = _kernels()
        if self.p_dev[0] >= 0.0:  # the built-in model (a device table is tagged by a negative entry)
            if self.kind == "device":
                cells.device_cells_scaled(vr, vc, self._scale(), self.p_dev, i_cell, d_vr)
            else:
                cells.one_t_one_r_cells_scaled(vr, vc, self._scale(), self.p_dev, self.v_gate, self.p_mos, vd,
                                               node_tol, i_cell, d_vr, d_vc)
        elif self.kind == "device":
            cells.device_cells(vr, vc, self.gap, self.p_dev, i_cell, d_vr, d_vc)
        else:
            cells.one_t_one_r_cells(vr, vc, self.gap, self.v_gate, self.p_dev, self.p_mos, vd, i_cell, d_vr, d_vc)

    def residual(self, vr, vc, i_cell, v_row, v_col, f_row, f_col):
        lines, _ = _kernels()
        lines.kcl_residual(vr, vc, i_cell, self.g_r, self.g_c, self.rows_merged, self.cols_merged,
                           self.driven, self.held, v_row, v_col, f_row, f_col)

    def factor(self, d_vr, d_vc, out=None):
        """Jacobian pieces (d_row, d_col, b1, b2) and the line factorisations, into ``out`` =
        (d_col, inv_r, inv_c) buffers where given (one solve's, reused from step to step)."""
        lines, _ = _kernels()
        if out is None:
            out = np.empty((3, *self.shape))
        d_col, inv_r, inv_c = out
        if self.kind == "ohmic":
            d_row = d_col = self.g
        elif self.kind == "device":
            d_row = d_col = d_vr  # a two-terminal cell's d_vc is -d_vr
        else:
            d_row = d_vr
            np.negative(d_vc, out=d_col)
        if self.rows_merged:  # only the floating merged rows' pivots are written
            inv_r.fill(0.0)
        if self.cols_merged:
            inv_c.fill(0.0)
        lines.factor_rows(d_row, self.g_r, self.rows_merged, self.driven, inv_r)
        lines.factor_cols(d_col, self.g_c, self.cols_merged, self.held, inv_c)
        # b1: minus the row equation's coefficient of vc; b2: minus the column's of vr
        return d_row, d_col, d_col, d_row, inv_r, inv_c, self._coarse_grid()

    def _coarse_grid(self):
        """The two-level CG's coarse problem (memsim/solver/coarse.py) where it pays: ohmic cells,
        resistive wires on both sides, a large array and long lines for the wires' resistance."""
        if self.kind != "ohmic" or self.rows_merged or self.cols_merged:
            return None
        from . import coarse
        if not (coarse.pays(self.g, self.xb.r_row, self.xb.r_col) if self.two_level is None else self.two_level):
            return None
        try:
            with one_blas_thread():  # two OpenBLAS threads next to a busy core: seconds, not milliseconds
                return coarse.CoarseGrid(self.g, self.g_r, self.g_c, self.driven, self.held)
        except np.linalg.LinAlgError:  # not numerically positive definite: the one-level CG still works
            return None

    def step(self, f_row, f_col, jac, rel_tol, work, certify=0.0):
        """One Newton step (dr, dc, CG iterations, CG's relative residual) in ``work``, one
        solve's buffers (:meth:`workspace`), reused from step to step; a CG step on lines also
        stops once its error is certified within ``certify`` (V; 0: only at ``rel_tol``)."""
        lines, _ = _kernels()
        d_row, d_col, b1, b2, inv_r, inv_c, grid = jac
        dr, dc, scratch = work
        merged = self.rows_merged or self.cols_merged
        if self.symmetric:
            _pcg = _krylov()
            if grid is not None:
                mode, coarse = _pcg.TWO_LEVEL, (grid.grid_i, grid.grid_j, grid.factor, grid.order)
            else:
                mode = _pcg.GENERIC if merged else _pcg.LINES
                coarse = (_pcg.NO_GRID, _pcg.NO_GRID, _pcg.NO_FACTOR, _pcg.NO_ORDER)
            # the Newton update itself is the convergence check, so CG's own residual estimate will do
            iterations, rel = _pcg.newton_step_sym(f_row, f_col, d_col, b1, self.g_r, self.g_c, self.rows_merged,
                                                   self.cols_merged, self.driven, self.held, inv_r, inv_c,
                                                   rel_tol, certify, self.cg_max_iter, False, dr, dc, scratch, mode,
                                                   *coarse)
            return dr, dc, int(iterations), float(rel)
        if not merged:  # the non-symmetric (1T1R) step on lines
            _pcg = _krylov()
            line = np.empty((4, self.shape[1]))
            rhs = scratch[0]
            _pcg.step_rhs(f_row, f_col, b2, self.g_r, inv_r, line, rhs)
            iterations, rel = lines.schur_bicgstab(rhs, dc, d_col, b1, b2, self.g_r, self.g_c, False, False,
                                                   self.driven, self.held, inv_r, inv_c, rel_tol, self.cg_max_iter,
                                                   False, scratch[1:])
            _pcg.step_back(f_row, dc, b1, self.g_r, inv_r, line, dr)
            return dr, dc, int(iterations), float(rel)
        dr[:] = 0.0  # merged lines use only part of dr and dc
        rhs = scratch[0]
        lines.newton_rhs(f_row, f_col, b2, self.g_r, self.rows_merged, self.cols_merged, self.driven, self.held,
                         inv_r, rhs)
        iterations, rel = lines.schur_bicgstab(rhs, dc, d_col, b1, b2, self.g_r, self.g_c, self.rows_merged,
                                               self.cols_merged, self.driven, self.held, inv_r, inv_c,
                                               rel_tol, self.cg_max_iter, False, scratch[1:])
        lines.newton_back(f_row, dc, b1, self.g_r, self.rows_merged, self.cols_merged, self.driven, self.held,
                          inv_r, dr)
        return dr, dc, int(iterations), float(rel)

    def workspace(self):
        """(dr, dc, scratch) buffers of one solve's Newton steps: per solve, not per system
        (the effective matrix runs unit solves of one system in threads).  A solve's buffers are
        reused from step to step (this, :meth:`factor`'s and the line search's): an array is
        128 KB at 128x128, and fresh ones at every step push the solve's arrays out of the
        CPU's cache."""
        shape = self.shape
        # the CG step's 7 arrays (_pcg.newton_step_sym); BiCGStab's 10 and the Schur right-hand side
        return np.empty(shape), np.empty(shape), np.empty((7 if self.symmetric else 11, *shape))

    def trial_buffers(self):
        """The line search's trial arrays (voltages, residuals and cell arrays)."""
        return (np.empty(self.shape), np.empty(self.shape), np.empty(self.shape), np.empty(self.shape),
                *self.cell_arrays())

    # -- the solve ------------------------------------------------------------------------
    def solve(self, v_row, v_col, tol, max_iter):
        """Solve for one drive vector; returns a dict of arrays and diagnostics."""
        lines, _ = _kernels()
        if self.all_ends:
            known = np.concatenate([v_row, v_col])
        else:
            v_row = np.where(np.isnan(v_row), 0.0, v_row)  # floating line ends: NaN -> 0, unused
            v_col = np.where(np.isnan(v_col), 0.0, v_col)
            known = np.concatenate([v_row[self.driven], v_col[self.held]])
        # the drives' range (the line search keeps node voltages inside it) and largest magnitude
        self.v_range = (float(known.min()), float(known.max())) if known.size else (math.inf, -math.inf)
        v_scale = max(0.0, -self.v_range[0], self.v_range[1])
        vr, vc = self.initial(v_row, v_col, known)
        cell = self.cell_arrays()
        f_row = np.empty(self.shape)
        f_col = np.empty(self.shape)
        linear = self.kind == "ohmic"
        work = self.workspace()
        factors = None if linear else np.empty((3, *self.shape))
        spare = None  # the line search's trial arrays, made on its first call
        # 1T1R internal nodes need not be exact while the array's own Newton steps are large:
        # their error after the kernel's last first-order step is O(node_tol^2)
        node_tol = 1e-3 * v_scale if self.kind == "1t1r" else 0.0
        cg_total = 0
        # where the residual bound applies, a CG step stops once it is certified within tol
        certify = _CG_CERTIFY * tol * v_scale if self.inverse_bound is not None else 0.0
        if self.kind != "ohmic" and self.p_dev[0] >= 0.0 and vr.size >= _LINEAR_START_CELLS:
            cg_total += self._linear_start(vr, vc, v_row, v_col, cell[0], f_row, f_col, factors, work)
        vd = self.internal_nodes(vr, vc) if self.kind == "1t1r" else None
        self.cells(vr, vc, vd, cell, node_tol)
        self.residual(vr, vc, cell[0], v_row, v_col, f_row, f_col)
        update = math.inf
        converged = False
        iteration = 0
        previous = 1.0
        for iteration in range(1, max_iter + 1):
            if linear:
                if self._linear_factors is None:
                    self._linear_factors = self.factor(cell[1], cell[2])
                jac = self._linear_factors
                rel_tol = max(1e-2 * tol, 1e-15) if iteration == 1 else 1e-3
            else:
                jac = self.factor(cell[1], cell[2], factors)
                rel_tol = min(1e-3, max(previous, 1e-2 * tol, 1e-15))
            dr, dc, cg_iterations, _ = self.step(f_row, f_col, jac, rel_tol, work, certify)
            cg_total += cg_iterations
            update = lines.max_abs2(dr, dc)
            previous = update / v_scale if v_scale > 0 else 0.0
            if update <= tol * v_scale and node_tol > tol * v_scale:
                # close enough, but the cells were evaluated with loose internal nodes: again, tight
                node_tol = min(1e-2 * update, tol * v_scale)
                self.cells(vr, vc, vd, cell, node_tol)
                self.residual(vr, vc, cell[0], v_row, v_col, f_row, f_col)
                continue
            # accepted: the iterate is within tol of the solution (the update is its error to
            # first order), so the update itself need not be applied and evaluated, unless the
            # currents are not yet within tol too (a wire of a few milliohm turns a voltage error
            # below tol into a large error of its current): then it is, as a full step
            accepted = update <= tol * v_scale
            if accepted and self.currents_within(tol, cell[0], lines.max_abs2(f_row, f_col)):
                converged = True
                break
            if not accepted:
                node_tol = 1e-2 * update if self.kind == "1t1r" else 0.0
            if linear or accepted or update <= _PLAIN_STEP * max(v_scale, 1e-3):
                lines.add_update_in_place(vr, vc, dr, dc, 1.0, self.rows_merged, self.cols_merged, self.driven,
                                          self.held, -math.inf, math.inf)
                self.cells(vr, vc, vd, cell, node_tol)
                self.residual(vr, vc, cell[0], v_row, v_col, f_row, f_col)
            else:
                if spare is None:
                    spare = self.trial_buffers()
                vr, vc, f_row, f_col, cell, spare = self._line_search(vr, vc, vd, dr, dc, update, v_row, v_col,
                                                                      f_row, f_col, cell, jac, node_tol, spare)
            if accepted:
                converged = True
                break
            # the next update's size from the KCL residual alone (no further linear solve)
            bound, kcl = self.proves(cell[1], f_row, f_col, tol * v_scale)
            if bound is not None and self.currents_within(tol, cell[0], kcl):
                update = bound
                converged = True
                break
        kcl = lines.max_abs2(f_row, f_col)
        i_cell = cell[0]
        i_col = i_cell.sum(axis=0)
        if not self.all_ends:
            i_col[~self.held] = 0.0
        grid = jac[6]
        return {"i_col": i_col, "v_row": vr, "v_col": vc, "i_cell": i_cell, "converged": converged,
                "iterations": iteration, "cg_iterations": cg_total,
                "coarse_points": None if grid is None else (grid.m_i, grid.m_j),
                "residual": update / v_scale if v_scale > 0 else 0.0, "kcl_residual_A": kcl}

    def _linear_start(self, vr, vc, v_row, v_col, i_cell, f_row, f_col, factors, work):
        """Move the ideal-wire start (in place) to the node voltages of the same array with each
        built-in RRAM cell replaced by its conductance at zero bias, I0 exp(-gap/g0) / V0 (a 1T1R
        cell: in series with its channel's at zero drain-source bias), solved to 1e-2 by one
        Krylov step; returns its iterations.  Where the wires drop a good part of the drive,
        Newton's first step from cells at the full drive falls short by an eighth of itself (it
        linearises the sinh where it is steepest); from the linear array's answer it starts
        within a few mV (128x128 at 2 / 1.2 ohm segments: 4 -> 3 Newton steps, 1T1R 5 -> 4)."""
        lines, _ = _kernels()
        g0, g_channel = self._zero_bias(vc)
        if g_channel is not None:  # in series with the channel
            series = g0 + g_channel
            g0 = np.divide(g0 * g_channel, series, out=np.zeros_like(series), where=series > 0.0)
        np.multiply(g0, np.subtract(vr, vc, out=i_cell), out=i_cell)
        self.residual(vr, vc, i_cell, v_row, v_col, f_row, f_col)
        d_vc = None if g_channel is None else -g0  # a two-terminal cell's d_vc is implied (factor)
        dr, dc, iterations, _ = self.step(f_row, f_col, self.factor(g0, d_vc, factors), 1e-2, work)
        lines.add_update_in_place(vr, vc, dr, dc, 1.0, self.rows_merged, self.cols_merged, self.driven, self.held,
                                  *self.v_range)
        return iterations

    def _line_search(self, vr, vc, vd, dr, dc, update, v_row, v_col, f_row, f_col, cell, jac, node_tol, spare):
        """Backtracking (Armijo) on the diagonally scaled KCL residual, steps capped at
        _MAX_STEP_V, node voltages projected into the range of the drive voltages (a network
        of passive cells obeys the maximum principle, so the solution lies inside it).

        The merit is sum(f^2 / J_ii) (:func:`memsim.solver._lines.merit`): scaling by the diagonal
        lets a weakly coupled node (a floating row behind nearly-off transistors, pA residuals)
        count as much as a wire node with uA residuals.  The trial is made in ``spare``
        (:meth:`trial_buffers`); returns (vr, vc, f_row, f_col, cell) at the accepted step and
        the arrays it replaced, the next call's spare."""
        lines, _ = _kernels()

        def merit(f_r, f_c):
            return lines.merit(f_r, f_c, jac[0], jac[1], self.g_r, self.g_c, self.rows_merged, self.cols_merged,
                               self.driven, self.held)

        phi0 = merit(f_row, f_col)
        lam = min(1.0, _MAX_STEP_V / update)
        new_r, new_c, trial_f_row, trial_f_col, *trial_cell = spare
        for _ in range(30):
            lines.add_update(vr, vc, dr, dc, lam, self.rows_merged, self.cols_merged, self.driven,
                             self.held, *self.v_range, new_r, new_c)
            # internal nodes in place: any earlier trial's nodes, with the voltages they were
            # solved at, are as good a start for the next
            self.cells(new_r, new_c, vd, trial_cell, node_tol)
            self.residual(new_r, new_c, trial_cell[0], v_row, v_col, trial_f_row, trial_f_col)
            phi = merit(trial_f_row, trial_f_col)
            if phi <= (1.0 - 1e-4 * lam) * phi0:
                break
            lam *= 0.5
        return new_r, new_c, trial_f_row, trial_f_col, tuple(trial_cell), (vr, vc, f_row, f_col, *cell)


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------
def _fail(message, residual, on_fail):
    if on_fail == "raise":
        raise ConvergenceError(message, residual)
    warnings.warn(f"{message} (on_fail='warn': returning the last iterate)", RuntimeWarning, stacklevel=3)


def _solve_vectors(system, drives, tol, max_iter, on_fail, cells, voltages):
    """Solve for a list of (v_row, v_col) drives sharing one bias structure."""
    outputs = []
    for v_row, v_col in drives:
        out = system.solve(v_row, v_col, tol, max_iter)
        if not out["converged"]:
            _fail(f"memsim.solve did not converge in {out['iterations']} Newton iterations "
                  f"({system.kind} {system.shape[0]}x{system.shape[1]}, r_row={system.xb.r_row} ohm, "
                  f"r_col={system.xb.r_col} ohm): last relative update {out['residual']:.3g} > tol "
                  f"{tol:.3g}; raise max_iter or loosen tol", out["residual"], on_fail)
        outputs.append(out)
    return outputs


def _result(outputs, batched, cells, voltages, engine_info):
    stack = (lambda key: np.stack([o[key] for o in outputs])) if batched else (lambda key: outputs[0][key])
    info = dict(engine_info)
    info.update(iterations=int(max(o["iterations"] for o in outputs)),
                cg_iterations=int(sum(o["cg_iterations"] for o in outputs)),
                residual=float(max(o["residual"] for o in outputs)),
                kcl_residual_A=float(max(o["kcl_residual_A"] for o in outputs)),
                converged=bool(all(o["converged"] for o in outputs)),
                coarse_points=outputs[0]["coarse_points"])
    return SolveResult(i_col=stack("i_col"), v_row=stack("v_row") if voltages else None,
                       v_col=stack("v_col") if voltages else None,
                       i_cell=stack("i_cell") if cells else None, engine="memsim", info=info)


def solve(xb: Crossbar, v, *, cells: bool = False, voltages: bool = True, tol: float = 1e-10,
          max_iter: int = 50, on_fail: str = "raise", calibration=None) -> SolveResult:
    """Matrix-vector read: rows driven at ``v``, every column sensed at 0 V.

    Parameters
    ----------
    xb : Crossbar
        Any cell kind (ohmic, device, 1t1r); wire resistances may be 0.
    v : array (R,) or (B, R)
        Row drive voltages, V.
    cells : bool
        Also return the cell currents ``i_cell`` (A).
    voltages : bool
        Return the node voltages ``v_row``, ``v_col`` (R, C) [or (B, R, C)]; ``False`` saves the
        memory (and, for ohmic batches, the time) of large batches; they are then None.
    tol : float
        Relative tolerance: converged when a full Newton update moves no node by more than
        ``tol`` times the largest drive voltage.
    max_iter : int
        Newton (for ohmic cells: refinement) iterations per vector.
    on_fail : "raise" or "warn"
        What to do when ``tol`` is not reached: raise ConvergenceError or warn and return.
    calibration : Calibration or path, optional
        Fitted reduced transistor for 1T1R cells (see :mod:`memsim.calibrate`); the crossbar
        must use the model card it was fitted to.

    Returns
    -------
    SolveResult
        ``i_col`` (C,) or (B, C) A into the column sense nodes; ``engine="memsim"``;
        ``info`` with iterations, CG iterations, the relative update reached ("residual") and
        the largest KCL imbalance ("kcl_residual_A").

    Examples
    --------
    >>> import numpy as np, memsim
    >>> xb = memsim.Crossbar.ohmic(np.full((2, 2), 1e-4), r_row=0.0, r_col=0.0)
    >>> memsim.solve(xb, [0.1, 0.2]).i_col
    array([3.e-05, 3.e-05])
    """
    _check_options(xb, tol, max_iter, on_fail)
    xb = _calibrated(xb, calibration)
    v = check_inputs(xb, v)
    _check_table_range(xb, v)
    batched = v.ndim == 2
    vectors = v if batched else v[None, :]
    _check_memory(xb, len(vectors), cells, voltages)
    start = time.perf_counter()
    n_rows, n_cols = xb.shape
    system = _System(xb, np.ones(n_rows, bool), np.ones(n_cols, bool))
    zeros = np.zeros(n_cols)
    if xb.kind == "ohmic" and len(vectors) > n_rows and not cells and \
            (not voltages or 16 * n_rows * n_rows * n_cols <= 2 ** 30):
        return _ohmic_batch(system, vectors, batched, tol, max_iter, on_fail, voltages, start)
    outputs = _solve_vectors(system, [(row, zeros) for row in vectors], tol, max_iter, on_fail, cells,
                             voltages)
    return _result(outputs, batched, cells, voltages,
                   {"method": system.method, "wall_time_s": time.perf_counter() - start})


_MATRIX_METHODS = ("auto", "direct", "unit-solves")


def effective_matrix(xb: Crossbar, *, tol: float = 1e-10, max_iter: int = 50, on_fail: str = "raise",
                     method: str = "auto"):
    """The C x R matrix M of an ohmic crossbar's MVM read, IR drop included: i_col = M @ v.

    A per V.  ``method``: "direct" (the default, "auto") eliminates the line structure block
    by block (:mod:`memsim.solver._blocks`, dense Cholesky on min(R, C) nodes per block, no
    iteration, so ``tol``, ``max_iter`` and ``on_fail`` do not apply); "unit-solves" runs R
    iterative solves, one unit drive per row, to ``tol``.
    """
    _check_options(xb, tol, max_iter, on_fail)
    if xb.kind != "ohmic":
        raise ValueError(f"effective_matrix needs linear (ohmic) cells, got a {xb.kind} crossbar")
    if method not in _MATRIX_METHODS:
        raise ValueError(f"method must be one of {_MATRIX_METHODS}, got {method!r}")
    if method == "unit-solves":
        system = _System(xb, np.ones(xb.rows, bool), np.ones(xb.cols, bool))
        return _effective(system, tol, max_iter, on_fail, False)[0]
    return _direct_matrix(xb)


def _direct_matrix(xb: Crossbar) -> np.ndarray:
    """Block elimination with the smaller side in the blocks.

    Sweeping along the columns instead of the rows is the same elimination on the adjoint
    circuit: by reciprocity M[j, k] is the current into row k's driver when column j's sense
    end is at 1 V, which is the MVM read of the crossbar turned by 90 degrees (columns driven
    at their bottom end, rows sensed at their left end): g[::-1, ::-1].T with r_row, r_col swapped.
    """
    from ._blocks import effective_matrix_blocks

    if xb.cols <= xb.rows:
        g, r_row, r_col, turned = xb.g, xb.r_row, xb.r_col, False
    else:
        g, r_row, r_col, turned = xb.g[::-1, ::-1].T, xb.r_col, xb.r_row, True
    try:
        with one_blas_thread():
            m = effective_matrix_blocks(g, r_row, r_col)
    except np.linalg.LinAlgError as err:
        raise ConvergenceError(f"memsim.solver.effective_matrix: block elimination of the {xb.rows}x{xb.cols} "
                               f"crossbar failed ({err}); use method='unit-solves'", float("nan")) from None
    if not np.all(np.isfinite(m)):
        raise ConvergenceError(f"memsim.solver.effective_matrix: block elimination of the {xb.rows}x{xb.cols} "
                               "crossbar gave non-finite currents; use method='unit-solves'", float("nan"))
    return np.ascontiguousarray(m[::-1, ::-1].T if turned else m)


def _effective(system, tol, max_iter, on_fail, voltages):
    """R unit solves (one per row), spread over the CPU cores: the kernels release the GIL."""
    n_rows, n_cols = system.shape
    zeros = np.zeros(n_cols)
    m = np.empty((n_cols, n_rows))
    w_row = np.empty((n_rows, n_rows * n_cols)) if voltages else None
    w_col = np.empty((n_rows, n_rows * n_cols)) if voltages else None
    # Factor once before the threads share the system (the factors are read-only afterwards).
    system.solve(np.eye(1, n_rows, 0)[0], zeros, tol, max_iter)

    def unit_solve(k):
        out = _solve_vectors(system, [(np.eye(1, n_rows, k)[0], zeros)], tol, max_iter, on_fail, False,
                             voltages)[0]
        m[:, k] = out["i_col"]
        if voltages:
            w_row[k] = out["v_row"].ravel()
            w_col[k] = out["v_col"].ravel()
        return out

    workers = min(os.cpu_count() or 1, 8, n_rows)
    if workers > 1 and n_rows * n_cols >= 4096:
        with ThreadPoolExecutor(workers) as pool:
            outputs = list(pool.map(unit_solve, range(n_rows)))
    else:
        outputs = [unit_solve(k) for k in range(n_rows)]
    return m, w_row, w_col, outputs


def _ohmic_batch(system, vectors, batched, tol, max_iter, on_fail, voltages, start):
    """Linear cells, many vectors: the effective matrix once, then one matrix product.

    Currents only: the direct M (:func:`_direct_matrix`), checked against one iterative solve
    of the batch's largest vector.  With node voltages: R unit solves give M and the voltage maps.
    """
    n_rows, n_cols = system.shape
    if not voltages:
        m = _direct_matrix(system.xb)
        i_col = vectors @ m.T
        probe = int(np.argmax(np.abs(vectors).sum(axis=1)))
        out = _solve_vectors(system, [(vectors[probe], np.zeros(n_cols))], tol, max_iter, on_fail, False,
                             False)[0]
        scale = float(np.max(np.abs(out["i_col"])))
        check = float(np.max(np.abs(i_col[probe] - out["i_col"]))) / scale if scale > 0 else 0.0
        converged = bool(out["converged"]) and check <= max(100 * tol, 1e-9)
        if not converged and out["converged"]:
            _fail(f"memsim.solve: the {n_rows}x{n_cols} effective matrix disagrees with an iterative solve by "
                  f"{check:.3g} (relative); solve the vectors one by one", check, on_fail)
        info = {"method": "effective-matrix", "matrix_method": "direct", "check_relative": check,
                "wall_time_s": time.perf_counter() - start, "iterations": int(out["iterations"]),
                "cg_iterations": int(out["cg_iterations"]), "residual": float(out["residual"]),
                "kcl_residual_A": float(out["kcl_residual_A"]), "converged": converged}
        return SolveResult(i_col=i_col, v_row=None, v_col=None, i_cell=None, engine="memsim", info=info)
    m, w_row, w_col, outputs = _effective(system, tol, max_iter, on_fail, voltages)
    i_col = vectors @ m.T
    v_row = (vectors @ w_row).reshape(len(vectors), n_rows, n_cols)
    v_col = (vectors @ w_col).reshape(len(vectors), n_rows, n_cols)
    info = {"method": "effective-matrix", "matrix_method": "unit-solves", "unit_solves": n_rows,
            "wall_time_s": time.perf_counter() - start,
            "iterations": int(max(o["iterations"] for o in outputs)),
            "cg_iterations": int(sum(o["cg_iterations"] for o in outputs)),
            "residual": float(max(o["residual"] for o in outputs)),
            "kcl_residual_A": float(max(o["kcl_residual_A"] for o in outputs)),
            "converged": bool(all(o["converged"] for o in outputs))}
    return SolveResult(i_col=i_col, v_row=v_row, v_col=v_col, i_cell=None, engine="memsim", info=info)


def solve_bias(xb: Crossbar, bias: Bias, *, cells: bool = False, tol: float = 1e-10, max_iter: int = 50,
               on_fail: str = "raise", calibration=None) -> SolveResult:
    """Solve ``xb`` under a general :class:`~memsim.circuit.bias.Bias` (NaN: that line end floats).

    Floating lines must reach a driven line through conducting cells, else ValueError.
    Returns a SolveResult with ``i_col`` (C,) (0 A for a floating column) and (R, C) voltages.
    ``calibration`` as for :func:`solve`.
    """
    _check_options(xb, tol, max_iter, on_fail)
    xb = _calibrated(xb, calibration)
    v_row, v_col = _check_bias(xb, bias)
    _check_table_range(xb, np.concatenate([v_row, v_col]))
    driven = ~np.isnan(v_row)
    held = ~np.isnan(v_col)
    _check_connected(xb, driven, held)
    start = time.perf_counter()
    system = _System(xb, driven, held)
    outputs = _solve_vectors(system, [(v_row, v_col)], tol, max_iter, on_fail, cells, True)
    info = {"method": system.method, "scheme": bias.scheme, "selected": bias.selected,
            "wall_time_s": time.perf_counter() - start}
    return _result(outputs, False, cells, True, info)


def solve_read(xb: Crossbar, row: int, col: int, v_read: float = 0.2, scheme: str = "v/2", **options
               ) -> SolveResult:
    """Read cell (``row``, ``col``) at ``v_read`` V with a bias ``scheme`` (memsim.circuit.bias.SCHEMES).

    The sensed current is ``result.i_col[col]``; keyword options as :func:`solve_bias`.
    """
    if not isinstance(xb, Crossbar):
        raise ValueError(f"xb must be a memsim.Crossbar, got {type(xb).__name__}")
    return solve_bias(xb, read_bias(xb.rows, xb.cols, row, col, v_read, scheme), **options)


def warm_up() -> dict:
    """Compile (or load from Numba's cache) every solver kernel once, on tiny arrays.

    ``scripts/install.sh`` runs this, so a fresh install pays the compilation there and the
    first solve in a new process only loads machine code.  Returns the seconds per step.
    """
    times = {}
    steps = {
        "ohmic": lambda: solve(Crossbar.ohmic(np.full((3, 2), 1e-5), r_row=1.0, r_col=1.0), np.ones(3)),
        # chosen by solve for large arrays only: forced here on a small one
        "ohmic, resistive wires (two-level CG)": lambda: _System(
            Crossbar.ohmic(np.full((3, 2), 1e-5), r_row=1e3, r_col=1e3), np.ones(3, bool), np.ones(2, bool),
            two_level=True).solve(np.ones(3), np.zeros(2), 1e-10, 50),
        "ohmic, ideal wires": lambda: solve(Crossbar.ohmic(np.full((3, 2), 1e-5), r_row=0.0, r_col=0.0),
                                            np.ones(3)),
        "ohmic read schemes": lambda: solve_read(Crossbar.ohmic(np.full((3, 2), 1e-5), r_row=1.0, r_col=0.0),
                                                 0, 0, 0.2, "floating"),
        "effective matrix": lambda: effective_matrix(Crossbar.ohmic(np.full((3, 2), 1e-5), r_row=1.0, r_col=1.0)),
        "device": lambda: solve(Crossbar.device(g_read=np.full((3, 2), 2e-5), r_row=1.0, r_col=1.0), np.ones(3)),
        "1t1r": lambda: solve(Crossbar.one_t_one_r(g_read=np.full((3, 2), 2e-5), r_row=1.0, r_col=1.0),
                              np.ones(3) * 0.2),
    }
    for name, run in steps.items():
        start = time.perf_counter()
        run()
        times[name] = time.perf_counter() - start
    return times
