"""Accounts in the store, the `users add` command, and the store's curation writes with
optimistic locking (SQLite, and PostgreSQL through ``empty_store`` when a server is set)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from mscatlas.cli.users import users_app
from mscatlas.kb.enums import MscSource
from mscatlas.kb.records import validate_paths
from mscatlas.kb.store import CurationError, EvidenceFilter, Store, UserRow, VersionConflict

runner = CliRunner()
PASSWORD = "s3cret-enough"


@pytest.fixture
def loaded(empty_store: Store, mini_path: Path) -> Store:
    dataset, errors = validate_paths([mini_path])
    assert not errors
    empty_store.load(dataset)
    return empty_store


# ------------------------------------------------------------------ accounts


def test_passwords_are_stored_only_as_argon2_hashes(empty_store: Store) -> None:
    user = empty_store.add_user("ann", "editor", PASSWORD)
    assert (user.name, user.role, user.active) == ("ann", "editor", True)
    with empty_store.session() as session:
        stored = session.scalars(select(UserRow.password_hash).where(UserRow.name == "ann")).one()
    assert PASSWORD not in stored and stored.startswith("$argon2id$")
    assert empty_store.authenticate("ann", PASSWORD) == empty_store.get_user("ann")
    assert empty_store.authenticate("ann", PASSWORD + "x") is None
    assert empty_store.authenticate("nobody", PASSWORD) is None
    assert empty_store.get_user("nobody") is None


def test_two_users_with_one_password_get_different_hashes(empty_store: Store) -> None:
    empty_store.add_user("ann", "curator", PASSWORD)
    empty_store.add_user("bob", "curator", PASSWORD)
    with empty_store.session() as session:
        hashes = list(session.scalars(select(UserRow.password_hash)))
    assert len(set(hashes)) == 2
    assert [u.name for u in empty_store.users()] == ["ann", "bob"]


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("ann", "admin", PASSWORD, "unknown role"),
        ("ann", "editor", "short", "at least 8"),
        ("<b>", "editor", PASSWORD, "invalid user name"),
        ("", "editor", PASSWORD, "invalid user name"),
    ],
)
def test_bad_accounts_are_refused(
    empty_store: Store, name: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        empty_store.add_user(name, role, password)
    assert empty_store.users() == []


def test_a_name_is_taken_once(empty_store: Store) -> None:
    empty_store.add_user("ann", "viewer", PASSWORD)
    with pytest.raises(ValueError, match="already exists"):
        empty_store.add_user("ann", "editor", PASSWORD)
    assert empty_store.get_user("ann").role == "viewer"


def test_roles_are_ordered(empty_store: Store) -> None:
    viewer = empty_store.add_user("v", "viewer", PASSWORD)
    curator = empty_store.add_user("c", "curator", PASSWORD)
    editor = empty_store.add_user("e", "editor", PASSWORD)
    table = {u.name: [u.can(r) for r in ("viewer", "curator", "editor")] for u in (viewer, curator, editor)}
    assert table == {"v": [True, False, False], "c": [True, True, False], "e": [True, True, True]}


def test_password_change_changes_the_stamp(empty_store: Store) -> None:
    before = empty_store.add_user("ann", "editor", PASSWORD).password_stamp
    empty_store.set_password("ann", "another password")
    assert empty_store.get_user("ann").password_stamp != before
    assert empty_store.authenticate("ann", PASSWORD) is None
    assert empty_store.authenticate("ann", "another password") is not None


def test_secret_key_is_generated_once_and_kept(empty_store: Store) -> None:
    key = empty_store.secret_key()
    assert len(key) >= 40
    assert empty_store.secret_key() == key
    other = Store(empty_store.url)
    try:
        assert other.secret_key() == key
    finally:
        other.close()


# ------------------------------------------------------------------ the command


def test_users_add_from_stdin(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.sqlite'}"
    result = runner.invoke(
        users_app, ["add", "ann", "--role", "editor", "--password-stdin", "--db", db], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    store = Store.open(db, seed=False)
    try:
        assert store.authenticate("ann", PASSWORD).role == "editor"
    finally:
        store.close()
    listed = runner.invoke(users_app, ["list", "--db", db, "--json"])
    assert listed.exit_code == 0 and '"name": "ann"' in listed.output and PASSWORD not in listed.output


def test_users_add_prompts_twice(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.sqlite'}"
    result = runner.invoke(users_app, ["add", "bob", "--db", db], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    store = Store.open(db, seed=False)
    try:
        assert store.get_user("bob").role == "curator"  # the default role
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["--role", "owner", "--password-stdin"], PASSWORD + "\n"),
        (["--role", "editor", "--password-stdin"], "short\n"),
    ],
)
def test_users_add_refuses_bad_input(tmp_path: Path, args: list[str], stdin: str) -> None:
    db = f"sqlite:///{tmp_path / 'u.sqlite'}"
    result = runner.invoke(users_app, ["add", "ann", *args, "--db", db], input=stdin)
    assert result.exit_code != 0
    store = Store.open(db, seed=False)
    try:
        assert store.get_user("ann") is None
    finally:
        store.close()


def test_users_add_twice_fails(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.sqlite'}"
    args = ["add", "ann", "--password-stdin", "--db", db]
    assert runner.invoke(users_app, args, input=PASSWORD + "\n").exit_code == 0
    again = runner.invoke(users_app, args, input=PASSWORD + "\n")
    assert again.exit_code == 1 and "already exists" in again.output


# ------------------------------------------------------------------ curation writes in the store


def test_stale_version_is_a_conflict_and_writes_nothing(loaded: Store) -> None:
    item_id = loaded.query_evidence()[0].id
    version = loaded.evidence_version(item_id)
    assert (
        loaded.flag_evidence(item_id, "unverified", "first", expected_version=version, by="ann")
        == version + 1
    )
    with pytest.raises(VersionConflict) as info:
        loaded.flag_evidence(item_id, "abstract_only", "second", expected_version=version, by="bob")
    assert (info.value.expected, info.value.actual, info.value.last_by) == (version, version + 1, "ann")
    assert [f.note for f in loaded.get(item_id).flags if f.note in ("first", "second")] == ["first"]
    assert len(loaded.revisions(item_id)) == version + 1


def test_a_write_that_lands_between_read_and_update_is_detected(loaded: Store) -> None:
    """Two connections: the second edit read version v, then the first one committed v+1."""
    item_id = loaded.query_evidence()[0].id
    version = loaded.evidence_version(item_id)
    other = Store(loaded.url)

    def meanwhile(data: dict) -> dict:
        other.flag_evidence(item_id, "unverified", "the other edit", expected_version=version, by="ann")
        return {**data, "notes": "the late edit"}

    try:
        with pytest.raises(VersionConflict):
            loaded._change_evidence(item_id, meanwhile, version, "bob", "late")
    finally:
        other.close()
    item = loaded.get(item_id)
    assert item.notes != "the late edit" and item.flags[-1].note == "the other edit"
    assert loaded.evidence_version(item_id) == version + 1


def test_review_rules_in_the_store(loaded: Store) -> None:
    base = loaded.query_evidence()[0]
    item = base.model_copy(update={"id": "ev-new-a"})
    assert loaded.submit_evidence(item, by="ann", reason="new") == 1
    assert loaded.get("ev-new-a").curation_status.value == "submitted"
    assert loaded.submitters("ev-new-a") == {"ann"}
    with pytest.raises(CurationError, match="another editor"):
        loaded.review_evidence("ev-new-a", "accept", expected_version=1, by="ann", reason="mine")
    with pytest.raises(CurationError, match="already exists"):
        loaded.submit_evidence(item, by="bob", reason="again")
    assert loaded.review_evidence("ev-new-a", "accept", expected_version=1, by="bob", reason="ok") == 2
    assert loaded.submitters("ev-new-a") == set()
    with pytest.raises(CurationError, match="not awaiting review"):
        loaded.review_evidence("ev-new-a", "reject", expected_version=2, by="bob", reason="no")
    history = loaded.revisions("ev-new-a")
    assert [(h["version"], h["changed_by"], h["reason"], h["fields"]) for h in history] == [
        (1, "ann", "submitted: new", []),
        (2, "bob", "accepted: ok", ["curation_status"]),
    ]
    # Sources are rewritten with the item (filters keep working after an edit).
    edited = loaded.get("ev-new-a").model_copy(update={"msc_source": [MscSource.bone_marrow]})
    loaded.edit_evidence("ev-new-a", edited, expected_version=2, by="cy", reason="source")

    assert "ev-new-a" in {e.id for e in loaded.query_evidence(EvidenceFilter(msc_source="bone_marrow"))}
    assert loaded.get("ev-new-a").curation_status.value == "submitted"
    assert loaded.submitters("ev-new-a") == {"cy"}


def test_unflag_names_the_flag_it_removes(loaded: Store) -> None:
    item_id = loaded.query_evidence()[0].id
    version = loaded.flag_evidence(
        item_id, "unverified", "to check", expected_version=loaded.evidence_version(item_id), by="ann"
    )
    position = len(loaded.get(item_id).flags) - 1
    with pytest.raises(CurationError, match="no flag"):
        loaded.unflag_evidence(
            item_id, position, "copied_cell", "wrong code", expected_version=version, by="ann"
        )
    with pytest.raises(CurationError, match="why"):
        loaded.unflag_evidence(item_id, position, "unverified", "  ", expected_version=version, by="ann")
    loaded.unflag_evidence(item_id, position, "unverified", "checked", expected_version=version, by="bob")
    assert loaded.revisions(item_id)[-1]["reason"] == "unflagged unverified: checked"
