"""Parse the review's reference list into records shaped like :class:`~mscatlas.kb.models.Study`.

The review's references are printed in a Vancouver-like style::

    Authors, et al. Title. *Journal.* Year[ Mon];Volume(Issue):Pages.

with the journal abbreviation in asterisks (the text export's italics). The text file of the
review has damage that a generic citation parser would not expect and would "repair" without
telling anyone:

* references 1-23 lost their numbers in the export and appear as a bulleted list (``- ...``),
  in order; references 24 onwards are numbered (``24. ...``);
* an entry can be split across a page break, its second half starting a new bullet
  (reference 54 continues on a line ``- bone marrow-derived ...``);
* some entries carry typos (journal ``*ur J Heart Fail.*``, pages ``25-3632``, journal
  ``J J Tissue Eng Regen Med``).

Hand-written, because no Python library parses this citation style from plain text: Python
bibliography libraries read structured formats (BibTeX, RIS, CSL-JSON), and the general
reference-string parsers (GROBID, a Java service; anystyle, a Ruby tool) are statistical
models outside this package's stack whose output would still need checking entry by entry.
The damage above must also be handled explicitly and reproducibly, which a small set of
regular expressions over a known layout does. The parser keeps every field
*as printed*: it never corrects a typo. Corrections, identifiers (DOI, PMID) and flags are
curated separately (``kb/data/study_overrides.yaml``) and merged by ``scripts/build_studies.py``;
``review_citation`` always holds the entry exactly as the review prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RawEntry",
    "ReferenceParseError",
    "find_references_section",
    "parse_citation",
    "parse_reference_list",
    "split_authors",
    "split_entries",
]


class ReferenceParseError(ValueError):
    """The reference list (or one entry of it) cannot be read unambiguously."""


@dataclass(frozen=True)
class RawEntry:
    """One reference entry as found in the text: its number and its text as printed.

    ``numbered`` is False for entries whose number was lost (bulleted entries), whose number
    was inferred from their position.
    """

    ref: int
    text: str
    numbered: bool


# A heading line "References" (alone on its line); the list runs from there to the end.
_HEADING = re.compile(r"^\s*References\s*$", re.MULTILINE)
_BULLET = re.compile(r"^[-•]\s+(?P<text>.*\S)\s*$")
_NUMBERED = re.compile(r"^(?P<num>\d{1,3})\.\s+(?P<text>.*\S)\s*$")
# "*Journal.* 2019 Jul;38(4):101465." -- journal in asterisks, then the bibliographic tail.
_JOURNAL_TAIL = re.compile(r"\*(?P<journal>[^*]+)\*\s*(?P<tail>[^*]*)$")
_TAIL = re.compile(
    r"^(?P<year>\d{4})"
    r"(?:\s+(?P<month>[A-Z][a-z]{2,8}))?"  # optional month: "1970 Oct"
    r"(?:;(?P<volume>[^():;]+?)(?:\((?P<issue>[^)]+)\))?)?"  # ";3(4)" or ";261" or absent
    r"(?::(?P<pages>[^;]+?))?"  # ":393-403", ":e6278", ":1-12"
    r"\.?$"
)
_ET_AL = re.compile(r",?\s*et al\.?$")


def find_references_section(text: str) -> str:
    """Return the text after the last ``References`` heading line.

    Raises :class:`ReferenceParseError` when the text has no such heading.
    """
    matches = list(_HEADING.finditer(text))
    if not matches:
        raise ReferenceParseError("no 'References' heading line found in the text")
    return text[matches[-1].end() :]


def _is_complete(entry_text: str) -> bool:
    """True when an entry reaches its bibliographic tail (journal in asterisks, then a year)."""
    m = _JOURNAL_TAIL.search(entry_text)
    return bool(m and re.match(r"\d{4}", m.group("tail")))


def split_entries(section: str) -> list[RawEntry]:
    """Split a references section into entries, numbering the bulleted ones by position.

    Rules, in order, for each non-empty line:

    * ``N. text`` starts numbered entry N;
    * ``- text`` starts a new entry, unless the previous entry is incomplete (no journal and
      year yet): then it is the rest of that entry, split by a page break, and is joined to it
      with one space;
    * any other line continues the previous entry.

    Bulleted entries before the first numbered one get numbers 1, 2, ...; the first numbered
    entry must follow on from them, and numbered entries must run consecutively.
    """
    entries: list[list[Any]] = []  # [ref or None, text, numbered]
    for raw_line in section.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        numbered = _NUMBERED.match(line)
        bullet = _BULLET.match(line)
        if numbered:
            entries.append([int(numbered.group("num")), numbered.group("text"), True])
        elif bullet and (not entries or _is_complete(entries[-1][1])):
            entries.append([None, bullet.group("text"), False])
        elif entries:
            piece = bullet.group("text") if bullet else line
            entries[-1][1] = f"{entries[-1][1]} {piece}"
        else:
            raise ReferenceParseError(f"text before the first reference entry: {line[:60]!r}")

    result: list[RawEntry] = []
    expected = 1
    for ref, entry_text, was_numbered in entries:
        if ref is None:
            if any(e.numbered for e in result):
                # Unreachable with the rules above unless a complete bulleted entry follows
                # numbered ones: its number cannot be inferred safely.
                raise ReferenceParseError(
                    f"unnumbered entry after numbered ones (after ref {expected - 1}): {entry_text[:60]!r}"
                )
            ref = expected
        elif ref != expected:
            raise ReferenceParseError(
                f"reference numbering breaks: expected {expected}, found {ref} ({entry_text[:60]!r})"
            )
        result.append(RawEntry(ref=ref, text=entry_text, numbered=was_numbered))
        expected = ref + 1
    return result


def split_authors(author_text: str) -> tuple[list[str], bool]:
    """Split ``"Li T, Zhang C, et al"`` into ``(["Li T", "Zhang C"], True)``.

    Authors are separated by commas; a final ``et al.`` sets the second value.
    """
    text = author_text.strip().rstrip(".").strip()
    et_al = False
    if _ET_AL.search(text + "."):
        et_al = True
        text = _ET_AL.sub("", text + ".").strip()
    authors = [a.strip() for a in text.split(",") if a.strip()]
    if not authors:
        raise ReferenceParseError(f"no authors in {author_text!r}")
    return authors, et_al


def parse_citation(entry_text: str) -> dict[str, Any]:
    """Parse one entry (without its number) into author, title and bibliographic fields.

    Returns a dict with ``authors``, ``et_al``, ``title``, ``journal``, ``year``, ``volume``,
    ``issue`` and ``pages`` (the last three None when absent), every value as printed except
    that the journal loses its asterisks and final period.
    """
    jm = _JOURNAL_TAIL.search(entry_text)
    if not jm:
        raise ReferenceParseError(f"no journal in asterisks: {entry_text[:80]!r}")
    tail = jm.group("tail").strip()
    tm = _TAIL.match(tail)
    if not tm:
        raise ReferenceParseError(f"unreadable year/volume/pages {tail!r} in {entry_text[:60]!r}")
    head = entry_text[: jm.start()].strip()
    # Authors end at the first ". " (initials carry no periods in this style).
    cut = head.find(". ")
    if cut < 0:
        raise ReferenceParseError(f"cannot separate authors from title: {head[:80]!r}")
    authors, et_al = split_authors(head[: cut + 1])
    title = head[cut + 2 :].strip()
    if title.endswith("."):
        title = title[:-1].rstrip()
    if not title:
        raise ReferenceParseError(f"empty title in {entry_text[:80]!r}")
    journal = jm.group("journal").strip()
    if journal.endswith("."):
        journal = journal[:-1].rstrip()

    def _opt(name: str) -> str | None:
        value = tm.group(name)
        return value.strip() if value and value.strip() else None

    return {
        "authors": authors,
        "et_al": et_al,
        "title": title,
        "journal": journal,
        "year": int(tm.group("year")),
        "volume": _opt("volume"),
        "issue": _opt("issue"),
        "pages": _opt("pages"),
    }


def parse_reference_list(text: str) -> list[dict[str, Any]]:
    """Parse the review's reference list into one dict per entry, in reference order.

    ``text`` is the whole review (or just its references section, headed ``References``).
    Each dict has the :class:`~mscatlas.kb.models.Study` fields ``id`` (``ref<N>``), ``ref``,
    ``authors``, ``et_al``, ``title``, ``journal``, ``year``, ``volume``, ``issue``, ``pages``
    and ``review_citation`` (the entry as printed, without its number or bullet; an entry split
    by a page break is joined with one space). Values are as printed; nothing is corrected.
    """
    section = find_references_section(text)
    records: list[dict[str, Any]] = []
    for entry in split_entries(section):
        try:
            fields = parse_citation(entry.text)
        except ReferenceParseError as exc:
            raise ReferenceParseError(f"reference {entry.ref}: {exc}") from exc
        records.append({"id": f"ref{entry.ref}", "ref": entry.ref, **fields, "review_citation": entry.text})
    return records
