"""The structured curation form (issue 15 point 11): one field per model field, choices from the
vocabularies, the dose parsed on the server when the form is checked, errors beside their
fields, the YAML box kept as an advanced option, and studies and trials curated too."""

from __future__ import annotations

import re
import warnings
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mscatlas.kb.enums import Delivery, Direction, MscSource, Phase
from mscatlas.kb.models import ClinicalTrial, EvidenceItem, Study
from mscatlas.kb.records import validate_paths
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.kb.store import Store
from mscatlas.kb.vocab import load_vocabulary
from mscatlas.web import create_app
from mscatlas.web.forms import KIND_MODELS, SKIPPED, data_from_form, form_values

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path, mini_path: Path) -> Store:
    dataset, errors = validate_paths([mini_path])
    assert not errors and dataset is not None
    store = Store(f"sqlite:///{tmp_path / 'form.sqlite'}")
    store.load(dataset)
    for name, role in [("cara", "curator"), ("ed", "editor"), ("eve", "editor")]:
        store.add_user(name, role, PASSWORD)
    return store


def login(store: Store, name: str) -> TestClient:
    c = TestClient(create_app(store, secret_key="form-test-key"), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    assert c.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token}).status_code == 303
    return c


class FormReader(HTMLParser):
    """The controls of ``form#structured`` as a browser would submit them (ticked boxes only,
    the selected option, the text typed), and the options each select offers."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.values: dict[str, str] = {}
        self.options: dict[str, list[str]] = {}
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == "structured"
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.values[a["name"]] = a.get("value", "")
        elif tag == "select":
            self.select = a["name"]
            self.options[self.select] = []
            self.values.setdefault(self.select, "")
        elif tag == "option" and self.select:
            self.options[self.select].append(a.get("value", ""))
            if "selected" in a:
                self.values[self.select] = a.get("value", "")
        elif tag == "textarea":
            self.textarea = a["name"]
            self.values[self.textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.values[self.textarea] += data


def read_form(html: str) -> FormReader:
    reader = FormReader()
    reader.feed(html)
    assert reader.values, "no structured form on the page"
    return reader


def field_box(html: str, path: str) -> str:
    """The HTML of one field's box (its label, control, parsed value and errors)."""
    match = re.search(rf'<div class="field" id="field-{re.escape(path)}">(.*?)\n</div>', html, re.S)
    assert match, f"no field {path}"
    return match.group(1)


# ------------------------------------------------------------------ one field per model field


@pytest.mark.parametrize("kind", ["evidence", "study", "trial"])
def test_one_field_per_model_field(store: Store, kind: str) -> None:
    page = login(store, "cara").get(f"/curate/submit/{kind}")
    assert page.status_code == 200
    for name in KIND_MODELS[kind].model_fields:  # type: ignore[index]
        if name not in SKIPPED[kind]:  # type: ignore[index]
            assert f'id="field-{name}"' in page.text, name
    assert 'id="item-yaml"' in page.text and "Advanced: write the" in page.text  # the YAML box stays


def test_choices_come_from_the_vocabularies(store: Store) -> None:
    html = login(store, "cara").get("/curate/submit").text
    form = read_form(html)
    assert form.options["direction"][1:] == [d.value for d in Direction]
    assert form.options["delivery"][1:] == [d.value for d in Delivery]
    assert set(form.options["cancer_type"][1:]) == set(load_vocabulary().cancer_types.entries)
    for source in MscSource:
        assert f'name="msc_source:{source.value}"' in html
    assert '<option value="MDA-MB-231">' in html  # cell lines suggested from the vocabulary
    edit = login(store, "cara").get("/evidence/ev-029-a/edit").text
    assert 'name="cell_lines.0" value="MDA-MB-231" list="terms-cell-lines"' in edit
    assert 'name="cell_lines.1" value="" list="terms-cell-lines"' in edit  # and a box for one more
    trial = login(store, "cara").get("/curate/submit/trial").text
    for phase in Phase:
        assert f'name="phases:{phase.value}"' in trial


