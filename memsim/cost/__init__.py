"""What an array costs: energy, latency and area of crossbar tiles and of whole networks.

- :mod:`memsim.cost.config`: :class:`CostConfig`, the one configuration (technology node,
  read voltage and time, wire and cell capacitance, ADC kind, bits and figure of merit,
  digital energies), every default cited.
- :mod:`memsim.cost.array`: the energy of a read from the Numba solver's node voltages (every
  source's V x I: cells, wire losses and sneak currents), cell footprints, line capacitance.
- :mod:`memsim.cost.latency`: Elmore delay and settling time of a row or column line.
- :mod:`memsim.cost.periphery`: DAC, ADC (SAR, flash, ramp) and digital energy, time and area.
- :mod:`memsim.cost.network`: :func:`network_cost`, per layer and in total, for a model
  converted with :func:`memsim.nn.convert`.

The equations, their sources and the agreement with ngspice: docs/cost.md.
"""
from __future__ import annotations

from .config import CostConfig

__all__ = ["CostConfig", "network_cost", "read_energy", "read_power", "elmore_delay", "settling_time"]


def __getattr__(name):
    # The solver (Numba) and scipy load on first use, so `import memsim.cost` stays cheap.
    if name in ("read_energy", "read_power"):
        from . import array
        return getattr(array, name)
    if name in ("elmore_delay", "settling_time"):
        from . import latency
        return getattr(latency, name)
    if name in ("network_cost", "CostTable"):
        from . import network
        return getattr(network, name)
    raise AttributeError(f"module 'memsim.cost' has no attribute {name!r}")
