"""ReRAM drift as the VeRA+ paper models and measures it.

- :func:`aihwkit_reram_config`: the hardware of the aihwkit comparison with aihwkit's
  ``ReRamCMONoiseModel`` (CMO/HfOx ReRAM, one device per weight on 9.0-88.2 uS; the model
  itself is :class:`memsim.nn.noise.ReRamCMONoiseModel`);
- :class:`MeasuredDriftModel`: drift from measured statistics, the mean and standard
  deviation of the conductance of every programmed level at given times after programming,
  loaded from a CSV (:func:`load_drift_statistics`) and interpolated in log time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..io import LIMITS, read_table
from .config import HardwareConfig
from .mapping import single_device
from .noise import ProgrammedCells, ReRamCMONoiseModel, check_time


def aihwkit_reram_config(**changes) -> HardwareConfig:
    """aihwkit's default ``InferenceRPUConfig`` periphery (7-bit inputs with abs-max noise
    management, output noise 0.06, 9-bit outputs bounded at +-12 with iterative bound
    management, tiles of 512) with ``noise_model = ReRamCMONoiseModel()``: one device per
    weight, each tile's weights mapped affinely onto [9.0, 88.2] uS (aihwkit's
    SingleDeviceConductanceConverter), the model's defaults (0.2 % acceptance curve)."""
    config = HardwareConfig(tile=512, conductances=single_device(), scale="tile", cells="ohmic", r_wire=0.0,
                            dac_bits=7, adc_bits=9, adc_range=12.0, out_noise=0.06, bound_management=True,
                            noise=ReRamCMONoiseModel())
    return config.replace(**changes)


# ---------------------------------------------------------------------------------------------
# drift from measured statistics
# ---------------------------------------------------------------------------------------------
COLUMNS = ("level", "t_s", "mean_S", "std_S")


@dataclass(frozen=True, eq=False)
class DriftStatistics:
    """Measured conductance statistics: ``mean[i, k]`` and ``std[i, k]`` (S) of the devices
    programmed to ``levels[i]`` (S), ``times[k]`` (s) after programming."""

    levels: np.ndarray
    times: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    source: str = ""

    def at(self, t_seconds: float, beyond: str = "extrapolate") -> tuple:
        """Per-level (mean, std) at ``t_seconds``, linear in ln t between the measured times;
        before the first time, the first; after the last, the line through the last two
        (``beyond="extrapolate"``) or the last (``"hold"``).  The std is kept >= 0."""
        log_t = math.log(max(t_seconds, self.times[0]))
        log_times = np.log(self.times)
        if log_t > log_times[-1] and beyond == "extrapolate" and len(self.times) > 1:
            w = (log_t - log_times[-2]) / (log_times[-1] - log_times[-2])
            mean = self.mean[:, -2] + w * (self.mean[:, -1] - self.mean[:, -2])
            std = self.std[:, -2] + w * (self.std[:, -1] - self.std[:, -2])
        else:
            mean = np.array([np.interp(log_t, log_times, row) for row in self.mean])
            std = np.array([np.interp(log_t, log_times, row) for row in self.std])
        return mean, np.maximum(std, 0.0)


def load_drift_statistics(path) -> DriftStatistics:
    """Measured drift statistics from a CSV file.

    Format: a header line ``level,t_s,mean_S,std_S`` then one row per programmed level and
    time: the level's target conductance (S), the time after programming (s, > 0), and the
    mean and standard deviation of the conductance measured then (S).  Every level must
    appear at the same times (at least one); lines starting with ``#`` are comments.
    """
    rows = {}
    for number, row in read_table(path, "drift statistics", COLUMNS, LIMITS["config"], ValueError):
        try:
            level, t, mean, std = (float(v) for v in row)
        except ValueError:
            raise ValueError(f"{path}, line {number}: expected four numbers ({','.join(COLUMNS)}), "
                             f"got {row!r}") from None
        if not all(math.isfinite(v) for v in (level, t, mean, std)) or level < 0 or t <= 0 or std < 0:
            raise ValueError(f"{path}, line {number}: need level >= 0 S, t_s > 0 s, a finite mean_S "
                             f"and std_S >= 0 S, got {row!r}")
        if (level, t) in rows:
            raise ValueError(f"{path}, line {number}: level {level:g} S at {t:g} s appears twice")
        rows[(level, t)] = (mean, std)
    levels = sorted({k[0] for k in rows})
    times = sorted({k[1] for k in rows})
    missing = [(lv, t) for lv in levels for t in times if (lv, t) not in rows]
    if missing:
        raise ValueError(f"{path}: every level needs every time; missing level {missing[0][0]:g} S at "
                         f"{missing[0][1]:g} s ({len(missing)} pairs missing)")
    mean = np.array([[rows[(lv, t)][0] for t in times] for lv in levels])
    std = np.array([[rows[(lv, t)][1] for t in times] for lv in levels])
    return DriftStatistics(np.array(levels), np.array(times), mean, std, str(path))


def _stats(statistics):
    return statistics if isinstance(statistics, DriftStatistics) else load_drift_statistics(statistics)


class MeasuredDriftModel:
    """Drift from measured per-level statistics (the VeRA+ paper's measured drift model).

    The VeRA+ paper (Sec. V) programmed eight levels (5-40 uS read at 0.2 V) on a 1T1R HfOx
    array, measured 200 devices per level one week after programming and replaced the
    statistical drift model by the per-level Gaussians found.  Here a cell programmed to
    ``G_T`` reads, ``t`` seconds after programming,

        G(t) = G_T + (m(G_T, t) - G_T) + s(G_T, t) N(0, 1),   clipped at 0,

    with m, s the measured mean and standard deviation (:class:`DriftStatistics`, linear in
    ln t between measured times, see :meth:`DriftStatistics.at`) interpolated linearly in
    G_T between the levels (held beyond the end levels).  Right after programming (t = 0)
    the cells are drawn at the first measured time; every later time is a fresh draw from
    that time's statistics (the measurements give the distribution at each time, not the
    trajectory of a device).  Every cell is a device (use it with differential pairs, e.g.
    ``conductances="rram8"``, whose levels are the paper's).  The offset and the spread are
    constants for autograd: the gradient of G(t) in G_T is 1.
    """

    name = "measured"
    read_sigma = 0.0

    def __init__(self, statistics, *, beyond: str = "extrapolate"):
        if beyond not in ("extrapolate", "hold"):
            raise ValueError(f"beyond must be 'extrapolate' or 'hold', got {beyond!r}")
        self.statistics = _stats(statistics)
        self.beyond = beyond

    def _draw(self, g_target, t_seconds, generator):
        stats = self.statistics
        mean, std = stats.at(t_seconds, self.beyond)
        plain = g_target.detach().cpu().numpy()
        offset = np.interp(plain, stats.levels, mean - stats.levels)
        sigma = np.interp(plain, stats.levels, std)
        as_tensor = lambda a: torch.as_tensor(a, dtype=g_target.dtype, device=g_target.device)  # noqa: E731
        noise = torch.randn(g_target.shape, generator=generator, dtype=g_target.dtype, device=g_target.device)
        return torch.clamp(g_target + as_tensor(offset) + as_tensor(sigma) * noise, min=0.0)

    def program(self, g_target, generator) -> ProgrammedCells:
        return ProgrammedCells(g_target, self._draw(g_target, float(self.statistics.times[0]), generator))

    def at_time(self, cells: ProgrammedCells, t_seconds: float, generator) -> torch.Tensor:
        t = check_time(t_seconds)
        return cells.g_prog if t == 0 else self._draw(cells.g_target, t, generator)
