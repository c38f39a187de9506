"""Array-size studies: parameter sweeps on a local pool or a Dask cluster, resumable.

::

    import memsim.study
    run = memsim.study.run("examples/studies/sneak_paths.toml", out="results")   # or a dict
    memsim.plots.plot_results(run.path)                                          # PNG + SVG

    memsim study CONFIG [--dask ADDRESS|local] [--workers N] [--out DIR] [--no-plot]
    memsim plot RESULTS [--out DIR]

A study config names a grid (array size N, wire resistance, cell kind, bias scheme, device
preset and level count, tile size, seeds) and the metrics to compute
(:mod:`memsim.study.config`); each point is one metric at one combination of the axes it
depends on (:mod:`memsim.study.metrics`; the grid as points and their cost model,
:mod:`memsim.study.points`); points run in workers (:mod:`memsim.study.worker`) on a process
pool or Dask (:mod:`memsim.study.executors`) and are stored as they finish in the study's
SQLite store (:mod:`memsim.study.store`), which the results CSV is exported from
(:mod:`memsim.study.results`); :mod:`memsim.study.runner` runs all of it and resumes.
Scripts run their own experiments the same way (:func:`run_tasks`, :mod:`memsim.study.tasks`:
a list of points and a function of one point; results in ``<out>/<name>.jsonl``).
``memsim study`` and ``memsim plot`` are :mod:`memsim.commands.study`.

Importing this package is cheap (stdlib only); numpy, the solver, ngspice, Dask and
matplotlib load when a study or plot runs.
"""
from __future__ import annotations

from pathlib import Path

from .._lazy import lazy_getattr
from ..io import OUTPUT_DIR
from .config import AXES, METRIC_AXES, METRICS, OPTIONS, StudyConfig, load, validate

_LAZY = {
    "run": ("memsim.study.runner", "run"),
    "StudyRun": ("memsim.study.runner", "StudyRun"),
    "expand": ("memsim.study.points", "expand"),
    "read_results": ("memsim.study.results", "read_results"),
    "StoreError": ("memsim.study.store", "StoreError"),
    "run_tasks": ("memsim.study.tasks", "run_tasks"),
    "read_records": ("memsim.study.tasks", "read_records"),
    "read_margin": ("memsim.study.metrics", "read_margin"),
    "margin_crossover": ("memsim.study.metrics", "margin_crossover"),
    "closed_form_margin": ("memsim.study.metrics", "closed_form_margin"),
    "closed_form_read_current": ("memsim.study.metrics", "closed_form_read_current"),
    "level_conductances": ("memsim.study.metrics", "level_conductances"),
    "write_disturb": ("memsim.study.metrics", "write_disturb"),
    "tiled_mvm": ("memsim.study.metrics", "tiled_mvm"),
    "driver_power": ("memsim.study.metrics", "driver_power"),
}

__all__ = ["AXES", "METRICS", "METRIC_AXES", "OPTIONS", "StudyConfig", "load", "validate", "add_executor_options",
           "add_run_options", "run_script", *_LAZY]

DEFAULT_OUT = OUTPUT_DIR


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


# ---------------------------------------------------------------------------------------------
# command-line options shared by `memsim study` (memsim/cli.py) and study scripts
# ---------------------------------------------------------------------------------------------
def add_executor_options(p) -> None:
    """``--workers N`` and ``--dask ADDRESS`` on an argparse parser: where the points of a study
    (``memsim study``, scripts/study_*.py) or of a script's experiment (:func:`run_tasks`) run."""
    p.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster: a scheduler address, or 'local' "
                                                      "for a LocalCluster of --workers processes")
    p.add_argument("--workers", type=_worker_count, default=2,
                   help="worker processes (local pool or LocalCluster; default 2)")


def _worker_count(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, 256], got {text!r}")
    return value


def add_run_options(p) -> None:
    """Where a study runs and writes: shared by ``memsim study`` and :func:`run_script`."""
    add_executor_options(p)
    p.add_argument("--out", type=Path, help=f"output folder (default ./{DEFAULT_OUT}, as memsim study: either "
                                            "resumes the other)")


def run_script(config, description: str, argv=None):
    """The command line of a study script (``--out``, ``--dask``, ``--workers``): runs ``config``
    (a dict, as in scripts/study_*.py) and returns the runner's result."""
    import argparse

    from .runner import run  # the solver (numba) and ngspice: not when `memsim --help` imports this package

    parser = argparse.ArgumentParser(description=description)
    add_run_options(parser)
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else DEFAULT_OUT
    return run(config, out=out, dask=args.dask, workers=args.workers)
