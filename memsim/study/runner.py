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
the calling script.
"""
from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import METRIC_AXES, METRICS, StudyConfig, load
from ..io import OUTPUT_DIR

#: Column name of each axis in the results file.
AXIS_COLUMNS = {"size": "size", "r_wire": "r_wire_ohm", "cell": "cell", "scheme": "scheme", "preset": "preset",
                "levels": "levels", "tile": "tile", "seed": "seed"}
_INT_COLUMNS = {"size", "levels", "tile", "seed", "crossover_n", "searched_to_n"}
_TEXT_COLUMNS = {"metric", "cell", "scheme", "preset", "error"}


# ---------------------------------------------------------------------------------------------
# points and rows
# ---------------------------------------------------------------------------------------------
def csv_cell(value) -> str:
    """One CSV cell: '' for None, shortest round-trip repr for floats, str otherwise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "item"):  # numpy scalar
        return csv_cell(value.item())
    return str(value)


def point_key(point: dict) -> str:
    """The identity of a point: its metric and the values of that metric's axes."""
    metric = point["metric"]
    return metric + "|" + "|".join(f"{axis}={csv_cell(point[axis])}" for axis in METRIC_AXES[metric])


def columns(metrics) -> list[str]:
    """The results file's header for ``metrics`` (in the global metric order)."""
    from .metrics import METRIC_COLUMNS, SPICE_CHECKED

    chosen = [m for m in METRICS if m in set(metrics)]
    header = ["metric"]
    header += [AXIS_COLUMNS[a] for a in AXIS_COLUMNS if any(a in METRIC_AXES[m] for m in chosen)]
    for metric in chosen:
        header += [c for c in METRIC_COLUMNS[metric] if c not in header]
    if any(m in SPICE_CHECKED for m in chosen):
        header.append("spice_rel_diff")
    header.append("error")
    return header


def expand(config: StudyConfig) -> tuple[list[dict], list[str]]:
    """Every point of the study in grid order, and notes on points left out (and why)."""
    from .metrics import level_conductances, network_hook

    grid, options = config.grid, config.options
    points, notes, seen = [], [], set()
    _check_levels(config)
    for metric in config.metrics:
        if metric == "network_accuracy":
            hook, reason = network_hook()
            if hook is None:
                notes.append(f"network_accuracy skipped: {reason}")
                continue
        if metric in ("tile", "network_accuracy"):
            odd = [t for t in grid["tile"] if t % 2]
            if odd:
                raise ValueError(f"grid.tile: {metric} needs even tile sizes (T inputs x T/2 differential pairs), "
                                 f"got {odd}")
        skipped = {"size": 0, "ohmic": 0}
        for combo in itertools.product(*(grid[axis] for axis in METRIC_AXES[metric])):
            point = {"metric": metric, **dict(zip(METRIC_AXES[metric], combo))}
            if "levels" in point and point["levels"] is None:
                point["levels"] = int(level_conductances(point["preset"]).size)
            if metric == "write_disturb":
                if point["size"] > options["disturb_max_size"]:
                    skipped["size"] += 1
                    continue
                if point["cell"] == "ohmic":
                    skipped["ohmic"] += 1
                    continue
            key = point_key(point)
            if key not in seen:
                seen.add(key)
                points.append(point)
        if skipped["size"]:
            notes.append(f"write_disturb: {skipped['size']} points with N > options.disturb_max_size = "
                         f"{options['disturb_max_size']} left out (ngspice transients are for small arrays)")
        if skipped["ohmic"]:
            notes.append(f"write_disturb: {skipped['ohmic']} points with ohmic cells left out (linear cells do "
                         "not switch)")
    if not points:
        raise ValueError("the study has no points to compute" + (f" ({'; '.join(notes)})" if notes else ""))
    return points, notes


def _check_levels(config: StudyConfig) -> None:
    """The level range must be reachable by the RRAM model (device and 1T1R cells)."""
    if config.options["g_range"] is None or set(config.grid["cell"]) <= {"ohmic"}:
        return
    from ..devices import preset

    v_read = config.options["v_read"]
    for name in config.grid["preset"]:
        lo, hi = preset(name).params.g_range(v_read)
        g_min, g_max = config.options["g_range"]
        if g_min < lo or g_max > hi:
            raise ValueError(f"options.g_range [{g_min:g}, {g_max:g}] S is outside what the {name} RRAM model reaches "
                             f"at {v_read:g} V ([{lo:.3g}, {hi:.3g}] S); narrow it or use cell = 'ohmic'")


