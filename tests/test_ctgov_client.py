"""The ClinicalTrials.gov v2 client against recorded answers (httpx.MockTransport, no network)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mscatlas._http import CachedHttpClient
from mscatlas.intake.sources import EuropePmcClient, PubMedClient
from mscatlas.trials.ctgov import CacheMiss, CtgovClient, CtgovError, CtgovHTTPError, search_params

CTGOV = Path(__file__).parent / "data" / "ctgov"


def _recorded(name: str) -> dict:
    return json.loads((CTGOV / name).read_text(encoding="utf-8"))


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _client(
    handler: Callable[[httpx.Request], httpx.Response], tmp_path: Path, **kwargs: object
) -> tuple[CtgovClient, FakeTime]:
    fake = FakeTime()
    options: dict = {
        "transport": httpx.MockTransport(handler),
        "cache_dir": tmp_path / "cache",
        "sleep": fake.sleep,
        "clock": fake.clock,
        "wall_clock": fake.clock,
        "min_interval_s": 0.0,
        "jitter_s": 0.0,  # exact waits; the jitter has its own test below
    }
    options.update(kwargs)
    return CtgovClient(**options), fake


def _paged_handler(calls: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    pages = {
        None: "page1.json",
        "TOKEN-PAGE-2": "page2.json",
        "TOKEN-PAGE-3": "page3_empty.json",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        assert request.url.path == "/api/v2/studies"
        token = request.url.params.get("pageToken")
        return httpx.Response(200, json=_recorded(pages[token]))

    return handler


def test_paging_stops_on_an_empty_page_after_a_full_one(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []
    client, _ = _client(_paged_handler(calls), tmp_path)
    params = search_params(
        term="mesenchymal", cond="cancer", overall_status=["COMPLETED", "RECRUITING"], page_size=2
    )
    pages = list(client.iter_pages(params))
    # Page 2 is exactly full and still names a next page; the third request finds it empty.
    assert [len(p.studies) for p in pages] == [2, 2]
    assert pages[0].total_count == 4
    assert pages[1].next_page_token == "TOKEN-PAGE-3"
    assert len(calls) == 3
    first = calls[0].url.params
    assert first["query.term"] == "mesenchymal"
    assert first["query.cond"] == "cancer"
    assert first["filter.overallStatus"] == "COMPLETED,RECRUITING"
    assert first["pageSize"] == "2"
    assert "pageToken" not in first
    assert calls[1].url.params["pageToken"] == "TOKEN-PAGE-2"
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for s in client.iter_studies(params)]
    assert ids == ["NCT90000001", "NCT90000002", "NCT90000003", "NCT90000004"]


def test_paging_resumes_from_a_token(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []
    client, _ = _client(_paged_handler(calls), tmp_path)
    pages = list(client.iter_pages(search_params(term="msc", page_size=2), page_token="TOKEN-PAGE-2"))
    assert [p.page_token for p in pages] == ["TOKEN-PAGE-2"]
    assert calls[0].url.params["pageToken"] == "TOKEN-PAGE-2"


def test_a_repeated_page_token_stops_the_loop(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"studies": [{"protocolSection": {}}], "nextPageToken": "SAME"})

    client, _ = _client(handler, tmp_path, use_cache=False)
    with pytest.raises(CtgovError, match="twice"):
        list(client.iter_pages(search_params(term="x")))


def test_429_then_success_waits_as_retry_after_asks(tmp_path: Path) -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"),
        httpx.Response(503, text="busy"),
        httpx.Response(200, json=_recorded("withdrawn.json")),
    ]
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answers[len(calls) - 1]

    client, fake = _client(handler, tmp_path, backoff_s=0.5)
    study = client.get_study("nct90000005")
    assert study["protocolSection"]["identificationModule"]["nctId"] == "NCT90000005"
    assert calls[0].url.path == "/api/v2/studies/NCT90000005"
    assert len(calls) == 3
    # First wait: Retry-After (7 s) beats the 0.5 s backoff; second: exponential backoff 1.0 s.
    assert fake.sleeps == [7.0, 1.0]


def test_retry_after_as_an_http_date(tmp_path: Path) -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "Thu, 01 Jan 1970 00:17:00 GMT"}),  # epoch 1020
        httpx.Response(200, json={"studies": []}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    client, fake = _client(handler, tmp_path, backoff_s=0.1)  # the fake clock starts at 1000
    assert list(client.iter_pages(search_params(term="x"))) == []
    assert fake.sleeps == [pytest.approx(20.0)]


def test_persistent_5xx_gives_up_with_the_status(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    client, fake = _client(handler, tmp_path, max_retries=2, backoff_s=1.0)
    with pytest.raises(CtgovHTTPError) as info:
        client.get_study("NCT90000001")
    assert info.value.status_code == 502
    assert fake.sleeps == [1.0, 2.0]
    assert client.requests_sent == 3


def test_404_is_not_retried(tmp_path: Path) -> None:
    client, fake = _client(lambda r: httpx.Response(404, text="not found"), tmp_path)
    with pytest.raises(CtgovHTTPError, match="404"):
        client.get_study("NCT00000000")
    assert client.requests_sent == 1 and fake.sleeps == []


def test_transport_errors_are_retried(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectTimeout("timed out", request=request)
        return httpx.Response(200, json=_recorded("withdrawn.json"))

    client, fake = _client(handler, tmp_path, backoff_s=2.0)
    assert client.get_study("NCT90000005")["hasResults"] is False
    assert fake.sleeps == [2.0]


def test_rate_limit_spaces_requests(tmp_path: Path) -> None:
    client, fake = _client(_paged_handler([]), tmp_path, min_interval_s=1.5, use_cache=False)
    list(client.iter_pages(search_params(term="x", page_size=2)))
    # Three requests, no time passing between them otherwise: two waits of the full interval.
    assert fake.sleeps == [1.5, 1.5]


def test_cache_serves_repeats_and_offline_mode(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []
    client, fake = _client(_paged_handler(calls), tmp_path, max_age_s=3600)
    params = search_params(term="msc", page_size=2)
    first = list(client.iter_pages(params))
    assert len(calls) == 3
    again = list(client.iter_pages(params))
    assert len(calls) == 3  # all three answers came from the cache
    assert all(p.from_cache for p in again)
    assert [p.studies for p in again] == [p.studies for p in first]
    # Past max_age an online client asks again.
    fake.now += 7200
    list(client.iter_pages(params))
    assert len(calls) == 6

    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError("offline mode must not send requests")

    offline, _ = _client(no_network, tmp_path, offline=True)
    assert [len(p.studies) for p in offline.iter_pages(params)] == [2, 2]  # stale entries still serve
    with pytest.raises(CacheMiss, match=r"offline: no cached answer .*query.cond"):
        list(offline.iter_pages(search_params(cond="lymphoma")))


def test_offline_needs_the_cache() -> None:
    with pytest.raises(ValueError, match="cache"):
        CtgovClient(offline=True, use_cache=False)


def test_search_params_checks_page_size() -> None:
    assert search_params(advanced="AREA[Phase]PHASE1", fields=["NCTId", "OverallStatus"]) == {
        "format": "json",
        "pageSize": "100",
        "filter.advanced": "AREA[Phase]PHASE1",
        "fields": "NCTId,OverallStatus",
    }
    with pytest.raises(ValueError):
        search_params(page_size=0)


# ------------------------------------------------------------------ the shared retry policy


def test_every_web_client_sends_through_the_shared_retry_helper() -> None:
    for cls in (CtgovClient, PubMedClient, EuropePmcClient):
        assert issubclass(cls, CachedHttpClient)
        assert cls.send is CachedHttpClient.send, cls  # no client retries by hand
        assert cls.get_body is CachedHttpClient.get_body, cls


def test_backoff_has_bounded_seeded_jitter(tmp_path: Path) -> None:
    def run(seed: int) -> list[float]:
        answers = [httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"studies": []})]
        client, fake = _client(lambda r: answers.pop(0), tmp_path, jitter_s=0.5, seed=seed, use_cache=False)
        assert list(client.iter_pages(search_params(term="x"))) == []
        return fake.sleeps

    sleeps = run(11)
    draws = random.Random(11)
    assert sleeps == [1.0 + draws.uniform(0, 0.5), 2.0 + draws.uniform(0, 0.5)]
    assert 1.0 <= sleeps[0] <= 1.5 and 2.0 <= sleeps[1] <= 2.5
    assert run(11) == sleeps  # the same seed, the same waits
    assert run(12) != sleeps  # jitter: another seed, other waits


def test_a_retry_after_beyond_the_bound_is_reported_not_waited_for(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"}, text="come back in an hour")

    client, fake = _client(handler, tmp_path, max_retry_after_s=120.0)
    with pytest.raises(CtgovError, match=r"asks to wait 3600 s .* more than the 120 s"):
        client.get_study("NCT90000005")
    assert fake.sleeps == [] and client.requests_sent == 1
    # Within the bound, the client waits as long as it is asked (never less).
    answers = [httpx.Response(429, headers={"Retry-After": "90"}), httpx.Response(200, json={"studies": []})]
    client, fake = _client(lambda r: answers.pop(0), tmp_path / "ok", max_retry_after_s=120.0, jitter_s=0.5)
    assert list(client.iter_pages(search_params(term="x"))) == []
    assert fake.sleeps == [90.0]
