"""The network-level results table and the accuracy-against-time figure.

    nice python3 scripts/nn_results.py [--out memsim_output/nn] [--seeds 5] [--models mlp-mnist,mlp-digits]
                                       [--workers 2] [--dask ADDRESS] [--images-1t1r 200] [--images N]
                                       [--render-only]
    nice python3 scripts/nn_results.py --models lenet-fashion,resnet-fashion --seeds 3 --out memsim_output/cnn
    nice python3 scripts/nn_results.py --models vit-fashion --seeds 1 --out examples/nn/vit-fashion

For the MLPs (784-256-BN-128-BN-10 on the MNIST subset, 64-64-10 on digits), over ``--seeds``
seeds (seed s trains the float network and draws every device random number):

- floating point; the ideal crossbar (rram8 and rram64 levels, 8-bit DAC and ADC);
- + IR drop at r = 1, 2.5, 10 ohm per segment on tiles of 64, 128, 256 (ohmic cells);
- + device nonlinearity (selector-less RRAM, ideal wires and r = 2.5 ohm), 1T1R cells;
- + RRAM programming and read noise (r = 2.5 ohm), then its drift at 1 s ... 10 years;
- the PCM-like model in aihwkit's setting: uncompensated, with global drift compensation,
  and with BatchNorm re-calibration, at the same times, next to aihwkit 1.2.0's quoted figures
  (aihwkit's own training; scripts/compare_aihwkit.py runs both tools on identical weights);
- (MNIST) how those 10-year figures depend on the float training recipe.

For the networks on Fashion-MNIST (LeNet-5-class, the small ResNet, the row-by-row LSTM and the
vision transformer): floating point; ideal
quantised tiles; IR drop at T = 64 / 128 / 256 and r = 1 and 2.5 ohm; the RRAM and PCM-like
drift models at 1 day, 1 year and 10 years with no compensation, global drift compensation
and BatchNorm re-calibration (models with BatchNorm); and, at 10 years on the PCM-like model,
the network fine-tuned hardware-aware for one epoch (PCM-like programming and output noise in
every forward pass) against the plain one.

Each (model, row, seed) is a point of :func:`memsim.study.run_tasks`, run on ``--workers``
processes of one thread each or on Dask (``--dask``); every finished point is stored at once
in ``results.sqlite``, so an interrupted run resumes where it stopped, and exported to
``results.jsonl``, which the table (``nn_results.txt``) and the figure
(``nn_accuracy_vs_time.png``) are rebuilt from (``--render-only`` also reads the older results
logs of the same name).  ``--images`` and ``--images-1t1r`` are the store's settings: a run
with other values goes to another ``--out``.
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
from memsim.io import save_figure, write_atomic
from memsim import experiments as ex
from memsim.nn.config import HardwareConfig

TIMES = [t for _, t in ex.DRIFT_TIMES]
AIHWKIT = ex.AIHWKIT_QUOTED
RECIPES = {"adam 2e-3, 30 ep (default)": ("adam", 2e-3, 30), "sgd 0.05, 30 ep": ("sgd", 0.05, 30),
           "adam 1e-3, 10 ep": ("adam", 1e-3, 10), "sgd 0.01, 10 ep": ("sgd", 0.01, 10)}


CNN_TIMES = [86400.0, ex.YEAR, 10 * ex.YEAR]
TITLES = {"mlp-mnist": "784-256-BN-128-BN-10 MLP, MNIST subset (4000 train / 1000 test)",
          "mlp-digits": "64-64-10 MLP, scikit-learn digits (1437 train / 360 test)",
          "lenet-fashion": "LeNet-5-class CNN, Fashion-MNIST (60000 train / 10000 test)",
          "resnet-fashion": "small ResNet with BatchNorm, Fashion-MNIST (60000 train / 10000 test)",
          "lstm-fashion": "row-by-row LSTM (128 units), Fashion-MNIST (60000 train / 10000 test)",
          "vit-fashion": "vision transformer (16 patches of 7x7, width 64, 2 blocks), Fashion-MNIST "
                         "(60000 train / 10000 test)"}


def has_batchnorm(model: str) -> bool:
    return model in ("mlp-mnist", "resnet-fashion")


def selected(model: str, args):
    """The rows of ``model`` that ``--rows`` selects (all by default)."""
    return [row for row in specs(model, args.images_1t1r) if args.rows is None or row[0] in args.rows]


def specs(model: str, images_1t1r: int | None):
    """(key, label, config, times, options) of every row, in table order."""
    # one thread: each point runs in a worker process of its own (--workers)
    base = HardwareConfig(tile=128, conductances="rram8", dac_bits=8, adc_bits=8, workers=1)
    if model.endswith("fashion"):
        return cnn_specs(model, base)
    mnist = model == "mlp-mnist"
    rows = [("ideal-rram8", "ideal crossbar, rram8 levels, 8-bit DAC/ADC, T=128", base, [0.0], {}),
            ("ideal-rram64", "ideal crossbar, rram64 levels", base.replace(conductances="rram64"), [0.0], {})]
    for tile in (64, 128, 256):
        for r in (1.0, 2.5, 10.0):
            rows.append((f"ir-T{tile}-r{r:g}", f"+ IR drop, r = {r:g} ohm, T = {tile}",
                         base.replace(tile=tile, r_wire=r), [0.0], {}))
    rows += [
        ("device-r0", "+ device nonlinearity (selector-less), ideal wires", base.replace(cells="device"), [0.0], {}),
        ("device-r2.5", "+ device nonlinearity, r = 2.5 ohm", base.replace(cells="device", r_wire=2.5), [0.0], {}),
        ("1t1r-r2.5", "1T1R cells (write-verified), r = 2.5 ohm", base.replace(cells="1t1r", r_wire=2.5), [0.0],
         {"images": images_1t1r if mnist else None}),
        ("rram", "+ RRAM prog. and read noise, r = 2.5 ohm; drift", base.replace(r_wire=2.5, noise="rram"),
         [0.0] + TIMES, {}),
        ("pcm-none", "PCM-like, aihwkit setting, uncompensated", ex.aihwkit_pcm_config(), [0.0] + TIMES, {}),
        ("pcm-global", "PCM-like, + global drift compensation", ex.aihwkit_pcm_config(),
         [0.0] + TIMES, {"gdc": True, "bn": mnist}),
    ]
    return rows


def cnn_specs(model: str, base):
    bn = has_batchnorm(model)
    rows = [("ideal-rram8", "ideal tiles, rram8 levels, 8-bit DAC/ADC, T=128", base, [0.0], {})]
    for tile in (64, 128, 256):
        for r in (1.0, 2.5):
            rows.append((f"ir-T{tile}-r{r:g}", f"+ IR drop, r = {r:g} ohm, T = {tile}",
                         base.replace(tile=tile, r_wire=r), [0.0], {}))
    rram = base.replace(noise="rram")
    pcm = ex.aihwkit_pcm_config()
    rows += [("rram-none", "RRAM drift model, rram8, ideal wires, uncompensated", rram, CNN_TIMES, {}),
             ("rram-global", "RRAM, + global drift compensation", rram, CNN_TIMES, {"gdc": True, "bn": bn}),
             ("pcm-none", "PCM-like, aihwkit setting, uncompensated", pcm, CNN_TIMES, {}),
             ("pcm-global", "PCM-like, + global drift compensation", pcm, CNN_TIMES, {"gdc": True, "bn": bn}),
             ("hwa-pcm-none", "hardware-aware fine-tuned, PCM-like, 10 years, uncomp.", pcm, [10 * ex.YEAR],
              {"hwa": True}),
             ("hwa-pcm-global", "hardware-aware fine-tuned, 10 years, + GDC", pcm, [10 * ex.YEAR],
              {"hwa": True, "gdc": True, "bn": bn})]
    return rows


def hwa_trained(model, seed, cache, dataset, plain):
    """``plain`` (the float ``model`` of ``seed``) fine-tuned hardware-aware for one epoch on
    the PCM-like setting (programming noise and output noise drawn in every forward; Adam,
    learning rate 5e-4), cached beside the plain models."""
    from memsim.nn import models
    from memsim.nn.analog import convert
    from memsim.nn.training import RECIPES, train

    path = os.path.join(cache, f"{model}-hwa-pcm-seed{seed}.pt")
    if os.path.exists(path):
        return models.load(path)[0]
    analog = convert(plain, ex.aihwkit_pcm_config(), seed=seed, program=False).training_noise()
    train(analog, dataset, epochs=1, batch_size=RECIPES[model][1], lr=5e-4, seed=seed, progress=True)
    net = analog.to_torch()
    models.save(net, model, path)
    return net


def load_done(path):
    """Finished rows by (model, key, seed), from the exported results (or an older log)."""
    return {(item["model"], item["key"], item["seed"]): item for item in memsim.study.read_records(path)}


def points(args):
    """The grid: per model and seed, the float network and the selected rows; then the
    training recipes of the aihwkit comparison."""
    out = []
    for model in args.models:
        for seed in args.seeds:
            out.append({"model": model, "key": "float", "seed": seed})
            out += [{"model": model, "key": key, "seed": seed} for key, *_ in selected(model, args)]
    if args.recipes and "mlp-mnist" in args.models and args.rows is None:
        out += [{"model": "mlp-mnist", "key": f"recipe:{name}", "seed": seed} for name in RECIPES for seed in args.seeds]
    return out


def run_point(point, cache, images, images_1t1r):
    """One point in a worker: the float accuracy, a row's accuracies over time, or a recipe."""
    import torch

    torch.set_num_threads(1)
    model, key, seed = point["model"], point["key"], point["seed"]
    if key.startswith("recipe:"):
        return run_recipe(key[len("recipe:"):], seed)
    net, data = ex.trained(model, seed, cache_dir=cache)
    if images is not None:
        data = ex.test_subset(data, images)
    if key == "float":
        return {"points": [{"t": 0.0, "accuracy": ex.float_accuracy(net, data.x_test, data.y_test)}]}
    _, label, config, times, options = next(row for row in specs(model, images_1t1r) if row[0] == key)
    start = time.perf_counter()
    this = hwa_trained(model, seed, cache, data, net) if options.get("hwa") else net
    points = ex.accuracy_over_time(this, data, config, seed, times, gdc=options.get("gdc", False),
                                   bn_recalibration=options.get("bn", False), images=options.get("images"),
                                   progress=False)
    item = {"points": points, "images": options.get("images") or len(data.y_test),
            "seconds": time.perf_counter() - start}
    print(f"{model} seed {seed} {key}: " + ", ".join(f"{100 * p['accuracy']:.1f}" for p in points)
          + f"  ({item['seconds']:.1f} s)", file=sys.stderr, flush=True)
    return item


