"""PRISMA 2020 flow counts from the intake tables, and the flow diagram as SVG.

Counts (Page et al. 2021, BMJ 372:n71, the flow diagram for updated reviews):

- identified: records each search returned, per source and per query;
- duplicates_removed: records that duplicate an earlier record (across queries and batches);
- already_in_base: records of studies the knowledge base already held (the review's
  references: "studies included in the previous version");
- screened: unique records with a settled title/abstract (or full-text) decision;
  ``awaiting_screening`` have none, ``unresolved`` are two-reviewer conflicts or wait for a
  second reviewer;
- excluded: records excluded at title/abstract, with reasons;
- sought: reports sought for retrieval (included or 'maybe' at title/abstract, or with a
  full-text decision); assessed: reports with a settled full-text decision; excluded_full_text
  with reasons (a report also counts as assessed when its study was curated with evidence:
  curation reads the primary source); ``not_assessed`` = sought - assessed (not yet read, or
  not retrieved);
- included: new studies with at least one evidence item in the base (a candidate counts when it
  was made a study, or a study shares its PMID or DOI); ``included_awaiting_extraction``: included
  candidates with no evidence yet; previous_studies: the review's studies with evidence.

The diagram is drawn by hand in SVG (boxes, text and arrows): it is a fixed layout, and plain
SVG keeps it small, searchable and the same in the report and on the web.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from mscatlas.intake.store import IntakeStore
from mscatlas.kb.models import Dataset

__all__ = ["prisma_counts", "prisma_svg"]

NO_REASON = "no reason given"


def prisma_counts(intake: IntakeStore, dataset: Dataset | None = None) -> dict[str, Any]:
    """The PRISMA 2020 counts of everything in ``intake`` (and the base's studies and evidence)."""
    dataset = dataset or intake.store.dataset()
    searches = intake.searches()
    hits = intake.hits()
    identified_by_source: Counter[str] = Counter()
    for s in searches:
        identified_by_source[s["source"]] += s["returned"]
    duplicates = sum(1 for h in hits if h["reason"] and h["candidate"])
    already = sum(1 for h in hits if h["study"])
    states = intake.states()
    settled = {"include", "exclude", "maybe"}
    screened = {c for c, s in states.items() if s.status in settled}
    ta_excluded = Counter(
        s.reason or NO_REASON
        for s in states.values()
        if s.stage == "title_abstract" and s.status == "exclude"
    )
    sought = {
        c
        for c, s in states.items()
        if s.stage == "full_text" or (s.stage == "title_abstract" and s.status in ("include", "maybe"))
    }
    with_evidence = {e.study for e in dataset.evidence}
    by_pmid = {s.pmid: s.id for s in dataset.studies if s.pmid}
    by_doi = {s.doi.lower(): s.id for s in dataset.studies if s.doi}
    included, awaiting_extraction, extracted = set(), set(), set()
    candidates = {c.id: c for c in intake.candidates()}
    for cid, state in states.items():
        if state.status != "include":
            continue
        c = candidates[cid]
        study = c.study or by_pmid.get(c.pmid or "") or by_doi.get(c.doi or "")
        if study and study in with_evidence:
            included.add(study)
            extracted.add(cid)
        else:
            awaiting_extraction.add(cid)
    # A report counts as assessed with a settled full-text decision, or when its study was
    # curated (evidence items are extracted from the primary source, which was read).
    assessed = {
        c
        for c in sought
        if (states[c].stage == "full_text" and states[c].status in settled) or c in extracted
    }
    ft_excluded = Counter(states[c].reason or NO_REASON for c in assessed if states[c].status == "exclude")
    previous = {s.id for s in dataset.studies if s.ref is not None and s.id in with_evidence}
    new_studies = included - previous
    return {
        "identified": {
            "total": sum(identified_by_source.values()),
            "by_source": dict(sorted(identified_by_source.items())),
            "by_query": {s["id"]: s["returned"] for s in searches},
        },
        "duplicates_removed": duplicates,
        "already_in_base": already,
        "screened": len(screened),
        "awaiting_screening": sum(1 for s in states.values() if s.status == "unscreened"),
        "unresolved": sum(1 for s in states.values() if s.status in ("conflict", "awaiting_second")),
        "excluded": {"total": sum(ta_excluded.values()), "reasons": dict(ta_excluded.most_common())},
        "sought": len(sought),
        "assessed": len(assessed),
        "not_assessed": len(sought - assessed),
        "excluded_full_text": {
            "total": sum(ft_excluded.values()),
            "reasons": dict(ft_excluded.most_common()),
        },
        "included": len(new_studies),
        "included_studies": sorted(new_studies),
        "included_awaiting_extraction": len(awaiting_extraction),
        "previous_studies": len(previous),
        "total_studies": len(previous | new_studies),
    }


# ---------------------------------------------------------------- SVG

WIDTH, BOX_W, SIDE_X, SIDE_W = 760, 330, 420, 320
LINE_H = 15


def _box(x: float, y: float, w: float, lines: list[str], *, bold_first: bool = True) -> tuple[str, float]:
    h = 14 + LINE_H * len(lines)
    parts = [f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="#fff" stroke="#333"/>']
    for i, text in enumerate(lines):
        weight = ' font-weight="bold"' if bold_first and i == 0 else ""
        parts.append(
            f'<text x="{x + 8}" y="{y + 18 + LINE_H * i}" font-size="12"{weight}>{escape(text)}</text>'
        )
    return "".join(parts), h


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333" marker-end="url(#prisma-arrow)"/>'


def _clip(text: str, n: int = 50) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def prisma_svg(counts: dict[str, Any], *, standalone: bool = False) -> str:
    """The PRISMA 2020 flow diagram of ``counts`` (from :func:`prisma_counts`) as SVG text."""
    parts: list[str] = []
    y = 10.0
    ident = [f"Records identified (n = {counts['identified']['total']})"] + [
        _clip(f"  {source}: {n}") for source, n in counts["identified"]["by_source"].items()
    ]
    box, h = _box(10, y, BOX_W, ident)
    removed = [
        "Records removed before screening",
        f"  duplicates: {counts['duplicates_removed']}",
        f"  already in the knowledge base: {counts['already_in_base']}",
    ]
    side, sh = _box(SIDE_X, y, SIDE_W, removed)
    parts += [box, side, _arrow(10 + BOX_W, y + h / 2, SIDE_X, y + sh / 2)]
    y += max(h, sh) + 30
    parts.append(_arrow(10 + BOX_W / 2, y - 30, 10 + BOX_W / 2, y))
    screened = [
        f"Records screened (n = {counts['screened']})",
        f"  awaiting screening: {counts['awaiting_screening']}",
        f"  unresolved (two reviewers): {counts['unresolved']}",
    ]
    box, h = _box(10, y, BOX_W, screened)
    excluded = [f"Records excluded (n = {counts['excluded']['total']})"] + [
        _clip(f"  {reason}: {n}", 46) for reason, n in counts["excluded"]["reasons"].items()
    ]
    side, sh = _box(SIDE_X, y, SIDE_W, excluded)
    parts += [box, side, _arrow(10 + BOX_W, y + h / 2, SIDE_X, y + sh / 2)]
    y += max(h, sh) + 30
    parts.append(_arrow(10 + BOX_W / 2, y - 30, 10 + BOX_W / 2, y))
    box, h = _box(10, y, BOX_W, [f"Reports sought for retrieval (n = {counts['sought']})"])
    side, sh = _box(SIDE_X, y, SIDE_W, [f"Reports not yet assessed (n = {counts['not_assessed']})"])
    parts += [box, side, _arrow(10 + BOX_W, y + h / 2, SIDE_X, y + sh / 2)]
    y += max(h, sh) + 30
    parts.append(_arrow(10 + BOX_W / 2, y - 30, 10 + BOX_W / 2, y))
    box, h = _box(10, y, BOX_W, [f"Reports assessed for eligibility (n = {counts['assessed']})"])
    ft = counts["excluded_full_text"]
    side, sh = _box(
        SIDE_X,
        y,
        SIDE_W,
        [f"Reports excluded (n = {ft['total']})"]
        + [_clip(f"  {r}: {n}", 46) for r, n in ft["reasons"].items()],
    )
    parts += [box, side, _arrow(10 + BOX_W, y + h / 2, SIDE_X, y + sh / 2)]
    y += max(h, sh) + 30
    parts.append(_arrow(10 + BOX_W / 2, y - 30, 10 + BOX_W / 2, y))
    included = [
        f"New studies included (n = {counts['included']})",
        f"  included, awaiting extraction: {counts['included_awaiting_extraction']}",
        f"Studies of the previous version: {counts['previous_studies']}",
        f"Total studies with evidence: {counts['total_studies']}",
    ]
    box, h = _box(10, y, BOX_W, included)
    parts.append(box)
    height = y + h + 10
    namespace = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    head = '<?xml version="1.0" encoding="utf-8"?>\n' if standalone else ""
    return (
        f'{head}<svg{namespace} class="prisma" role="img" aria-label="PRISMA 2020 flow diagram" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
        'font-family="sans-serif">'
        '<defs><marker id="prisma-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>'
        + "".join(parts)
        + "</svg>"
    )
