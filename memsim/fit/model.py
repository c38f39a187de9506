"""Forward model of measured data: the compact model's gap ODE integrated over each sweep and
pulse train (:func:`memsim.devices.rram.gap_rate`, Joule heating included).

I-V sweep under a source-measure unit (SMU): the unit drives the programmed voltage v(t)
(linear between samples) unless the device current would exceed the compliance I_cc; then
it lowers the device voltage to the one that passes I_cc,

    u(v, g) = sign(v) min(|v|, V0 asinh(I_cc / (I0 exp(-g/g0))))

(the inverse of I = I0 exp(-g/g0) sinh(u/V0), Jiang et al., IEEE TED 63(5), 2016), and the
gap follows dg/dt = gap_rate(u, g).  The ODE is stiff where the gap meets its bounds, so it is
integrated by LSODA (scipy.integrate.odeint) on the gap in nm, the rate from the Numba
kernel of :mod:`memsim.fit._kernels`.

Pulse train: each pulse is a trapezoid (linear edges of ``t_edge``, flat top ``width``) at the
device, integrated the same way; the read after it is the chord conductance I(v_read)/v_read,
taken as non-disturbing.

The state a sweep starts from is read off its own first low-voltage samples (the gap that
passes the measured current there); a train starts from its initial read.
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import odeint

from ..devices.rram import RRAMParams, current, gap_rate

#: Samples below this |v| (V) say little about the gap (current near 0); the start state is
#: read between it and V_INIT_HIGH, where the state has not moved yet.
V_INIT_LOW = 0.05
V_INIT_HIGH = 0.3
#: Integration tolerances (relative; absolute in nm of gap): 1e-8 keeps the model's own noise
#: far below the finite-difference steps of the fit.
RTOL = 1e-8
ATOL_NM = 1e-9
#: Edge time (s) of a pulse, as the pulse generator of the data had it (an option of the fit).
T_EDGE = 1e-9
NM = 1e9


def device_voltage(v, gap, compliance, p: RRAMParams):
    """Voltage (V) across the device: ``v`` lowered where the current would exceed ``compliance`` (A)."""
    limit = p.v0 * np.arcsinh(compliance / (p.i0 * np.exp(-gap / p.g0)))
    return np.sign(v) * np.minimum(np.abs(v), limit)


def gap_from_read(v, i, p: RRAMParams):
    """The gap (m) that passes current ``i`` (A) at ``v`` (V), clipped to the gap bounds."""
    ratio = np.abs(i) / (p.i0 * np.sinh(np.abs(v) / p.v0))
    gap = -p.g0 * np.log(np.maximum(ratio, 1e-300))
    return np.clip(gap, p.gap_min, p.gap_max)


def start_gap(sweep, p: RRAMParams) -> float:
    """The gap (m) a sweep starts from: the median over its first samples with V_INIT_LOW <= |v|
    (before |v| first passes V_INIT_HIGH) of the gap passing the measured current."""
    magnitude = np.abs(sweep.v)
    beyond = np.flatnonzero(magnitude > V_INIT_HIGH)
    head = slice(0, beyond[0] if beyond.size else magnitude.size)
    usable = np.flatnonzero(magnitude[head] >= V_INIT_LOW)
    if usable.size == 0:
        raise ValueError(f"device {sweep.device!r} cycle {sweep.cycle}: no sample with {V_INIT_LOW} V <= |v| <= "
                         f"{V_INIT_HIGH} V before the sweep goes higher; start each sweep with a low-voltage stretch "
                         "(the state it starts from is read there)")
    return float(np.median(gap_from_read(sweep.v[usable], sweep.i[usable], p)))


def integrate(times, volts, compliance, gap0: float, p: RRAMParams, at) -> np.ndarray:
    """Gap (m) at the times ``at`` (s, increasing, from ``times[0]``) of the source v(t), linear
    between (``times``, ``volts``), with ``compliance`` (A per corner, inf for none), from
    ``gap0`` (m): LSODA (scipy.integrate.odeint) over the Numba rate, never stepping past a corner."""
    from . import _kernels

    times = np.ascontiguousarray(times, dtype=float)
    volts = np.ascontiguousarray(volts, dtype=float)
    cc = np.ascontiguousarray(np.minimum(compliance, 1e30), dtype=float)
    vector = p.as_array()
    rate = _kernels.rate_nm

    def derivative(y, t):
        return rate(y[0], t, times, volts, cc, vector)

    gap_nm, info = odeint(derivative, [gap0 * NM], at, rtol=RTOL, atol=ATOL_NM, tcrit=times,
                          hmax=float(np.min(np.diff(times))), mxstep=200_000, full_output=True)
    if info["message"] != "Integration successful.":
        raise ValueError(f"the gap ODE failed: {info['message']}")
    return np.clip(gap_nm[:, 0] / NM, p.gap_min, p.gap_max)


def simulate_sweep(sweep, p: RRAMParams, gap0: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(current A, gap m) at each sample of ``sweep`` under the SMU model, from ``gap0`` (m;
    default :func:`start_gap`)."""
    compliance = np.where(np.isfinite(sweep.compliance), sweep.compliance, np.inf)
    gap0 = start_gap(sweep, p) if gap0 is None else gap0
    gap = integrate(sweep.t, sweep.v, compliance, gap0, p, sweep.t)
    return current(device_voltage(sweep.v, gap, compliance, p), gap, p), gap


def read_conductance(v_read: float, gap, p: RRAMParams):
    """Chord conductance I/V (S) at ``v_read``."""
    return current(v_read, gap, p) / v_read


def train_waveform(amplitude, width, t_edge: float):
    """(corner times s, voltages V, index of the corner ending each row) of a pulse train:
    trapezoids back to back (row 0 and rows of amplitude 0 are reads: no time)."""
    times, volts, ends = [0.0], [0.0], [0]
    now = 0.0
    for amp, w in zip(amplitude[1:], width[1:]):
        if amp != 0.0:
            for dt, level in ((t_edge, amp), (w, amp), (t_edge, 0.0)):
                now += dt
                times.append(now)
                volts.append(level)
        ends.append(len(times) - 1)
    return np.array(times), np.array(volts), np.array(ends)


def simulate_train(train, p: RRAMParams, t_edge: float = T_EDGE, gap0: float | None = None):
    """(read conductance S, gap m) after each row of ``train`` (row 0 the initial read), from
    ``gap0`` (default: the gap of the initial read)."""
    if gap0 is None:
        gap0 = float(gap_from_read(train.v_read, train.g_read[0] * train.v_read, p))
    times, volts, ends = train_waveform(train.amplitude, train.width, t_edge)
    if times.size == 1:
        gaps = np.full(train.amplitude.size, gap0)
    else:
        gaps = integrate(times, volts, np.full(times.size, np.inf), gap0, p, times)[ends]
    return read_conductance(train.v_read, gaps, p), gaps
