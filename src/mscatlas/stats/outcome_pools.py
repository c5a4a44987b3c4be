"""Subgroup meta-analyses of the in vivo outcomes (issue 11, point 4): tumour growth by MSC
source, by delivery (cells, conditioned medium, extracellular vesicles), engineered vs naive
products, and metastasis.

Why not :mod:`mscatlas.stats.outcomes`: that module pools outcomes that share one measure
as written ("tumour volume", "tumour weight"), each on its natural scale. A subgroup here
gathers different measures of one construct (volume, weight, bioluminescence of the tumour;
nodule counts and incidence of metastasis), so the effect has to be scale-free:

- group summaries (mean, SD, n per arm) give the standardised mean difference with Hedges'
  correction (``escalc("SMD")``, metafor's ``measure="SMD"``);
- counts (events/n per arm) give the log odds ratio (``escalc("OR")``, 0.5 added to every cell
  of a table with an empty cell, as metafor does), put on the SMD scale by multiplying by
  √3/π and its variance by 3/π² (Chinn 2000, Stat Med 19:3127-31), so both kinds of metastasis
  outcome can share one pool;
- reported effects (percent inhibition, medians, ratios without a variance) cannot be pooled;
  each subgroup counts them so the report says what was left out.

Sign: treated minus control. A positive effect means more tumour or more metastasis with the
MSC product (promotion), a negative one less (inhibition). Only outcomes whose measure names a
tumour-burden quantity (see :func:`is_burden_measure`) enter, because for measures such as
survival or "tumour-free mice" a larger value means the opposite; those are counted as left out.

Dependence: as in :mod:`mscatlas.stats.outcomes`, a subgroup where some study gives several
comparisons is fitted with the multilevel model (``rma_mv``, ``random = ~ 1 | study/outcome``);
otherwise the usual random-effects model. A subgroup is pooled only with at least
``MIN_STUDIES`` studies and ``MIN_COMPARISONS`` comparisons; below that the report says it has
too few to pool.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mscatlas.kb.enums import CurationStatus
from mscatlas.kb.models import EvidenceItem, QuantitativeOutcome
from mscatlas.kb.terms import label
from mscatlas.stats.effect_sizes import escalc
from mscatlas.stats.meta_model import MetaResult, rma
from mscatlas.stats.multilevel import MultilevelResult, rma_mv

__all__ = [
    "ANALYSES",
    "MIN_COMPARISONS",
    "MIN_STUDIES",
    "Comparison",
    "PoolAnalysis",
    "SubgroupPool",
    "comparisons",
    "is_burden_measure",
    "pool_subgroups",
]

MIN_STUDIES = 2
MIN_COMPARISONS = 3
_OR_TO_SMD = math.sqrt(3.0) / math.pi

_BURDEN = re.compile(
    r"volume|weight|size|diameter|burden|mass|biolumin|area|nodule|metasta|foci|colon(y|ies)|"
    r"incidence|formation|number of tumou?rs|tumou?r number"
)
_NOT_BURDEN = re.compile(r"surviv|life ?span|free|less than|inhibition|latency|time to|delay")


def is_burden_measure(measure: str) -> bool:
    """True when a larger value of ``measure`` means more tumour or more metastasis."""
    text = measure.casefold()
    return bool(_BURDEN.search(text)) and not _NOT_BURDEN.search(text)


@dataclass(frozen=True)
class Comparison:
    """One treated-vs-control outcome on the SMD scale."""

    item: EvidenceItem
    outcome: QuantitativeOutcome
    yi: float
    vi: float

    @property
    def study(self) -> str:
        return self.item.study

    @property
    def label(self) -> str:
        arm = f" ({self.outcome.arm})" if self.outcome.arm else ""
        return f"{self.item.id}: {self.outcome.measure}{arm}"


def _effect(outcome: QuantitativeOutcome) -> tuple[float, float] | None:
    """(yi, vi) on the SMD scale, or None when the outcome carries no variance."""
    o = outcome
    if o.kind == "group_summary":
        sizes = escalc(
            "SMD",
            {
                "m1i": [o.treated_mean],
                "sd1i": [o.treated_sd],
                "n1i": [o.treated_n],
                "m2i": [o.control_mean],
                "sd2i": [o.control_sd],
                "n2i": [o.control_n],
            },
        )
        return float(sizes.yi[0]), float(sizes.vi[0])
    if o.kind == "counts":
        sizes = escalc(
            "OR",
            {
                "ai": [o.treated_events],
                "bi": [o.treated_total - o.treated_events],  # type: ignore[operator]
                "ci": [o.control_events],
                "di": [o.control_total - o.control_events],  # type: ignore[operator]
            },
        )
        return float(sizes.yi[0]) * _OR_TO_SMD, float(sizes.vi[0]) * _OR_TO_SMD**2
    return None


def comparisons(items: Sequence[EvidenceItem]) -> tuple[list[Comparison], int]:
    """Poolable comparisons of accepted in vivo items, and how many of their outcomes were left
    out (no variance, or not a tumour-burden measure)."""
    out: list[Comparison] = []
    left_out = 0
    for item in items:
        if item.curation_status is not CurationStatus.accepted or item.setting.value != "in_vivo":
            continue
        for outcome in item.outcomes:
            effect = _effect(outcome) if is_burden_measure(outcome.measure) else None
            if effect is None:
                left_out += 1
            else:
                out.append(Comparison(item, outcome, *effect))
    return out, left_out


@dataclass(frozen=True)
class SubgroupPool:
    """One subgroup of one analysis: its comparisons and, when there are enough, the fit."""

    name: str
    comparisons: tuple[Comparison, ...]
    fit: MetaResult | MultilevelResult | None
    model: str
    reason: str | None = None

    @property
    def k_studies(self) -> int:
        return len({c.study for c in self.comparisons})

    @property
    def k_comparisons(self) -> int:
        return len(self.comparisons)

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.comparisons]


@dataclass(frozen=True)
class PoolAnalysis:
    """One question (e.g. tumour growth by delivery), split into subgroups."""

    key: str
    title: str
    subgroups: tuple[SubgroupPool, ...]
    left_out: int

    @property
    def pooled(self) -> list[SubgroupPool]:
        return [s for s in self.subgroups if s.fit is not None]


def _fit(name: str, comps: Sequence[Comparison], method: str) -> SubgroupPool:
    k_studies = len({c.study for c in comps})
    if k_studies < MIN_STUDIES or len(comps) < MIN_COMPARISONS:
        studies = "study" if k_studies == 1 else "studies"
        reason = (
            f"too few to pool: {len(comps)} comparison(s) from {k_studies} {studies}"
            f" (needs at least {MIN_COMPARISONS} from {MIN_STUDIES})"
        )
        return SubgroupPool(name, tuple(comps), None, "", reason)
    yi = np.array([c.yi for c in comps])
    vi = np.array([c.vi for c in comps])
    studies = [c.study for c in comps]
    if k_studies < len(comps):
        inner = [f"{c.item.id}#{i}" for i, c in enumerate(comps)]
        fit: MetaResult | MultilevelResult = rma_mv(yi, vi, studies, inner, method=method)
        model = f"multilevel {method} (comparison within study)"
    else:
        fit = rma(yi, vi, method=method)
        model = f"random effects {method}"
    return SubgroupPool(name, tuple(comps), fit, model)


def _delivery(item: EvidenceItem) -> str:
    value = item.delivery.value
    if value in ("cell_injection", "co_injection"):
        return "cells"
    if value == "conditioned_medium":
        return "conditioned medium"
    if value == "extracellular_vesicles":
        return "extracellular vesicles"
    return label(value)


def _source(item: EvidenceItem) -> str:
    return " + ".join(label(s) for s in item.msc_source)


def _engineered(item: EvidenceItem) -> str:
    return "engineered" if item.engineering else "naive"


#: (key, title, endpoint, how an item is put in a subgroup; None keeps one subgroup)
ANALYSES: tuple[tuple[str, str, str, Callable[[EvidenceItem], str] | None], ...] = (
    ("growth_by_source", "In vivo tumour growth by MSC source", "tumor_growth", _source),
    ("growth_by_delivery", "In vivo tumour growth by delivery", "tumor_growth", _delivery),
    ("growth_by_engineering", "In vivo tumour growth: engineered vs naive", "tumor_growth", _engineered),
    ("metastasis", "Metastasis (in vivo)", "metastasis", None),
)


def pool_subgroups(items: Sequence[EvidenceItem], method: str = "REML") -> list[PoolAnalysis]:
    """Every analysis of :data:`ANALYSES`, with each subgroup pooled or marked too few."""
    comps, _ = comparisons(items)
    analyses = []
    for key, title, endpoint, split in ANALYSES:
        relevant = [i for i in items if i.setting.value == "in_vivo" and i.endpoint.value == endpoint]
        _, left_out = comparisons(relevant)
        chosen = [c for c in comps if c.item.endpoint.value == endpoint]
        groups: dict[str, list[Comparison]] = {}
        for c in chosen:
            groups.setdefault(split(c.item) if split else "all", []).append(c)
        subgroups = tuple(
            _fit(name, members, method)
            for name, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        )
        analyses.append(PoolAnalysis(key, title, subgroups, left_out))
    return analyses
