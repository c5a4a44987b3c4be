"""The intake in the knowledge-base store: searches, candidates, duplicates and decisions.

Every import is one transaction: a failure leaves the store as it was. Deduplication runs
against the candidates already stored and the knowledge base's studies, and every record a
search returned is kept as a hit, so the PRISMA counts (identified, duplicates removed) can
always be recomputed. A candidate becomes a study with :meth:`IntakeStore.promote`; the study
names its candidate and the search that found it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from mscatlas.intake.candidates import (
    Candidate,
    ImportResult,
    candidate_from_row,
    is_candidate_id,
    parse_candidate_id,
)
from mscatlas.intake.citation import Citation
from mscatlas.intake.dedup import DedupIndex
from mscatlas.intake.importing import import_search
from mscatlas.intake.screening import Decision, ScreeningState, check_decision, screening_state
from mscatlas.intake.seeding import SEED_PROBLEMS_KEY, SeedResult, seed_shipped
from mscatlas.intake.shipped import ShippedIntake
from mscatlas.intake.tables import INTAKE_TABLES, CandidateRow, DecisionRow, HitRow, SearchRow
from mscatlas.kb.models import Dataset, Study
from mscatlas.kb.store import Base, MetaRow, Store

# Candidate, ImportResult, SeedResult and the id helpers live in their own modules (candidates,
# seeding); they stay importable from here.
__all__ = [
    "Candidate",
    "ImportResult",
    "IntakeStore",
    "SeedResult",
    "is_candidate_id",
    "parse_candidate_id",
]


REVIEWERS_KEY = "intake_reviewers"


class IntakeStore:
    """Intake operations on a knowledge-base :class:`Store`.

    The tables come with the store's migrations (revision 0004); a store opened without
    migrating (``migrate_schema=False``) gets them created here if they are missing.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        Base.metadata.create_all(store.engine, tables=INTAKE_TABLES, checkfirst=True)

    # ------------------------------------------------------------ settings

    @property
    def reviewers(self) -> int:
        return int(self.store.get_meta(REVIEWERS_KEY) or 1)

    def set_reviewers(self, n: int) -> None:
        if n not in (1, 2):
            raise ValueError("reviewers: 1 or 2")
        with self.store.session() as session:
            session.merge(MetaRow(key=REVIEWERS_KEY, value=str(n)))

    # ------------------------------------------------------------ import

    def dedup_index(self, title_threshold: float = 95.0, *, review_only: bool = False) -> DedupIndex:
        """An index of every stored candidate and every study of the knowledge base (only the
        review's own studies with ``review_only``)."""
        index = DedupIndex(title_threshold)
        for study in self.store.iter_records("study"):  # not dataset(): no evidence is validated
            if review_only and study.ref is None:
                continue
            index.add(
                study.id,
                Citation(
                    title=study.title,
                    year=study.year,
                    authors=study.authors[:1],
                    doi=study.doi,
                    pmid=study.pmid,
                    pmcid=study.pmcid,
                ),
            )
        with self.store.session() as session:
            for row in session.scalars(select(CandidateRow)):
                index.add(
                    row.id,
                    Citation(
                        title=row.title,
                        year=row.year,
                        authors=row.authors[:1],
                        doi=row.doi,
                        pmid=row.pmid,
                        pmcid=row.pmcid,
                    ),
                )
        return index

    def import_citations(
        self,
        citations: Sequence[Citation],
        *,
        source: str,
        query: str | None = None,
        label: str | None = None,
        file: str | None = None,
        fmt: str | None = None,
        batch: str | None = None,
        search_id: str | None = None,
        by: str = "mscatlas",
        run_at: datetime | None = None,
        index: DedupIndex | None = None,
    ) -> ImportResult:
        """Store one search's records in one transaction: new ones become candidates, duplicates hits."""
        index = index if index is not None else self.dedup_index()
        with self.store.session() as session:
            return import_search(
                session,
                citations,
                index,
                source=source,
                query=query,
                label=label,
                file=file,
                fmt=fmt,
                batch=batch,
                search_id=search_id,
                by=by,
                run_at=run_at,
            )

    # ------------------------------------------------------------ the shipped search

    def seed_shipped(self, shipped: ShippedIntake | None = None) -> SeedResult | None:
        """Import the shipped searches and screening decisions not yet in the store, in one
        transaction (:func:`mscatlas.intake.seeding.seed_shipped`). The studies that the shipped
        search itself added to the base are its included records, not duplicates: only the
        review's own studies are matched against."""
        return seed_shipped(self.store, lambda: self.dedup_index(review_only=True), self.decisions, shipped)

    def shipped_problems(self) -> list[dict[str, Any]]:
        """The problems of the shipped search files when they were last seeded into this store."""
        return json.loads(self.store.get_meta(SEED_PROBLEMS_KEY) or "[]")

    # ------------------------------------------------------------ reading

    def candidate(self, candidate_id: str) -> Candidate | None:
        try:
            pk = parse_candidate_id(candidate_id)
        except KeyError:
            return None
        with self.store.session() as session:
            row = session.get(CandidateRow, pk)
            if row is None:
                return None
            found_by = list(
                dict.fromkeys(
                    session.scalars(
                        select(HitRow.search_id).where(HitRow.candidate_pk == pk).order_by(HitRow.pk)
                    )
                )
            )
            return candidate_from_row(row, found_by)

    def candidates(self) -> list[Candidate]:
        with self.store.session() as session:
            found: dict[int, list[str]] = defaultdict(list)
            for pk, search in session.execute(
                select(HitRow.candidate_pk, HitRow.search_id).where(HitRow.candidate_pk.is_not(None))
            ):
                if search not in found[pk]:
                    found[pk].append(search)
            return [
                candidate_from_row(r, found[r.pk])
                for r in session.scalars(select(CandidateRow).order_by(CandidateRow.pk))
            ]

    def searches(self) -> list[dict[str, Any]]:
        with self.store.session() as session:
            return [
                {
                    "id": r.id,
                    "source": r.source,
                    "query": r.query,
                    "label": r.label,
                    "file": r.file,
                    "format": r.format,
                    "batch": r.batch,
                    "run_at": r.run_at.isoformat(),
                    "run_by": r.run_by,
                    "returned": r.returned,
                }
                for r in session.scalars(select(SearchRow).order_by(SearchRow.run_at, SearchRow.id))
            ]

    def hits(self) -> list[dict[str, Any]]:
        """Every record every search returned, with what it became (for PRISMA and audits)."""
        with self.store.session() as session:
            return [
                {
                    "search": h.search_id,
                    "position": h.position,
                    "candidate": f"c{h.candidate_pk}" if h.candidate_pk else None,
                    "study": h.study_id,
                    "reason": h.reason,
                    "score": h.score,
                    "detail": h.detail,
                }
                for h in session.scalars(select(HitRow).order_by(HitRow.pk))
            ]

    # ------------------------------------------------------------ screening

    def screen(
        self,
        candidate_id: str,
        decision: str,
        *,
        by: str,
        reason: str | None = None,
        note: str | None = None,
        stage: str = "title_abstract",
        at: datetime | None = None,
        resolves: bool = False,
    ) -> Decision:
        """Record one decision (never overwrites: the history of decisions is kept)."""
        check_decision(decision, reason, stage)
        if not by.strip():
            raise ValueError("by: a decision needs the name of the account that made it")
        pk = parse_candidate_id(candidate_id)
        when = at or datetime.now(UTC)
        with self.store.session() as session:
            if session.get(CandidateRow, pk) is None:
                raise KeyError(f"no candidate '{candidate_id}'")
            session.add(
                DecisionRow(
                    candidate_pk=pk,
                    decision=decision,
                    reason=reason,
                    note=note or None,
                    stage=stage,
                    by=by,
                    at=when,
                    resolves=resolves,
                )
            )
        return Decision(candidate_id, decision, reason, note or None, stage, by, when, resolves)

    def decisions(self, candidate_id: str | None = None) -> list[Decision]:
        query = select(DecisionRow).order_by(DecisionRow.at, DecisionRow.pk)
        if candidate_id is not None:
            query = query.where(DecisionRow.candidate_pk == parse_candidate_id(candidate_id))
        with self.store.session() as session:
            return [
                Decision(
                    f"c{r.candidate_pk}",
                    r.decision,
                    r.reason,
                    r.note,
                    r.stage,
                    r.by,
                    r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC),
                    bool(r.resolves),
                )
                for r in session.scalars(query)
            ]

    def states(self) -> dict[str, ScreeningState]:
        """Every candidate's screening state (unscreened ones included)."""
        by_candidate: dict[str, list[Decision]] = defaultdict(list)
        for d in self.decisions():
            by_candidate[d.candidate].append(d)
        reviewers = self.reviewers
        with self.store.session() as session:
            ids = [f"c{pk}" for pk in session.scalars(select(CandidateRow.pk).order_by(CandidateRow.pk))]
        return {cid: screening_state(by_candidate.get(cid, []), reviewers) for cid in ids}

    def disagreements(self) -> list[dict[str, Any]]:
        """Candidates whose two reviewers disagree, with each reviewer's latest decision."""
        out = []
        states = self.states()
        for cid, state in states.items():
            if state.status != "conflict":
                continue
            latest = {d.by: d for d in self.decisions(cid) if d.stage == state.stage}
            out.append(
                {"candidate": cid, "stage": state.stage, "decisions": [d.to_dict() for d in latest.values()]}
            )
        return out

    # ------------------------------------------------------------ promotion

    def promote(self, candidate_id: str, *, by: str) -> Study:
        """Make a candidate a study of the knowledge base; the study keeps the link."""
        candidate = self.candidate(candidate_id)
        if candidate is None:
            raise KeyError(f"no candidate '{candidate_id}'")
        if candidate.study:
            study = self.store.get(candidate.study)
            if isinstance(study, Study):
                return study
        if candidate.pmid:
            study_id = f"pmid{candidate.pmid}"
        elif candidate.doi:
            study_id = "doi-" + "".join(ch if ch.isalnum() else "-" for ch in candidate.doi)[:56].strip("-")
        else:
            raise ValueError(f"{candidate_id}: a study needs a PMID or a DOI")
        if self.store.get(study_id) is not None:
            raise ValueError(
                f"{candidate_id}: study '{study_id}' already exists; the candidate duplicates it "
                "(exclude it with reason duplicate_report)"
            )
        study = Study.model_validate(
            {
                "id": study_id,
                "authors": candidate.authors[:6] or ["(no author listed)"],
                "et_al": len(candidate.authors) > 6,
                "title": candidate.title,
                "journal": candidate.journal or "(journal not given)",
                "year": candidate.year,
                "doi": candidate.doi,
                "pmid": candidate.pmid,
                "pmcid": candidate.pmcid,
                "candidate": candidate.id,
                "search": candidate.search,
            }
        )
        self.store.load(Dataset(studies=[study]), changed_by=by, reason=f"intake: promoted {candidate.id}")
        with self.store.session() as session:
            row = session.get(CandidateRow, parse_candidate_id(candidate.id))
            assert row is not None
            row.study_id = study.id
        return study


