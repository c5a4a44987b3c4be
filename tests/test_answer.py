"""The answer-first rows: study votes per source x product x setting, exact intervals."""

from __future__ import annotations

import pytest
from scipy.stats import beta

from mscatlas.kb.models import Dataset, EvidenceItem, Study
from mscatlas.report.answer_section import answer_context
from mscatlas.stats.answer import answer_rows


def _study(n: int) -> Study:
    return Study.model_validate(
        {"id": f"pmid{n}", "pmid": str(n), "authors": ["Doe J"], "title": "t", "journal": "J", "year": 2020}
    )


def _item(n: int, letter: str, direction: str, **over) -> EvidenceItem:
    data = {
        "id": f"ev-pmid{n}-{letter}",
        "study": f"pmid{n}",
        "msc_species": "human",
        "msc_source": ["adipose_tissue"],
        "cancer_type": "breast carcinoma",
        "cancer_class": "solid",
        "delivery": "co_injection",
        "setting": "in_vivo",
        "endpoint": "tumor_growth",
        "direction": direction,
        "evidence_level": "preclinical_in_vivo",
        "provenance": {"summary": "s", "primary_source_checked": True, "primary_source": "abstract"},
    }
    data.update(over)
    return EvidenceItem.model_validate(data)


def test_rows_vote_by_study_with_exact_interval() -> None:
    # Study 1 has two promoting items and one inhibiting: it votes once, "promotes".
    items = [_item(1, "a", "promotes"), _item(1, "b", "promotes"), _item(1, "c", "inhibits")]
    items += [_item(n, "a", "promotes") for n in (2, 3)] + [_item(4, "a", "inhibits")]
    dataset = Dataset(studies=[_study(n) for n in (1, 2, 3, 4)], evidence=items)
    (row,) = answer_rows(dataset)
    assert (row.msc_source, row.product, row.setting, row.engineered) == (
        "adipose_tissue",
        "cells",
        "in_vivo",
        False,
    )
    assert row.n_studies == 4 and row.n_items == 6
    assert row.study_votes == {"promotes": 3, "inhibits": 1}
    assert row.share_inhibits == pytest.approx(0.25)
    # Clopper-Pearson bounds from the beta quantiles, computed independently.
    assert row.ci_low == pytest.approx(beta.ppf(0.025, 1, 4))
    assert row.ci_high == pytest.approx(beta.ppf(0.975, 2, 3))
    assert row.leaning == "contested"  # 4 studies cannot exclude one half


def test_engineered_rows_are_apart_and_small_rows_dropped() -> None:
    engineered = [{"kind": "gene_modified", "detail": "TRAIL", "payload": "TRAIL"}]
    items = [_item(n, "a", "inhibits", engineering=engineered) for n in range(1, 8)]
    items += [_item(8, "a", "promotes"), _item(9, "a", "promotes")]
    dataset = Dataset(studies=[_study(n) for n in range(1, 10)], evidence=items)
    rows = answer_rows(dataset)
    assert [(r.msc_source, r.engineered, r.n_studies) for r in rows] == [("any", True, 7)]
    assert rows[0].leaning == "inhibits"  # 7/7: lower bound 0.59 > 0.5
    ctx = answer_context(dataset)
    assert ctx["leaning"] == {"inhibits": 1, "promotes": 0, "contested": 0}
    assert ctx["svg"].startswith("<svg")
    assert answer_context(Dataset(studies=[_study(8)], evidence=items[7:8])) == {}
