"""Tests for the reference-list parser (mscatlas.kb.references)."""

from __future__ import annotations

from pathlib import Path

import pytest

# The review lives beside the repository: <repo>/../shared/reference/.
from conftest import REVIEW, review_text
from mscatlas.kb.models import Study
from mscatlas.kb.references import (
    ReferenceParseError,
    parse_citation,
    parse_reference_list,
    split_authors,
    split_entries,
)

INLINE = "\n".join(
    [
        "Some body text citing (1-3).",
        "",
        "References",
        "",
        "- Friedenstein AJ, Chailakhjan RK, Lalykina KS. The development of fibroblast"
        " colonies. *Cell Tissue Kinet.* 1970 Oct;3(4):393-403.",
        "- Sheng G. The developmental basis of mesenchymal stem/stromal cells (MSCs)."
        " *Dev Biol.* 2015;15(1):1-8.",
        "3. Song N, Gao L, Qiu H, Huang C, Cheng H, Zhou H, et al. Mouse",
        "",
        "- bone marrow-derived mesenchymal stem cells inhibit leukemia/lymphoma cell"
        " proliferation. *Int J Mol M.* 2015;36(1):139-49.",
        "4. Sohrabi B, Dayeri B. Exosomes as vehicles. *Cancer Gene Ther.* 2022:1-12.",
        "5. Pawitan JA. Prospect of stem cell conditioned medium. *BioMed Res Int.* 2014;2014.",
        "",
    ]
)


@pytest.fixture(scope="module")
def review_refs() -> dict[int, dict]:
    records = parse_reference_list(review_text())
    return {r["ref"]: r for r in records}


# --- inline text -------------------------------------------------------------------------


def test_inline_bulleted_then_numbered_and_split_entry() -> None:
    recs = parse_reference_list(INLINE)
    assert [r["ref"] for r in recs] == [1, 2, 3, 4, 5]
    assert [r["id"] for r in recs] == ["ref1", "ref2", "ref3", "ref4", "ref5"]
    split = recs[2]
    assert split["title"].startswith("Mouse bone marrow-derived mesenchymal stem cells")
    assert split["review_citation"].startswith("Song N, Gao L")
    assert "et al. Mouse bone marrow-derived" in split["review_citation"]
    assert split["et_al"] is True
    assert split["journal"] == "Int J Mol M"
    assert (split["volume"], split["issue"], split["pages"]) == ("36", "1", "139-49")


def test_inline_bibliographic_tail_variants() -> None:
    recs = {r["ref"]: r for r in parse_reference_list(INLINE)}
    assert recs[1]["year"] == 1970 and recs[1]["volume"] == "3" and recs[1]["issue"] == "4"
    assert recs[2]["authors"] == ["Sheng G"] and recs[2]["et_al"] is False
    # year then pages, no volume
    assert (recs[4]["year"], recs[4]["volume"], recs[4]["pages"]) == (2022, None, "1-12")
    # volume only
    assert (recs[5]["volume"], recs[5]["issue"], recs[5]["pages"]) == ("2014", None, None)


def test_split_entries_marks_inferred_numbers() -> None:
    section = INLINE.split("References", 1)[1]
    entries = split_entries(section)
    assert [(e.ref, e.numbered) for e in entries] == [
        (1, False),
        (2, False),
        (3, True),
        (4, True),
        (5, True),
    ]


def test_split_authors() -> None:
    assert split_authors("Li T, Zhang C, et al.") == (["Li T", "Zhang C"], True)
    assert split_authors("To'a Salazar G, Abu Kasim NH.") == (
        ["To'a Salazar G", "Abu Kasim NH"],
        False,
    )


def test_parse_citation_keeps_typos() -> None:
    rec = parse_citation(
        "Gunawardena TNA, Rahman MT. Conditioned media. *J J Tissue Eng Regen Med.* 2019;13(4):569-86."
    )
    assert rec["journal"] == "J J Tissue Eng Regen Med"


def test_errors() -> None:
    with pytest.raises(ReferenceParseError, match="References"):
        parse_reference_list("no list here")
    with pytest.raises(ReferenceParseError, match="numbering"):
        parse_reference_list("References\n1. A B. T. *J.* 2000;1:1.\n3. C D. T. *J.* 2001;1:2.\n")
    with pytest.raises(ReferenceParseError, match="reference 1"):
        parse_reference_list("References\n- A B. Title without journal. 2000;1:1.\n")


# --- the review --------------------------------------------------------------------------


def test_review_entry_count(review_refs: dict[int, dict]) -> None:
    # The brief expected 79 entries (ref 80 cited but missing); the shipped text does list
    # reference 80, so the list runs 1-80 without gaps.
    assert sorted(review_refs) == list(range(1, 81))


