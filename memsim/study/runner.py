"""Running a study: grid points on a local process pool or a Dask cluster, one row each.

Every finished point is stored at once, in a transaction, in the study's SQLite store
``<out>/<name>.sqlite`` (:mod:`memsim.study.store`: the settings and every point's values,
checked when read back), and ``<out>/<name>.csv``, the file people open and plots read, is
rewritten from the store atomically, in grid order.  An interrupted study (Ctrl-C, SIGTERM,
SIGKILL, power loss) keeps every finished point; running it again computes the rest and the
points that failed before, and refuses a store of other options, a damaged or foreign store
and a CSV with no store.  The same config gives byte-identical CSV files whatever the
executor, the worker count or the order in which points finished.  While a study runs it
holds ``<out>/<name>.lock``, so a second study on the same output stops at once instead of
mixing rows.  ``<name>.study.json`` is a readable copy of the config (never read back) and
``<name>.timings.csv`` logs each point's wall time (appended by every run).

A study can be run from a plain script (``memsim.study.run(...)`` at top level, no
``if __name__ == "__main__":`` guard): the pool's worker processes start without re-running
the calling script.  :func:`execute` is the loop itself (resume, schedule, store, export,
interrupt); a script's own grid runs through it too (:func:`memsim.study.tasks.run_tasks`).
"""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..io import OUTPUT_DIR, check_out_folder, remove_stale_temporaries, write_atomic
from ..progress import WeightedProgress
from .config import METRIC_AXES, StudyConfig, load
from .executors import run_dask, run_local
from .metrics import compute_row
from .points import columns, csv_cell, expand, point_cost, point_key
from .results import csv_line, export_csv, plain_value
from .store import Store
from .worker import SECONDS

# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------
@dataclass
class StudyRun:
    """What a run did: ``path`` of the results CSV, point counts, failures, wall time, notes.

    ``already_done``: points found finished in the store; ``retried``: points that had failed
    in an earlier run and were computed again (part of ``computed``); ``failures``: (point,
    error message) of every point of the grid that failed."""

    path: Path
    points: int
    already_done: int
    computed: int = 0
    failed: int = 0
    retried: int = 0
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    executor: str = "local"
    store: Path | None = None
    failures: list = field(default_factory=list)

    def describe(self, where_failures: str) -> str:
        """One line for people: where the results are, what was computed, how long, failures
        (``where_failures`` says where to read their messages)."""
        return (f"results: {self.path}  ({self.points} points: {self.already_done} already there, {self.computed} "
                f"computed in {self.seconds:.1f} s on {self.executor}"
                + (f"; {self.failed} failed, {where_failures}" if self.failed else "") + ")")


def _key_of_stored(point: dict) -> str:
    """The key of a point read back from the store (its axes must be the metric's own)."""
    metric = point["metric"]
    if set(point) != {"metric", *METRIC_AXES[metric]}:
        raise KeyError(metric)
    return point_key(point)


def run(config, *, out: str | Path = OUTPUT_DIR, dask: str | None = None, workers: int = 2,
        progress: bool = True) -> StudyRun:
    """Run a study, resuming from its store ``<out>/<name>.sqlite`` if there is one; returns a
    :class:`StudyRun`.

    Parameters
    ----------
    config : dict, StudyConfig, or path of a .toml / .json file
    out : folder of the store, the results CSV and the logs
    dask : None for the local process pool, ``"local"`` for a Dask LocalCluster of
        ``workers`` single-threaded processes, or a scheduler address ("tcp://host:8786")
    workers : processes of the local pool or LocalCluster
    progress : draw a progress bar (tqdm, weighted by each point's estimated cost) on stderr

    Notes
    -----
    Interrupting (KeyboardInterrupt, SIGTERM) stops the workers and re-raises; every point
    finished so far is stored, and running again computes only the rest (and the points that
    failed).  Resuming with other result-changing options, onto a damaged or foreign store, a
    CSV with no store, or while another study writes the same output raises
    :class:`memsim.study.store.StoreError`.
    """
    config = load(config)
    check_executor(workers, dask)
    points, notes = expand(config)
    out = check_out(out)
    options = config.options
    header = columns(config.metrics)

    def export(stored, order):
        export_csv(out / f"{config.name}.csv", header, order, stored)

    def check(point, values):
        for key in values:
            if key not in header:
                raise AssertionError(f"metric {point['metric']} returned an undeclared column {key!r}")

    with Store(out, config.name, options) as store:
        _write_config_copy(out / f"{config.name}.study.json", config)
        return execute(store, out / f"{config.name}.csv", points, point_key, _key_of_stored, export, compute_row,
                       options, lambda point: point_cost(point, options), dask=dask, workers=workers,
                       progress=progress, notes=notes, check=check)


