"""The SPICE rung at tile scale: memsim.solve against ngspice (KLU) on N x N MVM reads.

    python scripts/spice_parity.py                   # 128 and 256, every kind (about 3 minutes)
    python scripts/spice_parity.py --sizes 64 --kinds ohmic device
    python scripts/spice_parity.py > examples/spice_parity/README.md

Prints a Markdown page: the engine and the machine's load, then one row per size and cell kind
with ngspice's wall time (memsim.simulate: netlist, ngspice -b, rawfile; the best of up to three
runs, as many as fit five seconds), the solver's (warm:
the best of 3-50 solves, as many as fit half a second, after one that loads the compiled
kernels: a millisecond solve on a shared virtual machine varies by 10-20 % from run to run),
their ratio, and the
largest relative column error max_j |I_solver,j - I_spice,j| / |I_spice,j|, and the solver's time
in passes over the array: one pass is the best time of the KCL residual kernel (every node's
current balance from the node voltages and cell currents, five (N, N) arrays read or written),
the floor of a solve that must at least check its answer.  Cases: cells drawn
uniformly over 6-100 uS read conductance, inputs over 0-0.3 V, 2.0 ohm row and 1.2 ohm column
segments; 1T1R rows at 1.8 V gate with the level-1 card (both engines solve the same equations)
and with the BSIM4 card (ngspice) against the solver's calibrated reduced transistor
(netlists/models/nmos_bsim4.calibration.json).
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import zlib

import numpy as np

import memsim
from memsim.circuit import spice
from memsim.devices.calibration import Calibration

KINDS = ("ohmic", "device", "1t1r", "1t1r-bsim4")
LABELS = {"ohmic": "ohmic", "device": "RRAM (selector-less)", "1t1r": "1T1R, level-1 card",
          "1t1r-bsim4": "1T1R, BSIM4 card (calibrated solver)"}


def case(kind: str, n: int):
    rng = np.random.default_rng(zlib.crc32(repr(("parity", kind, n)).encode()))
    g = rng.uniform(6e-6, 1e-4, (n, n))
    if kind == "1t1r-bsim4":
        xb = memsim.Crossbar.one_t_one_r(g_read=g, r_row=2.0, r_col=1.2, v_gate=1.8,
                                         transistor=Calibration.load().mosfet())
    else:
        xb = memsim.Crossbar.of_kind(kind, g, r_row=2.0, r_col=1.2)
    return xb, rng.uniform(0.0, 0.3, n)


def spice_seconds(xb, v):
    """(best wall time of memsim.simulate over up to three runs, as many as fit 5 s, its result)."""
    best = np.inf
    spent = 0.0
    for _ in range(3):
        start = time.perf_counter()
        ref = spice.simulate(xb, v, force=True, timeout=3600)
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        if spent > 5.0:
            break
    return best, ref


def solver_seconds(xb, v):
    """(best wall time of memsim.solve, its column currents, its Newton steps, its Krylov iterations)."""
    result = memsim.solve(xb, v)  # loads the compiled kernels
    best = np.inf
    spent = 0.0
    for repeat in range(50):
        start = time.perf_counter()
        result = memsim.solve(xb, v)
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        if repeat >= 2 and spent > 0.5:
            break
    return best, result.i_col, result.info["iterations"], result.info["cg_iterations"]


def pass_seconds(n: int) -> float:
    """Best time of one KCL residual pass over an n x n array (memsim.solver._lines.kcl_residual)."""
    from memsim.solver import _lines

    rng = np.random.default_rng(n)
    vr, vc, i_cell = (rng.uniform(0.0, 0.3, (n, n)) for _ in range(3))
    f_row, f_col = np.empty((n, n)), np.empty((n, n))
    ends, zeros = np.ones(n, bool), np.zeros(n)
    best = np.inf
    for _ in range(200):
        start = time.perf_counter()
        _lines.kcl_residual(vr, vc, i_cell, 0.5, 1 / 1.2, False, False, ends, ends, zeros, zeros, f_row, f_col)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args = parser.parse_args()
    eng = spice.engine()
    load_start = os.getloadavg()
    print("# Solver against ngspice at tile scale\n")
    print("Output of `python scripts/spice_parity.py` (the text below is the script's own).\n")
    print(f"- ngspice {eng.version} ({eng.location}), linear solver: {'KLU' if eng.klu else 'Sparse 1.3'}"
          + (f"; {eng.advice}" if eng.advice else ""))
    print(f"- machine: {platform.machine()}, {os.cpu_count()} CPUs; load average (1 min) at the start "
          f"{load_start[0]:.2f}", flush=True)
    print()
    print("| N | kind | ngspice s | solver s | ratio | largest column error | solver in passes "
          "| Newton steps, Krylov iterations |")
    print("|---|---|---|---|---|---|---|---|")
    passes = {}
    rows = []
    for n in args.sizes:
        for kind in args.kinds:
            xb, v = case(kind, n)
            t_spice, ref = spice_seconds(xb, v)
            t_solver, i_col, newton, krylov = solver_seconds(xb, v)
            err = float(np.max(np.abs(i_col - ref.i_col) / np.abs(ref.i_col)))
            if n not in passes:
                passes[n] = pass_seconds(n)
            print(f"| {n} | {LABELS[kind]} | {t_spice:.2f} | {t_solver:.4f} | {t_spice / t_solver:.0f}x "
                  f"| {err:.1e} | {t_solver / passes[n]:.0f} | {newton}, {krylov} |", flush=True)
            rows.append((n, kind, t_spice, t_solver))
    print("\nOne pass (KCL residual kernel, best of 200): "
          + ", ".join(f"{n}x{n} {t * 1e6:.0f} us" for n, t in passes.items()) + ".  Distance to the pass "
          "limit (a solve at 10 passes: check the answer, factor the lines, a few sweeps), and the ratio "
          "to ngspice there:\n")
    for n, kind, t_spice, t_solver in rows:
        print(f"- {n}x{n} {LABELS[kind]}: {t_solver / passes[n]:.0f} passes, {t_solver / (10 * passes[n]):.0f}x "
              f"the 10-pass limit (which would be {t_spice / (10 * passes[n]):.0f}x ngspice)")
    print(f"\nLoad average (1 min) at the end: {os.getloadavg()[0]:.2f}.  Column error: "
          "max over columns of |I_solver - I_ngspice| / |I_ngspice|.  The level-1 and selector-less rows "
          "solve the same equations in both engines (tests/test_solver_spice.py asserts 1e-9 at 128x128); "
          "the BSIM4 row is the calibrated reduced transistor's own error against the card.  Newton steps: "
          "linear solves after the start (nonlinear cells first solve the array with each cell at its "
          "zero-bias conductance, one more linear solve); Krylov iterations: all of them, that start's included "
          "(CG for two-terminal cells, BiCGStab for 1T1R).")


if __name__ == "__main__":
    main()