# ------------------------------------------------------------------ the dose, parsed on the server


def new_item_form(c: TestClient, store: Store, **changes: str) -> dict[str, str]:
    """The edit form of a stored item, filled as a new item under a fresh id."""
    item = store.query_evidence()[0]
    values = read_form(c.get(f"/evidence/{item.id}/edit").text).values
    values.pop("version")
    return {**values, "id": "ev-form-a", **changes}


def test_check_shows_the_parsed_dose_and_saves_nothing(store: Store) -> None:
    c = login(store, "cara")
    checked = c.post(
        "/curate/submit", data={**new_item_form(c, store, dose="K562 and MSCs at 10:1"), "action": "check"}
    )
    assert checked.status_code == 200
    box = field_box(checked.text, "dose")
    assert "read as: MSC:cancer 1:10" in unescape(box)
    assert 'id="checked"' in checked.text  # "no problem found"
    assert store.get("ev-form-a") is None
    bad = c.post("/curate/submit", data={**new_item_form(c, store, dose="10 to 1"), "action": "check"})
    assert bad.status_code == 200
    box = unescape(field_box(bad.text, "dose"))
    assert 'class="field-error" data-field="dose"' in box and "a ratio with its order" in box
    assert 'value="10 to 1"' in box  # the text typed comes back for fixing
    assert store.get("ev-form-a") is None


def test_saving_a_bad_dose_is_refused_beside_the_field(store: Store) -> None:
    c = login(store, "cara")
    refused = c.post("/curate/submit", data={**new_item_form(c, store, dose="10 to 1"), "action": "save"})
    assert refused.status_code == 422
    assert 'data-field="dose"' in field_box(refused.text, "dose")
    assert store.get("ev-form-a") is None
    # The wording alone can be kept when the parser cannot read it.
    kept = new_item_form(c, store, dose="10 to 1", **{"dose:wording": "on"})
    assert c.post("/curate/submit", data={**kept, "action": "save", "reason": "new"}).status_code == 303
    stored = store.get("ev-form-a")
    assert isinstance(stored, EvidenceItem) and stored.dose.text == "10 to 1" and stored.dose.is_empty


def test_submit_through_the_form_stores_a_submitted_item(store: Store) -> None:
    c = login(store, "cara")
    form = new_item_form(c, store, dose="1:6 (SC:CC)", **{"provenance.summary": "Typed into the form."})
    saved = c.post("/curate/submit", data={**form, "action": "save", "reason": "from the full text"})
    assert saved.status_code == 303 and saved.headers["location"] == "/evidence/ev-form-a"
    stored = store.get("ev-form-a")
    base = store.query_evidence()[0]
    assert isinstance(stored, EvidenceItem) and stored.curation_status.value == "submitted"
    assert stored.dose.ratios[0].msc == 1 and stored.dose.ratios[0].cancer == 6
    assert stored.provenance.summary == "Typed into the form."
    assert (stored.msc_source, stored.cancer_type, stored.cell_lines) == (
        base.msc_source,
        base.cancer_type,
        base.cell_lines,
    )


def test_errors_are_shown_beside_their_fields(store: Store) -> None:
    c = login(store, "cara")
    form = new_item_form(c, store, direction="sideways", **{"provenance.summary": "", "refs": "29, x"})
    form = {k: v for k, v in form.items() if not k.startswith("msc_source:")}  # no source ticked
    page = c.post("/curate/submit", data={**form, "action": "save"})
    assert page.status_code == 422
    assert 'data-field="direction"' in field_box(page.text, "direction")
    assert 'data-field="provenance.summary"' in field_box(page.text, "provenance.summary")
    assert 'data-field="refs"' in field_box(page.text, "refs")
    assert re.search(r'<fieldset class="checks" id="field-msc_source" aria-invalid="true">', page.text)
    summary = re.findall(r'<li class="field-error" data-field="([^"]*)">', page.text)
    assert {"direction", "provenance.summary", "msc_source"} <= set(summary)
    assert store.get("ev-form-a") is None


