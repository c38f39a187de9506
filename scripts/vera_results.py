"""VeRA+ against GDC and BN re-calibration under the CMO ReRAM model and measured drift statistics.

    python3 scripts/vera_results.py [--models mlp-mnist,resnet-fashion] [--seeds 3]
                                    [--sections table,tolerance,ablation,validation,qat]
                                    [--tolerances 0.1,0.05,0.025]
                                    [--noise reram,measured] [--instances 100]
                                    [--val-images N] [--train-images N] [--test-images N]
                                    [--stats examples/drift/measured_levels_example.csv]
                                    [--out memsim_output/vera] [--workers 2] [--dask ADDRESS]
                                    [--render-only]

Models (seed s trains the network, cached as a model file, and draws every device random
number):

- ``mlp-mnist``: the 784-256-BN-128-BN-10 MLP on the MNIST subset (cache
  memsim_output/nn/models): VeRA+ trains on the first 3000 training images, Algorithm 1
  validates on the last 1000, the table tests on all 1000 test images;
- ``resnet-fashion``: the small ResNet with BatchNorm on Fashion-MNIST (cache
  memsim_output/cnn-resnet/models; 10 analog layers: the stem, six 3x3 convolutions, two of
  them with stride 2, two 1x1 stride-2 shortcuts and the classifier; VeRA+ with the paper's
  1x1-kernel scheme).  Its forward through drift instances costs about 3 ms per image on
  one core (the MLP's about 0.05 ms), so one schedule step at 100 instances on 100 images
  takes about 30 s and a schedule (49 steps) about 25 minutes per rank.  Reduced by default:
  VeRA+ trains on the first 384 training images, Algorithm 1 validates on the last 48,
  the table tests on the first 1000 of the 10 000 test images, BN re-calibration and GDC as
  for the MLP; run it with ``--instances 20`` (fewer than the paper's 100) to fit the time.

``--val-images``, ``--train-images`` and ``--test-images`` override a model's sizes; every
row records its sizes and its number of drift instances, and a table is printed per number of
instances.

Noise models:

- ``reram``: aihwkit's ``ReRamCMONoiseModel`` with its default periphery
  (:func:`memsim.nn.reram.aihwkit_reram_config`: one device per weight, 9.0-88.2 uS);
- ``measured``: :class:`memsim.nn.reram.MeasuredDriftModel` from ``--stats`` on rram8 levels
  (differential pairs, T = 128, 8-bit DAC and ADC).

Every (section, model, noise, seed[, tolerance]) is a point of :func:`memsim.study.run_tasks`
(worker processes or a Dask cluster; a finished point is stored at once and never computed
again; image counts and the statistics file are the run's settings, so a rerun with others
needs another ``--out``).  Its export ``results.jsonl`` (the format of the older results logs,
which ``--render-only`` reads too) rebuilds the text ``vera_results.txt`` and the figure
``vera_sets_vs_tolerance.png``.  Sections:

- ``table``: at 1 day, 1 month, 1 year and 10 years: uncompensated, GDC (per tile), GDC + BN
  re-calibration (200 stored training images, 5 % of the MNIST subset's training set as the
  VeRA+ paper), GDC + VeRA+ rank 1 and rank 6 (each from Algorithm 1 of "VeRA+: Vector-Based
  Lightweight Digital Compensation for Drift-Resilient RRAM In-Memory Computing": x1.5 steps
  from 1 s to 10 years, mean - 3 std over ``--instances`` drift instances on the validation
  images, tolerance 5 %; 3 epochs, batch 64 on the training images), with storage bytes
  (``storage_bytes`` of each strategy: for VeRA+ the 8-byte seed that redraws A and B, the
  float32 vectors and a float64 switch time per set) and fit times;
- ``tolerance``: the number of VeRA+ sets (rank 1) against the tolerance (``--tolerances``,
  default 10, 5 and 2.5 %) and the schedule's fit time;
- ``ablation``: VeRA+ rank 1 at 10 years with one set (no schedule): 3 against 10 epochs, and
  the 'offset' projection (A's first row all ones), rank 1 and 6;
- ``qat``: the same at 10 years on the paper's W4A4 backbone (:func:`memsim.nn.qat.train_qat`,
  5 epochs of quantisation-aware fine-tuning from the float network), with GDC + BN;
- ``validation``: Algorithm 1's noise floor: the validation accuracy's mean and standard
  deviation over ``--instances`` drift instances right after programming and at 1 s, on the
  last 48, 192 and 768 training images: where 3 std exceeds the 5 % tolerance the schedule
  stores a set at every step, drift or not.

Rows logged before the seed-only count (no ``"count"`` key) held A and B as sign bits; they
are shown with those bits replaced by the 8-byte seed (the MLP: ceil(r (784 + 256) / 8) B
less 8), the same count as the new rows.  Table rows logged without ``"instances"`` ran at
30 drift instances.

The machine's load is printed with every row (the fit times depend on it).
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time

import numpy as np

from memsim.compensate import BNRecalibration, GlobalDriftCompensation, VeRAPlus, attached
import memsim.study
from memsim.errors import FileError, MemsimError
from memsim.io import save_figure, write_atomic
from memsim import experiments as ex
from memsim.nn.analog import convert
from memsim.nn.config import HardwareConfig

YEAR = ex.YEAR
#: per model: model cache, and the images VeRA+ trains on (None: all but the validation
#: ones), validates Algorithm 1 on (the last of the training set) and the table tests on
#: (None: the whole test set)
PLANS = {"mlp-mnist": {"cache": os.path.join("memsim_output", "nn", "models"), "train": None, "val": 1000,
                       "test": None},
         "resnet-fashion": {"cache": os.path.join("memsim_output", "cnn-resnet", "models"), "train": 384,
                            "val": 48, "test": 1000}}
#: largest inputs and outputs of an analog layer (sizes of A and B) of the models that have
#: rows logged with A and B as sign bits
_BIT_ROWS = {"mlp-mnist": (784, 256)}
TIMES = (("1 day", 86400.0), ("1 month", YEAR / 12), ("1 year", YEAR), ("10 years", 10 * YEAR))
TOLERANCES = (0.05, 0.025, 0.10)  # the paper's two first
BN_IMAGES = 200
BATCH = 250  # test images per forward (the ResNet's patch matrices stay below ~0.2 GB)


def config(noise, stats):
    if noise == "reram":
        from memsim.nn.reram import aihwkit_reram_config

        return aihwkit_reram_config()
    from memsim.nn.reram import MeasuredDriftModel

    return HardwareConfig(tile=128, conductances="rram8", dac_bits=8, adc_bits=8, noise=MeasuredDriftModel(stats))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def accuracy_with(net, strategies, x, y):
    with attached(net, *strategies):
        return net.accuracy(x, y, batch_size=BATCH)


def weight_count(model):
    from torch import nn

    return int(sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))))


def split(data, plan):
    """(training, validation) images of VeRA+: the last ``val`` training images validate,
    the first ``train`` (None: all the others) train."""
    val = plan["val"]
    train = len(data.y_train) - val if plan["train"] is None else plan["train"]
    if train + val > len(data.y_train):
        raise ValueError(f"{train} training + {val} validation images exceed the {len(data.y_train)} available")
    return (data.x_train[:train], data.y_train[:train]), (data.x_train[-val:], data.y_train[-val:])


def test_set(data, plan):
    n = len(data.y_test) if plan["test"] is None else plan["test"]
    return data.x_test[:n], data.y_test[:n]


def schedule(net, data, plan, seed, rank, tolerance, instances, **options):
    (xt, yt), (xv, yv) = split(data, plan)
    return timed(lambda: VeRAPlus(rank, seed=seed, **options).fit_schedule(
        net, xt, yt, xv, yv, tolerance=tolerance, instances=instances))


def run_table(model, data, plan, seed, cfg, instances, tolerance=0.05):
    x, y = test_set(data, plan)
    net = convert(model, cfg, seed=seed, calibration_x=ex.calibration_inputs(cfg, data))
    gdc, fit_gdc = timed(lambda: GlobalDriftCompensation("tile").fit(net))
    bn, fit_bn = timed(lambda: BNRecalibration(BN_IMAGES, seed=seed).fit(data.x_train))
    veras, fits, trace = {}, {"gdc": fit_gdc, "bn": fit_bn}, {}
    for rank in (1, 6):
        veras[rank], fits[f"vera{rank}"] = schedule(net, data, plan, seed, rank, tolerance, instances)
        trace[f"vera{rank}"] = {"times": veras[rank].times, "sets": len(veras[rank].sets),
                                "drift_free": veras[rank].drift_free, "log": veras[rank].log}
    combos = {"none": [], "gdc": [gdc], "gdc+bn": [gdc, bn], "gdc+vera1": [gdc, veras[1]],
              "gdc+vera6": [gdc, veras[6]]}
    net.set_time(0.0)
    row = {"float": ex.float_accuracy(model, x, y), "t0": net.accuracy(x, y, batch_size=BATCH), "fit_s": fits,
           "trace": trace,
           "storage": {k: int(sum(s.storage_bytes for s in v)) for k, v in combos.items()},
           "weights": weight_count(model), "acc": {}}
    for label, t in TIMES:
        net.set_time(t)
        row["acc"][label] = {k: accuracy_with(net, v, x, y) for k, v in combos.items()}
    return row


def run_tolerance(model, data, plan, seed, cfg, instances, tol, projection="rademacher"):
    net = convert(model, cfg, seed=seed, calibration_x=ex.calibration_inputs(cfg, data))
    vera, secs = schedule(net, data, plan, seed, 1, tol, instances, projection=projection)
    return {"sets": len(vera.sets), "times": vera.times, "fit_s": secs, "storage": vera.storage_bytes}


VALIDATION_SIZES = (48, 192, 768)


def run_validation(model, data, plan, seed, cfg, instances):
    """Algorithm 1's noise floor: the validation accuracy's mean and std over drift instances
    right after programming and at t = 1 s (before any set), per validation size, and whether
    the schedule's test (mean - 3 std below 95 % of the drift-free mean) already fires at 1 s."""
    net = convert(model, cfg, seed=seed, calibration_x=ex.calibration_inputs(cfg, data))
    vera = VeRAPlus(1, seed=seed)
    vera._init_projections(net)
    row = {}
    for n in VALIDATION_SIZES:
        x, y = data.x_train[-n:], data.y_train[-n:]
        free = vera.eval_stats(net, 0.0, None, x, y, instances)
        at_1s = vera.eval_stats(net, 1.0, None, x, y, instances)
        row[str(n)] = {"free": free, "t1": at_1s, "fires": VeRAPlus.falls_short(*at_1s, 0.95 * free[0])}
    return row


