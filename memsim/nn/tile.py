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

Circuit models (one small class each) adapt :class:`memsim.solver.TileRead`, the read of one
crossbar, to the tile's torch tensors (dtype, device, threads): :class:`Ideal` (``v @ G``),
:class:`OhmicIRDrop` (the Numba solver's effective matrix, IR drop included, computed once per
programmed state and cached), :class:`SelectorlessIdealWires` (the compact model's read current
summed on ideal wires, a closed form), :class:`NonlinearBatched` (selector-less cells with wire
resistance and 1T1R cells: the whole batch in one Numba kernel, checked against the exact
solver whenever its conductances change) and :class:`ExactSolver` (the Numba solver per input
vector; the reference path, ``HardwareConfig(exact=True)``).  Each model's :meth:`error`
compares it with the exact solver on given inputs.  This module keeps the mapping (the
crossbar of programmed conductances, :func:`build_crossbar`, with 1T1R write-verify) and the
periphery.

A tile is a ``torch.nn.Module``: forward hooks registered on it see (and may change) its
digital output, which is how compensation strategies attach (:mod:`memsim.compensate`).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..circuit.array import Crossbar
from ..devices.rram import DEFAULT_PARAMS, RRAMParams
from ..devices.transistor import MosfetParams, drain_current
from ..solver import TileRead, solve
from .mapping import TileMap, differential


