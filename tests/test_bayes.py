"""Bayesian compute-in-memory (memsim.nn.bayes): KL, local reparameterisation, the
technology bound, the device pairs on tiles, drift, metrics, array energy."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from memsim.devices.presets import Variability
from memsim.nn import bayes as B
from memsim.nn.config import HardwareConfig

torch.set_num_threads(1)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- the network --------------------------------------------------------------------------------
def test_kl_matches_torch_distributions():
    g = _gen(1)
    mu = torch.randn(7, 5, generator=g, dtype=torch.float64)
    sigma = torch.rand(7, 5, generator=g, dtype=torch.float64) * 0.5 + 0.01
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, sigma),
                                            torch.distributions.Normal(torch.zeros_like(mu), 0.3)).sum()
    assert float(B.kl_normal(mu, sigma, 0.3)) == pytest.approx(float(ref), rel=1e-12)
    layer = B.BayesLinear(nn.Linear(5, 7).double(), prior_sigma=0.3)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(layer.weight, layer.sigma()),
                                            torch.distributions.Normal(torch.zeros((), dtype=torch.float64),
                                                                           torch.full((), 0.3, dtype=torch.float64))).sum()
    assert float(layer.kl().detach()) == pytest.approx(float(ref.detach()), rel=1e-12)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_local_reparameterisation_moments_match_weight_sampling(kind):
    """The training forward (sampled pre-activations) has the mean and variance of the
    output under sampled weights (Monte Carlo, 20 000 draws each)."""
    torch.manual_seed(0)
    if kind == "linear":
        layer = B.BayesLinear(nn.Linear(6, 3).double(), init=-1.0)
        x = torch.rand(1, 6, dtype=torch.float64)
    else:
        layer = B.BayesConv2d(nn.Conv2d(2, 3, 3, padding=1).double(), init=-1.0)
        x = torch.rand(1, 2, 4, 4, dtype=torch.float64)
    draws = 20000
    layer.train()
    with torch.no_grad():
        lrt = layer(x.expand(draws, *x.shape[1:]))
        layer.eval()
        g = _gen(3)
        mc = []
        for _ in range(2000):
            layer.draw(g)
            mc.append(layer(x))
        layer.draw(None)
        mc = torch.cat(mc)
        mean_exact = layer(x)[0]
    # exact moments: mean = x mu + b, var = x^2 sigma^2
    var_exact = layer._op(x * x, layer.sigma().detach() ** 2, None)[0]
    sd = var_exact.sqrt()
    assert torch.all((lrt.mean(0) - mean_exact).abs() < 5 * sd / math.sqrt(draws))
    assert torch.allclose(lrt.var(0), var_exact, rtol=0.05)
    assert torch.all((mc.mean(0) - mean_exact).abs() < 5 * sd / math.sqrt(2000))
    assert torch.allclose(mc.var(0), var_exact, rtol=0.15)


def test_technology_bounds_and_pair_realise_mu_and_sigma():
    tech = B.Technology(5e-6, 40e-6, 0.05)
    g = _gen(2)
    mu = torch.randn(20, 4, generator=g, dtype=torch.float64)
    s = tech.scale(mu)
    lo, hi = tech.sigma_bounds(mu.abs(), s)
    # a column's largest |mu| sits at the span: G+ = g_max, G- = g_min at once
    top = mu.abs().argmax(dim=0)
    for j in range(4):
        assert float(lo[top[j], j]) == pytest.approx(float(hi[top[j], j]), rel=1e-9)
        assert float(lo[top[j], j]) == pytest.approx(float(s[j]) * 0.05 * math.hypot(40e-6, 5e-6), rel=1e-9)
    frac = torch.rand(20, 4, generator=g, dtype=torch.float64)
    sigma = lo + frac * (hi - lo)
    gp, gm = tech.pair(mu, sigma, s)
    assert torch.all(gp >= 5e-6 * (1 - 1e-12)) and torch.all(gm >= 5e-6 * (1 - 1e-12))
    assert torch.all(gp <= 40e-6 * (1 + 1e-12)) and torch.all(gm <= 40e-6 * (1 + 1e-12))
    assert torch.allclose(s * (gp - gm), mu, rtol=1e-10, atol=1e-12)
    assert torch.allclose(s * 0.05 * torch.sqrt(gp ** 2 + gm ** 2), sigma, rtol=1e-10)
    # outside the bounds: the nearest bound
    gp, gm = tech.pair(mu, 0 * sigma, s)
    assert torch.allclose(s * 0.05 * torch.sqrt(gp ** 2 + gm ** 2), lo, rtol=1e-10)
    # the trained parameterisation stays inside, whatever rho
    layer = B.BayesLinear(nn.Linear(20, 4).double(), tech)
    with torch.no_grad():
        layer.rho.copy_(torch.randn(layer.rho.shape, generator=g) * 10)
        layer.weight.copy_(mu.T)
    sig = layer.sigma().T
    assert torch.all(sig >= lo * (1 - 1e-12)) and torch.all(sig <= hi * (1 + 1e-12))


def test_device_spread_from_the_gap():
    spread = B.DeviceSpread()
    assert spread.sigma_ln == pytest.approx(0.02)  # sigma_gap = 0.02 x g0 = 5 pm
    assert B.DeviceSpread(sigma_gap_m=25e-12).sigma_ln == pytest.approx(0.1)
    assert B.DeviceSpread(sigma_gap_m=25e-12).rel_std == pytest.approx(math.sqrt(math.exp(0.01) - 1))
    assert B.DeviceSpread("read").rel_std == pytest.approx(0.01)
    with pytest.raises(ValueError, match="sampling must be one of"):
        B.DeviceSpread("copy")
    with pytest.raises(ValueError, match="sigma_gap_m"):
        B.DeviceSpread(sigma_gap_m=-1.0)
    with pytest.raises(ValueError, match="samples K"):
        B._check_samples(0)


# -- metrics ------------------------------------------------------------------------------------
def test_ece_nll_entropy_mi_hand_computed():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
    labels = np.array([0, 1, 1, 0])
    # bins of width 1/15: 0.9 -> (0.8667, 0.9333], 0.6 -> (0.5333, 0.6], 0.7 -> (0.6667, 0.7333], 0.8 -> (0.7333, 0.8]
    # each alone: |1 - 0.9| + |0 - 0.6| + |1 - 0.7| + |1 - 0.8| over 4
    assert B.ece(probs, labels) == pytest.approx((0.1 + 0.6 + 0.3 + 0.2) / 4)
    # two in one bin: confidences 0.62 and 0.64 (both in (0.6, 0.6667]), one right: |0.5 - 0.63|
    assert B.ece(np.array([[0.62, 0.38], [0.36, 0.64]]), [0, 0]) == pytest.approx(0.13)
    assert B.nll(probs, labels) == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.7, 0.8])))
    u = B.uncertainty(np.array([[[1.0, 0.0]], [[0.0, 1.0]]]))
    assert u["entropy"][0] == pytest.approx(math.log(2)) and u["mutual_information"][0] == pytest.approx(math.log(2))
    u = B.uncertainty(np.array([[[0.5, 0.5]], [[0.5, 0.5]]]))
    assert u["entropy"][0] == pytest.approx(math.log(2)) and u["mutual_information"][0] == pytest.approx(0, abs=1e-15)


def test_auroc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    a = np.round(rng.normal(0, 1, 300), 1)
    b = np.round(rng.normal(0.7, 1, 200), 1)
    ref = roc_auc_score(np.r_[np.zeros(300), np.ones(200)], np.r_[a, b])
    assert B.auroc(a, b) == pytest.approx(ref, abs=1e-12)
    assert B.auroc([0, 1], [2, 3]) == 1.0


# -- the crossbar ------------------------------------------------------------------------------
def _small_bnn(tech, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    net = B.bayesian(model, tech, init=0.0)
    with torch.no_grad():
        for _, layer in net.layers():
            layer.rho.uniform_(-3, 3)
    return net


def test_device_pairs_sample_the_posterior_on_tiles():
    """Every weight of the tiles (ideal wires, no device-to-device spread, no drift) has the
    posterior's mean and standard deviation over programmings, within Monte-Carlo error."""
    spread = B.DeviceSpread(variability=Variability(0.0, 0.1, 0.0, 0.0, 0.0), sampling="program")
    config = HardwareConfig(tile=8, conductances="analog", dtype="float64")
    net = _small_bnn(B.Technology.of(config, spread))
    xbar = B.BayesianCrossbar(net, config, spread=spread, seed=1)
    n = 400
    for _, mean, std, mu, sigma in xbar.weight_moments(0.0, samples=n):
        assert torch.all((mean - mu).abs() < 5 * sigma / math.sqrt(n))
        assert torch.allclose(std, sigma, rtol=0.2)
        assert float((std / sigma).mean()) == pytest.approx(1.0, abs=0.03)


