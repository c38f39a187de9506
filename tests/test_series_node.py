"""The 1T1R cell's internal node (memsim/solver/_cells.py: series_node) against scipy's brentq
on the numpy device equations: the RRAM current equals the channel current at the node."""
import numpy as np
import pytest
from scipy.optimize import brentq

from memsim.devices import MosfetParams, gap_for_conductance
from memsim.devices.rram import DEFAULT_PARAMS, current
from memsim.devices.transistor import drain_current
from memsim.solver._cells import series_node

MOS = MosfetParams()
P_DEV = DEFAULT_PARAMS.as_array()
P_MOS = np.concatenate([MOS.as_array(), np.zeros(4 - MOS.as_array().size)])


def mismatch(vd, vr, vc, vg, gap):
    """RRAM current (row -> node) minus channel current (node -> column, source at the column), numpy."""
    return float(current(vr - vd, gap) - drain_current(vg - vc, vd - vc, MOS))


@pytest.mark.parametrize("g_read", [6e-6, 3e-5, 1e-4])
@pytest.mark.parametrize("v_gate", [0.0, 0.8, 1.2, 1.8])
def test_internal_node_is_the_root_of_the_series_current(g_read, v_gate, rng):
    gap = float(gap_for_conductance(np.array([g_read]), 0.2)[0])
    for _ in range(40):
        vr, vc = rng.uniform(-0.6, 0.6, 2)
        if abs(vr - vc) < 1e-6:
            continue
        # Guesses anywhere in the bracket, at its ends and outside it: the answer must not depend on them.
        for guess in (vr, vc, 0.5 * (vr + vc), rng.uniform(-1, 1)):
            vd, i_series, d_vr, d_vc = series_node(vr, vc, v_gate, gap, P_DEV, P_MOS, guess)
            lo, hi = min(vr, vc), max(vr, vc)
            expected = brentq(mismatch, lo, hi, args=(vr, vc, v_gate, gap), xtol=1e-18, rtol=1e-15, maxiter=500)
            assert lo <= vd <= hi
            assert abs(vd - expected) <= 1e-13 * max(abs(lo), abs(hi)), (vr, vc, v_gate, g_read, guess)
            i_rram = float(current(vr - expected, gap))
            assert abs(i_series - i_rram) <= 1e-11 * abs(i_rram) + 1e-20


def test_built_in_model_kernels_match_the_generic_ones(rng):
    """The solver's built-in-model kernels (prefactor once, exponentials by numpy's expm1, the
    1T1R nodes from a whole-array Newton step and the straight-line test) against the generic
    per-cell kernels (math.exp via the device equations, series_node's safeguarded Newton)."""
    from memsim.solver import _cells

    n = 24
    gap = gap_for_conductance(rng.uniform(6e-6, 1e-4, (n, n)), 0.2)
    vr = rng.uniform(-0.4, 0.4, (n, n))
    vc = rng.uniform(-0.1, 0.1, (n, n))
    scale = np.empty((n, n))
    _cells.rram_scale(gap, P_DEV, scale)
    i_ref, d_ref, _ = (np.empty((n, n)) for _ in range(3))
    _cells.device_cells(vr, vc, gap, P_DEV, i_ref, d_ref, np.empty((n, n)))
    i_cell, d_vr = np.empty((n, n)), np.empty((n, n))
    _cells.device_cells_scaled(vr, vc, scale, P_DEV, i_cell, d_vr)
    np.testing.assert_allclose(i_cell, i_ref, rtol=1e-13, atol=0)
    np.testing.assert_allclose(d_vr, d_ref, rtol=1e-13, atol=0)

    v_gate = rng.uniform(0.0, 1.8, n)
    node_ref = 0.5 * (vr + vc)
    out_ref = tuple(np.empty((n, n)) for _ in range(3))
    _cells.one_t_one_r_cells(vr, vc, gap, v_gate, P_DEV, P_MOS, node_ref, *out_ref)
    state = np.zeros((5, n, n))
    state[0], state[1], state[2] = 0.5 * (vr + vc), vr, vc  # far from the nodes: the array step and the safeguard
    _cells.series_nodes_step(vr, vc, scale, P_DEV, v_gate, P_MOS, state)
    assert np.all(state[3] == 0.0)  # the step's scratch plane is left as it was
    out = tuple(np.empty((n, n)) for _ in range(3))
    _cells.one_t_one_r_cells_scaled(vr, vc, scale, P_DEV, v_gate, P_MOS, state, 0.0, *out)
    np.testing.assert_allclose(state[0], node_ref, rtol=0, atol=1e-15)
    for value, expected in zip(out, out_ref):
        np.testing.assert_allclose(value, expected, rtol=1e-10, atol=1e-22)
