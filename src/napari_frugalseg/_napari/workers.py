"""Background work for the plugin: a generator job in a superqt thread worker, its failures
reported as one exception type, and the interpreter tuned for napari while it runs; and files
read in a thread before their contents reach the layers.

(Not napari's ``create_worker``: it also lists each worker in the window's task statuses,
which are never removed, so every finished run would keep its worker, generator and trainer
alive, a few MiB per Train / Stop.)
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

from superqt.utils import create_worker

from ..core.errors import FrugalsegError


class WorkFailed(Exception):
    """An unexpected error in a worker, carried to the GUI thread."""


def start_worker(job, on_yield: Callable, on_error: Callable, on_finished: Callable):
    """Run the generator function ``job`` in a thread worker and return the worker. Its yields
    go to ``on_yield``, a failure to ``on_error`` (FrugalsegError, else WorkFailed), and when it
    has ended ``on_finished(worker, result)`` runs (result None when it returned nothing), all
    on the GUI thread."""

    def guarded():
        # the thread pool swallows a RuntimeError (as "worker deleted"), which would hide
        # e.g. CUDA out-of-memory: report every failure as WorkFailed instead
        try:
            return (yield from job())
        except FrugalsegError:
            raise
        except Exception as exc:
            raise WorkFailed(f"{type(exc).__name__}: {exc}") from exc

    worker = create_worker(guarded, _ignore_errors=True)
    returned: list = []  # handed over when the work has ended, so that a result means idle
    switch_interval = sys.getswitchinterval()

    def finished() -> None:
        gc.unfreeze()
        sys.setswitchinterval(switch_interval)
        # the worker, still in the thread pool, keeps no result
        on_finished(worker, returned.pop() if returned else None)

    worker.yielded.connect(on_yield)
    worker.returned.connect(returned.append)
    worker.errored.connect(on_error)
    worker.finished.connect(finished)
    # napari's heap is large: a full garbage collection triggered by our allocations would
    # block every thread for ~0.3 s. Objects that exist now are not scanned until the work
    # ends (then they are handed back to the collector).
    gc.freeze()
    # the GIL changes hands every 5 ms by default: each time napari's drawing lets it go, the
    # worker may keep it that long; 1 ms keeps redraws short while we work
    sys.setswitchinterval(0.001)
    worker.start()
    return worker


def read_in_background(read: Callable[[], Any], apply: Callable[[Any], None],
                       fail: Callable[[BaseException], None], done: Callable[[Any], None]):
    """Run ``read()`` (files only, never a layer) in a thread and return its worker; then, on
    the GUI thread, ``done(worker)`` and ``apply(what read returned)``. A failure of either goes
    to ``fail``."""
    worker = create_worker(read, _ignore_errors=True)

    def finish(result: Any = None, error: BaseException | None = None) -> None:
        done(worker)
        if error is None:
            try:
                apply(result)
            except Exception as exc:  # said, as a failure of work in a worker is
                error = exc
        if error is not None:
            fail(error)

    worker.returned.connect(finish)
    worker.errored.connect(lambda exc: finish(error=exc))
    worker.start()
    return worker
