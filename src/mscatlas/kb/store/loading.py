"""Writing whole records: loads, registry merges, and bringing a store up to a shipped dataset.

Every write is one transaction (all or nothing) and every change keeps a revision. Three rules
protect a team's work:

* A record anyone changed after the shipped dataset brought it (its content no longer has the
  hash in ``shipped_record``) is never overwritten by a newer shipped dataset: the new shipped
  version becomes a pending ``upstream`` proposal for an editor. Records nobody changed take the
  new shipped version silently, each with a revision.
* A load never accepts or rejects an item that awaits review: that needs an editor's decision.
* A load that would change stored records either applies them as its named author's edit
  (``updates="apply"``), files them as pending proposals (``"propose"``), or refuses
  (``"refuse"``, for callers that name no author).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import insert, literal, select, text, union_all, update
from sqlalchemy.orm import Session

from mscatlas.kb.models import SCHEMA_VERSION, ClinicalTrial, Dataset, EvidenceItem
from mscatlas.kb.store.core import CurationError, LoadResult, TrialMergeResult, UpgradeReport
from mscatlas.kb.store.queries import QueryMixin
from mscatlas.kb.store.tables import (
    EvidenceRow,
    EvidenceSourceRow,
    JsonText,
    MetaRow,
    ProposalRow,
    RevisionRow,
    ShippedRow,
    StudyRow,
    TrialRow,
    evidence_columns,
    record_json,
    study_columns,
    trial_columns,
)

__all__ = ["API_OWNED_TRIAL_FIELDS", "SEED_AUTHOR", "LoadMixin", "UpdatePolicy"]

SEED_AUTHOR = "mscatlas-seed"
UpdatePolicy = Literal["apply", "propose", "refuse"]
RowType = type[StudyRow] | type[EvidenceRow] | type[TrialRow]
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
ROW_TYPES: dict[str, RowType] = {"study": StudyRow, "evidence": EvidenceRow, "trial": TrialRow}


def _records(dataset: Dataset) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(kind, id, columns) of every record, studies first (evidence rows refer to them)."""
    for study in dataset.studies:
        yield "study", study.id, study_columns(study)
    for item in dataset.evidence:
        yield "evidence", item.id, evidence_columns(item, source_rows=False)
    for trial in dataset.trials:
        yield "trial", trial.nct_id, trial_columns(trial)


