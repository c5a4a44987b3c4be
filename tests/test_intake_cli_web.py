"""The intake from the command line and the web (issue 10): the command-line contract's keys,
bad input, and a user's way from a PubMed export file to screened candidates to a curated
evidence item."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from mscatlas.cli import app as cli_app
from mscatlas.cli import intake as intake_cli
from mscatlas.intake.sources import PubMedClient
from mscatlas.kb.store import Store
from mscatlas.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DATA = Path(__file__).parent / "data" / "intake"
PASSWORD = "correct horse battery"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, list(args))
    return result.exit_code, result.stdout


def test_cli_contract_from_export_file_to_evidence_item(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    code, out = run(
        "intake", "import", str(DATA / "export.nbib"), "--label", "my export", "--db", db, "--json"
    )
    assert code == 0, out
    first = json.loads(out)
    assert first["imported"] == 3 and first["duplicates"] == []
    assert isinstance(first["candidates"], int) and first["candidates"] >= 3
    code, out = run("intake", "import", str(DATA / "zotero.ris"), "--db", db, "--json")
    second = json.loads(out)
    assert second["imported"] == 1
    assert [{k: d[k] for k in ("duplicate_of", "reason")} for d in second["duplicates"]] == [
        {"duplicate_of": f"c{first['candidates'] - 2}", "reason": "doi"}
    ]
    assert set(second["duplicates"][0]) == {"record", "duplicate_of", "reason"}
    code, out = run("intake", "next", "--n", "3", "--db", db, "--json")
    assert code == 0 and len(json.loads(out)) == 3
    new = f"c{first['candidates']}"  # the third record of the export: PMID 90000105
    refused = CliRunner().invoke(
        cli_app, ["intake", "screen", new, "--decision", "exclude", "--by", "ana", "--db", db]
    )
    assert refused.exit_code == 1 and "an exclusion needs a reason code" in refused.stderr
    code, out = run(
        "intake",
        "screen",
        new,
        "--decision",
        "include",
        "--reason",
        "include",
        "--by",
        "ana",
        "--db",
        db,
        "--json",
    )
    assert code == 0 and json.loads(out)["state"] == "include"
    code, out = run("intake", "suggest", new, "--db", db, "--json")
    fields = json.loads(out)["fields"]
    assert fields["msc_source"]["value"] == ["endometrium"]  # 'menstrual blood' is a synonym
    assert fields["setting"]["value"] == "in_vivo"  # 'xenografts'
    assert all(0 <= f["confidence"] <= 1 for f in fields.values())
    code, out = run("intake", "status", "--db", db, "--json")
    status = json.loads(out)
    assert set(status["stopping"]) >= {"target_recall", "estimated_recall", "can_stop"}
    before = status["prisma"]["included"]
    code, out = run("intake", "promote", new, "--by", "ana", "--db", db, "--json")
    assert code == 0 and json.loads(out)["candidate"] == new
    store = Store.open(db)
    base = next(e for e in store.dataset().evidence if e.study.startswith("ref"))
    item = base.model_dump(
        mode="json", exclude_none=True, exclude={"engineered", "ontology", "curation_status"}
    )
    item.update({"id": "ev-pmid90000105-1", "study": "pmid90000105", "refs": []})
    item["provenance"] = {
        "summary": "Menstrual blood stromal cells and ovarian cancer xenografts (test item).",
        "primary_source_checked": True,
        "primary_source": "PubMed abstract, PMID 90000105",
    }
    store.close()
    path = tmp_path / "item.yaml"
    path.write_text(yaml.safe_dump({"evidence": [item]}), encoding="utf-8")
    code, out = run("load", str(path), "--db", db)
    assert code == 0, out
    code, out = run("intake", "status", "--db", db, "--json")
    assert json.loads(out)["prisma"]["included"] == before + 1


def test_cli_bad_input_names_the_problem_and_imports_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bad.sqlite'}"
    result = CliRunner().invoke(cli_app, ["intake", "import", str(DATA / "broken.xml"), "--db", db])
    assert result.exit_code == 1 and "broken.xml:10" in result.stderr and "invalid XML" in result.stderr
    result = CliRunner().invoke(cli_app, ["intake", "import", str(DATA / "bad_rows.csv"), "--db", db])
    assert result.exit_code == 1 and "record 3" in result.stderr and "nothing was imported" in result.stderr
    result = CliRunner().invoke(
        cli_app, ["intake", "import", str(DATA / "export.nbib"), "--format", "bibtex", "--db", db]
    )
    assert result.exit_code == 1 and "unknown format" in result.stderr
    result = CliRunner().invoke(cli_app, ["intake", "import", str(tmp_path / "missing.ris"), "--db", db])
    assert result.exit_code == 1 and "cannot read" in result.stderr


def test_cli_simulate_contract() -> None:
    code, out = run("intake", "simulate", str(DATA / "labelled.csv"), "--seed", "2", "--json")
    assert code == 0
    result = json.loads(out)
    assert {"n", "n_included", "wss95", "rrf10", "stopped_at", "recall_at_stop"} <= set(result)
    assert result["wss95"] > 0 and result["wss95"] > result["random"]["wss95"]


def test_cli_search_offline_from_recorded_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = [(DATA / n).read_text("utf-8") for n in ("efetch_page1.xml", "efetch_page2.xml")]
    articles = [a for page in pages for a in re.findall(r"<PubmedArticle>.*?</PubmedArticle>", page, re.S)]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("esearch.fcgi"):
            return httpx.Response(200, text=(DATA / "esearch.xml").read_text("utf-8"))
        start, size = int(request.url.params["retstart"]), int(request.url.params["retmax"])
        chosen = "".join(articles[start : start + size])
        return httpx.Response(200, text=f"<?xml version='1.0'?><PubmedArticleSet>{chosen}</PubmedArticleSet>")

    def make(source: str, *, offline: bool, cache_dir: Path | None) -> PubMedClient:
        return PubMedClient(
            offline=offline,
            cache_dir=tmp_path / "cache",
            transport=httpx.MockTransport(handler),
            sleep=lambda s: None,
            min_interval_s=0,
        )

    monkeypatch.setattr(intake_cli, "make_source_client", make)
    db = f"sqlite:///{tmp_path / 'search.sqlite'}"
    code, out = run("intake", "search", "pubmed", "--query", "msc AND cancer", "--db", db, "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["returned"] == 3 and result["imported"] == 3 and result["query"] == "msc AND cancer"
    code, out = run(
        "intake", "search", "pubmed", "--query", "msc AND cancer", "--offline", "--db", db, "--json"
    )
    assert code == 0 and len(json.loads(out)["duplicates"]) == 3  # the cache answered; all known now


# ---------------------------------------------------------------- web


@pytest.fixture
def web(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'web.sqlite'}")
    store.add_user("cara", "curator", PASSWORD)
    application = create_app(store, secret_key="test-secret-key")
    yield application, store
    store.close()


def _login(application) -> TestClient:
    c = TestClient(application, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    assert (
        c.post("/login", data={"name": "cara", "password": PASSWORD, "csrf_token": token}).status_code == 303
    )
    return c


def _token(c: TestClient, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


def test_web_screening_page_prisma_and_curation_form(web) -> None:
    application, store = web
    c = _login(application)
    overview = c.get("/intake")
    assert overview.status_code == 200 and "<svg" in overview.text and "Records identified" in overview.text
    assert "never stops on its own" in overview.text
    page = c.get("/intake/screen")
    assert page.status_code == 200
    assert 'accesskey="i"' in page.text and 'accesskey="e"' in page.text and 'accesskey="m"' in page.text
    candidate = re.search(r'action="/intake/candidates/(c\d+)/decision"', page.text).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    refused = c.post(
        f"/intake/candidates/{candidate}/decision", data={"decision": "exclude", "csrf_token": token}
    )
    assert refused.status_code == 422 and "reason" in refused.text
    done = c.post(
        f"/intake/candidates/{candidate}/decision",
        data={"decision": "exclude", "reason": "off_topic", "note": "web test", "csrf_token": token},
    )
    assert done.status_code == 303 and done.headers["location"] == "/intake/screen"
    record = c.get(f"/intake/candidates/{candidate}")
    assert "cara" in record.text and "off_topic" in record.text and "web test" in record.text
    # A candidate of ours, with an abstract: terms highlighted, suggestions, then study and form.
    from mscatlas.intake.readers import read_citations
    from mscatlas.intake.store import IntakeStore

    result = IntakeStore(store).import_citations(
        read_citations(DATA / "efetch_page1.xml")[0][:1], source="file"
    )
    cid = f"c{result.candidates}"
    page = c.get(f"/intake/candidates/{cid}")
    assert "<mark>mesenchymal</mark>" in page.text.lower() or "<mark>Mesenchymal</mark>" in page.text
    assert 'id="suggestions"' in page.text and "umbilical_cord" in page.text and "MDA-MB-231" in page.text
    promoted = c.post(
        f"/intake/candidates/{cid}/promote", data={"csrf_token": _token(c, f"/intake/candidates/{cid}")}
    )
    assert promoted.status_code == 303 and promoted.headers["location"] == f"/intake/candidates/{cid}/curate"
    form = c.get(f"/intake/candidates/{cid}/curate")
    assert form.status_code == 200 and "study: pmid90000101" in form.text and "MDA-MB-231" in form.text
    assert store.get("pmid90000101").candidate == cid
    svg = c.get("/intake/prisma.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and svg.text.startswith("<?xml")
    api = c.get("/api/intake/status").json()
    assert {"prisma", "stopping"} <= set(api)


def test_web_screening_needs_a_curator(web) -> None:
    application, _ = web
    anonymous = TestClient(application, follow_redirects=False)
    assert anonymous.get("/intake/screen").status_code == 303
