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
from memsim.nn.analog import (AnalogConv1d, AnalogConv2d, AnalogLinear, AnalogMultiheadAttention, AnalogRNN,
                              AnalogRNNCell, convert)
from memsim.nn.config import HardwareConfig
from memsim.nn.training import seeded

IDEAL = HardwareConfig(tile=16, conductances="analog", dtype="float64")
WIRED = IDEAL.replace(r_wire=5.0)


def rel_error(out, ref) -> float:
    return float((out - ref).detach().abs().max() / ref.detach().abs().max())


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
    with pytest.raises(ValueError, match=r"'1' \(Conv3d\) has no tile mapping.*Linear, Conv1d, Conv2d, RNN"):
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
    # two 6 x 4 group blocks, eight 3 x 1 depthwise ones, 80 x 5 in 16-row tiles
    assert len(analog.tiles()) == 2 + 8 + 5


# ---------------------------------------------------------------------------------------------
# recurrent layers and attention: the weight matrices on tiles, the rest digital
# ---------------------------------------------------------------------------------------------
def _flat(out):
    """The tensors of a (possibly nested) tuple of results, Nones left out."""
    if isinstance(out, tuple):
        return [t for item in out for t in _flat(item)]
    return [] if out is None else [out]


RECURRENT = {
    "rnn tanh 2 layers": (lambda: nn.RNN(5, 7, num_layers=2), (6, 3, 5)),
    "rnn relu bidirectional batch_first": (lambda: nn.RNN(5, 7, nonlinearity="relu", bidirectional=True,
                                                          batch_first=True), (3, 6, 5)),
    "lstm 2 layers bidirectional": (lambda: nn.LSTM(5, 7, num_layers=2, bidirectional=True), (6, 3, 5)),
    "lstm proj_size batch_first": (lambda: nn.LSTM(5, 8, proj_size=3, batch_first=True), (3, 6, 5)),
    "gru 2 layers bidirectional batch_first": (lambda: nn.GRU(5, 7, num_layers=2, bidirectional=True,
                                                              batch_first=True), (3, 6, 5)),
    "gru unbatched no bias": (lambda: nn.GRU(5, 7, bias=False), (6, 5)),
}


@pytest.mark.parametrize("name", list(RECURRENT))
def test_recurrent_layers_on_ideal_tiles_are_torchs(name):
    """Output, h_n (and c_n) of RNN / LSTM / GRU: every input and hidden projection on tiles,
    gates and recurrence digital."""
    build, shape = RECURRENT[name]
    with seeded(10):
        rnn = build().double()
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    ref = _flat(float_out(rnn, x))
    analog = convert(rnn, IDEAL)
    assert isinstance(analog.module, AnalogRNN)
    directions = 2 if rnn.bidirectional else 1
    kinds = 3 if rnn.proj_size else 2
    assert len(analog.analog_layers()) == rnn.num_layers * directions * kinds
    out = _flat(run(analog, x))
    assert [o.shape for o in out] == [r.shape for r in ref]
    for o, r in zip(out, ref):
        assert rel_error(o, r) <= 1e-6
    for o, r in zip(_flat(run(convert(rnn, WIRED), x)), ref):
        assert rel_error(o, r) > 1e-3
    back = analog.to_torch()
    assert type(back) is type(rnn)
    for o, r in zip(_flat(float_out(back, x)), ref):
        assert rel_error(o, r) == 0.0


CELLS = {"rnn cell relu": lambda: nn.RNNCell(5, 7, nonlinearity="relu"), "lstm cell": lambda: nn.LSTMCell(5, 7),
         "gru cell no bias": lambda: nn.GRUCell(5, 7, bias=False)}


@pytest.mark.parametrize("name", list(CELLS))
def test_recurrent_cells_on_ideal_tiles_are_torchs(name):
    """A cell run by a loop over time steps: ih and hh on tiles, the gates digital; with and
    without a given state, batched and not."""
    with seeded(17):
        cell = CELLS[name]().double()
    gen = torch.Generator().manual_seed(17)
    x = torch.randn(4, 3, 5, dtype=torch.float64, generator=gen)
    h0 = torch.randn(3, 7, dtype=torch.float64, generator=gen)
    state = (h0, torch.randn(3, 7, dtype=torch.float64, generator=gen)) if isinstance(cell, nn.LSTMCell) else h0

    def unroll(module, start):
        outs, s = [], start
        with torch.no_grad():
            for t in range(x.shape[0]):
                s = module(x[t], s)
                outs += _flat(s)
            outs += _flat(module(x[0, 0]))  # unbatched, no state
        return outs

    analog = convert(cell, IDEAL)
    assert isinstance(analog.module, AnalogRNNCell)
    ref = unroll(cell, state)
    for o, r in zip(unroll(analog, state), ref):
        assert o.shape == r.shape and rel_error(o, r) <= 1e-6
    assert rel_error(unroll(convert(cell, WIRED), state)[-1], ref[-1]) > 1e-3
    assert type(analog.to_torch()) is type(cell)
    # training: one device instance for the whole loop inside hold_draws
    drawn = convert(cell, IDEAL.replace(noise="pcm", conductances="pcm"), seed=1, program=False).train()
    with drawn.module.hold_draws():
        first = _flat(drawn(x[0], state))[0]
        again = _flat(drawn(x[0], state))[0]
    assert rel_error(first, again) == 0.0 and rel_error(first, _flat(cell(x[0], state))[0]) > 1e-3