def run_recipe(name, seed):
    """The aihwkit comparison's 10-year figures for a float network trained another way."""
    from memsim.nn import datasets
    from memsim.nn.training import train_network

    optimizer, lr, epochs = RECIPES[name]
    data = datasets.load("mnist")
    start = time.perf_counter()
    net, _ = train_network("mlp-mnist", seed, data, optimizer=optimizer, lr=lr, epochs=epochs)
    none = ex.accuracy_over_time(net, data, ex.aihwkit_pcm_config(), seed, [10 * ex.YEAR])[0]
    comp = ex.accuracy_over_time(net, data, ex.aihwkit_pcm_config(), seed, [10 * ex.YEAR], gdc=True,
                                 bn_recalibration=True)[0]
    item = {"float": ex.float_accuracy(net, data.x_test, data.y_test),
            "none": none["accuracy"], "global": comp["accuracy"], "global+bn": comp["accuracy_bn"],
            "mean_abs_w1": float(net[0].weight.detach().abs().mean()), "seconds": time.perf_counter() - start}
    print(f"recipe {name} seed {seed}: float {item['float']:.3f} 10y {item['none']:.3f} / "
          f"{item['global']:.3f} / {item['global+bn']:.3f}", file=sys.stderr, flush=True)
    return item


def run(args):
    cache = os.path.abspath(os.path.join(args.out, "models"))
    os.makedirs(cache, exist_ok=True)
    for model in args.models:  # trained (or loaded) here once, so no two workers train the same network
        hwa = any(options.get("hwa") for *_, options in selected(model, args))
        for seed in args.seeds:
            net, data = ex.trained(model, seed, cache_dir=cache, progress=True)
            if hwa:
                hwa_trained(model, seed, cache, data, net)
    task = functools.partial(run_point, cache=cache, images=args.images, images_1t1r=args.images_1t1r)
    result = memsim.study.run_tasks("results", points(args), task, out=args.out, workers=args.workers, dask=args.dask,
                                    settings={"images": args.images, "images_1t1r": args.images_1t1r})
    print(result.describe("listed above"), file=sys.stderr)
    return result


