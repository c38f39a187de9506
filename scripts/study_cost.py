#!/usr/bin/env python3
"""Array size against cost: accuracy beside energy, area and latency per inference.

Runs examples/cost/array_size.toml (the ``network_cost`` metric: the 64-64-10 digits MLP
with the weights shipped with memsim on T x T tiles, every tile size x wire resistance x ADC
bits), then writes into examples/cost/ (or ``--docs``):

- ``array_size.csv``, the study's results file;
- ``array_size_pareto.png``: accuracy against energy per inference and against area, every
  point coloured by tile size and shaped by wire resistance, the Pareto front (no other point
  both cheaper and at least as accurate) drawn as a line with its points labelled T/r/bits;
- the tables of examples/cost/README.md between its ``<!-- study_cost: begin -->`` and
  ``<!-- study_cost: end -->`` lines.

The study resumes from ``--out`` (default memsim-out/, as ``memsim study``).

    python scripts/study_cost.py [--out DIR] [--docs DIR] [--workers N] [--dask ADDRESS|local]
    python scripts/study_cost.py --render-only examples/cost/array_size.csv
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "cost" / "array_size.toml"
DOCS = ROOT / "examples" / "cost"
BEGIN, END = "<!-- study_cost: begin -->", "<!-- study_cost: end -->"
MARKERS = {0.0: "o", 2.5: "s", 10.0: "^", 20.0: "D"}


def label(row) -> str:
    return f"T{row['tile']}/{row['r_wire_ohm']:g}Ω/{row['adc_bits']}b"


def front_of(rows, cost_key):
    from memsim.cost.pareto import pareto_front

    mask = pareto_front([r[cost_key] for r in rows], [r["accuracy"] for r in rows])
    return sorted((r for r, on in zip(rows, mask) if on), key=lambda r: r[cost_key])


def _scatter(ax, rows, key, scale, tiles):
    for r in rows:
        ax.scatter(r[key] * scale, 100 * r["accuracy"], s=14 + 6 * r["adc_bits"],
                   marker=MARKERS.get(r["r_wire_ohm"], "x"), color=f"C{tiles.index(r['tile'])}", alpha=0.55,
                   edgecolors="none")
    front = front_of(rows, key)
    xs, ys = [r[key] * scale for r in front], [100 * r["accuracy"] for r in front]
    ax.plot(xs, ys, "k-", lw=1.2, zorder=3, drawstyle="steps-post", label="Pareto front")
    ax.scatter(xs, ys, s=70, facecolors="none", edgecolors="k", zorder=4)
    ax.axhline(100 * rows[0]["accuracy_float"], color="gray", ls="--", lw=1, label="floating-point network")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    return front


def _label_front(ax, front, key, scale):
    for k, r in enumerate(front):
        ax.annotate(label(r), (r[key] * scale, 100 * r["accuracy"]), textcoords="offset points",
                    xytext=(8, -3) if k % 2 == 0 else (-8, -3), ha="left" if k % 2 == 0 else "right", fontsize=6.5)


def figure(rows, path: Path) -> None:
    from matplotlib.figure import Figure

    from memsim.io import save_figure

    tiles = sorted({r["tile"] for r in rows})
    fig = Figure(figsize=(15, 5.2), layout="constrained")
    whole, zoom, area = fig.subplots(1, 3)
    _scatter(whole, rows, "energy_J", 1e9, tiles)
    whole.set_xscale("log")
    whole.set_xlabel("energy per inference (nJ)")
    whole.set_title("every point", fontsize=9)
    front = _scatter(zoom, rows, "energy_J", 1e9, tiles)
    energies = [r["energy_J"] * 1e9 for r in front]
    span = max(energies) - min(energies)
    zoom.set_xlim(min(energies) - 0.15 * span, max(energies) + 0.15 * span)
    zoom.set_ylim(max(min(100 * r["accuracy"] for r in front) - 3, 0), 100)
    zoom.set_xlabel("energy per inference (nJ)")
    zoom.set_title("the front, enlarged (labels: tile / wire resistance / ADC bits)", fontsize=9)
    _label_front(zoom, front, "energy_J", 1e9)
    _label_front(area, _scatter(area, rows, "area_m2", 1e6, tiles), "area_m2", 1e6)
    area.set_xscale("log")
    area.set_xlabel("area of cells and ADCs (mm²)")
    area.set_title("accuracy against area", fontsize=9)
    for k, tile in enumerate(tiles):
        whole.scatter([], [], color=f"C{k}", marker="o", label=f"T = {tile}")
    for r_wire, marker in MARKERS.items():
        whole.scatter([], [], color="gray", marker=marker, label=f"{r_wire:g} Ω/segment")
    whole.legend(fontsize=7, loc="lower right", title="marker size: ADC bits", title_fontsize=7)
    fig.suptitle("mlp-digits on T x T selector-less RRAM tiles (rram8): accuracy against energy and area per inference",
                 fontsize=10)
    save_figure(fig, path)


def tables(rows) -> str:
    bits = sorted({r["adc_bits"] for r in rows})
    tiles = sorted({r["tile"] for r in rows})
    wires = sorted({r["r_wire_ohm"] for r in rows})
    at = {(r["tile"], r["r_wire_ohm"], r["adc_bits"]): r for r in rows}
    out = ["Test accuracy (%, all 360 test images, one image 0.28 %; the float network: "
           f"{100 * rows[0]['accuracy_float']:.1f} %) and energy per inference (nJ) at each ADC resolution:", "",
           "| T | Ω/segment | " + " | ".join(f"{b}-bit" for b in bits) + " | energy, " +
           " / ".join(f"{b}" for b in bits) + f" bits (nJ) | latency at {bits[-1]} bits (µs) | area at {bits[-1]} bits (mm²) |",
           "|---|---|" + "---|" * len(bits) + "---|---|---|"]
    for tile in tiles:
        for r_wire in wires:
            got = [at.get((tile, r_wire, b)) for b in bits]
            acc = " | ".join(f"{100 * g['accuracy']:.1f}" if g else "" for g in got)
            energy = " / ".join(f"{g['energy_J'] * 1e9:.3f}" if g else "-" for g in got)
            last = got[-1]
            out.append(f"| {tile} | {r_wire:g} | {acc} | {energy} | {last['latency_s'] * 1e6:.3f} | "
                       f"{last['area_m2'] * 1e6:.4f} |")
    out += ["", "The Pareto front of accuracy against energy (every other point is both costlier and no more "
            "accurate than one of these):", "",
            "| T / Ω / ADC bits | accuracy % | energy nJ | array | ADC | digital | latency µs | area mm² | TOPS/W | "
            "TOPS/mm² |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in front_of(rows, "energy_J"):
        e = r["energy_J"]
        out.append(f"| {label(r)} | {100 * r['accuracy']:.1f} | {e * 1e9:.3f} | {100 * r['array_energy_J'] / e:.1f} % | "
                   f"{100 * r['adc_energy_J'] / e:.1f} % | {100 * r['digital_energy_J'] / e:.1f} % | "
                   f"{r['latency_s'] * 1e6:.3f} | {r['area_m2'] * 1e6:.4f} | {r['tops_per_w']:.1f} | "
                   f"{r['tops_per_mm2']:.1f} |")
    return "\n".join(out)


def render(results: Path, docs: Path) -> None:
    from memsim.io import write_atomic
    from memsim.study import read_results

    rows = [r for r in read_results(results) if r["metric"] == "network_cost" and not r["error"]]
    if not rows:
        raise SystemExit(f"no finished network_cost rows in {results}")
    figure(rows, docs / "array_size_pareto.png")
    text = tables(rows)
    print(text)
    readme = docs / "README.md"
    old = readme.read_text()
    if BEGIN not in old or END not in old:
        raise SystemExit(f"{readme} has no {BEGIN} ... {END} lines to write the tables between")
    head, rest = old.split(BEGIN, 1)
    write_atomic(readme, head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    print(f"\nfigure: {docs / 'array_size_pareto.png'}\ntables: {readme}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=DOCS, help="where the CSV copy, figure and README go "
                                                                 "(default examples/cost)")
    parser.add_argument("--render-only", type=Path, metavar="CSV", help="redraw from a results file, run nothing")
    import memsim.study

    memsim.study.add_executor_options(parser)
    parser.add_argument("--out", type=Path, default=Path(memsim.study.DEFAULT_OUT), help="study folder (resumed)")
    args = parser.parse_args(argv)
    if args.render_only is not None:
        render(args.render_only, args.docs)
        return 0
    from memsim.io import write_atomic

    run = memsim.study.run(CONFIG, out=args.out, dask=args.dask, workers=args.workers)
    print(run.describe("see the error column"))
    csv = args.docs / "array_size.csv"
    write_atomic(csv, run.path.read_text())
    render(csv, args.docs)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
