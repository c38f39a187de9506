"""Nonlinear cells at network scale: selector-less and 1T1R cells against ohmic cells on the
same tiles and wires, so that sneak currents and cell nonlinearity show apart from IR drop.

    nice python3 scripts/nonlinear_table.py [--out memsim_output/nonlinear] [--models mlp-mnist]
                                            [--seeds 2] [--images 1000] [--images-1t1r N]
                                            [--workers 2] [--dask ADDRESS]
                                            [--cache memsim_output/nn/models] [--render-only]

Per model (``memsim.experiments.trained(model, seed, cache_dir=--cache)``) and seed:

- floating point, and the ideal tile (ohmic cells, no wire resistance, T = 128);
- cells in {ohmic, device (selector-less RRAM), 1t1r} x r_wire in {1, 2.5} ohm per segment x
  tile T in {64, 128, 256}.

Every hardware row uses the configuration of scripts/nn_results.py's tables (rram8 levels,
8-bit DAC and ADC, calibrated ADC range, column scaling), the nonlinear rows the default batched
circuit model (NonlinearBatched), which checks itself against the exact solver at programming:
the row records the largest such tile error (``measured_error``, fraction of a column's full
scale).  ``loss vs ohmic`` is the ohmic row's accuracy minus this row's at the same r and T:
what sneak currents and the cells' nonlinearity cost on top of IR drop.

The first ``--images`` test images (``--images-1t1r`` for the 1T1R rows, default the same).
Each row (model, key, seed, images) is a point of :func:`memsim.study.run_tasks`: the points
run on ``--workers`` processes of one thread each, or on Dask (``--dask``); every finished row
is stored at once in ``<out>/results.sqlite``, so an interrupted run resumes where it stopped,
and exported to ``<out>/results.jsonl``, which ``table.md`` and ``nonlinear_loss.png`` are
rebuilt from (``--render-only`` also reads the older results logs of the same name).  A rerun
with other ``--images`` or ``--seeds`` adds its rows beside the old ones; the table averages
the rows of each model, row and image count over seeds.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

import memsim.study
from memsim.errors import MemsimError
from memsim.io import FileError, save_figure, write_atomic
from memsim import experiments as ex
from memsim.nn.config import HardwareConfig

CELLS = ("ohmic", "device", "1t1r")
R_WIRES = (1.0, 2.5)
TILES = (64, 128, 256)
CELL_NAMES = {"ohmic": "ohmic", "device": "selector-less", "1t1r": "1T1R"}
TITLES = {"mlp-mnist": "784-256-BN-128-BN-10 MLP, MNIST subset",
          "lenet-fashion": "LeNet-5-class CNN, Fashion-MNIST",
          "resnet-fashion": "small ResNet with BatchNorm, Fashion-MNIST"}


def base_config() -> HardwareConfig:
    # one thread: each point runs in a worker process of its own (--workers)
    return HardwareConfig(tile=128, conductances="rram8", dac_bits=8, adc_bits=8, workers=1)


def specs():
    """(key, cells, r_wire, tile, config) of every hardware row, in table order."""
    base = base_config()
    rows = [("ideal", "ohmic", 0.0, 128, base)]
    for cells in CELLS:
        for r in R_WIRES:
            for tile in TILES:
                rows.append((f"{cells}-r{r:g}-T{tile}", cells, r, tile, base.replace(cells=cells, r_wire=r, tile=tile)))
    return rows


def largest_tile_error(analog):
    """Largest ``measured_error`` of the tiles whose circuit model checks itself, else None."""
    errors = [tile.circuit.measured_error for tile in analog.tiles()
              if getattr(tile.circuit, "measured_error", None) is not None]
    return max(errors) if errors else None


def points(args):
    """The grid: per model and seed, the float row and every hardware row not in --skip."""
    out = []
    for model in args.models:
        for seed in args.seeds:
            if "float" not in args.skip:
                out.append({"model": model, "key": "float", "seed": seed, "images": args.images})
            for key, cells, *_ in specs():
                if key not in args.skip:
                    images = args.images_1t1r if cells == "1t1r" else args.images
                    out.append({"model": model, "key": key, "seed": seed, "images": images})
    return out


def run_row(point, cache):
    """One row (a point of the grid) in a worker: its accuracy, tile error and wall time."""
    import torch

    from memsim.nn.analog import convert

    torch.set_num_threads(1)
    model, key, seed, images = point["model"], point["key"], point["seed"], point["images"]
    net, data = ex.trained(model, seed, cache_dir=cache)
    net = net.float()
    x, y = data.x_test[:images], data.y_test[:images]
    if len(y) < images:
        raise ValueError(f"{model} has only {len(y)} test images, not {images}: lower --images")
    if key == "float":
        return {"accuracy": ex.float_accuracy(net, x, y), "error": None, "seconds": 0.0}
    _, cells, r, tile, config = next(spec for spec in specs() if spec[0] == key)
    start = time.perf_counter()
    analog = convert(net, config, seed=seed, calibration_x=ex.calibration_inputs(config, data))
    accuracy = analog.accuracy(x, y)
    item = {"cells": cells, "r_wire": r, "tile": tile, "accuracy": accuracy, "error": largest_tile_error(analog),
            "seconds": time.perf_counter() - start, "load": os.getloadavg()[0]}
    err = "-" if item["error"] is None else f"{100 * item['error']:.3f} %"
    print(f"{model} seed {seed} {key} ({len(y)} images): {100 * accuracy:.1f} %, tile error {err}, "
          f"{item['seconds']:.1f} s, load {item['load']:.2f}", file=sys.stderr, flush=True)
    return item


def run(args):
    cache = os.path.abspath(args.cache)
    for model in args.models:  # trained (or loaded) here once, so no two workers train the same network
        for seed in args.seeds:
            ex.trained(model, seed, cache_dir=cache, progress=True)
    result = memsim.study.run_tasks("results", points(args), functools.partial(run_row, cache=cache), out=args.out,
                                    workers=args.workers, dask=args.dask)
    print(result.describe("listed above"), file=sys.stderr)
    return result


def grouped(rows):
    """{(model, key): [rows]} keeping, per (model, key), the rows of its largest image count."""
    out = {}
    for row in rows:
        out.setdefault((row["model"], row["key"]), []).append(row)
    for group, items in out.items():
        most = max(item["images"] for item in items)
        out[group] = [item for item in items if item["images"] == most]
    return out


def mean(items, field="accuracy"):
    return float(np.mean([item[field] for item in items]))


def render_table(rows, models) -> str:
    groups = grouped(rows)
    lines = []
    for model in models:
        if not any(m == model for m, _ in groups):
            continue
        floats = groups.get((model, "float"), [])
        seeds = sorted({item["seed"] for (m, _), items in groups.items() if m == model for item in items})
        images = sorted({item["images"] for (m, _), items in groups.items() if m == model for item in items})
        lines += [f"### {TITLES.get(model, model)}",
                  "",
                  f"seeds {', '.join(map(str, seeds))} (accuracy: mean over the seeds of each row, n below); "
                  f"first {' / '.join(map(str, images))} test images (count per row below); rram8 levels, "
                  "8-bit DAC and ADC; batched circuit model for the nonlinear cells",
                  "",
                  "| cells | r (ohm) | T | images | n | accuracy % | loss vs ohmic (pp) | largest tile error % "
                  "| wall s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        if floats:
            lines.append(f"| floating point | | | {floats[0]['images']} | {len(floats)} | "
                         f"{100 * mean(floats):.1f} | | | |")
        for key, cells, r, tile, _ in specs():
            items = groups.get((model, key))
            if not items:
                continue
            ohmic = groups.get((model, f"ohmic-r{r:g}-T{tile}"))
            loss = ""
            if cells != "ohmic" and key != "ideal" and ohmic:
                # the same seeds on both sides
                pairs = {item["seed"]: item["accuracy"] for item in ohmic}
                diffs = [pairs[item["seed"]] - item["accuracy"] for item in items if item["seed"] in pairs]
                loss = f"{100 * np.mean(diffs):+.1f}" if diffs else ""
            errors = [item["error"] for item in items if item.get("error") is not None]
            error = f"{100 * max(errors):.3f}" if errors else "-"
            name = "ideal tile (ohmic, no wires)" if key == "ideal" else CELL_NAMES[cells]
            lines.append(f"| {name} | {r:g} | {tile} | {items[0]['images']} | {len(items)} | {100 * mean(items):.1f} | "
                         f"{loss} | {error} | {mean(items, 'seconds'):.0f} |")
        loads = [item["load"] for (m, _), items in groups.items() if m == model for item in items if "load" in item]
        if loads:
            lines += ["", f"machine load average (1 min) at the end of each row: {min(loads):.2f} to {max(loads):.2f} "
                      f"on {os.cpu_count()} CPU(s); wall s: mean per seed, programming and the tile self-checks included"]
        lines.append("")
    return "\n".join(lines)


def render_figure(rows, models, path):
    from matplotlib.figure import Figure

    groups = grouped(rows)
    models = [m for m in models if any(g[0] == m and g[1].startswith(("device", "1t1r")) for g in groups)]
    if not models:
        return False
    fig = Figure(figsize=(5.2 * len(models), 4.0))
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    styles = {("device", 1.0): ("C0", "o", "-"), ("device", 2.5): ("C0", "o", "--"),
              ("1t1r", 1.0): ("C3", "s", "-"), ("1t1r", 2.5): ("C3", "s", "--")}
    for ax, model in zip(axes, models):
        for (cells, r), (color, marker, ls) in styles.items():
            ts, losses = [], []
            for tile in TILES:
                items, ohmic = groups.get((model, f"{cells}-r{r:g}-T{tile}")), groups.get((model, f"ohmic-r{r:g}-T{tile}"))
                if items and ohmic:
                    pairs = {item["seed"]: item["accuracy"] for item in ohmic}
                    diffs = [pairs[i["seed"]] - i["accuracy"] for i in items if i["seed"] in pairs]
                    if diffs:
                        ts.append(tile)
                        losses.append(100 * np.mean(diffs))
            if ts:
                ax.plot(ts, losses, color=color, marker=marker, ls=ls, mfc="none" if ls == "--" else color, label=f"{CELL_NAMES[cells]}, r = {r:g} ohm")
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(TILES)
        ax.set_xticklabels([str(t) for t in TILES])
        ax.set_xlabel("tile size T (rows = columns)")
        ax.set_ylabel("accuracy loss vs ohmic cells, same r and T (pp)")
        ax.set_title(TITLES.get(model, model), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join("memsim_output", "nonlinear"))
    parser.add_argument("--models", default="mlp-mnist", help=f"comma list of {', '.join(TITLES)}")
    parser.add_argument("--seeds", default="2", help="a count (2: seeds 0 and 1) or a comma list")
    parser.add_argument("--images", type=int, default=1000, help="first N test images (default 1000)")
    parser.add_argument("--images-1t1r", type=int, help="first N test images for the 1T1R rows (default --images)")
    parser.add_argument("--skip", default="", help="row keys not to run (comma list, e.g. float,ideal)")
    memsim.study.add_executor_options(parser)
    parser.add_argument("--cache", default=os.path.join("memsim_output", "nn", "models"),
                        help="trained-model folder (models missing there are trained and saved)")
    parser.add_argument("--render-only", action="store_true", help="rebuild table and figure from results.jsonl "
                                                                     "(the store's export, or an older results log)")
    args = parser.parse_args(argv)
    try:
        args.seeds = ex.parse_seeds(args.seeds)
    except ValueError as err:
        parser.error(str(err))
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in TITLES]
    if unknown or not args.models:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(TITLES)}")
    if args.images < 1 or (args.images_1t1r is not None and args.images_1t1r < 1):
        parser.error("--images and --images-1t1r must be >= 1")
    args.images_1t1r = args.images if args.images_1t1r is None else args.images_1t1r
    keys = {"float"} | {key for key, *_ in specs()}
    args.skip = {k.strip() for k in args.skip.split(",") if k.strip()}
    if args.skip - keys:
        parser.error(f"unknown row key(s) {sorted(args.skip - keys)}; keys: {', '.join(sorted(keys))}")
    path = os.path.join(args.out, "results.jsonl")
    failed = 0
    try:
        if not args.render_only:
            failed = run(args).failed
        rows = memsim.study.read_records(path)
    except (FileError, MemsimError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    shown = [m for m in TITLES if any(row['model'] == m for row in rows)]
    table = render_table(rows, shown)
    write_atomic(os.path.join(args.out, "table.md"), table + "\n")
    figure = render_figure(rows, shown, os.path.join(args.out, "nonlinear_loss.png"))
    print(table)
    print(f"\nwrote {os.path.join(args.out, 'table.md')}" + (" and nonlinear_loss.png" if figure else ""),
          file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
