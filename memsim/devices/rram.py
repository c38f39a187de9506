"""Gap-based filamentary RRAM compact model in the Stanford-PKU form.

Equations (Z. Jiang et al., "A Compact Model for Metal-Oxide Resistive Random Access Memory
With Experiment Verification", IEEE Trans. Electron Devices 63(5), 1884-1892, 2016; Stanford
RRAM Model v1.0.0, doi:10.4231/D37H1DN48):

    I(V, g)  = I0 exp(-g/g0) sinh(V/V0)                                   read current
    T        = T0 + |V I| Rth                                              local temperature
    gamma(g) = gamma0 - beta (g/g1)^alpha                                  field enhancement
    dg/dt    = -v0 exp(-Ea/(kB T)) sinh(gamma(g) a0/tox q V/(kB T))         gap rate

Positive V (top electrode ``p`` above ``n``) shrinks the gap (SET, conductance up); negative
V grows it (RESET).  The published model clips g to [g_min, g_max]; memsim bounds it
smoothly instead: a rate that pushes g towards a bound is multiplied by
1 - exp(-(distance to the bound)/delta), so the state settles at the bound without a kink
(this is what lets ngspice's time-step control integrate it).

The same equations exist three times and are tested against each other: numpy functions
here, Numba scalar kernels in :mod:`memsim.devices.kernels`, and the ngspice ``.subckt``
text in :func:`spice_subckt`.  Units are SI throughout (m, V, A, K, s); the SPICE state node
carries the gap in nanometres to keep its tolerances meaningful.
"""
from __future__ import annotations

import dataclasses
import math
import operator
from dataclasses import dataclass

import numpy as np

from .. import units

K_B = 1.380649e-23  # J/K
Q_E = 1.602176634e-19  # C


#: Accepted range of a parameter where it is not [default / 10, default x 10]: the model's
#: exponentials (exp(-gap/g0), sinh(V/V0)) leave double precision not far beyond these.
PARAM_RANGES = {"t0": (200.0, 500.0), "gap_min": (1e-11, 1e-8), "gap_max": (1e-11, 1e-8), "delta": (1e-13, 1e-10)}


@dataclass(frozen=True)
class RRAMParams:
    """Parameters of the Stanford-PKU RRAM model, SI units.

    Defaults are the published values of Stanford RRAM Model v1.0.0 (Jiang et al., IEEE TED
    2016): I0 = 1 mA, g0 = 0.25 nm, V0 = 0.25 V, v0 = 10 m/s, Ea = 0.6 eV, a0 = 0.25 nm,
    tox = 12 nm, gamma0 = 16, beta = 0.8, alpha = 3, g_min = 0.1 nm, g_max = 1.7 nm,
    Rth = 2.1 kK/W, T0 = 298 K.  ``delta`` (the smooth-bound length) is memsim's own.
    """

    i0: float = 1e-3
    g0: float = 0.25e-9
    v0: float = 0.25
    vel0: float = 10.0
    ea: float = 0.6
    a0: float = 0.25e-9
    tox: float = 12e-9
    gamma0: float = 16.0
    beta: float = 0.8
    alpha: float = 3.0
    g1: float = 1e-9
    rth: float = 2.1e3
    t0: float = 298.0
    gap_min: float = 0.1e-9
    gap_max: float = 1.7e-9
    delta: float = 0.005e-9

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            low, high = PARAM_RANGES.get(field.name) or (field.default / 10, field.default * 10)
            try:
                value = units.real(value)
            except ValueError:
                value = math.nan
            if not low <= value <= high:
                raise ValueError(f"RRAMParams.{field.name} must lie in [{low:.3g}, {high:.3g}] (the range in which "
                                 f"ngspice and the fast solver are checked to agree), got {units.shown(getattr(self, field.name))}")
            object.__setattr__(self, field.name, value)
        if self.gap_min >= self.gap_max:
            raise ValueError(f"RRAMParams needs gap_min < gap_max, got {self.gap_min} >= {self.gap_max}")

    def as_array(self) -> np.ndarray:
        """Parameters packed in field order, the form the Numba kernels take."""
        return np.array(_packed_fields(self), dtype=np.float64)

    def g_range(self, v_read: float = 0.2) -> tuple[float, float]:
        """(lowest, highest) read conductance in siemens reachable within the gap bounds."""
        return (float(conductance(v_read, self.gap_max, self)), float(conductance(v_read, self.gap_min, self)))

    # The device protocol both engines read a cell through (a compiled Verilog-A model,
    # memsim.devices.VerilogA, has the same methods); the state here is the gap in m.
    @property
    def state_bounds(self) -> tuple[float, float]:
        """(lowest, highest) state: the gap bounds in m."""
        return self.gap_min, self.gap_max

    def current(self, v, state):
        """Device current (A) at voltage ``v`` (V) and gap ``state`` (m)."""
        return current(v, state, self)

    def conductance(self, v_read, state):
        """Chord conductance (S) at ``v_read`` (V) and gap ``state`` (m)."""
        return conductance(v_read, state, self)

    def state_for_conductance(self, g_siemens, v_read: float = 0.2):
        """The gaps (m) that read ``g_siemens`` (S) at ``v_read``."""
        return gap_for_conductance(g_siemens, v_read, self)


