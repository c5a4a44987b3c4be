"""The task executor of the in silico lab: ``[fn(*args) for args in tasks]`` on Dask, in task order.

Sweeps, calibration surfaces, leave-one-study-out refits and the sensitivity analysis all hand
their work here. Schedulers (:func:`run_tasks`):

- ``"processes"`` (the default of the command line): a ``dask.distributed.LocalCluster`` of
  single-threaded worker processes. The model's vectorised RK4 makes many small NumPy calls whose
  Python overhead holds the GIL, so threads barely overlap; processes do, at the price of a
  start-up of a second or two.
- ``"threads"``: a ``LocalCluster`` inside this process (``processes=False``): starts in a fraction
  of a second; used by the tests and by ``sim replay`` (whose tasks are few and short).
- ``"synchronous"``: a plain loop, no Dask (debugging).
- anything else is the address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["run_tasks"]


@contextmanager
def _client(scheduler: str, workers: int | None) -> Iterator[Any]:
    from dask.distributed import Client, LocalCluster

    if scheduler in ("processes", "threads"):
        n = workers or max(1, min(os.cpu_count() or 1, 8))
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=scheduler == "processes",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    else:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()


def run_tasks(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = False,
    description: str = "simulating",
) -> list[Any]:
    """``[fn(*args) for args in tasks]``, computed on Dask, in task order.

    ``progress`` draws a rich progress bar on stderr (only on a terminal).
    """
    if not tasks:
        return []
    bar = _progress(progress, description, len(tasks))
    if scheduler == "synchronous":
        out = []
        with bar as advance:
            for args in tasks:
                out.append(fn(*args))
                advance()
        return out
    from dask.distributed import as_completed

    with _client(scheduler, workers) as client:
        futures = [client.submit(fn, *args, pure=False) for args in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        out = [None] * len(futures)
        with bar as advance:
            for future in as_completed(futures):
                out[index[future.key]] = future.result()
                advance()
    return out


class _Bar:
    def __init__(self, enabled: bool, description: str, total: int) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.description = description
        self.total = total

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._progress.__enter__()
        task = self._progress.add_task(self.description, total=self.total)
        return lambda: self._progress.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._progress.__exit__(None, None, None)


def _progress(enabled: bool, description: str, total: int) -> _Bar:
    return _Bar(enabled, description, total)
