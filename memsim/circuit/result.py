"""The result type both engines return (``memsim.solve`` and ``memsim.simulate``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SolveResult:
    """Solved crossbar, SI units; a leading batch axis when the input was (batch, rows).

    - ``i_col``: (C,) current into each column's sense node, A, positive into the node.
    - ``v_row``: (R, C) row-line node voltages, V.
    - ``v_col``: (R, C) column-line node voltages, V.
    - ``i_cell``: (R, C) current through each cell from row to column node, A (or None when
      not requested).
    - ``engine``: "ngspice" or "memsim" (the fast solver); ``info`` holds engine details
      (iterations, residual, wall time); ngspice's holds ``source_power``, the power (W, per
      input vector) every driving source delivers, from ngspice's own source currents.
    """

    i_col: np.ndarray
    v_row: np.ndarray
    v_col: np.ndarray
    i_cell: np.ndarray | None = None
    engine: str = ""
    info: dict | None = None


def driver_power(xb, v_in, result) -> np.ndarray:
    """Power delivered by the row drivers, W, per input vector: sum_i v_i * i_i.

    The driver current of row i is (v_i - v_row[i, 0]) / r_row, or, with ideal row wires,
    the sum of the row's cell currents (``result`` must then carry ``i_cell``).
    """
    v_in = np.atleast_2d(v_in)
    if xb.r_row > 0:
        v_first = np.atleast_3d(result.v_row)[..., 0] if result.v_row.ndim == 3 else result.v_row[None, :, 0]
        i_in = (v_in - v_first) / xb.r_row
    else:
        i_cell = result.i_cell if result.i_cell.ndim == 3 else result.i_cell[None]
        i_in = i_cell.sum(axis=-1)
    return np.sum(v_in * i_in, axis=-1)