def test_a_check_adds_a_row_to_fill(store: Store) -> None:
    c = login(store, "cara")
    form = new_item_form(c, store)
    rows_before = len(set(re.findall(r"^mechanisms\.(\d+)\.", "\n".join(form), re.M)))
    form.update({"mechanisms.0.target": "TIMP-1", "mechanisms.0.kind": "gene", "mechanisms.0.change": "up"})
    page = c.post("/curate/submit", data={**form, "action": "check"})
    assert page.status_code == 200, page.text
    after = read_form(page.text).values
    assert after["mechanisms.0.target"] == "TIMP-1"
    assert "mechanisms.1.target" in after and after["mechanisms.1.target"] == ""  # a new empty row
    assert rows_before >= 1
    saved = c.post("/curate/submit", data={**after, "action": "save", "reason": "x"})
    assert saved.status_code == 303, saved.text
    stored = store.get("ev-form-a")
    assert isinstance(stored, EvidenceItem) and [m.target for m in stored.mechanisms] == [
        "TIMP1"
    ]  # HGNC symbol


# ------------------------------------------------------------------ edits, studies and trials


def test_editing_an_item_through_the_form(store: Store) -> None:
    c = login(store, "cara")
    item = store.query_evidence()[0]
    form = read_form(c.get(f"/evidence/{item.id}/edit").text).values
    no_reason = c.post(f"/evidence/{item.id}/edit", data={**form, "action": "save", "notes": "form edit"})
    assert no_reason.status_code == 422 and 'data-field="reason"' in no_reason.text
    saved = c.post(
        f"/evidence/{item.id}/edit", data={**form, "action": "save", "notes": "form edit", "reason": "tidy"}
    )
    assert saved.status_code == 303
    stored = store.get(item.id)
    assert isinstance(stored, EvidenceItem) and stored.notes == "form edit"
    assert stored.curation_status.value == "submitted"
    assert stored.model_dump(exclude={"notes", "curation_status"}) == item.model_dump(
        exclude={"notes", "curation_status"}
    )  # every other field read back as it was


def test_a_new_study_and_an_edit_filed_as_a_proposal(store: Store) -> None:
    cara = login(store, "cara")
    page = cara.get("/curate/submit/study")
    form = read_form(page.text).values
    form.update(
        {
            "id": "pmid31000001",
            "pmid": "31000001",
            "authors": "Zhao Q\nLi W",
            "title": "Cord MSC exosomes slow breast cancer growth",
            "journal": "Stem Cell Res Ther",
            "year": "2019",
            "doi": "10.1186/s13287-019-0001-x",
        }
    )
    added = cara.post("/curate/submit/study", data={**form, "action": "save", "reason": "search hit"})
    assert added.status_code == 303 and added.headers["location"] == "/studies/pmid31000001"
    study = store.get("pmid31000001")
    assert isinstance(study, Study) and study.authors == ["Zhao Q", "Li W"] and study.year == 2019

    edit = read_form(cara.get("/studies/pmid31000001/edit").text).values
    assert edit["authors"] == "Zhao Q\nLi W"
    filed = cara.post(
        "/studies/pmid31000001/edit",
        data={**edit, "title": "Cord MSC exosomes slow breast cancer growth in mice", "reason": "title"},
    )
    assert filed.status_code == 303 and filed.headers["location"].startswith("/curate/proposals/")
    assert store.get("pmid31000001").title == "Cord MSC exosomes slow breast cancer growth"  # not yet
    proposal_id = int(filed.headers["location"].rsplit("/", 1)[1])
    ed = login(store, "ed")
    token = re.search(r'name="csrf_token" value="([^"]+)"', ed.get("/curate").text).group(1)
    version = store.record_version("pmid31000001")
    accepted = ed.post(
        f"/curate/proposals/{proposal_id}/review",
        data={"decision": "accept", "version": version, "reason": "checked", "csrf_token": token},
    )
    assert accepted.status_code == 303
    assert store.get("pmid31000001").title.endswith("in mice")


