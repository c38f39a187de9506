"""aihwkit's CMO/HfOx ReRAM model, single-device mapping: statistics against the closed forms."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from memsim.nn.analog import convert
from memsim.nn.mapping import map_weights, single_device, unmap
from memsim.nn.noise import ReRamCMONoiseModel

# The fits of aihwkit 1.2.0's ReRamCMONoiseModel (src/aihwkit/inference/noise/reram.py), uS.
PROG_02 = (0.00081107, 0.00106879)
PROG_2 = (0.0112185391, 0.01129027418)
DECAY_MEAN = -0.08900206
DECAY_STD = (0.04201137, 0.41183342)
READ_K = 0.0277316483
N = 200_000


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _devices(g_us, n=N):
    """A (n, 2) tensor (S): one column of devices at ``g_us`` and its reference column."""
    g = torch.full((n, 2), g_us * 1e-6, dtype=torch.float64)
    g[:, 1] = 30e-6
    return g


@pytest.mark.parametrize("acceptance, coeff", [(2e-2, PROG_02), (0.2, PROG_02), (2.0, PROG_2), (5.0, PROG_02)])
def test_programming_noise_follows_the_acceptance_curve_with_aihwkit_fallback(acceptance, coeff):
    model = ReRamCMONoiseModel(acceptance_range=acceptance)
    g_us = 60.0
    cells = model.program(_devices(g_us), _gen())
    dev = cells.g_prog[:, 0].numpy() * 1e6
    sigma = coeff[0] + coeff[1] * g_us
    assert abs(dev.mean() - g_us) < 5 * sigma / math.sqrt(N)
    assert dev.std() == pytest.approx(sigma, rel=0.01)
    assert torch.equal(cells.g_prog[:, 1], cells.g_target[:, 1])  # the reference is no device


def test_programming_noise_is_not_clipped_and_time_zero_returns_it():
    model = ReRamCMONoiseModel(acceptance_range=2.0)
    cells = model.program(_devices(88.2), _gen(1))
    assert float(cells.g_prog[:, 0].max()) > 88.2e-6  # about half of them above g_max
    assert torch.equal(model.at_time(cells, 0.0, _gen(2)), cells.g_prog)


@pytest.mark.parametrize("t", [1.0, 3600.0, 86400.0 * 30, 3.15576e8])
def test_decay_mean_and_spread_follow_log_time(t):
    model = ReRamCMONoiseModel(read_noise_scale=0.0, renormalise=False)
    cells = model.program(_devices(50.0), _gen(3))
    g = model.at_time(cells, t, _gen(4))
    shift = (g[:, 0] - cells.g_prog[:, 0]).numpy() * 1e6
    sigma = DECAY_STD[0] * math.log(t) + DECAY_STD[1]
    assert abs(shift.mean() - DECAY_MEAN * math.log(t)) < 5 * sigma / math.sqrt(N)
    assert shift.std() == pytest.approx(sigma, rel=0.01)
    assert torch.equal(g[:, 1], cells.g_prog[:, 1])


@pytest.mark.parametrize("g_us, t", [(20.0, 10.0), (80.0, 3.15576e8)])
def test_read_noise_sigma(g_us, t):
    model = ReRamCMONoiseModel(drift_scale=0.0, prog_noise_scale=0.0, renormalise=False)
    cells = model.program(_devices(g_us), _gen(5))
    g = model.at_time(cells, t, _gen(6)).numpy()[:, 0] * 1e6
    sigma = READ_K * math.log10(g_us) * math.sqrt(math.log((t + 1e-6) / 2e-6))
    assert g.std() == pytest.approx(sigma, rel=0.01)
    assert abs(g.mean() - g_us) < 5 * sigma / math.sqrt(N) + 1e-9


def test_clipping_at_g_min_matches_the_normal_tail():
    model = ReRamCMONoiseModel(read_noise_scale=0.0, prog_noise_scale=0.0, renormalise=False)
    t = 3.15576e8
    g = model.at_time(model.program(_devices(10.0), _gen(7)), t, _gen(8)).numpy()[:, 0] * 1e6
    mean = 10.0 + DECAY_MEAN * math.log(t)
    sigma = DECAY_STD[0] * math.log(t) + DECAY_STD[1]
    expected = stats.norm.cdf(9.0, mean, sigma)
    assert np.mean(np.isclose(g, 9.0, rtol=0, atol=1e-9)) == pytest.approx(expected, abs=0.005)
    assert g.min() == pytest.approx(9.0) and g.max() <= 88.199997


def test_renormalisation_stretches_programmed_devices_onto_the_range_as_aihwkit():
    """aihwkit converts the programmed weights again: min/max of the programmed devices onto
    [g_min, g_max], shift, clip, and back through the same stretch (no noise here)."""
    model = ReRamCMONoiseModel(decay_std=(0.0, 0.0), read_noise_scale=0.0)
    g_prog_us = np.array([[8.0, 20.0], [50.0, 20.0], [90.0, 20.0], [9.5, 20.0]])
    cells = model.program(torch.tensor(g_prog_us * 1e-6), _gen())
    cells = type(cells)(cells.g_target, torch.tensor(g_prog_us * 1e-6), {})
    t = 1e6
    dev = g_prog_us[:, 0]
    stretched = 9.0 + (dev - 8.0) * (88.199997 - 9.0) / (90.0 - 8.0)
    drifted = np.clip(stretched + DECAY_MEAN * math.log(t), 9.0, 88.199997)
    expected = 8.0 + (drifted - 9.0) * (90.0 - 8.0) / (88.199997 - 9.0)
    got = model.at_time(cells, t, _gen()).numpy() * 1e6
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(got[:, 1], 20.0)


@pytest.mark.parametrize("scale", ["tile", "column"])
def test_single_device_mapping_spans_the_range_and_unmaps_exactly(scale, rng):
    w = torch.tensor(rng.normal(0.0, 0.3, (40, 12)))
    cond = single_device()
    maps = map_weights(w, tile=16, cond=cond, scale=scale)
    torch.testing.assert_close(unmap(maps, 40, 12), w, rtol=0, atol=1e-12)
    for tmap in maps:
        block = w[tmap.rows, tmap.cols]
        dev, ref = tmap.g_target[:, 0::2], tmap.g_target[:, 1::2]
        lo = block.min(dim=0).values if scale == "column" else block.min()
        hi = block.max(dim=0).values if scale == "column" else block.max()
        torch.testing.assert_close(dev.min(dim=0).values if scale == "column" else dev.min(),
                                   torch.as_tensor(9e-6, dtype=w.dtype).expand_as(lo), rtol=0, atol=1e-15)
        torch.testing.assert_close(dev.max(dim=0).values if scale == "column" else dev.max(),
                                   torch.as_tensor(88.199997e-6, dtype=w.dtype).expand_as(hi), rtol=0, atol=1e-15)
        s = (hi - lo) / (88.199997e-6 - 9e-6)
        torch.testing.assert_close(ref[0], (9e-6 - lo / s).expand(ref.shape[1]), rtol=1e-12, atol=0)


def test_single_device_network_at_time_zero_reproduces_programmed_weights():
    """A layer on single-device tiles without noise computes x @ w exactly."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(20, 6).double()
    from memsim.nn.config import HardwareConfig

    analog = convert(torch.nn.Sequential(layer), HardwareConfig(tile=8, conductances=single_device(), noise="none",
                                                                dtype="float64"))
    x = torch.randn(5, 20, dtype=torch.float64)
    torch.testing.assert_close(analog(x), layer(x), rtol=1e-10, atol=1e-12)


def test_single_cells_refuse_differential_pairs():
    from memsim.nn.config import HardwareConfig

    torch.manual_seed(0)
    with pytest.raises(ValueError, match="single-device mapping"):
        convert(torch.nn.Sequential(torch.nn.Linear(8, 4)), HardwareConfig(tile=8, conductances="rram8", noise="reram"))
    pair = ReRamCMONoiseModel(cells="pair", prog_noise_scale=0.0)
    g = torch.full((3, 4), 20e-6, dtype=torch.float64)
    torch.testing.assert_close(pair.program(g, _gen()).g_prog, g, rtol=1e-14, atol=0)
    drifted = pair.at_time(pair.program(g, _gen()), 100.0, _gen())
    assert bool((drifted != g).all())  # every cell is a device


def test_bad_options_raise():
    with pytest.raises(ValueError, match="cells"):
        ReRamCMONoiseModel(cells="three")
    with pytest.raises(ValueError, match="g_min < g_max"):
        ReRamCMONoiseModel(g_min=1e-4, g_max=1e-5)
    with pytest.raises(ValueError, match="time since programming"):
        ReRamCMONoiseModel().at_time(ReRamCMONoiseModel().program(_devices(30.0, 4), _gen()), -1.0, _gen())
