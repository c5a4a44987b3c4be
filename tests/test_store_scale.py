"""The store's SQL filtering, sorting, paging and facet counts (issue 14 point 1) against an
independent brute-force computation in Python over every item, and bulk loads that stay
all-or-nothing with a revision per record."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mscatlas.kb.models import Dataset, EvidenceItem
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.kb.store import CurationError, EvidenceFilter, Store
from mscatlas.kb.store.filters import FACETS, FilterValueError
from mscatlas.kb.terms import cancer_query


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    path: Path = tmp_path_factory.mktemp("scale") / "s.sqlite"
    return Store.open(f"sqlite:///{path}")


def _values(item: EvidenceItem, facet: str) -> list[str]:
    if facet == "msc_source":
        return list(dict.fromkeys(s.value for s in item.msc_source))
    if facet == "reference":
        return [item.study[3:] if item.study.startswith("ref") else item.study]
    value = getattr(item, facet)
    return [getattr(value, "value", value)]


def _matches(item: EvidenceItem, name: str, value: str) -> bool:
    """The reference meaning of one filter, written over the model (not over SQL columns)."""
    if name == "q":
        pv = item.provenance
        parts = [item.id, item.study, item.cancer_type, item.source_detail, item.model_detail, item.route]
        parts += [item.notes, item.dose.text, pv.summary, pv.review_location, pv.primary_source]
        parts += [pv.primary_source_says, *item.cell_lines, *(m.target for m in item.mechanisms)]
        parts += [m.note for m in item.mechanisms] + [f"{f.code} {f.note}" for f in item.flags]
        parts += [e.detail for e in item.engineering]
        text = "\n".join(str(p) for p in parts if p).casefold()
        return all(t.casefold() in text for t in value.split())
    if name == "cancer":
        return cancer_query(value).matches(item.cancer_type, item.cancer_class.value, item.cell_lines)
    return value in _values(item, name)


FILTERS = [
    {},
    {"setting": "in_vivo"},
    {"msc_source": "umbilical_cord", "direction": "inhibits"},
    {"cancer_class": "hematological", "delivery": "conditioned_medium"},
    {"reference": "29"},
    {"curation_status": "accepted", "endpoint": "proliferation"},
    {"cancer": "breast"},
    {"q": "MDA-MB-231"},
]


def _reference(items: list[EvidenceItem], active: dict[str, str]) -> list[EvidenceItem]:
    return [e for e in items if all(_matches(e, k, v) for k, v in active.items())]


def _flt(active: dict[str, str]) -> EvidenceFilter:
    kw: dict[str, object] = dict(active)
    if "reference" in kw:
        kw["reference"] = int(active["reference"])
    return EvidenceFilter(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("active", FILTERS, ids=[",".join(f) or "none" for f in FILTERS])
def test_sql_filter_and_facets_agree_with_a_brute_force_count(store: Store, active: dict[str, str]) -> None:
    everything = store.dataset().evidence
    expected = _reference(everything, active)
    total, page = store.evidence_page(_flt(active), limit=10_000)
    assert total == len(expected) and [e.id for e in page] == sorted(e.id for e in expected)
    facets = store.evidence_facets(_flt(active))
    for facet in FACETS:
        others = {k: v for k, v in active.items() if k != facet}
        counter: Counter[str] = Counter()
        for item in _reference(everything, others):
            counter.update(_values(item, facet))
        assert facets[facet] == dict(counter), facet


@pytest.mark.parametrize("sort", ["reference", "cancer_type", "msc_source", "evidence_level", "direction"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sql_sort_and_paging_agree_with_python(store: Store, sort: str, order: str) -> None:
    items = store.dataset().evidence
    if sort == "reference":
        key = lambda e: e.reference_key()  # noqa: E731
    else:
        key = lambda e: (",".join(_values(e, sort)).casefold(), e.id)  # noqa: E731
    expected = [e.id for e in sorted(items, key=key, reverse=order == "desc")]
    pages = []
    for offset in range(0, len(expected), 37):
        total, page = store.evidence_page(sort=sort, order=order, limit=37, offset=offset)
        assert total == len(expected)
        pages += [e.id for e in page]
    assert pages == expected
    assert [e.id for e in store.iter_evidence(sort=sort, order=order, chunk=50)] == expected


def test_synonyms_resolve_in_the_one_filter(store: Store) -> None:
    exact = [e.id for e in store.query_evidence(EvidenceFilter(msc_source="bone_marrow"))]
    assert exact
    for typed in ("bone marrow", "BM-MSC", "Bone-Marrow"):
        assert [e.id for e in store.query_evidence(EvidenceFilter(msc_source=typed))] == exact
    with pytest.raises(FilterValueError, match="filter 'msc_source'") as err:
        store.query_evidence(EvidenceFilter(msc_source="bonemarow"))
    assert "bone_marrow" in err.value.suggestions


def test_bulk_load_adds_each_record_once_with_its_revision(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'bulk.sqlite'}")
    shipped = shipped_dataset()
    copies = [e.model_copy(update={"id": f"{e.id}.x1"}) for e in shipped.evidence[:40]]
    batch = Dataset.model_construct(studies=shipped.studies, evidence=copies, trials=[])
    result = store.load(batch, changed_by="ann", reason="copies")
    assert (result.added, result.updated, result.unchanged) == (40, 0, len(shipped.studies))
    assert store.revisions(copies[0].id)[0]["changed_by"] == "ann"
    assert store.get(copies[0].id) == copies[0]
    for item in copies:  # the MSC source rows were bulk-inserted too
        found = store.query_evidence(EvidenceFilter(msc_source=item.msc_source[0].value))
        assert item.id in {e.id for e in found}
    again = store.load(batch, changed_by="ann")
    assert (again.added, again.updated) == (0, 0)
    changed = copies[0].model_copy(update={"notes": "re-read"})
    bad = copies[1].model_copy(update={"id": shipped.studies[0].id})  # an id of another kind
    with pytest.raises(CurationError, match="one namespace"):
        store.load(Dataset.model_construct(studies=[], evidence=[changed, bad], trials=[]), changed_by="ann")
    assert store.get(copies[0].id).notes == copies[0].notes  # all or nothing
    done = store.load(Dataset.model_construct(studies=[], evidence=[changed], trials=[]), changed_by="bo")
    assert done.updated == 1 and [r["version"] for r in store.revisions(changed.id)] == [1, 2]
    store.close()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_streamed_export_is_the_whole_export_byte_for_byte(store: Store, tmp_path: Path, fmt: str) -> None:
    from mscatlas.kb.export import export_chunks, export_text
    from mscatlas.kb.records import validate_paths

    assert "".join(export_chunks(store, fmt)) == export_text(store.dataset(), fmt)  # type: ignore[arg-type]
    # A store without trials (an empty section) and only accepted items.
    small = Store.open(f"sqlite:///{tmp_path / 'small.sqlite'}", seed=False)
    mini, errors = validate_paths([Path(__file__).parent / "data" / "mini.yaml"])
    assert not errors
    small.load(mini.model_copy(update={"trials": []}))
    assert "".join(export_chunks(small, fmt)) == export_text(small.dataset(), fmt)  # type: ignore[arg-type]
    accepted = "".join(export_chunks(small, fmt, only_accepted=True))  # type: ignore[arg-type]
    assert accepted == export_text(small.dataset(only_accepted=True), fmt)  # type: ignore[arg-type]
    small.close()


def _release_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_streamed_release_is_the_whole_release_byte_for_byte(store: Store, tmp_path: Path) -> None:
    """Issue 14 point 3: the release a store streams is the release of its whole dataset."""
    from datetime import UTC, datetime

    from mscatlas.kb.records import validate_paths
    from mscatlas.kb.release import verify_release, write_release, write_release_from_store

    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    whole = write_release(store.dataset(), tmp_path / "whole", created=when)
    streamed = write_release_from_store(store, tmp_path / "streamed", created=when)
    assert streamed == whole and whole["counts"]["evidence_not_released"] > 0
    assert _release_files(tmp_path / "streamed") == _release_files(tmp_path / "whole")
    assert verify_release(tmp_path / "streamed") == []
    # No trials (an empty section) and no accepted item (an evidence TSV of its header only).
    small = Store.open(f"sqlite:///{tmp_path / 'small.sqlite'}", seed=False)
    mini, errors = validate_paths([Path(__file__).parent / "data" / "mini.yaml"])
    assert not errors
    pending = [e.model_copy(update={"curation_status": "submitted"}) for e in mini.evidence]
    small.load(mini.model_copy(update={"trials": [], "evidence": pending}))
    whole = write_release(small.dataset(), tmp_path / "small-whole", created=when)
    assert write_release_from_store(small, tmp_path / "small-streamed", created=when) == whole
    assert _release_files(tmp_path / "small-streamed") == _release_files(tmp_path / "small-whole")
    small.close()


def test_remembered_pages_and_facets_follow_every_change(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'version.sqlite'}")
    flt = EvidenceFilter(setting="in_vivo")
    total, _ = store.evidence_page(flt, limit=5)
    facets = store.evidence_facets(flt)
    assert store.evidence_page(flt, limit=5)[0] == total  # remembered: same answer
    version = store.store_version()
    item = next(e for e in store.dataset().evidence if e.setting.value == "in_vivo")
    store.load(
        Dataset.model_construct(studies=[], evidence=[item.model_copy(update={"id": "ev-new.x9"})], trials=[])
    )
    assert store.store_version() != version
    assert store.evidence_page(flt, limit=5)[0] == total + 1
    after = store.evidence_facets(flt)
    assert sum(after["direction"].values()) == sum(facets["direction"].values()) + 1
    # An edit through curation (a revision, no new row) is seen too.
    store.retract_evidence("ev-new.x9", by="ed", why="duplicate")
    assert (
        store.evidence_facets(flt)["curation_status"].get("rejected", 0)
        == facets["curation_status"].get("rejected", 0) + 1
    )
    store.close()
