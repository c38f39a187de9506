"""Converters and digital periphery from published figures of merit (constants and their
sources in :mod:`memsim.cost.config`).

- DAC, amplitude inputs: the driver charges its row, E = C_row V^2 per read
  (:func:`memsim.cost.array.line_charge_energy`); bit-serial inputs: one read per input bit,
  each a 0 / V_read step (:func:`reads_per_vector`).
- ADC energy per conversion: SAR, E = FoM_W 2^ENOB (R. H. Walden, "Analog-to-digital converter
  survey and analysis", IEEE JSAC 17(4), 1999; FoM from B. Murmann, "ADC Performance Survey
  1997-2024"); flash, 2^bits - 1 comparator decisions; ramp (single slope), one comparator over
  2^bits clock cycles.  Conversion time: bits clocks (SAR), one clock (flash), 2^bits clocks (ramp).
- ADC area: SAR scaled from a published 10-bit design by (F / 130 nm)^2 2^(bits - 10); flash,
  2^bits - 1 comparators; ramp, one comparator (its counter and the shared ramp are left out).
- Line swing: a line of capacitance C cycled between two rails draws C v_high (v_high - v_low)
  from the upper one (word lines switched between read and hold levels, say).
- Digital: shift-and-add of each bit-serial read into the output, an add as wide as the ADC
  word plus the input bits; accumulation of row tiles' partial sums, a 32-bit add; the digital
  scale of each output, a 32-bit float multiply (M. Horowitz, ISSCC 2014, at 45 nm).
"""
from __future__ import annotations

import math

from .. import units
from .config import SAR_AREA_REF, CostConfig


def adc_energy(bits: int, config: CostConfig = CostConfig()) -> float:
    """Energy (J) of one conversion of a ``bits``-bit ADC of ``config.adc_kind``."""
    if config.adc_kind == "sar":
        return config.fom_walden_j * 2.0 ** bits
    if config.adc_kind == "flash":
        return (2 ** bits - 1) * config.comparator_j
    return 2.0 ** bits * config.comparator_j  # ramp: the comparator decides every clock


def adc_time(bits: int, config: CostConfig = CostConfig()) -> float:
    """Time (s) of one conversion."""
    cycles = {"sar": bits, "flash": 1, "ramp": 2 ** bits}[config.adc_kind]
    return cycles / config.clock_hz


def adc_area(bits: int, config: CostConfig = CostConfig()) -> float:
    """Area (m^2) of one ADC."""
    f2 = config.feature_m ** 2
    if config.adc_kind == "sar":
        area, ref_bits, ref_f = SAR_AREA_REF
        return area * (config.feature_m / ref_f) ** 2 * 2.0 ** (bits - ref_bits)
    if config.adc_kind == "flash":
        return (2 ** bits - 1) * config.comparator_area_f2 * f2
    return config.comparator_area_f2 * f2


def line_swing_energy(c_farad: float, v_low: float, v_high: float) -> float:
    """Energy (J) one line of capacitance ``c_farad`` draws per cycle between ``v_low`` and
    ``v_high`` (V): the charge C (v_high - v_low) comes from the ``v_high`` supply on the rising
    edge, E = C v_high (v_high - v_low); the falling edge returns it to the low rail."""
    c = units.real(c_farad, "c_farad", low=0.0, unit="F")
    v_low = units.real(v_low, "v_low", unit="V")
    v_high = units.real(v_high, "v_high", unit="V")
    if v_high < v_low:
        raise ValueError(f"v_high must be >= v_low, got v_low {v_low!r} V and v_high {v_high!r} V")
    return c * v_high * (v_high - v_low)


def adder_energy(bits: int, config: CostConfig = CostConfig()) -> float:
    """Energy (J) of one integer add ``bits`` wide: a 32-bit add scaled by its width."""
    return config.add32_j * bits / 32.0


def adcs_per_tile(cols: int, config: CostConfig = CostConfig()) -> int:
    """ADCs a tile of ``cols`` physical columns needs (``cols_per_adc`` share one)."""
    return math.ceil(cols / config.cols_per_adc)


def reads_per_vector(inputs: str, dac_bits: int | None) -> int:
    """Array reads per input vector: one for amplitude inputs, ``dac_bits`` for bit-serial."""
    if inputs == "amplitude":
        return 1
    if not dac_bits:
        raise ValueError("bit-serial inputs need dac_bits (the number of input bits)")
    return int(dac_bits)
