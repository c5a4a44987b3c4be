"""The structured curation form: one form field per model field, read off the pydantic models.

The form is derived from :class:`~mscatlas.kb.models.EvidenceItem`, :class:`Study` and
:class:`ClinicalTrial` themselves, so a field added to a model appears in the form without a
template change: enums and literals become selects (lists of them, checkboxes), nested models
fieldsets, lists of models repeated rows (with one empty row to fill), booleans a yes/no select,
and lists of values a box with one value per line. Vocabulary fields offer the vocabulary's
terms (the cancer type as a select, cell lines and genes as suggestions). Doses are typed as
text and parsed on the server (kb/dose.py, kb/trial_dose.py) whenever the form is checked or
saved, so a curator sees the parsed dose or the parse error beside the field, with no
JavaScript. Field names are the records' dotted paths ("provenance.summary",
"outcomes.0.treated_mean"), the same paths validation errors name, so each error is shown
beside its field.

WTForms and similar libraries declare forms by hand, field by field, which would repeat the
models; the walk over the models is small, so it is written here.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel

from mscatlas.kb.dose import Dose, Duration, parse_dose, parse_duration
from mscatlas.kb.models import FLAG_CODES
from mscatlas.kb.records import MODELS, RecordKind
from mscatlas.kb.terms import label
from mscatlas.kb.trial_dose import TrialDose, parse_trial_dose
from mscatlas.kb.vocab import load_vocabulary

__all__ = [
    "KIND_MODELS",
    "FieldView",
    "RecordKind",
    "Spec",
    "compact_rows",
    "data_from_form",
    "form_fields",
    "form_values",
    "specs_of",
]

KIND_MODELS = MODELS  # record kind -> its model, as the record readers know them
# Fields a curator does not set in the form: the status is an editor's decision.
SKIPPED: dict[RecordKind, set[str]] = {"evidence": {"curation_status"}, "study": set(), "trial": set()}
# Free text that runs to several lines.
LONG_TEXT = {
    "notes", "summary", "title", "detail", "description", "primary_source_says", "review_citation",
    "model_detail", "source_detail", "note", "treatment",
}  # fmt: skip
# The box beside a dose that stores its wording without reading it (the parser cannot, or
# reads it wrongly: "ADMSCs at 25% of the inoculum" is no conditioned-medium share).
WORDING_ONLY = ":wording"
# Lists of values whose items never hold a comma: a comma separates them as a new line does.
COMMA_LISTS = {"refs", "pmids", "result_pmids"}
Widget = Literal[
    "text", "textarea", "number", "select", "bool", "checks", "lines", "terms", "pairs", "dose",
    "group", "repeat",
]  # fmt: skip


@dataclass(frozen=True)
class Spec:
    """How one model field is shown and read back."""

    name: str
    widget: Widget
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()  # (value, label)
    help: str | None = None
    suggestions: str | None = None  # the id of a datalist of vocabulary terms
    children: tuple[Spec, ...] = ()  # a group's or a repeated row's fields
    parse: Callable[[str], BaseModel] | None = None  # a dose typed as text

    @property
    def label(self) -> str:
        return label(self.name)


@dataclass
class FieldView:
    """One field of the rendered form: its spec, dotted path, current text and problems."""

    spec: Spec
    path: str
    value: str = ""
    checked: frozenset[str] = frozenset()
    errors: list[str] = field(default_factory=list)
    parsed: str | None = None  # what a dose typed as text was read as
    children: list[FieldView] = field(default_factory=list)
    rows: list[list[FieldView]] = field(default_factory=list)


def _label(value: str) -> str:
    return label(value)


def _unwrap(annotation: Any) -> tuple[Any, bool, list[Any]]:
    """The type under Optional/Annotated, whether None is allowed, and the Annotated metadata."""
    optional, metadata = False, []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            metadata += extra
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                return str, optional, metadata
            annotation = args[0]
        else:
            return annotation, optional, metadata


def _pattern_choices(metadata: list[Any]) -> tuple[str, ...]:
    """The values of a string constrained to a closed list by its pattern ('^(a|b|c)$')."""
    for meta in metadata:
        found = re.fullmatch(r"\^\(([a-z0-9_|]+)\)\$", str(getattr(meta, "pattern", "") or ""))
        if found:
            return tuple(found.group(1).split("|"))
    return ()


def _choices(annotation: Any, metadata: list[Any]) -> tuple[tuple[str, str], ...]:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return tuple((str(m.value), _label(str(m.value))) for m in annotation)
    if typing.get_origin(annotation) is Literal:
        return tuple((str(v), _label(str(v))) for v in typing.get_args(annotation))
    return tuple((v, _label(v)) for v in _pattern_choices(metadata))


DOSE_PARSERS: dict[Any, Callable[[str], BaseModel]] = {Dose: parse_dose, Duration: parse_duration}


def _spec(name: str, annotation: Any, required: bool, help_text: str | None) -> Spec:
    base, optional, metadata = _unwrap(annotation)
    required = required and not optional
    if base in DOSE_PARSERS:
        return Spec(name, "dose", required, help=help_text, parse=DOSE_PARSERS[base])
    if base is TrialDose:  # its own fields; the amounts are read from the text when left empty
        children = _model_specs(base)
        return Spec(name, "group", required, help=help_text, children=children, parse=parse_trial_dose)
    if isinstance(base, type) and issubclass(base, BaseModel):
        return Spec(name, "group", required, help=help_text or base.__doc__, children=_model_specs(base))
    if name == "cancer_type" and base is str:
        types_ = load_vocabulary().cancer_types.entries
        return Spec(name, "select", required, tuple((t, t) for t in sorted(types_)), help_text)
    if name == "code":  # a flag code
        return Spec(name, "select", required, tuple((c, f"{_label(c)}: {m}") for c, m in FLAG_CODES.items()))
    origin = typing.get_origin(base)
    if origin is list:
        item, _, item_meta = _unwrap(typing.get_args(base)[0])
        if isinstance(item, type) and issubclass(item, BaseModel):
            return Spec(name, "repeat", required, help=help_text or item.__doc__, children=_model_specs(item))
        choices = _choices(item, item_meta)
        if choices:
            return Spec(name, "checks", required, choices, help_text)
        if name == "cell_lines":  # vocabulary terms: one box each, with the terms suggested
            return Spec(name, "terms", required, help=help_text, suggestions="terms-cell-lines")
        return Spec(name, "lines", required, help=help_text)
    if origin is dict:
        return Spec(name, "pairs", required, help=help_text or "one 'name: value' per line")
    choices = _choices(base, metadata)
    if choices:
        return Spec(name, "select", required, choices, help_text)
    if base is bool:
        return Spec(name, "bool", required, (("yes", "yes"), ("no", "no")), help_text)
    if base in (int, float):
        return Spec(name, "number", required, help=help_text)
    suggestions = {"target": "terms-genes", "study": "terms-studies"}.get(name)
    return Spec(
        name, "textarea" if name in LONG_TEXT else "text", required, help=help_text, suggestions=suggestions
    )


@cache
def _model_specs(model: type[BaseModel], skipped: frozenset[str] = frozenset()) -> tuple[Spec, ...]:
    return tuple(
        _spec(name, info.annotation, info.is_required(), info.description)
        for name, info in model.model_fields.items()
        if name not in skipped
    )


def specs_of(kind: RecordKind) -> tuple[Spec, ...]:
    """The form's fields for a record kind, in the model's field order."""
    return _model_specs(KIND_MODELS[kind], frozenset(SKIPPED[kind]))


# ---------------------------------------------------------------- record -> form text


def form_values(data: dict[str, Any], kind: RecordKind) -> dict[str, str]:
    """A record's JSON data as the form's text, by dotted path (checkboxes: ``path:value``)."""
    out: dict[str, str] = {}

    def put(specs: tuple[Spec, ...], data: dict[str, Any], prefix: str) -> None:
        for spec in specs:
            value, path = data.get(spec.name), prefix + spec.name
            if value is None or value == [] or value == {}:
                continue
            if spec.widget == "group" and isinstance(value, dict):
                put(spec.children, value, path + ".")
            elif spec.widget == "group" and spec.children:  # a compact form: a date alone
                put(spec.children[:1], {spec.children[0].name: value}, path + ".")
            elif spec.widget == "repeat" and isinstance(value, list):
                for i, row in enumerate(value):
                    put(spec.children, row if isinstance(row, dict) else {}, f"{path}.{i}.")
            elif spec.widget == "checks":
                out.update({f"{path}:{v}": "on" for v in value})
            elif spec.widget == "lines":
                out[path] = "\n".join(str(v) for v in value)
            elif spec.widget == "terms":
                out.update({f"{path}.{i}": str(v) for i, v in enumerate(value)})
            elif spec.widget == "pairs":
                out[path] = "\n".join(f"{k}: {v}" for k, v in value.items())
            elif spec.widget == "dose":
                out[path] = _dose_text(value)
                if isinstance(value, dict) and set(value) <= {"text"}:  # stored as worded, not read
                    out[path + WORDING_ONLY] = "on"
            elif spec.widget == "bool":
                out[path] = "yes" if value else "no"
            else:
                out[path] = str(value)

    put(specs_of(kind), data, "")
    return out


def _dose_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        text = value.get("text")
        if text:
            return str(text)
        if value.get("hours"):
            return ", ".join(f"{h:g}" for h in value["hours"]) + " h"
        if set(value) <= set(Dose.model_fields):  # structured with no wording: as the pages show it
            dose = Dose.model_validate(value)
            return "" if dose.is_empty else dose.describe()
        return ""
    return ""


# ---------------------------------------------------------------- form text -> record data


def data_from_form(
    form: dict[str, str], kind: RecordKind, original: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """The record data a submitted form describes, the problems found reading it (a dose that
    does not parse, a line that is not 'name: value'), and what each dose was read as.

    ``original`` is the record being edited: a dose whose text is unchanged keeps its stored
    structure (a curator may have refined what the parser reads from the same words).
    """
    problems: list[dict[str, Any]] = []
    parsed: dict[str, str] = {}

    def problem(path: str, message: str) -> None:
        problems.append({"field": path, "line": None, "message": message})

    def read(specs: tuple[Spec, ...], prefix: str, before: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in specs:
            path = prefix + spec.name
            value = read_one(spec, path, before.get(spec.name))
            if value is None and before.get(spec.name) in ([], {}):
                value = before[spec.name]  # stored as stated-empty ("no arms"), not as unknown
            if value is not None:
                out[spec.name] = value
        return out

    def read_one(spec: Spec, path: str, before: Any) -> Any:
        text = form.get(path, "").strip()
        if spec.widget == "group":
            value = read(spec.children, path + ".", before if isinstance(before, dict) else {})
            if spec.parse is not None and value:
                value = read_trial_dose(path, value)
            if not value and (spec.required or (isinstance(before, dict) and not any(before.values()))):
                return {}  # required, or stored empty (present, with nothing stated): kept so
            return value or None
        if spec.widget == "repeat":
            old = before if isinstance(before, list) else []
            rows = [
                read(
                    spec.children, f"{path}.{i}.", old[i] if i < len(old) and isinstance(old[i], dict) else {}
                )
                for i in _row_indexes(form, path)
            ]
            return [r for r in rows if r] or None
        if spec.widget == "terms":
            return [
                t for i in _term_indexes(form, path) if (t := form.get(f"{path}.{i}", "").strip())
            ] or None
        if spec.widget == "checks":  # in the stored order, then newly ticked ones in the form's
            ticked = [v for v, _ in spec.choices if form.get(f"{path}:{v}")]
            kept = [v for v in before if v in ticked] if isinstance(before, list) else []
            return kept + [v for v in ticked if v not in kept] or None
        if not text:
            return None
        if spec.widget == "lines":
            parts = re.split(r"[\n,]" if spec.name in COMMA_LISTS else r"\n", text)
            return [p.strip() for p in parts if p.strip()] or None
        if spec.widget == "pairs":
            pairs = {}
            for line in filter(None, (x.strip() for x in text.splitlines())):
                key, sep, value = line.partition(":")
                if not sep or not key.strip() or not value.strip():
                    problem(path, f"write one 'name: value' per line (got {line!r})")
                    continue
                pairs[key.strip()] = value.strip()
            return pairs or None
        if spec.widget == "bool":
            return {"yes": True, "no": False}.get(text, text)
        if spec.widget == "dose" and spec.parse is not None:
            if (
                before is not None
                and _dose_text(before) == text
                and (
                    bool(form.get(path + WORDING_ONLY))
                    == (isinstance(before, dict) and set(before) <= {"text"})
                )
            ):
                parsed[path] = _describe(spec.parse, before)
                return before
            if form.get(path + WORDING_ONLY):
                return {"text": text}
            try:
                dose = spec.parse(text)
            except ValueError as exc:
                problem(path, f"{exc} (or tick 'keep the wording only')")
                return None
            parsed[path] = _describe(spec.parse, dose)
            return dose.model_dump(mode="json", exclude_defaults=True)
        return text

    def read_trial_dose(path: str, value: dict[str, Any]) -> dict[str, Any]:
        """Amounts left empty are read from the dose's text (and so is the number of doses)."""
        text = value.get("text")
        if not text or value.get("cells_per_kg") or value.get("total_cells"):
            return value
        try:
            dose = parse_trial_dose(str(text), schedule=value.get("schedule"))
        except ValueError as exc:
            problem(path + ".text", str(exc))
            return value
        parsed[path + ".text"] = _describe(parse_trial_dose, dose)
        found = dose.model_dump(mode="json", exclude_none=True)
        return {**found, **{k: v for k, v in value.items() if k != "n_doses" or v}}

    data = read(specs_of(kind), "", original or {})
    return data, problems, parsed


