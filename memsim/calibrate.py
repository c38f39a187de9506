"""Calibration: ngspice-solved currents fit the fast solver's reduced transistor model.

SPICE is the truth: the 1T1R netlists use a real MOSFET model card (default
``netlists/models/nmos_bsim4.lib``, BSIM4).  The fast solver evaluates a reduced
Shichman-Hodges transistor (beta, vto, lambda; see :mod:`memsim.devices.transistor`).
``calibrate`` runs ngspice sweeps, fits those three numbers by bounded least squares
(scipy.optimize.least_squares) and writes a versioned JSON file tied to the card by its
SHA-256; ``validate`` reports the error on held-out arrays larger than any used in the fit.

The sweeps:

- single 1T1R cells (ideal wires) over read voltage x gate voltage x every programmed level
  of a device preset;
- small 1T1R arrays (8x8, 16x16, 32x32 by default) with random levels and random inputs.

The error metric (:func:`column_error`): max over columns of |I_fast - I_spice| / |I_spice|,
over the columns whose SPICE current is above 1 % of the largest column current.

Selector-less (device) arrays have nothing to calibrate: the solver evaluates the same RRAM
equations as the netlist.  They are still part of the held-out report, as a check.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .devices.transistor import MODELS_DIR
from .errors import MemsimError

SCHEMA = "memsim-calibration"
SCHEMA_VERSION = 1
BSIM4_CARD = MODELS_DIR / "nmos_bsim4.lib"
DEFAULT_CALIBRATION = MODELS_DIR / "nmos_bsim4.calibration.json"
FITTED = ("beta", "vto", "lambda_")
#: bounds of the fitted parameters: beta (A/V^2), vto (V), lambda (1/V)
BOUNDS = {"beta": (1e-6, 1e-1), "vto": (-0.5, 1.5), "lambda_": (0.0, 2.0)}
_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class CalibrationError(MemsimError):
    """A calibration could not be made or loaded (bad file, wrong card, failed fit)."""


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
#: Held-out report sizes of `memsim calibrate` and of `memsim calibrate --quick` (larger than any fitted).
FULL_SIZES = (64, 128)
QUICK_SIZES = (16,)


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


def card_hash(path: str | Path) -> str:
    """SHA-256 of a model card file's text (a regular file of at most 1 MiB, else CalibrationError)."""
    from .devices.transistor import MAX_CARD_BYTES
    from .io import read_bytes

    return hashlib.sha256(read_bytes(path, "model card", MAX_CARD_BYTES, CalibrationError)).hexdigest()


def _mosfet(card, w, l, params):
    from .devices.transistor import MosfetParams

    return MosfetParams(card=card, w=w, l=l, beta=params["beta"], vto=params["vto"], lambda_=params["lambda_"])


def uncalibrated_params(w: float = 1e-6, l: float = 0.5e-6) -> dict:
    """The reduced model's defaults without calibration: the level-1 card's own values."""
    from .devices.transistor import MosfetParams

    m = MosfetParams(w=w, l=l)
    return {"beta": m.beta, "vto": m.vto, "lambda_": m.lambda_}


# -- sweeps ---------------------------------------------------------------------------------
def _cells(config: SweepConfig):
    from .devices.presets import preset

    gaps = preset(config.preset).level_gaps
    grid = np.array([(gap, vg, v) for gap in gaps for vg in config.v_gates for v in config.v_reads])
    return grid[:, 0], grid[:, 1], grid[:, 2]


def _arrays(config: SweepConfig):
    from .devices.presets import preset

    rng = np.random.default_rng(config.seed)
    gaps = preset(config.preset).level_gaps
    out = []
    for n in config.array_sizes:
        for _ in range(config.arrays_per_size):
            out.append((gaps[rng.integers(0, gaps.size, (n, n))], rng.uniform(0.0, 0.2, n)))
    return out


def _one_t_one_r(gap, v_gate, mosfet, r_wire):
    from .array import Crossbar

    return Crossbar.one_t_one_r(gap, v_gate=v_gate, transistor=mosfet, r_row=r_wire, r_col=r_wire)


