"""Numba scalar kernels of the device equations (kernel-only module: no policy, no I/O).

Parameter vectors are packed by ``RRAMParams.as_array()`` (field order) and
``MosfetParams.as_array()``; the numpy reference functions in ``rram.py`` and
``transistor.py`` are compared with these in the tests.
"""
import math

from numba import njit

# Field indices of RRAMParams.as_array() (its field order)
I0, G0, V0, VEL0, EA, A0, TOX, GAMMA0, BETA, ALPHA, G1, RTH, T0, GAP_MIN, GAP_MAX, DELTA = range(16)
K_B = 1.380649e-23  # J/K
Q_E = 1.602176634e-19  # C
# Field indices of MosfetParams.as_array(): beta = kp*w/l, vto, lambda
M_BETA, M_VTO, M_LAMBDA, M_GLEAK = 0, 1, 2, 3


@njit(cache=True, inline="always")
def rram_current(v, gap, p):
    """Device current (A) and dI/dV (S) at voltage v (V) and gap (m)."""
    scale = p[I0] * math.exp(-gap / p[G0])
    x = v / p[V0]
    return scale * math.sinh(x), scale / p[V0] * math.cosh(x)


@njit(cache=True)
def rram_gap_rate(v, gap, current, p):
    """dg/dt (m/s) at device voltage v (V), gap (m) and device current (A, for the Joule heating),
    the smooth bounds applied: :func:`memsim.devices.rram.gap_rate`, scalar."""
    kt = K_B * (p[T0] + abs(v * current) * p[RTH])
    gamma = p[GAMMA0] - p[BETA] * (gap / p[G1]) ** p[ALPHA]
    raw = -p[VEL0] * math.exp(-Q_E * p[EA] / kt) * math.sinh(gamma * p[A0] / p[TOX] * Q_E * v / kt)
    if raw > 0:
        return raw * (1.0 - math.exp(-max(p[GAP_MAX] - gap, 0.0) / p[DELTA]))
    return raw * (1.0 - math.exp(-max(gap - p[GAP_MIN], 0.0) / p[DELTA]))


@njit(cache=True, inline="always")
def mosfet_current(vgs, vds, p):
    """Shichman-Hodges (ngspice level 1) drain current for vds >= 0 and its derivatives.

    Returns (id, d id/d vgs, d id/d vds), including the drain-source leakage g_leak * vds.
    The caller swaps drain and source for vds < 0 (the leakage term is odd, so it swaps too).
    """
    beta = p[M_BETA]
    vov = vgs - p[M_VTO]
    lam = p[M_LAMBDA]
    leak = p[M_GLEAK]
    if vov <= 0.0:
        return leak * vds, 0.0, leak
    clm = 1.0 + lam * vds
    if vds < vov:
        core = beta * (vov - 0.5 * vds) * vds
        return core * clm + leak * vds, beta * vds * clm, beta * (vov - vds) * clm + core * lam + leak
    core = 0.5 * beta * vov * vov
    return core * clm + leak * vds, beta * vov * clm, core * lam + leak


@njit(cache=True, inline="always")
def _hermite(t, f0, d0, f1, d1, h):
    """Cubic Hermite on [0, 1] with values f and slopes d (per unit of the grid step h):
    the value and its derivative per unit of the original variable."""
    t2 = t * t
    t3 = t2 * t
    value = (2 * t3 - 3 * t2 + 1) * f0 + (t3 - 2 * t2 + t) * h * d0 + (3 * t2 - 2 * t3) * f1 + (t3 - t2) * h * d1
    slope = ((6 * t2 - 6 * t) * f0 + (3 * t2 - 4 * t + 1) * h * d0 + (6 * t - 6 * t2) * f1
             + (3 * t2 - 2 * t) * h * d1) / h
    return value, slope


@njit(cache=True, inline="always")
def table_current(v, s, t):
    """Device current (A) and dI/dV (S) from a packed device table (``DeviceTable.packed``):
    cubic Hermite in voltage between nodes (exact slopes), 4-point Lagrange in state; beyond
    the voltage range, the end node's tangent."""
    n_s = int(t[1])
    n_v = int(t[2])
    s0, ds, v0, dv = t[3], t[4], t[5], t[6]
    base_i = 7
    base_g = 7 + n_s * n_v
    x = (s - s0) / ds
    k = min(max(int(math.floor(x)) - 1, 0), n_s - 4)
    u = x - k
    w = (-(u - 1.0) * (u - 2.0) * (u - 3.0) / 6.0, u * (u - 2.0) * (u - 3.0) / 2.0,
         -u * (u - 1.0) * (u - 3.0) / 2.0, u * (u - 1.0) * (u - 2.0) / 6.0)
    y = (v - v0) / dv
    current = 0.0
    slope = 0.0
    if y <= 0.0 or y >= n_v - 1:
        j = 0 if y <= 0.0 else n_v - 1
        offset = v - (v0 + j * dv)
        for m in range(4):
            row = (k + m) * n_v + j
            current += w[m] * (t[base_i + row] + t[base_g + row] * offset)
            slope += w[m] * t[base_g + row]
        return current, slope
    j = min(int(y), n_v - 2)
    tau = y - j
    for m in range(4):
        row = (k + m) * n_v + j
        value, d = _hermite(tau, t[base_i + row], t[base_g + row], t[base_i + row + 1], t[base_g + row + 1], dv)
        current += w[m] * value
        slope += w[m] * d
    return current, slope


@njit(cache=True, inline="always")
def cell_current(v, s, p):
    """Current and dI/dV of one cell: the built-in model for ``RRAMParams.as_array()``, the
    table for a packed ``DeviceTable`` (tagged by its negative first entry)."""
    if p[0] < 0.0:
        return table_current(v, s, p)
    return rram_current(v, s, p)


@njit(cache=True)
def table_currents(v, s, t, i_out, g_out):
    """:func:`table_current` over flat arrays (numpy callers and tests)."""
    for k in range(v.size):
        i_out[k], g_out[k] = table_current(v[k], s[k], t)
