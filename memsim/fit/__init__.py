"""Fitting memsim's compact model to measured device data (``memsim fit``).

- :func:`read_iv`, :func:`read_pulses`: the CSV formats of docs/fitting.md, validated (one
  line per refusal; a :class:`UnitWarning` where the numbers look like uA, mA or uS);
- :func:`simulate_sweep`, :func:`simulate_train`: the gap ODE of the Stanford-PKU model
  (:mod:`memsim.devices.rram`) integrated over each sweep (with the SMU's compliance) and
  pulse train;
- :func:`fit` (and :func:`fit_iv`, :func:`fit_pulses`): bounded least squares in log
  parameters, with identifiability from the Jacobian: what the data cannot fix is held at its
  start value and named in a :class:`FitWarning`;
- :func:`measure_spread`: cycle-to-cycle and device-to-device spread into
  :class:`memsim.devices.presets.Variability`;
- :class:`DeviceCard`, :func:`load_card`: the versioned JSON card tied to the data by SHA-256,
  giving RRAMParams, a DevicePreset and a memsim.nn HardwareConfig.
"""
from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    **{name: ("memsim.fit.data", name) for name in (
        "read_iv", "read_pulses", "write_iv", "write_pulses", "Sweep", "PulseTrain", "Dataset", "UnitWarning")},
    **{name: ("memsim.fit.model", name) for name in ("simulate_sweep", "simulate_train", "start_gap")},
    **{name: ("memsim.fit.fitting", name) for name in (
        "fit", "fit_iv", "fit_pulses", "FitResult", "FitWarning", "DEFAULT_FREE", "FITTABLE")},
    "measure_spread": ("memsim.fit.spread", "measure"),
    "Spread": ("memsim.fit.spread", "Spread"),
    **{name: ("memsim.fit.card", name) for name in ("DeviceCard", "load_card")},
    **{name: ("memsim.fit.report", name) for name in ("make_card", "write_report")},
}
__getattr__ = lazy_getattr(__name__, globals(), _LAZY)
__all__ = sorted(_LAZY)