# ---------------------------------------------------------------------------------------------
# one point (runs in a worker)
# ---------------------------------------------------------------------------------------------
_BUSY = False
_STOPPING = False
#: Wall time of a point (s): reported in <name>.timings.csv, never in the results file (it
#: differs from run to run, and the results must not).
SECONDS = "_seconds"


def compute_row(point: dict, options: dict) -> dict:
    """Compute one point; returns its result columns, or {"error": message} if it failed."""
    global _BUSY
    from .metrics import METRIC_FUNCTIONS

    _BUSY = True
    start = time.perf_counter()
    try:
        values = METRIC_FUNCTIONS[point["metric"]](point, options)
    except BaseException as err:
        if _STOPPING:  # SIGTERM from the study process; whatever the unwinding raised, stop here
            _exit_now(1)
        if not isinstance(err, Exception):
            raise
        message = " ".join(f"{type(err).__name__}: {err}".split())
        return {"error": message[:500], SECONDS: time.perf_counter() - start}
    finally:
        _BUSY = False
    row = {key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in values.items()}
    row[SECONDS] = time.perf_counter() - start
    return row


def _on_sigterm(signum, frame):
    # Inside a point: unwind, so a running ngspice is killed and its folder removed on the way
    # out, then exit (compute_row sees _STOPPING); idle: exit now.
    global _STOPPING
    _STOPPING = True
    if _BUSY:
        raise KeyboardInterrupt
    _exit_now(0)


def _exit_now(status: int) -> None:
    # The interrupt can land inside a run's folder cleanup (or before it starts): remove what
    # this worker's ngspice runs left, then exit without unwinding further.
    spice = sys.modules.get("memsim.spice")
    if spice is not None:
        spice.remove_work_folders()
    os._exit(status)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:  # the study process died (SIGKILL): do not linger
            os.kill(os.getpid(), signal.SIGTERM)  # unwind as if the study had stopped us
            time.sleep(5.0)
            _exit_now(1)


