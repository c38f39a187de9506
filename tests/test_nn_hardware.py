"""Non-idealities at network level: each one switchable, seeded, and moving accuracy the
expected way; the fast paths against slow references; the noise models' equations."""
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

import memsim  # noqa: E402
from memsim.devices import MosfetParams  # noqa: E402
from memsim.nn import noise  # noqa: E402
from memsim.nn.inference import AnalogNetwork, HardwareConfig  # noqa: E402
from memsim.devices.presets import Variability  # noqa: E402

YEAR = 365.25 * 86400.0



def acc(net, data, n=360):
    return net.accuracy(data.x_test[:n], data.y_test[:n])


def logit_error(net, model, data, n=360):
    ref = model.forward(data.x_test[:n])
    return float(np.mean(np.abs(net.forward(data.x_test[:n]) - ref)) / np.mean(np.abs(ref)))


# ---------------------------------------------------------------------------------------------
# fast paths against slow references
# ---------------------------------------------------------------------------------------------
def test_effective_matrix_path_equals_per_vector_solves(mlp, digits):
    """Ohmic tiles with IR drop: one effective matrix per tile, then products; the reference
    solves every input vector with the full nodal solver."""
    config = HardwareConfig(tile=32, r_wire=5.0)
    net = AnalogNetwork(mlp, config)
    tile = net.tiles[0]
    v = 0.2 * digits.x_test[:20, tile.map.rows]
    fast = net._currents(tile, v)
    xb = memsim.Crossbar.ohmic(tile.g, r_row=5.0, r_col=5.0)
    slow = np.stack([memsim.solve(xb, row).i_col for row in v])
    np.testing.assert_allclose(fast, slow, rtol=1e-8, atol=1e-8 * np.abs(slow).max())
    # and the IR drop is real: the currents fall short of the ideal product
    assert np.all(fast.sum(axis=1) < (v @ tile.g).sum(axis=1))


def test_device_closed_form_equals_solver_with_ideal_wires(mlp, digits):
    net = AnalogNetwork(mlp, HardwareConfig(tile=32, cells="device"))
    tile = net.tiles[1]
    v = 0.2 * digits.x_test[:5, tile.map.rows]
    fast = net._currents(tile, v)
    slow = memsim.solve(net._crossbar(tile), v, voltages=False).i_col
    np.testing.assert_allclose(fast, slow, rtol=1e-9)


def test_one_t_one_r_cells_are_verified_at_the_read_voltage():
    """Write-verify on the whole cell: a lone 1T1R cell reads its target at v_read."""
    from memsim.devices.rram import DEFAULT_PARAMS
    from memsim.nn.inference import _verified_gap

    g = np.array([[5e-6, 12e-6, 25e-6, 40e-6]])
    gap = _verified_gap(g, 0.2, 1.8, MosfetParams(), DEFAULT_PARAMS)
    xb = memsim.Crossbar.one_t_one_r(gap, v_gate=1.8, r_row=0.0, r_col=0.0)
    i_col = memsim.solve(xb, [0.2], tol=1e-12).i_col
    np.testing.assert_allclose(i_col, 0.2 * g[0], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# every non-ideality moves accuracy (and the logits) the expected way, on a fixed seed
# ---------------------------------------------------------------------------------------------
def test_ir_drop_grows_with_wire_resistance_and_tile_size(mlp, digits):
    ideal = AnalogNetwork(mlp, HardwareConfig(tile=64))
    errors = {}
    for tile in (16, 64):
        for r in (1.0, 10.0, 40.0):
            errors[tile, r] = logit_error(AnalogNetwork(mlp, HardwareConfig(tile=tile, r_wire=r)), mlp, digits)
    assert errors[64, 1.0] < errors[64, 10.0] < errors[64, 40.0]
    assert errors[16, 10.0] < errors[64, 10.0]
    assert acc(AnalogNetwork(mlp, HardwareConfig(tile=64, r_wire=40.0)), digits) < acc(ideal, digits) - 0.05


def test_device_nonlinearity_and_1t1r(mlp, digits):
    n = 60
    base = logit_error(AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog")), mlp, digits, n)
    device = logit_error(AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog", cells="device")),
                         mlp, digits, n)
    # sinh I-V: an input below the read voltage sees less than the chord conductance
    assert base < 1e-9 and device > 0.01
    wired = AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog", cells="device", r_wire=10.0))
    assert logit_error(wired, mlp, digits, n) > device
    one = AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog", cells="1t1r", workers=2))
    unverified = AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog", cells="1t1r",
                                                   verify_1t1r=False))
    # the series transistor makes the cell more linear than the bare RRAM, and an unverified
    # cell reads low by the transistor's drop
    assert 0 < logit_error(one, mlp, digits, 20) < device
    assert logit_error(unverified, mlp, digits, 20) > logit_error(one, mlp, digits, 20)


