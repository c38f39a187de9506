"""The MVM read of one crossbar tile as one interface: :class:`TileRead`.

A tile is read many times (whole batches of input vectors) between changes of its cells, so
what can be prepared once per programmed state is prepared at construction and each
:meth:`TileRead.read` does only the per-batch work.  :meth:`TileRead.from_crossbar` takes a
:class:`~memsim.circuit.array.Crossbar` (cells, wires and transistor all from there) and picks
one of four paths (in the spirit of CrossSim's ``IArray``, the core a simulated array exposes to
its periphery: Xiao et al., "CrossSim", Sandia National Laboratories, 2019-2024):

``"ideal"``
    Ideal wires: linear cells read ``I = v @ G``; selector-less cells of the built-in compact
    model read ``I_j = sum_i I0 exp(-gap_ij/g0) sinh(v_i/V0)`` (Jiang et al., IEEE TED 2016),
    a closed form, exact.
``"effective"``
    Linear cells with wire resistance: ``I = v @ M^T`` with M the solver's effective matrix
    (:func:`memsim.solver.effective_matrix`, IR drop included, exact), computed once.
``"batched"``
    Selector-less or 1T1R cells (any device, tabulated Verilog-A ones included), with or
    without wire resistance: a whole batch per call in one Numba kernel
    (:mod:`memsim.solver._batched`).  The unknowns are the cell voltages u (B, R, C); for
    given cell currents the wires are linear, so u solves ``u = v - drops(f(u))``, f the cell
    I-V applied exactly (1T1R: the RRAM in series with the crossbar's transistor, its internal
    node by one Newton step per pass, warm-started).  The Jacobian ``I + A f'`` has a real
    spectrum in [1, 1 + lambda_max] (``A f'`` is similar to a symmetric positive
    semi-definite matrix), so the iteration is Chebyshev's on that interval; lambda_max is
    bounded once by power iteration (:func:`spectral_bound`) with every cell at its largest
    differential conductance at ``v_read``.  A read stops when the largest cell-voltage update
    falls below ``rel_update x v_read`` (3e-3: at most 3.6e-4 of a column's full scale off
    the solver at 128 x 128, 1 and 2.5 ohm, against 3.9e-5 at 1e-3 for one pass more).
``"exact"``
    :func:`memsim.solver.solve` per input vector (damped Newton to ``tol``), spread over
    ``workers`` threads (its kernels release the GIL): the reference.

``"auto"`` takes the first that is exact or fast: ideal, effective, batched.  The
self-check :meth:`TileRead.check` measures a path against the exact one on given or random
inputs (:attr:`TileRead.measured_error`, fraction of a column's full scale
``v_read sum_i G_ij``).

Example
-------
>>> import numpy as np
>>> from memsim import Crossbar
>>> from memsim.solver import TileRead
>>> xb = Crossbar.device(g_read=np.full((16, 16), 20e-6), r_row=2.5, r_col=2.5)
>>> tile = TileRead.from_crossbar(xb)
>>> tile.path
'batched'
>>> tile.check() < 1e-3  # against memsim.solve, fraction of a column's full scale
True
"""
from __future__ import annotations

import contextlib
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import units
from ..circuit.array import Crossbar
from ..devices.rram import RRAMParams
from .core import effective_matrix, solve

PATHS = ("ideal", "effective", "batched", "exact")

#: Input vectors per exact-solver call (the solver batches them).
SOLVE_CHUNK = 25


def _numba_threads(workers):
    """Numba's thread count limited to ``workers`` for the duration of a call."""
    import numba

    @contextlib.contextmanager
    def limited():
        before = numba.get_num_threads()
        numba.set_num_threads(max(1, min(workers, numba.config.NUMBA_NUM_THREADS)))
        # parallel loops hand out one iteration at a time, so a thread slowed by other jobs on
        # the machine takes fewer chunks instead of holding the others up
        chunks_before = numba.set_parallel_chunksize(1)
        try:
            yield
        finally:
            numba.set_parallel_chunksize(chunks_before)
            numba.set_num_threads(before)

    return limited()


