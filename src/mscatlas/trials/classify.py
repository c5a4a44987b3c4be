"""Transparent rules that classify an MSC trial from its registry wording.

Purpose, MSC tissue source, product and engineering are not registry fields. The rules below
set them from the trial's titles, interventions and conditions so that a synced search of
hundreds of records is usable without hand curation. Every rule is a named regular expression;
every decision returns the rules that fired and the text each one matched, so a reader can see
why a trial got its label and a curator can overrule it.

Purpose, first rule family that fires wins:

1. ``transplant_support``: the MSCs accompany a haematopoietic graft (co-infusion,
   co-transplantation, engraftment) or target graft-versus-host disease.
2. ``anti_tumor``: the product carries an anti-cancer payload (any engineering found below)
   or the wording states an anti-tumour intent (oncolytic, tumoricidal, "anti-tumour").
3. ``side_effect_mitigation``: the condition is damage caused by cancer treatment
   (radiation- or chemotherapy-induced injury, or a named late effect of it).
4. ``other``: none of these; native MSCs given in a cancer for another reason (homing,
   immunomodulation, haematopoietic support without a graft).

Anti-tumour intent is checked before side effects because a payload-bearing product is given
against the cancer even when the record also names a side effect among its conditions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mscatlas.kb.enums import EngineeringKind, MscSource, TrialPurpose

__all__ = [
    "Decision",
    "Match",
    "Rule",
    "TrialClassification",
    "TrialText",
    "classify_trial",
]

T = TypeVar("T")


@dataclass(frozen=True)
class TrialText:
    """The wording a classification reads, by part of the record."""

    titles: Sequence[str] = ()
    interventions: Sequence[str] = ()
    conditions: Sequence[str] = ()

    def parts(self) -> Iterable[tuple[str, str]]:
        for part, texts in (
            ("title", self.titles),
            ("intervention", self.interventions),
            ("condition", self.conditions),
        ):
            for text in texts:
                if text:
                    yield part, " ".join(text.split())


@dataclass(frozen=True)
class Match:
    """One rule that fired: its name, where it fired and the words it matched."""

    rule: str
    part: str
    text: str

    def __str__(self) -> str:
        return f"{self.rule} ({self.part}: '{self.text}')"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    parts: frozenset[str] = frozenset({"title", "intervention", "condition"})

    def find(self, text: TrialText) -> list[Match]:
        found = []
        for part, words in text.parts():
            if part in self.parts and (m := self.pattern.search(words)):
                found.append(Match(self.name, part, m.group(0)))
        return found


@dataclass(frozen=True)
class Decision(Generic[T]):
    """A classified value with the evidence for it (empty evidence: the default was taken)."""

    value: T
    evidence: tuple[Match, ...] = ()

    @property
    def defaulted(self) -> bool:
        return not self.evidence


@dataclass(frozen=True)
class TrialClassification:
    purpose: Decision[TrialPurpose]
    msc_source: Decision[list[MscSource]]
    engineering: Decision[list[EngineeringKind]]
    product: Decision[str]

    def explain(self) -> str:
        """One sentence per field, naming the rules and matched words (for a record's notes)."""
        lines = []
        for name, decision in (
            ("purpose", self.purpose),
            ("MSC source", self.msc_source),
            ("engineering", self.engineering),
            ("product", self.product),
        ):
            value = decision.value
            shown = (
                ", ".join(v.value if hasattr(v, "value") else str(v) for v in value) or "none"
                if isinstance(value, list)
                else getattr(value, "value", value)
            )
            why = "; ".join(str(m) for m in decision.evidence) or "no rule matched, default"
            lines.append(f"{name} {shown} by rule: {why}.")
        return "Classified by mscatlas.trials.classify: " + " ".join(lines)

    def to_dict(self) -> dict[str, object]:
        def ev(d: Decision[object]) -> list[dict[str, str]]:
            return [{"rule": m.rule, "part": m.part, "text": m.text} for m in d.evidence]

        return {
            "purpose": {"value": self.purpose.value.value, "evidence": ev(self.purpose)},
            "msc_source": {
                "value": [s.value for s in self.msc_source.value],
                "evidence": ev(self.msc_source),
            },
            "engineering": {
                "value": [e.value for e in self.engineering.value],
                "evidence": ev(self.engineering),
            },
            "product": {"value": self.product.value, "evidence": ev(self.product)},
        }


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_MSC = r"(?:mesenchymal|MSCs?\b|stromal|stem cells?|progenitor)"
# Up to three words between a tissue and the cell words, none of them a conjunction or
# preposition: "bone marrow human mesenchymal" names the source, "cord blood and MSCs" does not.
_GAP = r"(?:(?!(?:and|or|with|plus|versus|vs|after|before|transplant\w*)\b)[\w/'’-]+\s+){0,3}?"

# ---------------------------------------------------------------- MSC tissue source
SOURCE_RULES: list[tuple[MscSource, Rule]] = [
    (
        MscSource.umbilical_cord_blood,
        Rule("source.cord_blood_msc", _rx(rf"\bcord[- ]blood[- ](?:derived\s+)?{_MSC}")),
    ),
    (
        MscSource.umbilical_cord,
        Rule(
            "source.umbilical_cord",
            _rx(r"\bumbilical[- ]cord(?![- ]blood)|\bh?UC-?MSCs?\b|\bwharton'?s?[’']?s? jelly"),
        ),
    ),
    (MscSource.placenta, Rule("source.placenta", _rx(r"\bplacenta(?:l)?\b"))),
    (
        MscSource.bone_marrow,
        Rule(
            "source.bone_marrow",
            _rx(rf"\bbone[- ]marrow[- ]{_GAP}(?:derived|{_MSC})|\bmarrow[- ]derived|\bBM-?MSCs?\b"),
        ),
    ),
    (
        MscSource.adipose_tissue,
        Rule("source.adipose", _rx(r"\badipose|\bfat[- ]derived|\bAD-?MSCs?\b|\blipoaspirate")),
    ),
    (MscSource.amniotic_membrane, Rule("source.amniotic_membrane", _rx(r"\bamnio(?:tic)?[- ]membrane"))),
    (MscSource.amniotic_fluid, Rule("source.amniotic_fluid", _rx(r"\bamniotic[- ]fluid"))),
    (MscSource.dental_pulp, Rule("source.dental_pulp", _rx(r"\bdental[- ]pulp|\btooth"))),
    (MscSource.palatine_tonsil, Rule("source.tonsil", _rx(r"\btonsil"))),
    (
        MscSource.peripheral_blood,
        Rule("source.peripheral_blood", _rx(rf"\bperipheral[- ]blood[- ]{_GAP}(?:derived\s+)?{_MSC}")),
    ),
]

# ---------------------------------------------------------------- engineering
VIRUS_RULE = Rule(
    "engineering.virus",
    _rx(
        r"\boncolytic\b|\b(?:adeno|measles|herpes|vaccinia|reo|myxoma|polio)[- ]?virus|"
        r"\bvirus[- ](?:loaded|infected)|\b(?:infected|loaded) with (?:an? )?(?:\w+ ){0,2}virus"
    ),
)
GENE_WORDING_RULE = Rule(
    "engineering.gene_wording",
    _rx(r"\bgenetically[- ](?:modified|engineered)|\bgene[- ]modified|\bengineered\b"),
)
GENE_CELL_RULE = Rule(
    "engineering.gene_transfer",
    _rx(
        r"\btransduc\w*|\btransfect\w*|\blentivir\w*|\bretrovir\w*|\bplasmid|\btransgen\w*|"
        r"\b(?:engineered|modified) to (?:secrete|express|produce)|"
        rf"{_MSC}\s+(?:\w+\s+)?(?:expressing|secreting|containing|overexpressing)\s+\w+"
    ),
)
RNA_RULE = Rule(
    "engineering.rna_payload",
    _rx(r"\bsi-?RNA|\bsh-?RNA|\bmi(?:cro)?-?RNA|\bmiR-\d+|\bantisense|\boligonucleotide"),
)

# ---------------------------------------------------------------- product
VESICLE_RULE = Rule(
    "product.vesicles",
    _rx(r"\bexosom\w*|\bextracellular vesicles?|\bmicrovesicles?|\bEVs\b"),
)
# The whole secretome (conditioned medium, supernatant, lysate-free cell-free media) is a product of
# its own: it carries the soluble factors as well as the vesicles.
SECRETOME_RULE = Rule(
    "product.secretome",
    _rx(r"\bsecretome|\bconditioned (?:culture )?medi(?:um|a)\b|\bsupernatants?\b"),
)
WITH_GRAFT_RULE = Rule(
    "product.with_graft",
    _rx(r"\bco-?infus\w*|\bco-?transplant\w*|\bco-?administ\w* with (?:\w+ ){0,3}(?:cord blood|graft|HSC)"),
)

# ---------------------------------------------------------------- purpose
TRANSPLANT_RULES = [
    Rule("purpose.gvhd", _rx(r"\bgraft[- ]versus[- ]host|\bGVHD\b|\baGVHD\b|\bcGVHD\b")),
    WITH_GRAFT_RULE,
    Rule("purpose.engraftment", _rx(r"\bengraft\w*|\bgraft failure|\bpoor graft function")),
    Rule(
        "purpose.hsc_transplant",
        _rx(
            r"\b(?:ha?ematopoietic|hematopoetic|blood)[- ](?:stem[- ]cell[- ]|progenitor[- ]cell[- ])?"
            r"(?:transplant\w*|graft)|\bcord[- ]blood[- ]transplant\w*|\bHSCT\b|"
            r"\bbone[- ]marrow[- ]transplant\w*"
        ),
    ),
]
ANTI_TUMOR_RULE = Rule(
    "purpose.anti_tumor_wording",
    _rx(r"\banti-?tumou?r\w*|\btumou?ricidal|\bcytotoxic to|\btumou?r[- ]targeted therapy|\boncolytic"),
)
SIDE_EFFECT_RULES = [
    Rule(
        "purpose.treatment_induced",
        _rx(
            r"\b(?:radiation|radiotherapy|irradiation|radio|chemotherapy|chemo|cisplatin|anthracyclines?|"
            r"doxorubicin|therapy|treatment)[- ](?:induced|related|associated)\b|"
            r"\b(?:induced by|due to|after|following) (?:\w+ ){0,2}(?:radiation|radiotherapy|"
            r"chemotherapy|cisplatin|anthracyclines?|irradiation)"
        ),
    ),
    Rule(
        "purpose.late_effect",
        _rx(
            r"\bxerostomia|\bhyposalivation|\bmucositis|\bcardiotoxicity|\bosteoradionecrosis|"
            r"\bradiation (?:injury|damage|proctitis|enteritis|cystitis|fibrosis)|\bradionecrosis|"
            r"\bha?emorrhagic cystitis"
        ),
        frozenset({"condition", "title"}),
    ),
]


def _first(rules: Iterable[Rule], text: TrialText) -> list[Match]:
    return [m for rule in rules for m in rule.find(text)]


def classify_engineering(text: TrialText) -> Decision[list[EngineeringKind]]:
    """Payloads the MSC product carries.

    A loaded virus is ``virus_loaded``. Generic "genetically modified/engineered" wording
    counts as gene modification of the cells only when no virus is named, since oncolytic
    viruses are themselves engineered and records describe them in those words; with a
    virus, gene modification needs a cell-specific term (transduced, transfected, lentiviral,
    a plasmid, or cells expressing a named product).
    """
    kinds: list[EngineeringKind] = []
    evidence: list[Match] = []
    virus = VIRUS_RULE.find(text)
    if virus:
        kinds.append(EngineeringKind.virus_loaded)
        evidence += virus
    gene = GENE_CELL_RULE.find(text) + ([] if virus else GENE_WORDING_RULE.find(text))
    rna = RNA_RULE.find(text)
    if gene:
        kinds.append(EngineeringKind.gene_modified)
        evidence += gene
    if rna:
        kinds.append(EngineeringKind.sirna_loaded)
        evidence += rna
    order = list(EngineeringKind)
    return Decision(sorted(kinds, key=order.index), tuple(evidence))


def classify_source(text: TrialText) -> Decision[list[MscSource]]:
    """Tissue sources named next to the cells; ``unspecified`` when none is named."""
    sources: list[MscSource] = []
    evidence: list[Match] = []
    for source, rule in SOURCE_RULES:
        found = rule.find(text)
        if found:
            sources.append(source)
            evidence += found
    if not sources:
        return Decision([MscSource.unspecified])
    return Decision(sources, tuple(evidence))


def classify_product(text: TrialText) -> Decision[str]:
    if found := SECRETOME_RULE.find(text):
        return Decision("conditioned_medium", tuple(found))
    if found := VESICLE_RULE.find(text):
        return Decision("extracellular_vesicles", tuple(found))
    if found := WITH_GRAFT_RULE.find(text):
        return Decision("cells_with_hsc", tuple(found))
    return Decision("cells")


def classify_purpose(text: TrialText, engineering: Decision[list[EngineeringKind]]) -> Decision[TrialPurpose]:
    if found := _first(TRANSPLANT_RULES, text):
        return Decision(TrialPurpose.transplant_support, tuple(found))
    anti = ANTI_TUMOR_RULE.find(text)
    if engineering.value or anti:
        payload = [Match(f"purpose.payload<-{m.rule}", m.part, m.text) for m in engineering.evidence]
        return Decision(TrialPurpose.anti_tumor, tuple(payload + anti))
    if found := _first(SIDE_EFFECT_RULES, text):
        return Decision(TrialPurpose.side_effect_mitigation, tuple(found))
    return Decision(TrialPurpose.other)


def classify_trial(text: TrialText) -> TrialClassification:
    """Purpose, MSC source, engineering and product of a trial, each with its evidence."""
    engineering = classify_engineering(text)
    return TrialClassification(
        purpose=classify_purpose(text, engineering),
        msc_source=classify_source(text),
        engineering=engineering,
        product=classify_product(text),
    )
