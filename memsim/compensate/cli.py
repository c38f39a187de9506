"""``memsim compensate``: fit, store and apply compensation for a trained MLP on crossbars.

    memsim compensate fit  --model mlp-mnist --hardware pcm --method gdc,bn,vera --out comp.npz [--seed 0]
    memsim compensate eval comp.npz --drift-time 1h,1y,10y
    memsim compensate show comp.npz

Hardware settings: ``pcm`` (aihwkit's PCM-like setting), ``rram`` (rram8 levels, T=128,
8-bit converters, the RRAM drift model), ``ir`` (rram64, 256 x 256 tiles, r = 2.5 ohm; the
IR methods).  Methods: ``gdc``, ``gdc-column``, ``bn``, ``vera`` (one set at the last
``--train-time``; ``--schedule TOL`` runs Algorithm 1 instead), ``ir-pre``, ``ir-column``.
Top-level imports stay light (argparse, pathlib).
"""
from __future__ import annotations

import argparse
from pathlib import Path

HARDWARE = ("pcm", "rram", "ir")
METHODS = ("gdc", "gdc-column", "bn", "vera", "ir-pre", "ir-column")


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("compensate", help="fit, store and apply IR-drop and drift compensation",
                              description="Fit compensation for a trained MLP on crossbar tiles, store it as a "
                                          "versioned .npz, and evaluate accuracy with and without it.")
    sub = p.add_subparsers(dest="compensate_command", required=True)
    fit = sub.add_parser("fit", help="fit compensation strategies and store them")
    fit.add_argument("--model", default="mlp-digits", choices=("mlp-digits", "mlp-mnist"))
    fit.add_argument("--hardware", default="pcm", choices=HARDWARE)
    fit.add_argument("--method", default="gdc,bn,vera", help=f"comma list of {', '.join(METHODS)}")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--rank", type=int, default=1, help="VeRA+ rank (default 1)")
    fit.add_argument("--train-time", default="10y", help="VeRA+ single-set drift time (default 10y)")
    fit.add_argument("--schedule", type=float, help="VeRA+ drift-aware schedule with this tolerance (e.g. 0.01)")
    fit.add_argument("--bn-images", type=int, default=256, help="BN re-calibration subset size (default 256)")
    fit.add_argument("--cache", type=Path, default=Path("memsim_output/nn/models"), help="trained-model cache")
    fit.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    fit.set_defaults(func=cmd_fit)
    ev = sub.add_parser("eval", help="accuracy against time with and without a stored compensation")
    ev.add_argument("file", type=Path)
    ev.add_argument("--drift-time", default="0,1h,1y,10y", help="times since programming (with units)")
    ev.add_argument("--cache", type=Path, default=Path("memsim_output/nn/models"))
    ev.set_defaults(func=cmd_eval)
    show = sub.add_parser("show", help="describe a stored compensation file")
    show.add_argument("file", type=Path)
    show.set_defaults(func=cmd_show)


def _config(hardware):
    from ..nn.experiments import aihwkit_pcm_config
    from ..nn.inference import HardwareConfig

    if hardware == "pcm":
        return aihwkit_pcm_config()
    if hardware == "rram":
        return HardwareConfig(tile=128, conductances="rram8", dac_bits=8, adc_bits=8, noise="rram")
    if hardware == "ir":
        import numpy as np

        from ..devices import preset
        from .network import headroom_conductances

        levels = np.asarray(preset("rram64").levels)
        return HardwareConfig(tile=256, conductances=headroom_conductances(levels, 15e-6), dac_bits=8,
                              adc_bits=8, r_wire=2.5)
    raise ValueError(f"hardware must be one of {HARDWARE}, got {hardware!r}")


def _network(model, hardware, seed, cache):
    from ..nn.experiments import trained
    from ..nn.inference import AnalogNetwork

    mlp, data = trained(model, seed, cache_dir=cache)
    config = _config(hardware)
    cal = data.x_train[:256] if config.adc_bits is not None and config.adc_range == "calibrated" else None
    return AnalogNetwork(mlp, config, seed=seed, calibration_x=cal), data


def cmd_fit(args) -> int:
    import numpy as np

    from ..nn.experiments import parse_duration
    from .drift import BNRecalibration, GlobalDriftCompensation, VeRAPlus
    from .network import NetworkColumnCorrection, NetworkPreDistortion
    from .store import save

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if any(m.startswith("ir") for m in methods) and args.hardware != "ir":
        raise ValueError("the ir-* methods need --hardware ir")
    net, data = _network(args.model, args.hardware, args.seed, args.cache)
    strategies = []
    for method in methods:
        if method == "ir-pre":
            from ..devices import preset

            pre = NetworkPreDistortion(np.asarray(preset("rram64").levels)).fit(net, data.x_train[:500])
            pre.apply(net)
            strategies.append(pre)
        elif method == "ir-column":
            strategies.append(NetworkColumnCorrection().fit(net, data.x_train[:1000]))
        elif method in ("gdc", "gdc-column"):
            strategies.append(GlobalDriftCompensation("column" if method == "gdc-column" else "tile").fit(net))
        elif method == "bn":
            strategies.append(BNRecalibration(args.bn_images, seed=args.seed).fit(data.x_train))
        elif method == "vera":
            vera = VeRAPlus(args.rank, seed=args.seed)
            if args.schedule is not None:
                n_val = len(data.y_train) // 4
                vera.fit_schedule(net, data.x_train[:-n_val], data.y_train[:-n_val], data.x_train[-n_val:],
                                  data.y_train[-n_val:], tolerance=args.schedule)
            else:
                vera.fit_single(net, data.x_train, data.y_train, parse_duration(args.train_time))
            strategies.append(vera)
    save(args.out, strategies, {"model": args.model, "hardware": args.hardware, "seed": args.seed})
    for s in strategies:
        print(f"{s.name}: {s.storage_bytes} bytes")
    print(f"wrote {args.out}")
    return 0


def cmd_show(args) -> int:
    from .store import load

    strategies, info = load(args.file)
    print(f"{args.file}: {info}")
    for s in strategies:
        extra = f", {len(s.sets)} sets switching at {[round(t, 3) for t in s.times]} s" if s.name == "vera+" else ""
        print(f"  {s.name}: {s.storage_bytes} bytes{extra}")
    return 0


def cmd_eval(args) -> int:
    from ..nn.experiments import format_time, parse_duration
    from .network import compensated
    from .store import load

    strategies, info = load(args.file)
    try:
        model, hardware, seed = info["model"], info["hardware"], int(info["seed"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{args.file} does not say which model/hardware it was fitted for") from None
    times = [parse_duration(t) for t in str(args.drift_time).split(",") if t.strip()]
    net, data = _network(model, hardware, seed, args.cache)
    x, y = data.x_test, data.y_test
    plain = net.accuracy(x, y)
    for s in strategies:
        if s.name == "ir-predistortion":
            s.apply(net)
    digital = [s for s in strategies if s.name != "ir-predistortion"]
    print(f"{model}, {hardware}, seed {seed}; methods {[s.name for s in strategies]}")
    if hardware == "ir":
        print(f"  uncompensated {100 * plain:.1f} %")
    for t in times:
        net.set_time(t)
        none = net.accuracy(x, y)
        view = compensated(net)
        for s in digital:
            s.apply(view)
        print(f"  t = {format_time(t):>9s}: without {100 * none:5.1f} %   with {100 * view.accuracy(x, y):5.1f} %")
    return 0
