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
import importlib.util
import sys
from pathlib import Path

import numpy as np

from .io import OUTPUT_DIR

DEFAULT_OUT = OUTPUT_DIR  # the default --out folder
# Modules that contribute subcommands: each has add_cli(subparsers), registering parsers
# whose set_defaults(func=...) takes the parsed args and returns an exit status.  Their
# top-level imports stay light (numpy only) so `memsim --help` is fast.
_SUBCOMMAND_MODULES = ("memsim.calibrate.cli", "memsim.study.cli", "memsim.nn.cli", "memsim.compensate.cli",
                       "memsim.fit.cli")


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


def add_device_options(group) -> None:
    """--device, --module, --param: the RRAM cells' compact model as a Verilog-A file."""
    group.add_argument("--device", type=Path, metavar="MODEL.va",
                       help="Verilog-A compact model of the device/1t1r cells (default: the built-in Stanford-PKU model)")
    group.add_argument("--module", help="module of --device to use when the file defines several")
    group.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="a --device model parameter (repeat for several)")


def device_from(args):
    """The compact model --device/--module/--param name, or None for the built-in model."""
    from .devices.veriloga import VerilogA, param_pairs

    if args.device is None:
        if args.param or args.module:
            raise ValueError("--param and --module describe a --device model; give --device MODEL.va")
        return None
    return VerilogA(args.device, args.module, param_pairs(args.param))


def _build(args):
    from .circuit import spec

    device = device_from(args)
    if args.spec is not None:
        return spec.load(args.spec, device)
    return spec.build({"kind": args.kind, "rows": args.rows, "cols": args.cols, "r_row": args.r_row,
                       "r_col": args.r_col, "preset": args.preset, "seed": args.seed,
                       "v_read": args.v_read, "v_gate": args.v_gate}, device)


def cmd_netlist(args) -> int:
    from .circuit import netlist

    xb, v_in = _build(args)
    if args.program is not None:
        text = netlist.program(xb, *args.program, args.pulse, args.width, scheme=args.scheme)
    elif args.read is not None:
        text = netlist.read(xb, *args.read, v_read=args.v_read, scheme=args.scheme)
    else:
        text = netlist.mvm(xb, v_in)
    if args.output is None:
        sys.stdout.write(text)
    else:
        _write_output(args.output, text)
    return 0


def _write_output(path: Path, data) -> None:
    """Write an -o/--output file: a new file, or an existing regular file replaced (and said
    so, as on the CLI tools people know, which overwrite their -o target); a folder, FIFO or
    device there is refused."""
    from .io import check_target, write_atomic

    existed = check_target(path).exists()
    write_atomic(path, data)
    print(f"wrote {path}" + (" (replaced the existing file)" if existed else ""), file=sys.stderr)


def cmd_simulate(args) -> int:
    from .io import check_target

    xb, v_in = _build(args)
    if args.output is not None:
        if args.output.suffix.lower() not in (".csv", ".npz"):
            raise ValueError(f"output must end in .csv or .npz, got {args.output.name!r}")
        check_target(args.output)  # refused before a long simulation, not after
    if args.engine == "ngspice":
        from .circuit import spice

        options = {"cells": True, "timeout": args.timeout, "force": args.force}
        result = (spice.simulate_read(xb, *args.read, args.v_read, args.scheme, **options)
                  if args.read is not None else spice.simulate(xb, v_in, **options))
    else:
        from . import solver

        result = (solver.solve_read(xb, *args.read, args.v_read, args.scheme, cells=True)
                  if args.read is not None else solver.solve(xb, v_in, cells=True))
    if args.output is None:
        sys.stdout.write(currents_csv(result.i_col))
        return 0
    if args.output.suffix.lower() == ".csv":
        _write_output(args.output, currents_csv(result.i_col))
    else:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, i_col=result.i_col, v_row=result.v_row, v_col=result.v_col, i_cell=result.i_cell,
                 engine=np.array(result.engine))
        _write_output(args.output, buffer.getvalue())
    return 0


def currents_csv(i_col) -> str:
    """Column currents as CSV text: ``column,i_col_A`` and one row per column, each current
    written as the shortest text that reads back as the same double."""
    rows = ["column,i_col_A"] + [f"{j},{float(value)!r}" for j, value in enumerate(np.asarray(i_col, dtype=float))]
    return "\n".join(rows) + "\n"


def cmd_demo(args) -> int:
    from . import demo

    result = demo.run(size=args.size, r_wire=args.r_wire)
    existed = demo.figure_path(args.out).exists()
    path = demo.save(result, args.out)
    print(f"figure: {path}" + (" (replaced the existing file)" if existed else "") + f"  ({result.seconds:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memsim", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulate a 32x32 1T1R and a 32x32 selector-less array; IR drop and sneak paths")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default ./{DEFAULT_OUT})")
    p.add_argument("--size", type=int, default=32, help="array size N (NxN, default 32; ngspice grows fast with N)")
    p.add_argument("--r-wire", type=float, default=2.5, help="wire resistance per segment, ohm (default 2.5)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("netlist", help="write an ngspice netlist (MVM, single-cell read or programming pulse)")
    _add_array_options(p)
    p.add_argument("--program", type=_cell, metavar="ROW,COL", help="programming transient of one cell")
    p.add_argument("--pulse", type=float, default=1.8, help="programming pulse, V (>0 SET, <0 RESET; default 1.8)")
    p.add_argument("--width", type=float, default=50e-9, help="programming pulse width, s (default 50e-9)")
    p.add_argument("-o", "--output", type=Path, help="netlist file (default: standard output)")
    p.set_defaults(func=cmd_netlist)

    p = sub.add_parser("simulate", help="solve an array (ngspice or the fast solver); print or save the column currents")
    _add_array_options(p)
    p.add_argument("--engine", choices=("ngspice", "solver"), default="ngspice", help="default: ngspice")
    p.add_argument("--timeout", type=float, default=600.0, help="ngspice timeout, s")
    p.add_argument("--force", action="store_true",
                   help="run ngspice above the size limit (256x256 cells with KLU, 128x128 without; "
                        "$MEMSIM_SPICE_MAX_CELLS)")
    p.add_argument("-o", "--output", type=Path, help="results file, .csv (column currents) or .npz (all)")
    p.set_defaults(func=cmd_simulate)

    for module_name in _SUBCOMMAND_MODULES:
        try:
            present = importlib.util.find_spec(module_name) is not None
        except ModuleNotFoundError:  # its parent package is not there
            present = False
        if present:  # a module that is present but broken must fail loudly, not vanish
            importlib.import_module(module_name).add_cli(sub)
    return parser


def main(argv=None) -> int:
    from .errors import MemsimError

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
