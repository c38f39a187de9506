"""ngspice wall time for NxN MVM .op, and memsim's runner overhead over bare `ngspice -b`.

    python scripts/bench_spice.py [--sizes 16 32 64 128] [--kinds ohmic device 1t1r]

For every size and cell kind: netlist generation time, the runner's total time
(memsim.simulate: netlist + ngspice + rawfile parsing), and bare `ngspice -b -r out.raw`
on the same netlist file, timed in the same process; the overhead column is
runner / bare - 1.  Debian's ngspice 39 has no KLU, so the time grows steeply with N
(about 45 s at 128x128, 15 minutes at 256x256): 256 is only run when asked for.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--kinds", nargs="+", default=["ohmic", "device", "1t1r"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    binary = spice.ngspice_binary()
    print(f"{'kind':>6} {'N':>5} {'netlist s':>10} {'memsim.simulate s':>18} {'bare ngspice s':>15} {'overhead':>9}")
    for n in args.sizes:
        for kind in args.kinds:
            xb = crossbar(kind, n, rng)
            v = rng.uniform(0, 0.2, n)
            t0 = time.perf_counter()
            text = netlist.mvm(xb, v)
            t_netlist = time.perf_counter() - t0
            t0 = time.perf_counter()
            memsim.simulate(xb, v, timeout=7200, force=True)
            t_runner = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as work:
                cir = Path(work) / "c.cir"
                cir.write_text(text)
                t0 = time.perf_counter()
                subprocess.run([binary, "-b", "-r", str(Path(work) / "o.raw"), str(cir)], capture_output=True,
                               check=True, cwd=work)
                t_bare = time.perf_counter() - t0
            print(f"{kind:>6} {n:>5} {t_netlist:>10.3f} {t_runner:>18.3f} {t_bare:>15.3f} "
                  f"{100 * (t_runner / t_bare - 1):>8.1f}%", flush=True)


if __name__ == "__main__":
    main()
