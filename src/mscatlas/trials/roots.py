"""Preclinical roots of a trial: the curated evidence for the same product class.

A trial's *stratum* is its product class (MSC cells, or MSC extracellular vesicles), naive or
engineered (with the payload when one is named), its MSC tissue source(s), and the class of the
cancer its patients have (solid or haematological). The preclinical items in that stratum are
counted by direction and by study, and the stratum gets a verdict:

- ``consistent_inhibition``: at least two studies, and at least 80% of the directional items
  (inhibits or promotes) inhibit;
- ``promotion``: at least two studies, and at least 80% of the directional items promote;
- ``contested``: at least two studies, and neither direction reaches 80%;
- ``thin``: evidence from a single study;
- ``none``: no preclinical item in the stratum.

The 80% threshold and the two-study minimum are fixed here, stated with every result, and
never tuned to the data. The route is reported beside the verdict: how many in vivo items used
the trial's route. A trial that treats the side effects of cancer treatment (xerostomia,
GVHD) still gets the same stratum: there the question the preclinical data answer is whether
the product could feed the patient's cancer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mscatlas.kb.enums import CancerClass, CurationStatus, Delivery, Direction, MscSource, Setting
from mscatlas.kb.models import ClinicalTrial, EvidenceItem
from mscatlas.kb.vocab import UnknownTermError, load_vocabulary

__all__ = [
    "MIN_STUDIES",
    "SHARE_THRESHOLD",
    "Roots",
    "roots_of_trials",
    "roots_summary",
    "trial_cancer_class",
    "trial_roots",
]

SHARE_THRESHOLD = 0.8
MIN_STUDIES = 2

_CELL_DELIVERIES = frozenset(
    {Delivery.direct_coculture, Delivery.transwell, Delivery.cell_injection, Delivery.co_injection}
)
_PRODUCT_DELIVERIES = {
    "cells": _CELL_DELIVERIES,
    "cells_with_hsc": _CELL_DELIVERIES,
    "extracellular_vesicles": frozenset({Delivery.extracellular_vesicles}),
    "conditioned_medium": frozenset({Delivery.conditioned_medium}),  # secretome, supernatant
}
# Wharton's jelly is part of the umbilical cord: a cord product draws on both.
_SOURCE_FAMILY = {
    MscSource.umbilical_cord: {MscSource.umbilical_cord, MscSource.wharton_jelly},
    MscSource.wharton_jelly: {MscSource.umbilical_cord, MscSource.wharton_jelly},
}
_HAEM_WORDS = re.compile(
    r"leuk|lymphom|myelom|myelodysplas|\bAML\b|\bALL\b|\bCML\b|\bCLL\b|\bMDS\b|haematolog|hematolog|"
    r"graft.versus.host|\bGVHD\b|stem cell transplant|hematopoietic|haematopoietic",
    re.IGNORECASE,
)
# Engineering kinds that make a product "engineered" (preconditioning alone does not).
_ENGINEERED_KINDS = frozenset({"gene_modified", "virus_loaded", "sirna_loaded", "drug_loaded"})


def trial_cancer_class(trial: ClinicalTrial) -> CancerClass:
    """Solid or haematological, from the curated cancer type and the registry conditions."""
    return _cancer_class(trial.cancer_type, tuple(trial.conditions), trial.title)


@cache
def _cancer_class(cancer_type: str, conditions: tuple[str, ...], title: str) -> CancerClass:
    # Remembered: a condition the vocabulary does not know costs ~10 ms (it looks for the nearest
    # terms), and every trial's class is asked for again by each page and report section.
    vocab = load_vocabulary()
    for text in [cancer_type, *conditions]:
        try:
            return CancerClass(vocab.cancer_types.get(text)["class"])
        except UnknownTermError:
            continue
    text = " ".join([cancer_type, *conditions, title])
    return CancerClass.hematological if _HAEM_WORDS.search(text) else CancerClass.solid


def _item_engineered(item: EvidenceItem) -> bool:
    return any(e.kind in _ENGINEERED_KINDS for e in item.engineering)


def _payload_matches(trial: ClinicalTrial, item: EvidenceItem) -> bool:
    if not trial.payload:
        return True
    wanted = _norm(trial.payload)
    return any(wanted in _norm(f"{e.payload or ''} {e.detail}") for e in item.engineering)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower().replace("β", "beta").replace("α", "alpha"))


@dataclass(frozen=True)
class Roots:
    """The preclinical evidence in one trial's stratum."""

    nct_id: str
    product: str
    engineered: bool
    payload: str | None
    msc_source: list[str]
    cancer_class: str
    route: str | None
    verdict: str
    by_direction: dict[str, int]
    n_items: int
    n_studies: int
    share_inhibits: float | None
    items: list[str]
    studies: list[str]
    route_matched_items: int
    rule: str = field(
        default=(
            f"consistent_inhibition / promotion: >= {MIN_STUDIES} studies and >= {SHARE_THRESHOLD:.0%} "
            "of directional items one way; contested otherwise; thin: one study; none: no items"
        )
    )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _verdict(by_direction: Counter[str], n_studies: int) -> tuple[str, float | None]:
    inhibits, promotes = by_direction[Direction.inhibits.value], by_direction[Direction.promotes.value]
    share = inhibits / (inhibits + promotes) if inhibits + promotes else None
    if n_studies == 0:
        return "none", share
    if n_studies < MIN_STUDIES:
        return "thin", share
    if share is not None and share >= SHARE_THRESHOLD:
        return "consistent_inhibition", share
    if share is not None and share <= 1 - SHARE_THRESHOLD:
        return "promotion", share
    return "contested", share