def test_drift_shrinks_the_distributions_by_the_closed_form():
    """G(t) = G(0) (t/t0)^-nu with nu ~ N(m, s^2) per device: E[(t/t0)^-nu] = exp(-m L + s^2 L^2 / 2),
    L = ln(t/t0), for the mean of the differential weights over many devices."""
    var = Variability(0.0, 0.05, 0.0, 0.02, 0.01)
    spread = B.DeviceSpread(variability=var)
    config = HardwareConfig(tile=16, conductances="analog", dtype="float64")
    torch.manual_seed(0)
    net = B.bayesian(nn.Sequential(nn.Linear(16, 8)), B.Technology.of(config, spread), init=0.0)
    xbar = B.BayesianCrossbar(net, config, spread=spread, seed=2)
    tile = xbar.analog.tiles()[0]
    t = 1e6
    xbar.set_sample(0, 0.0)
    g0 = tile.g.clone()
    xbar.set_sample(0, t)
    ratio = (tile.g / g0).flatten()
    big_l = math.log(t)
    expected = math.exp(-0.02 * big_l + 0.5 * (0.01 * big_l) ** 2)
    assert float(ratio.mean()) == pytest.approx(expected, abs=4 * float(ratio.std()) / math.sqrt(ratio.numel()))
    # the realised spread of every weight shrinks with it
    (_, _, std0, _, _), = xbar.weight_moments(0.0, samples=100)
    (_, _, std1, _, _), = xbar.weight_moments(t, samples=100)
    assert float((std1 / std0).mean()) == pytest.approx(expected, rel=0.03)


