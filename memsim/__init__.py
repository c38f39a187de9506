"""memsim: SPICE-level co-simulation of RRAM crossbars.

The public names (docs/design.md)::

    xb = memsim.Crossbar.ohmic(g, r_row=1.0, r_col=1.0)
    res = memsim.solve(xb, v)          # fast Numba nodal solver
    ref = memsim.simulate(xb, v)       # the same circuit solved by ngspice
    text = memsim.netlist.mvm(xb, v)   # the ngspice netlist as text

Importing memsim is cheap: the solver, ngspice runner, netlist generator and the subpackages
(``memsim.calibrate``, ``memsim.study``, ``memsim.nn``, ``memsim.compensate``, ...) load on first use.
"""
from __future__ import annotations

from ._lazy import keep_old_names, lazy_getattr
from .circuit.array import Crossbar
from .circuit.bias import SCHEMES, Bias
from .circuit.result import SolveResult
from .errors import ConvergenceError, FileError, MemsimError, ResourceLimitError, SpiceError

__version__ = "0.1.0"

_LAZY = {"simulate": ("memsim.circuit.spice", "simulate"),
         "simulate_read": ("memsim.circuit.spice", "simulate_read"),
         "solve": ("memsim.solver", "solve"), "solve_read": ("memsim.solver", "solve_read"),
         "netlist": ("memsim.circuit.netlist", None), "devices": ("memsim.devices", None),
         "spice": ("memsim.circuit.spice", None), "solver": ("memsim.solver", None),
         "calibrate": ("memsim.calibrate", None), "study": ("memsim.study", None), "nn": ("memsim.nn", None),
         "compensate": ("memsim.compensate", None), "plots": ("memsim.plots", None),
         "spec": ("memsim.circuit.spec", None), "units": ("memsim.units", None), "io": ("memsim.io", None),
         "bias": ("memsim.circuit.bias", None), "demo": ("memsim.demo", None), "progress": ("memsim.progress", None)}
_LAZY.update({
    # the circuit layer's package, and its modules under the names they had at the package top
    "circuit": ("memsim.circuit", None), "array": ("memsim.circuit.array", None),
    "result": ("memsim.circuit.result", None),
    # 3D arrays: stacked cross-point layers and vertical RRAM (docs/design.md, "3D arrays")
    "StackedCrossbar": ("memsim.circuit.stacked", "StackedCrossbar"),
    "VerticalArray": ("memsim.circuit.stacked", "VerticalArray"),
    "stacked": ("memsim.circuit.stacked", None), "netlist3d": ("memsim.circuit.netlist3d", None),
    "learn": ("memsim.learn", None),  # on-chip learning with the model's pulse response
    "cost": ("memsim.cost", None),  # energy, latency and area of tiles and networks
    "experiments": ("memsim.experiments", None),  # networks' accuracy over time, the aihwkit setting
})

__all__ = ["Crossbar", "Bias", "SCHEMES", "SolveResult", "SpiceError", "ConvergenceError", "MemsimError", "ResourceLimitError", "FileError",
           *_LAZY]


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)

# The circuit modules lived at the package top until they moved into memsim.circuit, and the
# network experiments in memsim.nn until they moved to the top layer; users' scripts may still
# import them there (`import memsim.spice`, `from memsim.nn.experiments import ...`).
# Nothing inside memsim uses these names (tests/test_layers.py).
_OLD_NAMES = {**{f"memsim.{name}": f"memsim.circuit.{name}"
                 for name in ("array", "bias", "result", "netlist", "spice", "spec", "stacked", "netlist3d")},
              "memsim.nn.experiments": "memsim.experiments"}
keep_old_names(_OLD_NAMES)
