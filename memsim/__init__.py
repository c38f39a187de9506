"""memsim: SPICE-level co-simulation of RRAM crossbars.

The public names (DESIGN.md)::

    xb = memsim.Crossbar.ohmic(g, r_row=1.0, r_col=1.0)
    res = memsim.solve(xb, v)          # fast Numba nodal solver
    ref = memsim.simulate(xb, v)       # the same circuit solved by ngspice
    text = memsim.netlist.mvm(xb, v)   # the ngspice netlist as text

Importing memsim is cheap: the solver, ngspice runner and netlist generator load on first use.
"""
from __future__ import annotations

from ._lazy import lazy_getattr
from .array import Crossbar
from .bias import SCHEMES, Bias
from .errors import ConvergenceError, MemsimError, ResourceLimitError, SpiceError
from .result import SolveResult

__version__ = "0.1.0"

_LAZY = {"simulate": ("memsim.spice", "simulate"), "simulate_read": ("memsim.spice", "simulate_read"),
         "solve": ("memsim.solver", "solve"), "solve_read": ("memsim.solver", "solve_read"),
         "netlist": ("memsim.netlist", None), "devices": ("memsim.devices", None),
         "spice": ("memsim.spice", None), "solver": ("memsim.solver", None)}

__all__ = ["Crossbar", "Bias", "SCHEMES", "SolveResult", "SpiceError", "ConvergenceError", "MemsimError", "ResourceLimitError",
           *_LAZY]


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)
