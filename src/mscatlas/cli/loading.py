"""`mscatlas validate`, `load` and `retract`: record files in, curated as any other change.

A load names its author (``--by``, else the login name). New evidence items land as submitted
(pending review) unless an editor loads them; changes to stored records are an editor's edit
or, with ``--propose``, proposals. ``retract`` withdraws an item with a revision, never a delete.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer

from mscatlas.cli.curation import open_store
from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.output import BAD_INPUT, FAILED, console, err_console, fail, print_json
from mscatlas.kb.enums import CurationStatus
from mscatlas.kb.models import Dataset, EvidenceItem
from mscatlas.kb.records import RecordError, validate_paths
from mscatlas.kb.store import CurationError, Store, VersionConflict

__all__ = ["load", "retract", "validate"]


def _report_errors(errors: list[RecordError], as_json: bool, notes: list[RecordError]) -> None:
    message = f"{len(errors)} error(s) in the record files"
    if as_json:
        details = [e.to_dict() for e in errors]
        print_json(
            {
                "valid": False,
                "error": message,
                "detail": details,
                "errors": details,
                "warnings": [n.to_dict() for n in notes],
            }
        )
        return
    _print_notes(notes)
    for e in errors:
        err_console.print(f"[red]error[/red] {e}", markup=True, highlight=False, soft_wrap=True)
    err_console.print(f"{len(errors)} error(s)")


def _print_notes(notes: list[RecordError]) -> None:
    for n in notes:
        err_console.print(f"[yellow]note[/yellow] {n}", markup=True, highlight=False, soft_wrap=True)


def _validate(
    paths: list[Path], store: Store | None
) -> tuple[Dataset | None, list[RecordError], list[RecordError]]:
    from mscatlas.kb.shipped import shipped_dataset

    known = store.study_ids() if store else {s.id for s in shipped_dataset().studies}
    notes: list[RecordError] = []
    dataset, errors = validate_paths(paths, known_study_ids=known, notes=notes)
    return dataset, errors, notes


def validate(
    paths: Annotated[list[Path], typer.Argument(help="YAML, JSON or CSV record files.")],
    as_json: JsonOption = False,
) -> None:
    """Check record files; every error names file, line, record, field and the bad value. Exit 1 on
    any error. A label or synonym ("bone marrow", BM-MSC) is read as its value, with a note."""
    dataset, errors, notes = _validate(paths, None)
    if errors:
        _report_errors(errors, as_json, notes)
        raise typer.Exit(FAILED)
    assert dataset is not None
    counts = {
        "studies": len(dataset.studies),
        "evidence": len(dataset.evidence),
        "trials": len(dataset.trials),
    }
    if as_json:
        print_json({"valid": True, **counts, "warnings": [n.to_dict() for n in notes]})
    else:
        _print_notes(notes)
        n_studies, n_items, n_trials = counts.values()
        console.print(f"valid: {n_studies} studies, {n_items} evidence items, {n_trials} trials")


def load(
    paths: Annotated[list[Path], typer.Argument(help="Record files to load.")],
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Who loads (default: your login name). New evidence items are accepted only when an "
            "editor loads them, and stay submitted for review otherwise; changes to stored records "
            "need an editor (or a curator with --propose). Must be an active account when the store "
            "has accounts; a store without accounts takes a named --by as its editor.",
        ),
    ] = None,
    propose: Annotated[
        bool,
        typer.Option("--propose", help="File changes to stored records as pending proposals for an editor."),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate record files, then load them in one transaction (all or nothing).

    New records are added under the loader's name; new evidence items wait for review unless an
    editor loads them. Records that change stored ones are an editor's edit (--by EDITOR) or,
    with --propose, proposals an editor accepts or rejects (`mscatlas proposals`).
    """
    store = open_store(db)
    dataset, errors, notes = _validate(paths, store)
    if errors:
        _report_errors(errors, as_json, notes)
        if not as_json:
            err_console.print("nothing was loaded")
        raise typer.Exit(FAILED)
    assert dataset is not None
    if not as_json:
        _print_notes(notes)
    if propose and by is None:
        fail("--propose needs --by NAME: a proposal names its author", code=BAD_INPUT)
    role = _loader_role(store, by, propose)
    author = by or getpass.getuser()
    dataset, pending = _pending_unless_editor(store, dataset, editor=role == "editor")
    updates = "propose" if propose else ("apply" if role == "editor" else "refuse")
    try:
        result = store.load(
            dataset,
            changed_by=author,
            reason="mscatlas load " + " ".join(str(p) for p in paths),
            updates=updates,  # type: ignore[arg-type]
        )
    except CurationError as exc:
        if by is not None and role != "editor" and not propose:
            fail(
                f"--by {by}: changing stored records needs the editor role ({by} is a {role}); "
                f"a curator can --propose the changes ({exc})"
            )
        fail(f"nothing was loaded: {exc}")
    except Exception as exc:  # the transaction rolled back: report, keep the store as it was
        fail(f"loading failed, nothing was loaded: {exc}")
    out: dict[str, Any] = {"added": result.added, "updated": result.updated, "unchanged": result.unchanged}
    if propose:
        out["proposed"] = result.proposed
    out["pending_review"] = pending
    out["by"] = author
    if as_json:
        print_json({**out, "warnings": [n.to_dict() for n in notes]})
        return
    counts = ", ".join(f"{out[k]} {k}" for k in ("added", "updated", "unchanged", "proposed") if k in out)
    console.print(f"loaded by {author}: {counts}")
    if pending:
        console.print(
            f"{len(pending)} new evidence item(s) await an editor's review (submitted): "
            + ", ".join(pending[:10])
            + (", ..." if len(pending) > 10 else "")
        )