def test_a_trial_edit_with_its_dose_read_from_the_text(store: Store) -> None:
    c = login(store, "cara")
    trial = store.dataset().trials[0]
    form = read_form(c.get(f"/trials/{trial.nct_id}/edit").text).values
    form.update(
        {"dose.text": "1-2 x 10^6 MSC/kg, two infusions", "dose.cells_per_kg": "", "dose.n_doses": ""}
    )
    checked = c.post(f"/trials/{trial.nct_id}/edit", data={**form, "action": "check"})
    assert checked.status_code == 200, checked.text
    assert "read as: 1e+06–2e+06 cells/kg, 2 doses" in unescape(field_box(checked.text, "dose.text"))
    stale = c.post(f"/trials/{trial.nct_id}/edit", data={**form, "version": "99", "reason": "dose"})
    assert stale.status_code == 409  # a stale version is a conflict, never an overwrite
    filed = c.post(f"/trials/{trial.nct_id}/edit", data={**form, "action": "save", "reason": "dose"})
    assert filed.status_code == 303 and "/curate/proposals/" in filed.headers["location"]
    proposal = store.proposals(record_id=trial.nct_id)[-1]
    assert proposal.data["dose"]["cells_per_kg"] == [1e6, 2e6] and proposal.data["dose"]["n_doses"] == 2


def test_the_yaml_box_still_submits_a_study(store: Store) -> None:
    c = login(store, "cara")
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/curate/submit/study").text).group(1)
    text = "id: pmid31000002\npmid: '31000002'\nauthors: [Wu X]\ntitle: A title\njournal: J\nyear: 2021\n"
    assert c.post("/curate/submit/study", data={"yaml": text, "csrf_token": token}).status_code == 303
    assert isinstance(store.get("pmid31000002"), Study)
    taken = c.post("/curate/submit/study", data={"yaml": text, "csrf_token": token})
    assert taken.status_code == 422 and 'data-field="id"' in taken.text


# ------------------------------------------------------------------ every shipped record reads back


def test_every_shipped_record_reads_back_from_its_form() -> None:
    """The edit form of each shipped record, submitted unchanged, gives the same record: no
    field is lost or altered by the form (doses keep their structure when their text is kept)."""
    dataset = shipped_dataset()
    changed = []
    for kind, records in (
        ("evidence", dataset.evidence),
        ("study", dataset.studies),
        ("trial", dataset.trials),
    ):
        model = KIND_MODELS[kind]  # type: ignore[index]
        for record in records:
            data = record.model_dump(
                mode="json", exclude_none=True, exclude={"ontology", "in_review", "registry"}
            )
            if isinstance(record, EvidenceItem):
                data.pop("engineered")
            status = data.pop("curation_status", None)
            back, problems, _ = data_from_form(form_values(data, kind), kind, data)  # type: ignore[arg-type]
            if status is not None:
                back["curation_status"] = status
            if problems or model.model_validate(back) != record:
                changed.append(getattr(record, "id", None) or getattr(record, "nct_id", None))
    assert not changed, changed[:10]
    # A list stated empty ("the registry lists no arms") stays empty, not unknown (None).
    trial = dataset.trials[0].model_dump(mode="json", exclude_none=True, exclude={"registry"})
    trial.update(arms=[], pmids=[])
    back, _, _ = data_from_form(form_values(trial, "trial"), "trial", trial)
    assert back["arms"] == [] and back["pmids"] == []
    assert isinstance(dataset.trials[0], ClinicalTrial)
