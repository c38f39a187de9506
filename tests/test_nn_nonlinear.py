"""The batched circuit model of selector-less and 1T1R tiles with wire resistance against the
exact Numba solver: random inputs and a network's real activations, column-current error at
most 0.5 % of the column's full scale (v_read sum_i G_ij); its check at every programming;
exact=True keeps the solver."""
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

import memsim  # noqa: E402
from memsim.nn.analog import convert  # noqa: E402
from memsim.nn.config import HardwareConfig  # noqa: E402
from memsim.nn.mapping import conductances  # noqa: E402
from memsim.devices.transistor import MosfetParams  # noqa: E402
from memsim.nn.tile import ExactSolver, NonlinearBatched, circuit_model  # noqa: E402
from memsim.solver._batched import _channel, _sinh_cosh_series  # noqa: E402
from memsim.solver._cells import _transistor  # noqa: E402

#: Largest column-current error, fraction of the column's full scale.
FULL_SCALE_TOL = 5e-3


def programmed(cells, r_wire, levels="rram8", n=64, seed=0, dtype="float64"):
    cfg = HardwareConfig(tile=n, cells=cells, r_wire=r_wire, conductances=levels, dtype=dtype)
    lv = np.asarray(conductances(levels).levels)
    g = lv[np.random.default_rng(seed).integers(0, len(lv), (n, n))]
    model = circuit_model(cfg)
    model.program(torch.as_tensor(g, dtype=cfg.torch_dtype))
    return model


@pytest.mark.parametrize("cells", ["device", "1t1r"])
@pytest.mark.parametrize("r_wire", [1.0, 2.5])
@pytest.mark.parametrize("levels", ["rram8", "rram64"])
def test_batched_model_matches_solver_on_random_inputs(cells, r_wire, levels, rng):
    model = programmed(cells, r_wire, levels, n=128)
    assert isinstance(model, NonlinearBatched)
    assert model.measured_error <= FULL_SCALE_TOL
    n = model.g.shape[0]
    v_signed = rng.uniform(-0.2, 0.2, (12, n))
    v_full = np.full((2, n), 0.2)  # every row at v_read: the largest IR drop
    v_sparse = rng.uniform(0, 0.2, (12, n)) * (rng.random((12, n)) < 0.3)
    for v in (v_signed, v_full, v_sparse):
        assert model.column_error(v) <= FULL_SCALE_TOL
    # a real difference from ideal wires that the model reproduces: the IR drop is > 10x its error
    exact = memsim.solve(model.xb, v_full, voltages=False).i_col
    ideal_wires = programmed(cells, 0.0, levels, n=n).currents(torch.as_tensor(v_full)).numpy()
    full = 0.2 * model.g.numpy().sum(axis=0)
    assert np.max(np.abs(ideal_wires - exact) / full) > 10 * model.column_error(v_full)


@pytest.mark.parametrize("cells", ["device", "1t1r"])
@pytest.mark.parametrize("r_wire", [1.0, 2.5])
def test_batched_model_matches_solver_on_network_activations(cells, r_wire, mlp, digits):
    analog = convert(mlp, HardwareConfig(tile=32, cells=cells, r_wire=r_wire, dtype="float64"))
    x = torch.as_tensor(np.array(digits.x_test[:16]))
    seen = []
    hooks = [tile.register_forward_pre_hook(lambda tile, args: seen.append((tile, args[0])))
             for tile in analog.tiles()]
    analog.logits(np.array(digits.x_test[:16]))
    for hook in hooks:
        hook.remove()
    assert len(seen) == len(analog.tiles())
    for tile, inputs in seen:
        assert isinstance(tile.circuit, NonlinearBatched)
        (v, _), = tile.periphery.drive(inputs)[1]
        assert tile.circuit.column_error(v) <= FULL_SCALE_TOL
    assert x.shape[0] == 16


@pytest.mark.parametrize("cells", ["device", "1t1r"])
def test_cell_voltages_beyond_v0_take_the_exponential(cells, rng):
    # v_read = 0.5 V is twice the compact model's V0: every row leaves the series' range
    cfg = HardwareConfig(tile=64, cells=cells, r_wire=2.5, v_read=0.5, dtype="float64")
    lv = np.asarray(conductances("rram8").levels)
    model = circuit_model(cfg)
    model.program(torch.as_tensor(lv[rng.integers(0, len(lv), (64, 64))]))
    assert model.measured_error <= FULL_SCALE_TOL
    v = rng.uniform(-0.5, 0.5, (6, 64))
    assert model.column_error(v) <= FULL_SCALE_TOL


