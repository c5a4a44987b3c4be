"""The shipped systematic search (``kb/data/intake``) brought into a store: its searches, records
and screening decisions, added once per version of the shipped files (known by their digest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from mscatlas.intake.candidates import is_candidate_id, parse_candidate_id
from mscatlas.intake.citation import IntakeProblem
from mscatlas.intake.dedup import DedupIndex
from mscatlas.intake.importing import import_search
from mscatlas.intake.screening import Decision
from mscatlas.intake.shipped import ShippedIntake, read_shipped_intake, shipped_digest
from mscatlas.intake.tables import DecisionRow, SearchRow
from mscatlas.kb.store import MetaRow, Store

__all__ = ["SEED_KEY", "SEED_PROBLEMS_KEY", "SeedResult", "seed_shipped"]

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


def seed_shipped(
    store: Store,
    index: Callable[[], DedupIndex],
    decisions: Callable[[], list[Decision]],
    shipped: ShippedIntake | None = None,
) -> SeedResult | None:
    """Import the shipped searches and screening decisions not yet in the store (one transaction).

    Runs when the shipped intake files changed since the store last saw them; searches are
    known by their query id and decisions by (candidate, by, at, stage, decision), so
    seeding twice adds nothing. ``index`` gives the deduplication index to match against and
    ``decisions`` the stored decisions (both called only when the shipped files changed).
    """
    if shipped is None:
        if store.get_meta(SEED_KEY) == shipped_digest():
            return None
        shipped = read_shipped_intake()
    if store.get_meta(SEED_KEY) == shipped.digest:
        return None
    # The studies that the shipped search itself added to the base are its included
    # records, not duplicates: only the review's studies (the previous version) are.
    dedup = index()
    known_decisions = {
        (d.candidate, d.by, d.at.replace(microsecond=0), d.stage, d.decision) for d in decisions()
    }
    result = SeedResult(problems=list(shipped.problems))
    with store.session() as session:
        stored = set(session.scalars(select(SearchRow.id)))
        for q in shipped.queries:
            if q.id in stored:
                continue
            outcome = import_search(
                session,
                q.records,
                dedup,
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
            match = dedup.match(c)
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
