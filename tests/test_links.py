"""Identifiers link to their public pages (issue 15 point 10): one test per identifier kind, and
what is not an identifier of its kind gets no link."""

from __future__ import annotations

import pytest

from mscatlas.kb.links import anchor, guess_kind, url_for

ICTRP = "https://trialsearch.who.int/Trial2.aspx?TrialID="
ONCOTREE = "https://oncotree.mskcc.org/?version=oncotree_latest_stable&field=CODE&search="
EUDRACT = "https://www.clinicaltrialsregister.eu/ctr-search/search?query="
HGNC = "https://www.genenames.org/data/gene-symbol-report/#!/hgnc_id/"
CASES = [
    ("doi", "10.1186/s13287-019-1165-3", "https://doi.org/10.1186/s13287-019-1165-3"),
    ("pmid", "19345434", "https://pubmed.ncbi.nlm.nih.gov/19345434/"),
    ("pmid", 19345434, "https://pubmed.ncbi.nlm.nih.gov/19345434/"),
    ("pmcid", "PMC6029340", "https://pmc.ncbi.nlm.nih.gov/articles/PMC6029340/"),
    ("trial", "NCT02530047", "https://clinicaltrials.gov/study/NCT02530047"),
    ("trial", "2012-003741-15", EUDRACT + "2012-003741-15"),
    ("trial", "ACTRN12614000545639", "https://www.anzctr.org.au/ACTRN12614000545639.aspx"),
    ("trial", "ISRCTN12345678", "https://www.isrctn.com/ISRCTN12345678"),
    ("trial", "ChiCTR2000031319", ICTRP + "ChiCTR2000031319"),
    ("trial", "IRCT2014072618603N1", ICTRP + "IRCT2014072618603N1"),
    ("trial", "UMIN000012345", ICTRP + "JPRN-UMIN000012345"),
    ("uberon", "UBERON:0002371", "http://purl.obolibrary.org/obo/UBERON_0002371"),
    ("cellosaurus", "CVCL_0062", "https://www.cellosaurus.org/CVCL_0062"),
    ("oncotree", "BRCA", ONCOTREE + "BRCA"),
    ("ncit", "C4872", "https://evsexplore.semantics.cancer.gov/evsexplore/concept/ncit/C4872"),
    ("hgnc", "HGNC:11820", HGNC + "HGNC:11820"),
]


@pytest.mark.parametrize(("kind", "value", "url"), CASES)
def test_each_kind_links_to_its_page(kind: str, value: str, url: str) -> None:
    assert url_for(kind, value) == url


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("doi", "doi.org/10.1/x"),  # not a DOI (no 10.NNNN/ prefix)
        ("pmid", "PMC123"),
        ("pmcid", "123456"),
        ("trial", "NCT123"),  # NCT numbers have 8 digits
        ("trial", "ref44"),
        ("uberon", "UBERON_0002371"),
        ("cellosaurus", "CVCL-0062"),
        ("ncit", "4872"),
        ("hgnc", "TIMP1"),
        ("oncotree", "breast carcinoma"),
        ("isbn", "978-3-16-148410-0"),  # an unknown kind
        ("pmid", None),
        ("pmid", True),
    ],
)
def test_unknown_or_malformed_gets_no_link(kind: str, value: object) -> None:
    assert url_for(kind, value) is None


def test_guess_kind_only_for_self_naming_identifiers() -> None:
    assert guess_kind("10.1038/nm.2339") == "doi"
    assert guess_kind("PMC6029340") == "pmcid"
    assert guess_kind("NCT02530047") == "trial"
    assert guess_kind("UBERON:0001013") == "uberon"
    assert guess_kind("CVCL_0031") == "cellosaurus"
    assert guess_kind("HGNC:7176") == "hgnc"
    assert guess_kind("19345434") is None  # a bare number could be anything
    assert guess_kind("BRCA") is None


def test_anchor_escapes_and_links() -> None:
    html = anchor("10.1000/a<b>&c", "doi")
    assert html.startswith('<a class="ext" href="https://doi.org/10.1000/a%3Cb%3E%26c"')
    assert ">10.1000/a&lt;b&gt;&amp;c</a>" in html
    assert anchor("<script>", "pmid") == "&lt;script&gt;"  # no page: the text, escaped
    assert anchor("BRCA", "oncotree", text="OncoTree BRCA").endswith(">OncoTree BRCA</a>")
    assert "&amp;field=CODE" in anchor("BRCA", "oncotree")  # the URL's & is escaped in the attribute
    assert anchor(None) == ""


