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

from dataclasses import dataclass

import numpy as np
import torch

from .. import units

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
    single_device: bool = False

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

    def quantise_difference(self, delta: torch.Tensor) -> torch.Tensor:
        """Nearest representable |G+ - G-| (S) to ``delta`` >= 0 (S), a tensor.

        The rounding passes gradients straight through (``delta`` plus a detached
        correction), so hardware-aware training can map through it.
        """
        delta = torch.clamp(delta, 0.0, self.span)
        if self.levels is None:
            return delta
        diffs = torch.as_tensor(self.levels, dtype=delta.dtype, device=delta.device) - self.g_min
        plain = delta.detach().contiguous()
        index = torch.searchsorted(diffs, plain).clamp(1, diffs.numel() - 1)
        lower, upper = diffs[index - 1], diffs[index]
        nearest = torch.where((plain - lower) <= (upper - plain), lower, upper)
        return delta + (nearest - plain)


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
    if name == "reram-cmo":
        return single_device()
    raise ValueError(f"unknown conductance set {name!r}; choose one of rram8, rram64, analog, pcm, reram-cmo")


def single_device(g_min: float = 9.0e-6, g_max: float = 88.199997e-6) -> Conductances:
    """One device per weight on the continuous range [``g_min``, ``g_max``] (S).

    Defaults: aihwkit's ``SingleDeviceConductanceConverter`` (9.0-88.2 uS), the range of its
    ``ReRamCMONoiseModel`` (CMO/HfOx ReRAM, Falcone et al., Adv. Funct. Mater. 2025).  A
    weight block is mapped affinely, its smallest weight onto ``g_min`` and its largest onto
    ``g_max`` (per tile with ``scale="tile"``, as aihwkit does, or per column); see
    :func:`map_block`.
    """
    return Conductances("reram-cmo", float(g_min), float(g_max), single_device=True,
                        source="single device per weight, aihwkit SingleDeviceConductanceConverter range "
                               f"{g_min * 1e6:g}-{g_max * 1e6:g} uS")


@dataclass(frozen=True, eq=False)
class TileMap:
    """One tile: rows ``rows`` (input slice) x outputs ``cols`` (output slice) of the layer.

    ``g_target``: (used rows, 2 x used outputs) target conductances, S, columns interleaved
    (G+ of output j at 2j, G- at 2j + 1).  ``scale``: (used outputs,) weight per siemens.
    """

    rows: slice
    cols: slice
    g_target: torch.Tensor
    scale: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.g_target.shape)

    def weights(self, g=None) -> torch.Tensor:
        """Un-map: weights (used rows, used outputs) from conductances ``g`` (default: targets)."""
        return differential(self.g_target if g is None else g) * self.scale


def differential(g: torch.Tensor) -> torch.Tensor:
    """G+ - G- of interleaved pair columns: (rows, 2 x outputs) -> (rows, outputs)."""
    return g[..., 0::2] - g[..., 1::2]


#: The largest tile side T accepted (T x T cells).
MAX_TILE = 8192


def check_tile(tile) -> int:
    try:
        size = units.integer(tile, "tile", 2, MAX_TILE)
    except ValueError:
        size = None
    if size is None or size % 2:
        raise ValueError(f"tile must be an even number of cells in [2, {MAX_TILE}] (T x T tiles), "
                         f"got {units.shown(tile)}")
    return size


def check_groups(n_in: int, n_out: int, groups) -> int:
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1 \
            or n_in % groups or n_out % groups:
        raise ValueError(f"groups must be an integer >= 1 dividing both matrix sides ({n_in} x {n_out}), "
                         f"got {groups!r}")
    return int(groups)


def tile_blocks(n_in: int, n_out: int, tile: int, groups: int = 1):
    """The (rows, cols) slices of the T x T tiles of an (n_in, n_out) matrix, row blocks first.

    ``groups`` > 1: the matrix is block diagonal (a grouped convolution, see
    :func:`crossbar_matrix`); only its ``groups`` diagonal blocks are tiled, group by group,
    so no tile holds a weight of two groups or a structural zero."""
    groups = check_groups(n_in, n_out, groups)
    rows_g, cols_g = n_in // groups, n_out // groups
    per_tile_out = tile // 2
    return [(slice(g * rows_g + r0, g * rows_g + min(r0 + tile, rows_g)),
             slice(g * cols_g + c0, g * cols_g + min(c0 + per_tile_out, cols_g)))
            for g in range(groups) for r0 in range(0, rows_g, tile) for c0 in range(0, cols_g, per_tile_out)]


