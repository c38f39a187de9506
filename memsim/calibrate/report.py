"""The held-out report: ngspice against the fast solver, calibrated and not, on arrays larger
than any the fit saw; a parity and error-against-size figure and a JSON summary."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..circuit import spice
from ..circuit.array import Crossbar
from ..devices.calibration import Calibration, mosfet_from
from ..devices.presets import preset
from ..io import save_figure, write_atomic
from ..progress import WeightedProgress
from ..solver import solve
from .sweeps import column_error, spice_run_seconds, uncalibrated_params


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
    gaps = preset(calibration.fit_ranges.get("preset", "rram8")).level_gaps
    calibrated = calibration.mosfet()
    default = mosfet_from(calibration.card_path, calibration.w, calibration.l, uncalibrated_params(calibration.w, calibration.l))
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


def validate_device(device, sizes=(64, 128), kinds=("device", "1t1r"), patterns=("random", "all_lrs", "checkerboard"),
                    *, r_wire: float = 1.0, seed: int = 1, progress: bool = True, timeout: float = 3600.0) -> dict:
    """Held-out check of a tabulated device (:class:`memsim.devices.VerilogA`): ngspice running
    the compiled model (OSDI) against the fast solver reading its table, on arrays of the
    ``rram8`` levels (their states at 0.2 V), or of 8 levels spread log-evenly over the device's
    own conductance range where that does not hold them.  Returns {"cases": [...], ...}."""
    lo, hi = device.g_range(0.2)
    levels = np.asarray(preset("rram8").levels)
    if levels.min() < lo or levels.max() > hi:
        levels = np.geomspace(lo * (1 + 1e-9), hi * (1 - 1e-9), 8)
    states = device.state_for_conductance(levels, 0.2)
    rng = np.random.default_rng(seed)
    todo = [(n, kind, pattern) for n in sizes for kind in kinds for pattern in patterns]
    cases = []
    total = sum(spice_run_seconds(n, kind) for n, kind, _ in todo)
    with WeightedProgress(total, len(todo), "held-out ngspice runs", progress, "arrays") as bar:
        for n, kind, pattern in todo:
            cells, v_in = _pattern(pattern, n, states, rng)
            xb = Crossbar.of_kind(kind, gap=cells, v_gate=1.8, r_row=r_wire, r_col=r_wire, params=device)
            ref = spice.simulate(xb, v_in, timeout=timeout).i_col
            fast = solve(xb, v_in, voltages=False).i_col
            cases.append({"size": n, "kind": kind, "pattern": pattern, "error": column_error(fast, ref),
                          "error_of_full_scale": float(np.max(np.abs(fast - ref)) / np.max(np.abs(ref)))})
            bar.update(spice_run_seconds(n, kind), note=f"{kind} {n}x{n} {pattern}")
    return {"metric": "max over columns of |I_fast - I_spice| / |I_spice|, columns above 1% of the largest",
            "device": repr(device), "levels_S": levels.tolist(), "table_error": device.table().error, "r_wire_ohm": r_wire, "cases": cases}


def write_report(calibration: Calibration, validation: dict, out_dir: str | Path) -> dict:
    """Parity plot and error-vs-size plot (PNG) and a JSON summary in ``out_dir``; returns the paths."""
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    cur = {k: np.asarray(v) * 1e6 for k, v in validation["column_currents"].items()}
    fig = Figure(figsize=(10, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
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
    summary = {"calibration": calibration.to_dict(), "metric": validation["metric"], "cases": cases}
    paths["summary"] = str(write_atomic(out_dir / "calibration_report.json", json.dumps(summary, indent=2) + "\n"))
    return paths
