"""memsim.solver.TileRead: each path against memsim.solve (or a closed form) on the same
crossbar, the wire-drop prefix sums against the circuit they describe, the spectral bound
against numpy's eigenvalues, the self-check, and one-line refusals."""
import numpy as np
import pytest

import memsim
from memsim import Crossbar
from memsim.devices.rram import DEFAULT_PARAMS
from memsim.solver import TileRead
from memsim.solver.tile_read import spectral_bound


def drop_matrix(rows, cols, r_row, r_col):
    """The (RC, RC) map from cell currents to row drop plus column rise, column by column from
    the kernel (unit currents)."""
    from memsim.solver._batched import wire_drops

    a = np.empty((rows * cols, rows * cols))
    out = np.empty((rows, cols))
    for k in range(rows * cols):
        unit = np.zeros(rows * cols)
        unit[k] = 1.0
        wire_drops(unit.reshape(rows, cols), r_row, r_col, out)
        a[:, k] = out.ravel()
    return a


def test_wire_drops_match_the_closed_form_and_the_circuit(rng):
    rows, cols, r_row, r_col = 5, 4, 1.5, 2.5
    a = drop_matrix(rows, cols, r_row, r_col)
    # the closed form: r_row (min(m, j) + 1) along row i, r_col (R - max(i, m)) along column j
    i, j = np.divmod(np.arange(rows * cols), cols)
    same_row = i[:, None] == i[None, :]
    same_col = j[:, None] == j[None, :]
    closed = (r_row * same_row * (np.minimum(j[:, None], j[None, :]) + 1)
              + r_col * same_col * (rows - np.maximum(i[:, None], i[None, :])))
    np.testing.assert_allclose(a, closed, rtol=1e-14, atol=0)
    # linear cells: u = v - A (g u) is the circuit memsim.solve solves
    g = rng.uniform(5e-6, 4e-5, (rows, cols))
    v = rng.uniform(-0.2, 0.2, rows)
    u = np.linalg.solve(np.eye(rows * cols) + a * g.ravel()[None, :], np.repeat(v, cols))
    i_col = (g * u.reshape(rows, cols)).sum(axis=0)
    exact = memsim.solve(Crossbar.ohmic(g, r_row=r_row, r_col=r_col), v, tol=1e-13).i_col
    np.testing.assert_allclose(i_col, exact, rtol=1e-10)


def test_spectral_bound_is_the_largest_eigenvalue_with_its_margin(rng):
    rows, cols = 6, 7
    slope = rng.uniform(1e-5, 1e-3, (rows, cols))
    a = drop_matrix(rows, cols, 2.0, 3.0)
    largest = np.max(np.linalg.eigvals(a * slope.ravel()[None, :]).real)
    bound = spectral_bound(slope, 2.0, 3.0)
    assert largest * 1.05 * 0.99 < bound < largest * 1.05 * 1.01
    assert spectral_bound(slope, 0.0, 0.0) == 0.0


@pytest.mark.parametrize("r", [0.0, 2.5])
def test_linear_paths_are_the_solver(r, rng):
    g = rng.uniform(5e-6, 4e-5, (24, 20))
    xb = Crossbar.ohmic(g, r_row=r, r_col=r)
    tile = TileRead.from_crossbar(xb)
    assert tile.path == ("ideal" if r == 0 else "effective")
    v = rng.uniform(-0.2, 0.2, (5, 24))
    exact = memsim.solve(xb, v, tol=1e-13).i_col
    np.testing.assert_allclose(tile.read(v), exact, rtol=1e-9, atol=1e-12 * np.abs(exact).max())
    if r == 0:
        np.testing.assert_allclose(tile.read(v), v @ g, rtol=1e-14)
    np.testing.assert_allclose(tile.full_scale, 0.2 * g.sum(axis=0), rtol=1e-14)
    assert tile.check(v) < 1e-9


def test_selectorless_ideal_wires_is_the_compact_models_closed_form(rng):
    g = rng.uniform(5e-6, 4e-5, (16, 12))
    xb = Crossbar.device(g_read=g, r_row=0.0, r_col=0.0)
    tile = TileRead.from_crossbar(xb)
    assert tile.path == "ideal"
    v = rng.uniform(-0.3, 0.3, (4, 16))
    own = DEFAULT_PARAMS.current(v[:, :, None], xb.gap).sum(axis=1)  # the device model, cell by cell
    np.testing.assert_allclose(tile.read(v), own, rtol=1e-12)
    np.testing.assert_allclose(tile.read(v), memsim.solve(xb, v, tol=1e-12).i_col, rtol=1e-9)
    # the full scale measured from the cells: they read g at v_read
    np.testing.assert_allclose(tile.full_scale, 0.2 * g.sum(axis=0), rtol=1e-9)


