"""IR-drop compensation on single tiles, measured with the fast solver."""
import numpy as np
import pytest

import memsim
from memsim.compensate import ColumnCorrection, PreDistortion, quantize_columns
from memsim.devices import preset


def _error(g_programmed, g_target, r, inputs):
    measured = memsim.solve(memsim.Crossbar.ohmic(g_programmed, r, r), inputs, voltages=False).i_col
    ideal = inputs @ g_target
    return np.max(np.abs(measured - ideal)) / np.max(ideal)


def test_error_diffusion_keeps_column_sums_within_one_level_step(rng):
    levels = np.r_[0.0, preset("rram8").levels]
    g = rng.uniform(0, 40e-6, (64, 16))
    q = quantize_columns(g, levels)
    assert set(np.unique(q)) <= set(levels)
    step = np.max(np.diff(levels))
    assert np.all(np.abs(q.sum(axis=0) - g.sum(axis=0)) <= step / 2 + 1e-18)
    # Plain rounding drifts further on some column.
    plain = levels[np.abs(g[..., None] - levels).argmin(axis=-1)]
    assert np.max(np.abs(plain.sum(axis=0) - g.sum(axis=0))) > np.max(np.abs(q.sum(axis=0) - g.sum(axis=0)))


@pytest.mark.parametrize("name", ["rram8", "rram64"])
def test_predistortion_reduces_solver_measured_mvm_error(name, rng):
    levels = np.r_[0.0, preset(name).levels]
    n, r = 128, 1.0
    g_target = rng.uniform(0, 20e-6, (n, n))  # headroom below the top level for the correction
    v_ref = np.full(n, 0.1)
    pre = PreDistortion()
    g_prog = pre.fit(g_target, levels, r, r, v_ref)
    assert set(np.unique(g_prog)) <= set(levels)
    inputs = rng.uniform(0, 0.2, (16, n))
    before = _error(quantize_columns(g_target, levels, v_ref), g_target, r, inputs)
    after = _error(g_prog, g_target, r, inputs)
    assert before > 0.1          # 128x128 at 1 ohm: a real IR-drop error
    assert after < 0.3 * before  # measured: 0.127 -> 0.026 (rram8), 0.124 -> 0.014 (rram64)
    assert pre.storage_bytes == 0 and pre.history[0] > min(pre.history)


def test_column_correction_fits_gain_and_offset(rng):
    n = 64
    g = rng.uniform(5e-6, 40e-6, (n, n))
    xb = memsim.Crossbar.ohmic(g, 2.0, 2.0)
    ref_inputs, test_inputs = rng.uniform(0, 0.2, (32, n)), rng.uniform(0, 0.2, (16, n))
    corr = ColumnCorrection().fit(memsim.solve(xb, ref_inputs, voltages=False).i_col, ref_inputs @ g)
    measured = memsim.solve(xb, test_inputs, voltages=False).i_col
    ideal = test_inputs @ g
    before = np.max(np.abs(measured - ideal)) / ideal.max()
    after = np.max(np.abs(corr.apply(measured) - ideal)) / ideal.max()
    assert after < 0.25 * before
    assert corr.storage_bytes == 2 * 4 * n
    with pytest.raises(ValueError, match="before fit"):
        ColumnCorrection().apply(measured)
