"""``memsim study`` and ``memsim plot`` (the options are in memsim/cli.py).

This module loads when one of them runs: the runner imports the solver (numba) and the
ngspice runner.
"""
from __future__ import annotations

import sys

from ..plots import figure_paths, plot_results
from ..study import DEFAULT_OUT
from ..study.runner import run


def cmd_study(args) -> int:
    out = args.out if args.out is not None else DEFAULT_OUT
    result = run(args.config, out=out, dask=args.dask, workers=args.workers, progress=not args.quiet)
    print(result.describe("see the error column"))
    if not args.no_plot:
        existed = {path for path in figure_paths(result.path, out) if path.exists()}
        for path in plot_results(result.path, out):
            print(f"figure: {path}" + (" (replaced the existing file)" if path in existed else ""))
    return 1 if result.failed else 0


def cmd_plot(args) -> int:
    existed = {path for path in figure_paths(args.results, args.out) if path.exists()}
    paths = plot_results(args.results, args.out)
    if not paths:
        print(f"memsim plot: nothing to plot in {args.results}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"figure: {path}" + (" (replaced the existing file)" if path in existed else ""))
    return 0
