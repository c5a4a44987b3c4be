"""`mscatlas upgrade` (bring the store up to the shipped dataset) and `mscatlas proposals`
(review whole-record proposals: upstream changes and `load --propose`); `open_store` opens the
store for every command, saying what a first open did and when an upgrade is due."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.output import err_console, fail, print_json
from mscatlas.kb.store import CurationError, Store, UpgradeReport, VersionConflict

__all__ = ["open_store", "proposals_app", "upgrade"]

proposals_app = typer.Typer(
    help="Whole-record proposals (upstream changes, `load --propose`) waiting for an editor.",
    no_args_is_help=True,
)


def _describe(report: UpgradeReport) -> str:
    if report.already_current:
        return f"the store already holds shipped dataset {report.digest}"
    parts = [
        f"{len(report.added)} added",
        f"{len(report.updated)} updated (unchanged here)",
        f"{len(report.proposed)} changed here and upstream: filed as proposals",
        f"{len(report.kept)} changed here only: kept",
        f"{report.unchanged} unchanged",
    ]
    return f"shipped dataset {report.digest}: " + ", ".join(parts)


def open_store(db: str | None) -> Store:
    """The store, opened without writing to it (but for filling a store that was never filled)."""
    store = Store.open(db)
    if store.seed_report is not None:
        err_console.print(
            f"filled the store from the {_describe(store.seed_report)}", highlight=False, soft_wrap=True
        )
    elif store.shipped_outdated():
        err_console.print(
            "note: this mscatlas ships a newer dataset than the store holds; `mscatlas upgrade` brings "
            "it in (changes made here are never overwritten: changed records get proposals)",
            highlight=False,
            soft_wrap=True,
        )
    return store


def upgrade(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Bring the store up to the shipped dataset: unchanged records update, changed ones get proposals."""
    store = Store.open(db)
    report = store.seed_report or store.upgrade_shipped()
    if as_json:
        print_json(report.to_dict())
        return
    err_console.print(_describe(report), highlight=False)
    for record_id, proposal_id in report.proposed.items():
        err_console.print(f"  proposal {proposal_id}: upstream change to {record_id}", highlight=False)
    if report.proposed:
        err_console.print(
            "review them with `mscatlas proposals show ID` and `mscatlas proposals accept|reject`"
        )


@proposals_app.command("list")
def list_proposals(
    status: Annotated[
        str, typer.Option("--status", help="pending, accepted, rejected, superseded or all.")
    ] = "pending",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Proposals with their record, source and author."""
    store = open_store(db)
    found = store.proposals(status=None if status == "all" else status)
    if as_json:
        print_json([p.to_dict() for p in found])
        return
    for p in found:
        typer.echo(
            f"{p.id}\t{p.status}\t{p.source}\t{p.record_kind} {p.record_id}\tby {p.created_by}\t{p.reason}"
        )


@proposals_app.command("show")
def show_proposal(
    proposal_id: Annotated[int, typer.Argument(help="Proposal number.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """A proposal with its diff against the record as it is now."""
    store = open_store(db)
    proposal = store.proposal(proposal_id)
    if proposal is None:
        fail(f"no proposal {proposal_id}", detail={"proposal": proposal_id})
    diff = [c.to_dict() for c in store.proposal_diff(proposal_id)]
    version = store.record_version(proposal.record_id)
    if as_json:
        print_json({**proposal.to_dict(), "current_version": version, "diff": diff})
        return
    typer.echo(f"proposal {proposal.id} ({proposal.status}, {proposal.source}) for {proposal.record_id}")
    typer.echo(f"by {proposal.created_by}: {proposal.reason}; record version now {version}")
    for change in diff:
        typer.echo(f"- {change['field']}: {json.dumps(change['current'], ensure_ascii=False)}")
        typer.echo(f"+ {change['field']}: {json.dumps(change['proposed'], ensure_ascii=False)}")


def _decide(decision: str, proposal_id: int, by: str, reason: str, db: str | None) -> None:
    store = open_store(db)
    user = store.get_user(by)
    if store.users() and (user is None or not user.can("editor")):
        fail(f"deciding a proposal needs an active editor account; {by!r} is not one")
    try:
        decided = store.review_proposal(proposal_id, decision, by=by, reason=reason)
    except KeyError:
        fail(f"no proposal {proposal_id}", detail={"proposal": proposal_id})
    except (CurationError, VersionConflict) as exc:
        fail(str(exc))
    err_console.print(f"proposal {decided.id} for {decided.record_id}: {decided.status}")


ByOption = Annotated[
    str, typer.Option("--by", help="The editor deciding (an account when the store has any).")
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why.")]


@proposals_app.command("accept")
def accept(
    proposal_id: Annotated[int, typer.Argument()],
    by: ByOption,
    reason: ReasonOption = "accepted",
    db: DbOption = None,
) -> None:
    """The record becomes the proposed version (a new version with a revision naming you)."""
    _decide("accept", proposal_id, by, reason, db)


@proposals_app.command("reject")
def reject(
    proposal_id: Annotated[int, typer.Argument()],
    by: ByOption,
    reason: ReasonOption = "rejected",
    db: DbOption = None,
) -> None:
    """The record stays as it is; the proposal is kept as rejected."""
    _decide("reject", proposal_id, by, reason, db)
