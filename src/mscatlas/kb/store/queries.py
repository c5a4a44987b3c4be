"""Reading the knowledge base: the whole dataset, filtered evidence, one record, its history.

Validating a stored record into its model costs far more than reading it (vocabulary and dose
checks: about a millisecond an item), and a web page may read every item. Validated models are
therefore cached by their content hash, which names exactly one content: a changed record has
a new hash, so the cache can never serve stale data, in any process. Callers get a shallow copy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, case, func, literal, select
from sqlalchemy.orm import Session

from mscatlas.kb.models import ClinicalTrial, Dataset, EvidenceItem, Study
from mscatlas.kb.store.core import StoreCore
from mscatlas.kb.store.filters import FACETS, SORTS, SQL_ONLY, EvidenceFilter, conditions, row_predicates
from mscatlas.kb.store.tables import NO_REF, EvidenceRow, RevisionRow, StudyRow, TrialRow

__all__ = ["QueryMixin"]


MODEL_CACHE_SIZE = 100_000  # validated records kept per store object (least recently used go)
RESULT_CACHE_SIZE = 1_000  # page keys, counts and facets kept per store version
T = TypeVar("T")
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

STUDY_ORDER = (StudyRow.ref.is_(None), StudyRow.ref, StudyRow.id)  # review's studies by reference first
# The facet and filter columns in the scan index's order (kb/store/tables.py, SCAN_INDEX_COLUMNS):
# grouping by them walks the index without sorting.
_COMBINATION_COLUMNS = (
    EvidenceRow.curation_status,
    EvidenceRow.cancer_class,
    EvidenceRow.delivery,
    EvidenceRow.setting,
    EvidenceRow.direction,
    EvidenceRow.endpoint,
    EvidenceRow.evidence_level,
    EvidenceRow.cancer_type,
    EvidenceRow.study_id,
    EvidenceRow.msc_sources,
)


def _row_values(row: dict[str, Any], facet: str) -> list[str]:
    """The values a combination of columns counts for in a facet: each MSC source; a reference
    facet's value is the review's reference number (ref29 -> 29), else the study id."""
    if facet == "msc_source":
        return [s for s in row["msc_sources"].split(",") if s]
    if facet == "reference":
        study = row["study_id"]
        return [study[3:] if study.startswith("ref") else study]
    return [row[facet]]


def _natural(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (10**9, value)


def _order_by(sort: str, order: str) -> list[Any]:
    """ORDER BY of a sort column (then id): reference sorts the review's items by reference number,
    then the field's by study id; text columns sort case-insensitively."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort column '{sort}'; known: {', '.join(SORTS)}")
    if sort == "id":
        keys: list[Any] = [EvidenceRow.id]
    elif sort == "reference":
        study = case((EvidenceRow.ref_order < NO_REF, literal("")), else_=EvidenceRow.study_id)
        keys = [EvidenceRow.ref_order, study, EvidenceRow.id]
    elif sort == "msc_source":
        keys = [EvidenceRow.msc_sources, EvidenceRow.id]
    elif sort == "cancer_type":
        keys = [func.lower(EvidenceRow.cancer_type), EvidenceRow.id]
    else:
        keys = [getattr(EvidenceRow, sort), EvidenceRow.id]
    return [k.desc() for k in keys] if order == "desc" else keys