def columns_of(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The columns of a record given as stored JSON data (validated again)."""
    from mscatlas.kb.models import Study

    if kind == "study":
        return study_columns(Study.model_validate(data))
    if kind == "evidence":
        return evidence_columns(EvidenceItem.model_validate(data))
    return trial_columns(ClinicalTrial.model_validate(data))


def stored_hashes(session: Session) -> dict[tuple[str, str], str]:
    """(kind, id) -> content hash of every stored record, in one query (trial ids as stored)."""
    query = union_all(
        select(literal("study"), StudyRow.id, StudyRow.content_hash),
        select(literal("evidence"), EvidenceRow.id, EvidenceRow.content_hash),
        select(literal("trial"), TrialRow.nct_id, TrialRow.content_hash),
    )
    return {(kind, record_id): digest for kind, record_id, digest in session.execute(query)}


def _record_ids(dataset: Dataset) -> Iterator[tuple[str, str]]:
    """(kind, id) of every record, studies first."""
    yield from (("study", s.id) for s in dataset.studies)
    yield from (("evidence", e.id) for e in dataset.evidence)
    yield from (("trial", t.nct_id) for t in dataset.trials)


def check_one_namespace(
    session: Session, dataset: Dataset, stored_records: dict[tuple[str, str], str] | None = None
) -> None:
    """Refuse a record whose id is already the id of a record of another kind (ids are shared)."""
    if stored_records is None:
        stored_records = stored_hashes(session)
    stored: dict[str, str] = {}
    for kind, record_id in stored_records:
        stored[record_id.upper() if kind == "trial" else record_id] = kind
    incoming: dict[str, str] = {}
    problems = []
    for kind, record_id in _record_ids(dataset):
        key = record_id.upper() if kind == "trial" else record_id
        for other in (stored.get(key), stored.get(key.upper()), incoming.get(key.upper())):
            if other is not None and other != kind:
                problems.append(f"{kind} '{record_id}': that id is already the id of a {other}")
                break
        incoming[key.upper()] = kind
    if problems:
        raise CurationError("ids are one namespace; " + "; ".join(problems))


class _NewRows:
    """New records gathered for bulk inserts: rows by kind, MSC source rows, first revisions."""

    def __init__(self, now: datetime, by: str, reason: str) -> None:
        self.now, self.by, self.reason = now, by, reason
        self.rows: dict[str, list[dict[str, Any]]] = {"study": [], "evidence": [], "trial": []}
        self.sources: list[dict[str, Any]] = []
        self.revisions: list[dict[str, Any]] = []

    def add(self, kind: str, columns: dict[str, Any]) -> None:
        values = {k: v for k, v in columns.items() if k != "sources"}
        values["version"] = 1
        # Serialised once, written twice: to the row and to its first revision.
        values["data"] = data = JsonText(json.dumps(columns["data"]))
        self.rows[kind].append(values)
        for source in columns.get("sources", []):
            if isinstance(source, EvidenceSourceRow):
                source = {"evidence_id": source.evidence_id, "source": source.source}
            self.sources.append(source)
        self.revisions.append(
            {
                "record_kind": kind,
                "record_id": columns.get("id") or columns["nct_id"],
                "version": 1,
                "data": data,
                "changed_at": self.now,
                "changed_by": self.by,
                "reason": self.reason,
            }
        )

    def insert(self, session: Session) -> None:
        """Bulk inserts (Core executemany: the ORM's per-row bookkeeping costs more than the
        insert itself), studies first (evidence rows refer to them)."""
        for kind in ("study", "evidence", "trial"):
            if self.rows[kind]:
                session.execute(insert(ROW_TYPES[kind].__table__), self.rows[kind])
        if self.sources:
            session.execute(insert(EvidenceSourceRow.__table__), self.sources)
        if self.revisions:
            session.execute(insert(RevisionRow.__table__), self.revisions)


# SQLite page cache during a load (KiB; the default is 2 MiB): a load of 10^5 items inserts into a
# dozen indexes in key order that is not insertion order, and with the default cache most of
# those inserts read their B-tree pages back from disk. Set for the load's connection only.
BULK_CACHE_KIB = 256 * 1024


def _bulk_cache(session: Session, kib: int | None) -> None:
    """On SQLite, set the page cache of this connection (None: back to the default)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"PRAGMA cache_size={-(kib or 2000)}"))


def _rows_by_id(session: Session, kind: str, ids: list[str]) -> dict[str, Any]:
    """The stored rows of ``ids`` by id, read in chunks of 500."""
    row_type = ROW_TYPES[kind]
    key = TrialRow.nct_id if kind == "trial" else row_type.id  # type: ignore[union-attr]
    rows: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        for row in session.scalars(select(row_type).where(key.in_(ids[start : start + 500]))):
            rows[row.nct_id if kind == "trial" else row.id] = row
    return rows


def _source_rows(sources: list[Any]) -> list[EvidenceSourceRow]:
    """MSC source rows from rows or the plain dicts of ``evidence_columns(source_rows=False)``."""
    return [x if isinstance(x, EvidenceSourceRow) else EvidenceSourceRow(**x) for x in sources]


def add_record(
    session: Session, kind: str, columns: dict[str, Any], now: datetime, by: str, reason: str
) -> None:
    record_id = columns.get("id") or columns["nct_id"]
    if "sources" in columns:
        columns = {**columns, "sources": _source_rows(columns["sources"])}
    session.add(ROW_TYPES[kind](**columns))
    session.add(
        RevisionRow(
            record_kind=kind,
            record_id=record_id,
            version=1,
            data=columns["data"],
            changed_at=now,
            changed_by=by,
            reason=reason,
        )
    )


