"""The tables of the store (SQLAlchemy 2 declarative) and the column values of a record.

The schema of these tables is created and changed only by the numbered Alembic migrations in
``mscatlas/kb/migrations``; a test checks that applying them gives exactly these tables.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mscatlas.kb.models import ClinicalTrial, EvidenceItem, Study

__all__ = [
    "DERIVED_FIELDS",
    "FACET_INDEX_COLUMNS",
    "ROLES",
    "SCAN_INDEX_COLUMNS",
    "USER_NAME_PATTERN",
    "Base",
    "EvidenceRow",
    "EvidenceSourceRow",
    "JsonText",
    "LoginFailureRow",
    "MetaRow",
    "ProposalRow",
    "RevisionRow",
    "SessionRow",
    "ShippedRow",
    "StudyRow",
    "TrialRow",
    "UserRow",
    "content_hash",
    "evidence_columns",
    "evidence_derived",
    "evidence_search_text",
    "json_serializer",
    "record_json",
    "study_columns",
    "trial_columns",
]

DERIVED_FIELDS = {"engineered", "ontology"}  # recomputed on reading, never stored
# Roles in increasing order of rights: a viewer reads, a curator submits, edits and flags
# items, an editor also accepts or rejects items submitted by someone else.
ROLES = ("viewer", "curator", "editor")
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


class Base(DeclarativeBase):
    """Declarative base of every table of the store."""


class StudyRow(Base):
    __tablename__ = "study"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ref: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)  # None: not in the review
    year: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)


# Migration 0005's index of the facet columns (0006 replaced it by the scan index below).
FACET_INDEX_COLUMNS = (
    "cancer_class",
    "cancer_type",
    "delivery",
    "setting",
    "direction",
    "endpoint",
    "study_id",
    "curation_status",
    "evidence_level",
    "id",
)
# One covering index of every column that filters, sorts, counts, facet counts and page keys
# read (migration 0006): those queries never read the wide rows that carry each item's JSON.
SCAN_INDEX_COLUMNS = (
    "curation_status",
    "cancer_class",
    "delivery",
    "setting",
    "direction",
    "endpoint",
    "evidence_level",
    "cancer_type",
    "study_id",
    "msc_sources",
    "ref_order",
    "cell_lines",
    "id",
    "content_hash",
)


class EvidenceRow(Base):
    __tablename__ = "evidence"
    __table_args__ = (
        Index("ix_evidence_scan", *SCAN_INDEX_COLUMNS),
        # The text filter's covering index, on SQLite only (migration 0007 says why).
        Index("ix_evidence_text", "search_text", "id", info={"dialects": ("sqlite",)}).ddl_if(
            dialect="sqlite"
        ),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("study.id"), index=True)
    msc_species: Mapped[str] = mapped_column(String(16))
    cancer_type: Mapped[str] = mapped_column(String(128))
    cancer_class: Mapped[str] = mapped_column(String(16))
    delivery: Mapped[str] = mapped_column(String(32))
    setting: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(16))
    curation_status: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Derived from ``data`` for filtering and sorting in SQL (migration 0005; see evidence_derived).
    evidence_level: Mapped[str] = mapped_column(String(32))
    msc_sources: Mapped[str] = mapped_column(String(255))
    ref_order: Mapped[int] = mapped_column(Integer)
    cell_lines: Mapped[str] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[EvidenceSourceRow]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class EvidenceSourceRow(Base):
    """One MSC tissue source of an evidence item (items may pool several)."""

    __tablename__ = "evidence_source"
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class TrialRow(Base):
    __tablename__ = "trial"
    nct_id: Mapped[str] = mapped_column(String(40), primary_key=True)  # NCT or another registry id
    purpose: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)


class RevisionRow(Base):
    """A version of a record, kept whenever a record changes."""

    __tablename__ = "revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ShippedRow(Base):
    """The version of a record that the shipped dataset last brought into this store.

    A record whose content still has this hash was never changed by anyone here, so a newer
    shipped version may replace it; any other record is the team's and is only offered a
    proposal.
    """

    __tablename__ = "shipped_record"
    record_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class ProposalRow(Base):
    """A whole new version of a record waiting for an editor: an upstream change or a proposed load."""

    __tablename__ = "proposal"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(64), index=True)
    base_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: a new record
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))  # "upstream" or "load"
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending, accepted, rejected, superseded
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class UserRow(Base):
    """An account of the web interface; the password is kept only as an Argon2 hash."""

    __tablename__ = "user"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SessionRow(Base):
    """A web session on the server: the cookie carries its random token, the table its digest."""

    __tablename__ = "web_session"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("user.name", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginFailureRow(Base):
    """Recent failed logins of one account or one client address (``user:NAME`` / ``addr:IP``)."""

    __tablename__ = "login_failure"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JsonText(str):
    """A JSON value already serialised: the store's engine writes it as it is (``json_serializer``).

    A bulk load serialises each record once and writes that text both to its row and to its first
    revision, instead of letting each JSON column serialise the same dict again."""


def json_serializer(value: Any) -> str:
    """The engine's JSON serialiser: ``json.dumps`` (SQLAlchemy's default), or a JsonText as it is."""
    return value if isinstance(value, JsonText) else json.dumps(value)


def content_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def record_json(model: Study | EvidenceItem | ClinicalTrial) -> dict[str, Any]:
    """A record as stored: JSON values, no empty optional fields, no derived fields."""
    return model.model_dump(
        mode="json", exclude_none=True, exclude=DERIVED_FIELDS if isinstance(model, EvidenceItem) else None
    )


def study_columns(study: Study) -> dict[str, Any]:
    data = record_json(study)
    return {
        "id": study.id,
        "ref": study.ref,
        "year": study.year,
        "data": data,
        "content_hash": content_hash(data),
    }


NO_REF = 1_000_000  # ref_order of an item that cites no reference of the review (sorts last)


def _field(value: Any, name: str) -> Any:
    """A field of a nested object; an older store may hold a plain string there."""
    return value.get(name) if isinstance(value, dict) else value if isinstance(value, str) else None


def evidence_search_text(data: dict[str, Any]) -> str:
    """What full-text search looks in, case-folded: ids, summaries, notes, cell lines, mechanisms,
    flags and engineering details of a stored evidence record (its JSON)."""
    provenance = data.get("provenance") if isinstance(data.get("provenance"), dict) else {}
    parts: list[Any] = [
        data.get("id"),
        data.get("study"),
        data.get("cancer_type"),
        data.get("source_detail"),
        data.get("model_detail"),
        data.get("route"),
        data.get("notes"),
        _field(data.get("dose"), "text"),
        provenance.get("summary"),
        provenance.get("review_location"),
        provenance.get("primary_source"),
        provenance.get("primary_source_says"),
        *data.get("cell_lines", []),
        *(_field(m, "target") for m in data.get("mechanisms", [])),
        *(_field(m, "note") for m in data.get("mechanisms", [])),
        *(f"{_field(f, 'code')} {_field(f, 'note') or ''}" for f in data.get("flags", [])),
        *(_field(e, "detail") for e in data.get("engineering", [])),
    ]
    return "\n".join(str(p) for p in parts if p).casefold()


def evidence_derived(data: dict[str, Any]) -> dict[str, Any]:
    """The columns derived from a stored evidence record for filtering and sorting in SQL."""
    refs = data.get("refs") or []
    lines = [str(x).casefold() for x in data.get("cell_lines", [])]
    return {
        "evidence_level": data["evidence_level"],
        "msc_sources": ",".join(dict.fromkeys(data.get("msc_source", []))),
        "ref_order": refs[0] if refs else NO_REF,
        "cell_lines": "\n" + "\n".join(lines) + "\n" if lines else "",
        "search_text": evidence_search_text(data),
    }


def evidence_columns(item: EvidenceItem, *, source_rows: bool = True) -> dict[str, Any]:
    """The columns of an item; its MSC sources as rows, or as plain dicts for bulk inserts
    (building ORM objects costs more than the insert itself)."""
    data = record_json(item)
    # The JSON values of the enums, read from ``data`` (an enum's .value costs more, 10^5 times).
    sources = [{"evidence_id": item.id, "source": s} for s in dict.fromkeys(data["msc_source"])]
    return {
        "id": item.id,
        "study_id": item.study,
        "msc_species": data["msc_species"],
        "cancer_type": item.cancer_type,
        "cancer_class": data["cancer_class"],
        "delivery": data["delivery"],
        "setting": data["setting"],
        "endpoint": data["endpoint"],
        "direction": data["direction"],
        "curation_status": data["curation_status"],
        "data": data,
        "content_hash": content_hash(data),
        **evidence_derived(data),
        "sources": [EvidenceSourceRow(**x) for x in sources] if source_rows else sources,
    }


def trial_columns(trial: ClinicalTrial) -> dict[str, Any]:
    data = record_json(trial)
    return {
        "nct_id": trial.nct_id,
        "purpose": trial.purpose.value,
        "data": data,
        "content_hash": content_hash(data),
    }
