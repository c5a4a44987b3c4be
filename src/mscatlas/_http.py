"""What every client of a public web service needs, in one place: ClinicalTrials.gov
(:mod:`mscatlas.trials.ctgov`), PubMed E-utilities and Europe PMC (:mod:`mscatlas.intake`).

- One retry policy (:class:`RetryPolicy`, run by tenacity): retries on 429 and 5xx answers
  and on transport errors, with exponential backoff plus random jitter, waiting at least as
  long as a ``Retry-After`` header asks, but never longer than ``max_retry_after_s``: a server
  that asks for more is reported, not waited for.
- A rate limit (a minimum interval between requests to one server).
- An on-disk cache of successful answers keyed by URL and parameters, written atomically, with
  a maximum age for online use and an offline mode that answers from it only.

Clock, sleep and the jitter's random generator are injectable, so tests run instantly and
deterministically against ``httpx.MockTransport``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import platformdirs
from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt

__all__ = [
    "RETRY_STATUSES",
    "CachedHttpClient",
    "HttpCacheMiss",
    "HttpError",
    "HttpStatusError",
    "ResponseCache",
    "RetryPolicy",
    "cache_key",
    "describe_request",
    "retry_after_seconds",
    "send_with_retries",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HttpError(RuntimeError):
    """A service could not give an answer."""


class HttpStatusError(HttpError):
    """A service answered with an error status (after any retries)."""

    service = "the server"

    def __init__(self, status_code: int, url: str, detail: str = "") -> None:
        self.status_code = status_code
        self.url = url
        super().__init__(
            f"{self.service} answered {status_code} for {url}" + (f": {detail}" if detail else "")
        )


class HttpCacheMiss(HttpError):
    """Offline mode and the request is not in the cache."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. The n-th wait (from 0) is
    ``min(max_backoff_s, backoff_s * 2**n) + uniform(0, jitter_s)``, raised to what a
    ``Retry-After`` header asks when that is longer; a header asking for more than
    ``max_retry_after_s`` stops the retries with an error."""

    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    jitter_s: float = 0.5
    max_retry_after_s: float = 300.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.jitter_s < 0 or self.backoff_s < 0:
            raise ValueError("backoff_s and jitter_s must be >= 0")


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):  # delta-seconds
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def send_with_retries(
    send: Callable[[], httpx.Response],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    wall_clock: Callable[[], float],
    rng: random.Random,
    describe: str,
    error_cls: type[HttpError] = HttpError,
) -> httpx.Response:
    """Call ``send`` until it gives an answer that is not retryable, or the retries run out.

    Returns the last response (which may still carry an error status: the caller decides);
    raises ``error_cls`` when the last attempt failed in transport or a Retry-After is too long.
    """

    def wait(state: RetryCallState) -> float:
        attempt = state.attempt_number - 1
        base = min(policy.max_backoff_s, policy.backoff_s * 2**attempt)
        if policy.jitter_s:
            base += rng.uniform(0.0, policy.jitter_s)
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            header = outcome.result().headers.get("Retry-After")
            asked = retry_after_seconds(header, wall_clock())
            if asked is not None:
                if asked > policy.max_retry_after_s:
                    raise error_cls(
                        f"{describe}: the server asks to wait {asked:.0f} s (Retry-After: {header}), "
                        f"more than the {policy.max_retry_after_s:.0f} s this client waits; try later"
                    )
                base = max(base, asked)  # never sooner than the server asks
        return base

    def give_up(state: RetryCallState) -> httpx.Response:
        outcome = state.outcome
        assert outcome is not None
        if outcome.failed:
            exc = outcome.exception()
            raise error_cls(f"{describe}: {type(exc).__name__}: {exc}") from exc
        return outcome.result()

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=wait,
        sleep=sleep,
        retry=retry_if_exception_type(httpx.TransportError)
        | retry_if_result(lambda r: r.status_code in policy.statuses),
        retry_error_callback=give_up,
    )
    return retrying(send)


def cache_key(url: str, params: Mapping[str, str]) -> str:
    """A stable key for a request: the URL and its parameters in sorted order."""
    canonical = json.dumps([url, sorted((str(k), str(v)) for k, v in params.items())])
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe_request(url: str, params: Mapping[str, str], hidden: tuple[str, ...] = ()) -> str:
    """The URL and its parameters as an error message shows them (secrets left out)."""
    shown = {k: v for k, v in params.items() if k not in hidden}
    return url + (f" {json.dumps(shown, sort_keys=True)}" if shown else "")


class ResponseCache:
    """Answers on disk, one JSON file per request: ``{url, params, fetched_at, body}``.

    A damaged entry reads as a miss (the next online answer replaces it); writes go through a
    temporary file, so a crash never leaves half an entry.
    """

    def __init__(self, directory: Path, *, max_age_s: float | None, wall_clock: Callable[[], float]) -> None:
        self.directory = directory
        self.max_age_s = max_age_s
        self._wall_clock = wall_clock

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def read(self, key: str, *, fresh_only: bool) -> Any | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        age = self._wall_clock() - float(entry.get("fetched_at", 0))
        if fresh_only and self.max_age_s is not None and age > self.max_age_s:
            return None
        return entry.get("body")

    def write(self, key: str, url: str, params: Mapping[str, str], body: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "url": url,
            "params": dict(sorted(params.items())),
            "fetched_at": self._wall_clock(),
            "body": body,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        tmp.replace(path)


class CachedHttpClient:
    """GET requests with the shared retry policy, a rate limit, an on-disk cache and offline mode.

    Subclasses name their service (``cache_name``, the error classes) and their endpoints.
    ``cache_dir=None`` uses the user cache directory; ``use_cache=False`` turns the cache off
    (not allowed offline). ``max_age_s`` is how long a cached answer serves an online request
    (None: forever; 0: always refetch, but still write the cache for later offline use).
    Parameters named in ``hidden_params`` (API keys) are left out of cache keys and messages.
    """

    cache_name = "http"
    user_agent = "mscatlas"
    accept = "application/json"
    error_cls: type[HttpError] = HttpError
    status_error_cls: type[HttpStatusError] = HttpStatusError
    cache_miss_cls: type[HttpError] = HttpCacheMiss
    hidden_params: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        base_url: str,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        jitter_s: float = 0.5,
        max_retry_after_s: float = 300.0,
        min_interval_s: float = 1.0,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        max_age_s: float | None = 24 * 3600,
        offline: bool = False,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        if offline and not use_cache:
            raise ValueError("offline mode needs the cache")
        self.base_url = base_url.rstrip("/")
        self.policy = RetryPolicy(
            max_retries=max_retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            jitter_s=jitter_s,
            max_retry_after_s=max_retry_after_s,
        )
        self.min_interval_s = min_interval_s
        self.offline = offline
        self.cache: ResponseCache | None = None
        if use_cache:
            root = Path(cache_dir or platformdirs.user_cache_dir("mscatlas", appauthor=False))
            self.cache = ResponseCache(root / self.cache_name, max_age_s=max_age_s, wall_clock=wall_clock)
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = random.Random(seed)
        self._last_request: float | None = None
        self.requests_sent = 0  # requests that reached the transport (retries included)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            headers={"Accept": self.accept, "User-Agent": self.user_agent},
            follow_redirects=True,
        )

    @property
    def cache_dir(self) -> Path | None:
        return self.cache.directory if self.cache else None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CachedHttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def describe(self, url: str, params: Mapping[str, str]) -> str:
        return describe_request(url, params, ("format", *self.hidden_params))

    def get_body(
        self, path: str, params: Mapping[str, str], decode: Callable[[httpx.Response], Any]
    ) -> tuple[Any, bool]:
        """``decode(response)`` for GET base_url+path?params, and whether it came from the cache.

        ``decode`` turns a response into what the cache keeps (JSON data or text); it raises
        ValueError on an answer it cannot read, which becomes ``error_cls`` naming the request.
        """
        url = self.base_url + path
        keyed = {k: v for k, v in params.items() if k not in self.hidden_params}
        key = cache_key(url, keyed)
        if self.cache is not None:
            cached = self.cache.read(key, fresh_only=not self.offline)
            if cached is not None:
                return cached, True
        if self.offline:
            where = self.cache_dir or "(no cache)"
            raise self.cache_miss_cls(
                f"offline: no cached answer for {self.describe(url, params)} in {where}; "
                "run once online to fill it"
            )
        response = self.send(url, params)
        try:
            body = decode(response)
        except ValueError as exc:
            raise self.error_cls(f"{self.describe(url, params)}: the answer cannot be read ({exc})") from exc
        if self.cache is not None:
            self.cache.write(key, url, keyed, body)
        return body, False

    def send(self, url: str, params: Mapping[str, str]) -> httpx.Response:
        """One GET with the rate limit and the retry policy; an error status raises."""

        def attempt() -> httpx.Response:
            self._respect_rate_limit()
            self.requests_sent += 1
            return self._http.get(url, params=dict(params))

        described = self.describe(url, params)
        response = send_with_retries(
            attempt,
            self.policy,
            sleep=self._sleep,
            wall_clock=self._wall_clock,
            rng=self._rng,
            describe=described,
            error_cls=self.error_cls,
        )
        if response.status_code >= 400:
            raise self.status_error_cls(response.status_code, described, response.text[:200])
        return response

    def _respect_rate_limit(self) -> None:
        now = self._clock()
        if self._last_request is not None:
            wait = self.min_interval_s - (now - self._last_request)
            if wait > 0:
                self._sleep(wait)
                now = self._clock()
        self._last_request = now
