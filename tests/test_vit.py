"""The vision transformer built-in model (vit-fashion) on tiles: its patches, what goes on
tiles, and ideal tiles against torch's own float model."""
import pytest
import torch
from torch import nn

from memsim.nn import HardwareConfig, convert, models
from memsim.nn.analog import AnalogLinear, AnalogMultiheadAttention


def _vit(seed=0):
    torch.manual_seed(seed)
    return models.build("vit-fashion").double().eval()


def test_patches_are_the_7x7_blocks_of_the_image_in_row_order():
    net = _vit()
    image = torch.arange(784, dtype=torch.float64).reshape(1, 784)
    patches = net.patches(image)
    assert patches.shape == (1, 16, 49)
    grid = image.reshape(28, 28)
    for token, (row, col) in enumerate((r, c) for r in range(4) for c in range(4)):
        expected = grid[7 * row:7 * row + 7, 7 * col:7 * col + 7].reshape(49)
        assert torch.equal(patches[0, token], expected)


def test_every_weight_matrix_goes_on_tiles_and_attention_stays_digital():
    analog = convert(_vit(), HardwareConfig(tile=64, conductances="analog", dtype="float64"))
    layers = {name for name, m in analog.module.named_modules() if isinstance(m, AnalogLinear)}
    blocks = [f"encoder.layers.{k}" for k in range(2)]
    expected = {"embed", "head"} | {f"{b}.self_attn.{p}_proj" for b in blocks for p in ("q", "k", "v", "out")} \
        | {f"{b}.linear{i}" for b in blocks for i in (1, 2)}
    assert layers == expected
    assert sum(isinstance(m, AnalogMultiheadAttention) for m in analog.modules()) == 2
    # LayerNorm, the class token and the positions stay digital, as in torch
    assert sum(isinstance(m, nn.LayerNorm) for m in analog.modules()) == 5
    assert analog.module.cls.shape == (1, 1, 64) and analog.module.pos.shape == (1, 17, 64)


@pytest.mark.parametrize("tile", [16, 48])
def test_ideal_tiles_reproduce_the_float_transformer(tile):
    net = _vit(seed=1)
    x = torch.rand(6, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = net(x)
    analog = convert(net, HardwareConfig(tile=tile, conductances="analog", dtype="float64"), seed=0)
    with torch.no_grad():
        out = analog(x)
    assert float((out - reference).abs().max() / reference.abs().max()) <= 1e-6


def test_quantised_tiles_keep_the_shipped_transformers_predictions():
    from memsim.nn import datasets, pretrained

    if not pretrained.available("vit-fashion"):
        pytest.fail("vit-fashion ships seed-0 weights (scripts/ship_weights.py)")
    net = pretrained.load("vit-fashion")
    data = datasets.load("fashion-mnist")
    x, y = data.x_test[:300], data.y_test[:300]
    analog = convert(net, HardwareConfig(tile=128, conductances="rram8", dac_bits=8, adc_bits=8), seed=0,
                     calibration_x=data.x_train[:256])
    float_acc = analog.float_accuracy(x, y)
    tiles_acc = analog.accuracy(x, y)
    assert float_acc >= 0.8
    assert abs(tiles_acc - float_acc) <= 0.05
