"""Measure the pulse response table with ngspice transients and write it next to the card.

    flock /tmp/memsim-heavy.lock python3 scripts/pulse_response.py [--out PATH]
    python3 scripts/pulse_response.py --device M.va [--module NAME] [--param K=V ...] [--v-max V]
        [--states S ...] [--amplitudes V ...] [--widths S ...] [--out PATH]

With --device, the table of a Verilog-A device (states in the model's own unit, a selector-less
cell; Grid.for_device's defaults for any axis not given), written to --out (default
memsim_output/pulse_response_MODULE.json).

One transient per (gap, amplitude, width, polarity) on a single selector-less cell and on a
single 1T1R cell (gate at 1.5 V as compliance); see memsim.learn.response.  Default output:
netlists/models/rram_pulse_response.json.  The table is the ngspice check of PulseModel, which
integrates the compact model's gap rate over the same pulse; the script prints the worst
disagreement of the two over the grid.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from memsim.learn.response import DEFAULT_TABLE, ResponseTable  # noqa: E402


def plot(table, path) -> None:
    """Conductance change of one 50 ns pulse against the conductance, per amplitude, both cells:
    PulseModel's integration as lines, the table's ngspice transients (its grid gaps, where the
    amplitude is on the grid) as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from memsim.devices.rram import conductance
    from memsim.io import save_figure
    from memsim.learn.response import PulseModel

    g = np.linspace(5e-6, 40e-6, 200)
    width = 50e-9
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, kind, volts in ((axes[0], "device", (0.55, 1.0, 1.1, 1.2)), (axes[1], "1t1r", (0.7, 1.3, 1.4, 1.6))):
        model = PulseModel(table, kind)
        cell = table.cell(kind)
        gaps = np.asarray(cell["gap_nm"]) * 1e-9
        g_grid = conductance(0.2, gaps, table.params)
        inside = (g_grid >= g[0]) & (g_grid <= g[-1])
        c = cell["width_s"].index(width)
        for v in volts:
            for sign, style in ((1, "-"), (-1, "--")):
                line, = ax.semilogy(g * 1e6, np.abs(model.dconductance(g, sign * v, width)) * 1e6, style,
                                    label=f"{'SET' if sign > 0 else 'RESET'} {sign * v:+.2f} V")
                on_grid = np.flatnonzero(np.isclose(cell["amplitude_v"], v))
                if on_grid.size:
                    change = np.asarray(cell["set" if sign > 0 else "reset"]["dgap_nm"])[:, on_grid[0], c] * 1e-9
                    dg = conductance(0.2, gaps + change, table.params) - g_grid
                    ax.semilogy(g_grid[inside] * 1e6, np.abs(dg[inside]) * 1e6, "o", mfc="none", ms=4,
                                color=line.get_color())
        title = "selector-less cell" if kind == "device" else f"1T1R cell, gate {model.v_gate} V"
        ax.set_title(f"{title}: |dG| per 50 ns pulse\n(lines: integrated model; circles: ngspice table)", fontsize=9)
        ax.set_xlabel("G at 0.2 V (uS)")
        ax.set_ylabel("|dG| (uS)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)


def check(table) -> None:
    """Print the worst relative disagreement of PulseModel's integration with the table."""
    import numpy as np

    from memsim.learn.response import PulseModel, state_keys

    _, change_key, scale = state_keys(table.params)
    for kind in [cell["kind"] for cell in table.cells]:
        cell, model = table.cell(kind), PulseModel(table, kind)
        for polarity in ("set", "reset"):
            change, energy = model.on_grid(polarity)
            want = np.asarray(cell[polarity][change_key])
            # Changes below 1e-6 of the largest (a threshold model below its threshold) absolutely.
            error = (np.abs(change / scale - want) / np.maximum(np.abs(want), 1e-6 * np.abs(want).max())).max()
            error_e = np.abs(energy / np.asarray(cell[polarity]["energy_j"]) - 1).max()
            print(f"{kind} {polarity}: integrated model against the table: gap change within {error:.1e}, "
                  f"energy within {error_e:.1e} (relative, worst grid point)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_TABLE), help="table path (default: %(default)s)")
    parser.add_argument("--plot", metavar="PNG", help="only plot the table at --out (conductance change per "
                        "pulse against conductance) into PNG")
    parser.add_argument("--device", metavar="M.va", help="measure this Verilog-A device instead of the built-in model")
    parser.add_argument("--module", help="the module of --device, when it defines several")
    parser.add_argument("--param", action="append", metavar="K=V", help="a parameter of --device (repeatable)")
    parser.add_argument("--v-max", type=float, default=1.0, help="--device's voltage range (V; default %(default)s)")
    for axis in ("states", "amplitudes", "widths"):
        parser.add_argument(f"--{axis}", type=float, nargs="+", help=f"--device grid {axis} (default: Grid.for_device)")
    args = parser.parse_args(argv)
    if args.device:
        return measure_device(args)
    if args.plot:
        plot(ResponseTable.load(args.out), args.plot)
        return 0
    from memsim.circuit import spice

    load = os.getloadavg()[0]
    table = ResponseTable.generate(progress=True)
    engine = spice.engine()
    table.notes = {"made_by": "scripts/pulse_response.py", "pulse": "trapezoid, 1 ns edges, 5 ns settle before and after",
                   "energy": "integral of V*I at the row driver over the transient",
                   "ngspice": f"ngspice {engine.version}{' (KLU)' if engine.klu else ''}",
                   "load_average_at_start": round(load, 2)}
    path = table.save(args.out)
    runs = sum(2 * len(c["gap_nm"]) * len(c["amplitude_v"]) * len(c["width_s"]) for c in table.cells)
    print(f"wrote {path}: {runs} transients on {table.notes['ngspice']} in {table.seconds:.0f} s "
          f"(load average {load:.2f} at the start)")
    check(table)
    return 0


def measure_device(args) -> int:
    import time

    from memsim.devices import VerilogA
    from memsim.devices.veriloga import param_pairs
    from memsim.learn.response import Grid

    device = VerilogA(args.device, args.module, param_pairs(args.param), v_max=args.v_max)
    grid = Grid.for_device(device, states=args.states, amplitudes=args.amplitudes, widths=args.widths)
    load = os.getloadavg()[0]
    table = ResponseTable.generate((grid,), device, progress=True)
    table.notes = {"made_by": "scripts/pulse_response.py --device", "load_average_at_start": round(load, 2),
                   "created": time.strftime("%Y-%m-%d")}
    out = None if args.out == str(DEFAULT_TABLE) else args.out
    path = table.save(out)
    runs = 2 * len(grid.gaps) * len(grid.amplitudes) * len(grid.widths)
    print(f"wrote {path}: {runs} transients of {device.module} in {table.seconds:.0f} s "
          f"({table.seconds / runs:.2f} s each, load average {load:.2f} at the start)")
    check(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
