"""Synthetic measurements from ngspice: the ``rram_tran`` subcircuit of
:func:`memsim.devices.rram.spice_subckt` under a source-measure unit (I-V sweeps) or a pulse
generator (pulse trains), for checking the fit on data whose parameters are known.

The SMU in the sweep netlist is a voltage source behind a current limiter, a behavioural
current source ``I = I_cc tanh(V_drop / 0.1 mV)``: below compliance it drops a fraction of a
millivolt, at compliance it passes I_cc and takes the rest of the voltage, as an SMU lowers
its output.  Reads after pulses are a ``v_read`` plateau in the same transient; the current
there is what a pulse-train measurement reads.

The netlists are plain text (:func:`sweep_netlist`, :func:`train_netlist`), every number
through :func:`memsim.units.fmt`.
"""
from __future__ import annotations

import numpy as np

from .. import units
from ..circuit import spice
from ..circuit.netlist import TRAN_OPTIONS
from ..devices.rram import RRAMParams, spice_subckt

#: The current limiter's voltage scale (V): its drop below compliance is V_CC atanh(I/I_cc).
V_CC = 1e-4
#: Compliance used where a sample has none (A): far above any current the model passes.
NO_COMPLIANCE = 1e-2
#: Read plateau after each pulse (s) and the edges of pulses and reads (s).
T_READ = 20e-9
T_EDGE = 1e-9


def _pwl(times, values) -> str:
    return " ".join(f"{units.fmt(t)} {units.fmt(v)}" for t, v in zip(times, values))


def triangle(v_set: float, v_reset: float, period: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(t s, v V) of one triangular sweep 0 -> +v_set -> 0 -> -v_reset -> 0 over ``period``,
    ``points`` samples evenly in time."""
    t = np.linspace(0.0, period, points)
    v = np.interp(t, period * np.array([0, 0.25, 0.5, 0.75, 1.0]), [0.0, v_set, 0.0, -v_reset, 0.0])
    return t, v


def sweep_netlist(p: RRAMParams, t, v, compliance, gap0: float) -> str:
    """Transient netlist of one sweep: programmed voltage ``v`` (V) at times ``t`` (s, linear
    between), compliance (A per sample; inf for none), device starting at ``gap0`` (m)."""
    t, v = np.asarray(t, float), np.asarray(v, float)
    cc = np.where(np.isfinite(compliance), compliance, NO_COMPLIANCE)
    step = float(np.min(np.diff(t))) / 4
    f = units.fmt
    # The voltage that passes V(cc) at the present gap (V(x), nm): the model's own inverse.
    limit = f"{f(p.v0)}*asinh(V(cc)/({f(p.i0)}*exp(-V(x)/{f(p.g0 * 1e9)})))"
    return "\n".join([
        "* memsim fit data: I-V sweep of one RRAM cell under a source-measure unit",
        TRAN_OPTIONS,
        spice_subckt(p),
        f"vs s 0 pwl({_pwl(t, v)})",
        f"vc cc 0 pwl({_pwl(t, cc)})",
        f"bsmu a 0 V=V(s) >= 0 ? min(V(s), {limit}) : max(V(s), -{limit})",
        f"xd a 0 x rram_tran gap={units.fmt(gap0)}",
        f".tran {units.fmt(step / 10)} {units.fmt(float(t[-1]))} 0 {units.fmt(step)} uic",
        ".end", ""])


def run_sweep(p: RRAMParams, t, v, compliance, gap0: float) -> tuple[np.ndarray, np.ndarray]:
    """(device current A, gap m) at times ``t`` from one ngspice transient."""
    vectors = spice.run_netlist(sweep_netlist(p, t, v, compliance, gap0), timeout=120.0)
    time = vectors["time"]
    return np.interp(t, time, -vectors["i(bsmu)"]), np.interp(t, time, vectors["v(x)"]) * 1e-9


def train_netlist(p: RRAMParams, amplitude, width, v_read: float, gap0: float) -> tuple[str, np.ndarray]:
    """Transient netlist of a pulse train (row 0 a read only) with a read plateau after each
    row, and the times (s) at the middle of each read."""
    times, levels, middles = [0.0], [0.0], []
    now = 0.0
    for amp, w in zip(amplitude, width):
        if amp != 0:
            for dt, level in ((T_EDGE, amp), (w, amp), (T_EDGE, 0.0)):
                now += dt
                times.append(now)
                levels.append(level)
        for dt, level in ((T_EDGE, v_read), (T_READ, v_read), (T_EDGE, 0.0)):
            now += dt
            times.append(now)
            levels.append(level)
        middles.append(now - T_EDGE - T_READ / 2)
    step = min(T_EDGE, float(np.min(np.asarray(width)[np.asarray(amplitude) != 0], initial=T_READ))) / 4
    text = "\n".join([
        "* memsim fit data: pulse train on one RRAM cell, a read after each pulse",
        TRAN_OPTIONS,
        spice_subckt(p),
        f"vs a 0 pwl({_pwl(times, levels)})",
        f"xd a 0 x rram_tran gap={units.fmt(gap0)}",
        f".tran {units.fmt(step / 10)} {units.fmt(now)} 0 {units.fmt(step)} uic",
        ".end", ""])
    return text, np.array(middles)


def run_train(p: RRAMParams, amplitude, width, v_read: float, gap0: float) -> tuple[np.ndarray, np.ndarray]:
    """(read conductance S, gap m) at the read after each row, from one ngspice transient."""
    text, middles = train_netlist(p, amplitude, width, v_read, gap0)
    vectors = spice.run_netlist(text, timeout=120.0)
    time = vectors["time"]
    return np.interp(middles, time, -vectors["i(vs)"]) / v_read, np.interp(middles, time, vectors["v(x)"]) * 1e-9
