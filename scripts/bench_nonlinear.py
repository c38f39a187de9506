"""Benchmark: nonlinear tiles with wire resistance, the batched circuit model against the exact
per-vector solver in the same run.

    python3 scripts/bench_nonlinear.py [--cases mlp-1t1r,mlp-device,lenet-device] [--seeds 3]
                                       [--images 1000] [--lenet-images 10000] [--exact-images 20]
                                       [--r-wire 2.5] [--conductances rram8] [--workers 2]

Cases: ``mlp-1t1r`` and ``mlp-device`` (memsim.experiments.trained('mlp-mnist', seed),
``--images`` MNIST test images), ``lenet-device`` ('lenet-fashion', ``--lenet-images``
Fashion-MNIST test images); 128 x 128 tiles, float32, ``--workers`` threads.  Per case and seed:

- program:   mapping and programming, including every tile's check against the solver;
- batched:   inference of all images through NonlinearBatched (the default model);
- exact:     the same programmed network with exact=True, timed on the first
             ``--exact-images`` images and scaled to all images (every convolution position
             is one solver call per tile);
- ratio:     exact (scaled) over batched;
- accuracy:  batched on all images; both paths on the exact subset, and their agreement;
- error:     largest column-current error of any tile, fraction of the column's full scale,
             on the random check vectors (``rand``) and on the network's own tile inputs for
             the first 4 images (``act``), against memsim.solve.

Times are wall clock on whatever else the machine is running; the exact path is measured in
the same run for the ratio.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from memsim import experiments as ex
from memsim.nn.analog import convert
from memsim.nn.config import HardwareConfig

CASES = {"mlp-1t1r": ("mlp-mnist", "1t1r"), "mlp-device": ("mlp-mnist", "device"),
         "lenet-device": ("lenet-fashion", "device")}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def activation_error(analog, x):
    """Largest column error (fraction of full scale) of every tile on its inputs for ``x``."""
    seen = []
    hooks = [tile.register_forward_pre_hook(lambda tile, args: seen.append((tile, args[0])))
             for tile in analog.tiles()]
    try:
        analog.logits(x)
    finally:
        for hook in hooks:
            hook.remove()
    worst = 0.0
    for tile, inputs in seen:
        for v, _ in tile.periphery.drive(inputs)[1]:
            worst = max(worst, tile.circuit.column_error(v[:64]))
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="mlp-1t1r,mlp-device,lenet-device")
    parser.add_argument("--seeds", default="3", help="a count (3: seeds 0..2) or a comma list")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--lenet-images", type=int, default=10000)
    parser.add_argument("--exact-images", type=int, default=20)
    parser.add_argument("--r-wire", type=float, default=2.5)
    parser.add_argument("--conductances", default="rram8")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--models", default="memsim_output/nn/models", help="trained-model cache")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.workers)
    seeds = ex.parse_seeds(args.seeds)
    rows = []
    for case in args.cases.split(","):
        model_name, cells = CASES[case]
        images = args.lenet_images if model_name == "lenet-fashion" else args.images
        for seed in seeds:
            model, data = ex.trained(model_name, seed, cache_dir=args.models)
            model = model.float()
            x, y = np.asarray(data.x_test[:images]), np.asarray(data.y_test[:images])
            xs, ys = x[:args.exact_images], y[:args.exact_images]
            config = HardwareConfig(tile=128, cells=cells, r_wire=args.r_wire, conductances=args.conductances,
                                    workers=args.workers, dtype="float32")
            convert(model, config, seed=seed).logits(x[:2])  # compile the kernels outside the timings
            analog, t_program = timed(lambda: convert(model, config, seed=seed))
            acc, t_batched = timed(lambda: analog.accuracy(x, y))
            acc_sub = analog.accuracy(xs, ys)
            pred_sub = analog.predict(xs)
            exact = convert(model, config.replace(exact=True), seed=seed)
            pred_exact, t_exact = timed(lambda: exact.predict(xs))
            t_exact *= images / max(len(xs), 1)
            rows.append(dict(case=case, seed=seed, images=images, program=t_program, batched=t_batched,
                             exact=t_exact, ratio=t_exact / t_batched, acc=acc, acc_sub=acc_sub,
                             acc_exact_sub=float(np.mean(pred_exact == ys)),
                             agree=float(np.mean(pred_exact == pred_sub)),
                             err_rand=max(t.circuit.measured_error for t in analog.tiles()),
                             err_act=activation_error(analog, x[:4])))
            print_row(rows[-1], header=len(rows) == 1)
    print(f"\n{len(seeds)} seed(s); exact path timed on {args.exact_images} image(s) and scaled; torch "
          f"{torch.__version__}, {args.workers} worker(s), {os.cpu_count()} CPU(s), load average "
          f"{os.getloadavg()[0]:.2f} at the end (a shared machine: times move with its other jobs)")
    return 0


def print_row(row, header):
    if header:
        print(f"{'case':14s} {'seed':>4s} {'images':>6s} {'program s':>9s} {'batched s':>9s} {'exact s':>9s} "
              f"{'ratio':>6s} {'acc':>6s} {'acc sub':>7s} {'exact sub':>9s} {'agree':>6s} {'err rand':>9s} "
              f"{'err act':>9s}")
    print(f"{row['case']:14s} {row['seed']:4d} {row['images']:6d} {row['program']:9.2f} {row['batched']:9.2f} "
          f"{row['exact']:9.1f} {row['ratio']:6.1f} {row['acc']:6.3f} {row['acc_sub']:7.3f} "
          f"{row['acc_exact_sub']:9.3f} {row['agree']:6.3f} {row['err_rand']:9.2e} {row['err_act']:9.2e}",
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
