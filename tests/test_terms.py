"""The term resolver: labels and synonyms to enum values, cancer types through OncoTree tissues."""

from __future__ import annotations

import re

import pytest

from mscatlas.kb import enums
from mscatlas.kb.enums import CancerClass, Delivery, MscSource, Phase
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.kb.terms import UnknownTermError, cancer_query, label, resolve, resolve_value
from mscatlas.kb.vocab import load_vocabulary


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("bone marrow", "bone_marrow"),
        ("bonemarrow", "bone_marrow"),
        ("Bone-Marrow", "bone_marrow"),
        ("BM-MSC", "bone_marrow"),
        ("UC-MSC", "umbilical_cord"),
        ("hUCMSC", "umbilical_cord"),
        ("AD-MSC", "adipose_tissue"),
        ("WJ-MSC", "wharton_jelly"),
        ("Wharton's jelly", "wharton_jelly"),
        ("adipose_tissue", "adipose_tissue"),
    ],
)
def test_msc_source_names_people_type(typed: str, value: str) -> None:
    assert resolve_value(MscSource, typed) == value
    assert resolve(MscSource, typed) is MscSource(value)


def test_other_enums_take_labels_and_synonyms() -> None:
    assert resolve(Delivery, "conditioned medium") is Delivery.conditioned_medium
    assert resolve(Delivery, "exosomes") is Delivery.extracellular_vesicles
    assert resolve(CancerClass, "haematological") is CancerClass.hematological
    assert resolve(Phase, "phase II") is Phase.PHASE2


def test_every_enum_value_resolves_to_itself_and_from_its_label() -> None:
    for name in dir(enums):
        cls = getattr(enums, name)
        if isinstance(cls, type) and issubclass(cls, enums.StrEnum) and cls is not enums.StrEnum:
            for member in cls:
                assert resolve(cls, member.value) is member
                assert resolve(cls, label(member)) is member, (cls.__name__, member)


def test_unknown_term_suggests_the_nearest_value() -> None:
    with pytest.raises(UnknownTermError) as err:
        resolve_value(MscSource, "bonemarow")
    assert err.value.suggestions[0] == "bone_marrow"
    assert "did you mean 'bone_marrow'" in str(err.value)
    assert "MSC source" in str(err.value)
    with pytest.raises(UnknownTermError) as err:
        resolve_value(MscSource, "qqqqqq")
    assert err.value.suggestions == []


def test_cancer_tissue_finds_types_through_oncotree() -> None:
    q = cancer_query("pancreas")
    assert q.types == {"pancreatic adenocarcinoma", "pancreatic ductal adenocarcinoma"}
    assert dict(q.how)["pancreatic adenocarcinoma"] == "OncoTree tissue Pancreas"
    # NCIt code path: the rodent mammary model has no OncoTree node, only the breast NCIt code.
    assert "mammary carcinoma (rodent model)" in cancer_query("breast").types
    assert cancer_query("brain").types == {"glioblastoma", "glioma", "malignant glioma"}


def test_cancer_label_words_and_classes_and_cell_lines() -> None:
    leuk = cancer_query("leukemia").types
    assert "chronic myeloid leukemia" in leuk and "B-cell acute lymphoblastic leukemia" in leuk
    assert not any("lymphoma" in t for t in leuk)
    assert "lung adenocarcinoma" in cancer_query("lung carcinoma").types
    assert cancer_query("blood cancer").cancer_class == "hematological"
    line = cancer_query("k562")
    assert line.cell_line == "K-562" and line.matches("chronic myeloid leukemia", "hematological", ["K-562"])
    assert not line.matches("chronic myeloid leukemia", "hematological", ["KU812"])
    assert cancer_query("zzzz").empty


def test_pancreas_finds_the_shipped_pancreatic_items() -> None:
    items = shipped_dataset().evidence
    q = cancer_query("pancreas")
    found = {e.id for e in items if q.matches(e.cancer_type, e.cancer_class.value, e.cell_lines)}
    expected = {e.id for e in items if e.cancer_type.startswith("pancreatic")}
    assert expected and found == expected


def test_every_tissue_code_names_a_vocabulary_type() -> None:
    # cancer_query reads the tissue table; a code naming no type raises ValueError there.
    types = set(load_vocabulary().cancer_types.entries)
    for tissue in ("lung", "myeloid", "lymphoid", "uterus", "skin", "bone"):
        assert cancer_query(tissue).types and cancer_query(tissue).types <= types


def test_label_reads_as_people_read() -> None:
    assert label(MscSource.wharton_jelly) == "Wharton's jelly"
    assert label(Delivery.direct_coculture) == "direct coculture"
    assert label(Phase.EARLY_PHASE1) == "early phase 1"
    assert label(True) == "yes" and label(None) == "not stated"
    assert label("SKW6.4") == "SKW6.4" and label("BJAB") == "BJAB"


def test_label_reads_a_plain_string_as_a_value_of_the_enum_named() -> None:
    assert label("wharton_jelly", MscSource) == "Wharton's jelly"
    assert label("PHASE1", Phase) == "phase 1"
    assert label("any", MscSource) == "any"  # not a value of the enum: shown as text
    assert label("wharton_jelly") == "wharton jelly"  # no kind, no enum label


# Files that turn underscores into spaces by hand, legitimately: kb/terms.py is label() itself
# and its synonym matching; intake/suggest.py builds synonyms (not text for people).
_AD_HOC_ALLOWED = {"kb/terms.py", "intake/suggest.py"}


_AD_HOC = re.compile(r"""replace\((["'])_\1, *(["']) \2\)""")


def test_no_new_ad_hoc_underscore_labels() -> None:
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "src" / "mscatlas"
    found = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.suffix in {".py", ".j2"} and _AD_HOC.search(path.read_text(encoding="utf-8"))
    }
    assert found <= _AD_HOC_ALLOWED, f"use mscatlas.kb.terms.label() in {sorted(found - _AD_HOC_ALLOWED)}"
    assert "report/templates/report.html.j2" not in found and "cli/trials_list.py" not in found
