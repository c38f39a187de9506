"""One crossbar tile: programmed conductances, a circuit model and a periphery.

A :class:`Tile` holds T inputs x T/2 differential outputs of one layer.  Its data path for
a batch of inputs ``x`` (B, rows) is:

1. the DAC (:meth:`Periphery.drive`): each input vector is divided by its largest magnitude
   (a digital scale per vector and tile, aihwkit's "noise management") and quantised
   (``dac_bits``, signed); inputs drive the rows as read voltages, as analog amplitudes
   ``v_read * x`` or bit-serially (one read per input bit, shifted and added digitally);
2. the circuit model gives the column currents (B, 2 x outputs) for the row voltages;
3. the differential current of each pair gets read noise (relative, per cell and read: its
   sum on a column has variance sigma^2 sum_i (v_i G_ij)^2, drawn directly: exact for linear
   cells and ideal wires, the ideal-wire estimate otherwise) and output noise, then the ADC
   (``adc_bits``; full scale calibrated per tile or a bound in weight units) with optional
   iterative bound management (a clipped read is repeated with the inputs halved, up to 10
   times);
4. the result is multiplied back by the column's digital scale and the input scale.

Circuit models (one small class each; torch operations once programmed): :class:`Ideal`
(``v @ G``), :class:`OhmicIRDrop` (the Numba solver's effective matrix, IR drop included,
computed once per programmed state and cached), :class:`SelectorlessIdealWires` (the compact
model's read current summed on ideal wires, a closed form), :class:`NonlinearBatched`
(selector-less cells with wire resistance and 1T1R cells: the whole batch in one Numba
kernel, checked against the exact solver whenever its conductances change) and
:class:`ExactSolver` (the Numba solver per input vector; the reference path,
``HardwareConfig(exact=True)``).  Each
model's :meth:`error` compares it with the exact solver on given inputs.

A tile is a ``torch.nn.Module``: forward hooks registered on it see (and may change) its
digital output, which is how compensation strategies attach (:mod:`memsim.compensate`).
"""
from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..circuit.array import Crossbar
from ..devices.rram import DEFAULT_PARAMS, RRAMParams
from ..devices.transistor import MosfetParams, drain_current
from ..solver import effective_matrix, solve
from .mapping import TileMap, differential

#: Input vectors per exact-solver call (the solver batches them).
_SOLVE_CHUNK = 25


