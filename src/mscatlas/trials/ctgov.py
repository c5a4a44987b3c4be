"""A thin client for the ClinicalTrials.gov data API (version 2).

Two endpoints are used: ``/studies`` (a search, paged with ``pageToken``) and
``/studies/{nctId}`` (one record). The client adds what a long sync needs and nothing more,
most of it from :mod:`mscatlas._http` (shared with the literature clients of
:mod:`mscatlas.intake`):

- timeouts on every request;
- retries with exponential backoff and jitter on 429 and 5xx answers and on transport
  errors, waiting at least as long as a ``Retry-After`` header asks (up to a bound);
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

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from mscatlas._http import CachedHttpClient, HttpCacheMiss, HttpError, HttpStatusError, cache_key

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
# The registry publishes no request quota; robots.txt asks crawlers for one request a second.
DEFAULT_MIN_INTERVAL_S = 1.0


class CtgovError(HttpError):
    """The registry could not give an answer."""


class CtgovHTTPError(CtgovError, HttpStatusError):
    """The registry answered with an error status (after any retries)."""

    service = "ClinicalTrials.gov"


class CacheMiss(CtgovError, HttpCacheMiss):
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


class CtgovClient(CachedHttpClient):
    """Requests to the ClinicalTrials.gov v2 API with retries, a rate limit and a cache.

    Options are those of :class:`mscatlas._http.CachedHttpClient`; the rate limit defaults to
    one request a second.
    """

    cache_name = "ctgov"
    user_agent = "mscatlas (ClinicalTrials.gov API v2 client)"
    error_cls = CtgovError
    status_error_cls = CtgovHTTPError
    cache_miss_cls = CacheMiss

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
        **options: Any,
    ) -> None:
        super().__init__(base_url=base_url, min_interval_s=min_interval_s, **options)

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
        return self.get_body(path, params, _decode_json)


def _decode_json(response: httpx.Response) -> Any:
    return response.json()
