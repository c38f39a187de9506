"""Bias conditions: which line ends are driven, at what voltage, and which are sensed.

Both engines take a :class:`Bias`: the netlist generator writes it as sources, the fast
solver as boundary conditions, so an MVM and every single-cell read scheme are the same
circuit on both sides.

- Row i is driven at its left end through one ``r_row`` segment at ``v_row[i]`` V, or
  floats (NaN).
- Column j ends at the bottom through one ``r_col`` segment in a node held at
  ``v_col[j]`` V, or floats (NaN).  The reported column current is the current into that
  held node (positive into it); a floating column reports 0 A.

Single-cell read schemes (docs/design.md): the selected row at V, the selected column at 0 V,
and the unselected lines:

- ``"floating"``: left open;
- ``"v/2"``: rows and columns at V/2;
- ``"v/3"``: rows at V/3, columns at 2V/3;
- ``"grounded"``: rows and columns at 0 V.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import units

SCHEMES = ("floating", "v/2", "v/3", "grounded")
# Unselected (row, column) voltage as (numerator, denominator) of V; NaN: floating.
_UNSELECTED = {"floating": ((math.nan, 1), (math.nan, 1)), "v/2": ((1, 2), (1, 2)), "v/3": ((1, 3), (2, 3)),
               "grounded": ((0, 1), (0, 1))}


@dataclass(frozen=True, eq=False)
class Bias:
    """Line-end voltages: ``v_row`` (R,) and ``v_col`` (C,) in V, NaN where a line floats."""

    v_row: np.ndarray
    v_col: np.ndarray
    scheme: str = "mvm"
    selected: tuple[int, int] | None = None

    @property
    def row_driven(self) -> np.ndarray:
        return ~np.isnan(self.v_row)

    @property
    def col_held(self) -> np.ndarray:
        return ~np.isnan(self.v_col)


def mvm_bias(v_row, cols: int) -> Bias:
    """MVM read: every row driven at ``v_row`` (validated, shape (R,)), every column sensed at 0 V."""
    return Bias(np.asarray(v_row, dtype=np.float64), np.zeros(cols), "mvm")


def read_bias(rows: int, cols: int, row: int, col: int, v_read: float, scheme: str) -> Bias:
    """Bias for reading (or writing) cell (``row``, ``col``) at ``v_read`` V with ``scheme``."""
    scheme = units.choice(scheme, SCHEMES, "bias scheme")
    row, col = units.index(row, rows, "row"), units.index(col, cols, "col")
    try:
        v_read = units.real(v_read)
    except ValueError:
        raise ValueError(f"read voltage must be a finite number of volts, got {units.shown(v_read)}") from None
    (row_num, row_den), (col_num, col_den) = _UNSELECTED[scheme]
    v_row = np.full(rows, row_num * v_read / row_den)
    v_col = np.full(cols, col_num * v_read / col_den)
    v_row[row] = v_read
    v_col[col] = 0.0
    return Bias(v_row, v_col, scheme, (row, col))
