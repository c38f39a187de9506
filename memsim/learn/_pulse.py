"""Numba kernels: one programming pulse on one cell, integrated from the compact model's gap rate
(kernel-only module: no policy, no defaults, no I/O).

The circuit is the one :func:`memsim.circuit.netlist.program` writes for a single cell: a
trapezoidal pulse (linear edges of ``t_edge``, flat top ``width``) at the row driver, a row
segment ``r_row``, the cell, a column segment ``r_col`` to 0 V.  Kind 0 is a selector-less
cell; kind 1 a 1T1R cell, whose RRAM voltage ``u`` at each instant solves

    I_rram(u, gap) = I_mos(v_gate - v_c, v_d - v_c),   v_c = r_col I,   v_d = v - r_row I - u

(the level-1 transistor of :func:`memsim.devices.kernels.mosfet_current`, drain and source
swapped when the drain goes below the source), by Newton steps kept inside the bracket
[min(0, v), max(0, v)], on which the residual falls monotonically.  The state is the gap
change (nm, so the error control is relative to the change itself, however small) and the
energy delivered by the driver (the integral of v I dt); the three pieces of the pulse are
integrated apart (the rate is smooth within each) by Dormand-Prince 5(4) with step control.

Parameter vectors: ``RRAMParams.as_array()`` (the built-in model: gap in m, its change
integrated in nm, ``unit`` = 1e-9, an empty rate table ``rt``) or a Verilog-A device's packed
current table (``DeviceTable.packed``, read by :func:`memsim.devices.kernels.cell_current`)
with a packed rate table ``rt`` (:func:`table_rate`; the state and its change in the model's
own unit, ``unit`` = 1); ``MosfetParams.as_array()``.
"""
import math

from numba import njit

from ..devices.kernels import cell_current, mosfet_current, rram_current
from ..devices.kernels import rram_gap_rate as bounded_rate

#: Steps one pulse may take before the kernel gives up (reported as a NaN result).
MAX_STEPS = 200_000

# Dormand-Prince 5(4) tableau.
C2, C3, C4, C5 = 1 / 5, 3 / 10, 4 / 5, 8 / 9
A21 = 1 / 5
A31, A32 = 3 / 40, 9 / 40
A41, A42, A43 = 44 / 45, -56 / 15, 32 / 9
A51, A52, A53, A54 = 19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729
A61, A62, A63, A64, A65 = 9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656
B1, B3, B4, B5, B6 = 35 / 384, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84
E1, E3, E4, E5, E6, E7 = 71 / 57600, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40


@njit(cache=True)
def gap_rate(v, gap, p):
    """dg/dt (m/s) at device voltage v (V) and gap (m): memsim.devices.rram.gap_rate, scalar."""
    return bounded_rate(v, gap, rram_current(v, gap, p)[0], p)


@njit(cache=True, inline="always")
def table_rate(v, s, t):
    """State rate at voltage v and state s from a packed rate table ``t`` = [n_s, n_v, s_lo, ds,
    v_lo, dv, rate row-major (state, voltage)]: 4-point Lagrange in both directions (bicubic),
    the end stencils beyond the grid."""
    n_s = int(t[0])
    n_v = int(t[1])
    x = (s - t[2]) / t[3]
    y = (v - t[4]) / t[5]
    k = min(max(int(math.floor(x)) - 1, 0), n_s - 4)
    j = min(max(int(math.floor(y)) - 1, 0), n_v - 4)
    u = x - k
    w = y - j
    wu = (-(u - 1.0) * (u - 2.0) * (u - 3.0) / 6.0, u * (u - 2.0) * (u - 3.0) / 2.0,
          -u * (u - 1.0) * (u - 3.0) / 2.0, u * (u - 1.0) * (u - 2.0) / 6.0)
    wv = (-(w - 1.0) * (w - 2.0) * (w - 3.0) / 6.0, w * (w - 2.0) * (w - 3.0) / 2.0,
          -w * (w - 1.0) * (w - 3.0) / 2.0, w * (w - 1.0) * (w - 2.0) / 6.0)
    total = 0.0
    for a in range(4):
        row = 6 + (k + a) * n_v + j
        total += wu[a] * (wv[0] * t[row] + wv[1] * t[row + 1] + wv[2] * t[row + 2] + wv[3] * t[row + 3])
    return total


@njit(cache=True)
def table_rates(v, s, t, out):
    """:func:`table_rate` over flat arrays (numpy callers and tests)."""
    for i in range(v.size):
        out[i] = table_rate(v[i], s[i], t)


@njit(cache=True)
def cell_voltage(kind, v, gap, u_start, p, m, r_row, r_col, v_gate):
    """(RRAM voltage u V, cell current A) with the driver at v and the column end at 0 V,
    Newton from ``u_start``; u to 1e-14 |v| (the current is the one at the returned u)."""
    if v == 0.0:
        return 0.0, 0.0
    lo, hi = min(0.0, v), max(0.0, v)
    u = min(max(u_start, lo), hi)
    r = r_row + r_col
    current = 0.0
    for _ in range(100):
        current, slope = cell_current(u, gap, p)
        if kind == 0:
            residual = v - r * current - u  # falls with u
            derivative = -r * slope - 1.0
        else:
            v_c = r_col * current
            v_d = v - r_row * current - u
            dvc, dvd = r_col * slope, -r_row * slope - 1.0
            if v_d >= v_c:
                i_mos, gm, gds = mosfet_current(v_gate - v_c, v_d - v_c, m)
                residual = i_mos - current
                derivative = -gm * dvc + gds * (dvd - dvc) - slope
            else:
                i_mos, gm, gds = mosfet_current(v_gate - v_d, v_c - v_d, m)
                residual = -i_mos - current
                derivative = gm * dvd - gds * (dvc - dvd) - slope
        step = -residual / derivative if derivative < 0 else math.inf
        if abs(step) <= 1e-14 * abs(v):
            break
        if residual > 0:
            lo = u
        else:
            hi = u
        u_new = u + step
        u = u_new if lo < u_new < hi else 0.5 * (lo + hi)
    return u, current


