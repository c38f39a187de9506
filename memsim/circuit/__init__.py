"""The circuit layer: what an array is, how it is biased, and the ngspice side of it.

- :mod:`~memsim.circuit.array`: ``Crossbar``, the validated 2D array description both engines take;
- :mod:`~memsim.circuit.bias`: line-end biases and the single-cell read and write schemes;
- :mod:`~memsim.circuit.result`: ``SolveResult``, what both engines return, and the driver power;
- :mod:`~memsim.circuit.netlist`: the ngspice netlist as text;
- :mod:`~memsim.circuit.spice`: runs ngspice on it (``memsim.simulate``);
- :mod:`~memsim.circuit.spec`: JSON array specs (the CLI's ``--spec``);
- :mod:`~memsim.circuit.stacked` and :mod:`~memsim.circuit.netlist3d`: 3D arrays (stacked
  cross-point and vertical RRAM) and their netlists.

One builder for every cell kind: ``crossbar(kind, ...)``.

It sits on the device models and under the solver (docs/design.md, "Layers and imports").
Importing the package loads ``array`` (as ``import memsim`` does); the other modules load when
imported.
"""
from __future__ import annotations

from .array import Crossbar


def crossbar(kind: str, g_read=None, **options) -> Crossbar:
    """A crossbar of cells of ``kind`` (``"ohmic"``, ``"device"`` or ``"1t1r"``), the same as
    :meth:`Crossbar.of_kind <memsim.circuit.array.Crossbar.of_kind>`: ohmic cells of conductance
    ``g_read`` (S); RRAM cells given ``gap`` (m) or the conductance ``g_read`` they read at
    ``v_read``; 1T1R cells with ``v_gate`` and ``transistor``.  Keywords: ``gap``, ``r_row``,
    ``r_col`` (ohm per wire segment), ``v_read``, ``v_gate``, ``transistor``, ``params``."""
    return Crossbar.of_kind(kind, g_read, **options)
