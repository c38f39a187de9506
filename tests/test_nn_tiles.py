"""Tiles at network level: the circuit models against the Numba solver, every non-ideality
switchable, seeded and moving accuracy the expected way, the noise models' equations, and
hardware-aware training's gradients."""
import math

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

import memsim  # noqa: E402
from memsim.devices import MosfetParams  # noqa: E402
from memsim.devices.presets import Variability  # noqa: E402
from memsim.nn import noise  # noqa: E402
from memsim.nn.config import HardwareConfig  # noqa: E402
from memsim.nn.analog import convert  # noqa: E402
from memsim.nn.tile import NonlinearBatched, OhmicIRDrop, SelectorlessIdealWires, verified_gap  # noqa: E402

YEAR = 365.25 * 86400.0


def cfg(**fields):
    return HardwareConfig(**{"dtype": "float64", **fields})


def acc(analog, data, n=360):
    return analog.accuracy(data.x_test[:n], data.y_test[:n])


def float_logits(model, x):
    with torch.no_grad():
        return model(torch.as_tensor(np.array(x))).numpy()


def logit_error(analog, model, data, n=360):
    ref = float_logits(model, data.x_test[:n])
    out = analog.logits(np.array(data.x_test[:n])).numpy()
    return float(np.mean(np.abs(out - ref)) / np.mean(np.abs(ref)))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# circuit models against the solver
# ---------------------------------------------------------------------------------------------
def test_ohmic_ir_drop_tile_gives_the_solver_column_currents(mlp, rng):
    """The effective matrix in torch reproduces the Numba solver's column currents (1e-6 rel)."""
    analog = convert(mlp, cfg(tile=64, r_wire=2.5))
    for tile in analog.tiles():
        assert isinstance(tile.circuit, OhmicIRDrop)
        v = torch.as_tensor(rng.uniform(-0.2, 0.2, (30, tile.g.shape[0])))
        fast = tile.circuit.currents(v).numpy()
        slow = memsim.solve(memsim.Crossbar.ohmic(tile.g.numpy(), r_row=2.5, r_col=2.5), v.numpy()).i_col
        np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-6 * np.abs(slow).max())
        assert tile.circuit.error(v) < 1e-6
        # the IR drop is real: the currents fall short of the ideal product
        ideal = (v.abs() @ tile.g).sum(dim=1)
        assert bool(torch.all(tile.circuit.currents(v.abs()).sum(dim=1) < ideal))


def test_selectorless_closed_form_equals_solver_with_ideal_wires(mlp, digits):
    analog = convert(mlp, cfg(tile=32, cells="device"))
    tile = analog.tiles()[1]
    assert isinstance(tile.circuit, SelectorlessIdealWires)
    v = torch.as_tensor(0.2 * digits.x_test[:5, tile.rows])
    assert tile.circuit.error(v) < 1e-9


