"""Floating-point training of the MLPs in numpy (no deep-learning framework needed).

``train_mlp`` trains Linear -> [BatchNorm] -> ReLU blocks and a Linear output layer with
softmax cross-entropy, Adam and mini-batches; BatchNorm uses batch statistics while training
and keeps running statistics (momentum 0.1, unbiased variance, as torch.nn.BatchNorm1d) for
inference.  Initialisation follows torch.nn.Linear (uniform in +-1/sqrt(fan_in)).  The two
networks of the issue train in seconds on one core:

    784-256-BN-128-BN-10 on the MNIST subset   train_mlp(load("mnist"), (256, 128), batchnorm=True)
    64-64-10 on digits                          train_mlp(load("digits"), (64,), batchnorm=False)
"""
from __future__ import annotations

import numpy as np

from .model import MLP, BatchNorm, Linear, ReLU

_EPS = 1e-5
_MOMENTUM = 0.1


def _softmax_xent_grad(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(shifted)
    prob /= prob.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = -np.mean(np.log(prob[np.arange(n), labels] + 1e-300))
    prob[np.arange(n), labels] -= 1.0
    return loss, prob / n


class _SGD:
    """SGD with (heavy-ball) momentum, as torch.optim.SGD."""

    def __init__(self, params, lr, momentum=0.9):
        self.params, self.momentum = params, momentum
        self.buf = [np.zeros_like(p) for p in params]

    def step(self, grads, lr):
        for p, g, b in zip(self.params, grads, self.buf):
            b *= self.momentum
            b += g
            p -= lr * b


class _Adam:
    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.params, self.lr, self.b1, self.b2, self.eps = params, lr, beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads, lr):
        self.t += 1
        c1 = 1 - self.b1 ** self.t
        c2 = 1 - self.b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def blas_threads(n: int | None = 1):
    """Context limiting BLAS threads (threadpoolctl when installed; else a no-op).

    Small matrix products are latency-bound: on a shared 2-core machine one BLAS thread is
    an order of magnitude faster than several contending ones (measured: 0.9 ms against
    2.8 ms for a 64x784 by 784x256 product).
    """
    import contextlib

    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def train_mlp(dataset, hidden=(256, 128), *, batchnorm: bool = True, epochs: int = 30,
              batch_size: int = 64, lr: float | None = None, weight_decay: float = 0.0, seed: int = 0,
              optimizer: str = "adam", verbose: bool = False) -> MLP:
    """Train an MLP ``features - hidden... - classes`` on ``dataset`` (a :class:`~memsim.nn.datasets.Dataset`).

    Parameters
    ----------
    hidden : sequence of int
        Hidden widths; each hidden block is Linear -> BatchNorm (if ``batchnorm``) -> ReLU.
    epochs, batch_size, lr : training schedule (cosine-decayed learning rate; default lr
        2e-3 for Adam, 0.05 for SGD).
    optimizer : "adam" or "sgd" (momentum 0.9).
    weight_decay : L2 penalty on the Linear weights.
    seed : seeds initialisation and batch order (``numpy.random.default_rng(seed)``).

    Returns
    -------
    MLP
        BatchNorm layers carry the running statistics accumulated in training.
    """
    with blas_threads(1):
        return _train(dataset, hidden, batchnorm, epochs, batch_size, lr, weight_decay, seed, optimizer,
                      verbose)


