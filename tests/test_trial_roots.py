"""Trial registry ids, structured trial doses, and the preclinical roots of trials."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from mscatlas.cli import app
from mscatlas.kb.dose import DoseParseError
from mscatlas.kb.links import url_for
from mscatlas.kb.models import ClinicalTrial, EvidenceItem
from mscatlas.kb.trial_dose import RegistryId, parse_trial_dose, registry_of
from mscatlas.trials.roots import trial_roots

runner = CliRunner()

PROV = {"review_location": "not in the review", "summary": "a test trial"}


def _trial(**over) -> ClinicalTrial:
    data = {
        "nct_id": "NCT01983709",
        "title": "t",
        "treatment": "MSC",
        "msc_source": ["bone_marrow"],
        "engineered": False,
        "cancer_type": "prostate cancer",
        "purpose": "anti_tumor",
        "phases": ["PHASE1"],
        "provenance": PROV,
    }
    data.update(over)
    return ClinicalTrial.model_validate(data)


def _item(i: int, study: str, direction: str, **over) -> EvidenceItem:
    data = {
        "id": f"ev-x-{i}",
        "study": study,
        "msc_species": "human",
        "msc_source": ["bone_marrow"],
        "cancer_type": "prostate adenocarcinoma",
        "cancer_class": "solid",
        "delivery": "cell_injection",
        "setting": "in_vivo",
        "route": "intravenous",
        "endpoint": "tumor_growth",
        "direction": direction,
        "evidence_level": "preclinical_in_vivo",
        "provenance": {"summary": "s", "primary_source_checked": True, "primary_source": "abstract"},
    }
    data.update(over)
    return EvidenceItem.model_validate(data)


@pytest.mark.parametrize(
    ("trial_id", "registry"),
    [
        ("NCT01983709", "ClinicalTrials.gov"),
        ("2012-001234-56", "EudraCT"),
        ("ChiCTR-OPC-15006543", "ChiCTR"),
        ("ChiCTR2000029990", "ChiCTR"),
        ("ISRCTN12345678", "ISRCTN"),
        ("KCT0000389", "CRIS"),
    ],
)
def test_registry_ids_are_recognised(trial_id: str, registry: str) -> None:
    assert registry_of(trial_id) == registry
    assert _trial(nct_id=trial_id).registry == registry
    assert RegistryId(registry=registry, id=trial_id).id == trial_id  # usable as a cross-registration
    assert url_for("trial", trial_id) is not None  # every registry's ids link to a public page


def test_unknown_registry_format_names_the_value() -> None:
    with pytest.raises(ValidationError, match="NCT123"):
        _trial(nct_id="NCT123")
    with pytest.raises(ValidationError, match="not a EudraCT id"):
        RegistryId(registry="EudraCT", id="NCT01983709")


def test_cross_registration_links_and_roundtrip() -> None:
    trial = _trial(cross_registrations=[{"registry": "EudraCT", "id": "2012-001234-56"}])
    again = ClinicalTrial.model_validate(trial.model_dump(mode="json"))
    assert again == trial and again.registry == "ClinicalTrials.gov"
    with pytest.raises(ValidationError, match="contradicts"):
        ClinicalTrial.model_validate({**trial.model_dump(mode="json"), "registry": "EudraCT"})


@pytest.mark.parametrize(
    ("text", "per_kg", "total", "n"),
    [
        ("1 x 10^6 cells/kg", [1e6], None, None),
        ("1-2 × 10^6 MSC/kg", [1e6, 2e6], None, None),
        ("2 million cells per kg, two infusions", [2e6], None, 2),
        ("1×10^8 cells", None, [1e8], None),
        ("5 x 10(6)/kg weekly for 3 doses", [5e6], None, 3),
        ("a dose of 1 to 2*10^6 cells per kilogram (cells/kg)", [1e6, 2e6], None, None),  # NCT06075706
    ],
)
def test_trial_dose_parser(text: str, per_kg, total, n) -> None:
    dose = parse_trial_dose(text)
    assert dose.cells_per_kg == per_kg and dose.total_cells == total and dose.n_doses == n


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100 µg of exosomes per injection", {"total_protein_ug": [100.0]}),
        ("5 mg EVs", {"total_protein_ug": [5000.0]}),
        ("50-100 ug/kg protein", {"protein_ug_per_kg": [50.0, 100.0]}),
        ("2 x 10^10 particles, three doses", {"total_particles": [2e10], "n_doses": 3}),
        ("1.5 x 10^9 particles/kg", {"particles_per_kg": [1.5e9]}),
        ("1 x 10^6 cells/kg, then ganciclovir 5 mg/kg", {"cells_per_kg": [1e6]}),
    ],
)
def test_vesicle_doses_have_their_own_units(text: str, expected: dict) -> None:
    dose = parse_trial_dose(text)
    assert dose.model_dump(exclude_none=True, exclude={"text"}) == expected
    assert dose.is_cells == ("cells_per_kg" in expected)
    assert (dose.per_kg_range() is None) == (not dose.is_cells)  # vesicles stay off the cell axis
    assert dose.describe() and "None" not in dose.describe()


def test_a_dose_reads_as_people_read_it() -> None:
    two_levels = parse_trial_dose("1-2 x 10^6 cells/kg, two infusions")
    assert two_levels.describe() == "1e+06–2e+06 cells/kg, 2 doses"
    assert parse_trial_dose("100 µg of exosomes").describe() == "100 µg protein"


def test_a_drug_mass_beside_no_cells_is_not_a_dose() -> None:
    with pytest.raises(DoseParseError, match="no dose found"):
        parse_trial_dose("ganciclovir 5 mg/kg")


@pytest.mark.parametrize("text", ["5 x 10^6 per patient", "two infusions", ""])
def test_trial_dose_without_unit_or_amount_is_refused(text: str) -> None:
    with pytest.raises(DoseParseError):
        parse_trial_dose(text)


def test_field_sources_must_name_fields() -> None:
    _trial(field_sources={"dose": "registry record, Arms and Interventions"})
    with pytest.raises(ValidationError, match="unknown fields"):
        _trial(field_sources={"dosage": "x"})


def test_roots_verdicts_follow_the_stated_rule() -> None:
    trial = _trial(route="intravenous")
    inhibit = [_item(i, f"s{i}", "inhibits") for i in range(4)]
    promote = [_item(9, "s9", "promotes")]
    assert trial_roots(trial, inhibit + promote).verdict == "consistent_inhibition"  # 4/5 = 80%
    assert trial_roots(trial, [*inhibit[:3], *promote, _item(8, "s8", "promotes")]).verdict == "contested"
    assert trial_roots(trial, inhibit[:2]).route_matched_items == 2
    assert trial_roots(trial, [_item(1, "s1", "inhibits"), _item(2, "s1", "inhibits")]).verdict == "thin"
    promoting = [_item(i, f"s{i}", "promotes") for i in range(3)]
    assert trial_roots(trial, promoting).verdict == "promotion"
    # Another source, another cancer class, an EV product or an engineered item is another stratum.
    others = [
        _item(20, "t0", "inhibits", msc_source=["adipose_tissue"]),
        _item(21, "t1", "inhibits", cancer_type="acute myeloid leukemia", cancer_class="hematological"),
        _item(22, "t2", "inhibits", delivery="extracellular_vesicles"),
        _item(23, "t3", "inhibits", engineering=[{"kind": "gene_modified", "detail": "TRAIL"}]),
    ]
    assert trial_roots(trial, others).verdict == "none"


def test_engineered_trial_matches_payload() -> None:
    trial = _trial(engineered=True, engineering=["gene_modified"], payload="IFN-β")
    items = [
        _item(
            1, "s1", "inhibits", engineering=[{"kind": "gene_modified", "detail": "x", "payload": "IFN-beta"}]
        ),
        _item(
            2, "s2", "inhibits", engineering=[{"kind": "gene_modified", "detail": "x", "payload": "TRAIL"}]
        ),
    ]
    assert trial_roots(trial, items).items == ["ev-x-1"]


def test_cli_roots_json_and_unknown_id(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'roots.sqlite'}"
    result = runner.invoke(app, ["trials", "roots", "NCT01983709", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["nct_id"] == "NCT01983709" and row["verdict"] in {
        "consistent_inhibition",
        "contested",
        "promotion",
        "thin",
        "none",
    }
    assert row["n_items"] == sum(row["by_direction"].values())
    bad = runner.invoke(app, ["trials", "roots", "NCT99999999", "--db", db, "--json"])
    payload = json.loads(bad.stdout)
    assert bad.exit_code == 1 and "unknown" in payload["error"] and "NCT99999999" in json.dumps(payload)


def test_roots_of_all_trials_are_each_trials_roots() -> None:
    """roots_of_trials (items indexed once, issue 14 point 4) gives trial_roots of every trial."""
    from mscatlas.kb.shipped import shipped_dataset
    from mscatlas.trials.roots import roots_of_trials, trial_roots

    dataset = shipped_dataset()
    evidence = [*dataset.evidence, *(e.model_copy(update={"id": f"{e.id}.copy"}) for e in dataset.evidence)]
    together = roots_of_trials(dataset.trials, evidence)
    assert [r.nct_id for r in together] == [t.nct_id for t in dataset.trials]
    assert together == [trial_roots(t, evidence) for t in dataset.trials]
    assert any(r.n_items for r in together)
