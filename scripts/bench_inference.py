"""Benchmark: the 1000-image MNIST test set through the 784-256-BN-128-BN-10 MLP on crossbar tiles.

    python scripts/bench_inference.py [--tile 128] [--r-wire 2.5] [--workers 2] [--skip-device]

Cases (each measured in this run, wall time from mapping to logits):

- float:        the numpy forward pass of the trained network (the reference for the ratios);
- ideal tiles:  rram8 levels, ideal wires (one matrix product per tile);
- ohmic + IR:   ohmic cells with wire resistance: the effective matrix of every tile (R unit
                solves each, once), then one product per tile for the whole batch
                (target: under 30 s);
- per-vector:   the same ohmic tiles solved image by image with memsim.solve, timed on a
                subset and scaled to 1000 images (what the fast path avoids);
- device + IR:  selector-less RRAM cells (sinh I-V) with wire resistance: damped Newton per
                image and tile, spread over --workers threads (target: under 3 minutes).

Prints a table with the time per image, the ratio to the float pass, the target and the
accuracy; a progress bar runs on stderr during the long cases.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from memsim.nn import datasets  # noqa: E402
from memsim.nn.inference import AnalogNetwork, HardwareConfig  # noqa: E402
from memsim.nn.train import blas_threads, train_network  # noqa: E402


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--r-wire", type=float, default=2.5, help="ohm per segment (default 2.5)")
    parser.add_argument("--workers", type=int, default=2, help="threads for nonlinear solves (default 2)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--per-vector-images", type=int, default=10,
                        help="images solved one by one for the per-vector reference (scaled up)")
    parser.add_argument("--skip-device", action="store_true", help="skip the nonlinear-cell case")
    args = parser.parse_args(argv)

    with blas_threads(1):
        mlp, data = train_network("mlp-mnist", seed=0, dataset=datasets.load("mnist"))
    x, y = data.x_test[:args.images], data.y_test[:args.images]
    n = len(x)
    rows = []

    logits, t_float = timed(lambda: mlp.forward(x))
    rows.append(("float (numpy)", t_float, float(np.mean(logits.argmax(1) == y)), None))

    def run(config, progress=True, images=x, labels=y):
        def job():
            net = AnalogNetwork(mlp, config, seed=0)
            return float(np.mean(net.predict(images, progress=progress) == labels))
        return timed(job)

    base = HardwareConfig(tile=args.tile, conductances="rram8", workers=args.workers)
    acc, t = run(base, progress=False)
    rows.append((f"ideal tiles (T={args.tile})", t, acc, None))
    print(f"ohmic cells, r = {args.r_wire} ohm: effective matrix per tile", file=sys.stderr)
    acc, t = run(base.replace(r_wire=args.r_wire))
    rows.append((f"ohmic + IR drop (r={args.r_wire})", t, acc, 30.0))

    # per-vector reference: the same tiles, every image solved on its own
    import memsim

    net = AnalogNetwork(mlp, base.replace(r_wire=args.r_wire), seed=0)
    k = args.per_vector_images

    def per_vector():
        total = 0
        for tile in net.tiles:
            xb = net._crossbar(tile)
            v = 0.2 * np.abs(x[:k, tile.map.rows])
            for vector in v:
                memsim.solve(xb, vector, voltages=False)
                total += 1
        return total

    _, t_k = timed(per_vector)
    rows.append((f"ohmic + IR, per-image solves (x{n}/{k})", t_k * n / k, None, None))

    if not args.skip_device:
        print(f"selector-less RRAM cells, r = {args.r_wire} ohm: damped Newton per image and tile, "
              f"{args.workers} threads", file=sys.stderr)
        acc, t = run(base.replace(r_wire=args.r_wire, cells="device"))
        rows.append((f"device cells + IR drop (r={args.r_wire})", t, acc, 180.0))

    print(f"\n{n} MNIST test images, 784-256-BN-128-BN-10 MLP, {args.tile}x{args.tile} tiles, "
          f"rram8 levels, {args.workers} worker thread(s), {os.cpu_count()} CPU(s)")
    header = (f"{'case':44s} {'wall s':>9s} {'ms/image':>9s} {'x float':>10s} {'target s':>9s} {'ok':>3s} "
              f"{'accuracy':>9s}")
    print(header)
    print("-" * len(header))
    for name, seconds, accuracy, target in rows:
        ok = "" if target is None else ("yes" if seconds < target else "NO")
        print(f"{name:44s} {seconds:9.2f} {1e3 * seconds / n:9.3f} {seconds / t_float:10.0f} "
              f"{'' if target is None else f'{target:.0f}':>9s} {ok:>3s} "
              f"{'' if accuracy is None else f'{100 * accuracy:.1f}%':>9s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
