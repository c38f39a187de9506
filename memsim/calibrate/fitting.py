"""The fit: the reduced transistor's (beta, vto, lambda) by bounded least squares on the relative
errors of the sweeps (scipy.optimize.least_squares), written as a calibration file."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from ..devices.calibration import BSIM4_CARD, FITTED, Calibration, card_hash, mosfet_from
from ..errors import CalibrationError
from .sweeps import Dataset, SweepConfig, _predict_array, _predict_cells, sweep_spice, uncalibrated_params

#: bounds of the fitted parameters: beta (A/V^2), vto (V), lambda (1/V)
BOUNDS = {"beta": (1e-6, 1e-1), "vto": (-0.5, 1.5), "lambda_": (0.0, 2.0)}


def _residuals(dataset: Dataset, mosfet, config: SweepConfig) -> np.ndarray:
    cells = (_predict_cells(dataset.cell_gap, dataset.cell_v_gate, dataset.cell_v, mosfet) - dataset.cell_i) / dataset.cell_i
    parts = [cells]
    for gaps, v_in, i_col in dataset.arrays:
        mask = np.abs(i_col) > 0.01 * np.abs(i_col).max()
        parts.append((_predict_array(gaps, v_in, mosfet, config)[mask] - i_col[mask]) / i_col[mask])
    return np.concatenate(parts)


def _summary(residuals: np.ndarray, n_cells: int) -> dict:
    cells, arrays = residuals[:n_cells], residuals[n_cells:]
    return {"cells_rms_rel": float(np.sqrt(np.mean(cells ** 2))), "cells_max_rel": float(np.max(np.abs(cells))),
            "arrays_max_rel": float(np.max(np.abs(arrays))) if arrays.size else None, "points": int(residuals.size)}


def fit(dataset: Dataset, card: str | Path = BSIM4_CARD, config: SweepConfig = SweepConfig(), *,
        start: dict | None = None, max_nfev: int = 200) -> Calibration:
    """Fit (beta, vto, lambda) to ``dataset`` by bounded least squares on relative errors."""
    card = Path(card)
    start = dict(start or uncalibrated_params(config.w, config.l))
    lower = np.array([BOUNDS[k][0] for k in FITTED])
    upper = np.array([BOUNDS[k][1] for k in FITTED])
    x0 = np.clip([start[k] for k in FITTED], lower, upper)
    # beta spans decades: fit log(beta) so the steps are relative.
    def unpack(x):
        return {"beta": float(np.exp(x[0])), "vto": float(x[1]), "lambda_": float(x[2])}

    def residuals(x):
        return _residuals(dataset, mosfet_from(card, config.w, config.l, unpack(x)), config)

    x0 = np.array([math.log(x0[0]), x0[1], x0[2]])
    lo = np.array([math.log(lower[0]), lower[1], lower[2]])
    hi = np.array([math.log(upper[0]), upper[1], upper[2]])
    before = residuals(x0)
    result = least_squares(residuals, x0, bounds=(lo, hi), method="trf", xtol=1e-12, ftol=1e-12,
                           gtol=1e-12, max_nfev=max_nfev)
    if result.status <= 0 or not np.all(np.isfinite(result.fun)):
        raise CalibrationError(f"the calibration fit did not converge ({result.message}; {result.nfev} evaluations); "
                               "widen the sweep ranges or raise max_nfev")
    n_cells = dataset.cell_i.size
    return Calibration(
        card_file=card.name, card_sha256=card_hash(card), model_name=mosfet_from(card, config.w, config.l, start).model_name,
        w=config.w, l=config.l, params=unpack(result.x),
        fit_ranges={"v_read_V": [min(config.v_reads), max(config.v_reads)],
                    "v_gate_V": [min(config.v_gates), max(config.v_gates)], "preset": config.preset,
                    "array_sizes": list(config.array_sizes), "arrays_per_size": config.arrays_per_size,
                    "r_wire_ohm": config.r_wire, "v_gate_array_V": config.v_gate_array, "seed": config.seed},
        residuals=_summary(result.fun, n_cells), uncalibrated_residuals=_summary(before, n_cells),
        optimizer={"method": "scipy.optimize.least_squares trf, log(beta)", "status": int(result.status),
                   "message": str(result.message), "nfev": int(result.nfev), "start": start,
                   "bounds": {k: list(v) for k, v in BOUNDS.items()}},
        card_dir=str(card.parent))


def calibrate(card: str | Path = BSIM4_CARD, config: SweepConfig = SweepConfig(), *, out: str | Path | None = None,
              progress: bool = True) -> Calibration:
    """Run the ngspice sweeps on ``card``, fit, and (if ``out``) write the JSON file atomically."""
    card = Path(card)
    if not card.exists():
        raise CalibrationError(f"model card not found: {card}")
    dataset = sweep_spice(card, config, progress=progress)
    calibration = fit(dataset, card, config)
    if out is not None:
        calibration.save(out)
    return calibration
