"""In-situ training of the digits MLP on Verilog-A devices: the pulse model of a .va compact
model, against the built-in Stanford-PKU model.

    python3 scripts/insitu_veriloga.py [--epochs 3] [--update eapu] [--out PATH]

Trains the (64, 16, 10) MLP of docs/learning.md in situ (V/2 half-select disturb) on

- the built-in Stanford-PKU model (its committed table, netlists/models/rram_pulse_response.json),
- the same model as Verilog-A (examples/veriloga/stanford_pku.va, its table
  tests/data/pulse_response_stanford_pku_va.json, a 4 x 4 x 4 subset of the built-in grid),
  which must give the built-in numbers within the integration's tolerance, and
- VTEAM (examples/veriloga/vteam.va; its table is measured with ngspice on the first run,
  32 transients, and kept in memsim_output/), with a window and pulses of its own,

and prints, per device, the test accuracy after every epoch, the pulses, the energy and the
time, and the ngspice seconds each table took.  Results: examples/learn/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = Path(__file__).resolve().parent.parent
VA = ROOT / "examples" / "veriloga"
STANFORD_TABLE = ROOT / "tests" / "data" / "pulse_response_stanford_pku_va.json"
#: VTEAM's grid: w (nm) across its window, amplitudes from below its 0.5 V threshold (the V/2
#: half-select of a 0.6 V pulse) to 0.75 V, 10-100 ns.
VTEAM_GRID = dict(states=(0.3, 1.1, 1.9, 2.7), amplitudes=(0.3, 0.45, 0.6, 0.75), widths=(10e-9, 20e-9, 50e-9, 100e-9))


def vteam_table(device, out_dir: Path):
    """VTEAM's table: measured once (ngspice), then loaded from ``out_dir``."""
    from memsim.learn.response import Grid, ResponseTable

    path = out_dir / "pulse_response_vteam.json"
    if path.is_file():
        try:
            return ResponseTable.load(path, device=device)
        except (ValueError, OSError) as err:
            print(f"  measuring again: {err}")
    table = ResponseTable.generate((Grid.for_device(device, **VTEAM_GRID),), device, progress=True)
    table.save(path)
    return table


def train(name, model, config, data, epochs) -> dict:
    from memsim.learn import InSituTrainer

    start = time.perf_counter()
    trainer = InSituTrainer((64, 16, 10), model, config)
    setup = time.perf_counter() - start
    history = trainer.fit(data, epochs)
    row = {"device": name, "accuracy": [h["accuracy"] for h in history],
           "pulses": sum(h.get("pulses", 0) for h in history),
           "half_select_pulses": sum(h.get("half_select_pulses", 0) for h in history),
           "energy_j": sum(h.get("energy_j", 0.0) for h in history),
           "epoch_seconds": [round(h["seconds"], 2) for h in history[1:]], "setup_seconds": round(setup, 2),
           "set_polarity": "+" if trainer.set_sign > 0 else "-", "window_s": [trainer.state_lo, trainer.state_hi]}
    print(f"{name:28s} accuracy {' '.join(f'{a:.3f}' for a in row['accuracy'])}  pulses {row['pulses']:7d}  "
          f"half-select {row['half_select_pulses']:8d}  energy {row['energy_j']:.3g} J  "
          f"setup {setup:.1f} s  epochs {sum(row['epoch_seconds']):.1f} s", flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--update", default="eapu", choices=("stochastic", "write-verify", "eapu"))
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args(argv)

    from memsim.devices import VerilogA
    from memsim.io import OUTPUT_DIR
    from memsim.learn import InSituConfig, PulseModel, ResponseTable
    from memsim.nn import datasets

    data = datasets.load("digits")
    rows = []
    config = InSituConfig(update=args.update, scheme="v/2")
    builtin = ResponseTable.load()
    rows.append(train("built-in Stanford-PKU", PulseModel(builtin), config, data, args.epochs))

    stanford = VerilogA(VA / "stanford_pku.va", v_max=1.5)
    table = ResponseTable.load(STANFORD_TABLE, device=stanford)
    rows.append(train("stanford_pku.va", PulseModel(table), config, data, args.epochs))
    rows[-1]["table_seconds"] = table.seconds

    vteam = VerilogA(VA / "vteam.va")
    table = vteam_table(vteam, OUTPUT_DIR)
    vteam_config = InSituConfig(update=args.update, scheme="v/2", v_set=0.6, v_reset=0.6, width=50e-9,
                                g_window=(20e-6, 200e-6))
    rows.append(train("vteam.va", PulseModel(table), vteam_config, data, args.epochs))
    rows[-1]["table_seconds"] = table.seconds
    for row in rows[1:]:
        print(f"{row['device']}: table measured in {row['table_seconds']:.0f} s of ngspice")
    if args.out:
        from memsim.io import write_atomic

        write_atomic(args.out, json.dumps({"update": args.update, "epochs": args.epochs, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
