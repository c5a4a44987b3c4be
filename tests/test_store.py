"""The store: idempotent loads, revisions on change, filters, the default seeded store."""

from __future__ import annotations

from pathlib import Path

from mscatlas.kb.records import validate_paths
from mscatlas.kb.store import EvidenceFilter, Store


def _mini_dataset(mini_path: Path):
    dataset, errors = validate_paths([mini_path])
    assert not errors
    return dataset


def test_reloading_changes_nothing(empty_store: Store, mini_path: Path) -> None:
    dataset = _mini_dataset(mini_path)
    first = empty_store.load(dataset)
    assert (first.added, first.updated, first.unchanged) == (6, 0, 0)
    again = empty_store.load(dataset)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 6)
    assert empty_store.dataset() == dataset.model_copy(
        update={"evidence": sorted(dataset.evidence, key=lambda e: e.id)}
    )


def test_changed_record_is_updated_with_a_revision(empty_store: Store, mini_path: Path) -> None:
    dataset = _mini_dataset(mini_path)
    empty_store.load(dataset)
    changed = dataset.evidence[0].model_copy(update={"notes": "re-read the paper"})
    result = empty_store.load(dataset.model_copy(update={"evidence": [changed], "studies": [], "trials": []}))
    assert (result.added, result.updated) == (0, 1)
    assert empty_store.get("ev-029-a").notes == "re-read the paper"
    assert [r["version"] for r in empty_store.revisions("ev-029-a")] == [1, 2]


def test_filters(empty_store: Store, mini_path: Path) -> None:
    empty_store.load(_mini_dataset(mini_path))
    ids = lambda **kw: [e.id for e in empty_store.query_evidence(EvidenceFilter(**kw))]  # noqa: E731
    assert ids(direction="promotes") == ["ev-047-a"]
    assert ids(setting="in_vivo") == ["ev-029-b", "ev-047-a"]
    assert ids(msc_source="umbilical_cord", delivery="direct_coculture") == ["ev-029-a"]
    assert ids(msc_source="bone_marrow") == []
    assert ids(cancer="breast") == ["ev-029-a", "ev-029-b"]
    assert ids(cancer="MDA-MB-231") == ["ev-029-a", "ev-029-b"]
    assert ids(cancer="solid") == ["ev-029-a", "ev-029-b", "ev-047-a"]


def test_get_by_any_id(empty_store: Store, mini_path: Path) -> None:
    empty_store.load(_mini_dataset(mini_path))
    assert empty_store.get("ref29").year == 2009
    assert empty_store.get("nct02530047").phases[0].value == "PHASE1"
    assert empty_store.get("nothing") is None


def test_default_store_is_seeded_once_from_the_shipped_data(tmp_path: Path) -> None:
    from mscatlas.kb.shipped import shipped_dataset

    url = f"sqlite:///{tmp_path / 'seeded.sqlite'}"
    store = Store.open(url)
    shipped = shipped_dataset()
    assert store.counts() == {
        "studies": len(shipped.studies),
        "evidence": len(shipped.evidence),
        "trials": len(shipped.trials),
    }
    assert store.upgrade_shipped().already_current  # already seeded with this version
    store.close()