def run_ablation(model, data, plan, seed, cfg):
    x, y = test_set(data, plan)
    (xt, yt), _ = split(data, plan)
    net = convert(model, cfg, seed=seed, calibration_x=ex.calibration_inputs(cfg, data))
    gdc = GlobalDriftCompensation("tile").fit(net)
    variants = {"rank 1, 3 epochs": dict(rank=1), "rank 1, 10 epochs": dict(rank=1, epochs=10),
                "rank 6, 3 epochs": dict(rank=6), "rank 1, offset projection": dict(rank=1, projection="offset"),
                "rank 6, offset projection": dict(rank=6, projection="offset")}
    net.set_time(10 * YEAR)
    row = {"gdc": accuracy_with(net, [gdc], x, y)}
    for name, options in variants.items():
        rank = options.pop("rank")
        vera, secs = timed(lambda: VeRAPlus(rank, seed=seed, **options).fit_single(net, xt, yt, 10 * YEAR))
        net.set_time(10 * YEAR)
        row[name] = {"accuracy": accuracy_with(net, [gdc, vera], x, y), "fit_s": secs, "storage": vera.storage_bytes}
    return row


def run_qat(model, data, plan, seed, cfg):
    from memsim.nn.qat import train_qat

    qat = train_qat(model, data, seed=seed)
    x, y = test_set(data, plan)
    (xt, yt), _ = split(data, plan)
    net = convert(qat, cfg, seed=seed, calibration_x=ex.calibration_inputs(cfg, data))
    gdc = GlobalDriftCompensation("tile").fit(net)
    bn = BNRecalibration(BN_IMAGES, seed=seed).fit(data.x_train)
    row = {"float": ex.float_accuracy(qat, x, y), "t0": net.accuracy(x, y, batch_size=BATCH)}
    net.set_time(10 * YEAR)
    row["gdc"] = accuracy_with(net, [gdc], x, y)
    row["gdc+bn"] = accuracy_with(net, [gdc, bn], x, y)
    for name, rank, options in (("rank 1, 3 epochs", 1, {}), ("rank 6, 3 epochs", 6, {}),
                                ("rank 1, offset projection", 1, {"projection": "offset"})):
        vera, secs = timed(lambda: VeRAPlus(rank, seed=seed, **options).fit_single(net, xt, yt, 10 * YEAR))
        net.set_time(10 * YEAR)
        row[name] = {"accuracy": accuracy_with(net, [gdc, vera], x, y), "fit_s": secs, "storage": vera.storage_bytes}
    return row


