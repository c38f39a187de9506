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
- Integrate-and-convert (voltage-mode) neuron: an amplifier's static bias current, sized to
  settle its load to half an LSB within one step (g_m/I_D design), times the supply and the
  time it is on; C dV V_dd per capacitor charging event; a latch decision per comparison;
  capacitors sized by kT/C (:func:`integrating_neuron_energy`, :func:`settling_bias_current`,
  :func:`ktc_capacitance`).
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


# --- Integrate-and-convert (voltage-mode) neuron ------------------------------------------
#
# A neuron that samples a floating output line onto C_sample, integrates the samples on
# C_integ with an amplifier in feedback, and converts the integrated charge by comparing and
# adding or subtracting a charge C_sample V_decrement once per output step (W. Wan et al.,
# "A compute-in-memory chip based on resistive random-access memory", Nature 608, 504-512,
# 2022, Extended Data Fig. 4).  Its energy, from circuit quantities:
#
# - the amplifier: a static bias current I from the supply V_dd for the time it is on,
#   E = I V_dd t_on; I is the tail current of a differential pair whose transconductance
#   settles the largest load C it drives to half an LSB of ``design_bits`` within one step t,
#   single-pole settling exp(-t / tau) <= 2^-(bits + 1), tau = C / g_m, and I = 2 g_m / (g_m/I_D)
#   (each side of the pair carries I / 2): I = 2 C ln(2^(bits + 1)) / (t g_m/I_D);
# - capacitor charging: a charge C dV supplied from V_dd costs C dV V_dd (the line and
#   C_sample restored to the reference after each phase, each sample's charge moved onto
#   C_integ, each decrement's C_sample V_decrement);
# - a latch decision per comparison.
#
#: Transconductance efficiency of the amplifier's input pair, S/A: 15 /V, moderate inversion,
#: the usual low-power analog design point between weak inversion (about 25 /V) and strong
#: inversion (below 10 /V) (P. G. A. Jespers and B. Murmann, "Systems and Circuits Design Using
#: the gm/ID Methodology", Cambridge University Press, 2017).
GM_OVER_ID = 15.0
#: Temperature of the kT/C noise budget, K.
TEMPERATURE = 300.0


def ktc_capacitance(bits: int, v_full_scale: float, temperature_k: float = TEMPERATURE) -> float:
    """Smallest capacitance (F) whose sampled kT/C noise is half an LSB of a ``bits``-bit
    conversion of ``v_full_scale`` (V): sqrt(kT / C) = v_full_scale / 2^(bits + 1), so
    C = kT (2^(bits + 1) / v_full_scale)^2 (thermal noise of a switched capacitor, e.g.
    B. Razavi, "Design of Analog CMOS Integrated Circuits", 2nd ed., McGraw-Hill 2017, ch. 7)."""
    from scipy.constants import k as boltzmann

    bits = units.integer(bits, "bits", 1, 24)
    v_fs = units.real(v_full_scale, "v_full_scale", low=0.0, unit="V")
    t = units.real(temperature_k, "temperature_k", low=0.0, unit="K")
    if v_fs == 0.0 or t == 0.0:
        raise ValueError(f"v_full_scale and temperature_k must be > 0, got {v_fs!r} V and {t!r} K")
    return boltzmann * t * (2.0 ** (bits + 1) / v_fs) ** 2


def settling_bias_current(c_load_f: float, bits: int, t_settle_s: float, gm_over_id: float = GM_OVER_ID) -> float:
    """Tail current (A) of a single-stage differential amplifier that settles ``c_load_f`` (F)
    to half an LSB of ``bits`` within ``t_settle_s`` (s): g_m = C ln(2^(bits + 1)) / t, each
    side of the pair at I_D = g_m / ``gm_over_id``, tail 2 I_D."""
    c = units.real(c_load_f, "c_load_f", low=0.0, unit="F")
    bits = units.integer(bits, "bits", 1, 24)
    t = units.real(t_settle_s, "t_settle_s", low=0.0, unit="s")
    gm_id = units.real(gm_over_id, "gm_over_id", low=0.0, unit="S/A")
    if t == 0.0 or gm_id == 0.0:
        raise ValueError(f"t_settle_s and gm_over_id must be > 0, got {t!r} s and {gm_id!r} S/A")
    gm = c * (bits + 1) * math.log(2.0) / t
    return 2.0 * gm / gm_id


def integrating_neuron_energy(integration_steps: int, output_steps: int, phases: int, *, i_bias_a: float,
                              v_dd: float, t_integrate_s: float, t_step_s: float, t_init_s: float,
                              c_line_f: float, c_sample_f: float, v_line_swing: float, v_sample_swing: float,
                              v_decrement: float, comparator_j: float) -> dict:
    """Energy (J) of one integrate-and-convert neuron for one MVM, by part.

    ``integration_steps`` samples are integrated (one per input pulse step), ``output_steps``
    compare-and-decrement steps convert the result, and each of the ``phases`` starts with an
    initialization (line and C_sample precharged, C_integ reset).  Returns a dict:

    - ``amplifier``: i_bias V_dd (integration_steps t_integrate + output_steps t_step +
      phases t_init), the amplifier biased whenever it integrates, compares or precharges;
    - ``precharge``: phases (c_line + c_sample) v_line_swing V_dd, restoring the line and
      C_sample from the swing the inputs moved them;
    - ``sampling``: integration_steps c_sample v_sample_swing V_dd, each sample's charge moved
      onto C_integ by the amplifier's output;
    - ``decrement``: output_steps c_sample v_decrement V_dd;
    - ``comparator``: output_steps comparator_j, one latch decision per step;
    - ``total``: their sum.
    """
    n_int = units.integer(integration_steps, "integration_steps", 0, 1 << 20)
    n_out = units.integer(output_steps, "output_steps", 0, 1 << 20)
    n_phase = units.integer(phases, "phases", 0, 1 << 10)
    i_bias = units.real(i_bias_a, "i_bias_a", low=0.0, unit="A")
    vdd = units.real(v_dd, "v_dd", low=0.0, unit="V")
    t_int = units.real(t_integrate_s, "t_integrate_s", low=0.0, unit="s")
    t_step = units.real(t_step_s, "t_step_s", low=0.0, unit="s")
    t_init = units.real(t_init_s, "t_init_s", low=0.0, unit="s")
    c_line = units.real(c_line_f, "c_line_f", low=0.0, unit="F")
    c_sample = units.real(c_sample_f, "c_sample_f", low=0.0, unit="F")
    v_line = units.real(v_line_swing, "v_line_swing", low=0.0, unit="V")
    v_sample = units.real(v_sample_swing, "v_sample_swing", low=0.0, unit="V")
    v_decr = units.real(v_decrement, "v_decrement", low=0.0, unit="V")
    e_comp = units.real(comparator_j, "comparator_j", low=0.0, unit="J")
    parts = {
        "amplifier": i_bias * vdd * (n_int * t_int + n_out * t_step + n_phase * t_init),
        "precharge": n_phase * (c_line + c_sample) * v_line * vdd,
        "sampling": n_int * c_sample * v_sample * vdd,
        "decrement": n_out * c_sample * v_decr * vdd,
        "comparator": n_out * e_comp,
    }
    parts["total"] = sum(parts.values())
    return parts
