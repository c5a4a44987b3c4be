"""Intake in the store (issue 10, points 2, 3, 4 and 7): candidates, deduplication with reasons,
screening (one and two reviewers), promotion to a study, the shipped search and PRISMA."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mscatlas.intake.citation import Citation
from mscatlas.intake.dedup import DedupIndex
from mscatlas.intake.prisma import prisma_counts, prisma_svg
from mscatlas.intake.readers import read_citations
from mscatlas.intake.shipped import read_shipped_intake
from mscatlas.intake.store import IntakeStore
from mscatlas.kb.models import Study
from mscatlas.kb.store import Store

DATA = Path(__file__).parent / "data" / "intake"


@pytest.fixture
def intake(tmp_path: Path) -> IntakeStore:
    store = Store.open(f"sqlite:///{tmp_path / 'intake.sqlite'}")
    yield IntakeStore(store)
    store.close()


def test_import_keeps_identifiers_provenance_and_merges_with_reasons(intake: IntakeStore) -> None:
    nbib, _ = read_citations(DATA / "export.nbib")
    first = intake.import_citations(
        nbib, source="file", file="export.nbib", fmt="medline", label="batch A", by="ana"
    )
    assert first.imported == 3 and first.duplicates == [] and first.candidates == 3
    c1 = intake.candidate("c1")
    assert c1.pmid == "90000101" and c1.pmcid == "PMC9000101" and c1.doi == "10.5555/jso.2019.0101"
    assert c1.authors == ["Müller-Hansen F", "Wiśniewski Ł"] and c1.year == 2019 and c1.search == first.search
    assert intake.candidate("c2").retracted
    search = intake.searches()[0]
    assert search["label"] == "batch A" and search["file"] == "export.nbib" and search["run_by"] == "ana"
    # The same papers from Europe PMC-like files: each merge says why.
    ris, _ = read_citations(DATA / "zotero.ris")
    csv_, _ = read_citations(DATA / "pubmed.csv")
    second = intake.import_citations([*ris, *csv_], source="file", file="mixed")
    reasons = {(d["duplicate_of"], d["reason"]) for d in second.duplicates}
    # RIS record 1: same DOI as c1; CSV 90000105: same PMID as c3; CSV row 3 (no PMID, other
    # DOI, 'Muller-Hansen', hyphenated title, same year): a fuzzy title match with c1.
    assert reasons == {("c1", "doi"), ("c3", "pmid"), ("c1", "title")}
    assert second.imported == 2  # the placenta RIS record and the 2020 'second report'
    title_merge = next(d for d in second.duplicates if d["reason"] == "title")
    assert "title similarity" in title_merge["detail"] and "mullerhansen" in title_merge["detail"]
    hits = intake.hits()
    assert [h["reason"] for h in hits if h["search"] == second.search].count(None) == 2
    assert intake.candidate("c1").found_by == [first.search, second.search]


def test_duplicates_of_existing_studies(intake: IntakeStore) -> None:
    ref29 = Citation(
        title="Naive human umbilical cord matrix-derived stem cells significantly attenuate growth of "
        "human breast cancer cells in vitro and in vivo.",
        year=2009,
        authors=["Ayuzawa, R."],
        doi="10.9999/not-the-real-doi",
    )
    by_pmid = Citation(title="anything", pmid="19285791")
    result = intake.import_citations([ref29, by_pmid], source="file")
    assert [(d["duplicate_of"], d["reason"]) for d in result.duplicates] == [
        ("ref29", "title"),
        ("ref29", "pmid"),
    ]
    assert result.imported == 0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # The same group's 2019 and 2020 papers with near-identical titles.
        (
            ("Umbilical cord MSCs inhibit breast cancer growth through DKK1", 2019),
            ("Umbilical cord MSCs inhibit breast cancer growth through DKK1", 2020),
        ),
        # Same year, same first author, one word apart (ratio above 90).
        (
            ("Umbilical cord mesenchymal stem cells inhibit breast cancer growth in nude mice", 2019),
            ("Umbilical cord mesenchymal stem cells inhibit gastric cancer growth in nude mice", 2019),
        ),
        (
            ("Exosomes from bone marrow MSCs deliver miR-124 to glioma cells", 2021),
            ("Exosomes from bone marrow MSCs deliver miR-125 to glioma cells", 2021),
        ),
        (
            ("Adipose MSCs promote tumour growth in mice", 2018),
            ("Adipose MSCs promote tumour growth in mice: part II", 2018),
        ),
    ],
)
def test_near_miss_pairs_stay_apart(a: tuple[str, int], b: tuple[str, int]) -> None:
    index = DedupIndex()
    index.add("c1", Citation(title=a[0], year=a[1], authors=["Li X"]))
    assert index.match(Citation(title=b[0], year=b[1], authors=["Li X"])) is None


def test_fuzzy_matches_spelling_variants_and_blocks_on_pmid() -> None:
    index = DedupIndex()
    first = Citation(
        title="Tumour-homing of MSCs in colorectal cancer", year=2017, authors=["Ødegård Å"], pmid="1"
    )
    index.add("c1", first)
    variant = Citation(title="Tumor homing of MSCs in colorectal cancer.", year=2017, authors=["Odegard A"])
    match = index.match(variant)
    assert match is not None and match.reason == "title" and match.score >= 95
    variant.pmid = "2"  # a different PubMed record is a different paper
    assert index.match(variant) is None


def test_import_is_all_or_nothing(intake: IntakeStore) -> None:
    good = Citation(title="A good record", pmid="90000401", year=2020)
    bad = Citation(title="A bad record", pmid="90000402", year=2020)
    bad.journal = object()  # type: ignore[assignment]  # the database cannot store it: fails mid-import
    with pytest.raises(Exception, match=r"journal|bind|type"):
        intake.import_citations([good, bad], source="file")
    assert intake.candidates() == [] and intake.searches() == []


def test_screening_reasons_who_when_and_two_reviewers(intake: IntakeStore) -> None:
    intake.import_citations(read_citations(DATA / "export.nbib")[0], source="file")
    with pytest.raises(ValueError, match="reason: an exclusion needs a reason code"):
        intake.screen("c1", "exclude", by="ana")
    with pytest.raises(ValueError, match="reason: unknown code 'nope'"):
        intake.screen("c1", "exclude", reason="nope", by="ana")
    with pytest.raises(KeyError):
        intake.screen("c99", "include", by="ana")
    d = intake.screen("c1", "exclude", reason="not_primary", note="a review", by="ana")
    assert d.by == "ana" and d.at.tzinfo is not None
    assert intake.states()["c1"].status == "exclude"
    intake.set_reviewers(2)
    assert intake.states()["c1"].status == "awaiting_second"
    intake.screen("c1", "include", by="ben")
    assert intake.states()["c1"].status == "conflict"
    (conflict,) = intake.disagreements()
    assert conflict["candidate"] == "c1" and {x["by"] for x in conflict["decisions"]} == {"ana", "ben"}
    intake.screen("c1", "include", by="cleo", resolves=True, note="primary data in Fig 2")
    assert intake.states()["c1"].status == "include" and intake.disagreements() == []
    intake.screen("c2", "maybe", by="ana")
    intake.screen("c2", "maybe", by="ben")
    assert intake.states()["c2"].status == "maybe"


def test_promoted_candidate_becomes_a_study_that_keeps_the_link(intake: IntakeStore) -> None:
    result = intake.import_citations(read_citations(DATA / "export.nbib")[0], source="pubmed", query="msc")
    study = intake.promote("c3", by="ana")
    assert isinstance(study, Study) and study.id == "pmid90000105"
    assert study.candidate == "c3" and study.search == result.search
    assert intake.store.get("pmid90000105") == study and intake.candidate("c3").study == "pmid90000105"
    assert intake.promote("c3", by="ana") == study  # twice: the same study
    # A later import of the same paper is a duplicate of the study.
    again = intake.import_citations([Citation(title="x", pmid="90000105")], source="file")
    assert again.duplicates[0]["duplicate_of"] == "pmid90000105"


def test_shipped_search_is_read_tolerantly_and_seeded(intake: IntakeStore) -> None:
    shipped = read_shipped_intake(DATA / "shipped")
    problems = {(p.file, p.line, p.field) for p in shipped.problems}
    assert problems == {
        ("intake/searches-t1.yaml", 19, "year"),
        ("intake/searches-t2.yaml", 9, "run_at"),
        ("intake/screening-t1.csv", 6, "reason"),  # unknown code, and so an exclusion without a reason
        ("intake/screening-t1.csv", 8, "decision"),
        ("intake/screening-t1.csv", 9, "at"),
    }
    result = intake.seed_shipped(shipped)
    assert (result.searches, result.records, result.candidates, result.decisions) == (3, 8, 5, 5)
    (unmatched,) = [p for p in result.problems if "matches no record" in p.message]
    assert unmatched.file == "intake/screening-t1.csv" and unmatched.line == 7
    assert intake.seed_shipped(shipped) is None  # seeding twice adds nothing
    counts = prisma_counts(intake)
    dataset = intake.store.dataset()
    previous = {s.id for s in dataset.studies if s.ref} & {e.study for e in dataset.evidence}
    assert counts["identified"] == {
        "total": 8,
        "by_source": {"Europe PMC": 3, "search tool, pages corpus": 5},
        "by_query": {"q-t1-01": 3, "q-t1-02": 3, "q-t2-01": 2},
    }
    assert counts["duplicates_removed"] == 2 and counts["already_in_base"] == 1
    assert (counts["screened"], counts["awaiting_screening"], counts["unresolved"]) == (4, 1, 0)
    assert counts["excluded"] == {"total": 2, "reasons": {"not_primary": 1, "no reason given": 1}}
    assert (counts["sought"], counts["assessed"], counts["not_assessed"]) == (2, 1, 1)
    assert counts["excluded_full_text"] == {"total": 1, "reasons": {"retracted": 1}}
    assert counts["included"] == 0 and counts["included_awaiting_extraction"] == 1
    assert counts["previous_studies"] == len(previous) == counts["total_studies"]
    svg = prisma_svg(counts)
    assert svg.startswith("<svg") and "Records identified (n = 8)" in svg and "retracted: 1" in svg


def test_prisma_counts_included_studies_with_evidence(intake: IntakeStore) -> None:
    """A candidate whose PMID is a curated study with evidence counts as included and assessed."""
    dataset = intake.store.dataset()
    with_evidence = {e.study for e in dataset.evidence}
    field_study = next(s for s in dataset.studies if s.ref is None and s.pmid and s.id in with_evidence)
    # As the shipped search does: only the review's studies count as known (the field study came
    # from the search itself).
    index = intake.dedup_index(review_only=True)
    intake.import_citations(
        [Citation(title=field_study.title, pmid=field_study.pmid)], source="file", index=index
    )
    before = prisma_counts(intake)
    assert before["included"] == 0
    intake.screen("c1", "include", reason="include", by="ana", at=datetime(2026, 12, 3, tzinfo=UTC))
    after = prisma_counts(intake)
    assert after["included"] == 1 and after["included_studies"] == [field_study.id]
    assert after["assessed"] == 1 and after["total_studies"] == after["previous_studies"] + 1


def test_report_has_the_prisma_flow_of_the_shipped_search(tmp_path: Path) -> None:
    from mscatlas.kb.shipped import shipped_dataset
    from mscatlas.report import build_report

    html = build_report(shipped_dataset(), tmp_path / "report").read_text(encoding="utf-8")
    shipped = read_shipped_intake()
    assert 'id="prisma"' in html and 'aria-label="PRISMA 2020 flow diagram"' in html
    total = sum(len(q.records) for q in shipped.queries)
    assert f"returned {total} records" in html and f"Records identified (n = {total})" in html
