"""The report's numbered bibliography (issue 15 point 10): every "(N)" citation links to entry
N, whose DOI and PubMed id link to their pages; the report still loads nothing from elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mscatlas.kb.citations import bibliography
from mscatlas.kb.models import Dataset, Study
from mscatlas.kb.records import validate_paths
from mscatlas.report.build import build_report


@pytest.fixture
def dataset(mini_path: Path) -> Dataset:
    data, errors = validate_paths([mini_path])
    assert not errors and data is not None
    studies = [
        s.model_copy(update={"doi": "10.1016/j.canlet.2009.02.008", "pmid": "19285314"})
        if s.id == "ref29"
        else s
        for s in data.studies
    ]
    searched = Study(
        id="pmid31000001",
        authors=["Zhao Q", "Li W"],
        title="Cord MSC exosomes slow breast cancer growth",
        journal="Stem Cell Res Ther",
        year=2019,
        doi="10.1186/s13287-019-0001-x",
        pmid="31000001",
    )
    item = data.evidence[0].model_copy(update={"id": "ev-search-a", "study": searched.id, "refs": []})
    return Dataset.model_validate(
        {
            "studies": [s.model_dump() for s in [*studies, searched]],
            "evidence": [e.model_dump(exclude={"engineered", "ontology"}) for e in [*data.evidence, item]],
            "trials": [t.model_dump(exclude={"registry"}) for t in data.trials],
        }
    )


def test_bibliography_lists_cited_studies_in_order(dataset: Dataset) -> None:
    refs = bibliography(dataset.studies, dataset.evidence)
    cited_refs = sorted({r for e in dataset.evidence for r in e.refs})
    numbered = [r for r in refs if r.number is not None]
    assert [r.number for r in numbered] == cited_refs  # the review's numbers, in order
    assert [r.anchor for r in numbered] == [f"ref-{n}" for n in cited_refs]
    first = numbered[0]
    assert first.study_id == "ref29" and first.text.startswith("Ayuzawa R, Doi C et al. Naive human")
    assert first.doi_url == "https://doi.org/10.1016/j.canlet.2009.02.008"
    assert first.pmid_url == "https://pubmed.ncbi.nlm.nih.gov/19285314/"
    assert refs[-1].number is None and refs[-1].anchor == "study-pmid31000001"
    assert bibliography(dataset.studies, []) == []  # nothing cited, nothing listed


def test_report_citations_link_to_their_entries(dataset: Dataset, tmp_path: Path) -> None:
    html = build_report(dataset, tmp_path / "rep").read_text(encoding="utf-8")
    table1 = html[html.index('<h2 id="table1">') : html.index('<h2 id="table2">')]
    cited = re.findall(r"\((\d+)\)</a>", table1)
    assert cited, "Table 1 shows no linked citation"
    assert not re.search(r"<span>\((\d+)\)</span>", table1)  # every cited reference has an entry
    for number in cited:
        assert f'href="#ref-{number}"' in table1
        assert re.search(rf'<li id="ref-{number}" value="{number}">', html), number
    assert 'href="#study-pmid31000001"' in table1  # a searched study is cited by author and year
    references = html[html.index('<h2 id="references">') :]
    assert '<li id="study-pmid31000001">' in references
    assert 'href="https://doi.org/10.1016/j.canlet.2009.02.008"' in references
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/19285314/"' in references
    assert 'href="#references"' in html  # in the top navigation
    assert 'href="https://clinicaltrials.gov/study/NCT02530047"' in html  # Table 2 links the registry
    assert 'href="https://www.cellosaurus.org/CVCL_0062"' in table1  # MDA-MB-231, through Cellosaurus
    assert "search=BRCA" in table1  # the cancer type, through OncoTree
    assert not re.search(r"\bsrc\s*=\s*[\"']?https?:|<link\b|url\(\s*[\"']?https?:", html)  # still offline
