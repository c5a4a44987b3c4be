"""Readers for the files users already have: PubMed XML, MEDLINE (.nbib), RIS and CSV.

Hand-written rather than taken from a library: each format needs only a few dozen lines, and
the errors must name file, record, line and field, which the libraries for RIS and MEDLINE
do not give. XML is read with the standard library (expat refuses entity-expansion attacks
and resolves no external entities); a tree builder notes each element's line.

A record without a title, or without any identifier (PMID, PMCID, DOI), is an error; every
error of a file is reported at once and nothing of it is returned.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from xml.parsers import expat

from mscatlas.intake.citation import (
    Citation,
    IntakeError,
    IntakeProblem,
    has_initials,
    normalize_doi,
    normalize_pmcid,
    normalize_pmid,
)

__all__ = [
    "FORMATS",
    "Format",
    "detect_format",
    "parse_pubmed_xml",
    "read_citations",
    "read_csv",
    "read_medline",
    "read_ris",
]

Format = Literal["pubmed-xml", "medline", "ris", "csv"]
FORMATS: tuple[Format, ...] = ("pubmed-xml", "medline", "ris", "csv")
EXTENSIONS: dict[str, Format] = {
    ".xml": "pubmed-xml",
    ".nbib": "medline",
    ".medline": "medline",
    ".ris": "ris",
    ".csv": "csv",
}


def detect_format(text: str, name: str = "") -> Format | None:
    """The format of a file's text (its content first, then its extension), or None."""
    head = text.lstrip("\ufeff \t\r\n")[:2000]
    if head.startswith("<"):
        return "pubmed-xml"
    if re.search(r"^PMID-\s", head, flags=re.M):
        return "medline"
    if re.search(r"^TY  -", head, flags=re.M):
        return "ris"
    first = head.splitlines()[0] if head else ""
    if "," in first or "\t" in first:
        columns = {c.strip().strip('"').casefold() for c in re.split(r"[,\t]", first)}
        if columns & {"title", "article title"}:
            return "csv"
    return EXTENSIONS.get(Path(name).suffix.lower())


def read_citations(path: str | Path, fmt: Format | None = None) -> tuple[list[Citation], Format]:
    """Every citation of a file (format detected when None); raises IntakeError naming the problems."""
    path = Path(path)
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise IntakeError(
            [IntakeProblem(str(path), None, None, None, f"cannot read the file: {exc}")]
        ) from exc
    except UnicodeDecodeError as exc:
        raise IntakeError(
            [IntakeProblem(str(path), None, None, None, f"not UTF-8 text (byte {exc.start})")]
        ) from exc
    if fmt is None:
        fmt = detect_format(text, name)
        if fmt is None:
            raise IntakeError(
                [
                    IntakeProblem(
                        str(path), None, None, None, f"unknown format; give --format ({', '.join(FORMATS)})"
                    )
                ]
            )
    if fmt not in FORMATS:
        raise IntakeError(
            [
                IntakeProblem(
                    str(path), None, None, None, f"unknown format {fmt!r}; known: {', '.join(FORMATS)}"
                )
            ]
        )
    readers: dict[str, Callable[[str, str], list[Citation]]] = {
        "pubmed-xml": parse_pubmed_xml,
        "medline": read_medline,
        "ris": read_ris,
        "csv": read_csv,
    }
    return readers[fmt](text, str(path)), fmt


def _check(citations: list[Citation], problems: list[IntakeProblem], file: str) -> list[Citation]:
    for c in citations:
        if not c.title:
            problems.append(IntakeProblem(file, c.origin.split(" ", 1)[-1], c.line, "title", "no title"))
        elif not c.identifiers:
            problems.append(
                IntakeProblem(
                    file, c.origin.split(" ", 1)[-1], c.line, "pmid", "no identifier (PMID, PMCID or DOI)"
                )
            )
    if problems:
        raise IntakeError(sorted(problems, key=lambda p: p.line or 0))
    if not citations:
        raise IntakeError([IntakeProblem(file, None, None, None, "no records in the file")])
    return citations


def _year(text: str | None) -> int | None:
    match = re.search(r"\b(1[89]\d\d|20\d\d)\b", text or "")
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------- PubMed XML


