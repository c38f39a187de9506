"""The built-in models' shipped seed-0 weights (memsim.nn.pretrained): used for seed 0 without
training, refused when changed, and set aside for other seeds, a changed recipe or a retrain."""
import shutil

import numpy as np
import pytest

from memsim import experiments
from memsim.nn import models, pretrained, training

#: Float test accuracy each shipped model must reach (README's model table rounds these down).
FLOORS = {"mlp-digits": 0.95, "mlp-mnist": 0.90, "lenet-fashion": 0.85, "resnet-fashion": 0.85,
          "lstm-fashion": 0.88, "vit-fashion": 0.87}


def _no_training(*args, **kwargs):
    raise AssertionError("trained() trained a model that is shipped")


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_built_in_model_ships_seed_0_and_loads_without_training(name, monkeypatch):
    assert pretrained.available(name, 0)
    assert not pretrained.available(name, 1)
    monkeypatch.setattr(training, "train_network", _no_training)
    dataset = experiments.trained_dataset(name) if name.startswith("mlp") else None
    if dataset is None:  # Fashion-MNIST: its 10 000 test images are enough here
        from memsim.nn import datasets

        dataset = datasets.load("fashion-mnist")
    net, _ = experiments.trained(name, 0, dataset=dataset)
    accuracy = experiments.float_accuracy(net, dataset.x_test, dataset.y_test)
    assert accuracy >= FLOORS[name]
    assert accuracy == pytest.approx(pretrained.manifest()["models"][name]["test_accuracy"], abs=1e-4)


@pytest.fixture
def copied_weights(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS, folder)
    monkeypatch.setattr(pretrained, "WEIGHTS", folder)
    monkeypatch.setattr(pretrained, "MANIFEST", folder / "manifest.json")
    return folder


def test_a_changed_weights_file_is_refused_by_its_hash(copied_weights):
    path = copied_weights / "mlp-digits-seed0.pt"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256 .* does not match the manifest"):
        pretrained.load("mlp-digits")


def test_a_changed_recipe_or_another_seed_or_a_retrain_trains(monkeypatch, tmp_path):
    calls = []

    def fake_train(name, seed=0, dataset=None, progress=False, **kw):
        calls.append((name, seed))
        return models.build(name), dataset

    monkeypatch.setattr(training, "train_network", fake_train)
    digits = experiments.trained_dataset("mlp-digits")
    experiments.trained("mlp-digits", 0, dataset=digits)
    assert calls == []
    experiments.trained("mlp-digits", 3, cache_dir=tmp_path, dataset=digits)
    assert calls == [("mlp-digits", 3)] and (tmp_path / "mlp-digits-seed3.pt").exists()
    experiments.trained("mlp-digits", 0, cache_dir=tmp_path, dataset=digits, retrain=True)
    assert calls[-1] == ("mlp-digits", 0)
    epochs, batch, lr = training.RECIPES["mlp-digits"]
    monkeypatch.setitem(training.RECIPES, "mlp-digits", (epochs + 1, batch, lr))
    assert not pretrained.available("mlp-digits", 0)
    experiments.trained("mlp-digits", 0, dataset=digits)
    assert len(calls) == 3


def test_the_manifest_matches_the_files():
    import hashlib

    for name, entry in pretrained.manifest()["models"].items():
        data = (pretrained.WEIGHTS / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert len(data) < 2_000_000, f"{name}: shipped weights should stay small"
    assert np.all([e["seed"] == pretrained.SEED for e in pretrained.manifest()["models"].values()])


def test_the_command_line_offers_every_built_in_model():
    # the CLI keeps its own tuple so that `memsim --help` loads no torch
    from memsim.commands import MODEL_NAMES

    assert MODEL_NAMES == tuple(models.MODELS)
