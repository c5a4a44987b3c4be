"""Extraction assistant: suggested evidence-item fields from a title and an abstract.

Transparent rules, no trained model: the controlled vocabularies (tissue sources, cancer types
and cell lines, with their synonyms) are matched as whole words, keyword lists stand for
species, engineering, delivery, setting, endpoint and direction, and dose wordings are handed
to :func:`mscatlas.kb.dose.parse_dose`. Each field comes with a confidence in [0, 1]: the share
of the field's mentions that back the suggested value, discounted when there are few of them
(``share * (1 - 0.5 ** mentions)``). Suggestions pre-fill the curation form; they are never
stored as evidence on their own.

:func:`evaluate` measures per-field precision and recall against curated items; run
``python -m mscatlas.intake.suggest`` for the figures on the shipped data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mscatlas.kb.dose import DoseParseError, parse_dose
from mscatlas.kb.models import EvidenceItem, Study
from mscatlas.kb.vocab import Terms, load_vocabulary

__all__ = ["FIELDS", "Suggestion", "evaluate", "evaluation_texts", "skeleton_yaml", "suggest"]

FIELDS = (
    "msc_source",
    "msc_species",
    "engineering",
    "delivery",
    "setting",
    "cancer_type",
    "cancer_class",
    "cell_lines",
    "endpoint",
    "direction",
    "dose",
)

MSC_WORD = r"(?:mesenchymal|MSCs?|stromal|stem cells?|[A-Za-z]*-?MSCs?)"
SPECIES = {
    "human": [r"\bhuman\b", r"\bh[A-Z]{1,4}-?MSCs?\b", r"\bhMSCs?\b"],
    "mouse": [r"\bmouse\b", r"\bmurine\b", r"\bmMSCs?\b"],
    "rat": [r"\brat\b", r"\brats\b", r"\brMSCs?\b"],
}
ENGINEERING = {
    "virus_loaded": [
        r"oncolytic",
        r"adenovir",
        r"virus[- ]loaded",
        r"measles virus",
        r"loaded with .{0,20}virus",
    ],
    "gene_modified": [
        r"transfect",
        r"transduc",
        r"genetically (?:modified|engineered)",
        r"engineered to",
        r"overexpress",
        r"expressing (?:TRAIL|IFN|IL-|interferon|interleukin|cytosine deaminase|HSV-TK)",
        r"\bTRAIL-MSCs?\b",
        r"lentivir",
    ],
    "sirna_loaded": [r"\bsiRNA", r"\bshRNA"],
    "drug_loaded": [
        r"paclitaxel",
        r"gemcitabine[- ]loaded",
        r"doxorubicin[- ]loaded",
        r"drug[- ]loaded",
        r"primed with",
    ],
    "cytokine_activation": [r"IFN-?γ[- ]primed", r"licens", r"pre-?stimulated", r"TNF-?α[- ]primed"],
    "hypoxia": [r"hypoxi[ac] precondition", r"hypoxia-precondition"],
    "culture_3d": [r"spheroid", r"\b3D\b", r"three-dimensional"],
}
DELIVERY = {
    "extracellular_vesicles": [r"exosom", r"extracellular vesicle", r"\bEVs?\b", r"microvesicle", r"sEVs?\b"],
    "conditioned_medium": [r"conditioned medi", r"\bCM\b", r"secretome", r"supernatant"],
    "transwell": [r"transwell", r"indirect co-?culture", r"non-?contact co-?culture"],
    "direct_coculture": [r"co-?cultur", r"direct contact", r"cocultur"],
    "co_injection": [
        r"co-?inject",
        r"co-?implant",
        r"mixed with .{0,40}(?:injected|implanted)",
        r"coinjected",
    ],
    "cell_injection": [
        r"intravenous",
        r"tail vein",
        r"intratumou?ral",
        r"systemic(?:ally)? (?:injection|administ)",
        r"injected",
    ],
    "cell_extract": [r"cell (?:extract|lysate)"],
}
SETTING = {
    "in_vivo": [
        r"in vivo",
        r"\bmice\b",
        r"\bmouse model",
        r"xenograft",
        r"\brats\b",
        r"tumou?r volume",
        r"nude",
    ],
    "in_vitro": [r"in vitro", r"cell lines?", r"co-?cultur", r"\bMTT\b", r"CCK-?8", r"colony"],
}
ENDPOINT = {
    "proliferation": [r"proliferat", r"colony formation", r"cell growth", r"growth of .{0,30}cells"],
    "viability": [r"viabilit", r"\bMTT\b", r"CCK-?8", r"cytotox"],
    "apoptosis": [r"apoptos", r"apoptotic"],
    "cell_cycle": [r"cell[- ]cycle", r"G[012]/?[MS]? (?:phase )?arrest"],
    "migration": [r"migrat", r"wound healing"],
    "invasion": [r"invasi", r"invade"],
    "angiogenesis": [r"angiogen", r"vasculari", r"microvessel"],
    "tumor_growth": [
        r"tumou?r growth",
        r"tumou?r volume",
        r"tumou?r weight",
        r"tumou?r size",
        r"xenograft growth",
    ],
    "metastasis": [r"metasta"],
    "drug_resistance": [r"resistan", r"chemosensitiv", r"sensitivity to"],
    "tumor_markers": [r"marker", r"\bEMT\b", r"stemness"],
}
DIRECTION = {
    "inhibits": [
        r"inhibit",
        r"suppress",
        r"reduc",
        r"decreas",
        r"attenuat",
        r"impair",
        r"block",
        r"anti-?tumou?r",
        r"induc\w* (?:\w+ ){0,2}apoptosis",
        r"arrest",
        r"restrain",
        r"delay",
    ],
    "promotes": [
        r"promot",
        r"enhanc",
        r"increas",
        r"stimulat",
        r"accelerat",
        r"facilitat",
        r"support",
        r"favou?r",
    ],
    "no_effect": [
        r"no (?:significant )?effect",
        r"did not (?:affect|alter|change|influence)",
        r"no (?:significant )?difference",
    ],
}
RATIO_CONTEXT = re.compile(r"[^.;]{0,60}\b\d+(?:\.\d+)?\s*:\s*\d+(?:\.\d+)?\b[^.;]{0,40}")


@dataclass(frozen=True)
class Suggestion:
    field: str
    value: Any
    confidence: float
    evidence: list[str] = field(default_factory=list)  # the words that backed it
    alternatives: dict[str, int] = field(default_factory=dict)  # every value seen, with its mentions

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "confidence": self.confidence,
            "evidence": self.evidence,
            "alternatives": self.alternatives,
        }


def _confidence(counts: Counter[str]) -> float:
    if not counts:
        return 0.0
    top = counts.most_common(1)[0][1]
    return round(top / sum(counts.values()) * (1 - 0.5**top), 3)


def _count(text: str, patterns: dict[str, list[str]]) -> tuple[Counter[str], dict[str, list[str]]]:
    counts: Counter[str] = Counter()
    evidence: dict[str, list[str]] = {}
    for value, regexes in patterns.items():
        for regex in regexes:
            for match in re.finditer(regex, text, flags=re.IGNORECASE):
                counts[value] += 1
                evidence.setdefault(value, []).append(match.group(0))
    return counts, evidence


def _best(name: str, counts: Counter[str], evidence: dict[str, list[str]]) -> Suggestion | None:
    if not counts:
        return None
    value = counts.most_common(1)[0][0]
    return Suggestion(
        name, value, _confidence(counts), evidence.get(value, [])[:5], dict(counts.most_common())
    )


@cache
def _vocab_patterns(kind: str) -> list[tuple[re.Pattern[str], str]]:
    """(pattern, canonical) for every name and synonym of a vocabulary, longest first. Short
    aliases (3 characters or fewer, e.g. 'BM', 'AT') must match in the case they are written."""
    vocab = load_vocabulary()
    terms: Terms = getattr(vocab, kind)
    key = "label" if kind == "tissues" else None
    aliases: list[tuple[str, str]] = []
    for canonical, entry in terms.entries.items():
        names = [canonical.replace("_", " "), *entry.get("synonyms", [])]
        if key and entry.get(key):
            names.append(str(entry[key]))
        aliases += [(str(n), canonical) for n in names if str(n).strip()]
    aliases.sort(key=lambda pair: len(pair[0]), reverse=True)
    out = []
    for alias, canonical in aliases:
        flags = 0 if len(alias) <= 3 else re.IGNORECASE
        out.append((re.compile(r"(?<![\w-])" + re.escape(alias) + r"(?![\w-])", flags), canonical))
    return out


def _vocab_counts(text: str, kind: str) -> tuple[Counter[str], dict[str, list[str]]]:
    counts: Counter[str] = Counter()
    evidence: dict[str, list[str]] = {}
    taken: list[tuple[int, int]] = []  # a longer alias wins over the shorter ones inside it
    for pattern, canonical in _vocab_patterns(kind):
        for match in pattern.finditer(text):
            span = match.span()
            if any(s < span[1] and span[0] < e for s, e in taken):
                continue
            taken.append(span)
            counts[canonical] += 1
            evidence.setdefault(canonical, []).append(match.group(0))
    return counts, evidence


def _species(text: str) -> Suggestion | None:
    """The species of the MSCs: species words near an MSC word count three times."""
    counts: Counter[str] = Counter()
    evidence: dict[str, list[str]] = {}
    for species, regexes in SPECIES.items():
        for regex in regexes:
            for match in re.finditer(regex, text, flags=0 if "[A-Z]" in regex else re.IGNORECASE):
                window = text[match.start() : match.end() + 60]
                weight = 3 if re.search(MSC_WORD, window) else 1
                counts[species] += weight
                evidence.setdefault(species, []).append(window.strip()[:60])
    return _best("msc_species", counts, evidence)


def _dose(text: str) -> Suggestion | None:
    for match in RATIO_CONTEXT.finditer(text):
        fragment = match.group(0).strip()
        try:
            dose = parse_dose(fragment)
        except DoseParseError:
            continue
        if not dose.is_empty:
            return Suggestion("dose", dose.describe(), 0.5, [fragment])
    return None


def suggest(title: str, abstract: str | None) -> dict[str, Suggestion]:
    """Suggested fields (those with any backing in the text) for one paper."""
    text = f"{title}. {abstract or ''}"
    out: dict[str, Suggestion] = {}
    counts, evidence = _vocab_counts(text, "tissues")
    counts.pop("unspecified", None)
    if counts:
        values = [v for v, _ in counts.most_common()]
        out["msc_source"] = Suggestion(
            "msc_source", values[:1], _confidence(counts), evidence[values[0]][:5], dict(counts.most_common())
        )
    species = _species(text)
    if species:
        out["msc_species"] = species
    counts, evidence = _count(text, ENGINEERING)
    best = _best("engineering", counts, evidence)
    out["engineering"] = (
        Suggestion("engineering", [best.value], best.confidence, best.evidence, best.alternatives)
        if best
        else Suggestion("engineering", [], 0.5, [], {})  # no modification named: native cells, likely
    )
    for name, patterns in (("delivery", DELIVERY), ("setting", SETTING), ("endpoint", ENDPOINT)):
        best = _best(name, *_count(text, patterns))
        if best:
            out[name] = best
    counts, evidence = _count(text, DIRECTION)
    best = _best("direction", counts, evidence)
    if best:
        out["direction"] = best
    counts, evidence = _vocab_counts(text, "cancer_types")
    best = _best("cancer_type", counts, evidence)
    if best:
        out["cancer_type"] = best
        entry = load_vocabulary().cancer_types.entries[best.value]
        out["cancer_class"] = Suggestion("cancer_class", entry["class"], best.confidence, [best.value])
    counts, evidence = _vocab_counts(text, "cell_lines")
    if counts:
        lines = [v for v, _ in counts.most_common()]
        out["cell_lines"] = Suggestion(
            "cell_lines", lines, round(1 - 0.5 ** sum(counts.values()), 3), [e[0] for e in evidence.values()]
        )
    dose = _dose(text)
    if dose:
        out["dose"] = dose
    return out


def skeleton_yaml(suggestions: dict[str, Suggestion], study: str, item_id: str) -> str:
    """An evidence-item skeleton for the curation form, filled from the suggestions.

    Every suggested value is marked with a comment: the curator checks each against the paper.
    """
    import yaml

    def value(name: str, default: Any) -> Any:
        s = suggestions.get(name)
        return s.value if s is not None and s.value not in (None, []) else default

    setting = value("setting", "in_vitro")
    data = {
        "id": item_id,
        "study": study,
        "msc_species": value("msc_species", "human"),
        "msc_source": value("msc_source", ["unspecified"]),
        "cancer_type": value("cancer_type", "CHECK"),
        "cancer_class": value("cancer_class", "solid"),
        "cell_lines": value("cell_lines", []),
        "delivery": value("delivery", "direct_coculture"),
        "setting": setting,
        "dose": value("dose", ""),
        "endpoint": value("endpoint", "proliferation"),
        "direction": value("direction", "inhibits"),
        "evidence_level": f"preclinical_{setting}",
        "provenance": {
            "summary": "One line in your own words.",
            "primary_source_checked": True,
            "primary_source": "PubMed abstract, PMID ...",
        },
    }
    if not data["dose"]:
        del data["dose"]
    lines = ["# Suggested from the title and abstract: check every field against the paper."]
    for name in FIELDS:
        if name in suggestions:
            lines.append(f"#   {name}: confidence {suggestions[name].confidence:.2f}")
    return "\n".join(lines) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


# ---------------------------------------------------------------- evaluation


def evaluation_texts(
    studies: Iterable[Study], items: Iterable[EvidenceItem]
) -> list[tuple[EvidenceItem, str]]:
    """The curated items whose curators read the abstract, each with the text available for it.

    The shipped data keeps no abstracts. It keeps, for these items, what the curator wrote the
    abstract says (``provenance.primary_source_says``): that and the study's title are the text
    the assistant is measured on (the curator's own one-line summary is left out: it names the
    answers). The figures therefore measure the rules on a curator's paraphrase of the abstract.
    """
    titles = {s.id: s.title for s in studies}
    out = []
    for item in items:
        p = item.provenance
        source = (p.primary_source or "").casefold()
        if "abstract" in source and p.primary_source_says and item.study in titles:
            out.append((item, f"{titles[item.study]}. {p.primary_source_says}"))
    return out


def _truth(item: EvidenceItem, name: str) -> Any:
    if name == "msc_source":
        return {s.value for s in item.msc_source} - {"unspecified"}
    if name == "engineering":
        return {e.kind for e in item.engineering}
    if name == "cell_lines":
        return set(item.cell_lines)
    if name == "dose":
        return item.dose.describe() if not item.dose.is_empty else None
    value = getattr(item, name)
    return value.value if hasattr(value, "value") else value


def evaluate(
    pairs: Sequence[tuple[EvidenceItem, str]], *, min_confidence: float = 0.0
) -> dict[str, dict[str, float | int]]:
    """Per-field precision (right / suggested) and recall (right / curated) over ``pairs``.

    Set fields (sources, engineering kinds, cell lines) are counted per element; a suggestion
    below ``min_confidence`` counts as no suggestion.
    """
    tallies: dict[str, list[int]] = {name: [0, 0, 0] for name in FIELDS}  # right, suggested, curated
    for item, text in pairs:
        found = suggest(text, None)
        for name in FIELDS:
            truth = _truth(item, name)
            s = found.get(name)
            guess = s.value if s is not None and s.confidence >= min_confidence else None
            tally = tallies[name]
            if isinstance(truth, set):
                guessed = set(guess or [])
                tally[0] += len(guessed & truth)
                tally[1] += len(guessed)
                tally[2] += len(truth)
            else:
                tally[0] += int(guess is not None and guess == truth)
                tally[1] += int(guess is not None)
                tally[2] += int(truth is not None)
    return {
        name: {
            "precision": round(right / suggested, 3) if suggested else 0.0,
            "recall": round(right / curated, 3) if curated else 0.0,
            "suggested": suggested,
            "curated": curated,
        }
        for name, (right, suggested, curated) in tallies.items()
    }


def main() -> None:
    """Print the per-field evaluation on the shipped data (``python -m mscatlas.intake.suggest``)."""
    import json

    from mscatlas.kb.shipped import shipped_dataset

    dataset = shipped_dataset()
    pairs = evaluation_texts(dataset.studies, dataset.evidence)
    print(f"{len(pairs)} curated items read from the abstract, {len({i.study for i, _ in pairs})} studies")
    for threshold in (0.0, 0.5):
        print(f"min_confidence {threshold}:")
        for name, figures in evaluate(pairs, min_confidence=threshold).items():
            print(f"  {name:13s} {json.dumps(figures)}")


if __name__ == "__main__":
    main()
