"""The circuit layer: what an array is, how it is biased, and the ngspice side of it.

- :mod:`~memsim.circuit.array`: ``Crossbar``, the validated 2D array description both engines take;
- :mod:`~memsim.circuit.bias`: line-end biases and the single-cell read and write schemes;
- :mod:`~memsim.circuit.result`: ``SolveResult``, what both engines return, and the driver power;
- :mod:`~memsim.circuit.netlist`: the ngspice netlist as text;
- :mod:`~memsim.circuit.spice`: runs ngspice on it (``memsim.simulate``);
- :mod:`~memsim.circuit.spec`: JSON array specs (the CLI's ``--spec``);
- :mod:`~memsim.circuit.stacked` and :mod:`~memsim.circuit.netlist3d`: 3D arrays (stacked
  cross-point and vertical RRAM) and their netlists.

It sits on the device models and under the solver (docs/design.md, "Layers and imports").
Importing the package loads none of these modules (``import memsim`` loads ``array``, ``bias`` and
``result``).
"""
