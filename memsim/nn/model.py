"""A trained MLP as plain numpy arrays: Linear, BatchNorm and ReLU layers.

Weights are stored as ``w`` of shape (inputs, outputs), so ``y = x @ w + b`` and a weight
matrix maps onto a crossbar directly (rows = inputs, columns = outputs).  BatchNorm holds its
running statistics (inference form).  Loaders: :func:`from_sklearn` (an ``MLPClassifier``),
:func:`from_torch` (a ``torch.nn.Sequential`` of Linear / ReLU / BatchNorm1d; torch is optional),
:func:`load` / :meth:`MLP.save` (``.npz``).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np


def _frozen(array, name, ndim):
    array = np.array(array, dtype=np.float64)
    if array.ndim != ndim or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a finite {ndim}-D array, got shape {array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Linear:
    """``y = x @ w + b``; ``w`` (inputs, outputs), ``b`` (outputs,)."""

    w: np.ndarray
    b: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "w", _frozen(self.w, "Linear.w", 2))
        object.__setattr__(self, "b", _frozen(self.b, "Linear.b", 1))
        if self.b.shape != (self.w.shape[1],):
            raise ValueError(f"Linear.b must have shape ({self.w.shape[1]},), got {self.b.shape}")

    def __call__(self, x):
        return x @ self.w + self.b


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """Inference-form batch normalisation: ``gamma (x - mean) / sqrt(var + eps) + beta``."""

    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float = 1e-5

    def __post_init__(self):
        for name in ("gamma", "beta", "mean", "var"):
            object.__setattr__(self, name, _frozen(getattr(self, name), f"BatchNorm.{name}", 1))
        if len({self.gamma.shape, self.beta.shape, self.mean.shape, self.var.shape}) != 1:
            raise ValueError("BatchNorm gamma, beta, mean and var must have the same shape")
        if np.any(self.var < 0) or not self.eps > 0:
            raise ValueError("BatchNorm needs var >= 0 and eps > 0")

    def __call__(self, x):
        return (x - self.mean) * (self.gamma / np.sqrt(self.var + self.eps)) + self.beta

    def with_stats(self, mean, var) -> "BatchNorm":
        """The same affine parameters with new running statistics (BN re-calibration)."""
        return replace(self, mean=mean, var=var)


@dataclass(frozen=True)
class ReLU:
    def __call__(self, x):
        return np.maximum(x, 0.0)


LAYER_TYPES = (Linear, BatchNorm, ReLU)


@dataclass(frozen=True, eq=False)
class MLP:
    """A sequence of :class:`Linear`, :class:`BatchNorm` and :class:`ReLU` layers."""

    layers: tuple

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers or not all(isinstance(layer, LAYER_TYPES) for layer in layers):
            raise ValueError("an MLP is a non-empty sequence of Linear, BatchNorm and ReLU layers")
        width = None
        for layer in layers:
            if isinstance(layer, Linear):
                if width is not None and layer.w.shape[0] != width:
                    raise ValueError(f"layer sizes do not chain: {width} outputs feed a Linear with "
                                     f"{layer.w.shape[0]} inputs")
                width = layer.w.shape[1]
            elif isinstance(layer, BatchNorm) and width is not None and layer.mean.shape[0] != width:
                raise ValueError(f"BatchNorm of size {layer.mean.shape[0]} after a layer of width {width}")
        object.__setattr__(self, "layers", layers)

    @property
    def linear_indices(self) -> list[int]:
        return [i for i, layer in enumerate(self.layers) if isinstance(layer, Linear)]

    @property
    def sizes(self) -> list[int]:
        """Input width, then the width of each Linear layer's output."""
        linear = [self.layers[i] for i in self.linear_indices]
        return [linear[0].w.shape[0]] + [layer.w.shape[1] for layer in linear]

    def forward(self, x) -> np.ndarray:
        """Floating-point logits, (batch, classes)."""
        x = np.asarray(x, dtype=np.float64)
        for layer in self.layers:
            x = layer(x)
        return x

    def predict(self, x) -> np.ndarray:
        return self.forward(x).argmax(axis=1)

    def accuracy(self, x, y) -> float:
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def replace_layer(self, index: int, layer) -> "MLP":
        layers = list(self.layers)
        layers[index] = layer
        return MLP(tuple(layers))

    def describe(self) -> str:
        parts = []
        for layer in self.layers:
            if isinstance(layer, Linear):
                parts.append(str(layer.w.shape[1]))
            elif isinstance(layer, BatchNorm):
                parts.append("BN")
        return "-".join([str(self.sizes[0])] + parts)

    # -- persistence ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        arrays = {}
        kinds = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Linear):
                kinds.append("linear")
                arrays[f"{i}_w"], arrays[f"{i}_b"] = layer.w, layer.b
            elif isinstance(layer, BatchNorm):
                kinds.append("batchnorm")
                for name in ("gamma", "beta", "mean", "var"):
                    arrays[f"{i}_{name}"] = getattr(layer, name)
                arrays[f"{i}_eps"] = np.array(layer.eps)
            else:
                kinds.append("relu")
        buffer = io.BytesIO()
        np.savez(buffer, kinds=np.array(kinds), **arrays)
        return buffer.getvalue()

    def save(self, path):
        """Write the model as ``.npz`` (atomically)."""
        from ..io import write_atomic

        return write_atomic(path, self.to_bytes())


