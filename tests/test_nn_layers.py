"""Every common torch layer on tiles: the root module itself, Linear on any leading shape,
Conv1d and grouped / depthwise / dilated / padded Conv2d.  Ideal tiles (continuous
conductances, ideal wires and converters, float64) give torch's own float layer to 1e-6;
wire resistance changes the output, so the tiles are really read."""
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from memsim.compensate import GlobalDriftCompensation
from memsim.devices.presets import Variability
from memsim.nn import bayes as B
from memsim.nn.analog import AnalogConv1d, AnalogConv2d, AnalogLinear, convert
from memsim.nn.config import HardwareConfig
from memsim.nn.training import seeded

IDEAL = HardwareConfig(tile=16, conductances="analog", dtype="float64")
WIRED = IDEAL.replace(r_wire=5.0)


def rel_error(out, ref) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


def run(analog, x):
    with torch.no_grad():
        return analog(x)


def float_out(layer, x):
    with torch.no_grad():
        return layer(x)


def assert_on_tiles(layer, x, *, changed=1e-3):
    """Ideal tiles give the float layer to 1e-6 relative; 5 ohm wires move it by more than
    ``changed`` relative; float mode is the float layer; ``to_torch`` gives it back."""
    ref = float_out(layer, x)
    ideal = convert(layer, IDEAL)
    out = run(ideal, x)
    assert out.shape == ref.shape
    assert rel_error(out, ref) <= 1e-6
    assert rel_error(run(convert(layer, WIRED), x), ref) > changed
    with ideal.float_mode():
        assert rel_error(run(ideal, x), ref) <= 1e-12
    back = ideal.to_torch()
    assert type(back) is type(layer)
    assert rel_error(float_out(back, x), ref) == 0.0
    return ideal


