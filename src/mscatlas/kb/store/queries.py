"""Reading the knowledge base: the whole dataset, filtered evidence, one record, its history.

Validating a stored record into its model costs far more than reading it (vocabulary and dose
checks: about a millisecond an item), and a web page may read every item. Validated models are
therefore cached by their content hash, which names exactly one content: a changed record has
a new hash, so the cache can never serve stale data, in any process. Callers get a shallow copy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from mscatlas.kb.models import ClinicalTrial, Dataset, EvidenceItem, Study
from mscatlas.kb.store.core import EvidenceFilter, StoreCore
from mscatlas.kb.store.tables import EvidenceRow, EvidenceSourceRow, RevisionRow, StudyRow, TrialRow
from mscatlas.kb.terms import cancer_query

__all__ = ["QueryMixin"]


MODEL_CACHE_SIZE = 100_000  # validated records kept per store object (least recently used go)
Model = Study | EvidenceItem | ClinicalTrial
TABLES: dict[str, tuple[Any, Any]] = {
    "study": (StudyRow, StudyRow.id),
    "evidence": (EvidenceRow, EvidenceRow.id),
    "trial": (TrialRow, TrialRow.nct_id),
}
MODELS: dict[str, type[Study] | type[EvidenceItem] | type[ClinicalTrial]] = {
    "study": Study,
    "evidence": EvidenceItem,
    "trial": ClinicalTrial,
}


class QueryMixin(StoreCore):
    """Read-only queries; none of them writes to the database."""

    def _cached(self, kind: str, digest: str) -> Any | None:
        with self._models_lock:
            model = self._models.get((kind, digest))
            if model is not None:
                self._models.move_to_end((kind, digest))
            return model

    def _model(self, kind: str, digest: str, data: dict[str, Any]) -> Any:
        """The validated model of stored ``data`` (whose content hash is ``digest``)."""
        model = self._cached(kind, digest)
        if model is None:
            model = MODELS[kind].model_validate(data)
            with self._models_lock:
                self._models[(kind, digest)] = model
                while len(self._models) > MODEL_CACHE_SIZE:
                    self._models.popitem(last=False)
        return model

    def _records(self, session: Session, kind: str, keys: Select[Any]) -> list[Any]:
        """The models of the rows ``keys`` selects as (primary key, content hash), in its order.

        Only the rows whose content is not cached yet are read whole (reading and decoding the
        JSON of every row would cost more than the rest of a request).
        """
        rows = session.execute(keys).all()
        found: dict[str, Any] = {}
        for key, digest in rows:
            model = self._cached(kind, digest)
            if model is not None:
                found[key] = model
        missing = [key for key, _ in rows if key not in found]
        table, column = TABLES[kind]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            query = select(column, table.content_hash, table.data).where(column.in_(chunk))
            for key, digest, data in session.execute(query):
                # The hash read with the data names it, even if the row changed in between.
                found[key] = self._model(kind, digest, data)
        return [found[key].model_copy() for key, _ in rows if key in found]

    def dataset(self, *, only_accepted: bool = False) -> Dataset:
        """Every record in the store as a validated Dataset (ordered by id)."""
        with self._session() as session:
            # The review's studies in reference order, then the field's by id.
            study_order = (StudyRow.ref.is_(None), StudyRow.ref, StudyRow.id)
            study_keys = select(StudyRow.id, StudyRow.content_hash).order_by(*study_order)
            studies = self._records(session, "study", study_keys)
            query = select(EvidenceRow.id, EvidenceRow.content_hash).order_by(EvidenceRow.id)
            if only_accepted:
                query = query.where(EvidenceRow.curation_status == "accepted")
            evidence = self._records(session, "evidence", query)
            trial_keys = select(TrialRow.nct_id, TrialRow.content_hash).order_by(TrialRow.nct_id)
            trials = self._records(session, "trial", trial_keys)
        # Every record was validated (and ids are unique keys of the tables): model_construct
        # keeps the Dataset's cross-record checks from running over them again.
        return Dataset.model_construct(studies=studies, evidence=evidence, trials=trials)

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
        query = select(EvidenceRow.id, EvidenceRow.content_hash).order_by(EvidenceRow.id)
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
            items = self._records(session, "evidence", query)
        if flt.cancer:
            # Types through OncoTree tissues and label words, classes, cell lines (kb.terms).
            wanted = cancer_query(flt.cancer)
            items = [e for e in items if wanted.matches(e.cancer_type, e.cancer_class.value, e.cell_lines)]
        return items

    def get(self, record_id: str) -> Study | EvidenceItem | ClinicalTrial | None:
        """A record by evidence id, study id (ref29) or NCT id (ids are one namespace)."""
        with self._session() as session:
            for kind in ("evidence", "study", "trial"):
                table, column = TABLES[kind]
                # NCT ids are matched case-insensitively; other registries' ids (ChiCTR-...) as given.
                wanted = [record_id, record_id.upper()] if kind == "trial" else [record_id]
                keys = select(column, table.content_hash).where(column.in_(wanted)).limit(1)
                found = self._records(session, kind, keys)
                if found:
                    return found[0]
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