class QueryMixin(StoreCore):
    """Read-only queries; none of them writes to the database."""

    def _cached(self, kind: str, digest: str) -> Any | None:
        with self._models_lock:
            model = self._models.get((kind, digest))
            if model is not None:
                self._models.move_to_end((kind, digest))
            return model

    def _model(self, kind: str, digest: str, data: dict[str, Any], keep: bool = True) -> Any:
        """The validated model of stored ``data`` (whose content hash is ``digest``); ``keep``:
        cache it (a streamed export of every record does not, so its memory stays flat)."""
        model = self._cached(kind, digest)
        if model is None:
            model = MODELS[kind].model_validate(data)
            if not keep:
                return model
            with self._models_lock:
                self._models[(kind, digest)] = model
                while len(self._models) > MODEL_CACHE_SIZE:
                    self._models.popitem(last=False)
        return model

    def _records(self, session: Session, kind: str, keys: Select[Any]) -> list[Any]:
        """The models of the rows ``keys`` selects as (primary key, content hash), in its order."""
        return self._models_of(session, kind, session.execute(keys).all())

    def _iter_records(self, kind: str, keys: Select[Any], chunk: int, keep: bool = True) -> Iterator[Any]:
        """The models of the rows ``keys`` selects, read and validated ``chunk`` at a time."""
        with self._session() as session:
            rows = session.execute(keys).all()  # (id, hash) pairs only
        for start in range(0, len(rows), chunk):
            with self._session() as session:
                yield from self._models_of(session, kind, rows[start : start + chunk], keep)

    def _models_of(self, session: Session, kind: str, rows: Sequence[Any], keep: bool = True) -> list[Any]:
        """The models of (primary key, content hash) rows, in their order.

        Only the rows whose content is not cached yet are read whole (reading and decoding the
        JSON of every row would cost more than the rest of a request).
        """
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
                found[key] = self._model(kind, digest, data, keep)
        return [found[key].model_copy() for key, _ in rows if key in found]

    def dataset(self, *, only_accepted: bool = False) -> Dataset:
        """Every record in the store as a validated Dataset (ordered by id)."""
        with self._session() as session:
            # The review's studies in reference order, then the field's by id.
            study_keys = select(StudyRow.id, StudyRow.content_hash).order_by(*STUDY_ORDER)
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
        """Evidence items matching every given filter, by id (FilterValueError for a value that
        names nothing; labels and synonyms are accepted, see ``filters``)."""
        return list(self.iter_evidence(flt))

    def iter_evidence(
        self, flt: EvidenceFilter | None = None, sort: str = "id", order: str = "asc", chunk: int = 500
    ) -> Iterator[EvidenceItem]:
        """Matching items in ``sort`` order, read ``chunk`` at a time (memory flat in n)."""
        where = list(conditions((flt or EvidenceFilter()).resolved()).values())
        keys = (
            select(EvidenceRow.id, EvidenceRow.content_hash).where(*where).order_by(*_order_by(sort, order))
        )
        return self._iter_records("evidence", keys, chunk)

    def iter_records(self, kind: str, *, only_accepted: bool = False, chunk: int = 500) -> Iterator[Any]:
        """Every study, evidence item or trial in the order of :meth:`dataset`, ``chunk`` at a time,
        without keeping them in the model cache: memory stays flat in n (streamed exports)."""
        if kind == "study":
            keys = select(StudyRow.id, StudyRow.content_hash).order_by(*STUDY_ORDER)
        elif kind == "evidence":
            keys = select(EvidenceRow.id, EvidenceRow.content_hash).order_by(EvidenceRow.id)
            if only_accepted:
                keys = keys.where(EvidenceRow.curation_status == "accepted")
        else:
            keys = select(TrialRow.nct_id, TrialRow.content_hash).order_by(TrialRow.nct_id)
        return self._iter_records(kind, keys, chunk, keep=False)

    def evidence_page(
        self,
        flt: EvidenceFilter | None = None,
        *,
        sort: str = "id",
        order: str = "asc",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[EvidenceItem]]:
        """(number of matching items, the items of one page in ``sort`` order), both in SQL."""
        resolved = (flt or EvidenceFilter()).resolved()
        where = list(conditions(resolved).values())
        keys = (
            select(EvidenceRow.id, EvidenceRow.content_hash).where(*where).order_by(*_order_by(sort, order))
        )

        def page_keys() -> list[Any]:
            with self._session() as session:
                return list(session.execute(keys.limit(limit).offset(offset)).all())

        total = self._count(resolved)
        rows = self._by_version(("page", resolved, sort, order, limit, offset), page_keys)
        with self._session() as session:
            return total, self._models_of(session, "evidence", rows)

    def store_version(self) -> tuple[int, int]:
        """Changes whenever a record changes: every change writes a revision (``loading``).

        (number of revisions, highest revision id). On SQLite one writer at a time commits, so ids
        are given in commit order and the highest id alone names the state: it is one index seek,
        where counting 10^5 revisions took longer than the rest of a request. Elsewhere two
        writers may commit ids out of order, and the count tells those states apart."""
        with self._session() as session:
            if self.engine.dialect.name == "sqlite":
                return 0, int(session.scalar(select(func.max(RevisionRow.id))) or 0)
            n, top = session.execute(select(func.count(RevisionRow.id), func.max(RevisionRow.id))).one()
        return int(n), int(top or 0)

    def _by_version(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        """``make()``, remembered until the store version changes (read before computing, so a
        write during the computation is never hidden)."""
        version = self.store_version()
        with self._models_lock:
            if self._results_version != version:
                self._results.clear()
                self._results_version = version
            if key in self._results:
                return self._results[key]  # type: ignore[no-any-return]
        value = make()
        with self._models_lock:
            if self._results_version == version:
                if len(self._results) >= RESULT_CACHE_SIZE:
                    self._results.clear()
                self._results[key] = value
        return value

    def evidence_facets(self, flt: EvidenceFilter | None = None) -> dict[str, dict[str, int]]:
        """For each facet, its values with the number of items matching every *other* active filter
        (so each count is what choosing the value would give), most frequent first; in SQL, and
        remembered by store version."""
        resolved = (flt or EvidenceFilter()).resolved()
        return self._by_version(("facets", resolved), lambda: self._facets(resolved))

    def _combinations(self, resolved: EvidenceFilter) -> list[tuple[dict[str, Any], int]]:
        """The distinct combinations of the facet columns among the items that match the filters
        only SQL evaluates (``SQL_ONLY``), each with its number of items: one scan of the scan
        index, grouped in its column order (no sort), remembered by store version. Counts and
        facet counts of any filter are then sums over these (far fewer than the items)."""
        sql_only = [c for name, c in conditions(resolved).items() if name in SQL_ONLY]
        key = ("combinations", resolved.q, resolved.cancer)

        def make() -> list[tuple[dict[str, Any], int]]:
            with self._session() as session:
                query = select(*_COMBINATION_COLUMNS, func.count()).where(*sql_only)
                rows = session.execute(query.group_by(*_COMBINATION_COLUMNS)).all()
            names = [c.key for c in _COMBINATION_COLUMNS]
            return [(dict(zip(names, row[:-1], strict=True)), int(row[-1])) for row in rows]

        return self._by_version(key, make)

    def _count(self, resolved: EvidenceFilter) -> int:
        """The number of items matching every filter (a sum over the combinations)."""
        tests = list(row_predicates(resolved).values())
        return sum(n for row, n in self._combinations(resolved) if all(test(row) for test in tests))

    def _facets(self, resolved: EvidenceFilter) -> dict[str, dict[str, int]]:
        tests = row_predicates(resolved)
        counts: dict[str, Counter[str]] = {facet: Counter() for facet in FACETS}
        for row, n in self._combinations(resolved):
            failed = [name for name, test in tests.items() if not test(row)]
            if len(failed) > 1:
                continue  # fails some other facet's filter, whichever facet is counted
            # Counted for every facet (all filters pass) or only for the one facet it fails.
            for facet in FACETS if not failed else [f for f in FACETS if f == failed[0]]:
                for value in _row_values(row, facet):
                    counts[facet][value] += n
        return {
            facet: dict(sorted(counter.items(), key=lambda kv: (-kv[1], _natural(kv[0]))))
            for facet, counter in counts.items()
        }

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