def _describe(parse: Callable[[str], BaseModel], dose: Any) -> str:
    """A parsed dose for people, as the record pages show it."""
    if isinstance(dose, dict) and set(dose) <= {"text"}:
        return "kept as worded (not read)"
    if parse is parse_dose:
        return Dose.model_validate(dose).describe() if isinstance(dose, dict) else dose.describe()
    model = Duration if parse is parse_duration else TrialDose
    value = model.model_validate(dose) if isinstance(dose, dict) else dose
    if isinstance(value, Duration):
        return ", ".join(f"{h:g}" for h in value.hours) + " h"
    assert isinstance(value, TrialDose)
    return value.describe()


def _term_indexes(form: dict[str, str], path: str) -> list[int]:
    """The box numbers a form holds under a field of one term per box, in order."""
    return sorted({int(m.group(1)) for key in form if (m := re.fullmatch(re.escape(path) + r"\.(\d+)", key))})


def _row_indexes(form: dict[str, str], path: str) -> list[int]:
    """The row numbers a form holds under a repeated field, in order."""
    found = {int(m.group(1)) for key in form if (m := re.match(re.escape(path) + r"\.(\d+)\.", key))}
    return sorted(found)


def compact_rows(form: dict[str, str], kind: RecordKind) -> dict[str, str]:
    """The form's values with the empty rows of repeated fields left out and the others
    renumbered 0, 1, ... in order: the numbering the record's data (and so its validation
    errors) use, and the form's own after a check (which then adds one empty row again)."""
    values = {k: v for k, v in form.items() if v.strip()}

    def walk(specs: tuple[Spec, ...], prefix: str) -> None:
        for spec in specs:
            path = prefix + spec.name
            if spec.widget == "group":
                walk(spec.children, path + ".")
            elif spec.widget == "repeat":
                moved: dict[str, str] = {}
                for new, old in enumerate(_row_indexes(values, path)):
                    head = f"{path}.{old}."
                    for key in [k for k in values if k.startswith(head)]:
                        moved[f"{path}.{new}." + key[len(head) :]] = values.pop(key)
                values.update(moved)
                for i in range(len(_row_indexes(values, path))):
                    walk(spec.children, f"{path}.{i}.")

    walk(specs_of(kind), "")
    return values


