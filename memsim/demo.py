"""``memsim demo``: a 32x32 1T1R and a 32x32 selector-less array on built-in defaults.

The 1T1R array uses the shipped BSIM4 transistor card in ngspice and, in the fast solver,
the reduced transistor from the committed calibration (netlists/models/
nmos_bsim4.calibration.json).  Shows, solved by ngspice and compared with the fast solver:

- IR drop: the MVM column currents with wire resistance against the ideal-wire product;
- sneak paths: the read margin (I_LRS - I_HRS) / I_LRS of a selected cell with every
  unselected cell at the highest level, for each bias scheme, selector-less against 1T1R.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import units
from .calibrate.sweeps import uncalibrated_params
from .circuit import spice
from .circuit.array import Crossbar
from .circuit.bias import SCHEMES
from .devices.calibration import Calibration
from .devices.presets import preset
from .devices.transistor import MosfetParams
from .errors import check_limit
from .io import save_figure
from .solver import solve
from .study.metrics import read_margin


@dataclass
class DemoResult:
    size: int
    r_wire: float
    ir_error: dict = field(default_factory=dict)        # kind -> (cols,) relative error
    margin: dict = field(default_factory=dict)          # (kind, scheme) -> read margin
    solver_vs_spice: dict = field(default_factory=dict)  # kind -> max relative difference
    uncalibrated_vs_spice: float = float("nan")          # 1T1R with the level-1 defaults
    seconds: float = 0.0


def run(size: int = 32, r_wire: float = 2.5, seed: int = 0, log=print) -> DemoResult:
    """Run the demo with ngspice; compare with the fast solver when it is available."""
    size = units.integer(size, "demo size N", 2)
    check_limit(f"demo size {size}x{size}", size * size, spice.max_cells(), "cells",
                "the demo runs ngspice on N x N arrays; choose a smaller --size (32 is the default) or raise "
                "$MEMSIM_SPICE_MAX_CELLS")
    t0 = time.perf_counter()
    calibration = Calibration.load()
    bsim4 = calibration.mosfet()
    uncalibrated = MosfetParams(card=bsim4.card, w=bsim4.w, l=bsim4.l, **uncalibrated_params(bsim4.w, bsim4.l))
    levels = np.asarray(preset("rram8").levels)
    rng = np.random.default_rng(seed)
    g = levels[rng.integers(0, levels.size, (size, size))]
    v_in = rng.uniform(0.0, 0.2, size)
    result = DemoResult(size, r_wire)
    arrays = {"device": Crossbar.device(g_read=g, r_row=r_wire, r_col=r_wire),
              "1t1r": Crossbar.one_t_one_r(g_read=g, r_row=r_wire, r_col=r_wire, transistor=bsim4)}
    log(f"memsim demo: {size}x{size} arrays, rram8 levels (5-40 uS at 0.2 V), {r_wire} ohm per wire segment; "
        f"1T1R transistor: {bsim4.card.name} (BSIM4) in ngspice, calibrated reduced model in the fast solver")
    for kind, xb in arrays.items():
        ref = spice.simulate(xb, v_in)
        ideal = xb.with_wires(0.0, 0.0)
        ideal_i = spice.simulate(ideal, v_in).i_col
        result.ir_error[kind] = (ref.i_col - ideal_i) / ideal_i
        log(f"  {kind:>6} MVM: IR drop lowers column currents by up to "
            f"{-100 * result.ir_error[kind].min():.2f}% (mean {-100 * result.ir_error[kind].mean():.2f}%)")
        fast = solve(xb, v_in)
        diff = np.max(np.abs(fast.i_col - ref.i_col) / np.abs(ref.i_col))
        result.solver_vs_spice[kind] = diff
        log(f"  {kind:>6} MVM: fast solver vs ngspice, max relative difference {diff:.2e}")
        if kind == "1t1r":
            plain = solve(Crossbar.one_t_one_r(xb.gap, r_row=r_wire, r_col=r_wire, transistor=uncalibrated), v_in)
            result.uncalibrated_vs_spice = np.max(np.abs(plain.i_col - ref.i_col) / np.abs(ref.i_col))
            log(f"  {kind:>6} MVM: (uncalibrated level-1 defaults instead: {result.uncalibrated_vs_spice:.2e})")


    for kind in ("device", "1t1r"):
        for scheme in SCHEMES:
            result.margin[kind, scheme] = read_margin(kind, size, scheme, r_wire=r_wire, g_lrs=levels[-1],
                                                      g_hrs=levels[0], engine="ngspice")[0]
        log(f"  {kind:>6} read margin (LRS 40 uS vs HRS 5 uS, all other cells LRS): " + ", ".join(
            f"{s} {100 * result.margin[kind, s]:.1f}%" for s in SCHEMES))
    result.seconds = time.perf_counter() - t0
    return result


def figure(result: DemoResult):
    """Two panels: IR-drop error per column; read margin per bias scheme."""
    from matplotlib.figure import Figure  # no pyplot state, no backend switch

    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    for kind, err in result.ir_error.items():
        ax1.plot(np.arange(err.size), 100 * err, marker="o", ms=3, label=kind)
    ax1.set_xlabel("column")
    ax1.set_ylabel("column current error vs ideal wires (%)")
    ax1.set_title(f"IR drop, {result.size}x{result.size}, {result.r_wire} ohm/segment (ngspice)")
    ax1.legend()
    width = 0.38
    x = np.arange(len(SCHEMES))
    for k, kind in enumerate(("device", "1t1r")):
        ax2.bar(x + (k - 0.5) * width, [100 * result.margin[kind, s] for s in SCHEMES], width,
                label="selector-less" if kind == "device" else "1T1R")
    ax2.axhline(10, color="k", ls="--", lw=1, label="10% sensing limit")
    ax2.set_xticks(x, SCHEMES)
    ax2.set_ylabel("read margin (I_LRS - I_HRS) / I_LRS (%)")
    ax2.set_title("sneak paths: far-corner read, other cells at LRS")
    ax2.legend(loc="center left")
    fig.tight_layout()
    return fig


def figure_path(out_dir: str | Path) -> Path:
    """Where :func:`save` writes the demo figure in ``out_dir``."""
    return Path(out_dir) / "demo.png"


def save(result: DemoResult, out_dir: str | Path) -> Path:
    """Write the demo figure (PNG) into ``out_dir`` (an earlier one is replaced); returns its path."""
    return save_figure(figure(result), figure_path(out_dir))
