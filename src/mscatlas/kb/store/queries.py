"""Reading the knowledge base: the whole dataset, filtered evidence, one record, its history.

Validating a stored record into its model costs far more than reading it (vocabulary and dose
checks: about a millisecond an item), and a web page may read every item. Validated models are
therefore cached by their content hash, which names exactly one content: a changed record has
a new hash, so the cache can never serve stale data, in any process. Callers get a shallow copy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from mscatlas.kb.models import ClinicalTrial, Dataset, EvidenceItem, Study
from mscatlas.kb.store.core import EvidenceFilter, StoreCore
from mscatlas.kb.store.tables import EvidenceRow, EvidenceSourceRow, RevisionRow, StudyRow, TrialRow

__all__ = ["QueryMixin"]


MODEL_CACHE_SIZE = 100_000  # validated records kept per store object (least recently used go)
Model = Study | EvidenceItem | ClinicalTrial
MODELS: dict[str, type[Study] | type[EvidenceItem] | type[ClinicalTrial]] = {
    "study": Study,
    "evidence": EvidenceItem,
    "trial": ClinicalTrial,
}


class QueryMixin(StoreCore):
    """Read-only queries; none of them writes to the database."""

    def _model(self, kind: str, digest: str, data: dict[str, Any]) -> Any:
        """The validated model of stored ``data`` (whose content hash is ``digest``)."""
        key = (kind, digest)
        with self._models_lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
        if model is None:
            model = MODELS[kind].model_validate(data)
            with self._models_lock:
                self._models[key] = model
                while len(self._models) > MODEL_CACHE_SIZE:
                    self._models.popitem(last=False)
        return model.model_copy()

    def dataset(self, *, only_accepted: bool = False) -> Dataset:
        """Every record in the store as a validated Dataset (ordered by id)."""
        with self._session() as session:
            # The review's studies in reference order, then the field's by id.
            study_order = (StudyRow.ref.is_(None), StudyRow.ref, StudyRow.id)
            study_rows = session.execute(
                select(StudyRow.content_hash, StudyRow.data).order_by(*study_order)
            ).all()
            query = select(EvidenceRow.content_hash, EvidenceRow.data).order_by(EvidenceRow.id)
            if only_accepted:
                query = query.where(EvidenceRow.curation_status == "accepted")
            evidence_rows = session.execute(query).all()
            trial_rows = session.execute(
                select(TrialRow.content_hash, TrialRow.data).order_by(TrialRow.nct_id)
            ).all()
        # The records come from the store, checked when they were written and by the model cache:
        # model_construct keeps the Dataset's own cross-record checks from running again.
        return Dataset.model_construct(
            studies=[self._model("study", h, d) for h, d in study_rows],
            evidence=[self._model("evidence", h, d) for h, d in evidence_rows],
            trials=[self._model("trial", h, d) for h, d in trial_rows],
        )

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
        query = select(EvidenceRow.content_hash, EvidenceRow.data).order_by(EvidenceRow.id)
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
            rows = session.execute(query).all()
        items = [self._model("evidence", h, d) for h, d in rows]
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
            for kind, table, key in (
                ("evidence", EvidenceRow, EvidenceRow.id),
                ("study", StudyRow, StudyRow.id),
                ("trial", TrialRow, TrialRow.nct_id),
            ):
                # NCT ids are matched case-insensitively; other registries' ids (ChiCTR-...) as given.
                wanted = [record_id, record_id.upper()] if kind == "trial" else [record_id]
                found = session.execute(select(table.content_hash, table.data).where(key.in_(wanted))).first()
                if found is not None:
                    return self._model(kind, found[0], found[1])
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