def replace_record(
    session: Session, row: Any, kind: str, columns: dict[str, Any], now: datetime, by: str, reason: str
) -> int:
    """Give a stored row new columns (a new version with its revision); returns the version."""
    for key, value in columns.items():
        if key == "sources":
            # Delete the old source rows before inserting new ones with the same keys.
            row.sources.clear()
            session.flush()
            row.sources.extend(_source_rows(value))
        else:
            setattr(row, key, value)
    row.version += 1
    session.add(
        RevisionRow(
            record_kind=kind,
            record_id=columns.get("id") or columns["nct_id"],
            version=row.version,
            data=columns["data"],
            changed_at=now,
            changed_by=by,
            reason=reason,
        )
    )
    return row.version


def file_proposal(
    session: Session,
    kind: str,
    record_id: str,
    data: dict[str, Any],
    base_version: int | None,
    *,
    source: str,
    by: str,
    reason: str,
    now: datetime,
) -> int:
    """Add a pending proposal (an older pending one from the same source is superseded)."""
    session.execute(
        update(ProposalRow)
        .where(
            ProposalRow.record_kind == kind,
            ProposalRow.record_id == record_id,
            ProposalRow.source == source,
            ProposalRow.status == "pending",
        )
        .values(status="superseded", decided_at=now, decided_by=by, decision_reason="a newer proposal")
    )
    proposal = ProposalRow(
        record_kind=kind,
        record_id=record_id,
        base_version=base_version,
        data=data,
        source=source,
        status="pending",
        created_at=now,
        created_by=by,
        reason=reason,
    )
    session.add(proposal)
    session.flush()
    return proposal.id


