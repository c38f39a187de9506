"""Running a study: grid points on a local process pool or a Dask cluster, one CSV row each.

The results file ``<out>/<name>.csv`` holds one row per finished point.  Each row is
appended as one write, flushed and fsync'ed as soon as its point finishes, so an interrupted
study (Ctrl-C, SIGTERM, SIGKILL, power loss) keeps every finished point; a truncated last
line is dropped on resume.  Resuming skips every point already in the file and computes the
rest.  When all points are done the file is rewritten atomically in grid order, so the same
config gives byte-identical files whatever the executor, the worker count or the order in
which points finished.  Beside it, ``<name>.study.json`` records the config (resuming with
options that change results is refused) and ``<name>.timings.csv`` logs each point's wall
time (appended by every run; it is the one file that differs between runs).
"""
from __future__ import annotations

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

#: Column name of each axis in the results file.
AXIS_COLUMNS = {"size": "size", "r_wire": "r_wire_ohm", "cell": "cell", "scheme": "scheme", "preset": "preset",
                "levels": "levels", "tile": "tile", "seed": "seed"}
#: Options that do not change any result (free to change when resuming).
_NEUTRAL_OPTIONS = ("spice_timeout",)
_INT_COLUMNS = {"size", "levels", "tile", "seed", "crossover_n", "searched_to_n"}
_TEXT_COLUMNS = {"metric", "cell", "scheme", "preset", "error"}


# ---------------------------------------------------------------------------------------------
# points and rows
# ---------------------------------------------------------------------------------------------
def fmt(value) -> str:
    """One CSV cell: '' for None, shortest round-trip repr for floats, str otherwise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "item"):  # numpy scalar
        return fmt(value.item())
    return str(value)


def point_key(point: dict) -> str:
    """The identity of a point: its metric and the values of that metric's axes."""
    metric = point["metric"]
    return metric + "|" + "|".join(f"{axis}={fmt(point[axis])}" for axis in METRIC_AXES[metric])


def _row_key(row: dict) -> str | None:
    metric = row.get("metric")
    if metric not in METRIC_AXES:
        return None
    return metric + "|" + "|".join(f"{axis}={row.get(AXIS_COLUMNS[axis], '')}" for axis in METRIC_AXES[metric])


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
            os._exit(1)
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
    os._exit(0)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:  # the study process died (SIGKILL): do not linger
            os.kill(os.getpid(), signal.SIGTERM)  # unwind as if the study had stopped us
            time.sleep(5.0)
            os._exit(1)