# ---------------------------------------------------------------------------------------------
# the root module
# ---------------------------------------------------------------------------------------------
def test_a_bare_layer_as_the_root_module_runs_on_tiles():
    """convert(nn.Linear) once left the layer in float (the analog layer a hidden child):
    with 5 ohm wires the bare root must differ from float and equal the same layer in a
    Sequential."""
    with seeded(0):
        lin = nn.Linear(23, 7).double()
    x = torch.rand(4, 23, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    config = HardwareConfig(tile=10, r_wire=5.0, dtype="float64")
    bare = convert(lin, config)
    wrapped = convert(nn.Sequential(lin), config)
    assert isinstance(bare.module, AnalogLinear) and not list(bare.module.children())[1:]
    assert len(bare.tiles()) == 6  # ceil(23 / 10) row blocks x ceil(7 / 5) column blocks
    assert [name for name, _ in bare.analog_layers()] == [""]
    assert rel_error(run(bare, x), float_out(lin, x)) > 1e-3
    torch.testing.assert_close(run(bare, x), run(wrapped, x), rtol=0, atol=0)
    assert type(bare.to_torch()) is nn.Linear


def test_a_bare_convolution_root_equals_it_in_a_sequential():
    with seeded(1):
        conv = nn.Conv2d(3, 5, 3, padding=1).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    bare, wrapped = convert(conv, WIRED), convert(nn.Sequential(conv), WIRED)
    assert isinstance(bare.module, AnalogConv2d)
    assert rel_error(run(bare, x), float_out(conv, x)) > 1e-3
    torch.testing.assert_close(run(bare, x), run(wrapped, x), rtol=0, atol=0)


def test_a_layer_held_twice_is_on_tiles_at_both_places():
    """A module used at two places (weight tying) becomes one analog layer at both."""
    with seeded(2):
        lin = nn.Linear(12, 12).double()
    model = nn.Sequential(lin, nn.Tanh(), lin)
    x = torch.rand(5, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    analog = assert_on_tiles(model, x)
    assert analog.module[0] is analog.module[2] and isinstance(analog.module[2], AnalogLinear)


def test_the_bayesian_mapping_replaces_a_bare_root_too():
    """bayesian(nn.Linear) is a BayesLinear at the root; its mean network on ideal tiles (no
    device spread, every device at its mean) is the float layer, and 5 ohm wires change it
    exactly as for the layer in a Sequential."""
    with seeded(3):
        lin = nn.Linear(23, 7).double()
    x = torch.rand(6, 23, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    spread = B.DeviceSpread(variability=Variability(sigma_d2d=0.0, sigma_read=0.0))
    for technology in (None, B.Technology.of(IDEAL, spread)):
        net = B.bayesian(lin, technology)
        assert isinstance(net.module, B.BayesLinear) and [n for n, _ in net.layers()] == [""]
        mean = net.mean_model()
        assert type(mean) is nn.Linear and rel_error(float_out(mean, x), float_out(lin, x)) == 0.0
        crossbar = B.BayesianCrossbar(net, IDEAL, spread=spread).set_mean()
        assert rel_error(run(crossbar.analog, x), float_out(lin, x)) <= 1e-6
        wired = B.BayesianCrossbar(net, WIRED, spread=spread).set_mean()
        wrapped = B.BayesianCrossbar(B.bayesian(nn.Sequential(lin), technology), WIRED, spread=spread).set_mean()
        assert rel_error(run(wired.analog, x), float_out(lin, x)) > 1e-3
        torch.testing.assert_close(run(wired.analog, x), run(wrapped.analog, x), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# Linear on any leading shape
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 6, 19), (19,), (2, 3, 2, 19), (0, 19)])
def test_linear_takes_inputs_of_any_leading_shape(shape):
    with seeded(4):
        lin = nn.Linear(19, 9).double()
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    if not x.numel():
        assert run(convert(lin, IDEAL), x).shape == (0, 9)
        return
    assert_on_tiles(lin, x)
    # the training draw keeps the shape too, output noise included, and differentiates
    analog = convert(lin, IDEAL.replace(out_noise=0.05), program=False)
    analog.train()
    y = analog(x)
    assert y.shape == float_out(lin, x).shape
    y.square().sum().backward()
    assert float(analog.module.weight.grad.abs().sum()) > 0


def test_linear_refuses_inputs_of_the_wrong_width():
    analog = convert(nn.Linear(8, 3).double(), IDEAL)
    with pytest.raises(ValueError, match=r"expects inputs \(\.\.\., 8\)"):
        analog(torch.zeros(2, 7, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------
# convolutions
# ---------------------------------------------------------------------------------------------
CONVS = {
    "conv1d": (lambda: nn.Conv1d(5, 6, 3, padding=1), (3, 5, 12)),
    "conv1d strided dilated reflect": (lambda: nn.Conv1d(5, 6, 3, stride=2, dilation=2, padding=2,
                                                         padding_mode="reflect"), (2, 5, 15)),
    "conv1d grouped same circular": (lambda: nn.Conv1d(6, 8, 4, groups=2, padding="same",
                                                       padding_mode="circular"), (2, 6, 11)),
    "conv1d depthwise valid": (lambda: nn.Conv1d(4, 4, 5, groups=4, padding="valid", bias=False), (3, 4, 10)),
    "conv2d depthwise": (lambda: nn.Conv2d(6, 6, 3, groups=6, padding=1), (2, 6, 7, 7)),
    "conv2d depthwise multiplier": (lambda: nn.Conv2d(3, 9, 3, groups=3, padding=1, stride=2), (2, 3, 8, 8)),
    "conv2d grouped dilated replicate": (lambda: nn.Conv2d(6, 12, 3, groups=3, dilation=2, padding=(2, 1),
                                                           padding_mode="replicate", stride=(1, 2)), (2, 6, 9, 8)),
    "conv2d same dilated": (lambda: nn.Conv2d(4, 6, (3, 2), padding="same", dilation=(1, 2)), (2, 4, 6, 7)),
    "conv2d grouped reflect": (lambda: nn.Conv2d(8, 4, 3, groups=4, padding=1, padding_mode="reflect"),
                               (2, 8, 6, 6)),
    "conv2d unbatched": (lambda: nn.Conv2d(4, 6, 3, padding=1), (4, 6, 7)),
}


@pytest.mark.parametrize("name", list(CONVS))
def test_convolutions_on_ideal_tiles_are_torchs(name):
    build, shape = CONVS[name]
    with seeded(5):
        conv = build().double()
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    analog = assert_on_tiles(conv, x)
    layer = analog.module
    assert isinstance(layer, AnalogConv1d if conv.weight.ndim == 3 else AnalogConv2d)
    # each group's (C_in / groups) prod(kernel) x (out / groups) block on its own T x T tiles
    rows = conv.in_channels // conv.groups * math.prod(conv.kernel_size)
    cols = conv.out_channels // conv.groups
    per_group = math.ceil(rows / IDEAL.tile) * math.ceil(cols / (IDEAL.tile // 2))
    assert len(layer.tiles) == conv.groups * per_group
    for tile in layer.tiles:
        group = tile.cols.start // cols
        assert group * rows <= tile.rows.start < tile.rows.stop <= (group + 1) * rows
        assert tile.cols.stop <= (group + 1) * cols


@pytest.mark.parametrize("name", ["conv1d strided dilated reflect", "conv2d grouped dilated replicate",
                                  "conv2d same dilated"])
def test_patches_are_unfold_of_the_padded_input_and_their_peaks_strided_views(name):
    """The patch matrix equals F.unfold (Conv1d as a height-1 Conv2d) of the input padded as
    torch pads it; each tile's patch peak equals the patch matrix's row maxima."""
    build, shape = CONVS[name]
    with seeded(6):
        conv = build().double()
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    layer = convert(conv, IDEAL).module
    x2d, out_shape = layer.patches(x)
    if conv.padding_mode != "zeros":
        pad = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
    else:
        pad = F.pad(x, conv._reversed_padding_repeated_twice)
    if conv.weight.ndim == 3:
        ref = F.unfold(pad[:, :, None], (1, conv.kernel_size[0]), dilation=(1, conv.dilation[0]),
                       stride=(1, conv.stride[0]))
    else:
        ref = F.unfold(pad, conv.kernel_size, dilation=conv.dilation, stride=conv.stride)
    torch.testing.assert_close(x2d, ref.transpose(1, 2).reshape(x2d.shape), rtol=0, atol=0)
    assert out_shape == (x.shape[0], *float_out(conv, x).shape[2:])
    for tile in layer.tiles:
        expected = x2d[:, tile.rows].abs().amax(dim=1).reshape(out_shape)
        torch.testing.assert_close(layer.patch_peak(x, tile.rows), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["conv1d grouped same circular", "conv2d depthwise"])
def test_the_bayesian_mapping_takes_the_new_convolutions(name):
    build, shape = CONVS[name]
    with seeded(7):
        conv = build().double()
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    spread = B.DeviceSpread(variability=Variability(sigma_d2d=0.0, sigma_read=0.0))
    net = B.bayesian(conv, B.Technology.of(IDEAL, spread))
    layer = net.module
    assert type(net.mean_model()) is type(conv) and rel_error(float_out(net.mean_model(), x), float_out(conv, x)) == 0
    # the technology bound holds per weight of a grouped layer, and sigma keeps the weight's shape
    assert layer.sigma().shape == conv.weight.shape and bool((layer.sigma() > 0).all())
    crossbar = B.BayesianCrossbar(net, IDEAL, spread=spread).set_mean()
    assert rel_error(run(crossbar.analog, x), float_out(conv, x)) <= 1e-6
    wired = B.BayesianCrossbar(net, WIRED, spread=spread).set_mean()
    assert rel_error(run(wired.analog, x), float_out(conv, x)) > 1e-4
    # the local reparameterisation: mean and variance are the grouped convolution's
    net.train()
    with torch.no_grad():
        draws = torch.stack([net(x) for _ in range(400)])
    var = layer.geometry.conv(x * x, layer.sigma().detach() ** 2)
    assert rel_error(draws.mean(0), float_out(conv, x)) < 0.05
    assert abs(float((draws.var(0) / var).mean()) - 1) < 0.1


def test_unsupported_layers_and_bad_inputs_get_one_clear_line():
    with pytest.raises(ValueError, match=r"'1' \(Conv3d\) has no tile mapping.*Linear, Conv1d, Conv2d"):
        convert(nn.Sequential(nn.Linear(4, 4), nn.Conv3d(1, 1, 1)), IDEAL)
    with pytest.raises(ValueError, match=r"'' \(ConvTranspose2d\) has no Bayesian form"):
        B.bayesian(nn.ConvTranspose2d(2, 2, 3))
    with pytest.raises(ValueError, match="no layer to put on tiles"):
        convert(nn.ReLU(), IDEAL)
    analog = convert(nn.Conv1d(3, 4, 3).double(), IDEAL)
    with pytest.raises(ValueError, match=r"expects \(\[batch,\] 3 channels, length\)"):
        analog(torch.zeros(2, 4, 9, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------
# noise, drift compensation and hardware-aware training on the new layers
# ---------------------------------------------------------------------------------------------
def _sequence_model():
    with seeded(8):
        return nn.Sequential(nn.Conv1d(4, 8, 3, groups=2, dilation=2, padding="same", padding_mode="reflect"),
                             nn.ReLU(), nn.Conv1d(8, 8, 3, groups=8, padding=1), nn.Flatten(), nn.Linear(8 * 10, 5),
                             ).double()


def test_noise_models_and_drift_compensation_run_on_grouped_conv1d():
    model = _sequence_model()
    x = torch.rand(6, 4, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    ref = float_out(model, x)
    for noise in ("rram", "pcm"):
        config = IDEAL.replace(noise=noise, conductances="analog" if noise == "rram" else "pcm", out_noise=0.01)
        analog = convert(model, config, seed=1)
        fresh = run(analog, x)
        assert 1e-4 < rel_error(fresh, ref) < 0.5
        gdc = GlobalDriftCompensation().fit(analog).attach(analog)
        drifted = run(analog.set_time(86400.0 * 365), x)
        assert len(gdc.factors) == len(analog.tiles()) and not torch.equal(drifted, fresh)
        if noise == "pcm":  # PCM drift lowers every conductance; GDC scales the tiles back up
            assert all(float(f) > 1.0 for f in gdc.factors)
            gdc.detach()
            assert rel_error(run(analog, x), ref) > rel_error(drifted, ref)


def test_hardware_aware_training_draws_through_grouped_and_dilated_convolutions():
    model = _sequence_model()
    x = torch.rand(6, 4, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    analog = convert(model, IDEAL.replace(noise="pcm", conductances="pcm", out_noise=0.02), seed=2, program=False)
    analog.training_noise(t_seconds=3600.0, gdc=True)
    analog.train()
    y = analog(x)
    assert y.shape == (6, 5) and rel_error(y, float_out(model, x)) > 1e-4
    y.square().sum().backward()
    for _, layer in analog.analog_layers():
        assert float(layer.weight.grad.abs().sum()) > 0
    analog.eval().program()
    assert len(analog.tiles()) == 2 + 8 + 5  # two 6 x 4 group blocks, eight 3 x 1 depthwise ones, 80 x 5 in 16-row tiles
