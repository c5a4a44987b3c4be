"""The Python entry point, mscatlas.open(), and the README's notebook example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mscatlas
from mscatlas.kb.store import EvidenceFilter

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def atlas(tmp_path: Path):
    with mscatlas.open(f"sqlite:///{tmp_path / 'a.sqlite'}") as handle:
        yield handle


def test_filters_match_the_store_query(atlas) -> None:
    items = atlas.evidence(msc_source="adipose_tissue", setting="in_vivo")
    expected = atlas.store.query_evidence(EvidenceFilter(msc_source="adipose_tissue", setting="in_vivo"))
    assert [e.id for e in items] == [e.id for e in expected] and items
    with pytest.raises(TypeError, match="source"):
        atlas.evidence(source="adipose_tissue")


def test_studies_split_review_and_search(atlas) -> None:
    review, search = atlas.studies(in_review=True), atlas.studies(in_review=False)
    assert len(review) == 80 and all(not s.in_review for s in search)
    assert len(review) + len(search) == len(atlas.studies())


def test_show_trials_and_meta(atlas) -> None:
    assert atlas.show("44").id == "ref44"
    with pytest.raises(KeyError):
        atlas.show("no-such-record")
    anti = atlas.trials(purpose="anti_tumor")
    assert anti and all(t.purpose.value == "anti_tumor" for t in anti)
    fit = atlas.meta([0.1, 0.3, 0.5], [0.01, 0.02, 0.015])
    assert fit.k == 3
    assert atlas.synthesis()


def test_readme_notebook_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "README has a python example"
    monkeypatch.setenv("MSCATLAS_DATABASE_URL", f"sqlite:///{tmp_path / 'readme.sqlite'}")
    pytest.importorskip("pandas")
    exec(compile(block.group(1), "README.md", "exec"), {})