def _loader_role(store: Store, by: str | None, propose: bool) -> str:
    """The loader's role: 'editor', 'curator' or 'anonymous' (no --by). A store with accounts
    needs --by to name an active one with the role the load needs; a store without accounts
    takes a named --by as its editor."""
    if by is None:
        return "anonymous"
    if not store.users():
        return "editor"
    user = store.get_user(by)
    if user is None or not user.active:
        fail(f"--by {by}: no active account of that name")
    if not user.can("curator"):
        fail(f"--by {by}: loading needs the curator or editor role ({by} is a {user.role})")
    if propose or not user.can("editor"):
        return "curator"
    return "editor"


def _pending_unless_editor(store: Store, dataset: Dataset, *, editor: bool) -> tuple[Dataset, list[str]]:
    """New evidence items as submitted (awaiting review) unless an editor loads them; an item
    already awaiting review stays so (a load never reviews: `mscatlas` editors review on the web)."""
    stored = store.record_kinds()
    evidence = []
    pending = []
    for item in dataset.evidence:
        if item.curation_status is CurationStatus.accepted:
            current = store.get(item.id) if item.id in stored else None
            awaiting = (
                isinstance(current, EvidenceItem) and current.curation_status is CurationStatus.submitted
            )
            if awaiting or (current is None and not editor):
                item = item.model_copy(update={"curation_status": CurationStatus.submitted})
                if current is None:
                    pending.append(item.id)
        evidence.append(item)
    return dataset.model_copy(update={"evidence": evidence}), pending


def retract(
    record_id: Annotated[str, typer.Argument(help="Evidence item id, e.g. ev-029-a.")],
    by: Annotated[str, typer.Option("--by", help="Who retracts: an editor, or the item's author.")],
    why: Annotated[str, typer.Option("--why", help="Why the item is withdrawn (kept in its history).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw an evidence item: a new version marked rejected with who and why (never a delete;
    `mscatlas show ID` keeps every earlier version in its history)."""
    store = open_store(db)
    if store.evidence_version(record_id) is None:
        what = "a study or trial" if store.get(record_id) is not None else "no record"
        fail(f"'{record_id}' is {what}; retract takes an evidence item id", detail={"id": record_id})
    if store.users():
        user = store.get_user(by)
        if user is None or not user.active:
            fail(f"--by {by}: no active account of that name")
        if not user.can("editor") and by not in _authors(store, record_id):
            fail(f"--by {by}: only an editor or the item's author can retract {record_id}")
    try:
        version = store.retract_evidence(record_id, by=by, why=why)
    except (CurationError, VersionConflict) as exc:
        fail(str(exc))
    if as_json:
        print_json({"retracted": record_id, "version": version, "by": by, "why": why.strip()})
    else:
        console.print(f"{record_id} retracted by {by} (version {version}, status rejected): {why.strip()}")


def _authors(store: Store, record_id: str) -> set[str]:
    return {r["changed_by"] for r in store.revisions(record_id)}