def test_an_lstm_takes_its_initial_state_and_calibrates_its_adcs_on_every_step():
    with seeded(11):
        lstm = nn.LSTM(4, 6, num_layers=2).double()
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(5, 3, 4, dtype=torch.float64, generator=gen)
    state = (torch.randn(2, 3, 6, dtype=torch.float64, generator=gen),
             torch.randn(2, 3, 6, dtype=torch.float64, generator=gen))
    with torch.no_grad():
        ref = _flat(lstm(x, state))
        out = _flat(convert(lstm, IDEAL)(x, state))
        assert rel_error(ref[0], _flat(lstm(x))[0]) > 0.01  # the state matters
    for o, r in zip(out, ref):
        assert rel_error(o, r) <= 1e-6
    # the hidden projection is read at every step: its tiles see all 5 x 3 hidden states
    analog = convert(lstm, IDEAL.replace(adc_bits=10), calibration_x=x)
    inputs = analog.tile_inputs(x)
    hidden = [k for k, (name, _) in enumerate(analog.analog_layers()) if name.startswith("hh")]
    layer_tiles = [len(layer.tiles) for _, layer in analog.analog_layers()]
    first = sum(layer_tiles[:hidden[0]])
    assert inputs[first].shape == (5 * 3, 6)
    assert all(math.isfinite(t.adc_full_scale) for t in analog.tiles())
    for o, r in zip(_flat(run(analog, x)), _flat(float_out(lstm, x))):
        assert 0 < rel_error(o, r) < 0.02  # 10-bit ADCs on the calibrated range


def test_a_recurrent_training_draw_holds_one_device_instance_per_sequence():
    """Hardware-aware training on an LSTM: each projection draws once per forward (the same
    weights at every step), which a float LSTM with those drawn weights reproduces."""
    with seeded(12):
        lstm = nn.LSTM(4, 6, batch_first=True).double()
    x = torch.randn(3, 7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(12))
    config = IDEAL.replace(noise="pcm", conductances="pcm")
    analog = convert(lstm, config, seed=5, program=False).training_noise(t_seconds=3600.0)
    analog.train()
    out, (h_n, c_n) = analog(x)
    (out.square().sum() + c_n.sum()).backward()
    assert all(float(layer.weight.grad.abs().sum()) > 0 for _, layer in analog.analog_layers())
    twin = convert(lstm, config, seed=5, program=False).training_noise(t_seconds=3600.0)
    drawn = {name: layer.sampled_matrix()[0].T.detach() for name, layer in twin.analog_layers()}
    plain = nn.LSTM(4, 6, batch_first=True).double()
    with torch.no_grad():
        for name, w in drawn.items():
            getattr(plain, f"weight_{name}").copy_(w)
            getattr(plain, f"bias_{name}").copy_(getattr(lstm, f"bias_{name}"))
    ref, _ = float_out(plain, x)
    assert rel_error(out.detach(), ref) <= 1e-12
    assert rel_error(out.detach(), float_out(lstm, x)[0]) > 1e-3  # the draw is not the float weights


def test_hardware_aware_training_trains_a_gru_classifier_then_programs_it():
    """memsim.nn.training.train on convert(..., program=False) of a GRU sequence classifier:
    the device draws train the float weights (the loss falls), then the tiles are programmed."""
    from types import SimpleNamespace

    from memsim.nn.training import train

    class Last(nn.Module):  # the GRU's last output
        def forward(self, out):
            return out[0][:, -1]

    rng = torch.Generator().manual_seed(16)
    x = torch.randn(64, 6, 3, dtype=torch.float64, generator=rng)
    y = (x[:, :, 0].sum(dim=1) > 0).long()  # the sign of a running sum: a recurrent task
    with seeded(16):
        model = nn.Sequential(nn.Unflatten(1, (6, 3)), nn.GRU(3, 8, batch_first=True), Last(),
                              nn.Linear(8, 2)).double()
    data = SimpleNamespace(x_train=x.flatten(1).numpy(), y_train=y.numpy())
    analog = convert(model, IDEAL.replace(noise="pcm", conductances="pcm", out_noise=0.02), program=False)
    analog.training_noise(t_seconds=60.0)
    loss = nn.CrossEntropyLoss()
    with torch.no_grad():
        before = float(loss(analog.train()(x.flatten(1)), y))
    train(analog, data, epochs=15, batch_size=16, lr=1e-2, seed=0)
    assert len(analog.tiles()) == 3 + 3 + 1  # GRU ih 3 x 24, hh 8 x 24 (8 outputs a tile), Linear 8 x 2
    with torch.no_grad():
        after = float(loss(analog.eval()(x.flatten(1)), y))  # on the programmed tiles
    assert after < 0.7 * before


