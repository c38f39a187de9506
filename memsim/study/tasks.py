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

import json
import sys
from pathlib import Path

from ..errors import FileError
from ..io import LIMITS, OUTPUT_DIR, parse_json, read_text, write_atomic
from .config import _NAME
from .runner import check_executor, check_out, execute
from .store import Store
from .worker import compute_task, task_name, task_ref

#: Suffix of the export a render step reads.
EXPORT = ".jsonl"


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
