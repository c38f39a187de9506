#!/usr/bin/env python3
"""3D arrays: read margin and MVM error against layer count, per-layer size, bias scheme and
via / pillar resistance, for stacked cross-point layers and vertical RRAM (bulk-RRAM preset).

Cells are selector-less RRAM with the bulk preset's compact-model parameters (memsim.circuit.stacked.
BULK_RRAM64: 64 levels, 1-10 MOhm at a 0.2 V read).  Read margin, as for 2D arrays
(docs/design.md): the selected cell at the highest level (LRS) and at the lowest (HRS), every
other cell at LRS (the worst case), margin = (I_LRS - I_HRS) / I_LRS of the sensed current; the
selected cell is the one farthest from the drivers (stack: middle cell layer, word line 0, bit
line C - 1; vertical: top plane, pillar row 0, pillar column P_c - 1, the far side of the plane
contact).  MVM error: random levels and random inputs in [0, 0.2] V, max |I - I_ideal| / max
I_ideal over the sensed lines (stack: the middle layer, the others floating or grounded;
vertical: every plane driven, every pillar sensed).

    python scripts/study_3d.py [--out DIR] [--quick]

The full run takes about 10 min on 2 cores (the 256 x 256 vertical arrays dominate); --quick ~30 s.

Writes DIR/study_3d.json and DIR/study_3d.png (default DIR: memsim_output/study_3d).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from memsim import io
from memsim.solver.stacked import solve
from memsim.circuit.stacked import BULK_RRAM64, StackedCrossbar, VerticalArray, ideal_mvm, mvm_bias, read_bias

SCHEMES = ("floating", "v/2", "v/3", "grounded")
V_READ = 0.2
THRESHOLD = 0.1
#: Wires of a 40 nm process, per cell pitch (ohm): word and bit lines, via, plane sheet, pillar segment.
R_LINE, R_VIA, R_PLANE, R_PILLAR = 2.5, 10.0, 10.0, 100.0


def build(topology, gap, r_link):
    params = BULK_RRAM64.params
    if topology == "stack":
        return StackedCrossbar.device(gap, r_row=R_LINE, r_col=R_LINE, r_via=r_link, params=params)
    return VerticalArray.device(gap, r_plane=R_PLANE, r_pillar=r_link, params=params)


def read_margin(topology, layers, n, scheme, r_link):
    lrs, hrs = BULK_RRAM64.level_gaps[-1], BULK_RRAM64.level_gaps[0]
    gap = np.full((layers, n, n), lrs)
    cell = (layers // 2, 0, n - 1) if topology == "stack" else (layers - 1, 0, n - 1)
    currents = []
    for state in (lrs, hrs):
        gap[cell] = state
        array = build(topology, gap, r_link)
        bias = read_bias(array, cell, V_READ, scheme)
        currents.append(solve(array, bias).read_current(array, bias))
    return (currents[0] - currents[1]) / currents[0]


def mvm_error(topology, layers, n, others, r_link, seed=0):
    rng = np.random.default_rng(seed)
    gap = BULK_RRAM64.level_gaps[rng.integers(0, 64, (layers, n, n))]
    array = build(topology, gap, r_link)
    if topology == "stack":
        layer = layers // 2
        v = rng.uniform(0, V_READ, n)
        bias = mvm_bias(array, v, layer, others)
        ideal = ideal_mvm(array, v, layer)
    else:
        v = rng.uniform(0, V_READ, layers)
        bias = mvm_bias(array, v)
        ideal = ideal_mvm(array, v)
    got = solve(array, bias).sensed(array, bias)
    return float(np.abs(got - ideal).max() / np.abs(ideal).max())


def crossing(layers, margins):
    below = [l for l, m in zip(layers, margins) if m < THRESHOLD]
    return below[0] if below else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="memsim_output/study_3d")
    parser.add_argument("--quick", action="store_true", help="per-layer size 16 only (~30 s)")
    args = parser.parse_args()
    layer_counts = list(range(1, 9))
    sizes = [16] if args.quick else [16, 64, 256]
    links = [0.0, 100.0, 1e3, 1e4, 1e5]
    t_start = time.perf_counter()
    results = {"settings": {"v_read": V_READ, "threshold": THRESHOLD, "r_line": R_LINE, "r_via": R_VIA,
                            "r_plane": R_PLANE, "r_pillar": R_PILLAR, "preset": BULK_RRAM64.name,
                            "g_range_S": [BULK_RRAM64.levels[0], BULK_RRAM64.levels[-1]]},
               "margin": [], "margin_vs_link": [], "mvm": []}
    for topology, link in (("stack", R_VIA), ("vertical", R_PILLAR)):
        for n in sizes:
            for scheme in SCHEMES:
                # 256 x 256 per layer: layer counts 1 and 8 (each read is two sparse Newton solves)
                counts = layer_counts if n < 256 else [1, 8]
                margins = [read_margin(topology, layers, n, scheme, link) for layers in counts]
                results["margin"].append({"topology": topology, "size": n, "scheme": scheme, "layers": counts,
                                          "margin": margins, "first_below_10pct": crossing(counts, margins)})
                print(f"{topology:>8} N={n:<4} {scheme:>9}: " + " ".join(f"{100 * m:5.1f}" for m in margins)
                      + f"  (%, L = {counts[0]}..{counts[-1]})", flush=True)
        for scheme in SCHEMES:
            margins = [read_margin(topology, 8, 16, scheme, r) for r in links]
            results["margin_vs_link"].append({"topology": topology, "size": 16, "layers": 8, "scheme": scheme,
                                              "r_link": links, "margin": margins})
        for others in (("floating", "grounded") if topology == "stack" else ("floating",)):
            for n in sizes[:2]:  # MVM error at the two smaller sizes
                errors = [mvm_error(topology, layers, n, others, link) for layers in layer_counts]
                results["mvm"].append({"topology": topology, "size": n, "others": others, "layers": layer_counts,
                                       "error": errors})
                print(f"{topology:>8} N={n:<4} MVM others {others}: " + " ".join(f"{100 * e:6.3f}" for e in errors)
                      + " (% of full scale)", flush=True)
    results["seconds"] = time.perf_counter() - t_start
    out = Path(args.out)
    io.write_atomic(out / "study_3d.json", json.dumps(results, indent=1))
    figure = plot(results, out / "study_3d.png")
    print(f"\nfirst layer count with a read margin below {100 * THRESHOLD:g} % ('-': not within 1-8):")
    print(f"{'topology':>8} {'N':>4} " + " ".join(f"{s:>9}" for s in SCHEMES))
    for topology in ("stack", "vertical"):
        for n in sizes:
            found = {r["scheme"]: r["first_below_10pct"] for r in results["margin"]
                     if r["topology"] == topology and r["size"] == n}
            print(f"{topology:>8} {n:>4} " + " ".join(f"{'-' if found[s] is None else found[s]:>9}" for s in SCHEMES))
    print(f"\nresults: {out / 'study_3d.json'}, figure: {figure} ({results['seconds']:.0f} s)")


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    styles = {"floating": "o-", "v/2": "s-", "v/3": "^-", "grounded": "d-"}
    sizes = sorted({r["size"] for r in results["margin"]})
    for row, topology in enumerate(("stack", "vertical")):
        ax = axes[row, 0]
        for r in results["margin"]:
            if r["topology"] == topology and r["size"] in sizes[:2]:  # full layer sweeps
                ax.plot(r["layers"], 100 * np.array(r["margin"]), styles[r["scheme"]],
                        alpha=1.0 if r["size"] == sizes[0] else 0.45, label=f"{r['scheme']}, N={r['size']}")
        ax.axhline(100 * THRESHOLD, color="k", lw=0.8, ls=":")
        ax.set(xlabel="layers", ylabel="read margin (%)", yscale="log",
               title=f"{topology}: read margin vs layers (64 levels, 1-10 MOhm)")
        ax.legend(fontsize=7, ncol=2)
        ax = axes[row, 1]
        for r in results["margin_vs_link"]:
            if r["topology"] == topology:
                x = np.maximum(r["r_link"], 1.0)
                ax.plot(x, 100 * np.array(r["margin"]), styles[r["scheme"]], label=r["scheme"])
        ax.axhline(100 * THRESHOLD, color="k", lw=0.8, ls=":")
        name = "via" if topology == "stack" else "pillar segment"
        ax.set(xscale="log", yscale="log", xlabel=f"{name} resistance (ohm; 0 drawn at 1)", ylabel="read margin (%)",
               title=f"{topology}: 8 layers of 16x16 vs {name} resistance")
        ax.legend(fontsize=7)
        ax = axes[row, 2]
        for r in results["mvm"]:
            if r["topology"] == topology:
                ax.plot(r["layers"], 100 * np.array(r["error"]), "o-", label=f"N={r['size']}, others {r['others']}")
        ax.set(xlabel="layers", ylabel="MVM error (% of full scale)", yscale="log",
               title=f"{topology}: MVM error vs layers")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return io.save_figure(fig, path)


if __name__ == "__main__":
    main()
