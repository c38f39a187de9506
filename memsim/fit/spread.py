"""Cycle-to-cycle and device-to-device spread from I-V sweeps, in memsim's Variability form.

Each sweep gives two read conductances at ``v_read`` (chord I/V, interpolated in |v|):
the low-resistance state on the branch after the sweep's highest voltage (SET done) and the
high-resistance state on the branch after its lowest (RESET done).  memsim's programming
spread (:class:`memsim.devices.presets.Variability`) is

    G = G_target (1 + sigma_d2d xi_device) exp(sigma_c2c zeta_cycle)

so, per state, ``sigma_c2c`` is the pooled within-device standard deviation of ln G (each
device's own sample standard deviation, squared, averaged), and ``sigma_d2d`` the standard
deviation over devices of each device's mean G relative to the mean over devices, with the
part the cycle-to-cycle spread alone gives such means (sigma_c2c^2 / cycles) taken out.
``sigma_read`` is the rms relative residual of a fit (an upper bound: model error adds to
it).  Drift cannot be measured from sweeps: it keeps the default (see docs/fitting.md for
the drift statistics memsim reads).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import units
from ..devices.presets import Variability

STATES = ("lrs", "hrs")


def read_states(sweep, v_read: float = 0.2) -> dict:
    """{"lrs": S, "hrs": S}: the read conductances of one sweep at ``v_read`` (V)."""
    out = {}
    for state, extreme in (("lrs", np.argmax(sweep.v)), ("hrs", np.argmin(sweep.v))):
        sign = np.sign(sweep.v[extreme])
        branch = np.arange(extreme, sweep.v.size)
        branch = branch[np.sign(sweep.v[branch]) == sign] if sign else branch[:0]
        # The branch runs from the extreme back towards 0 V, contiguous.
        if branch.size:
            stop = np.flatnonzero(np.diff(branch) != 1)
            branch = branch[:stop[0] + 1] if stop.size else branch
        magnitude = np.abs(sweep.v[branch])
        if branch.size < 2 or not magnitude.min() <= v_read <= magnitude.max():
            raise ValueError(f"device {sweep.device!r} cycle {sweep.cycle}: no {state.upper()} branch passing "
                             f"|v| = {v_read} V after the sweep's {'highest' if state == 'lrs' else 'lowest'} voltage; "
                             "sweeps need both polarities and a return through the read voltage")
        order = np.argsort(magnitude)
        chord = np.abs(sweep.i[branch] / sweep.v[branch])
        out[state] = float(np.interp(v_read, magnitude[order], chord[order]))
    return out


@dataclasses.dataclass(frozen=True)
class Spread:
    """Measured spreads per state: ``states[state]`` = {"sigma_c2c", "sigma_d2d", "median_s",
    "devices", "cycles"}; ``g`` = {(device, cycle): {state: S}}."""

    v_read: float
    states: dict
    g: dict
    source: object = None  # the Dataset measured

    def variability(self, state: str = "hrs", sigma_read: float | None = None, base: Variability | None = None):
        """memsim's Variability with this state's spreads (and ``sigma_read``; drift from ``base``)."""
        base = base or Variability()
        figures = self.states[state]
        changes = {"sigma_c2c": figures["sigma_c2c"], "sigma_d2d": figures["sigma_d2d"]}
        if sigma_read is not None:
            changes["sigma_read"] = sigma_read
        return dataclasses.replace(base, **changes)


def measure(iv, v_read: float = 0.2) -> Spread:
    """Spreads of the LRS and HRS read conductances over the cycles and devices of ``iv``."""
    v_read = units.real(v_read, "v_read", low=1e-3, high=1.0, unit="V")
    g = {sweep.key: read_states(sweep, v_read) for sweep in iv.groups}
    devices = list(dict.fromkeys(device for device, _ in g))
    states = {}
    for state in STATES:
        per_device = [np.array([g[key][state] for key in g if key[0] == device]) for device in devices]
        within = [np.var(np.log(values), ddof=1) for values in per_device if values.size > 1]
        c2c = math.sqrt(float(np.mean(within))) if within else math.nan
        cycles = float(np.mean([values.size for values in per_device]))
        if len(per_device) > 1:
            means = np.array([values.mean() for values in per_device])
            d2d_var = float(np.var(means / means.mean(), ddof=1)) - (c2c ** 2 / cycles if within else 0.0)
            d2d = math.sqrt(max(d2d_var, 0.0))
        else:
            d2d = math.nan
        states[state] = {"sigma_c2c": c2c, "sigma_d2d": d2d,
                         "median_s": float(np.median(np.concatenate(per_device))),
                         "devices": len(per_device), "cycles": cycles}
    return Spread(v_read, states, g, iv)