def test_series_sinh_and_cosh_match_numpy_within_v0():
    x = np.linspace(-1.0, 1.0, 2001)
    sh, ch = np.array([_sinh_cosh_series(value) for value in x]).T
    np.testing.assert_allclose(sh, np.sinh(x), rtol=1e-13, atol=0)
    np.testing.assert_allclose(ch, np.cosh(x), rtol=1e-13, atol=0)


def test_select_form_channel_matches_the_transistor_kernel():
    p = MosfetParams().as_array()
    seen = set()
    for v_gate in (0.0, 0.6, 1.8):  # off, near threshold, on
        for vc in (0.0, 0.01, 0.3):
            for node in np.linspace(-0.3, 0.6, 91):
                current, d_node, _ = _transistor(node, vc, v_gate, p)
                mine = _channel(node, vc, v_gate, *p)
                np.testing.assert_allclose(mine, (current, d_node), rtol=1e-12, atol=1e-25)
                vov = v_gate - min(node, vc) - p[1]
                seen.add("off" if vov <= 0 else "linear" if abs(node - vc) < vov else "saturated")
    assert seen == {"off", "linear", "saturated"}


def test_every_programming_is_checked_and_a_bad_model_warns(mlp):
    analog = convert(mlp, HardwareConfig(tile=32, cells="device", r_wire=2.5, noise="rram", dtype="float64"))
    tile = analog.tiles()[0]
    first = tile.circuit.measured_error
    assert 0 < first <= FULL_SCALE_TOL
    analog.set_time(86400.0)  # drifted conductances: programmed and checked again
    assert tile.circuit.measured_error != first and tile.circuit.measured_error <= FULL_SCALE_TOL
    model = programmed("device", 2.5, n=64)
    model.max_iter = 0  # no sweep: the ideal-wire currents
    with pytest.warns(RuntimeWarning, match="full scale"), pytest.warns(RuntimeWarning, match="did not converge"):
        model.program(model.g)
    assert model.measured_error > FULL_SCALE_TOL


def test_the_same_conductances_are_not_checked_twice(monkeypatch):
    model = programmed("device", 2.5, n=32)
    first = model.measured_error
    import memsim.nn.tile as tile_module

    def no_solver(*args, **kwargs):
        raise AssertionError("the exact solver ran again for unchanged conductances")

    with monkeypatch.context() as patch:
        patch.setattr(tile_module, "solve", no_solver)
        model.program(model.g.clone())  # equal values, another tensor
        assert model.measured_error == first
        with pytest.raises(AssertionError, match="ran again"):
            model.program(model.g * 1.01)  # changed conductances are checked
    model.program(model.g * 1.01)
    assert model.measured_error != first and model.measured_error <= FULL_SCALE_TOL


def test_exact_true_keeps_the_solver_per_vector(rng):
    for cells in ("device", "1t1r"):
        exact = programmed(cells, 2.5, n=32)
        cfg = HardwareConfig(tile=32, cells=cells, r_wire=2.5, dtype="float64", exact=True)
        model = circuit_model(cfg)
        assert isinstance(model, ExactSolver)
        model.program(exact.g)
        v = rng.uniform(-0.2, 0.2, (3, 32))
        # the solver at the config's tolerance, vector by vector: the same numbers
        np.testing.assert_allclose(model.currents(torch.as_tensor(v)).numpy(),
                                   memsim.solve(model.crossbar(), v, voltages=False, tol=cfg.tol).i_col, rtol=1e-9,
                                   atol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(circuit_model(HardwareConfig(cells="device", r_wire=0.0)), type(circuit_model(
            HardwareConfig(cells="device", r_wire=0.0, exact=True))))  # ideal wires: the closed form either way


@pytest.mark.parametrize("value", [1, "yes", None, 0.0])
def test_exact_must_be_a_bool(value):
    with pytest.raises(ValueError, match="exact must be True or False"):
        HardwareConfig(exact=value)


def test_ideal_wire_1t1r_reads_start_every_internal_node_from_a_guess_not_from_memory():
    """With ideal wires the first pass solves each 1T1R internal node exactly from a starting
    guess; the guess is computed, never read from the (uninitialised) work array."""
    from memsim.solver._batched import _one_t_row

    model = programmed("1t1r", 0.0, n=16)
    n = model.g.shape[0]
    u = np.tile(np.linspace(0.0, 0.2, n)[:, None], (1, n))
    vc = np.zeros(n)
    out = []
    for stale in (np.nan, 1e300, 0.0):
        vd = np.full((n, n), stale)
        cur = np.empty(n)
        _one_t_row(3, u, vc, vd, model.prefactor64, 1.0 / model.v0, model.v_gate, model.gap, model.p_dev,
                   model.p_mos, cur, True, True)
        out.append(cur.copy())
    assert np.all(np.isfinite(out[0])) and np.all(out[0] > 0)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
