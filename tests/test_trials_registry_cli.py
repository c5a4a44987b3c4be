"""`trials import | sync | landscape`, mounted on a small Typer app (the lead registers them)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from mscatlas.cli import trials_registry
from mscatlas.cli.trials_registry import import_trials, landscape, sync
from mscatlas.kb.store import Store
from mscatlas.trials.ctgov import CtgovClient

CTGOV = Path(__file__).parent / "data" / "ctgov"
runner = CliRunner()

app = typer.Typer()
app.command("import")(import_trials)
app.command("sync")(sync)
app.command("landscape")(landscape)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'trials.sqlite'}"


def _page_handler(calls: list[httpx.Request]):
    pages = {None: "page1.json", "TOKEN-PAGE-2": "page2.json", "TOKEN-PAGE-3": "page3_empty.json"}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = json.loads((CTGOV / pages[request.url.params.get("pageToken")]).read_text(encoding="utf-8"))
        return httpx.Response(200, json=body)

    return handler


def test_import_a_page_then_a_single_study(db: str) -> None:
    result = runner.invoke(app, ["import", str(CTGOV / "page1.json"), "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["added"] == 2 and out["updated"] == 0
    single = runner.invoke(app, ["import", str(CTGOV / "withdrawn.json"), "--db", db])
    assert single.exit_code == 0, single.output
    assert "1 added" in single.stdout
    store = Store.open(db)
    assert store.get("NCT90000005").enrollment == 0
    assert store.get("NCT02530047") is not None  # the store was seeded with the curated trials
    again = json.loads(runner.invoke(app, ["import", str(CTGOV / "page1.json"), "--db", db, "--json"]).stdout)
    assert again["unchanged"] == 2 and again["added"] == 0


def test_import_updates_a_curated_trial_and_says_what_changed(db: str) -> None:
    before = Store.open(db).get("NCT02530047")
    result = runner.invoke(app, ["import", str(CTGOV / "curated_update.json"), "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["updated"] == 1 and "enrollment" in out["changes"]["NCT02530047"]
    after = Store.open(db).get("NCT02530047")
    assert after.title == before.title and after.purpose == before.purpose and after.notes == before.notes


def test_malformed_file_writes_nothing(db: str) -> None:
    before = Store.open(db).counts()
    result = runner.invoke(app, ["import", str(CTGOV / "malformed_page.json"), "--db", db, "--json"])
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["errors"]
    assert {e["record"] for e in errors} == {"record 2 (NCT90000002)", "record 3 (NCT90000003)", "record 4"}
    assert "nothing was written" in result.stderr
    store = Store.open(db)
    assert store.counts() == before
    assert store.get("NCT90000001") is None  # the good record of the file was not written either


def test_sync_with_the_api_then_offline(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[httpx.Request] = []
    cache = tmp_path / "cache"

    def make_client(*, offline: bool, cache_dir: Path | None) -> CtgovClient:
        return CtgovClient(
            offline=offline,
            cache_dir=cache_dir,
            transport=httpx.MockTransport(_page_handler(calls)),
            min_interval_s=0.0,
            sleep=lambda s: None,
        )

    monkeypatch.setattr(trials_registry, "make_client", make_client)
    result = runner.invoke(
        app, ["sync", "--cond", "glioma", "--page-size", "2", "--cache-dir", str(cache), "--db", db, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 4
    assert len(calls) == 3 and calls[0].url.params["query.cond"] == "glioma"

    # Offline: the same search is answered from the cache; another search is a clear miss.
    other_db = f"sqlite:///{tmp_path / 'other.sqlite'}"
    offline = runner.invoke(
        app,
        [
            "sync",
            "--cond",
            "glioma",
            "--page-size",
            "2",
            "--offline",
            "--cache-dir",
            str(cache),
            "--db",
            other_db,
        ],
    )
    assert offline.exit_code == 0, offline.output
    assert len(calls) == 3
    assert Store.open(other_db).get("NCT90000004") is not None
    miss = runner.invoke(
        app, ["sync", "--cond", "lymphoma", "--offline", "--cache-dir", str(cache), "--db", other_db]
    )
    assert miss.exit_code == 1
    assert "offline: no cached answer" in miss.stderr and "nothing was written" in miss.stderr


def test_sync_failure_writes_nothing_and_names_the_resume_token(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("pageToken") == "TOKEN-PAGE-2":
            return httpx.Response(500, text="server error")
        return httpx.Response(200, json=json.loads((CTGOV / "page1.json").read_text(encoding="utf-8")))

    def make_client(*, offline: bool, cache_dir: Path | None) -> CtgovClient:
        return CtgovClient(
            cache_dir=tmp_path / "c",
            transport=httpx.MockTransport(handler),
            max_retries=1,
            min_interval_s=0.0,
            sleep=lambda s: None,
        )

    monkeypatch.setattr(trials_registry, "make_client", make_client)
    result = runner.invoke(app, ["sync", "--query", "msc", "--db", db])
    assert result.exit_code == 1
    assert "--page-token TOKEN-PAGE-2" in result.stderr
    assert Store.open(db).get("NCT90000001") is None


def test_landscape_json(db: str) -> None:
    runner.invoke(app, ["import", str(CTGOV / "page2.json"), "--db", db])
    result = runner.invoke(app, ["landscape", "--db", db, "--today", "2024-12-31", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    store_trials = Store.open(db).dataset().trials
    from mscatlas.kb.shipped import shipped_dataset

    assert data["total"] == len(store_trials) == len(shipped_dataset().trials) + 2  # page 2 adds two
    assert sum(data["by_purpose"].values()) == data["total"]
    gap = {g["nct_id"]: g for g in data["results_gap"]}
    # Both imported trials ended without results or a linked publication.
    assert set(gap) >= {"NCT90000003", "NCT90000004"}
    assert gap["NCT90000004"]["completion"] == "2018"
    assert gap["NCT90000004"]["years_since_completion"] == 6.0
    table = runner.invoke(app, ["landscape", "--db", db, "--today", "2024-12-31"])
    assert table.exit_code == 0 and "results gap" in table.stdout
    assert runner.invoke(app, ["landscape", "--db", db, "--today", "31/12/2024"]).exit_code == 2
