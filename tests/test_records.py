"""Bad record files: every error names file, line, record and field; nothing is half-loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mscatlas.cli import app
from mscatlas.kb.records import validate_paths
from mscatlas.kb.store import Store

runner = CliRunner()


def _mini(mini_path: Path) -> dict:
    return yaml.safe_load(mini_path.read_text(encoding="utf-8"))


def _write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def test_yaml_error_names_file_line_record_and_field(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    data["evidence"][1]["direction"] = "helps"
    data["evidence"][2]["cancer_type"] = "esophagal squamous cell carcinoma"
    bad = _write_yaml(tmp_path / "bad.yaml", data)
    _, errors = validate_paths([bad])
    assert len(errors) == 2
    first, second = errors
    assert first.file == str(bad)
    assert first.record == "record 2 (ev-029-b)"
    assert first.field == "direction"
    text = bad.read_text(encoding="utf-8").splitlines()
    assert text[first.line - 1].strip() == "direction: helps"  # the field's own line
    assert "(got 'helps')" in first.message  # the bad value echoed
    assert second.field == "cancer_type"
    assert text[second.line - 1].strip() == "cancer_type: esophagal squamous cell carcinoma"
    assert "did you mean 'esophageal squamous cell carcinoma'" in second.message
    assert first.line != second.line


def test_unknown_field_is_an_error(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    data["evidence"][0]["colour"] = "blue"
    _, errors = validate_paths([_write_yaml(tmp_path / "x.yaml", data)])
    assert [(e.field, e.message) for e in errors] == [("colour", "unknown field")]


def test_nested_field_path(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    data["evidence"][0]["dose"] = "2:7"
    data["evidence"][0]["mechanisms"][0]["change"] = "sideways"
    _, errors = validate_paths([_write_yaml(tmp_path / "x.yaml", data)])
    fields = {e.field for e in errors}
    assert fields == {"dose", "mechanisms.0.change"}
    assert any("cannot tell which side" in e.message for e in errors)


def test_json_errors_have_lines(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    data["trials"][0]["phases"] = ["PHASE9"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    _, errors = validate_paths([path])
    assert len(errors) == 1
    assert errors[0].record == "record 1 (NCT02530047)"
    assert errors[0].field == "phases.0"
    assert path.read_text().splitlines()[errors[0].line - 1].strip() == '"PHASE9"'  # the list entry's line
    assert "PHASE9" in errors[0].message


def test_csv_errors_name_the_line(tmp_path: Path, mini_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}", seed=False)
    dataset, _ = validate_paths([mini_path])
    store.load(dataset)
    from mscatlas.kb.export import export_text

    lines = export_text(store.dataset(), "csv").splitlines()
    lines[3] = lines[3].replace("inhibits", "maybe", 1)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, errors = validate_paths([path])
    assert [(e.line, e.field) for e in errors] == [(4, "direction")]


def test_duplicate_ids_and_unknown_study(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    data["evidence"][1]["id"] = "ev-029-a"
    data["evidence"][2]["study"] = "ref99"
    _, errors = validate_paths([_write_yaml(tmp_path / "x.yaml", data)])
    messages = " | ".join(str(e) for e in errors)
    assert "duplicate evidence id 'ev-029-a'" in messages
    assert "field 'study': unknown study 'ref99'" in messages
    text = (tmp_path / "x.yaml").read_text(encoding="utf-8").splitlines()
    by_field = {e.field: e for e in errors}
    assert text[by_field["id"].line - 1].strip() == "- id: ev-029-a"
    assert text[by_field["study"].line - 1].strip() == "study: ref99"


def test_nested_field_points_at_its_own_line(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    data["evidence"][0]["mechanisms"][0]["change"] = "sideways"
    path = _write_yaml(tmp_path / "x.yaml", data)
    (error,) = validate_paths([path])[1]
    assert error.field == "mechanisms.0.change"
    assert path.read_text(encoding="utf-8").splitlines()[error.line - 1].strip() == "change: sideways"
    assert "'sideways'" in error.message


def test_synonyms_in_record_files_are_read_with_a_note(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    data["evidence"][0]["msc_source"] = ["bone marrow"]
    data["evidence"][0]["delivery"] = "co-culture"
    data["trials"][0]["phases"] = ["phase I"]
    path = _write_yaml(tmp_path / "syn.yaml", data)
    notes: list = []
    dataset, errors = validate_paths([path], notes=notes)
    assert not errors and dataset is not None
    assert [s.value for s in dataset.evidence[0].msc_source] == ["bone_marrow"]
    assert dataset.evidence[0].delivery.value == "direct_coculture"
    assert [p.value for p in dataset.trials[0].phases] == ["PHASE1"]
    shown = {(n.field, n.message) for n in notes}
    assert ("msc_source.0", "'bone marrow' read as 'bone_marrow'") in shown
    assert ("delivery", "'co-culture' read as 'direct_coculture'") in shown
    assert ("phases.0", "'phase I' read as 'PHASE1'") in shown
    text = path.read_text(encoding="utf-8").splitlines()
    delivery = next(n for n in notes if n.field == "delivery")
    assert text[delivery.line - 1].strip() == "delivery: co-culture"
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert {w["field"] for w in json.loads(result.stdout)["warnings"]} >= {"msc_source.0", "delivery"}
    people = runner.invoke(app, ["validate", str(path)])
    assert "note" in people.stderr and "read as 'bone_marrow'" in people.stderr


def test_invalid_yaml_syntax_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("- id: a\n  refs: [1, 2\n", encoding="utf-8")
    _, errors = validate_paths([path])
    assert errors[0].file == str(path)
    assert errors[0].line is not None
    assert "invalid YAML" in errors[0].message


def test_cli_validate_exit_codes(tmp_path: Path, mini_path: Path) -> None:
    ok = runner.invoke(app, ["validate", str(mini_path), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["evidence"] == 3
    data = _mini(mini_path)
    data["studies"][0]["year"] = "nineteen"
    bad = runner.invoke(app, ["validate", str(_write_yaml(tmp_path / "b.yaml", data)), "--json"])
    assert bad.exit_code == 1
    (error,) = json.loads(bad.stdout)["errors"]
    assert error["field"] == "year"
    assert error["record"] == "record 1 (ref29)"
    assert error["line"] is not None


def test_bad_file_loads_nothing_and_store_is_unchanged(tmp_path: Path, mini_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.sqlite'}"
    Store.open(db, seed=False).close()
    assert runner.invoke(app, ["load", str(mini_path), "--db", db]).exit_code == 0
    before = runner.invoke(app, ["export", "--db", db]).stdout
    data = _mini(mini_path)
    data["evidence"][0]["notes"] = "changed, and would be loaded if the file were valid"
    data["evidence"].append(dict(data["evidence"][1], id="ev-029-z", endpoint="nonsense"))
    result = runner.invoke(app, ["load", str(_write_yaml(tmp_path / "bad.yaml", data)), "--db", db])
    assert result.exit_code == 1
    assert "nothing was loaded" in result.output
    assert runner.invoke(app, ["export", "--db", db]).stdout == before


def test_failure_inside_the_transaction_rolls_back(
    tmp_path: Path, mini_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}", seed=False)
    dataset, _ = validate_paths([mini_path])
    import mscatlas.kb.store.loading as store_module

    real = store_module.trial_columns

    def crash(trial):  # the last record type loaded: everything before it is in the session
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_module, "trial_columns", crash)
    with pytest.raises(RuntimeError):
        store.load(dataset)
    assert store.counts() == {"studies": 0, "evidence": 0, "trials": 0}
    monkeypatch.setattr(store_module, "trial_columns", real)
    assert store.load(dataset).added == 6


def test_a_file_with_one_record_object(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    path = tmp_path / "one.json"
    path.write_text(json.dumps(data["studies"][0]), encoding="utf-8")
    dataset, errors = validate_paths([path])
    assert not errors
    assert [s.id for s in dataset.studies] == ["ref29"]


def test_duplicate_yaml_key_is_an_error_not_a_silent_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("- id: ev-029-a\n  study: ref29\n  notes: first\n  notes: second\n", encoding="utf-8")
    _, errors = validate_paths([path])
    assert len(errors) == 1
    assert "duplicate key 'notes'" in errors[0].message
    assert errors[0].line == 4


def test_quantitative_outcomes_are_checked_by_kind(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    good = {"kind": "counts", "measure": "mice with tumours", "treated_events": 2, "treated_total": 8,
            "control_events": 7, "control_total": 8, "source": "abstract"}  # fmt: skip
    data["evidence"][1]["outcomes"] = [good]
    dataset, errors = validate_paths([_write_yaml(tmp_path / "ok.yaml", data)])
    assert not errors
    assert dataset.evidence[1].outcomes[0].control_events == 7
    data["evidence"][1]["outcomes"] = [
        dict(good, treated_events=9),
        {"kind": "group_summary", "measure": "tumour volume", "treated_mean": 1.0, "source": "Fig. 2"},
    ]
    _, errors = validate_paths([_write_yaml(tmp_path / "bad.yaml", data)])
    messages = [(e.field, e.message) for e in errors]
    assert ("outcomes.0", "events cannot exceed the total") in messages
    assert any(f == "outcomes.1" and "needs treated_sd" in m for f, m in messages)


def test_web_form_errors_point_at_each_field(tmp_path: Path, mini_path: Path) -> None:
    """The curation form (web.submission.parse_submission) reports each field's own line."""
    from mscatlas.web.submission import parse_submission

    store = Store.open(f"sqlite:///{tmp_path / 'form.sqlite'}", seed=False)
    dataset, _ = validate_paths([mini_path])
    store.load(dataset)
    item = dict(_mini(mini_path)["evidence"][0], id="ev-029-q", direction="helps", endpoint="wellbeing")
    item.pop("curation_status", None)
    text = yaml.safe_dump(item, sort_keys=False)
    _, problems = parse_submission(text, store)
    lines = text.splitlines()
    by_field = {p["field"]: p for p in problems}
    assert lines[by_field["direction"]["line"] - 1] == "direction: helps"
    assert lines[by_field["endpoint"]["line"] - 1] == "endpoint: wellbeing"
    assert "(got 'wellbeing')" in by_field["endpoint"]["message"]