def _worker_init(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the study process decides when to stop
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    _one_blas_thread()


def _one_blas_thread() -> None:
    """One BLAS thread per worker, kept (returns None, so Dask's client.run can call it)."""
    from ..threads import one_blas_thread

    one_blas_thread()


# ---------------------------------------------------------------------------------------------
# cost model (progress bar weights)
# ---------------------------------------------------------------------------------------------
def point_cost(point: dict, options: dict) -> float:
    """Rough relative cost of a point (seconds on one core), for the ETA and the scheduling order."""
    def solve(n, cell):
        return 1e-3 + 3e-6 * n * n * (5.0 if cell == "1t1r" else 1.0)

    def spice(n):
        return 0.2 * (n * n / 1024) ** 2.2

    metric = point["metric"]
    n = point.get("size", 0)
    spot = n <= options["spice_max_size"]
    if metric == "read_margin":
        return 2 * solve(n, point["cell"]) + (2 * spice(n) if spot else 0.0)
    if metric == "margin_crossover":
        return 12 * solve(options["crossover_max_size"] // 2, point["cell"]) + 4 * spice(32)
    if metric == "mvm":
        return options["inputs"] * solve(n, point["cell"]) + (spice(n) if spot else 0.0)
    if metric == "write_disturb":
        return 2.5 * (n / 16) ** 3 * options["disturb_steps"] / 200
    n_in, n_out = options["tile_matrix"]
    tiles = math.ceil(n_in / point["tile"]) * math.ceil(2 * n_out / point["tile"])
    if metric == "tile":
        return options["tile_inputs"] * tiles * solve(point["tile"], point["cell"])
    return 30.0 * tiles * solve(point["tile"], point["cell"])  # network_accuracy


# ---------------------------------------------------------------------------------------------
# the results file
# ---------------------------------------------------------------------------------------------
def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def read_rows(path: str | Path) -> tuple[list[str], list[dict], int]:
    """(header, rows as dicts of strings, number of damaged lines dropped) of a results file.

    A last line without its newline (the study was killed while writing it) and lines with
    the wrong number of fields are dropped.
    """
    from ..io import LIMITS, read_text

    text = read_text(path, "results file", LIMITS["results"])
    lines = text.split("\n")
    dropped = 0
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # truncated: the newline is written last
        dropped += 1
    if not lines:
        return [], [], dropped
    header = next(csv.reader([lines[0]]))
    rows = []
    for fields in csv.reader(lines[1:]):
        if len(fields) != len(header):
            dropped += 1
            continue
        rows.append(dict(zip(header, fields)))
    return header, rows, dropped


def read_results(path: str | Path) -> list[dict]:
    """The rows of a results file with numbers parsed (int, float; None for empty cells)."""
    path = Path(path)
    header, rows, _ = read_rows(path)
    if "metric" not in header:
        raise ValueError(f"{path} is not a memsim study results file (no 'metric' column)")
    parsed = []
    for line, row in enumerate(rows, 2):
        out = {}
        for key, text in row.items():
            if text == "":
                out[key] = None
            elif key in _TEXT_COLUMNS:
                out[key] = text
            elif key in _INT_COLUMNS:
                try:
                    out[key] = int(text)
                except ValueError:
                    raise ValueError(f"{path}, row {line}: column {key} must be an integer, got {text[:40]!r}") from None
            else:
                try:
                    out[key] = float(text)
                except ValueError:
                    out[key] = text
        parsed.append(out)
    return parsed


# ---------------------------------------------------------------------------------------------
# executors
# ---------------------------------------------------------------------------------------------
def _run_local(points, options, workers, on_row):
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(os.getpid(),))
    futures = {}
    finished = False
    try:
        with _main_not_reimported():  # the workers start on the first submits
            futures = {pool.submit(compute_row, point, options): point for point in points}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    values = future.result()
                except BrokenProcessPool:
                    from ..errors import MemsimError

                    raise MemsimError("a worker process died (killed, or out of memory?); the finished points are "
                                      "saved: run the study again to resume, perhaps with fewer --workers") from None
                on_row(futures[future], values)
        finished = True
    finally:
        if not finished:
            for future in futures:
                future.cancel()
            _stop_workers(pool)
        pool.shutdown(wait=finished, cancel_futures=True)


@contextlib.contextmanager
def _main_not_reimported():
    """Start worker processes without re-running the caller's main module.

    A spawned worker normally imports the parent's ``__main__`` (the script) again, so a plain
    script that calls ``memsim.study.run`` at top level would start the study again in every
    worker.  The workers run only memsim's own functions on plain dicts and need nothing from
    ``__main__``, so it is hidden from multiprocessing while they start.
    """
    main = sys.modules.get("__main__")
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if main is not None and name in main.__dict__}
    try:
        for name in saved:
            setattr(main, name, None) if name == "__spec__" else delattr(main, name)
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