# ---------------------------------------------------------------------------------------------
# table and figure
# ---------------------------------------------------------------------------------------------
def collect(done, model, key, t, field="accuracy"):
    values = []
    for (m, k, _), item in sorted(done.items()):
        if m == model and k == key:
            for point in item["points"]:
                if abs(point["t"] - t) <= 1e-9 * max(t, 1.0) and field in point:
                    values.append(point[field])
    return values


def pm(values):
    return f"{ex.format_pm(values)} (n={len(values)})" if values else "-"


def render_table(done, args) -> str:
    lines = []
    for model in args.models:
        rows = selected(model, args)
        floats = collect(done, model, "float", 0.0)
        title = TITLES[model] + (f", first {args.images} test images" if args.images else "")
        lines += [f"## {title}", "", "test accuracy %, mean ± std over seeds (n = seeds)", "",
                  f"| {'configuration':58s} | {'time':9s} | {'accuracy %':20s} |",
                  f"|{'-' * 60}|{'-' * 11}|{'-' * 22}|",
                  f"| {'floating point':58s} | {'':9s} | {pm(floats):20s} |"]
        for key, label, config, times, options in rows:
            if not any(collect(done, model, key, t) for t in times):
                continue  # a row this run did not compute
            images = options.get("images")
            suffix = f" ({images} images)" if images else ""
            fields = [("accuracy", label + suffix)]
            if options.get("bn"):
                fields.append(("accuracy_bn", "  + BatchNorm re-calibration (<= 4000 training images)"))
            for field, title in fields:
                for t in times:
                    values = collect(done, model, key, t, field)
                    name = title if t == times[0] else ""
                    lines.append(f"| {name:58s} | {ex.format_time(t) if len(times) > 1 else '':9s} | "
                                 f"{pm(values):20s} |")
        lines.append("")
        if model == "mlp-mnist":
            lines += aihwkit_section(done)
    return "\n".join(lines)


