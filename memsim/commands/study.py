"""``memsim study`` and ``memsim plot`` (the options are in memsim/cli.py).

This module loads when one of them runs: the runner imports the solver (numba) and the
ngspice runner.
"""
from __future__ import annotations

import sys

from ..plots import figure_paths, plot_results
from ..study import DEFAULT_OUT
from ..study.runner import run
from . import replaced


def _plot(results, out) -> list:
    """The figures of a results file, each named as it is written; returns their paths."""
    existed = {path for path in figure_paths(results, out) if path.exists()}
    paths = plot_results(results, out)
    for path in paths:
        print(f"figure: {path}" + replaced(path in existed))
    return paths


def cmd_study(args) -> int:
    out = args.out if args.out is not None else DEFAULT_OUT
    result = run(args.config, out=out, dask=args.dask, workers=args.workers, progress=not args.quiet)
    print(result.describe("see the error column"))
    if not args.no_plot:
        _plot(result.path, out)
    return 1 if result.failed else 0


def cmd_plot(args) -> int:
    if not _plot(args.results, args.out):
        print(f"memsim plot: nothing to plot in {args.results}", file=sys.stderr)
        return 1
    return 0
