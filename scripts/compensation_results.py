"""Compensation results: IR drop, PCM-like and RRAM drift at 10 years, the VeRA+ schedule.

    nice python scripts/compensation_results.py [--out memsim_output/compensation] [--seeds 5]
                                                [--sections ir,pcm,rram,schedule,schedule-pcm]
                                                [--workers 2] [--dask ADDRESS] [--render-only]

784-256-BN-128-BN-10 MLP on the MNIST subset; seed s trains the float network (cached) and
draws every device random number.  Each torch model is put on tiles with
:func:`memsim.nn.analog.convert`; the strategies of :mod:`memsim.compensate` are fitted and
then attached to the analog model (its hooks) for each measurement and detached again:

- ``ir``: 256x256 tiles, r = 2.5 ohm per segment, rram64 levels, 8-bit DAC/ADC: per-column
  digital correction, conductance pre-distortion (headroom mapping, iterated with the
  solver's effective matrix) and both;
- ``pcm`` / ``rram``: at 10 years on aihwkit's PCM-like setting and on the RRAM model
  (rram8, T = 128, 8-bit): global drift compensation (per tile and per column), BatchNorm
  re-calibration and VeRA+ ("VeRA+: Vector-Based Lightweight Digital Compensation for
  Drift-Resilient RRAM In-Memory Computing", rank 1, one vector set trained at 10 years)
  and their combinations, with storage, fit and inference costs;
- ``schedule`` / ``schedule-pcm``: the drift-aware VeRA+ schedule (that paper's
  Algorithm 1; tolerance 1 % and 2.5 %, 20 drift instances) on the RRAM / PCM-like model,
  and accuracy against time with and without compensation.

``--sections`` defaults to ``ir,pcm,rram,schedule`` (``schedule-pcm`` on request);
``--seeds`` is a count (5: seeds 0-4) or a comma list.

Each (section, seed) is a point of :func:`memsim.study.run_tasks`, run on ``--workers``
processes of one thread each or on Dask (``--dask``); every finished one is stored at once in
``results.sqlite`` (resumable) and exported to ``results.jsonl``, which the tables
(``compensation_results.txt``) and the figures (``compensation_accuracy_vs_time.png``,
``compensation_accuracy_vs_time_pcm.png``) are rebuilt from (``--render-only`` also reads the
older results logs of the same name).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time

import numpy as np

import memsim.study

from memsim.compensate import (BNRecalibration, GlobalDriftCompensation, NetworkColumnCorrection,
                               NetworkPreDistortion, VeRAPlus, attached, headroom_conductances)
from memsim.devices import preset
from memsim.errors import MemsimError
from memsim.io import save_figure, write_atomic
from memsim import experiments as ex
from memsim.nn.config import HardwareConfig
from memsim.nn.analog import convert

YEAR = ex.YEAR
MODEL = "mlp-mnist"
SECTIONS = ("ir", "pcm", "rram", "schedule", "schedule-pcm")


def accuracy_with(model, strategies, x, y):
    with attached(model, *strategies):
        return model.accuracy(x, y)


@contextlib.contextmanager
def one_thread():
    """One BLAS and one torch thread: small products are latency-bound, and on a shared
    machine one thread is much faster than several contending ones."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # threadpoolctl comes with scikit-learn
        limits = contextlib.nullcontext()
    try:
        with limits:
            yield
    finally:
        torch.set_num_threads(saved)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def weight_count(model):
    """Weights of the torch model's Linear and Conv2d layers (the ones on tiles)."""
    from torch import nn

    return int(sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))))


