"""Bad input gives located errors, never tracebacks, 500s or non-standard output (issue 9,
points 6-10): NaN/Infinity and booleans in number fields, deep nesting and non-scalar YAML
keys, duplicate JSON keys and CSV columns, atomic export and release writing, and errors that
name the real problem (an unclosed CSV quote's line, an unknown study)."""

from __future__ import annotations

import errno
import json
import os
import warnings
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mscatlas.cli import app
from mscatlas.kb.export import export_text
from mscatlas.kb.records import validate_paths
from mscatlas.kb.release import verify_release, write_release
from mscatlas.kb.store import Store
from mscatlas.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

runner = CliRunner()


def _mini(mini_path: Path) -> dict:
    return yaml.safe_load(mini_path.read_text(encoding="utf-8"))


def _errors(path: Path) -> list[dict]:
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return json.loads(result.stdout)["errors"]


# ------------------------------------------------------------------ 6: NaN and Infinity


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_refused(tmp_path: Path, mini_path: Path, constant: str) -> None:
    data = _mini(mini_path)
    text = json.dumps(data, indent=1).replace('"year": 2009', f'"year": {constant}', 1)
    assert constant in text
    path = tmp_path / "nan.json"
    path.write_text(text, encoding="utf-8")
    (error,) = _errors(path)
    assert constant in error["message"] and error["line"] == text[: text.index(constant)].count("\n") + 1


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_yaml_nan_and_infinity_are_refused_in_every_number_field(
    tmp_path: Path, mini_path: Path, value
) -> None:
    data = _mini(mini_path)
    item = data["evidence"][0]
    item["dose"] = {"text": "1:10", "ratios": [{"msc": "X", "cancer": 10}]}
    path = tmp_path / "nan.yaml"
    path.write_text(
        yaml.safe_dump(data, sort_keys=False).replace("msc: X", f"msc: {value}"), encoding="utf-8"
    )
    (error,) = _errors(path)
    assert error["field"] == "dose.ratios.0.msc" and "finite" in error["message"]


def test_csv_nan_cell_is_refused(tmp_path: Path, mini_path: Path) -> None:
    import csv
    import io

    dataset, _ = validate_paths([mini_path])
    rows = list(csv.DictReader(io.StringIO(export_text(dataset, "csv"))))
    study = next(r for r in rows if r["record_type"] == "study")
    study["year"] = "nan"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows([r for r in rows if r["record_type"] == "study"])
    path = tmp_path / "nan.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    errors = _errors(path)
    assert [e["field"] for e in errors] == ["year"]
    numbers = tmp_path / "nan-number.csv"
    numbers.write_text(out.getvalue().replace(",nan,", ",NaN,"), encoding="utf-8")
    assert [e["field"] for e in _errors(numbers)] == ["year"]


