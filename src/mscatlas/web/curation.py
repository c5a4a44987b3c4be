"""Curation in the browser: log in and out, submit and edit evidence items, studies and
trials (a structured form, or YAML), review, flag.

Every write is a form POST checked for its CSRF token, made by a logged-in account with the
needed role, and names the version of the record it started from: a record changed meanwhile
answers 409 and nothing is written. Each change is a revision with who, when and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import yaml
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment
from pydantic import BaseModel

from mscatlas.kb.models import FLAG_CODES, Dataset, EvidenceItem
from mscatlas.kb.records import RawRecord, RecordFileError, dataset_from_records, records_from_yaml
from mscatlas.kb.store import CurationError, Proposal, Store, VersionConflict
from mscatlas.kb.vocab import load_vocabulary
from mscatlas.web.api import RECORD_PATHS
from mscatlas.web.auth import Sessions, read_form, redirect, safe_next
from mscatlas.web.forms import KIND_MODELS, RecordKind, compact_rows, data_from_form, form_fields, form_values
from mscatlas.web.pages import render

__all__ = ["curation_router", "parse_submission", "validate_submission"]

MAX_REASON = 1000
MAX_NOTE = 4000
FORM_FILE = "form"  # the "file" that errors of a submitted form name
# The structured form names every field of a record (an item with several outcomes: hundreds).
STRUCTURED_FORM_FIELDS = 4000
KIND_NAMES: dict[RecordKind, str] = {"evidence": "evidence item", "study": "study", "trial": "trial"}

EVIDENCE_SKELETON = """\
id: ev-000-x
study: ref29
refs: [29]
msc_species: human
msc_source: [umbilical_cord]
cancer_type: breast carcinoma
cancer_class: solid
cell_lines: [MDA-MB-231]
delivery: direct_coculture
setting: in_vitro
dose: "1:10 (MSC:cancer)"
endpoint: proliferation
direction: inhibits
evidence_level: preclinical_in_vitro
provenance:
  review_location: Table 1, row 1
  summary: One line in your own words.
"""
STUDY_SKELETON = """\
id: pmid12345678
pmid: "12345678"
authors: [Surname A, Surname B]
title: The paper's title
journal: Journal Abbrev.
year: 2020
"""
TRIAL_SKELETON = """\
nct_id: NCT00000000
title: The treatment as the registry names it
treatment: MSC product
msc_source: [bone_marrow]
engineered: false
cancer_type: the condition
purpose: anti_tumor
phases: [PHASE1]
provenance:
  primary_source_checked: true
  primary_source: ClinicalTrials.gov record
  summary: One line in your own words.