def run_ir(model, data, seed):
    x, y = data.x_test, data.y_test
    levels = np.asarray(preset("rram64").levels)
    full = HardwareConfig(tile=256, conductances="rram64", dac_bits=8, adc_bits=8)
    head = full.replace(conductances=headroom_conductances(levels, 15e-6))
    cal = data.x_train[:256]
    row = {"float": ex.float_accuracy(model, x, y)}
    row["ideal"] = convert(model, full, seed=seed, calibration_x=cal).accuracy(x, y)
    row["ideal_headroom"] = convert(model, head, seed=seed, calibration_x=cal).accuracy(x, y)
    net = convert(model, full.replace(r_wire=2.5), seed=seed, calibration_x=cal)
    row["none"] = net.accuracy(x, y)
    col, row["fit_column_s"] = timed(lambda: NetworkColumnCorrection().fit(net, data.x_train[:1000]))
    row["column"] = accuracy_with(net, [col], x, y)
    row["column_bytes"] = col.storage_bytes
    net = convert(model, head.replace(r_wire=2.5), seed=seed, calibration_x=cal)
    row["none_headroom"] = net.accuracy(x, y)
    pre, row["fit_pre_s"] = timed(lambda: NetworkPreDistortion(levels, iterations=5).fit(net, data.x_train[:500]))
    pre.attach(net)  # re-programs the tiles
    row["pre"] = net.accuracy(x, y)  # first use: the tiles' effective matrices are computed
    _, t_plain = timed(lambda: net.accuracy(x, y))
    row["pre_error"] = [h[-1] for h in pre.history]
    col2 = NetworkColumnCorrection().fit(net, data.x_train[:1000])
    with attached(net, col2):
        row["pre_column"], t_comp = timed(lambda: net.accuracy(x, y))
    row["apply_overhead"] = t_comp / t_plain - 1
    return row


def run_drift(model, data, seed, config, section):
    x, y = data.x_test, data.y_test
    net = convert(model, config, seed=seed, calibration_x=ex.calibration_inputs(config, data))
    fits = {}
    gdc, fits["gdc"] = timed(lambda: GlobalDriftCompensation("tile").fit(net))
    gdcc, fits["gdc-column"] = timed(lambda: GlobalDriftCompensation("column").fit(net))
    bn, fits["bn"] = timed(lambda: BNRecalibration(256, seed=seed).fit(data.x_train))
    vera, fits["vera"] = timed(lambda: VeRAPlus(1, seed=seed).fit_single(net, data.x_train, data.y_train, 10 * YEAR))
    row = {"float": ex.float_accuracy(model, x, y), "t0": net.accuracy(x, y), "fit_s": fits}
    net.set_time(10 * YEAR)
    row["none"], t_plain = timed(lambda: net.accuracy(x, y))
    combos = {"gdc": [gdc], "gdc-column": [gdcc], "bn": [bn], "gdc+bn": [gdc, bn], "gdc+vera": [gdc, vera],
              "gdc+vera+bn": [gdc, vera, bn]}
    storage = {"none": 0}
    apply_s = {}
    for name, strategies in combos.items():
        with contextlib.ExitStack() as stack:
            _, apply_s[name] = timed(lambda: stack.enter_context(attached(net, *strategies)))
            row[name], t = timed(lambda: net.accuracy(x, y))
        storage[name] = int(sum(s.storage_bytes for s in strategies))
        if name == "gdc+vera":
            row["vera_infer_overhead"] = t / t_plain - 1
    row["apply_s"] = apply_s
    row["storage"] = storage
    row["weights"] = weight_count(model)
    return row


def run_schedule(model, data, seed, config):
    n_val = 1000
    xt, yt = data.x_train[:-n_val], data.y_train[:-n_val]
    xv, yv = data.x_train[-n_val:], data.y_train[-n_val:]
    net = convert(model, config, seed=seed, calibration_x=ex.calibration_inputs(config, data))
    row = {}
    for tol in (0.01, 0.025):
        vera, secs = timed(lambda: VeRAPlus(1, seed=seed).fit_schedule(net, xt, yt, xv, yv, tolerance=tol,
                                                                      instances=20))
        row[str(tol)] = {"times": vera.times, "sets": len(vera.sets), "fit_s": secs, "log": vera.log,
                         "drift_free": vera.drift_free, "threshold": vera.threshold,
                         "storage": vera.storage_bytes, "parameters": vera.parameters}
        if tol == 0.01:
            gdc = GlobalDriftCompensation("tile").fit(net)
            bn = BNRecalibration(256, seed=seed).fit(data.x_train)
            curve = []
            for _, t in ex.DRIFT_TIMES:
                net.set_time(t)
                curve.append({"t": t, "none": net.accuracy(data.x_test, data.y_test),
                              "gdc": accuracy_with(net, [gdc], data.x_test, data.y_test),
                              "gdc+vera": accuracy_with(net, [gdc, vera], data.x_test, data.y_test),
                              "gdc+bn": accuracy_with(net, [gdc, bn], data.x_test, data.y_test)})
            row["curve"] = curve
    return row


