"""Benchmark: Bayesian compute-in-memory, K stochastic passes of MNIST images through the MLP on tiles.

    flock /tmp/memsim-heavy.lock python3 scripts/bench_bayes.py [--samples 10] [--images 1000] [--r-wire 2.5]
                                                                [--threads 2]

Cases (each measured in this run, wall time; the network is the mlp-mnist architecture
(784-256-BN-128-BN-10) made Bayesian with the technology bound, at its seeded initialisation,
since the time does not depend on the trained values):

- float Bayesian:  K weight samples of the torch network (the reference for the ratios);
- crossbar, program: K samples by re-programming every pair (cycle-to-cycle spread) on
                   128 x 128 ohmic tiles with wire resistance: each sample is a new programmed
                   state, so the solver's effective matrix of every tile (IR drop) is recomputed
                   K times; 8-bit DAC and ADC; target: under 60 s for K = 10 x 1000 images;
- crossbar, read:  K samples by read-to-read noise on one programming (effective matrices
                   computed once);
- crossbar, deterministic: one pass of the mean network on the same tiles.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from memsim.nn import bayes as B
from memsim.nn import datasets, models
from memsim.nn.analog import convert
from memsim.nn.config import HardwareConfig
from memsim.nn.training import seeded


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--r-wire", type=float, default=2.5)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = datasets.load("mnist")
    x = np.asarray(data.x_test[:args.images], dtype=np.float32)
    config = HardwareConfig(tile=128, r_wire=args.r_wire, conductances="analog", dac_bits=8, adc_bits=8)
    rows = []

    def timed(name, func):
        start = time.perf_counter()
        out = func()
        rows.append((name, time.perf_counter() - start))
        return out

    for sampling in ("program", "read"):
        spread = B.DeviceSpread(sampling)
        with seeded(0):
            net = B.bayesian(models.build("mlp-mnist"), B.Technology.of(config, spread))
        net.eval()
        if sampling == "program":
            timed(f"float Bayesian, K={args.samples}", lambda: net.sample_logits(x, args.samples))
            timed("crossbar deterministic, 1 pass", lambda: convert(net.mean_model(), config, seed=0,
                                                                    calibration_x=data.x_train[:256]).logits(x))
        xbar = timed(f"crossbar {sampling}: mapping", lambda: B.BayesianCrossbar(
            net, config, spread=spread, seed=0, calibration_x=data.x_train[:256]))
        timed(f"crossbar {sampling}: K={args.samples} passes", lambda: xbar.sample_logits(x, args.samples))
    ref = rows[0][1]
    load = os.getloadavg()
    print(f"K={args.samples} samples of {len(x)} MNIST images, mlp-mnist on {config.tile}x{config.tile} ohmic tiles, "
          f"r_wire {config.r_wire:g} ohm, 8-bit DAC/ADC; torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'case':40s} {'wall s':>8s} {'x float':>8s}")
    for name, seconds in rows:
        print(f"{name:40s} {seconds:8.2f} {seconds / ref:8.1f}")
    total = sum(s for n, s in rows if n.startswith("crossbar program"))
    print(f"crossbar program, mapping + K passes: {total:.1f} s (target: under 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
