"""IR-drop compensation of every tile of an :class:`~memsim.nn.AnalogModel` (ohmic cells,
wire resistance r per segment).

The column currents of a tile are linear in the row voltages, ``i = M(G) v``, with M the
solver's effective matrix.  :class:`NetworkPreDistortion` maps the weights onto a reduced
conductance range (headroom) and iterates ``delta <- delta_target * delta / D(G)`` on the
programmed difference of every differential pair, D the differential effective matrix (IR
drop included), so that ``D(G) = delta_target`` for *every* input (not only a reference
vector), then quantises onto the available levels and re-programs the tiles.
:class:`NetworkColumnCorrection` fits a gain and offset per output column from reference
inputs (training data) against the ideal tile outputs and attaches them as tile hooks.
"""
from __future__ import annotations

import numpy as np
import torch

from ..circuit.array import Crossbar
from ..nn.mapping import Conductances
from ..nn.noise import ProgrammedCells
from ..nn.streams import generator
from ..solver import effective_matrix
from .base import Compensation, attach_gain
from .ir_drop import ColumnCorrection, quantize_columns


# ---------------------------------------------------------------------------------------------
# IR drop
# ---------------------------------------------------------------------------------------------
def headroom_conductances(levels, g_max_target: float, name: str = "headroom"):
    """A :class:`~memsim.nn.mapping.Conductances` of the ``levels`` (S) up to ``g_max_target``:
    map the weights onto it, pre-distort onto all ``levels``."""
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


class NetworkPreDistortion(Compensation):
    """Solver-driven pre-distortion of every tile of an ohmic network with wire resistance.

    Parameters
    ----------
    levels : array
        The conductances (S) the cells can be programmed to (e.g. rram64's 64 levels).
    iterations : int
        Effective-matrix solves per tile (docs/compensation.md says what one costs).
    g_max_target : float
        Top of the reduced range the weights are mapped onto (S); the headroom above it is
        what the pre-distortion raises attenuated cells into.  Build the network with
        ``HardwareConfig(conductances=headroom_conductances(levels, g_max_target))``.

    Notes
    -----
    Nothing is stored digitally (``storage_bytes = 0``): the tiles are programmed differently
    (``attach`` re-programs them; ``detach`` leaves them so: program the model again to undo).
    ``programmed`` holds the conductances per tile after :meth:`fit`; ``history`` the relative
    RMS error of the differential effective matrix per iteration and tile.
    """

    name = "ir-predistortion"
    storage_bytes = 0

    def __init__(self, levels, iterations: int = 6, g_max_target: float = 15e-6):
        super().__init__()
        self.levels = np.asarray(levels, dtype=float)
        self.iterations = int(iterations)
        self.g_max_target = float(g_max_target)
        self.programmed = []
        self.history = []

    def fit(self, model, reference_x=None, progress=None) -> "NetworkPreDistortion":
        """Iterate the solver on every tile of ``model`` (ohmic cells, ``r_wire > 0``)."""
        cfg = model.config
        if cfg.cells != "ohmic" or cfg.r_wire <= 0:
            raise ValueError("NetworkPreDistortion needs ohmic cells and r_wire > 0 (the effective matrix is exact there)")
        weights = None if reference_x is None else [x.cpu().double().numpy() for x in model.tile_inputs(reference_x)]
        g_floor, g_top = self.levels[0], self.levels[-1]
        self.programmed, self.history = [], []
        for k, tile in enumerate(model.tiles()):
            target = _differential(tile.g_target.cpu().double().numpy())
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

    def attach(self, model) -> "NetworkPreDistortion":
        """Program ``model``'s tiles with the pre-distorted conductances (programming noise
        from the model's noise model, its own stream) and return to the model's time."""
        tiles = self._start(model, len(self.programmed), "this pre-distortion")
        gen = generator(model.device, model.seed, "pre-distortion")
        for tile, g in zip(tiles, self.programmed):
            if g.shape != tuple(tile.g_target.shape):
                raise ValueError(f"pre-distorted tile shape {g.shape} != model tile {tuple(tile.g_target.shape)}")
            cells = model.noise_model.program(torch.as_tensor(g, dtype=tile.g_target.dtype,
                                                              device=tile.g_target.device), gen)
            tile.cells = ProgrammedCells(tile.g_target, cells.g_prog, cells.params)
        t = model.t_seconds
        model.set_time(0.0 if t is None else t)
        return self

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


class NetworkColumnCorrection(Compensation):
    """Per-column digital gain and offset of every tile output, fitted from reference inputs
    (training data) against the ideal tile (its target conductances, ideal wires); attached
    as tile hooks after any attached before it.  Storage: 2 float32 per tile output column."""

    name = "ir-column"

    def __init__(self):
        super().__init__()
        self.corrections = []

    def fit(self, model, reference_x) -> "NetworkColumnCorrection":
        inputs = model.tile_inputs(reference_x)
        self.corrections = []
        with torch.no_grad():
            for tile, x in zip(model.tiles(), inputs):
                measured = tile.forward(x).cpu().double().numpy()
                ideal = (x @ tile.map.weights()).cpu().double().numpy()
                self.corrections.append(ColumnCorrection().fit(measured, ideal))
        return self

    def attach(self, model) -> "NetworkColumnCorrection":
        tiles = self._start(model, len(self.corrections), "this column correction")
        for tile, corr in zip(tiles, self.corrections):
            gain, offset = (torch.as_tensor(a.astype(np.float64), dtype=tile.g_target.dtype, device=tile.g_target.device)
                            for a in (corr.gain, corr.offset))
            self._hold(attach_gain(tile, gain, offset))
        return self

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
