"""Drift compensation strategies for a network on drifting cells, one small class per method.

Every strategy has ``fit`` (offline, right after programming or from training data),
``apply(view)`` (at inference: fills the digital hooks of a
:class:`~memsim.compensate.network.CompensatedNetwork` for the hardware as it is now) and
``storage_bytes`` (what it keeps on chip).  Apply them in the order GDC, VeRA+, BN::

    view = compensated(net)                  # same tiles as net
    for strategy in (gdc, vera, bn):
        strategy.apply(view)
    view.accuracy(x_test, y_test)

- :class:`GlobalDriftCompensation`: reads every tile with one-hot inputs through its whole
  periphery right after programming and at time t; the ratio scales the tile's output, one
  factor per tile or per output column (aihwkit's GlobalDriftCompensation is the per-tile one).
- :class:`BNRecalibration`: re-estimates every BatchNorm's statistics through the hardware
  from a small stored subset of the training data (Joshi et al., Nat. Commun. 11, 2473,
  2020); storage = the subset as uint8 pixels.
- :class:`VeRAPlus`: seed 004 (VeRA+): shared frozen random projections A (rank x inputs) and
  B (outputs x rank), sliced per layer (Sec. III-C), and per layer and drift level two
  vectors d (rank) and b (outputs): ``h = W(t) x + b * (B (d * (A x)))`` (Eq. 8), trained
  offline under drift sampled anew for every mini-batch with the backbone frozen (Sec.
  III-D1: 3 epochs, batch 64); :meth:`VeRAPlus.fit_schedule` is Algorithm 1 (Sec. III-D2):
  advance t by x1.5, estimate mean and standard deviation of the accuracy over sampled drift
  instances, and train / store a new set only when mean - 3 std falls below the threshold;
  at deployment the set is chosen by the elapsed time.  A and B are Rademacher (+-1, scaled
  digitally by 1/sqrt(fan-in)), stored as bits.
"""
from __future__ import annotations

import math

import numpy as np

YEAR = 365.25 * 86400.0


# ---------------------------------------------------------------------------------------------
# drift instances in weight space (cheap: no periphery, one matrix product per layer)
# ---------------------------------------------------------------------------------------------
class DriftSampler:
    """Effective weights of a network's layers under a freshly sampled device instance.

    For every tile of ``net`` (its mapping and noise model): program the target conductances
    (programming noise), let them drift to ``t`` (the model's drift and slow noise), un-map to
    weights; with ``gdc``, scale each tile by ``mean |w(0)| / mean |w(t)|``, the weight-space
    value of the one-hot read-out ratio that :class:`GlobalDriftCompensation` measures.
    Converters and output noise are left out (they are in the hardware evaluation).
    """

    def __init__(self, net, gdc: bool = True):
        self.tiles = [(tile.layer, tile.map) for tile in net.tiles]
        self.model = net.model
        self.mlp = net.mlp
        self.shapes = {index: layer.w.shape for index, layer in enumerate(net.mlp.layers) if hasattr(layer, "w")}
        self.gdc = gdc
        self.out_noise = float(getattr(net.config, "out_noise", 0.0))
        self.noise = {}

    def sample(self, t_seconds: float, rng: np.random.Generator) -> dict:
        weights = {index: np.zeros(shape) for index, shape in self.shapes.items()}
        self.noise = {index: [] for index in self.shapes}
        for layer, tmap in self.tiles:
            cells = self.model.program(tmap.g_target, rng)
            g = self.model.at_time(cells, t_seconds, rng) if t_seconds > 0 else cells.g_prog
            w = tmap.weights(g)
            alpha = 1.0
            if self.gdc:  # the one-hot read-outs go through the output noise, as on the chip
                noise = self.out_noise * rng.standard_normal(w.shape) if self.out_noise > 0 else 0.0
                now = np.mean(np.abs(w + noise))
                ref = np.mean(np.abs(tmap.weights(cells.g_prog) + noise))
                alpha = ref / now if now > 0 else 1.0
                w = w * alpha
            weights[layer][tmap.rows, tmap.cols] = w
            if self.out_noise > 0:
                self.noise[layer].append((tmap.rows, tmap.cols, self.out_noise * alpha))
        return weights

    def add_output_noise(self, index, x, z, rng):
        """Output noise of the tiles of layer ``index`` on its pre-activation ``z`` (in place):
        per tile and output, ``out_noise`` in weight units times the input's abs-max scale."""
        for rows, cols, sigma in self.noise.get(index, ()):
            scale = np.max(np.abs(x[:, rows]), axis=1, keepdims=True)
            z[:, cols] += sigma * scale * rng.standard_normal((len(x), z[:, cols].shape[1]))
        return z


