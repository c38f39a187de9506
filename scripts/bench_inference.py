"""Benchmark: a trained network on crossbar tiles, the Fashion-MNIST test set through the LeNet-class CNN.

    python3 scripts/bench_inference.py [--model lenet-fashion] [--images 10000] [--tile 128] [--r-wire 2.5]
                                       [--per-vector-images 20] [--no-aihwkit]
    python3 scripts/bench_inference.py --aihwkit-only [--threads 1,2] [--repeats 3] [--images 10000]

Cases (each measured in this run; wall time, and the process's peak resident memory above
what it held before the case):

- float:          the torch forward pass of the trained network (the reference for the ratios);
- ideal tiles:    rram8 levels, ideal wires (one matrix product per tile and batch);
- ohmic + IR:     ohmic cells with wire resistance, reported in three parts: programming
                  (mapping, programming), the effective matrix of every tile (the Numba
                  solver, once per programmed state), inference (one product per tile and
                  batch; target: the whole case under 60 s);
- per-vector:     the same ohmic tiles solved input vector by input vector with memsim.solve
                  (every convolution position is one vector), timed on a subset of images and
                  scaled (what the effective matrix avoids);
- PCM-like noise: aihwkit's setting (memsim.experiments.aihwkit_pcm_config, ideal wires),
                  programmed and drifted to one day, in memsim and, where aihwkit is
                  importable, in aihwkit 1.2.0 on the same weights (same work: program, drift,
                  infer); the ratio is memsim's time over aihwkit's.

Both tools run float32 on the CPU; the number of torch threads is printed.

``--aihwkit-only``: only the PCM-like noise-only work, memsim and aihwkit alternately in this
one process (memsim, aihwkit, memsim, aihwkit, ...) at each torch thread count of
``--threads`` (``torch.set_num_threads``), ``--repeats`` rounds after one warm-up round on
100 images; the table gives each tool's best and median time over the rounds, their ratio
(memsim / aihwkit) and each tool's accuracy (median over the rounds; aihwkit draws its noise
from torch's global generator, so its accuracy varies by round), with the load average
before and after.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import threading
import time

import numpy as np
import torch

from memsim import experiments as ex
from memsim.nn.analog import convert


class PeakMemory:
    """Peak resident set size (bytes) of this process while the block runs, sampled from
    /proc/self/statm every 5 ms, minus the size when it started."""

    def __enter__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _rss(self):
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self.page

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.extra = self.peak - self.start
        return False


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def aihwkit_case(model, x, y, t_seconds):
    """aihwkit 1.2.0: convert_to_analog with its default InferenceRPUConfig (PCM-like, no drift
    compensation), program, drift, infer; returns (accuracy, seconds)."""
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.simulator.configs import InferenceRPUConfig

    def job():
        config = InferenceRPUConfig()
        config.drift_compensation = None
        analog = convert_to_analog(copy.deepcopy(model).float().eval(), config).eval()
        analog.program_analog_weights()
        analog.drift_analog_weights(t_seconds)
        with torch.no_grad():
            pred = torch.cat([analog(torch.as_tensor(x[i:i + 1000])).argmax(1) for i in range(0, len(x), 1000)])
        return float((pred.numpy() == y).mean())
    return timed(job)


def memsim_pcm_case(model, x, y, t_seconds):
    """memsim in aihwkit's PCM setting (:func:`memsim.experiments.aihwkit_pcm_config`):
    convert (map and program), drift to ``t_seconds``, infer; returns (accuracy, seconds)."""
    def job():
        net = convert(model, ex.aihwkit_pcm_config(), seed=0)
        net.set_time(t_seconds)
        return net.accuracy(x, y)
    return timed(job)


def alternate(model, x, y, threads, repeats, t_seconds=86400.0):
    """memsim and aihwkit alternately in this process, ``repeats`` rounds at each thread count;
    returns {threads: {"memsim": [(accuracy, s)], "aihwkit": [...]}}."""
    import aihwkit  # noqa: F401  (refused early, before any timing)

    cases = (("memsim", memsim_pcm_case), ("aihwkit", aihwkit_case))
    for _, case in cases:  # warm-up: imports, kernels, first allocations
        case(model, x[:100], y[:100], t_seconds)
    results = {n: {name: [] for name, _ in cases} for n in threads}
    for round_ in range(repeats):
        for n in threads:
            torch.set_num_threads(n)
            for name, case in cases:
                results[n][name].append(case(model, x, y, t_seconds))
                print(f"round {round_ + 1}/{repeats}, {n} thread(s), {name}: {results[n][name][-1][1]:.2f} s",
                      file=sys.stderr)
    return results


def alternate_table(results, load_before, load_after, images, name) -> str:
    lines = [f"{images} {name} test images, lenet-fashion, aihwkit's PCM setting, program + drift to 1 day + "
             f"inference; memsim and aihwkit alternately in one process, torch {torch.__version__}, "
             f"{os.cpu_count()} CPU(s), load average {load_before:.2f} before, {load_after:.2f} after"]
    header = (f"{'threads':>7s} {'memsim best s':>13s} {'aihwkit best s':>14s} {'ratio best':>10s} "
              f"{'memsim med s':>12s} {'aihwkit med s':>13s} {'ratio med':>9s} {'memsim acc':>10s} "
              f"{'aihwkit acc':>11s} {'rounds':>6s}")
    lines += [header, "-" * len(header)]
    for n, by_tool in results.items():
        best = {tool: min(s for _, s in runs) for tool, runs in by_tool.items()}
        med = {tool: float(np.median([s for _, s in runs])) for tool, runs in by_tool.items()}
        acc = {tool: float(np.median([a for a, _ in runs])) for tool, runs in by_tool.items()}
        lines.append(f"{n:7d} {best['memsim']:13.2f} {best['aihwkit']:14.2f} {best['memsim'] / best['aihwkit']:10.2f} "
                     f"{med['memsim']:12.2f} {med['aihwkit']:13.2f} {med['memsim'] / med['aihwkit']:9.2f} "
                     f"{100 * acc['memsim']:9.2f}% {100 * acc['aihwkit']:10.2f}% {len(by_tool['memsim']):6d}")
    lines.append("ratio: memsim's time over aihwkit's (below 1: memsim faster); best: the fastest of the rounds, "
                 "med: their median; accuracy: median over the rounds")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet-fashion", help="a built-in model (default lenet-fashion)")
    parser.add_argument("--images", type=int, default=10000, help="test images (default 10000)")
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--r-wire", type=float, default=2.5, help="ohm per segment (default 2.5)")
    parser.add_argument("--per-vector-images", type=int, default=2,
                        help="images solved vector by vector for the per-vector reference (scaled up)")
    parser.add_argument("--models", default="memsim_output/nn/models", help="trained-model cache")
    parser.add_argument("--no-aihwkit", action="store_true", help="skip aihwkit even where it is installed")
    parser.add_argument("--aihwkit-only", action="store_true",
                        help="only the PCM-like work, memsim and aihwkit alternately in this process")
    parser.add_argument("--threads", default="1,2", help="torch thread counts for --aihwkit-only (default 1,2)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds for --aihwkit-only (default 3)")
    args = parser.parse_args(argv)
    if args.images < 1 or args.per_vector_images < 1:
        parser.error("--images and --per-vector-images must be >= 1")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    try:
        threads = [int(part) for part in args.threads.split(",") if part.strip()]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        parser.error(f"--threads must be a comma list of thread counts >= 1 (1,2), got {args.threads!r}")

    model, data = ex.trained(args.model, 0, cache_dir=args.models, progress=True)
    model = model.float().eval()
    x = np.array(data.x_test[:args.images], dtype=np.float32)
    y = np.asarray(data.y_test[:args.images])
    n = len(x)

    if args.aihwkit_only:
        if args.model != "lenet-fashion":
            parser.error("--aihwkit-only compares lenet-fashion")
        try:
            import aihwkit  # noqa: F401
        except ImportError:
            parser.error("--aihwkit-only needs aihwkit (docs/aihwkit.md: 'Building aihwkit')")
        load_before = os.getloadavg()[0]
        results = alternate(model, x, y, threads, args.repeats)
        print(alternate_table(results, load_before, os.getloadavg()[0], n, data.name))
        return 0
    rows = []

    def add(name, seconds, accuracy=None, target=None, memory=None):
        rows.append((name, seconds, accuracy, target, memory))

    with PeakMemory() as mem:
        acc, t_float = timed(lambda: ex.float_accuracy(model, x, y))
    add("float (torch)", t_float, acc, memory=mem.extra)

    from memsim.nn.config import HardwareConfig

    base = HardwareConfig(tile=args.tile, conductances="rram8")
    with PeakMemory() as mem:
        acc, t = timed(lambda: convert(model, base, seed=0).accuracy(x, y))
    add(f"ideal tiles (T={args.tile})", t, acc, memory=mem.extra)

    wired = base.replace(r_wire=args.r_wire)
    with PeakMemory() as mem:
        analog, t_program = timed(lambda: convert(model, wired, seed=0))
        _, t_matrices = timed(lambda: [tile.circuit.effective() for tile in analog.tiles()])
        acc, t_infer = timed(lambda: analog.accuracy(x, y))
    tiles = len(analog.tiles())
    total = t_program + t_matrices + t_infer
    add(f"ohmic + IR drop (r={args.r_wire}), all", total, acc, 60.0, mem.extra)
    add("  programming (mapping, cells)", t_program)
    add(f"  effective matrices ({tiles} tiles)", t_matrices)
    add("  inference", t_infer)

    # per-vector reference: every input vector of every tile solved on its own
    import memsim

    k = min(args.per_vector_images, n)
    inputs = [(tile, v.double().numpy()) for tile, v in zip(analog.tiles(), analog.tile_inputs(x[:k]))]
    vectors = sum(len(v) for _, v in inputs)

    inputs[0][0].circuit.error(torch.as_tensor(0.2 * inputs[0][1][:1]))  # compile the solver's kernels first

    def per_vector():
        for tile, v in inputs:
            xb = tile.circuit.crossbar()
            scale = np.abs(v).max(axis=1, keepdims=True)
            for row in 0.2 * v / np.where(scale > 0, scale, 1.0):
                memsim.solve(xb, row, voltages=False)
    _, t_k = timed(per_vector)
    add(f"ohmic + IR, per-vector solves (x{n}/{k}; {vectors // k} vectors/image)", t_k * n / k)

    day = 86400.0
    with PeakMemory() as mem:
        acc, t_memsim_pcm = memsim_pcm_case(model, x, y, day)
    add("PCM-like, aihwkit setting, 1 day: memsim", t_memsim_pcm, acc, memory=mem.extra)
    t_aihwkit = None
    if not args.no_aihwkit:
        try:
            import aihwkit
        except ImportError:
            print("aihwkit is not importable: its row is skipped (docs/aihwkit.md: 'Building aihwkit')",
                  file=sys.stderr)
        else:
            with PeakMemory() as mem:
                acc, t_aihwkit = aihwkit_case(model, x, y, day)
            add(f"PCM-like, 1 day: aihwkit {aihwkit.__version__}", t_aihwkit, acc, memory=mem.extra)

    print(f"\n{n} {data.name} test images, {args.model}, {args.tile}x{args.tile} tiles, rram8 levels, "
          f"torch {torch.__version__} with {torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s)")
    header = (f"{'case':58s} {'wall s':>8s} {'ms/image':>9s} {'x float':>8s} {'target s':>8s} {'ok':>3s} "
              f"{'accuracy':>9s} {'peak MB':>8s}")
    print(header)
    print("-" * len(header))
    for name, seconds, accuracy, target, memory in rows:
        ok = "" if target is None else ("yes" if seconds < target else "NO")
        print(f"{name:58s} {seconds:8.2f} {1e3 * seconds / n:9.3f} {seconds / t_float:8.0f} "
              f"{'' if target is None else f'{target:.0f}':>8s} {ok:>3s} "
              f"{'' if accuracy is None else f'{100 * accuracy:.1f}%':>9s} "
              f"{'' if memory is None else f'{memory / 2**20:.0f}':>8s}")
    if t_aihwkit:
        print(f"\nPCM-like noise-only work, memsim / aihwkit time: {t_memsim_pcm / t_aihwkit:.2f} "
              f"(memsim {t_memsim_pcm:.1f} s, aihwkit {t_aihwkit:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
