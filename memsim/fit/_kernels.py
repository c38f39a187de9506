"""Numba kernel of the fit's forward model: the gap rate under a piecewise-linear source with a
current compliance (kernel-only module: no policy, no defaults, no I/O).

It evaluates :func:`memsim.devices.rram.gap_rate` at the device voltage of
:func:`memsim.fit.model.device_voltage`; tests/test_fit.py compares it with those numpy
functions.  Parameter vectors: ``RRAMParams.as_array()``.
"""
import math

import numpy as np
from numba import njit

from ..devices.kernels import rram_current

K_B = 1.380649e-23
Q_E = 1.602176634e-19
I0, G0, V0, VEL0, EA, A0, TOX, GAMMA0, BETA, ALPHA, G1, RTH, T0, GAP_MIN, GAP_MAX, DELTA = range(16)


@njit(cache=True)
def device_voltage(v, gap, compliance, p):
    """v (V) lowered to the voltage that passes ``compliance`` (A) at ``gap`` (m) where it would pass more."""
    limit = p[V0] * math.asinh(compliance / (p[I0] * math.exp(-gap / p[G0])))
    return math.copysign(min(abs(v), limit), v)


@njit(cache=True)
def bounded_rate(v, gap, p):
    """dg/dt (m/s) at device voltage v (V) and gap (m), Joule heating and smooth bounds included."""
    current = rram_current(v, gap, p)[0]
    kt = K_B * (p[T0] + abs(v * current) * p[RTH])
    gamma = p[GAMMA0] - p[BETA] * (gap / p[G1]) ** p[ALPHA]
    raw = -p[VEL0] * math.exp(-Q_E * p[EA] / kt) * math.sinh(gamma * p[A0] / p[TOX] * Q_E * v / kt)
    if raw > 0:
        return raw * (1.0 - math.exp(-max(p[GAP_MAX] - gap, 0.0) / p[DELTA]))
    return raw * (1.0 - math.exp(-max(gap - p[GAP_MIN], 0.0) / p[DELTA]))


@njit(cache=True)
def rate_nm(gap_nm, t, times, volts, compliance, p):
    """d gap/dt (nm/s) at time t (s) of the source v(t), linear between (times, volts), with the
    compliance of the segment (the smaller of its two ends, A)."""
    k = np.searchsorted(times, t) - 1
    k = min(max(k, 0), times.size - 2)
    w = (t - times[k]) / (times[k + 1] - times[k])
    v = volts[k] + (volts[k + 1] - volts[k]) * w
    gap = gap_nm * 1e-9
    u = device_voltage(v, gap, min(compliance[k], compliance[k + 1]), p)
    return bounded_rate(u, gap, p) * 1e9
