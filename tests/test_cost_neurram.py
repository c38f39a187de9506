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


def test_neurram_tops_per_w_and_where_it_misses(neurram_rows):
    ratios = {bits: row["tops_per_w"] / TOPS_PER_W[bits] for bits, row in neurram_rows.items()}
    # memsim is optimistic at every precision: the neurons' integrators and control (46-50 % of
    # the chip's energy) are not modelled; memsim's SAR default gives 4-100x less there.
    for bits, row in neurram_rows.items():
        assert row["memsim"]["neuron"] * 1e15 < NEURON_FJ[bits] / 3
    assert all(1.0 < r < 3.0 for r in ratios.values())
    # Within the 2x target at 4/6, 7/9 and 8/10 bits (measured 1.75, 1.61, 1.35); 2.0-2.8x elsewhere.
    within = {bits for bits, r in ratios.items() if r <= 2.0}
    assert {(4, 6), (7, 9), (8, 10)} <= within


def test_examples_readme_shows_the_scripts_table(neurram_rows):
    spec = importlib.util.spec_from_file_location("cost_neurram", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    text = (SCRIPT.parents[1] / "examples" / "cost" / "README.md").read_text()
    shown = text.split("<!-- cost_neurram: begin -->")[1].split("<!-- cost_neurram: end -->")[0].strip()
    assert shown == script.format_table(list(neurram_rows.values()))
