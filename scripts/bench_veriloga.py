"""The Verilog-A models of examples/veriloga in memsim's fast solver and in ngspice (OSDI, KLU) on tiles: parity and speed.

    python scripts/bench_veriloga.py            # 64, 128 and 256 (~4 min on 2 cores)
    python scripts/bench_veriloga.py --quick    # 16 x 16 only (~10 s)

For each model (stanford_pku.va, vteam.va, yakopcic.va): the time memsim.devices.VerilogA
takes to compile it (OpenVAF, into a fresh cache), the time to build its solver table and the
table's measured error (relative, against the compiled model at the midpoints between nodes).
Then, for selector-less and 1T1R crossbars with 2.5 ohm per wire segment, states drawn
uniformly over a range that reads 5-100 uS at 0.2 V and one input vector uniform in
[0, 0.2] V: the column currents of memsim.solve (the table) against memsim.simulate
(ngspice 46, the cells as OSDI instances, KLU), as the largest difference over the largest
ngspice column current.  The speed columns time both engines on the same array in the same
run: ngspice is one memsim.simulate call (netlist, ngspice, parsing), memsim.solve the median
of 5 calls after a first one that compiles its kernels.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import memsim
from memsim.circuit import spice
from memsim.devices import VerilogA

MODELS_DIR = Path(__file__).resolve().parents[1] / "examples" / "veriloga"
V_READ = 0.2
R_WIRE = 2.5
#: model: (lowest state, highest state, state unit): each range reads about 5-100 uS at 0.2 V.
STATES = {
    "stanford_pku": (1.0, 1.7, "nm"),
    "vteam": (1.5, 3.0, "nm"),
    "yakopcic": (0.001, 0.012, ""),
}
KINDS = ("device", "1t1r")
REPEATS = 5


def load(name: str, cache_dir: Path) -> tuple[VerilogA, dict]:
    """The model compiled into ``cache_dir`` and its table built there: (device, timings)."""
    start = time.perf_counter()
    dev = VerilogA(MODELS_DIR / f"{name}.va", cache_dir=cache_dir)
    compiled = time.perf_counter()
    table = dev.table()
    built = time.perf_counter()
    return dev, {"compile_s": compiled - start, "table_s": built - compiled, "table_error": table.error,
                 "grid": table.current.shape}


def compare(dev: VerilogA, name: str, kind: str, n: int, rng: np.random.Generator) -> dict:
    """Solver against ngspice on one n x n crossbar of ``dev``: errors and times."""
    lo, hi, _ = STATES[name]
    xb = memsim.Crossbar.of_kind(kind, gap=rng.uniform(lo, hi, (n, n)), r_row=R_WIRE, r_col=R_WIRE, params=dev)
    v = rng.uniform(0.0, V_READ, n)
    start = time.perf_counter()
    reference = spice.simulate(xb, v, force=True, timeout=1800)
    spice_s = time.perf_counter() - start
    fast = memsim.solve(xb, v)  # the first call compiles the solver's kernels
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        memsim.solve(xb, v)
        times.append(time.perf_counter() - start)
    full_scale = float(np.max(np.abs(reference.i_col)))
    return {"model": name, "kind": kind, "n": n, "linear_solver": reference.info.get("linear_solver"),
            "error": float(np.max(np.abs(fast.i_col - reference.i_col))) / full_scale,
            "full_scale": full_scale, "spice_s": spice_s, "solve_s": float(np.median(times))}


def run(sizes, speed_size: int, seed: int = 0, out=print) -> tuple[dict, list[dict]]:
    """Every model's timings and every comparison; prints two markdown tables."""
    rng = np.random.default_rng(seed)
    eng = spice.engine()
    out(f"ngspice {eng.version}, linear solver {'KLU' if eng.klu else 'Sparse 1.3'}; wires {R_WIRE:g} ohm per "
        f"segment; inputs uniform in [0, {V_READ:g}] V\n")
    devices, loads, rows = {}, {}, []
    with tempfile.TemporaryDirectory(prefix="memsim-bench-va-") as cache:
        out("| model | states | G at 0.2 V (uS) | compile (s) | table build (s) | table grid | table error |")
        out("|---|---|---|---|---|---|---|")
        for name, (lo, hi, unit) in STATES.items():
            dev, info = load(name, Path(cache))
            devices[name], loads[name] = dev, info
            g_lo, g_hi = np.sort(dev.conductance(V_READ, np.array([lo, hi]))) * 1e6
            states = f"{lo:g} .. {hi:g}" + (f" {unit}" if unit else "")
            out(f"| {name} | {states} | {g_lo:.3g} .. {g_hi:.3g} | {info['compile_s']:.2f} | {info['table_s']:.2f} | "
                f"{info['grid'][0]} x {info['grid'][1]} | {info['table_error']:.2g} |")
        out("\n| model | cells | N | ngspice (s) | memsim.solve (s) | speed-up | max error / full scale "
            "| table error |")
        out("|---|---|---|---|---|---|---|---|")
        for n in sorted(set(sizes) | {speed_size}):
            for name in STATES:
                for kind in KINDS:
                    row = compare(devices[name], name, kind, n, rng)
                    rows.append(row)
                    out(f"| {name} | {kind} | {n} | {row['spice_s']:.2f} | {row['solve_s']:.4f} | "
                        f"{row['spice_s'] / row['solve_s']:.0f}x | {row['error']:.2g} | "
                        f"{loads[name]['table_error']:.2g} |")
    speed = [r["spice_s"] / r["solve_s"] for r in rows if r["n"] == speed_size]
    worst = max(rows, key=lambda r: r["error"])
    out(f"\nat {speed_size}x{speed_size}: ngspice / memsim.solve {min(speed):.0f}x .. {max(speed):.0f}x "
        f"(median {np.median(speed):.0f}x); largest error {worst['error']:.2g} of full scale "
        f"({worst['model']}, {worst['kind']}, {worst['n']}x{worst['n']})")
    return loads, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 x 16 only (parity and speed)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256], help="parity sizes")
    parser.add_argument("--speed-size", type=int, default=128, help="size of the speed comparison")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        return run([16], 16, args.seed)
    return run(args.sizes, args.speed_size, args.seed)


if __name__ == "__main__":
    main()
