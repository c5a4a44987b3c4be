"""Put evidence items on common scales: one tumour-inhibition axis and one dose scale per delivery.

The knowledge base already records ``direction`` as the effect on the cancer (more apoptosis of
cancer cells or less tumour volume is ``inhibits``), so the inhibition axis is a recoding of it
(+1 inhibits, -1 promotes, 0 no effect, None for mixed) kept beside the raw endpoint.

Doses are placed on the scale that fits the delivery:

- direct co-culture and transwell: log10(MSC per cancer cell) of the highest MSC ratio tested
  (the control arm 0:1 is not a dose of MSCs);
- conditioned medium: percent CM in the final medium (highest tested; dilutions converted);
- cell injection and co-injection: log10(cells per injection) (highest);
- extracellular vesicles: the amount with its unit (highest of one unit).

An item whose dose cannot be placed keeps ``dose_value=None`` and is counted, never dropped.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mscatlas.kb.enums import CurationStatus, Delivery, Direction
from mscatlas.kb.models import EvidenceItem

__all__ = ["DOSE_SCALES", "HarmonizedItem", "dose_coverage", "harmonize", "inhibition_score"]

DOSE_SCALES: dict[Delivery, str] = {
    Delivery.direct_coculture: "log10 MSC:cancer ratio",
    Delivery.transwell: "log10 MSC:cancer ratio",
    Delivery.conditioned_medium: "CM %",
    Delivery.cell_injection: "log10 cells per injection",
    Delivery.co_injection: "log10 cells per injection",
    Delivery.extracellular_vesicles: "EV amount",
    Delivery.cell_extract: "extract amount",
}

_SCORES = {Direction.inhibits: 1, Direction.promotes: -1, Direction.no_effect: 0, Direction.mixed: None}


def inhibition_score(direction: Direction) -> int | None:
    """+1 inhibits the cancer, -1 promotes it, 0 no effect, None when mixed."""
    return _SCORES[direction]


@dataclass(frozen=True)
class HarmonizedItem:
    id: str
    study: str
    msc_source: tuple[str, ...]
    msc_species: str
    engineered: bool
    cancer_type: str
    cancer_class: str
    delivery: str
    setting: str
    endpoint: str
    direction: str
    inhibition: int | None
    dose_scale: str
    dose_value: float | None
    dose_unit: str | None
    dose_dependent: bool | None


def _dose(item: EvidenceItem) -> tuple[float | None, str | None]:
    dose = item.dose
    if item.delivery in (Delivery.direct_coculture, Delivery.transwell):
        logs = [r.log10_msc_per_cancer for r in dose.ratios if r.log10_msc_per_cancer is not None]
        return (max(logs), "log10(MSC/cancer cell)") if logs else (None, None)
    if item.delivery is Delivery.conditioned_medium:
        percents = [p for p in dose.cm_percent if p > 0] + [d.percent for d in dose.cm_dilutions]
        return (max(percents), "%") if percents else (None, None)
    if item.delivery in (Delivery.cell_injection, Delivery.co_injection):
        cells = dose.cells_per_injection
        return (math.log10(max(cells)), "log10(cells)") if cells else (None, None)
    if item.delivery is Delivery.extracellular_vesicles and dose.ev_amounts:
        unit = dose.ev_amounts[0].unit
        same_unit = [a.value for a in dose.ev_amounts if a.unit == unit]
        return max(same_unit), unit
    return None, None


def harmonize(items: Iterable[EvidenceItem], *, only_accepted: bool = True) -> list[HarmonizedItem]:
    """Harmonised copies of the items (by default only accepted ones: analyses skip items that
    are still awaiting review or were rejected)."""
    out = []
    for item in items:
        if only_accepted and item.curation_status is not CurationStatus.accepted:
            continue
        value, unit = _dose(item)
        out.append(
            HarmonizedItem(
                id=item.id,
                study=item.study,
                msc_source=tuple(sorted(s.value for s in item.msc_source)),
                msc_species=item.msc_species.value,
                engineered=item.engineered,
                cancer_type=item.cancer_type,
                cancer_class=item.cancer_class.value,
                delivery=item.delivery.value,
                setting=item.setting.value,
                endpoint=item.endpoint.value,
                direction=item.direction.value,
                inhibition=inhibition_score(item.direction),
                dose_scale=DOSE_SCALES[item.delivery],
                dose_value=value,
                dose_unit=unit,
                dose_dependent=item.dose_dependent,
            )
        )
    return out


def dose_coverage(items: Sequence[HarmonizedItem]) -> dict[str, dict[str, int]]:
    """Per delivery: how many items have a dose on the delivery's scale and how many do not."""
    placed: Counter[str] = Counter(h.delivery for h in items if h.dose_value is not None)
    total: Counter[str] = Counter(h.delivery for h in items)
    return {d: {"placed": placed[d], "not_placed": total[d] - placed[d]} for d in sorted(total)}
