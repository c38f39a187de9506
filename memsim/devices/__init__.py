"""Compact device models: the Stanford-PKU gap RRAM, Verilog-A devices, the 1T1R transistor, presets."""
from .presets import NO_VARIABILITY, PRESETS, DevicePreset, Variability, drift, preset, read_noise
from .rram import (DEFAULT_PARAMS, RRAMParams, conductance, current, dcurrent_dv, gap_for_conductance,
                   gap_rate, spice_subckt, temperature)
from .transistor import DEFAULT_CARD, MosfetParams, drain_current, read_model_card
from .._lazy import lazy_getattr

# Verilog-A devices load on first use: their module (subprocess, regexes) is not start-up work.
__getattr__ = lazy_getattr(__name__, globals(), {name: ("memsim.devices.veriloga", name)
                                                 for name in ("DeviceTable", "VerilogA", "VerilogAError")})

__all__ = [
    "DEFAULT_PARAMS", "RRAMParams", "conductance", "current", "dcurrent_dv", "gap_for_conductance",
    "gap_rate", "spice_subckt", "temperature", "MosfetParams", "drain_current", "read_model_card",
    "DEFAULT_CARD", "DevicePreset", "Variability", "NO_VARIABILITY", "PRESETS", "preset", "drift",
    "read_noise", "VerilogA", "VerilogAError", "DeviceTable",
]
