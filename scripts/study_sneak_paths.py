#!/usr/bin/env python3
"""Sneak paths: read margin against array size N for every bias scheme, selector-less and 1T1R.

Reads the far-corner cell of an N x N array with every other cell at LRS (the worst case),
for the four bias schemes, with and without wire resistance; finds the N at which each
scheme falls below the 10 % sensing limit (bisection on N); ngspice checks N <= 64; a SET
pulse on an 8 x 8 array gives the half-select write disturb of each scheme.  Copy this file
and edit CONFIG (keys: memsim/study/config.py).  Running it again resumes an interrupted run.

    python scripts/study_sneak_paths.py [--out DIR] [--dask ADDRESS|local] [--workers N]
"""

import memsim.study
from memsim.plots import plot_results

CONFIG = {
    "name": "sneak_paths",
    "metrics": ["read_margin", "margin_crossover", "write_disturb"],
    "grid": {
        "size": [8, 16, 32, 64, 128, 256, 512, 1024],
        "r_wire": [0.0, 1.0, 2.5],                      # ohm per wire segment
        "cell": ["device", "1t1r"],                     # selector-less, 1T1R
        "scheme": ["floating", "v/2", "v/3", "grounded"],
        "preset": ["rram8"],                            # 8 levels, 5-40 uS at 0.2 V: LRS 40 uS, HRS 5 uS
    },
    "options": {"v_read": 0.2, "margin_threshold": 0.1, "crossover_max_size": 512,
                "spice_max_size": 64, "disturb_max_size": 8, "v_write": 1.8, "t_write": 50e-9},
}


def main():
    run = memsim.study.run_script(CONFIG, __doc__.split("\n\n")[0])
    rows = memsim.study.read_results(run.path)
    limit = 100 * CONFIG["options"]["margin_threshold"]
    print(f"\nfirst N with a read margin below {limit:g} % (fast solver; 'never' = not up to N = "
          f"{CONFIG['options']['crossover_max_size']}):")
    print(f"{'cell':>8} {'r_wire':>7} " + " ".join(f"{s:>9}" for s in CONFIG["grid"]["scheme"]))
    for cell in CONFIG["grid"]["cell"]:
        for r_wire in CONFIG["grid"]["r_wire"]:
            found = {r["scheme"]: r["crossover_n"] for r in rows if r["metric"] == "margin_crossover"
                     and r["cell"] == cell and r["r_wire_ohm"] == r_wire}
            print(f"{cell:>8} {r_wire:>7g} " + " ".join(
                f"{'never' if found.get(s) is None else found[s]:>9}" for s in CONFIG["grid"]["scheme"]))
    print(f"\nresults: {run.path} ({run.computed} points computed in {run.seconds:.0f} s, "
          f"{run.already_done} already there, {run.failed} failed)")
    for path in plot_results(run.path):
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
