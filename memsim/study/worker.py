"""One point, computed in a worker process, and how a worker stops: SIGTERM from the study
process (unwind, kill ngspice, remove its folder, exit), or the study process gone (SIGKILL)."""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time



# ---------------------------------------------------------------------------------------------
# one point (runs in a worker)
# ---------------------------------------------------------------------------------------------
_BUSY = False
_STOPPING = False
#: Wall time of a point (s): reported in <name>.timings.csv, never in the results file (it
#: differs from run to run, and the results must not).
SECONDS = "_seconds"


def compute_row(point: dict, options: dict) -> dict:
    """Compute one point of a config study; returns its result columns, or {"error": message}
    if it failed."""
    from .metrics import METRIC_FUNCTIONS

    return _compute(METRIC_FUNCTIONS[point["metric"]], point, options)


def compute_task(point: dict, task) -> dict:
    """Compute one point of a script's experiment (:mod:`memsim.study.tasks`): ``task`` is the
    reference of its function; returns the values it returned, or {"error": message}."""
    from .tasks import call_task

    return _compute(call_task, task, point)


def _compute(function, *args) -> dict:
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
    from ..threads import one_blas_thread

    one_blas_thread()
