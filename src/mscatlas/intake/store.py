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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mscatlas.intake.citation import Citation, IntakeProblem
from mscatlas.intake.dedup import DedupIndex, Match
from mscatlas.intake.screening import Decision, ScreeningState, check_decision, screening_state
from mscatlas.intake.shipped import ShippedIntake, read_shipped_intake, shipped_digest
from mscatlas.intake.tables import INTAKE_TABLES, CandidateRow, DecisionRow, HitRow, SearchRow
from mscatlas.kb.models import Dataset, Study
from mscatlas.kb.store import Base, MetaRow, Store

__all__ = ["Candidate", "ImportResult", "IntakeStore", "SeedResult"]

REVIEWERS_KEY = "intake_reviewers"
SEED_KEY = "intake_seed_hash"
SEED_PROBLEMS_KEY = "intake_seed_problems"  # the shipped files' problems, as JSON, at the last seeding


@dataclass
class SeedResult:
    """What seeding the shipped search added, and the problems of the shipped files."""

    searches: int = 0
    records: int = 0
    candidates: int = 0
    decisions: int = 0
    on_known_studies: int = 0  # decisions on records that are studies of the base already
    problems: list[IntakeProblem] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    id: str
    title: str
    abstract: str | None
    authors: list[str]
    year: int | None
    journal: str | None
    pmid: str | None
    pmcid: str | None
    doi: str | None
    publication_types: list[str]
    retracted: bool
    search: str
    found_at: datetime
    study: str | None
    found_by: list[str] = field(default_factory=list)  # every search that returned it

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["found_at"] = self.found_at.isoformat()
        return out

    def citation(self) -> Citation:
        return Citation(
            title=self.title,
            abstract=self.abstract,
            authors=list(self.authors),
            year=self.year,
            journal=self.journal,
            pmid=self.pmid,
            pmcid=self.pmcid,
            doi=self.doi,
            publication_types=list(self.publication_types),
            retracted=self.retracted,
            origin=self.id,
        )


@dataclass(frozen=True)
class ImportResult:
    search: str
    imported: int
    duplicates: list[dict[str, str]]
    candidates: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "candidates": self.candidates,
            "search": self.search,
        }


def _candidate(row: CandidateRow, found_by: Sequence[str] = ()) -> Candidate:
    return Candidate(
        id=row.id,
        title=row.title,
        abstract=row.abstract,
        authors=list(row.authors or []),
        year=row.year,
        journal=row.journal,
        pmid=row.pmid,
        pmcid=row.pmcid,
        doi=row.doi,
        publication_types=list(row.publication_types or []),
        retracted=bool(row.retracted),
        search=row.search_id,
        found_at=row.found_at if row.found_at.tzinfo else row.found_at.replace(tzinfo=UTC),
        study=row.study_id,
        found_by=list(found_by) or [row.search_id],
    )


def is_candidate_id(value: str) -> bool:
    """Candidate ids are 'c<number>' (study ids never are: they are ref<N>, pmid<N> or a name)."""
    return value.startswith("c") and value[1:].isdigit()