# ---------------------------------------------------------------- the fields to render


def form_fields(
    kind: RecordKind,
    values: dict[str, str],
    problems: list[dict[str, Any]],
    parsed: dict[str, str] | None = None,
) -> tuple[list[FieldView], list[dict[str, Any]]]:
    """The form's fields filled with ``values``, each problem beside the field it names (the
    nearest enclosing field shown); problems that name no shown field are returned apart."""
    parsed = parsed or {}
    views: dict[str, FieldView] = {}

    def build(specs: tuple[Spec, ...], prefix: str) -> list[FieldView]:
        out = []
        for spec in specs:
            path = prefix + spec.name
            view = FieldView(spec, path, values.get(path, ""), parsed=parsed.get(path))
            if spec.widget == "group":
                view.children = build(spec.children, path + ".")
            elif spec.widget == "repeat":
                n = max(_row_indexes(values, path), default=-1) + 2  # the rows held, and one empty
                view.rows = [build(spec.children, f"{path}.{i}.") for i in range(n)]
            elif spec.widget == "checks":
                view.checked = frozenset(v for v, _ in spec.choices if values.get(f"{path}:{v}"))
            elif spec.widget == "terms":
                terms = [
                    values[f"{path}.{i}"]
                    for i in _term_indexes(values, path)
                    if values[f"{path}.{i}"].strip()
                ]
                view.children = [
                    FieldView(spec, f"{path}.{i}", term) for i, term in enumerate([*terms, ""])
                ]  # the terms given, and one empty box
            elif spec.widget == "dose" and values.get(path + WORDING_ONLY):
                view.checked = frozenset({"wording"})
            views[path] = view
            out.append(view)
        return out

    fields = build(specs_of(kind), "")
    unplaced = []
    for p in problems:
        parts = str(p.get("field") or "").split(".")
        while parts and ".".join(parts) not in views:
            parts.pop()
        if parts:
            views[".".join(parts)].errors.append(str(p["message"]))
        else:
            unplaced.append(p)
    return fields, unplaced
