"""IR-drop compensation on one tile, with the fast solver as the model of the array.

Two strategies (small classes, one per method):

- :class:`PreDistortion`: choose the programmed conductances, on the available levels, so
  that the solver's column currents match the ideal products.  Each iteration solves the
  tile for a reference input, measures every cell's actual voltage as a fraction of its
  row input (the IR-drop attenuation), divides the target conductance by it, and quantises
  column by column with error diffusion so that each column's total stays within one level
  step of the target.  Nothing is stored on chip (0 bytes): the tile is programmed differently.
- :class:`ColumnCorrection`: a digital gain and offset per column, fitted by least squares
  from reference inputs (solver currents against ideal products); 2 float32 per column.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..circuit.array import Crossbar, as_real_array
from ..solver import solve


def quantize_columns(g_target, levels, row_weight=None) -> np.ndarray:
    """Nearest-level quantisation with error diffusion down each column.

    ``g_target`` (R, C) S, ``levels`` increasing (S, 0 allowed for an open cell);
    ``row_weight`` (R,) >= 0, the typical input of each row (default 1): the carried error is
    weighted by it, so each column's weighted sum matches its target to within one level step.
    """
    g_target = as_real_array(g_target, "g_target (S)", 2)
    levels = np.asarray(levels, dtype=float)
    rows, cols = g_target.shape
    weight = np.ones(rows) if row_weight is None else as_real_array(row_weight, "row_weight", 1, 0.0)
    if weight.shape != (rows,):
        raise ValueError(f"row_weight must have shape ({rows},), got {weight.shape}")
    out = np.empty_like(g_target)
    carried = np.zeros(cols)  # weighted current error carried down each column
    for i in range(rows):
        w = weight[i]
        wanted = g_target[i] + (carried / w if w > 0 else 0.0)
        index = np.abs(wanted[:, None] - levels[None, :]).argmin(axis=1)
        out[i] = levels[index]
        carried += w * (g_target[i] - out[i])
    return out


@dataclass
class PreDistortion:
    """Pre-distorted programming of one ohmic tile; see the module docstring.

    ``fit(g_target, levels, r_row, r_col, v_ref)`` returns the conductances to program
    (R, C) S and keeps the history of the solver-measured error per iteration.
    """

    iterations: int = 30
    history: list = field(default_factory=list)
    storage_bytes: int = 0

    def fit(self, g_target, levels, r_row: float, r_col: float, v_ref) -> np.ndarray:
        g_target = as_real_array(g_target, "g_target (S)", 2, 0.0)
        levels = np.asarray(levels, dtype=float)
        v_ref = as_real_array(v_ref, "v_ref (V)", 1)
        if v_ref.shape != (g_target.shape[0],) or np.any(v_ref <= 0):
            raise ValueError(f"v_ref must be {g_target.shape[0]} positive voltages (the typical input per row)")
        ideal = v_ref @ g_target
        g_cont = g_target.copy()
        g_prog = quantize_columns(g_cont, levels, v_ref)
        self.history = []
        best, best_error = g_prog, np.inf
        for _ in range(self.iterations + 1):
            res = solve(Crossbar.ohmic(g_prog, r_row, r_col), v_ref)
            error = float(np.max(np.abs(res.i_col - ideal)) / np.max(np.abs(ideal)))
            self.history.append(error)
            if error < best_error:
                improved = error < 0.98 * best_error
                best, best_error = g_prog, error
                if not improved:
                    break  # settled: the last step changed the error by under 2 %
            elif len(self.history) > 2:
                break  # quantisation makes it oscillate: keep the best
            # Fraction of its row input that each cell actually sees.
            ratio = (res.v_row - res.v_col) / v_ref[:, None]
            g_cont = np.clip(g_target / np.clip(ratio, 1e-3, None), 0.0, levels.max())
            g_prog = quantize_columns(g_cont, levels, v_ref)
        return best


@dataclass
class ColumnCorrection:
    """Digital per-column affine correction: ``i_corrected = gain * i_col + offset``."""

    gain: np.ndarray | None = None
    offset: np.ndarray | None = None

    def fit(self, i_measured, i_ideal) -> "ColumnCorrection":
        """Least squares per column; ``i_measured``, ``i_ideal`` (B, C) from reference inputs."""
        measured = as_real_array(i_measured, "i_measured (A)", 2)
        ideal = as_real_array(i_ideal, "i_ideal (A)", 2, shape=measured.shape)
        if measured.shape[0] < 2:
            raise ValueError("ColumnCorrection needs at least two reference inputs")
        m_mean, i_mean = measured.mean(axis=0), ideal.mean(axis=0)
        dm = measured - m_mean
        var = (dm ** 2).sum(axis=0)
        gain = np.where(var > 0, (dm * (ideal - i_mean)).sum(axis=0) / np.where(var > 0, var, 1.0), 1.0)
        self.gain = gain.astype(np.float32)
        self.offset = (i_mean - gain * m_mean).astype(np.float32)
        return self

    def apply(self, i_col) -> np.ndarray:
        if self.gain is None:
            raise ValueError("ColumnCorrection.apply before fit")
        return np.asarray(i_col) * self.gain + self.offset

    @property
    def storage_bytes(self) -> int:
        return 0 if self.gain is None else int(self.gain.nbytes + self.offset.nbytes)
