"""The knowledge base from Python: ``mscatlas.open()`` and the :class:`Atlas` handle.

A thin layer over the store and the analyses, for notebooks::

    import mscatlas
    atlas = mscatlas.open()                       # the default store, seeded from the shipped data
    items = atlas.evidence(msc_source="adipose_tissue", setting="in_vivo")
    items.to_pandas().groupby("direction").size()  # pandas is optional
    atlas.meta([0.1, 0.3], [0.01, 0.02])             # random-effects meta-analysis (metafor's rma)

Filter names are those of the command line (``mscatlas query --help``). Results are typed records
(pydantic models) in a :class:`Records` list, with ``to_pandas()`` when pandas is installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any, Generic, TypeVar

from mscatlas.kb.models import ClinicalTrial, EvidenceItem, Study
from mscatlas.kb.store import EvidenceFilter, Store

__all__ = ["Atlas", "Records", "open_atlas"]

R = TypeVar("R", EvidenceItem, Study, ClinicalTrial)


class Records(list[R], Generic[R]):
    """A list of records that can become a pandas DataFrame (one row per record, JSON field values)."""

    def to_pandas(self) -> Any:
        try:
            import pandas as pd
        except ImportError as exc:  # pandas is an optional extra
            raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
        return pd.json_normalize([r.model_dump(mode="json") for r in self], max_level=0)


def _check(filters: dict[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(filters) - set(allowed))
    if unknown:
        raise TypeError(f"unknown {what} filter(s) {unknown}; known: {sorted(allowed)}")


class Atlas:
    """A handle on one store. Close it with :meth:`close` or use it as a context manager."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> Atlas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def evidence(self, **filters: str) -> Records[EvidenceItem]:
        """Evidence items; filters: msc_source, cancer, delivery, direction, setting, endpoint, study."""
        _check(filters, [f.name for f in fields(EvidenceFilter)], "evidence")
        return Records(self.store.query_evidence(EvidenceFilter(**filters)))

    def studies(self, *, in_review: bool | None = None, with_evidence: bool | None = None) -> Records[Study]:
        """Studies; ``in_review`` splits the review's references from the search's studies."""
        dataset = self.store.dataset()
        cited = {e.study for e in dataset.evidence}
        return Records(
            s
            for s in dataset.studies
            if (in_review is None or s.in_review == in_review)
            and (with_evidence is None or (s.id in cited) == with_evidence)
        )

    def trials(self, **filters: str) -> Records[ClinicalTrial]:
        """Trials; filters: purpose, status, product, registry (exact values)."""
        allowed = ("purpose", "status", "product", "registry")
        _check(filters, allowed, "trial")

        def value(trial: ClinicalTrial, name: str) -> str | None:
            v = getattr(trial, name)
            return getattr(v, "value", v)

        return Records(
            t for t in self.store.dataset().trials if all(value(t, k) == v for k, v in filters.items())
        )

    def show(self, record_id: str) -> EvidenceItem | Study | ClinicalTrial:
        """One record by id (evidence id, study id such as ref29 or pmid123, trial id)."""
        record = self.store.get(record_id)
        if record is None and record_id.isdigit():
            record = self.store.get(f"ref{record_id}")
        if record is None:
            raise KeyError(f"no record '{record_id}'")
        return record

    def synthesis(self) -> list[Any]:
        """The answer rows: share of studies that inhibit per source x product x setting."""
        from mscatlas.stats.answer import answer_rows

        return answer_rows(self.store.dataset())

    def meta(
        self,
        yi: Sequence[float],
        vi: Sequence[float],
        *,
        method: str = "REML",
        random: tuple[Sequence[Any], Sequence[Any]] | None = None,
    ) -> Any:
        """A random-effects meta-analysis as metafor's ``rma``; with ``random=(outer, inner)`` labels,
        the multilevel model of ``rma.mv(random = ~ 1 | outer/inner)``."""
        if random is None:
            from mscatlas.stats.meta_model import rma

            return rma(yi, vi, method=method)
        from mscatlas.stats.multilevel import rma_mv

        outer, inner = random
        return rma_mv(yi, vi, outer=outer, inner=inner, method=method)


def open_atlas(db: str | None = None) -> Atlas:
    """Open the store at ``db`` (default: MSCATLAS_DATABASE_URL or the user data dir)."""
    return Atlas(Store.open(db))
