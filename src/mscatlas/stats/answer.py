"""The answer first: when do MSC products inhibit cancer, and when do they promote it?

One row per MSC tissue source x product (cells, conditioned medium or extract, extracellular
vesicles) x setting (in vitro, in vivo), for naive products; engineered products (designed to
kill) get rows of their own so that they do not lend their inhibition to the naive ones. Each
row counts studies, the independent units, by their majority direction in the row
(:func:`mscatlas.stats.conflict.study_votes`), and gives the share of studies that inhibit with
its exact (Clopper-Pearson) 95% interval among the studies with a clear vote. Beside it stand
the facts a reader needs to judge the claim: how many studies, how many items were read from
the abstract only, and, for in vivo rows, how many SYRCLE items were judged at low risk.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy.stats import binomtest

from mscatlas.kb.enums import CurationStatus, Delivery, MscSource
from mscatlas.kb.models import Dataset, EvidenceItem, Study
from mscatlas.kb.terms import label
from mscatlas.stats.conflict import study_votes
from mscatlas.stats.harmonize import harmonize

__all__ = ["MIN_STUDIES", "PRODUCT", "AnswerRow", "answer_rows"]

MIN_STUDIES = 3
PRODUCT = {
    Delivery.direct_coculture: "cells",
    Delivery.transwell: "cells",
    Delivery.cell_injection: "cells",
    Delivery.co_injection: "cells",
    Delivery.conditioned_medium: "conditioned medium / extract",
    Delivery.cell_extract: "conditioned medium / extract",
    Delivery.extracellular_vesicles: "extracellular vesicles",
}
_ENGINEERED_KINDS = frozenset({"gene_modified", "virus_loaded", "sirna_loaded", "drug_loaded"})


@dataclass(frozen=True)
class AnswerRow:
    msc_source: str  # a tissue source, or "any" for the engineered rows
    product: str
    setting: str
    engineered: bool
    n_studies: int
    n_items: int
    study_votes: dict[str, int]
    share_inhibits: float | None
    ci_low: float | None
    ci_high: float | None
    abstract_only_items: int
    rob_low_share: float | None  # in vivo: share of SYRCLE answers at low risk ("yes")

    @property
    def label(self) -> str:
        source = "engineered, any source" if self.engineered else label(self.msc_source, MscSource)
        return f"{source} · {self.product} · {label(self.setting)}"

    @property
    def leaning(self) -> str:
        """inhibits / promotes when the whole 95% interval lies on one side of one half."""
        if self.ci_low is not None and self.ci_low > 0.5:
            return "inhibits"
        if self.ci_high is not None and self.ci_high < 0.5:
            return "promotes"
        return "contested"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "label": self.label, "leaning": self.leaning}


def _engineered(item: EvidenceItem) -> bool:
    return any(e.kind in _ENGINEERED_KINDS for e in item.engineering)


def _rob_low_share(studies: Sequence[Study]) -> float | None:
    answers = [a for s in studies if s.risk_of_bias for a in s.risk_of_bias.answers().values()]
    return sum(a == "yes" for a in answers) / len(answers) if answers else None


def answer_rows(dataset: Dataset, *, min_studies: int = MIN_STUDIES) -> list[AnswerRow]:
    """Rows with at least ``min_studies`` studies, most studies first."""
    items = [e for e in dataset.evidence if e.curation_status is CurationStatus.accepted]
    harmonized = {h.id: h for h in harmonize(items)}
    studies = {s.id: s for s in dataset.studies}
    groups: dict[tuple[str, str, str, bool], list[EvidenceItem]] = defaultdict(list)
    for item in items:
        engineered = _engineered(item)
        sources = ["any"] if engineered else list(dict.fromkeys(s.value for s in item.msc_source))
        for source in sources:
            groups[(source, PRODUCT[item.delivery], item.setting.value, engineered)].append(item)
    rows = []
    for (source, product, setting, engineered), members in groups.items():
        votes = Counter(study_votes([harmonized[m.id] for m in members if m.id in harmonized]).values())
        n_studies = len({m.study for m in members})
        if n_studies < min_studies:
            continue
        decided = votes["inhibits"] + votes["promotes"] + votes["no_effect"]
        share = low = high = None
        if decided:
            share = votes["inhibits"] / decided
            ci = binomtest(votes["inhibits"], decided).proportion_ci(0.95, method="exact")
            low, high = float(ci.low), float(ci.high)
        rows.append(
            AnswerRow(
                msc_source=source,
                product=product,
                setting=setting,
                engineered=engineered,
                n_studies=n_studies,
                n_items=len(members),
                study_votes=dict(votes),
                share_inhibits=share,
                ci_low=low,
                ci_high=high,
                abstract_only_items=sum(any(f.code == "abstract_only" for f in m.flags) for m in members),
                rob_low_share=_rob_low_share([studies[s] for s in {m.study for m in members} if s in studies])
                if setting == "in_vivo"
                else None,
            )
        )
    return sorted(rows, key=lambda r: (r.engineered, -r.n_studies, r.msc_source, r.product, r.setting))
