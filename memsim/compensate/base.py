"""The one interface every compensation strategy implements, and the helpers they share.

A strategy is fitted offline and then attached to an :class:`~memsim.nn.AnalogModel`
through the model's public hooks only:

- torch forward hooks on a :class:`~memsim.nn.tile.Tile` (its digital output: per-tile or
  per-column gain and offset);
- torch forward hooks on an analog layer (its output from its input, tiles or training
  draws alike: VeRA+'s low-rank term);
- :meth:`~memsim.nn.AnalogModel.register_time_hook` (after every ``set_time``: re-read the
  tiles, re-estimate BatchNorm statistics, choose the set for the elapsed time);
- the model's own modules (BatchNorm running statistics).

Attach strategies in the order they act (GDC, VeRA+, BN re-calibration); ``detach()``
removes every hook a strategy added and restores what it changed.  ``storage_bytes`` is
what the strategy keeps on chip; ``arrays()``, ``meta()`` and ``from_arrays()`` are its
stored form (:mod:`memsim.compensate.store`).
"""
from __future__ import annotations

import contextlib

import torch


class Compensation:
    """Base class: ``fit(...)`` (each strategy's own inputs), ``attach(model)``, ``detach()``,
    ``storage_bytes``, ``arrays()``, ``meta()``, ``from_arrays(arrays, meta)``."""

    name = "compensation"

    def __init__(self):
        self._handles = []
        self.model = None

    def attach(self, model) -> "Compensation":  # pragma: no cover - abstract
        raise NotImplementedError

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.model = None

    def _hold(self, handle):
        self._handles.append(handle)
        return handle

    def _start(self, model, fitted: int, what: str) -> list:
        """Detach from any earlier model, refuse a model whose tile count differs from the
        ``fitted`` one, take ``model`` and return its tiles."""
        tiles = model.tiles()
        if fitted != len(tiles):
            raise ValueError(f"{what} was fitted on {fitted} tiles, the model has {len(tiles)}")
        self.detach()
        self.model = model
        return tiles

    @property
    def storage_bytes(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def arrays(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def meta(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_arrays(cls, arrays, meta):  # pragma: no cover - abstract
        raise NotImplementedError


def attach_gain(tile, gain, offset=0.0):
    """A forward hook on ``tile`` multiplying its output by ``gain`` and adding ``offset``
    (scalars or per-output tensors); returns the handle."""
    def hook(module, inputs, output):
        return output * gain + offset

    return tile.register_forward_hook(hook)


def attach_all(model, strategies):
    """Attach ``strategies`` to ``model`` in order; returns the list."""
    for strategy in strategies:
        strategy.attach(model)
    return list(strategies)


@contextlib.contextmanager
def attached(model, *strategies):
    """``model`` with ``strategies`` attached in order, detached again (last first) on exit."""
    attach_all(model, strategies)
    try:
        yield model
    finally:
        for strategy in reversed(strategies):
            strategy.detach()