"""
SKELETONS: dict[RecordKind, str] = {
    "evidence": EVIDENCE_SKELETON,
    "study": STUDY_SKELETON,
    "trial": TRIAL_SKELETON,
}


def parse_submission(
    text: str,
    store: Store,
    *,
    record_id: str | None = None,
    kind: RecordKind = "evidence",
) -> tuple[BaseModel | None, list[dict[str, Any]]]:
    """Validate one record of ``kind`` written as YAML, as `mscatlas validate` does.

    Returns the record, or the errors as dicts with ``field`` (dotted path or None), ``line`` and
    ``message``. ``record_id`` is the record being edited (None for a new submission).
    """
    if not text.strip():
        return None, [_problem(None, f"write the {KIND_NAMES[kind]} as YAML")]
    try:
        records = records_from_yaml(text, FORM_FILE)
    except RecordFileError as exc:
        return None, [_problem(e.field, e.message, e.line) for e in exc.errors]
    if len(records) != 1:
        return None, [_problem(None, f"write exactly one {KIND_NAMES[kind]} (found {len(records)})")]
    raw = records[0]
    return validate_submission(
        dict(raw.data), store, kind=kind, record_id=record_id, line=raw.line, lines=raw.lines
    )


def validate_submission(
    data: dict[str, Any],
    store: Store,
    *,
    kind: RecordKind,
    record_id: str | None = None,
    line: int | None = None,
    lines: dict[str, int] | None = None,
) -> tuple[BaseModel | None, list[dict[str, Any]]]:
    """Validate one record's data (from the YAML box or the structured form) with the rules of
    `mscatlas validate`, and the rules of a submission: a new record takes a free id, an edited
    one keeps its id, and an evidence item's status is ``submitted`` (an editor decides)."""
    if kind == "evidence":
        status = data.get("curation_status", "submitted")
        if status != "submitted":
            message = (
                f"'{status}' is an editor's decision: leave curation_status out (it becomes 'submitted')"
            )
            return None, [_problem("curation_status", message, line)]
        data = {**data, "curation_status": "submitted"}
    raw = RawRecord(data, FORM_FILE, 1, line, kind, lines or {})  # lines: errors at their field
    dataset, errors = dataset_from_records([raw], store.study_ids())
    problems = [_problem(e.field, e.message, e.line) for e in errors]
    record: BaseModel | None = None
    if dataset is not None:
        record = {"evidence": dataset.evidence, "study": dataset.studies, "trial": dataset.trials}[kind][0]
    if record is not None:
        key = "nct_id" if kind == "trial" else "id"
        new_id = getattr(record, key)
        if record_id is None and store.get(new_id) is not None:
            problems.append(
                _problem(key, f"'{new_id}' is already the id of a stored record; choose another id")
            )
        elif record_id is not None and new_id != record_id:
            problems.append(_problem(key, f"the id of an edited record stays '{record_id}'"))
    return (None if problems else record), problems


def _problem(field: str | None, message: str, line: int | None = None) -> dict[str, Any]:
    return {"field": field, "line": line, "message": message}


def _text(form: dict[str, str], name: str, limit: int) -> str:
    value = form.get(name, "").strip()
    if len(value) > limit:
        raise HTTPException(status_code=422, detail=f"'{name}' is longer than {limit} characters")
    return value


def _version(form: dict[str, str]) -> int:
    try:
        return int(form.get("version", ""))
    except ValueError as exc:
        raise HTTPException(
            status_code=422, detail="the form does not say which version of the record it started from"
        ) from exc


