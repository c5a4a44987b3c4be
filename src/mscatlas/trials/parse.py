"""From a ClinicalTrials.gov API v2 study record to a :class:`~mscatlas.kb.models.ClinicalTrial`.

The registry's facts are copied as stated: the overall status and phases as the API's enum
strings, enrollment with its ACTUAL/ESTIMATED type, dates with their own precision (yyyy,
yyyy-MM or yyyy-MM-dd) and type, the lead sponsor, arms and interventions, conditions, the
PubMed ids of the publications about the trial (references typed RESULT or DERIVED; BACKGROUND
citations are about other work) and whether results are posted. Purpose, MSC source, product
and engineering are not registry fields: the transparent rules of :mod:`mscatlas.trials.classify`
set them, and the record's notes say which rule matched what.

A record that does not follow the schema raises :class:`StudyParseError` naming the record
(its NCT id, else its position) and the field, in the API's own path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mscatlas.kb.enums import Phase
from mscatlas.kb.models import TRIAL_DATE_PATTERN, ClinicalTrial
from mscatlas.trials.classify import TrialText, classify_trial

__all__ = [
    "StudyError",
    "StudyParseError",
    "parse_studies",
    "parse_study",
    "read_study_file",
    "studies_from_json",
]

_PS = "protocolSection"
_ID = f"{_PS}.identificationModule"
_STATUS = f"{_PS}.statusModule"
_DESIGN = f"{_PS}.designModule"
_ARMS = f"{_PS}.armsInterventionsModule"
# Where each ClinicalTrial field comes from, to name the API field in an error.
_API_PATH = {
    "nct_id": f"{_ID}.nctId",
    "title": f"{_ID}.briefTitle",
    "treatment": f"{_ARMS}.interventions",
    "status": f"{_STATUS}.overallStatus",
    "enrollment": f"{_DESIGN}.enrollmentInfo.count",
    "enrollment_type": f"{_DESIGN}.enrollmentInfo.type",
    "start_date": f"{_STATUS}.startDateStruct",
    "primary_completion_date": f"{_STATUS}.primaryCompletionDateStruct",
    "completion_date": f"{_STATUS}.completionDateStruct",
    "sponsor": f"{_PS}.sponsorCollaboratorsModule.leadSponsor.name",
    "arms": f"{_ARMS}.armGroups",
    "interventions": f"{_ARMS}.interventions",
    "conditions": f"{_PS}.conditionsModule.conditions",
    "cancer_type": f"{_PS}.conditionsModule.conditions",
    "phases": f"{_DESIGN}.phases",
    "pmids": f"{_PS}.referencesModule.references",
    "has_results": "hasResults",
}
PUBLICATION_TYPES = frozenset({"RESULT", "DERIVED"})


@dataclass(frozen=True)
class StudyError:
    record: str  # "record 3 (NCT01234567)" or "record 3"
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.record}: " + (f"field '{self.field}': " if self.field else "") + self.message

    def to_dict(self) -> dict[str, str | None]:
        return {"record": self.record, "field": self.field, "message": self.message}


class StudyParseError(ValueError):
    """One or more study records do not follow the API v2 schema; carries every error found."""

    def __init__(self, errors: Sequence[StudyError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


# ---------------------------------------------------------------- typed access


def _get(obj: Any, path: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
    """The value at a dotted path of nested objects, checked against ``kind``; None when absent."""
    value = obj
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if value is None:
            break
        if not isinstance(value, dict):
            raise _FieldError(".".join(walked[:-1]), f"expected an object, got {type(value).__name__}")
        value = value.get(part)
    if value is None:
        if required:
            raise _FieldError(path, "is missing")
        return None
    if (isinstance(value, bool) and kind is int) or not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _FieldError(path, f"expected {expected}, got {type(value).__name__} {json.dumps(value)[:60]}")
    return value


def _str_list(obj: Any, path: str) -> list[str]:
    values = _get(obj, path, list) or []
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise _FieldError(f"{path}[{i}]", f"expected a string, got {type(v).__name__}")
    return [v.strip() for v in values if v.strip()]


def _objects(obj: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    values = _get(obj, path, list) or []
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, dict):
            raise _FieldError(f"{path}[{i}]", f"expected an object, got {type(v).__name__}")
        out.append((f"{path}[{i}]", v))
    return out


@contextmanager
def _within(where: str) -> Iterator[None]:
    """Prefix the path of a field error raised inside a list element with the element's path."""
    try:
        yield
    except _FieldError as exc:
        raise _FieldError(f"{where}.{exc.field}", exc.message) from None