class LoadMixin(QueryMixin):
    """Loads, registry merges and shipped-dataset upgrades."""

    def load(
        self,
        dataset: Dataset,
        *,
        changed_by: str = "mscatlas-load",
        reason: str = "load",
        meta: dict[str, str] | None = None,
        updates: UpdatePolicy = "apply",
    ) -> LoadResult:
        """Insert or update every record of a validated dataset in one transaction.

        New records are added (with ``updates="propose"``, a new evidence item is added as
        submitted, for review). A record that differs from the stored one is updated as
        ``changed_by``'s edit (``"apply"``), filed as a pending proposal (``"propose"``), or
        refused with every such id named (``"refuse"``). An item awaiting review is never
        accepted or rejected by a load (CurationError).
        """
        added = updated = unchanged = proposed = 0
        refused: list[str] = []
        now = datetime.now(UTC)
        new = _NewRows(now, changed_by, f"created: {reason}")
        changed: dict[str, list[tuple[str, dict[str, Any]]]] = {"study": [], "evidence": [], "trial": []}
        with self.session() as session:
            if len(dataset.evidence) > 1000:
                _bulk_cache(session, BULK_CACHE_KIB)
            stored = stored_hashes(session)  # one query for every stored id and its hash
            known_studies = {record_id for kind, record_id in stored if kind == "study"}
            missing = {e.study for e in dataset.evidence} - known_studies - {s.id for s in dataset.studies}
            if missing:
                raise ValueError(f"evidence refers to studies not in the store: {sorted(missing)}")
            check_one_namespace(session, dataset, stored)
            for kind, record_id, columns in _records(dataset):
                digest = stored.get((kind, record_id))
                if digest is None:
                    if updates == "propose" and kind == "evidence":
                        columns = columns_of(kind, {**columns["data"], "curation_status": "submitted"})
                    new.add(kind, columns)
                    added += 1
                elif digest == columns["content_hash"]:
                    unchanged += 1
                elif updates == "refuse":
                    refused.append(record_id)
                else:
                    changed[kind].append((record_id, columns))
            if refused:
                raise CurationError(
                    f"{len(refused)} record(s) differ from the stored ones ({', '.join(refused[:10])}"
                    + (", ..." if len(refused) > 10 else "")
                    + "): changing stored records is an editor's action; name the author (--by) "
                    "or file the changes for review (--propose)"
                )
            new.insert(session)
            for kind, records in changed.items():
                rows = _rows_by_id(session, kind, [record_id for record_id, _ in records])
                for record_id, columns in records:
                    row = rows[record_id]
                    if updates == "propose":
                        file_proposal(
                            session, kind, record_id, columns["data"], row.version,
                            source="load", by=changed_by, reason=reason, now=now,
                        )  # fmt: skip
                        proposed += 1
                        continue
                    if kind == "evidence" and row.curation_status == "submitted":
                        status = columns["curation_status"]
                        if status != "submitted":
                            raise CurationError(
                                f"evidence item '{record_id}' awaits review: a load cannot make it {status}; "
                                "an editor reviews it, or load with --propose"
                            )
                    replace_record(session, row, kind, columns, now, changed_by, f"updated: {reason}")
                    updated += 1
            for key, value in {"schema_version": str(SCHEMA_VERSION), **(meta or {})}.items():
                session.merge(MetaRow(key=key, value=value))
            _bulk_cache(session, None)
        return LoadResult(added, updated, unchanged, proposed)

    def upgrade_shipped(
        self, dataset: Dataset | None = None, digest: str | None = None, *, by: str = SEED_AUTHOR
    ) -> UpgradeReport:
        """Bring the store up to a shipped dataset (default: the one in this package).

        Never overwrites a record that was changed here after it was shipped: see the module
        docstring. Returns what it did, record by record.
        """
        if dataset is None or digest is None:
            from mscatlas.kb.shipped import shipped_dataset, shipped_hash

            dataset, digest = shipped_dataset(), shipped_hash()
        report = UpgradeReport(digest)
        if self.get_meta("seed_hash") == digest:
            report.already_current = True
            return report
        now = datetime.now(UTC)
        reason = f"shipped dataset {digest}"
        with self.session() as session:
            shipped = {(r.record_kind, r.record_id): r for r in session.scalars(select(ShippedRow))}
            for kind, record_id, columns in _records(dataset):
                new_hash = columns["content_hash"]
                base = shipped.get((kind, record_id))
                row = session.get(ROW_TYPES[kind], record_id)
                if row is None:
                    add_record(session, kind, columns, now, by, f"created: {reason}")
                    report.added.append(record_id)
                    if kind == "study":
                        session.flush()
                elif row.content_hash == new_hash:
                    report.unchanged += 1
                elif base is not None and base.content_hash == new_hash:
                    report.kept.append(record_id)  # changed here; upstream did not change it
                elif base is not None and row.content_hash == base.content_hash:
                    replace_record(session, row, kind, columns, now, by, f"updated: {reason}")
                    report.updated.append(record_id)
                else:
                    report.proposed[record_id] = file_proposal(
                        session, kind, record_id, columns["data"], row.version,
                        source="upstream", by=by, reason=f"upstream change: {reason}", now=now,
                    )  # fmt: skip
                if base is None:
                    session.add(
                        ShippedRow(
                            record_kind=kind, record_id=record_id, content_hash=new_hash, data=columns["data"]
                        )
                    )
                elif base.content_hash != new_hash:
                    base.content_hash, base.data = new_hash, columns["data"]
            session.merge(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
            session.merge(MetaRow(key="seed_hash", value=digest))
        return report

    def shipped_outdated(self) -> bool:
        """Whether the package ships a dataset this store has not been brought up to."""
        from mscatlas.kb.shipped import shipped_hash
        from mscatlas.kb.store.core import UNSEEDED

        return self.get_meta("seed_hash") not in (shipped_hash(), UNSEEDED)

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
            check_one_namespace(session, Dataset(trials=list(trials)))
            for trial in trials:
                row = session.get(TrialRow, trial.nct_id)
                if row is None:
                    add_record(session, "trial", trial_columns(trial), now, changed_by, f"created: {source}")
                    added.append(trial.nct_id)
                    continue
                stored = dict(row.data)
                incoming = record_json(trial)
                data = dict(stored)
                for name in API_OWNED_TRIAL_FIELDS:
                    if name in incoming:
                        data[name] = incoming[name]
                changed = [n for n in API_OWNED_TRIAL_FIELDS if stored.get(n) != data.get(n)]
                columns = trial_columns(ClinicalTrial.model_validate(data))
                if columns["content_hash"] == row.content_hash:
                    unchanged.append(trial.nct_id)
                    continue
                reason = f"{source}" + (f" ({', '.join(changed)})" if changed else "")
                replace_record(session, row, "trial", columns, now, changed_by, f"updated: {reason}")
                updated[trial.nct_id] = changed
            session.merge(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
        return TrialMergeResult(added, updated, unchanged)
