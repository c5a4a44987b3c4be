"""The curation workflow: submit, edit, review, flag; and the review of whole-record proposals.

Every change names the version it started from (optimistic locking: of two edits started from
one version exactly one is saved) and keeps a revision with who, when and why. Rejecting an
edit of an item that had an accepted version restores that version: a rejected change never
takes an accepted item out of the knowledge base.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from mscatlas.kb.models import EvidenceItem
from mscatlas.kb.store.core import CurationError, VersionConflict
from mscatlas.kb.store.loading import ROW_TYPES, LoadMixin, add_record, columns_of, replace_record
from mscatlas.kb.store.tables import (
    DERIVED_FIELDS,
    EvidenceRow,
    EvidenceSourceRow,
    ProposalRow,
    RevisionRow,
    StudyRow,
    TrialRow,
    evidence_columns,
    record_json,
)

__all__ = ["CurationMixin", "FieldChange", "Proposal", "record_diff"]


@dataclass(frozen=True)
class FieldChange:
    """One top-level field of a record: its current value and the proposed one (None: absent)."""

    field: str
    current: Any
    proposed: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "current": self.current, "proposed": self.proposed}


def record_diff(current: dict[str, Any] | None, proposed: dict[str, Any]) -> list[FieldChange]:
    """The fields that differ between two versions of a record, in field order."""
    current = current or {}
    names = list(dict.fromkeys([*current, *proposed]))
    return [
        FieldChange(n, current.get(n), proposed.get(n)) for n in names if current.get(n) != proposed.get(n)
    ]


@dataclass(frozen=True)
class Proposal:
    """A whole new version of a record waiting for (or given) an editor's decision."""

    id: int
    record_kind: str
    record_id: str
    source: str
    status: str
    base_version: int | None
    data: dict[str, Any]
    created_at: datetime
    created_by: str
    reason: str
    decided_by: str | None
    decision_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "record_kind": self.record_kind,
            "record_id": self.record_id,
            "source": self.source,
            "status": self.status,
            "base_version": self.base_version,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "reason": self.reason,
            "decided_by": self.decided_by,
            "decision_reason": self.decision_reason,
        }


def _proposal(row: ProposalRow) -> Proposal:
    return Proposal(
        id=row.id,
        record_kind=row.record_kind,
        record_id=row.record_id,
        source=row.source,
        status=row.status,
        base_version=row.base_version,
        data=dict(row.data),
        created_at=row.created_at,
        created_by=row.created_by,
        reason=row.reason,
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
    )


