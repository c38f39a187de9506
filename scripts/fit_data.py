"""Make the synthetic measurements under tests/data/fit/ with ngspice (the `rram_tran` subcircuit).

A seeded generator draws the device's parameters (each free parameter of memsim.fit's default
set, log-uniform within +-15 % of the published value); ngspice then runs

- iv.csv: device A, three triangular sweeps (10 ms, 200 samples, 100 uA compliance on SET),
  each starting where the last ended;
- iv_heldout.csv: device A, one sweep the fit never sees (100 ms, other amplitudes, 50 uA);
- pulses.csv: device A, two trains (SET then RESET pulses), a 0.2 V read after each pulse;
- spread.csv: devices D0..D9, eight sweeps each: a device-to-device factor on i0 (relative
  sigma 5 %) and a cycle-to-cycle shift of gap_max (sigma 3 % x g0, a log-normal HRS factor
  of sigma 3 %): memsim's Variability form;

with Gaussian noise of 0.5 % on every current and conductance (plus 1 nA on currents).
truth.json records the parameters, the draws and the spreads the draws realise.

    python scripts/fit_data.py [--out tests/data/fit] [--seed 7]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from memsim.devices.rram import RRAMParams  # noqa: E402
from memsim.fit import data, generate  # noqa: E402
from memsim.fit.fitting import DEFAULT_FREE  # noqa: E402
from memsim.io import write_atomic  # noqa: E402

NOISE_REL = 0.005
NOISE_ABS = 1e-9
SIGMA_D2D = 0.05
SIGMA_C2C = 0.03


def draw_params(rng: np.random.Generator) -> RRAMParams:
    """The device: each default-free parameter times a log-uniform factor within +-15 %."""
    base = RRAMParams()
    factors = np.exp(rng.uniform(np.log(0.85), np.log(1.15), len(DEFAULT_FREE)))
    return dataclasses.replace(base, **{n: getattr(base, n) * f for n, f in zip(DEFAULT_FREE, factors)})


def sweeps(p, device, plans, rng, gap0, per_cycle=None):
    """Run the sweeps of ``plans`` ((v_set, v_reset, period, points, compliance) each) in turn,
    each from the gap where the last ended; ``per_cycle(k)`` gives cycle k's parameters."""
    out = []
    for cycle, (v_set, v_reset, period, points, cc) in enumerate(plans):
        params = per_cycle(cycle) if per_cycle else p
        t, v = generate.triangle(v_set, v_reset, period, points)
        compliance = np.where(v > 0, cc, np.inf)
        i, gap = generate.run_sweep(params, t, v, compliance, gap0)
        gap0 = float(gap[-1])
        noisy = i * (1 + NOISE_REL * rng.standard_normal(i.size)) + NOISE_ABS * rng.standard_normal(i.size)
        out.append(data.Sweep(device, cycle, t, v, noisy, compliance))
    return out, gap0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "data" / "fit")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    began = time.perf_counter()
    truth = draw_params(rng)

    plans = [(1.2, 1.3, 10e-3, 200, 100e-6)] * 3
    iv, gap = sweeps(truth, "A", plans, rng, truth.gap_max)
    heldout, _ = sweeps(truth, "A", [(1.1, 1.4, 100e-3, 200, 50e-6)], rng, gap)

    trains = []
    for cycle, (amp_set, amp_reset, width, count) in enumerate([(1.3, -1.3, 50e-9, 30), (1.2, -1.3, 100e-9, 20)]):
        amplitude = np.r_[0.0, np.full(count, amp_set), np.full(count, amp_reset)]
        widths = np.r_[0.0, np.full(2 * count, width)]
        g, _ = generate.run_train(truth, amplitude, widths, 0.2, 1.5e-9)
        g = g * (1 + NOISE_REL * rng.standard_normal(g.size))
        trains.append(data.PulseTrain("A", cycle, amplitude, widths, g, 0.2))

    devices, cycles = 10, 8
    xi = rng.standard_normal(devices)
    zeta = rng.standard_normal((devices, cycles))
    spread = []
    for d in range(devices):
        device_p = dataclasses.replace(truth, i0=truth.i0 * (1 + SIGMA_D2D * xi[d]))

        def per_cycle(k, device_p=device_p, d=d):
            return dataclasses.replace(device_p, gap_max=truth.gap_max + SIGMA_C2C * truth.g0 * zeta[d, k])
        plans = [(1.2, 1.3, 10e-3, 80, 100e-6)] * cycles
        got, _ = sweeps(truth, f"D{d}", plans, rng, per_cycle(0).gap_max, per_cycle)
        spread += got

    args.out.mkdir(parents=True, exist_ok=True)
    data.write_iv(args.out / "iv.csv", iv)
    data.write_iv(args.out / "iv_heldout.csv", heldout)
    data.write_pulses(args.out / "pulses.csv", trains)
    data.write_iv(args.out / "spread.csv", spread)
    # The spreads the draws realise (the population sigmas are SIGMA_D2D, SIGMA_C2C).
    realised = {"sigma_d2d": float(SIGMA_D2D * np.std(xi, ddof=1)),
                "sigma_c2c": float(SIGMA_C2C * np.sqrt(np.mean(np.var(zeta, axis=1, ddof=1))))}
    record = {"seed": args.seed, "params": dataclasses.asdict(truth), "free": list(DEFAULT_FREE),
              "noise_rel": NOISE_REL, "noise_abs_a": NOISE_ABS,
              "spread": {"sigma_d2d": SIGMA_D2D, "sigma_c2c": SIGMA_C2C, "realised": realised,
                         "d2d_on": "i0", "c2c_on": "gap_max", "state": "hrs"},
              "generator": "scripts/fit_data.py, ngspice transients of memsim.fit.generate"}
    write_atomic(args.out / "truth.json", json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out} in {time.perf_counter() - began:.1f} s; parameters {truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