def _bits_to_seed(item, rank):
    """Bytes an older row counted for A and B as sign bits, less the 8-byte seed."""
    max_in, max_out = _BIT_ROWS[item["model"]]
    return math.ceil(rank * (max_in + max_out) / 8) - 8


def _recount(item):
    """An older row's VeRA+ storage in the seed-only count (see the docstring)."""
    if "count" in item or item["model"] not in _BIT_ROWS:
        return item
    if item["section"] == "table":
        for rank in (1, 6):
            item["storage"][f"gdc+vera{rank}"] -= _bits_to_seed(item, rank)
    elif item["section"] == "tolerance":
        item["row"]["storage"] -= _bits_to_seed(item, 1)
    else:
        for name, value in item["row"].items():
            if isinstance(value, dict) and "storage" in value:
                value["storage"] -= _bits_to_seed(item, int(name.split(",")[0].split()[1]))
    item["count"] = "seed, recounted"
    return item


def load_done(path):
    done = {}
    for item in memsim.study.read_records(path):
        if item["section"] == "tolerance" and "tolerance" not in item:
            continue  # an older layout, one row for all tolerances
        item.setdefault("model", "mlp-mnist")
        if item["section"] == "table":
            item.setdefault("instances", 30)
            item.setdefault("table_tolerance", 0.05)
        key = (item["section"], item["model"], item["noise"], item["seed"])
        if item["section"] == "table":
            key += (item["instances"], item.get("val_images", 0), -item["table_tolerance"])
        if "tolerance" in item:
            key += (item["tolerance"], item.get("projection", "rademacher"))
        done[key] = _recount(item)
    return done


