"""Bayesian compute-in-memory: device variability as the weight sampler.

Clémençon et al. ("Resistive Memories: Multifaceted Impact on Neuromorphic Computing")
argue that memristor variability should be harnessed: each weight a Gaussian whose mean and
spread the programming conditions set, crossbars that multiply and sample at once, and
predictions with calibrated uncertainty (Bonnet et al., Nat. Commun. 14, 7530, 2023;
Dalgaty et al., Nat. Electron. 4, 151, 2021).  This module has the four pieces:

1. **The network** (:func:`bayesian`, :class:`BayesLinear`, :class:`BayesConv1d`,
   :class:`BayesConv2d`): a
   mean-field Gaussian posterior ``w ~ N(mu, sigma^2)`` per weight, trained by variational
   inference (Bayes by backprop, Blundell et al., ICML 2015) with the local
   reparameterisation trick (Kingma, Salimans and Welling, NeurIPS 2015): a training forward
   samples the pre-activations ``N(x mu, x^2 sigma^2)`` instead of the weights.  The loss is
   the mean negative log-likelihood plus ``KL(q || N(0, prior_sigma^2)) / N_train``.
   Biases are deterministic (they are added digitally after the tiles).
2. **The technology term** (:class:`Technology`): each sigma is kept inside what a pair of
   devices can realise.  A weight is ``w = s (G+ - G-)`` (``s`` the digital scale of its
   output, ``s = max |mu| / (g_max - g_min)``, as :mod:`memsim.nn.mapping` does); a device
   programmed to a (mean) conductance ``G`` returns ``G (1 + rho xi)`` in distribution, rho the
   relative standard deviation of the sampling mechanism.  The difference of two sampled
   devices sets mu and sigma independently (Clémençon et al., after Bonnet et al.):
   ``mu = s (G+ - G-)``, ``sigma = s rho sqrt(G+^2 + G-^2)``, so raising both conductances
   together (the programming condition) raises sigma at a fixed mu.  Within
   ``g_min <= G <= g_max`` this gives, for ``d = |mu| / s``::
       sigma_min = s rho sqrt((g_min + d)^2 + g_min^2)   (the low device at g_min)
       sigma_max = s rho sqrt(g_max^2 + (g_max - d)^2)   (the high device at g_max)

   and the network parameterises ``sigma = sigma_min + (sigma_max - sigma_min) sigmoid(r)``
   (mu and s detached), so every trained sigma is realisable.
3. **The devices** (:class:`DeviceSpread`): where rho comes from.  In the Stanford-PKU
   compact model (Jiang et al., IEEE TED 2016; :mod:`memsim.devices.rram`) the read
   conductance is ``G = I0 exp(-gap/g0) sinh(V/V0) / V``, so a Gaussian spread of the gap
   left by one programming event, ``sigma_gap``, makes G log-normal with
   ``sigma_ln G = sigma_gap / g0`` (g0 = 0.25 nm).  memsim's :class:`~memsim.devices.Variability`
   (the rram8 / rram64 presets') has a cycle-to-cycle spread ``sigma_c2c = 2 %`` of G, i.e.
   ``sigma_gap = 5 pm``, a device-to-device factor (3 %, fixed per device), read noise (1 %
   per read) and a power-law drift exponent per device (0.005 +- 0.002).  Two sampling
   mechanisms (Clémençon et al.): ``"program"`` (cycle-to-cycle: every sample is a fresh
   programming of the pair, log-normal with ``sigma_gap / g0``; the median is set to
   ``G exp(-sigma^2 / 2)`` so the mean is G, and ``rho = sqrt(exp(sigma^2) - 1)``) or
   ``"read"`` (read-to-read noise on one programmed pair, Gaussian, ``rho = sigma_read``).
4. **Inference on tiles** (:class:`BayesianCrossbar`): the posterior means and spreads
   mapped onto pairs of every tile of an :class:`~memsim.nn.AnalogModel` (any circuit model:
   IR drop included, and the periphery), K stochastic passes, predictive mean, entropy and
   mutual information (:func:`uncertainty`); drift acts on every device of the
   distributions (``G(t) = G(0) (t / t0)^-nu``, nu per device), so mean and spread of each
   weight shrink by a random factor per device and the realised distributions leave their
   targets (:meth:`BayesianCrossbar.weight_moments`).

Metrics (:func:`ece` with 15 bins, :func:`nll`, :func:`auroc`) and the array energy per
sample (:func:`array_energy`, from the solver's node voltages: the power the row drivers
deliver to the array, wires and cells, times the read time; periphery not included).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..circuit.result import driver_power
from ..devices.presets import Variability
from ..devices.rram import DEFAULT_PARAMS
from ..io import LIMITS, check_finite, read_bytes, write_atomic
from ..solver import solve
from . import models, streams
from .analog import ConvGeometry, replace_layers
from .mapping import TileMap, crossbar_matrix, crossbar_weight, differential
from .noise import NoNoise, check_time
from .training import recipe_for, seeded

SAMPLING = ("program", "read")
#: Read time of one MVM, s (the array-size studies' default), for :func:`array_energy`.
READ_TIME = 10e-9


# ---------------------------------------------------------------------------------------------
# devices and the technology bound
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceSpread:
    """How a device pair samples a weight: ``sampling`` "program" (cycle-to-cycle) or "read".

    ``variability``: the device figures (default: the rram presets' :class:`Variability`);
    ``sigma_gap_m``: Gaussian gap spread of one programming event, m (default: the
    variability's ``sigma_c2c x g0``, the compact model's g0 = 0.25 nm: 5 pm for 2 %).
    """
    sampling: str = "program"
    variability: Variability = field(default_factory=Variability)
    sigma_gap_m: float | None = None

    def __post_init__(self):
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {SAMPLING}, got {self.sampling!r}")
        if not isinstance(self.variability, Variability):
            raise ValueError("variability must be a memsim.devices.Variability")
        if self.sigma_gap_m is not None and not (isinstance(self.sigma_gap_m, (int, float))
                                                 and math.isfinite(self.sigma_gap_m) and 0 < self.sigma_gap_m < 1e-9):
            raise ValueError(f"sigma_gap_m must be a gap spread in (0, 1e-9) m, got {self.sigma_gap_m!r}")

    @property
    def sigma_ln(self) -> float:
        """Log-normal sigma of one programming event: sigma_gap / g0."""
        gap = self.variability.sigma_c2c * DEFAULT_PARAMS.g0 if self.sigma_gap_m is None else self.sigma_gap_m
        return gap / DEFAULT_PARAMS.g0

    @property
    def rel_std(self) -> float:
        """rho: standard deviation of one sample of a device, relative to its mean."""
        if self.sampling == "read":
            return self.variability.sigma_read
        return math.sqrt(math.expm1(self.sigma_ln ** 2))


@dataclass(frozen=True)
class Technology:
    """The (mu, sigma) a differential pair in [g_min, g_max] (S) with relative sample spread
    ``rel_std`` can realise; see the module docstring for the equations."""
    g_min: float
    g_max: float
    rel_std: float

    def __post_init__(self):
        if not (0 <= self.g_min < self.g_max and math.isfinite(self.g_max)):
            raise ValueError(f"need 0 <= g_min < g_max (S), got {self.g_min!r}, {self.g_max!r}")
        if not (isinstance(self.rel_std, (int, float)) and math.isfinite(self.rel_std) and self.rel_std > 0):
            raise ValueError(f"rel_std must be > 0 (the devices' relative sample spread), got {self.rel_std!r}")

    @classmethod
    def of(cls, config, spread: DeviceSpread = DeviceSpread()) -> "Technology":
        """From a :class:`~memsim.nn.HardwareConfig`'s conductance range and a spread."""
        cond = config.cond
        return cls(cond.g_min, cond.g_max, spread.rel_std)

    @property
    def span(self) -> float:
        return self.g_max - self.g_min

    def scale(self, mu_matrix: torch.Tensor) -> torch.Tensor:
        """Digital scale per output (weight units per S) of ``mu_matrix`` (inputs, outputs)."""
        w_max = mu_matrix.detach().abs().amax(dim=0)
        return torch.where(w_max > 0, w_max / self.span, torch.ones_like(w_max))

    def sigma_bounds(self, mu_abs: torch.Tensor, scale: torch.Tensor) -> tuple:
        """(sigma_min, sigma_max) in weight units for |mu| and the scale (broadcast)."""
        d = torch.clamp(mu_abs / scale, max=self.span)
        lo = scale * self.rel_std * torch.sqrt((self.g_min + d) ** 2 + self.g_min ** 2)
        hi = scale * self.rel_std * torch.sqrt(self.g_max ** 2 + (self.g_max - d) ** 2)
        return lo, hi

    def pair(self, mu: torch.Tensor, sigma: torch.Tensor, scale: torch.Tensor) -> tuple:
        """Mean conductances (G+, G-) (S) of the pairs realising ``mu``, ``sigma`` (weight units)
        at ``scale``: G_high - G_low = |mu| / s and rho^2 (G_high^2 + G_low^2) = (sigma / s)^2,
        clipped to the range (sigma outside :meth:`sigma_bounds` gets the nearest bound)."""
        d = torch.clamp(mu.abs() / scale, max=self.span)
        q = (sigma / (scale * self.rel_std)) ** 2
        low = 0.5 * (torch.sqrt(torch.clamp(2 * q - d * d, min=0.0)) - d)
        low = torch.minimum(torch.clamp(low, min=self.g_min), self.g_max - d)
        high = low + d
        positive = mu > 0
        return torch.where(positive, high, low), torch.where(positive, low, high)


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------
def kl_normal(mu: torch.Tensor, sigma: torch.Tensor, prior_sigma: float) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, prior_sigma^2)) summed over all elements (closed form)."""
    ratio = (sigma / prior_sigma) ** 2
    return 0.5 * torch.sum(ratio + (mu / prior_sigma) ** 2 - 1.0 - torch.log(ratio))


class BayesLayer(nn.Module):
    """Shared part of the Bayesian layers: ``weight`` (the means), ``rho`` (the spread
    parameter), a deterministic ``bias``, the technology bound and the prior.

    Forward modes: training: local reparameterisation; eval: the weights set by
    :meth:`draw` (one sample per forward pass) or the means when none is set.
    """
    groups = 1

    def _setup(self, source, technology, prior_sigma, init):
        self.weight = nn.Parameter(source.weight.detach().clone())
        self.bias = None if source.bias is None else nn.Parameter(source.bias.detach().clone())
        self.technology = technology
        self.prior_sigma = float(prior_sigma)
        self.rho = nn.Parameter(torch.full_like(self.weight, float(init)))
        self.sampled = None

    def matrix(self, weight=None) -> torch.Tensor:
        """A weight tensor as a crossbar sees it, (inputs, outputs) (block diagonal for a
        grouped convolution, as :class:`~memsim.nn.analog.AnalogConv` maps it)."""
        return crossbar_matrix(self.weight if weight is None else weight, self.groups)

    def sigma(self) -> torch.Tensor:
        """Posterior standard deviation per weight (shape of ``weight``)."""
        if self.technology is None:
            return F.softplus(self.rho) + 1e-8
        mu = self.matrix().detach()
        lo, hi = self.technology.sigma_bounds(mu.abs(), self.technology.scale(mu))
        lo, hi = (crossbar_weight(m, self.weight.shape, self.groups) for m in (lo, hi))
        return lo + (hi - lo) * torch.sigmoid(self.rho)

    def kl(self) -> torch.Tensor:
        return kl_normal(self.weight, self.sigma(), self.prior_sigma)

    def draw(self, generator) -> None:
        """Fix one weight sample N(mu, sigma^2) for the next eval forwards (None: the means)."""
        if generator is None:
            self.sampled = None
            return
        with torch.no_grad():
            noise = torch.randn(self.weight.shape, generator=generator, dtype=self.weight.dtype)
            self.sampled = self.weight + self.sigma() * noise

    def forward(self, x):
        if self.training:
            mean = self._op(x, self.weight, self.bias)
            var = self._op(x * x, self.sigma() ** 2, None)
            return mean + torch.sqrt(var + 1e-16) * torch.randn_like(mean)
        return self._op(x, self.weight if self.sampled is None else self.sampled, self.bias)


class BayesLinear(BayesLayer):
    """``nn.Linear`` with a mean-field Gaussian weight posterior."""
    def __init__(self, source: nn.Linear, technology=None, prior_sigma=0.1, init=-3.0):
        super().__init__()
        self._setup(source, technology, prior_sigma, init)
        self.in_features, self.out_features = source.in_features, source.out_features

    def _op(self, x, w, b):
        return F.linear(x, w, b)

    def plain(self) -> nn.Linear:
        return nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)


class BayesConv(BayesLayer):
    """A torch convolution (``nn.Conv1d`` / ``nn.Conv2d``) with a mean-field Gaussian weight
    posterior: stride, dilation, groups, padding and padding mode as the source layer."""
    _plain_type = nn.Conv2d

    def __init__(self, source, technology=None, prior_sigma=0.1, init=-3.0):
        super().__init__()
        self._setup(source, technology, prior_sigma, init)
        self.geometry = ConvGeometry.of(source)
        self.groups = self.geometry.groups
        self.in_channels, self.out_channels = source.in_channels, source.out_channels
        self.kernel_size, self.stride, self.padding = source.kernel_size, source.stride, source.padding
        self.dilation, self.padding_mode = source.dilation, source.padding_mode

    def _op(self, x, w, b):
        return self.geometry.conv(x, w, b)

    def plain(self):
        return self._plain_type(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                                self.dilation, self.groups, self.bias is not None, self.padding_mode)


class BayesConv1d(BayesConv):
    """``nn.Conv1d`` with a mean-field Gaussian weight posterior."""
    _plain_type = nn.Conv1d


class BayesConv2d(BayesConv):
    """``nn.Conv2d`` with a mean-field Gaussian weight posterior."""


#: torch layer type -> its Bayesian layer (first match wins).
_BAYES = ((nn.Linear, BayesLinear), (nn.Conv1d, BayesConv1d), (nn.Conv2d, BayesConv2d))
#: Layers with weights that have no Bayesian form here: refused rather than left deterministic.
_REFUSED = (nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Bilinear, nn.RNNBase,
            nn.RNNCellBase, nn.MultiheadAttention, nn.modules.lazy.LazyModuleMixin)


class BayesianNetwork(nn.Module):
    """A torch model whose Linear and convolution layers are Bayesian (see :func:`bayesian`)."""
    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)

    def layers(self) -> list:
        return [(n, m) for n, m in self.module.named_modules() if isinstance(m, BayesLayer)]

    def kl(self) -> torch.Tensor:
        return sum(layer.kl() for _, layer in self.layers())

    def mean_model(self) -> nn.Module:
        """A plain torch model with the posterior means as weights."""
        def plain(name, layer):
            if not isinstance(layer, BayesLayer):
                return None
            out = layer.plain().to(dtype=layer.weight.dtype)
            with torch.no_grad():
                out.weight.copy_(layer.weight)
                if layer.bias is not None:
                    out.bias.copy_(layer.bias)
            return out
        return replace_layers(copy.deepcopy(self.module), plain).eval()

    def sample_logits(self, x, samples: int, seed: int = 0, batch_size: int = 2000) -> torch.Tensor:
        """Logits (K, N, classes) of K weight samples (one per pass, shared by all inputs)."""
        samples = _check_samples(samples)
        gen = torch.Generator().manual_seed(int(seed))
        dtype = next(self.parameters()).dtype
        x = torch.tensor(np.array(x), dtype=dtype)
        self.eval()
        out = []
        try:
            with torch.no_grad():
                for _ in range(samples):
                    for _, layer in self.layers():
                        layer.draw(gen)
                    out.append(torch.cat([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]))
        finally:
            for _, layer in self.layers():
                layer.draw(None)
        return torch.stack(out)


def bayesian(model: nn.Module, technology: Technology | None = None, *, prior_sigma: float = 1.0,
             init: float = -3.0) -> BayesianNetwork:
    """A Bayesian copy of ``model`` (the root too, when it is such a layer): each
    ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` gets a mean-field
    Gaussian posterior with means from the model's weights and the spread parameter ``init``
    (sigma = sigmoid(init) of the way from sigma_min to sigma_max with a ``technology``, else
    softplus(init)); ``prior_sigma`` is the prior N(0, prior_sigma^2)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not (isinstance(prior_sigma, (int, float)) and math.isfinite(prior_sigma) and prior_sigma > 0):
        raise ValueError(f"prior_sigma must be > 0, got {prior_sigma!r}")
    if technology is not None and not isinstance(technology, Technology):
        raise ValueError(f"technology must be a memsim.nn.bayes.Technology or None, got {type(technology).__name__}")
    found = []

    def bayes_layer(name, layer):
        if isinstance(layer, _REFUSED):
            raise ValueError(f"layer {name!r} ({type(layer).__name__}) has no Bayesian form in memsim; "
                             "supported: Linear, Conv1d, Conv2d")
        for kind, factory in _BAYES:
            if isinstance(layer, kind):
                found.append(name)
                return factory(layer, technology, prior_sigma, init)
        return None

    module = replace_layers(copy.deepcopy(model), bayes_layer)
    if not found:
        raise ValueError("model has no Linear or Conv2d layer (nor Conv1d) to make Bayesian")
    return BayesianNetwork(module)


def train_bayesian(net: BayesianNetwork, dataset, *, epochs: int = 30, batch_size: int = 64, lr: float = 2e-3,
                   seed: int = 0, kl_weight: float = 1.0, progress: bool = False) -> BayesianNetwork:
    """Bayes by backprop with the local reparameterisation trick: Adam, cosine-decayed
    learning rate, loss = mean NLL + kl_weight x KL / N_train; in place, returns ``net``."""
    from tqdm import tqdm

    from .training import _check_positive_int

    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    x = torch.tensor(np.asarray(dataset.x_train), dtype=next(net.parameters()).dtype)
    y = torch.tensor(np.asarray(dataset.y_train), dtype=torch.int64)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * -(-len(y) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    order_rng = np.random.default_rng(seed)
    net.train()
    with torch.random.fork_rng(devices=[]), tqdm(total=steps, desc="training (Bayes)", unit="batch",
                                                 disable=not progress, leave=False) as bar:
        torch.manual_seed(int(seed))  # the local reparameterisation draws
        for _ in range(epochs):
            order = torch.as_tensor(order_rng.permutation(len(y)))
            for start in range(0, len(y), batch_size):
                idx = order[start:start + batch_size]
                if len(idx) < 2:
                    schedule.step()
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(x[idx]), y[idx]) + kl_weight * net.kl() / len(y)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(1)
    return net.eval()


def trained_bayesian(name: str, technology: Technology | None, seed: int = 0, dataset=None, *, cache_dir=None,
                     progress: bool = False, prior_sigma: float = 1.0, **overrides) -> tuple:
    """A built-in model (:data:`memsim.nn.models.MODELS`) made Bayesian and trained with its
    recipe (``overrides``: epochs, batch_size, lr) and ``seed``; cached as a state dict in
    ``cache_dir`` (keyed by the technology bound).  Returns ``(net, dataset)``."""
    import io
    from pathlib import Path


    dataset, recipe = recipe_for(name, dataset, overrides)
    with seeded(seed):
        net = bayesian(models.build(name), technology, prior_sigma=prior_sigma)
    path = None
    if cache_dir is not None:
        tech = "float" if technology is None else f"{technology.g_min:.4g}-{technology.g_max:.4g}-{technology.rel_std:.4g}"
        key = f"{name}-bayes-{tech}-p{prior_sigma:g}-e{recipe['epochs']}-n{len(dataset.y_train)}-seed{seed}.pt"
        path = Path(cache_dir) / key
        if path.exists():
            raw = read_bytes(path, "model file", LIMITS["model"])
            try:
                state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
                check_finite(dict(state), path, ValueError)
                net.load_state_dict(state)
            except ValueError:
                raise
            except Exception as err:  # noqa: BLE001 - torch's unpickler and load_state_dict raise many types
                raise ValueError(f"{path}: not a cached Bayesian {name} of this memsim ({type(err).__name__}); "
                                 "delete it to train again") from None
            return net.eval(), dataset
    train_bayesian(net, dataset, seed=seed, progress=progress, **recipe)
    if path is not None:
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu().clone() for k, v in net.state_dict().items()}, buffer)
        write_atomic(path, buffer.getvalue())
    return net, dataset


def _check_samples(samples) -> int:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"the number of samples K must be an integer >= 1, got {samples!r}")
    return int(samples)


# ---------------------------------------------------------------------------------------------
# uncertainty and calibration metrics
# ---------------------------------------------------------------------------------------------
def _entropy(p: np.ndarray) -> np.ndarray:
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def uncertainty(probs: np.ndarray) -> dict:
    """Predictive mean (N, C), entropy (N,) and mutual information (N,) of per-sample
    probabilities ``probs`` (K, N, C) (nats): MI = H(mean_k p_k) - mean_k H(p_k)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3:
        raise ValueError(f"probs must be (samples, inputs, classes), got shape {probs.shape}")
    mean = probs.mean(axis=0)
    entropy = _entropy(mean)
    return {"mean": mean, "entropy": entropy, "mutual_information": np.maximum(entropy - _entropy(probs).mean(axis=0),
                                                                               0.0)}


def ece(probs: np.ndarray, labels, bins: int = 15) -> float:
    """Expected calibration error: equal-width confidence bins (lo, hi] on [0, 1], the
    bin-weighted |accuracy - mean confidence| (Guo et al., ICML 2017), of (N, C) probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total / len(labels))


def nll(probs: np.ndarray, labels) -> float:
    """Mean negative log-likelihood (nats) of (N, C) predictive probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(probs)), np.asarray(labels)], 1e-300))))


def auroc(score_in, score_out) -> float:
    """Area under the ROC curve for telling ``score_out`` (out-of-distribution, the positive
    class) from ``score_in`` by a larger score: the Mann-Whitney U statistic over n_in n_out,
    ties counted one half (mid-ranks)."""
    from scipy.stats import rankdata

    score_in, score_out = np.ravel(score_in), np.ravel(score_out)
    if not len(score_in) or not len(score_out):
        raise ValueError("auroc needs at least one in- and one out-of-distribution score")
    ranks = rankdata(np.concatenate([score_in, score_out]))
    u = ranks[len(score_in):].sum() - len(score_out) * (len(score_out) + 1) / 2
    return float(u / (len(score_in) * len(score_out)))


def summarise(logits: torch.Tensor, labels, ood_logits: dict | None = None) -> dict:
    """Accuracy, NLL, ECE (15 bins), mean entropy and MI of (K, N, C) logits, and the OOD
    AUROC (score: predictive entropy) for each {name: (K, M, C) logits}."""
    if logits.ndim == 2:
        logits = logits[None]
    u = uncertainty(torch.softmax(logits.double(), dim=-1).numpy())
    labels = np.asarray(labels)
    row = {"accuracy": float(np.mean(u["mean"].argmax(axis=1) == labels)), "nll": nll(u["mean"], labels),
           "ece": ece(u["mean"], labels), "entropy": float(u["entropy"].mean()),
           "mi": float(u["mutual_information"].mean())}
    for name, other in (ood_logits or {}).items():
        if other.ndim == 2:
            other = other[None]
        v = uncertainty(torch.softmax(other.double(), dim=-1).numpy())
        row[f"auroc_{name}"] = auroc(u["entropy"], v["entropy"])
        if logits.shape[0] > 1:
            row[f"auroc_mi_{name}"] = auroc(u["mutual_information"], v["mutual_information"])
    return row


# ---------------------------------------------------------------------------------------------
# the crossbar
# ---------------------------------------------------------------------------------------------
class BayesianCrossbar:
    """A :class:`BayesianNetwork` on tiles: each weight a pair of devices whose mean
    conductances realise (mu, sigma) (:meth:`Technology.pair`), sampled by programming or
    reading (:class:`DeviceSpread`).

    The tiles are those of :func:`memsim.nn.convert` for ``config`` (its circuit model, IR
    drop included, and periphery; its noise model is not used: the devices here are
    ``spread.variability``'s).  Per device, drawn once from ``seed``: the device-to-device
    factor ``1 + sigma_d2d xi`` and the drift exponent.  Sample k (``"program"``) is the
    pair programmed anew (its own stream per (seed, k), so every time sees the same
    programming draws); with ``"read"`` the pair is programmed once (one cycle-to-cycle draw)
    and every read draws the tile's read noise.  Drift: every sample read ``t`` seconds after
    its programming, ``G(t) = G(0) max(t, t0)/t0^-nu``.  Biases are digital, the means.
    """
    def __init__(self, net: BayesianNetwork, config, *, spread: DeviceSpread = DeviceSpread(), seed: int = 0,
                 calibration_x=None):
        from .analog import convert

        if not isinstance(net, BayesianNetwork):
            raise ValueError(f"net must be a memsim.nn.bayes.BayesianNetwork, got {type(net).__name__}")
        self.net, self.spread, self.seed = net, spread, int(seed)
        trained = [layer.technology for _, layer in net.layers() if layer.technology is not None]
        # the bound the network was trained with, so its sigmas are realisable; else the config's
        self.technology = trained[0] if trained else Technology.of(config, spread)
        self.analog = convert(net.mean_model(), config.replace(noise="none"), seed=seed, program=False)
        var = spread.variability
        gen = streams.generator(self.analog.device, self.seed, "bayes-programming")
        pairs = list(zip(net.layers(), self.analog.analog_layers()))
        names = ([n for n, _ in net.layers()], [n for n, _ in self.analog.analog_layers()])
        if names[0] != names[1]:
            raise ValueError(f"the network's Bayesian layers {names[0]} are not the layers on tiles {names[1]}: "
                             "every layer with weights must be Bayesian (memsim.nn.bayes.bayesian)")
        dtype = config.torch_dtype
        self.devices = []  # per tile, aligned with analog.tiles(): (device-to-device factor, drift exponent)
        for (_, blayer), (_, alayer) in pairs:
            alayer.program(NoNoise(), gen)  # tiles and slices; targets replaced below
            with torch.no_grad():
                mu = blayer.matrix().detach().to(dtype)
                sigma = blayer.matrix(blayer.sigma()).detach().to(dtype)
                scale = self.technology.scale(mu)
            for tile in alayer.tiles:
                g_plus, g_minus = self.technology.pair(mu[tile.rows, tile.cols], sigma[tile.rows, tile.cols],
                                                       scale[tile.cols])
                g = torch.stack((g_plus, g_minus), dim=2).reshape(g_plus.shape[0], -1)
                tile.remap(TileMap(tile.rows, tile.cols, g, scale[tile.cols].clone()))
                tile.read_sigma = var.sigma_read
                d2d = torch.clamp(1.0 + var.sigma_d2d * torch.randn(g.shape, generator=gen, dtype=dtype), min=0.0)
                nu = var.drift_nu + var.drift_nu_std * torch.randn(g.shape, generator=gen, dtype=dtype)
                self.devices.append((d2d, nu))
                tile.cells = None  # time is set here (set_sample), not by AnalogModel.set_time
        self.analog._calibrate_adc(None if calibration_x is None else self.analog.as_input(calibration_x))
        self.t_seconds = 0.0

    def _programmed(self, tile, d2d, gen) -> torch.Tensor:
        """Conductances right after one programming (mean: target x device factor)."""
        s = self.spread.sigma_ln
        zeta = torch.randn(tile.g_target.shape, generator=gen, dtype=tile.g_target.dtype)
        return tile.g_target * d2d * torch.exp(s * zeta - 0.5 * s * s)

    def set_sample(self, k: int, t_seconds: float = 0.0) -> "BayesianCrossbar":
        """Put sample ``k`` (a programming of every pair) on the tiles, ``t_seconds`` after it."""
        t = check_time(t_seconds)
        var = self.spread.variability
        ratio = max(t, var.drift_t0) / var.drift_t0
        word = k if self.spread.sampling == "program" else 0
        gen = streams.generator(self.analog.device, self.seed, "bayes-sample", word)
        for tile, (d2d, nu) in zip(self.analog.tiles(), self.devices):
            g = self._programmed(tile, d2d, gen)
            if ratio > 1:
                g = g * ratio ** (-nu)
            tile.set_conductances(g)
        self.t_seconds = t
        return self

    def set_mean(self) -> "BayesianCrossbar":
        """Every device at its mean right after programming (no sample): the state to fit a
        digital correction on (e.g. :class:`memsim.compensate.NetworkColumnCorrection`)."""
        for tile, (d2d, _) in zip(self.analog.tiles(), self.devices):
            tile.set_conductances(tile.g_target * d2d)
        self.t_seconds = 0.0
        return self

    def sample_logits(self, x, samples: int, t_seconds: float = 0.0, *, progress: bool = False) -> torch.Tensor:
        """Logits (K, N, classes): K passes of ``x`` through the tiles, ``t_seconds`` after
        programming; read noise restarts per pass from (seed, k)."""
        samples = _check_samples(samples)
        out = []
        for k in range(samples):
            self.set_sample(k, t_seconds)
            self.analog.reseed_reads(streams.seed_for(self.seed, "bayes-read", k))
            out.append(self.analog.logits(x, progress=progress))
        return torch.stack(out)

    def weight_moments(self, t_seconds: float = 0.0, samples: int = 200) -> list:
        """Per layer, the realised mean and standard deviation (inputs, outputs) of every weight
        over ``samples`` programmings at ``t_seconds`` (ideal-wire weights of the devices), and
        the targets: [(name, mean, std, mu, sigma)]."""
        out = []
        for (name, blayer), (_, alayer) in zip(self.net.layers(), self.analog.analog_layers()):
            draws = []
            for k in range(samples):
                self.set_sample(k, t_seconds)
                w = torch.zeros(alayer.matrix().shape, dtype=torch.float64)
                for tile in alayer.tiles:
                    w[tile.rows, tile.cols] = (differential(tile.g) * tile.scale).double()
                draws.append(w)
            draws = torch.stack(draws)
            if self.spread.sampling == "read":  # one programming; the spread is the read noise
                std = torch.zeros_like(draws[0])
                for tile in alayer.tiles:
                    g = tile.g.double()
                    std[tile.rows, tile.cols] = torch.sqrt(g[:, 0::2] ** 2 + g[:, 1::2] ** 2) * \
                        self.spread.rel_std * tile.scale.double()
                mean = draws[0]
            else:
                mean, std = draws.mean(0), draws.std(0)
            out.append((name, mean, std, blayer.matrix().detach().double(),
                        blayer.matrix(blayer.sigma()).detach().double()))
        return out


# ---------------------------------------------------------------------------------------------
# array energy
# ---------------------------------------------------------------------------------------------
def array_energy(analog, x, *, read_time: float = READ_TIME) -> float:
    """Energy (J) the row drivers deliver to the arrays per input of ``x`` for one pass of
    ``analog`` (an :class:`~memsim.nn.AnalogModel` at its present conductances): per tile and
    read, ``sum_i v_i i_i`` from the Numba solver's node voltages
    (:func:`memsim.circuit.result.driver_power`: cells and wires) times ``read_time``.  The
    array only: no DAC, ADC, drivers' own losses or digital work."""
    if not (isinstance(read_time, (int, float)) and read_time > 0):
        raise ValueError(f"read_time must be > 0 s, got {read_time!r}")
    x = analog.as_input(x)
    total = 0.0
    for tile, x_tile in zip(analog.tiles(), analog.tile_inputs(x)):
        xb = tile.circuit.crossbar()
        _, reads = tile.periphery.drive(x_tile)
        for v, _ in reads:
            v64 = v.detach().cpu().double().numpy()
            for start in range(0, len(v64), 2000):
                chunk = v64[start:start + 2000]
                result = solve(xb, chunk, voltages=xb.r_row > 0, cells=xb.r_row == 0)
                total += float(np.sum(driver_power(xb, chunk, result))) * read_time
    return total / len(x)
