"""The compact model: numpy equations, Numba kernels, level mapping, variability."""
import warnings

import numpy as np
import pytest

from memsim import devices
from memsim.devices import kernels

P = devices.DEFAULT_PARAMS


def test_read_current_is_the_published_equation():
    # I = I0 exp(-g/g0) sinh(V/V0) with the Stanford-PKU defaults, written out by hand.
    v, gap = 0.3, 1.2e-9
    expected = 1e-3 * np.exp(-1.2e-9 / 0.25e-9) * np.sinh(0.3 / 0.25)
    assert devices.current(v, gap) == pytest.approx(expected, rel=1e-14)
    assert devices.current(-v, gap) == pytest.approx(-expected, rel=1e-14)


def test_numba_kernels_match_numpy(rng):
    p = P.as_array()
    for v, gap in zip(rng.uniform(-2, 2, 50), rng.uniform(P.gap_min, P.gap_max, 50)):
        i, di = kernels.rram_current(v, gap, p)
        assert i == pytest.approx(devices.current(v, gap), rel=1e-13)
        assert di == pytest.approx(devices.dcurrent_dv(v, gap), rel=1e-13)
    mos = devices.MosfetParams()
    for vgs, vds in zip(rng.uniform(0, 2, 50), rng.uniform(0, 1.5, 50)):
        i, _, gds = kernels.mosfet_current(vgs, vds, mos.as_array())
        assert i == pytest.approx(float(devices.drain_current(vgs, vds, mos)), rel=1e-13, abs=1e-20)
        h = 1e-7
        numeric = (devices.drain_current(vgs, vds + h, mos) - devices.drain_current(vgs, vds - h, mos)) / (2 * h)
        assert gds == pytest.approx(float(numeric), rel=1e-5, abs=1e-12)


def test_conductance_gap_round_trip():
    g = np.linspace(5e-6, 40e-6, 8)
    gap = devices.gap_for_conductance(g, 0.2)
    np.testing.assert_allclose(devices.conductance(0.2, gap), g, rtol=1e-12)
    assert np.all(np.diff(gap) < 0)  # more conductance, smaller gap
    with pytest.raises(ValueError, match="must lie in"):
        devices.gap_for_conductance([1e-1], 0.2)
    with pytest.raises(ValueError, match="> 0 S"):
        devices.gap_for_conductance([np.nan], 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one clear refusal, no numpy warning before it
        for extreme in (5e-324, 1e300):  # g v_read underflows to 0; overflows
            with pytest.raises(ValueError, match="must lie in"):
                devices.gap_for_conductance([extreme], 0.2)


def test_presets_program_exact_levels():
    p8 = devices.preset("rram8")
    assert len(p8.levels) == 8 and p8.levels[0] == pytest.approx(5e-6) and p8.levels[-1] == pytest.approx(40e-6)
    assert len(devices.preset("rram64").levels) == 64
    targets = np.array([4e-6, 5.1e-6, 21e-6, 39e-6, 99e-6])
    gaps = p8.program(targets)
    read = devices.conductance(0.2, gaps)
    np.testing.assert_allclose(read, np.asarray(p8.levels)[[0, 0, 3, 7, 7]], rtol=1e-12)
    with pytest.raises(ValueError, match="unknown device preset"):
        devices.preset("pcm")


def test_programming_spread_has_the_stated_sigma():
    p8 = devices.preset("rram8")
    target = np.full(20000, p8.levels[4])
    read = devices.conductance(0.2, p8.program(target, seed=3))
    sigma = np.std(np.log(read / p8.levels[4]))
    expected = np.hypot(p8.variability.sigma_d2d, p8.variability.sigma_c2c)
    assert sigma == pytest.approx(expected, rel=0.03)


def test_programming_spread_is_one_formula_for_presets_and_networks():
    import torch

    from memsim.nn.noise import RRAMNoiseModel

    var = devices.Variability(sigma_d2d=0.1, sigma_c2c=0.05)
    xi, zeta = np.array([0.5, -20.0, 1.5]), np.array([1.0, 0.0, -2.0])
    closed = np.maximum((1 + 0.1 * xi) * np.exp(0.05 * zeta), 0.0)  # a cell cannot go below 0 S
    np.testing.assert_allclose(var.programming_factor(xi, zeta), closed, rtol=1e-15)
    np.testing.assert_allclose(var.programming_factor(torch.tensor(xi), torch.tensor(zeta)).numpy(), closed, rtol=1e-15)
    # the preset's program() and the network noise model draw xi then zeta from their generators
    p8 = devices.preset("rram8")
    level = np.full(4, p8.levels[3])
    draws = np.random.default_rng(5).standard_normal((2, 4))
    gaps = p8.program(level, seed=5, variability=var)
    np.testing.assert_allclose(devices.conductance(0.2, gaps), level * var.programming_factor(*draws), rtol=1e-9)
    gen = torch.Generator().manual_seed(5)
    cells = RRAMNoiseModel(var).program(torch.tensor(level), gen)
    torch_draws = torch.randn((2, 4), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = level * var.programming_factor(torch_draws[0].numpy(), torch_draws[1].numpy())
    np.testing.assert_allclose(cells.g_prog.numpy(), expected, rtol=1e-12)


def test_read_noise_and_drift(rng):
    var = devices.Variability(sigma_read=0.05, drift_nu=0.1, drift_nu_std=0.0)
    noisy = devices.read_noise(np.full(50000, 1e-5), var, rng)
    assert np.std(noisy) / 1e-5 == pytest.approx(0.05, rel=0.03)
    drifted = devices.drift(np.full(3, 1e-5), 100.0, var, rng)
    np.testing.assert_allclose(drifted, 1e-5 * 100.0 ** -0.1, rtol=1e-12)
    with pytest.raises(ValueError, match=">= 0 s"):
        devices.drift([1e-5], -1.0, var, rng)


def test_gap_rate_signs_and_smooth_bounds():
    # Positive voltage shrinks the gap (SET), negative grows it (RESET).
    assert devices.gap_rate(1.5, 1.4e-9) < 0 < devices.gap_rate(-1.5, 1.4e-9)
    # At a bound, the rate pushing past it vanishes; the rate away from it does not.
    assert devices.gap_rate(-2.0, P.gap_max) == 0.0
    assert devices.gap_rate(2.0, P.gap_min) == 0.0
    assert devices.gap_rate(2.0, P.gap_max) < 0
    # Half the voltage is far slower: sinh activation.
    assert abs(devices.gap_rate(1.6, 1.4e-9)) > 1e3 * abs(devices.gap_rate(0.8, 1.4e-9))


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="RRAMParams.i0"):
        devices.RRAMParams(i0=-1.0)
    with pytest.raises(ValueError, match="gap_min < gap_max"):
        devices.RRAMParams(gap_min=2e-9)
    with pytest.raises(ValueError, match="sigma_read"):
        devices.Variability(sigma_read=float("nan"))
    with pytest.raises(ValueError, match="w must be"):
        devices.MosfetParams(w=0.0)


def test_model_card_refuses_control_statements(tmp_path):
    card = tmp_path / "bad.lib"
    card.write_text(".model n1 nmos (level=1 vto=0.5 kp=1e-4)\n.control\nshell rm -rf /\n.endc\n")
    with pytest.raises(ValueError, match="only"):
        devices.MosfetParams(card=card)
    card.write_text(".model n1 nmos (level=54 vth0=0.4)\n")
    with pytest.raises(ValueError, match="calibration"):
        devices.MosfetParams(card=card)
    assert devices.MosfetParams(card=card, beta=1e-4, vto=0.4, lambda_=0.1).model_name == "n1"