def pm(values, scale=100.0, digits=1):
    values = np.asarray(values, float)
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return f"{scale * values.mean():.{digits}f} ± {scale * std:.{digits}f}"


NOISE_TITLE = {"reram": "CMO ReRAM model (aihwkit ReRamCMONoiseModel, single device 9-88.2 uS, aihwkit periphery)",
               "measured": "measured-statistics model (illustrative example file; rram8 pairs, T = 128, 8-bit)"}
METHODS = (("none", "uncompensated"), ("gdc", "GDC"), ("gdc+bn", "GDC + BN re-calibration"),
           ("gdc+vera1", "GDC + VeRA+ rank 1"), ("gdc+vera6", "GDC + VeRA+ rank 6"))


def sizes(row):
    return (f"VeRA+ trained on {row['train_images']} training images, Algorithm 1 validated on "
            f"{row['val_images']}, tested on {row['test_images']} test images")


def unrecovered(row, rank):
    """(stored sets that do not lift mean - 3 std above the threshold at their own time, the
    first such time in s), or None for a row logged without the after-training statistics."""
    trace = row["trace"][f"vera{rank}"]
    stored = [step for step in trace["log"] if step["new_set"]]
    if not stored or "mean_after" not in stored[0]:
        return None
    threshold = (1 - row.get("table_tolerance", 0.05)) * trace["drift_free"]
    below = [step["t"] for step in stored if VeRAPlus.falls_short(step["mean_after"], step["std_after"], threshold)]
    return f"{len(below)} of {len(stored)}" + (f" from {min(below):.3g} s" if below else "")


