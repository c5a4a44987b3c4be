"""Clients for the literature sources: PubMed E-utilities and the Europe PMC REST API.

Both are :class:`mscatlas._http.CachedHttpClient` subclasses, so they share the retry policy
(tenacity: exponential backoff with jitter, a bounded Retry-After), the rate limit, the
on-disk cache and the offline mode with the ClinicalTrials.gov client.

- PubMed: ``esearch`` with the history server (``usehistory=y``) keeps the result set on
  NCBI's side as ``WebEnv`` + ``query_key``; ``efetch`` then pages through it with
  ``retstart``/``retmax`` and ``retmode=xml``. NCBI allows 3 requests a second, 10 with an
  API key (``NCBI_API_KEY``); the key is sent but never cached nor shown in messages.
  A :class:`PubMedPage` carries the history and the ``retstart`` of the next page, so an
  interrupted run resumes with :meth:`PubMedClient.iter_pages` ``(resume=...)``.
- Europe PMC: ``/search`` with ``format=json`` and ``resultType=core``, paged by
  ``cursorMark`` (start ``*``; the end is a page whose ``nextCursorMark`` is the cursor it was
  asked for, or an empty page). Each page names the cursor that fetched it and the next one.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from mscatlas._http import CachedHttpClient, HttpCacheMiss, HttpError, HttpStatusError
from mscatlas.intake.citation import Citation, IntakeError
from mscatlas.intake.readers import parse_pubmed_xml

__all__ = [
    "EUROPEPMC_URL",
    "EUTILS_URL",
    "EuropePmcClient",
    "EuropePmcPage",
    "PubMedClient",
    "PubMedHistory",
    "PubMedPage",
    "SourceCacheMiss",
    "SourceError",
    "SourceHTTPError",
]

EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
EUROPEPMC_URL = "https://www.ebi.ac.uk/europepmc/webservices/rest"
API_KEY_ENV = "NCBI_API_KEY"


class SourceError(HttpError):
    """A literature source could not give an answer."""


class SourceHTTPError(SourceError, HttpStatusError):
    service = "the literature source"


class SourceCacheMiss(SourceError, HttpCacheMiss):
    """Offline mode and the request is not in the cache."""


def _text_body(response: httpx.Response) -> str:
    return response.text


def _json_body(response: httpx.Response) -> Any:
    return response.json()


# ---------------------------------------------------------------- PubMed


@dataclass(frozen=True)
class PubMedHistory:
    """A result set kept on NCBI's history server."""

    query: str
    count: int
    webenv: str
    query_key: str


@dataclass(frozen=True)
class PubMedPage:
    citations: list[Citation]
    history: PubMedHistory
    retstart: int
    next_retstart: int | None
    from_cache: bool = False


