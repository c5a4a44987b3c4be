"""The knowledge-base store: SQLAlchemy 2 over SQLite (default) or PostgreSQL.

Each record is kept whole as validated JSON beside indexed columns for filtering, so the
store never loses a field the model has. Loading is one transaction: a bad record or a crash
leaves the store as it was. Loading the same records again changes nothing; a changed record
is updated in place and its previous version kept as a revision.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
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
    "ROLES",
    "CurationError",
    "EvidenceFilter",
    "LoadResult",
    "Store",
    "TrialMergeResult",
    "User",
    "VersionConflict",
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
    """Declarative base of every table of the store."""


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


# Roles in increasing order of rights: a viewer reads, a curator submits, edits and flags
# items, an editor also accepts or rejects items submitted by someone else.
ROLES = ("viewer", "curator", "editor")
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


class UserRow(Base):
    """An account of the web interface; the password is kept only as an Argon2 hash."""

    __tablename__ = "user"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class User:
    """An account as the rest of the code sees it (never the password hash itself)."""

    name: str
    role: str
    active: bool
    created_at: datetime
    password_stamp: str  # changes whenever the password does (sessions are bound to it)

    def can(self, role: str) -> bool:
        """Whether this account has at least the rights of ``role``."""
        return self.active and ROLES.index(self.role) >= ROLES.index(role)


class VersionConflict(Exception):
    """An edit started from a version of a record that is no longer the current one."""

    def __init__(self, record_id: str, expected: int, actual: int | None, last_by: str | None = None) -> None:
        self.record_id = record_id
        self.expected = expected
        self.actual = actual
        self.last_by = last_by
        if actual is None:
            message = f"{record_id} no longer exists"
        else:
            who = f" by {last_by}" if last_by else ""
            message = (
                f"{record_id} was changed{who} after you opened it: you started from version {expected}, "
                f"the current version is {actual}. Your change was not saved; reload the record, "
                "check the other change and apply yours again."
            )
        super().__init__(message)


class CurationError(Exception):
    """A curation step that the record's state or the user's part in it does not allow."""


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
        """Every version of a record, oldest first: who changed it, when, why, and which fields."""
        with self._session() as session:
            rows = list(
                session.scalars(
                    select(RevisionRow).where(RevisionRow.record_id == record_id).order_by(RevisionRow.id)
                )
            )
        out = []
        previous: dict[str, Any] | None = None
        for r in rows:
            data = r.data or {}
            if previous is None:
                fields: list[str] = []
            else:
                fields = sorted(k for k in set(previous) | set(data) if previous.get(k) != data.get(k))
            out.append(
                {
                    "version": r.version,
                    "changed_at": r.changed_at.isoformat(),
                    "changed_by": r.changed_by,
                    "reason": r.reason,
                    "fields": fields,
                }
            )
            previous = data
        return out

    # ------------------------------------------------------------ accounts

    def add_user(self, name: str, role: str, password: str) -> User:
        """Create an account; the password is hashed with Argon2id. Refuses a name already taken."""
        from argon2 import PasswordHasher

        if not re.match(USER_NAME_PATTERN, name):
            raise ValueError(
                f"invalid user name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-', "
                "starting with a letter or digit"
            )
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        if len(password) < 8:
            raise ValueError("a password needs at least 8 characters")
        row = UserRow(
            name=name,
            role=role,
            password_hash=PasswordHasher().hash(password),
            active=True,
            created_at=datetime.now(UTC),
        )
        with self.session() as session:
            if session.get(UserRow, name) is not None:
                raise ValueError(f"user {name!r} already exists")
            session.add(row)
        return _user(row)

    def set_password(self, name: str, password: str) -> None:
        from argon2 import PasswordHasher

        if len(password) < 8:
            raise ValueError("a password needs at least 8 characters")
        with self.session() as session:
            row = session.get(UserRow, name)
            if row is None:
                raise KeyError(name)
            row.password_hash = PasswordHasher().hash(password)

    def get_user(self, name: str) -> User | None:
        with self._session() as session:
            row = session.get(UserRow, name)
            return _user(row) if row is not None else None

    def users(self) -> list[User]:
        with self._session() as session:
            return [_user(r) for r in session.scalars(select(UserRow).order_by(UserRow.name))]

    def authenticate(self, name: str, password: str) -> User | None:
        """The active account when ``password`` is its password, else None (same work either way)."""
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = PasswordHasher()
        with self.session() as session:
            row = session.get(UserRow, name) if len(name) <= 64 else None
            if row is None:
                # Hash anyway, so that a missing account takes as long as a wrong password.
                hasher.hash(password)
                return None
            try:
                hasher.verify(row.password_hash, password)
            except (VerificationError, InvalidHashError):
                return None
            if hasher.check_needs_rehash(row.password_hash):
                row.password_hash = hasher.hash(password)
            return _user(row) if row.active else None

    def meta_default(self, key: str, make: Callable[[], str]) -> str:
        """The meta value under ``key``, stored first from ``make()`` when there is none."""
        value = self.get_meta(key)
        if value is not None:
            return value
        try:
            with self.session() as session:
                session.add(MetaRow(key=key, value=make()))
        except IntegrityError:  # another process stored one first: use theirs
            logging.getLogger(__name__).debug("meta key %s was stored concurrently", key)
        value = self.get_meta(key)
        if value is None:
            raise RuntimeError(f"cannot store meta value {key!r}")
        return value

    def secret_key(self) -> str:
        """A random key kept in the store (for signing web sessions), generated on first use."""
        return self.meta_default("web_secret_key", lambda: secrets.token_urlsafe(48))

    # ------------------------------------------------------------ curation

    def evidence_version(self, record_id: str) -> int | None:
        with self._session() as session:
            return session.scalar(select(EvidenceRow.version).where(EvidenceRow.id == record_id))

    def submitters(self, record_id: str) -> set[str]:
        """Who authored the changes under review: every author since the item last became submitted."""
        authors: set[str] = set()
        status = None
        for revision, data in self._revision_data(record_id):
            new_status = (data or {}).get("curation_status", "accepted")
            if new_status == "submitted":
                if status != "submitted":
                    authors = set()
                authors.add(revision)
            status = new_status
        return authors if status == "submitted" else set()

    def _revision_data(self, record_id: str) -> list[tuple[str, dict[str, Any] | None]]:
        with self._session() as session:
            rows = session.execute(
                select(RevisionRow.changed_by, RevisionRow.data)
                .where(
                    RevisionRow.record_kind == EvidenceRow.__tablename__, RevisionRow.record_id == record_id
                )
                .order_by(RevisionRow.id)
            )
            return [(by, data) for by, data in rows]

    def submit_evidence(self, item: EvidenceItem, *, by: str, reason: str) -> int:
        """Add a new evidence item as submitted (unreviewed); returns its version (1)."""
        item = EvidenceItem.model_validate({**_record_json(item), "curation_status": "submitted"})
        columns = _evidence_columns(item)
        with self.session() as session:
            if session.get(EvidenceRow, item.id) is not None:
                raise CurationError(f"an evidence item with id '{item.id}' already exists")
            if session.get(StudyRow, item.study) is None:
                raise CurationError(f"unknown study '{item.study}'")
            session.add(EvidenceRow(**columns))
            session.add(
                RevisionRow(
                    record_kind=EvidenceRow.__tablename__,
                    record_id=item.id,
                    version=1,
                    data=columns["data"],
                    changed_at=datetime.now(UTC),
                    changed_by=by,
                    reason=f"submitted: {reason}",
                )
            )
        return 1

    def edit_evidence(
        self, record_id: str, item: EvidenceItem, *, expected_version: int, by: str, reason: str
    ) -> int:
        """Replace an item's fields with ``item``'s; the item goes back to review (submitted)."""
        if item.id != record_id:
            raise CurationError(f"the id cannot change (from '{record_id}' to '{item.id}')")
        new = _record_json(item)

        def change(_: dict[str, Any]) -> dict[str, Any]:
            return {**new, "curation_status": "submitted"}

        return self._change_evidence(record_id, change, expected_version, by, f"edited: {reason}")

    def review_evidence(
        self, record_id: str, decision: str, *, expected_version: int, by: str, reason: str
    ) -> int:
        """Accept or reject a submitted item; its authors cannot review it."""
        status = {"accept": "accepted", "reject": "rejected"}.get(decision)
        if status is None:
            raise CurationError(f"unknown decision {decision!r} (accept or reject)")
        if by in self.submitters(record_id):
            raise CurationError(
                f"{by} submitted or edited this version of {record_id}; another editor must review it"
            )

        def change(data: dict[str, Any]) -> dict[str, Any]:
            if data.get("curation_status") != "submitted":
                raise CurationError(
                    f"{record_id} is not awaiting review (its status is {data.get('curation_status')})"
                )
            return {**data, "curation_status": status}

        return self._change_evidence(record_id, change, expected_version, by, f"{status}: {reason}")

    def flag_evidence(self, record_id: str, code: str, note: str, *, expected_version: int, by: str) -> int:
        """Add a flag (a code of FLAG_CODES and the curator's explanation) to an item."""

        def change(data: dict[str, Any]) -> dict[str, Any]:
            return {**data, "flags": [*data.get("flags", []), {"code": code, "note": note}]}

        return self._change_evidence(record_id, change, expected_version, by, f"flagged {code}: {note}")

    def unflag_evidence(
        self, record_id: str, index: int, code: str, comment: str, *, expected_version: int, by: str
    ) -> int:
        """Remove the flag at ``index`` (0-based; it must carry ``code``) with a comment saying why."""
        if not comment.strip():
            raise CurationError("say why the flag is removed")

        def change(data: dict[str, Any]) -> dict[str, Any]:
            flags = list(data.get("flags", []))
            if not 0 <= index < len(flags) or flags[index].get("code") != code:
                raise CurationError(f"{record_id} has no flag '{code}' at position {index + 1}")
            del flags[index]
            return {**data, "flags": flags}

        return self._change_evidence(
            record_id, change, expected_version, by, f"unflagged {code}: {comment.strip()}"
        )

    def _change_evidence(
        self,
        record_id: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        expected_version: int,
        by: str,
        reason: str,
    ) -> int:
        """Apply ``change`` to an item's data when it is still at ``expected_version``.

        The row is updated only where its version is still the expected one (one conditional
        UPDATE), so of two edits started from the same version exactly one is saved and the
        other raises VersionConflict, on SQLite and PostgreSQL alike.
        """
        with self.session() as session:
            row = session.get(EvidenceRow, record_id)
            if row is None:
                raise KeyError(record_id)
            if row.version != expected_version:
                raise VersionConflict(
                    record_id, expected_version, row.version, self._last_author(session, record_id)
                )
            data = change(dict(row.data))
            data.pop("engineered", None)
            data.pop("ontology", None)
            item = EvidenceItem.model_validate(data)
            columns = _evidence_columns(item)
            if columns["content_hash"] == row.content_hash:
                return row.version
            sources = columns.pop("sources")
            columns.pop("id")
            result = session.execute(
                update(EvidenceRow)
                .where(EvidenceRow.id == record_id, EvidenceRow.version == expected_version)
                .values(**columns, version=expected_version + 1)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # changed by someone else since it was read: nothing written
                actual = session.scalar(select(EvidenceRow.version).where(EvidenceRow.id == record_id))
                raise VersionConflict(
                    record_id, expected_version, actual, self._last_author(session, record_id)
                )
            session.expunge(row)
            session.execute(delete(EvidenceSourceRow).where(EvidenceSourceRow.evidence_id == record_id))
            for source in sources:
                session.add(EvidenceSourceRow(evidence_id=record_id, source=source.source))
            session.add(
                RevisionRow(
                    record_kind=EvidenceRow.__tablename__,
                    record_id=record_id,
                    version=expected_version + 1,
                    data=columns["data"],
                    changed_at=datetime.now(UTC),
                    changed_by=by,
                    reason=reason,
                )
            )
        return expected_version + 1

    @staticmethod
    def _last_author(session: Session, record_id: str) -> str | None:
        return session.scalar(
            select(RevisionRow.changed_by)
            .where(RevisionRow.record_id == record_id)
            .order_by(RevisionRow.id.desc())
            .limit(1)
        )


def _user(row: UserRow) -> User:
    return User(
        name=row.name,
        role=row.role,
        active=bool(row.active),
        created_at=row.created_at,
        password_stamp=hashlib.sha256(row.password_hash.encode()).hexdigest()[:16],
    )


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
