"""Deduplication: exact identifiers first, then a careful fuzzy title match.

1. Exact, on normalised identifiers, in this order: DOI, PMID, PMCID.
2. Fuzzy, with rapidfuzz, only among records of the same year and the same first-author
   surname (folded: accents, case and punctuation removed): the normalised titles must have a
   similarity ratio of at least ``title_threshold`` (95 by default) *and* every word of four
   letters or more that one title has and the other lacks must have a spelling variant in
   the other (ratio >= 80: tumour/tumor, colour/color). So 'breast cancer' against 'gastric
   cancer', or a title with '(a second report)' added, stays apart however close the ratio; so
   do titles whose numbers differ ('miR-124' and 'miR-125', 'part I' and 'part II').
   Two records with different PMIDs are never merged fuzzily: PubMed gives each paper one PMID.

A record without a year (or without an author) is compared with the records that lack it
too (web pages returned by a search often have neither), with the same title test, and with
any record whose normalised title is identical (six words or more) where the year and first
author, when both sides have them, agree.

Blocking by (year, first author) keeps matching near-linear: 10^5 records compare each title
with the handful in its block, not with every other title.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz, process

from mscatlas.intake.citation import Citation, author_key, normalize_title

__all__ = ["DedupIndex", "Match", "MatchReason"]

MatchReason = Literal["doi", "pmid", "pmcid", "title"]
MIN_WORD = 4
VARIANT_RATIO = 80.0
MIN_TITLE_WORDS = 6  # a title this long, identical, names one paper
ROMAN = frozenset({"i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x"})


@dataclass(frozen=True)
class Match:
    """A record is a duplicate of ``target`` (a candidate or study id) for ``reason``."""

    target: str
    reason: MatchReason
    score: float | None
    detail: str


@dataclass(frozen=True)
class _Entry:
    target: str
    title_key: str
    pmid: str | None


class DedupIndex:
    """Known records (candidates and studies) by identifier and by (year, first author) block."""

    def __init__(self, title_threshold: float = 95.0) -> None:
        if not 50 <= title_threshold <= 100:
            raise ValueError("title_threshold is a similarity between 50 and 100")
        self.title_threshold = title_threshold
        self._ids: dict[str, dict[str, str]] = {"doi": {}, "pmid": {}, "pmcid": {}}
        self._blocks: dict[tuple[int | None, str], list[_Entry]] = defaultdict(list)
        self._titles: dict[str, list[tuple[str, int | None, str, str | None]]] = defaultdict(list)

    def __len__(self) -> int:
        return sum(len(b) for b in self._blocks.values())

    def add(self, target: str, record: Citation) -> None:
        """Know ``record`` as ``target`` (a candidate or study id)."""
        for kind, value in record.identifiers.items():
            self._ids[kind].setdefault(value, target)
        key = (record.year, author_key(record.first_author))
        title_key = normalize_title(record.title)
        self._blocks[key].append(_Entry(target, title_key, record.pmid))
        if len(title_key.split()) >= MIN_TITLE_WORDS:
            self._titles[title_key].append((target, record.year, key[1], record.pmid))

    def match(self, record: Citation) -> Match | None:
        """The known record that ``record`` duplicates, or None."""
        for kind, value in record.identifiers.items():  # doi, then pmid, then pmcid
            if value in self._ids[kind]:
                return Match(self._ids[kind][value], kind, None, f"same {kind.upper()} {value}")  # type: ignore[arg-type]
        year, pmid, title, first_author = record.year, record.pmid, record.title, record.first_author
        key = author_key(first_author)
        title_key = normalize_title(title)
        same = self._same_title(title_key, year, key, pmid)
        if same is not None:
            return same
        block = self._blocks.get((year, key))
        if not block:
            return None
        choices = [e.title_key for e in block]
        for _, score, index in process.extract(
            title_key, choices, scorer=fuzz.ratio, score_cutoff=self.title_threshold, limit=5
        ):
            entry = block[index]
            if pmid and entry.pmid and pmid != entry.pmid:
                continue
            if not _same_words(title_key, entry.title_key):
                continue
            return Match(
                entry.target,
                "title",
                round(float(score), 1),
                f"title similarity {score:.1f}, year {year or '(none)'}, first author '{key or '(none)'}'",
            )
        return None

    def _same_title(self, title_key: str, year: int | None, author: str, pmid: str | None) -> Match | None:
        """A known record with the very same normalised title, where year and first author do not
        contradict it (either side may lack them: a web page listing often has neither)."""
        for target, other_year, other_author, other_pmid in self._titles.get(title_key, []):
            if pmid and other_pmid and pmid != other_pmid:
                continue
            if year is not None and other_year is not None and year != other_year:
                continue
            if author and other_author and author != other_author:
                continue
            if year == other_year and author == other_author:
                continue  # the block comparison decides (it also checks PMIDs)
            return Match(target, "title", 100.0, "same title; year or first author missing on one side")
        return None


def _marks(title: str) -> set[str]:
    return {w for w in title.split() if w in ROMAN or any(ch.isdigit() for ch in w)}


def _same_words(a: str, b: str) -> bool:
    """Whether the titles have the same numbers (miR-124, part II, 2019) and every longer word
    that one has and the other lacks is a spelling variant."""
    if _marks(a) != _marks(b):
        return False
    words_a = {w for w in a.split() if len(w) >= MIN_WORD}
    words_b = {w for w in b.split() if len(w) >= MIN_WORD}
    # A differing word may have its variant among all the other title's words ('tumour tumor'
    # against 'tumor tumor'), not only among the words the other title has and this one lacks.
    return _all_have_variant(words_a - words_b, words_b) and _all_have_variant(words_b - words_a, words_a)


def _all_have_variant(words: Iterable[str], others: set[str]) -> bool:
    return all(any(fuzz.ratio(w, o) >= VARIANT_RATIO for o in others) for w in words)
