"""The intake as the command line and the web use it: open (seeding the shipped search), the
priority queue, the stopping estimate and the status, each a plain function over a store."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from mscatlas.intake.prisma import prisma_counts
from mscatlas.intake.ranking import Ranker
from mscatlas.intake.stopping import StoppingEstimate, stopping_estimate
from mscatlas.intake.store import Candidate, IntakeStore, SeedResult
from mscatlas.kb.models import Dataset
from mscatlas.kb.store import Store

__all__ = [
    "RELEVANT",
    "candidate_or_error",
    "labelled_rows",
    "next_candidates",
    "open_intake",
    "prisma_for_dataset",
    "screening_labels",
    "status",
    "store_stopping",
]

RELEVANT = {"include": 1, "maybe": 1, "exclude": 0}  # 'maybe' goes on to full text: relevant so far


def open_intake(store: Store, *, seed: bool = True) -> tuple[IntakeStore, SeedResult | None]:
    """The intake of ``store``, with the shipped search seeded into it when it changed."""
    intake = IntakeStore(store)
    return intake, intake.seed_shipped() if seed else None


def screening_labels(intake: IntakeStore) -> tuple[list[int], int]:
    """Relevance labels (1/0) of the screened candidates in the order they were first screened,
    and the number of candidates: what the stopping rule reads."""
    first: dict[str, dt.datetime] = {}
    for d in intake.decisions():
        first.setdefault(d.candidate, d.at)
    states = intake.states()
    labels = [
        RELEVANT[states[c].status]
        for c in sorted(first, key=lambda c: first[c])
        if states.get(c) and states[c].status in RELEVANT
    ]
    return labels, len(states)


def labelled_rows(intake: IntakeStore) -> list[dict[str, Any]]:
    """The store's screening log as a labelled set (title, abstract, label_included), in the
    order records were first screened: what `intake simulate` replays."""
    first: dict[str, dt.datetime] = {}
    for d in intake.decisions():
        first.setdefault(d.candidate, d.at)
    states = intake.states()
    candidates = {c.id: c for c in intake.candidates()}
    return [
        {
            "title": candidates[c].title,
            "abstract": candidates[c].abstract or "",
            "label_included": RELEVANT[states[c].status],
        }
        for c in sorted(first, key=lambda c: (first[c], int(c[1:])))
        if states[c].status in RELEVANT
    ]


def store_stopping(
    intake: IntakeStore, *, target_recall: float = 0.95, confidence: float = 0.95
) -> StoppingEstimate:
    labels, total = screening_labels(intake)
    return stopping_estimate(
        labels, max(total, len(labels)), target_recall=target_recall, confidence=confidence
    )


def next_candidates(
    intake: IntakeStore, *, n: int = 10, by: str | None = None, seed: int = 0, classifier: str = "logistic"
) -> list[dict[str, Any]]:
    """The ``n`` unscreened candidates most likely to be relevant (refitted on every call).

    In two-reviewer mode a candidate waiting for its second reviewer is offered to anyone but
    the reviewer who already decided (``by``).
    """
    candidates = intake.candidates()
    states = intake.states()
    decided_by: dict[str, set[str]] = defaultdict(set)
    for d in intake.decisions():
        decided_by[d.candidate].add(d.by)
    texts = [f"{c.title} {c.abstract or ''}" for c in candidates]
    labels = {
        i: RELEVANT[states[c.id].status] for i, c in enumerate(candidates) if states[c.id].status in RELEVANT
    }
    open_ = {
        i
        for i, c in enumerate(candidates)
        if states[c.id].status == "unscreened"
        or (states[c.id].status == "awaiting_second" and (by is None or by not in decided_by[c.id]))
    }
    order, scores = Ranker(classifier=classifier, seed=seed).order(texts, labels)
    out = []
    for i in order:
        if i not in open_:
            continue
        c = candidates[i]
        out.append(
            {
                "id": c.id,
                "title": c.title,
                "year": c.year,
                "journal": c.journal,
                "pmid": c.pmid,
                "doi": c.doi,
                "retracted": c.retracted,
                "score": None if scores is None else round(float(scores[i]), 4),
                "status": states[c.id].status,
            }
        )
        if len(out) >= n:
            break
    return out


def status(intake: IntakeStore, *, target_recall: float = 0.95, confidence: float = 0.95) -> dict[str, Any]:
    """Counts, PRISMA flow and the stopping rule's estimate (it only reports: nothing stops)."""
    states = intake.states()
    by_status: dict[str, int] = defaultdict(int)
    for s in states.values():
        by_status[s.status] += 1
    stop = store_stopping(intake, target_recall=target_recall, confidence=confidence)
    return {
        "candidates": len(states),
        "by_status": dict(sorted(by_status.items())),
        "reviewers": intake.reviewers,
        "disagreements": len(intake.disagreements()) if intake.reviewers > 1 else 0,
        "prisma": prisma_counts(intake),
        "shipped_problems": intake.shipped_problems(),
        "stopping": {
            "target_recall": stop.target_recall,
            "estimated_recall": stop.estimated_recall,
            "can_stop": stop.can_stop,
            "confidence": stop.confidence,
            "p_value": round(stop.p_value, 6),
            "screened": stop.screened,
            "relevant_found": stop.relevant_found,
            "note": "an estimate for the reviewers; screening never stops on its own",
        },
    }


def prisma_for_dataset(dataset: Dataset) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The PRISMA counts of the shipped search against ``dataset`` (its studies and evidence),
    computed in a new, temporary store; and the problems of the shipped search files."""
    with tempfile.TemporaryDirectory(prefix="mscatlas-prisma-") as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'prisma.sqlite'}", seed=False)
        try:
            # The intake deduplicates against the stored studies only; the evidence (10^5 items at
            # field scale, issue 14 point 4) is read from ``dataset`` by prisma_counts.
            studies_only = Dataset.model_construct(
                studies=dataset.studies, evidence=[], trials=dataset.trials
            )
            store.load(studies_only, changed_by="mscatlas-report", reason="PRISMA counts")
            intake, _ = open_intake(store)
            return prisma_counts(intake, dataset), intake.shipped_problems()
        finally:
            store.close()


def candidate_or_error(intake: IntakeStore, candidate_id: str) -> Candidate:
    candidate = intake.candidate(candidate_id)
    if candidate is None:
        raise KeyError(f"no candidate '{candidate_id}' (ids look like c12; see `mscatlas intake next`)")
    return candidate
