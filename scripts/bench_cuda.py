"""Benchmark: the network layer's tile models on a CUDA GPU against the CPU, same weights and seeds.

    python3 scripts/bench_cuda.py [--images 2000] [--cache memsim_output/nn/models]
                                  [--networks mlp-mnist,lenet-fashion,resnet-fashion] [--out FILE]

For every trained network (loaded from ``--cache``; trained there first when missing) and
every tile model below, the network is converted once on the CPU and once on CUDA with the
same seed and run on the same test images.  Each row gives both devices' programming time
(mapping, programming, drift to the read time) and inference time (wall time with the GPU
synchronised; it includes the solver's effective matrices and nonlinear solves, which run
in Numba on the CPU whatever the device, on first use), the accuracy on each device, and
their agreement: the largest |logit difference| relative to the largest |logit| on the CPU,
and the share of images whose predicted class is the same.

Tile models (T = 128, rram8 levels, 8-bit DAC and ADC unless said):

- ``ideal``: ideal wires, no noise (deterministic: the devices must agree to rounding);
- ``ohmic-ir``: ohmic cells with 2.5 ohm wire segments (the effective matrix; deterministic);
- ``selectorless-ir``: selector-less cells with 2.5 ohm wires (the batched Numba kernel on the
  CPU in both cases: on CUDA the row voltages go to the host and the currents come back);
- ``pcm-1day``: aihwkit's PCM-like setting drifted to one day (random: CPU and CUDA draw from
  different generators, so the devices can agree in distribution only, not draw by draw: these
  rows give the mean and spread of the accuracy over ``--seeds`` device instances on each,
  and no logit agreement);
- ``reram-1day``: aihwkit's ReRAM CMO setting drifted to one day (random, likewise).

The float network (torch only) is the first row of each network.  Without CUDA the script
says so and stops.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from memsim import experiments as ex
from memsim.nn.analog import convert
from memsim.nn.config import HardwareConfig
from memsim.nn.reram import aihwkit_reram_config

DAY = 86400.0
BASE = HardwareConfig(tile=128, conductances="rram8", dac_bits=8, adc_bits=8)
CASES = {
    "ideal": (BASE, 0.0),
    "ohmic-ir": (BASE.replace(r_wire=2.5), 0.0),
    "selectorless-ir": (BASE.replace(cells="device", r_wire=2.5), 0.0),
    "pcm-1day": (ex.aihwkit_pcm_config(), DAY),  # random
    "reram-1day": (aihwkit_reram_config(), DAY),
}
RANDOM = ("pcm-1day", "reram-1day")
# Nonlinear tiles solve on the CPU whatever the device: the small networks only.
SKIP = {("selectorless-ir", "resnet-fashion"), ("selectorless-ir", "lenet-fashion")}


def synchronised(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, fn):
    synchronised(device)
    start = time.perf_counter()
    out = fn()
    synchronised(device)
    return out, time.perf_counter() - start


def run_case(model, data, config, t, device, x, y, seed=0):
    def program():
        net = convert(model, config, seed=seed, calibration_x=ex.calibration_inputs(config, data), device=device)
        net.set_time(t)
        return net

    net, t_program = timed(device, program)
    logits, t_infer = timed(device, lambda: net.logits(x, batch_size=1000))
    logits = logits.detach().double().cpu().numpy()
    return logits, t_program, t_infer, float(np.mean(logits.argmax(1) == y))


def float_case(model, device, x, y):
    net = model.to(device).eval()
    xt = torch.tensor(x, dtype=next(net.parameters()).dtype, device=device)
    with torch.no_grad():
        net(xt[:10])  # first call: kernels load
        logits, secs = timed(device, lambda: net(xt))
    model.to("cpu")
    logits = logits.double().cpu().numpy()
    return logits, 0.0, secs, float(np.mean(logits.argmax(1) == y))


def random_row(name, label, fn, cpu, gpu, seeds):
    """A random case over ``seeds`` device instances per device: mean times, mean +- std accuracy."""
    runs = {d: [fn(d, s)[1:] for s in range(seeds)] for d in (cpu, gpu)}
    (pa, ia, acc_a), (pb, ib, acc_b) = (np.mean(runs[d], axis=0) for d in (cpu, gpu))
    spread = [100 * np.std([r[2] for r in runs[d]], ddof=1) if seeds > 1 else 0.0 for d in (cpu, gpu)]
    return (f"| {name} | {label} ({seeds} seeds) | {pa:.2f} / {pb:.2f} | {ia:.3f} / {ib:.3f} | {ia / ib:.1f}x | "
            f"{100 * acc_a:.2f} +- {spread[0]:.2f} / {100 * acc_b:.2f} +- {spread[1]:.2f} | (random) | (random) |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=2000, help="test images per network (default 2000)")
    p.add_argument("--cache", default="memsim_output/nn/models", help="trained-model cache")
    p.add_argument("--networks", default="mlp-mnist,lenet-fashion,resnet-fashion")
    p.add_argument("--cases", default=",".join(CASES), help=f"tile models (default all: {', '.join(CASES)})")
    p.add_argument("--device", default="cuda", help="the device compared with the CPU (default cuda; "
                   "'cpu' runs every case twice on the CPU, a check of the script itself)")
    p.add_argument("--seeds", type=int, default=5, help="device instances of the random cases (default 5)")
    p.add_argument("--out", help="also write the table to this file")
    args = p.parse_args(argv)
    if args.images < 1:
        p.error(f"--images must be a positive integer, got {args.images}")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    gpu = torch.device(args.device)
    if gpu.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this benchmark compares CUDA with the CPU (torch.cuda.is_available() is False)")
        return 1
    cpu = torch.device("cpu")
    where = torch.cuda.get_device_name(gpu) if gpu.type == "cuda" else "CPU against CPU"
    lines = [f"torch {torch.__version__}, {where}, "
             f"{torch.get_num_threads()} CPU threads, {args.images} images per network",
             f"| network | tiles | program s (CPU / {gpu.type}) | infer s (CPU / {gpu.type}) | speed-up (infer) | "
             f"accuracy % (CPU / {gpu.type}) | max logit diff / max logit | same class % |",
             "|---|---|---|---|---:|---|---:|---:|"]
    print("\n".join(lines), flush=True)
    for name in [n.strip() for n in args.networks.split(",") if n.strip()]:
        model, data = ex.trained(name, 0, args.cache)
        model = model.float()
        x, y = np.asarray(data.x_test[:args.images]), np.asarray(data.y_test[:args.images])
        rows = [("float", lambda d: float_case(model, d, x, y))]
        rows += [(c, lambda d, c=c: run_case(model, data, *CASES[c], d, x, y)) for c in cases
                 if (c, name) not in SKIP]
        for label, fn in rows:
            if label in RANDOM:
                lines.append(random_row(name, label, lambda d, s: run_case(model, data, *CASES[label], d, x, y, s),
                                        cpu, gpu, args.seeds))
                print(lines[-1], flush=True)
                continue
            a, pa, ia, acc_a = fn(cpu)
            b, pb, ib, acc_b = fn(gpu)
            diff = float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))
            same = 100.0 * float(np.mean(a.argmax(1) == b.argmax(1)))
            line = (f"| {name} | {label} | {pa:.2f} / {pb:.2f} | {ia:.3f} / {ib:.3f} | {ia / ib:.1f}x | "
                    f"{100 * acc_a:.2f} / {100 * acc_b:.2f} | {diff:.1e} | {same:.2f} |")
            lines.append(line)
            print(line, flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
