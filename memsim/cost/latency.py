"""Settling of a crossbar line: an RC ladder driven at one end, open at the other.

A row is driven at its left end through one segment and has one segment between neighbouring
cells (docs/design.md); a column runs to its sense node the same way.  Either is a ladder of
``n`` nodes, segment resistance ``r`` (the first one plus the driver's output resistance) and
node capacitance ``c`` (wire over one cell plus the cell, :func:`memsim.cost.array.node_capacitance`).
The cells' conductance is left out (a cell is far weaker than a wire segment).

- Elmore delay of the far end (W. C. Elmore, "The transient response of damped linear networks
  with particular regard to wideband amplifiers", J. Appl. Phys. 19, 55, 1948): the sum over
  segments of the segment's resistance times the capacitance beyond it,
  ``r_source n c + r c n (n - 1) / 2`` for a uniform ladder; it is the first moment of the step
  response, the integral of (1 - v(t) / V).
- Settling time to a fraction ``eps``: from the ladder's exact modes (eigenvalues of the
  tridiagonal conductance matrix over c), the time after which the far end stays within eps of
  its final value.  One pole at the Elmore delay would give ``elmore ln(1/eps)``; a distributed
  line settles sooner than that (a 64-node line: 5.80 Elmore delays to eps = 1e-3, one
  pole: ln(1000) = 6.91), so memsim uses the modes.
"""
from __future__ import annotations

import math

import numpy as np

from .. import units

#: Largest ladder accepted (nodes): far beyond any crossbar line.
MAX_NODES = 1 << 16


def _check(n, r_ohm, c_farad, r_source_ohm):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_NODES:
        raise ValueError(f"n (nodes on the line) must be an integer in [1, {MAX_NODES}], got {units.shown(n)}")
    r = units.real(r_ohm, "r_ohm (segment resistance)", low=0.0, unit="ohm")
    c = units.real(c_farad, "c_farad (node capacitance)", low=0.0, unit="F")
    rs = units.real(r_source_ohm, "r_source_ohm (driver resistance)", low=0.0, unit="ohm")
    return int(n), r, c, rs


def elmore_delay(n: int, r_ohm: float, c_farad: float, r_source_ohm: float = 0.0) -> float:
    """Elmore delay (s) of the far node of a ladder of ``n`` nodes: the first segment
    ``r_ohm + r_source_ohm``, the others ``r_ohm``, every node ``c_farad`` to ground."""
    n, r, c, rs = _check(n, r_ohm, c_farad, r_source_ohm)
    return (rs + r) * n * c + r * c * n * (n - 1) / 2.0


def _modes(n, r, c, rs):
    """Decay rates (1/s) and far-node weights of the step response 1 - sum_k w_k exp(-l_k t)."""
    from scipy.linalg import eigh_tridiagonal

    g = np.full(n, 2.0 / r) if r > 0 else np.zeros(n)
    g[0] = 1.0 / (rs + r) + (1.0 / r if n > 1 else 0.0)
    if n > 1:
        g[-1] = 1.0 / r
    off = np.full(n - 1, -1.0 / r) if n > 1 else np.zeros(0)
    rates, vectors = eigh_tridiagonal(g / c, off / c)
    # v(t) = (I - exp(-A t)) 1 with A = G / c symmetric: the far node's weight of mode k is
    # phi_k[-1] (phi_k . 1).
    return rates, vectors[-1] * vectors.sum(axis=0)


def settling_time(n: int, r_ohm: float, c_farad: float, r_source_ohm: float = 0.0, *,
                  fraction: float = 1e-3) -> float:
    """Time (s) after a step at the driver until the far node of the ladder stays within
    ``fraction`` of its final value (see the module docstring)."""
    n, r, c, rs = _check(n, r_ohm, c_farad, r_source_ohm)
    eps = units.real(fraction, "fraction", low=0.0, high=1.0)
    if not 0.0 < eps < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {eps!r}")
    if c == 0.0 or (r == 0.0 and rs == 0.0):
        return 0.0
    if r == 0.0:  # ideal wire: one lumped node behind the driver
        return rs * n * c * math.log(1.0 / eps)
    if n > 4096:
        raise ValueError(f"settling_time works on lines of at most 4096 nodes, got {n}")
    rates, weights = _modes(n, r, c, rs)

    def left(t):
        return float(np.sum(weights * np.exp(-rates * t))) - eps

    # The far node of an RC tree rises monotonically: one crossing, bracketed from one pole at
    # the slowest rate (an upper bound) down to 0.
    hi = math.log(max(float(np.sum(np.abs(weights))), 1.0) / eps) / float(rates.min())
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if left(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def line_netlist(n: int, r_ohm: float, c_farad: float, r_source_ohm: float = 0.0, *, t_stop: float,
                 t_rise: float) -> str:
    """ngspice transient netlist of the ladder: a step of 1 V rising linearly in ``t_rise`` s at
    the driver, ``t_stop`` s simulated; the far node is ``n{n}``.  Every number goes through
    :func:`memsim.units.fmt`."""
    n, r, c, rs = _check(n, r_ohm, c_farad, r_source_ohm)
    t_stop = units.real(t_stop, "t_stop", low=0.0, unit="s")
    t_rise = units.real(t_rise, "t_rise", low=0.0, unit="s")
    if not 0.0 < t_rise < t_stop:
        raise ValueError(f"t_rise must be in (0, t_stop), got {t_rise!r} with t_stop {t_stop!r}")
    if r + rs == 0.0:
        raise ValueError("a line with no resistance has no transient to simulate (r_ohm + r_source_ohm is 0)")
    fmt = units.fmt
    lines = [f"* memsim: RC line of {n} nodes", f"vin n0 0 pwl(0 0 {fmt(t_rise)} 1.0)"]
    for k in range(1, n + 1):
        seg = r + rs if k == 1 else r
        # A 0-ohm segment is a 0 V source, as in the crossbar netlists (ngspice makes R = 0 1 milliohm).
        lines.append(f"r{k} n{k - 1} n{k} {fmt(seg)}" if seg > 0 else f"vseg{k} n{k - 1} n{k} 0")
        lines.append(f"c{k} n{k} 0 {fmt(c)}")
    step = t_stop / 4000.0
    lines += [".options reltol=1e-6 abstol=1e-15 vntol=1e-9",
              f".tran {fmt(step)} {fmt(t_stop)} 0 {fmt(min(step, t_rise))}", f".print tran v(n{n})", ".end", ""]
    return "\n".join(lines)


def spice_step(n: int, r_ohm: float, c_farad: float, r_source_ohm: float = 0.0, *, t_stop: float,
               t_rise: float, backend: str = "subprocess") -> tuple[np.ndarray, np.ndarray]:
    """(time s, far-node voltage V) of :func:`line_netlist` run by ngspice."""
    from ..circuit.spice import run_netlist

    vectors = run_netlist(line_netlist(n, r_ohm, c_farad, r_source_ohm, t_stop=t_stop, t_rise=t_rise),
                          backend=backend)
    return vectors["time"], vectors[f"v(n{n})"]
