"""The array's own cost: energy of a read from the solver's node voltages, cell footprint and
the wire capacitance of its lines.

Energy of one read: the power every source delivers, sum of V x I over the row drivers and the
sense nodes (held at 0 V, so they deliver none; 1T1R gates draw no DC current), times the read
time.  By Tellegen's theorem it is every cell's dissipation plus the wires' losses plus the
sneak currents, so nothing is modelled twice.  The power is
:func:`memsim.circuit.result.driver_power` on the solver's node voltages; ngspice's own source
currents give the same number (``SolveResult.info["source_power"]`` of :func:`memsim.simulate`).
"""
from __future__ import annotations

import numpy as np

from .. import units
from ..circuit.array import Crossbar
from ..circuit.bias import Bias
from ..circuit.result import driver_power
from ..solver import solve, solve_bias
from .config import CROSSPOINT_F, ONE_T_ONE_R_F, CostConfig

#: Input vectors solved at once (bounds the node-voltage arrays: batch x rows x cols x 2).
CHUNK = 2000


def read_power(xb: Crossbar, v_in) -> np.ndarray:
    """Power (W) the sources deliver during a read of ``xb`` with row voltages ``v_in``
    ((rows,) or (batch, rows) V): one number per input vector, from the Numba solver."""
    v64 = np.atleast_2d(np.asarray(v_in, dtype=float))
    out = []
    for start in range(0, len(v64), CHUNK):
        chunk = v64[start:start + CHUNK]
        result = solve(xb, chunk, voltages=xb.r_row > 0, cells=xb.r_row == 0)
        out.append(np.atleast_1d(driver_power(xb, chunk, result)))
    return np.concatenate(out) if out else np.zeros(0)


def floating_column_power(xb: Crossbar, v_in) -> np.ndarray:
    """Power (W) the row drivers deliver during a voltage-mode read of ``xb``: rows driven at
    ``v_in`` ((rows,) or (batch, rows) V, relative to the columns' precharge level), every
    column left floating, so each settles where its cells' currents cancel (with ideal wires
    at sum_i G_ij v_i / sum_i G_ij).  One number per input vector, from the solver's node
    voltages under a bias with floating columns (:func:`memsim.solver.core.solve_bias`).

    By Tellegen's theorem this is what the cells and wires dissipate while the inputs are held,
    sum_ij G_ij (v_i - v_col,j)^2 on ideal wires: the static energy of voltage-mode sensing
    (W. Wan et al., "A compute-in-memory chip based on resistive random-access memory",
    Nature 608, 504-512, 2022, whose neurons sample the floating source lines).
    """
    v64 = np.atleast_2d(np.asarray(v_in, dtype=float))
    if v64.ndim != 2 or v64.shape[1] != xb.rows or not np.all(np.isfinite(v64)):
        raise ValueError(f"v_in must be finite volts of shape ({xb.rows},) or (batch, {xb.rows}), got shape {v64.shape}")
    floating = np.full(xb.cols, np.nan)
    out = np.zeros(len(v64))
    for b, v in enumerate(v64):
        if not np.any(v):
            continue  # nothing driven off the precharge level: no current flows
        result = solve_bias(xb, Bias(v, floating), cells=xb.r_row == 0)
        out[b] = float(np.atleast_1d(driver_power(xb, v, result))[0])
    return out


def read_energy(xb: Crossbar, v_in, config: CostConfig = CostConfig()) -> np.ndarray:
    """Energy (J) of one read per input vector: :func:`read_power` x ``config.read_time_s``."""
    return read_power(xb, v_in) * config.read_time_s


def cell_size(xb: Crossbar, config: CostConfig = CostConfig()) -> tuple[float, float]:
    """(height, width) of one cell, m: its extent along a column and along a row.

    Cross-point cells (ohmic, selector-less) are 2F x 2F = 4F^2.  1T1R cells are 4F x 12F with
    a minimum access transistor (DNN+NeuroSim V1.3); a wider transistor widens the cell by its
    extra width, 4F x (12F + W - F) (memsim's assumption: the active area runs along the row).
    """
    f = config.feature_m
    if xb.kind != "1t1r":
        return CROSSPOINT_F[0] * f, CROSSPOINT_F[1] * f
    return ONE_T_ONE_R_F[0] * f, ONE_T_ONE_R_F[1] * f + max(xb.transistor.w - f, 0.0)


def array_area(xb: Crossbar, config: CostConfig = CostConfig()) -> float:
    """Area of the cells, m^2: rows x cols x cell height x cell width."""
    height, width = cell_size(xb, config)
    return xb.rows * xb.cols * height * width


def node_capacitance(xb: Crossbar, config: CostConfig = CostConfig()) -> tuple[float, float]:
    """Capacitance at one node of a row and of a column, F: the wire over one cell (c per
    length x the cell's extent along that line) plus the cell's own parallel-plate capacitance."""
    height, width = cell_size(xb, config)
    return config.c_wire_per_m * width + config.c_cell_f, config.c_wire_per_m * height + config.c_cell_f


def line_charge_energy(xb: Crossbar, v_in, config: CostConfig = CostConfig()) -> np.ndarray:
    """Energy (J) the row drivers spend charging their lines per read, sum_i C_row v_i^2 (a
    driver charging a capacitance C to V draws C V^2 from its supply: half stored, half lost),
    per input vector; C_row is a row's nodes in total."""
    c_row = node_capacitance(xb, config)[0] * xb.cols
    v64 = np.atleast_2d(np.asarray(v_in, dtype=float))
    return c_row * np.sum(v64 * v64, axis=-1)


def pwm_read_energy(xb: Crossbar, x, v_read: float, steps: int, config: CostConfig = CostConfig()) -> np.ndarray:
    """Energy (J) of one read with duration-coded inputs (pulse-width modulation), per input
    vector: row i is held at ``v_read`` x sign(x_i) for |x_i| / max|x| of the read time, in
    ``steps`` equal time slots (|x| rounded to whole slots), 0 V otherwise.  In each slot the
    array is solved with the rows active then, so IR drop and sneak currents follow the rows that
    are on: energy = sum over slots of the sources' power x read_time / steps.

    ``x``: (rows,) or (batch, rows) inputs in any units (each vector scaled by its own max |x|).
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 4096:
        raise ValueError(f"steps must be an integer in [1, 4096], got {steps!r}")
    v_read = units.real(v_read, "v_read", low=0.0, unit="V")
    x64 = np.atleast_2d(np.asarray(x, dtype=float))
    if x64.ndim != 2 or x64.shape[1] != xb.rows or not np.all(np.isfinite(x64)):
        raise ValueError(f"x must be finite, of shape ({xb.rows},) or (batch, {xb.rows}), got shape {x64.shape}")
    peak = np.max(np.abs(x64), axis=1, keepdims=True)
    slots = np.rint(np.abs(x64) / np.where(peak > 0, peak, 1.0) * steps)  # slots each row is on
    out = np.zeros(len(x64))
    for b, (sign, on) in enumerate(zip(np.sign(x64), slots)):
        # Slot k (0-based) has the rows with more than k slots on; equal sets share one solve.
        counts = np.unique(on[on > 0])
        previous = 0.0
        drives = []
        for count in counts:
            drives.append((count - previous, v_read * sign * (on >= count)))
            previous = count
        if drives:
            power = read_power(xb, np.array([v for _, v in drives]))
            out[b] = float(np.sum(power * np.array([n for n, _ in drives]))) * config.read_time_s / steps
    return out