def test_every_shipped_identifier_has_a_page() -> None:
    """Every ontology id of the vocabularies and every study and trial id of the shipped data is
    in its kind's form, so each one becomes a link (a malformed one would silently show as text)."""
    from mscatlas.kb.shipped import shipped_dataset
    from mscatlas.kb.vocab import load_vocabulary

    vocab = load_vocabulary()
    missing = []
    for terms, keys in (
        (vocab.tissues, ("uberon",)),
        (vocab.cancer_types, ("oncotree", "ncit")),
        (vocab.cell_lines, ("cellosaurus",)),
        (vocab.genes, ("hgnc",)),
    ):
        for name, entry in terms.entries.items():
            for key in keys:
                if entry.get(key) and url_for(key, str(entry[key])) is None:
                    missing.append((name, key, entry[key]))
    dataset = shipped_dataset()
    for study in dataset.studies:
        for key in ("doi", "pmid", "pmcid"):
            value = getattr(study, key)
            if value and url_for(key, value) is None:
                missing.append((study.id, key, value))
    for trial in dataset.trials:
        for value in [trial.nct_id, *(r.id for r in trial.cross_registrations)]:
            if url_for("trial", value) is None:
                missing.append((trial.nct_id, "trial", value))
    assert not missing


def _app_with_identifiers(tmp_path, mini_path):
    import warnings

    from mscatlas.kb.records import validate_paths
    from mscatlas.kb.store import Store
    from mscatlas.web import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    dataset, errors = validate_paths([mini_path])
    assert not errors
    studies = [
        s.model_copy(
            update={"doi": "10.1016/j.canlet.2009.02.008", "pmid": "19285314", "pmcid": "PMC1234567"}
        )
        if s.id == "ref29"
        else s
        for s in dataset.studies
    ]
    store = Store(f"sqlite:///{tmp_path / 'links.sqlite'}")
    store.load(dataset.model_copy(update={"studies": studies}))
    return TestClient(create_app(store, secret_key="k"))


def test_web_pages_link_identifiers(tmp_path, mini_path) -> None:
    c = _app_with_identifiers(tmp_path, mini_path)
    study = c.get("/studies/ref29").text
    assert 'href="https://doi.org/10.1016/j.canlet.2009.02.008"' in study
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/19285314/"' in study
    assert 'href="https://pmc.ncbi.nlm.nih.gov/articles/PMC1234567/"' in study
    listing = c.get("/studies").text  # the table links them too
    assert 'href="https://doi.org/10.1016/j.canlet.2009.02.008"' in listing
    evidence = c.get("/evidence/ev-029-a").text
    assert 'href="http://purl.obolibrary.org/obo/UBERON_0002331"' in evidence  # umbilical cord
    assert 'href="https://www.cellosaurus.org/CVCL_0062"' in evidence  # MDA-MB-231
    assert (
        'href="https://oncotree.mskcc.org/?version=oncotree_latest_stable&amp;field=CODE&amp;search=BRCA"'
        in evidence
    )
    assert 'href="https://evsexplore.semantics.cancer.gov/evsexplore/concept/ncit/C4872"' in evidence
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/19285314/"' in evidence  # the cited study
    trial = c.get("/trials/NCT02530047").text
    assert 'href="https://clinicaltrials.gov/study/NCT02530047"' in trial
    assert 'href="https://clinicaltrials.gov/study/NCT02530047"' in c.get("/trials").text
    listing = c.get("/evidence").text  # the evidence table links cell lines and cancer types
    assert 'href="https://www.cellosaurus.org/CVCL_0062"' in listing and "search=BRCA" in listing


def test_vocabulary_terms_link_through_their_ontology_ids() -> None:
    from mscatlas.kb.enums import MscSource
    from mscatlas.kb.links import term_anchor

    assert 'href="https://www.cellosaurus.org/CVCL_0062"' in term_anchor("MDA-MB-231", "cell_line")
    assert term_anchor("MDA231", "cell_line", "MDA231").endswith(">MDA231</a>")  # a synonym finds it
    assert "search=BRCA" in term_anchor("breast carcinoma", "cancer_type")  # OncoTree first
    assert "UBERON_0001013" in term_anchor(MscSource.adipose_tissue, "tissue", "adipose tissue")
    assert "HGNC:11820" in term_anchor("TIMP1", "gene")
    assert term_anchor("no such line <b>", "cell_line") == "no such line &lt;b&gt;"  # unknown: text only