@njit(cache=True)
def _derivatives(t, change_nm, t_on, v_on, v_off, kind, gap0, p, rt, unit, m, r_row, r_col, v_gate, share):
    """(d change/dt nm/s, driver power W, RRAM share of the driver voltage) at time t of a
    segment whose driver voltage goes linearly from v_on to v_off over t_on s; ``share`` (the
    last one) starts the Newton steps."""
    v = v_on + (v_off - v_on) * (t / t_on)
    if v == 0.0:
        return 0.0, 0.0, share
    gap = gap0 + change_nm * unit
    u, current = cell_voltage(kind, v, gap, share * v, p, m, r_row, r_col, v_gate)
    if rt.size > 0:
        return table_rate(u, gap, rt), v * current, u / v
    return bounded_rate(u, gap, current, p) * 1e9, v * current, u / v


@njit(cache=True)
def _segment(change, energy, t_on, v_on, v_off, kind, gap0, p, rt, unit, m, r_row, r_col, v_gate, rtol, atol_nm, atol_j):
    """Integrate (change nm, energy J) over one linear piece of the pulse; returns them and
    the steps taken (-1: MAX_STEPS reached)."""
    t = 0.0
    h = t_on / 64.0
    share = 1.0  # the RRAM's share of the driver voltage, carried from call to call
    k1, w1, share = _derivatives(0.0, change, t_on, v_on, v_off, kind, gap0, p, rt, unit, m, r_row, r_col, v_gate, share)
    steps = 0
    while t < t_on:
        if steps >= MAX_STEPS:
            return change, energy, -1
        last = t + h >= t_on * (1 - 1e-12)
        if last:
            h = t_on - t
        k2, w2, share = _derivatives(t + C2 * h, change + h * A21 * k1, t_on, v_on, v_off, kind, gap0, p, rt, unit, m,
                                 r_row, r_col, v_gate, share)
        k3, w3, share = _derivatives(t + C3 * h, change + h * (A31 * k1 + A32 * k2), t_on, v_on, v_off, kind, gap0,
                                 p, rt, unit, m, r_row, r_col, v_gate, share)
        k4, w4, share = _derivatives(t + C4 * h, change + h * (A41 * k1 + A42 * k2 + A43 * k3), t_on, v_on, v_off,
                                 kind, gap0, p, rt, unit, m, r_row, r_col, v_gate, share)
        k5, w5, share = _derivatives(t + C5 * h, change + h * (A51 * k1 + A52 * k2 + A53 * k3 + A54 * k4), t_on,
                                 v_on, v_off, kind, gap0, p, rt, unit, m, r_row, r_col, v_gate, share)
        k6, w6, share = _derivatives(t + h, change + h * (A61 * k1 + A62 * k2 + A63 * k3 + A64 * k4 + A65 * k5),
                                 t_on, v_on, v_off, kind, gap0, p, rt, unit, m, r_row, r_col, v_gate, share)
        new_change = change + h * (B1 * k1 + B3 * k3 + B4 * k4 + B5 * k5 + B6 * k6)
        new_energy = energy + h * (B1 * w1 + B3 * w3 + B4 * w4 + B5 * w5 + B6 * w6)
        k7, w7, share = _derivatives(t + h, new_change, t_on, v_on, v_off, kind, gap0, p, rt, unit, m, r_row, r_col, v_gate, share)
        err_change = h * (E1 * k1 + E3 * k3 + E4 * k4 + E5 * k5 + E6 * k6 + E7 * k7)
        err_energy = h * (E1 * w1 + E3 * w3 + E4 * w4 + E5 * w5 + E6 * w6 + E7 * w7)
        scale_change = atol_nm + rtol * max(abs(change), abs(new_change))
        scale_energy = atol_j + rtol * max(abs(energy), abs(new_energy))
        error = max(abs(err_change) / scale_change, abs(err_energy) / scale_energy)
        steps += 1
        if error <= 1.0 or h <= t_on * 1e-14:
            t = t_on if last else t + h
            change, energy, k1, w1 = new_change, new_energy, k7, w7
            factor = 5.0 if error == 0.0 else min(5.0, 0.9 * error ** -0.2)
        else:
            factor = max(0.2, 0.9 * error ** -0.2)
        h = h * factor
    return change, energy, steps


@njit(cache=True)
def pulse_responses(kind, gap0, v, width, t_edge, p, rt, unit, m, r_row, r_col, v_gate, rtol, atol_nm, atol_j,
                    out_change, out_energy, out_steps):
    """For each i: the gap change (nm) and driver energy (J) of a pulse of v[i] V, flat top
    width[i] s and edges t_edge s, from gap gap0[i] m, into out_change, out_energy; the steps
    taken into out_steps (NaN results and -1 steps where MAX_STEPS ran out)."""
    for i in range(gap0.size):
        change, energy, total = 0.0, 0.0, 0
        for t_on, v_on, v_off in ((t_edge, 0.0, v[i]), (width[i], v[i], v[i]), (t_edge, v[i], 0.0)):
            change, energy, steps = _segment(change, energy, t_on, v_on, v_off, kind, gap0[i], p, rt, unit, m, r_row,
                                             r_col, v_gate, rtol, atol_nm, atol_j)
            if steps < 0:
                change, energy, total = math.nan, math.nan, -1
                break
            total += steps
        out_change[i], out_energy[i], out_steps[i] = change, energy, total
