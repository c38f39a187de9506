"""Compensation at network level: an :class:`~memsim.nn.AnalogNetwork` view with digital hooks,
and IR-drop compensation of every tile.

:class:`CompensatedNetwork` is an ``AnalogNetwork`` on the *same programmed tiles* (it shares
them, as ``recalibrate_bn`` does) with three digital hooks that the strategies fill in:

- ``tile_gain[i] = (gain, offset)``: per-column affine correction of tile ``i``'s output
  (IR-drop column correction, per-column or per-tile drift compensation);
- ``layer_extra[index](x) -> (B, outputs)``: an additive term on Linear layer ``index``
  computed digitally from its input (VeRA+);
- ``mlp``: the digital layers (BatchNorm statistics after re-calibration).

IR drop (ohmic cells, wire resistance r per segment): the column currents of a tile are
linear in the row voltages, ``i = M(G) v``, with M the solver's effective matrix.
:class:`NetworkPreDistortion` maps the weights onto a reduced conductance range (headroom)
and iterates ``delta <- delta_target * delta / D(G)`` on the programmed difference of every
differential pair, D the differential effective matrix (IR drop included), so that
``D(G) = delta_target`` for *every* input (not only a reference vector), then quantises onto
the available levels.  :class:`NetworkColumnCorrection` fits a gain and offset per output
column from reference inputs (training data) against the ideal tile outputs.
"""
from __future__ import annotations

import numpy as np

from .ir_drop import ColumnCorrection, quantize_columns


def _analog_network_class():
    from ..nn.inference import AnalogNetwork

    return AnalogNetwork


def _make_compensated_class():
    AnalogNetwork = _analog_network_class()

    class CompensatedNetwork(AnalogNetwork):
        """An AnalogNetwork sharing ``net``'s programmed tiles, with digital compensation hooks."""

        def __init__(self, net, mlp=None):
            super().__init__(net.mlp if mlp is None else mlp, net.config, seed=net.seed,
                             _share=(net.layers, net.tiles, net.t_seconds, net.model))
            self.base = net
            self.tile_gain = {}
            self.layer_extra = {}

        @property
        def t_seconds(self):
            return self.base.t_seconds

        @t_seconds.setter
        def t_seconds(self, value):  # set by AnalogNetwork.__init__ through _share
            pass

        def set_time(self, t_seconds):
            self.base.set_time(t_seconds)
            return self

        def _tile_output(self, tile, x, pool=None, progress=None, compensate=True):
            out = super()._tile_output(tile, x, pool, progress, compensate)
            if compensate:
                correction = self.tile_gain.get(id(tile))
                if correction is not None:
                    gain, offset = correction
                    out = out * gain + offset
            return out

        def _linear(self, index, x, pool, progress, tile_bar=None):
            out = super()._linear(index, x, pool, progress, tile_bar)
            extra = self.layer_extra.get(index)
            return out if extra is None else out + extra(x)

    return CompensatedNetwork


_CLASS = None