def _stop_workers(pool) -> None:
    # ProcessPoolExecutor cannot stop a running task; its worker processes are terminated
    # (SIGTERM lets a worker kill its ngspice run and remove its folder), then killed.
    processes = list(getattr(pool, "_processes", {}) .values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + 5.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()


def _run_dask(points, options, address, workers, on_row):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("--dask needs dask.distributed: pip install 'memsim[dist]'") from None
    import logging

    cluster = None
    if address == "local":
        with _main_not_reimported():
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise ValueError(f"cannot connect to the Dask scheduler at {address!r}: {err}") from None
    futures = {}
    try:
        client.run(_one_blas_thread)
        for point in points:
            futures[client.submit(compute_row, point, options, pure=False)] = point
        for future in as_completed(list(futures)):
            if future.status == "error":
                on_row(futures[future], {"error": f"dask: {type(future.exception()).__name__}: {future.exception()}"})
            else:
                on_row(futures[future], future.result())
    finally:
        if futures:
            client.cancel(list(futures))
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------
@dataclass
class StudyRun:
    """What a run did: ``path`` of the results CSV, point counts, failures, wall time, notes.

    ``already_done``: points found finished in the store; ``retried``: points that had failed
    in an earlier run and were computed again (part of ``computed``)."""

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

    Interrupting (KeyboardInterrupt, SIGTERM) stops the workers and re-raises; every point
    finished so far is stored, and running again computes only the rest (and the points that
    failed).  Resuming with other result-changing options, onto a damaged or foreign store, a
    CSV with no store, or while another study writes the same output raises
    :class:`memsim.study.store.StoreError`.
    """
    from ..progress import WeightedProgress
    from .store import Store

    config = load(config)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise ValueError(f"workers must be an integer in [1, 256], got {workers!r}")
    if dask is not None and (not isinstance(dask, str) or not dask.strip()):
        raise ValueError(f"dask must be 'local' or a scheduler address, got {dask!r}")
    points, notes = expand(config)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    path = out / f"{config.name}.csv"
    options = config.options
    with Store(out, config.name, options) as store:
        _write_config_copy(out / f"{config.name}.study.json", config)
        stored = store.rows(_key_of_stored)
        order = [point_key(point) for point in points]
        failed_before = [key for key in order if key in stored and stored[key]["error"] is not None]
        todo = [point for point, key in zip(points, order) if key not in stored or stored[key]["error"] is not None]
        todo.sort(key=lambda point: -point_cost(point, options))  # largest first: the pool ends together
        summary = StudyRun(path, len(points), len(points) - len(todo), notes=notes, retried=len(failed_before),
                           executor="local pool" if dask is None else f"dask {dask}", store=store.path)
        header = columns(config.metrics)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        if failed_before:
            print(f"note: {len(failed_before)} point(s) that failed in an earlier run are computed again",
                  file=sys.stderr)
        if progress:
            print(f"study {config.name}: {len(points)} points, {summary.already_done} already in {store.path.name}, "
                  f"{len(todo)} to compute on {summary.executor} ({workers} workers)", file=sys.stderr)
        _export(path, header, order, stored)
        timings = out / f"{config.name}.timings.csv"
        bar = WeightedProgress(sum(point_cost(p, options) for p in todo), len(todo), config.name, progress, "points")
        start = time.perf_counter()

        def on_row(point, values):
            values = dict(values)
            seconds = values.pop(SECONDS, None)
            error = values.pop("error", None)
            result = {}
            for key, value in values.items():
                if key not in header:
                    raise AssertionError(f"metric {point['metric']} returned an undeclared column {key!r}")
                result[key] = _plain(value)
            key = point_key(point)
            plain_point = {k: _plain(v) for k, v in point.items()}
            store.put(key, plain_point, result, error, seconds, summary.executor)
            stored[key] = {"point": plain_point, "result": result, "error": error}
            _export(path, header, order, stored)
            with open(timings, "a", encoding="utf-8") as handle:  # a log for people, not read back
                if handle.tell() == 0:
                    handle.write("point,seconds,executor\n")
                handle.write(_csv_line([key, csv_cell(seconds), summary.executor]))
            summary.computed += 1
            summary.failed += error is not None
            bar.update(point_cost(point, options), failed=error is not None)

        previous = _install_sigterm()
        try:
            if todo:
                if dask is None:
                    _run_local(todo, options, workers, on_row)
                else:
                    _run_dask(todo, options, dask, workers, on_row)
        except KeyboardInterrupt:
            bar.bar.close()
            done = sum(1 for key in order if key in stored and stored[key]["error"] is None)
            print(f"\ninterrupted: {done} of {len(points)} points are saved in {store.path}; run the same "
                  "command again to compute the rest", file=sys.stderr)
            raise
        finally:
            _restore_sigterm(previous)
        bar.close()
        summary.failed = sum(1 for key in order if stored[key]["error"] is not None)
        summary.seconds = time.perf_counter() - start
    return summary


def _plain(value):
    """A builtin JSON value (numpy scalars unwrapped, NaN as None)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _export(path: Path, header: list[str], order: list[str], stored: dict) -> None:
    """Rewrite the results CSV from the stored rows of this grid, in grid order (atomically)."""
    from ..io import write_atomic

    lines = [_csv_line(header)]
    for key in order:
        if key not in stored:
            continue
        entry = stored[key]
        row = {"metric": entry["point"]["metric"], "error": entry["error"]}
        for axis, value in entry["point"].items():
            if axis != "metric":
                row[AXIS_COLUMNS[axis]] = value
        row.update(entry["result"])
        lines.append(_csv_line([csv_cell(row.get(column)) for column in header]))
    write_atomic(path, "".join(lines))


def _write_config_copy(path: Path, config: StudyConfig) -> None:
    from .. import __version__
    from ..io import write_atomic

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
