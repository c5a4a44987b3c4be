"""The intake in the browser: status and PRISMA flow, one-record-at-a-time screening with
keyboard shortcuts and highlighted inclusion terms, candidate pages with extraction
suggestions, and the step from a screened candidate to a study and a curation form.

Pages run no script (the site's rule): the shortcuts are HTML ``accesskey`` attributes
(Alt+I include, Alt+E exclude, Alt+M maybe; Alt+Shift in Firefox, Ctrl+Alt on macOS).
Every write is a CSRF-checked form POST by a logged-in curator; decisions keep who and when.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment
from markupsafe import Markup, escape

from mscatlas.intake.prisma import prisma_counts, prisma_svg
from mscatlas.intake.ranking import inclusion_pattern
from mscatlas.intake.screening import DECISIONS, STAGES, reason_codes
from mscatlas.intake.store import Candidate, IntakeStore
from mscatlas.intake.suggest import FIELDS, skeleton_yaml, suggest
from mscatlas.intake.workflow import next_candidates, open_intake, status
from mscatlas.kb.store import Store
from mscatlas.web.auth import Sessions, read_form, redirect
from mscatlas.web.pages import render
from mscatlas.web.submission import submission_page

__all__ = ["highlight", "intake_router"]

MAX_NOTE = 2000
SHORTCUTS = {"include": "i", "exclude": "e", "maybe": "m"}


def highlight(text: str | None, pattern: re.Pattern[str] | None = None) -> Markup:
    """``text`` escaped for HTML, with every inclusion term wrapped in <mark>."""
    if not text:
        return Markup("")
    escaped = str(escape(text))
    return Markup((pattern or inclusion_pattern()).sub(lambda m: f"<mark>{m.group(0)}</mark>", escaped))


class _LazyIntake:
    """The app's intake, opened (and the shipped search seeded) on first use."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._intake: IntakeStore | None = None
        self._lock = threading.Lock()

    def get(self) -> IntakeStore:
        with self._lock:
            if self._intake is None:
                self._intake, _ = open_intake(self.store)
            return self._intake


def intake_router(store: Store, env: Environment, sessions: Sessions) -> APIRouter:
    router = APIRouter()
    lazy = _LazyIntake(store)

    def candidate_or_404(candidate_id: str) -> Candidate:
        candidate = lazy.get().candidate(candidate_id)
        if candidate is None:
            raise HTTPException(status_code=404, detail=f"no candidate '{candidate_id}'")
        return candidate

    @router.get("/intake", response_class=HTMLResponse, include_in_schema=False)
    def intake_page(request: Request) -> HTMLResponse:
        intake = lazy.get()
        summary = status(intake)
        return render(
            env,
            request,
            "intake.html.j2",
            summary=summary,
            svg=Markup(prisma_svg(summary["prisma"])),
            disagreements=intake.disagreements() if intake.reviewers > 1 else [],
            upcoming=next_candidates(intake, n=10),
        )

    @router.get("/intake/screen", response_class=HTMLResponse, include_in_schema=False)
    def screen_page(request: Request) -> HTMLResponse:
        user = sessions.require(request, "curator")
        intake = lazy.get()
        upcoming = next_candidates(intake, n=1, by=user.name)
        candidate = candidate_or_404(upcoming[0]["id"]) if upcoming else None
        return render(
            env,
            request,
            "intake_screen.html.j2",
            candidate=candidate,
            score=upcoming[0]["score"] if upcoming else None,
            title=highlight(candidate.title) if candidate else "",
            abstract=highlight(candidate.abstract) if candidate else "",
            **_form_context(),
            stopping=status(intake)["stopping"],
        )

    @router.post("/intake/candidates/{candidate_id}/decision", include_in_schema=False)
    async def decide(request: Request, candidate_id: str) -> Response:
        form = await read_form(request, sessions)
        user = sessions.require(request, "curator")
        candidate_or_404(candidate_id)
        note = form.get("note", "").strip()
        if len(note) > MAX_NOTE:
            raise HTTPException(status_code=422, detail=f"the note is longer than {MAX_NOTE} characters")
        try:
            lazy.get().screen(
                candidate_id,
                form.get("decision", ""),
                by=user.name,
                reason=form.get("reason") or None,
                note=note or None,
                stage=form.get("stage") or "title_abstract",
                resolves=form.get("resolves") == "1",
            )
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        target = form.get("then", "")
        return redirect(
            request,
            sessions,
            f"/intake/candidates/{candidate_id}" if target == "record" else "/intake/screen",
        )

    @router.get("/intake/candidates/{candidate_id}", response_class=HTMLResponse, include_in_schema=False)
    def candidate_page(request: Request, candidate_id: str) -> HTMLResponse:
        candidate = candidate_or_404(candidate_id)
        intake = lazy.get()
        found = suggest(candidate.title, candidate.abstract)
        return render(
            env,
            request,
            "intake_candidate.html.j2",
            candidate=candidate,
            title=highlight(candidate.title),
            abstract=highlight(candidate.abstract),
            state=intake.states()[candidate.id],
            decisions=intake.decisions(candidate.id),
            suggestions=[(name, found[name]) for name in FIELDS if name in found],
            **_form_context(),
        )

    @router.post("/intake/candidates/{candidate_id}/promote", include_in_schema=False)
    async def promote(request: Request, candidate_id: str) -> Response:
        await read_form(request, sessions)
        user = sessions.require(request, "curator")
        candidate_or_404(candidate_id)
        try:
            lazy.get().promote(candidate_id, by=user.name)
        except ValueError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        return redirect(request, sessions, f"/intake/candidates/{candidate_id}/curate")

    @router.get(
        "/intake/candidates/{candidate_id}/curate", response_class=HTMLResponse, include_in_schema=False
    )
    def curate_page(request: Request, candidate_id: str) -> HTMLResponse:
        sessions.require(request, "curator")
        candidate = candidate_or_404(candidate_id)
        if candidate.study is None:
            raise HTTPException(
                status_code=409, detail=f"{candidate_id} is not a study yet: make it one first"
            )
        found = suggest(candidate.title, candidate.abstract)
        count = sum(1 for e in store.dataset().evidence if e.study == candidate.study)
        item_id = f"ev-{candidate.study}-{count + 1}"[:64]
        # The structured form and the YAML box, both filled with the suggestions to check.
        text = skeleton_yaml(found, candidate.study, item_id)
        reason = f"from intake candidate {candidate.id}"
        return submission_page(env, store, request, "evidence", text=text, reason=reason)

    @router.get("/intake/prisma.svg", include_in_schema=False)
    def prisma_image() -> Response:
        svg = prisma_svg(prisma_counts(lazy.get()), standalone=True)
        return Response(svg, media_type="image/svg+xml")

    @router.get("/api/intake/status", summary="Intake status: PRISMA flow and the stopping estimate")
    def api_status() -> JSONResponse:
        return JSONResponse(status(lazy.get()))

    @router.get("/api/intake/next", summary="The highest-priority unscreened candidates")
    def api_next(n: int = 10) -> JSONResponse:
        if not 1 <= n <= 100:
            raise HTTPException(status_code=422, detail="n must be between 1 and 100")
        return JSONResponse(next_candidates(lazy.get(), n=n))

    return router


def _form_context() -> dict[str, Any]:
    return {
        "decisions_allowed": DECISIONS,
        "stages": STAGES,
        "reasons": reason_codes(),
        "shortcuts": SHORTCUTS,
    }