def test_ir_drop_passes_match_the_float_samples_at_small_wire_resistance():
    """K passes through ohmic tiles with 0.01 ohm wires and exact devices: the same logits as
    the float network with the realised weights (the tiles' ideal-wire weights)."""
    spread = B.DeviceSpread(variability=Variability(0.0, 0.05, 0.0, 0.0, 0.0))
    config = HardwareConfig(tile=8, conductances="analog", dtype="float64", r_wire=0.01)
    net = _small_bnn(B.Technology.of(config, spread))
    net.double()
    xbar = B.BayesianCrossbar(net, config, spread=spread, seed=3)
    x = torch.rand(5, 12, dtype=torch.float64, generator=_gen(4))
    logits = xbar.sample_logits(x, 3)
    assert logits.shape == (3, 5, 3)
    for k in range(3):
        xbar.set_sample(k)
        plain = net.mean_model().double()
        for (_, bl), (_, al), pl in zip(net.layers(), xbar.analog.analog_layers(),
                                        [m for m in plain.modules() if isinstance(m, nn.Linear)]):
            w = torch.zeros(al.matrix().shape, dtype=torch.float64)
            for tile in al.tiles:
                w[tile.rows, tile.cols] = tile.weights()
            with torch.no_grad():
                pl.weight.copy_(w.T)
        with torch.no_grad():
            ref = plain(x)
        assert torch.allclose(logits[k], ref, rtol=2e-3, atol=2e-3 * float(ref.abs().max()))
        assert not torch.allclose(logits[k], logits[(k + 1) % 3])


def test_array_energy_ideal_wires_closed_form():
    """Ideal wires: the driver power of a read is sum_ij v_i^2 G_ij."""
    spread = B.DeviceSpread(variability=Variability(0.0, 0.01, 0.0, 0.0, 0.0))
    config = HardwareConfig(tile=8, conductances="analog", dtype="float64")
    net = _small_bnn(B.Technology.of(config, spread))
    xbar = B.BayesianCrossbar(net, config, spread=spread, seed=0)
    xbar.set_sample(0)
    x = torch.rand(4, 12, dtype=torch.float64, generator=_gen(6))
    expected = 0.0
    for tile, xt in zip(xbar.analog.tiles(), xbar.analog.tile_inputs(x)):
        v = tile.periphery.drive(xt)[1][0][0]
        expected += float(((v * v) @ tile.g).sum()) * 10e-9
    assert B.array_energy(xbar.analog, x) == pytest.approx(expected / 4, rel=1e-9)
    with pytest.raises(ValueError, match="read_time"):
        B.array_energy(xbar.analog, x, read_time=0)


def test_bad_input():
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        B.bayesian(nn.ReLU())
    with pytest.raises(ValueError, match="prior_sigma"):
        B.bayesian(nn.Linear(2, 2), prior_sigma=0)
    with pytest.raises(ValueError, match="BayesianNetwork"):
        B.BayesianCrossbar(nn.Linear(2, 2), HardwareConfig())
    with pytest.raises(ValueError, match="rel_std"):
        B.Technology(5e-6, 40e-6, 0.0)


