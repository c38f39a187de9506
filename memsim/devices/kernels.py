"""Numba scalar kernels of the device equations (kernel-only module: no policy, no I/O).

Parameter vectors are packed by ``RRAMParams.as_array()`` (field order) and
``MosfetParams.as_array()``; the numpy reference functions in ``rram.py`` and
``transistor.py`` are compared with these in the tests.
"""
import math

from numba import njit

# Field indices of RRAMParams.as_array()
I0, G0, V0 = 0, 1, 2
# Field indices of MosfetParams.as_array(): beta = kp*w/l, vto, lambda
M_BETA, M_VTO, M_LAMBDA, M_GLEAK = 0, 1, 2, 3


@njit(cache=True, inline="always")
def rram_current(v, gap, p):
    """Device current (A) and dI/dV (S) at voltage v (V) and gap (m)."""
    scale = p[I0] * math.exp(-gap / p[G0])
    x = v / p[V0]
    return scale * math.sinh(x), scale / p[V0] * math.cosh(x)


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