def spectral_bound(slope, r_row: float, r_col: float, iterations: int = 30, margin: float = 1.05) -> float:
    """Upper estimate of the largest eigenvalue of ``A D``: A the wires' linear map from cell
    currents to cell-voltage drops (row drop plus column rise, :func:`memsim.solver._batched.wire_drops`,
    the read's own prefix sums), D the diagonal of cell slopes ``slope`` (R, C), S.

    Power iteration (``iterations`` steps from all ones, max-norm), times ``margin``; 0 for
    ideal wires.  Eigenvalues are real and >= 0 (``A D`` is similar to ``D^1/2 A D^1/2``)."""
    from ._batched import wire_drops

    slope = np.ascontiguousarray(slope, dtype=np.float64)
    if r_row == 0 and r_col == 0:
        return 0.0
    x = np.ones_like(slope)
    y = np.empty_like(slope)
    lam = 0.0
    for _ in range(iterations):
        wire_drops(slope * x, float(r_row), float(r_col), y)
        peak = float(np.max(np.abs(y)))
        if peak == 0:
            return 0.0
        lam = peak / float(np.max(np.abs(x)))
        x = y / peak
    return lam * margin


class TileRead:
    """Column currents of one programmed crossbar for batches of row voltages.

    Build it with :meth:`from_crossbar`.  Attributes: ``xb`` (the crossbar), ``path`` (the
    path that runs: one of :data:`PATHS`), ``v_read`` (V), ``full_scale`` ((C,) A, ``v_read
    sum_i G_ij``), ``matrix`` ((R, C) the linear map ``I = v @ matrix`` of linear paths, else
    None), ``lam_max`` (batched: the spectral bound), ``iterations`` (batched: the most
    Chebyshev steps of the last read), ``measured_error`` (the last :meth:`check`, None before).
    ``max_iter`` and ``rel_update`` (batched) may be changed between reads.
    """

    #: Random row-voltage vectors of :meth:`check` when none are given.
    CHECK_VECTORS = 8
    #: Largest column-current error the batched path is expected to keep, fraction of a
    #: column's full scale (callers warn above it).
    TOLERANCE = 5e-3

    measured_error = None
    iterations = 0
    #: An object with ``update(n)`` told of every finished chunk of exact solves, or None.
    progress = None

    def __init__(self, xb: Crossbar, path: str, *, v_read: float, g_read, tol: float, workers: int,
                 max_iter: int, rel_update: float):
        self.xb = xb
        self.path = path
        self.v_read = v_read
        self.tol = tol
        self.workers = workers
        self.max_iter = max_iter
        self.rel_update = rel_update
        self.matrix = None
        self.lam_max = 0.0
        self._prepare()
        g_read = self._cell_conductance() if g_read is None else g_read
        self.full_scale = v_read * np.asarray(g_read, dtype=np.float64).sum(axis=0)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_crossbar(cls, xb: Crossbar, path: str = "auto", *, v_read: float = 0.2, g_read=None,
                      tol: float = 1e-6, workers: int = 1, max_iter: int = 60,
                      rel_update: float = 3e-3) -> "TileRead":
        """The read of ``xb`` by ``path``.

        Parameters
        ----------
        xb : Crossbar
            Cells, wire resistances (``r_row``, ``r_col``, ohm per segment), transistor and gate
            voltages; the only source of the circuit.
        path : "auto", "ideal", "effective", "batched" or "exact"
            See the module docstring; ``"auto"``: ideal (ideal wires, linear or built-in
            selector-less cells), effective (linear cells, resistive wires), else batched.
        v_read : float
            Read voltage of a full-scale input, V: sets the spectral bound, the batched path's
            stopping update and the full scale of :meth:`check`.
        g_read : array (R, C), optional
            Conductances the cells read at ``v_read``, S, for the full scale of :meth:`check`
            (e.g. the targets they were programmed to); default: measured from the cells on
            ideal wires.
        tol : float
            The exact path's tolerance (relative node-voltage update).
        workers : int
            Threads (batched: Numba's; exact: solver calls in parallel).
        max_iter, rel_update
            Batched path: Chebyshev passes at most, and the stopping update (fraction of
            ``v_read``).
        """
        if not isinstance(xb, Crossbar):
            raise ValueError(f"xb must be a memsim.Crossbar, got {type(xb).__name__}")
        path = units.choice(path, ("auto",) + PATHS, "path")
        v_read = units.real(v_read, "v_read (V)", low=0.0)
        if v_read == 0:
            raise ValueError("v_read (V) must be > 0, got 0")
        tol = units.real(tol, "tol", low=0.0)
        if tol == 0:
            raise ValueError("tol must be > 0, got 0")
        workers = units.integer(workers, "workers", low=1)
        max_iter = units.integer(max_iter, "max_iter", low=0)
        rel_update = units.real(rel_update, "rel_update", low=0.0)
        if g_read is not None:
            g_read = np.asarray(g_read, dtype=np.float64)
            if g_read.shape != xb.shape or not np.all(np.isfinite(g_read)) or np.any(g_read < 0):
                raise ValueError(f"g_read must be finite conductances >= 0 S of shape {xb.shape}, got shape "
                                 f"{g_read.shape}")
        ideal_wires = xb.r_row == 0 and xb.r_col == 0
        closed_form = xb.kind == "ohmic" or (xb.kind == "device" and isinstance(xb.device_params, RRAMParams))
        if path == "auto":
            path = "ideal" if ideal_wires and closed_form else "effective" if xb.kind == "ohmic" else "batched"
        elif path == "ideal" and not (ideal_wires and closed_form):
            raise ValueError("the ideal path needs ideal wires (r_row = r_col = 0) and ohmic cells or selector-less "
                             f"cells of the built-in model; this is a {xb.kind} crossbar with r_row={xb.r_row:g}, "
                             f"r_col={xb.r_col:g} ohm: use path='auto'")
        elif path == "effective" and xb.kind != "ohmic":
            raise ValueError(f"the effective-matrix path needs ohmic cells, got {xb.kind} cells: use 'batched' or "
                             "'exact'")
        elif path == "batched" and xb.kind == "ohmic":
            raise ValueError("the batched path reads nonlinear (device, 1t1r) cells; ohmic cells take 'ideal' or "
                             "'effective'")
        return cls(xb, path, v_read=v_read, g_read=g_read, tol=tol, workers=workers, max_iter=max_iter,
                   rel_update=rel_update)

    def _prepare(self) -> None:
        xb = self.xb
        if self.path == "ideal":
            if xb.kind == "ohmic":
                self.matrix = xb.g
            else:
                p = xb.device_params
                self.v0 = p.v0
                self.prefactor = np.ascontiguousarray(p.i0 * np.exp(-xb.gap / p.g0))
        elif self.path == "effective":
            self.matrix = np.ascontiguousarray(effective_matrix(xb).T)
        elif self.path == "batched":
            slope = self._kernel_inputs()
            self.lam_max = spectral_bound(slope, xb.r_row, xb.r_col)

    def _kernel_inputs(self) -> np.ndarray:
        """The batched kernel's arrays of this crossbar; returns each cell's largest differential
        conductance over [-v_read, v_read], S (R, C) (the RRAM's: it bounds the 1T1R cell's too)."""
        xb = self.xb
        p = xb.device_params
        self.p_dev = p.as_array()
        self.gap = np.ascontiguousarray(xb.gap, dtype=np.float64)
        if isinstance(p, RRAMParams):
            self.v0 = p.v0
            self.prefactor = np.ascontiguousarray(p.i0 * np.exp(-self.gap / p.g0))
            slope = self.prefactor / self.v0 * np.cosh(self.v_read / self.v0)
        else:  # a tabulated device: the kernel reads its table; prefactor / v0 is the slope at 0 V
            self.v0 = 1.0
            table = p.table()
            self.prefactor = np.ascontiguousarray(table.interpolate(0.0, self.gap)[1])
            slope = np.maximum(table.interpolate(self.v_read, self.gap)[1], table.interpolate(-self.v_read, self.gap)[1])
        self.one_t = xb.kind == "1t1r"
        # 1T1R: the crossbar's transistor and gates (unused by selector-less cells)
        self.p_mos = xb.transistor.as_array() if self.one_t else np.zeros(4)
        self.v_gate = np.ascontiguousarray(xb.v_gate if self.one_t else np.zeros(xb.rows), dtype=np.float64)
        return slope

    def _cell_conductance(self) -> np.ndarray:
        """What each cell reads at ``v_read`` on ideal wires, S (R, C): ohmic cells their g; other
        cells one row at a time through the batched kernel on ideal wires (one exact pass)."""
        xb = self.xb
        if xb.kind == "ohmic":
            return xb.g
        if self.path != "batched":
            self._kernel_inputs()
        one_hot = np.eye(xb.rows) * self.v_read
        return self._batched(one_hot, 0.0, 0.0, 0.0) / self.v_read

    # -- reads -----------------------------------------------------------------------------
    def read(self, v) -> np.ndarray:
        """Column currents (B, C), A, into the sense nodes, for row voltages ``v`` (B, R), V."""
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != self.xb.rows:
            raise ValueError(f"v must be row voltages of shape (batch, {self.xb.rows}), got shape {v.shape}")
        if self.path == "ideal" and self.xb.kind != "ohmic":
            return np.sinh(v / self.v0) @ self.prefactor
        if self.matrix is not None:
            return v @ self.matrix
        if self.path == "batched":
            return self._batched(v, self.xb.r_row, self.xb.r_col, self.lam_max)
        return self.exact(v)

    def _batched(self, v, r_row, r_col, lam_max) -> np.ndarray:
        from ._batched import batched_read

        v = np.ascontiguousarray(v, dtype=np.float64)
        i_col = np.empty((v.shape[0], self.xb.cols))
        sweeps = np.zeros(v.shape[0], dtype=np.int64)
        with _numba_threads(self.workers):
            batched_read(v, self.prefactor, 1.0 / self.v0, self.one_t, self.v_gate, self.gap, self.p_dev,
                         self.p_mos, float(r_row), float(r_col), float(lam_max), int(self.max_iter),
                         self.rel_update * self.v_read, 4 * self.workers, i_col, sweeps)
        if not np.all(np.isfinite(i_col)) and np.all(np.isfinite(v)):
            raise FloatingPointError("batched read: non-finite column currents for finite row voltages; use the "
                                     "exact path for this crossbar")
        self.iterations = int(sweeps.max()) if len(sweeps) else 0
        if self.iterations > self.max_iter:
            warnings.warn(f"batched read: {int(np.sum(sweeps > self.max_iter))} of {len(sweeps)} reads did not "
                          f"converge in {self.max_iter} passes", RuntimeWarning, stacklevel=3)
        return i_col

    def exact(self, v, tol: float | None = None) -> np.ndarray:
        """The solver's column currents (B, C), A, for row voltages ``v`` (B, R): :func:`solve`
        per chunk of :data:`SOLVE_CHUNK` vectors, chunks over ``workers`` threads; ``tol``
        defaults to this read's."""
        xb = self.xb
        tol = self.tol if tol is None else tol
        v = np.asarray(v, dtype=np.float64)
        chunks = [v[i:i + SOLVE_CHUNK] for i in range(0, len(v), SOLVE_CHUNK)]

        def run(chunk):
            out = solve(xb, chunk, voltages=False, tol=tol).i_col
            if self.progress is not None:
                self.progress.update(len(chunk))
            return out

        if not chunks:
            return np.zeros((0, xb.cols))
        if self.workers > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(self.workers) as pool:
                return np.concatenate(list(pool.map(run, chunks)))
        return np.concatenate([run(c) for c in chunks])

    # -- self-check ------------------------------------------------------------------------
    def check_vectors(self, seed: int = 12345) -> np.ndarray:
        """:data:`CHECK_VECTORS` random row-voltage vectors, uniform in [-v_read, v_read]."""
        gen = np.random.default_rng(seed)
        return gen.uniform(-self.v_read, self.v_read, (self.CHECK_VECTORS, self.xb.rows))

    def check(self, v=None, reference=None) -> float:
        """Largest |I - I_exact| over inputs and columns, fraction of the column's full scale,
        for row voltages ``v`` (B, R) (default: :meth:`check_vectors`); stored in
        :attr:`measured_error`.

        ``reference``: the exact column currents (B, C) for ``v`` where they are at hand (the
        solver's, or ngspice's); else :func:`memsim.solver.solve` runs at ``min(tol, 1e-9)``."""
        v = self.check_vectors() if v is None else np.asarray(v, dtype=np.float64)
        mine = self.read(v)
        exact = self.exact(v, tol=min(self.tol, 1e-9)) if reference is None else np.asarray(reference, np.float64)
        if exact.shape != mine.shape:
            raise ValueError(f"reference must be column currents of shape {mine.shape}, got {exact.shape}")
        self.measured_error = float(np.max(np.abs(mine - exact) / self.full_scale[None, :])) if mine.size else 0.0
        return self.measured_error

    def __repr__(self) -> str:
        return f"TileRead(path={self.path!r}, {self.xb!r})"