# -- command line ------------------------------------------------------------------------------
def test_infer_bayesian_cli(tmp_path, capsys):
    import json

    from memsim.cli import main

    assert main(["infer", "--model", "mlp-digits", "--bayesian", "2", "--images", "80", "--drift-time", "0,1y",
                 "--r-wire", "1", "--no-progress", "--cache", str(tmp_path / "models"), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "--bayesian 2" in out and "sampling program (relative spread 2.00 %)" in out and "1 year" in out
    data = json.loads((tmp_path / "results.json").read_text())
    methods = {(r["method"], r["t"]) for r in data["rows"]}
    assert methods == {("float Bayesian", 0.0), ("crossbar deterministic", 0.0), ("crossbar Bayesian (K=2)", 0.0),
                       ("crossbar deterministic", 31557600.0), ("crossbar Bayesian (K=2)", 31557600.0)}
    for r in data["rows"]:
        assert 0.85 < r["accuracy"] <= 1.0 and 0 <= r["ece"] < 0.2
        assert (r["mi"] > 0) == ("Bayesian" in r["method"])
    # a cached network is reused: same numbers again
    assert main(["infer", "--model", "mlp-digits", "--bayesian", "2", "--images", "80", "--drift-time", "0,1y",
                 "--r-wire", "1", "--no-progress", "--cache", str(tmp_path / "models"), "--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "results.json").read_text())
    assert again["rows"] == data["rows"]


@pytest.mark.parametrize("argv, message", [
    (["--bayesian", "0"], "samples K must be an integer >= 1"),
    (["--bayesian", "2", "--conductances", "rram8"], "discrete levels, use analog or pcm"),
    (["--bayesian", "2", "--model-file", "x.pt"], "--model-file is not accepted"),
])
def test_infer_bayesian_bad_input(argv, message, capsys):
    from memsim.cli import main

    assert main(["infer", "--model", "mlp-digits", "--no-progress", *argv]) == 2
    assert message in capsys.readouterr().err


def test_read_noise_sampling_has_the_weights_spread():
    """Read-to-read sampling: one programming, every read a sample; the output variance of a
    linear network for one input is sum_i x_i^2 std_ij^2 with std the pairs' read spread
    (rho s sqrt(G+^2 + G-^2)), the posterior's sigma where it is realisable."""
    spread = B.DeviceSpread("read", variability=Variability(0.0, 0.0, 0.05, 0.0, 0.0))
    config = HardwareConfig(tile=16, conductances="analog", dtype="float64")
    torch.manual_seed(0)
    net = B.bayesian(nn.Sequential(nn.Linear(10, 4)), B.Technology.of(config, spread), init=0.0).double()
    xbar = B.BayesianCrossbar(net, config, spread=spread, seed=4)
    (_, mean, std, mu, sigma), = xbar.weight_moments(0.0, samples=2)
    assert torch.allclose(std, sigma, rtol=1e-9) and torch.allclose(mean, mu, rtol=1e-9, atol=1e-12)
    x = torch.rand(1, 10, dtype=torch.float64, generator=_gen(8))
    logits = xbar.sample_logits(x.expand(20000, 10), 1)[0]
    expected = (x * x) @ (std * std)
    assert torch.allclose(logits.var(0), expected[0], rtol=0.05)
    assert torch.allclose(logits.mean(0), (x @ mu + net.layers()[0][1].bias)[0], atol=4 * float(expected.max().sqrt()) / 100)


@pytest.mark.parametrize("damage", ["nan", "junk", "other-shape"])
def test_a_damaged_cached_bayesian_network_is_refused_in_one_line(damage, tmp_path):
    import io as _io

    from memsim.nn.datasets import Dataset

    rng = np.random.default_rng(0)
    data = Dataset("digits", rng.random((8, 64)), np.arange(8) % 10, rng.random((4, 64)), np.arange(4) % 10)
    net, _ = B.trained_bayesian("mlp-digits", None, 0, data, cache_dir=tmp_path, epochs=1)
    (path,) = tmp_path.glob("*.pt")
    state = {k: v.clone() for k, v in net.state_dict().items()}
    if damage == "nan":
        next(v for v in state.values() if v.is_floating_point())[0] = float("nan")
    elif damage == "other-shape":
        state = {k: v[..., :1] if v.ndim else v for k, v in state.items()}
    buffer = _io.BytesIO()
    torch.save(state, buffer)
    path.write_bytes(b"junk" if damage == "junk" else buffer.getvalue())
    with pytest.raises(ValueError, match=str(path.name)):
        B.trained_bayesian("mlp-digits", None, 0, data, cache_dir=tmp_path, epochs=1)
