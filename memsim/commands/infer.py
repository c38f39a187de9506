"""``memsim infer``: a trained network on crossbar tiles, accuracy over seeds and drift times.

    memsim infer [--model NAME | --model-file FILE.pt] [--tile 128] [--r-wire OHM] [--cells ohmic|device|1t1r]
                 [--conductances rram8|rram64|analog|pcm] [--noise none|rram|pcm] [--drift-time 1h,1y,...]
                 [--compensation none|global] [--bn-recal] [--seeds 5] [--cost] [--out DIR]

The options are in memsim/cli.py; this module loads (and with it torch) when the command runs.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from .. import experiments as ex  # as a module: tests replace ex.trained
from .. import units
from ..compensate.drift import batchnorms
from ..cost import network_cost
from ..errors import check_limit
from ..experiments import aihwkit_pcm_config
from ..io import check_out_folder, write_atomic
from ..nn import models
from ..nn.analog import convert
from ..nn.bayes import BayesianCrossbar, DeviceSpread, Technology, summarise, trained_bayesian
from ..nn.config import HardwareConfig
from ..nn.noise import RRAMNoiseModel


_DEFAULTS = {"tile": 128, "r_wire": 0.0, "cells": "ohmic", "conductances": "rram8", "scale": "column",
             "inputs": "amplitude", "dac_bits": 8, "adc_bits": 8, "noise": "none", "workers": 1}


def _config(args):
    """The hardware: memsim's defaults (or aihwkit's with --aihwkit), then the options given."""
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
    samples = units.integer(args.bayesian, "the number of samples K", low=1)
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
    times = [ex.parse_duration(part) for part in str(args.drift_time).split(",") if part.strip()]
    if not times:
        raise ValueError("--drift-time needs at least one time")
    if args.images is not None and args.images < 1:
        raise ValueError(f"--images must be >= 1, got {args.images}")
    return times, ex.parse_seeds(args.seeds)
