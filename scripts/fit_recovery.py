"""Recovery of a drawn device from ngspice data: the fit's table of true, fitted, error and
identifiable, the residuals on fitted and held-out data, the spreads, and the figure.

The data are tests/data/fit/ (made by scripts/fit_data.py from parameters a seeded generator
drew; truth.json holds them).  Prints tables and writes examples/fit/fit.png, card.json and
report.txt (or --out DIR).

    python scripts/fit_recovery.py [--data tests/data/fit] [--out examples/fit]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from memsim.devices.rram import RRAMParams  # noqa: E402
from memsim.fit import fit, measure_spread, read_iv, read_pulses, simulate_sweep  # noqa: E402
from memsim.fit.report import make_card, residual_table, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "fit")
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "fit")
    parser.add_argument("--network", action="store_true",
                        help="also run mlp-digits on device tiles of the fitted, generating and published devices (torch)")
    args = parser.parse_args(argv)
    truth_record = json.loads((args.data / "truth.json").read_text())
    truth = RRAMParams(**truth_record["params"])
    iv, pulses = read_iv(args.data / "iv.csv"), read_pulses(args.data / "pulses.csv")

    for label, kwargs in (("I-V sweeps alone", {"iv": iv}), ("I-V sweeps and pulse trains", {"iv": iv, "pulses": pulses})):
        began = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fit(**kwargs)
        print(f"\n## {label} ({time.perf_counter() - began:.1f} s, {result.evaluations} model evaluations)\n")
        print(result.table(truth))
        for warning in caught:
            print("warning:", warning.message)
    print("\n" + residual_table(result))
    heldout = read_iv(args.data / "iv_heldout.csv")
    for sweep in heldout.groups:
        predicted, _ = simulate_sweep(sweep, result.params)
        keep = np.abs(sweep.i) > 1e-3 * np.abs(sweep.i).max()
        rel = predicted[keep] / sweep.i[keep] - 1
        print(f"held-out sweep {sweep.device}/{sweep.cycle} (100 ms, 50 uA compliance): rms {np.sqrt(np.mean(rel ** 2)):.3%}, "
              f"max {np.max(np.abs(rel)):.3%} over {keep.sum()} points")

    spread = measure_spread(read_iv(args.data / "spread.csv"), 0.2)
    realised = truth_record["spread"]["realised"]
    print("\n## Spread (HRS at 0.2 V, 10 devices x 8 cycles)\n")
    print(f"{'':<10}{'population':>12}{'realised':>12}{'measured':>12}{'error':>9}")
    for name in ("sigma_c2c", "sigma_d2d"):
        measured = spread.states["hrs"][name]
        print(f"{name:<10}{truth_record['spread'][name]:>12.4f}{realised[name]:>12.4f}{measured:>12.4f}"
              f"{measured / realised[name] - 1:>9.1%}")
    lrs = spread.states["lrs"]
    print(f"(LRS under 100 uA compliance: c2c {lrs['sigma_c2c']:.4f}, d2d {lrs['sigma_d2d']:.4f}: the compliance sets it)")

    card = make_card(result, iv, pulses, spread)
    paths = write_report(result, card, args.out, iv, pulses, truth=truth)
    print(f"\nwrote {paths['card']}, {paths['report']}, {paths['figure']}")
    if args.network:
        network(card, truth)
    return 0


def network(card, truth) -> None:
    """mlp-digits on 64x64 selector-less tiles (2.5 ohm wires, the card's 8 levels and
    variability) with the fitted, the generating and the published device parameters."""
    import dataclasses

    from memsim import nn

    model, data = nn.train_network("mlp-digits", seed=0, epochs=3)
    print("\n## mlp-digits on device tiles (64x64, 2.5 ohm wires, 8 levels, the card's variability)\n")
    print(f"{'device':<12}{'v_read 0.2 V':>14}{'v_read 0.5 V':>14}")
    for label, params in (("fitted", card.params), ("generating", truth), ("published", RRAMParams())):
        row = f"{label:<12}"
        for v_read in (0.2, 0.5):
            config = dataclasses.replace(card, params=params).hardware_config(8, tile=64, cells="device", r_wire=2.5,
                                                                              v_read=v_read)
            row += f"{nn.convert(model, config, seed=0).accuracy(data.x_test, data.y_test):>14.2%}"
        print(row)


if __name__ == "__main__":
    raise SystemExit(main())
