"""Studies as people cite them: a one-line citation, and the bibliography of the studies a set
of evidence items cites (the web pages and the offline report show the same entries).

The review's references keep the review's numbers, so a "(24)" in a table is entry 24 and
links to the anchor ``ref-24``; studies the systematic search added follow, in author-year
order, each under the anchor ``study-<id>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mscatlas.kb.links import url_for
from mscatlas.kb.models import EvidenceItem, Study

__all__ = ["Reference", "bibliography", "reference_anchor", "study_citation"]


def study_citation(study: Study) -> str:
    """The study as a one-line citation: authors, title, journal, year, volume, pages."""
    authors = ", ".join(study.authors) + (" et al." if study.et_al else "")
    where = study.journal + f" {study.year}"
    if study.volume:
        where += f";{study.volume}"
        if study.issue:
            where += f"({study.issue})"
    if study.pages:
        where += f":{study.pages}"
    return f"{authors.rstrip('.')}. {study.title.rstrip('.')}. {where}."


def reference_anchor(study: Study) -> str:
    """The anchor of the study's bibliography entry: ``ref-<N>`` for the review's reference N."""
    return f"ref-{study.ref}" if study.ref is not None else f"study-{study.id}"


@dataclass(frozen=True)
class Reference:
    """One bibliography entry, with the public pages of the study's identifiers."""

    anchor: str
    number: int | None  # the review's reference number; None for a study the search added
    study_id: str
    text: str
    doi: str | None
    doi_url: str | None
    pmid: str | None
    pmid_url: str | None
    pmcid: str | None
    pmcid_url: str | None


def bibliography(studies: Iterable[Study], items: Iterable[EvidenceItem]) -> list[Reference]:
    """The studies that ``items`` cite (their study, and every review reference they name), the
    review's references first in the review's order, then the others by first author and year.
    A cited study with no record is left out (there is nothing to show for it)."""
    by_id = {s.id: s for s in studies}
    by_ref = {s.ref: s for s in by_id.values() if s.ref is not None}
    cited: dict[str, Study] = {}
    for item in items:
        for study in [by_id.get(item.study), *(by_ref.get(r) for r in item.refs)]:
            if study is not None:
                cited[study.id] = study
    ordered = sorted(
        cited.values(),
        key=lambda s: (0, s.ref, "", 0) if s.ref is not None else (1, 0, (s.authors or [""])[0], s.year),
    )
    return [
        Reference(
            anchor=reference_anchor(s),
            number=s.ref,
            study_id=s.id,
            text=study_citation(s),
            doi=s.doi,
            doi_url=url_for("doi", s.doi),
            pmid=s.pmid,
            pmid_url=url_for("pmid", s.pmid),
            pmcid=s.pmcid,
            pmcid_url=url_for("pmcid", s.pmcid),
        )
        for s in ordered
    ]
