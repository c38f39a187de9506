"""Sparse nodal analysis shared by the scipy solvers (:mod:`.reference`, :mod:`.stacked`).

Element stamps into a sparse nodal matrix, and the damped Newton iteration both solvers run on
their free nodes.  The fast 2D solver (:mod:`.core`) keeps its own loop: its unknowns are line
arrays handled by Numba kernels, not one vector with a sparse Jacobian.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..devices.transistor import drain_current
from ..errors import ConvergenceError


def stamp(n: int, a, b, g) -> sp.coo_matrix:
    """Nodal matrix (n, n) of conductances ``g`` (S) between nodes ``a`` and ``b`` (index arrays of
    one length), as COO: the caller converts it once to the format it solves in (duplicates sum)."""
    rows = np.concatenate([a, b, a, b])
    cols = np.concatenate([a, b, b, a])
    vals = np.concatenate([g, g, -g, -g])
    return sp.coo_matrix((vals, (rows, cols)), shape=(n, n))


def branch_stamp(n: int, p, q, di_dvp, di_dvq) -> sp.coo_matrix:
    """Jacobian (n, n) of currents flowing from node ``p`` to node ``q`` (a cell, a transistor's
    channel) whose derivatives are ``di_dvp`` with respect to v(p) and ``di_dvq`` with respect to
    v(q) (S), as COO.  A conductance g is ``di_dvp = g``, ``di_dvq = -g``."""
    rows = np.concatenate([p, p, q, q])
    cols = np.concatenate([p, q, p, q])
    vals = np.concatenate([di_dvp, di_dvq, -di_dvp, -di_dvq])
    return sp.coo_matrix((vals, (rows, cols)), shape=(n, n))


#: Central-difference step (V) of the transistor's derivatives.
FD_STEP = 1e-7


def channel_branch(v_gate, v_drain, v_source, params):
    """Drain-to-source current of the reduced transistor (:func:`memsim.devices.drain_current`,
    A) and its derivatives with respect to v(drain) and v(source) (S), by central differences of
    :data:`FD_STEP` (the model has kinks at the linear-saturation and on-off edges)."""
    def channel(d, s):
        return drain_current(v_gate - s, d - s, params)

    h = FD_STEP
    return (channel(v_drain, v_source), (channel(v_drain + h, v_source) - channel(v_drain - h, v_source)) / (2 * h),
            (channel(v_drain, v_source + h) - channel(v_drain, v_source - h)) / (2 * h))


#: Backtracking: halvings of a step at most, and the step below which it is taken as it is.
HALVINGS = 40
MIN_STEP = 1e-9
#: Armijo's sufficient decrease of the residual norm, per unit of step.
ARMIJO = 1e-4


def damped_newton(residual, jacobian, factor, v, free, *, tol: float, max_iter: int,
                  stall_tol: float | None = None, max_step: float = 0.2, what: str = "Newton",
                  advice: str = "lower the voltages or raise max_iter"):
    """Damped Newton on the free nodes of the nodal equations ``residual(v) = 0``.

    ``residual(v)``: current leaving each node into the elements (A), shape (n,), for the full
    vector ``v`` of node voltages (V); ``jacobian(v)``: its sparse derivative (n, n);
    ``factor(matrix)``: for the CSC free-free block of the Jacobian, a function that solves it
    for a right-hand side (a direct LU, or a preconditioned iterative solve).  ``v``: the start,
    fixed nodes at their voltages (kept); ``free``: indices of the unknown nodes.

    An update ``dx`` is accepted, and applied, when ``max|dx| <= tol`` (V); with ``stall_tol``,
    also when ``max|dx| <= stall_tol`` and it shrank by less than half since the previous step
    (the rounding floor of the linear solves, which quadratic convergence cannot pass).  Other
    steps are capped at ``max_step`` volts on the largest node, then halved until the residual
    norm on the free nodes falls by the Armijo fraction (up to :data:`HALVINGS` times, or below
    a step of :data:`MIN_STEP`): backtracking line search, Dennis and Schnabel, Numerical
    Methods for Unconstrained Optimization and Nonlinear Equations, Prentice-Hall 1983, sec. 6.3.

    Returns ``(v, iterations)``, a new array.  Raises :class:`~memsim.errors.ConvergenceError`
    naming ``what``, the last update and the residual norm reached, and ``advice``.
    """
    if free.size == 0:
        return v, 0
    f = residual(v)
    largest = np.inf
    for iteration in range(1, max_iter + 1):
        dx = factor(jacobian(v)[free][:, free].tocsc())(-f[free])
        previous, largest = largest, float(np.abs(dx).max())
        if largest <= tol or (stall_tol is not None and largest <= stall_tol and largest > 0.5 * previous):
            v = v.copy()
            v[free] += dx
            return v, iteration
        step = min(1.0, max_step / max(largest, 1e-300))
        norm0 = np.linalg.norm(f[free])
        for _ in range(HALVINGS):
            trial = v.copy()
            trial[free] += step * dx
            f_trial = residual(trial)
            if np.linalg.norm(f_trial[free]) <= (1 - ARMIJO * step) * norm0 or step < MIN_STEP:
                break
            step *= 0.5
        v, f = trial, f_trial
    raise ConvergenceError(f"{what} did not converge in {max_iter} iterations (last update {largest:.3g} V, "
                           f"residual {np.linalg.norm(f[free]):.3g} A); {advice}", largest)
