"""Executors: a local process pool (workers that never re-run the calling script) or a Dask
cluster; each computes every point as ``compute(point, options)`` in a worker (a config
study's :func:`~memsim.study.metrics.compute_row`, a script's
:func:`~memsim.study.worker.compute_task`) and calls ``on_row`` with it."""
from __future__ import annotations

import contextlib
import os
import sys
import time

from ..errors import MemsimError
from .worker import init_worker, single_blas_thread


# ---------------------------------------------------------------------------------------------
# executors
# ---------------------------------------------------------------------------------------------
def run_local(points, options, workers, on_row, compute):
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_worker, initargs=(os.getpid(),))
    futures = {}
    finished = False
    try:
        with _main_not_reimported():  # the workers start on the first submits
            futures = {pool.submit(compute, point, options): point for point in points}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    values = future.result()
                except BrokenProcessPool:
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
    worker.  The workers run memsim's own functions on plain dicts and need nothing from
    ``__main__`` (a script's task function is loaded from its file under another name, so
    its ``if __name__ == "__main__":`` part does not run), so it is hidden from
    multiprocessing while they start.
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


def run_dask(points, options, address, workers, on_row, compute):
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
        client.run(single_blas_thread)
        for point in points:
            futures[client.submit(compute, point, options, pure=False)] = point
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