def test_noise_models_and_drift_compensation_run_on_a_gru():
    with seeded(13):
        gru = nn.GRU(6, 8).double()
    x = torch.rand(5, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(13))
    ref, _ = float_out(gru, x)
    analog = convert(gru, IDEAL.replace(noise="pcm", conductances="pcm", out_noise=0.01), seed=3)
    fresh, _ = run(analog, x)
    assert 1e-4 < rel_error(fresh, ref) < 0.5
    gdc = GlobalDriftCompensation().fit(analog).attach(analog)
    drifted, _ = run(analog.set_time(86400.0 * 365), x)
    assert all(float(f) > 1.0 for f in gdc.factors)  # PCM drift lowers every conductance
    gdc.detach()
    uncompensated, _ = run(analog, x)
    assert rel_error(uncompensated, ref) > rel_error(drifted, ref)


ATTENTION = {
    "self attention": (lambda: nn.MultiheadAttention(8, 2), (5, 3, 8), (5, 3, 8), (5, 3, 8)),
    "cross attention kdim vdim batch_first": (lambda: nn.MultiheadAttention(8, 4, batch_first=True, kdim=6, vdim=5),
                                              (3, 5, 8), (3, 7, 6), (3, 7, 5)),
    "unbatched no bias": (lambda: nn.MultiheadAttention(8, 2, bias=False), (5, 8), (5, 8), (5, 8)),
}


@pytest.mark.parametrize("name", list(ATTENTION))
def test_attention_projections_on_ideal_tiles_are_torchs(name):
    """nn.MultiheadAttention: outputs and attention weights (averaged or per head, with
    boolean causal, additive and key-padding masks) equal torch's; wires change them."""
    build, *shapes = ATTENTION[name]
    with seeded(14):
        mha = build().double().eval()
    gen = torch.Generator().manual_seed(14)
    q, k, v = (torch.randn(*shape, dtype=torch.float64, generator=gen) for shape in shapes)
    options = [{}, {"average_attn_weights": False}, {"need_weights": False}]
    if q.ndim == 3:
        seq_dim = 1 if mha.batch_first else 0
        tgt, src, batch = q.shape[seq_dim], k.shape[seq_dim], q.shape[1 - seq_dim]
        padding = torch.zeros(batch, src, dtype=torch.bool)
        padding[0, -2:] = True
        options += [{"attn_mask": torch.ones(tgt, src, dtype=torch.bool).triu(1), "key_padding_mask": padding},
                    {"attn_mask": torch.randn(tgt, src, dtype=torch.float64, generator=gen)},
                    {"key_padding_mask": padding, "need_weights": False}]
    analog = convert(mha, IDEAL)
    wired = convert(mha, WIRED)
    assert isinstance(analog.module, AnalogMultiheadAttention)
    assert [n for n, _ in analog.analog_layers()] == ["q_proj", "k_proj", "v_proj", "out_proj"]
    for option in options:
        with torch.no_grad():
            ref = mha(q, k, v, **option)
            out = analog(q, k, v, **option)
            moved = wired(q, k, v, **option)
        assert (out[1] is None) == (ref[1] is None)
        for o, r in zip(_flat(out), _flat(ref)):
            assert o.shape == r.shape and rel_error(o, r) <= 1e-6
        assert rel_error(moved[0], ref[0]) > 1e-3
    back = analog.to_torch()
    assert type(back) is nn.MultiheadAttention
    torch.testing.assert_close(back(q, k, v)[0], mha(q, k, v)[0], rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")  # torch's own float encoder
def test_a_transformer_encoder_runs_its_attention_and_feed_forward_on_tiles():
    """torch's encoder layers take a fused fast path in eval that reads the float weights;
    on tiles they must not: ideal tiles equal torch, wires change the result."""
    with seeded(15):
        encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                                        2).double().eval()
    x = torch.randn(3, 5, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(15))
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[1, -2:] = True
    analog = convert(encoder, IDEAL)
    assert len(analog.analog_layers()) == 2 * 6  # q, k, v, out, linear1, linear2 per layer
    with torch.no_grad():
        ref = encoder(x, src_key_padding_mask=padding)
        ref = ref.to_padded_tensor(0.0) if ref.is_nested else ref
        out = analog(x, src_key_padding_mask=padding)
    keep = ~padding[..., None]
    assert rel_error(out * keep, ref * keep) <= 1e-6
    assert rel_error(run(convert(encoder, WIRED), x), float_out(encoder, x)) > 1e-3


def test_attention_refuses_what_it_does_not_map():
    with pytest.raises(ValueError, match="add_bias_kv or add_zero_attn"):
        convert(nn.MultiheadAttention(8, 2, add_bias_kv=True), IDEAL)
    analog = convert(nn.MultiheadAttention(8, 2).double(), IDEAL)
    x = torch.zeros(4, 1, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="is_causal is a hint"):
        analog(x, x, x, is_causal=True)
    rnn = convert(nn.LSTM(3, 4).double(), IDEAL)
    with pytest.raises(ValueError, match=r"expects \(L, N, 3\)"):
        rnn(torch.zeros(2, 2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="PackedSequence"):
        rnn(nn.utils.rnn.pack_sequence([torch.zeros(2, 3, dtype=torch.float64)]))