def pcm_config():
    return ex.aihwkit_pcm_config()


def rram_config():
    return HardwareConfig(tile=128, conductances="rram8", dac_bits=8, adc_bits=8, noise="rram")


def run_section(point, cache):
    """One (section, seed) in a worker."""
    section, seed = point["section"], point["seed"]
    model, data = ex.trained(MODEL, seed, cache_dir=cache)
    start = time.perf_counter()
    with one_thread():
        if section == "ir":
            row = run_ir(model, data, seed)
        elif section in ("pcm", "rram"):
            row = run_drift(model, data, seed, pcm_config() if section == "pcm" else rram_config(), section)
        else:
            row = run_schedule(model, data, seed, rram_config() if section == "schedule" else pcm_config())
    row["seconds"] = time.perf_counter() - start
    print(f"{section} seed {seed} done in {row['seconds']:.0f} s", file=sys.stderr, flush=True)
    return row


def load_done(path):
    return {(item["section"], item["seed"]): item for item in memsim.study.read_records(path)}


def pm(values, scale=100.0, digits=1):
    values = np.asarray(values, float)
    if values.size == 0:
        return "n/a"
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return f"{scale * values.mean():.{digits}f} ± {scale * std:.{digits}f}"


def render(done, out):
    lines = []
    ir = [v for (s, _), v in sorted(done.items()) if s == "ir"]
    if ir:
        seeds = [v["seed"] for v in ir]
        lines.append(f"IR drop: 784-256-BN-128-BN-10 on the MNIST subset, 256x256 tiles, r = 2.5 ohm per segment, ohmic cells, "
                     f"rram64 levels, 8-bit DAC/ADC; seeds {seeds} (mean ± std, %)")
        for key, label in [("float", "floating point"), ("ideal", "ideal wires, full range 5-40 uS"),
                           ("ideal_headroom", "ideal wires, headroom mapping 5-15 uS"),
                           ("none", "r = 2.5, uncompensated (full range)"),
                           ("none_headroom", "r = 2.5, uncompensated (headroom mapping)"),
                           ("column", "r = 2.5, per-column correction only"),
                           ("pre", "r = 2.5, pre-distortion (headroom, solver-iterated)"),
                           ("pre_column", "r = 2.5, pre-distortion + per-column correction")]:
            lines.append(f"  {label:<55s} {pm([v[key] for v in ir])}")
        gap = [v["ideal"] - max(v["pre"], v["pre_column"]) for v in ir]
        lines.append(f"  gap ideal - best compensated: {pm(gap, digits=2)} points; per-column storage "
                     f"{ir[0]['column_bytes']} B; pre-distortion fit {pm([v['fit_pre_s'] for v in ir], 1)} s")
        lines.append("")
    for section, title in [("pcm", "PCM-like model (aihwkit setting) at 10 years"),
                           ("rram", "RRAM model (log-normal drift + d2d spread; rram8, T=128, 8-bit) at 10 years")]:
        rows = [v for (s, _), v in sorted(done.items()) if s == section]
        if not rows:
            continue
        w = rows[0]["weights"]
        lines.append(f"{title}; seeds {[v['seed'] for v in rows]} (mean ± std, %); weights {w}")
        lines.append(f"  {'method':<14s} {'accuracy':>14s} {'storage B':>10s} {'% of weights (f32)':>18s}")
        lines.append(f"  {'float':<14s} {pm([v['float'] for v in rows]):>14s}")
        lines.append(f"  {'t = 0':<14s} {pm([v['t0'] for v in rows]):>14s}")
        for key in ["none", "gdc", "gdc-column", "bn", "gdc+bn", "gdc+vera", "gdc+vera+bn"]:
            st = rows[0]["storage"][key]
            lines.append(f"  {key:<14s} {pm([v[key] for v in rows]):>14s} {st:>10d} {100 * st / (4 * w):>17.3f}%")
        fit = {k: np.mean([v["fit_s"][k] for v in rows]) for k in rows[0]["fit_s"]}
        lines.append("  fit s: " + ", ".join(f"{k} {s:.1f}" for k, s in fit.items())
                     + f"; VeRA+ inference overhead {pm([v['vera_infer_overhead'] for v in rows])} %")
        lines.append("")
    for section, model in (("schedule", "RRAM model"), ("schedule-pcm", "PCM-like model")):
        rows = [v for (s, _), v in sorted(done.items()) if s == section]
        if not rows:
            continue
        lines.append(f"VeRA+ schedule (Algorithm 1, x1.5 from 1 s to 10 y, 20 drift instances, {model}, GDC below), "
                     f"seeds {[v['seed'] for v in rows]}")
        for tol in ("0.01", "0.025"):
            counts = [v[tol]["sets"] for v in rows]
            lines.append(f"  tolerance {float(tol) * 100:.1f} %: sets {counts} (mean {np.mean(counts):.1f}); fit "
                         f"{np.mean([v[tol]['fit_s'] for v in rows]):.0f} s; storage {rows[0][tol]['storage']} B")
            for v in rows:
                lines.append(f"    seed {v['seed']}: switch at " + (", ".join(f"{t:.3g} s" for t in v[tol]["times"])
                                                                     or "never (no set needed)"))
        lines.append("")
    text = "\n".join(lines)
    write_atomic(os.path.join(out, "compensation_results.txt"), text + "\n")
    print(text)
    for section, model, name in (("schedule", "RRAM drift model", "compensation_accuracy_vs_time.png"),
                                 ("schedule-pcm", "PCM-like drift model", "compensation_accuracy_vs_time_pcm.png")):
        curves = [v["curve"] for (s, _), v in sorted(done.items()) if s == section and "curve" in v]
        if not curves:
            continue
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        for key in ("none", "gdc", "gdc+vera", "gdc+bn"):
            t = [p["t"] for p in curves[0]]
            acc = np.array([[p[key] for p in c] for c in curves]) * 100
            ax.errorbar(t, acc.mean(0), acc.std(0), label=key, marker="o", capsize=2)
        ax.set_xscale("log")
        ax.set_xlabel("time since programming (s)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"MNIST MLP, {model}, with and without compensation")
        ax.legend()
        save_figure(fig, os.path.join(out, name))
        plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="memsim_output/compensation")
    p.add_argument("--seeds", default="5")
    p.add_argument("--sections", default="ir,pcm,rram,schedule", help=f"comma list of {', '.join(SECTIONS)}")
    memsim.study.add_executor_options(p)
    p.add_argument("--render-only", action="store_true")
    args = p.parse_args(argv)
    try:
        seeds = ex.parse_seeds(args.seeds)
    except ValueError as err:
        p.error(str(err))
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        p.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.jsonl")
    failed = 0
    try:
        if not args.render_only:
            cache = os.path.abspath(os.path.join("memsim_output", "nn", "models"))
            os.makedirs(cache, exist_ok=True)
            for seed in seeds:  # trained (or loaded) here once, so no two workers train the same network
                ex.trained(MODEL, seed, cache_dir=cache)
            points = [{"section": section, "seed": seed} for seed in seeds for section in sections]
            run = memsim.study.run_tasks("results", points, functools.partial(run_section, cache=cache), out=args.out,
                                         workers=args.workers, dask=args.dask)
            print(run.describe("listed above"), file=sys.stderr)
            failed = run.failed
        done = load_done(path)
    except (MemsimError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    render(done, args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