def _train(dataset, hidden, batchnorm, epochs, batch_size, lr, weight_decay, seed, optimizer, verbose):
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    lr = (2e-3 if optimizer == "adam" else 0.05) if lr is None else lr
    hidden = tuple(int(h) for h in hidden)
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden widths must be >= 1, got {hidden}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    rng = np.random.default_rng(seed)
    x = np.asarray(dataset.x_train, dtype=np.float64)
    y = np.asarray(dataset.y_train)
    sizes = (x.shape[1], *hidden, dataset.n_classes)
    ws, bs, bn = [], [], []
    for k in range(len(sizes) - 1):
        bound = 1.0 / np.sqrt(sizes[k])
        ws.append(rng.uniform(-bound, bound, (sizes[k], sizes[k + 1])))
        has_bn = batchnorm and k < len(sizes) - 2
        # a bias before BatchNorm is cancelled by its mean subtraction: keep it at 0
        bs.append(np.zeros(sizes[k + 1]) if has_bn else rng.uniform(-bound, bound, sizes[k + 1]))
        bn.append({"gamma": np.ones(sizes[k + 1]), "beta": np.zeros(sizes[k + 1]),
                   "mean": np.zeros(sizes[k + 1]), "var": np.ones(sizes[k + 1])} if has_bn else None)
    params = ws + [b for b, n in zip(bs, bn) if n is None]
    params += [n[key] for n in bn if n is not None for key in ("gamma", "beta")]
    opt = _Adam(params, lr) if optimizer == "adam" else _SGD(params, lr)
    n_samples = len(y)
    steps_per_epoch = int(np.ceil(n_samples / batch_size))
    total = epochs * steps_per_epoch
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(n_samples)
        for start in range(0, n_samples, batch_size):
            idx = order[start:start + batch_size]
            if len(idx) < 2:
                continue
            act = x[idx]
            cache = []
            for k in range(len(ws)):
                z = act @ ws[k] + bs[k]
                entry = {"inp": act}
                if bn[k] is not None:
                    mu = z.mean(axis=0)
                    var = z.var(axis=0)
                    inv = 1.0 / np.sqrt(var + _EPS)
                    zhat = (z - mu) * inv
                    n = len(idx)
                    bn[k]["mean"] = (1 - _MOMENTUM) * bn[k]["mean"] + _MOMENTUM * mu
                    bn[k]["var"] = (1 - _MOMENTUM) * bn[k]["var"] + _MOMENTUM * var * n / (n - 1)
                    z = zhat * bn[k]["gamma"] + bn[k]["beta"]
                    entry.update(zhat=zhat, inv=inv)
                if k < len(ws) - 1:
                    entry["mask"] = z > 0
                    z = np.where(entry["mask"], z, 0.0)
                cache.append(entry)
                act = z
            loss, grad = _softmax_xent_grad(act, y[idx])
            g_w, g_b, g_bn = [None] * len(ws), [None] * len(ws), [None] * len(ws)
            for k in reversed(range(len(ws))):
                entry = cache[k]
                if k < len(ws) - 1:
                    grad = grad * entry["mask"]
                if bn[k] is not None:
                    zhat, inv = entry["zhat"], entry["inv"]
                    g_bn[k] = ((grad * zhat).sum(axis=0), grad.sum(axis=0))
                    dz = grad * bn[k]["gamma"]
                    n = len(idx)
                    grad = inv / n * (n * dz - dz.sum(axis=0) - zhat * (dz * zhat).sum(axis=0))
                g_w[k] = entry["inp"].T @ grad + weight_decay * ws[k]
                g_b[k] = grad.sum(axis=0)
                grad = grad @ ws[k].T
            grads = g_w + [g_b[k] for k in range(len(ws)) if bn[k] is None]
            grads += [g for k in range(len(ws)) if bn[k] is not None for g in g_bn[k]]
            rate = lr * 0.5 * (1 + np.cos(np.pi * step / total))
            opt.step(grads, rate)
            step += 1
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f}")
    layers = []
    for k in range(len(ws)):
        layers.append(Linear(ws[k], bs[k]))
        if bn[k] is not None:
            layers.append(BatchNorm(bn[k]["gamma"], bn[k]["beta"], bn[k]["mean"], bn[k]["var"], _EPS))
        if k < len(ws) - 1:
            layers.append(ReLU())
    return MLP(tuple(layers))


#: The two networks of the results table: dataset name -> (hidden widths, batchnorm).
NETWORKS = {"mlp-mnist": ("mnist", (256, 128), True), "mlp-digits": ("digits", (64,), False)}


def train_network(name: str, seed: int = 0, dataset=None):
    """Train one of :data:`NETWORKS` (``"mlp-mnist"``, ``"mlp-digits"``); returns (mlp, dataset)."""
    from . import datasets

    if name not in NETWORKS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(NETWORKS)}")
    data_name, hidden, batchnorm = NETWORKS[name]
    dataset = datasets.load(data_name) if dataset is None else dataset
    return train_mlp(dataset, hidden, batchnorm=batchnorm, seed=seed), dataset