def compensated(net, mlp=None):
    """A :class:`CompensatedNetwork` view of ``net`` (same tiles; no hook set yet)."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _make_compensated_class()
    if isinstance(net, _CLASS):
        net = net.base
    return _CLASS(net, mlp)


def tile_inputs(net, x):
    """Float-network input slice of every tile for inputs ``x``: list aligned with ``net.tiles``."""
    activations = net._float_layer_inputs(np.asarray(x, dtype=float))
    return [activations[tile.layer][:, tile.map.rows] for tile in net.tiles]


# ---------------------------------------------------------------------------------------------
# IR drop
# ---------------------------------------------------------------------------------------------
def headroom_conductances(levels, g_max_target: float, name: str = "headroom"):
    """A :class:`~memsim.nn.mapping.Conductances` of the ``levels`` (S) up to ``g_max_target``:
    map the weights onto it, pre-distort onto all ``levels``."""
    from ..nn.mapping import Conductances

    levels = np.asarray(levels, dtype=float)
    kept = levels[levels <= g_max_target * (1 + 1e-9)]
    if kept.size < 2:
        raise ValueError(f"g_max_target {g_max_target!r} S keeps fewer than two levels of {levels.min():g}.."
                         f"{levels.max():g} S")
    return Conductances(name, 0.0, 1.0, levels=tuple(kept), source=f"levels <= {g_max_target:g} S (headroom)")


def _differential(g):
    return g[:, 0::2] - g[:, 1::2]


def _pair_conductances(delta, g_floor, g_top):
    g = np.full((delta.shape[0], 2 * delta.shape[1]), g_floor)
    g[:, 0::2] += np.clip(delta, 0.0, None)
    g[:, 1::2] += np.clip(-delta, 0.0, None)
    return np.clip(g, g_floor, g_top)


class NetworkPreDistortion:
    """Solver-driven pre-distortion of every tile of an ohmic network with wire resistance.

    Parameters
    ----------
    levels : array
        The conductances (S) the cells can be programmed to (e.g. rram64's 64 levels).
    iterations : int
        Effective-matrix solves per tile (each ~1-5 s for 256 x 256 on one core).
    g_max_target : float
        Top of the reduced range the weights are mapped onto (S); the headroom above it is
        what the pre-distortion raises attenuated cells into.  Build the network with
        ``HardwareConfig(conductances=headroom_conductances(levels, g_max_target))``.

    Nothing is stored digitally (``storage_bytes = 0``): the tiles are programmed differently.
    ``programmed`` holds the conductances per tile after :meth:`fit`; ``history`` the relative
    RMS error of the differential effective matrix per iteration and tile.
    """

    name = "ir-predistortion"
    storage_bytes = 0

    def __init__(self, levels, iterations: int = 6, g_max_target: float = 15e-6):
        self.levels = np.asarray(levels, dtype=float)
        self.iterations = int(iterations)
        self.g_max_target = float(g_max_target)
        self.programmed = []
        self.history = []

    def fit(self, net, reference_x=None, progress=None) -> "NetworkPreDistortion":
        """Iterate the solver on every tile of ``net`` (ohmic cells, ``r_wire > 0``)."""
        from ..array import Crossbar
        from ..solver import effective_matrix

        cfg = net.config
        if cfg.cells != "ohmic" or cfg.r_wire <= 0:
            raise ValueError("NetworkPreDistortion needs ohmic cells and r_wire > 0 (the effective matrix is exact there)")
        weights = None if reference_x is None else tile_inputs(net, reference_x)
        g_floor, g_top = self.levels[0], self.levels[-1]
        self.programmed, self.history = [], []
        for k, tile in enumerate(net.tiles):
            target = _differential(tile.map.g_target)
            delta = target.copy()
            best, best_error, errors = None, np.inf, []
            for _ in range(self.iterations):
                g = _pair_conductances(delta, g_floor, g_top)
                m = effective_matrix(Crossbar.ohmic(g, cfg.r_wire, cfg.r_wire))
                d = _differential(m.T)
                error = float(np.sqrt(np.mean((d - target) ** 2)) / max(np.max(np.abs(target)), 1e-30))
                errors.append(error)
                if error < best_error:
                    best, best_error = g, error
                programmed = _differential(g)
                ok = np.abs(programmed) > 1e-12
                attenuation = np.clip(np.where(ok, d / np.where(ok, programmed, 1.0), 1.0), 0.05, 2.0)
                delta = target / attenuation
            row_weight = None
            if weights is not None:
                row_weight = np.abs(weights[k]).mean(axis=0) + 1e-3
            self.programmed.append(quantize_columns(best, self.levels, row_weight))
            self.history.append(errors)
            if progress is not None:
                progress.update(1)
        return self

    def apply(self, net):
        """Program ``net``'s tiles with the pre-distorted conductances (in place); returns net."""
        from ..nn.noise import ProgrammedCells

        if len(self.programmed) != len(net.tiles):
            raise ValueError(f"this pre-distortion has {len(self.programmed)} tiles, the network {len(net.tiles)}")
        rng = np.random.default_rng([net.seed, 7])
        for tile, g in zip(net.tiles, self.programmed):
            if g.shape != tile.map.g_target.shape:
                raise ValueError(f"pre-distorted tile shape {g.shape} != network tile {tile.map.g_target.shape}")
            cells = net.model.program(g, rng)
            tile.cells = ProgrammedCells(tile.map.g_target, cells.g_prog, cells.params)
        t = net.t_seconds
        net.set_time(0.0 if t is None else t)
        return net

    def arrays(self) -> dict:
        out = {"levels": self.levels}
        for k, g in enumerate(self.programmed):
            index = np.abs(g[..., None] - self.levels).argmin(axis=-1)
            out[f"tile{k}"] = index.astype(np.uint8 if self.levels.size <= 256 else np.uint16)
        return out

    @classmethod
    def from_arrays(cls, arrays, meta):
        pre = cls(arrays["levels"], meta.get("iterations", 6), meta.get("g_max_target", 15e-6))
        count = sum(1 for key in arrays if key.startswith("tile"))
        pre.programmed = [pre.levels[arrays[f"tile{k}"].astype(np.int64)] for k in range(count)]
        return pre

    def meta(self) -> dict:
        return {"iterations": self.iterations, "g_max_target": self.g_max_target}


class NetworkColumnCorrection:
    """Per-column digital gain and offset of every tile output, fitted from reference inputs
    (training data) against the ideal tile (its target conductances, ideal wires).
    Storage: 2 float32 per tile output column."""

    name = "ir-column"

    def __init__(self):
        self.corrections = []

    def fit(self, net, reference_x) -> "NetworkColumnCorrection":
        inputs = tile_inputs(net, reference_x)
        self.corrections = []
        for tile, x in zip(net.tiles, inputs):
            measured = net._tile_output(tile, x, compensate=True) if not hasattr(net, "base") else \
                net.base._tile_output(tile, x)
            ideal = x @ tile.map.weights()
            self.corrections.append(ColumnCorrection().fit(measured, ideal))
        return self

    def apply(self, view):
        if len(self.corrections) != len(view.tiles):
            raise ValueError(f"this correction has {len(self.corrections)} tiles, the network {len(view.tiles)}")
        for tile, corr in zip(view.tiles, self.corrections):
            old = view.tile_gain.get(id(tile))
            gain, offset = corr.gain.astype(float), corr.offset.astype(float)
            if old is not None:  # compose: corr(old(y))
                gain, offset = old[0] * gain, old[1] * gain + offset
            view.tile_gain[id(tile)] = (gain, offset)
        return view

    @property
    def storage_bytes(self) -> int:
        return int(sum(c.storage_bytes for c in self.corrections))

    def arrays(self) -> dict:
        out = {}
        for k, c in enumerate(self.corrections):
            out[f"gain{k}"], out[f"offset{k}"] = c.gain, c.offset
        return out

    @classmethod
    def from_arrays(cls, arrays, meta):
        corr = cls()
        count = sum(1 for key in arrays if key.startswith("gain"))
        corr.corrections = [ColumnCorrection(arrays[f"gain{k}"], arrays[f"offset{k}"]) for k in range(count)]
        return corr

    def meta(self) -> dict:
        return {}
