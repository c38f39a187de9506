"""Weights onto crossbar tiles: differential conductance pairs, per-column digital scale.

A Linear layer's weight matrix ``w`` (inputs, outputs) is cut into tiles of T x T cells.
Rows are inputs; every output uses two neighbouring columns, ``G+`` (column 2j) and ``G-``
(column 2j + 1), so a tile holds T inputs x T/2 outputs and the output current is the
difference of the two column currents.  The weight is

    w[i, j] = scale[j] * (G+[i, j] - G-[i, j])

with one digital scale per tile column (``scale="column"``, the default) or per tile
(``scale="tile"``, as aihwkit's single-pair converter does).  A positive weight programs
``G+`` to a level above the lowest and leaves ``G-`` at the lowest level (and the reverse
for a negative weight), so the representable weights are ``scale * (L_k - L_0)`` for the
levels ``L`` of the device, or a continuum for a continuous conductance range.  The scale
maps the largest |w| of the column (tile) onto the largest difference ``L_max - L_0``, so
un-mapping returns every weight within half a level spacing (times the scale).

Partially filled tiles (the last rows / columns of a layer) use the block nearest the row
drivers and the sense amplifiers; the unused cells are left unformed (open), so the circuit
is exactly the smaller crossbar of the used block, which is what the solver is given.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SCALES = ("column", "tile")


@dataclass(frozen=True)
class Conductances:
    """The programmable conductances of one cell: discrete ``levels`` or a continuous range.

    ``levels``: strictly increasing conductances (S) at the read voltage, or None for a
    continuous range [``g_min``, ``g_max``] (S).
    """

    name: str
    g_min: float
    g_max: float
    levels: tuple | None = None
    source: str = ""

    def __post_init__(self):
        if self.levels is not None:
            levels = np.asarray(self.levels, dtype=float)
            if levels.ndim != 1 or levels.size < 2 or np.any(np.diff(levels) <= 0) or levels[0] < 0:
                raise ValueError("levels must be at least two strictly increasing conductances >= 0 S")
            object.__setattr__(self, "levels", tuple(float(v) for v in levels))
            object.__setattr__(self, "g_min", float(levels[0]))
            object.__setattr__(self, "g_max", float(levels[-1]))
        if not (0 <= self.g_min < self.g_max) or not np.isfinite(self.g_max):
            raise ValueError(f"need 0 <= g_min < g_max (S), got {self.g_min!r}, {self.g_max!r}")

    @property
    def span(self) -> float:
        """Largest conductance difference of a pair, S."""
        return self.g_max - self.g_min

    @property
    def step(self) -> float:
        """Largest spacing between neighbouring levels (0 for a continuous range), S."""
        return 0.0 if self.levels is None else float(np.max(np.diff(self.levels)))

    def quantise_difference(self, delta):
        """Nearest representable |G+ - G-| (S) to ``delta`` >= 0 (S)."""
        delta = np.clip(delta, 0.0, self.span)
        if self.levels is None:
            return delta
        diffs = np.asarray(self.levels) - self.g_min
        index = np.searchsorted(diffs, delta).clip(1, diffs.size - 1)
        lower_closer = (delta - diffs[index - 1]) <= (diffs[index] - delta)
        return np.where(lower_closer, diffs[index - 1], diffs[index])


def conductances(name: str) -> Conductances:
    """Named conductance sets: ``rram8``, ``rram64`` (memsim.devices presets, 5-40 uS at
    0.2 V), ``analog`` (continuous 5-40 uS) and ``pcm`` (continuous 0-25 uS, the range of
    aihwkit's PCMLikeNoiseModel with its default g_max = 25 uS and single-pair converter)."""
    if name in ("rram8", "rram64"):
        from ..devices import preset

        p = preset(name)
        return Conductances(name, 0.0, 1.0, levels=p.levels, source=p.source)
    if name == "analog":
        return Conductances(name, 5e-6, 40e-6, source="continuous 5-40 uS (the rram presets' range)")
    if name == "pcm":
        return Conductances(name, 0.0, 25e-6,
                            source="aihwkit PCMLikeNoiseModel default: g_max = 25 uS, g_min = 0")
    raise ValueError(f"unknown conductance set {name!r}; choose one of rram8, rram64, analog, pcm")


@dataclass(frozen=True, eq=False)
class TileMap:
    """One tile: rows ``rows`` (input slice) x outputs ``cols`` (output slice) of the layer.

    ``g_target``: (used rows, 2 x used outputs) target conductances, S, columns interleaved
    (G+ of output j at 2j, G- at 2j + 1).  ``scale``: (used outputs,) weight per siemens.
    """

    rows: slice
    cols: slice
    g_target: np.ndarray
    scale: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.g_target.shape

    def weights(self, g=None) -> np.ndarray:
        """Un-map: weights (used rows, used outputs) from conductances ``g`` (default: targets)."""
        g = self.g_target if g is None else g
        return (g[:, 0::2] - g[:, 1::2]) * self.scale


@dataclass(frozen=True, eq=False)
class MappedLayer:
    """A weight matrix cut into tiles; ``tiles[(row_block, col_block)]``."""

    n_in: int
    n_out: int
    tile: int
    cond: Conductances
    tiles: dict = field(repr=False)

    @property
    def row_blocks(self) -> int:
        return -(-self.n_in // self.tile)

    @property
    def col_blocks(self) -> int:
        return -(-self.n_out // (self.tile // 2))

    def weights(self) -> np.ndarray:
        """Un-mapped weight matrix (n_in, n_out) from the target conductances."""
        w = np.zeros((self.n_in, self.n_out))
        for tile in self.tiles.values():
            w[tile.rows, tile.cols] = tile.weights()
        return w


def check_tile(tile) -> int:
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 2 or tile % 2:
        raise ValueError(f"tile must be an even number of cells >= 2 (T x T tiles), got {tile!r}")
    return int(tile)


def map_weights(w, tile: int = 128, cond: Conductances | str = "rram8", scale: str = "column"
                ) -> MappedLayer:
    """Map ``w`` (inputs, outputs) onto T x T tiles of differential pairs.

    Parameters
    ----------
    w : array (inputs, outputs)
        Weights of a Linear layer (``y = x @ w``).
    tile : int
        T, cells per tile side (even): T inputs x T/2 outputs per tile.
    cond : Conductances or name
        Programmable conductances (levels or a continuous range), see :func:`conductances`.
    scale : "column" or "tile"
        One digital scale per tile column (default) or one per tile.

    Returns
    -------
    MappedLayer
        Targets within the conductance set; ``weights()`` un-maps them, within half a level
        spacing times the scale of every weight.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.size == 0 or not np.all(np.isfinite(w)):
        raise ValueError(f"w must be a finite 2-D (inputs, outputs) array, got shape {w.shape}")
    tile = check_tile(tile)
    cond = conductances(cond) if isinstance(cond, str) else cond
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    n_in, n_out = w.shape
    per_tile_out = tile // 2
    tiles = {}
    for rb, r0 in enumerate(range(0, n_in, tile)):
        rows = slice(r0, min(r0 + tile, n_in))
        for cb, c0 in enumerate(range(0, n_out, per_tile_out)):
            cols = slice(c0, min(c0 + per_tile_out, n_out))
            block = w[rows, cols]
            w_max = np.abs(block).max(axis=0) if scale == "column" else np.full(block.shape[1], np.abs(block).max())
            s = np.where(w_max > 0, w_max / cond.span, 1.0)
            delta = cond.quantise_difference(np.abs(block) / s)
            g = np.full((block.shape[0], 2 * block.shape[1]), cond.g_min)
            g[:, 0::2] += np.where(block > 0, delta, 0.0)
            g[:, 1::2] += np.where(block < 0, delta, 0.0)
            g.setflags(write=False)
            s.setflags(write=False)
            tiles[(rb, cb)] = TileMap(rows, cols, g, s)
    return MappedLayer(n_in, n_out, tile, cond, tiles)
