"""A thin client for the ClinicalTrials.gov data API (version 2).

Two endpoints are used: ``/studies`` (a search, paged with ``pageToken``) and
``/studies/{nctId}`` (one record). The client adds what a long sync needs and nothing more:

- timeouts on every request;
- retries with exponential backoff on 429 and 5xx answers and on transport errors, waiting
  at least as long as a ``Retry-After`` header asks;
- a rate limit (a minimum interval between requests to the server);
- an on-disk cache of successful answers, keyed by URL and parameters, in the user cache
  directory unless another directory is given;
- an offline mode that answers from the cache only and raises :class:`CacheMiss` otherwise;
- resumable paging: every page carries the token that fetched it and the token of the next
  one, and :meth:`CtgovClient.iter_pages` starts from any token. The API may hand out a
  ``nextPageToken`` after a page that happens to be exactly full although nothing follows,
  so paging stops at the first empty page as well as at a missing token.

Clock and sleep are injectable, so tests run instantly against ``httpx.MockTransport``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import platformdirs

__all__ = [
    "DEFAULT_BASE_URL",
    "CacheMiss",
    "CtgovClient",
    "CtgovError",
    "CtgovHTTPError",
    "StudyPage",
    "cache_key",
    "search_params",
]

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The registry publishes no request quota; robots.txt asks crawlers for one request a second.
DEFAULT_MIN_INTERVAL_S = 1.0


class CtgovError(RuntimeError):
    """The registry could not give an answer."""


class CtgovHTTPError(CtgovError):
    """The registry answered with an error status (after any retries)."""

    def __init__(self, status_code: int, url: str, detail: str = "") -> None:
        self.status_code = status_code
        self.url = url
        super().__init__(
            f"ClinicalTrials.gov answered {status_code} for {url}" + (f": {detail}" if detail else "")
        )


class CacheMiss(CtgovError):
    """Offline mode and the request is not in the cache."""


@dataclass(frozen=True)
class StudyPage:
    """One page of a search: its studies, the token that fetched it and the next one."""

    studies: list[dict[str, Any]]
    page_token: str | None
    next_page_token: str | None
    total_count: int | None = None
    from_cache: bool = False


def search_params(
    *,
    cond: str | None = None,
    intr: str | None = None,
    term: str | None = None,
    overall_status: Sequence[str] | str | None = None,
    advanced: str | None = None,
    fields: Sequence[str] | str | None = None,
    page_size: int = 100,
) -> dict[str, str]:
    """The query parameters of a ``/studies`` search, in the API's own names."""
    if not 1 <= page_size <= 1000:
        raise ValueError(f"page_size must be between 1 and 1000, not {page_size}")
    params: dict[str, str] = {"format": "json", "pageSize": str(page_size)}
    for name, value in (("query.cond", cond), ("query.intr", intr), ("query.term", term)):
        if value:
            params[name] = value
    if overall_status:
        statuses = [overall_status] if isinstance(overall_status, str) else list(overall_status)
        params["filter.overallStatus"] = ",".join(statuses)
    if advanced:
        params["filter.advanced"] = advanced
    if fields:
        params["fields"] = fields if isinstance(fields, str) else ",".join(fields)
    return params


