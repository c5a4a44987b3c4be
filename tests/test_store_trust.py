"""Team edits are safe (issue 9, points 1, 3, 4, 5): a new shipped release never overwrites a
record changed here (it files an upstream proposal with a diff), a rejected edit restores the
accepted version, no load accepts a pending item, and ids are one namespace. Runs on SQLite
and, when configured, PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from mscatlas.kb.models import Dataset, EvidenceItem
from mscatlas.kb.records import validate_paths
from mscatlas.kb.store import CurationError, Store

PASSWORD = "correct horse battery"


def _mini(mini_path: Path) -> Dataset:
    dataset, errors = validate_paths([mini_path])
    assert not errors and dataset is not None
    return dataset


def _with(dataset: Dataset, record_id: str, **changes) -> Dataset:
    """A copy of ``dataset`` where one record has ``changes``."""

    def swap(records, key):
        return [r.model_copy(update=changes) if getattr(r, key) == record_id else r for r in records]

    return dataset.model_copy(
        update={
            "studies": swap(dataset.studies, "id"),
            "evidence": swap(dataset.evidence, "id"),
            "trials": swap(dataset.trials, "nct_id"),
        }
    )


@pytest.fixture
def seeded(empty_store: Store, mini_path: Path) -> Store:
    """A store filled from a 'release 1' (the mini dataset) with an editor and a curator."""
    report = empty_store.upgrade_shipped(_mini(mini_path), "release-1")
    assert len(report.added) == 6
    for name, role in [("cara", "curator"), ("ed", "editor"), ("eve", "editor")]:
        empty_store.add_user(name, role, PASSWORD)
    return empty_store


def _copy(item: EvidenceItem, **changes) -> EvidenceItem:
    """A validated copy of ``item`` with ``changes``."""
    data = item.model_dump(mode="json", exclude_none=True, exclude={"engineered", "ontology"})
    return EvidenceItem.model_validate({**data, **changes})


def _item(store: Store, record_id: str) -> EvidenceItem:
    item = store.get(record_id)
    assert isinstance(item, EvidenceItem)
    return item


def test_a_new_release_never_overwrites_team_edits(seeded: Store, mini_path: Path) -> None:
    store = seeded
    # 1. An accepted web edit.
    edited = _copy(_item(store, "ev-029-a"), notes="team: checked the full text")
    version = store.edit_evidence("ev-029-a", edited, expected_version=1, by="cara", reason="full text")
    store.review_evidence("ev-029-a", "accept", expected_version=version, by="ed", reason="ok")
    # 2. A pending submission.
    pending = _copy(_item(store, "ev-029-b"), notes="team: pending change")
    store.edit_evidence("ev-029-b", pending, expected_version=1, by="cara", reason="pending")
    # 3. A flag.
    store.flag_evidence(
        "ev-047-a", "unverified", "team: cannot reach the paper", expected_version=1, by="cara"
    )
    # 4. A load of a changed shipped record.
    release_1 = _mini(mini_path)
    ref47 = store.get("ref47").model_copy(update={"title": "Team-corrected title"})
    store.load(Dataset(studies=[ref47]), changed_by="ed", updates="apply")
    team = {i: store.get(i) for i in ("ev-029-a", "ev-029-b", "ev-047-a", "ref47")}

    # Release 2 changes an unrelated record (the trial) and two records the team changed.
    release_2 = _with(release_1, "NCT02530047", title="Upstream retitled trial")
    release_2 = _with(release_2, "ev-029-a", source_detail="upstream: Wharton's jelly")
    release_2 = _with(release_2, "ev-029-b", source_detail="upstream cord detail")
    report = store.upgrade_shipped(release_2, "release-2")

    assert report.updated == ["NCT02530047"]  # nobody changed it here: updated silently
    assert sorted(report.proposed) == ["ev-029-a", "ev-029-b"]
    assert sorted(report.kept) == ["ev-047-a", "ref47"]
    for record_id, record in team.items():
        assert store.get(record_id) == record, f"{record_id} was overwritten by the release"
    assert _item(store, "ev-029-b").curation_status.value == "submitted"  # never accepted unreviewed
    trial = store.get("NCT02530047")
    assert trial.title == "Upstream retitled trial"
    assert store.revisions("NCT02530047")[-1]["changed_by"] == "mscatlas-seed"

    # The upstream change is a pending proposal with a diff against the record as it is now.
    proposal = store.proposal(report.proposed["ev-029-a"])
    assert proposal.source == "upstream" and proposal.status == "pending"
    diff = {c.field: (c.current, c.proposed) for c in store.proposal_diff(proposal.id)}
    assert diff["source_detail"] == ("umbilical cord matrix", "upstream: Wharton's jelly")
    assert diff["notes"][0] == "team: checked the full text"
    # An editor accepts one and rejects the other.
    current = store.record_version("ev-029-a")
    store.review_proposal(
        proposal.id, "accept", by="eve", reason="upstream is right", expected_version=current
    )
    assert _item(store, "ev-029-a").source_detail == "upstream: Wharton's jelly"
    assert store.revisions("ev-029-a")[-1]["changed_by"] == "eve"
    store.review_proposal(report.proposed["ev-029-b"], "reject", by="eve", reason="ours is newer")
    assert store.get("ev-029-b") == team["ev-029-b"]

    # The same release again does nothing; a release that brings nothing new files nothing new.
    assert store.upgrade_shipped(release_2, "release-2").already_current
    again = store.upgrade_shipped(release_2, "release-2b")
    assert not again.proposed and not again.updated and not again.added


def test_rejecting_an_edit_restores_the_accepted_version(seeded: Store) -> None:
    store = seeded
    accepted = _item(store, "ev-029-a")
    released = len(store.dataset(only_accepted=True).evidence)
    edited = _copy(accepted, direction="promotes", notes="misread")
    version = store.edit_evidence("ev-029-a", edited, expected_version=1, by="cara", reason="re-read")
    store.review_evidence("ev-029-a", "reject", expected_version=version, by="ed", reason="wrong direction")
    now = _item(store, "ev-029-a")
    assert now == accepted
    assert len(store.dataset(only_accepted=True).evidence) == released
    history = store.revisions("ev-029-a")
    assert "rejected: wrong direction" in history[-1]["reason"]
    assert history[-2]["reason"].startswith("edited")  # the rejected content stays in the history
    # A new item that is rejected is simply rejected.
    new = _copy(accepted, id="ev-new-a")
    store.submit_evidence(new, by="cara", reason="new")
    store.review_evidence("ev-new-a", "reject", expected_version=1, by="ed", reason="duplicate")
    assert _item(store, "ev-new-a").curation_status.value == "rejected"


def test_no_load_accepts_a_pending_item(seeded: Store, mini_path: Path) -> None:
    store = seeded
    pending = _copy(_item(store, "ev-029-b"), notes="pending")
    store.edit_evidence("ev-029-b", pending, expected_version=1, by="cara", reason="pending")
    accepted_again = _mini(mini_path)  # has ev-029-b as accepted
    with pytest.raises(CurationError, match="awaits review"):
        store.load(accepted_again, changed_by="ed", updates="apply")
    assert _item(store, "ev-029-b").curation_status.value == "submitted"
    # Proposed instead: filed for an editor, nothing changes yet.
    result = store.load(accepted_again, changed_by="cara", updates="propose")
    assert result.proposed == 1 and result.updated == 0
    assert _item(store, "ev-029-b").curation_status.value == "submitted"
    (proposal,) = store.proposals(record_id="ev-029-b")
    with pytest.raises(CurationError, match="another editor"):
        store.review_proposal(proposal.id, "accept", by="cara", reason="mine")
    # A load that names no author cannot change stored records at all.
    changed = _with(_mini(mini_path), "ref29", title="Changed without an author")
    with pytest.raises(CurationError, match="editor's action"):
        store.load(changed, updates="refuse")
    assert store.get("ref29").title != "Changed without an author"


def test_ids_are_one_namespace(seeded: Store, mini_path: Path) -> None:
    store = seeded
    item = _copy(_item(store, "ev-029-a"), id="ref29", curation_status="submitted")
    with pytest.raises(CurationError, match="already the id of a study"):
        store.load(Dataset(evidence=[item]), changed_by="ed")
    assert isinstance(store.get("ref29"), type(store.get("ref47")))
    with pytest.raises(CurationError, match="another record"):
        store.submit_evidence(item, by="cara", reason="x")
    nct = _copy(_item(store, "ev-029-a"), id="nct02530047")
    with pytest.raises(CurationError, match="already the id of a trial"):
        store.load(Dataset(evidence=[nct]), changed_by="ed")
