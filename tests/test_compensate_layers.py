"""Drift compensation on every layer kind on tiles: VeRA+'s low-rank term on Conv1d, grouped /
depthwise / dilated Conv2d with every padding mode, recurrent and attention projections; GDC,
BatchNorm re-calibration and the IR-drop strategies on the same layers.

Expected values are torch's own float layers: on ideal tiles (continuous conductances,
float64) the VeRA+ term ``b * (B (d * (A x)))`` of a layer is the same layer with its weight
W replaced by ``W + diag(b) B diag(d) A`` (A as a kernel for a convolution, over every input
channel whatever the groups), so torch's layer with that weight gives the expected output.
"""
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from memsim.compensate import BNRecalibration, GlobalDriftCompensation, VeRAPlus, load, save
from memsim.devices.presets import Variability
from memsim.nn.analog import AnalogLayer, convert
from memsim.nn.config import HardwareConfig
from memsim.nn.noise import RRAMNoiseModel
from memsim.nn.training import seeded

IDEAL = HardwareConfig(tile=16, conductances="analog", dtype="float64")
#: every conductance falls by the same factor (1e6 s)^-0.05 = 0.501: no spread, no read noise
UNIFORM = IDEAL.replace(noise=RRAMNoiseModel(Variability(sigma_d2d=0.0, sigma_c2c=0.0, sigma_read=0.0,
                                                         drift_nu=0.05, drift_nu_std=0.0)))
T_DRIFT = 1e6


def rel_error(out, ref) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


def with_random_set(vera, analog, seed=0):
    """Projections for ``analog`` and one set of random vectors d, b per layer, used from t = 0."""
    rng = np.random.default_rng(seed)
    vera._init_projections(analog)
    layers = dict(analog.analog_layers())
    vera.sets = [{name: (rng.normal(size=vera.rank), rng.normal(size=layers[name].weight.shape[0]))
                  for name in vera.layers}]
    vera.times = [0.0]
    return vera


def low_rank(vera, name, n_in, n_out):
    """diag(b) B diag(d) A for layer ``name`` (outputs, n_in), from the drawn signs."""
    d, b = (torch.as_tensor(v, dtype=torch.float64) for v in vera.sets[0][name])
    a = torch.as_tensor(vera.a_sign[:, :n_in], dtype=torch.float64) / np.sqrt(n_in)
    bb = torch.as_tensor(vera.b_sign[:n_out], dtype=torch.float64)
    return (b[:, None] * bb) @ (d[:, None] * a)


def attached_output(vera, analog, *x):
    vera.attach(analog)
    try:
        with torch.no_grad():
            return analog(*x)
    finally:
        vera.detach()


# ---------------------------------------------------------------------------------------------
# VeRA+ on convolutions
# ---------------------------------------------------------------------------------------------
CONVS = {
    "conv2d groups 2 dilation 2 reflect": lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2,
                                                            padding_mode="reflect"),
    "conv2d depthwise replicate stride 2": lambda: nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4,
                                                             padding_mode="replicate"),
    "conv2d circular 2x4 kernel same": lambda: nn.Conv2d(3, 5, (2, 4), padding="same", padding_mode="circular"),
    "conv2d zeros dilation (1, 3) no bias": lambda: nn.Conv2d(3, 4, 3, padding=(1, 2), dilation=(1, 3), bias=False),
    "conv1d groups 2 reflect stride 2": lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2,
                                                          padding_mode="reflect"),
    "conv1d dilation 2 circular": lambda: nn.Conv1d(3, 5, 3, padding=2, dilation=2, padding_mode="circular"),
}


def conv_input(conv, seed):
    shape = (3, conv.in_channels, 9) if isinstance(conv, nn.Conv1d) else (3, conv.in_channels, 7, 8)
    return torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) - 0.3


