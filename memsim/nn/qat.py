"""Quantisation-aware training: a WxAy copy of a float network (the VeRA+ paper's W4A4 backbone).

:func:`quantise` returns a copy of a torch model in which every weight matrix that
:func:`memsim.nn.convert` puts on tiles is fake-quantised to ``weight_bits`` (symmetric, one
scale per matrix, the largest |w| on the largest code): the weights of ``nn.Linear``,
``nn.Conv1d`` and ``nn.Conv2d`` (grouped, depthwise, dilated alike), the input, hidden and
projection matrices of ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` and their cells (one scale per
layer and direction and per kind, as each is one matrix on tiles) and the query, key, value
and output projections of ``nn.MultiheadAttention`` (a packed ``in_proj_weight`` gets one
scale per projection, as the three go on tiles apart).  Every ``nn.ReLU`` output is
quantised to ``act_bits`` (unsigned, the range a running maximum of the training batches);
the gates of recurrent layers and attention's softmax are not (they stay digital and
float, as on tiles).  Both round with a straight-through gradient (Jacob et al.,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018).  Layers with weights that have no tile mapping (Conv3d, transposed
convolutions, Bilinear, lazy layers) are refused by name.  :func:`train_qat` fine-tunes
that copy and bakes the quantised weights into plain layers, so :func:`memsim.nn.convert`
maps the quantised values and the activation quantisers stay in the network (digital
periphery).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize


def _check_bits(bits, name):
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"{name} must be an integer number of bits in [2, 16], got {bits!r}")
    return bits


def _straight_through(x, q):
    return x + (q - x).detach()


class WeightQuant(nn.Module):
    """Symmetric fake quantisation of a weight (a parametrization): one scale per tensor, or
    per each of ``chunks`` equal row blocks (a packed attention projection)."""

    def __init__(self, bits: int = 4, chunks: int = 1):
        super().__init__()
        self.bits = _check_bits(bits, "weight_bits")
        self.chunks = int(chunks)

    def forward(self, w):
        top = 2 ** (self.bits - 1) - 1
        blocks = w.detach().reshape(self.chunks, -1).abs().amax(dim=1)
        scale = blocks.clamp(min=torch.finfo(w.dtype).tiny).repeat_interleave(w.shape[0] // self.chunks) / top
        scale = scale.reshape(-1, *(1,) * (w.ndim - 1))
        return _straight_through(w, torch.clamp(torch.round(w / scale), -top, top) * scale)


class ActQuant(nn.Module):
    """Unsigned fake quantisation of a non-negative activation onto ``2**bits`` codes over
    [0, range]; ``range`` follows the batch maxima while training (momentum 0.1)."""

    def __init__(self, bits: int = 4, momentum: float = 0.1):
        super().__init__()
        self.bits = _check_bits(bits, "act_bits")
        self.momentum = float(momentum)
        self.register_buffer("range", torch.zeros(()))

    def forward(self, x):
        if self.training:
            top = x.detach().amax().to(self.range.dtype)
            self.range.copy_(top if float(self.range) == 0 else (1 - self.momentum) * self.range + self.momentum * top)
        if float(self.range) <= 0:
            return x
        levels = 2 ** self.bits - 1
        scale = self.range.to(x.dtype) / levels
        return _straight_through(x, torch.clamp(torch.round(x / scale), 0, levels) * scale)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, range={float(self.range):.4g}"


def weight_matrices(module: nn.Module) -> list:
    """[(parameter name, row blocks)] of ``module``'s own weight matrices that go on tiles
    (row blocks: 3 for a packed attention ``in_proj_weight``, else 1); [] for other modules.
    A layer with weights but no tile mapping is refused."""
    from .analog import _REFUSED, SUPPORTED

    if isinstance(module, _REFUSED):
        raise ValueError(f"{type(module).__name__} has no tile mapping in memsim, so QAT does not quantise it; "
                         f"supported: {SUPPORTED}")
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        return [("weight", 1)]
    if isinstance(module, nn.RNNBase):  # names from the structure: a parametrized weight is no own parameter
        return [(name, 1) for name in module._flat_weights_names if name.startswith("weight_")]
    if isinstance(module, nn.RNNCellBase):
        return [("weight_ih", 1), ("weight_hh", 1)]
    if isinstance(module, nn.MultiheadAttention):  # out_proj is a Linear child, quantised as one
        return [("in_proj_weight", 3)] if module._qkv_same_embed_dim else \
            [("q_proj_weight", 1), ("k_proj_weight", 1), ("v_proj_weight", 1)]
    return []


def quantise(model: nn.Module, weight_bits: int = 4, act_bits: int = 4) -> nn.Module:
    """A fake-quantised copy of ``model`` (the original is not changed); a bare layer is
    quantised too (a ReLU at the root is left alone: it has no parent to hold its
    quantiser)."""
    _check_bits(weight_bits, "weight_bits")
    _check_bits(act_bits, "act_bits")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    q = copy.deepcopy(model)
    for name, module in list(q.named_modules()):
        try:
            matrices = weight_matrices(module)
        except ValueError as err:
            raise ValueError(f"layer {name!r}: {err}") from None
        for param, chunks in matrices:
            if not parametrize.is_parametrized(module, param):
                parametrize.register_parametrization(module, param, WeightQuant(weight_bits, chunks))
    for parent in list(q.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Sequential(child, ActQuant(act_bits)))
    return q


def bake(model: nn.Module) -> nn.Module:
    """Replace the weight parametrizations by their quantised values, in place."""
    for module in model.modules():
        for param in ([name for name, _ in weight_matrices(module)] if parametrize.is_parametrized(module) else []):
            if parametrize.is_parametrized(module, param):
                parametrize.remove_parametrizations(module, param, leave_parametrized=True)
    return model


def train_qat(model: nn.Module, dataset, *, weight_bits: int = 4, act_bits: int = 4, epochs: int = 5,
              batch_size: int = 64, lr: float = 5e-4, seed: int = 0) -> nn.Module:
    """Fine-tune a WxAy copy of the float ``model`` on ``dataset``; returns it with the
    quantised weights baked in (plain layers) and the activation quantisers in place."""
    from .training import train

    q = quantise(model, weight_bits, act_bits)
    train(q, dataset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    return bake(q).eval()
