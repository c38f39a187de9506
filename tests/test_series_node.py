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