def curation_router(store: Store, env: Environment, sessions: Sessions) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def apply_change(
        request: Request, change: Callable[[], object], done: str, text: str | None = None
    ) -> Response:
        """Run one store change: a stale version shows the conflict page (409), any other refusal
        by the store is a 409 with its message, success redirects to ``done``."""
        try:
            change()
        except VersionConflict as exc:
            return conflict(request, exc, text)
        except CurationError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        return redirect(request, sessions, done)

    def conflict(
        request: Request, exc: VersionConflict, text: str | None = None, kind: RecordKind = "evidence"
    ) -> HTMLResponse:
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
        version = _version(form)
        decision = form.get("decision", "")
        if decision not in ("accept", "reject"):
            raise HTTPException(status_code=422, detail="the decision is 'accept' or 'reject'")
        reason = _text(form, "reason", MAX_REASON)
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

    # ------------------------------------------------------------ submit and edit

    def record_or_404(kind: RecordKind, record_id: str) -> BaseModel:
        record = store.get(record_id)
        if not isinstance(record, KIND_MODELS[kind]):
            raise HTTPException(status_code=404, detail=f"no {KIND_NAMES[kind]} '{record_id}'")
        return record

    def form_page(
        request: Request,
        kind: RecordKind,
        *,
        record_id: str | None,
        version: int | None,
        values: dict[str, str],
        text: str,
        reason: str = "",
        problems: list[dict[str, Any]] | None = None,
        parsed: dict[str, str] | None = None,
        yaml_mode: bool = False,
        checked: bool = False,
        status_code: int = 200,
    ) -> HTMLResponse:
        """The structured form (and the YAML box beside it), with each problem at its field."""
        problems = problems or []
        fields, unplaced = form_fields(
            kind, {} if yaml_mode else values, [] if yaml_mode else problems, parsed
        )
        vocab = load_vocabulary()
        return render(
            env,
            request,
            "submit.html.j2",
            status_code=status_code,
            kind=kind,
            kind_name=KIND_NAMES[kind],
            mode="edit" if record_id else "submit",
            action=edit_path(kind, record_id) if record_id else f"/curate/submit/{kind}",
            record_id=record_id,
            record_path=f"/{RECORD_PATHS[kind]}/{record_id}" if record_id else None,
            fields=fields,
            errors=problems,
            unplaced=problems if yaml_mode else unplaced,
            yaml_mode=yaml_mode,
            checked=checked and not problems,
            text=text,
            reason=reason,
            version=version,
            cell_lines=sorted(vocab.cell_lines.entries),
            genes=sorted(vocab.genes.entries),
            study_ids=sorted(store.study_ids()),
        )

    def edit_path(kind: RecordKind, record_id: str | None) -> str:
        return f"/{RECORD_PATHS[kind]}/{record_id}/edit"

    def show_new(request: Request, kind: RecordKind) -> HTMLResponse:
        sessions.require(request, "curator")
        return form_page(request, kind, record_id=None, version=None, values={}, text=SKELETONS[kind])

    def show_edit(request: Request, kind: RecordKind, record_id: str) -> HTMLResponse:
        sessions.require(request, "curator")
        record = record_or_404(kind, record_id)
        data = _data_of(record)
        return form_page(
            request,
            kind,
            record_id=record_id,
            version=store.record_version(record_id),
            values=form_values(data, kind),
            text=_yaml_of(data),
        )

    async def save(request: Request, kind: RecordKind, record_id: str | None) -> Response:
        """Read a submitted form (structured, or the YAML box), check it, and save it or show why not.

        "Check" re-renders with every dose parsed and every problem beside its field; "save"
        stores the record when nothing is wrong. An evidence item is stored as submitted for an
        editor to review; a new study or trial is added, and a changed one is filed as a proposal
        that another editor accepts or rejects (the proposals of `mscatlas load --propose`).
        """
        form = await read_form(request, sessions, max_fields=STRUCTURED_FORM_FIELDS)
        user = sessions.require(request, "curator")
        original = _data_of(record_or_404(kind, record_id)) if record_id else None
        version = _version(form) if record_id else None
        reason = _text(form, "reason", MAX_REASON)
        yaml_mode = "yaml" in form
        parsed: dict[str, str] = {}
        if yaml_mode:
            text = form.get("yaml", "")
            record, problems = parse_submission(text, store, record_id=record_id, kind=kind)
            values = form_values(original, kind) if original else {}
        else:
            text = _yaml_of(original) if original else SKELETONS[kind]
            values = compact_rows(form, kind)
            data, problems, parsed = data_from_form(values, kind, original)
            record, invalid = validate_submission(data, store, kind=kind, record_id=record_id)
            problems = [*problems, *invalid]
        if record_id and not reason:
            problems = [*problems, _problem("reason", f"say why you change the {KIND_NAMES[kind]}")]
        checking = form.get("action") == "check"
        if checking or problems or record is None:
            return form_page(
                request, kind, record_id=record_id, version=version, values=values, text=text,
                reason=form.get("reason", ""), problems=problems, parsed=parsed, yaml_mode=yaml_mode,
                checked=checking, status_code=422 if problems and not checking else 200,
            )  # fmt: skip
        if kind == "evidence":
            assert isinstance(record, EvidenceItem)
            if record_id is None:
                try:
                    store.submit_evidence(record, by=user.name, reason=reason or "new item")
                except CurationError as exc:
                    raise HTTPException(status_code=409, detail=str(exc)) from exc
                return redirect(request, sessions, f"/evidence/{record.id}")
            assert version is not None
            return apply_change(
                request,
                lambda: store.edit_evidence(
                    record_id, record, expected_version=version, by=user.name, reason=reason
                ),
                f"/evidence/{record_id}",
                text if yaml_mode else _yaml_of(_data_of(record)),
            )
        return save_by_proposal(request, kind, record, record_id, version, user.name, reason or "new record")

    def save_by_proposal(
        request: Request,
        kind: RecordKind,
        record: BaseModel,
        record_id: str | None,
        version: int | None,
        by: str,
        reason: str,
    ) -> Response:
        key = str(getattr(record, "nct_id" if kind == "trial" else "id"))
        if record_id is not None and store.record_version(record_id) != version:
            current = store.record_version(record_id)
            return conflict(
                request,
                VersionConflict(record_id, version or 0, current, None),
                _yaml_of(_data_of(record)),
                kind,
            )
        dataset = Dataset(**{"studies" if kind == "study" else "trials": [record]})
        try:
            result = store.load(dataset, changed_by=by, reason=reason, updates="propose")
        except (CurationError, ValueError) as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        if result.proposed:
            proposal = store.proposals(record_id=key)[-1]
            return redirect(request, sessions, f"/curate/proposals/{proposal.id}")
        return redirect(request, sessions, f"/{RECORD_PATHS[kind]}/{key}")

    @router.get("/curate/submit", response_class=HTMLResponse)
    def submit_page(request: Request) -> HTMLResponse:
        return show_new(request, "evidence")

    @router.get("/curate/submit/{kind}", response_class=HTMLResponse)
    def submit_kind_page(request: Request, kind: RecordKind) -> HTMLResponse:
        return show_new(request, kind)

    @router.post("/curate/submit")
    async def submit(request: Request) -> Response:
        return await save(request, "evidence", None)

    @router.post("/curate/submit/{kind}")
    async def submit_kind(request: Request, kind: RecordKind) -> Response:
        return await save(request, kind, None)

    def edit_routes(kind: RecordKind) -> None:
        @router.get(f"/{RECORD_PATHS[kind]}/{{record_id}}/edit", response_class=HTMLResponse)
        def edit_page(request: Request, record_id: str) -> HTMLResponse:
            return show_edit(request, kind, record_id)

        @router.post(f"/{RECORD_PATHS[kind]}/{{record_id}}/edit")
        async def edit(request: Request, record_id: str) -> Response:
            return await save(request, kind, record_id)

    for kind in KIND_NAMES:
        edit_routes(kind)

    # ------------------------------------------------------------ review and flags

    @router.post("/evidence/{record_id}/review")
    async def review(request: Request, record_id: str) -> Response:
        form = await read_form(request, sessions)
        user = sessions.require(request, "editor")
        evidence_or_404(record_id)
        version = _version(form)
        decision = form.get("decision", "")
        if decision not in ("accept", "reject"):
            raise HTTPException(status_code=422, detail="the decision is 'accept' or 'reject'")
        if user.name in store.submitters(record_id):
            raise HTTPException(
                status_code=403,
                detail=f"{user.name} submitted or edited this item: another editor must review it",
            )
        reason = _text(form, "reason", MAX_REASON)
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
        version = _version(form)
        code = form.get("code", "")
        if code not in FLAG_CODES:
            raise HTTPException(
                status_code=422, detail=f"unknown flag code {code!r}; known: {', '.join(sorted(FLAG_CODES))}"
            )
        note = _text(form, "note", MAX_NOTE)
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
        version = _version(form)
        try:
            index = int(form.get("index", "")) - 1
        except ValueError as exc:
            raise HTTPException(status_code=422, detail="the form does not say which flag to remove") from exc
        comment = _text(form, "comment", MAX_NOTE)
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


def _data_of(record: BaseModel) -> dict[str, Any]:
    """A record's fields as JSON values, without the derived ones (recomputed on reading) and
    without the curation status (an editor's decision)."""
    derived = {"ontology", "in_review", "registry", "curation_status"}
    if isinstance(record, EvidenceItem):
        derived.add("engineered")
    return record.model_dump(mode="json", exclude_none=True, exclude=derived)


def _yaml_of(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