def aihwkit_section(done):
    year10 = 10 * ex.YEAR
    ours = {"float": collect(done, "mlp-mnist", "float", 0.0),
            "none": collect(done, "mlp-mnist", "pcm-none", year10),
            "global": collect(done, "mlp-mnist", "pcm-global", year10),
            "global+bn": collect(done, "mlp-mnist", "pcm-global", year10, "accuracy_bn")}
    names = {"float": "floating point", "none": "PCM-like, 10 years, uncompensated",
             "global": "+ global drift compensation", "global+bn": "+ BN re-calibration"}
    lines = ["### PCM-like model against aihwkit 1.2.0's quoted figures (same MLP, same MNIST subset, ideal wires;",
             "### aihwkit trained its own network: for both tools on identical weights see scripts/compare_aihwkit.py)",
             "",
             f"| {'':36s} | {'aihwkit 1.2.0':13s} | {'memsim':20s} | {'difference':10s} |",
             f"|{'-' * 38}|{'-' * 15}|{'-' * 22}|{'-' * 12}|"]
    for key, name in names.items():
        values = ours[key]
        diff = f"{100 * (np.mean(values) - AIHWKIT[key]):+.1f}" if values else "-"
        lines.append(f"| {name:36s} | {100 * AIHWKIT[key]:13.1f} | {pm(values):20s} | {diff:>10s} |")
    recipes = [(name, [item for (m, k, _), item in sorted(done.items()) if k == f"recipe:{name}"])
               for name in RECIPES]
    recipes = [(name, items) for name, items in recipes if items]
    if recipes:
        lines += ["", "The same comparison for float networks trained other ways (10 years, PCM-like):", "",
                  f"| {'training':28s} | {'float %':13s} | {'mean abs w1':11s} | {'uncomp. %':13s} | "
                  f"{'global %':13s} | {'+ BN %':13s} |",
                  f"|{'-' * 30}|{'-' * 15}|{'-' * 13}|{'-' * 15}|{'-' * 15}|{'-' * 15}|"]
        for name, items in recipes:
            cells = [ex.format_pm([i[key] for i in items]) for key in ("float", "none", "global", "global+bn")]
            w = np.mean([i["mean_abs_w1"] for i in items])
            lines.append(f"| {name:28s} | {cells[0]:13s} | {w:11.4f} | {cells[1]:13s} | {cells[2]:13s} | "
                         f"{cells[3]:13s} |")
    lines.append("")
    return lines


