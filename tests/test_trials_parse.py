"""From recorded API v2 study JSON to ClinicalTrial records; the date model keeps schema 1 readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from mscatlas.kb.models import ClinicalTrial, TrialDate
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.trials.parse import (
    StudyParseError,
    parse_studies,
    parse_study,
    read_study_file,
    studies_from_json,
)

CTGOV = Path(__file__).parent / "data" / "ctgov"


def _recorded(name: str) -> dict:
    return json.loads((CTGOV / name).read_text(encoding="utf-8"))


def test_registry_fields_are_copied_as_stated() -> None:
    raw = _recorded("page1.json")["studies"][1]
    trial = parse_study(raw)
    ps = raw["protocolSection"]
    assert trial.nct_id == ps["identificationModule"]["nctId"]
    assert trial.title == ps["identificationModule"]["briefTitle"]
    assert trial.status == ps["statusModule"]["overallStatus"]
    assert trial.enrollment == ps["designModule"]["enrollmentInfo"]["count"]
    assert trial.enrollment_type == ps["designModule"]["enrollmentInfo"]["type"]
    assert trial.sponsor == ps["sponsorCollaboratorsModule"]["leadSponsor"]["name"]
    assert trial.conditions == ps["conditionsModule"]["conditions"]
    assert [p.value for p in trial.phases] == ps["designModule"]["phases"]
    assert trial.has_results is raw["hasResults"]
    arms = ps["armsInterventionsModule"]["armGroups"]
    assert [a.label for a in trial.arms] == [a["label"] for a in arms]
    assert trial.arms[0].intervention_names == arms[0]["interventionNames"]
    assert [(i.type, i.name) for i in trial.interventions] == [
        (i["type"], i["name"]) for i in ps["armsInterventionsModule"]["interventions"]
    ]
    # Only publications about the trial (RESULT, DERIVED) count as linked, not BACKGROUND citations.
    refs = ps["referencesModule"]["references"]
    assert trial.pmids == [r["pmid"] for r in refs if r["type"] in ("RESULT", "DERIVED")]
    assert trial.pmids and len(trial.pmids) < len(refs)
    assert trial.provenance.primary_source.startswith(f"ClinicalTrials.gov API v2 record {trial.nct_id}")
    # Classification evidence is written into the notes.
    assert "purpose transplant_support by rule" in trial.notes


@pytest.mark.parametrize(
    ("position", "expected"),
    [(0, ("2021-03", "month", "ACTUAL")), (1, ("2015-06-01", "day", "ACTUAL"))],
)
def test_start_date_keeps_precision_and_type(position: int, expected: tuple[str, str, str]) -> None:
    trial = parse_study(_recorded("page1.json")["studies"][position])
    assert (trial.start_date.date, trial.start_date.precision, trial.start_date.type) == expected


def test_year_precision_and_estimated_dates() -> None:
    (year_only,) = [t for t in read_study_file(CTGOV / "page2.json") if t.nct_id == "NCT90000004"]
    assert year_only.start_date.precision == "year" and year_only.start_date.year == 2017
    first = parse_study(_recorded("page1.json")["studies"][0])
    assert first.primary_completion_date.type == "ESTIMATED"
    assert first.completion_date.model_dump(mode="json") == {"date": "2026-06", "type": "ESTIMATED"}


def test_withdrawn_trial_with_zero_enrollment() -> None:
    (trial,) = read_study_file(CTGOV / "withdrawn.json")  # a single study object, not a page
    assert trial.status == "WITHDRAWN"
    assert trial.enrollment == 0 and trial.enrollment_type == "ACTUAL"
    # Round trip through the export form keeps it.
    again = ClinicalTrial.model_validate(trial.model_dump(mode="json"))
    assert again == trial


def test_malformed_records_name_record_and_field() -> None:
    with pytest.raises(StudyParseError) as info:
        read_study_file(CTGOV / "malformed_page.json")
    errors = {(e.record, e.field) for e in info.value.errors}
    assert errors == {
        ("record 2 (NCT90000002)", "protocolSection.statusModule.startDateStruct.date"),
        ("record 3 (NCT90000003)", "protocolSection.designModule.enrollmentInfo.count"),
        ("record 4", "protocolSection.identificationModule.nctId"),
    }
    text = str(info.value)
    assert "yyyy, yyyy-MM or yyyy-MM-dd" in text and "'01/06/2015'" in text


def test_model_level_errors_are_named_in_api_terms() -> None:
    raw = _recorded("withdrawn.json")
    raw["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = -2
    raw["protocolSection"]["designModule"]["phases"] = ["PHASE9"]
    with pytest.raises(
        StudyParseError, match=r"record 1 \(NCT90000005\): field 'protocolSection.designModule.phases'"
    ):
        parse_study(raw)
    raw["protocolSection"]["designModule"]["phases"] = ["PHASE1"]
    with pytest.raises(StudyParseError, match=r"field 'protocolSection.designModule.enrollmentInfo.count'"):
        parse_study(raw)


def test_duplicate_and_non_object_records() -> None:
    study = _recorded("withdrawn.json")
    with pytest.raises(StudyParseError) as info:
        parse_studies([study, 5, study])
    messages = [str(e) for e in info.value.errors]
    assert messages[0].startswith("record 2: a study record must be a JSON object")
    assert "duplicate of record 1 (NCT90000005)" in messages[1]


def test_missing_phases_become_na_and_page_shapes() -> None:
    study = _recorded("withdrawn.json")
    del study["protocolSection"]["designModule"]["phases"]
    assert [p.value for p in parse_study(study).phases] == ["NA"]
    assert len(studies_from_json({"studies": [study, study]})) == 2
    assert studies_from_json(study) == [study]
    with pytest.raises(StudyParseError, match="protocolSection"):
        studies_from_json({"nothing": 1})


def test_trial_dates_read_the_schema_1_string_form() -> None:
    plain = TrialDate.model_validate("2016-08")
    assert (plain.date, plain.type, plain.precision) == ("2016-08", None, "month")
    assert plain.model_dump(mode="json") == "2016-08"  # written back in the old form
    typed = TrialDate(date="2016-08-01", type="ESTIMATED")
    assert TrialDate.model_validate(typed.model_dump(mode="json")) == typed
    for bad in ("2016-13", "2016-02-30", "16-08", "2016/08"):
        with pytest.raises(ValidationError):
            TrialDate.model_validate(bad)


def test_schema_1_trials_keep_their_exported_form() -> None:
    archived = json.loads(
        (Path(__file__).parent / "data/archives/v1/export.json").read_text(encoding="utf-8")
    )
    dated = 0
    for raw in [*archived["trials"], *(t.model_dump(mode="json") for t in shipped_dataset().trials)]:
        trial = ClinicalTrial.model_validate(raw)
        dumped = trial.model_dump(mode="json")
        for key in ("start_date", "completion_date"):
            assert dumped[key] == raw.get(key)  # plain strings stay plain strings
            dated += isinstance(raw.get(key), str)
    assert dated > 0
