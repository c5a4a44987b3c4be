"""Background jobs of the web app, kept in memory: a bounded registry and a per-client rate limit.

The in silico lab (:mod:`mscatlas.web.simulate`) runs each request as a job: a
``ThreadPoolExecutor`` owned by the app runs it, under a random unguessable id, and at most
``max_jobs`` jobs are kept (the oldest finished one is forgotten first, once its result has been
kept ``retention_s``; when none may be forgotten, :meth:`JobRegistry.submit` raises
:class:`RegistryFull`). The registry knows nothing about simulations: it runs whatever
``runner(spec, progress)`` it is given and keeps the ``(result, figure)`` pair it returns.

Jobs live in one process's memory: they do not survive a restart, and with several server
workers a job is known only to the worker that started it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RESULT_RETENTION_S",
    "ClientRateLimit",
    "Job",
    "JobRegistry",
    "ProgressFn",
    "RegistryFull",
    "Runner",
]

RESULT_RETENTION_S = 30 * 60  # a finished job's result stays retrievable at least this long

ProgressFn = Callable[[float, str], None]
Runner = Callable[[Any, ProgressFn], tuple[dict[str, Any], str]]


@dataclass
class Job:
    """One run: its request (``spec``, anything with ``to_dict()``), state and, once done, result."""

    id: str
    spec: Any
    created: float = field(default_factory=time.time)
    status: str = "queued"  # queued -> running -> done | failed
    progress: float = 0.0
    stage: str = "waiting for a free worker"
    result: dict[str, Any] | None = None
    svg: str | None = None
    error: str | None = None
    finished: float | None = None

    @property
    def over(self) -> bool:
        return self.status in ("done", "failed")

    def to_dict(self, *, with_result: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "progress": round(self.progress, 3),
            "stage": self.stage,
            "request": self.spec.to_dict(),
            "error": self.error,
        }
        if with_result:
            out["result"] = self.result
        return out


class RegistryFull(RuntimeError):
    """Every slot of the job registry holds a job that is running or whose result is still kept."""


class JobRegistry:
    """Background runs in a thread pool, with at most ``max_jobs`` jobs remembered.

    A finished job (done or failed) is kept for at least ``retention_s`` seconds after it
    finished; only then may a new job take its slot.
    """

    def __init__(
        self,
        runner: Runner,
        *,
        max_workers: int = 2,
        max_jobs: int = 64,
        retention_s: float = RESULT_RETENTION_S,
        thread_name_prefix: str = "mscatlas-job",
    ) -> None:
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.max_jobs = max_jobs
        self.retention_s = retention_s
        self.runner = runner
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def _expired(self, job: Job, now: float) -> bool:
        return job.over and job.finished is not None and now - job.finished >= self.retention_s

    def submit(self, spec: Any) -> Job:
        """Queue a run; raises :class:`RegistryFull` when no kept job may be forgotten yet."""
        with self._lock:
            now = time.time()
            while len(self._jobs) >= self.max_jobs:
                oldest = next((k for k, j in self._jobs.items() if self._expired(j, now)), None)
                if oldest is None:
                    raise RegistryFull(f"{len(self._jobs)} jobs are queued, running or keeping their results")
                del self._jobs[oldest]
            job = Job(secrets.token_urlsafe(16), spec)
            self._jobs[job.id] = job
        self.executor.submit(self._work, job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def __len__(self) -> int:
        return len(self._jobs)

    def _work(self, job: Job) -> None:
        def progress(fraction: float, stage: str) -> None:
            job.progress, job.stage = fraction, stage

        job.status, job.stage = "running", "starting"
        try:
            result, svg = self.runner(job.spec, progress)
        except Exception as exc:  # a failed run is shown on its page, never lost in a thread
            job.error = f"{type(exc).__name__}: {exc}"
            job.status, job.stage = "failed", "failed"
        else:
            job.result, job.svg = result, svg
            job.progress, job.stage, job.status = 1.0, "done", "done"
        job.finished = time.time()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class ClientRateLimit:
    """A token bucket per client address: ``per_minute`` requests a minute, bursts of as many.

    Kept in the memory of one server process (each worker of a deployment counts on its own).
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Take one request for ``client``: 0 when allowed, else the seconds until it would be."""
        rate = self.per_minute / 60.0
        now = self.clock()
        with self._lock:
            tokens, since = self._buckets.pop(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - since) * rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > 10_000:  # forget the least recent clients
                self._buckets.popitem(last=False)
        return wait