# ---------------------------------------------------------------------------------------------
# GDC
# ---------------------------------------------------------------------------------------------
class GlobalDriftCompensation:
    """Output scale from one-hot reference reads: ``ref / now`` per tile or per column.

    ``fit(net)`` reads every tile right after programming (the network is set to t = 0 for
    the read and put back); storage: one float32 per tile (``per="tile"``) or per output
    column (``per="column"``).
    """

    name = "gdc"

    def __init__(self, per: str = "tile"):
        if per not in ("tile", "column"):
            raise ValueError(f"per must be 'tile' or 'column', got {per!r}")
        self.per = per
        self.reference = []

    def _read(self, net, tile):
        out = np.abs(net._tile_output(tile, np.eye(tile.map.g_target.shape[0]), compensate=False))
        return out.mean(axis=0) if self.per == "column" else np.array([out.mean()])

    def fit(self, net) -> "GlobalDriftCompensation":
        base = getattr(net, "base", net)
        saved = base.t_seconds
        if saved != 0.0:
            base.set_time(0.0)
        self.reference = [self._read(base, tile).astype(np.float32) for tile in base.tiles]
        if saved != 0.0:
            base.set_time(saved)
        return self

    def apply(self, view):
        if len(self.reference) != len(view.tiles):
            raise ValueError(f"GDC fitted on {len(self.reference)} tiles, the network has {len(view.tiles)}")
        for tile, ref in zip(view.tiles, self.reference):
            now = self._read(view.base, tile)
            factor = np.where(now > 0, ref / np.where(now > 0, now, 1.0), 1.0)
            old = view.tile_gain.get(id(tile))
            view.tile_gain[id(tile)] = (factor, 0.0) if old is None else (old[0] * factor, old[1] * factor)
        return view

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
class BNRecalibration:
    """BatchNorm statistics re-estimated through the hardware from ``images`` stored training
    inputs (uint8, the inputs quantised to 1/255); storage = those bytes."""

    name = "bn"

    def __init__(self, images: int = 256, seed: int = 0):
        self.images = int(images)
        self.seed = int(seed)
        self.subset = None

    def fit(self, x_train) -> "BNRecalibration":
        x = np.asarray(x_train, dtype=float)
        if self.images < 2 or self.images > len(x):
            raise ValueError(f"images must be in [2, {len(x)}], got {self.images}")
        pick = np.random.default_rng(self.seed).choice(len(x), self.images, replace=False)
        self.subset = np.round(np.clip(x[np.sort(pick)], 0.0, 1.0) * 255).astype(np.uint8)
        return self

    def apply(self, view):
        if self.subset is None:
            raise ValueError("BNRecalibration.apply before fit")
        view.mlp = view.base.mlp
        view.forward(self.subset.astype(float) / 255.0, bn_batch_stats=True)
        mlp = view.mlp
        for index, (mean, var) in view.last_bn_stats.items():
            mlp = mlp.replace_layer(index, mlp.layers[index].with_stats(mean, var))
        view.mlp = mlp
        return view

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
def _softmax_grad(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(shifted)
    prob /= prob.sum(axis=1, keepdims=True)
    prob[np.arange(len(labels)), labels] -= 1.0
    return prob / len(labels)


class VeRAPlus:
    """VeRA+ drift compensation (seed 004); see the module docstring.

    Parameters
    ----------
    rank : int
        r, columns of A / rows of B (seed 004 finds r = 1 enough).
    gdc : bool
        Train (and deploy) on top of per-tile GDC; deploy it with a
        :class:`GlobalDriftCompensation` applied first.
    epochs, batch_size, lr : training of each vector set (3 epochs, batch 64 as the seed).
    """

    name = "vera+"

    def __init__(self, rank: int = 1, *, gdc: bool = True, epochs: int = 3, batch_size: int = 64,
                 lr: float = 0.01, seed: int = 0):
        if not isinstance(rank, (int, np.integer)) or not 1 <= rank <= 64:
            raise ValueError(f"rank must be an integer in [1, 64], got {rank!r}")
        self.rank, self.gdc, self.epochs, self.batch_size, self.lr, self.seed = \
            int(rank), bool(gdc), int(epochs), int(batch_size), float(lr), int(seed)
        self.a_sign = None   # (rank, max_in) int8 +-1
        self.b_sign = None   # (max_out, rank) int8 +-1
        self.layers = []     # Linear layer indices
        self.times = []      # switch times, s (increasing)
        self.sets = []       # per set: {index: (d (rank,), b (outputs,))}
        self.log = []        # schedule trace: dicts

    # -- the shared projections -----------------------------------------------------------
    def _init_projections(self, mlp):
        self.layers = list(mlp.linear_indices)
        max_in = max(mlp.layers[i].w.shape[0] for i in self.layers)
        max_out = max(mlp.layers[i].w.shape[1] for i in self.layers)
        rng = np.random.default_rng([self.seed, 4])
        self.a_sign = rng.choice(np.array([-1, 1], dtype=np.int8), (self.rank, max_in))
        self.b_sign = rng.choice(np.array([-1, 1], dtype=np.int8), (max_out, self.rank))

    def _ab(self, index, n_in, n_out):
        a = self.a_sign[:, :n_in].astype(float) / math.sqrt(n_in)
        b = self.b_sign[:n_out, :].astype(float)
        return a, b

    def _zero_set(self, mlp):
        out = {}
        for i in self.layers:
            n_out = mlp.layers[i].w.shape[1]
            out[i] = (np.full(self.rank, 0.1), np.zeros(n_out))
        return out

    # -- numpy forward / backward through Linear, BatchNorm (inference form), ReLU -----------
    def _forward(self, mlp, weights, vset, x, sampler=None, rng=None):
        from ..nn.model import BatchNorm, Linear

        cache = []
        for index, layer in enumerate(mlp.layers):
            if isinstance(layer, Linear):
                z = x @ weights[index] + layer.b
                if sampler is not None:
                    sampler.add_output_noise(index, x, z, rng)
                entry = [index, x, None, None]
                if vset is not None:
                    a, b = self._ab(index, *layer.w.shape)
                    u = x @ a.T
                    p = (u * vset[index][0]) @ b.T
                    z = z + p * vset[index][1]
                    entry[2], entry[3] = u, p
                cache.append(("linear", entry))
                x = z
            elif isinstance(layer, BatchNorm):
                s = layer.gamma / np.sqrt(layer.var + layer.eps)
                cache.append(("bn", s))
                x = (x - layer.mean) * s + layer.beta
            else:
                cache.append(("relu", x > 0))
                x = np.maximum(x, 0.0)
        return x, cache

    def _backward(self, grad, cache, mlp, weights, vset):
        grads = {}
        for kind, entry in reversed(cache):
            if kind == "relu":
                grad = grad * entry
            elif kind == "bn":
                grad = grad * entry
            else:
                index, x, u, p = entry
                d, bvec = vset[index]
                a, b = self._ab(index, *mlp.layers[index].w.shape)
                g_b = (grad * p).sum(axis=0)
                g_v = (grad * bvec) @ b
                g_d = (g_v * u).sum(axis=0)
                grads[index] = (g_d, g_b)
                if index != self.layers[0]:
                    grad = grad @ weights[index].T + (g_v * d) @ a
        return grads

    def logits(self, mlp, weights, vset, x, sampler=None, rng=None):
        return self._forward(mlp, weights, vset, x, sampler, rng)[0]

    def train_set(self, sampler, t_seconds, x, y, rng, init=None):
        """One vector set trained at drift time ``t_seconds``: ``epochs`` passes over (x, y),
        a new drift instance per mini-batch, Adam on d and b only."""
        mlp = sampler.mlp
        vset = {i: (v[0].copy(), v[1].copy()) for i, v in (init or self._zero_set(mlp)).items()}
        params = [arr for i in self.layers for arr in vset[i]]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        step = 0
        for _ in range(self.epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), self.batch_size):
                idx = order[start:start + self.batch_size]
                weights = sampler.sample(t_seconds, rng)
                out, cache = self._forward(mlp, weights, vset, x[idx], sampler, rng)
                grads = self._backward(_softmax_grad(out, y[idx]), cache, mlp, weights, vset)
                flat = [g for i in self.layers for g in grads[i]]
                step += 1
                for p, g, mm, vv in zip(params, flat, m, v):
                    mm *= 0.9
                    mm += 0.1 * g
                    vv *= 0.999
                    vv += 0.001 * g * g
                    p -= self.lr * (mm / (1 - 0.9 ** step)) / (np.sqrt(vv / (1 - 0.999 ** step)) + 1e-8)
        # stored as float32: keep exactly what a stored file gives back
        return {i: (d.astype(np.float32).astype(float), b.astype(np.float32).astype(float))
                for i, (d, b) in vset.items()}

    def eval_stats(self, sampler, t_seconds, vset, x, y, instances, rng):
        """EVALSTATS: mean and standard deviation of the accuracy over sampled drift instances."""
        acc = []
        for _ in range(instances):
            weights = sampler.sample(t_seconds, rng)
            acc.append(np.mean(self.logits(sampler.mlp, weights, vset, x, sampler, rng).argmax(axis=1) == y))
        acc = np.asarray(acc)
        return float(acc.mean()), float(acc.std(ddof=1)) if instances > 1 else 0.0

    # -- Algorithm 1 -------------------------------------------------------------------------
    def fit_schedule(self, net, x_train, y_train, x_val, y_val, *, tolerance: float = 0.01,
                     t_start: float = 1.0, t_end: float = 10 * YEAR, factor: float = 1.5,
                     instances: int = 20, progress=None) -> "VeRAPlus":
        """Algorithm 1 of seed 004: from ``t_start`` advance t by ``factor`` up to ``t_end``;
        store a new set at t when mean - 3 std of the (validation) accuracy with the current
        set falls below ``(1 - tolerance)`` times the drift-free accuracy (programming noise,
        t = 0, no compensation)."""
        from ..nn.train import blas_threads

        if not 0 < tolerance < 1 or factor <= 1 or not 0 < t_start <= t_end:
            raise ValueError("need 0 < tolerance < 1, factor > 1 and 0 < t_start <= t_end")
        x_train, y_train = np.asarray(x_train, float), np.asarray(y_train)
        x_val, y_val = np.asarray(x_val, float), np.asarray(y_val)
        sampler = DriftSampler(net, gdc=self.gdc)
        self._init_projections(net.mlp)
        rng = np.random.default_rng([self.seed, 5])
        self.times, self.sets, self.log = [], [], []
        with blas_threads(1):
            free, free_std = self.eval_stats(sampler, 0.0, None, x_val, y_val, instances, rng)
            self.threshold = (1 - tolerance) * free
            self.tolerance = tolerance
            self.drift_free = free
            times = []
            t = t_start
            while t < t_end * (1 - 1e-12):
                times.append(t)
                t *= factor
            times.append(t_end)
            current = None
            for t in times:
                mean, std = self.eval_stats(sampler, t, current, x_val, y_val, instances, rng)
                row = {"t": t, "mean": mean, "std": std, "new_set": False}
                if mean - 3 * std < self.threshold:
                    current = self.train_set(sampler, t, x_train, y_train, rng, init=current)
                    self.times.append(float(t))
                    self.sets.append(current)
                    after = self.eval_stats(sampler, t, current, x_val, y_val, instances, rng)
                    row.update(new_set=True, mean_after=after[0], std_after=after[1])
                self.log.append(row)
                if progress is not None:
                    progress.update(1, f"t={t:.3g}s sets={len(self.sets)}")
        return self

    def fit_single(self, net, x_train, y_train, t_seconds: float) -> "VeRAPlus":
        """One set trained at ``t_seconds``, used from t = 0 on (no schedule)."""
        from ..nn.train import blas_threads

        sampler = DriftSampler(net, gdc=self.gdc)
        self._init_projections(net.mlp)
        with blas_threads(1):
            self.sets = [self.train_set(sampler, t_seconds, np.asarray(x_train, float), np.asarray(y_train),
                                        np.random.default_rng([self.seed, 6]))]
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

    def apply(self, view):
        if self.a_sign is None:
            raise ValueError("VeRAPlus.apply before fit")
        vset = self.select(view.t_seconds or 0.0)
        for index in self.layers:
            view.layer_extra.pop(index, None)
        if vset is None:
            return view
        for index in self.layers:
            a, b = self._ab(index, *view.mlp.layers[index].w.shape)
            d, bvec = vset[index]

            def extra(x, a=a, b=b, d=d, bvec=bvec):
                return ((x @ a.T) * d) @ b.T * bvec
            view.layer_extra[index] = extra
        return view

    @property
    def parameters(self) -> int:
        """Stored numbers: the vectors of every set (A and B counted as bits in bytes)."""
        return int(sum(d.size + b.size for vset in self.sets for d, b in vset.values()))

    @property
    def storage_bytes(self) -> int:
        if self.a_sign is None:
            return 0
        bits = self.a_sign.size + self.b_sign.size
        return int(math.ceil(bits / 8) + 4 * self.parameters + 8 * len(self.times))

    def arrays(self) -> dict:
        out = {"a_bits": np.packbits(self.a_sign > 0), "b_bits": np.packbits(self.b_sign > 0),
               "times": np.asarray(self.times, dtype=np.float64)}
        for k, vset in enumerate(self.sets):
            for index, (d, b) in vset.items():
                out[f"set{k}_d{index}"] = d.astype(np.float32)
                out[f"set{k}_b{index}"] = b.astype(np.float32)
        return out

    def meta(self) -> dict:
        return {"rank": self.rank, "gdc": self.gdc, "epochs": self.epochs, "batch_size": self.batch_size,
                "lr": self.lr, "seed": self.seed, "layers": self.layers,
                "a_shape": list(self.a_sign.shape), "b_shape": list(self.b_sign.shape)}

    @classmethod
    def from_arrays(cls, arrays, meta):
        vera = cls(meta["rank"], gdc=meta["gdc"], epochs=meta["epochs"], batch_size=meta["batch_size"],
                   lr=meta["lr"], seed=meta["seed"])
        vera.layers = [int(i) for i in meta["layers"]]
        a_shape, b_shape = tuple(meta["a_shape"]), tuple(meta["b_shape"])
        vera.a_sign = np.where(np.unpackbits(arrays["a_bits"])[:np.prod(a_shape)].reshape(a_shape) > 0, 1, -1
                               ).astype(np.int8)
        vera.b_sign = np.where(np.unpackbits(arrays["b_bits"])[:np.prod(b_shape)].reshape(b_shape) > 0, 1, -1
                               ).astype(np.int8)
        vera.times = [float(t) for t in arrays["times"]]
        vera.sets = [{i: (arrays[f"set{k}_d{i}"].astype(float), arrays[f"set{k}_b{i}"].astype(float))
                      for i in vera.layers} for k in range(len(vera.times))]
        return vera
