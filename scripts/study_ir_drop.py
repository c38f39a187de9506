#!/usr/bin/env python3
"""IR drop: MVM error against array size N and wire resistance; power and energy per MVM.

Random rram8 levels and random inputs (0 to 0.2 V) on N x N selector-less and 1T1R arrays,
every row driven, every column sensed; the error is against the ideal product of the same
cells (ideal wires, ideal switch).  ngspice checks N <= 64.  Copy this file and edit CONFIG
(keys: memsim/study/config.py).  Running it again resumes an interrupted run.

    python scripts/study_ir_drop.py [--out DIR] [--dask ADDRESS|local] [--workers N]
"""

import memsim.study
from memsim.plots import plot_results

CONFIG = {
    "name": "ir_drop",
    "metrics": ["mvm"],
    "grid": {
        "size": [16, 32, 64, 128, 256, 512, 1024],
        "r_wire": [0.0, 0.25, 0.5, 1.0, 2.5, 5.0],      # ohm per wire segment
        "cell": ["device", "1t1r"],
        "preset": ["rram8"],
        "levels": [8],
        "seed": [0],
    },
    "options": {"v_read": 0.2, "inputs": 4, "read_time": 10e-9, "spice_max_size": 64},
}


def main():
    run = memsim.study.run_script(CONFIG, __doc__.split("\n\n")[0])
    rows = [r for r in memsim.study.read_results(run.path) if r["metric"] == "mvm" and not r["error"]]
    sizes = CONFIG["grid"]["size"]
    for cell in CONFIG["grid"]["cell"]:
        print(f"\n{cell}: largest MVM error against the ideal product (%), rows: ohm per segment, columns: N")
        print(f"{'':>6} " + " ".join(f"{n:>7}" for n in sizes))
        for r_wire in CONFIG["grid"]["r_wire"]:
            err = {r["size"]: r["mvm_max_error"] for r in rows if r["cell"] == cell and r["r_wire_ohm"] == r_wire}
            print(f"{r_wire:>6g} " + " ".join(f"{100 * err[n]:>7.3g}" if n in err else f"{'-':>7}" for n in sizes))
    print(f"\nresults: {run.path} ({run.computed} points computed in {run.seconds:.0f} s, "
          f"{run.already_done} already there, {run.failed} failed)")
    for path in plot_results(run.path):
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