class CurationMixin(LoadMixin):
    """Item-level curation and proposal review."""

    def evidence_version(self, record_id: str) -> int | None:
        with self._session() as session:
            return session.scalar(select(EvidenceRow.version).where(EvidenceRow.id == record_id))

    def record_version(self, record_id: str) -> int | None:
        """The current version of a record of any kind (None when there is none)."""
        with self._session() as session:
            for kind, row_type in ROW_TYPES.items():
                row = session.get(row_type, record_id.upper() if kind == "trial" else record_id)
                if row is not None:
                    return row.version
        return None

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

    def last_accepted(self, record_id: str) -> dict[str, Any] | None:
        """The data of the item's latest accepted version, if it ever had one."""
        accepted = None
        for _, data in self._revision_data(record_id):
            if (data or {}).get("curation_status", "accepted") == "accepted":
                accepted = data
        return accepted

    def submit_evidence(self, item: EvidenceItem, *, by: str, reason: str) -> int:
        """Add a new evidence item as submitted (unreviewed); returns its version (1)."""
        item = EvidenceItem.model_validate({**record_json(item), "curation_status": "submitted"})
        columns = evidence_columns(item)
        with self.session() as session:
            if session.get(EvidenceRow, item.id) is not None:
                raise CurationError(f"an evidence item with id '{item.id}' already exists")
            if (
                session.get(StudyRow, item.id) is not None
                or session.get(TrialRow, item.id.upper()) is not None
            ):
                raise CurationError(f"'{item.id}' is already the id of another record")
            if session.get(StudyRow, item.study) is None:
                raise CurationError(f"unknown study '{item.study}'")
            add_record(session, "evidence", columns, datetime.now(UTC), by, f"submitted: {reason}")
        return 1

    def edit_evidence(
        self, record_id: str, item: EvidenceItem, *, expected_version: int, by: str, reason: str
    ) -> int:
        """Replace an item's fields with ``item``'s; the item goes back to review (submitted)."""
        if item.id != record_id:
            raise CurationError(f"the id cannot change (from '{record_id}' to '{item.id}')")
        new = record_json(item)

        def change(_: dict[str, Any]) -> dict[str, Any]:
            return {**new, "curation_status": "submitted"}

        return self._change_evidence(record_id, change, expected_version, by, f"edited: {reason}")

    def review_evidence(
        self, record_id: str, decision: str, *, expected_version: int, by: str, reason: str
    ) -> int:
        """Accept or reject a submitted item; its authors cannot review it.

        Rejecting an edit of an item that was accepted before restores the accepted version
        (the rejected content stays in the history); rejecting a new item marks it rejected.
        """
        status = {"accept": "accepted", "reject": "rejected"}.get(decision)
        if status is None:
            raise CurationError(f"unknown decision {decision!r} (accept or reject)")
        if by in self.submitters(record_id):
            raise CurationError(
                f"{by} submitted or edited this version of {record_id}; another editor must review it"
            )
        restored = self.last_accepted(record_id) if status == "rejected" else None

        def change(data: dict[str, Any]) -> dict[str, Any]:
            if data.get("curation_status") != "submitted":
                raise CurationError(
                    f"{record_id} is not awaiting review (its status is {data.get('curation_status')})"
                )
            if restored is not None:
                return dict(restored)
            return {**data, "curation_status": status}

        note = f"{status}: {reason}" + ("; the accepted version is restored" if restored is not None else "")
        return self._change_evidence(record_id, change, expected_version, by, note)

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

    def retract_evidence(
        self, record_id: str, *, by: str, why: str, expected_version: int | None = None
    ) -> int:
        """Withdraw an item: a new version marked rejected, with who and why (never a delete; the
        earlier versions stay in its history). Returns the new version."""
        if not why.strip():
            raise CurationError("say why the item is retracted")
        version = self.evidence_version(record_id) if expected_version is None else expected_version
        if version is None:
            raise KeyError(record_id)

        def change(data: dict[str, Any]) -> dict[str, Any]:
            if data.get("curation_status") == "rejected":
                raise CurationError(f"{record_id} is already withdrawn (its status is rejected)")
            return {**data, "curation_status": "rejected"}

        return self._change_evidence(record_id, change, version, by, f"retracted: {why.strip()}")

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
            for name in DERIVED_FIELDS:
                data.pop(name, None)
            columns = evidence_columns(EvidenceItem.model_validate(data))
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

    # ------------------------------------------------------------ proposals

    def proposals(self, *, status: str | None = "pending", record_id: str | None = None) -> list[Proposal]:
        """Proposals, oldest first (``status=None``: every status)."""
        query = select(ProposalRow).order_by(ProposalRow.id)
        if status is not None:
            query = query.where(ProposalRow.status == status)
        if record_id is not None:
            query = query.where(ProposalRow.record_id == record_id)
        with self._session() as session:
            return [_proposal(r) for r in session.scalars(query)]

    def proposal(self, proposal_id: int) -> Proposal | None:
        with self._session() as session:
            row = session.get(ProposalRow, proposal_id)
            return _proposal(row) if row is not None else None

    def proposal_diff(self, proposal_id: int) -> list[FieldChange]:
        """What accepting the proposal would change in the record as it is now."""
        proposal = self.proposal(proposal_id)
        if proposal is None:
            raise KeyError(proposal_id)
        with self._session() as session:
            row = session.get(ROW_TYPES[proposal.record_kind], proposal.record_id)
            current = dict(row.data) if row is not None else None
        return record_diff(current, proposal.data)

    def review_proposal(
        self,
        proposal_id: int,
        decision: str,
        *,
        by: str,
        reason: str,
        expected_version: int | None = None,
    ) -> Proposal:
        """Accept (the record becomes the proposed version) or reject (the record stays) a proposal.

        ``expected_version`` is the record version the reviewer saw the diff against: a record
        changed since then is a VersionConflict. The proposal's author cannot review it.
        """
        if decision not in ("accept", "reject"):
            raise CurationError(f"unknown decision {decision!r} (accept or reject)")
        now = datetime.now(UTC)
        with self.session() as session:
            proposal = session.get(ProposalRow, proposal_id)
            if proposal is None:
                raise KeyError(proposal_id)
            if proposal.status != "pending":
                raise CurationError(f"proposal {proposal_id} is not pending (it is {proposal.status})")
            if proposal.created_by == by:
                raise CurationError(f"{by} made proposal {proposal_id}; another editor must review it")
            kind, record_id = proposal.record_kind, proposal.record_id
            row = session.get(ROW_TYPES[kind], record_id)
            current = row.version if row is not None else None
            if expected_version is not None and current != expected_version:
                raise VersionConflict(
                    record_id, expected_version, current, self._last_author(session, record_id)
                )
            if decision == "accept":
                columns = columns_of(kind, dict(proposal.data))
                note = f"accepted {proposal.source} proposal {proposal_id}: {reason}"
                if row is None:
                    add_record(session, kind, columns, now, by, note)
                elif row.content_hash != columns["content_hash"]:
                    replace_record(session, row, kind, columns, now, by, note)
            proposal.status = "accepted" if decision == "accept" else "rejected"
            proposal.decided_at, proposal.decided_by, proposal.decision_reason = now, by, reason
            session.flush()
            return _proposal(proposal)
