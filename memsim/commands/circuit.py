"""``memsim demo``, ``memsim netlist`` and ``memsim simulate``: arrays through ngspice or the fast
solver (the options are in memsim/cli.py; this module loads when one of them runs)."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

from .. import demo, solver
from ..circuit import netlist, spec, spice
from ..devices.veriloga import VerilogA, param_pairs
from ..io import check_target, write_atomic
from . import replaced


def device_from(args):
    """The compact model --device/--module/--param name, or None for the built-in model."""
    if args.device is None:
        if args.param or args.module:
            raise ValueError("--param and --module describe a --device model; give --device MODEL.va")
        return None
    return VerilogA(args.device, args.module, param_pairs(args.param))


def _build(args):
    device = device_from(args)
    if args.spec is not None:
        return spec.load(args.spec, device)
    return spec.build({"kind": args.kind, "rows": args.rows, "cols": args.cols, "r_row": args.r_row,
                       "r_col": args.r_col, "preset": args.preset, "seed": args.seed,
                       "v_read": args.v_read, "v_gate": args.v_gate}, device)


def cmd_netlist(args) -> int:
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
    existed = check_target(path).exists()
    write_atomic(path, data)
    print(f"wrote {path}" + replaced(existed), file=sys.stderr)


def cmd_simulate(args) -> int:
    xb, v_in = _build(args)
    if args.output is not None:
        if args.output.suffix.lower() not in (".csv", ".npz"):
            raise ValueError(f"output must end in .csv or .npz, got {args.output.name!r}")
        check_target(args.output)  # refused before a long simulation, not after
    if args.engine == "ngspice":
        options = {"cells": True, "timeout": args.timeout, "force": args.force}
        result = (spice.simulate_read(xb, *args.read, args.v_read, args.scheme, **options)
                  if args.read is not None else spice.simulate(xb, v_in, **options))
    else:
        result = (solver.solve_read(xb, *args.read, args.v_read, args.scheme, cells=True)
                  if args.read is not None else solver.solve(xb, v_in, cells=True))
    if args.output is None:
        sys.stdout.write(currents_csv(result.i_col))
        return 0
    if args.output.suffix.lower() == ".csv":
        _write_output(args.output, currents_csv(result.i_col))
    else:
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
    result = demo.run(size=args.size, r_wire=args.r_wire)
    existed = demo.figure_path(args.out).exists()
    path = demo.save(result, args.out)
    print(f"figure: {path}" + replaced(existed) + f"  ({result.seconds:.1f} s)")
    return 0
