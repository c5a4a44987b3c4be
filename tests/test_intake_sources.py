"""Intake sources, offline: file readers and the PubMed / Europe PMC clients on recorded answers."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mscatlas._http import HttpError, RetryPolicy, send_with_retries
from mscatlas.intake.citation import IntakeError, author_key, normalize_doi, normalize_title
from mscatlas.intake.readers import detect_format, read_citations
from mscatlas.intake.sources import EuropePmcClient, PubMedClient, SourceCacheMiss, SourceError
from test_ctgov_client import FakeTime  # the same fake clock

DATA = Path(__file__).parent / "data" / "intake"


def _options(handler: Callable[[httpx.Request], httpx.Response], tmp_path: Path, fake: FakeTime) -> dict:
    return {
        "transport": httpx.MockTransport(handler),
        "cache_dir": tmp_path / "cache",
        "sleep": fake.sleep,
        "clock": fake.clock,
        "wall_clock": fake.clock,
        "jitter_s": 0.0,
    }


# ---------------------------------------------------------------- files


def test_pubmed_xml_structured_abstract_non_ascii_and_retraction() -> None:
    citations, fmt = read_citations(DATA / "efetch_page1.xml")
    assert fmt == "pubmed-xml"
    first, second = citations
    assert first.pmid == "90000101" and first.pmcid == "PMC9000101" and first.doi == "10.5555/jso.2019.0101"
    assert first.authors == ["Müller-Hansen F", "Wiśniewski Ł", "Ødegård Å"]
    assert first.abstract.startswith("BACKGROUND: Mesenchymal") and "RESULTS: hUC-MSCs" in first.abstract
    assert (
        first.title.startswith("Umbilical cord") and "MDA-MB-231 breast" in first.title
    )  # inline markup kept as text
    assert first.year == 2019 and first.journal == "Journal of Stromal Oncology" and not first.retracted
    assert second.retracted and second.authors == ["Zhang W"]  # the invalid (ValidYN=N) author is left out
    assert first.line == 4 and second.line == 38


def test_pubmed_xml_missing_abstract_collective_author_medline_date() -> None:
    (c,), _ = read_citations(DATA / "efetch_page2.xml")
    assert c.abstract is None and c.authors == ["MSC-Tumour Consortium"] and c.year == 2020 and c.doi is None


def test_invalid_xml_names_file_and_line() -> None:
    with pytest.raises(IntakeError) as info:
        read_citations(DATA / "broken.xml")
    problem = info.value.problems[0]
    assert problem.file.endswith("broken.xml") and problem.line == 10 and "invalid XML" in problem.message


def test_medline_nbib() -> None:
    citations, fmt = read_citations(DATA / "export.nbib")
    assert fmt == "medline" and [c.pmid for c in citations] == ["90000101", "90000102", "90000105"]
    first, second, third = citations
    assert first.title.endswith("growth through DKK1.")  # continuation line joined
    assert "METHODS: Human umbilical cord MSCs" in first.abstract and first.doi == "10.5555/jso.2019.0101"
    assert first.authors == ["Müller-Hansen F", "Wiśniewski Ł"] and first.pmcid == "PMC9000101"
    assert second.retracted and third.abstract is None and third.year == 2020
    assert [c.line for c in citations] == [1, 22, 35]


def test_ris_zotero() -> None:
    (first, second), fmt = read_citations(DATA / "zotero.ris")
    assert fmt == "ris"
    assert first.pmid == "90000101" and first.doi == "10.5555/jso.2019.0101" and first.year == 2019
    assert first.authors == ["Müller-Hansen, Finn", "Wiśniewski, Łukasz"]
    assert second.doi == "10.5555/hs.2018.55" and second.pmid is None and second.retracted


def test_csv_pubmed_export() -> None:
    citations, fmt = read_citations(DATA / "pubmed.csv")
    assert fmt == "csv" and len(citations) == 3
    assert citations[0].authors == ["García-López M", "Chen Y"] and citations[0].pmid == "90000105"
    assert citations[2].pmid is None and citations[2].doi == "10.5555/jso.2019.9999"


def test_bad_csv_rows_each_named_and_nothing_returned() -> None:
    with pytest.raises(IntakeError) as info:
        read_citations(DATA / "bad_rows.csv")
    found = {(p.record, p.line, p.field) for p in info.value.problems}
    assert found == {("record 2", 3, "title"), ("record 3", 4, "pmid"), ("record 4", 5, "pmid")}


def test_format_detection_and_unknown_format(tmp_path: Path) -> None:
    assert detect_format("PMID- 1\nTI  - x\n") == "medline"
    assert detect_format("TY  - JOUR\nER  - \n") == "ris"
    assert detect_format("<?xml version='1.0'?><PubmedArticleSet/>") == "pubmed-xml"
    assert detect_format("Title,DOI\nx,10.1/x\n") == "csv"
    odd = tmp_path / "notes.txt"
    odd.write_text("just some words\n", encoding="utf-8")
    with pytest.raises(IntakeError, match="unknown format"):
        read_citations(odd)


def test_normal_forms() -> None:
    assert normalize_doi("https://doi.org/10.1038/NATURE06188.") == "10.1038/nature06188"
    assert normalize_doi("doi: 10.5555/X [doi]") == "10.5555/x"
    assert normalize_title("TGF-β signalling in <i>MSCs</i>!") == "tgf beta signalling in mscs"
    assert author_key("Müller-Hansen F") == author_key("Muller-Hansen, Finn") == "mullerhansen"
    assert author_key("Finn Karnoub") == "karnoub"


# ---------------------------------------------------------------- retry policy


def test_jitter_is_bounded_seeded_and_retry_after_is_bounded() -> None:
    answers = [httpx.Response(503), httpx.Response(503), httpx.Response(200)]
    sleeps: list[float] = []
    policy = RetryPolicy(max_retries=3, backoff_s=1.0, jitter_s=0.5)
    response = send_with_retries(
        lambda: answers.pop(0),
        policy,
        sleep=sleeps.append,
        wall_clock=lambda: 0.0,
        rng=random.Random(7),
        describe="GET x",
    )
    assert response.status_code == 200
    expected = random.Random(7)
    assert sleeps == [1.0 + expected.uniform(0, 0.5), 2.0 + expected.uniform(0, 0.5)]
    assert 1.0 <= sleeps[0] < 1.5 and 2.0 <= sleeps[1] < 2.5
    too_long = [httpx.Response(429, headers={"Retry-After": "3600"})]
    with pytest.raises(HttpError, match="3600 s"):
        send_with_retries(
            lambda: too_long[0],
            RetryPolicy(max_retry_after_s=120),
            sleep=sleeps.append,
            wall_clock=lambda: 0.0,
            rng=random.Random(1),
            describe="GET y",
        )


# ---------------------------------------------------------------- PubMed


def _pubmed_handler(calls: list[httpx.Request], fail_first: bool = False) -> Callable:
    state = {"failed": not fail_first}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if not state["failed"]:
            state["failed"] = True
            return httpx.Response(429, headers={"Retry-After": "2"}, text="API rate limit exceeded")
        if request.url.path.endswith("esearch.fcgi"):
            return httpx.Response(200, text=(DATA / "esearch.xml").read_text(encoding="utf-8"))
        start = int(request.url.params["retstart"])
        name = "efetch_page1.xml" if start == 0 else "efetch_page2.xml"
        return httpx.Response(200, text=(DATA / name).read_text(encoding="utf-8"))

    return handler


def test_pubmed_history_paging_429_rate_limit_cache_offline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    calls: list[httpx.Request] = []
    fake = FakeTime()
    client = PubMedClient(**_options(_pubmed_handler(calls, fail_first=True), tmp_path, fake))
    assert client.min_interval_s == pytest.approx(1 / 3)
    pages = list(client.iter_pages("msc AND cancer", page_size=2))
    assert [len(p.citations) for p in pages] == [2, 1]
    assert pages[0].next_retstart == 2 and pages[1].next_retstart is None
    esearch, fetch1, fetch2 = calls[1], calls[2], calls[3]
    assert esearch.url.params["usehistory"] == "y" and esearch.url.params["term"] == "msc AND cancer"
    assert (
        fetch1.url.params["WebEnv"] == "MCID_6751d0a1b2c3d4e5f6a7b8c9"
        and fetch1.url.params["query_key"] == "1"
    )
    assert fetch2.url.params["retstart"] == "2" and fetch2.url.params["retmode"] == "xml"
    assert fake.sleeps[0] == 2.0  # the 429's Retry-After
    assert all(s == pytest.approx(1 / 3) for s in fake.sleeps[1:])  # 3 requests a second
    # Offline: the same search answers from the cache, a new one is a cache miss.
    offline = PubMedClient(
        **{**_options(lambda r: pytest.fail("no network"), tmp_path, FakeTime()), "offline": True}
    )
    assert [c.pmid for c in offline.search("msc AND cancer", page_size=2)] == [
        "90000101",
        "90000102",
        "90000103",
    ]
    with pytest.raises(SourceCacheMiss, match="offline"):
        offline.search("something else")


def test_pubmed_resume_and_api_key_hidden(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []
    client = PubMedClient(api_key="SECRET", **_options(_pubmed_handler(calls), tmp_path, FakeTime()))
    assert client.min_interval_s == pytest.approx(0.1)
    history = client.esearch("msc")
    (page,) = list(client.iter_pages("msc", page_size=2, resume=(history, 2)))
    assert page.retstart == 2 and [c.pmid for c in page.citations] == ["90000103"]
    assert calls[-1].url.params["api_key"] == "SECRET"
    cached = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert "SECRET" not in cached


def test_pubmed_expired_history(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        name = "esearch.xml" if request.url.path.endswith("esearch.fcgi") else "efetch_expired.xml"
        return httpx.Response(200, text=(DATA / name).read_text(encoding="utf-8"))

    client = PubMedClient(**_options(handler, tmp_path, FakeTime()))
    with pytest.raises(SourceError, match="expired"):
        client.search("msc")


# ---------------------------------------------------------------- Europe PMC


def _epmc_handler(calls: list[httpx.Request]) -> Callable:
    pages = {
        "*": "europepmc_page1.json",
        "AoIIQBh2cygyNzU1MjE4Ng==": "europepmc_page2.json",
        "AoIIQBh2cygyNzU1MjE4Ng==PAGE3": "europepmc_page3.json",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, text=(DATA / pages[request.url.params["cursorMark"]]).read_text("utf-8"))

    return handler


def test_europepmc_cursor_paging_and_resume(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []
    client = EuropePmcClient(**_options(_epmc_handler(calls), tmp_path, FakeTime()))
    pages = list(client.iter_pages("msc AND cancer", page_size=2))
    assert [len(p.citations) for p in pages] == [2, 2] and len(calls) == 3
    first = pages[0].citations[0]
    assert first.abstract.startswith("BACKGROUND: Mesenchymal") and "<h4>" not in first.abstract
    assert first.authors[0] == "Müller-Hansen F" and first.pmcid == "PMC9000101"
    preprint = pages[0].citations[1]
    assert (
        preprint.pmid is None
        and preprint.doi == "10.5555/2022.05.01.777"
        and preprint.authors[0] == "Nguyễn TH"
    )
    assert pages[1].citations[0].retracted and pages[1].citations[1].abstract is None
    assert calls[0].url.params["resultType"] == "core" and calls[0].url.params["cursorMark"] == "*"
    resumed = list(client.iter_pages("msc AND cancer", page_size=2, cursor=pages[0].next_cursor))
    assert [p.cursor for p in resumed] == ["AoIIQBh2cygyNzU1MjE4Ng=="]


def test_europepmc_malformed_answer(tmp_path: Path) -> None:
    client = EuropePmcClient(
        **_options(lambda r: httpx.Response(200, json={"hitCount": 1}), tmp_path, FakeTime())
    )
    with pytest.raises(SourceError, match="resultList"):
        client.search("x")
