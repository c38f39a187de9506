"""Regenerate the committed example netlists under netlists/ (a golden test checks them).

    python scripts/make_example_netlists.py [OUTPUT_DIR]
"""
import sys
from pathlib import Path

import numpy as np

import memsim
from memsim.devices import preset
from memsim.io import write_atomic

ROOT = Path(__file__).resolve().parent.parent


def examples() -> dict[str, str]:
    """The example netlists by file name; deterministic (seeded)."""
    rng = np.random.default_rng(0)
    levels = np.asarray(preset("rram8").levels)
    g4 = levels[rng.integers(0, 8, (4, 4))]
    v4 = np.round(rng.uniform(0.0, 0.2, 4), 3)
    g8 = levels[rng.integers(0, 8, (8, 8))]
    return {
        "mvm_4x4_0t1r.cir": memsim.netlist.mvm(memsim.Crossbar.device(g_read=g4, r_row=1.0, r_col=1.0), v4),
        "mvm_4x4_1t1r.cir": memsim.netlist.mvm(memsim.Crossbar.one_t_one_r(g_read=g4, r_row=1.0, r_col=1.0), v4),
        "read_8x8_v2.cir": memsim.netlist.read(memsim.Crossbar.device(g_read=g8, r_row=2.5, r_col=2.5),
                                               3, 5, 0.2, "v/2"),
        "program_4x4_set_v2.cir": memsim.netlist.program(
            memsim.Crossbar.device(g_read=np.full((4, 4), levels[0]), r_row=1.0, r_col=1.0), 1, 2, 1.8, 50e-9),
    }


def main(argv):
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "netlists"
    for name, text in examples().items():
        print(write_atomic(out / name, text))


if __name__ == "__main__":
    main(sys.argv)
