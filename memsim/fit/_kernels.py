"""Numba kernel of the fit's forward model: the gap rate under a piecewise-linear source with a
current compliance (kernel-only module: no policy, no defaults, no I/O).

It evaluates :func:`memsim.devices.rram.gap_rate` at the device voltage of
:func:`memsim.fit.model.device_voltage`; tests/test_fit.py compares it with those numpy
functions.  Parameter vectors: ``RRAMParams.as_array()``.
"""
import math

import numpy as np
from numba import njit

from ..devices.kernels import G0, I0, V0, rram_current, rram_gap_rate


@njit(cache=True)
def device_voltage(v, gap, compliance, p):
    """v (V) lowered to the voltage that passes ``compliance`` (A) at ``gap`` (m) where it would pass more."""
    limit = p[V0] * math.asinh(compliance / (p[I0] * math.exp(-gap / p[G0])))
    return math.copysign(min(abs(v), limit), v)


@njit(cache=True)
def bounded_rate(v, gap, p):
    """dg/dt (m/s) at device voltage v (V) and gap (m), Joule heating and smooth bounds included."""
    return rram_gap_rate(v, gap, rram_current(v, gap, p)[0], p)


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