def added_kernel(vera, conv):
    """The VeRA+ term of ``conv`` as torch's own convolution: every input channel (groups 1),
    the layer's stride, padding, dilation and padding mode, no bias."""
    kernel = tuple(conv.kernel_size)
    extra = type(conv)(conv.in_channels, conv.out_channels, kernel, conv.stride, conv.padding, conv.dilation,
                       groups=1, bias=False, padding_mode=conv.padding_mode).double()
    if vera.conv == "patch":
        w = low_rank(vera, "", conv.in_channels * int(np.prod(kernel)), conv.out_channels)
        weight = w.reshape(conv.out_channels, conv.in_channels, *kernel)
    else:  # the centre tap k // 2 of every input channel
        weight = torch.zeros_like(extra.weight)
        weight[(slice(None), slice(None), *(k // 2 for k in kernel))] = \
            low_rank(vera, "", conv.in_channels, conv.out_channels)
    with torch.no_grad():
        extra.weight.copy_(weight)
    return extra


@pytest.mark.parametrize("scheme", ["patch", "1x1"])
@pytest.mark.parametrize("name", list(CONVS))
def test_vera_term_on_a_convolution_is_torchs_convolution_with_the_added_kernel(name, scheme):
    with seeded(1):
        conv = CONVS[name]().double()
    x = conv_input(conv, 2)
    analog = convert(conv, IDEAL)
    vera = with_random_set(VeRAPlus(2, conv=scheme), analog)
    n_in = conv.in_channels * (int(np.prod(conv.kernel_size)) if scheme == "patch" else 1)
    assert vera.a_sign.shape == (2, n_in)  # every input channel, whatever the groups
    with torch.no_grad():
        expected = conv(x) + added_kernel(vera, conv)(x)
        plain = analog(x)
    out = attached_output(vera, analog, x)
    assert out.shape == expected.shape
    assert rel_error(out, expected) <= 1e-12
    assert rel_error(plain, expected) > 1e-3  # the term is really there
    # an unbatched input gets the same term
    unbatched = attached_output(vera, analog, x[1])
    assert rel_error(unbatched, expected[1]) <= 1e-12


def test_vera_term_on_a_convolution_follows_the_training_draws():
    with seeded(3):
        conv = CONVS["conv2d groups 2 dilation 2 reflect"]().double()
    x = conv_input(conv, 4)
    analog = convert(conv, UNIFORM)
    vera = with_random_set(VeRAPlus(1, conv="patch"), analog)
    with torch.no_grad():
        drifted = convert(conv, IDEAL).module.plain()
        drifted.weight.mul_(T_DRIFT ** -0.05)
        expected = drifted(x) + added_kernel(vera, conv)(x)
    vera.attach(analog)
    try:
        with torch.no_grad(), analog.device_draws(t_seconds=T_DRIFT):
            out = analog.module(x)
    finally:
        vera.detach()
    assert rel_error(out, expected) <= 1e-12


# ---------------------------------------------------------------------------------------------
# VeRA+ on recurrent and attention projections
# ---------------------------------------------------------------------------------------------
def test_vera_term_on_every_lstm_projection_is_torchs_lstm_with_the_added_weights():
    with seeded(5):
        lstm = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True, proj_size=3).double()
    x = torch.rand(4, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    analog = convert(lstm, IDEAL)
    vera = with_random_set(VeRAPlus(2), analog)
    assert len(vera.layers) == 12  # ih, hh, hr per layer and direction
    reference = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True, proj_size=3).double()
    reference.load_state_dict(lstm.state_dict())
    with torch.no_grad():
        for name in vera.layers:
            weight = getattr(reference, f"weight_{name}")
            weight.add_(low_rank(vera, name, weight.shape[1], weight.shape[0]))
        expected, (h_n, c_n) = reference(x)
    out, (h_out, c_out) = attached_output(vera, analog, x)
    assert rel_error(out, expected) <= 1e-12
    assert rel_error(h_out, h_n) <= 1e-12 and rel_error(c_out, c_n) <= 1e-12
    with torch.no_grad():
        assert rel_error(lstm(x)[0], expected) > 1e-3


def test_vera_term_on_a_gru_cell_and_on_attention_projections():
    with seeded(6):
        cell = nn.GRUCell(4, 6).double()
        attention = nn.MultiheadAttention(8, 2, kdim=5, vdim=7).double()
    x = torch.rand(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    h = torch.rand(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    analog = convert(cell, IDEAL)
    vera = with_random_set(VeRAPlus(1), analog)
    reference = nn.GRUCell(4, 6).double()
    reference.load_state_dict(cell.state_dict())
    with torch.no_grad():
        for name in ("ih", "hh"):
            weight = getattr(reference, f"weight_{name}")
            weight.add_(low_rank(vera, name, weight.shape[1], weight.shape[0]))
        expected = reference(x, h)
    assert rel_error(attached_output(vera, analog, x, h), expected) <= 1e-12

    q, k, v = (torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(8 + i)) - 0.5
               for i, shape in enumerate([(5, 2, 8), (6, 2, 5), (6, 2, 7)]))
    analog = convert(attention, IDEAL)
    vera = with_random_set(VeRAPlus(3), analog, seed=1)
    assert vera.layers == ["q_proj", "k_proj", "v_proj", "out_proj"]
    reference = nn.MultiheadAttention(8, 2, kdim=5, vdim=7).double()
    reference.load_state_dict(attention.state_dict())
    with torch.no_grad():
        for name in vera.layers:
            weight = reference.out_proj.weight if name == "out_proj" else getattr(reference, f"{name}_weight")
            weight.add_(low_rank(vera, name, weight.shape[1], weight.shape[0]))
        expected, weights = reference(q, k, v)
    out, out_weights = attached_output(vera, analog, q, k, v)
    assert rel_error(out, expected) <= 1e-12 and rel_error(out_weights, weights) <= 1e-12


class SequenceClassifier(nn.Module):
    """A flat (batch, 64) input read as 8 steps of 8 features, an LSTM and a Linear head."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 12, batch_first=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        out, _ = self.lstm(x.reshape(x.shape[0], 8, 8))
        return self.head(out[:, -1])


def test_vera_fits_an_lstm_classifier_and_its_stored_sets_give_the_same_outputs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((96, 64))
    y = (x[:, :32].mean(axis=1) > x[:, 32:].mean(axis=1)).astype(int) + (x[:, 0] > 0.8)
    with seeded(0):
        model = SequenceClassifier().double()
    config = IDEAL.replace(noise="pcm", conductances="pcm")
    analog = convert(model, config, seed=0)
    vera = VeRAPlus(1, epochs=1, batch_size=32).fit_single(analog, x, y, 86400.0 * 365)
    assert vera.layers == ["lstm.ih_l0", "lstm.hh_l0", "head"]
    d, b = vera.sets[0]["lstm.hh_l0"]
    assert d.shape == (1,) and b.shape == (48,) and np.abs(b).max() > 0  # trained from b = 0
    assert vera.parameters == 3 * 1 + 48 + 48 + 3
    analog.set_time(86400.0 * 365)
    plain = analog.logits(x[:8])
    vera.attach(analog)
    with_term = analog.logits(x[:8])
    vera.detach()
    assert rel_error(with_term, plain) > 1e-6
    path = tmp_path / "vera.npz"
    save(path, [vera])
    stored = load(path)[0][0]
    fresh = convert(model, config, seed=0).set_time(86400.0 * 365)
    stored.attach(fresh)
    assert torch.equal(fresh.logits(x[:8]), with_term)


def test_vera_refuses_a_model_without_class_logits_and_a_layer_it_has_no_term_for():
    with seeded(2):
        lstm = nn.LSTM(4, 3).double()
    analog = convert(lstm, IDEAL)
    x, y = np.random.default_rng(0).random((8, 5, 4)), np.zeros(8, dtype=int)
    with pytest.raises(ValueError, match=r"class logits \(batch, classes\); the model returns tuple"):
        VeRAPlus(1, epochs=1).fit_single(analog, x, y, 3600.0)

    class AnalogOdd(AnalogLayer):
        def forward(self, x):
            return self._matrix_forward(x)

    analog = convert(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), IDEAL)
    analog.module[1] = AnalogOdd(nn.Linear(3, 2), analog._shared)
    with pytest.raises(ValueError, match=r"no low-rank term for layer '1' \(AnalogOdd\)"):
        VeRAPlus(1).fit_single(analog, np.zeros((4, 4)), np.zeros(4, dtype=int), 3600.0)


# ---------------------------------------------------------------------------------------------
# GDC and BatchNorm re-calibration on the new layers
# ---------------------------------------------------------------------------------------------
GDC_LAYERS = {
    "grouped dilated reflect conv2d": (lambda: CONVS["conv2d groups 2 dilation 2 reflect"](), (3, 4, 7, 8)),
    "depthwise conv1d": (lambda: nn.Conv1d(4, 4, 3, groups=4, padding=1, padding_mode="circular"), (3, 4, 9)),
    "lstm": (lambda: nn.LSTM(6, 5, num_layers=2), (7, 3, 6)),
    "gru cell": (lambda: nn.GRUCell(6, 5), (3, 6)),
    "attention": (lambda: nn.MultiheadAttention(8, 2), (5, 3, 8)),
}


@pytest.mark.parametrize("name", list(GDC_LAYERS))
def test_gdc_undoes_a_uniform_drift_on_every_layer_kind(name):
    """Every conductance falls by one factor: GDC's one-hot ratio is its inverse per tile, so
    the compensated tiles give torch's float layer again (uncompensated they are 0.2+ off),
    to the float32 rounding of the stored read-outs."""
    make, shape = GDC_LAYERS[name]
    with seeded(4):
        layer = make().double()
    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) - 0.3
    args = (x, x, x) if name == "attention" else (x,)

    def first(out):
        return out[0] if isinstance(out, tuple) else out

    with torch.no_grad():
        ref = first(layer(*args))
    analog = convert(layer, UNIFORM)
    gdc = GlobalDriftCompensation().fit(analog).attach(analog)
    analog.set_time(T_DRIFT)
    with torch.no_grad():
        compensated = first(analog(*args))
        gdc.detach()
        drifted = first(analog(*args))
    # to float32 rounding: GDC stores its programmed read-outs as float32
    assert rel_error(compensated, ref) <= 1e-6
    assert rel_error(drifted, ref) > 0.2
    np.testing.assert_allclose([float(f) for f in gdc.factors], T_DRIFT ** 0.05, rtol=1e-6)


def test_bn_recalibration_after_a_grouped_circular_conv1d_takes_the_drifted_statistics():
    """The re-estimated running mean and variance are those of torch's own Conv1d with the
    weight scaled by the drift factor, over the stored images."""
    with seeded(9):
        conv = nn.Conv1d(2, 4, 3, groups=2, padding=1, padding_mode="circular").double()
        model = nn.Sequential(nn.Unflatten(1, (2, 16)), conv, nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(),
                              nn.Linear(64, 3)).double()
    x_train = np.random.default_rng(9).random((40, 32))
    analog = convert(model, UNIFORM)
    bn = BNRecalibration(16, seed=3).fit(x_train).attach(analog)
    analog.set_time(T_DRIFT)
    stored = torch.as_tensor(bn.subset / 255.0).reshape(16, 2, 16)
    with torch.no_grad():
        drifted = nn.Conv1d(2, 4, 3, groups=2, padding=1, padding_mode="circular").double()
        drifted.weight.copy_(conv.weight * T_DRIFT ** -0.05)
        drifted.bias.copy_(conv.bias)
        out = drifted(stored)
    norm = analog.module[2]
    np.testing.assert_allclose(norm.running_mean.numpy(), out.mean(dim=(0, 2)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(norm.running_var.numpy(), out.var(dim=(0, 2), unbiased=True).numpy(), rtol=1e-12)
    bn.detach()
    np.testing.assert_array_equal(norm.running_mean.numpy(), np.zeros(4))  # the trained (fresh) statistics


def test_bn_recalibration_says_layernorm_keeps_no_running_statistics():
    model = nn.Sequential(nn.Linear(6, 4), nn.LayerNorm(4), nn.Linear(4, 2)).double()
    analog = convert(model, IDEAL)
    bn = BNRecalibration(4).fit(np.random.default_rng(0).random((8, 6)))
    with pytest.raises(ValueError, match=r"BatchNorm layers; this one has none \(LayerNorm normalise each input by its own statistics and "
                                         "keep no running statistics"):
        bn.attach(analog)


class ConvThenLSTM(nn.Module):
    """A flat (batch, 32) input as 2 channels of 16, a grouped reflect-padded Conv1d, an LSTM
    over the 16 positions and a Linear head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 8, 3, groups=2, padding=1, padding_mode="reflect")
        self.lstm = nn.LSTM(8, 32, batch_first=True)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        h = torch.relu(self.conv(x.reshape(x.shape[0], 2, 16)))
        out, _ = self.lstm(h.transpose(1, 2))
        return self.head(out[:, -1])


def test_ir_drop_column_correction_and_predistortion_on_a_grouped_conv1d_and_an_lstm():
    """5 ohm wires on 32 x 32 tiles move the logits by a few percent of torch's; the per-column
    correction (fitted on every read of every tile, the hidden projection's at all 16 steps)
    cuts that at least threefold, pre-distortion onto a reduced range lowers it too."""
    from memsim.compensate import NetworkColumnCorrection, NetworkPreDistortion, attached, headroom_conductances
    from memsim.nn.mapping import conductances

    with seeded(0):
        model = ConvThenLSTM().double()
    x = np.random.default_rng(0).random((64, 32))
    with torch.no_grad():
        ref = model(torch.as_tensor(x))
    config = HardwareConfig(tile=32, conductances="rram64", dtype="float64", r_wire=5.0)
    analog = convert(model, config)
    uncompensated = rel_error(analog.logits(x), ref)
    assert uncompensated > 0.01
    column = NetworkColumnCorrection().fit(analog, x)
    assert len(column.corrections) == len(analog.tiles())
    with attached(analog, column):
        assert rel_error(analog.logits(x), ref) < uncompensated / 3
    levels = np.asarray(conductances("rram64").levels)
    pre = NetworkPreDistortion(levels, iterations=4, g_max_target=float(levels[42]))
    headroom = convert(model, config.replace(conductances=headroom_conductances(levels, pre.g_max_target)))
    before = rel_error(headroom.logits(x), ref)
    pre.fit(headroom, x).attach(headroom)
    assert rel_error(headroom.logits(x), ref) < 0.9 * before