def crossbar_matrix(weight: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """A torch weight tensor (outputs, inputs per group, *kernel) as a crossbar sees it:
    (inputs, outputs) with ``y = x @ matrix``, the inputs ordered as ``F.unfold`` orders a
    patch (channel, then kernel position).  With ``groups`` > 1 the matrix is block diagonal:
    group g's outputs read only group g's input channels.  Differentiable in ``weight``."""
    flat = weight.reshape(weight.shape[0], -1)
    if groups == 1:
        return flat.T
    per = weight.shape[0] // groups
    return torch.block_diag(*(flat[g * per:(g + 1) * per].T for g in range(groups)))


def crossbar_weight(matrix: torch.Tensor, shape, groups: int = 1) -> torch.Tensor:
    """The inverse of :func:`crossbar_matrix`: the weight tensor of ``shape`` held in the
    diagonal blocks of ``matrix`` (inputs, outputs)."""
    if groups == 1:
        return matrix.T.reshape(shape)
    rows, per = matrix.shape[0] // groups, shape[0] // groups
    return torch.cat([matrix[g * rows:(g + 1) * rows, g * per:(g + 1) * per].T for g in range(groups)]).reshape(shape)


def block_scale(block: torch.Tensor, cond: Conductances, scale: str = "column") -> torch.Tensor:
    """Digital scale (outputs,) of one weight block: its largest |w| per column (or per
    block) over the conductance span; taken from the detached block (a constant for autograd)."""
    magnitude = block.detach().abs()
    w_max = magnitude.amax(dim=0) if scale == "column" else magnitude.amax().expand(block.shape[1])
    return torch.where(w_max > 0, w_max / cond.span, torch.ones_like(w_max))


def map_block(block: torch.Tensor, cond: Conductances, scale: str = "column", s: torch.Tensor | None = None):
    """Target conductances (rows, 2 x outputs) and scale (outputs,) of one weight block.

    Differentiable in ``block`` at a given scale ``s`` (default :func:`block_scale`; level
    rounding passes gradients straight through), so training maps through it too.
    """
    if cond.single_device:
        return map_single(block, cond, scale, s)
    s = block_scale(block, cond, scale) if s is None else s
    delta = cond.quantise_difference(block.abs() / s)
    positive = block > 0
    g = torch.full((block.shape[0], 2 * block.shape[1]), cond.g_min, dtype=block.dtype, device=block.device)
    g = g + torch.stack((torch.where(positive, delta, 0.0 * delta), torch.where(block < 0, delta, 0.0 * delta)),
                        dim=2).reshape(g.shape)
    return g, s


def map_single(block: torch.Tensor, cond: Conductances, scale: str = "column", s: torch.Tensor | None = None):
    """Single-device mapping of one weight block: targets (rows, 2 x outputs) and scale (outputs,).

    The block's range [w_lo, w_hi] (per column, or per block with ``scale="tile"``) goes
    affinely onto [g_min, g_max]: ``G = g_min + (w - w_lo) / s`` with ``s = (w_hi - w_lo) /
    (g_max - g_min)`` (weight per siemens; aihwkit's SingleDeviceConductanceConverter).  The
    weight is ``s (G - G_0)`` with ``G_0 = g_min - w_lo / s`` the conductance of weight 0, so
    every output is a device column (even columns, 2j) against a fixed reference column
    (odd columns, 2j + 1) at ``G_0``: the offset a single-device array subtracts digitally or
    with a reference column.  The reference is no device (noise models leave it alone, see
    :class:`memsim.nn.noise.ReRamCMONoiseModel`); it need not lie within [g_min, g_max].
    Differentiable in ``block`` (the range is taken from the detached block).
    """
    plain = block.detach()
    if scale == "column":
        lo, hi = plain.amin(dim=0), plain.amax(dim=0)
    else:
        lo, hi = plain.amin().expand(block.shape[1]), plain.amax().expand(block.shape[1])
    if s is None:
        s = torch.where(hi > lo, (hi - lo) / cond.span, torch.ones_like(hi) / cond.span)
    g_dev = cond.g_min + (block - lo) / s
    g_ref = (cond.g_min - lo / s).expand(block.shape)
    return torch.stack((g_dev, g_ref), dim=2).reshape(block.shape[0], 2 * block.shape[1]), s


def map_weights(w, tile: int = 128, cond: Conductances | str = "rram8", scale: str = "column",
                groups: int = 1) -> list:
    """Map ``w`` (inputs, outputs) onto T x T tiles of differential pairs.

    Parameters
    ----------
    w : tensor or array (inputs, outputs)
        Weights of a layer as a crossbar sees them (``y = x @ w``).
    tile : int
        T, cells per tile side (even): T inputs x T/2 outputs per tile.
    cond : Conductances or name
        Programmable conductances (levels or a continuous range), see :func:`conductances`.
    scale : "column" or "tile"
        One digital scale per tile column (default) or one per tile.
    groups : int
        ``w`` is block diagonal with this many blocks (a grouped convolution,
        :func:`crossbar_matrix`): only the diagonal blocks are mapped (:func:`tile_blocks`).

    Returns
    -------
    list of TileMap
        Row blocks first; ``TileMap.weights()`` un-maps each within half a level spacing
        times its scale.
    """
    w = torch.as_tensor(w)
    if not torch.is_floating_point(w):
        w = w.double()
    if w.ndim != 2 or w.numel() == 0 or not bool(torch.isfinite(w).all()):
        raise ValueError(f"w must be a finite 2-D (inputs, outputs) array, got shape {tuple(w.shape)}")
    tile = check_tile(tile)
    cond = conductances(cond) if isinstance(cond, str) else cond
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    maps = []
    for rows, cols in tile_blocks(*w.shape, tile, groups):
        g, s = map_block(w[rows, cols], cond, scale)
        maps.append(TileMap(rows, cols, g, s))
    return maps


def unmap(maps, n_in: int, n_out: int, conductances_now=None) -> torch.Tensor:
    """The weight matrix (n_in, n_out) of ``maps`` (default: their targets; else one
    conductance tensor per map)."""
    first = maps[0].g_target
    w = torch.zeros((n_in, n_out), dtype=first.dtype, device=first.device)
    for k, tmap in enumerate(maps):
        w[tmap.rows, tmap.cols] = tmap.weights(None if conductances_now is None else conductances_now[k])
    return w
