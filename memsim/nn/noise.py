"""Programming noise, drift and read noise of the cells on torch tensors: one small class per
device family.

Every model has the same three members (the aihwkit split, without its configuration tree):

- ``program(g_target, generator) -> ProgrammedCells``: conductances right after programming
  and the per-device parameters (drift exponents, ...) drawn once, when the cell is written;
- ``at_time(cells, t, generator) -> g``: conductances (S) ``t`` seconds after programming;
- ``read_sigma``: relative Gaussian noise of a cell current on every read (0 if none).

All conductances are in siemens, tensors of any shape, on any device; randomness only
through the ``torch.Generator`` passed in.  Every operation is differentiable in
``g_target``, so the same models inject noise in hardware-aware training.  Models:
:class:`NoNoise`, :class:`RRAMNoiseModel` (log-normal power-law drift on memsim's
:class:`~memsim.devices.Variability` figures), :class:`PCMLikeNoiseModel` (the equations of
aihwkit's PCMLikeNoiseModel), :class:`ReRamCMONoiseModel` (the equations of aihwkit's
ReRamCMONoiseModel, one device per weight).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..devices.presets import Variability

MODELS = ("none", "rram", "pcm", "reram")


@dataclass(frozen=True, eq=False)
class ProgrammedCells:
    """Cells after programming: ``g_target`` and ``g_prog`` (S) and per-device ``params``."""

    g_target: torch.Tensor
    g_prog: torch.Tensor
    params: dict = field(default_factory=dict)


def check_time(t_seconds) -> float:
    """``t_seconds`` as a float >= 0, or one clear ValueError."""
    if isinstance(t_seconds, bool) or not isinstance(t_seconds, (int, float)) \
            and not (hasattr(t_seconds, "dtype") and getattr(t_seconds, "ndim", 1) == 0):
        raise ValueError(f"time since programming must be a number of seconds >= 0, got {t_seconds!r}")
    value = float(t_seconds)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"time since programming must be a number of seconds >= 0, got {t_seconds!r}")
    return value


def _normal(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


@dataclass(frozen=True)
class NoNoise:
    """Ideal cells: programmed exactly, no drift, no read noise."""

    name: str = "none"
    read_sigma: float = 0.0

    def program(self, g_target, generator) -> ProgrammedCells:
        return ProgrammedCells(g_target, g_target)

    def at_time(self, cells: ProgrammedCells, t_seconds: float, generator) -> torch.Tensor:
        check_time(t_seconds)
        return cells.g_prog


@dataclass(frozen=True)
class RRAMNoiseModel:
    """RRAM programming spread, read noise and log-normal (power-law) drift.

    The statistical model of the VeRA+ paper (Sec. II-A, after aihwkit's RRAM model): a
    log-normal conductance whose median falls as a power of the time and whose spread grows
    with log t, and a multiplicative Gaussian device-to-device term::

        programming  G_prog = G_target (1 + sigma_d2d xi) exp(sigma_c2c zeta)
        drift        G(t)   = G_prog (t / t0)^(-nu),  nu ~ N(nu_mean, nu_std)   per device
        read         I = I_cell (1 + sigma_read eta)                          on every read

    with xi, zeta, eta standard normal (xi and nu fixed per device when it is programmed;
    G(t) = G_prog for t <= t0).  The paper gives the form but not its coefficients, so the
    figures default to memsim's :class:`~memsim.devices.Variability` (the device presets'
    own: sigma_d2d 3 %, sigma_c2c 2 %, read 1 %, nu 0.005 +- 0.002, t0 = 1 s).  Conductances
    stay within [g_floor, g_ceiling] (S).
    """

    variability: Variability = field(default_factory=Variability)
    g_floor: float = 0.0
    g_ceiling: float = math.inf
    name: str = "rram"

    @property
    def read_sigma(self) -> float:
        return self.variability.sigma_read

    def program(self, g_target, generator) -> ProgrammedCells:
        var = self.variability
        factor = var.programming_factor(_normal(g_target, generator), _normal(g_target, generator))
        g_prog = torch.clamp(g_target * factor, self.g_floor, self.g_ceiling)
        nu = var.drift_nu + var.drift_nu_std * _normal(g_target, generator)
        return ProgrammedCells(g_target, g_prog, {"nu": nu.detach()})

    def at_time(self, cells: ProgrammedCells, t_seconds: float, generator) -> torch.Tensor:
        ratio = self.variability.drift_ratio(check_time(t_seconds))
        if ratio == 1.0:
            return cells.g_prog
        return torch.clamp(cells.g_prog * ratio ** (-cells.params["nu"]), self.g_floor, self.g_ceiling)


@dataclass(frozen=True)
class PCMLikeNoiseModel:
    """PCM statistical model with the equations of aihwkit's ``PCMLikeNoiseModel``.

    Source: aihwkit (IBM), ``aihwkit/inference/noise/pcm.py``, fitted on a million-device PCM
    array (Nandakumar et al., ICECS 2019; Joshi et al., Nat. Commun. 11, 2473, 2020).  With
    conductances in uS and g_max the mapping's largest conductance (default 25 uS):

    programming  G_prog = G_T + s_prog N(0, 1), clipped at 0, with
                 s_prog = (c0 + c1 G_T/g_max + c2 (G_T/g_max)^2) g_max / 25 uS,
                 (c0, c1, c2) = (0.26348, 1.9650, -1.1731) uS;
    drift        nu = |mu_nu + s_nu N(0, 1)| per device, from G_T/g_max = g_r (clipped >= 1e-7):
                 mu_nu = clip(-0.0155 ln g_r + 0.0244, 0.049, 0.1),
                 s_nu  = clip(-0.0125 ln g_r - 0.0059, 0.008, 0.045);
                 G_drift = G_prog ((t + t0) / t0)^(-nu),  t0 = 20 s, t counted from the end of
                 programming (aihwkit's t_inference);
    1/f read     Q_s = min(0.0088 / max((G_prog/g_max)^0.65, 1e-3), 0.2),
                 G(t) = G_drift + |G_drift| Q_s sqrt(ln((t + t0 + t_read) / (2 t_read))) N(0, 1),
                 t_read = 250 ns, clipped at 0; drawn anew for every inference time
                 (aihwkit's ``drift_analog_weights``), none per individual read.
    """

    g_max: float = 25e-6
    prog_coeff: tuple = (0.26348, 1.9650, -1.1731)
    prog_coeff_g_max_reference_us: float = 25.0
    t0: float = 20.0
    t_read: float = 250e-9
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    name: str = "pcm"
    read_sigma: float = 0.0

    def __post_init__(self):
        if not (self.g_max > 0 and math.isfinite(self.g_max)):
            raise ValueError(f"g_max must be > 0 S, got {self.g_max!r}")

    def _sigma_prog_us(self, g_target_us):
        g_max_us = self.g_max * 1e6
        ratio = g_target_us / g_max_us
        c0, c1, c2 = self.prog_coeff
        return (c0 + c1 * ratio + c2 * ratio * ratio) * g_max_us / self.prog_coeff_g_max_reference_us

    def drift_coefficients(self, g_target, generator) -> torch.Tensor:
        g_rel = torch.clamp(g_target.abs() / self.g_max, min=1e-7)
        mu = torch.clamp(-0.0155 * torch.log(g_rel) + 0.0244, 0.049, 0.1)
        sig = torch.clamp(-0.0125 * torch.log(g_rel) - 0.0059, 0.008, 0.045)
        return (mu + sig * _normal(g_rel, generator)).abs() * self.drift_scale

    def program(self, g_target, generator) -> ProgrammedCells:
        g_us = g_target * 1e6
        noise = _normal(g_us, generator)
        g_prog_us = g_us + self.prog_noise_scale * self._sigma_prog_us(g_us) * noise
        g_prog = torch.clamp(g_prog_us, min=0.0) * 1e-6
        return ProgrammedCells(g_target, g_prog, {"nu": self.drift_coefficients(g_target, generator)})


    def at_time(self, cells: ProgrammedCells, t_seconds: float, generator) -> torch.Tensor:
        t = check_time(t_seconds) + self.t0
        g_prog = cells.g_prog
        g_drift = g_prog * (t / self.t0) ** (-cells.params["nu"]) if t > self.t0 else g_prog
        q_s = torch.clamp(0.0088 / torch.clamp((g_prog.abs() / self.g_max) ** 0.65, min=1e-3), max=0.2)
        sigma = q_s * math.sqrt(math.log((t + self.t_read) / (2 * self.t_read)))
        g = g_drift + g_drift.abs() * self.read_noise_scale * sigma * _normal(g_prog, generator)
        return torch.clamp(g, min=0.0)


#: aihwkit 1.2.0 ``ReRamCMONoiseModel`` programming-noise fits, uS: acceptance range (%) ->
#: (c0, c1) of sigma = c0 + c1 G_T.
RERAM_CMO_PROG = ((0.2, (0.00081107, 0.00106879)), (2.0, (0.0112185391, 0.01129027418)))


@dataclass(frozen=True)
class ReRamCMONoiseModel:
    """CMO/HfOx ReRAM with the equations and defaults of aihwkit 1.2.0's ``ReRamCMONoiseModel``.

    Source: aihwkit (IBM), ``aihwkit/inference/noise/reram.py``, fitted on conductive-metal-
    oxide/HfOx ReRAM (Falcone et al., Adv. Funct. Mater. 2025); the drift model of the VeRA+
    paper (VeRA+: Vector-Based Lightweight Digital Compensation for Drift-Resilient RRAM
    In-Memory Computing).  Conductances G in uS, t in s since programming; one device per
    weight on [g_min, g_max] = [9.0, 88.2] uS (:func:`memsim.nn.mapping.single_device`):

    programming  G_prog = G_T + s_prog N(0, 1),  s_prog = c0 + c1 G_T  (not clipped), with
                 (c0, c1) = (0.00081107, 0.00106879) for a 0.2 % acceptance range of the
                 program-and-verify loop, (0.0112185391, 0.01129027418) for 2 %;
    decay        G_drift = G_prog - 0.08900206 ln t + (0.04201137 ln t + 0.41183342) N(0, 1)
                 (the same for every level: an additive shift);
    read         G(t) = G_drift + 0.0277316483 log10(G_drift) sqrt(ln((t + 1e-6) / 2e-6)) N(0, 1),
                 clipped to [g_min, g_max]; at t = 0, G_prog unchanged and unclipped.

    ``drift_scale`` scales the shift and its spread, ``read_noise_scale`` the read term,
    ``prog_noise_scale`` the programming term.  aihwkit's quirks that this model follows:

    - ``acceptance_range`` is a key of the fit table in percent (0.2 or 2); any other value,
      aihwkit's own default 2e-2 included, falls back to the smallest key, so the default is
      the 0.2 % curve;
    - the decay and read draws are new at every time (a sample of the state at t, not one
      trajectory per device), as aihwkit's ``drift_analog_weights`` draws them;
    - ``renormalise`` (default True): aihwkit converts the *programmed* weights to
      conductances again before drifting them, so the programmed devices of a tile are first
      stretched back onto [g_min, g_max] by their own extremes, drifted and clipped there,
      and read back through the same stretch; memsim returns the conductance that the tile's
      original mapping reads as that weight.  False drifts G_prog as programmed.

    Tensors come from the single-device mapping as (device, reference) column pairs: the
    even columns are devices, the odd ones the fixed reference of weight 0, which is no
    device and keeps its conductance (``cells="single"``).  ``cells="pair"`` treats every
    cell as a device (a differential pair of ReRAM devices).
    """

    g_min: float = 9.0e-6
    g_max: float = 88.199997e-6
    acceptance_range: float = 2e-2
    prog_coeff: tuple = RERAM_CMO_PROG
    decay_mean: float = -0.08900206
    decay_std: tuple = (0.04201137, 0.41183342)
    read_k: float = 0.0277316483
    t_read: float = 1e-6
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    renormalise: bool = True
    cells: str = "single"
    name: str = "reram"
    read_sigma: float = 0.0

    def __post_init__(self):
        if not (0 <= self.g_min < self.g_max and math.isfinite(self.g_max)):
            raise ValueError(f"need 0 <= g_min < g_max (S), got {self.g_min!r}, {self.g_max!r}")
        if self.cells not in ("single", "pair"):
            raise ValueError(f"cells must be 'single' (device + reference column) or 'pair', got {self.cells!r}")

    # -- the closed forms, uS ---------------------------------------------------------------
    @property
    def acceptance_curve(self) -> float:
        """The acceptance range (%) whose fit is used (aihwkit's fallback: the smallest key)."""
        keys = [k for k, _ in self.prog_coeff]
        return self.acceptance_range if self.acceptance_range in keys else min(keys)

    def sigma_programming_us(self, g_us):
        c0, c1 = dict(self.prog_coeff)[self.acceptance_curve]
        return c0 + c1 * g_us

    def decay_mean_us(self, t_seconds: float) -> float:
        return self.decay_mean * math.log(t_seconds) * self.drift_scale

    def decay_sigma_us(self, t_seconds: float) -> float:
        return (self.decay_std[0] * math.log(t_seconds) + self.decay_std[1]) * self.drift_scale

    def read_sigma_us(self, g_us, t_seconds: float):
        return self.read_k * torch.log10(g_us) * math.sqrt(math.log((t_seconds + self.t_read) / (2 * self.t_read)))

    # -- devices ---------------------------------------------------------------------------
    def _devices(self, g):
        return g[..., 0::2] if self.cells == "single" else g

    def _with_devices(self, g, devices):
        if self.cells != "single":
            return devices
        return torch.stack((devices, g[..., 1::2]), dim=-1).reshape(g.shape)

    def program_devices_us(self, g_us, generator):
        return g_us + self.prog_noise_scale * self.sigma_programming_us(g_us) * _normal(g_us, generator)

    def drift_devices_us(self, g_prog_us, t_seconds: float, generator):
        """aihwkit's ``apply_drift_noise_to_conductance`` on conductances in uS (t > 0)."""
        g_drift = g_prog_us + self.decay_mean_us(t_seconds) + self.decay_sigma_us(t_seconds) * \
            _normal(g_prog_us, generator)
        g = g_drift + self.read_sigma_us(g_drift, t_seconds) * self.read_noise_scale * _normal(g_prog_us, generator)
        return torch.clamp(g, self.g_min * 1e6, self.g_max * 1e6)

    def program(self, g_target, generator) -> ProgrammedCells:
        if self.cells == "single" and g_target.ndim == 2 and g_target.shape[0] > 1 \
                and not bool((g_target[:, 1::2] == g_target[:1, 1::2]).all()):
            raise ValueError("ReRamCMONoiseModel(cells='single') needs the single-device mapping "
                             "(conductances='reram-cmo' or memsim.nn.mapping.single_device()); for differential "
                             "pairs use ReRamCMONoiseModel(cells='pair')")
        g_prog = self.program_devices_us(self._devices(g_target) * 1e6, generator) * 1e-6
        return ProgrammedCells(g_target, self._with_devices(g_target, g_prog))

    def at_time(self, cells: ProgrammedCells, t_seconds: float, generator) -> torch.Tensor:
        t = check_time(t_seconds)
        if t == 0:
            return cells.g_prog
        g_prog = self._devices(cells.g_prog) * 1e6
        lo_us, hi_us = self.g_min * 1e6, self.g_max * 1e6
        if self.renormalise:
            low, high = g_prog.detach().min(), g_prog.detach().max()
            stretch = torch.where(high > low, (hi_us - lo_us) / (high - low), torch.ones_like(high))
            g_now = self.drift_devices_us(lo_us + (g_prog - low) * stretch, t, generator)
            g_now = low + (g_now - lo_us) / stretch
        else:
            g_now = self.drift_devices_us(g_prog, t, generator)
        return self._with_devices(cells.g_prog, g_now * 1e-6)


def model(name: str, **options):
    """A noise model by name: ``none``, ``rram`` (options: ``variability``, ``g_floor``,
    ``g_ceiling``), ``pcm`` (options: ``g_max`` and the scales) or ``reram`` (aihwkit's CMO/HfOx
    ReRAM model on single-device mapping; use it with ``conductances="reram-cmo"``)."""
    if name == "none":
        return NoNoise()
    if name == "rram":
        return RRAMNoiseModel(**options)
    if name == "pcm":
        return PCMLikeNoiseModel(**options)
    if name == "reram":
        return ReRamCMONoiseModel(**options)
    raise ValueError(f"unknown noise model {name!r}; choose one of {MODELS}")
