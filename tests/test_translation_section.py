"""Dose comparison on one human scale and the report's translation section."""

from __future__ import annotations

import pytest

from mscatlas.kb.models import ClinicalTrial, Dataset, EvidenceItem, Study
from mscatlas.report.translation_section import translation_section_context
from mscatlas.trials.dose_compare import dose_comparison


def _item(iid: str, cells: str | None, host: dict | None) -> EvidenceItem:
    data = {
        "id": iid,
        "study": "pmid1",
        "msc_species": "human",
        "msc_source": ["bone_marrow"],
        "cancer_type": "breast carcinoma",
        "cancer_class": "solid",
        "delivery": "cell_injection",
        "setting": "in_vivo",
        "route": "intravenous",
        "endpoint": "tumor_growth",
        "direction": "inhibits",
        "evidence_level": "preclinical_in_vivo",
        "provenance": {"summary": "s", "primary_source_checked": True, "primary_source": "abstract"},
    }
    if cells:
        data["dose"] = cells
    if host:
        data["host"] = host
    return EvidenceItem.model_validate(data)


def test_mouse_dose_becomes_a_70kg_hed_and_trials_a_per_dose_total() -> None:
    study = Study.model_validate(
        {"id": "pmid1", "pmid": "1", "authors": ["Doe J"], "title": "t", "journal": "J", "year": 2020}
    )
    trial = ClinicalTrial.model_validate(
        {
            "nct_id": "NCT00000001",
            "title": "t",
            "treatment": "MSC",
            "msc_source": ["bone_marrow"],
            "engineered": False,
            "cancer_type": "breast cancer",
            "purpose": "anti_tumor",
            "phases": ["PHASE1"],
            "dose": {"text": "1-2 x 10^6 cells/kg", "cells_per_kg": [1e6, 2e6]},
            "provenance": {"review_location": "not in the review", "summary": "s"},
        }
    )
    items = [
        _item(
            "ev-a", "1 x 10^6 cells per injection", {"species": "mouse", "immune_status": "immunodeficient"}
        ),
        _item("ev-b", "1 x 10^6 cells per injection", None),  # no host: counted, not guessed
    ]
    c = dose_comparison(Dataset(studies=[study], evidence=items, trials=[trial]))
    (p,) = c.preclinical
    # 1e6 cells in a 0.02 kg mouse = 5e7 cells/kg; x Km 3/37 = 4.054e6 cells/kg; x 70 kg.
    assert p["hed_total_70kg_bsa"] == pytest.approx(1e6 / 0.02 * 3 / 37 * 70)
    assert p["hed_total_70kg_bw"] == pytest.approx(1e6 / 0.02 * 70)
    assert c.skipped_no_host == 1
    assert c.trials == [{"nct_id": "NCT00000001", "low": 7e7, "high": 1.4e8, "purpose": "anti_tumor"}]
    ctx = translation_section_context(Dataset(studies=[study], evidence=items, trials=[trial]))
    assert ctx["roots"][0]["verdict"] == "thin" and ctx["summary"]["thin"] == 1
    assert ctx["dose_svg"].startswith("<svg")