def test_programming_and_read_noise(mlp, digits):
    def rram(**figures):
        return noise.RRAMNoiseModel(Variability(**{"sigma_d2d": 0.0, "sigma_c2c": 0.0, "sigma_read": 0.0,
                                                   "drift_nu": 0.0, "drift_nu_std": 0.0, **figures}))

    ideal = acc(AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog")), digits)
    errors = [logit_error(AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog",
                                                           noise=rram(sigma_c2c=s)), seed=3), mlp, digits)
              for s in (0.02, 0.1, 0.4)]
    assert 0 < errors[0] < errors[1] < errors[2]
    noisy = AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog", noise=rram(sigma_c2c=0.4)), seed=3)
    assert acc(noisy, digits) < ideal - 0.02
    # read noise: fresh on every read, so two passes differ; large noise costs accuracy
    reading = AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog", noise=rram(sigma_read=0.5)), seed=3)
    first, second = reading.forward(digits.x_test[:10]), reading.forward(digits.x_test[:10])
    assert not np.allclose(first, second)
    assert acc(reading, digits) < ideal - 0.02
    # the same seed gives the same network
    again = AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog", noise=rram(sigma_c2c=0.4)), seed=3)
    np.testing.assert_array_equal(again.forward(digits.x_test[:10]), noisy.forward(digits.x_test[:10]))


def test_converter_resolution(mlp, digits):
    def net(bits):
        return AnalogNetwork(mlp, HardwareConfig(tile=64, dac_bits=bits, adc_bits=bits),
                             calibration_x=digits.x_train[:200])
    assert acc(net(2), digits) < acc(net(4), digits) - 0.05


def test_output_noise_and_bound_management(mlp, digits):
    ideal = logit_error(AnalogNetwork(mlp, HardwareConfig(tile=64)), mlp, digits)
    noisy = logit_error(AnalogNetwork(mlp, HardwareConfig(tile=64, out_noise=0.3), seed=1), mlp, digits)
    assert noisy > ideal + 0.01
    # a bound well inside the output range clips; bound management rescues it
    tight = HardwareConfig(tile=64, adc_bits=12, adc_range=0.2)
    clipped = logit_error(AnalogNetwork(mlp, tight), mlp, digits)
    managed = logit_error(AnalogNetwork(mlp, tight.replace(bound_management=True)), mlp, digits)
    assert managed < 0.3 * clipped


def test_rram_drift_lowers_accuracy_over_time(mlp, digits):
    model = noise.RRAMNoiseModel(Variability(sigma_d2d=0.0, sigma_c2c=0.0, sigma_read=0.0, drift_nu=0.05,
                                             drift_nu_std=0.05))
    net = AnalogNetwork(mlp, HardwareConfig(tile=64, conductances="analog", noise=model), seed=0)
    errors = [logit_error(net.set_time(t), mlp, digits) for t in (0.0, 1.0, 3600.0, 10 * YEAR)]
    assert errors[0] == errors[1] < 1e-9 < errors[2] < errors[3]  # t0 = 1 s
    assert acc(net.set_time(10 * YEAR), digits) < acc(net.set_time(0.0), digits) - 0.02