def sweep_spice(card: str | Path = BSIM4_CARD, config: SweepConfig = SweepConfig(), *, progress: bool = True,
                timeout: float = 600.0) -> Dataset:
    """Run the calibration sweeps with ngspice on ``card``.  Raises SpiceError on any failed run."""
    from . import spice
    from .progress import WeightedProgress

    # Any reduced parameters will do here: ngspice only sees the card.
    mosfet = _mosfet(card, config.w, config.l, uncalibrated_params(config.w, config.l))
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
    (:func:`memsim.spice.estimate_cost`'s cells^2.2 law; 1T1R arrays with the BSIM4 card take
    about 1.3 times as long, 5.5 s at 64x64 in scripts/bench_solver.py).  These weight the
    progress bars, so their time left follows the large arrays that dominate."""
    return 0.05 + (1.3 if kind == "1t1r" else 1.0) * 0.2 * (n * n / 1024) ** 2.2


def sweep_solver(params: dict, card: str | Path = BSIM4_CARD, config: SweepConfig = SweepConfig()) -> Dataset:
    """The same sweeps solved by the fast solver with reduced parameters ``params``
    (synthetic data, e.g. to check that fitting recovers known parameters)."""
    gap, v_gate, v = _cells(config)
    mosfet = _mosfet(card, config.w, config.l, params)
    current = _predict_cells(gap, v_gate, v, mosfet)
    arrays = [(g, v_in, _predict_array(g, v_in, mosfet, config)) for g, v_in in _arrays(config)]
    return Dataset(gap, v_gate, v, current, arrays)


def _predict_cells(gap, v_gate, v, mosfet):
    from .solver import solve

    out = np.empty_like(v)
    for g, vg in sorted({(g, vg) for g, vg in zip(gap, v_gate)}):
        mask = (gap == g) & (v_gate == vg)
        out[mask] = solve(_one_t_one_r(np.array([[g]]), vg, mosfet, 0.0), v[mask][:, None],
                          voltages=False).i_col[:, 0]
    return out


def _predict_array(gaps, v_in, mosfet, config):
    from .solver import solve

    return solve(_one_t_one_r(gaps, config.v_gate_array, mosfet, config.r_wire), v_in, voltages=False).i_col


# -- fitting ----------------------------------------------------------------------------------
def _residuals(dataset: Dataset, mosfet, config: SweepConfig) -> np.ndarray:
    cells = (_predict_cells(dataset.cell_gap, dataset.cell_v_gate, dataset.cell_v, mosfet) - dataset.cell_i) / dataset.cell_i
    parts = [cells]
    for gaps, v_in, i_col in dataset.arrays:
        mask = np.abs(i_col) > 0.01 * np.abs(i_col).max()
        parts.append((_predict_array(gaps, v_in, mosfet, config)[mask] - i_col[mask]) / i_col[mask])
    return np.concatenate(parts)


def _summary(residuals: np.ndarray, n_cells: int) -> dict:
    cells, arrays = residuals[:n_cells], residuals[n_cells:]
    return {"cells_rms_rel": float(np.sqrt(np.mean(cells ** 2))), "cells_max_rel": float(np.max(np.abs(cells))),
            "arrays_max_rel": float(np.max(np.abs(arrays))) if arrays.size else None, "points": int(residuals.size)}


@dataclass(frozen=True)
class Calibration:
    """Fitted reduced-transistor parameters tied to one model card (by SHA-256)."""

    card_file: str
    card_sha256: str
    model_name: str
    w: float
    l: float
    params: dict
    fit_ranges: dict
    residuals: dict
    uncalibrated_residuals: dict
    optimizer: dict
    card_dir: str = field(default=str(MODELS_DIR), compare=False, repr=False)

    @property
    def card_path(self) -> Path:
        return Path(self.card_dir) / self.card_file

    def mosfet(self):
        """The calibrated :class:`~memsim.devices.MosfetParams` (checks the card's hash)."""
        actual = card_hash(self.card_path)
        if actual != self.card_sha256:
            raise CalibrationError(
                f"model card {self.card_path} does not match this calibration (sha256 {actual[:12]}..., "
                f"calibrated against {self.card_sha256[:12]}...); rerun `memsim calibrate --card {self.card_path}`")
        return _mosfet(self.card_path, self.w, self.l, self.params)

    def apply(self, xb):
        """``xb`` with its reduced transistor replaced by the calibrated one (1T1R crossbars only).

        The crossbar must already use this calibration's model card (that card is what ngspice
        simulates); anything else raises CalibrationError.
        """
        from .array import Crossbar

        if xb.kind != "1t1r":
            return xb
        if xb.transistor.card_hash != self.card_sha256:
            raise CalibrationError(
                f"this crossbar's transistor card {xb.transistor.card.name} is not the card the calibration was "
                f"fitted to ({self.card_file}); build the crossbar with transistor=calibration.mosfet()")
        return Crossbar(xb.kind, xb.r_row, xb.r_col, gap=xb.gap, device_params=xb.device_params,
                        transistor=self.mosfet(), v_gate=xb.v_gate)

    # -- files --
    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("card_dir")
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **data}

    def save(self, path: str | Path) -> Path:
        """Write the calibration as JSON, atomically."""
        from .io import write_atomic

        return write_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CALIBRATION, card_dir: str | Path | None = None) -> "Calibration":
        """Read and validate a calibration file; refuses a foreign, corrupt or mismatched file.

        The model card is looked up by file name in ``card_dir`` (default: the folder of the
        calibration file) and its SHA-256 must match the one recorded at calibration time.
        """
        from .io import read_json

        path = Path(path)
        data = read_json(path, "calibration file", CalibrationError)
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise CalibrationError(f"{path} is not a memsim calibration file (schema {data.get('schema') if isinstance(data, dict) else None!r})")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise CalibrationError(f"{path} has calibration schema version {data.get('schema_version')!r}; "
                                   f"this memsim reads version {SCHEMA_VERSION}")
        try:
            card_file = data["card_file"]
            if not isinstance(card_file, str) or not _FILE_NAME.fullmatch(card_file) or card_file.startswith("."):
                raise CalibrationError(f"{path}: card_file must be a plain file name, got {card_file!r}")
            params = {k: float(data["params"][k]) for k in FITTED}
            if not all(math.isfinite(x) for x in params.values()) or params["beta"] <= 0 or params["lambda_"] < 0:
                raise CalibrationError(f"{path}: fitted parameters out of range: {params}")
            w, l = float(data["w"]), float(data["l"])
            if not (w > 0 and l > 0 and math.isfinite(w) and math.isfinite(l)):
                raise CalibrationError(f"{path}: w and l must be positive lengths")
            sha = data["card_sha256"]
            if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
                raise CalibrationError(f"{path}: card_sha256 must be 64 hex digits")
            calibration = cls(card_file=card_file, card_sha256=sha, model_name=str(data["model_name"]), w=w, l=l,
                              params=params, fit_ranges=dict(data["fit_ranges"]), residuals=dict(data["residuals"]),
                              uncalibrated_residuals=dict(data["uncalibrated_residuals"]),
                              optimizer=dict(data["optimizer"]),
                              card_dir=str(Path(card_dir) if card_dir is not None else path.parent))
        except CalibrationError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise CalibrationError(f"{path} is missing or has a malformed field ({err!r}); "
                                   "rerun memsim calibrate") from None
        if not calibration.card_path.exists():
            raise CalibrationError(f"{path} was fitted to model card {card_file!r}, which is not in {calibration.card_dir}")
        calibration.mosfet()  # verifies the hash now, not at first use
        return calibration