def _date(obj: Any, path: str) -> dict[str, str] | None:
    struct = _get(obj, path, dict)
    if struct is None:
        return None
    with _within(path):
        date = _get(struct, "date", str)
        kind = _get(struct, "type", str)
    if date is None:
        return None
    date = date.strip()
    if not re.fullmatch(TRIAL_DATE_PATTERN, date):
        raise _FieldError(f"{path}.date", f"a date must be yyyy, yyyy-MM or yyyy-MM-dd, got {date!r}")
    out = {"date": date}
    if kind is not None:
        out["type"] = kind
    return out


# ---------------------------------------------------------------- one study


def _label(study: Any, position: int) -> str:
    nct = None
    if isinstance(study, dict):
        ident = (
            (study.get(_PS) or {}).get("identificationModule") if isinstance(study.get(_PS), dict) else None
        )
        if isinstance(ident, dict) and isinstance(ident.get("nctId"), str):
            nct = ident["nctId"]
    return f"record {position}" + (f" ({nct})" if nct else "")


def parse_study(study: Any, *, position: int = 1) -> ClinicalTrial:
    """One API v2 study object as a validated ClinicalTrial (raises StudyParseError)."""
    label = _label(study, position)
    if not isinstance(study, dict):
        raise StudyParseError([StudyError(label, None, "a study record must be a JSON object")])
    try:
        data = _fields(study)
    except _FieldError as exc:
        raise StudyParseError([StudyError(label, exc.field, exc.message)]) from None
    try:
        return ClinicalTrial.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = [str(x) for x in err["loc"]]
            field = _API_PATH.get(loc[0], loc[0]) if loc else None
            if field and len(loc) > 1:
                field += "".join(f"[{x}]" if x.isdigit() else f".{x}" for x in loc[1:])
            errors.append(StudyError(label, field, err["msg"]))
        raise StudyParseError(errors) from None