# ---------------------------------------------------------------------------------------------
# circuit models: adapters of memsim.solver.TileRead (torch <-> numpy, dtype, threads)
# ---------------------------------------------------------------------------------------------
class CircuitModel:
    """Column currents of a programmed tile: ``program(g)`` then ``currents(v)``.

    ``g``: (rows, cols) conductances, S (at the read voltage); ``v``: (B, rows) row
    voltages, V; returns (B, cols) currents into the column sense nodes, A.  The read itself
    is :class:`memsim.solver.TileRead` on the tile's crossbar (:meth:`reader`, built once per
    programming) by the path named :attr:`path`; a model converts between torch and numpy and
    keeps the tile's dtype and device.
    """

    name = "circuit"
    #: The :class:`~memsim.solver.TileRead` path this model runs.
    path = "auto"

    def __init__(self, config):
        self.config = config
        self.g = None
        self._crossbar = None
        self._reader = None

    def program(self, g: torch.Tensor) -> None:
        self.g = g
        self._crossbar = None
        self._reader = None

    def currents(self, v: torch.Tensor) -> torch.Tensor:
        return self._torch(self.reader().read(_numpy(v)), v)

    def crossbar(self):
        """The tile as a :class:`memsim.Crossbar` (the exact solver's circuit), built once per
        programming."""
        if self._crossbar is None:
            self._crossbar = build_crossbar(self.config, self.g.detach().cpu().double().numpy())
        return self._crossbar

    xb = property(crossbar)

    def reader(self) -> TileRead:
        """The tile's read (:class:`memsim.solver.TileRead` by :attr:`path`), built once per
        programming; the check's full scale is ``v_read`` times the programmed conductances."""
        if self._reader is None:
            cfg = self.config
            self._reader = TileRead.from_crossbar(
                self.crossbar(), self.path, v_read=cfg.v_read, g_read=self.g.detach().cpu().double().numpy(),
                tol=cfg.tol, workers=cfg.workers)
        return self._reader

    def _torch(self, currents: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(currents, dtype=like.dtype, device=like.device)

    def exact_currents(self, v) -> np.ndarray:
        """The Numba solver's column currents (B, cols), A, on this tile's cells for row voltages
        ``v`` (B, rows) (float64, tolerance ``min(tol, 1e-9)``)."""
        return solve(self.crossbar(), _numpy(v), voltages=False, tol=min(self.config.tol, 1e-9)).i_col

    def against_exact(self, v) -> tuple:
        """This model's column currents and the Numba solver's on the same cells (float64
        arrays (B, cols), A) for row voltages ``v`` (B, rows)."""
        v = torch.as_tensor(v, dtype=self.g.dtype, device=self.g.device)
        mine = self.currents(v).detach().cpu().double().numpy()
        return mine, self.exact_currents(v)

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


def _numpy(v) -> np.ndarray:
    """Row voltages as a float64 C-contiguous numpy array."""
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().double().numpy()
    return np.ascontiguousarray(v, dtype=np.float64)


class Ideal(CircuitModel):
    """Linear cells, ideal wires: ``I = v @ G`` (TileRead's ideal path, in torch on the tile's
    tensors: no crossbar needed)."""

    name = "ideal"
    path = "ideal"

    def currents(self, v):
        return v @ self.g


class OhmicIRDrop(CircuitModel):
    """Linear cells with wire resistance: ``I = v @ M(G)^T``, M the solver's effective
    matrix (TileRead's effective path, :func:`memsim.solver.effective_matrix`), computed in
    float64 on first use after each programming and cached in the tile's dtype."""

    name = "ohmic-ir"
    path = "effective"

    def program(self, g):
        super().program(g)
        self.matrix_t = None

    def effective(self) -> torch.Tensor:
        if self.matrix_t is None:
            self.matrix_t = torch.as_tensor(self.reader().matrix, dtype=self.g.dtype, device=self.g.device)
            # the read now needs only matrix_t: a float32 tile need not keep the float64 matrix
            # too (a third of an IR-drop tile's memory); reader() builds it again if asked
            self._reader = None
        return self.matrix_t

    def currents(self, v):
        return v @ self.effective()


class SelectorlessIdealWires(CircuitModel):
    """Selector-less RRAM cells on ideal wires: ``I_j = sum_i I0 exp(-gap_ij/g0) sinh(v_i/V0)``,
    the compact model's read current (Jiang et al., IEEE TED 2016) with each gap set so the
    cell reads ``G`` at ``v_read`` (TileRead's ideal path; its prefactors in torch)."""

    name = "selectorless-ideal-wires"
    path = "ideal"

    def program(self, g):
        super().program(g)
        reader = self.reader()
        self.v0 = reader.v0
        self.prefactor = torch.as_tensor(reader.prefactor, dtype=g.dtype, device=g.device)

    def currents(self, v):
        return torch.sinh(v / self.v0) @ self.prefactor


class ExactSolver(CircuitModel):
    """The Numba solver per input vector (damped Newton for selector-less and 1T1R cells),
    spread over ``config.workers`` threads (TileRead's exact path)."""

    name = "exact"
    path = "exact"
    progress = None

    def currents(self, v):
        reader = self.reader()
        reader.progress = self.progress
        return self._torch(reader.read(_numpy(v)), v)


class NonlinearBatched(CircuitModel):
    """Selector-less or 1T1R cells with wire resistance, a whole batch per call: TileRead's
    batched path (Chebyshev iteration on the cell voltages, the cell I-V exact, one Numba pass
    over the array per step; see :mod:`memsim.solver.tile_read`), input vectors spread over
    ``config.workers`` threads.

    Every programming (:meth:`program`, also at each drift time) checks the model against the
    Numba solver on :data:`CHECK_VECTORS` random row-voltage vectors (uniform in
    [-v_read, v_read], seeded): :attr:`measured_error` is the largest column-current error
    relative to the column's full scale (:meth:`memsim.solver.TileRead.check`); above
    :data:`TOLERANCE` a ``RuntimeWarning`` says so.  Programming the conductances last checked
    again (with the same iteration settings) keeps that check.
    """

    name = "nonlinear-batched"
    path = "batched"
    #: Random row-voltage vectors of the check at each programming.
    CHECK_VECTORS = TileRead.CHECK_VECTORS
    #: Largest accepted column-current error at the check, fraction of the column's full scale.
    TOLERANCE = TileRead.TOLERANCE
    #: Passes at most, and the stopping update of the cell voltages (fraction of v_read).
    max_iter = 60
    rel_update = 3e-3
    measured_error = None
    iterations = 0
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
        super().program(g)
        reader = self.reader()
        # the kernel's inputs, for a look at one row of the read
        self.prefactor64, self.v0, self.gap = reader.prefactor, reader.v0, reader.gap
        self.p_dev, self.p_mos, self.lam_max = reader.p_dev, reader.p_mos, reader.lam_max
        self.v_gate = float(self.config.v_gate)
        reader.CHECK_VECTORS = self.CHECK_VECTORS
        v = reader.check_vectors()
        self.measured_error = self._sync(reader).check(v, reference=self.exact_currents(v))
        self._checked = (g.detach().clone(), settings)
        self._warn_if_off()

    def _sync(self, reader):
        reader.max_iter, reader.rel_update = self.max_iter, self.rel_update
        return reader

    def _warn_if_off(self):
        if not self.measured_error <= self.TOLERANCE:
            warnings.warn(f"{self.name} circuit model is {100 * self.measured_error:.3g} % of a column's full scale "
                          f"off the exact solver on random inputs (tolerance {100 * self.TOLERANCE:.3g} %); use "
                          f"HardwareConfig(exact=True) for this tile", RuntimeWarning, stacklevel=3)

    def currents(self, v):
        reader = self._sync(self.reader())
        try:
            i_col = reader.read(_numpy(v))
        except FloatingPointError as err:
            raise FloatingPointError(f"{self.name}: non-finite column currents for finite row voltages; use "
                                     f"HardwareConfig(exact=True) for this tile") from err
        self.iterations = reader.iterations
        return self._torch(i_col, v)


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
    lo, hi = params.g_range(v_read)
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

    def drive(self, x: torch.Tensor, peak: torch.Tensor | None = None, overwrite: bool = False):
        """Input scale (B, 1) and the reads [(row voltages (B, rows), weight)] for ``x``.

        The scale is each input's largest magnitude (abs-max noise management); it is 0 for an
        all-zero input, whose output is then 0, output noise included, as in aihwkit (a
        convolution's zero patches, ReLU's zero vectors: no read takes place).  ``peak``: that
        largest magnitude (B, 1) when the caller has it already (a convolution takes it from
        its input image, without the patches); ``overwrite``: ``x`` may be overwritten by the
        amplitude DAC's voltages (a patch buffer of the caller's own: one pass less)."""
        cfg = self.config
        if peak is None:
            low, high = torch.aminmax(x, dim=1, keepdim=True)  # |x| max in one pass, no |x| copy
            peak = torch.maximum(high, -low)
        x_scale = torch.where(peak > 0, peak, 1.0)
        if cfg.inputs == "amplitude":
            if cfg.dac_bits is None:
                factor = cfg.v_read / x_scale
                return peak, [(x.mul_(factor) if overwrite else x * factor, 1.0)]
            steps = 2 ** (cfg.dac_bits - 1) - 1 if cfg.dac_bits > 1 else 1
            codes = x.mul_(steps / x_scale) if overwrite else x * (steps / x_scale)
            return peak, [(codes.round_().mul_(cfg.v_read / steps), 1.0)]
        levels = 2 ** cfg.dac_bits - 1
        xn = x / x_scale
        code = torch.round(xn.abs() * levels).to(torch.int64)
        sign = torch.sign(xn)
        return peak, [(cfg.v_read * sign * ((code >> k) & 1).to(x.dtype), 2.0 ** k / levels)
                     for k in range(cfg.dac_bits)]

    def adc(self, i_diff: torch.Tensor, full_scale):
        """Quantised, clipped differential currents and a (B,) mask of clipped reads."""
        out, clipped = self.adc_(i_diff.clone(), full_scale)
        return out, torch.zeros(out.shape[0], dtype=torch.bool, device=out.device) if clipped is None else clipped

    def adc_(self, i_diff: torch.Tensor, full_scale):
        """:meth:`adc` on ``i_diff``'s own memory: it is quantised in place and returned, or a
        clipped copy when a current exceeds the full scale; the mask is None when no read
        clips (found from the largest |current| alone)."""
        bits = self.config.adc_bits
        if bits is not None:
            step = uniform(2.0 * full_scale / (2 ** bits - 2) if bits > 1 else full_scale)
            i_diff.div_(step).round_().mul_(step)
        fs = torch.as_tensor(full_scale, dtype=i_diff.dtype, device=i_diff.device)
        if not i_diff.numel():
            return i_diff, None
        low, high = torch.aminmax(i_diff.detach())
        if max(float(high), -float(low)) <= float(fs.min()):  # nothing to clip: no pass over rows
            return i_diff, None
        limit = uniform(fs * (1 + 1e-12))
        clipped = (i_diff.abs() > limit).any(dim=1)
        fs = uniform(fs)
        return torch.clamp(i_diff, -fs, fs), clipped


def uniform(value):
    """A per-output tensor whose entries are all equal as that one Python float (the same
    products and quotients on torch's faster scalar path); any other value unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() and value.ndim <= 1:
        first = value.reshape(-1)[0]
        if bool((value == first).all()):
            return float(first)
    return value


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
        and output noise (a new tensor; the noise is added in place)."""
        i_col = self.circuit.currents(v)
        i_diff = differential(i_col)
        sigma_read = self.read_sigma
        if sigma_read > 0:
            var = (v * v) @ (self.g * self.g)
            i_diff.add_(sigma_read * torch.sqrt(var[:, 0::2] + var[:, 1::2]) * self._normal(i_diff))
        if isinstance(self.noise_sigma, torch.Tensor) or self.noise_sigma > 0:
            i_diff.add_(self._normal(i_diff).mul_(uniform(self.noise_sigma)))
        return i_diff

    #: Relative read noise of a cell current (set from the noise model when programmed).
    read_sigma = 0.0

    def _normal(self, like):
        return torch.randn(like.shape, generator=self.read_generator, dtype=like.dtype, device=like.device)

    def forward(self, x: torch.Tensor, drive=None, out=None) -> torch.Tensor:
        """Digital partial output (B, outputs) for this tile's input slice ``x`` (B, rows);
        ``drive``: ``self.periphery.drive(x)`` when the caller has it already (the tiles on
        the same rows of a layer share one); ``out``: a tensor (B, outputs) to write the
        output into (the layer's own output; not with autograd recording), returned."""
        cfg = self.config
        x_scale, reads = self.periphery.drive(x) if drive is None else drive
        total = torch.zeros((x.shape[0], self.scale.numel()), dtype=x.dtype, device=x.device) if len(reads) > 1 \
            else None
        for v, weight in reads:
            i_diff = self.read(v)
            if cfg.adc_bits is None and not cfg.bound_management:  # an ideal ADC: nothing to do
                digital = i_diff
            else:
                digital, clipped = self.periphery.adc_(i_diff, self.adc_full_scale)
                if cfg.bound_management and clipped is not None and bool(clipped.any()):
                    digital.mul_(self._bound_managed(v, digital, clipped)[:, None])
            total = total.add_(digital.mul_(weight)) if len(reads) > 1 else digital
        scale = uniform(self.scale / cfg.v_read)
        if torch.is_grad_enabled() and x_scale.requires_grad:  # autograd keeps the factors
            return total * x_scale * scale
        return total.mul_(x_scale).mul_(scale) if out is None else torch.mul(total.mul_(x_scale), scale, out=out)

    def _bound_managed(self, v, out, clipped):
        """aihwkit's iterative bound management: each clipped read of ``v`` is repeated with
        its inputs halved, up to 10 times, its ADC output written into ``out``; returns the
        (B,) factors the outputs are to be multiplied by."""
        factor = torch.ones(v.shape[0], dtype=out.dtype, device=out.device)
        for _ in range(10):
            if not bool(clipped.any()):
                break
            idx = torch.nonzero(clipped).flatten()
            factor[idx] *= 2.0
            retry, again = self.periphery.adc_(self.read(v[idx] / factor[idx, None]), self.adc_full_scale)
            out[idx] = retry
            clipped = torch.zeros_like(clipped)
            if again is not None:
                clipped[idx] = again
        return factor

    def extra_repr(self) -> str:
        return f"rows={self.rows.start}:{self.rows.stop}, outputs={self.cols.start}:{self.cols.stop}, " \
               f"circuit={self.circuit.name}"