class CtgovClient:
    """Requests to the ClinicalTrials.gov v2 API with retries, a rate limit and a cache.

    ``cache_dir=None`` uses the user cache directory; ``use_cache=False`` turns the cache off
    (not allowed offline). ``max_age_s`` is how long a cached answer serves an online request
    (None: forever; 0: always refetch, but still write the cache for later offline use).
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        max_age_s: float | None = 24 * 3600,
        offline: bool = False,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if offline and not use_cache:
            raise ValueError("offline mode needs the cache")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.min_interval_s = min_interval_s
        self.offline = offline
        self.max_age_s = max_age_s
        self.cache_dir: Path | None = None
        if use_cache:
            self.cache_dir = (
                Path(cache_dir or platformdirs.user_cache_dir("mscatlas", appauthor=False)) / "ctgov"
            )
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._last_request: float | None = None
        self.requests_sent = 0  # requests that reached the transport (retries included)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            headers={
                "Accept": "application/json",
                "User-Agent": "mscatlas (ClinicalTrials.gov API v2 client)",
            },
            follow_redirects=True,
        )

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CtgovClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ endpoints

    def get_study(self, nct_id: str, *, fields: Sequence[str] | str | None = None) -> dict[str, Any]:
        """One study record (``/studies/{nctId}``)."""
        params: dict[str, str] = {"format": "json"}
        if fields:
            params["fields"] = fields if isinstance(fields, str) else ",".join(fields)
        data, _ = self.get_json(f"/studies/{nct_id.strip().upper()}", params)
        if not isinstance(data, dict):
            raise CtgovError(f"study {nct_id}: the answer is not a JSON object")
        return data

    def fetch_page(self, params: Mapping[str, str], page_token: str | None = None) -> StudyPage:
        """One page of a ``/studies`` search; ``page_token`` continues an earlier search."""
        query = dict(params)
        query.pop("pageToken", None)
        if page_token:
            query["pageToken"] = page_token
        elif "countTotal" not in query:
            query["countTotal"] = "true"  # the first page says how many studies match
        data, from_cache = self.get_json("/studies", query)
        if not isinstance(data, dict) or not isinstance(data.get("studies", []), list):
            raise CtgovError("a /studies answer must be an object with a 'studies' list")
        total = data.get("totalCount")
        return StudyPage(
            studies=list(data.get("studies") or []),
            page_token=page_token,
            next_page_token=data.get("nextPageToken") or None,
            total_count=total if isinstance(total, int) else None,
            from_cache=from_cache,
        )

    def iter_pages(
        self, params: Mapping[str, str], *, page_token: str | None = None, max_pages: int | None = None
    ) -> Iterator[StudyPage]:
        """Pages of a search from ``page_token`` (the first page when None) to the end.

        Ends after a page without ``nextPageToken``, or at an empty page (which is not
        yielded). To resume an interrupted sync, pass the ``next_page_token`` of the last page
        that was processed.
        """
        token = page_token
        seen: set[str] = set()
        pages = 0
        while max_pages is None or pages < max_pages:
            page = self.fetch_page(params, token)
            if not page.studies:
                return
            pages += 1
            yield page
            token = page.next_page_token
            if token is None:
                return
            if token in seen:
                raise CtgovError(f"the API handed out page token {token!r} twice; stopping to avoid a loop")
            seen.add(token)

    def iter_studies(
        self, params: Mapping[str, str], *, page_token: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every study of a search, page after page."""
        for page in self.iter_pages(params, page_token=page_token):
            yield from page.studies

    # ------------------------------------------------------------ transport

    def get_json(self, path: str, params: Mapping[str, str]) -> tuple[Any, bool]:
        """The decoded JSON answer to GET base_url+path?params, and whether it came from the cache."""
        url = self.base_url + path
        key = cache_key(url, params)
        cached = self._cache_read(key, fresh_only=not self.offline)
        if cached is not None:
            return cached, True
        if self.offline:
            where = self.cache_dir or "(no cache)"
            raise CacheMiss(
                f"offline: no cached answer for {_describe(url, params)} in {where}; "
                "run once online to fill it"
            )
        response = self._send(url, params)
        try:
            data = response.json()
        except ValueError as exc:
            raise CtgovError(f"{_describe(url, params)}: the answer is not JSON ({exc})") from exc
        self._cache_write(key, url, params, data)
        return data, False

    def _send(self, url: str, params: Mapping[str, str]) -> httpx.Response:
        attempt = 0
        while True:
            self._respect_rate_limit()
            self.requests_sent += 1
            try:
                response = self._http.get(url, params=dict(params))
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise CtgovError(f"{_describe(url, params)}: {type(exc).__name__}: {exc}") from exc
                self._sleep(self._backoff(attempt, None))
                attempt += 1
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                self._sleep(self._backoff(attempt, response.headers.get("Retry-After")))
                attempt += 1
                continue
            if response.status_code >= 400:
                raise CtgovHTTPError(response.status_code, _describe(url, params), response.text[:200])
            return response

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        wait = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        asked = _retry_after_seconds(retry_after, self._wall_clock())
        if asked is not None:
            wait = max(wait, asked)  # never sooner than the server asks, even past max_backoff_s
        return wait

    def _respect_rate_limit(self) -> None:
        now = self._clock()
        if self._last_request is not None:
            wait = self.min_interval_s - (now - self._last_request)
            if wait > 0:
                self._sleep(wait)
                now = self._clock()
        self._last_request = now

    # ------------------------------------------------------------ cache

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _cache_read(self, key: str, *, fresh_only: bool) -> Any | None:
        path = self._cache_path(key)
        if path is None or not path.exists():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # a damaged entry is a miss; the next online answer replaces it
        age = self._wall_clock() - float(entry.get("fetched_at", 0))
        if fresh_only and self.max_age_s is not None and age > self.max_age_s:
            return None
        return entry.get("body")

    def _cache_write(self, key: str, url: str, params: Mapping[str, str], body: Any) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "url": url,
            "params": dict(sorted(params.items())),
            "fetched_at": self._wall_clock(),
            "body": body,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        tmp.replace(path)  # a crash never leaves a half-written entry


def cache_key(url: str, params: Mapping[str, str]) -> str:
    """A stable key for a request: the URL and its parameters in sorted order."""
    canonical = json.dumps([url, sorted((str(k), str(v)) for k, v in params.items())])
    return hashlib.sha256(canonical.encode()).hexdigest()


def _describe(url: str, params: Mapping[str, str]) -> str:
    shown = {k: v for k, v in params.items() if k != "format"}
    return url + (f" {json.dumps(shown, sort_keys=True)}" if shown else "")


def _retry_after_seconds(value: str | None, now: float) -> float | None:
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
