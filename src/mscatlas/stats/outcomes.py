"""Meta-analysis of the quantitative outcomes curated in the knowledge base.

Outcomes are comparable when they share setting, outcome kind and measure (compared without
case). A group is pooled once it holds at least ``MIN_OUTCOMES`` outcomes with the numbers a
variance needs: group summaries as the log ratio of means (ROM, the usual scale for tumour
volume in animal studies; SMD when a mean is not positive), counts as log odds ratios.
Reported effects without a variance are listed but never pooled.

Dependence: when studies contribute several outcomes to a group (several arms against one
control, several time points), the group is pooled with the multilevel model
(:func:`mscatlas.stats.multilevel.rma_mv`, ``random = ~ 1 | study/outcome``): outcomes of one
study share a study-level random effect, so a study's many rows no longer count as independent
evidence. Where every study gives one outcome the two levels cannot be told apart and the
usual random-effects model is fitted; where one study gives all the outcomes there is no
between-study variance to estimate, and the random-effects model over its outcomes is fitted
(the report states how many studies a group spans). A third level (study within lab or
group) is not modelled: no curated record names the lab.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mscatlas.kb.enums import CurationStatus
from mscatlas.kb.models import EvidenceItem, QuantitativeOutcome
from mscatlas.stats.effect_sizes import escalc
from mscatlas.stats.meta_model import MetaResult, rma
from mscatlas.stats.multilevel import MV_METHODS, MultilevelResult, rma_mv

__all__ = ["MIN_OUTCOMES", "OutcomeGroup", "group_outcomes", "meta_analyse"]

MIN_OUTCOMES = 3


@dataclass(frozen=True)
class OutcomeGroup:
    setting: str
    kind: str
    measure: str
    members: tuple[tuple[EvidenceItem, QuantitativeOutcome], ...]

    @property
    def poolable(self) -> bool:
        return self.kind in ("group_summary", "counts") and len(self.members) >= MIN_OUTCOMES

    @property
    def labels(self) -> list[str]:
        return [f"{item.id}{f' ({o.arm})' if o.arm else ''}" for item, o in self.members]


def group_outcomes(items: Sequence[EvidenceItem]) -> list[OutcomeGroup]:
    """Accepted items' outcomes grouped by setting, kind and measure, largest groups first."""
    groups: dict[tuple[str, str, str], list[tuple[EvidenceItem, QuantitativeOutcome]]] = defaultdict(list)
    for item in items:
        if item.curation_status is not CurationStatus.accepted:
            continue
        for outcome in item.outcomes:
            key = (item.setting.value, outcome.kind, outcome.measure.strip().casefold())
            groups[key].append((item, outcome))
    return sorted(
        (OutcomeGroup(*key, members=tuple(members)) for key, members in groups.items()),
        key=lambda g: (-len(g.members), g.setting, g.kind, g.measure),
    )


def meta_analyse(group: OutcomeGroup, method: str = "REML") -> tuple[str, MetaResult | MultilevelResult]:
    """Pool a group: returns the effect measure used and the fit, multilevel (outcome within
    study) when at least two studies take part and one of them gives several outcomes."""
    if not group.poolable:
        raise ValueError(
            f"group '{group.measure}' cannot be pooled ({len(group.members)} outcomes, {group.kind})"
        )
    outcomes = [o for _, o in group.members]
    if group.kind == "counts":
        data = {
            "ai": [o.treated_events for o in outcomes],
            "bi": [o.treated_total - o.treated_events for o in outcomes],  # type: ignore[operator]
            "ci": [o.control_events for o in outcomes],
            "di": [o.control_total - o.control_events for o in outcomes],  # type: ignore[operator]
        }
        measure = "OR"
    else:
        data = {
            "m1i": [o.treated_mean for o in outcomes],
            "sd1i": [o.treated_sd for o in outcomes],
            "n1i": [o.treated_n for o in outcomes],
            "m2i": [o.control_mean for o in outcomes],
            "sd2i": [o.control_sd for o in outcomes],
            "n2i": [o.control_n for o in outcomes],
        }
        means = np.asarray(data["m1i"] + data["m2i"], dtype=float)
        measure = "ROM" if bool(np.all(means > 0)) else "SMD"
    sizes = escalc(measure, data)
    studies = [item.study for item, _ in group.members]
    if len(set(studies)) >= 2 and len(set(studies)) < len(studies) and method in MV_METHODS:
        outcome_ids = [f"{item.id}#{i}" for i, (item, _) in enumerate(group.members)]
        return measure, rma_mv(sizes.yi, sizes.vi, studies, outcome_ids, method=method)
    return measure, rma(sizes.yi, sizes.vi, method=method)
