"""Energy of a programming pulse in an array: the cells' own energy plus the wires and the
half-selected lines, from ngspice on a small array, scaled to a tile with the fast solver.

The response table gives the energy of a pulse on one isolated cell (the integral of V I at
its driver).  In an array the drivers also feed the half-selected cells (the table has their
energy too, at the half-select voltage) and the wires.  :func:`spice_pulse_energy` integrates
every driver's V(t) I(t) over an ngspice programming transient of an n x n array
(:func:`memsim.circuit.netlist.program`), and :func:`solver_pulse_power` gives the same split at the
pulse's flat top from :func:`memsim.solver.solve_bias`: the power of the cells and of every
wire segment.  Their ratio (array over cells), checked between the two engines on a small
array, is the factor :class:`~memsim.learn.insitu.InSituConfig.wire_factor` applies; the
solver gives it for a tile of the trained network's size.
"""
from __future__ import annotations

import numpy as np

from ..circuit import netlist, spice
from ..circuit.array import Crossbar
from ..circuit.bias import read_bias
from ..devices.rram import DEFAULT_PARAMS, RRAMParams, current
from ..solver import solve_bias



def _crossbar(n: int, gap: float, r_wire: float, params: RRAMParams):

    return Crossbar.device(np.full((n, n), gap), r_row=r_wire, r_col=r_wire, params=params)


def spice_pulse_energy(n: int, gap: float, v_pulse: float, width: float, *, r_wire: float = 2.5,
                       scheme: str = "v/2", params: RRAMParams = DEFAULT_PARAMS) -> dict:
    """ngspice transient of one pulse on the centre cell of an n x n selector-less array of
    uniform ``gap`` (m): ``total_j``, the energy every row driver and column source delivers,
    and ``selected_j``, the selected row driver's alone."""
    xb = _crossbar(n, gap, r_wire, params)
    row = col = n // 2
    vectors = spice.run_netlist(netlist.program(xb, row, col, v_pulse, width, scheme=scheme), timeout=300.0)
    t = vectors["time"]
    total = 0.0
    for name in [f"in{i}" for i in range(n)] + [f"s{j}" for j in range(n)]:
        source = ("vin" + name[2:]) if name.startswith("in") else ("vs" + name[1:])
        key = f"i({source})"
        if key in vectors:
            # ngspice's source current flows into its + node: delivered power is -V I.
            total += float(np.trapezoid(vectors[f"v({name})"] * -vectors[key], t))
    selected = float(np.trapezoid(vectors[f"v(in{row})"] * -vectors[f"i(vin{row})"], t))
    return {"total_j": total, "selected_j": selected}


def solver_pulse_power(n: int, gap: float, v_pulse: float, *, r_wire: float = 2.5, scheme: str = "v/2",
                       params: RRAMParams = DEFAULT_PARAMS) -> dict:
    """Power (W) at the pulse's flat top on the centre cell of an n x n array, from the fast
    solver: ``cells_w`` (all cells), ``wires_w`` (I^2 R of every segment), ``ideal_cells_w``
    (the cells at their ideal voltages, no IR drop: what the response table's energies add up
    to), ``factor`` = (cells + wires) / ideal cells."""
    xb = _crossbar(n, gap, r_wire, params)
    bias = read_bias(n, n, n // 2, n // 2, v_pulse, scheme)
    result = solve_bias(xb, bias, cells=True)
    v_cell = result.v_row - result.v_col
    cells = float(np.sum(v_cell * result.i_cell))
    # Rows are driven from the left end: segment j carries the current of cells j..n-1.
    i_row = np.cumsum(result.i_cell[:, ::-1], axis=1)[:, ::-1]
    # Columns end at the bottom: the segment below cell i carries the current of cells 0..i.
    i_col = np.cumsum(result.i_cell, axis=0)
    wires = float(xb.r_row * np.sum(i_row ** 2) + xb.r_col * np.sum(i_col ** 2))
    ideal_v = bias.v_row[:, None] - bias.v_col[None, :]
    ideal = float(np.sum(ideal_v * current(ideal_v, xb.gap, params)))
    return {"cells_w": cells, "wires_w": wires, "ideal_cells_w": ideal, "factor": (cells + wires) / ideal}


def spice_factor(n: int, gap: float, v_pulse: float, width: float, model, *, r_wire: float = 2.5,
                 scheme: str = "v/2") -> float:
    """ngspice's array energy over the sum of the response table's cell energies for the same
    pulse (the selected cell at ``v_pulse``, the 2 (n - 1) half-selected ones at the
    half-select voltage, and under V/3 the (n - 1)^2 others at -V/3)."""
    measured = spice_pulse_energy(n, gap, v_pulse, width, r_wire=r_wire, scheme=scheme, params=model.params)
    half = 0.5 if scheme == "v/2" else 1 / 3
    cells = model.energy(gap, v_pulse, width) + 2 * (n - 1) * model.energy(gap, v_pulse * half, width)
    if scheme == "v/3":
        cells = cells + (n - 1) ** 2 * model.energy(gap, -v_pulse * half, width)
    return float(measured["total_j"] / cells)
