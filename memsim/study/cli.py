"""``memsim study`` and ``memsim plot`` (registered by memsim.cli).

The runner and the plots load when a command runs, not when ``memsim --help`` builds the
parser: the runner imports the solver (numba) and the ngspice runner, the plots the study
metrics (through the results reader) and matplotlib.
"""
from __future__ import annotations

import sys
from pathlib import Path

from . import DEFAULT_OUT, _add_run_options
from .config import METRIC_HELP


def _cmd_study(args) -> int:
    from .runner import run  # numba, ngspice: not at --help

    out = args.out if args.out is not None else DEFAULT_OUT
    result = run(args.config, out=out, dask=args.dask, workers=args.workers, progress=not args.quiet)
    print(result.describe("see the error column"))
    if not args.no_plot:
        from ..plots import figure_paths, plot_results  # matplotlib, the metrics: not at --help

        existed = {path for path in figure_paths(result.path, out) if path.exists()}
        for path in plot_results(result.path, out):
            print(f"figure: {path}" + (" (replaced the existing file)" if path in existed else ""))
    return 1 if result.failed else 0


def _cmd_plot(args) -> int:
    from ..plots import figure_paths, plot_results  # matplotlib, the metrics: not at --help

    existed = {path for path in figure_paths(args.results, args.out) if path.exists()}
    paths = plot_results(args.results, args.out)
    if not paths:
        print(f"memsim plot: nothing to plot in {args.results}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"figure: {path}" + (" (replaced the existing file)" if path in existed else ""))
    return 0


def add_cli(subparsers) -> None:
    """Register ``memsim study`` and ``memsim plot``."""
    p = subparsers.add_parser(
        "study", help="run an array-size study (TOML/JSON config) on a local pool or Dask; resumable",
        description="Run the grid of a study config; one CSV row per finished point in OUT/<name>.csv. "
                    "Running the same command again resumes: finished points are skipped, failed ones computed again. "
                    "Metrics: " + "; ".join(f"{k}: {v}" for k, v in METRIC_HELP.items()))
    p.add_argument("config", type=Path, help="study config, .toml or .json (see examples/studies/)")
    _add_run_options(p)
    p.add_argument("--no-plot", action="store_true", help="do not write the figures at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_study)

    p = subparsers.add_parser("plot", help="figures (PNG and SVG) from a study results file alone")
    p.add_argument("results", type=Path, help="results CSV written by memsim study")
    p.add_argument("--out", type=Path, help="output folder (default: the results file's folder)")
    p.set_defaults(func=_cmd_plot)