def render(done, out):
    lines = []
    for model in PLANS:
        for noise in ("reram", "measured"):
            # (instances, validation images, -tolerance): the most drift instances logged (fewer are
            # superseded), then the lowest tolerance, then the most validation images
            groups = sorted({key[4:7] for key in done if key[:3] == ("table", model, noise)},
                            key=lambda g: (-g[0], -g[2], -g[1]))
            if not groups:
                continue
            instances = groups[0][0]
            rows = [v for key, v in sorted(done.items()) if key[:3] == ("table", model, noise)
                    and key[4:7] == groups[0]]
            w = rows[0]["weights"]
            lines += [f"{model}, {NOISE_TITLE[noise]}; seeds {[v['seed'] for v in rows]}; Algorithm 1 over "
                      f"{instances} drift instances per step; test accuracy, mean ± std, %",
                      (sizes(rows[0]) + "; " if "val_images" in rows[0] else "")
                      + f"float {pm([v['float'] for v in rows])}, right after programming {pm([v['t0'] for v in rows])}; "
                      f"weights {w} ({4 * w} B as float32, {w // 2} B at 4 bits)", "",
                      "| method                  | " + " | ".join(f"{label:12s}" for label, _ in TIMES)
                      + " | storage B | % of f32 weight bytes |",
                      "|-------------------------|" + "|".join("-" * 14 for _ in TIMES)
                      + "|-----------|-----------------------|"]
            for key, label in METHODS:
                accs = " | ".join(f"{pm([v['acc'][t][key] for v in rows]):12s}" for t, _ in TIMES)
                stor = [v["storage"][key] for v in rows]
                lines.append(f"| {label:23s} | {accs} | {np.mean(stor):9.0f} | {100 * np.mean(stor) / (4 * w):21.3f} |")
            sets = {r: [v["trace"][f"vera{r}"]["sets"] for v in rows] for r in (1, 6)}
            fit = {k: np.mean([v["fit_s"][k] for v in rows]) for k in rows[0]["fit_s"]}
            gap = [v["acc"]["10 years"]["gdc+bn"]
                   - max(v["acc"]["10 years"]["gdc+vera1"], v["acc"]["10 years"]["gdc+vera6"]) for v in rows]
            lines += ["", f"VeRA+ sets at {100 * rows[0]['table_tolerance']:g} % tolerance: rank 1 {sets[1]}, rank 6 {sets[6]}; fit s (mean): "
                      + ", ".join(f"{k} {s:.1f}" for k, s in fit.items())
                      + f"; row s {[round(v['seconds']) for v in rows]} at load {[round(v['load'], 1) for v in rows]}",
                      f"BN re-calibration minus the better VeRA+ at 10 years: {pm(gap)} points"]
            if any(unrecovered(v, 1) is not None for v in rows):
                lines.append("sets whose own validation accuracy, right after training, stays below Algorithm 1's "
                             "threshold (mean - 3 std): " + "; ".join(
                                 f"rank {r} {[unrecovered(v, r) for v in rows]}" for r in (1, 6)))
            for other in [g for g in groups[1:] if g[0] == instances]:
                alt = [v for key, v in sorted(done.items()) if key[:3] == ("table", model, noise) and key[4:7] == other]
                lines.append(f"Algorithm 1 at {-100 * other[2]:g} % tolerance, validated on {other[1]} images, VeRA+ "
                             f"trained on {alt[0]['train_images']} (seeds {[v['seed'] for v in alt]}): "
                             + "; ".join(f"rank {r} {[v['trace'][f'vera{r}']['sets'] for v in alt]} sets, "
                                         f"{100 * np.mean([v['storage'][f'gdc+vera{r}'] for v in alt]) / (4 * w):.2f} % "
                                         f"of the weight bytes, "
                                         + ", ".join(f"{pm([v['acc'][t][f'gdc+vera{r}'] for v in alt])} at {t}"
                                                     for t, _ in TIMES)
                                         + (f" (sets below the threshold right after training: "
                                            f"{unrecovered(alt[0], r)})" if unrecovered(alt[0], r) is not None else "")
                                         for r in (1, 6))
                             + f"; BN re-calibration {pm([v['acc']['10 years']['gdc+bn'] for v in alt])} at 10 years")
            fewer = sorted({g[0] for g in groups if g[0] < instances}, reverse=True)
            if fewer:
                lines.append(f"(rows at {', '.join(map(str, fewer))} drift instances are kept in results.jsonl, "
                             f"superseded by these)")
            lines.append("")
    tol_rows = [v for key, v in sorted(done.items()) if key[0] == "tolerance"]
    for model, noise in [(m, n) for m in PLANS for n in ("reram", "measured")]:
        rows = [v for v in tol_rows if v["noise"] == noise and v["model"] == model]
        if not rows:
            continue
        lines.append(f"VeRA+ sets against tolerance ({model}, rank 1, Algorithm 1, x1.5 steps from 1 s to 10 years), "
                     f"{noise}")
        for v in sorted(rows, key=lambda v: (v.get("projection", "rademacher"), -v["tolerance"], v["seed"])):
            lines.append(f"  {v.get('projection', 'rademacher')} A, tolerance {100 * v['tolerance']:4.1f} %, seed {v['seed']}, "
                         f"{v['instances']} drift instances: "
                         f"{v['row']['sets']} sets, schedule fit {v['row']['fit_s']:.0f} s (load {v['load']:.1f}), "
                         f"storage {v['row']['storage']} B; switch times (s) "
                         + ", ".join(f"{t:.3g}" for t in v["row"]["times"]))
        lines.append("")
    for model, noise in [(m, n) for m in PLANS for n in ("reram", "measured")]:
        rows = [v for key, v in sorted(done.items()) if key[:3] == ("ablation", model, noise)]
        if not rows:
            continue
        lines.append(f"Ablation at 10 years, {model}, one VeRA+ set trained at 10 years on top of GDC, {noise}; "
                     f"seeds {[v['seed'] for v in rows]}")
        lines.append(f"  {'GDC alone':30s} {pm([v['row']['gdc'] for v in rows])}")
        for name in [k for k in rows[0]["row"] if k != "gdc"]:
            lines.append(f"  {name:30s} {pm([v['row'][name]['accuracy'] for v in rows])}  "
                         f"({rows[0]['row'][name]['storage']} B, fit {np.mean([v['row'][name]['fit_s'] for v in rows]):.0f} s)")
        lines.append("")
    for model, noise in [(m, n) for m in PLANS for n in ("reram", "measured")]:
        rows = [v for key, v in sorted(done.items()) if key[:3] == ("qat", model, noise)]
        if not rows:
            continue
        lines.append(f"W4A4 backbone (quantisation-aware fine-tuning, 5 epochs) at 10 years, {model}, {noise}; "
                     f"seeds {[v['seed'] for v in rows]}")
        for key, label in (("float", "W4A4, digital"), ("t0", "W4A4 on tiles, t = 0"), ("gdc", "GDC"),
                           ("gdc+bn", "GDC + BN re-calibration")):
            lines.append(f"  {label:30s} {pm([v['row'][key] for v in rows])}")
        for name in ("rank 1, 3 epochs", "rank 6, 3 epochs", "rank 1, offset projection"):
            lines.append(f"  GDC + VeRA+ {name:18s} {pm([v['row'][name]['accuracy'] for v in rows])}  "
                         f"({rows[0]['row'][name]['storage']} B)")
        lines.append("")
    for model, noise in [(m, n) for m in PLANS for n in ("reram", "measured")]:
        rows = [v for key, v in sorted(done.items()) if key[:3] == ("validation", model, noise)]
        if not rows:
            continue
        lines += [f"Algorithm 1's noise floor, {model}, {noise}: validation accuracy over {rows[0]['instances']} drift "
                  f"instances (the last N training images), before any VeRA+ set; seeds {[v['seed'] for v in rows]}",
                  "  N     drift-free (t = 0)   at t = 1 s          3 std at 1 s   5 % of drift-free   "
                  "stores a set at 1 s"]
        for n in sorted(rows[0]["row"], key=int):
            free = [v["row"][n]["free"] for v in rows]
            t1 = [v["row"][n]["t1"] for v in rows]
            lines.append(f"  {n:5s} {pm([f[0] for f in free]):20s} {pm([t[0] for t in t1]):19s} "
                         f"{300 * np.mean([t[1] for t in t1]):6.1f} points   {5 * np.mean([f[0] for f in free]):6.1f} points"
                         f"       {sum(v['row'][n]['fires'] for v in rows)} of {len(rows)} seeds")
        lines.append("")
    loads = [v.get("load") for v in done.values() if v.get("load")]
    if loads:
        lines.append(f"machine load (1-min load average on 2 cores) while the rows ran: {min(loads):.1f} to {max(loads):.1f}")
    text = "\n".join(lines)
    write_atomic(os.path.join(out, "vera_results.txt"), text + "\n")
    print(text)
    if tol_rows:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.6, 4))
        for (model, noise, projection), marker in zip([(m, n, pr) for m in PLANS for n in ("reram", "measured")
                                                       for pr in ("rademacher", "offset")], "osD^v<>p"):
            rows = [v for v in tol_rows if v["noise"] == noise and v["model"] == model
                    and v.get("projection", "rademacher") == projection]
            if not rows:
                continue
            tols = sorted({v["tolerance"] for v in rows}, reverse=True)
            counts = [[v["row"]["sets"] for v in rows if v["tolerance"] == t] for t in tols]
            ax.errorbar([100 * t for t in tols], [np.mean(c) for c in counts], [np.std(c) for c in counts],
                        marker=marker, capsize=3, label=f"memsim {rows[0]['model']}, {noise}, {projection} A (seeds {sorted({v['seed'] for v in rows})}, "
                                                        f"{rows[0]['instances']} instances)")
        ax.plot([5.0, 2.5], [5, 11], "k*", ms=12, ls="none", label="VeRA+ paper (ResNet-20, CIFAR-10)")
        ax.set_xlabel("accuracy tolerance (%)")
        ax.set_ylabel("VeRA+ sets (1 s to 10 years)")
        ax.invert_xaxis()
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title("VeRA+ sets needed against tolerance")
        fig.tight_layout()
        save_figure(fig, os.path.join(out, "vera_sets_vs_tolerance.png"))
        plt.close(fig)