DEFAULT_PARAMS = RRAMParams()


#: RRAMParams' fields in order, read in one call (dataclasses.fields per solve costs microseconds)
_packed_fields = operator.attrgetter(*(field.name for field in dataclasses.fields(RRAMParams)))


def current(v, gap, p: RRAMParams = DEFAULT_PARAMS):
    """Device current in A for voltage ``v`` (V, p minus n) and gap ``gap`` (m); broadcasts."""
    return p.i0 * np.exp(-np.asarray(gap) / p.g0) * np.sinh(np.asarray(v) / p.v0)


def dcurrent_dv(v, gap, p: RRAMParams = DEFAULT_PARAMS):
    """Differential conductance dI/dV in S."""
    return p.i0 / p.v0 * np.exp(-np.asarray(gap) / p.g0) * np.cosh(np.asarray(v) / p.v0)


def conductance(v_read, gap, p: RRAMParams = DEFAULT_PARAMS):
    """Chord conductance I/V in S at read voltage ``v_read`` (V, non-zero)."""
    v_read = np.asarray(v_read, dtype=float)
    if np.any(v_read == 0):
        raise ValueError("v_read must be non-zero: the chord conductance I/V is undefined at 0 V")
    return current(v_read, gap, p) / v_read


def gap_for_conductance(g_siemens, v_read: float = 0.2, p: RRAMParams = DEFAULT_PARAMS):
    """Inverse of :func:`conductance`: the gap (m) whose read conductance at ``v_read`` is ``g_siemens``.

    Raises ValueError when a target lies outside what the gap bounds allow.
    """
    g_siemens = np.asarray(g_siemens, dtype=float)
    if not np.all(np.isfinite(g_siemens)) or np.any(g_siemens <= 0):
        raise ValueError("target conductances must be finite and > 0 S")
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # out of range: refused below
        gap = -p.g0 * np.log(g_siemens * v_read / (p.i0 * np.sinh(v_read / p.v0)))
    lo, hi = p.g_range(v_read)
    tol = 1e-12
    if not np.all((gap >= p.gap_min * (1 - tol)) & (gap <= p.gap_max * (1 + tol))):  # NaN too
        raise ValueError(
            f"target conductances must lie in [{lo:.4g}, {hi:.4g}] S at a {v_read} V read "
            f"(the gap bounds [{p.gap_min:.3g}, {p.gap_max:.3g}] m); got "
            f"[{g_siemens.min():.4g}, {g_siemens.max():.4g}] S")
    return np.clip(gap, p.gap_min, p.gap_max)