def load(path_or_bytes) -> MLP:
    """Read a model written by :meth:`MLP.save`."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with np.load(source, allow_pickle=False) as data:
        layers = []
        for i, kind in enumerate(data["kinds"]):
            if kind == "linear":
                layers.append(Linear(data[f"{i}_w"], data[f"{i}_b"]))
            elif kind == "batchnorm":
                layers.append(BatchNorm(*(data[f"{i}_{n}"] for n in ("gamma", "beta", "mean", "var")),
                                        eps=float(data[f"{i}_eps"])))
            elif kind == "relu":
                layers.append(ReLU())
            else:
                raise ValueError(f"unknown layer kind {kind!r} in the model file")
    return MLP(tuple(layers))


def from_sklearn(classifier) -> MLP:
    """An MLP from a fitted scikit-learn ``MLPClassifier`` with ReLU hidden layers.

    The output activation (softmax / logistic) is dropped: the MLP returns logits, whose
    argmax is the classifier's prediction.
    """
    coefs = getattr(classifier, "coefs_", None)
    if coefs is None:
        raise ValueError("from_sklearn needs a fitted MLPClassifier (no coefs_ found)")
    if getattr(classifier, "activation", "relu") != "relu":
        raise ValueError(f"only ReLU hidden layers are supported, got activation={classifier.activation!r}")
    layers = []
    for k, (w, b) in enumerate(zip(coefs, classifier.intercepts_)):
        layers.append(Linear(w, b))
        if k < len(coefs) - 1:
            layers.append(ReLU())
    return MLP(tuple(layers))


def from_torch(sequential) -> MLP:
    """An MLP from a ``torch.nn.Sequential`` of Linear, ReLU and BatchNorm1d (eval-mode stats).

    torch is optional: this function only touches the modules' tensors (``.detach().numpy()``).
    """
    layers = []
    for module in sequential:
        name = type(module).__name__
        if name == "Linear":
            w = module.weight.detach().cpu().numpy().T
            b = (module.bias.detach().cpu().numpy() if module.bias is not None
                 else np.zeros(w.shape[1]))
            layers.append(Linear(w, b))
        elif name == "BatchNorm1d":
            n = module.num_features
            gamma = module.weight.detach().cpu().numpy() if module.affine else np.ones(n)
            beta = module.bias.detach().cpu().numpy() if module.affine else np.zeros(n)
            layers.append(BatchNorm(gamma, beta, module.running_mean.detach().cpu().numpy(),
                                    module.running_var.detach().cpu().numpy(), float(module.eps)))
        elif name == "ReLU":
            layers.append(ReLU())
        elif name in ("Dropout", "Identity", "Flatten"):
            continue
        else:
            raise ValueError(f"unsupported torch module {name}; use Linear, ReLU, BatchNorm1d")
    return MLP(tuple(layers))