@pytest.mark.parametrize("kind", ["device", "1t1r"])
def test_batched_path_against_the_solver_with_unequal_wires_and_gates(kind, rng):
    g = rng.uniform(5e-6, 4e-5, (32, 24))
    extra = {"v_gate": np.linspace(1.4, 1.8, 32)} if kind == "1t1r" else {}
    xb = Crossbar.of_kind(kind, g, r_row=1.0, r_col=4.0, **extra)
    tile = TileRead.from_crossbar(xb, g_read=g)
    assert tile.path == "batched" and tile.lam_max > 0
    v = np.vstack([rng.uniform(-0.2, 0.2, (6, 32)), np.full((1, 32), 0.2)])
    exact = memsim.solve(xb, v, voltages=False, tol=1e-10).i_col
    full = 0.2 * g.sum(axis=0)
    error = np.max(np.abs(tile.read(v) - exact) / full)
    assert error < 5e-4
    # the wires matter here: ideal wires are > 10x further off
    ideal = memsim.solve(xb.with_wires(0.0, 0.0), v, voltages=False).i_col
    assert np.max(np.abs(ideal - exact) / full) > 10 * error
    assert tile.check(v, reference=exact) == pytest.approx(error, rel=1e-12)
    assert 0 < tile.check() < 5e-4  # random vectors, the solver's own reference
    assert tile.measured_error < TileRead.TOLERANCE


def test_exact_path_and_the_check_of_an_unconverged_read(rng):
    g = rng.uniform(5e-6, 4e-5, (16, 16))
    xb = Crossbar.device(g_read=g, r_row=2.5, r_col=2.5)
    v = rng.uniform(-0.2, 0.2, (30, 16))  # two chunks of the exact path, over two threads
    exact = TileRead.from_crossbar(xb, "exact", workers=2)
    np.testing.assert_allclose(exact.read(v), memsim.solve(xb, v, voltages=False, tol=1e-6).i_col, rtol=1e-12)
    stuck = TileRead.from_crossbar(xb, max_iter=0)  # no Chebyshev step: the ideal-wire currents
    with pytest.warns(RuntimeWarning, match="did not converge in 0 passes"):
        error = stuck.check(v)
    assert error > 10 * TileRead.from_crossbar(xb).check(v)


def test_refusals_are_one_clear_line():
    xb = Crossbar.device(g_read=np.full((4, 4), 2e-5), r_row=1.0, r_col=1.0)
    ohmic = Crossbar.ohmic(np.full((4, 4), 2e-5), r_row=1.0, r_col=1.0)
    cases = [(lambda: TileRead.from_crossbar(xb, "fast"), "path"),
             (lambda: TileRead.from_crossbar(xb, "ideal"), "ideal wires"),
             (lambda: TileRead.from_crossbar(xb, "effective"), "ohmic cells"),
             (lambda: TileRead.from_crossbar(ohmic, "batched"), "nonlinear"),
             (lambda: TileRead.from_crossbar(np.ones((4, 4))), "memsim.Crossbar"),
             (lambda: TileRead.from_crossbar(xb, v_read=-0.2), "v_read"),
             (lambda: TileRead.from_crossbar(xb, workers=0), "workers"),
             (lambda: TileRead.from_crossbar(xb, g_read=np.ones((3, 4))), "g_read"),
             (lambda: TileRead.from_crossbar(ohmic).read(np.ones((2, 5))), "shape"),
             (lambda: TileRead.from_crossbar(ohmic).check(np.ones((1, 4)), reference=np.ones((1, 3))), "reference")]
    for call, words in cases:
        with pytest.raises(ValueError, match=words):
            call()


# ---------------------------------------------------------------------------------------------
# HardwareConfig in groups (the tiles' read settings among them)
# ---------------------------------------------------------------------------------------------
def test_hardware_config_groups_are_the_flat_fields():
    import dataclasses

    from memsim.nn.config import ArrayConfig, ConverterConfig, HardwareConfig, NoiseConfig, NumericsConfig

    grouped = HardwareConfig(array=ArrayConfig(tile=64, cells="1t1r", r_wire=2.5),
                             converters=ConverterConfig(dac_bits=8, adc_bits=8),
                             noise=NoiseConfig(noise="rram", out_noise=0.02), numerics=NumericsConfig(workers=2))
    flat = HardwareConfig(tile=64, cells="1t1r", r_wire=2.5, dac_bits=8, adc_bits=8, noise="rram", out_noise=0.02,
                          workers=2)
    assert grouped == flat and hash(grouped) == hash(flat) and grouped.r_wire == 2.5 and grouped.noise == "rram"
    assert grouped.array == ArrayConfig(tile=64, cells="1t1r", r_wire=2.5)
    assert grouped.numerics.workers == 2 and grouped.groups["noise"].out_noise == 0.02
    # the groups partition the fields, with the same defaults
    names = [f.name for group in HardwareConfig().groups.values() for f in dataclasses.fields(group)]
    assert sorted(names) == sorted(f.name for f in dataclasses.fields(HardwareConfig))
    assert HardwareConfig(**{name: group for name, group in HardwareConfig().groups.items()}) == HardwareConfig()
    # replace (the method and dataclasses') changes flat fields as before
    assert grouped.replace(r_wire=1.0).array.r_wire == 1.0 and dataclasses.replace(grouped, tile=32).tile == 32
    cases = [(lambda: HardwareConfig(array=ArrayConfig(), r_wire=1.0), "r_wire given both"),
             (lambda: HardwareConfig(noise=NoiseConfig(), out_noise=0.1), "out_noise given both"),
             (lambda: HardwareConfig(converters=ArrayConfig()), "ConverterConfig"),
             (lambda: ArrayConfig(r_wire=-1.0), "r_wire"),
             (lambda: ConverterConfig(inputs="bit-serial"), "dac_bits"),
             (lambda: NumericsConfig(workers=0), "workers")]
    for call, words in cases:
        with pytest.raises(ValueError, match=words):
            call()
