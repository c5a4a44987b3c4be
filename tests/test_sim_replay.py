"""run_protocol on evidence items and the replay of the shipped knowledge base."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mscatlas.kb.models import EvidenceItem
from mscatlas.kb.store import Store
from mscatlas.sim import replay, run_protocol
from mscatlas.sim.parameters import load_parameters

DIRECTIONS = {"inhibits", "promotes", "no_effect"}


def _item(**overrides: object) -> EvidenceItem:
    data: dict[str, object] = {
        "id": "ev-999-a",
        "study": "ref32",
        "refs": [32],
        "msc_species": "human",
        "msc_source": ["bone_marrow"],
        "cancer_type": "chronic myeloid leukemia",
        "cancer_class": "hematological",
        "cell_lines": ["K562"],
        "delivery": "direct_coculture",
        "setting": "in_vitro",
        "endpoint": "proliferation",
        "direction": "inhibits",
        "evidence_level": "preclinical_in_vitro",
        "provenance": {"review_location": "test", "summary": "a test item"},
    }
    data.update(overrides)
    return EvidenceItem.model_validate(data)


def test_run_protocol_uses_the_items_ratios_and_hours() -> None:
    item = _item(dose="1:1, 1:10 (MSC:cancer)", duration={"hours": [48, 120]})
    result = run_protocol(item)
    assert result.hours == 120
    assert [d["msc_per_cancer"] for d in result.doses] == [0.1, 1.0]
    assert result.defaults_used == ()
    assert result.outcome.protocol.msc_per_cancer == 1.0  # the prediction is at the highest dose
    assert result.predicted in DIRECTIONS
    assert result.outcome.times[-1] == 120


def test_run_protocol_lists_the_defaults_it_used() -> None:
    table = load_parameters()
    result = run_protocol(_item(delivery="conditioned_medium"))
    assert set(result.defaults_used) == {"default_hours", "default_cm_percent", "conditioning_cells"}
    assert result.hours == table.value("protocol", "default_hours")
    assert result.doses[0]["cm_percent"] == table.value("protocol", "default_cm_percent")


def test_run_protocol_reads_cm_dilutions_and_ev_units() -> None:
    cm = run_protocol(_item(delivery="conditioned_medium", dose={"cm_dilutions": [{"cm": 1, "medium": 3}]}))
    assert cm.doses[0]["cm_percent"] == pytest.approx(25.0)
    ev = run_protocol(
        _item(
            delivery="extracellular_vesicles", dose={"ev_amounts": [{"value": 2e11, "unit": "particles/mL"}]}
        )
    )
    assert ev.doses[0]["ev_ug_per_ml"] == pytest.approx(
        2e11 / load_parameters().value("ev", "particles_per_ug")
    )


def test_run_protocol_refuses_in_vivo_items() -> None:
    item = _item(
        delivery="cell_injection",
        setting="in_vivo",
        endpoint="tumor_growth",
        evidence_level="preclinical_in_vivo",
    )
    with pytest.raises(ValueError, match="in vivo"):
        run_protocol(item)


def test_replay_over_the_shipped_knowledge_base(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    try:
        evidence = store.dataset().evidence
    finally:
        store.close()
    report = replay(evidence).to_dict()
    for key in ("items", "loo_accuracy", "baseline_accuracy"):
        assert key in report
    in_vitro = [
        e for e in evidence if e.setting.value == "in_vitro" and e.curation_status.value == "accepted"
    ]
    assert len(report["items"]) + len(report["skipped"]) == len(in_vitro) > 50
    observed = {e.id: e.direction.value for e in in_vitro}
    for row in report["items"]:
        assert {"id", "observed", "predicted"} <= set(row)
        assert row["observed"] == observed[row["id"]]
        assert row["predicted"] in DIRECTIONS
    scored = [r for r in report["items"] if r["observed"] != "mixed"]
    assert report["accuracy"] == pytest.approx(
        sum(r["observed"] == r["predicted"] for r in scored) / len(scored)
    )
    counts = Counter(r["observed"] for r in scored)
    assert report["baseline_accuracy"] == pytest.approx(max(counts.values()) / len(scored))
    # Nothing is fitted, and the report says so: the LOO figure is the plain accuracy.
    assert report["parameters_fitted"] is False
    assert report["loo_accuracy"] == report["accuracy"]
    assert "not" in report["loo_note"] and "fitted" in report["loo_note"]


def test_every_input_says_where_it_came_from() -> None:
    """Issue 15 point 6: recorded, derived or assumed, per input (the ratio of ev-029-a is recorded)."""
    recorded = run_protocol(_item(dose="1:6 (SC:CC)"))
    assert recorded.inputs["msc_per_cancer"]["origin"] == "recorded"
    assert recorded.inputs["msc_per_cancer"]["value"] == pytest.approx(1 / 6)
    assert recorded.inputs["hours"]["origin"] == "assumed"  # the item states no duration
    assert recorded.inputs["cancer_cells"]["origin"] == "assumed"
    assert recorded.defaults_used == ("default_hours",)  # the dose is not a default
    derived = run_protocol(
        _item(dose={"msc_cells_per_well": [2e4], "cancer_cells_per_well": [1e5]}, duration={"hours": [48]})
    )
    assert derived.inputs["msc_per_cancer"] == {
        "value": pytest.approx(0.2),
        "origin": "derived",
        "basis": "the item's dose: MSCs per well over cancer cells per well",
    }
    assert derived.inputs["hours"]["origin"] == "recorded"
    assert derived.inputs["cancer_cells"]["origin"] == "recorded"
    assumed = run_protocol(_item())
    assert assumed.inputs["msc_per_cancer"]["origin"] == "assumed"
    assert assumed.inputs["msc_per_cancer"]["basis"] == "protocol.default_ratio"
    cm = run_protocol(_item(delivery="conditioned_medium", dose={"cm_dilutions": [{"cm": 1, "medium": 1}]}))
    assert cm.inputs["cm_percent"]["origin"] == "derived"
    assert cm.inputs["conditioning_cells"]["origin"] == "assumed"
    cm_pct = run_protocol(_item(delivery="conditioned_medium", dose={"cm_percent": [30]}))
    assert cm_pct.inputs["cm_percent"] == {
        "value": 30.0,
        "origin": "recorded",
        "basis": "the item's dose: % CM",
    }
    ev = run_protocol(
        _item(
            delivery="extracellular_vesicles", dose={"ev_amounts": [{"value": 2e11, "unit": "particles/mL"}]}
        )
    )
    assert ev.inputs["ev_ug_per_ml"]["origin"] == "derived"
    ev_ug = run_protocol(
        _item(delivery="extracellular_vesicles", dose={"ev_amounts": [{"value": 20, "unit": "ug/mL"}]})
    )
    assert ev_ug.inputs["ev_ug_per_ml"]["origin"] == "recorded"
    for run in (recorded, derived, assumed, cm, ev):
        assert run.to_dict()["inputs"] == run.inputs
        assert {i["origin"] for i in run.inputs.values()} <= {"recorded", "derived", "assumed"}


def test_replay_table_labels_ev_029_a_as_recorded(tmp_path: Path) -> None:
    """The shipped ev-029-a (MSC:cancer 1:6) is shown as recorded in the table and the JSON."""
    import json

    from typer.testing import CliRunner

    from mscatlas.cli.sim import sim_app

    item = next(e for e in _shipped(tmp_path) if e.id == "ev-029-a")
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'one.sqlite'}"
    store = Store.open(db)
    store.close()
    assert run_protocol(item).inputs["msc_per_cancer"]["origin"] == "recorded"
    result = runner.invoke(sim_app, ["replay", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.stdout)["items"]}
    assert rows["ev-029-a"]["inputs"]["msc_per_cancer"]["origin"] == "recorded"
    table = runner.invoke(sim_app, ["replay", "--db", db], terminal_width=300)
    line = next(ln for ln in table.stdout.splitlines() if "ev-029-a" in ln)
    assert "MSC:cancer 1:6 (recorded)" in line and "(default)" not in line


def _shipped(tmp_path: Path) -> list[EvidenceItem]:
    store = Store.open(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    try:
        return store.dataset().evidence
    finally:
        store.close()