def parse_candidate_id(candidate_id: str) -> int:
    if not is_candidate_id(candidate_id):
        raise KeyError(f"'{candidate_id}' is not a candidate id (c<number>)")
    return int(candidate_id[1:])


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
            return self._import(
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

    def _import(
        self,
        session: Session,
        citations: Sequence[Citation],
        index: DedupIndex,
        *,
        source: str,
        query: str | None,
        label: str | None,
        file: str | None,
        fmt: str | None,
        batch: str | None,
        search_id: str | None,
        by: str,
        run_at: datetime | None,
    ) -> ImportResult:
        now = datetime.now(UTC)
        duplicates: list[dict[str, str]] = []
        imported = 0
        if search_id is None:
            search_id = f"s{(session.scalar(select(func.count()).select_from(SearchRow)) or 0) + 1}"
            while session.get(SearchRow, search_id) is not None:
                search_id = f"{search_id}x"
        elif session.get(SearchRow, search_id) is not None:
            raise ValueError(f"a search with id '{search_id}' is already stored")
        session.add(
            SearchRow(
                id=search_id,
                source=source,
                query=query,
                label=label,
                file=file,
                format=fmt,
                batch=batch,
                run_at=run_at or now,
                run_by=by,
                returned=len(citations),
            )
        )
        session.flush()
        # Candidate keys are given here rather than by the database, so that 10^5 records need
        # no flush each; every candidate is inserted by this method, so keys never collide.
        next_pk = (session.scalar(select(func.max(CandidateRow.pk))) or 0) + 1
        for position, citation in enumerate(citations, start=1):
            match = index.match(citation)
            record = _record(citation)
            if match is not None:
                duplicates.append(
                    {
                        "record": citation.label(),
                        "duplicate_of": match.target,
                        "reason": match.reason,
                        "detail": match.detail,
                    }
                )
                session.add(_hit(search_id, position, match, record))
                continue
            row = CandidateRow(
                pk=next_pk,
                pmid=citation.pmid,
                pmcid=citation.pmcid,
                doi=citation.doi,
                title=citation.title,
                abstract=citation.abstract,
                authors=citation.authors,
                year=citation.year,
                journal=citation.journal,
                publication_types=citation.publication_types,
                retracted=citation.retracted,
                search_id=search_id,
                found_at=run_at or now,
            )
            session.add(row)
            next_pk += 1
            imported += 1
            index.add(row.id, citation)
            session.add(HitRow(search_id=search_id, position=position, candidate_pk=row.pk, record=record))
        session.flush()
        total = session.scalar(select(func.count()).select_from(CandidateRow)) or 0
        return ImportResult(search_id, imported, duplicates, total)

    # ------------------------------------------------------------ the shipped search

    def seed_shipped(self, shipped: ShippedIntake | None = None) -> SeedResult | None:
        """Import the shipped searches and screening decisions not yet in the store (one transaction).

        Runs when the shipped intake files changed since the store last saw them; searches are
        known by their query id and decisions by (candidate, by, at, stage, decision), so
        seeding twice adds nothing.
        """
        if shipped is None:
            if self.store.get_meta(SEED_KEY) == shipped_digest():
                return None
            shipped = read_shipped_intake()
        if self.store.get_meta(SEED_KEY) == shipped.digest:
            return None
        # The studies that the shipped search itself added to the base are its included
        # records, not duplicates: only the review's studies (the previous version) are.
        index = self.dedup_index(review_only=True)
        known_decisions = {
            (d.candidate, d.by, d.at.replace(microsecond=0), d.stage, d.decision) for d in self.decisions()
        }
        result = SeedResult(problems=list(shipped.problems))
        with self.store.session() as session:
            stored = set(session.scalars(select(SearchRow.id)))
            for q in shipped.queries:
                if q.id in stored:
                    continue
                outcome = self._import(
                    session,
                    q.records,
                    index,
                    source=q.source,
                    query=q.query,
                    label=None,
                    file=q.file,
                    fmt="shipped",
                    batch=q.batch,
                    search_id=q.id,
                    by="mscatlas-seed",
                    run_at=q.run_at,
                )
                result.searches += 1
                result.records += len(q.records)
                result.candidates += outcome.imported
            for d in shipped.decisions:
                c = d.citation
                match = index.match(c)
                if match is None:
                    result.problems.append(
                        IntakeProblem(
                            d.file,
                            c.origin.removeprefix(f"{d.file} "),
                            d.line,
                            "pmid",
                            "matches no record of the shipped searches (by PMID, DOI, PMCID or title)",
                        )
                    )
                    continue
                if not is_candidate_id(match.target):
                    result.on_known_studies += 1
                    continue
                key = (match.target, d.by, d.at.replace(microsecond=0), d.stage, d.decision)
                if key in known_decisions:
                    continue
                known_decisions.add(key)
                session.add(
                    DecisionRow(
                        candidate_pk=parse_candidate_id(match.target),
                        decision=d.decision,
                        reason=d.reason,
                        note=d.note,
                        stage=d.stage,
                        by=d.by,
                        at=d.at,
                        resolves=False,
                    )
                )
                result.decisions += 1
            session.merge(MetaRow(key=SEED_KEY, value=shipped.digest))
            problems = json.dumps([p.to_dict() for p in shipped.problems], ensure_ascii=False)
            session.merge(MetaRow(key=SEED_PROBLEMS_KEY, value=problems))
        return result

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
            return _candidate(row, found_by)

    def candidates(self) -> list[Candidate]:
        with self.store.session() as session:
            found: dict[int, list[str]] = defaultdict(list)
            for pk, search in session.execute(
                select(HitRow.candidate_pk, HitRow.search_id).where(HitRow.candidate_pk.is_not(None))
            ):
                if search not in found[pk]:
                    found[pk].append(search)
            return [
                _candidate(r, found[r.pk])
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


def _record(citation: Citation) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "title": citation.title,
            "year": citation.year,
            "first_author": citation.first_author,
            **citation.identifiers,
            "origin": citation.origin,
            "line": citation.line,
        }.items()
        if v is not None
    }


def _hit(search_id: str, position: int, match: Match, record: dict[str, Any]) -> HitRow:
    is_candidate = is_candidate_id(match.target)
    return HitRow(
        search_id=search_id,
        position=position,
        candidate_pk=int(match.target[1:]) if is_candidate else None,
        study_id=None if is_candidate else match.target,
        reason=match.reason,
        score=match.score,
        detail=match.detail,
        record=record,
    )
