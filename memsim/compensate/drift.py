"""Drift compensation strategies on an :class:`~memsim.nn.AnalogModel`, one class per method
(the interface is :class:`~memsim.compensate.base.Compensation`)::

    gdc = GlobalDriftCompensation().fit(model).attach(model)
    vera = VeRAPlus().fit_single(model, x_train, y_train, 10 * YEAR).attach(model)
    bn = BNRecalibration().fit(x_train).attach(model)
    model.set_time(10 * YEAR)          # every attached strategy follows the time
    model.accuracy(x_test, y_test)

- :class:`GlobalDriftCompensation`: reads every tile with one-hot inputs through its whole
  periphery right after programming and at time t; the ratio scales the tile's output, one
  factor per tile or per output column (aihwkit's GlobalDriftCompensation is the per-tile
  one).
- :class:`BNRecalibration`: re-estimates every BatchNorm's statistics through the hardware
  from a small stored subset of the training data (Joshi et al., Nat. Commun. 11, 2473,
  2020); storage = the subset as uint8 pixels.
- :class:`VeRAPlus`: "VeRA+: Vector-Based Lightweight Digital Compensation for
  Drift-Resilient RRAM In-Memory Computing": shared frozen random projections A (rank x
  inputs) and B (outputs x rank), sliced per layer (Sec. III-C), and per layer and drift
  level two vectors d (rank) and b (outputs): ``h = W(t) x + b * (B (d * (A x)))`` (Eq. 8;
  on every analog layer: Linear, Conv1d, Conv2d of any groups, dilation and padding mode,
  the projections of recurrent and attention layers),
  trained offline under drift sampled anew for every mini-batch with the backbone frozen
  (Sec. III-D1: 3 epochs, batch 64; torch autograd and Adam); :meth:`VeRAPlus.fit_schedule`
  is Algorithm 1 (Sec. III-D2): advance t by x1.5, estimate mean and standard deviation of
  the accuracy over sampled drift instances, and train / store a new set only when
  mean - 3 std falls below the threshold; at deployment the set is chosen by the elapsed
  time.  A and B are Rademacher (+-1, scaled digitally by 1/sqrt(fan-in)), frozen and redrawn
  from the seed, which is all that is stored of them.
  Drift instances are the analog layers' training draws (``AnalogModel.training_noise``:
  programming noise, drift, per-tile GDC in weight space, output noise), the same draws as
  hardware-aware training.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..nn.analog import AnalogConv, AnalogLinear
from .base import Compensation, attach_gain

YEAR = 365.25 * 86400.0


# ---------------------------------------------------------------------------------------------
# GDC
# ---------------------------------------------------------------------------------------------
class GlobalDriftCompensation(Compensation):
    """Output scale from one-hot read-outs: ``reference / now`` per tile or per column.

    A read-out is the mean |output| of a tile for a one-hot input on every row, through its
    whole periphery but none of its hooks (where the outputs are small against the output
    noise the read-out is dominated by the noise and the compensation under-corrects, as on
    hardware).  ``fit(model)`` reads every tile as programmed (its programmed conductances,
    before drift and 1/f noise); attached, it reads them again after every ``set_time``.
    Storage: one float32 per tile (``per="tile"``, aihwkit's GlobalDriftCompensation) or per
    output column (``per="column"``).
    """

    name = "gdc"

    def __init__(self, per: str = "tile"):
        super().__init__()
        if per not in ("tile", "column"):
            raise ValueError(f"per must be 'tile' or 'column', got {per!r}")
        self.per = per
        self.reference = []
        self.factors = []

    def _read(self, tile) -> np.ndarray:
        eye = torch.eye(tile.g_target.shape[0], dtype=tile.g_target.dtype, device=tile.g_target.device)
        with torch.no_grad():
            out = tile.forward(eye).abs()
        return (out.mean(dim=0) if self.per == "column" else out.mean().reshape(1)).cpu().numpy()

    def fit(self, model) -> "GlobalDriftCompensation":
        tiles = model.tiles()
        now = [tile.g for tile in tiles]
        for tile in tiles:
            tile.set_conductances(tile.cells.g_prog)
        self.reference = [self._read(tile).astype(np.float32) for tile in tiles]
        for tile, g in zip(tiles, now):
            tile.set_conductances(g)
        return self

    def attach(self, model) -> "GlobalDriftCompensation":
        tiles = self._start(model, len(self.reference), "GDC")
        self.factors = [torch.ones(len(ref), dtype=tile.g_target.dtype, device=tile.g_target.device)
                        for ref, tile in zip(self.reference, tiles)]
        for tile, factor in zip(tiles, self.factors):
            self._hold(attach_gain(tile, factor))
        self._hold(model.register_time_hook(self._update))
        self._update(model)
        return self

    def _update(self, model) -> None:
        for tile, ref, factor in zip(model.tiles(), self.reference, self.factors):
            now = self._read(tile)
            ratio = np.where(now > 0, ref / np.where(now > 0, now, 1.0), 1.0)
            factor.copy_(torch.as_tensor(ratio, dtype=factor.dtype))

    @property
    def storage_bytes(self) -> int:
        return int(sum(r.nbytes for r in self.reference))

    def arrays(self) -> dict:
        return {f"ref{k}": r for k, r in enumerate(self.reference)}

    @classmethod
    def from_arrays(cls, arrays, meta):
        gdc = cls(meta["per"])
        gdc.reference = [arrays[f"ref{k}"] for k in range(sum(1 for key in arrays if key.startswith("ref")))]
        return gdc

    def meta(self) -> dict:
        return {"per": self.per}


# ---------------------------------------------------------------------------------------------
# BN re-calibration
# ---------------------------------------------------------------------------------------------
def batchnorms(model) -> list:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def batch_statistics(norms):
    """BatchNorm layers accumulate fresh running statistics (cumulative average) inside."""
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        yield
    finally:
        for m, (momentum, training) in zip(norms, saved):
            m.momentum = momentum
            m.train(training)


class BNRecalibration(Compensation):
    """BatchNorm statistics re-estimated through the hardware from ``images`` stored training
    inputs (uint8, the inputs quantised to 1/255, one batch); storage = those bytes.
    Attached, it re-estimates after every ``set_time``; ``detach`` restores the statistics
    the model was trained with.

    It re-calibrates the running mean and variance of every BatchNorm (``BatchNorm1d``,
    ``2d``, ``3d``), after any layer on tiles (Linear, convolutions, recurrent and attention
    outputs alike).  LayerNorm, GroupNorm and InstanceNorm normalise each input by its own
    statistics at every read and keep no running statistics: there is nothing to
    re-calibrate (a model with only those is refused)."""

    name = "bn"

    def __init__(self, images: int = 256, seed: int = 0):
        super().__init__()
        self.images = int(images)
        self.seed = int(seed)
        self.subset = None
        self._saved = None

    def fit(self, x_train) -> "BNRecalibration":
        x = np.asarray(x_train, dtype=float)
        if self.images < 2 or self.images > len(x):
            raise ValueError(f"images must be in [2, {len(x)}], got {self.images}")
        pick = np.random.default_rng(self.seed).choice(len(x), self.images, replace=False)
        self.subset = np.round(np.clip(x[np.sort(pick)], 0.0, 1.0) * 255).astype(np.uint8)
        return self

    def attach(self, model) -> "BNRecalibration":
        if self.subset is None:
            raise ValueError("BNRecalibration.attach before fit")
        norms = batchnorms(model)
        if not norms:
            others = sorted({type(m).__name__ for m in model.modules()
                             if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm))})
            extra = f" ({', '.join(others)} normalise each input by its own statistics and keep no running " \
                    "statistics to re-calibrate)" if others else ""
            raise ValueError(f"BN re-calibration needs a model with BatchNorm layers; this one has none{extra}")
        self.detach()
        self.model = model
        self._saved = [(m, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
                       for m in norms]
        self._hold(model.register_time_hook(self.recalibrate))
        self.recalibrate(model)
        return self

    def recalibrate(self, model) -> None:
        """Re-estimate every BatchNorm's statistics through the hardware as it is now."""
        norms = batchnorms(model)
        x = torch.as_tensor(self.subset.astype(np.float64) / 255.0)
        with torch.no_grad(), batch_statistics(norms):
            model(x)

    def detach(self) -> None:
        super().detach()
        if self._saved:
            with torch.no_grad():
                for m, mean, var, count in self._saved:
                    m.running_mean.copy_(mean)
                    m.running_var.copy_(var)
                    m.num_batches_tracked.copy_(count)
        self._saved = None

    @property
    def storage_bytes(self) -> int:
        return 0 if self.subset is None else int(self.subset.nbytes)

    def arrays(self) -> dict:
        return {"subset": self.subset}

    @classmethod
    def from_arrays(cls, arrays, meta):
        bn = cls(meta["images"], meta["seed"])
        bn.subset = arrays["subset"]
        return bn

    def meta(self) -> dict:
        return {"images": self.images, "seed": self.seed}


# ---------------------------------------------------------------------------------------------
# VeRA+
# ---------------------------------------------------------------------------------------------
class VeRAPlus(Compensation):
    """VeRA+ drift compensation; see the module docstring.

    Parameters
    ----------
    rank : int
        r, columns of A / rows of B (the paper finds r = 1 enough).
    gdc : bool
        Train on top of per-tile GDC (deploy with a :class:`GlobalDriftCompensation`
        attached first).
    epochs, batch_size, lr : training of each vector set (3 epochs, batch 64 as the paper).
    conv : "1x1" or "patch"
        Convolutions (Conv1d and Conv2d): the paper's 1x1-kernel scheme (Sec. III-C; A acts
        on the C_in input channels at the centre of each receptive field, i.e. a 1x1
        convolution aligned with the kernel's centre tap ``k // 2``, B is a 1x1 kernel too),
        or A over the whole C_in prod(kernel) patch.  Either reads the input as the layer
        does: its padding mode (zeros, reflect, replicate, circular), stride and dilation.
        A grouped or depthwise convolution's A reads every input channel (the whole input
        vector of its block-diagonal crossbar matrix), so the term mixes the groups.
    projection : "rademacher" or "offset"
        A's rows: all random +-1 (the paper), or the first row all +1 (an ablation: then
        ``b * B (d * A x)`` can carry a per-output multiple of the input sum, which is what an
        additive conductance offset does to the output).

    Notes
    -----
    Linear layers (any leading shape) take ``A x`` on the last dimension; the input and
    hidden projections of recurrent layers and the projections of attention are Linear
    layers on tiles and get a term each (a hidden projection's at every time step).  The
    model must return class logits (batch, classes); analog layers of any other kind are
    refused by name.
    """

    name = "vera+"

    def __init__(self, rank: int = 1, *, gdc: bool = True, epochs: int = 3, batch_size: int = 64,
                 lr: float = 0.01, seed: int = 0, conv: str = "1x1", projection: str = "rademacher"):
        super().__init__()
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= 64:
            raise ValueError(f"rank must be an integer in [1, 64], got {rank!r}")
        if conv not in ("1x1", "patch"):
            raise ValueError(f"conv must be '1x1' (the paper's scheme) or 'patch', got {conv!r}")
        if projection not in ("rademacher", "offset"):
            raise ValueError(f"projection must be 'rademacher' or 'offset', got {projection!r}")
        self.conv, self.projection = conv, projection
        self.rank, self.gdc, self.epochs, self.batch_size, self.lr, self.seed = \
            int(rank), bool(gdc), int(epochs), int(batch_size), float(lr), int(seed)
        self.a_sign = None   # (rank, max_in) int8 +-1
        self.b_sign = None   # (max_out, rank) int8 +-1
        self.layers = []     # analog layer names
        self.times = []      # switch times, s (increasing)
        self.sets = []       # per set: {name: (d (rank,), b (outputs,))} float32 arrays
        self.log = []        # schedule trace: dicts
        self._active = None  # the set in use: {name: (d, b)} tensors

    # -- the shared projections -----------------------------------------------------------------
    def _inputs(self, layer):
        """Inputs the projection A sees: the C_in centre taps of a convolution (1x1 scheme:
        every input channel, all groups), else the whole input vector of the layer's crossbar
        matrix (a convolution: its whole C_in prod(kernel) patch, all groups)."""
        if self.conv == "1x1" and isinstance(layer, AnalogConv):
            return layer.in_channels
        return layer.in_features_flat

    @staticmethod
    def _check_layers(layers) -> None:
        """Refuse an analog layer the low-rank term has no form for, naming it."""
        for name, layer in layers:
            if not isinstance(layer, (AnalogLinear, AnalogConv)):
                raise ValueError(f"VeRA+ has no low-rank term for layer {name!r} ({type(layer).__name__}): it "
                                 "handles Linear, Conv1d and Conv2d layers and the projections of recurrent and "
                                 "attention layers")

    def _init_projections(self, model):
        layers = model.analog_layers()
        self._check_layers(layers)
        self.layers = [name for name, _ in layers]
        self._draw_projections(max(self._inputs(layer) for _, layer in layers),
                               max(layer.weight.shape[0] for _, layer in layers))

    def _draw_projections(self, max_in: int, max_out: int) -> None:
        """A (rank x max_in) and B (max_out x rank), +-1, drawn from ``seed`` alone: a stored
        set needs only the seed to rebuild them."""
        rng = np.random.default_rng([self.seed, 4])
        self.a_sign = rng.choice(np.array([-1, 1], dtype=np.int8), (self.rank, max_in))
        self.b_sign = rng.choice(np.array([-1, 1], dtype=np.int8), (max_out, self.rank))
        if self.projection == "offset":
            self.a_sign[0] = 1

    def _ab(self, layer):
        """A as the layer applies it (a (rank, inputs) matrix; for a convolution a (rank, C_in,
        *kernel) kernel read through the layer's own padding, stride and dilation, over every
        input channel whatever the groups, zero but at the centre tap in the 1x1 scheme) and
        B (outputs, rank)."""
        n_in, n_out = self._inputs(layer), layer.weight.shape[0]
        dtype, device = layer.weight.dtype, layer.weight.device
        a = torch.as_tensor(self.a_sign[:, :n_in], dtype=dtype, device=device) / math.sqrt(n_in)
        b = torch.as_tensor(self.b_sign[:n_out, :], dtype=dtype, device=device)
        if isinstance(layer, AnalogConv):
            kernel = tuple(layer.geometry.kernel)
            if self.conv == "1x1":
                full = torch.zeros((self.rank, layer.in_channels, *kernel), dtype=dtype, device=device)
                full[(slice(None), slice(None), *(k // 2 for k in kernel))] = a
                a = full
            else:
                a = a.reshape(self.rank, layer.in_channels, *kernel)
        return a, b

    @staticmethod
    def _term(module, x, a, b, d, bvec):
        """``b * (B (d * (A x)))`` for the layer ``module`` on its input ``x``: a Linear on the
        last dimension (any leading shape); a convolution as a rank-channel convolution of
        the input padded as the layer pads it (its padding mode), with its stride and
        dilation, then B at every position."""
        if a.ndim == 2:
            return ((x @ a.T) * d) @ b.T * bvec
        geometry = module.geometry
        unbatched = x.ndim == geometry.dims + 1
        x = x[None] if unbatched else x
        conv = F.conv1d if geometry.dims == 1 else F.conv2d
        u = conv(geometry.pad(x), a, None, geometry.stride, 0, geometry.dilation).movedim(1, -1)
        term = (((u * d) @ b.T) * bvec).movedim(-1, 1)
        return term[0] if unbatched else term

    def _hooks(self, model):
        """Forward hooks adding ``b * (B (d * (A x)))`` with the active set (none: nothing) to
        every analog layer's output, whatever the layer's mode: tiles, training draws."""
        handles = []
        for name, layer in model.analog_layers():
            a, b = self._ab(layer)

            def hook(module, inputs, y, name=name, a=a, b=b):
                if self._active is None:
                    return None
                d, bvec = self._active[name]
                return y + self._term(module, inputs[0], a, b, d, bvec)
            handles.append(layer.register_forward_hook(hook))
        return handles

    def _tensors(self, vset, model):
        layers = dict(model.analog_layers())
        return {name: tuple(torch.as_tensor(v, dtype=layers[name].weight.dtype, device=layers[name].weight.device)
                            for v in vset[name]) for name in self.layers}

    @contextlib.contextmanager
    def _sampling(self, model, t_seconds):
        """Device instances drawn at ``t_seconds`` (the model's ``device_draws``) with the
        VeRA+ hooks on."""
        handles = self._hooks(model)
        try:
            with model.device_draws(t_seconds=t_seconds, gdc=self.gdc):
                yield
        finally:
            for handle in handles:
                handle.remove()

    @staticmethod
    def _logits(model, x) -> torch.Tensor:
        """The model's output on ``x``, refused unless it is class logits (batch, classes)."""
        out = model.module(x)
        if not torch.is_tensor(out) or out.ndim != 2 or out.shape[0] != x.shape[0]:
            shown = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
            raise ValueError(f"VeRA+ trains and scores class logits (batch, classes); the model returns {shown} "
                             "(end it with a classifier head)")
        return out

    def train_set(self, model, t_seconds, x, y, rng, init=None) -> dict:
        """One vector set trained at drift time ``t_seconds``: ``epochs`` passes over (x, y),
        a new drift instance per mini-batch, Adam on d and b only."""
        layers = dict(model.analog_layers())
        start = init or {name: (np.full(self.rank, 0.1), np.zeros(layers[name].weight.shape[0]))
                         for name in self.layers}
        params = {name: tuple(t.clone().requires_grad_(True) for t in pair)
                  for name, pair in self._tensors(start, model).items()}
        optimizer = torch.optim.Adam([t for pair in params.values() for t in pair], lr=self.lr)
        loss_fn = nn.CrossEntropyLoss()
        x = model.as_input(x)
        y = torch.tensor(np.asarray(y), dtype=torch.int64, device=model.device)
        with self._sampling(model, t_seconds):
            self._active = params
            for _ in range(self.epochs):
                order = torch.as_tensor(rng.permutation(len(y)), device=model.device)
                for begin in range(0, len(y), self.batch_size):
                    idx = order[begin:begin + self.batch_size]
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(self._logits(model, x[idx]), y[idx])
                    loss.backward()
                    optimizer.step()
            self._active = None
        # stored as float32: keep exactly what a stored file gives back
        return {name: tuple(t.detach().cpu().numpy().astype(np.float32) for t in pair)
                for name, pair in params.items()}

    def eval_stats(self, model, t_seconds, vset, x, y, instances) -> tuple:
        """Mean and standard deviation of the accuracy over sampled drift instances."""
        x = model.as_input(x)
        y = np.asarray(y)
        acc = []
        with torch.no_grad(), self._sampling(model, t_seconds):
            self._active = None if vset is None else self._tensors(vset, model)
            for _ in range(instances):
                acc.append(float(np.mean(self._logits(model, x).argmax(dim=1).cpu().numpy() == y)))
            self._active = None
        acc = np.asarray(acc)
        return float(acc.mean()), float(acc.std(ddof=1)) if instances > 1 else 0.0

    # -- Algorithm 1 -------------------------------------------------------------------------
    @staticmethod
    def falls_short(mean: float, std: float, threshold: float) -> bool:
        """Algorithm 1's test for storing a set: mean - 3 std of the accuracy over drift
        instances below the threshold ((1 - tolerance) x the drift-free accuracy)."""
        return mean - 3 * std < threshold

    def fit_schedule(self, model, x_train, y_train, x_val, y_val, *, tolerance: float = 0.01,
                     t_start: float = 1.0, t_end: float = 10 * YEAR, factor: float = 1.5,
                     instances: int = 20, progress: bool = False) -> "VeRAPlus":
        """Algorithm 1: from ``t_start`` advance t by ``factor`` up to ``t_end``; store a new
        set at t when mean - 3 std of the (validation) accuracy with the current set falls
        below ``(1 - tolerance)`` times the drift-free accuracy (programming noise, t = 0)."""
        from tqdm import tqdm

        if not 0 < tolerance < 1 or factor <= 1 or not 0 < t_start <= t_end:
            raise ValueError("need 0 < tolerance < 1, factor > 1 and 0 < t_start <= t_end")
        self._init_projections(model)
        rng = np.random.default_rng([self.seed, 5])
        self.times, self.sets, self.log = [], [], []
        free, _ = self.eval_stats(model, 0.0, None, x_val, y_val, instances)
        self.threshold, self.tolerance, self.drift_free = (1 - tolerance) * free, tolerance, free
        times = []
        t = t_start
        while t < t_end * (1 - 1e-12):
            times.append(t)
            t *= factor
        times.append(t_end)
        current = None
        for t in tqdm(times, desc="VeRA+ schedule", disable=not progress, leave=False):
            mean, std = self.eval_stats(model, t, current, x_val, y_val, instances)
            row = {"t": t, "mean": mean, "std": std, "new_set": False}
            if self.falls_short(mean, std, self.threshold):
                current = self.train_set(model, t, x_train, y_train, rng, init=current)
                self.times.append(float(t))
                self.sets.append(current)
                after = self.eval_stats(model, t, current, x_val, y_val, instances)
                row.update(new_set=True, mean_after=after[0], std_after=after[1])
            self.log.append(row)
        return self

    def fit_single(self, model, x_train, y_train, t_seconds: float) -> "VeRAPlus":
        """One set trained at ``t_seconds``, used from t = 0 on (no schedule)."""
        self._init_projections(model)
        self.sets = [self.train_set(model, t_seconds, x_train, y_train, np.random.default_rng([self.seed, 6]))]
        self.times = [0.0]
        return self

    # -- deployment --------------------------------------------------------------------------
    def select(self, t_seconds: float):
        """The set for elapsed time ``t_seconds``: the last one whose switch time has passed
        (None before the first switch)."""
        chosen = None
        for t_switch, vset in zip(self.times, self.sets):
            if t_seconds >= t_switch * (1 - 1e-12):
                chosen = vset
        return chosen

    def attach(self, model) -> "VeRAPlus":
        if self.a_sign is None:
            raise ValueError("VeRAPlus.attach before fit")
        names = [name for name, _ in model.analog_layers()]
        if names != self.layers:
            raise ValueError(f"VeRA+ was fitted on layers {self.layers}, the model has {names}")
        self.detach()
        self.model = model
        for handle in self._hooks(model):
            self._hold(handle)
        self._hold(model.register_time_hook(self._choose))
        self._choose(model)
        return self

    def _choose(self, model) -> None:
        vset = self.select(model.t_seconds or 0.0)
        self._active = None if vset is None else self._tensors(vset, model)

    def detach(self) -> None:
        super().detach()
        self._active = None

    @property
    def parameters(self) -> int:
        """Stored numbers: the vectors d and b of every set."""
        return int(sum(d.size + b.size for vset in self.sets for d, b in vset.values()))

    @property
    def storage_bytes(self) -> int:
        """What :meth:`arrays` keeps: the seed (8 B, int64), every set's vectors d and b as
        float32 (4 B each) and one float64 switch time (8 B) per set.  The frozen projections
        A and B are not stored: they are redrawn from the seed (as VeRA does), so their
        +-1 entries cost nothing beyond the seed; rank, projection kind and layer shapes are
        the configuration, not counted."""
        if self.a_sign is None:
            return 0
        return int(8 + 4 * self.parameters + 8 * len(self.times))

    def arrays(self) -> dict:
        out = {"seed": np.asarray(self.seed, dtype=np.int64), "times": np.asarray(self.times, dtype=np.float64)}
        for k, vset in enumerate(self.sets):
            for j, name in enumerate(self.layers):
                d, b = vset[name]
                out[f"set{k}_d{j}"] = np.asarray(d, dtype=np.float32)
                out[f"set{k}_b{j}"] = np.asarray(b, dtype=np.float32)
        return out

    def meta(self) -> dict:
        return {"rank": self.rank, "gdc": self.gdc, "epochs": self.epochs, "batch_size": self.batch_size,
                "lr": self.lr, "seed": self.seed, "layers": self.layers, "conv": self.conv,
                "projection": self.projection,
                "a_shape": list(self.a_sign.shape), "b_shape": list(self.b_sign.shape)}

    @classmethod
    def from_arrays(cls, arrays, meta):
        vera = cls(meta["rank"], gdc=meta["gdc"], epochs=meta["epochs"], batch_size=meta["batch_size"],
                   lr=meta["lr"], seed=meta["seed"], conv=meta.get("conv", "patch"),
                   projection=meta.get("projection", "rademacher"))
        vera.layers = [str(name) for name in meta["layers"]]
        a_shape, b_shape = tuple(meta["a_shape"]), tuple(meta["b_shape"])
        if "a_bits" in arrays:  # files written before the projections were redrawn from the seed
            vera.a_sign = np.where(np.unpackbits(arrays["a_bits"])[:np.prod(a_shape)].reshape(a_shape) > 0, 1, -1
                                   ).astype(np.int8)
            vera.b_sign = np.where(np.unpackbits(arrays["b_bits"])[:np.prod(b_shape)].reshape(b_shape) > 0, 1, -1
                                   ).astype(np.int8)
        else:
            if int(arrays["seed"]) != vera.seed:
                raise ValueError(f"VeRA+ file: stored seed {int(arrays['seed'])} differs from its meta seed {vera.seed}")
            vera._draw_projections(a_shape[1], b_shape[0])
        vera.times = [float(t) for t in arrays["times"]]
        vera.sets = [{name: (arrays[f"set{k}_d{j}"], arrays[f"set{k}_b{j}"]) for j, name in enumerate(vera.layers)}
                     for k in range(len(vera.times))]
        return vera
