"""Landscape counts and the results gap on a small hand-built set of trials."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mscatlas.kb.models import ClinicalTrial, TrialDate
from mscatlas.report.trials_section import trials_section_context
from mscatlas.trials.landscape import landscape, latest_day

TODAY = dt.date(2024, 7, 1)


def _trial(nct: str, **fields: Any) -> ClinicalTrial:
    base: dict[str, Any] = {
        "nct_id": nct,
        "title": f"trial {nct}",
        "treatment": "MSCs",
        "msc_source": ["unspecified"],
        "engineered": False,
        "cancer_type": "Leukemia",
        "purpose": "other",
        "phases": ["PHASE1"],
        "provenance": {"review_location": "test", "summary": "hand-built for a test"},
    }
    base.update(fields)
    return ClinicalTrial.model_validate(base)


def _set() -> list[ClinicalTrial]:
    return [
        # Ended, results posted: not in the gap.
        _trial(
            "NCT00000001",
            status="COMPLETED",
            has_results=True,
            purpose="anti_tumor",
            engineered=True,
            engineering=["gene_modified"],
            msc_source=["bone_marrow"],
            start_date={"date": "2015-03", "type": "ACTUAL"},
            completion_date={"date": "2018-06-30", "type": "ACTUAL"},
        ),
        # Ended, no results but a linked publication: not in the gap.
        _trial("NCT00000002", status="TERMINATED", has_results=False, pmids=["123"], start_date="2015"),
        # Ended, nothing: in the gap, day precision.
        _trial(
            "NCT00000003",
            status="COMPLETED",
            has_results=False,
            purpose="transplant_support",
            msc_source=["umbilical_cord", "placenta"],
            phases=["PHASE1", "PHASE2"],
            start_date={"date": "2016-01-10", "type": "ACTUAL"},
            completion_date={"date": "2020-07-01", "type": "ACTUAL"},
        ),
        # Ended, nothing: in the gap, month precision, only a primary completion date.
        _trial(
            "NCT00000004",
            status="TERMINATED",
            has_results=False,
            purpose="side_effect_mitigation",
            msc_source=["adipose_tissue"],
            primary_completion_date={"date": "2022-02", "type": "ACTUAL"},
        ),
        # Ended, results field never read (curated from a mirror): unchecked, not the gap.
        _trial("NCT00000005", status="COMPLETED", completion_date="2019-06"),
        # Not ended.
        _trial("NCT00000006", status="WITHDRAWN", enrollment=0, enrollment_type="ACTUAL", has_results=False),
        _trial(
            "NCT00000007", status="RECRUITING", engineered=True, engineering=["virus_loaded", "gene_modified"]
        ),
        _trial("NCT00000008"),
    ]


def test_counts_by_category() -> None:
    result = landscape(_set(), today=TODAY)
    assert result.total == 8
    assert result.by_purpose == {
        "other": 5,
        "anti_tumor": 1,
        "side_effect_mitigation": 1,
        "transplant_support": 1,
    }
    assert result.by_phase == {"PHASE1": 7, "PHASE1/PHASE2": 1}
    assert result.by_status == {
        "COMPLETED": 3,
        "TERMINATED": 2,
        "RECRUITING": 1,
        "WITHDRAWN": 1,
        "not recorded": 1,
    }
    assert result.by_start_year == {"2015": 2, "2016": 1, "not recorded": 5}
    assert list(result.by_start_year)[-1] == "not recorded"
    # A trial with two sources counts under each: 9 source counts for 8 trials.
    assert result.by_msc_source == {
        "unspecified": 5,
        "adipose_tissue": 1,
        "bone_marrow": 1,
        "placenta": 1,
        "umbilical_cord": 1,
    }
    assert result.by_engineering == {"none": 6, "gene_modified": 2, "virus_loaded": 1}


def test_results_gap_and_years_since_completion() -> None:
    result = landscape(_set(), today=TODAY)
    assert result.ended == 5 and result.with_results == 2
    gap = {g.nct_id: g for g in result.results_gap}
    assert set(gap) == {"NCT00000003", "NCT00000004"}
    # 2020-07-01 to 2024-07-01 is 1461 days = 4.0 years.
    assert gap["NCT00000003"].years_since_completion == 4.0
    assert gap["NCT00000003"].completion == "2020-07-01"
    # Month precision counts from the month's last day: 2022-02-28 to 2024-07-01 = 854 days.
    assert gap["NCT00000004"].completion == "2022-02" and gap["NCT00000004"].completion_type == "ACTUAL"
    assert gap["NCT00000004"].years_since_completion == round(854 / 365.25, 1)
    assert [g.nct_id for g in result.unchecked] == ["NCT00000005"]
    # Another "today" moves the years, nothing else.
    later = landscape(_set(), today=dt.date(2026, 7, 1))
    assert later.results_gap[0].years_since_completion == 6.0
    assert later.to_dict()["today"] == "2026-07-01"


def test_latest_day_of_a_stated_date() -> None:
    assert latest_day(TrialDate(date="2020")) == dt.date(2020, 12, 31)
    assert latest_day(TrialDate(date="2024-02")) == dt.date(2024, 2, 29)
    assert latest_day(TrialDate(date="2023-02-03")) == dt.date(2023, 2, 3)


def test_report_section_context() -> None:
    context = trials_section_context(_set(), today=TODAY)
    assert context["landscape"].total == 8
    assert set(context["figures"]) == {
        "purpose",
        "phase",
        "status",
        "start year",
        "MSC source",
        "engineering",
        "product",
        "registry",
        "route",
    }
    for svg in context["figures"].values():
        assert svg.startswith("<svg") and "http" not in svg
    assert "transplant support" in context["figures"]["purpose"]
    assert trials_section_context([]) == {}


def test_a_results_publication_takes_a_trial_out_of_the_gap_and_the_unchecked() -> None:
    published = _trial("NCT00000101", status="COMPLETED", result_pmids=["33403362"])
    unread = _trial("NCT00000102", status="COMPLETED")
    read_none = _trial("NCT00000103", status="TERMINATED", has_results=False)
    result = landscape([published, unread, read_none], today=TODAY)
    assert (result.ended, result.with_results) == (3, 1)
    assert [g.nct_id for g in result.results_gap] == ["NCT00000103"]
    assert [g.nct_id for g in result.unchecked] == ["NCT00000102"]
    # Every ended trial is counted exactly once.
    assert result.with_results + len(result.results_gap) + len(result.unchecked) == result.ended
    assert result.by_registry == {"ClinicalTrials.gov": 3}
