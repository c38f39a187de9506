"""Measure the pulse response table with ngspice transients and write it next to the card.

    flock /tmp/memsim-heavy.lock python3 scripts/pulse_response.py [--out PATH]

One transient per (gap, amplitude, width, polarity) on a single selector-less cell and on a
single 1T1R cell (gate at 1.5 V as compliance); see memsim.learn.response.  Default output:
netlists/models/rram_pulse_response.json.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from memsim.learn.response import DEFAULT_TABLE, ResponseTable  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_TABLE), help="table path (default: %(default)s)")
    args = parser.parse_args(argv)
    table = ResponseTable.generate(progress=True)
    table.notes = {"made_by": "scripts/pulse_response.py", "pulse": "trapezoid, 1 ns edges, 5 ns settle before and after",
                   "energy": "integral of V*I at the row driver over the transient"}
    path = table.save(args.out)
    runs = sum(2 * len(c["gap_nm"]) * len(c["amplitude_v"]) * len(c["width_s"]) for c in table.cells)
    print(f"wrote {path}: {runs} ngspice transients in {table.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
