"""The shipped dataset against the review itself: every Table 1 row, every text-cited finding,
every Table 2 trial, all 80 references. Where the review text is available (CI has it beside
the repository), the expectations are read from it rather than typed in again."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from conftest import REVIEW, REVIEW_REQUIRED, review_text
from mscatlas.kb.enums import Phase
from mscatlas.kb.shipped import shipped_dataset

needs_review = pytest.mark.skipif(
    not REVIEW.exists() and not REVIEW_REQUIRED, reason=f"review text not found at {REVIEW}"
)

# References the review cites with an effect of MSCs (cells, CM, extracts, vesicles) on cancer.
# 41-43, 58-63 and 69-73 are cited for background only.
EFFECT_REFS = set(range(24, 41)) | set(range(44, 58)) | set(range(64, 69)) | set(range(74, 81))

PHASE_WORDS = {
    "Early Phase I": [Phase.EARLY_PHASE1],
    "Phase I": [Phase.PHASE1],
    "Phase II": [Phase.PHASE2],
    "Phase I/II": [Phase.PHASE1, Phase.PHASE2],
    "Phase II/III": [Phase.PHASE2, Phase.PHASE3],
}


@pytest.fixture(scope="module")
def dataset():
    return shipped_dataset()


def _review_table_rows(table: int) -> list[list[str]]:
    text = review_text()
    if table == 1:
        start = text.index("Table 1. Study summaries")
        block = text[start : text.index("SC: stem cell; CC: cancer cell")]
        rows = [line.split("\t") for line in block.splitlines() if line.count("\t") == 4]
        return [r for r in rows if r[0] != "MSCs source"]
    start = text.index("Table 2. MSC clinical trials")
    block = text[start : text.index("6. Conclusion")]
    return [line.split("\t") for line in block.splitlines() if line.startswith("NCT")]


def test_all_80_references(dataset) -> None:
    assert sorted(s.ref for s in dataset.studies if s.in_review) == list(range(1, 81))


def test_every_effect_reference_has_evidence(dataset) -> None:
    covered = {r for e in dataset.evidence for r in e.refs}
    assert EFFECT_REFS - covered == set()


@needs_review
def test_every_table1_row_is_curated_with_its_reference(dataset) -> None:
    rows = _review_table_rows(1)
    assert len(rows) == 19
    by_row = defaultdict(list)
    for item in dataset.evidence:
        if item.provenance.table == 1:
            by_row[item.provenance.row].append(item)
    assert sorted(by_row) == list(range(1, 20))
    for number, cells in enumerate(rows, start=1):
        ref = int(re.search(r"\((\d+)\)", cells[4]).group(1))
        assert {ref} == {i.refs[0] for i in by_row[number]}, f"Table 1 row {number}"


@needs_review
def test_table2_trials_and_phases(dataset) -> None:
    rows = _review_table_rows(2)
    assert len(rows) == 18
    # The review's trials first, in the table's order; the registry search's trials follow.
    trials = {t.nct_id: t for t in dataset.trials if t.provenance.table == 2}
    assert list(trials) == [r[0] for r in rows]
    for nct, _, _, phase in rows:
        assert trials[nct].phases == PHASE_WORDS[phase.strip()], nct
        assert trials[nct].provenance.table == 2


def test_trial_purposes_follow_table2_groups(dataset) -> None:
    trials = {t.nct_id: t for t in dataset.trials}
    # The review names these four as trials against side effects of cancer treatment (section 5).
    for nct in ("NCT02509156", "NCT03874572", "NCT01275612", "NCT02814864"):
        assert trials[nct].purpose.value == "side_effect_mitigation"
    for nct in ("NCT02530047", "NCT03896568", "NCT03298763", "NCT03608631", "NCT01844661"):
        assert trials[nct].purpose.value == "anti_tumor"
        assert trials[nct].engineered
    assert trials["NCT03608631"].product == "extracellular_vesicles"


def test_review_examples_are_split(dataset) -> None:
    by_ref = defaultdict(list)
    for item in dataset.evidence:
        if item.refs:  # the review's items; the field's have no review reference
            by_ref[item.refs[0]].append(item)
    # ref 31: conditioned medium promotes, heat-treated conditioned medium inhibits
    directions31 = {(bool(i.engineering), i.direction.value) for i in by_ref[31]}
    assert {(False, "promotes"), (True, "inhibits")} <= directions31
    # ref 44: cord-blood MSCs inhibit, adipose MSCs promote
    pairs44 = {
        (i.msc_source[0].value, i.direction.value) for i in by_ref[44] if i.endpoint.value == "proliferation"
    }
    assert {("umbilical_cord_blood", "inhibits"), ("adipose_tissue", "promotes")} <= pairs44


def test_table1_row2_dose_includes_the_control_arm(dataset) -> None:
    row2 = [i for i in dataset.evidence if i.provenance.table == 1 and i.provenance.row == 2]
    assert row2
    for item in row2:
        assert [(r.msc, r.cancer) for r in item.dose.ratios] == [(0, 1), (1, 1), (5, 1), (10, 1)]


def test_flags_are_explained(dataset) -> None:
    for record in [*dataset.evidence, *dataset.studies, *dataset.trials]:
        for flag in record.flags:
            assert len(flag.note) > 20, (getattr(record, "id", None), flag.code)
