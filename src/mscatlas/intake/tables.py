"""The intake's tables, on the store's SQLAlchemy ``Base`` (one metadata, one migration history).

- ``intake_search``: one search run or file import: source, query, label, file, when, by whom.
- ``intake_candidate``: one paper as first found, with its identifiers, title, abstract,
  authors, year and journal; ``study_id`` once it became a study of the knowledge base.
- ``intake_hit``: every record a search returned, in order: the candidate it created or the
  candidate/study it duplicated, with the merge reason (doi, pmid, pmcid, title) and score.
- ``intake_decision``: one screening decision: include/exclude/maybe, reason code, note,
  stage (title_abstract or full_text), who and when; ``resolves`` marks a resolution of a
  two-reviewer disagreement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mscatlas.kb.store import Base

__all__ = ["INTAKE_TABLES", "CandidateRow", "DecisionRow", "HitRow", "SearchRow"]


class SearchRow(Base):
    __tablename__ = "intake_search"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    query: Mapped[str | None] = mapped_column(Text, nullable=True)
    label: Mapped[str | None] = mapped_column(Text, nullable=True)
    file: Mapped[str | None] = mapped_column(Text, nullable=True)
    format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    batch: Mapped[str | None] = mapped_column(String(64), nullable=True)
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    run_by: Mapped[str] = mapped_column(String(64))
    returned: Mapped[int] = mapped_column(Integer)


class CandidateRow(Base):
    __tablename__ = "intake_candidate"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pmid: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)
    pmcid: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)
    doi: Mapped[str | None] = mapped_column(String(255), index=True, nullable=True)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str | None] = mapped_column(Text, nullable=True)
    authors: Mapped[list[str]] = mapped_column(JSON)
    year: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    journal: Mapped[str | None] = mapped_column(Text, nullable=True)
    publication_types: Mapped[list[str]] = mapped_column(JSON)
    retracted: Mapped[bool] = mapped_column(Boolean, default=False)
    search_id: Mapped[str] = mapped_column(ForeignKey("intake_search.id"), index=True)
    found_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    study_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)

    @property
    def id(self) -> str:
        return f"c{self.pk}"


class HitRow(Base):
    __tablename__ = "intake_hit"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[str] = mapped_column(ForeignKey("intake_search.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    candidate_pk: Mapped[int | None] = mapped_column(
        ForeignKey("intake_candidate.pk"), index=True, nullable=True
    )
    study_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(8), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)


class DecisionRow(Base):
    __tablename__ = "intake_decision"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    candidate_pk: Mapped[int] = mapped_column(ForeignKey("intake_candidate.pk"), index=True)
    decision: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    stage: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolves: Mapped[bool] = mapped_column(Boolean, default=False)


INTAKE_TABLES = [SearchRow.__table__, CandidateRow.__table__, HitRow.__table__, DecisionRow.__table__]