def check_executor(workers, dask) -> None:
    """Refuse a worker count or Dask address that cannot be used (ValueError, one line)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise ValueError(f"workers must be an integer in [1, 256], got {workers!r}")
    if dask is not None and (not isinstance(dask, str) or not dask.strip()):
        raise ValueError(f"dask must be 'local' or a scheduler address, got {dask!r}")


def check_out(out) -> Path:
    """The output folder, checked before any work (:func:`memsim.io.check_out_folder`)."""
    return check_out_folder(out, what="--out")


def execute(store, path: Path, points: list, key_of, key_of_stored, export, compute, options, cost, *,
            dask: str | None, workers: int, progress: bool, notes=(), check=None) -> StudyRun:
    """Compute the points of ``points`` (in order) that ``store`` lacks or holds as failed, on
    the local pool or Dask, storing each as it finishes and calling ``export(stored, order)``
    (``order``: the points' keys) after each; returns a :class:`StudyRun` for ``path``.

    ``key_of(point)`` is a point's key, ``key_of_stored`` the same for a point read back from
    the store (raising KeyError for one that is not of this kind); each point is computed as
    ``compute(point, options)`` in a worker; ``cost(point)`` weights the progress bar and the
    order (largest first); ``check(point, values)`` may refuse what a worker returned.
    """
    remove_stale_temporaries(path)  # a killed run's half-done export (the store's lock rules out a live one)
    stored = store.rows(key_of_stored)
    order = [key_of(point) for point in points]
    failed_before = [key for key in order if key in stored and stored[key]["error"] is not None]
    todo = [point for point, key in zip(points, order) if key not in stored or stored[key]["error"] is not None]
    todo.sort(key=lambda point: -cost(point))  # largest first: the pool ends together
    summary = StudyRun(path, len(points), len(points) - len(todo), notes=list(notes), retried=len(failed_before),
                       executor="local pool" if dask is None else f"dask {dask}", store=store.path)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if failed_before:
        print(f"note: {len(failed_before)} point(s) that failed in an earlier run are computed again", file=sys.stderr)
    if progress:
        print(f"study {store.name}: {len(points)} points, {summary.already_done} already in {store.path.name}, "
              f"{len(todo)} to compute on {summary.executor} ({workers} workers)", file=sys.stderr)
    export(stored, order)
    timings = store.out / f"{store.name}.timings.csv"
    bar = WeightedProgress(sum(cost(p) for p in todo), len(todo), store.name, progress, "points")
    start = time.perf_counter()

    def on_row(point, values):
        values = dict(values)
        seconds = values.pop(SECONDS, None)
        error = values.pop("error", None)
        if check is not None:
            check(point, values)
        result = {key: plain_value(value) for key, value in values.items()}
        key = key_of(point)
        plain_point = {k: plain_value(v) for k, v in point.items()}
        store.put(key, plain_point, result, error, seconds, summary.executor)
        stored[key] = {"point": plain_point, "result": result, "error": error}
        export(stored, order)
        with open(timings, "a", encoding="utf-8") as handle:  # a log for people, not read back
            if handle.tell() == 0:
                handle.write("point,seconds,executor\n")
            handle.write(csv_line([key, csv_cell(seconds), summary.executor]))
        summary.computed += 1
        summary.failed += error is not None
        bar.update(cost(point), failed=error is not None)

    previous = _install_sigterm()
    try:
        if todo:
            if dask is None:
                run_local(todo, options, workers, on_row, compute)
            else:
                run_dask(todo, options, dask, workers, on_row, compute)
    except KeyboardInterrupt:
        bar.bar.close()
        # The interrupt may land between storing a point and exporting it: the store decides.
        stored.update(store.rows(key_of_stored))
        export(stored, order)
        done = sum(1 for key in order if key in stored and stored[key]["error"] is None)
        print(f"\ninterrupted: {done} of {len(points)} points are saved in {store.path}; run the same "
              "command again to compute the rest", file=sys.stderr)
        raise
    finally:
        _restore_sigterm(previous)
    bar.close()
    summary.failures = [(stored[key]["point"], stored[key]["error"]) for key in order if stored[key]["error"] is not None]
    summary.failed = len(summary.failures)
    summary.seconds = time.perf_counter() - start
    return summary


def _write_config_copy(path: Path, config: StudyConfig) -> None:
    write_atomic(path, json.dumps({"memsim_version": __version__, "config": config.to_dict(),
                                   "note": "a readable copy; the study's settings live in its .sqlite store"},
                                  indent=2, sort_keys=True) + "\n")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _install_sigterm():
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
