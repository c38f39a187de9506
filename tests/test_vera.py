"""VeRA+ details: the 1x1-kernel scheme for convolutions, the projections, storage."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from memsim.compensate import VeRAPlus, load, save
from memsim.nn.analog import convert
from memsim.nn.config import HardwareConfig


@pytest.fixture
def conv_net():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1).double()
    analog = convert(nn.Sequential(conv), HardwareConfig(tile=64, conductances="analog", dtype="float64"))
    return analog, torch.randn(2, 3, 6, 6, dtype=torch.float64)


def _with_set(vera, analog, d, b):
    vera._init_projections(analog)
    vera.sets, vera.times = [{vera.layers[0]: (d, b)}], [0.0]
    return vera


def test_one_by_one_scheme_is_a_pointwise_convolution_of_the_input(conv_net):
    analog, x = conv_net
    rng = np.random.default_rng(0)
    d, b = rng.normal(size=2), rng.normal(size=5)
    vera = _with_set(VeRAPlus(2, conv="1x1"), analog, d, b)
    plain = analog(x)
    vera.attach(analog)
    branch = analog(x) - plain
    vera.detach()
    a = torch.tensor(vera.a_sign[:, :3], dtype=x.dtype) / np.sqrt(3)  # A sliced to C_in = 3
    bb = torch.tensor(vera.b_sign[:5, :], dtype=x.dtype)
    z = F.conv2d(x, a.reshape(2, 3, 1, 1)) * torch.tensor(d).reshape(1, 2, 1, 1)
    expected = F.conv2d(z, bb.reshape(5, 2, 1, 1)) * torch.tensor(b).reshape(1, 5, 1, 1)
    torch.testing.assert_close(branch, expected, rtol=1e-9, atol=1e-10)
    assert vera.a_sign.shape == (2, 3)  # 3 input channels, not 27 patch inputs


def test_patch_scheme_projects_the_whole_patch(conv_net):
    analog, x = conv_net
    rng = np.random.default_rng(3)
    d, b = rng.normal(size=2), rng.normal(size=5)
    vera = _with_set(VeRAPlus(2, conv="patch"), analog, d, b)
    assert vera.a_sign.shape == (2, 27)
    layer = dict(analog.analog_layers())[vera.layers[0]]
    plain = analog(x)
    vera.attach(analog)
    branch = analog(x) - plain
    vera.detach()
    # the patch matrix (rows ordered C_in, kh, kw) times A, as a matrix product
    x2d, shape = layer.patches(x)
    a = torch.tensor(vera.a_sign, dtype=x.dtype) / np.sqrt(27)
    bb = torch.tensor(vera.b_sign[:5, :], dtype=x.dtype)
    expected = ((x2d @ a.T) * torch.tensor(d)) @ bb.T * torch.tensor(b)
    torch.testing.assert_close(branch, expected.reshape(*shape, 5).permute(0, 3, 1, 2), rtol=1e-9, atol=1e-10)


def test_vera_term_acts_on_the_training_draws_too(conv_net):
    analog, x = conv_net
    vera = _with_set(VeRAPlus(2), analog, np.ones(2), np.ones(5))
    with torch.no_grad(), analog.device_draws(t_seconds=0.0):
        gen = analog._shared.sample_generator
        state = gen.get_state()
        plain = analog.module(x)
        vera.attach(analog)
        gen.set_state(state)
        branch = analog.module(x) - plain
        vera.detach()
    vera.attach(analog)
    expected = analog(x)
    vera.detach()
    torch.testing.assert_close(branch, expected - analog(x), rtol=1e-9, atol=1e-10)


def test_offset_projection_and_storage_round_trip(conv_net, tmp_path):
    analog, x = conv_net
    vera = _with_set(VeRAPlus(3, projection="offset"), analog, np.ones(3, np.float32), np.ones(5, np.float32))
    assert np.all(vera.a_sign[0] == 1)
    path = save(tmp_path / "vera.npz", [vera])
    back = load(path)[0][0]
    assert (back.conv, back.projection) == ("1x1", "offset")
    np.testing.assert_array_equal(back.a_sign, vera.a_sign)
    with pytest.raises(ValueError, match="conv must be"):
        VeRAPlus(1, conv="3x3")
    with pytest.raises(ValueError, match="projection must be"):
        VeRAPlus(1, projection="ones")


def test_storage_is_the_seed_vectors_and_switch_times_and_the_file_holds_no_projection(conv_net, tmp_path):
    analog, x = conv_net
    vera = _with_set(VeRAPlus(2, seed=7), analog, np.ones(2, np.float32), np.ones(5, np.float32))
    vera.sets.append({vera.layers[0]: (np.zeros(2, np.float32), np.zeros(5, np.float32))})
    vera.times.append(100.0)
    # 8 B seed + 2 sets x (2 + 5) float32 + 2 float64 switch times
    assert vera.storage_bytes == 8 + 2 * 7 * 4 + 2 * 8
    stored = vera.arrays()
    assert not any(key.startswith(("a_", "b_")) for key in stored)
    assert sum(v.nbytes for v in stored.values()) == vera.storage_bytes
    back = load(save(tmp_path / "vera.npz", [vera]))[0][0]
    np.testing.assert_array_equal(back.a_sign, vera.a_sign)
    np.testing.assert_array_equal(back.b_sign, vera.b_sign)
    other = VeRAPlus(2, seed=8)
    other._init_projections(analog)
    assert not np.array_equal(other.a_sign, vera.a_sign) or not np.array_equal(other.b_sign, vera.b_sign)


def test_one_by_one_scheme_on_the_resnet_stride_two_and_shortcut_convolutions():
    from memsim.nn.models import BasicBlock

    torch.manual_seed(1)
    block = BasicBlock(4, 6, 2).double().eval()
    analog = convert(nn.Sequential(block), HardwareConfig(tile=64, conductances="analog", dtype="float64"))
    layers = dict(analog.analog_layers())
    assert set(layers) == {"0.conv1", "0.conv2", "0.shortcut.0"}
    rng = np.random.default_rng(2)
    vera = VeRAPlus(3)
    vera._init_projections(analog)
    vset = {name: (rng.normal(size=3), rng.normal(size=layer.weight.shape[0])) for name, layer in layers.items()}
    vera.sets, vera.times = [vset], [0.0]
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)  # odd size: stride 2 with padding 1 and without
    for name, stride in (("0.conv1", 2), ("0.shortcut.0", 2), ("0.conv2", 1)):
        layer = layers[name]
        inp = x if name != "0.conv2" else torch.randn(2, 6, 4, 4, dtype=torch.float64)
        plain = layer(inp)
        vera.attach(analog)
        branch = layer(inp) - plain
        vera.detach()
        c_in, c_out = layer.weight.shape[:2][::-1]
        a = torch.tensor(vera.a_sign[:, :c_in], dtype=x.dtype) / np.sqrt(c_in)
        bb = torch.tensor(vera.b_sign[:c_out, :], dtype=x.dtype)
        d, b = (torch.tensor(v) for v in vset[name])
        # the kernel's centre sits on input pixel (stride * i, stride * j) for 3x3 / padding 1 and 1x1 / padding 0
        z = F.conv2d(inp, a.reshape(3, c_in, 1, 1), stride=stride) * d.reshape(1, 3, 1, 1)
        expected = F.conv2d(z, bb.reshape(c_out, 3, 1, 1)) * b.reshape(1, c_out, 1, 1)
        assert branch.shape == plain.shape == expected.shape
        torch.testing.assert_close(branch, expected, rtol=1e-9, atol=1e-10)
