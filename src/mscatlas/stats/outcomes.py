"""Meta-analysis of the quantitative outcomes curated in the knowledge base.

Outcomes are comparable when they share setting, outcome kind and measure (compared without
case). A group is pooled once it holds at least ``MIN_OUTCOMES`` outcomes with the numbers a
variance needs: group summaries as the log ratio of means (ROM, the usual scale for tumour
volume in animal studies; SMD when a mean is not positive), counts as log odds ratios.
Reported effects without a variance are listed but never pooled.

Dependence: when one study contributes several outcomes to a group (several arms against one
control), they are pooled as separate rows and the control is counted more than once; the
report states how many studies a pooled group spans so a reader can judge it. A multilevel
model is not fitted here because no group yet holds more than one study's outcomes.
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


def meta_analyse(group: OutcomeGroup, method: str = "REML") -> tuple[str, MetaResult]:
    """Pool a group: returns the effect measure used and the random-effects fit."""
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
    return measure, rma(sizes.yi, sizes.vi, method=method)
