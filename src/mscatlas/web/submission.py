"""Submitting and editing records in the browser: evidence items, studies and trials, through
the structured form (web/forms.py) or the YAML box beside it.

Every write is a form POST checked for its CSRF token, by a curator, and names the version of
the record it started from: a record changed meanwhile answers 409 and nothing is written. An
evidence item is stored as submitted for another editor to review; a new study or trial is
added, and a changed one is filed as a proposal that another editor accepts or rejects.
"""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment
from pydantic import BaseModel

from mscatlas.kb.models import Dataset, EvidenceItem
from mscatlas.kb.records import RawRecord, RecordFileError, dataset_from_records, records_from_yaml
from mscatlas.kb.store import CurationError, Store, VersionConflict
from mscatlas.kb.vocab import load_vocabulary
from mscatlas.web.api import RECORD_PATHS
from mscatlas.web.auth import Sessions, read_form, redirect
from mscatlas.web.curation import MAX_REASON, conflict_page, form_text, form_version, run_change
from mscatlas.web.forms import KIND_MODELS, RecordKind, compact_rows, data_from_form, form_fields, form_values
from mscatlas.web.pages import render

__all__ = [
    "parse_submission",
    "submission_page",
    "submission_router",
    "validate_submission",
    "values_from_yaml",
]

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


def submission_page(
    env: Environment,
    store: Store,
    request: Request,
    kind: RecordKind,
    *,
    text: str,
    values: dict[str, str] | None = None,
    record_id: str | None = None,
    version: int | None = None,
    reason: str = "",
    problems: list[dict[str, Any]] | None = None,
    parsed: dict[str, str] | None = None,
    yaml_mode: bool = False,
    checked: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    """The structured form filled with ``values`` (dotted paths; by default read from ``text``)
    and the YAML box holding ``text``, with each problem beside its field."""
    problems = problems or []
    if values is None:
        values = values_from_yaml(text, kind)
    fields, _ = form_fields(kind, {} if yaml_mode else values, [] if yaml_mode else problems, parsed)
    vocab = load_vocabulary()
    return render(
        env,
        request,
        "submit.html.j2",
        status_code=status_code,
        kind=kind,
        kind_name=KIND_NAMES[kind],
        mode="edit" if record_id else "submit",
        action=f"/{RECORD_PATHS[kind]}/{record_id}/edit" if record_id else f"/curate/submit/{kind}",
        record_id=record_id,
        record_path=f"/{RECORD_PATHS[kind]}/{record_id}" if record_id else None,
        fields=fields,
        errors=problems,
        yaml_mode=yaml_mode,
        checked=checked and not problems,
        text=text,
        reason=reason,
        version=version,
        cell_lines=sorted(vocab.cell_lines.entries),
        genes=sorted(vocab.genes.entries),
        study_ids=sorted(store.study_ids()),
    )


def values_from_yaml(text: str, kind: RecordKind) -> dict[str, str]:
    """The form's values for a record written as YAML (a skeleton or suggestion), as far as it
    reads; YAML that does not read as one record fills nothing (the YAML box still holds it)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return form_values(data, kind) if isinstance(data, dict) else {}


def submission_router(store: Store, env: Environment, sessions: Sessions) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def record_or_404(kind: RecordKind, record_id: str) -> BaseModel:
        record = store.get(record_id)
        if not isinstance(record, KIND_MODELS[kind]):
            raise HTTPException(status_code=404, detail=f"no {KIND_NAMES[kind]} '{record_id}'")
        return record

    def show_new(request: Request, kind: RecordKind) -> HTMLResponse:
        sessions.require(request, "curator")
        return submission_page(env, store, request, kind, values={}, text=SKELETONS[kind])

    def show_edit(request: Request, kind: RecordKind, record_id: str) -> HTMLResponse:
        sessions.require(request, "curator")
        record = record_or_404(kind, record_id)
        data = _data_of(record)
        return submission_page(
            env,
            store,
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
        version = form_version(form) if record_id else None
        reason = form_text(form, "reason", MAX_REASON)
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
            return submission_page(
                env, store, request, kind, record_id=record_id, version=version, values=values, text=text,
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
            return run_change(
                env,
                sessions,
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
            return conflict_page(
                env,
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