def _worker_init(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the study process decides when to stop
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    _one_blas_thread()


def _one_blas_thread() -> None:
    """One BLAS thread per worker: the pool already has one worker per core."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        return
    threadpool_limits(limits=1, user_api="blas")


# ---------------------------------------------------------------------------------------------
# cost model (progress bar weights) and progress bar
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


class Progress:
    """A one-line progress bar with an ETA on stderr, weighted by the cost model."""

    def __init__(self, total_cost: float, n_points: int, label: str, enabled: bool = True, stream=None):
        self.total_cost = max(total_cost, 1e-12)
        self.n_points = n_points
        self.label = label
        self.enabled = enabled and n_points > 0
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.cost = 0.0
        self.done = 0
        self.errors = 0
        self.start = time.perf_counter()
        self._last_line = -1

    def update(self, cost: float, error: bool = False) -> None:
        self.done += 1
        self.cost += cost
        self.errors += bool(error)
        self.draw()

    def draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        fraction = min(self.cost / self.total_cost, 1.0) if self.done < self.n_points else 1.0
        tenth = int(10 * fraction)
        if not (self.tty or final or tenth > self._last_line):
            return
        self._last_line = tenth
        elapsed = time.perf_counter() - self.start
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else math.nan
        bar = "#" * int(30 * fraction) + "." * (30 - int(30 * fraction))
        text = (f"{self.label} [{bar}] {self.done}/{self.n_points} points  {_clock(elapsed)} elapsed  "
                f"ETA {_clock(eta)}" + (f"  {self.errors} failed" if self.errors else ""))
        self.stream.write(("\r" + text + ("\n" if final else "")) if self.tty else text + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:02d}:{seconds % 60:02d}"


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
    text = Path(path).read_text(encoding="utf-8")
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
    if not path.exists():
        raise ValueError(f"results file not found: {path}")
    try:
        header, rows, _ = read_rows(path)
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a memsim study results file (not UTF-8 text)") from None
    if "metric" not in header:
        raise ValueError(f"{path} is not a memsim study results file (no 'metric' column)")
    parsed = []
    for row in rows:
        out = {}
        for key, text in row.items():
            if text == "":
                out[key] = None
            elif key in _TEXT_COLUMNS:
                out[key] = text
            elif key in _INT_COLUMNS:
                out[key] = int(text)
            else:
                try:
                    out[key] = float(text)
                except ValueError:
                    out[key] = text
        parsed.append(out)
    return parsed


class ResultsFile:
    """Appends rows durably; rewrites the whole file atomically when asked."""

    def __init__(self, path: Path, header: list[str], rows: list[dict]):
        self.path = path
        self.header = header
        self.rows = {}
        self.extra = []  # rows of points that are not in this config's grid: kept, never lost
        for row in rows:
            key = _row_key(row)
            if key is None:
                self.extra.append(row)
            elif key not in self.rows:
                self.rows[key] = row
        self._handle = None

    @classmethod
    def open(cls, path: Path, metrics) -> "ResultsFile":
        from ..io import write_atomic

        header = columns(metrics)
        if not path.exists():
            write_atomic(path, _csv_line(header))
            return cls(path, header, [])
        old_header, rows, dropped = read_rows(path)
        if old_header and "metric" not in old_header:
            raise ValueError(f"{path} exists and is not a memsim study results file; choose another --out or name")
        present = {row.get("metric") for row in rows} & set(METRIC_AXES)
        header = columns(set(metrics) | present)
        results = cls(path, header, rows)
        if dropped or old_header != header:
            results.rewrite(order=None)
            if dropped:
                print(f"{path}: dropped {dropped} damaged line(s) (an interrupted write); their points run again",
                      file=sys.stderr)
        return results

    def line(self, row: dict) -> str:
        return _csv_line([row.get(column, "") for column in self.header])

    def append(self, key: str, row: dict) -> None:
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")
        self._handle.write(self.line(row))  # one write per row
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.rows[key] = row

    def rewrite(self, order) -> None:
        """Rewrite atomically: rows in ``order`` (keys) first, then any others as they were."""
        from ..io import write_atomic

        self.close()
        keys = list(self.rows)
        if order is not None:
            rank = {key: k for k, key in enumerate(order)}
            keys.sort(key=lambda key: rank.get(key, len(rank)))
        text = _csv_line(self.header) + "".join(self.line(self.rows[key]) for key in keys) + \
            "".join(self.line(row) for row in self.extra)
        write_atomic(self.path, text)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _check_meta(path: Path, config: StudyConfig) -> None:
    """Write ``<name>.study.json``, refusing to resume with options that change results."""
    from ..io import write_atomic

    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))["config"]["options"]
        except (OSError, ValueError, KeyError, TypeError):
            old = None
        if old is not None:
            changed = sorted(k for k in config.options if k not in _NEUTRAL_OPTIONS and k in old
                             and old[k] != config.options[k])
            if changed:
                diff = ", ".join(f"{k} {old[k]!r} -> {config.options[k]!r}" for k in changed)
                raise ValueError(f"the results in {path.parent} were computed with other options ({diff}); "
                                 "resuming would mix them: choose another --out folder or name, or delete the "
                                 "old results")
    from .. import __version__

    write_atomic(path, json.dumps({"memsim_version": __version__, "config": config.to_dict()}, indent=2,
                                  sort_keys=True) + "\n")


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
    """What a run did: ``path`` of the results, point counts, failures, wall time, notes."""

    path: Path
    points: int
    already_done: int
    computed: int = 0
    failed: int = 0
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    executor: str = "local"


def run(config, *, out: str | Path = "memsim_output", dask: str | None = None, workers: int = 2,
        progress: bool = True) -> StudyRun:
    """Run a study (resuming from ``<out>/<name>.csv`` if it exists); returns a :class:`StudyRun`.

    Parameters
    ----------
    config : dict, StudyConfig, or path of a .toml / .json file
    out : folder of the results file and its ``.study.json``
    dask : None for the local process pool, ``"local"`` for a Dask LocalCluster of
        ``workers`` single-threaded processes, or a scheduler address ("tcp://host:8786")
    workers : processes of the local pool or LocalCluster
    progress : draw a progress bar with an ETA on stderr

    Interrupting (KeyboardInterrupt, SIGTERM) stops the workers and re-raises; every point
    finished so far is in the file, and running again computes only the rest.
    """
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
    _check_meta(out / f"{config.name}.study.json", config)
    results = ResultsFile.open(path, config.metrics)
    order = [point_key(point) for point in points]
    todo = [point for point, key in zip(points, order) if key not in results.rows]
    options = config.options
    todo.sort(key=lambda point: -point_cost(point, options))  # largest first: the pool ends together
    summary = StudyRun(path, len(points), len(points) - len(todo), notes=notes,
                       executor="local pool" if dask is None else f"dask {dask}")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if progress:
        print(f"study {config.name}: {len(points)} points, {summary.already_done} already in {path}, "
              f"{len(todo)} to compute on {summary.executor} ({workers} workers)", file=sys.stderr)
    bar = Progress(sum(point_cost(p, options) for p in todo), len(todo), config.name, enabled=progress)
    start = time.perf_counter()

    timings = out / f"{config.name}.timings.csv"

    def on_row(point, values):
        values = dict(values)
        seconds = values.pop(SECONDS, None)
        row = {"metric": point["metric"]}
        for axis in METRIC_AXES[point["metric"]]:
            row[AXIS_COLUMNS[axis]] = fmt(point[axis])
        for key, value in values.items():
            if key not in results.header:
                raise AssertionError(f"metric {point['metric']} returned an undeclared column {key!r}")
            row[key] = fmt(value)
        results.append(point_key(point), row)
        with open(timings, "a", encoding="utf-8") as handle:  # a log for people, not read back
            if handle.tell() == 0:
                handle.write("point,seconds,executor\n")
            handle.write(_csv_line([point_key(point), fmt(seconds), summary.executor]))
        summary.computed += 1
        summary.failed += "error" in values
        bar.update(point_cost(point, options), error="error" in values)

    previous = _install_sigterm()
    try:
        if todo:
            if dask is None:
                _run_local(todo, options, workers, on_row)
            else:
                _run_dask(todo, options, dask, workers, on_row)
    except KeyboardInterrupt:
        results.close()
        print(f"\ninterrupted: {len(results.rows)} of {len(points)} points are saved in {path}; run the same "
              "command again to compute the rest", file=sys.stderr)
        raise
    finally:
        _restore_sigterm(previous)
        results.close()
    bar.draw(final=True)
    results.rewrite(order)
    summary.failed = sum(1 for key in order if results.rows[key].get("error"))
    summary.seconds = time.perf_counter() - start
    return summary


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _install_sigterm():
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
