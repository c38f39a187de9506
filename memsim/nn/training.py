"""Training with torch: plain floating point, or hardware-aware on an analog model.

:func:`train` runs Adam with a cosine-decayed learning rate and cross-entropy on any torch
model that takes flat inputs.  Given an :class:`~memsim.nn.AnalogModel` (from
``convert(..., program=False)``) it trains hardware-aware: every forward draws a fresh
device instance of the weights from the noise model (programming noise, drift to the time
set with ``AnalogModel.training_noise``, output noise) and torch autograd differentiates
through that draw into the float weights; the tiles are programmed from the trained weights
at the end.  Nothing here hand-writes a gradient or an optimiser.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

#: Training recipe of each built-in model: epochs, batch size, learning rate.
RECIPES = {"mlp-digits": (30, 64, 2e-3), "mlp-mnist": (30, 64, 2e-3), "lenet-fashion": (4, 128, 2e-3),
           "resnet-fashion": (1, 128, 2e-3), "lstm-fashion": (10, 128, 3e-3),
           "vit-fashion": (10, 128, 1e-3)}


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


@contextlib.contextmanager
def seeded(seed: int):
    """torch's global generator seeded with ``seed`` inside the block, restored after it
    (layer initialisation and dropout draw from it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def train(model: nn.Module, dataset, *, epochs: int = 30, batch_size: int = 64, lr: float = 2e-3,
          weight_decay: float = 0.0, seed: int = 0, optimizer: str = "adam", progress: bool = False,
          calibration_x=None) -> nn.Module:
    """Train ``model`` in place on ``dataset`` (a :class:`~memsim.nn.datasets.Dataset`); returns it.

    Adam (or SGD with momentum 0.9, ``optimizer="sgd"``), learning rate ``lr`` decayed by a
    cosine to 0 over all steps, cross-entropy on the logits; ``seed`` sets the batch order (and the device draws of an analog model come from
    its own seed).  An :class:`~memsim.nn.AnalogModel` is trained hardware-aware and then
    programmed (``calibration_x`` sets its ADC full scale, see ``AnalogModel.program``).
    """
    from tqdm import tqdm

    from .analog import AnalogModel

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    analog = isinstance(model, AnalogModel)
    dtype = model.config.torch_dtype if analog else next(model.parameters()).dtype
    device = model.device if analog else next(model.parameters()).device
    x = torch.tensor(np.asarray(dataset.x_train), dtype=dtype, device=device)
    y = torch.tensor(np.asarray(dataset.y_train), dtype=torch.int64, device=device)
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = (torch.optim.Adam(params, lr=lr, weight_decay=weight_decay) if optimizer == "adam"
                 else torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay))
    steps = epochs * -(-len(y) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    loss_fn = nn.CrossEntropyLoss()
    order_rng = np.random.default_rng(seed)
    model.train()
    with tqdm(total=steps, desc="training", unit="batch", disable=not progress, leave=False) as bar:
        for _ in range(epochs):
            order = torch.as_tensor(order_rng.permutation(len(y)), device=device)
            for start in range(0, len(y), batch_size):
                idx = order[start:start + batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    schedule.step()
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x[idx]), y[idx])
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    model.eval()
    if analog:
        model.program(calibration_x)
    return model


def recipe_for(name: str, dataset=None, overrides: dict | None = None) -> tuple:
    """``(dataset, recipe)`` of a built-in model: its dataset (loaded unless given) and its
    training recipe (:data:`RECIPES`) with ``overrides`` applied."""
    from . import datasets, models

    if name not in models.MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(models.MODELS)}")
    dataset = datasets.load(models.MODELS[name][0]) if dataset is None else dataset
    epochs, batch_size, lr = RECIPES[name]
    return dataset, {"epochs": epochs, "batch_size": batch_size, "lr": lr, **(overrides or {})}


def train_network(name: str, seed: int = 0, dataset=None, *, progress: bool = False, hardware=None,
                  train_time: float = 0.0, **overrides):
    """A built-in model (:data:`memsim.nn.models.MODELS`) trained with its recipe and ``seed``
    (initialisation and batch order); returns ``(model, dataset)``.  ``overrides`` change the
    recipe's ``epochs``, ``batch_size``, ``lr`` or ``optimizer``; ``hardware`` (a
    :class:`~memsim.nn.HardwareConfig`) trains hardware-aware on it (programming noise, drift
    to ``train_time`` s) and returns the float copy of the trained weights."""
    from . import models

    dataset, recipe = recipe_for(name, dataset, overrides)
    with seeded(seed):
        model = models.build(name)
    if hardware is None:
        return train(model, dataset, seed=seed, progress=progress, **recipe), dataset
    from .analog import convert

    analog = convert(model, hardware, seed=seed, program=False).training_noise(t_seconds=train_time)
    analog.train()
    train(analog, dataset, seed=seed, progress=progress, **recipe)
    return analog.to_torch(), dataset