def render_figure(done, args, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.models), figsize=(6.2 * len(args.models), 4.4), squeeze=False)
    curves = [("rram", "accuracy", "RRAM (VeRA+ paper's model), rram8, r = 2.5 ohm", "C0", "o"),
              ("rram-none", "accuracy", "RRAM (VeRA+ paper's model), rram8", "C0", "o"),
              ("rram-global", "accuracy", "RRAM, global drift compensation", "C4", "v"),
              ("pcm-none", "accuracy", "PCM-like, uncompensated", "C3", "s"),
              ("pcm-global", "accuracy", "PCM-like, global drift compensation", "C1", "^"),
              ("pcm-global", "accuracy_bn", "PCM-like, + BN re-calibration", "C2", "D")]
    for ax, model in zip(axes[0], args.models):
        floats = collect(done, model, "float", 0.0)
        if floats:
            ax.axhline(100 * np.mean(floats), color="k", lw=0.8, ls="--", label="floating point")
        for key, field, label, color, marker in curves:
            ts, means, stds = [], [], []
            for t in TIMES:
                values = collect(done, model, key, t, field)
                if values:
                    ts.append(t)
                    means.append(100 * np.mean(values))
                    stds.append(100 * np.std(values, ddof=1) if len(values) > 1 else 0.0)
            if ts:
                ax.errorbar(ts, means, yerr=stds, color=color, marker=marker, ms=4, capsize=3, label=label)
        if model == "mlp-mnist":
            for key, color, marker in (("none", "C3", "s"), ("global", "C1", "^"), ("global+bn", "C2", "D")):
                ax.plot([10 * ex.YEAR], [100 * AIHWKIT[key]], marker=marker, mfc="none", mec=color, ms=11,
                        mew=1.5, ls="none")
            ax.plot([], [], marker="o", mfc="none", mec="gray", ls="none", label="aihwkit 1.2.0 (10 years)")
        ax.set_xscale("log")
        ax.set_xticks(TIMES)
        ax.set_xticklabels([name for name, _ in ex.DRIFT_TIMES], rotation=30)
        ax.set_ylim(0, 100)
        ax.set_xlabel("time since programming")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(TITLES[model].split(" (")[0], fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join("memsim_output", "nn"))
    parser.add_argument("--seeds", default="5", help="a count or a comma list (default 5: seeds 0..4)")
    parser.add_argument("--models", default="mlp-mnist,mlp-digits")
    memsim.study.add_executor_options(parser)
    parser.add_argument("--images-1t1r", type=int, default=200, help="MNIST test images for the 1T1R row")
    parser.add_argument("--images", type=int, help="use only the first N test images (default: all)")
    parser.add_argument("--rows", help="run only these row keys (comma list, e.g. ideal-rram8,pcm-global)")
    parser.add_argument("--no-recipes", dest="recipes", action="store_false",
                        help="skip the training-recipe study of the aihwkit comparison")
    parser.add_argument("--render-only", action="store_true", help="rebuild table and figure from results.jsonl "
                                                                     "(the store's export, or an older results log)")
    args = parser.parse_args(argv)
    args.seeds = ex.parse_seeds(args.seeds)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in TITLES]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(TITLES)}")
    args.rows = None if args.rows is None else {r.strip() for r in args.rows.split(",") if r.strip()}
    if args.rows is not None:
        known = {key for m in args.models for key, *_ in specs(m, args.images_1t1r)}
        if args.rows - known:
            parser.error(f"unknown row(s) {sorted(args.rows - known)}; rows: {', '.join(sorted(known))}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.jsonl")
    failed = 0
    try:
        if not args.render_only:
            failed = run(args).failed
        done = load_done(path)
    except (MemsimError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = render_table(done, args)
    write_atomic(os.path.join(args.out, "nn_results.txt"), table + "\n")
    render_figure(done, args, os.path.join(args.out, "nn_accuracy_vs_time.png"))
    print(table)
    print(f"\nwrote {os.path.join(args.out, 'nn_results.txt')} and nn_accuracy_vs_time.png", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
