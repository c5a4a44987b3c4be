"""The controlled vocabularies: every entry carries a well-formed ontology identifier."""

from __future__ import annotations

import re

import pytest

from mscatlas.kb.enums import MscSource
from mscatlas.kb.vocab import UnknownTermError, load_vocabulary

vocab = load_vocabulary()


def test_every_msc_source_has_an_uberon_term() -> None:
    # iPSC-derived and tumour-associated MSCs have no tissue of origin, so no UBERON anchor.
    no_tissue = {MscSource.unspecified, MscSource.induced_pluripotent, MscSource.tumor_associated}
    for source in MscSource:
        entry = vocab.tissues.get(source.value) if source is not MscSource.unspecified else None
        if source in no_tissue:
            assert entry is None or entry["uberon"] is None, source
            continue
        assert re.fullmatch(r"UBERON:\d{7}", entry["uberon"]), source


def test_cancer_types_have_a_class_and_a_code() -> None:
    for name, entry in vocab.cancer_types.entries.items():
        assert entry["class"] in ("solid", "hematological"), name
        assert entry.get("oncotree") or entry.get("ncit"), name
        if entry.get("ncit"):
            assert re.fullmatch(r"C\d+", str(entry["ncit"])), name


@pytest.mark.parametrize("name", sorted(vocab.cell_lines.entries))
def test_cell_lines_have_cellosaurus_accessions(name: str) -> None:
    entry = vocab.cell_lines.entries[name]
    assert re.fullmatch(r"CVCL_[A-Z0-9]{4}", entry["cellosaurus"])
    if entry.get("cancer_type"):
        vocab.cancer_types.resolve(entry["cancer_type"])


def test_genes_are_hgnc() -> None:
    for symbol, entry in vocab.genes.entries.items():
        assert re.fullmatch(r"HGNC:\d+", entry["hgnc"]), symbol
        assert re.fullmatch(r"[A-Z0-9-]+", symbol), symbol


def test_synonyms_resolve_and_unknown_terms_suggest() -> None:
    assert vocab.genes.resolve("TIMP-1") == "TIMP1"
    assert vocab.cell_lines.resolve("MDA231") == "MDA-MB-231"
    with pytest.raises(UnknownTermError) as info:
        vocab.cell_lines.resolve("MDA-MB-213")
    assert "MDA-MB-231" in info.value.suggestions


def test_hematological_classes() -> None:
    for name in ("chronic myeloid leukemia", "acute myeloid leukemia", "non-Hodgkin lymphoma"):
        assert vocab.cancer_types.get(name)["class"] == "hematological"
