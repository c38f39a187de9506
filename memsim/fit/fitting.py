"""Least-squares fit of the compact model to I-V sweeps and pulse trains, with identifiability.

The free parameters are fitted in log space, x_k = ln(p_k / p_k,start), by bounded
``scipy.optimize.least_squares`` (trust-region reflective) within the range
:class:`~memsim.devices.rram.RRAMParams` accepts.  Residuals:

- I-V: ln((|I_model| + floor) / (|I_measured| + floor)) per sample, ``floor`` (A) a current
  below which samples count as noise (default 1e-3 of the largest |I|), so HRS and LRS both count;
- pulses: ln(G_model / G_measured) per read after a pulse;

each data set scaled by 1/sqrt(its size), so a sweep file and a pulse file weigh the same.

Identifiability (after each fit): the Jacobian J of the residuals in log parameters is the
relative sensitivity of the data to each parameter.  With columns scaled to unit norm, its
singular values say whether some combination of parameters leaves the data unchanged: if the
smallest over the largest is below ``cond_limit``, the parameter carrying most of that
direction is held at its start value and the rest is fitted again.  A parameter whose
relative standard error (from sigma^2 (J^T J)^-1, sigma^2 the residual variance) exceeds
``rel_error_limit`` is held too.  Each held parameter is named in a :class:`FitWarning`
saying why.  (Bates and Watts, "Nonlinear Regression Analysis and Its Applications", Wiley
1988, ch. 2-3, for the linearised standard errors and correlations.)
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from .. import units
from ..devices.rram import PARAM_RANGES, RRAMParams
from . import model

#: What the fit frees by default: read current scale and shape, and the switching kinetics.
DEFAULT_FREE = ("i0", "g0", "v0", "vel0", "gamma0", "beta")
#: The parameters a fit may free (every field of RRAMParams except the smooth-bound length).
FITTABLE = tuple(f.name for f in dataclasses.fields(RRAMParams) if f.name != "delta")
#: Finite-difference step of the Jacobian in log parameters (well above the ODE's own noise).
DIFF_STEP = 1e-4


class FitWarning(UserWarning):
    """A parameter was held at its start value: the data cannot determine it."""


@dataclass
class FitResult:
    """A fitted parameter set and what the fit learned about each parameter."""

    params: RRAMParams
    start: RRAMParams
    fitted: tuple  # names fitted
    held: dict  # name -> why it was held at its start value
    rel_error: dict  # name -> relative standard error (1-sigma) of a fitted parameter
    correlation: np.ndarray  # between the fitted parameters, in log space
    singular_values: np.ndarray  # of the column-scaled Jacobian at the optimum
    residuals: dict  # per data set: rms and max relative error, points
    cost: float
    evaluations: int
    message: str
    groups: dict = field(default_factory=dict)  # per (kind, device, cycle): rms relative error

    def table(self, truth: RRAMParams | None = None) -> str:
        """A plain-text table: parameter, start, fitted (and true, error), identifiable."""
        rows = [f"{'param':<8}{'start':>12}{'fitted':>12}" + (f"{'true':>12}{'error':>9}" if truth else "")
                + "  identifiable"]
        for name in self.fitted + tuple(self.held):
            value = getattr(self.params, name)
            line = f"{name:<8}{getattr(self.start, name):>12.4g}{value:>12.4g}"
            if truth is not None:
                true = getattr(truth, name)
                line += f"{true:>12.4g}{(value / true - 1):>9.2%}"
            line += ("  yes (+-%.2g %%)" % (100 * self.rel_error[name]) if name in self.fitted
                     else f"  no: {self.held[name]}")
            rows.append(line)
        return "\n".join(rows)


def _with(start: RRAMParams, names, x) -> RRAMParams:
    return dataclasses.replace(start, **{n: getattr(start, n) * math.exp(v) for n, v in zip(names, x)})


def _bounds(start: RRAMParams, names) -> tuple[np.ndarray, np.ndarray]:
    low, high = [], []
    for name in names:
        default = next(f.default for f in dataclasses.fields(RRAMParams) if f.name == name)
        lo, hi = PARAM_RANGES.get(name) or (default / 10, default * 10)
        value = getattr(start, name)
        # A hair inside the accepted range: the Jacobian's steps must stay in it too.
        low.append(math.log(lo / value) + 1e-3)
        high.append(math.log(hi / value) - 1e-3)
    return np.array(low), np.array(high)


def floor_of(iv) -> float:
    """The default current floor (A): 1e-3 of the largest measured |I|."""
    return 1e-3 * max(float(np.max(np.abs(s.i))) for s in iv.groups)


class _Problem:
    """Residuals of the data sets for a parameter set."""

    def __init__(self, iv, pulses, floor, t_edge):
        self.iv, self.pulses, self.t_edge = iv, pulses, t_edge
        self.floor = floor if floor is not None else (floor_of(iv) if iv is not None else 0.0)
        self.iv_weight = 1 / math.sqrt(len(iv)) if iv is not None else 0.0
        self.pulse_weight = 1 / math.sqrt(sum(g.amplitude.size - 1 for g in pulses.groups)) if pulses is not None else 0.0

    def predictions(self, p: RRAMParams):
        """{(kind, device, cycle): (model, measured)} for each sweep (currents) and train
        (conductances after each pulse)."""
        out = {}
        if self.iv is not None:
            for sweep in self.iv.groups:
                out[("iv",) + sweep.key] = (model.simulate_sweep(sweep, p)[0], sweep.i)
        if self.pulses is not None:
            for train in self.pulses.groups:
                out[("pulses",) + train.key] = (model.simulate_train(train, p, self.t_edge)[0][1:], train.g_read[1:])
        return out

    def residuals(self, p: RRAMParams) -> np.ndarray:
        parts = []
        for key, (predicted, measured) in self.predictions(p).items():
            if key[0] == "iv":
                parts.append(self.iv_weight * np.log((np.abs(predicted) + self.floor) / (np.abs(measured) + self.floor)))
            else:
                parts.append(self.pulse_weight * np.log(predicted / measured))
        return np.concatenate(parts)

    def report(self, p: RRAMParams) -> tuple[dict, dict]:
        """Relative errors: per data set (rms, max, points above the floor) and per group (rms)."""
        sets, groups = {}, {}
        for key, (predicted, measured) in self.predictions(p).items():
            keep = np.abs(measured) > (self.floor if key[0] == "iv" else 0.0)
            rel = predicted[keep] / measured[keep] - 1
            groups[key] = float(np.sqrt(np.mean(rel ** 2))) if rel.size else math.nan
            sets.setdefault(key[0], []).append(rel)
        for kind, parts in sets.items():
            rel = np.concatenate(parts)
            sets[kind] = {"rms_rel": float(np.sqrt(np.mean(rel ** 2))), "max_rel": float(np.max(np.abs(rel))),
                          "points": int(rel.size)}
        return sets, groups


def check_free(free) -> tuple:
    names = tuple(free)
    unknown = [n for n in names if n not in FITTABLE]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"free parameters must be distinct names among {','.join(FITTABLE)}; got {','.join(names) or 'none'}")
    return names


def fit(iv=None, pulses=None, free=DEFAULT_FREE, start: RRAMParams | None = None, *, floor: float | None = None,
        t_edge: float = model.T_EDGE, cond_limit: float = 1e-3, rel_error_limit: float = 0.2,
        max_evaluations: int = 200, warn: bool = True) -> FitResult:
    """Fit ``free`` parameters of the compact model to I-V sweeps and/or pulse trains.

    Parameters
    ----------
    iv, pulses : Dataset or None
        From :func:`memsim.fit.read_iv` and :func:`memsim.fit.read_pulses` (at least one).
    free : names of RRAMParams fields to fit (default :data:`DEFAULT_FREE`).
    start : start values and the values of every parameter not fitted (default: published).
    floor : current (A) below which I-V samples count as noise (default 1e-3 of the largest).
    t_edge : pulse edge time (s) of the pulse trains.
    cond_limit, rel_error_limit : identifiability thresholds (module docstring).

    Returns a :class:`FitResult`; held parameters are named in a :class:`FitWarning`.
    """
    if iv is None and pulses is None:
        raise ValueError("fit needs I-V data, pulse data or both")
    names = check_free(free)
    start = start or RRAMParams()
    if floor is not None:
        floor = units.real(floor, "floor", low=0.0, unit="A")
    t_edge = units.real(t_edge, "t_edge", low=1e-12, high=1e-3, unit="s")
    cond_limit = units.real(cond_limit, "cond_limit", low=0.0, high=1.0)
    rel_error_limit = units.real(rel_error_limit, "rel_error_limit", low=0.0)
    max_evaluations = units.integer(max_evaluations, "max_evaluations", low=1, high=100_000)
    problem = _Problem(iv, pulses, floor, t_edge)
    held: dict = {}
    evaluations = 0
    x_start = {n: 0.0 for n in names}
    if iv is not None and pulses is not None:
        # The sweeps first: from the published values a joint fit can settle in a local minimum
        # that fits the pulses at the cost of the sweeps; from the sweeps' optimum it does not.
        first = fit(iv=iv, free=names, start=start, floor=problem.floor, cond_limit=cond_limit,
                    rel_error_limit=rel_error_limit, max_evaluations=max_evaluations, warn=False)
        evaluations += first.evaluations
        x_start.update({n: math.log(getattr(first.params, n) / getattr(start, n)) for n in first.fitted})
    while True:
        active = tuple(n for n in names if n not in held)
        if not active:
            raise ValueError(f"the data determine none of the free parameters ({', '.join(names)}): "
                             + "; ".join(f"{n}: {why}" for n, why in held.items()))
        low, high = _bounds(start, active)
        x0 = np.clip([x_start[n] for n in active], low + 1e-9, high - 1e-9)
        result = least_squares(lambda x: problem.residuals(_with(start, active, x)), x0, bounds=(low, high),
                               method="trf", diff_step=DIFF_STEP, x_scale=1.0, max_nfev=max_evaluations,
                               xtol=1e-10, ftol=1e-12, gtol=1e-10)
        evaluations += result.nfev
        x_start.update(zip(active, result.x))
        jac = _jacobian(problem, start, active, result.x, result.fun)
        evaluations += len(active)
        norms = np.linalg.norm(jac, axis=0)
        scaled = jac / np.where(norms > 0, norms, 1.0)
        _, singular, vt = np.linalg.svd(scaled, full_matrices=False)
        dof = max(result.fun.size - len(active), 1)
        sigma2 = float(result.fun @ result.fun) / dof
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = np.linalg.pinv(jac.T @ jac)
        rel_error = np.sqrt(np.maximum(np.diag(inverse) * sigma2, 0.0))
        ratio = singular[-1] / singular[0] if singular[0] > 0 else 0.0
        if ratio < cond_limit and len(active) > 1:
            direction = np.abs(vt[-1])
            # Among the parameters carrying that direction, hold the one listed last: the
            # caller lists what matters most first.
            pick = max(k for k in range(len(active)) if direction[k] >= 0.5 * direction.max())
            partners = [active[k] for k in np.argsort(-direction) if k != pick and direction[k] > 0.2]
            held[active[pick]] = (f"the data fix only a combination of it with {', '.join(partners) or 'the others'} "
                                  f"(singular value ratio {ratio:.1e})")
            continue
        if norms.max() > 0 and np.any(norms < 1e-6 * norms.max()):
            k = int(np.argmin(norms))
            held[active[k]] = "the data do not depend on it"
            continue
        worst = int(np.argmax(rel_error))
        if rel_error[worst] > rel_error_limit and len(active) > 1:
            held[active[worst]] = f"relative standard error {rel_error[worst]:.0%} > {rel_error_limit:.0%}"
            continue
        break
    params = _with(start, active, result.x)
    for name in held:
        params = dataclasses.replace(params, **{name: getattr(start, name)})
    scale = np.sqrt(np.maximum(np.diag(inverse), 1e-300))
    correlation = inverse / np.outer(scale, scale)
    sets, groups = problem.report(params)
    if held and warn:
        warnings.warn("held at their start values (the data cannot determine them): "
                      + "; ".join(f"{n}: {why}" for n, why in held.items()), FitWarning, stacklevel=2)
    return FitResult(params=params, start=start, fitted=active, held=held,
                     rel_error=dict(zip(active, rel_error.tolist())), correlation=correlation,
                     singular_values=singular, residuals=sets, cost=float(result.cost), evaluations=evaluations,
                     message=result.message, groups=groups)


def _jacobian(problem, start, names, x, at_x) -> np.ndarray:
    """Forward differences of the residuals in log parameters at ``x`` (``at_x`` the residuals
    there), steps of DIFF_STEP: small enough that no step crosses the residuals' kinks (the
    compliance corner, the gap bounds), large enough to stay above the ODE's own noise."""
    columns = []
    for k in range(len(names)):
        step = DIFF_STEP if x[k] + DIFF_STEP <= _bounds(start, names)[1][k] else -DIFF_STEP
        moved = np.array(x, dtype=float)
        moved[k] += step
        columns.append((problem.residuals(_with(start, names, moved)) - at_x) / step)
    return np.array(columns).T


def fit_iv(iv, free=DEFAULT_FREE, start=None, **options) -> FitResult:
    """:func:`fit` on I-V sweeps alone."""
    return fit(iv=iv, free=free, start=start, **options)


def fit_pulses(pulses, free=("vel0", "gamma0"), start=None, **options) -> FitResult:
    """:func:`fit` on pulse trains alone (default free: the switching kinetics)."""
    return fit(pulses=pulses, free=free, start=start, **options)
