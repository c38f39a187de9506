"""NeuRRAM beside memsim.cost: the voltage-mode (floating-column) read energy against its closed
form, the word-line swing energy, and scripts/cost_neurram.py against the chip's published
energy breakdown (W. Wan et al., "A compute-in-memory chip based on resistive random-access
memory", Nature 608, 504-512, 2022, Extended Data Fig. 12b and 12e)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import memsim
from memsim.cost import array, periphery

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cost_neurram.py"

# Typed from the paper's Extended Data Fig. 12 (as digitised in CiMLoop, T. Andrulis et al.,
# ISPASS 2024), two-phase mode, fJ per operation; keyed by (input bits, output bits).
WORDLINE_FJ = {(1, 3): 8.99, (2, 4): 8.27, (3, 5): 15.46, (4, 6): 21.76, (5, 7): 30.93, (6, 8): 37.22,
               (7, 9): 43.69, (8, 10): 50.52}
PULSES_FJ = {(1, 3): 3.45, (2, 4): 3.96, (3, 5): 7.73, (4, 6): 11.51, (5, 7): 14.02, (6, 8): 19.24,
             (7, 9): 22.83, (8, 10): 27.51}
NEURON_FJ = {(1, 3): 10.62, (2, 4): 12.39, (3, 5): 20.12, (4, 6): 29.11, (5, 7): 44.21, (6, 8): 52.48,
             (7, 9): 61.83, (8, 10): 75.86}
TOPS_PER_W = {(1, 3): 43.08, (2, 4): 40.33, (3, 5): 23.09, (4, 6): 15.95, (5, 7): 11.03, (6, 8): 8.26,
              (7, 9): 7.75, (8, 10): 6.44}


def test_floating_column_power_is_the_conductance_weighted_closed_form(rng):
    # Ideal wires: column j floats at sum_i G_ij v_i / sum_i G_ij; the power is
    # sum_ij G_ij (v_i - v_col,j)^2.
    g = rng.uniform(1e-6, 4e-6, (12, 7))
    v = rng.choice([-0.5, 0.0, 0.5], (3, 12))
    xb = memsim.Crossbar.ohmic(g, r_row=0.0, r_col=0.0)
    v_col = (v @ g) / g.sum(axis=0)
    expected = np.sum(g[None] * (v[:, :, None] - v_col[:, None, :]) ** 2, axis=(1, 2))
    np.testing.assert_allclose(array.floating_column_power(xb, v), expected, rtol=1e-9)
    assert array.floating_column_power(xb, np.zeros(12))[0] == 0.0
    # Wires drop some of the drive: the power falls, and the test could see it.
    wired = array.floating_column_power(memsim.Crossbar.ohmic(g * 1e3, r_row=5.0, r_col=5.0), v)
    assert np.all(wired < expected * 1e3 * 0.999)
    with pytest.raises(ValueError, match="v_in must be finite volts of shape"):
        array.floating_column_power(xb, np.ones(5))


def test_line_swing_energy_is_c_v_high_delta_v():
    assert periphery.line_swing_energy(1e-12, 0.9, 2.2) == pytest.approx(1e-12 * 2.2 * 1.3)
    assert periphery.line_swing_energy(1e-12, 1.0, 1.0) == 0.0
    with pytest.raises(ValueError, match="v_high must be >= v_low"):
        periphery.line_swing_energy(1e-12, 2.2, 0.9)
    with pytest.raises(ValueError, match="c_farad"):
        periphery.line_swing_energy(-1e-12, 0.0, 1.0)


@pytest.fixture(scope="module")
def neurram_rows():
    spec = importlib.util.spec_from_file_location("cost_neurram", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return {row["bits"]: row for row in script.rows(vectors=4)}


def test_neurram_modelled_parts_within_2x_of_the_published_breakdown(neurram_rows):
    # Word lines (stated capacitances and levels) and input pulses (the array with floating
    # columns): within 2x at every precision of the published figure.
    assert set(neurram_rows) == set(WORDLINE_FJ)
    for bits, row in neurram_rows.items():
        mine = row["memsim"]
        assert mine["wordline"] * 1e15 == pytest.approx(WORDLINE_FJ[bits], rel=0.3)  # measured 0.73-0.91
        assert 0.5 <= mine["pulses"] * 1e15 / PULSES_FJ[bits] <= 2.0  # measured 0.51-1.73


def test_neurram_neurons_and_tops_per_w_against_the_published_figure(neurram_rows):
    # The integrate-and-convert neuron (amplifier bias from settling, kT/C capacitors, the
    # chip's step counts and times): 0.68-0.77x the published neuron energy at every
    # precision, and TOPS/W 1.02-1.42x the published, within the 2x requirement everywhere.
    ratios = {bits: row["tops_per_w"] / TOPS_PER_W[bits] for bits, row in neurram_rows.items()}
    for bits, row in neurram_rows.items():
        assert 0.6 <= row["memsim"]["neuron"] * 1e15 / NEURON_FJ[bits] <= 0.85, bits
        assert 1.0 <= ratios[bits] <= 1.5, bits
        # The amplifier's bias over its on-time is most of the neuron energy (91-94 %).
        parts = row["memsim"]["neuron_parts"]
        assert 0.88 <= parts["amplifier"] / parts["total"] <= 0.97
    assert max(ratios.values()) <= 2.0


def test_integrating_neuron_energy_is_its_closed_form():
    # Hand-computed: 3 samples, 5 compare-and-decrement steps, 1 phase; 1 uA at 1.8 V on for
    # 3 x 0.27 + 5 x 0.3 + 0.3 = 2.61 us -> 4.698 pJ; precharge (200 + 20) fF x 0.1 V x 1.8 V
    # = 39.6 fJ; sampling 3 x 20 fF x 0.1 V x 1.8 V = 10.8 fJ; decrement 5 x 20 fF x 0.12 V x
    # 1.8 V = 21.6 fJ; latches 5 x 50 fJ = 250 fJ.
    parts = periphery.integrating_neuron_energy(
        3, 5, 1, i_bias_a=1e-6, v_dd=1.8, t_integrate_s=0.27e-6, t_step_s=0.3e-6, t_init_s=0.3e-6,
        c_line_f=200e-15, c_sample_f=20e-15, v_line_swing=0.1, v_sample_swing=0.1, v_decrement=0.12,
        comparator_j=50e-15)
    expected = {"amplifier": 4.698e-12, "precharge": 39.6e-15, "sampling": 10.8e-15, "decrement": 21.6e-15,
                "comparator": 250e-15}
    for name, value in expected.items():
        assert parts[name] == pytest.approx(value, rel=1e-12), name
    assert parts["total"] == pytest.approx(sum(expected.values()), rel=1e-12)
    with pytest.raises(ValueError, match="i_bias_a"):
        periphery.integrating_neuron_energy(1, 1, 1, i_bias_a=-1e-6, v_dd=1.8, t_integrate_s=1e-7, t_step_s=1e-7,
                                            t_init_s=1e-7, c_line_f=0.0, c_sample_f=0.0, v_line_swing=0.0,
                                            v_sample_swing=0.0, v_decrement=0.0, comparator_j=0.0)
    with pytest.raises(ValueError, match="output_steps"):
        periphery.integrating_neuron_energy(1, 1.5, 1, i_bias_a=1e-6, v_dd=1.8, t_integrate_s=1e-7, t_step_s=1e-7,
                                            t_init_s=1e-7, c_line_f=0.0, c_sample_f=0.0, v_line_swing=0.0,
                                            v_sample_swing=0.0, v_decrement=0.0, comparator_j=0.0)


def test_ktc_capacitance_and_settling_bias_closed_forms():
    # kT at 300 K = 1.380649e-23 x 300 = 4.141947e-21 J; half an LSB of 10 bits over 1 V is
    # 1 / 2048 V, so C = 4.141947e-21 x 2048^2 = 17.3726 fF.
    assert periphery.ktc_capacitance(10, 1.0) == pytest.approx(17.3726e-15, rel=1e-5)
    # g_m = 184 fF x 11 ln 2 / 0.27 us = 5.19604 uS; tail 2 g_m / 15 = 0.692805 uA.
    i_tail = periphery.settling_bias_current(184e-15, 10, 0.27e-6, gm_over_id=15.0)
    assert i_tail == pytest.approx(0.692805e-6, rel=1e-5)
    # The single-pole step response with that g_m is within half an LSB (2^-11) at 0.27 us.
    gm = i_tail / 2 * 15.0
    assert np.exp(-0.27e-6 * gm / 184e-15) == pytest.approx(2.0 ** -11, rel=1e-9)
    with pytest.raises(ValueError, match="t_settle_s and gm_over_id must be > 0"):
        periphery.settling_bias_current(184e-15, 10, 0.0)
    with pytest.raises(ValueError, match="bits"):
        periphery.ktc_capacitance(0, 1.0)


def test_examples_readme_shows_the_scripts_table(neurram_rows):
    spec = importlib.util.spec_from_file_location("cost_neurram", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    text = (SCRIPT.parents[1] / "examples" / "cost" / "README.md").read_text()
    shown = text.split("<!-- cost_neurram: begin -->")[1].split("<!-- cost_neurram: end -->")[0].strip()
    assert shown == script.format_table(list(neurram_rows.values()))
