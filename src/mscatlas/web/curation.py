"""Curation in the browser: log in and out, the review queue, review of items and proposals,
flags. Submitting and editing records is web/submission.py.

Every write is a form POST checked for its CSRF token, made by a logged-in account with the
needed role, and names the version of the record it started from: a record changed meanwhile
answers 409 and nothing is written. Each change is a revision with who, when and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment

from mscatlas.kb.models import FLAG_CODES, EvidenceItem
from mscatlas.kb.store import CurationError, Proposal, Store, VersionConflict
from mscatlas.web.api import RECORD_PATHS
from mscatlas.web.auth import Sessions, read_form, redirect, safe_next
from mscatlas.web.forms import RecordKind
from mscatlas.web.pages import render

__all__ = ["conflict_page", "curation_router", "form_text", "form_version", "run_change"]

MAX_REASON = 1000
MAX_NOTE = 4000


def form_text(form: dict[str, str], name: str, limit: int) -> str:
    value = form.get(name, "").strip()
    if len(value) > limit:
        raise HTTPException(status_code=422, detail=f"'{name}' is longer than {limit} characters")
    return value


def form_version(form: dict[str, str]) -> int:
    try:
        return int(form.get("version", ""))
    except ValueError as exc:
        raise HTTPException(
            status_code=422, detail="the form does not say which version of the record it started from"
        ) from exc


def conflict_page(
    env: Environment,
    request: Request,
    exc: VersionConflict,
    text: str | None = None,
    kind: RecordKind = "evidence",
) -> HTMLResponse:
    """409: the record changed since the form was opened; the text typed is shown, unsaved."""
    return render(
        env,
        request,
        "conflict.html.j2",
        status_code=409,
        message=str(exc),
        record_id=exc.record_id,
        record_path=f"/{RECORD_PATHS[kind]}/{exc.record_id}",
        current=exc.actual,
        text=text,
    )


def run_change(
    env: Environment,
    sessions: Sessions,
    request: Request,
    change: Callable[[], object],
    done: str,
    text: str | None = None,
) -> Response:
    """Run one store change: a stale version shows the conflict page (409), any other refusal
    by the store is a 409 with its message, success redirects to ``done``."""
    try:
        change()
    except VersionConflict as exc:
        return conflict_page(env, request, exc, text)
    except CurationError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return redirect(request, sessions, done)


def curation_router(store: Store, env: Environment, sessions: Sessions) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def apply_change(
        request: Request, change: Callable[[], object], done: str, text: str | None = None
    ) -> Response:
        return run_change(env, sessions, request, change, done, text)

    def evidence_or_404(record_id: str) -> EvidenceItem:
        item = store.get(record_id)
        if not isinstance(item, EvidenceItem):
            raise HTTPException(status_code=404, detail=f"no evidence item '{record_id}'")
        return item

    # ------------------------------------------------------------ accounts

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        return render(env, request, "login.html.j2", next=safe_next(next), error=None, login_name="")

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request, sessions)
        name = form.get("name", "").strip()[:64]
        address = request.client.host if request.client else "unknown"
        keys = [f"user:{name}", f"addr:{address}"]
        wait = await run_in_threadpool(store.login_locked_for, keys)
        if wait > 0:
            raise HTTPException(
                status_code=429,
                detail=f"too many failed logins: try again in {math.ceil(wait)} s",
                headers={"retry-after": str(math.ceil(wait))},
            )
        # Argon2 takes tens of milliseconds of CPU: off the event loop, so other requests go on.
        user = await run_in_threadpool(store.authenticate, name, form.get("password", ""))
        target = safe_next(form.get("next"))
        if user is None:
            await run_in_threadpool(store.record_login_failure, keys)
        else:
            await run_in_threadpool(store.clear_login_failures, [f"user:{name}"])
        if user is None:
            return render(
                env,
                request,
                "login.html.j2",
                status_code=401,
                next=target,
                error="wrong name or password",
                login_name=name,
            )
        sessions.log_in(request, user)
        return redirect(request, sessions, target)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await read_form(request, sessions)
        sessions.log_out(request)
        return redirect(request, sessions, "/")

    # ------------------------------------------------------------ the review queue

    @router.get("/curate", response_class=HTMLResponse)
    def queue(request: Request) -> HTMLResponse:
        items = [e for e in store.query_evidence() if e.curation_status.value == "submitted"]
        return render(
            env,
            request,
            "curate.html.j2",
            items=items,
            submitters={e.id: sorted(store.submitters(e.id)) for e in items},
            proposals=store.proposals(),
        )

    # ------------------------------------------------------------ proposals (upstream changes, loads)

    def proposal_or_404(proposal_id: int) -> Proposal:
        proposal = store.proposal(proposal_id)
        if proposal is None:
            raise HTTPException(status_code=404, detail=f"no proposal {proposal_id}")
        return proposal

    @router.get("/curate/proposals/{proposal_id}", response_class=HTMLResponse)
    def proposal_page(request: Request, proposal_id: int) -> HTMLResponse:
        proposal = proposal_or_404(proposal_id)
        user = sessions.of(request).user
        return render(
            env,
            request,
            "proposal.html.j2",
            proposal=proposal,
            diff=store.proposal_diff(proposal_id),
            record_version=store.record_version(proposal.record_id),
            can_review=user is not None and user.can("editor") and user.name != proposal.created_by,
        )

    @router.post("/curate/proposals/{proposal_id}/review")
    async def review_proposal(request: Request, proposal_id: int) -> Response:
        form = await read_form(request, sessions)
        user = sessions.require(request, "editor")
        proposal_or_404(proposal_id)
        version = form_version(form)
        decision = form.get("decision", "")
        if decision not in ("accept", "reject"):
            raise HTTPException(status_code=422, detail="the decision is 'accept' or 'reject'")
        reason = form_text(form, "reason", MAX_REASON)
        if decision == "reject" and not reason:
            raise HTTPException(status_code=422, detail="say why the proposal is rejected")
        return apply_change(
            request,
            lambda: store.review_proposal(
                proposal_id, decision, by=user.name, reason=reason or "no comment",
                expected_version=version or None,
            ),
            f"/curate/proposals/{proposal_id}",
        )  # fmt: skip

    # ------------------------------------------------------------ review and flags

    @router.post("/evidence/{record_id}/review")
    async def review(request: Request, record_id: str) -> Response:
        form = await read_form(request, sessions)
        user = sessions.require(request, "editor")
        evidence_or_404(record_id)
        version = form_version(form)
        decision = form.get("decision", "")
        if decision not in ("accept", "reject"):
            raise HTTPException(status_code=422, detail="the decision is 'accept' or 'reject'")
        if user.name in store.submitters(record_id):
            raise HTTPException(
                status_code=403,
                detail=f"{user.name} submitted or edited this item: another editor must review it",
            )
        reason = form_text(form, "reason", MAX_REASON)
        if decision == "reject" and not reason:
            raise HTTPException(status_code=422, detail="say why the item is rejected")
        return apply_change(
            request,
            lambda: store.review_evidence(
                record_id, decision, expected_version=version, by=user.name, reason=reason or "no comment"
            ),
            f"/evidence/{record_id}",
        )

    @router.post("/evidence/{record_id}/flag")
    async def flag(request: Request, record_id: str) -> Response:
        form = await read_form(request, sessions)
        user = sessions.require(request, "curator")
        evidence_or_404(record_id)
        version = form_version(form)
        code = form.get("code", "")
        if code not in FLAG_CODES:
            raise HTTPException(
                status_code=422, detail=f"unknown flag code {code!r}; known: {', '.join(sorted(FLAG_CODES))}"
            )
        note = form_text(form, "note", MAX_NOTE)
        if not note:
            raise HTTPException(status_code=422, detail="a flag needs a comment explaining it")
        return apply_change(
            request,
            lambda: store.flag_evidence(record_id, code, note, expected_version=version, by=user.name),
            f"/evidence/{record_id}#flags",
        )

    @router.post("/evidence/{record_id}/unflag")
    async def unflag(request: Request, record_id: str) -> Response:
        form = await read_form(request, sessions)
        user = sessions.require(request, "curator")
        evidence_or_404(record_id)
        version = form_version(form)
        try:
            index = int(form.get("index", "")) - 1
        except ValueError as exc:
            raise HTTPException(status_code=422, detail="the form does not say which flag to remove") from exc
        comment = form_text(form, "comment", MAX_NOTE)
        if not comment:
            raise HTTPException(status_code=422, detail="say why the flag is removed")
        code = form.get("code", "")
        return apply_change(
            request,
            lambda: store.unflag_evidence(
                record_id, index, code, comment, expected_version=version, by=user.name
            ),
            f"/evidence/{record_id}#flags",
        )

    return router
