"""ngspice wall time for NxN MVM .op, and memsim's runner overhead over bare `ngspice -b`.

    python scripts/bench_spice.py [--sizes 16 32 64 128 256] [--kinds ohmic device 1t1r]
    python scripts/bench_spice.py --quick          # 16, 32 and 64 only

For every size and cell kind: netlist generation time, the runner's total time
(memsim.simulate: netlist + ngspice + rawfile parsing, with KLU where the engine has it),
and bare `ngspice -b -r out.raw` on the same netlist as the runner runs it (its options line
included), timed in the same process; the overhead column is runner / bare - 1.  The last
column is bare ngspice on the netlist as written, which runs Sparse 1.3 (ngspice's default),
up to --sparse-max (64 by default: Sparse 1.3 takes minutes from 128x128), so the KLU speed-up
is measured in the same run too.
"""
import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import memsim
from memsim.circuit import netlist, spice


def crossbar(kind: str, n: int, rng) -> memsim.Crossbar:
    g = rng.uniform(5e-6, 40e-6, (n, n))
    if kind == "ohmic":
        return memsim.Crossbar.ohmic(g, 1.0, 1.0)
    if kind == "device":
        return memsim.Crossbar.device(g_read=g, r_row=1.0, r_col=1.0)
    return memsim.Crossbar.one_t_one_r(g_read=g, r_row=1.0, r_col=1.0)


def bare(binary: str, text: str) -> float:
    with tempfile.TemporaryDirectory() as work:
        cir = Path(work) / "c.cir"
        cir.write_text(text)
        t0 = time.perf_counter()
        subprocess.run([binary, "-b", "-r", str(Path(work) / "o.raw"), str(cir)], capture_output=True,
                       check=True, cwd=work)
        return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--kinds", nargs="+", default=["ohmic", "device", "1t1r"])
    parser.add_argument("--quick", action="store_true", help="sizes 16, 32 and 64 only")
    parser.add_argument("--sparse-max", type=int, default=64, help="largest N also run on Sparse 1.3")
    args = parser.parse_args()
    sizes = [n for n in args.sizes if n <= 64] if args.quick else args.sizes
    rng = np.random.default_rng(0)
    binary = spice.ngspice_binary()
    eng = spice.engine()
    solver = "KLU" if eng.klu else "Sparse 1.3"
    print(f"ngspice {eng.version} ({binary}); memsim runs it with {solver}" + (f"; {eng.advice}" if eng.advice else ""))
    print(f"{'kind':>6} {'N':>5} {'netlist s':>10} {'memsim.simulate s':>18} {'bare ngspice s':>15} {'overhead':>9} "
          f"{'Sparse 1.3 s':>13} {'Sparse/runner':>14}")
    for n in sizes:
        for kind in args.kinds:
            xb = crossbar(kind, n, rng)
            v = rng.uniform(0, 0.2, n)
            t0 = time.perf_counter()
            text = netlist.mvm(xb, v)
            t_netlist = time.perf_counter() - t0
            t0 = time.perf_counter()
            memsim.simulate(xb, v, timeout=7200, force=True)
            t_runner = time.perf_counter() - t0
            t_bare = bare(binary, spice._solver_options(text, "auto", eng)[0])
            if n <= args.sparse_max and eng.klu:
                t_sparse = bare(binary, text)
                sparse = f"{t_sparse:>13.3f} {t_sparse / t_runner:>13.1f}x"
            else:
                sparse = f"{'-':>13} {'-':>14}"
            print(f"{kind:>6} {n:>5} {t_netlist:>10.3f} {t_runner:>18.3f} {t_bare:>15.3f} "
                  f"{100 * (t_runner / t_bare - 1):>8.1f}% {sparse}", flush=True)


if __name__ == "__main__":
    main()
