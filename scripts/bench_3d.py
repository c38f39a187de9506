#!/usr/bin/env python3
"""Benchmark of the 3D solver: against ngspice at 4 layers of 32 x 32 (same circuits, same
process, ratio of wall times; ngspice with KLU where the engine has it, as memsim runs it), and
alone at 8 layers of 256 x 256.

    python scripts/bench_3d.py [--repeat N] [--skip-large]

Cells: MOhm-range conductances (the bulk-RRAM preset's 0.1-1 uS) on 2.5 ohm lines, 10 ohm vias,
10 ohm/sq planes and 100 ohm pillar segments.  Each timing is the best of ``--repeat`` runs.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from memsim.circuit import netlist3d, spice
from memsim.solver.stacked import solve
from memsim.circuit.stacked import BULK_RRAM64, StackedCrossbar, VerticalArray, mvm_bias, read_bias


def arrays(layers, n, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.uniform(1e-7, 1e-6, (layers, n, n))
    params = BULK_RRAM64.params
    return rng, {
        "stack ohmic": StackedCrossbar.ohmic(g, 2.5, 2.5, 10.0),
        "stack device": StackedCrossbar.device(g_read=g, r_row=2.5, r_col=2.5, r_via=10.0, params=params),
        "vertical ohmic": VerticalArray.ohmic(g, 10.0, 100.0),
        "vertical 1t1r": VerticalArray.one_t_one_r(g_read=g, r_plane=10.0, r_pillar=100.0, params=params),
    }


def bias_for(name, array, rng, what):
    layers, n = array.cells.shape[0], array.cells.shape[1]
    if what == "read":
        return read_bias(array, (layers // 2, 0, n - 1), 0.2, "v/2")
    if name.startswith("stack"):
        return mvm_bias(array, rng.uniform(0, 0.2, n), layer=layers // 2, others="floating")
    return mvm_bias(array, rng.uniform(0, 0.2, layers))


def best(run, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t)
    return min(times), out


def rel_err(a, b):
    x = np.concatenate([np.ravel(a[k]) for k in sorted(b)])
    y = np.concatenate([np.ravel(b[k]) for k in sorted(b)])
    return float(np.abs(x - y).max() / np.abs(y).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    eng = spice.engine()
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the start; ngspice {eng.version} with "
          f"{'KLU' if eng.klu else 'Sparse 1.3 (no KLU)'}, measured in this run")
    rng, small = arrays(4, 32)
    print("\n4 layers of 32 x 32 (4096 cells): fast solver against ngspice")
    print(f"{'array':>15} {'bias':>5} {'unknowns':>9} {'solver s':>9} {'ngspice s':>10} {'ratio':>8} {'rel. error':>11}")
    ratios = []
    for name, array in small.items():
        for what in ("mvm", "read"):
            bias = bias_for(name, array, rng, what)
            solve(array, bias)  # imports and first-call costs out of the timing
            t_fast, fast = best(lambda: solve(array, bias), args.repeat)
            t_spice, ref = best(lambda: netlist3d.simulate(array, bias), 1)
            ratios.append(t_spice / t_fast)
            print(f"{name:>15} {what:>5} {fast.info['unknowns']:>9} {t_fast:9.4f} {t_spice:10.3f} "
                  f"{t_spice / t_fast:7.0f}x {rel_err(fast.i_term, ref.i_term):11.2e}", flush=True)
    print(f"geometric mean speed-up over ngspice: {np.exp(np.mean(np.log(ratios))):.0f}x")
    rng, mid = arrays(8, 64)
    print("\n8 layers of 64 x 64: two-level CG against the sparse LU (both in memsim)")
    print(f"{'array':>15} {'unknowns':>9} {'LU s':>8} {'CG s':>8} {'ratio':>7} {'rel. diff':>10}")
    for name in ("stack ohmic", "vertical ohmic"):
        array = mid[name]
        bias = bias_for(name, array, rng, "mvm")
        t_lu, lu = best(lambda: solve(array, bias, method="splu"), 1)
        t_cg, cg = best(lambda: solve(array, bias, method="pcg"), args.repeat)
        print(f"{name:>15} {cg.info['unknowns']:>9} {t_lu:8.3f} {t_cg:8.3f} {t_lu / t_cg:6.1f}x "
              f"{rel_err(cg.i_term, lu.i_term):10.1e}", flush=True)
    if args.skip_large:
        return
    rng, large = arrays(8, 256)
    print("\n8 layers of 256 x 256 (524 288 cells): fast solver alone (ngspice: not run, hours)")
    print(f"{'array':>15} {'bias':>5} {'unknowns':>9} {'solver s':>9} {'Newton it':>10} {'CG it':>6}")
    for name, array in large.items():
        for what in ("mvm", "read"):
            bias = bias_for(name, array, rng, what)
            t_fast, fast = best(lambda: solve(array, bias), max(1, args.repeat // 3))
            print(f"{name:>15} {what:>5} {fast.info['unknowns']:>9} {t_fast:9.2f} {fast.info['iterations']:>10} "
                  f"{fast.info.get('cg_iterations', 0):>6}", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
