"""Calibration: ngspice-solved currents fit the fast solver's reduced transistor model.

SPICE is the truth: the 1T1R netlists use a real MOSFET model card (default
``netlists/models/nmos_bsim4.lib``, BSIM4).  The fast solver evaluates a reduced
Shichman-Hodges transistor (beta, vto, lambda; see :mod:`memsim.devices.transistor`).
``calibrate`` runs ngspice sweeps, fits those three numbers by bounded least squares
(scipy.optimize.least_squares) and writes a versioned JSON file tied to the card by its
SHA-256; ``validate`` reports the error on held-out arrays larger than any used in the fit.

The sweeps:

- single 1T1R cells (ideal wires) over read voltage x gate voltage x every programmed level
  of a device preset;
- small 1T1R arrays (8x8, 16x16, 32x32 by default) with random levels and random inputs.

The error metric (:func:`column_error`): max over columns of |I_fast - I_spice| / |I_spice|,
over the columns whose SPICE current is above 1 % of the largest column current.

Selector-less (device) arrays have nothing to calibrate: the solver evaluates the same RRAM
equations as the netlist.  They are still part of the held-out report, as a check.
"""
from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    **{name: ("memsim.devices.calibration", name) for name in (
        "Calibration", "card_hash", "mosfet_from", "SCHEMA", "SCHEMA_VERSION", "BSIM4_CARD", "DEFAULT_CALIBRATION",
        "FITTED")},
    "CalibrationError": ("memsim.errors", "CalibrationError"),
    **{name: ("memsim.calibrate.sweeps", name) for name in (
        "SweepConfig", "QUICK", "Dataset", "column_error", "uncalibrated_params", "sweep_spice", "sweep_solver",
        "spice_run_seconds")},
    **{name: ("memsim.calibrate.fitting", name) for name in ("BOUNDS", "fit", "calibrate")},
    **{name: ("memsim.calibrate.report", name) for name in ("validate", "write_report")},
}
__getattr__ = lazy_getattr(__name__, globals(), _LAZY)
__all__ = sorted(_LAZY)
