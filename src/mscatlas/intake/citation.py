"""A bibliographic record as every source hands it over, and the normal forms used to compare.

Every reader and client of :mod:`mscatlas.intake` yields :class:`Citation` objects, so that
the store, deduplication and screening never see a source's own format. Problems carry file,
record, line (where the format has lines) and field, as the knowledge base's readers do.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from mscatlas.kb.records import RecordError

__all__ = [
    "Citation",
    "IntakeError",
    "IntakeProblem",
    "author_key",
    "has_initials",
    "normalize_doi",
    "normalize_pmcid",
    "normalize_pmid",
    "normalize_title",
]

# Publication types that mark a retracted paper (PubMed, Europe PMC) or a notice about one.
RETRACTED_TYPES = frozenset({"retracted publication", "expression of concern"})
NOTICE_TYPES = frozenset({"retraction of publication", "published erratum"})


# A problem of an input: file, record, line (where the format has lines), field and message,
# exactly as the knowledge base's record readers report them.
IntakeProblem = RecordError


class IntakeError(ValueError):
    """An input that cannot be imported; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[IntakeProblem]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else None
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}" if first else "invalid input")


@dataclass
class Citation:
    """A paper as a source describes it. Identifiers are normalised on creation."""

    title: str
    abstract: str | None = None
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    journal: str | None = None
    pmid: str | None = None
    pmcid: str | None = None
    doi: str | None = None
    publication_types: list[str] = field(default_factory=list)
    retracted: bool = False
    origin: str = ""  # e.g. "export.nbib record 3"
    line: int | None = None

    def __post_init__(self) -> None:
        self.title = _clean(self.title)
        self.abstract = _clean(self.abstract) or None if self.abstract else None
        self.journal = _clean(self.journal) or None if self.journal else None
        self.authors = [a for a in (_clean(x) for x in self.authors) if a]
        self.pmid = normalize_pmid(self.pmid)
        self.pmcid = normalize_pmcid(self.pmcid)
        self.doi = normalize_doi(self.doi)
        types = {t.casefold() for t in self.publication_types}
        self.retracted = self.retracted or bool(types & RETRACTED_TYPES)

    @property
    def identifiers(self) -> dict[str, str]:
        """DOI, PMID, PMCID (in the order deduplication trusts them), those the record has."""
        return {k: v for k, v in (("doi", self.doi), ("pmid", self.pmid), ("pmcid", self.pmcid)) if v}

    @property
    def first_author(self) -> str | None:
        return self.authors[0] if self.authors else None

    @property
    def is_notice(self) -> bool:
        """A retraction notice or erratum (not a paper with findings of its own)."""
        return bool({t.casefold() for t in self.publication_types} & NOTICE_TYPES)

    def label(self) -> str:
        ident = (self.pmid and f"PMID {self.pmid}") or self.doi or self.pmcid or self.title[:40]
        return f"{self.origin} ({ident})" if self.origin else ident


def _clean(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def normalize_doi(value: str | None) -> str | None:
    """``10.x/y`` in lower case, without a resolver prefix or a ``doi:`` label; None if not a DOI."""
    if not value:
        return None
    text = value.strip()
    text = re.sub(r"^(?:https?://)?(?:dx\.)?doi\.org/", "", text, flags=re.I)
    text = re.sub(r"^doi:\s*", "", text, flags=re.I)
    text = re.sub(r"\s*\[doi\]$", "", text, flags=re.I)
    match = re.search(r"10\.\d{4,9}/\S+", text)
    return match.group(0).rstrip(".,;").lower() if match else None


def normalize_pmid(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    match = re.fullmatch(r"(?:pmid:?\s*)?0*(\d{1,9})", text, flags=re.I)
    return match.group(1) if match else None


def normalize_pmcid(value: str | None) -> str | None:
    if not value:
        return None
    match = re.fullmatch(r"(?:pmc)?\s*(\d{1,9})", value.strip(), flags=re.I)
    return f"PMC{match.group(1)}" if match else None


# Letters that Unicode does not decompose into a base letter and an accent.
_LETTERS = str.maketrans(
    {"ø": "o", "ł": "l", "æ": "ae", "œ": "oe", "ß": "ss", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
)


def _fold(text: str) -> str:
    """Case and accents removed: 'Ødegård' and 'Odegard', 'Łukasz' and 'Lukasz' fold alike."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(_LETTERS)


def normalize_title(title: str) -> str:
    """Lower case, accents and punctuation removed, Greek letters spelt out, spaces collapsed."""
    text = _fold(title)
    for greek, name in (("α", "alpha"), ("β", "beta"), ("γ", "gamma"), ("κ", "kappa"), ("δ", "delta")):
        text = text.replace(greek, f" {name} ")
    text = re.sub(r"<[^>]+>", " ", text)  # markup some sources leave in titles
    text = re.sub(r"[^0-9a-z]+", " ", text)
    return " ".join(text.split())


def author_key(author: str | None) -> str:
    """The surname of an author, folded: 'Müller-Hansen F' and 'Muller-Hansen, Finn' -> 'mullerhansen'."""
    if not author:
        return ""
    text = author.strip()
    if "," in text:
        surname = text.split(",")[0]  # "Surname, Given"
    elif has_initials(text):
        surname = text.rsplit(None, 1)[0]  # "Surname AB" (PubMed, MEDLINE AU)
    else:
        surname = text.split()[-1]  # "Given Surname"
    return re.sub(r"[^a-z]", "", _fold(surname))


def has_initials(name: str) -> bool:
    """Whether a name ends in initials: 'Karnoub AE', 'Ødegård Å', 'Wiśniewski Ł.'."""
    parts = name.split()
    last = parts[-1].rstrip(".") if len(parts) > 1 else ""
    return 0 < len(last) <= 3 and last.isalpha() and last.isupper()