def fit(dataset: Dataset, card: str | Path = BSIM4_CARD, config: SweepConfig = SweepConfig(), *,
        start: dict | None = None, max_nfev: int = 200) -> Calibration:
    """Fit (beta, vto, lambda) to ``dataset`` by bounded least squares on relative errors."""
    from scipy.optimize import least_squares

    card = Path(card)
    start = dict(start or uncalibrated_params(config.w, config.l))
    lower = np.array([BOUNDS[k][0] for k in FITTED])
    upper = np.array([BOUNDS[k][1] for k in FITTED])
    x0 = np.clip([start[k] for k in FITTED], lower, upper)
    # beta spans decades: fit log(beta) so the steps are relative.
    def unpack(x):
        return {"beta": float(np.exp(x[0])), "vto": float(x[1]), "lambda_": float(x[2])}

    def residuals(x):
        return _residuals(dataset, _mosfet(card, config.w, config.l, unpack(x)), config)

    x0 = np.array([math.log(x0[0]), x0[1], x0[2]])
    lo = np.array([math.log(lower[0]), lower[1], lower[2]])
    hi = np.array([math.log(upper[0]), upper[1], upper[2]])
    before = residuals(x0)
    result = least_squares(residuals, x0, bounds=(lo, hi), method="trf", xtol=1e-12, ftol=1e-12,
                           gtol=1e-12, max_nfev=max_nfev)
    if result.status <= 0 or not np.all(np.isfinite(result.fun)):
        raise CalibrationError(f"the calibration fit did not converge ({result.message}; {result.nfev} evaluations); "
                               "widen the sweep ranges or raise max_nfev")
    n_cells = dataset.cell_i.size
    return Calibration(
        card_file=card.name, card_sha256=card_hash(card), model_name=_mosfet(card, config.w, config.l, start).model_name,
        w=config.w, l=config.l, params=unpack(result.x),
        fit_ranges={"v_read_V": [min(config.v_reads), max(config.v_reads)],
                    "v_gate_V": [min(config.v_gates), max(config.v_gates)], "preset": config.preset,
                    "array_sizes": list(config.array_sizes), "arrays_per_size": config.arrays_per_size,
                    "r_wire_ohm": config.r_wire, "v_gate_array_V": config.v_gate_array, "seed": config.seed},
        residuals=_summary(result.fun, n_cells), uncalibrated_residuals=_summary(before, n_cells),
        optimizer={"method": "scipy.optimize.least_squares trf, log(beta)", "status": int(result.status),
                   "message": str(result.message), "nfev": int(result.nfev), "start": start,
                   "bounds": {k: list(v) for k, v in BOUNDS.items()}},
        card_dir=str(card.parent))