def _fields(study: dict[str, Any]) -> dict[str, Any]:
    _get(study, _PS, dict, required=True)
    nct_id = _get(study, f"{_ID}.nctId", str, required=True).strip()
    brief = _get(study, f"{_ID}.briefTitle", str, required=True).strip()
    official = (_get(study, f"{_ID}.officialTitle", str) or "").strip()

    arms = []
    for where, arm in _objects(study, f"{_ARMS}.armGroups"):
        with _within(where):
            arms.append(
                {
                    "label": _get(arm, "label", str, required=True),
                    "type": _get(arm, "type", str),
                    "description": _get(arm, "description", str),
                    "intervention_names": _str_list(arm, "interventionNames"),
                }
            )
    interventions = []
    for where, item in _objects(study, f"{_ARMS}.interventions"):
        with _within(where):
            interventions.append(
                {
                    "type": _get(item, "type", str),
                    "name": _get(item, "name", str, required=True),
                    "description": _get(item, "description", str),
                    "other_names": _str_list(item, "otherNames"),
                }
            )

    conditions = _str_list(study, f"{_PS}.conditionsModule.conditions")
    mesh = []
    for where, m in _objects(study, "derivedSection.conditionBrowseModule.meshes"):
        with _within(where):
            if term := _get(m, "term", str):
                mesh.append(term)
    pmids = []
    for where, ref in _objects(study, f"{_PS}.referencesModule.references"):
        with _within(where):
            pmid = _get(ref, "pmid", (str, int))
            kind = (_get(ref, "type", str) or "").upper()
        if pmid is not None and kind in PUBLICATION_TYPES:
            pmid = str(pmid).strip()
            if not pmid.isdigit():
                raise _FieldError(f"{where}.pmid", f"a PubMed id is digits only, got {pmid!r}")
            pmids.append(pmid)

    phase_values = _str_list(study, f"{_DESIGN}.phases")
    order = [p.value for p in Phase]
    unknown = [p for p in phase_values if p not in order]
    if unknown:
        raise _FieldError(f"{_DESIGN}.phases", f"unknown phase {unknown[0]!r}; known: {', '.join(order)}")
    # Observational and expanded-access records state no phase: the registry's NA stands for it.
    phases = sorted(set(phase_values), key=order.index) or [Phase.NA.value]

    enrollment = _get(study, f"{_DESIGN}.enrollmentInfo.count", int)
    has_results = _get(study, "hasResults", bool)
    names = [i["name"] for i in interventions]
    text = TrialText(
        titles=[t for t in (brief, official) if t],
        interventions=[
            *names,
            *(o for i in interventions for o in i["other_names"]),
            *(i["description"] or "" for i in interventions),
            *(a["description"] or "" for a in arms),
        ],
        conditions=[*conditions, *mesh],
    )
    decided = classify_trial(text)
    last_update = _get(study, f"{_STATUS}.lastUpdatePostDateStruct.date", str)
    data: dict[str, Any] = {
        "nct_id": nct_id,
        "title": brief,
        "treatment": "; ".join(dict.fromkeys(names)) or brief,
        "product": decided.product.value,
        "msc_source": decided.msc_source.value,
        "engineered": bool(decided.engineering.value),
        "engineering": decided.engineering.value,
        "cancer_type": conditions[0] if conditions else "not stated in the registry",
        "conditions": conditions,
        "purpose": decided.purpose.value,
        "phases": phases,
        "status": _get(study, f"{_STATUS}.overallStatus", str),
        "enrollment": enrollment,
        "enrollment_type": _get(study, f"{_DESIGN}.enrollmentInfo.type", str),
        "start_date": _date(study, f"{_STATUS}.startDateStruct"),
        "primary_completion_date": _date(study, f"{_STATUS}.primaryCompletionDateStruct"),
        "completion_date": _date(study, f"{_STATUS}.completionDateStruct"),
        "sponsor": _get(study, f"{_PS}.sponsorCollaboratorsModule.leadSponsor.name", str),
        "arms": arms,
        "interventions": interventions,
        "pmids": list(dict.fromkeys(pmids)),
        "has_results": has_results,
        "provenance": {
            "review_location": "not in the review (ClinicalTrials.gov registry import)",
            "summary": "Registry record imported from the ClinicalTrials.gov API; not curated by hand.",
            "primary_source_checked": False,
            "primary_source": f"ClinicalTrials.gov API v2 record {nct_id}"
            + (f" (last update posted {last_update})" if last_update else ""),
        },
        "notes": (f"Official title: {official}. " if official else "") + decided.explain(),
    }
    return data


# ---------------------------------------------------------------- many studies


def studies_from_json(data: Any) -> list[Any]:
    """The study objects of a saved API answer: one study, or a page ``{"studies": [...]}``."""
    if isinstance(data, dict) and "studies" in data:
        studies = data["studies"]
        if not isinstance(studies, list):
            raise StudyParseError([StudyError("file", "studies", "expected a list of study objects")])
        return studies
    if isinstance(data, dict) and _PS in data:
        return [data]
    if isinstance(data, list):
        return data
    raise StudyParseError(
        [
            StudyError(
                "file", None, "expected a study object (with protocolSection) or a page {'studies': [...]}"
            )
        ]
    )


def parse_studies(studies: Iterable[Any], *, start: int = 1) -> list[ClinicalTrial]:
    """Parse every study; raise one StudyParseError listing every bad record (none are returned)."""
    trials: list[ClinicalTrial] = []
    errors: list[StudyError] = []
    seen: dict[str, str] = {}
    for position, study in enumerate(studies, start=start):
        try:
            trial = parse_study(study, position=position)
        except StudyParseError as exc:
            errors.extend(exc.errors)
            continue
        if trial.nct_id in seen:
            errors.append(
                StudyError(_label(study, position), f"{_ID}.nctId", f"duplicate of {seen[trial.nct_id]}")
            )
            continue
        seen[trial.nct_id] = _label(study, position)
        trials.append(trial)
    if errors:
        raise StudyParseError(errors)
    return trials


def read_study_file(path: str | Path) -> list[ClinicalTrial]:
    """Parse a JSON file saved from the API (one study or a page of studies)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyParseError([StudyError(str(path), None, f"cannot read file: {exc}")]) from exc
    except json.JSONDecodeError as exc:
        raise StudyParseError(
            [StudyError(str(path), None, f"invalid JSON at line {exc.lineno}: {exc.msg}")]
        ) from exc
    return parse_studies(studies_from_json(data))
