"""Experiments on top of :func:`memsim.nn.convert`: accuracy against time since programming over
seeds, and the configurations of the results tables and of the comparison with aihwkit's
PCM-like model.

Seeds: seed ``s`` trains the floating-point network with ``s`` and draws every random
quantity of the hardware (programming, drift, read and output noise) from ``s``, so the
spread over seeds covers both the training and the devices.
"""
from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import numpy as np
import torch

from .compensate.drift import BNRecalibration, GlobalDriftCompensation
from .devices import preset as device_preset
from .nn import models, pretrained, training
from .nn.analog import convert
from .nn.config import HardwareConfig
from .nn.datasets import Dataset
from .nn.datasets import load as load_dataset
from .units import YEAR

MONTH = YEAR / 12.0
#: The drift times of the results table.
DRIFT_TIMES = (("1 s", 1.0), ("1 h", 3600.0), ("1 day", 86400.0), ("1 month", MONTH), ("1 year", YEAR),
               ("10 years", 10 * YEAR))
_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "day": 86400.0,
          "days": 86400.0, "w": 7 * 86400.0, "mo": MONTH, "month": MONTH, "months": MONTH, "y": YEAR,
          "year": YEAR, "years": YEAR}


def parse_duration(text) -> float:
    """Seconds from ``"3600"``, ``"1h"``, ``"1 day"``, ``"1mo"``, ``"10y"`` (month = year / 12,
    year = 365.25 days)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
        if not match or (match.group(2) and match.group(2).lower() not in _UNITS):
            raise ValueError(f"a time must be a number of seconds or have a unit (s, min, h, d, w, mo, y), "
                             f"got {text!r}")
        value = float(match.group(1)) * _UNITS.get(match.group(2).lower(), 1.0)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a time since programming must be >= 0 s, got {text!r}")
    return value


def parse_seeds(text) -> list[int]:
    """``"5"`` -> seeds 0..4; ``"0,3,7"`` -> those seeds."""
    text = str(text).strip()
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise ValueError(f"seeds must be a count (5 -> seeds 0..4) or a comma list (0,3,7), got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be a count >= 1 or a list of integers >= 0, got {text!r}")
    return seeds


def format_time(seconds: float) -> str:
    for name, value in DRIFT_TIMES:
        if abs(seconds - value) <= 1e-9 * value:
            return name
    return "0 s" if seconds == 0 else f"{seconds:g} s"


def _where_trained(model: str, seed: int, cache_dir, retrain: bool) -> tuple[str, Path | None]:
    """Where :func:`trained` takes ``model`` with ``seed`` from: ("shipped" | "cached" |
    "train", the cache file or None)."""
    path = Path(cache_dir) / f"{model}-seed{seed}.pt" if cache_dir is not None else None
    if retrain:
        return "train", path
    if pretrained.available(model, seed):
        return "shipped", path
    return ("cached" if path is not None and path.exists() else "train"), path


def trained(model: str, seed: int, cache_dir=None, dataset=None, *, progress: bool = False,
            retrain: bool = False):
    """The float built-in model ``model`` trained with ``seed``; returns ``(torch model, dataset)``.

    Seed 0 comes with memsim (:mod:`memsim.nn.pretrained`); other seeds, or ``retrain=True``,
    train with the model's recipe and are cached as a model file in ``cache_dir`` (a retrained
    file replaces the cached one)."""
    dataset = trained_dataset(model) if dataset is None else dataset
    source, path = _where_trained(model, seed, cache_dir, retrain)
    if source == "shipped":
        return pretrained.load(model), dataset
    if source == "cached":
        return models.load(path)[0], dataset
    net, dataset = training.train_network(model, seed=seed, dataset=dataset, progress=progress)
    if path is not None:
        models.save(net, model, path)
    return net, dataset


def trained_source(model: str, seed: int, cache_dir=None, retrain: bool = False) -> str:
    """Where :func:`trained` takes ``model`` with ``seed`` from, in words (for progress lines)."""
    source, path = _where_trained(model, seed, cache_dir, retrain)
    if source == "shipped":
        return f"{model} seed {seed}: the weights shipped with memsim"
    if source == "cached":
        return f"{model} seed {seed}: trained earlier, from {path}"
    return f"training {model} with seed {seed}" + (f" (cached in {cache_dir})" if cache_dir is not None else "")


def trained_dataset(model: str):
    """The dataset a built-in model is trained and tested on."""
    if model not in models.MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(models.MODELS)}")
    return load_dataset(models.MODELS[model][0])


def test_subset(dataset, images: int):
    """``dataset`` with only its first ``images`` test images."""
    return Dataset(dataset.name, dataset.x_train, dataset.y_train, dataset.x_test[:images], dataset.y_test[:images])


def float_accuracy(model, x, y) -> float:
    """Test accuracy of a float torch model on flat inputs ``x``."""
    dtype = next(model.parameters()).dtype
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(np.asarray(x), dtype=dtype))
    return float(np.mean(logits.argmax(dim=1).numpy() == np.asarray(y)))


def calibration_inputs(config: HardwareConfig, dataset, images: int = 256):
    """Training inputs for the ADC full scale when the config calibrates it, else None."""
    return dataset.x_train[:images] if (config.adc_bits is not None and config.adc_range == "calibrated") else None


def accuracy_over_time(model, dataset, config: HardwareConfig, seed: int, times=(0.0,), *, gdc: bool = False,
                       bn_recalibration: bool = False, bn_images: int = 4000, images: int | None = None,
                       progress: bool = False):
    """Program ``model`` (a float torch model) once (``seed``) and measure the test accuracy
    at every time in ``times`` (s since programming), with global drift compensation when
    ``gdc``.  Returns a list of dicts with ``t``, ``accuracy`` and, when
    ``bn_recalibration``, ``accuracy_bn`` (BatchNorm statistics re-estimated through the
    drifted hardware from ``bn_images`` training inputs)."""
    x, y = dataset.x_test, dataset.y_test
    if images is not None:
        x, y = x[:images], y[:images]
    analog = convert(model, config, seed=seed, calibration_x=calibration_inputs(config, dataset))
    if gdc:
        GlobalDriftCompensation().fit(analog).attach(analog)
    bn = BNRecalibration(min(bn_images, len(dataset.y_train)), seed=seed).fit(dataset.x_train) \
        if bn_recalibration else None
    out = []
    for t in times:
        analog.set_time(t)
        row = {"t": float(t), "accuracy": analog.accuracy(x, y, progress=progress)}
        if bn is not None:
            bn.attach(analog)
            row["accuracy_bn"] = analog.accuracy(x, y)
            bn.detach()
        out.append(row)
    return out


def study_accuracy(*, network, tile, r_wire, cell, preset, levels, seed, v_read, v_gate, samples) -> dict:
    """Network accuracy for :mod:`memsim.study`'s ``network_accuracy`` metric: the built-in
    ``network`` trained with ``seed`` on tiles of ``cell`` cells and ``preset`` levels."""
    if levels not in (None, len(device_preset(preset).levels)):
        raise ValueError(f"network_accuracy maps weights on the preset's own levels; levels={levels} is not "
                         f"{preset}'s level count")
    model, data = _trained_once(network, seed)
    config = HardwareConfig(tile=tile, conductances=preset, cells=cell, r_wire=r_wire, v_read=v_read,
                            v_gate=v_gate, dtype="float64")
    x, y = data.x_test[:samples], data.y_test[:samples]
    analog = convert(model, config, seed=seed)
    return {"accuracy": analog.accuracy(x, y), "accuracy_float": analog.float_accuracy(x, y)}


@functools.lru_cache(maxsize=1)
def _trained_once(network, seed):
    """``trained(network, seed)``, kept for the next point of a study with the same network."""
    return trained(network, seed)


#: aihwkit 1.2.0's accuracies for the 784-256-BN-128-BN-10 MLP on the MNIST subset (with
#: aihwkit's own training): floating point and, PCM-like at 10 years, uncompensated, with
#: global drift compensation, and with BatchNorm re-calibration too.
AIHWKIT_QUOTED = {"float": 0.943, "none": 0.273, "global": 0.570, "global+bn": 0.923}


def aihwkit_pcm_config(**changes) -> HardwareConfig:
    """The setting of the aihwkit comparison: PCM-like model on a single differential pair per
    weight, g_max = 25 uS, one scale per tile (aihwkit's SinglePairConductanceConverter),
    ideal wires, linear cells, and aihwkit's default InferenceRPUConfig periphery: 7-bit
    inputs with abs-max noise management, output noise 0.06, 9-bit outputs bounded at +-12
    with iterative bound management; tiles of 512 (aihwkit's max_input_size).  aihwkit's
    GlobalDriftCompensation is :class:`memsim.compensate.GlobalDriftCompensation`."""
    config = HardwareConfig(tile=512, conductances="pcm", scale="tile", cells="ohmic", r_wire=0.0,
                            dac_bits=7, adc_bits=9, adc_range=12.0, out_noise=0.06, bound_management=True,
                            noise="pcm")
    return config.replace(**changes)


def mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def format_pm(values, scale: float = 100.0) -> str:
    mean, std = mean_std(values)
    return f"{scale * mean:5.1f} ± {scale * std:3.1f}"