def _parse_xml(text: str) -> tuple[ET.Element, dict[int, int]]:
    """The element tree of ``text`` and the line each element starts on (by ``id``).

    expat directly (not ElementTree's parser, which hides the line numbers); external
    entities are never read and expat (>= 2.4) refuses entity-expansion attacks.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    lines: dict[int, int] = {}

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.Parse(text, True)
    return builder.close(), lines


def _text(elem: ET.Element | None) -> str:
    return "".join(elem.itertext()).strip() if elem is not None else ""


def parse_pubmed_xml(text: str, file: str = "<pubmed-xml>") -> list[Citation]:
    """Citations of a PubmedArticleSet (efetch with retmode=xml, or PubMed's 'Save as XML')."""
    try:
        root, lines = _parse_xml(text)
    except expat.ExpatError as exc:
        raise IntakeError([IntakeProblem(file, None, exc.lineno, None, f"invalid XML: {exc}")]) from exc
    if root.tag not in ("PubmedArticleSet", "eFetchResult"):
        raise IntakeError(
            [IntakeProblem(file, None, 1, None, f"not PubMed XML: the root element is <{root.tag}>")]
        )
    error = root.find("ERROR")
    if error is not None:
        raise IntakeError(
            [IntakeProblem(file, None, None, None, f"PubMed answered an error: {_text(error)}")]
        )
    citations: list[Citation] = []
    problems: list[IntakeProblem] = []
    for index, article in enumerate(root.iter("PubmedArticle"), start=1):
        line = lines.get(id(article))
        label = f"record {index}"
        try:
            citations.append(_pubmed_article(article, f"{Path(file).name} {label}", line))
        except ValueError as exc:
            problems.append(IntakeProblem(file, label, line, str(exc.args[1]), str(exc.args[0])))
    return _check(citations, problems, file)


def _pubmed_article(article: ET.Element, origin: str, line: int | None) -> Citation:
    medline = article.find("MedlineCitation")
    if medline is None:
        raise ValueError("no MedlineCitation element", "MedlineCitation")
    art = medline.find("Article")
    if art is None:
        raise ValueError("no Article element", "Article")
    pmid = _text(medline.find("PMID")) or None
    ids = {a.get("IdType", ""): _text(a) for a in article.findall("PubmedData/ArticleIdList/ArticleId")}
    doi = ids.get("doi") or next(
        (_text(e) for e in art.findall("ELocationID") if e.get("EIdType") == "doi"), None
    )
    parts = []
    for node in art.findall("Abstract/AbstractText"):
        label = node.get("Label")
        body = _text(node)
        if body:
            parts.append(f"{label.upper()}: {body}" if label else body)  # structured abstract
    authors = []
    for author in art.findall("AuthorList/Author"):
        if author.get("ValidYN", "Y") == "N":
            continue
        collective = _text(author.find("CollectiveName"))
        last = _text(author.find("LastName"))
        initials = _text(author.find("Initials"))
        name = f"{last} {initials}".strip() if last else collective
        if name:
            authors.append(name)
    pub_date = art.find("Journal/JournalIssue/PubDate")
    year_text = _text(pub_date.find("Year")) if pub_date is not None else ""
    if not year_text and pub_date is not None:
        year_text = _text(pub_date.find("MedlineDate"))
    if not year_text:
        year_text = _text(art.find("ArticleDate/Year"))
    year = _year(year_text)
    if year_text and year is None:
        raise ValueError(f"unreadable year {year_text!r}", "PubDate")
    types = [_text(t) for t in art.findall("PublicationTypeList/PublicationType")]
    retracted_in = any(
        c.get("RefType") == "RetractionIn"
        for c in medline.findall("CommentsCorrectionsList/CommentsCorrections")
    )
    return Citation(
        title=_text(art.find("ArticleTitle")) or _text(art.find("VernacularTitle")),
        abstract=" ".join(parts) or None,
        authors=authors,
        year=year,
        journal=_text(art.find("Journal/Title")) or _text(art.find("Journal/ISOAbbreviation")) or None,
        pmid=pmid,
        pmcid=ids.get("pmc"),
        doi=doi,
        publication_types=types,
        retracted=retracted_in,
        origin=origin,
        line=line,
    )


# ---------------------------------------------------------------- tagged formats (MEDLINE, RIS)


def _tagged_records(
    text: str, tag_re: str, start_tag: str, end_tag: str | None
) -> list[tuple[int, list[tuple[str, str, int]]]]:
    """Records of a tagged format as (first line, [(tag, value, line)]); continuation lines join."""
    records: list[tuple[int, list[tuple[str, str, int]]]] = []
    current: list[tuple[str, str, int]] | None = None
    start = 0
    pattern = re.compile(tag_re)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        match = pattern.match(line)
        if match:
            tag, value = match.group(1).strip(), match.group(2).strip()
            if tag == start_tag or current is None:
                if current:
                    records.append((start, current))
                current, start = [], number
            current.append((tag, value, number))
            if end_tag is not None and tag == end_tag:
                records.append((start, current))
                current = None
        elif line.strip() and current:
            tag, value, at = current[-1]
            current[-1] = (tag, f"{value} {line.strip()}", at)
    if current:
        records.append((start, current))
    return records


def _field(fields: list[tuple[str, str, int]], *tags: str) -> list[str]:
    return [v for t, v, _ in fields if t in tags and v]


def read_medline(text: str, file: str = "<medline>") -> list[Citation]:
    """Citations of a MEDLINE file (PubMed 'Save as PubMed format', .nbib from citation managers)."""
    citations: list[Citation] = []
    problems: list[IntakeProblem] = []
    name = Path(file).name
    for index, (line, fields) in enumerate(
        _tagged_records(text, r"^([A-Z][A-Z0-9 ]{1,3})-\s?(.*)$", "PMID", None), start=1
    ):
        label = f"record {index}"
        ids = _field(fields, "LID", "AID")
        doi = next((i for i in ids if i.endswith("[doi]")), None)
        pmc = next(iter(_field(fields, "PMC")), None)
        dp = next(iter(_field(fields, "DP")), None)
        year = _year(dp)
        if dp and year is None:
            problems.append(IntakeProblem(file, label, line, "DP", f"unreadable date {dp!r}"))
            continue
        types = _field(fields, "PT")
        citations.append(
            Citation(
                title=" ".join(_field(fields, "TI")) or " ".join(_field(fields, "BTI")),
                abstract=" ".join(_field(fields, "AB")) or None,
                authors=_field(fields, "AU") or _field(fields, "FAU"),
                year=year,
                journal=next(iter(_field(fields, "JT", "TA")), None),
                pmid=next(iter(_field(fields, "PMID")), None),
                pmcid=pmc,
                doi=doi,
                publication_types=types,
                retracted=bool(_field(fields, "RIN")),
                origin=f"{name} {label}",
                line=line,
            )
        )
    return _check(citations, problems, file)


def read_ris(text: str, file: str = "<ris>") -> list[Citation]:
    """Citations of a RIS file (Zotero, EndNote, Mendeley, PubMed's citation manager export)."""
    citations: list[Citation] = []
    problems: list[IntakeProblem] = []
    name = Path(file).name
    for index, (line, fields) in enumerate(
        _tagged_records(text, r"^([A-Z][A-Z0-9])  -\s?(.*)$", "TY", "ER"), start=1
    ):
        label = f"record {index}"
        notes = " ".join(_field(fields, "N1", "AN", "M1", "M2", "C2", "UR", "L2"))
        pmid = next((v for v in _field(fields, "AN") if re.fullmatch(r"\d{1,9}", v)), None)
        if pmid is None:
            match = re.search(r"PMID:?\s*(\d{1,9})|pubmed(?:\.ncbi\.nlm\.nih\.gov)?/(\d{1,9})", notes, re.I)
            pmid = (match.group(1) or match.group(2)) if match else None
        pmc = re.search(r"\bPMC\d{1,9}\b", notes)
        dates = _field(fields, "PY", "Y1", "DA")
        year = _year(dates[0]) if dates else None
        if dates and year is None:
            problems.append(IntakeProblem(file, label, line, "PY", f"unreadable year {dates[0]!r}"))
            continue
        doi = next(iter(_field(fields, "DO")), None)
        if doi is None:
            match = re.search(r"doi\.org/(10\.\S+)", notes)
            doi = match.group(1) if match else None
        citations.append(
            Citation(
                title=next(iter(_field(fields, "TI", "T1", "CT")), ""),
                abstract=" ".join(_field(fields, "AB", "N2")) or None,
                authors=_field(fields, "AU", "A1"),
                year=year,
                journal=next(iter(_field(fields, "T2", "JO", "JF", "JA", "J2")), None),
                pmid=pmid,
                pmcid=pmc.group(0) if pmc else None,
                doi=doi,
                publication_types=[t for t in _field(fields, "M3") if "retract" in t.casefold()],
                retracted=any("retracted" in k.casefold() for k in _field(fields, "KW", "N1")),
                origin=f"{name} {label}",
                line=line,
            )
        )
    return _check(citations, problems, file)


# ---------------------------------------------------------------- CSV

# Column names of the exports seen in practice (PubMed 'Save as CSV', Zotero, Scopus, ASReview),
# lower case, for each field.
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title", "article title", "primary_title"),
    "abstract": ("abstract", "abstract note", "abstracttext"),
    "doi": ("doi",),
    "pmid": ("pmid", "pubmed_id", "pubmed id"),
    "pmcid": ("pmcid", "pmc"),
    "authors": ("authors", "author", "author full names"),
    "first_author": ("first author", "first_author"),
    "year": ("year", "publication year", "pubyear", "py"),
    "journal": ("journal", "journal/book", "publication title", "source title", "secondary_title"),
}


