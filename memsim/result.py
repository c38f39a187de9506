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
      (iterations, residual, wall time).
    """

    i_col: np.ndarray
    v_row: np.ndarray
    v_col: np.ndarray
    i_cell: np.ndarray | None = None
    engine: str = ""
    info: dict | None = None
