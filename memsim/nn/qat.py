"""Quantisation-aware training: a WxAy copy of a float network (the VeRA+ paper's W4A4 backbone).

:func:`quantise` returns a copy of a torch model in which every ``nn.Linear`` / ``nn.Conv2d``
weight is fake-quantised to ``weight_bits`` (symmetric, one scale per tensor, the largest
|w| on the largest code) and every ``nn.ReLU`` output to ``act_bits`` (unsigned, the range a
running maximum of the training batches); both round with a straight-through gradient
(Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018).  :func:`train_qat` fine-tunes that copy and
bakes the quantised weights into plain layers, so :func:`memsim.nn.convert` maps the
quantised values and the activation quantisers stay in the network (digital periphery).
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
    """Symmetric per-tensor fake quantisation of a weight (a parametrization)."""

    def __init__(self, bits: int = 4):
        super().__init__()
        self.bits = _check_bits(bits, "weight_bits")

    def forward(self, w):
        top = 2 ** (self.bits - 1) - 1
        scale = w.detach().abs().amax().clamp(min=torch.finfo(w.dtype).tiny) / top
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


def quantise(model: nn.Module, weight_bits: int = 4, act_bits: int = 4) -> nn.Module:
    """A fake-quantised copy of ``model`` (the original is not changed)."""
    _check_bits(weight_bits, "weight_bits")
    _check_bits(act_bits, "act_bits")
    q = copy.deepcopy(model)
    for module in list(q.modules()):
        if isinstance(module, (nn.Linear, nn.Conv2d)) and not parametrize.is_parametrized(module, "weight"):
            parametrize.register_parametrization(module, "weight", WeightQuant(weight_bits))
    for parent in list(q.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Sequential(child, ActQuant(act_bits)))
    return q


def bake(model: nn.Module) -> nn.Module:
    """Replace the weight parametrizations by their quantised values, in place."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)) and parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


def train_qat(model: nn.Module, dataset, *, weight_bits: int = 4, act_bits: int = 4, epochs: int = 5,
              batch_size: int = 64, lr: float = 5e-4, seed: int = 0) -> nn.Module:
    """Fine-tune a WxAy copy of the float ``model`` on ``dataset``; returns it with the
    quantised weights baked in (plain layers) and the activation quantisers in place."""
    from .training import train

    q = quantise(model, weight_bits, act_bits)
    train(q, dataset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    return bake(q).eval()