def test_pcm_drift_compensation_and_bn_recalibration(bn_mlp, digits):
    config = HardwareConfig(tile=64, conductances="pcm", scale="tile", noise="pcm", dac_bits=7, adc_bits=9,
                            adc_range=12.0, out_noise=0.02, bound_management=True)
    fresh = acc(AnalogNetwork(bn_mlp, config, seed=0), digits)
    plain = AnalogNetwork(bn_mlp, config, seed=0).set_time(10 * YEAR)
    comp = AnalogNetwork(bn_mlp, config.replace(compensation="global"), seed=0).set_time(10 * YEAR)
    recal = comp.recalibrate_bn(digits.x_train)
    a_plain, a_comp, a_recal = acc(plain, digits), acc(comp, digits), acc(recal, digits)
    assert a_plain < fresh - 0.1
    assert a_plain < a_comp < a_recal
    assert a_recal > fresh - 0.1
    # the re-calibrated copy shares the programmed tiles and differs only in the BN statistics
    assert recal.tiles is comp.tiles
    assert not np.allclose(recal.mlp.layers[1].mean, bn_mlp.layers[1].mean)


# ---------------------------------------------------------------------------------------------
# the noise models' equations
# ---------------------------------------------------------------------------------------------
def test_pcm_model_follows_the_aihwkit_equations():
    model = noise.PCMLikeNoiseModel()
    rng = np.random.default_rng(0)
    n = 200_000
    g_max = np.full(n, 25e-6)
    cells = model.program(g_max, rng)
    # programming noise at g_max: 0.26348 + 1.9650 - 1.1731 = 1.0554 uS
    assert np.std(cells.g_prog - g_max) * 1e6 == pytest.approx(1.0554, rel=0.01)
    # drift exponent at g_max: |N(0.049, 0.008)| (mu clipped up to 0.049, sigma up to 0.008)
    assert np.mean(cells.params["nu"]) == pytest.approx(0.049, rel=0.01)
    assert np.std(cells.params["nu"]) == pytest.approx(0.008, rel=0.02)
    # and at g = 0.1 g_max: mu = -0.0155 ln 0.1 + 0.0244 = 0.0601, sigma = 0.0229
    nu = model.drift_coefficients(np.full(n, 2.5e-6), rng)
    assert np.mean(nu) == pytest.approx(0.0601, rel=0.01)
    # 10 years: G_drift = G_prog ((t + 20) / 20)^-nu; median over devices
    exact = noise.ProgrammedCells(g_max, g_max, {"nu": np.full(n, 0.049)})
    t = 10 * YEAR
    g = model.at_time(exact, t, rng)
    factor = ((t + 20.0) / 20.0) ** -0.049
    assert np.median(g) / 25e-6 == pytest.approx(factor, rel=0.002)
    # 1/f read noise at g_max: 0.0088 sqrt(ln((t + t0 + t_read) / (2 t_read)))
    q = 0.0088 * math.sqrt(math.log((t + 20.0 + 250e-9) / (2 * 250e-9)))
    assert np.std(g / (25e-6 * factor)) == pytest.approx(q, rel=0.02)


def test_rram_model_is_log_normal_power_law():
    model = noise.RRAMNoiseModel(Variability(sigma_d2d=0.0, sigma_c2c=0.0, sigma_read=0.01, drift_nu=0.005,
                                             drift_nu_std=0.002, drift_t0=1.0))
    rng = np.random.default_rng(0)
    cells = model.program(np.full(100_000, 20e-6), rng)
    np.testing.assert_array_equal(cells.g_prog, 20e-6)
    t = 1e6
    log_ratio = np.log(model.at_time(cells, t, rng) / 20e-6)
    assert np.mean(log_ratio) == pytest.approx(-0.005 * math.log(t), rel=0.01)
    assert np.std(log_ratio) == pytest.approx(0.002 * math.log(t), rel=0.02)
    assert model.read_sigma == 0.01
    with pytest.raises(ValueError, match="seconds >= 0"):
        model.at_time(cells, -1.0, rng)