def test_one_t_one_r_cells_are_verified_at_the_read_voltage():
    """Write-verify on the whole cell: a lone 1T1R cell reads its target at v_read."""
    from memsim.devices.rram import DEFAULT_PARAMS

    g = np.array([[5e-6, 12e-6, 25e-6, 40e-6]])
    gap = verified_gap(g, 0.2, 1.8, MosfetParams(), DEFAULT_PARAMS)
    xb = memsim.Crossbar.one_t_one_r(gap, v_gate=1.8, r_row=0.0, r_col=0.0)
    i_col = memsim.solve(xb, [0.2], tol=1e-12).i_col
    np.testing.assert_allclose(i_col, 0.2 * g[0], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# every non-ideality moves accuracy (and the logits) the expected way, on a fixed seed
# ---------------------------------------------------------------------------------------------
def test_ir_drop_grows_with_wire_resistance_and_tile_size(mlp, digits):
    ideal = convert(mlp, cfg(tile=64))
    errors = {}
    for tile in (16, 64):
        for r in (1.0, 10.0, 40.0):
            errors[tile, r] = logit_error(convert(mlp, cfg(tile=tile, r_wire=r)), mlp, digits)
    assert errors[64, 1.0] < errors[64, 10.0] < errors[64, 40.0]
    assert errors[16, 10.0] < errors[64, 10.0]
    assert acc(convert(mlp, cfg(tile=64, r_wire=40.0)), digits) < acc(ideal, digits) - 0.02


def test_device_nonlinearity_and_1t1r(mlp, digits):
    n = 60
    base = logit_error(convert(mlp, cfg(tile=64, conductances="analog")), mlp, digits, n)
    device = logit_error(convert(mlp, cfg(tile=64, conductances="analog", cells="device")), mlp, digits, n)
    # sinh I-V: an input below the read voltage sees less than the chord conductance
    assert base < 1e-9 and device > 0.01
    wired = convert(mlp, cfg(tile=64, conductances="analog", cells="device", r_wire=10.0))
    assert isinstance(wired.tiles()[0].circuit, NonlinearBatched)
    assert logit_error(wired, mlp, digits, n) > device
    one = convert(mlp, cfg(tile=64, conductances="analog", cells="1t1r", workers=2))
    unverified = convert(mlp, cfg(tile=64, conductances="analog", cells="1t1r", verify_1t1r=False))
    # the series transistor makes the cell more linear than the bare RRAM, and an unverified
    # cell reads low by the transistor's drop
    assert 0 < logit_error(one, mlp, digits, 20) < device
    assert logit_error(unverified, mlp, digits, 20) > logit_error(one, mlp, digits, 20)


def _rram(**figures):
    return noise.RRAMNoiseModel(Variability(**{"sigma_d2d": 0.0, "sigma_c2c": 0.0, "sigma_read": 0.0,
                                               "drift_nu": 0.0, "drift_nu_std": 0.0, **figures}))


def test_programming_and_read_noise(mlp, digits):
    ideal = acc(convert(mlp, cfg(tile=64, conductances="analog")), digits)
    errors = [logit_error(convert(mlp, cfg(tile=64, conductances="analog", noise=_rram(sigma_c2c=s)), seed=3),
                          mlp, digits) for s in (0.02, 0.1, 0.4)]
    assert 0 < errors[0] < errors[1] < errors[2]
    noisy = convert(mlp, cfg(tile=64, conductances="analog", noise=_rram(sigma_c2c=0.4)), seed=3)
    assert acc(noisy, digits) < ideal - 0.02
    # read noise: fresh on every read, so two passes differ; large noise costs accuracy
    reading = convert(mlp, cfg(tile=64, conductances="analog", noise=_rram(sigma_read=0.5)), seed=3)
    x = np.array(digits.x_test[:10])
    assert not torch.allclose(reading.logits(x), reading.logits(x))
    assert acc(reading, digits) < ideal - 0.02
    # the same seed gives the same network
    again = convert(mlp, cfg(tile=64, conductances="analog", noise=_rram(sigma_c2c=0.4)), seed=3)
    torch.testing.assert_close(again.logits(x), noisy.logits(x), rtol=0, atol=0)


def test_converter_resolution(mlp, digits):
    def analog(bits):
        return convert(mlp, cfg(tile=64, dac_bits=bits, adc_bits=bits), calibration_x=digits.x_train[:200])
    assert acc(analog(2), digits) < acc(analog(4), digits) - 0.05


def test_output_noise_and_bound_management(mlp, digits):
    ideal = logit_error(convert(mlp, cfg(tile=64)), mlp, digits)
    noisy = logit_error(convert(mlp, cfg(tile=64, out_noise=0.3), seed=1), mlp, digits)
    assert noisy > ideal + 0.01
    # a bound well inside the output range clips; bound management rescues it
    tight = cfg(tile=64, adc_bits=12, adc_range=0.2)
    clipped = logit_error(convert(mlp, tight), mlp, digits)
    managed = logit_error(convert(mlp, tight.replace(bound_management=True)), mlp, digits)
    assert managed < 0.3 * clipped


def test_output_noise_scales_with_the_input_peak_and_spares_zero_inputs():
    """aihwkit's abs-max noise management: the output noise is out_noise x max|x| in weight
    units (aihwkit 1.2.0, InferenceRPUConfig, a 64 x 32 layer: 0.0607 at max|x| = 1,
    6.07e-5 at 1e-3, exactly 0 for an all-zero input), in inference and in the training draws."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 32, bias=False)
    analog = convert(torch.nn.Sequential(layer), cfg(tile=64, conductances="analog", out_noise=0.06), seed=0)
    ref_w = layer.weight.detach().double()
    base = torch.rand(4000, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for peak in (1.0, 1e-3):
        x = base * (peak / base.abs().amax(dim=1, keepdim=True))
        err = analog.logits(x) - x @ ref_w.T
        assert abs(float(err.std()) / (0.06 * peak) - 1) < 0.02
    zeros = torch.zeros(50, 64, dtype=torch.float64)
    assert float(analog.logits(zeros).abs().max()) == 0.0
    x = torch.cat([zeros, base])
    with torch.no_grad(), analog.device_draws(t_seconds=0.0):
        drawn = analog.module(x)
    assert float(drawn[:50].abs().max()) == 0.0
    assert abs(float((drawn[50:] - base @ ref_w.T).std()) / 0.06 - 1) < 0.02


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (2, 0)])
def test_convolution_draws_scale_each_tiles_noise_by_its_part_of_the_patch(stride, padding):
    """A convolution's training draw runs F.conv2d; each tile's output noise takes the largest
    |x| of the tile's rows of every patch, which patch_peak reads from strided views: equal
    to the patch matrix's row maxima, for tiles that split a channel's kernel entries."""
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(7, 4, 3, stride=stride, padding=padding, bias=False).double()
    analog = convert(torch.nn.Sequential(conv), cfg(tile=40, conductances="analog", out_noise=0.05))
    layer = dict(analog.analog_layers())["0"]
    x = torch.randn(3, 7, 9, 9, dtype=torch.float64).relu()
    x[:, :, :4] = 0.0  # zero patches: no noise there
    x2d, shape = layer.patches(x)
    assert len(layer.tiles) == 2 and layer.tiles[0].rows == slice(0, 40)  # 63 patch rows: 4 kernel entries of channel 4 in the first tile
    for tile in layer.tiles:
        expected = x2d[:, tile.rows].abs().amax(dim=1).reshape(shape)
        torch.testing.assert_close(layer.patch_peak(x, tile.rows), expected, rtol=0, atol=0)
    # the draw's noise: sigma x the peak of its tile, zero where the patch is zero
    with torch.no_grad(), analog.device_draws(t_seconds=0.0):
        y = analog.module(x.repeat(200, 1, 1, 1))
    clean = torch.nn.functional.conv2d(x, conv.weight.detach(), None, stride, padding).repeat(200, 1, 1, 1)
    peaks = torch.stack([layer.patch_peak(x, t.rows) for t in layer.tiles])  # (tiles, B, h, w)
    sigma = 0.05 * torch.sqrt((peaks ** 2).sum(dim=0)).repeat(200, 1, 1)[:, None]
    noise = y - clean
    assert float(noise[(sigma == 0).expand_as(noise)].abs().max()) == 0.0
    z = noise[(sigma > 0).expand_as(noise)] / sigma.expand_as(noise)[(sigma > 0).expand_as(noise)]
    assert abs(float(z.std()) - 1) < 0.02 and abs(float(z.mean())) < 0.02


def test_rram_drift_lowers_accuracy_over_time(mlp, digits):
    analog = convert(mlp, cfg(tile=64, conductances="analog", noise=_rram(drift_nu=0.05, drift_nu_std=0.05)))
    errors = [logit_error(analog.set_time(t), mlp, digits) for t in (0.0, 1.0, 3600.0, 10 * YEAR)]
    assert errors[0] == errors[1] < 1e-9 < errors[2] < errors[3]  # t0 = 1 s
    assert acc(analog.set_time(10 * YEAR), digits) < acc(analog.set_time(0.0), digits) - 0.02
    # set_time draws per (seed, t): going back gives the same conductances
    first = analog.set_time(3600.0).tiles()[0].g.clone()
    analog.set_time(10 * YEAR)
    torch.testing.assert_close(analog.set_time(3600.0).tiles()[0].g, first, rtol=0, atol=0)


def test_float32_tiles_agree_with_float64(mlp, digits):
    x = np.array(digits.x_test[:100])
    wide = convert(mlp, cfg(tile=64, r_wire=2.5)).logits(x).numpy()
    narrow = convert(mlp, HardwareConfig(tile=64, r_wire=2.5)).logits(x)
    assert narrow.dtype == torch.float32
    np.testing.assert_allclose(narrow.numpy(), wide, rtol=0, atol=1e-5 * np.abs(wide).max())


# ---------------------------------------------------------------------------------------------
# the noise models' equations
# ---------------------------------------------------------------------------------------------
def test_pcm_model_follows_the_aihwkit_equations():
    model = noise.PCMLikeNoiseModel()
    n = 200_000
    g_max = torch.full((n,), 25e-6, dtype=torch.float64)
    cells = model.program(g_max, gen(0))
    # programming noise at g_max: 0.26348 + 1.9650 - 1.1731 = 1.0554 uS
    assert float((cells.g_prog - g_max).std()) * 1e6 == pytest.approx(1.0554, rel=0.01)
    # drift exponent at g_max: |N(0.049, 0.008)| (mu clipped up to 0.049, sigma up to 0.008)
    assert float(cells.params["nu"].mean()) == pytest.approx(0.049, rel=0.01)
    assert float(cells.params["nu"].std()) == pytest.approx(0.008, rel=0.02)
    # and at g = 0.1 g_max: mu = -0.0155 ln 0.1 + 0.0244 = 0.0601, sigma = 0.0229
    nu = model.drift_coefficients(torch.full((n,), 2.5e-6, dtype=torch.float64), gen(1))
    assert float(nu.mean()) == pytest.approx(0.0601, rel=0.01)
    # 10 years: G_drift = G_prog ((t + 20) / 20)^-nu; median over devices
    exact = noise.ProgrammedCells(g_max, g_max, {"nu": torch.full((n,), 0.049, dtype=torch.float64)})
    t = 10 * YEAR
    g = model.at_time(exact, t, gen(2))
    factor = ((t + 20.0) / 20.0) ** -0.049
    assert float(g.median()) / 25e-6 == pytest.approx(factor, rel=0.002)
    # 1/f read noise at g_max: 0.0088 sqrt(ln((t + t0 + t_read) / (2 t_read)))
    q = 0.0088 * math.sqrt(math.log((t + 20.0 + 250e-9) / (2 * 250e-9)))
    assert float((g / (25e-6 * factor)).std()) == pytest.approx(q, rel=0.02)


def test_rram_model_is_log_normal_power_law():
    model = _rram(sigma_read=0.01, drift_nu=0.005, drift_nu_std=0.002)
    cells = model.program(torch.full((100_000,), 20e-6, dtype=torch.float64), gen(0))
    assert bool(torch.all(cells.g_prog == 20e-6))
    t = 1e6
    log_ratio = torch.log(model.at_time(cells, t, gen(1)) / 20e-6)
    assert float(log_ratio.mean()) == pytest.approx(-0.005 * math.log(t), rel=0.01)
    assert float(log_ratio.std()) == pytest.approx(0.002 * math.log(t), rel=0.02)
    assert model.read_sigma == 0.01
    with pytest.raises(ValueError, match="seconds >= 0"):
        model.at_time(cells, -1.0, gen(2))


# ---------------------------------------------------------------------------------------------
# hardware-aware training
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise_name", ["pcm", "rram"])
def test_training_draw_passes_gradcheck(noise_name):
    """The training draw (mapping at a fixed scale, programming noise, drift) is
    differentiable in the float weights: torch.autograd.gradcheck against finite differences,
    with the random draw fixed (the generator re-seeded for every evaluation)."""
    from memsim.nn.analog import sample_block
    from memsim.nn.mapping import block_scale

    config = cfg(tile=8, conductances="analog" if noise_name == "rram" else "pcm", noise=noise_name)
    model = noise.RRAMNoiseModel() if noise_name == "rram" else noise.PCMLikeNoiseModel()
    weight = torch.tensor(np.random.default_rng(0).normal(0, 0.1, (6, 4)), requires_grad=True)
    s = block_scale(weight, config.cond, config.scale) * 1.5  # no weight at the clipping edge
    generator = torch.Generator()

    def draw(w):
        generator.manual_seed(5)
        return sample_block(w, config, model, 3600.0, generator, s)[0]

    assert torch.autograd.gradcheck(draw, (weight,), eps=1e-7, atol=1e-6, rtol=1e-4)


def test_hardware_aware_training_draws_noise_and_programs_the_trained_weights(digits):
    from memsim.nn.training import seeded, train

    with seeded(0):
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).double()
    config = cfg(tile=64, conductances="analog", noise=_rram(sigma_c2c=0.2))
    analog = convert(model, config, seed=0, program=False).training_noise()
    analog.train()
    x = torch.as_tensor(np.array(digits.x_test[:20]))
    first, second = analog(x), analog(x)
    with analog.float_mode():
        exact = analog(x)
    spread = float((first - second).detach().abs().max())
    assert 0.01 * float(exact.detach().abs().max()) < spread < 0.5 * float(exact.detach().abs().max())  # a fresh draw each forward
    train(analog, digits, epochs=8, seed=0)
    assert acc(analog, digits) > 0.75
    # programmed from the trained weights: the same as converting the trained float copy
    plain = analog.to_torch()
    assert isinstance(plain[0], torch.nn.Linear) and not torch.equal(plain[0].weight, model[0].weight)
    again = convert(plain, config, seed=0)
    torch.testing.assert_close(again.logits(x), analog.logits(x), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# the read path pass by pass against the whole patch matrix
# ---------------------------------------------------------------------------------------------
CONVS = {
    "2d stride dilation reflect": lambda: torch.nn.Conv2d(4, 6, 3, stride=2, dilation=2, padding=2,
                                                          padding_mode="reflect"),
    "2d grouped same": lambda: torch.nn.Conv2d(4, 6, (3, 2), padding="same", groups=2),
    "1d stride circular": lambda: torch.nn.Conv1d(3, 5, 4, stride=3, padding=2, padding_mode="circular"),
}


@pytest.mark.parametrize("name", list(CONVS))
def test_patch_passes_are_the_patch_matrix_and_its_row_maxima(name, monkeypatch):
    """A convolution reads its patches pass by pass from a transposed buffer: every pass is
    exactly those rows of the patch matrix (passes that split images and output rows), and
    the largest |x| a tile of whole input channels takes from the image equals the row
    maximum of its columns of the patch matrix."""
    from memsim.nn import analog as analog_module

    torch.manual_seed(4)
    conv = CONVS[name]()
    analog = convert(torch.nn.Sequential(conv), ex_pcm(tile=12))
    layer = dict(analog.analog_layers())["0"]
    x = torch.randn(5, conv.in_channels, *((11, 9) if isinstance(conv, torch.nn.Conv2d) else (23,)))
    x2d, _ = layer.patches(x)
    source = analog_module._PatchRows(layer.geometry, x)
    assert source.count == x2d.shape[0] and source.width == x2d.shape[1]
    for step in (1, 7, source.line + 3, 3 * source.count // 4, source.count):
        for start in range(0, source.count, step):
            stop = min(start + step, source.count)
            part, owned = source.take(start, stop)
            assert owned and torch.equal(part, x2d[start:stop])
    per = x2d.shape[1] // conv.in_channels
    for rows in (slice(0, per), slice(per, 3 * per), slice(0, x2d.shape[1]), slice(1, per)):
        peak = source.peak(rows, 3, 40)
        if rows.start % per:
            assert peak is None  # part of a channel's kernel: the DAC takes the row maxima itself
        else:
            assert torch.equal(peak, x2d[3:40, rows].abs().amax(dim=1, keepdim=True))
    # the whole layer: passes of a few dozen values read the same logits as one pass of the
    # patch matrix through the tiles (same noise draws: one stream, the same pass sizes)
    monkeypatch.setattr(analog_module, "READ_PASS_ELEMENTS", 4 * x2d.shape[1] + 1)
    with torch.no_grad():
        fast = analog.reseed_reads(7)(x)
        analog.reseed_reads(7)
        y = layer.analog_matrix(layer.patches(x)[0]) + layer.bias
    slow = y.reshape(x.shape[0], *fast.shape[2:], -1).movedim(-1, 1)
    assert torch.equal(fast, slow)


def ex_pcm(**changes):
    """aihwkit's PCM setting (7-bit DAC, 9-bit ADC bounded at 12, output noise, bound
    management, PCM noise), float32."""
    return HardwareConfig(**{"tile": 512, "conductances": "pcm", "scale": "tile", "dac_bits": 7, "adc_bits": 9,
                             "adc_range": 12.0, "out_noise": 0.06, "bound_management": True, "noise": "pcm",
                             **changes})


@pytest.mark.parametrize("scale", ["tile", "column"])
def test_adc_in_place_is_the_rounding_and_clipping_of_the_currents(scale):
    """The ADC (in place, and with its shortcut when nothing clips) against numpy: currents
    rounded to the step 2 FS / (2^bits - 2), clipped at +-FS, the clipped reads flagged; with
    one full scale for all outputs (Python float) or one per output (tensor)."""
    config = cfg(adc_bits=6, adc_range=2.0, bound_management=True)
    periphery = memsim.nn.tile.Periphery(config)
    rng = np.random.default_rng(3)
    fs = np.full(5, 0.4) if scale == "tile" else rng.uniform(0.2, 0.6, 5)
    for spread in (0.02, 1.0):  # within the bound everywhere, then clipping some reads
        i_diff = rng.normal(0.0, spread, (40, 5))
        step = 2 * fs / (2 ** 6 - 2)
        quantised = np.round(i_diff / step) * step
        expected = np.clip(quantised, -fs, fs)
        flagged = (np.abs(quantised) > fs * (1 + 1e-12)).any(axis=1)
        tensor = torch.as_tensor(i_diff)
        out, clipped = periphery.adc(tensor, torch.as_tensor(fs))
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-15, atol=1e-17)
        assert np.array_equal(clipped.numpy(), flagged) and flagged.any() == (spread == 1.0)
        assert torch.equal(tensor, torch.as_tensor(i_diff))  # adc leaves its input alone
        in_place, mask = periphery.adc_(tensor, torch.as_tensor(fs))
        assert torch.equal(in_place, out) and (in_place is tensor) == (not flagged.any())  # a clip copies
        assert (mask is None) if not flagged.any() else torch.equal(mask, clipped)


def test_tiles_on_the_same_rows_share_the_dac_and_match_their_own_reads():
    """A layer of 2 x 3 tiles (two row blocks, three column blocks) reads like each tile
    driven on its own slice, summed over row blocks in tile order (same noise stream)."""
    torch.manual_seed(5)
    linear = torch.nn.Linear(20, 15)
    analog = convert(linear, ex_pcm(tile=10, scale="column"))
    layer = analog.module
    assert len(layer.tiles) == 6 and layer.tiles[1].rows == layer.tiles[0].rows
    x = torch.randn(30, 20)
    with torch.no_grad():
        fast = analog.reseed_reads(1)(x)
        analog.reseed_reads(1)
        slow = torch.zeros(30, 15)
        for tile in layer.tiles:
            slow[:, tile.cols] += tile(x[:, tile.rows])
        slow += layer.bias
    assert torch.equal(fast, slow)


def test_eval_forward_with_autograd_reads_the_same_and_differentiates_like_the_patch_matrix():
    """With autograd recording (an input that requires grad) the tiles work out of place:
    the same logits as without, and input gradients (through each patch's input scale)
    equal those of the whole patch matrix read through the tiles."""
    torch.manual_seed(6)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 36, 4))
    analog = convert(model, ex_pcm(tile=16))
    layer = dict(analog.analog_layers())["0"]
    x = torch.randn(4, 2, 6, 6, requires_grad=True)
    with torch.no_grad():
        plain = analog.reseed_reads(2)(x)
    y = analog.reseed_reads(2)(x)
    assert torch.equal(y, plain)
    y.sum().backward()
    reference = x.detach().clone().requires_grad_(True)
    analog.reseed_reads(2)
    patches, shape = layer.patches(reference)
    conv = (layer.analog_matrix(patches) + layer.bias).reshape(*shape, -1).movedim(-1, 1)
    rest = torch.nn.Sequential(*list(analog.module)[1:])
    out = rest(conv)
    assert torch.equal(out, plain)
    out.sum().backward()
    assert float(x.grad.abs().sum()) > 0
    torch.testing.assert_close(x.grad, reference.grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("changes", [{}, {"r_wire": 2.5, "adc_bits": 6}, {"cells": "device", "r_wire": 1.0}])
def test_an_empty_batch_reads_as_torch_shapes_it(changes):
    """A batch of zero images through tiles has the float layer's output shape (no ambiguous reshape)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 3))
    conv1d = torch.nn.Conv1d(2, 3, 3)
    cfg = HardwareConfig(tile=32, **changes)
    for float_model, shape in ((model, (1, 8, 8)), (conv1d, (2, 9))):
        tiles = convert(float_model, cfg, calibration_x=torch.rand(4, *shape)).eval()
        empty = torch.zeros(0, *shape)
        assert tiles(empty).shape == float_model(empty).shape
        assert tiles(torch.rand(2, *shape)).shape == float_model(torch.rand(2, *shape)).shape
