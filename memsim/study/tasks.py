"""A script's own experiment through the study runner: its grid as a list of points, one
function that computes a point, the same store, executors and resume as a config study.

::

    def run_point(point):                      # top level in the script (or any module)
        return {"accuracy": ...}               # JSON-able values

    run = memsim.study.run_tasks("results", points, run_point, settings={"images": 1000},
                                 out="memsim_output/nn", workers=2, dask=None)
    rows = memsim.study.read_records(run.path)  # [{**point, **values}, ...]

- ``points``: JSON-able dicts, the grid in order; a point is its own key (its JSON with
  sorted keys), so two equal points are one point.
- ``task(point)`` runs in a worker process (local pool or Dask), so it must be importable:
  a top-level function of a module, or of the script that calls :func:`run_tasks` (the
  workers load that script from its file under another name, so the part under
  ``if __name__ == "__main__":`` does not run there; Dask workers elsewhere must see the same
  file), or a :func:`functools.partial` of one with picklable arguments (how a script passes
  what does not identify a point, such as a cache folder).  It returns a dict of JSON-able
  values whose names are not those of the point.
- ``settings``: a JSON-able dict of what changes results besides the points (image counts,
  training recipes), recorded in the store with the task's name; resuming with other
  settings or another task is refused, so results computed differently never mix.

Every finished point is stored at once in ``<out>/<name>.sqlite``, and ``<out>/<name>.jsonl``
(one JSON object a line, ``{**point, **values}`` with sorted keys: the format of the results
logs the scripts appended to before, so a render step reads both) is rewritten from the store
atomically: the points of this grid in grid order, then every other finished point of the
store (an earlier run's other seeds or models) in the order of their keys, so the file is
the same whatever the executor or the order in which points finished.  A point whose task raised is stored with its
error, left out of the export, reported (on stderr and in the returned run's ``failures``)
and computed again by the next run.  Interrupting, SIGTERM, SIGKILL, the lock on the output and the refusal of damaged
or foreign stores are those of :func:`memsim.study.run`.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import sys
from pathlib import Path

from ..errors import FileError
from ..io import LIMITS, OUTPUT_DIR, parse_json, read_text, write_atomic

#: Suffix of the export a render step reads.
EXPORT = ".jsonl"


# ---------------------------------------------------------------------------------------------
# the task: a reference workers can resolve
# ---------------------------------------------------------------------------------------------
def task_ref(task) -> tuple:
    """(module, qualified name, file, args, keywords) of ``task``, which workers resolve with
    :func:`call_task`; ValueError if workers could not import it."""
    args, keywords = (), {}
    if isinstance(task, functools.partial):
        task, args, keywords = task.func, task.args, dict(task.keywords)
    module, name = getattr(task, "__module__", None), getattr(task, "__qualname__", "")
    if not callable(task) or module is None or not name or "<" in name:
        raise ValueError(f"task must be a top-level function of a module or script (or a functools.partial of one), "
                         f"got {task!r}")
    path = getattr(sys.modules.get(module), "__file__", None)
    if module == "__main__" and path is None:
        raise ValueError("task is defined in an interactive session; workers can import it only from a module or "
                         "script file")
    return module, name, None if path is None else str(Path(path).resolve()), tuple(args), keywords


def task_name(ref: tuple) -> str:
    """The name recorded in the store: module (a script's file stem) and qualified name."""
    module, name, path = ref[:3]
    return f"{Path(path).stem if module == '__main__' else module}.{name}"


_LOADED: dict = {}


def _function(ref: tuple):
    module, name, path = ref[:3]
    target = sys.modules.get(module) if module != "__main__" else None
    if target is None and module != "__main__":
        try:
            target = importlib.import_module(module)
        except ImportError:
            if path is None:
                raise
    if target is None:  # the calling script (or a module not on this worker's path): load its file
        target = _LOADED.get(path)
        if target is None:
            spec = importlib.util.spec_from_file_location(f"_memsim_task_{Path(path).stem}", path)
            target = importlib.util.module_from_spec(spec)
            folder = str(Path(path).parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)  # as when the script runs: its own folder first
            spec.loader.exec_module(target)
            _LOADED[path] = target
    return functools.reduce(getattr, name.split("."), target)


def call_task(ref: tuple, point: dict) -> dict:
    """``task(point)`` in a worker, its values checked (a dict of JSON-able values, none named
    like a field of the point) as ``{"values": values}``: the runner's own names (``error``)
    stay apart from the task's."""
    values = _function(ref)(*ref[3], point, **ref[4])
    if not isinstance(values, dict):
        raise TypeError(f"task {task_name(ref)} returned {type(values).__name__}, not a dict of values")
    clash = sorted(set(values) & set(point))
    if clash:
        raise ValueError(f"task {task_name(ref)} returned values named like the point's fields: {', '.join(clash)}")
    try:
        return {"values": json.loads(json.dumps(values))}
    except (TypeError, ValueError) as err:
        raise TypeError(f"task {task_name(ref)} returned a value that is not JSON-able ({err})") from None


# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------
def point_key(point: dict) -> str:
    return json.dumps(point, sort_keys=True, separators=(",", ":"))


def _plain(value, what: str):
    """``value`` as plain JSON values (ValueError naming ``what`` if it is not JSON-able)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be JSON-able (numbers, strings, booleans, None, lists, dicts): {err}") from None


def run_tasks(name: str, points: list, task, *, settings: dict | None = None, out: str | Path = OUTPUT_DIR,
              workers: int = 1, dask: str | None = None, progress: bool = True):
    """Compute ``task(point)`` for every point not yet in the store ``<out>/<name>.sqlite``, on
    ``workers`` local processes or Dask (``dask``: ``"local"`` or a scheduler address), and
    export ``<out>/<name>.jsonl``; returns a :class:`memsim.study.runner.StudyRun` whose
    ``path`` is that file.  See the module's description for points, task and settings.
    """
    from .config import _NAME
    from .runner import check_executor, check_out, execute
    from .store import Store
    from .worker import compute_task

    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name must be a plain file-name stem (letters, digits, _ . -; up to 64 characters), "
                         f"got {name!r}")
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise ValueError("points must be a non-empty list of dicts (the grid, in order)")
    points = _plain(points, "points")
    if settings is not None and not isinstance(settings, dict):
        raise ValueError(f"settings must be a dict, got {type(settings).__name__}")
    ref = task_ref(task)
    check_executor(workers, dask)
    out = check_out(out)
    options = {"task": task_name(ref), "settings": _plain(settings or {}, "settings")}
    path = out / f"{name}{EXPORT}"
    unique = list({point_key(point): point for point in points}.values())

    def export(stored, order):
        _export(path, order, stored)

    with Store(out, name, options, export=EXPORT) as store:
        run = execute(store, path, unique, point_key, point_key, export, compute_task, ref, lambda point: 1.0,
                      dask=dask, workers=workers, progress=progress)
    for point, error in run.failures:  # not in the export: said here
        print(f"failed: {point_key(point)}: {error}", file=sys.stderr)
    return run


def _export(path: Path, order: list, stored: dict) -> None:
    grid = set(order)
    keys = order + sorted(key for key in stored if key not in grid)  # by key: whatever order they finished in
    lines = [json.dumps({**stored[key]["point"], **stored[key]["result"]["values"]}, sort_keys=True) + "\n"
             for key in keys if key in stored and stored[key]["error"] is None]
    write_atomic(path, "".join(lines))


def read_records(path: str | Path) -> list[dict]:
    """The rows of a script's results file (``<name>.jsonl`` exported by :func:`run_tasks`, or
    a results log of the older format, which is the same): one dict a line.
    A damaged line is refused (FileError naming it), never skipped."""
    rows = []
    for number, line in enumerate(read_text(path, "results file", LIMITS["results"]).splitlines(), 1):
        if line.strip():
            row = parse_json(line, f"{path}, line {number},")
            if not isinstance(row, dict):
                raise FileError(f"{path}, line {number}, is not a JSON object")
            rows.append(row)
    return rows
