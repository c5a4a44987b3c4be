"""The review's selection beside the systematic search; risk of bias and reporting summaries."""

from __future__ import annotations

import pytest

from mscatlas.kb.models import Dataset, EvidenceItem, Study
from mscatlas.report.field_section import field_section_context
from mscatlas.stats.field import reporting_summary, review_vs_field, rob_summary

ROB = {
    "sequence_generation": "yes",
    "baseline_characteristics": "unclear",
    "allocation_concealment": "unclear",
    "random_housing": "no",
    "blinding_caregivers": "unclear",
    "random_outcome_assessment": "unclear",
    "blinding_outcome_assessors": "yes",
    "incomplete_outcome_data": "unclear",
    "selective_reporting": "unclear",
    "other_bias": "unclear",
    "assessed_from": "abstract",
}


def _study(sid: str, **over) -> Study:
    data = {"id": sid, "authors": ["Doe J"], "title": f"paper {sid}", "journal": "J", "year": 2020}
    if sid.startswith("ref"):
        data["ref"] = int(sid[3:])
    else:
        data["pmid"] = sid[4:]
    data.update(over)
    return Study.model_validate(data)


def _item(iid: str, study: str, direction: str, source: str = "bone_marrow", **over) -> EvidenceItem:
    prov = (
        {"review_location": "Table 1, row 1", "summary": "s"}
        if study.startswith("ref")
        else {"summary": "s", "primary_source_checked": True, "primary_source": "PubMed abstract"}
    )
    data = {
        "id": iid,
        "study": study,
        "refs": [int(study[3:])] if study.startswith("ref") else [],
        "msc_species": "human",
        "msc_source": [source],
        "cancer_type": "breast carcinoma",
        "cancer_class": "solid",
        "delivery": "direct_coculture",
        "setting": "in_vitro",
        "endpoint": "proliferation",
        "direction": direction,
        "evidence_level": "preclinical_in_vitro",
        "provenance": prov,
    }
    data.update(over)
    return EvidenceItem.model_validate(data)


@pytest.fixture
def dataset() -> Dataset:
    studies = [
        _study("ref1"),
        _study("ref2"),
        _study("pmid11", risk_of_bias=ROB),
        _study(
            "pmid12",
            risk_of_bias={**ROB, "random_housing": "yes", "assessed_from": "full_text"},
            reporting={
                "surface_markers": True,
                "trilineage": False,
                "passage": "P3",
                "assessed_from": "full_text",
                "ev": {"isolation_method": "ultracentrifugation", "particle_quantification": True},
            },
        ),
    ]
    evidence = [
        _item("ev-001-a", "ref1", "inhibits"),
        _item("ev-002-a", "ref2", "inhibits"),
        _item("ev-pmid11-a", "pmid11", "promotes"),
        _item("ev-pmid11-b", "pmid11", "promotes", source="adipose_tissue"),
        _item("ev-pmid12-a", "pmid12", "inhibits"),
        _item("ev-pmid12-b", "pmid12", "no_effect", curation_status="submitted"),
    ]
    return Dataset(studies=studies, evidence=evidence)


def test_review_and_search_are_counted_apart(dataset: Dataset) -> None:
    table = review_vs_field(dataset, "msc_source")
    assert table.counts["review"]["bone_marrow"]["inhibits"] == 2
    assert table.counts["search"]["bone_marrow"] == {"inhibits": 1, "promotes": 1, "no_effect": 0, "mixed": 0}
    assert table.counts["search"]["adipose_tissue"]["promotes"] == 1
    assert "adipose_tissue" not in table.counts["review"]
    assert table.studies["search"]["bone_marrow"] == 2
    assert table.share_promotes("review", "bone_marrow") == 0.0
    assert table.share_promotes("search", "bone_marrow") == 0.5
    assert table.share_promotes("review", "placenta") is None
    with pytest.raises(ValueError, match="facet"):
        review_vs_field(dataset, "endpoint")


def test_rob_summary_counts_answers_per_syrcle_item(dataset: Dataset) -> None:
    rob = rob_summary(dataset.studies)
    assert rob["n_assessed"] == 2 and rob["from_full_text"] == 1
    assert rob["items"]["random_housing"] == {"yes": 1, "no": 1, "unclear": 0}
    assert rob["items"]["other_bias"] == {"yes": 0, "no": 0, "unclear": 2}
    assert len(rob["items"]) == 10


def test_reporting_summary(dataset: Dataset) -> None:
    rep = reporting_summary(dataset.studies)
    assert rep["n_rated"] == 1 and rep["n_ev"] == 1
    trilineage = rep["fields"]["trilineage differentiation (ISCT)"]
    assert trilineage == {"reported": 0, "not_reported": 1, "unknown": 0}
    assert rep["fields"]["donor stated"] == {"reported": 0, "not_reported": 1, "unknown": 0}
    assert rep["fields"]["EV negative markers"] == {"reported": 0, "not_reported": 0, "unknown": 1}


def test_report_section_has_figures_only_with_searched_studies(dataset: Dataset) -> None:
    ctx = field_section_context(dataset)
    assert ctx["n_search_studies"] == 2 and ctx["n_review_studies"] == 2
    assert set(ctx["figures"]) == {"msc_source", "delivery", "setting"}
    assert ctx["rob_svg"].startswith("<svg")
    review_only = Dataset(studies=dataset.studies[:2], evidence=dataset.evidence[:2])
    assert field_section_context(review_only) == {}