def test_simulation_api_refuses_nan(tmp_path: Path) -> None:
    client = TestClient(create_app(Store.open(f"sqlite:///{tmp_path / 'w.sqlite'}", seed=False)))
    response = client.post(
        "/api/simulations",
        content=b'{"kind": "coculture", "hours": NaN}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422 and "NaN" in response.json()["detail"]


# ------------------------------------------------------------------ 7: nesting and keys


def test_deeply_nested_json_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"evidence": [\n' + "[" * 100_000 + "]" * 100_000 + "]}", encoding="utf-8")
    (error,) = _errors(path)
    assert error["line"] == 2 and "nested more than" in error["message"]
    loaded = runner.invoke(app, ["load", str(path), "--db", f"sqlite:///{tmp_path / 'x.sqlite'}"])
    assert loaded.exit_code == 1
    assert loaded.exception is None or isinstance(loaded.exception, SystemExit)


def test_deeply_nested_yaml_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("evidence:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), encoding="utf-8")
    errors = _errors(path)
    assert errors[0]["line"] is not None and "nested" in errors[0]["message"]


def test_yaml_with_a_non_scalar_key_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "key.yaml"
    path.write_text("- id: ev-x\n  ? [a, b]\n  : 1\n", encoding="utf-8")
    (error,) = _errors(path)
    assert error["line"] == 2 and "plain value" in error["message"]


def _logged_in(app_, store: Store) -> TestClient:
    import re

    store.add_user("cara", "curator", "correct horse battery")
    client = TestClient(app_, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    response = client.post(
        "/login", data={"name": "cara", "password": "correct horse battery", "csrf_token": token}
    )
    assert response.status_code == 303
    return client


def test_web_gives_422_not_500_for_deep_or_odd_input(tmp_path: Path, mini_path: Path) -> None:
    import re

    store = Store.open(f"sqlite:///{tmp_path / 'w.sqlite'}", seed=False)
    dataset, _ = validate_paths([mini_path])
    store.load(dataset)
    app_ = create_app(store, secret_key="k")
    client = _logged_in(app_, store)
    deep = client.post(
        "/api/simulations", content=b"[" * 5_000 + b"]" * 5_000, headers={"content-type": "application/json"}
    )
    assert deep.status_code == 422
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/curate/submit").text).group(1)
    for text in ("? [a, b]\n: 1\n", "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200))):
        response = client.post("/curate/submit", data={"yaml": text, "reason": "x", "csrf_token": token})
        assert response.status_code == 422, response.text


# ------------------------------------------------------------------ 8: duplicates and booleans


def test_json_duplicate_keys_are_errors(tmp_path: Path, mini_path: Path) -> None:
    text = json.dumps(_mini(mini_path), indent=1)
    text = text.replace('"year": 2009', '"year": 2009, "year": 2010', 1)
    path = tmp_path / "dup.json"
    path.write_text(text, encoding="utf-8")
    (error,) = _errors(path)
    assert "duplicate key 'year'" in error["message"]
    assert error["line"] == text[: text.index('"year": 2010')].count("\n") + 1


def test_csv_duplicate_columns_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("record_type,id,year,year\nstudy,ref29,2009,2010\n", encoding="utf-8")
    (error,) = _errors(path)
    assert error["line"] == 1 and "duplicate column" in error["message"] and error["field"] == "year"


def test_booleans_are_not_numbers(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    data["evidence"][0]["refs"] = [True, 29]
    path = tmp_path / "bool.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    (error,) = _errors(path)
    assert error["field"] == "refs" and "not a number" in error["message"]


# ------------------------------------------------------------------ 9: atomic writes


@pytest.fixture
def db(tmp_path: Path, mini_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    store = Store.open(url, seed=False)
    dataset, _ = validate_paths([mini_path])
    store.load(dataset)
    store.close()
    return url


def test_export_refuses_a_directory_and_a_symlink(tmp_path: Path, db: str) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    result = runner.invoke(app, ["export", "--db", db, "--out", str(folder)])
    assert result.exit_code == 1 and "is a directory" in result.output
    target = tmp_path / "elsewhere.json"
    target.write_text("keep me", encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    refused = runner.invoke(app, ["export", "--db", db, "--out", str(link)])
    assert refused.exit_code == 1 and "symbolic link" in refused.output
    assert target.read_text(encoding="utf-8") == "keep me"
    forced = runner.invoke(app, ["export", "--db", db, "--out", str(link), "--force"])
    assert forced.exit_code == 0 and json.loads(target.read_text(encoding="utf-8"))["studies"]
    assert link.is_symlink()


def test_a_failed_export_leaves_the_old_file_intact(
    tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "kb.json"
    out.write_text("the previous export", encoding="utf-8")

    def disk_full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    result = runner.invoke(app, ["export", "--db", db, "--out", str(out)])
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert out.read_text(encoding="utf-8") == "the previous export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".kb.json")) == []


def test_release_holds_exactly_the_release(tmp_path: Path, db: str, mini_path: Path) -> None:
    out = tmp_path / "release"
    assert runner.invoke(app, ["release", "--db", db, "--out", str(out)]).exit_code == 0
    (out / "stale.tsv").write_text("left from something else", encoding="utf-8")
    assert verify_release(out) == ["stale.tsv: not part of the release"]
    assert runner.invoke(app, ["release", "--db", db, "--out", str(out)]).exit_code == 0
    assert not (out / "stale.tsv").exists() and verify_release(out) == []
    other = tmp_path / "my-notes"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    refused = runner.invoke(app, ["release", "--db", db, "--out", str(other)])
    assert refused.exit_code == 1 and "not a release" in refused.output
    assert (other / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_failed_release_leaves_the_old_one(
    tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "release"
    dataset = Store.open(db).dataset()
    write_release(dataset, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    result = runner.invoke(app, ["release", "--db", db, "--out", str(out)])
    assert result.exit_code == 1 and "No space left" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".release")] == []


# ------------------------------------------------------------------ 10: errors that name the problem


def test_unclosed_csv_quote_names_the_line_where_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('record_type,id,title\nstudy,ref29,"fine"\nstudy,ref30,"never closed\nstudy,ref31,x\n')
    (error,) = _errors(path)
    assert error["line"] == 3 and "never closed" in error["message"]


def test_an_unknown_study_is_reported_as_such(tmp_path: Path, mini_path: Path) -> None:
    data = _mini(mini_path)
    item = dict(data["evidence"][0], study="ref99")
    path = tmp_path / "item.yaml"
    path.write_text(yaml.safe_dump([item], sort_keys=False), encoding="utf-8")
    (error,) = _errors(path)
    assert error["field"] == "study" and error["message"] == "unknown study 'ref99'"
