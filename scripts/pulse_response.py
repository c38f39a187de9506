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


def plot(table, path) -> None:
    """Conductance change of one 50 ns pulse against the conductance, per amplitude, both cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from memsim.io import save_figure
    from memsim.learn.response import PulseModel

    g = np.linspace(5e-6, 40e-6, 200)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, kind, volts in ((axes[0], "device", (0.55, 1.0, 1.1, 1.2)), (axes[1], "1t1r", (0.7, 1.3, 1.4, 1.6))):
        model = PulseModel(table, kind)
        for v in volts:
            for sign, style in ((1, "-"), (-1, "--")):
                ax.semilogy(g * 1e6, np.abs(model.dconductance(g, sign * v, 50e-9)) * 1e6, style,
                            label=f"{'SET' if sign > 0 else 'RESET'} {sign * v:+.2f} V")
        title = "selector-less cell" if kind == "device" else f"1T1R cell, gate {model.v_gate} V"
        ax.set_title(f"{title}: |dG| per 50 ns pulse (ngspice table)")
        ax.set_xlabel("G at 0.2 V (uS)")
        ax.set_ylabel("|dG| (uS)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_TABLE), help="table path (default: %(default)s)")
    parser.add_argument("--plot", metavar="PNG", help="only plot the table at --out (conductance change per "
                        "pulse against conductance) into PNG")
    args = parser.parse_args(argv)
    if args.plot:
        plot(ResponseTable.load(args.out), args.plot)
        return 0
    table = ResponseTable.generate(progress=True)
    table.notes = {"made_by": "scripts/pulse_response.py", "pulse": "trapezoid, 1 ns edges, 5 ns settle before and after",
                   "energy": "integral of V*I at the row driver over the transient"}
    path = table.save(args.out)
    runs = sum(2 * len(c["gap_nm"]) * len(c["amplitude_v"]) * len(c["width_s"]) for c in table.cells)
    print(f"wrote {path}: {runs} ngspice transients in {table.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
