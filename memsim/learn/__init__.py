"""On-chip learning with the compact model's own pulse response.

- :mod:`memsim.learn.response`: the pulse response of a cell measured by ngspice transients
  (gap change and energy per SET/RESET pulse vs gap, amplitude and width), stored as a
  versioned table, and :class:`PulseModel`, which integrates the compact model's own gap rate
  over a pulse (the table is its ngspice check).
- :mod:`memsim.learn.insitu`: in-situ training of an MLP on crossbar tiles with pulsed
  updates (stochastic pulse trains, row-wise write-verify, error-aware probabilistic update),
  half-select disturb per bias scheme, pulse counts against an endurance budget, energy.
- :mod:`memsim.learn.energy`: the energy of a programming pulse on a small array with its
  wires (ngspice), and its scaling to a tile with the fast solver.

Loading this package loads nothing heavy; its modules import scipy and torch on first use.
"""
from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {"ResponseTable": ("memsim.learn.response", "ResponseTable"), "PulseModel": ("memsim.learn.response", "PulseModel"),
         "Grid": ("memsim.learn.response", "Grid"), "response": ("memsim.learn.response", None),
         "insitu": ("memsim.learn.insitu", None), "energy": ("memsim.learn.energy", None),
         "InSituConfig": ("memsim.learn.insitu", "InSituConfig"), "InSituTrainer": ("memsim.learn.insitu", "InSituTrainer")}
__all__ = sorted(_LAZY)
__getattr__ = lazy_getattr(__name__, globals(), _LAZY)
