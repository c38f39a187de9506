"""Networks on tiles of the Verilog-A models in examples/veriloga: the batched read's accuracy against the exact solver's and the float model's.

    python scripts/veriloga_networks.py --networks mlp-digits --images 360 --exact-images 360   # 2 min
    python scripts/veriloga_networks.py --networks lenet-fashion --r-wire 2.5                  # 25 min

Each network (the float weights shipped with memsim, seed 0) is converted with
memsim.nn.convert onto tiles whose cells are one of the models (memsim.devices.VerilogA),
selector-less ("device") or 1T1R, with ideal wires or 2.5 ohm per segment.  Every model is
programmed to the same continuous 10-80 uS at 0.2 V (a range the three reach; yakopcic.va's
table starts at x = 0.001, since x = 0 conducts nothing).  The batched read (the solver table
in one Numba pass per tile) runs on the first --images test images, the exact path
(HardwareConfig(exact=True): memsim's circuit solver per input vector) on the first
--exact-images of them, and the batched read is scored on those too, so the two are compared on
the same images.  Prints one markdown row per configuration as it finishes.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from memsim.devices import VerilogA
from memsim.nn import HardwareConfig, convert
from memsim import experiments as ex
from memsim.nn.mapping import Conductances

MODELS_DIR = Path(__file__).resolve().parents[1] / "examples" / "veriloga"
#: model: parameters (yakopcic's table starts above x = 0, whose read conductance is 0 S)
MODELS = {"stanford_pku": {}, "vteam": {}, "yakopcic": {"state_min": 1e-3}}
CONDUCTANCES = Conductances("10-80 uS", 10e-6, 80e-6, source="reached by every model in examples/veriloga at 0.2 V")
CALIBRATION_IMAGES = 256


def accuracy_row(net, data, dev, cells: str, r_wire: float, tile: int, images: int, exact_images: int) -> dict:
    """Float, batched and exact accuracies of ``net`` on tiles of ``dev`` (and their times)."""
    x, y = data.x_test[:images], data.y_test[:images]
    x_exact, y_exact = x[:exact_images], y[:exact_images]
    row = {"images": len(y), "exact_images": len(y_exact),
           "float": ex.float_accuracy(net, x, y), "float_exact_images": ex.float_accuracy(net, x_exact, y_exact)}
    for path, exact in (("batched", False), ("exact", True)):
        config = HardwareConfig(tile=tile, cells=cells, r_wire=r_wire, device=dev, conductances=CONDUCTANCES,
                                exact=exact)
        start = time.perf_counter()
        analog = convert(net, config, calibration_x=data.x_train[:CALIBRATION_IMAGES])
        if exact:
            row["exact"] = analog.accuracy(x_exact, y_exact)
        else:
            predicted = analog.predict(x)
            row["batched"] = float(np.mean(predicted == np.asarray(y)))
            row["batched_exact_images"] = float(np.mean(predicted[:len(y_exact)] == np.asarray(y_exact)))
        row[f"{path}_s"] = time.perf_counter() - start
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=["mlp-digits", "lenet-fashion"])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--cells", nargs="+", choices=("device", "1t1r"), default=["device", "1t1r"])
    parser.add_argument("--r-wire", nargs="+", type=float, default=[0.0, 2.5], help="ohm per wire segment")
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--images", type=int, default=500, help="test images of the batched read")
    parser.add_argument("--exact-images", type=int, default=100, help="test images of the exact path")
    parser.add_argument("--cache-dir", default=None, help="folder for the compiled models (memsim's by default)")
    args = parser.parse_args(argv)
    devices = {name: VerilogA(MODELS_DIR / f"{name}.va", params=MODELS[name], cache_dir=args.cache_dir)
               for name in args.models}
    print(f"tiles {args.tile}x{args.tile}, conductances {CONDUCTANCES.g_min * 1e6:g}-{CONDUCTANCES.g_max * 1e6:g} uS "
          "at 0.2 V (continuous)\n")
    print("| network | model | cells | r_wire (ohm) | float | batched | images | float | batched | exact | "
          "images | batched (s) | exact (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for network in args.networks:
        net, data = ex.trained(network, 0)
        for name, dev in devices.items():
            for cells in args.cells:
                for r_wire in args.r_wire:
                    row = accuracy_row(net, data, dev, cells, r_wire, args.tile, args.images, args.exact_images)
                    print(f"| {network} | {name} | {cells} | {r_wire:g} | {100 * row['float']:.2f} | "
                          f"{100 * row['batched']:.2f} | {row['images']} | {100 * row['float_exact_images']:.2f} | "
                          f"{100 * row['batched_exact_images']:.2f} | {100 * row['exact']:.2f} | "
                          f"{row['exact_images']} | {row['batched_s']:.1f} | {row['exact_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
