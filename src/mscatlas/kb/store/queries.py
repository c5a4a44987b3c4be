"""Reading the knowledge base: the whole dataset, filtered evidence, one record, its history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from mscatlas.kb.models import ClinicalTrial, Dataset, EvidenceItem, Study
from mscatlas.kb.store.core import EvidenceFilter, StoreCore
from mscatlas.kb.store.tables import EvidenceRow, EvidenceSourceRow, RevisionRow, StudyRow, TrialRow

__all__ = ["QueryMixin"]


class QueryMixin(StoreCore):
    """Read-only queries; none of them writes to the database."""

    def dataset(self, *, only_accepted: bool = False) -> Dataset:
        """Every record in the store as a validated Dataset (ordered by id)."""
        with self._session() as session:
            # The review's studies in reference order, then the field's by id.
            study_order = (StudyRow.ref.is_(None), StudyRow.ref, StudyRow.id)
            study_rows = session.scalars(select(StudyRow).order_by(*study_order))
            studies = [Study.model_validate(r.data) for r in study_rows]
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

    def record_kinds(self) -> dict[str, str]:
        """Every stored id (trial ids upper-case) with its kind: study, evidence or trial."""
        with self._session() as session:
            kinds = dict.fromkeys(session.scalars(select(StudyRow.id)), "study")
            kinds.update(dict.fromkeys(session.scalars(select(EvidenceRow.id)), "evidence"))
            kinds.update({i.upper(): "trial" for i in session.scalars(select(TrialRow.nct_id))})
        return kinds

    def query_evidence(self, flt: EvidenceFilter | None = None) -> list[EvidenceItem]:
        """Evidence items matching every given filter (parameterised SQL only)."""
        flt = flt or EvidenceFilter()
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
        """A record by evidence id, study id (ref29) or NCT id (ids are one namespace)."""
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