def _sources(trial: ClinicalTrial) -> set[MscSource] | None:
    """The sources whose items count; None means any (the trial does not name a source)."""
    named = {s for s in trial.msc_source if s is not MscSource.unspecified}
    if not named:
        return None
    out: set[MscSource] = set()
    for s in named:
        out |= _SOURCE_FAMILY.get(s, {s})
    return out


def trial_roots(trial: ClinicalTrial, evidence: Iterable[EvidenceItem]) -> Roots:
    """The accepted preclinical items in ``trial``'s stratum, counted, with the verdict."""
    deliveries = _PRODUCT_DELIVERIES.get(trial.product, _CELL_DELIVERIES)
    sources = _sources(trial)
    cancer_class = trial_cancer_class(trial)
    matched: list[EvidenceItem] = []
    for item in evidence:
        if item.curation_status is not CurationStatus.accepted or item.delivery not in deliveries:
            continue
        if item.cancer_class is not cancer_class:
            continue
        if sources is not None and not sources & set(item.msc_source):
            continue
        if _item_engineered(item) != trial.engineered:
            continue
        if trial.engineered and not _payload_matches(trial, item):
            continue
        matched.append(item)
    by_direction = Counter(i.direction.value for i in matched)
    studies = sorted({i.study for i in matched})
    verdict, share = _verdict(by_direction, len(studies))
    route = (trial.route or "").lower() or None
    route_matched = sum(
        1
        for i in matched
        if route and i.setting is Setting.in_vivo and i.route and route.split()[0] in i.route.lower()
    )
    return Roots(
        nct_id=trial.nct_id,
        product=trial.product,
        engineered=trial.engineered,
        payload=trial.payload,
        msc_source=[s.value for s in trial.msc_source],
        cancer_class=cancer_class.value,
        route=trial.route,
        verdict=verdict,
        by_direction={d.value: by_direction[d.value] for d in Direction},
        n_items=len(matched),
        n_studies=len(studies),
        share_inhibits=share,
        items=sorted(i.id for i in matched),
        studies=studies,
        route_matched_items=route_matched,
    )


def roots_of_trials(trials: Iterable[ClinicalTrial], evidence: Iterable[EvidenceItem]) -> list[Roots]:
    """:func:`trial_roots` of each trial, the same results with the items read once: accepted
    items by delivery and cancer class, so that each trial looks only at its own (issue 14
    point 4: trials x items was a sizeable part of the report at 10^5 items)."""
    by_stratum: dict[tuple[Delivery, CancerClass], list[EvidenceItem]] = {}
    for item in evidence:
        if item.curation_status is CurationStatus.accepted:
            by_stratum.setdefault((item.delivery, item.cancer_class), []).append(item)
    out = []
    for trial in trials:
        deliveries = _PRODUCT_DELIVERIES.get(trial.product, _CELL_DELIVERIES)
        cancer_class = trial_cancer_class(trial)
        candidates = [i for d in deliveries for i in by_stratum.get((d, cancer_class), [])]
        out.append(trial_roots(trial, candidates))
    return out


def roots_summary(roots: Sequence[Roots]) -> dict[str, int]:
    """How many trials rest on each kind of preclinical evidence."""
    counts = Counter(r.verdict for r in roots)
    return {v: counts[v] for v in ("consistent_inhibition", "contested", "promotion", "thin", "none")}
