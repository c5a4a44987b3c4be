"""The command line keeps team work safe (issue 9, points 1, 4, 5): read-only commands never
write, `mscatlas upgrade` reports what a new release did, `load` names its author (--by) or
files proposals (--propose), and an evidence item cannot take a study's id."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import mscatlas.kb.shipped as shipped
from mscatlas.cli import app
from mscatlas.kb.models import Dataset
from mscatlas.kb.records import validate_paths
from mscatlas.kb.store import Store

runner = CliRunner()
PASSWORD = "correct horse battery"


def _mini(mini_path: Path) -> Dataset:
    dataset, errors = validate_paths([mini_path])
    assert not errors and dataset is not None
    return dataset


def _release(monkeypatch: pytest.MonkeyPatch, dataset: Dataset, digest: str) -> None:
    """Make the package 'ship' ``dataset`` (as a new mscatlas release would)."""
    monkeypatch.setattr(shipped, "shipped_dataset", lambda: dataset)
    monkeypatch.setattr(shipped, "shipped_hash", lambda: digest)


def _files_digest(directory: Path) -> dict[str, str]:
    """The digest of the database file and of any write-ahead log with content (WAL mode keeps an
    empty -wal and a -shm index beside the file while it is open; those are not writes)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if not p.name.endswith("-shm") and p.stat().st_size > 0
    }


def test_read_only_commands_never_write_and_upgrade_reports(
    tmp_path: Path, mini_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    db = f"sqlite:///{folder / 'kb.sqlite'}"
    release_1 = _mini(mini_path)
    _release(monkeypatch, release_1, "release-1")
    first = runner.invoke(app, ["summary", "--db", db])
    assert first.exit_code == 0, first.output
    assert "filled the store" in first.stderr  # the first open says what it did
    store = Store.open(db)
    item = store.get("ev-029-a")
    team = item.model_validate(
        {**item.model_dump(mode="json", exclude={"engineered", "ontology"}), "notes": "team"}
    )
    store.edit_evidence("ev-029-a", team, expected_version=1, by="cara", reason="team edit")
    store.close()

    trial = release_1.trials[0].model_copy(update={"title": "Upstream title"})
    item_2 = release_1.evidence[0].model_copy(update={"source_detail": "upstream detail"})
    release_2 = release_1.model_copy(
        update={"trials": [trial], "evidence": [item_2, *release_1.evidence[1:]]}
    )
    _release(monkeypatch, release_2, "release-2")
    with sqlite3.connect(folder / "kb.sqlite") as connection:  # move the log into the file first
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _files_digest(folder)
    for command in (["summary"], ["query"], ["show", "ev-029-a"], ["export"], ["proposals", "list"]):
        result = runner.invoke(app, [*command, "--db", db])
        assert result.exit_code == 0, result.output
        assert "mscatlas upgrade" in result.stderr
    assert _files_digest(folder) == before, "a read-only command wrote to the store"

    upgraded = runner.invoke(app, ["upgrade", "--db", db, "--json"])
    assert upgraded.exit_code == 0, upgraded.output
    report = json.loads(upgraded.stdout)
    assert report["updated"] == ["NCT02530047"]
    assert list(report["proposed"]) == ["ev-029-a"]
    store = Store.open(db)
    assert (
        store.get("ev-029-a").notes == "team" and store.get("ev-029-a").curation_status.value == "submitted"
    )
    proposal_id = report["proposed"]["ev-029-a"]
    shown = json.loads(
        runner.invoke(app, ["proposals", "show", str(proposal_id), "--db", db, "--json"]).stdout
    )
    assert {c["field"] for c in shown["diff"]} == {"source_detail", "notes", "curation_status"}
    assert runner.invoke(app, ["upgrade", "--db", db, "--json"]).exit_code == 0
    assert json.loads(runner.invoke(app, ["upgrade", "--db", db, "--json"]).stdout)["already_current"]


def _changed_file(tmp_path: Path, mini_path: Path, **changes) -> Path:
    data = yaml.safe_load(mini_path.read_text(encoding="utf-8"))
    data["studies"][0].update(changes)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_load_that_changes_records_names_an_editor_or_proposes(tmp_path: Path, mini_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    Store.open(db, seed=False).close()
    assert (
        runner.invoke(app, ["load", str(mini_path), "--db", db]).exit_code == 0
    )  # new records: no author needed
    store = Store.open(db)
    store.add_user("cara", "curator", PASSWORD)
    store.add_user("ed", "editor", PASSWORD)
    changed = _changed_file(tmp_path, mini_path, title="A corrected title")

    anonymous = runner.invoke(app, ["load", str(changed), "--db", db])
    assert anonymous.exit_code == 1 and "--by" in anonymous.output
    curator = runner.invoke(app, ["load", str(changed), "--db", db, "--by", "cara"])
    assert curator.exit_code == 1 and "editor role" in curator.output
    assert runner.invoke(app, ["load", str(changed), "--db", db, "--by", "nobody"]).exit_code == 1
    assert store.get("ref29").title != "A corrected title"

    proposed = runner.invoke(app, ["load", str(changed), "--db", db, "--by", "cara", "--propose", "--json"])
    assert proposed.exit_code == 0, proposed.output
    assert json.loads(proposed.stdout)["proposed"] == 1
    assert store.get("ref29").title != "A corrected title"
    (proposal,) = store.proposals()
    assert proposal.created_by == "cara" and proposal.source == "load"
    accepted = runner.invoke(app, ["proposals", "accept", str(proposal.id), "--by", "ed", "--db", db])
    assert accepted.exit_code == 0, accepted.output
    assert store.get("ref29").title == "A corrected title"

    again = _changed_file(tmp_path, mini_path, title="An editor's title")
    result = runner.invoke(app, ["load", str(again), "--db", db, "--by", "ed"])
    assert result.exit_code == 0, result.output
    assert store.get("ref29").title == "An editor's title"
    assert store.revisions("ref29")[-1]["changed_by"] == "ed"


def test_an_evidence_item_cannot_take_a_study_id(tmp_path: Path, mini_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    Store.open(db, seed=False).close()
    assert runner.invoke(app, ["load", str(mini_path), "--db", db]).exit_code == 0
    data = yaml.safe_load(mini_path.read_text(encoding="utf-8"))
    item = dict(data["evidence"][0], id="ref29")
    path = tmp_path / "item.yaml"
    path.write_text(yaml.safe_dump([item], sort_keys=False), encoding="utf-8")
    result = runner.invoke(app, ["load", str(path), "--db", db, "--json"])
    assert result.exit_code == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert error["field"] == "id" and "already the id of a study" in error["message"]
    assert runner.invoke(app, ["show", "ref29", "--db", db, "--json"]).stdout.count('"year"') == 1
    valid = runner.invoke(app, ["validate", str(mini_path), str(path)])
    assert valid.exit_code == 1 and "ids are shared" in valid.output
