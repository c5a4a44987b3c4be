"""Counts over a dataset: what the report's summary and `mscatlas summary` show."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mscatlas.kb.models import Dataset

__all__ = ["summarize"]


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def summarize(dataset: Dataset) -> dict[str, Any]:
    items = dataset.evidence
    sources: Counter[str] = Counter()
    for item in items:
        sources.update({s.value for s in item.msc_source})
    flag_codes: Counter[str] = Counter(
        f.code for record in [*items, *dataset.studies, *dataset.trials] for f in record.flags
    )
    return {
        "studies": len(dataset.studies),
        "studies_with_evidence": len({e.study for e in items}),
        "evidence": len(items),
        "trials": len(dataset.trials),
        "flagged_evidence": sum(1 for e in items if e.flags),
        "flagged_studies": sum(1 for s in dataset.studies if s.flags),
        "flagged_trials": sum(1 for t in dataset.trials if t.flags),
        "evidence_checked_against_primary_source": sum(
            1 for e in items if e.provenance.primary_source_checked
        ),
        "trials_checked_against_registry": sum(
            1 for t in dataset.trials if t.provenance.primary_source_checked
        ),
        "by_curation_status": _sorted(Counter(e.curation_status.value for e in items)),
        "by_msc_source": _sorted(sources),
        "by_cancer_class": _sorted(Counter(e.cancer_class.value for e in items)),
        "by_delivery": _sorted(Counter(e.delivery.value for e in items)),
        "by_setting": _sorted(Counter(e.setting.value for e in items)),
        "by_direction": _sorted(Counter(e.direction.value for e in items)),
        "by_flag": _sorted(flag_codes),
        "trials_by_purpose": _sorted(Counter(t.purpose.value for t in dataset.trials)),
    }
