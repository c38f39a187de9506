"""``memsim compensate``: fit, store and apply compensation for a trained network on crossbars.

    memsim compensate fit  --model mlp-mnist --hardware pcm --method gdc,bn,vera --out comp.npz [--seed 0]
    memsim compensate eval comp.npz --drift-time 1h,1y,10y
    memsim compensate show comp.npz

Hardware settings: ``pcm`` (aihwkit's PCM-like setting), ``rram`` (rram8 levels, T=128,
8-bit converters, the RRAM drift model), ``ir`` (rram64, 256 x 256 tiles, r = 2.5 ohm; the
IR methods).  Methods: ``gdc``, ``gdc-column``, ``bn``, ``vera`` (one set at the last
``--train-time``; ``--schedule TOL`` runs Algorithm 1 instead), ``ir-pre``, ``ir-column``.
The options are in memsim/cli.py; this module loads (and with it torch) when the command runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import experiments as ex
from ..compensate.drift import BNRecalibration, GlobalDriftCompensation, VeRAPlus, batchnorms
from ..compensate.network import NetworkColumnCorrection, NetworkPreDistortion, headroom_conductances
from ..compensate.store import load, save
from ..devices import preset
from ..experiments import aihwkit_pcm_config, format_time, parse_duration
from ..io import check_out_file
from ..nn import models
from ..nn.analog import convert
from ..nn.config import HardwareConfig
from . import COMPENSATE_HARDWARE as HARDWARE
from . import COMPENSATE_METHODS as METHODS
from . import MODEL_NAMES


def _config(hardware):
    if hardware == "pcm":
        return aihwkit_pcm_config()
    if hardware == "rram":
        return HardwareConfig(tile=128, conductances="rram8", dac_bits=8, adc_bits=8, noise="rram")
    if hardware == "ir":
        levels = np.asarray(preset("rram64").levels)
        return HardwareConfig(tile=256, conductances=headroom_conductances(levels, 15e-6), dac_bits=8,
                              adc_bits=8, r_wire=2.5)
    raise ValueError(f"hardware must be one of {HARDWARE}, got {hardware!r}")


def _network(model, model_file, hardware, seed, cache):
    """(analog model, dataset, model name) for a built-in model or a model file."""
    if model_file is not None:
        float_model, model = models.load(model_file)
        data = ex.trained_dataset(model)
    else:
        float_model, data = ex.trained(model, seed, cache_dir=cache, progress=True)
    config = _config(hardware)
    return convert(float_model, config, seed=seed, calibration_x=ex.calibration_inputs(config, data)), data, model


def cmd_fit(args) -> int:
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if any(m.startswith("ir") for m in methods) and args.hardware != "ir":
        raise ValueError("the ir-* methods need --hardware ir")
    check_out_file(args.out, "--out")  # before the fit, not after it
    model, data, name = _network(args.model, args.model_file, args.hardware, args.seed, args.cache)
    if "bn" in methods and not batchnorms(model):
        raise ValueError(f"method bn needs a model with BatchNorm layers; {name} has none")
    strategies = []
    for method in methods:
        if method == "ir-pre":
            pre = NetworkPreDistortion(np.asarray(preset("rram64").levels)).fit(model, data.x_train[:500])
            pre.attach(model)
            strategies.append(pre)
        elif method == "ir-column":
            strategies.append(NetworkColumnCorrection().fit(model, data.x_train[:1000]))
        elif method in ("gdc", "gdc-column"):
            strategies.append(GlobalDriftCompensation("column" if method == "gdc-column" else "tile").fit(model))
        elif method == "bn":
            strategies.append(BNRecalibration(args.bn_images, seed=args.seed).fit(data.x_train))
        elif method == "vera":
            vera = VeRAPlus(args.rank, seed=args.seed)
            if args.schedule is not None:
                n_val = len(data.y_train) // 4
                vera.fit_schedule(model, data.x_train[:-n_val], data.y_train[:-n_val], data.x_train[-n_val:],
                                  data.y_train[-n_val:], tolerance=args.schedule, progress=True)
            else:
                vera.fit_single(model, data.x_train, data.y_train, parse_duration(args.train_time))
            strategies.append(vera)
    info = {"model": name, "hardware": args.hardware, "seed": args.seed}
    if args.model_file is not None:
        info["model_file"] = str(args.model_file)
    save(args.out, strategies, info)
    for s in strategies:
        print(f"{s.name}: {s.storage_bytes} bytes")
    print(f"wrote {args.out}")
    return 0


def cmd_show(args) -> int:
    strategies, info = load(args.file)
    print(f"{args.file}: {info}")
    for s in strategies:
        extra = f", {len(s.sets)} sets switching at {[round(t, 3) for t in s.times]} s" if s.name == "vera+" else ""
        print(f"  {s.name}: {s.storage_bytes} bytes{extra}")
    return 0


def cmd_eval(args) -> int:
    strategies, info = load(args.file)
    try:
        model_name, hardware, seed = str(info["model"]), str(info["hardware"]), int(info["seed"])
        model_file = Path(info["model_file"]) if "model_file" in info else None
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{args.file} does not say which model/hardware it was fitted for") from None
    if hardware not in HARDWARE or (model_file is None and model_name not in MODEL_NAMES):
        raise ValueError(f"{args.file} names hardware {hardware!r} / model {model_name!r}, which memsim does not know")
    times = [parse_duration(t) for t in str(args.drift_time).split(",") if t.strip()]
    model, data, _ = _network(model_name, model_file, hardware, seed, args.cache)
    x, y = data.x_test, data.y_test
    labels = ["without"]
    results = {t: [] for t in times}
    for t in times:
        results[t].append(model.set_time(t).accuracy(x, y))
    # each method added in turn, in the stored order (IR pre-distortion re-programs the tiles)
    for strategy in strategies:
        strategy.attach(model)
        labels.append(("+ " if len(labels) > 1 else "") + strategy.name)
        for t in times:
            results[t].append(model.set_time(t).accuracy(x, y))
    print(f"{model_name}, {hardware}, seed {seed}; accuracy % with the methods added in turn")
    print(f"  {'t':>9s}  " + "  ".join(f"{label:>10s}" for label in labels))
    for t in times:
        print(f"  {format_time(t):>9s}  " + "  ".join(f"{100 * acc:10.1f}" for acc in results[t]))
    return 0