def grid(models, sections, noises, args):
    """The points: per model, section, noise and seed (and tolerance in that section)."""
    out = []
    for model_name, section in [(m, s) for m in models for s in sections]:
        seeds = ex.parse_seeds(args.tolerance_seeds if section == "tolerance" else args.seeds)
        for noise in noises:
            for tol in args.tolerances if section == "tolerance" else (None,):
                for seed in seeds:
                    point = {"section": section, "model": model_name, "noise": noise, "seed": seed}
                    if section in ("table", "tolerance", "validation"):
                        point["instances"] = args.instances
                    if section == "table":
                        point["table_tolerance"] = args.table_tolerance
                    if tol is not None:
                        point.update(tolerance=tol, projection=args.projection)
                    out.append(point)
    return out


def run_point(point, stats, images):
    """One point in a worker: its section's row, image counts, wall time and load."""
    import torch

    torch.set_num_threads(1)
    section, model_name, noise, seed = point["section"], point["model"], point["noise"], point["seed"]
    plan = dict(PLANS[model_name])
    plan.update({name: count for name, count in images.items() if count is not None})
    model, data = ex.trained(model_name, seed, cache_dir=plan["cache"])
    cfg = config(noise, stats)
    start = time.perf_counter()
    if section == "table":
        row = run_table(model, data, plan, seed, cfg, point["instances"], point.get("table_tolerance", 0.05))
    elif section == "tolerance":
        row = {"row": run_tolerance(model, data, plan, seed, cfg, point["instances"], point["tolerance"],
                                    point["projection"])}
    elif section == "validation":
        row = {"row": run_validation(model, data, plan, seed, cfg, point["instances"])}
    elif section == "qat":
        row = {"row": run_qat(model, data, plan, seed, cfg)}
    else:
        row = {"row": run_ablation(model, data, plan, seed, cfg)}
    (xt, _), (xv, _) = split(data, plan)
    row.update(count="seed", train_images=len(xt), val_images=len(xv), test_images=len(test_set(data, plan)[0]),
               seconds=time.perf_counter() - start, load=os.getloadavg()[0])
    print(f"{section} {model_name} {noise} seed {seed} {point.get('tolerance', '')} done in "
          f"{row['seconds']:.0f} s (load {row['load']:.1f})", file=sys.stderr, flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="memsim_output/vera")
    p.add_argument("--models", default=",".join(PLANS))
    p.add_argument("--seeds", default="3")
    p.add_argument("--sections", default="table,tolerance,ablation")
    p.add_argument("--noise", default="reram,measured")
    p.add_argument("--instances", type=int, default=100)
    p.add_argument("--val-images", type=int, help="images Algorithm 1 validates on (default: per model)")
    p.add_argument("--train-images", type=int, help="images VeRA+ trains on (default: per model)")
    p.add_argument("--test-images", type=int, help="test images of the table (default: per model)")
    p.add_argument("--tolerance-seeds", default="1", help="seeds of the tolerance section (a count or a list)")
    p.add_argument("--table-tolerance", type=float, default=0.05,
                   help="Algorithm 1's tolerance in the table section (default 0.05, the paper's)")
    p.add_argument("--tolerances", default=",".join(f"{t:g}" for t in TOLERANCES),
                   help="tolerances of the tolerance section (comma list of fractions, default %(default)s)")
    p.add_argument("--stats", default=os.path.join("examples", "drift", "measured_levels_example.csv"))
    p.add_argument("--projection", default="rademacher", choices=("rademacher", "offset"),
                   help="VeRA+ projection A of the tolerance section (offset: first row all ones)")
    memsim.study.add_executor_options(p)
    p.add_argument("--render-only", action="store_true",
                   help="rebuild the text and figure from results.jsonl (the store's export, or an older results log)")
    args = p.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    noises = [n.strip() for n in args.noise.split(",") if n.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for s in sections:
        if s not in ("table", "tolerance", "ablation", "qat", "validation"):
            p.error(f"unknown section {s!r}; choose from table, tolerance, ablation, qat, validation")
    for n in noises:
        if n not in ("reram", "measured"):
            p.error(f"unknown noise {n!r}; choose from reram, measured")
    for m in models:
        if m not in PLANS:
            p.error(f"unknown model {m!r}; choose from {', '.join(PLANS)}")
    try:
        args.tolerances = [float(t) for t in args.tolerances.split(",") if t.strip()]
    except ValueError:
        p.error(f"--tolerances must be a comma list of fractions in (0, 1), got {args.tolerances!r}")
    if not args.tolerances or not all(0 < t < 1 for t in args.tolerances):
        p.error(f"--tolerances must be a comma list of fractions in (0, 1), got {args.tolerances}")
    if not 0 < args.table_tolerance < 1:
        p.error(f"--table-tolerance must be in (0, 1), got {args.table_tolerance}")
    if args.instances < 2:
        p.error("--instances must be >= 2")
    for name in ("val_images", "train_images", "test_images"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    path = os.path.join(args.out, "results.jsonl")
    failed = 0
    try:
        if not args.render_only:
            images = {"val": args.val_images, "train": args.train_images, "test": args.test_images}
            points = grid(models, sections, noises, args)
            for model_name, seed in sorted({(q["model"], q["seed"]) for q in points}):
                # trained (or loaded) here once, so no two workers train the same network
                ex.trained(model_name, seed, cache_dir=PLANS[model_name]["cache"], progress=True)
            run = memsim.study.run_tasks("results", points, functools.partial(run_point, stats=args.stats, images=images),
                                         settings={"stats": args.stats, "images": images}, out=args.out,
                                         workers=args.workers, dask=args.dask)
            print(run.describe("listed above"), file=sys.stderr)
            failed = run.failed
        rows = load_done(path)
    except (FileError, MemsimError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    render(rows, args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
