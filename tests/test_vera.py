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
    vera = _with_set(VeRAPlus(2, conv="patch"), analog, np.ones(2), np.ones(5))
    assert vera.a_sign.shape == (2, 27)


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
