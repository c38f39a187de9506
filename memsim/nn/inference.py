"""Network inference on crossbar tiles, every non-ideality switchable and seeded.

A :class:`HardwareConfig` says how a network is built (tile size, conductance levels, cell
kind, wires, DAC / ADC, noise model, drift compensation); :class:`AnalogNetwork` maps a
trained :class:`~memsim.nn.model.MLP` onto it, programs every tile once, and runs batches of
inputs through it at any time since programming::

    net = AnalogNetwork(mlp, HardwareConfig(tile=128, r_wire=2.5), seed=0,
                        calibration_x=data.x_train[:256])
    net.set_time(3600.0)                      # one hour of drift
    net.accuracy(data.x_test, data.y_test)

Data path of one Linear layer (``y = x @ w + b``; BatchNorm, ReLU and the bias stay digital):

1. every tile takes its slice of the input vector, divides it by its largest magnitude
   (a digital scale per vector and tile, "noise management" in aihwkit's terms) and
   quantises it in the DAC (``dac_bits``, signed); inputs drive the rows as read voltages,
   either as analog amplitudes ``v_read * x`` or bit-serially (one read per input bit,
   shifted and added digitally);
2. the tile's column currents come from the circuit: ohmic cells with ideal wires are a
   matrix product; with wire resistance, the solver's effective matrix M (IR drop included)
   is computed once per tile and conductance state and every batch is one product
   (:func:`memsim.solver.effective_matrix`); nonlinear cells (``device``, ``1t1r``) are
   solved vector by vector with :func:`memsim.solve` (damped Newton), spread over
   ``workers`` threads (the solver's kernels release the GIL); selector-less cells with
   ideal wires have the closed form ``sum_i I0 exp(-gap/g0) sinh(v_i/V0)``;
3. the differential current of each column pair gets read noise (per read, from the
   noise model) and output noise, goes through the ADC (``adc_bits``, full scale per tile
   calibrated on training data, or a bound in weight units as aihwkit's ``out_bound``), is
   multiplied by the column's digital scale, the input scale and the drift compensation
   factor, and the tiles' partial sums are added digitally.

Conductances follow the noise model from programming (t = 0) to the time set with
:meth:`AnalogNetwork.set_time`.  Global drift compensation (``compensation="global"``)
multiplies each tile's output by the ratio of its read-out of unit inputs right after
programming to the same read-out now (aihwkit's GlobalDriftCompensation); BatchNorm
re-calibration is :meth:`AnalogNetwork.recalibrate_bn`.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from . import noise as noise_models
from .mapping import Conductances, MappedLayer, check_tile, conductances, map_weights
from .model import MLP, BatchNorm, Linear

CELLS = ("ohmic", "device", "1t1r")
INPUTS = ("amplitude", "bit-serial")
COMPENSATIONS = ("none", "global")


def _check_bits(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 24:
        raise ValueError(f"{name} must be an integer number of bits in [1, 24] or None (ideal), got {value!r}")
    return int(value)


def _check_number(value, name, minimum=0.0, strict=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {relation} {minimum}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class HardwareConfig:
    """How a network is laid onto crossbars.  Every non-ideality defaults to off.

    Parameters
    ----------
    tile : int
        T: tiles of T x T cells (T inputs x T/2 differential outputs).
    conductances : str or Conductances
        Programmable conductances: ``rram8`` (8 levels 5-40 uS at 0.2 V), ``rram64``,
        ``analog`` (continuous 5-40 uS) or ``pcm`` (continuous 0-25 uS); see
        :func:`memsim.nn.mapping.conductances`.
    scale : "column" or "tile"
        Digital weight scale per tile column or per tile.
    cells : "ohmic", "device" or "1t1r"
        Linear cells; selector-less RRAM (the compact model's sinh read I-V, sneak paths
        through the wires); 1T1R (RRAM + NMOS, gates at ``v_gate``).
    r_wire : float
        Wire resistance per segment of rows and columns, ohm (0: ideal wires).
    v_read : float
        Read voltage of a full-scale input, V; the levels are defined at this voltage.
    v_gate : float
        1T1R gate voltage, V.
    inputs : "amplitude" or "bit-serial"
    dac_bits, adc_bits : int or None
        Converter resolutions (signed); None is an ideal converter.
    adc_range : "calibrated" or float
        ADC full scale: calibrated per tile on the calibration inputs (times
        ``adc_headroom``), or a bound in weight units (the tile output ``W x`` for inputs
        normalised to |x| <= 1; aihwkit's ``out_bound`` = 12).
    out_noise : float
        Gaussian output noise per tile output and read, weight units (aihwkit's
        ``out_noise``, default there 0.06).
    bound_management : bool
        When an output clips, repeat the read with the inputs halved (aihwkit's iterative
        bound management, at most 10 halvings).
    noise : str or model
        ``none``, ``rram``, ``pcm`` or a model object from :mod:`memsim.nn.noise`.
    compensation : "none" or "global"
        Global drift compensation per tile.
    verify_1t1r : bool
        Program 1T1R cells so that the whole cell (RRAM + transistor) reads the target at
        ``v_read`` (write-verify on the cell current); else the RRAM alone is set to it.
    tol : float
        Solver tolerance for nonlinear cells (relative node-voltage update).
    workers : int
        Threads for the nonlinear solves and effective matrices.
    """

    tile: int = 128
    conductances: object = "rram8"
    scale: str = "column"
    cells: str = "ohmic"
    r_wire: float = 0.0
    v_read: float = 0.2
    v_gate: float = 1.8
    inputs: str = "amplitude"
    dac_bits: int | None = None
    adc_bits: int | None = None
    adc_range: object = "calibrated"
    adc_headroom: float = 1.0
    out_noise: float = 0.0
    bound_management: bool = False
    noise: object = "none"
    compensation: str = "none"
    verify_1t1r: bool = True
    tol: float = 1e-6
    workers: int = 1

    def __post_init__(self):
        object.__setattr__(self, "tile", check_tile(self.tile))
        if isinstance(self.conductances, str):
            conductances(self.conductances)  # raises for an unknown name
        elif not isinstance(self.conductances, Conductances):
            raise ValueError("conductances must be a name or a memsim.nn.mapping.Conductances")
        if self.scale not in ("column", "tile"):
            raise ValueError(f"scale must be 'column' or 'tile', got {self.scale!r}")
        if self.cells not in CELLS:
            raise ValueError(f"cells must be one of {CELLS}, got {self.cells!r}")
        _check_number(self.r_wire, "r_wire (ohm)")
        _check_number(self.v_read, "v_read (V)", strict=True)
        _check_number(self.v_gate, "v_gate (V)")
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {self.inputs!r}")
        _check_bits(self.dac_bits, "dac_bits")
        _check_bits(self.adc_bits, "adc_bits")
        if self.inputs == "bit-serial" and self.dac_bits is None:
            raise ValueError("bit-serial inputs need dac_bits (the number of input bits)")
        if not (self.adc_range == "calibrated" or (not isinstance(self.adc_range, (str, bool))
                                                   and _check_number(self.adc_range, "adc_range", strict=True))):
            raise ValueError(f"adc_range must be 'calibrated' or a bound > 0 in weight units, got {self.adc_range!r}")
        _check_number(self.adc_headroom, "adc_headroom", strict=True)
        _check_number(self.out_noise, "out_noise (weight units)")
        if isinstance(self.noise, str):
            if self.noise not in noise_models.MODELS:
                raise ValueError(f"noise must be one of {noise_models.MODELS} or a model object, got {self.noise!r}")
        elif not all(hasattr(self.noise, name) for name in ("program", "at_time", "read_sigma")):
            raise ValueError("noise must be a name or an object with program, at_time and read_sigma")
        if self.compensation not in COMPENSATIONS:
            raise ValueError(f"compensation must be one of {COMPENSATIONS}, got {self.compensation!r}")
        _check_number(self.tol, "tol", strict=True)
        if isinstance(self.workers, bool) or not isinstance(self.workers, (int, np.integer)) or self.workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        if self.cells != "ohmic" and self.cond.g_min <= 0:
            raise ValueError(f"{self.cells} cells need conductances > 0 S (the RRAM model has no open "
                             f"state); {self.cond.name!r} reaches 0 S, use rram8, rram64 or analog")

    @property
    def cond(self) -> Conductances:
        return conductances(self.conductances) if isinstance(self.conductances, str) else self.conductances

    def noise_model(self):
        if not isinstance(self.noise, str):
            return self.noise
        if self.noise == "rram":
            from ..devices import preset

            options = {}
            if self.cond.name in ("rram8", "rram64"):
                options["variability"] = preset(self.cond.name).variability
            return noise_models.model("rram", **options)
        if self.noise == "pcm":
            return noise_models.model("pcm", g_max=self.cond.g_max)
        return noise_models.model(self.noise)

    def replace(self, **changes) -> "HardwareConfig":
        return replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# one tile
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Tile:
    layer: int
    key: tuple
    map: object
    cells: object = None         # ProgrammedCells
    g: np.ndarray | None = None  # conductances now, S (used rows, 2 x used outputs)
    engine: object = None        # ("matrix", M) or ("solve", Crossbar) or ("sinh", A)
    adc_fs: np.ndarray | float = math.inf   # ADC full scale, A (scalar or per output)
    noise_sigma: np.ndarray | float = 0.0  # output noise, A (per output)
    ref_readout: float | None = None
    alpha: float = 1.0


def _gap(g, v_read, params):
    from ..devices.rram import gap_for_conductance

    lo, hi = params.g_range(v_read)
    return gap_for_conductance(np.clip(g, lo * (1 + 1e-12), hi * (1 - 1e-12)), v_read, params)


def _verified_gap(g, v_read, v_gate, transistor, params):
    """Gaps that make the 1T1R cell (RRAM in series with the NMOS) carry g * v_read at v_read.

    The transistor's drain voltage follows from its own I-V (bisection, vectorised); the
    RRAM gap then has a closed form.  Targets the transistor cannot pass take the smallest gap.
    """
    from ..devices.transistor import drain_current

    current = np.asarray(g, dtype=float) * v_read
    lo = np.zeros_like(current)
    hi = np.full_like(current, v_read)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = drain_current(v_gate, mid, transistor) < current
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    v_rram = np.maximum(v_read - 0.5 * (lo + hi), 1e-12)
    gap = -params.g0 * np.log(current / (params.i0 * np.sinh(v_rram / params.v0)))
    return np.clip(gap, params.gap_min, params.gap_max)


class AnalogNetwork:
    """A trained MLP on programmed crossbar tiles (see the module docstring).

    Parameters
    ----------
    mlp : MLP
        The floating-point network; its Linear layers go onto tiles.
    config : HardwareConfig
    seed : int
        Seeds everything random: programming noise (one stream, in tile order), the drift
        and slow noise at each time (a stream per ``(seed, t)``, so ``set_time`` gives the
        same conductances whatever was run before), and the per-read noise (one stream per
        network, consumed in the order of the reads).
    calibration_x : array (n, features), optional
        Inputs for the ADC full-scale calibration (training data; required when
        ``adc_range="calibrated"`` and ``adc_bits`` is set).
    """

    def __init__(self, mlp: MLP, config: HardwareConfig = HardwareConfig(), *, seed: int = 0,
                 calibration_x=None, _share=None):
        if not isinstance(mlp, MLP):
            raise ValueError(f"mlp must be a memsim.nn.MLP, got {type(mlp).__name__}")
        if not isinstance(config, HardwareConfig):
            raise ValueError(f"config must be a HardwareConfig, got {type(config).__name__}")
        self.mlp = mlp
        self.config = config
        self.seed = int(seed)
        if _share is not None:  # a copy with other digital layers (BN re-calibration)
            self.layers, self.tiles, self.t_seconds, self.model = _share
            self._read_rng = np.random.default_rng([self.seed, 2, 1])
            return
        self.model = config.noise_model()
        cond = config.cond
        self.layers = {}
        self.tiles = []
        program_rng = np.random.default_rng([self.seed, 0])
        for index in mlp.linear_indices:
            mapped = map_weights(mlp.layers[index].w, config.tile, cond, config.scale)
            self.layers[index] = mapped
            for key in sorted(mapped.tiles):
                tile = _Tile(index, key, mapped.tiles[key])
                tile.cells = self.model.program(tile.map.g_target, program_rng)
                self.tiles.append(tile)
        self._read_rng = np.random.default_rng([self.seed, 2, 0])
        self.t_seconds = None
        self._calibrate_adc(calibration_x)
        self._set_conductances(0.0, initial=True)

    # -- state ------------------------------------------------------------------------------
    def _set_conductances(self, t_seconds, initial=False):
        key = int(np.float64(t_seconds).view(np.uint64))
        rng = np.random.default_rng([self.seed, 1, key])
        for tile in self.tiles:
            tile.g = self.model.at_time(tile.cells, t_seconds, rng)
            tile.engine = None
        self.t_seconds = float(t_seconds)
        if self.config.compensation == "global":
            if initial:
                for tile in self.tiles:  # the reference: right after programming
                    saved = tile.g
                    tile.g, tile.engine = tile.cells.g_prog, None
                    tile.ref_readout = self._readout(tile)
                    if saved is not tile.cells.g_prog:
                        tile.g, tile.engine = saved, None
            for tile in self.tiles:
                now = self._readout(tile)
                tile.alpha = tile.ref_readout / now if now > 0 else 1.0

    def set_time(self, t_seconds: float) -> "AnalogNetwork":
        """Let the cells drift to ``t_seconds`` after programming (the model's drift and
        slow noise are drawn for that time; programming is not repeated).  Returns self."""
        self._set_conductances(noise_models._check_time(t_seconds))
        return self

    def _readout(self, tile) -> float:
        """Mean |output| of the tile for a one-hot input on every row (drift compensation).

        The read-out goes through the tile's whole periphery (DAC, read and output noise,
        ADC), as aihwkit's GlobalDriftCompensation reads it through the analog forward pass:
        where the outputs are small against the output noise, the read-out is dominated by
        the noise and the compensation under-corrects, as on hardware.
        """
        rows = tile.g.shape[0]
        return float(np.mean(np.abs(self._tile_output(tile, np.eye(rows), compensate=False))))

    # -- the circuit ------------------------------------------------------------------------
    def _crossbar(self, tile):
        import memsim

        cfg = self.config
        r = cfg.r_wire
        if cfg.cells == "ohmic":
            return memsim.Crossbar.ohmic(tile.g, r_row=r, r_col=r)
        from ..devices.rram import DEFAULT_PARAMS

        if cfg.cells == "device":
            return memsim.Crossbar.device(_gap(tile.g, cfg.v_read, DEFAULT_PARAMS), r_row=r, r_col=r)
        from ..devices.transistor import MosfetParams

        transistor = MosfetParams()
        gap = (_verified_gap(tile.g, cfg.v_read, cfg.v_gate, transistor, DEFAULT_PARAMS) if cfg.verify_1t1r
               else _gap(tile.g, cfg.v_read, DEFAULT_PARAMS))
        return memsim.Crossbar.one_t_one_r(gap, v_gate=cfg.v_gate, transistor=transistor, r_row=r, r_col=r)

    def _engine(self, tile):
        if tile.engine is None:
            cfg = self.config
            if cfg.cells == "ohmic" and cfg.r_wire == 0:
                tile.engine = ("matrix", tile.g.T)
            elif cfg.cells == "ohmic":
                from ..solver import effective_matrix

                tile.engine = ("matrix", effective_matrix(self._crossbar(tile)))
            elif cfg.cells == "device" and cfg.r_wire == 0:
                from ..devices.rram import DEFAULT_PARAMS as p

                gap = _gap(tile.g, cfg.v_read, p)
                tile.engine = ("sinh", (p.i0 * np.exp(-gap / p.g0)).T, p.v0)
            else:
                tile.engine = ("solve", self._crossbar(tile))
        return tile.engine

    def _currents(self, tile, v, pool=None, progress=None):
        """Column currents (B, 2 x outputs), A, for row voltages ``v`` (B, rows)."""
        engine = self._engine(tile)
        if engine[0] == "matrix":
            return v @ engine[1].T
        if engine[0] == "sinh":
            return np.sinh(v / engine[2]) @ engine[1].T
        import memsim

        xb = engine[1]
        chunks = [v[i:i + 25] for i in range(0, len(v), 25)]

        def run(chunk):
            out = memsim.solve(xb, chunk, voltages=False, tol=self.config.tol).i_col
            if progress is not None:
                progress.update(len(chunk))
            return out

        if pool is None:
            return np.concatenate([run(c) for c in chunks]) if chunks else np.zeros((0, xb.cols))
        return np.concatenate(list(pool.map(run, chunks)))

    # -- ADC -------------------------------------------------------------------------------
    def _calibrate_adc(self, calibration_x):
        cfg = self.config
        for tile in self.tiles:
            scale = tile.map.scale
            if cfg.out_noise > 0:
                tile.noise_sigma = cfg.out_noise * cfg.v_read / scale
            if cfg.adc_bits is None and not cfg.bound_management:
                tile.adc_fs = math.inf
            elif cfg.adc_range != "calibrated":
                tile.adc_fs = float(cfg.adc_range) * cfg.v_read / scale
        if cfg.adc_range != "calibrated" or cfg.adc_bits is None:
            return
        if calibration_x is None:
            raise ValueError("adc_range='calibrated' needs calibration_x (training inputs) to set the "
                             "ADC full scale; or give adc_range as a bound in weight units")
        activations = self._float_layer_inputs(np.asarray(calibration_x, dtype=float))
        for tile in self.tiles:
            x = activations[tile.layer][:, tile.map.rows]
            planes = self._drive(x)[1]
            peak = 0.0
            for v, _ in planes:
                i_col = v @ tile.map.g_target  # the ideal tile
                peak = max(peak, float(np.max(np.abs(i_col[:, 0::2] - i_col[:, 1::2]), initial=0.0)))
            tile.adc_fs = cfg.adc_headroom * peak if peak > 0 else cfg.v_read * self.config.cond.span

    def _float_layer_inputs(self, x):
        inputs = {}
        for index, layer in enumerate(self.mlp.layers):
            if isinstance(layer, Linear):
                inputs[index] = x
            x = layer(x)
        return inputs

    # -- DAC --------------------------------------------------------------------------------
    def _drive(self, x):
        """Input scale (B, 1) and the row-voltage reads [(v (B, rows), weight)] for ``x``."""
        cfg = self.config
        x_scale = np.max(np.abs(x), axis=1, keepdims=True)
        x_scale = np.where(x_scale > 0, x_scale, 1.0)
        xn = x / x_scale
        if cfg.inputs == "amplitude":
            if cfg.dac_bits is not None:
                steps = 2 ** (cfg.dac_bits - 1) - 1 if cfg.dac_bits > 1 else 1
                xn = np.round(xn * steps) / steps
            return x_scale, [(cfg.v_read * xn, 1.0)]
        levels = 2 ** cfg.dac_bits - 1
        code = np.round(np.abs(xn) * levels).astype(np.int64)
        sign = np.sign(xn)
        return x_scale, [(cfg.v_read * sign * ((code >> k) & 1), 2.0 ** k / levels)
                         for k in range(cfg.dac_bits)]

    def _adc(self, i_diff, tile):
        cfg = self.config
        fs = tile.adc_fs
        if cfg.adc_bits is not None:
            step = 2.0 * fs / (2 ** cfg.adc_bits - 2) if cfg.adc_bits > 1 else fs
            i_diff = np.round(i_diff / step) * step
        clipped = np.any(np.abs(i_diff) > fs * (1 + 1e-12), axis=1)
        return np.clip(i_diff, -fs, fs), clipped

    # -- forward ----------------------------------------------------------------------------
    def _tile_output(self, tile, x, pool=None, progress=None, compensate=True):
        """Digital partial result of one tile (B, outputs) for its input slice ``x``."""
        cfg = self.config
        x_scale, reads = self._drive(x)
        total = np.zeros((len(x), tile.map.scale.size))
        for v, weight in reads:
            i_diff = self._read(tile, v, pool, progress)
            if cfg.bound_management:
                factor = np.ones(len(v))
                out, clipped = self._adc(i_diff, tile)
                for _ in range(10):
                    if not np.any(clipped):
                        break
                    idx = np.nonzero(clipped)[0]
                    factor[idx] *= 2.0
                    retry, again = self._adc(self._read(tile, v[idx] / factor[idx, None], pool, None), tile)
                    out[idx] = retry
                    clipped = np.zeros(len(v), bool)
                    clipped[idx] = again
                out = out * factor[:, None]
            else:
                out = self._adc(i_diff, tile)[0]
            total += weight * out
        return total * (tile.map.scale / cfg.v_read) * x_scale * (tile.alpha if compensate else 1.0)

    def _read(self, tile, v, pool, progress):
        """Differential currents (B, outputs), A, of one read, with read and output noise.

        Read noise is relative Gaussian noise on every cell current, drawn per read; its sum
        on a column has variance sigma^2 sum_i (v_i G_ij)^2, which is drawn directly (exact
        for linear cells and ideal wires, the ideal-wire estimate otherwise).
        """
        i_col = self._currents(tile, v, pool, progress)
        i_diff = i_col[:, 0::2] - i_col[:, 1::2]
        sigma_read = getattr(self.model, "read_sigma", 0.0)
        if sigma_read > 0:
            var = (v * v) @ (tile.g * tile.g)
            i_diff = i_diff + sigma_read * np.sqrt(var[:, 0::2] + var[:, 1::2]) * \
                self._read_rng.standard_normal(i_diff.shape)
        if np.any(np.asarray(tile.noise_sigma) > 0):
            i_diff = i_diff + tile.noise_sigma * self._read_rng.standard_normal(i_diff.shape)
        return i_diff

    def _linear(self, index, x, pool, progress, tile_bar=None):
        mapped = self.layers[index]
        out = np.zeros((len(x), mapped.n_out))
        for tile in self.tiles:
            if tile.layer == index:
                out[:, tile.map.cols] += self._tile_output(tile, x[:, tile.map.rows], pool, progress)
                if tile_bar is not None:
                    tile_bar.update(1)
        return out + self.mlp.layers[index].b

    def forward(self, x, *, progress: bool = False, bn_batch_stats: bool = False):
        """Logits (B, classes) for inputs ``x`` (B, features).

        ``bn_batch_stats``: normalise every BatchNorm with the statistics of this batch
        (re-calibration); the statistics are then in ``self.last_bn_stats``.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mlp.sizes[0]:
            raise ValueError(f"x must have shape (batch, {self.mlp.sizes[0]}), got {x.shape}")
        bar = None
        solves = self.config.cells != "ohmic" and not (self.config.cells == "device" and self.config.r_wire == 0)
        if progress:
            from ..progress import Progress

            reads = len(self._drive(x[:1, :1])[1])
            total = len(x) * len(self.tiles) * reads if solves else len(self.tiles)
            bar = Progress(total, "inference", enabled=True).__enter__()
        stats = {}
        pool = ThreadPoolExecutor(self.config.workers) if (solves and self.config.workers > 1) else None
        try:
            for index, layer in enumerate(self.mlp.layers):
                if isinstance(layer, Linear):
                    x = self._linear(index, x, pool, bar if solves else None, None if solves else bar)
                elif isinstance(layer, BatchNorm) and bn_batch_stats:
                    mean, var = x.mean(axis=0), x.var(axis=0)
                    stats[index] = (mean, var)
                    x = layer.with_stats(mean, var)(x)
                else:
                    x = layer(x)
        finally:
            if pool is not None:
                pool.shutdown()
            if bar is not None:
                bar.__exit__(None, None, None)
        self.last_bn_stats = stats
        return x

    def predict(self, x, **options) -> np.ndarray:
        return self.forward(x, **options).argmax(axis=1)

    def accuracy(self, x, y, **options) -> float:
        return float(np.mean(self.predict(x, **options) == np.asarray(y)))

    # -- re-calibration -----------------------------------------------------------------------
    def recalibrate_bn(self, x) -> "AnalogNetwork":
        """A network on the same programmed tiles whose BatchNorm running statistics are
        re-estimated from ``x`` (training inputs) through the hardware as it is now.

        This is the BN re-calibration of Joshi et al. (Nat. Commun. 11, 2473, 2020) used by
        aihwkit's drift studies; the compensation issue can reuse it as it is.
        """
        self.forward(x, bn_batch_stats=True)
        mlp = self.mlp
        for index, (mean, var) in self.last_bn_stats.items():
            mlp = mlp.replace_layer(index, mlp.layers[index].with_stats(mean, var))
        return AnalogNetwork(mlp, self.config, seed=self.seed,
                             _share=(self.layers, self.tiles, self.t_seconds, self.model))

    def weights(self, index: int) -> np.ndarray:
        """The effective weights of Linear layer ``index`` now: conductances un-mapped
        (ideal wires, linear cells), for inspection and tests."""
        mapped: MappedLayer = self.layers[index]
        w = np.zeros((mapped.n_in, mapped.n_out))
        for tile in self.tiles:
            if tile.layer == index:
                w[tile.map.rows, tile.map.cols] = tile.map.weights(tile.g)
        return w