# ---------------------------------------------------------------------------------------------
# circuit models
# ---------------------------------------------------------------------------------------------
class CircuitModel:
    """Column currents of a programmed tile: ``program(g)`` then ``currents(v)``.

    ``g``: (rows, cols) conductances, S (at the read voltage); ``v``: (B, rows) row
    voltages, V; returns (B, cols) currents into the column sense nodes, A.
    """

    name = "circuit"

    def __init__(self, config):
        self.config = config
        self.g = None
        self._crossbar = None

    def program(self, g: torch.Tensor) -> None:
        self.g = g
        self._crossbar = None

    def currents(self, v: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def crossbar(self):
        """The tile as a :class:`memsim.Crossbar` (the exact solver's circuit), built once per
        programming."""
        if self._crossbar is None:
            self._crossbar = build_crossbar(self.config, self.g.detach().cpu().double().numpy())
        return self._crossbar

    xb = property(crossbar)

    def against_exact(self, v) -> tuple:
        """This model's column currents and the Numba solver's on the same cells (float64
        arrays (B, cols), A) for row voltages ``v`` (B, rows)."""
        v = torch.as_tensor(v, dtype=self.g.dtype, device=self.g.device)
        mine = self.currents(v).detach().cpu().double().numpy()
        exact = solve(self.crossbar(), v.detach().cpu().double().numpy(), voltages=False,
                      tol=min(self.config.tol, 1e-9)).i_col
        return mine, exact

    def error(self, v) -> float:
        """Largest |I - I_exact| over the columns, relative to the largest |I_exact|, for row
        voltages ``v`` (B, rows): this model against the Numba solver on the same cells."""
        mine, exact = self.against_exact(v)
        return float(np.max(np.abs(mine - exact)) / max(np.max(np.abs(exact)), 1e-300))

    def column_error(self, v) -> float:
        """Largest |I - I_exact| over inputs and columns, relative to the column's full scale
        ``v_read sum_i G_ij``, for row voltages ``v`` (B, rows)."""
        mine, exact = self.against_exact(v)
        full = self.config.v_read * self.g.detach().cpu().double().numpy().sum(axis=0)
        return float(np.max(np.abs(mine - exact) / full[None, :]))


class Ideal(CircuitModel):
    """Linear cells, ideal wires: ``I = v @ G``."""

    name = "ideal"

    def currents(self, v):
        return v @ self.g


class OhmicIRDrop(CircuitModel):
    """Linear cells with wire resistance: ``I = v @ M(G)^T``, M the solver's effective
    matrix (:func:`memsim.solver.effective_matrix`), computed in float64 on first use after
    each programming and cached."""

    name = "ohmic-ir"

    def program(self, g):
        super().program(g)
        self.matrix_t = None

    def effective(self) -> torch.Tensor:
        if self.matrix_t is None:
            m = effective_matrix(self.crossbar())
            self.matrix_t = torch.as_tensor(np.ascontiguousarray(m.T), dtype=self.g.dtype, device=self.g.device)
        return self.matrix_t

    def currents(self, v):
        return v @ self.effective()


class SelectorlessIdealWires(CircuitModel):
    """Selector-less RRAM cells on ideal wires: ``I_j = sum_i I0 exp(-gap_ij/g0) sinh(v_i/V0)``,
    the compact model's read current (Jiang et al., IEEE TED 2016) with each gap set so the
    cell reads ``G`` at ``v_read``."""

    name = "selectorless-ideal-wires"

    def program(self, g):
        p = device_of(self.config)
        super().program(g)
        gap = read_gap(g.detach().cpu().double().numpy(), self.config.v_read, p)
        self.v0 = p.v0
        self.prefactor = torch.as_tensor(p.i0 * np.exp(-gap / p.g0), dtype=g.dtype, device=g.device)

    def currents(self, v):
        return torch.sinh(v / self.v0) @ self.prefactor


class ExactSolver(CircuitModel):
    """The Numba solver per input vector (damped Newton for selector-less and 1T1R cells),
    spread over ``config.workers`` threads (its kernels release the GIL)."""

    name = "exact"

    def currents(self, v):
        xb = self.crossbar()  # built before the threads share it
        v64 = v.detach().cpu().double().numpy()
        chunks = [v64[i:i + _SOLVE_CHUNK] for i in range(0, len(v64), _SOLVE_CHUNK)]

        def run(chunk):
            out = solve(xb, chunk, voltages=False, tol=self.config.tol).i_col
            if self.progress is not None:
                self.progress.update(len(chunk))
            return out

        if not chunks:
            out = np.zeros((0, xb.cols))
        elif self.config.workers > 1:
            with ThreadPoolExecutor(self.config.workers) as pool:
                out = np.concatenate(list(pool.map(run, chunks)))
        else:
            out = np.concatenate([run(c) for c in chunks])
        return torch.as_tensor(out, dtype=v.dtype, device=v.device)

    progress = None


class NonlinearBatched(CircuitModel):
    """Selector-less or 1T1R cells with wire resistance, a whole batch per call.

    The unknowns are the cell voltages u (B, R, C).  For given cell currents I the wires are
    linear: the drop along row i to cell j is ``r sum_m I_im (min(m, j) + 1)`` and column node
    (i, j) sits ``r sum_m I_mj (R - max(i, m))`` above the sense node (the circuit of
    :func:`build_crossbar`), cumulative sums along the lines.  So u solves
    ``u = v - drops(f(u))``, f the cell I-V applied exactly: the compact model's sinh, or for
    1T1R the RRAM in series with the reduced transistor (``MosfetParams()`` at ``v_gate``,
    the one :func:`build_crossbar` uses), its internal node by one Newton step per pass,
    warm-started from the last.  The Jacobian ``I + r A f'`` has a real spectrum in
    [1, 1 + lambda_max] (``A f'`` is similar to a symmetric positive semi-definite matrix), so
    the iteration is Chebyshev's on that interval; lambda_max is bounded once per programming
    by power iteration with every cell at its largest differential conductance (at ``v_read``).  A
    read stops when the largest cell-voltage update falls below ``rel_update x v_read``
    (3e-3: at most 3.6e-4 of a column's full scale off the solver at 128 x 128, 1 and 2.5 ohm,
    against 3.9e-5 at 1e-3 for one pass more).  Each step is one pass over the array in one
    Numba kernel (:mod:`memsim.solver._batched`: prefix-sum drops, vectorised cell loops),
    input vectors spread over ``config.workers`` threads.  Column currents are the sums of the
    cell currents at the last iterate.

    Every programming (:meth:`program`, also at each drift time) checks the model against the
    Numba solver on :data:`CHECK_VECTORS` random row-voltage vectors (uniform in
    [-v_read, v_read], seeded): :attr:`measured_error` is the largest column-current error
    relative to the column's full scale (:meth:`column_error`); above :data:`TOLERANCE` a
    ``RuntimeWarning`` says so.  Programming the conductances last checked again (with the
    same iteration settings) keeps that check.
    """

    name = "nonlinear-batched"
    #: Random row-voltage vectors of the check at each programming.
    CHECK_VECTORS = 8
    #: Largest accepted column-current error at the check, fraction of the column's full scale.
    TOLERANCE = 5e-3
    #: Passes at most, and the stopping update of the cell voltages (fraction of v_read).
    max_iter = 60
    rel_update = 3e-3
    measured_error = None
    _checked = None  # (conductances, iteration settings) of the last check

    def program(self, g):
        settings = (self.max_iter, self.rel_update, self.CHECK_VECTORS, self.TOLERANCE)
        if self._checked is not None and self._checked[1] == settings and self._checked[0].shape == g.shape \
                and self._checked[0].dtype == g.dtype and torch.equal(self._checked[0], g):
            # the same conductances (programming, then time 0 without drift): the same circuit,
            # already built and checked
            self.g = g
            self._warn_if_off()
            return
        p = device_of(self.config)
        super().program(g)
        cfg = self.config
        kw = dict(dtype=g.dtype, device=g.device)
        self.p_dev = p.as_array()
        if isinstance(p, RRAMParams):
            self.v0 = p.v0
            self.prefactor64 = np.ascontiguousarray(p.i0 * np.exp(-self.xb.gap / p.g0))
            largest_slope = self.prefactor64 / self.v0 * math.cosh(cfg.v_read / self.v0)
        else:  # a tabulated device: the kernel reads its table; prefactor / v0 is the slope at 0 V
            self.v0 = 1.0
            table = p.table()
            self.prefactor64 = np.ascontiguousarray(table.interpolate(0.0, self.xb.gap)[1])
            largest_slope = np.maximum(table.interpolate(cfg.v_read, self.xb.gap)[1],
                                       table.interpolate(-cfg.v_read, self.xb.gap)[1])
        self.prefactor = torch.as_tensor(self.prefactor64, **kw)
        rows, cols = g.shape
        r = cfg.r_wire
        self.r = r
        self.one_t = cfg.cells == "1t1r"
        # the transistor of build_crossbar (MosfetParams defaults) for 1T1R; unused otherwise
        self.p_mos = self.xb.transistor.as_array() if self.one_t else np.zeros(4)
        self.gap = np.ascontiguousarray(self.xb.gap, dtype=np.float64)
        self.v_gate = float(cfg.v_gate)
        # largest eigenvalue of r A D, D the largest differential conductance of each cell
        lam = 0.0
        if r > 0:
            d = torch.as_tensor(largest_slope, **kw)
            x = torch.ones((1, rows, cols), **kw)
            for _ in range(30):
                y = self._drops(d * x)
                lam = float(y.abs().max() / x.abs().max())
                x = y / y.abs().max()
            lam *= 1.05
        self.lam_max = lam
        self.iterations = 0
        gen = np.random.default_rng(12345)
        v = gen.uniform(-cfg.v_read, cfg.v_read, (self.CHECK_VECTORS, rows))
        self.measured_error = self.column_error(v)
        self._checked = (g.detach().clone(), settings)
        self._warn_if_off()

    def _warn_if_off(self):
        if not self.measured_error <= self.TOLERANCE:
            warnings.warn(f"{self.name} circuit model is {100 * self.measured_error:.3g} % of a column's full scale "
                          f"off the exact solver on random inputs (tolerance {100 * self.TOLERANCE:.3g} %); use "
                          f"HardwareConfig(exact=True) for this tile", RuntimeWarning, stacklevel=3)

    def _drops(self, i_cell):
        """Row-node drop plus column-node rise (B, R, C), V, for cell currents (B, R, C), A."""
        seg_row = torch.flip(torch.cumsum(torch.flip(i_cell, (-1,)), -1), (-1,))
        seg_col = torch.cumsum(i_cell, -2)
        up = torch.flip(torch.cumsum(torch.flip(seg_col, (-2,)), -2), (-2,))
        return torch.cumsum(seg_row, -1).add_(up).mul_(self.r)

    def currents(self, v):
        from ..solver import batched_read

        v64 = np.ascontiguousarray(v.detach().cpu().double().numpy())
        i_col = np.empty((v64.shape[0], self.g.shape[1]))
        sweeps = np.zeros(v64.shape[0], dtype=np.int64)
        with _threads(self.config.workers):
            batched_read(v64, self.prefactor64, 1.0 / self.v0, self.one_t, self.v_gate, self.gap, self.p_dev,
                         self.p_mos, float(self.r), self.lam_max, self.max_iter,
                         self.rel_update * self.config.v_read, 4 * self.config.workers, i_col, sweeps)
        if not np.all(np.isfinite(i_col)) and np.all(np.isfinite(v64)):
            raise FloatingPointError(f"{self.name}: non-finite column currents for finite row voltages; use "
                                     f"HardwareConfig(exact=True) for this tile")
        self.iterations = int(sweeps.max()) if len(sweeps) else 0
        if self.iterations > self.max_iter:
            warnings.warn(f"{self.name}: {int(np.sum(sweeps > self.max_iter))} of {len(sweeps)} reads did not "
                          f"converge in {self.max_iter} passes", RuntimeWarning, stacklevel=2)
        return torch.as_tensor(i_col, dtype=v.dtype, device=v.device)


def _threads(workers):
    """Numba's thread count limited to ``workers`` for the duration of a call."""
    import contextlib

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


def circuit_model(config) -> CircuitModel:
    """The circuit model a :class:`~memsim.nn.HardwareConfig` asks for: nonlinear cells with
    wire resistance (and 1T1R cells) get :class:`NonlinearBatched` unless ``config.exact``."""
    if config.cells == "ohmic":
        return Ideal(config) if config.r_wire == 0 else OhmicIRDrop(config)
    if config.cells == "device" and config.r_wire == 0 and isinstance(device_of(config), RRAMParams):
        return SelectorlessIdealWires(config)
    return ExactSolver(config) if getattr(config, "exact", False) else NonlinearBatched(config)


# ---------------------------------------------------------------------------------------------
# cells of the exact circuit
# ---------------------------------------------------------------------------------------------
def device_of(config):
    """The compact model of ``config``'s RRAM cells: its ``device``, else the built-in model."""
    device = getattr(config, "device", None)
    return DEFAULT_PARAMS if device is None else device


def read_gap(g, v_read, params):
    """States (gaps in m for the built-in model) whose compact-model cell reads ``g`` (S) at
    ``v_read`` (V), within the model's conductance range."""
    lo, hi = np.sort(params.conductance(v_read, np.array(params.state_bounds)))
    return params.state_for_conductance(np.clip(g, lo * (1 + 1e-12), hi * (1 - 1e-12)), v_read)


def verified_gap(g, v_read, v_gate, transistor, params):
    """Gaps that make the 1T1R cell (RRAM in series with the NMOS) carry g * v_read at v_read.

    The transistor's drain voltage follows from its own I-V (bisection, vectorised); the
    RRAM gap then has a closed form.  Targets the transistor cannot pass take the smallest gap.
    """
    current = np.asarray(g, dtype=float) * v_read
    lo = np.zeros_like(current)
    hi = np.full_like(current, v_read)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = drain_current(v_gate, mid, transistor) < current
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    v_rram = np.maximum(v_read - 0.5 * (lo + hi), 1e-12)
    if isinstance(params, RRAMParams):
        gap = -params.g0 * np.log(current / (params.i0 * np.sinh(v_rram / params.v0)))
        return np.clip(gap, params.gap_min, params.gap_max)
    # A tabulated device: bisection on the state, the current being monotone in it.
    table = params.table()
    low, high = (np.full_like(current, bound) for bound in params.state_bounds)
    rising = table.interpolate(v_read, high[:1])[0] > table.interpolate(v_read, low[:1])[0]
    for _ in range(60):
        mid = 0.5 * (low + high)
        below = (table.interpolate(v_rram, mid)[0] < current) == rising
        low = np.where(below, mid, low)
        high = np.where(below, high, mid)
    return 0.5 * (low + high)


def build_crossbar(config, g):
    """A :class:`memsim.Crossbar` of conductances ``g`` (S, float64 array) for ``config``'s
    cell kind and wires: ohmic cells as they are; RRAM cells with the gap that reads ``g`` at
    ``v_read`` (1T1R: write-verified on the whole cell when ``verify_1t1r``)."""


    wires = {"r_row": config.r_wire, "r_col": config.r_wire}
    if config.cells == "ohmic":
        return Crossbar.of_kind("ohmic", g, **wires)
    transistor = MosfetParams()
    params = device_of(config)
    gap = (verified_gap(g, config.v_read, config.v_gate, transistor, params)
           if config.cells == "1t1r" and config.verify_1t1r else read_gap(g, config.v_read, params))
    return Crossbar.of_kind(config.cells, gap=gap, v_gate=config.v_gate, transistor=transistor, params=params,
                            **wires)


# ---------------------------------------------------------------------------------------------
# periphery
# ---------------------------------------------------------------------------------------------
class Periphery:
    """DAC, ADC and bound management of a tile (the converter fields of the config)."""

    def __init__(self, config):
        self.config = config

    def drive(self, x: torch.Tensor):
        """Input scale (B, 1) and the reads [(row voltages (B, rows), weight)] for ``x``.

        The scale is each input's largest magnitude (abs-max noise management); it is 0 for an
        all-zero input, whose output is then 0, output noise included, as in aihwkit (a
        convolution's zero patches, ReLU's zero vectors: no read takes place)."""
        cfg = self.config
        low, high = torch.aminmax(x, dim=1, keepdim=True)  # |x| max in one pass, no |x| copy
        peak = torch.maximum(high, -low)
        x_scale = torch.where(peak > 0, peak, torch.ones_like(peak))
        if cfg.inputs == "amplitude":
            if cfg.dac_bits is None:
                return peak, [(x * (cfg.v_read / x_scale), 1.0)]
            steps = 2 ** (cfg.dac_bits - 1) - 1 if cfg.dac_bits > 1 else 1
            return peak, [((x * (steps / x_scale)).round_().mul_(cfg.v_read / steps), 1.0)]
        levels = 2 ** cfg.dac_bits - 1
        xn = x / x_scale
        code = torch.round(xn.abs() * levels).to(torch.int64)
        sign = torch.sign(xn)
        return peak, [(cfg.v_read * sign * ((code >> k) & 1).to(x.dtype), 2.0 ** k / levels)
                     for k in range(cfg.dac_bits)]

    def adc(self, i_diff: torch.Tensor, full_scale):
        """Quantised, clipped differential currents and a (B,) mask of clipped reads."""
        bits = self.config.adc_bits
        if bits is not None:
            step = 2.0 * full_scale / (2 ** bits - 2) if bits > 1 else full_scale
            i_diff = torch.round(i_diff / step).mul_(step)
        fs = torch.as_tensor(full_scale, dtype=i_diff.dtype, device=i_diff.device)
        clipped = (i_diff.abs() > fs * (1 + 1e-12)).any(dim=1)
        return torch.clamp(i_diff, -fs, fs), clipped


# ---------------------------------------------------------------------------------------------
# the tile
# ---------------------------------------------------------------------------------------------
class Tile(torch.nn.Module):
    """T inputs x T/2 differential outputs of one layer on one crossbar.

    Attributes
    ----------
    rows, cols : slice
        The layer's input and output slices this tile holds.
    g_target : tensor (rows, 2 x outputs)
        Target conductances, S (pairs interleaved: G+ at 2j, G- at 2j + 1).
    scale : tensor (outputs,)
        Digital weight scale, weight units per siemens.
    cells : ProgrammedCells
        Conductances right after programming and the per-device drift parameters.
    g : tensor
        Conductances now (at the model's time since programming), S.
    circuit : CircuitModel
    periphery : Periphery
    adc_full_scale, noise_sigma : float or tensor (outputs,)
        ADC full scale and output-noise sigma, A.
    """

    def __init__(self, tmap: TileMap, config, read_generator):
        super().__init__()
        self.config = config
        self.circuit = circuit_model(config)
        self.periphery = Periphery(config)
        self.read_generator = read_generator
        self.cells = None
        self.g = None
        self.remap(tmap)

    def remap(self, tmap: TileMap) -> None:
        """Take the targets and scale of ``tmap`` (same slices); the ADC full scale and the
        output noise follow the scale (a calibrated full scale is set again by the model)."""
        config = self.config
        self.rows, self.cols = tmap.rows, tmap.cols
        self.g_target = tmap.g_target.detach()
        self.scale = tmap.scale.detach()
        self.adc_full_scale = math.inf  # no clipping without ADC bits or bound management
        self.noise_sigma = config.out_noise * config.v_read / self.scale if config.out_noise > 0 else 0.0
        if config.adc_range != "calibrated" and (config.adc_bits is not None or config.bound_management):
            self.adc_full_scale = float(config.adc_range) * config.v_read / self.scale

    @property
    def map(self) -> TileMap:
        return TileMap(self.rows, self.cols, self.g_target, self.scale)

    def set_conductances(self, g: torch.Tensor) -> None:
        """The conductances now (S); the circuit model re-programs lazily."""
        self.g = g.detach()
        self.circuit.program(self.g)

    def weights(self, g=None) -> torch.Tensor:
        """Effective weights (rows, outputs) of conductances ``g`` (default: now), ideal wires."""
        return differential(self.g if g is None else g) * self.scale

    def read(self, v: torch.Tensor) -> torch.Tensor:
        """Differential currents (B, outputs), A, of one read of row voltages ``v``, with read
        and output noise."""
        i_col = self.circuit.currents(v)
        i_diff = differential(i_col)
        sigma_read = self.read_sigma
        if sigma_read > 0:
            var = (v * v) @ (self.g * self.g)
            i_diff = i_diff + sigma_read * torch.sqrt(var[:, 0::2] + var[:, 1::2]) * self._normal(i_diff)
        if isinstance(self.noise_sigma, torch.Tensor) or self.noise_sigma > 0:
            i_diff = i_diff + self.noise_sigma * self._normal(i_diff)
        return i_diff

    #: Relative read noise of a cell current (set from the noise model when programmed).
    read_sigma = 0.0

    def _normal(self, like):
        return torch.randn(like.shape, generator=self.read_generator, dtype=like.dtype, device=like.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Digital partial output (B, outputs) for this tile's input slice ``x`` (B, rows)."""
        cfg = self.config
        x_scale, reads = self.periphery.drive(x)
        total = torch.zeros((x.shape[0], self.scale.numel()), dtype=x.dtype, device=x.device) if len(reads) > 1 \
            else None
        for v, weight in reads:
            i_diff = self.read(v)
            if cfg.adc_bits is None and not cfg.bound_management:  # an ideal ADC: nothing to do
                total = total + weight * i_diff if len(reads) > 1 else i_diff
                continue
            out, clipped = self.periphery.adc(i_diff, self.adc_full_scale)
            if cfg.bound_management:
                factor = torch.ones(v.shape[0], dtype=x.dtype, device=x.device)
                for _ in range(10):
                    if not bool(clipped.any()):
                        break
                    idx = torch.nonzero(clipped).flatten()
                    factor[idx] *= 2.0
                    retry, again = self.periphery.adc(self.read(v[idx] / factor[idx, None]), self.adc_full_scale)
                    out[idx] = retry
                    clipped = torch.zeros_like(clipped)
                    clipped[idx] = again
                out = out * factor[:, None]
            total = total + weight * out if len(reads) > 1 else out
        return total.mul_(x_scale).mul_(self.scale / cfg.v_read)

    def extra_repr(self) -> str:
        return f"rows={self.rows.start}:{self.rows.stop}, outputs={self.cols.start}:{self.cols.stop}, " \
               f"circuit={self.circuit.name}"
