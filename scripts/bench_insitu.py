"""Benchmark: one epoch of in-situ training of the digits MLP (64-64-10, 1437 images) with
pulsed updates, each update rule and bias scheme, against one epoch of float SGD on the same
network in the same run (the reference of the ratio).

    flock /tmp/memsim-heavy.lock python3 scripts/bench_insitu.py [--repeats 2] [--threads 1]

The target is an epoch under a minute on 2 cores.  Times are wall clock (best of
``--repeats``), on whatever else the machine is running (its load average is printed).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CASES = (("stochastic", "v/2"), ("stochastic", "none"), ("stochastic", "v/3"), ("write-verify", "v/2"), ("eapu", "v/2"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    import torch

    from insitu_results import SIZES, float_sgd, initial_weights
    from memsim.learn.insitu import InSituConfig, InSituTrainer
    from memsim.learn.response import PulseModel, ResponseTable
    from memsim.nn import datasets

    torch.set_num_threads(args.threads)
    dataset = datasets.load("digits")
    sizes = SIZES["digits"]
    model = PulseModel(ResponseTable.load(), "device")
    cfg = InSituConfig()
    print(f"load average at start: {os.getloadavg()[0]:.2f}, torch threads {args.threads}")
    reference = min(float_sgd(dataset, sizes, 1, cfg.lr, cfg.batch_size, 0)[1]["seconds"] for _ in range(args.repeats))
    rows = [("float SGD (reference)", "-", reference, None)]
    for update, scheme in CASES:
        best, accuracy = float("inf"), None
        for _ in range(args.repeats):
            trainer = InSituTrainer(sizes, model, InSituConfig(update=update, scheme=scheme),
                                    init_weights=initial_weights(sizes, 0))
            start = time.perf_counter()
            trainer.train_epoch(dataset.x_train, dataset.y_train)
            best = min(best, time.perf_counter() - start)
            accuracy = trainer.accuracy(dataset.x_test, dataset.y_test)
        rows.append((update, scheme, best, accuracy))
    print(f"{'update':<22} {'disturb':<8} {'s/epoch':>8} {'x float':>8} {'accuracy':>9}")
    for update, scheme, seconds, accuracy in rows:
        acc = "" if accuracy is None else f"{accuracy:9.3f}"
        print(f"{update:<22} {scheme:<8} {seconds:8.2f} {seconds / reference:8.1f} {acc}")
    worst = max(r[2] for r in rows)
    print(f"slowest in-situ epoch: {worst:.1f} s ({'under' if worst < 60 else 'OVER'} the 60 s target)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
