"""The calibration sweeps: single 1T1R cells over read voltage x gate voltage x every level of
a device preset, and small arrays with random levels and inputs, run by ngspice on a model
card (the measurement) or by the fast solver with given reduced parameters (the model)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..circuit import spice
from ..circuit.array import Crossbar
from ..devices.calibration import BSIM4_CARD, mosfet_from
from ..devices.presets import preset
from ..devices.transistor import MosfetParams
from ..progress import WeightedProgress
from ..solver import solve


@dataclass(frozen=True)
class SweepConfig:
    """What the calibration sweeps cover.  Voltages in V, sizes in cells, wires in ohm."""

    v_reads: tuple = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
    v_gates: tuple = (1.2, 1.5, 1.8)
    preset: str = "rram8"
    array_sizes: tuple = (8, 16, 32)
    arrays_per_size: int = 2
    r_wire: float = 1.0
    v_gate_array: float = 1.8
    seed: int = 0
    w: float = 1e-6
    l: float = 0.5e-6

    def __post_init__(self):
        for name in ("v_reads", "v_gates", "array_sizes"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values or not all(
                    isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in values):
                raise ValueError(f"SweepConfig.{name} must be a non-empty tuple of positive numbers, got {values!r}")
        if not all(isinstance(n, int) and 1 <= n <= 64 for n in self.array_sizes):
            raise ValueError(f"SweepConfig.array_sizes are fit sizes in 1..64 (ngspice cost), got {self.array_sizes}")
        if not (isinstance(self.arrays_per_size, int) and self.arrays_per_size >= 0):
            raise ValueError("SweepConfig.arrays_per_size must be an integer >= 0")
        for name in ("r_wire", "v_gate_array", "w", "l"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"SweepConfig.{name} must be a finite number >= 0, got {value!r}")


QUICK = SweepConfig(v_reads=(0.1, 0.3, 0.5), v_gates=(1.4, 1.8), array_sizes=(8,), arrays_per_size=1)


@dataclass
class Dataset:
    """Measured currents: single cells and small arrays (from ngspice, or synthetic)."""

    cell_gap: np.ndarray          # (n,) m
    cell_v_gate: np.ndarray       # (n,) V
    cell_v: np.ndarray            # (n,) V
    cell_i: np.ndarray            # (n,) A
    arrays: list = field(default_factory=list)  # [(gap (R,C), v_in (R,), i_col (C,))]


def column_error(i_fast, i_spice, floor: float = 0.01) -> float:
    """max_j |I_fast - I_spice| / |I_spice| over columns with |I_spice| > floor * max |I_spice|."""
    i_fast, i_spice = np.asarray(i_fast, float), np.asarray(i_spice, float)
    mask = np.abs(i_spice) > floor * np.abs(i_spice).max()
    return float(np.max(np.abs(i_fast[mask] - i_spice[mask]) / np.abs(i_spice[mask])))


def uncalibrated_params(w: float = 1e-6, l: float = 0.5e-6) -> dict:
    """The reduced model's defaults without calibration: the level-1 card's own values."""
    m = MosfetParams(w=w, l=l)
    return {"beta": m.beta, "vto": m.vto, "lambda_": m.lambda_}


def _cells(config: SweepConfig):
    gaps = preset(config.preset).level_gaps
    grid = np.array([(gap, vg, v) for gap in gaps for vg in config.v_gates for v in config.v_reads])
    return grid[:, 0], grid[:, 1], grid[:, 2]


def _arrays(config: SweepConfig):
    rng = np.random.default_rng(config.seed)
    gaps = preset(config.preset).level_gaps
    out = []
    for n in config.array_sizes:
        for _ in range(config.arrays_per_size):
            out.append((gaps[rng.integers(0, gaps.size, (n, n))], rng.uniform(0.0, 0.2, n)))
    return out


def _one_t_one_r(gap, v_gate, mosfet, r_wire):
    return Crossbar.one_t_one_r(gap, v_gate=v_gate, transistor=mosfet, r_row=r_wire, r_col=r_wire)


def sweep_spice(card: str | Path = BSIM4_CARD, config: SweepConfig = SweepConfig(), *, progress: bool = True,
                timeout: float = 600.0) -> Dataset:
    """Run the calibration sweeps with ngspice on ``card``.  Raises SpiceError on any failed run."""
    # Any reduced parameters will do here: ngspice only sees the card.
    mosfet = mosfet_from(card, config.w, config.l, uncalibrated_params(config.w, config.l))
    gap, v_gate, v = _cells(config)
    arrays = _arrays(config)
    cases = sorted({(g, vg) for g, vg in zip(gap, v_gate)})
    current = np.empty_like(v)
    cell_cost = len(config.v_reads) * spice_run_seconds(1)
    total = len(cases) * cell_cost + sum(spice_run_seconds(gaps.shape[0]) for gaps, _ in arrays)
    with WeightedProgress(total, len(cases) + len(arrays), "ngspice sweeps", progress, "ngspice jobs") as bar:
        for g, vg in cases:
            mask = (gap == g) & (v_gate == vg)
            xb = _one_t_one_r(np.array([[g]]), vg, mosfet, 0.0)
            current[mask] = spice.simulate(xb, v[mask][:, None], timeout=timeout).i_col[:, 0]
            bar.update(cell_cost)
        measured = []
        for gaps, v_in in arrays:
            xb = _one_t_one_r(gaps, config.v_gate_array, mosfet, config.r_wire)
            measured.append((gaps, v_in, spice.simulate(xb, v_in, timeout=timeout).i_col))
            bar.update(spice_run_seconds(gaps.shape[0]), note=f"{gaps.shape[0]}x{gaps.shape[1]}")
    return Dataset(gap, v_gate, v, current, measured)


def spice_run_seconds(n: int, kind: str = "1t1r") -> float:
    """Estimated seconds of one ngspice .op on an n x n array: start-up plus the solve
    (:func:`memsim.circuit.spice.estimate_cost`'s cells^2.2 law; 1T1R arrays with the BSIM4 card take
    about 1.3 times as long, docs/calibration.md).  These weight the
    progress bars, so their time left follows the large arrays that dominate."""
    return 0.05 + (1.3 if kind == "1t1r" else 1.0) * 0.2 * (n * n / 1024) ** 2.2


def sweep_solver(params: dict, card: str | Path = BSIM4_CARD, config: SweepConfig = SweepConfig()) -> Dataset:
    """The same sweeps solved by the fast solver with reduced parameters ``params``
    (synthetic data, e.g. to check that fitting recovers known parameters)."""
    gap, v_gate, v = _cells(config)
    mosfet = mosfet_from(card, config.w, config.l, params)
    current = _predict_cells(gap, v_gate, v, mosfet)
    arrays = [(g, v_in, _predict_array(g, v_in, mosfet, config)) for g, v_in in _arrays(config)]
    return Dataset(gap, v_gate, v, current, arrays)


def _predict_cells(gap, v_gate, v, mosfet):
    out = np.empty_like(v)
    for g, vg in sorted({(g, vg) for g, vg in zip(gap, v_gate)}):
        mask = (gap == g) & (v_gate == vg)
        out[mask] = solve(_one_t_one_r(np.array([[g]]), vg, mosfet, 0.0), v[mask][:, None],
                          voltages=False).i_col[:, 0]
    return out


def _predict_array(gaps, v_in, mosfet, config):
    return solve(_one_t_one_r(gaps, config.v_gate_array, mosfet, config.r_wire), v_in, voltages=False).i_col
