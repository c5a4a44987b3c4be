"""The knowledge-base store: SQLAlchemy 2 over SQLite (default) or PostgreSQL.

Each record is kept whole as validated JSON beside indexed columns for filtering, so the
store never loses a field the model has. Loading is one transaction: a bad record or a crash
leaves the store as it was. Loading the same records again changes nothing; a changed record
is updated in place and its previous version kept as a revision.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

from mscatlas.kb.models import SCHEMA_VERSION, ClinicalTrial, Dataset, EvidenceItem, Study

__all__ = [
    "API_OWNED_TRIAL_FIELDS",
    "DEFAULT_DB_ENV",
    "EvidenceFilter",
    "LoadResult",
    "Store",
    "TrialMergeResult",
    "default_database_url",
]

DEFAULT_DB_ENV = "MSCATLAS_DATABASE_URL"
UNSEEDED = "unseeded"  # meta value of a store created empty on purpose
DERIVED_FIELDS = {"engineered", "ontology"}  # recomputed on reading, never stored
# Trial fields the registry owns: a registry merge updates them. Every other field (title,
# treatment, purpose, MSC source, engineering, phases, conditions, cancer type, provenance,
# flags, notes, ...) is the curator's and a merge never overwrites it on a stored trial.
API_OWNED_TRIAL_FIELDS = (
    "status",
    "enrollment",
    "enrollment_type",
    "start_date",
    "primary_completion_date",
    "completion_date",
    "sponsor",
    "arms",
    "interventions",
    "pmids",
    "has_results",
)


class Base(DeclarativeBase):
    pass


class StudyRow(Base):
    __tablename__ = "study"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ref: Mapped[int] = mapped_column(Integer, index=True)
    year: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)


class EvidenceRow(Base):
    __tablename__ = "evidence"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("study.id"), index=True)
    msc_species: Mapped[str] = mapped_column(String(16))
    cancer_type: Mapped[str] = mapped_column(String(128), index=True)
    cancer_class: Mapped[str] = mapped_column(String(16))
    delivery: Mapped[str] = mapped_column(String(32), index=True)
    setting: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(16), index=True)
    curation_status: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    sources: Mapped[list[EvidenceSourceRow]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class EvidenceSourceRow(Base):
    """One MSC tissue source of an evidence item (items may pool several)."""

    __tablename__ = "evidence_source"
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class TrialRow(Base):
    __tablename__ = "trial"
    nct_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)


class RevisionRow(Base):
    """A previous version of a record, kept whenever a record changes."""

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


def default_database_url() -> str:
    """MSCATLAS_DATABASE_URL, else a SQLite file in the user data directory."""
    url = os.environ.get(DEFAULT_DB_ENV)
    if url:
        return url
    directory = Path(platformdirs.user_data_dir("mscatlas", appauthor=False))
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'mscatlas.sqlite'}"


def _hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class LoadResult:
    added: int
    updated: int
    unchanged: int

    @property
    def changed(self) -> int:
        return self.added + self.updated


@dataclass(frozen=True)
class TrialMergeResult:
    """What a registry merge did: trials added, trials updated (with the fields that changed)."""

    added: list[str]
    updated: dict[str, list[str]]
    unchanged: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "added_ids": self.added,
            "changes": self.updated,
        }


@dataclass(frozen=True)
class EvidenceFilter:
    msc_source: str | None = None
    cancer: str | None = None  # matches cancer type, cancer class or a cell line (case-insensitive)
    delivery: str | None = None
    direction: str | None = None
    setting: str | None = None
    endpoint: str | None = None
    study: str | None = None


class Store:
    """A knowledge-base store at a database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, echo=echo, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.created = not inspect(self.engine).has_table(MetaRow.__tablename__)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str | None = None, *, seed: bool = True) -> Store:
        """Open a store (default URL when None).

        A store met for the first time is filled from the shipped dataset (unless ``seed`` is
        false, which leaves it empty for good); a store seeded by an older release of the
        shipped dataset is brought up to date, keeping the old versions as revisions.
        """
        store = cls(url or default_database_url())
        if store.created and not seed:
            with store.session() as session:
                session.merge(MetaRow(key="seed_hash", value=UNSEEDED))
        elif seed:
            store.seed_if_needed()
        return store

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._session() as session, session.begin():
            yield session

    # ------------------------------------------------------------ seeding

    def get_meta(self, key: str) -> str | None:
        with self._session() as session:
            row = session.get(MetaRow, key)
            return row.value if row else None

    def seed_if_needed(self) -> LoadResult | None:
        """Load the shipped dataset when the store was never seeded with this version of it."""
        from mscatlas.kb.shipped import shipped_dataset, shipped_hash

        digest = shipped_hash()
        if self.get_meta("seed_hash") in (digest, UNSEEDED):
            return None
        return self.load(
            shipped_dataset(),
            changed_by="mscatlas-seed",
            reason="shipped dataset",
            meta={"seed_hash": digest},
        )

    # ------------------------------------------------------------ writing

    def load(
        self,
        dataset: Dataset,
        *,
        changed_by: str = "mscatlas-load",
        reason: str = "load",
        meta: dict[str, str] | None = None,
    ) -> LoadResult:
        """Insert or update every record of a validated dataset in one transaction."""
        added = updated = unchanged = 0
        now = datetime.now(UTC)
        with self.session() as session:
            known_studies = set(session.scalars(select(StudyRow.id)))
            missing = {e.study for e in dataset.evidence} - known_studies - {s.id for s in dataset.studies}
            if missing:
                raise ValueError(f"evidence refers to studies not in the store: {sorted(missing)}")
            for study in dataset.studies:
                outcome = self._upsert(
                    session, StudyRow, study.id, _study_columns(study), now, changed_by, reason
                )
                added, updated, unchanged = _tally(outcome, added, updated, unchanged)
            session.flush()
            for item in dataset.evidence:
                outcome = self._upsert(
                    session, EvidenceRow, item.id, _evidence_columns(item), now, changed_by, reason
                )
                added, updated, unchanged = _tally(outcome, added, updated, unchanged)
            for trial in dataset.trials:
                outcome = self._upsert(
                    session, TrialRow, trial.nct_id, _trial_columns(trial), now, changed_by, reason
                )
                added, updated, unchanged = _tally(outcome, added, updated, unchanged)
            for key, value in {"schema_version": str(SCHEMA_VERSION), **(meta or {})}.items():
                session.merge(MetaRow(key=key, value=value))
        return LoadResult(added, updated, unchanged)

    def merge_trials(
        self,
        trials: Sequence[ClinicalTrial],
        *,
        source: str,
        changed_by: str = "mscatlas-trials",
    ) -> TrialMergeResult:
        """Merge registry records into the stored trials in one transaction (all or nothing).

        A trial not yet stored is added whole. For a stored trial only the registry-owned
        fields (``API_OWNED_TRIAL_FIELDS``) take the registry's value, and only where the
        registry states one: a value the registry leaves out keeps the stored value. Curated
        fields are never overwritten. Every change is a new version with the previous one kept
        as a revision whose reason names ``source`` and the fields that changed.
        """
        seen: set[str] = set()
        for trial in trials:
            if trial.nct_id in seen:
                raise ValueError(f"trial {trial.nct_id} appears twice in one merge")
            seen.add(trial.nct_id)
        added: list[str] = []
        updated: dict[str, list[str]] = {}
        unchanged: list[str] = []
        now = datetime.now(UTC)
        with self.session() as session:
            for trial in trials:
                row = session.get(TrialRow, trial.nct_id)
                if row is None:
                    merged, changed = trial, []
                else:
                    stored = dict(row.data)
                    incoming = _record_json(trial)
                    data = dict(stored)
                    for name in API_OWNED_TRIAL_FIELDS:
                        if name in incoming:
                            data[name] = incoming[name]
                    changed = [n for n in API_OWNED_TRIAL_FIELDS if stored.get(n) != data.get(n)]
                    merged = ClinicalTrial.model_validate(data)
                reason = f"{source}" + (f" ({', '.join(changed)})" if changed else "")
                outcome = self._upsert(
                    session, TrialRow, trial.nct_id, _trial_columns(merged), now, changed_by, reason
                )
                if outcome == "added":
                    added.append(trial.nct_id)
                elif outcome == "updated":
                    updated[trial.nct_id] = changed
                else:
                    unchanged.append(trial.nct_id)
            session.merge(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
        return TrialMergeResult(added, updated, unchanged)

    @staticmethod
    def _upsert(
        session: Session,
        row_type: type[StudyRow] | type[EvidenceRow] | type[TrialRow],
        record_id: str,
        columns: dict[str, Any],
        now: datetime,
        changed_by: str,
        reason: str,
    ) -> str:
        kind = row_type.__tablename__
        row = session.get(row_type, record_id)
        if row is None:
            session.add(row_type(**columns))
            session.add(
                RevisionRow(
                    record_kind=kind,
                    record_id=record_id,
                    version=1,
                    data=columns["data"],
                    changed_at=now,
                    changed_by=changed_by,
                    reason=f"created: {reason}",
                )
            )
            return "added"
        if row.content_hash == columns["content_hash"]:
            return "unchanged"
        for key, value in columns.items():
            if key == "sources":
                # Delete the old source rows before inserting new ones with the same keys.
                row.sources.clear()  # type: ignore[union-attr]
                session.flush()
                row.sources.extend(value)  # type: ignore[union-attr]
            else:
                setattr(row, key, value)
        row.version += 1
        session.add(
            RevisionRow(
                record_kind=kind,
                record_id=record_id,
                version=row.version,
                data=columns["data"],
                changed_at=now,
                changed_by=changed_by,
                reason=f"updated: {reason}",
            )
        )
        return "updated"

    # ------------------------------------------------------------ reading

    def dataset(self, *, only_accepted: bool = False) -> Dataset:
        """Every record in the store as a validated Dataset (ordered by id)."""
        with self._session() as session:
            studies = [
                Study.model_validate(r.data) for r in session.scalars(select(StudyRow).order_by(StudyRow.ref))
            ]
            query = select(EvidenceRow).order_by(EvidenceRow.id)
            if only_accepted:
                query = query.where(EvidenceRow.curation_status == "accepted")
            evidence = [EvidenceItem.model_validate(r.data) for r in session.scalars(query)]
            trials = [
                ClinicalTrial.model_validate(r.data)
                for r in session.scalars(select(TrialRow).order_by(TrialRow.nct_id))
            ]
        return Dataset(studies=studies, evidence=evidence, trials=trials)

    def counts(self) -> dict[str, int]:
        with self._session() as session:
            return {
                "studies": session.scalar(select(func.count()).select_from(StudyRow)) or 0,
                "evidence": session.scalar(select(func.count()).select_from(EvidenceRow)) or 0,
                "trials": session.scalar(select(func.count()).select_from(TrialRow)) or 0,
            }

    def study_ids(self) -> set[str]:
        with self._session() as session:
            return set(session.scalars(select(StudyRow.id)))

    def query_evidence(self, flt: EvidenceFilter = EvidenceFilter()) -> list[EvidenceItem]:
        """Evidence items matching every given filter (parameterised SQL only)."""
        query = select(EvidenceRow).order_by(EvidenceRow.id)
        if flt.msc_source:
            query = query.join(EvidenceSourceRow).where(EvidenceSourceRow.source == flt.msc_source)
        for column, value in (
            (EvidenceRow.delivery, flt.delivery),
            (EvidenceRow.direction, flt.direction),
            (EvidenceRow.setting, flt.setting),
            (EvidenceRow.endpoint, flt.endpoint),
            (EvidenceRow.study_id, flt.study),
        ):
            if value:
                query = query.where(column == value)
        with self._session() as session:
            items = [EvidenceItem.model_validate(r.data) for r in session.scalars(query)]
        if flt.cancer:
            needle = flt.cancer.casefold()
            items = [
                e
                for e in items
                if needle in e.cancer_type.casefold()
                or needle == e.cancer_class.value
                or any(needle == line.casefold() for line in e.cell_lines)
            ]
        return items

    def get(self, record_id: str) -> Study | EvidenceItem | ClinicalTrial | None:
        """A record by evidence id, study id (ref29) or NCT id."""
        with self._session() as session:
            if row := session.get(EvidenceRow, record_id):
                return EvidenceItem.model_validate(row.data)
            if row2 := session.get(StudyRow, record_id):
                return Study.model_validate(row2.data)
            if row3 := session.get(TrialRow, record_id.upper()):
                return ClinicalTrial.model_validate(row3.data)
        return None

    def revisions(self, record_id: str) -> list[dict[str, Any]]:
        with self._session() as session:
            rows = session.scalars(
                select(RevisionRow).where(RevisionRow.record_id == record_id).order_by(RevisionRow.id)
            )
            return [
                {
                    "version": r.version,
                    "changed_at": r.changed_at.isoformat(),
                    "changed_by": r.changed_by,
                    "reason": r.reason,
                }
                for r in rows
            ]


def _tally(outcome: str, added: int, updated: int, unchanged: int) -> tuple[int, int, int]:
    return (
        added + (outcome == "added"),
        updated + (outcome == "updated"),
        unchanged + (outcome == "unchanged"),
    )


def _record_json(model: Study | EvidenceItem | ClinicalTrial) -> dict[str, Any]:
    return model.model_dump(
        mode="json", exclude_none=True, exclude=DERIVED_FIELDS if isinstance(model, EvidenceItem) else None
    )


def _study_columns(study: Study) -> dict[str, Any]:
    data = _record_json(study)
    return {"id": study.id, "ref": study.ref, "year": study.year, "data": data, "content_hash": _hash(data)}


def _evidence_columns(item: EvidenceItem) -> dict[str, Any]:
    data = _record_json(item)
    return {
        "id": item.id,
        "study_id": item.study,
        "msc_species": item.msc_species.value,
        "cancer_type": item.cancer_type,
        "cancer_class": item.cancer_class.value,
        "delivery": item.delivery.value,
        "setting": item.setting.value,
        "endpoint": item.endpoint.value,
        "direction": item.direction.value,
        "curation_status": item.curation_status.value,
        "data": data,
        "content_hash": _hash(data),
        "sources": [
            EvidenceSourceRow(evidence_id=item.id, source=s.value) for s in dict.fromkeys(item.msc_source)
        ],
    }


def _trial_columns(trial: ClinicalTrial) -> dict[str, Any]:
    data = _record_json(trial)
    return {"nct_id": trial.nct_id, "purpose": trial.purpose.value, "data": data, "content_hash": _hash(data)}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
