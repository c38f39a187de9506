"""One point, computed in a worker process, and how a worker stops: SIGTERM from the study
process (unwind, kill ngspice, remove its folder, exit), or the study process gone (SIGKILL).

The bottom of the study package's import order (tasks -> runner -> executors -> worker;
metrics -> worker): a worker process imports this module and what its point needs, nothing
of the runner.  A script's task is resolved here from its reference (:func:`task_ref`), so a
worker computing a script's points never imports the study metrics (numpy, the solver,
ngspice) unless the task does.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ..threads import one_blas_thread

# ---------------------------------------------------------------------------------------------
# one point (runs in a worker)
# ---------------------------------------------------------------------------------------------
_BUSY = False
_STOPPING = False
#: Wall time of a point (s): reported in <name>.timings.csv, never in the results file (it
#: differs from run to run, and the results must not).
SECONDS = "_seconds"


def compute_task(point: dict, task) -> dict:
    """Compute one point of a script's experiment (:mod:`memsim.study.tasks`): ``task`` is the
    reference of its function (:func:`task_ref`); returns the values it returned, or
    {"error": message}."""
    return compute(call_task, task, point)


def compute(function, *args) -> dict:
    """``function(*args)``, a dict of values, timed; an exception becomes {"error": message}."""
    global _BUSY

    _BUSY = True
    start = time.perf_counter()
    try:
        values = function(*args)
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
    spice = sys.modules.get("memsim.circuit.spice")
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


def init_worker(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the study process decides when to stop
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    single_blas_thread()


def single_blas_thread() -> None:
    """One BLAS thread per worker, kept (returns None, so Dask's client.run can call it)."""
    one_blas_thread()


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
