"""What the curated in vivo evidence offers to calibrate the xenograft model, counted honestly.

Calibrating :mod:`mscatlas.sim.xenograft` needs, per item, a number the model also computes: the
ratio of treated to control tumour size (volume, weight, area, diameter or bioluminescence) at a
time point, i.e. the log tumour-growth inhibition ``ln(treated / control)``. Directions alone
("inhibits") do not fix the model's scales. This module reads every accepted in vivo tumour-growth
item's ``outcomes`` (:class:`~mscatlas.kb.models.QuantitativeOutcome`) and keeps the ones that
yield that ratio, by explicit rules (:func:`size_ratio`):

- treated and control means both given and positive: ``treated / control``;
- a percent reduction or inhibition of a tumour size: ``1 - effect / 100``;
- a ratio of means, treated over control, of a tumour size: ``effect``;
- a fold reduction of a tumour size: ``1 / effect``.

Differences of means without the control mean, p values, survival and tumour-formation rates give
no ratio and are counted apart. The model is calibrated only when at least :data:`MIN_ITEMS`
ratios from :data:`MIN_STUDIES` studies exist (so that leaving a study out still leaves a fit);
otherwise every output that would use it says the data are too thin, with these counts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from mscatlas.kb.enums import CurationStatus, Setting
from mscatlas.kb.models import EvidenceItem, QuantitativeOutcome

__all__ = ["MIN_ITEMS", "MIN_STUDIES", "size_ratio", "tumour_growth_data"]

MIN_ITEMS = 20
MIN_STUDIES = 10
_SIZE = re.compile(
    r"tumou?r (?:volume|weight|size|area|diameter|bioluminescence)|tumou?r.*(?:volume|weight)", re.I
)


def size_ratio(outcome: QuantitativeOutcome) -> float | None:
    """Treated / control tumour size from one outcome, by the rules of the module doc (or ``None``)."""
    if not _SIZE.search(outcome.measure or ""):
        return None
    t, c = outcome.treated_mean, outcome.control_mean
    if t is not None and c is not None:
        return t / c if t > 0 and c > 0 else None
    effect, how = outcome.effect, (outcome.effect_measure or "").lower()
    if effect is None:
        return None
    if ("percent reduction" in how or "percent inhibition" in how) and 0 <= effect < 100:
        return 1.0 - effect / 100.0
    if "ratio of means" in how and "treated / control" in how and effect > 0:
        return effect
    if "fold" in how and "reduction" in how and effect > 0:
        return 1.0 / effect
    return None


def tumour_growth_data(items: Iterable[EvidenceItem]) -> dict[str, Any]:
    """Counts of the in vivo evidence by what it offers, the usable ratios, and the verdict."""
    in_vivo = [
        e for e in items if e.setting is Setting.in_vivo and e.curation_status is CurationStatus.accepted
    ]
    growth = [e for e in in_vivo if e.endpoint.value == "tumor_growth"]
    with_outcomes = [e for e in growth if e.outcomes]
    rows = []
    for e in with_outcomes:
        for o in e.outcomes:
            ratio = size_ratio(o)
            if ratio is not None:
                rows.append(
                    {
                        "id": e.id,
                        "study": e.study,
                        "delivery": e.delivery.value,
                        "measure": o.measure,
                        "time_point": o.time_point,
                        "ratio": ratio,
                        "log_ratio": math.log(ratio),
                    }
                )
    items_with_ratio = {r["id"] for r in rows}
    studies = {r["study"] for r in rows}
    enough = len(items_with_ratio) >= MIN_ITEMS and len(studies) >= MIN_STUDIES
    counts = {
        "in_vivo_items": len(in_vivo),
        "tumour_growth_items": len(growth),
        "tumour_growth_studies": len({e.study for e in growth}),
        "items_with_outcomes": len(with_outcomes),
        "outcomes": sum(len(e.outcomes) for e in with_outcomes),
        "size_ratios": len(rows),
        "items_with_size_ratio": len(items_with_ratio),
        "studies_with_size_ratio": len(studies),
    }
    by_delivery = Counter(e.delivery.value for e in growth)
    with_ratio_by_delivery = Counter(e.delivery.value for e in with_outcomes if e.id in items_with_ratio)
    n, of = counts["items_with_size_ratio"], counts["tumour_growth_items"]
    s, of_s = counts["studies_with_size_ratio"], counts["tumour_growth_studies"]
    line = (
        f"xenograft calibration: {n} of {of} curated tumour-growth items ({s} of {of_s} studies) "
        "give a treated/control tumour size; "
        + (
            "enough to calibrate"
            if enough
            else f"too thin to calibrate (needs {MIN_ITEMS} items from {MIN_STUDIES} studies): the xenograft "
            "model runs on assumed parameters and its tumour-growth inhibition is not validated out of sample"
        )
    )
    return {
        "counts": counts,
        "by_delivery": {
            d: {"items": n, "with_size_ratio": with_ratio_by_delivery.get(d, 0)}
            for d, n in sorted(by_delivery.items())
        },
        "ratios": rows,
        "enough": enough,
        "calibrated": False,
        "line": line,
    }