def calibrate(card: str | Path = BSIM4_CARD, config: SweepConfig = SweepConfig(), *, out: str | Path | None = None,
              progress: bool = True) -> Calibration:
    """Run the ngspice sweeps on ``card``, fit, and (if ``out``) write the JSON file atomically."""
    card = Path(card)
    if not card.exists():
        raise CalibrationError(f"model card not found: {card}")
    dataset = sweep_spice(card, config, progress=progress)
    calibration = fit(dataset, card, config)
    if out is not None:
        calibration.save(out)
    return calibration


# -- held-out validation ----------------------------------------------------------------------
def _pattern(name: str, n: int, gaps: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    if name == "random":
        return gaps[rng.integers(0, gaps.size, (n, n))], rng.uniform(0.0, 0.2, n)
    if name == "all_lrs":
        return np.full((n, n), gaps[-1]), np.full(n, 0.2)
    if name == "checkerboard":
        board = (np.add.outer(np.arange(n), np.arange(n)) % 2).astype(bool)
        return np.where(board, gaps[-1], gaps[0]), np.full(n, 0.2)
    raise ValueError(f"unknown validation pattern {name!r}; use random, all_lrs or checkerboard")


def validate(calibration: Calibration, sizes=(64, 128), kinds=("1t1r", "device"),
             patterns=("random", "all_lrs", "checkerboard"), *, r_wire: float = 1.0, seed: int = 1,
             progress: bool = True, timeout: float = 3600.0) -> dict:
    """Held-out check: ngspice vs the fast solver, calibrated and uncalibrated, on larger arrays.

    Returns {"cases": [...], "column_currents": {...}} with, per case, the column error
    (:func:`column_error`) before and after calibration.
    """
    from . import spice
    from .array import Crossbar
    from .devices.presets import preset
    from .progress import WeightedProgress
    from .solver import solve

    gaps = preset(calibration.fit_ranges.get("preset", "rram8")).level_gaps
    calibrated = calibration.mosfet()
    default = _mosfet(calibration.card_path, calibration.w, calibration.l, uncalibrated_params(calibration.w, calibration.l))
    rng = np.random.default_rng(seed)
    cases, parity = [], {"spice": [], "calibrated": [], "uncalibrated": []}
    todo = [(n, kind, pattern) for n in sizes for kind in kinds for pattern in patterns]
    total = sum(spice_run_seconds(n, kind) for n, kind, _ in todo)
    with WeightedProgress(total, len(todo), "held-out ngspice runs", progress, "arrays") as bar:
        for n, kind, pattern in todo:
            cells, v_in = _pattern(pattern, n, gaps, rng)
            make = lambda m: Crossbar.of_kind(kind, gap=cells, v_gate=1.8, transistor=m, r_row=r_wire, r_col=r_wire)
            ref = spice.simulate(make(calibrated), v_in, timeout=timeout).i_col
            after = solve(make(calibrated), v_in, voltages=False).i_col
            before = solve(make(default), v_in, voltages=False).i_col
            cases.append({"size": n, "kind": kind, "pattern": pattern, "error_calibrated": column_error(after, ref),
                          "error_uncalibrated": column_error(before, ref)})
            for key, values in (("spice", ref), ("calibrated", after), ("uncalibrated", before)):
                parity[key].extend(values.tolist())
            bar.update(spice_run_seconds(n, kind), note=f"{kind} {n}x{n} {pattern}")
    return {"metric": "max over columns of |I_fast - I_spice| / |I_spice|, columns above 1% of the largest",
            "r_wire_ohm": r_wire, "cases": cases, "column_currents": parity}


def write_report(calibration: Calibration, validation: dict, out_dir: str | Path) -> dict:
    """Parity plot and error-vs-size plot (PNG) and a JSON summary in ``out_dir``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io import save_figure, write_atomic

    out_dir = Path(out_dir)
    cur = {k: np.asarray(v) * 1e6 for k, v in validation["column_currents"].items()}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    lim = [0, max(cur["spice"].max(), 1e-9) * 1.05]
    ax1.plot(lim, lim, color="k", lw=0.8)
    ax1.scatter(cur["spice"], cur["uncalibrated"], s=6, alpha=0.5, label="uncalibrated")
    ax1.scatter(cur["spice"], cur["calibrated"], s=6, alpha=0.5, label="calibrated")
    ax1.set_xlabel("ngspice column current (uA)")
    ax1.set_ylabel("fast solver column current (uA)")
    ax1.set_title("held-out arrays: parity")
    ax1.legend()
    cases = validation["cases"]
    for kind, marker in (("1t1r", "o"), ("device", "s")):
        sizes = sorted({c["size"] for c in cases if c["kind"] == kind})
        if not sizes:
            continue
        for key, style in (("error_uncalibrated", "--"), ("error_calibrated", "-")):
            worst = [100 * max(c[key] for c in cases if c["kind"] == kind and c["size"] == n) for n in sizes]
            ax2.plot(sizes, worst, style, marker=marker, label=f"{kind}, {key.split('_')[1]}")
    ax2.axhline(1.0, color="k", lw=0.8, ls=":", label="1% target")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("array size N (NxN, held out)")
    ax2.set_ylabel("worst column error vs ngspice (%)")
    ax2.set_title("error against array size")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    paths = {"figure": str(save_figure(fig, out_dir / "calibration_report.png"))}
    plt.close(fig)
    summary = {"calibration": calibration.to_dict(), "metric": validation["metric"], "cases": cases}
    paths["summary"] = str(write_atomic(out_dir / "calibration_report.json", json.dumps(summary, indent=2) + "\n"))
    return paths


# -- command line -------------------------------------------------------------------------------
def add_cli(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the fast solver's reduced transistor to ngspice (1T1R model card)")
    p.add_argument("--card", type=Path, default=BSIM4_CARD, help="MOSFET model card (default: the shipped BSIM4 card)")
    p.add_argument("--quick", action="store_true",
                   help="small sweeps (8x8 arrays, fewer voltages) and a 16x16 held-out report: about a minute")
    p.add_argument("--sizes", type=int, nargs="*", default=None,
                   help="held-out array sizes for the report (default 64 128, with --quick 16; none to skip)")
    p.add_argument("--out", type=Path, default=Path("memsim_output") / "calibration",
                   help="output folder for calibration.json and the report (default memsim_output/calibration)")
    p.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(args) -> int:
    config = QUICK if args.quick else SweepConfig()
    sizes = args.sizes if args.sizes is not None else (QUICK_SIZES if args.quick else FULL_SIZES)
    if any(not 2 <= n <= 256 for n in sizes):
        raise ValueError(f"--sizes are held-out array sizes in [2, 256], got {sizes}")
    from .io import check_target

    target = args.out / "calibration.json"
    existed = check_target(target).exists()  # a folder or device there: refused before the sweeps
    calibration = calibrate(args.card, config, out=target)
    r, u = calibration.residuals, calibration.uncalibrated_residuals
    print(f"fitted {calibration.params} to {args.card}")
    print(f"single-cell rms relative error: {u['cells_rms_rel']:.3%} uncalibrated -> {r['cells_rms_rel']:.3%} calibrated")
    print(f"wrote {target}" + (" (replaced the existing file)" if existed else ""))
    if sizes:
        validation = validate(calibration, sizes=tuple(sizes))
        for case in validation["cases"]:
            print(f"  {case['kind']:>6} {case['size']:>4}x{case['size']:<4} {case['pattern']:<12} "
                  f"uncalibrated {case['error_uncalibrated']:.3%}  calibrated {case['error_calibrated']:.3%}")
        paths = write_report(calibration, validation, args.out)
        print(f"report: {paths['figure']}, {paths['summary']}")
    return 0
