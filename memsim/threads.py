"""BLAS threads: memsim's parallelism is its own (one worker per core, Numba kernels), so the
BLAS under numpy and scipy is held to one thread where it would only compete."""
from __future__ import annotations

import contextlib

_CONTROLLER = []


def one_blas_thread():
    """Limit BLAS to one thread now; returns a context manager that restores the limit on exit
    (a no-op when threadpoolctl, which comes with scikit-learn, is missing).

    Why: the solver's block sweep makes a few LAPACK calls per array row on C x C blocks; with a
    second BLAS thread they are at best a little faster, and on a machine whose other core is
    busy, OpenBLAS's waiting threads made them several times slower (docs/studies.md, "Workers
    and BLAS threads").  Study workers call it once at start-up and keep the limit (the pool
    has one worker per core).
    """
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
            _CONTROLLER.append(ThreadpoolController())
        except ImportError:  # pragma: no cover - comes with scikit-learn
            _CONTROLLER.append(None)
    controller = _CONTROLLER[0]
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")