def read_csv(text: str, file: str = "<csv>") -> list[Citation]:
    """Citations of a CSV file with a title column and at least one of doi/pmid/pmcid."""
    dialect = "excel-tab" if "\t" in text.split("\n", 1)[0] and "," not in text.split("\n", 1)[0] else "excel"
    reader = csv.reader(io.StringIO(text), dialect=dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise IntakeError([IntakeProblem(file, None, 1, None, "empty file")]) from None
    lower = [h.strip().casefold() for h in header]
    columns = {
        name: next((lower.index(a) for a in aliases if a in lower), None)
        for name, aliases in CSV_COLUMNS.items()
    }
    if columns["title"] is None:
        raise IntakeError([IntakeProblem(file, None, 1, "title", "no title column in the header")])
    citations: list[Citation] = []
    problems: list[IntakeProblem] = []
    name = Path(file).name
    index = 0
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        index += 1
        label = f"record {index}"
        if len(row) != len(header):
            problems.append(
                IntakeProblem(file, label, line, None, f"{len(row)} cells where the header has {len(header)}")
            )
            continue

        def cell(key: str, row: list[str] = row) -> str:
            at = columns[key]
            return row[at].strip() if at is not None else ""

        bad = next(
            (
                (key, cell(key))
                for key, norm in (
                    ("pmid", normalize_pmid),
                    ("pmcid", normalize_pmcid),
                    ("doi", normalize_doi),
                )
                if cell(key) and norm(cell(key)) is None
            ),
            None,
        )
        if bad is not None:
            problems.append(IntakeProblem(file, label, line, bad[0], f"not a valid {bad[0]}: {bad[1]!r}"))
            continue
        year = cell("year")
        if year and _year(year) is None:
            problems.append(IntakeProblem(file, label, line, "year", f"unreadable year {year!r}"))
            continue
        authors = [a.strip() for a in re.split(r";|\|", cell("authors")) if a.strip()]
        if not authors and cell("first_author"):
            authors = [cell("first_author")]
        if len(authors) == 1 and "," in authors[0]:
            parts = [a.strip() for a in authors[0].split(",") if a.strip()]
            if all(has_initials(a) for a in parts):
                authors = parts  # PubMed's CSV: "Surname AB, Surname CD"
        citations.append(
            Citation(
                title=cell("title"),
                abstract=cell("abstract") or None,
                authors=authors,
                year=_year(year),
                journal=cell("journal") or None,
                pmid=cell("pmid") or None,
                pmcid=cell("pmcid") or None,
                doi=cell("doi") or None,
                origin=f"{name} {label}",
                line=line,
            )
        )
    return _check(citations, problems, file)