class PubMedClient(CachedHttpClient):
    """NCBI E-utilities for PubMed: esearch on the history server, then efetch of PubMed XML."""

    cache_name = "pubmed"
    user_agent = "mscatlas (PubMed E-utilities client)"
    accept = "application/xml"
    error_cls = SourceError
    status_error_cls = SourceHTTPError
    cache_miss_cls = SourceCacheMiss
    hidden_params = ("api_key",)

    def __init__(
        self,
        *,
        base_url: str = EUTILS_URL,
        api_key: str | None = None,
        email: str | None = None,
        min_interval_s: float | None = None,
        **options: Any,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.email = email
        if min_interval_s is None:
            # NCBI's documented limits: 3 requests/s, or 10/s with an API key.
            min_interval_s = 1 / 10 if self.api_key else 1 / 3
        super().__init__(base_url=base_url, min_interval_s=min_interval_s, **options)

    def _params(self, **params: str) -> dict[str, str]:
        out = {"db": "pubmed", "tool": "mscatlas", **params}
        if self.email:
            out["email"] = self.email
        if self.api_key:
            out["api_key"] = self.api_key
        return out

    def esearch(self, query: str) -> PubMedHistory:
        """Run a search on the history server; the answer names the result set and its size."""
        body, _ = self.get_body(
            "/esearch.fcgi", self._params(term=query, usehistory="y", retmax="0"), _text_body
        )
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise SourceError(f"esearch for {query!r}: the answer is not XML ({exc})") from exc
        error = root.findtext("ERROR") or root.findtext("ErrorList/PhraseNotFound")
        count, webenv, key = root.findtext("Count"), root.findtext("WebEnv"), root.findtext("QueryKey")
        if error and not count:
            raise SourceError(f"esearch for {query!r}: PubMed says {error}")
        if count is None or not count.isdigit() or not webenv or not key:
            raise SourceError(f"esearch for {query!r}: the answer lacks Count, WebEnv or QueryKey")
        return PubMedHistory(query=query, count=int(count), webenv=webenv, query_key=key)

    def efetch(self, history: PubMedHistory, retstart: int, retmax: int) -> PubMedPage:
        """One page of PubMed XML from a history result set."""
        params = self._params(
            query_key=history.query_key,
            WebEnv=history.webenv,
            retstart=str(retstart),
            retmax=str(retmax),
            retmode="xml",
        )
        body, from_cache = self.get_body("/efetch.fcgi", params, _text_body)
        label = f"efetch {retstart}-{retstart + retmax - 1} of {history.query!r}"
        if "<ERROR>" in body[:2000]:
            message = re.sub(r"<[^>]+>", " ", body).split()
            raise SourceError(
                f"{label}: PubMed says {' '.join(message)} (the history WebEnv may have expired: "
                "search again)"
            )
        try:
            citations = parse_pubmed_xml(body, f"PubMed {label}") if "<PubmedArticle>" in body else []
        except IntakeError as exc:
            raise SourceError(f"{label}: {exc}") from exc
        following = retstart + retmax
        return PubMedPage(
            citations=citations,
            history=history,
            retstart=retstart,
            next_retstart=following if following < history.count and citations else None,
            from_cache=from_cache,
        )

    def iter_pages(
        self,
        query: str,
        *,
        page_size: int = 200,
        max_records: int | None = None,
        resume: tuple[PubMedHistory, int] | None = None,
    ) -> Iterator[PubMedPage]:
        """Pages of a search; ``resume=(history, retstart)`` continues an interrupted run."""
        if not 1 <= page_size <= 10000:
            raise ValueError("page_size must be between 1 and 10000 (efetch's retmax limit)")
        history, start = resume if resume is not None else (self.esearch(query), 0)
        limit = history.count if max_records is None else min(history.count, max_records)
        while start < limit:
            page = self.efetch(history, start, min(page_size, limit - start))
            yield page
            if page.next_retstart is None:
                return
            start = page.next_retstart

    def search(self, query: str, *, max_records: int | None = None, page_size: int = 200) -> list[Citation]:
        return [
            c
            for p in self.iter_pages(query, page_size=page_size, max_records=max_records)
            for c in p.citations
        ]


# ---------------------------------------------------------------- Europe PMC


@dataclass(frozen=True)
class EuropePmcPage:
    citations: list[Citation]
    cursor: str
    next_cursor: str | None
    hit_count: int | None
    skipped: list[str] = field(default_factory=list)  # results without a title or an identifier
    from_cache: bool = False


class EuropePmcClient(CachedHttpClient):
    """The Europe PMC REST search (JSON, core results), paged by cursorMark."""

    cache_name = "europepmc"
    user_agent = "mscatlas (Europe PMC REST client)"
    error_cls = SourceError
    status_error_cls = SourceHTTPError
    cache_miss_cls = SourceCacheMiss

    def __init__(self, *, base_url: str = EUROPEPMC_URL, min_interval_s: float = 0.2, **options: Any) -> None:
        # Europe PMC states no hard limit; it asks for moderate use. Five requests a second at most.
        super().__init__(base_url=base_url, min_interval_s=min_interval_s, **options)

    def fetch_page(self, query: str, cursor: str = "*", page_size: int = 100) -> EuropePmcPage:
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        params = {
            "query": query,
            "format": "json",
            "resultType": "core",
            "pageSize": str(page_size),
            "cursorMark": cursor,
        }
        data, from_cache = self.get_body("/search", params, _json_body)
        results = (data.get("resultList") or {}).get("result") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise SourceError(f"Europe PMC search {query!r} at cursor {cursor!r}: no resultList.result list")
        citations, skipped = [], []
        for index, result in enumerate(results, start=1):
            citation = europepmc_citation(result, f"Europe PMC {query!r} cursor {cursor} result {index}")
            if citation is None:
                skipped.append(str(result.get("id") if isinstance(result, dict) else index))
            else:
                citations.append(citation)
        following = data.get("nextCursorMark")
        return EuropePmcPage(
            citations=citations,
            cursor=cursor,
            next_cursor=following if following and following != cursor and results else None,
            hit_count=data.get("hitCount") if isinstance(data.get("hitCount"), int) else None,
            skipped=skipped,
            from_cache=from_cache,
        )

    def iter_pages(
        self, query: str, *, cursor: str = "*", page_size: int = 100, max_records: int | None = None
    ) -> Iterator[EuropePmcPage]:
        """Pages from ``cursor`` (``*``: the start) to the end; pass a page's ``next_cursor`` to resume."""
        seen = 0
        while True:
            size = page_size if max_records is None else min(page_size, max_records - seen)
            if size <= 0:
                return
            page = self.fetch_page(query, cursor, size)
            if not page.citations and not page.skipped:
                return
            yield page
            seen += len(page.citations) + len(page.skipped)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def search(self, query: str, *, max_records: int | None = None, page_size: int = 100) -> list[Citation]:
        return [
            c
            for p in self.iter_pages(query, page_size=page_size, max_records=max_records)
            for c in p.citations
        ]


def europepmc_citation(result: Any, origin: str) -> Citation | None:
    """A Citation from one Europe PMC core result, or None when it has no title or identifier."""
    if not isinstance(result, dict):
        return None
    authors = [
        a.get("fullName") or " ".join(filter(None, (a.get("lastName"), a.get("initials"))))
        for a in (result.get("authorList") or {}).get("author", [])
        if isinstance(a, dict)
    ]
    if not authors and result.get("authorString"):
        authors = [a.strip() for a in str(result["authorString"]).rstrip(".").split(",")]
    abstract = result.get("abstractText")
    if abstract:
        abstract = re.sub(r"<h4>(.*?)</h4>", lambda m: f" {m.group(1).upper()}: ", abstract)
        abstract = re.sub(r"<[^>]+>", " ", abstract)
    journal = ((result.get("journalInfo") or {}).get("journal") or {}).get("title")
    year = result.get("pubYear") or (result.get("journalInfo") or {}).get("yearOfPublication")
    citation = Citation(
        title=re.sub(r"<[^>]+>", "", str(result.get("title") or "")),
        abstract=abstract,
        authors=[a for a in authors if a],
        year=int(year) if str(year or "").isdigit() else None,
        journal=journal,
        pmid=result.get("pmid"),
        pmcid=result.get("pmcid"),
        doi=result.get("doi"),
        publication_types=list((result.get("pubTypeList") or {}).get("pubType", [])),
        origin=origin,
    )
    return citation if citation.title and citation.identifiers else None