def test_review_records_validate_as_study(review_refs: dict[int, dict]) -> None:
    for rec in review_refs.values():
        Study.model_validate({k: v for k, v in rec.items() if v is not None})


def test_review_ref1(review_refs: dict[int, dict]) -> None:
    r = review_refs[1]
    assert r["id"] == "ref1"
    assert r["authors"] == ["Friedenstein AJ", "Chailakhjan RK", "Lalykina KS"]
    assert r["et_al"] is False
    assert r["title"].startswith("The development of fibroblast colonies in monolayer cultures")
    assert r["journal"] == "Cell Tissue Kinet"
    assert (r["year"], r["volume"], r["issue"], r["pages"]) == (1970, "3", "4", "393-403")
    assert r["review_citation"].endswith("*Cell Tissue Kinet.* 1970 Oct;3(4):393-403.")


def test_review_bulleted_numbered_boundary(review_refs: dict[int, dict]) -> None:
    r23, r24 = review_refs[23], review_refs[24]
    assert r23["authors"][0] == "Si Y" and r23["et_al"] is True
    assert r23["journal"] == "Diabetes"
    assert (r23["year"], r23["volume"], r23["issue"], r23["pages"]) == (2012, "61", "6", "1616-25")
    assert r24["authors"] == ["Brenner AK", "Nepstad I", "Bruserud Ø"]
    assert r24["journal"] == "Front Immunol"
    assert (r24["year"], r24["volume"], r24["issue"], r24["pages"]) == (2017, "8", None, "106")


def test_review_split_entry_54(review_refs: dict[int, dict]) -> None:
    r = review_refs[54]
    assert r["authors"][0] == "Song N" and r["et_al"] is True
    assert r["title"].startswith("Mouse bone marrow-derived mesenchymal stem cells inhibit")
    assert r["title"].endswith("allogeneic bone marrow transplant")
    assert r["journal"] == "Int J Mol M"
    assert (r["year"], r["volume"], r["issue"], r["pages"]) == (2015, "36", "1", "139-49")
    # the continuation is not a reference of its own
    assert review_refs[55]["authors"][0] == "Zhu Y"


def test_review_ref79_and_80(review_refs: dict[int, dict]) -> None:
    r = review_refs[79]
    assert r["authors"][:2] == ["Kalimuthu S", "Gangadaran P"] and r["et_al"] is True
    assert r["journal"] == "Sci Rep"
    assert (r["year"], r["volume"], r["issue"], r["pages"]) == (2016, "6", "1", "1-11")
    r80 = review_refs[80]
    assert r80["authors"][0] == "Mendt M" and r80["journal"] == "JCI insight"
    assert (r80["year"], r80["volume"], r80["issue"], r80["pages"]) == (2018, "3", "8", None)


def test_review_quirks_kept_as_printed(review_refs: dict[int, dict]) -> None:
    assert review_refs[17]["journal"] == "ur J Heart Fail"
    assert "*ur J Heart Fail.*" in review_refs[17]["review_citation"]
    assert review_refs[31]["pages"] == "25-3632"
    assert review_refs[59]["journal"] == "J J Tissue Eng Regen Med"
    assert review_refs[2]["pages"] == "101465"


# --- scripts/build_studies.py ----------------------------------------------------------


def _build_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "build_studies.py"
    spec = importlib.util.spec_from_file_location("build_studies", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_studies_merges_overrides(review_refs: dict[int, dict]) -> None:
    records = {r["ref"]: r for r in _build_module().build(REVIEW)}
    assert sorted(records) == list(range(1, 81))
    r17 = records[17]
    assert r17["journal"] == "Eur J Heart Fail"
    assert "*ur J Heart Fail.*" in r17["review_citation"]
    assert [f["code"] for f in r17["flags"]] == ["reference_garbled"]
    assert records[31]["pages"] == "25-36"
    assert records[80]["doi"] == "10.1172/jci.insight.99263"


def test_build_studies_fills_a_missing_reference(review_refs: dict[int, dict], tmp_path) -> None:
    lines = REVIEW.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.startswith("80. "))
    review = tmp_path / "review.txt"
    review.write_text(text, encoding="utf-8")
    r80 = _build_module().build(review)[-1]
    Study.model_validate(r80)
    assert r80["ref"] == 80 and "review_citation" not in r80
    assert [f["code"] for f in r80["flags"]] == ["missing_reference"]
    assert r80["authors"][1] == "Kamerkar S" and r80["pages"] == "e99263"
