#!/usr/bin/env python3
"""Tile size: how large a crossbar tile can be before wire resistance costs accuracy.

Two measures against tile size T (T x T cells, T inputs x T/2 differential outputs):

- ``tile``: a random signed 256 x 32 weight matrix on rram8 differential pairs, split into
  T x T tiles whose partial sums are added digitally; output error and argmax agreement
  against the ideal product (needs nothing but memsim);
- ``network_accuracy``: test accuracy of the MNIST MLP (784-256-128-10, trained in numpy)
  mapped by memsim.nn onto the same tiles (skipped, with a note, where memsim.nn is absent).

Copy this file and edit CONFIG (keys: memsim/study/config.py).  Running it again resumes.

    python scripts/study_tile_size.py [--out DIR] [--dask ADDRESS|local] [--workers N]
"""

import memsim.study
from memsim.plots import plot_results

CONFIG = {
    "name": "tile_size",
    "metrics": ["tile", "network_accuracy"],
    "grid": {
        "tile": [16, 32, 64, 128, 256],
        "r_wire": [0.0, 1.0, 2.5],                      # ohm per wire segment
        "cell": ["device"],
        "preset": ["rram8"],
        "seed": [0],
    },
    "options": {"tile_matrix": [256, 32], "tile_inputs": 64, "network": "mlp-mnist", "network_samples": 200,
                "spice_max_size": 32},
}


def main():
    run = memsim.study.run_script(CONFIG, __doc__.split("\n\n")[0])
    rows = [r for r in memsim.study.read_results(run.path) if not r["error"]]
    print(f"\n{'T':>5} {'ohm':>5} {'tile error %':>13} {'argmax agree %':>15} {'network acc %':>14}")
    for tile in CONFIG["grid"]["tile"]:
        for r_wire in CONFIG["grid"]["r_wire"]:
            got = {r["metric"]: r for r in rows if r["tile"] == tile and r["r_wire_ohm"] == r_wire}
            t, n = got.get("tile"), got.get("network_accuracy")
            print(f"{tile:>5} {r_wire:>5g} {100 * t['tile_max_error'] if t else float('nan'):>13.3g} "
                  f"{100 * t['argmax_agreement'] if t else float('nan'):>15.1f} "
                  f"{100 * n['accuracy'] if n else float('nan'):>14.1f}")
    print(f"\nresults: {run.path} ({run.computed} points computed in {run.seconds:.0f} s, "
          f"{run.already_done} already there, {run.failed} failed)")
    for note in run.notes:
        print(f"note: {note}")
    for path in plot_results(run.path):
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