def temperature(v, gap, p: RRAMParams = DEFAULT_PARAMS):
    """Filament temperature in K with Joule heating through Rth."""
    return p.t0 + np.abs(np.asarray(v) * current(v, gap, p)) * p.rth


def gap_rate(v, gap, p: RRAMParams = DEFAULT_PARAMS):
    """dg/dt in m/s (negative: SET, the gap shrinks), with the smooth bounds applied."""
    v = np.asarray(v, dtype=float)
    gap = np.asarray(gap, dtype=float)
    kt = K_B * temperature(v, gap, p)
    gamma = p.gamma0 - p.beta * (gap / p.g1) ** p.alpha
    raw = -p.vel0 * np.exp(-Q_E * p.ea / kt) * np.sinh(gamma * p.a0 / p.tox * Q_E * v / kt)
    w_up = 1.0 - np.exp(-np.maximum(p.gap_max - gap, 0.0) / p.delta)
    w_down = 1.0 - np.exp(-np.maximum(gap - p.gap_min, 0.0) / p.delta)
    return np.where(raw > 0, raw * w_up, raw * w_down)


def spice_subckt(p: RRAMParams = DEFAULT_PARAMS) -> str:
    """The model as two ngspice subcircuits: ``rram_dc`` and ``rram_tran``.

    ``rram_dc p n gap=<m>``: the read current with the gap as an instance parameter (DC reads,
    .op).  ``rram_tran p n x gap=<m>``: the same current, plus a 1 F capacitor on the
    internal node ``x`` (exposed as a port so its voltage, the gap in nm, can be saved) that
    integrates the gap rate, with initial condition ``gap``; use it with ``.tran ... uic``.
    """
    f = units.fmt
    nm = 1e9
    i_read = f"{f(p.i0)}*exp(-{{gap}}/{f(p.g0)})*sinh(V(p,n)/{f(p.v0)})"
    # In the transient subckt the gap is the node voltage V(x) in nm.
    i_tran = f"{f(p.i0)}*exp(-V(x)/{f(p.g0 * nm)})*sinh(V(p,n)/{f(p.v0)})"
    kt = f"({f(K_B)}*({f(p.t0)}+abs(V(p,n)*I(vm))*{f(p.rth)}))"
    gamma = f"({f(p.gamma0)}-{f(p.beta)}*pwr(V(x)/{f(p.g1 * nm)},{f(p.alpha)}))"
    raw = (f"(-{f(p.vel0 * nm)}*exp(-{f(Q_E * p.ea)}/{kt})"
           f"*sinh({gamma}*{f(p.a0 / p.tox * Q_E)}*V(p,n)/{kt}))")
    w_up = f"(1-exp(-max({f(p.gap_max * nm)}-V(x),0)/{f(p.delta * nm)}))"
    w_down = f"(1-exp(-max(V(x)-{f(p.gap_min * nm)},0)/{f(p.delta * nm)}))"
    return "\n".join([
        "* Stanford-PKU gap RRAM model (Jiang et al., IEEE TED 2016), smooth gap bounds",
        ".subckt rram_dc p n gap=1e-09",
        f"bi p n I={i_read}",
        ".ends rram_dc",
        ".subckt rram_tran p n x gap=1e-09",
        "* vm senses the device current for the Joule-heating term; node rate carries the",
        "* unbounded gap rate in nm/s; cx integrates the bounded rate into V(x), the gap in nm",
        "vm p pm 0",
        f"bi pm n I={i_tran.replace('V(p,n)', 'V(pm,n)')}",
        f"braw rate 0 V={raw}",
        f"cx x 0 1 ic={{gap*{f(nm)}}}",
        f"bx 0 x I=V(rate)>0 ? V(rate)*{w_up} : V(rate)*{w_down}",
        ".ends rram_tran",
    ])
