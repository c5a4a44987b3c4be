"""Candidates of the intake as the rest of the package sees them: the :class:`Candidate` record,
the result of an import, and the ``c<number>`` identifiers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mscatlas.intake.citation import Citation
from mscatlas.intake.tables import CandidateRow

__all__ = [
    "Candidate",
    "ImportResult",
    "candidate_from_row",
    "is_candidate_id",
    "parse_candidate_id",
]


@dataclass(frozen=True)
class Candidate:
    id: str
    title: str
    abstract: str | None
    authors: list[str]
    year: int | None
    journal: str | None
    pmid: str | None
    pmcid: str | None
    doi: str | None
    publication_types: list[str]
    retracted: bool
    search: str
    found_at: datetime
    study: str | None
    found_by: list[str] = field(default_factory=list)  # every search that returned it

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["found_at"] = self.found_at.isoformat()
        return out

    def citation(self) -> Citation:
        return Citation(
            title=self.title,
            abstract=self.abstract,
            authors=list(self.authors),
            year=self.year,
            journal=self.journal,
            pmid=self.pmid,
            pmcid=self.pmcid,
            doi=self.doi,
            publication_types=list(self.publication_types),
            retracted=self.retracted,
            origin=self.id,
        )


@dataclass(frozen=True)
class ImportResult:
    search: str
    imported: int
    duplicates: list[dict[str, str]]
    candidates: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "candidates": self.candidates,
            "search": self.search,
        }


def candidate_from_row(row: CandidateRow, found_by: Sequence[str] = ()) -> Candidate:
    return Candidate(
        id=row.id,
        title=row.title,
        abstract=row.abstract,
        authors=list(row.authors or []),
        year=row.year,
        journal=row.journal,
        pmid=row.pmid,
        pmcid=row.pmcid,
        doi=row.doi,
        publication_types=list(row.publication_types or []),
        retracted=bool(row.retracted),
        search=row.search_id,
        found_at=row.found_at if row.found_at.tzinfo else row.found_at.replace(tzinfo=UTC),
        study=row.study_id,
        found_by=list(found_by) or [row.search_id],
    )


def is_candidate_id(value: str) -> bool:
    """Candidate ids are 'c<number>' (study ids never are: they are ref<N>, pmid<N> or a name)."""
    return value.startswith("c") and value[1:].isdigit()


def parse_candidate_id(candidate_id: str) -> int:
    if not is_candidate_id(candidate_id):
        raise KeyError(f"'{candidate_id}' is not a candidate id (c<number>)")
    return int(candidate_id[1:])
