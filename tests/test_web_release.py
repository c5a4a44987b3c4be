"""`mscatlas release` (versioned dump with a manifest) and `mscatlas serve`, run as commands."""

from __future__ import annotations

import csv
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mscatlas import __version__
from mscatlas.cli.web import release, serve
from mscatlas.kb.models import SCHEMA_VERSION, Dataset, EvidenceItem
from mscatlas.kb.records import validate_paths
from mscatlas.kb.release import JSON_NAME, MANIFEST_NAME, TSV_NAMES, verify_release
from mscatlas.kb.store import Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2 instead of httpx; both work
    from fastapi.testclient import TestClient

runner = CliRunner()


def _app(command: Any) -> typer.Typer:
    app = typer.Typer()
    app.command()(command)
    app.command("unused", hidden=True)(lambda: None)  # two commands: options are parsed by name
    return app


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    store = Store.open(url)
    # One unreviewed item, which a release must leave out.
    data = store.get("ev-029-a").model_dump(mode="json", exclude={"engineered", "ontology"})
    data.update(id="ev-029-z", curation_status="submitted")
    store.load(Dataset(evidence=[EvidenceItem.model_validate(data)]))
    store.close()
    return url


def run_release(db: str, out: Path, *extra: str) -> Any:
    return runner.invoke(_app(release), ["release", "--out", str(out), "--db", db, *extra])


def test_release_writes_accepted_records_with_a_manifest(db: str, tmp_path: Path) -> None:
    out = tmp_path / "rel"
    result = run_release(db, out, "--created", "2025-03-01T12:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert json.loads(result.stdout) == manifest
    store = Store.open(db)
    full = store.dataset()
    accepted = [e for e in full.evidence if e.curation_status.value == "accepted"]
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["package_version"] == __version__
    assert manifest["created"] == "2025-03-01T12:00:00Z"
    assert manifest["release"].endswith("20250301T120000Z") and __version__ in manifest["release"]
    assert manifest["counts"] == {
        "studies": len(full.studies),
        "evidence": len(accepted),
        "trials": len(full.trials),
        "evidence_not_released": len(full.evidence) - len(accepted),
    }
    assert manifest["counts"]["evidence_not_released"] >= 1
    assert set(manifest["files"]) == {JSON_NAME, *TSV_NAMES.values()}


def test_checksums_verify_and_catch_a_change(db: str, tmp_path: Path) -> None:
    out = tmp_path / "rel"
    assert run_release(db, out).exit_code == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    for name, entry in manifest["files"].items():
        content = (out / name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
        assert len(content) == entry["bytes"]
    assert verify_release(out) == []
    tsv = out / TSV_NAMES["trials"]
    tsv.write_text(tsv.read_text().replace("NCT", "NCX", 1))
    assert verify_release(out) == [f"{TSV_NAMES['trials']}: SHA-256 differs from the manifest"]
    (out / JSON_NAME).unlink()
    assert f"{JSON_NAME}: missing" in verify_release(out)


def test_release_json_loads_back(db: str, tmp_path: Path) -> None:
    out = tmp_path / "rel"
    assert run_release(db, out).exit_code == 0
    dataset, errors = validate_paths([out / JSON_NAME])
    assert errors == []
    store = Store.open(db)
    assert dataset == store.dataset(only_accepted=True)
    assert "ev-029-z" not in {e.id for e in dataset.evidence}
    assert "ev-029-a" in {e.id for e in dataset.evidence}


def test_tsv_files_hold_one_row_per_record(db: str, tmp_path: Path) -> None:
    out = tmp_path / "rel"
    assert run_release(db, out).exit_code == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    store = Store.open(db)
    accepted = {e.id: e for e in store.dataset(only_accepted=True).evidence}
    for kind, name in TSV_NAMES.items():
        with (out / name).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        assert len(rows) == manifest["counts"][kind]
        if kind == "evidence":
            for row in rows:
                item = accepted[row["id"]]
                assert row["dose_description"] == item.dose.describe()
                assert json.loads(row["msc_source"]) == [s.value for s in item.msc_source]
                assert (row["notes"] or None) == item.notes


def test_a_release_with_a_given_time_is_reproducible(db: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert run_release(db, out, "--created", "2025-01-01T00:00:00+00:00").exit_code == 0
    for name in [MANIFEST_NAME, JSON_NAME, *TSV_NAMES.values()]:
        assert (a / name).read_bytes() == (b / name).read_bytes()


@pytest.mark.parametrize("created", ["yesterday", "2025-01-01T00:00:00"])
def test_bad_creation_time_is_a_usage_error(db: str, tmp_path: Path, created: str) -> None:
    result = run_release(db, tmp_path / "rel", "--created", created)
    assert result.exit_code == 2
    assert not (tmp_path / "rel" / MANIFEST_NAME).exists()


def test_serve_runs_the_app_on_the_given_address(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    result = runner.invoke(_app(serve), ["serve", "--port", "8765", "--host", "127.0.0.2", "--db", db])
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert (call["host"], call["port"]) == ("127.0.0.2", 8765)
    client = TestClient(call["app"])
    # The app serves the store named by --db: the unreviewed item loaded there is visible.
    assert client.get("/api/evidence/ev-029-z").json()["evidence"]["curation_status"] == "submitted"


def test_serve_defaults_to_localhost(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert runner.invoke(_app(serve), ["serve", "--db", db]).exit_code == 0
    assert (calls[0]["host"], calls[0]["port"]) == ("127.0.0.1", 8000)
