"""One search's records into the store, in the caller's transaction: a search row, a candidate
for every new record, a hit (with the duplicate's reason) for every record returned. Used by
:meth:`mscatlas.intake.store.IntakeStore.import_citations` and by the seeding of the shipped
search (:mod:`mscatlas.intake.seeding`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mscatlas.intake.candidates import ImportResult, is_candidate_id
from mscatlas.intake.citation import Citation
from mscatlas.intake.dedup import DedupIndex, Match
from mscatlas.intake.tables import CandidateRow, HitRow, SearchRow

__all__ = ["import_search"]


def import_search(
    session: Session,
    citations: Sequence[Citation],
    index: DedupIndex,
    *,
    source: str,
    query: str | None,
    label: str | None,
    file: str | None,
    fmt: str | None,
    batch: str | None,
    search_id: str | None,
    by: str,
    run_at: datetime | None,
) -> ImportResult:
    """Store one search's records in ``session``: new ones become candidates, duplicates hits
    (with the match's reason); every record is kept as a hit of the search."""
    now = datetime.now(UTC)
    duplicates: list[dict[str, str]] = []
    imported = 0
    if search_id is None:
        search_id = f"s{(session.scalar(select(func.count()).select_from(SearchRow)) or 0) + 1}"
        while session.get(SearchRow, search_id) is not None:
            search_id = f"{search_id}x"
    elif session.get(SearchRow, search_id) is not None:
        raise ValueError(f"a search with id '{search_id}' is already stored")
    session.add(
        SearchRow(
            id=search_id,
            source=source,
            query=query,
            label=label,
            file=file,
            format=fmt,
            batch=batch,
            run_at=run_at or now,
            run_by=by,
            returned=len(citations),
        )
    )
    session.flush()
    # Candidate keys are given here rather than by the database, so that 10^5 records need
    # no flush each; every candidate is inserted by this method, so keys never collide.
    next_pk = (session.scalar(select(func.max(CandidateRow.pk))) or 0) + 1
    for position, citation in enumerate(citations, start=1):
        match = index.match(citation)
        record = _record(citation)
        if match is not None:
            duplicates.append(
                {
                    "record": citation.label(),
                    "duplicate_of": match.target,
                    "reason": match.reason,
                    "detail": match.detail,
                }
            )
            session.add(_hit(search_id, position, match, record))
            continue
        row = CandidateRow(
            pk=next_pk,
            pmid=citation.pmid,
            pmcid=citation.pmcid,
            doi=citation.doi,
            title=citation.title,
            abstract=citation.abstract,
            authors=citation.authors,
            year=citation.year,
            journal=citation.journal,
            publication_types=citation.publication_types,
            retracted=citation.retracted,
            search_id=search_id,
            found_at=run_at or now,
        )
        session.add(row)
        next_pk += 1
        imported += 1
        index.add(row.id, citation)
        session.add(HitRow(search_id=search_id, position=position, candidate_pk=row.pk, record=record))
    session.flush()
    total = session.scalar(select(func.count()).select_from(CandidateRow)) or 0
    return ImportResult(search_id, imported, duplicates, total)


def _record(citation: Citation) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "title": citation.title,
            "year": citation.year,
            "first_author": citation.first_author,
            **citation.identifiers,
            "origin": citation.origin,
            "line": citation.line,
        }.items()
        if v is not None
    }


def _hit(search_id: str, position: int, match: Match, record: dict[str, Any]) -> HitRow:
    is_candidate = is_candidate_id(match.target)
    return HitRow(
        search_id=search_id,
        position=position,
        candidate_pk=int(match.target[1:]) if is_candidate else None,
        study_id=None if is_candidate else match.target,
        reason=match.reason,
        score=match.score,
        detail=match.detail,
        record=record,
    )
