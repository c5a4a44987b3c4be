"""Controlled vocabularies with ontology identifiers, read from the package's data files.

- tissues.yaml: MSC tissue sources -> UBERON
- cancer_types.yaml: cancer types -> OncoTree code and/or NCIt code, with their class
- cell_lines.yaml: named cancer cell lines -> Cellosaurus accession (CVCL_xxxx)
- genes.yaml: genes named in mechanisms -> HGNC symbol and HGNC id

An unknown term is an error that lists the nearest known terms (difflib from the standard
library is enough for a few hundred terms).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["UnknownTermError", "Vocabulary", "load_vocabulary"]


class UnknownTermError(ValueError):
    def __init__(self, kind: str, term: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} '{term}'{hint}")
        self.kind = kind
        self.term = term
        self.suggestions = suggestions


def _key(term: str) -> str:
    return re.sub(r"[\s_\-/.]+", "", term).casefold()


@dataclass(frozen=True)
class Terms:
    """One vocabulary: canonical entries and a lookup from names and synonyms."""

    kind: str
    entries: dict[str, dict[str, Any]]
    aliases: dict[str, str] = field(default_factory=dict)

    def resolve(self, term: str) -> str:
        """Return the canonical name for a term or synonym, or raise UnknownTermError."""
        canonical = self.aliases.get(_key(term))
        if canonical is not None:
            return canonical
        names = list(self.entries)
        suggestions = difflib.get_close_matches(term, names, n=3, cutoff=0.5)
        if not suggestions:
            by_key = {_key(a): c for a, c in self.aliases.items()}
            close = difflib.get_close_matches(_key(term), list(by_key), n=3, cutoff=0.5)
            suggestions = sorted({self.aliases[k] for k in close})
        raise UnknownTermError(self.kind, term, suggestions)

    def get(self, term: str) -> dict[str, Any]:
        return self.entries[self.resolve(term)]


@dataclass(frozen=True)
class Vocabulary:
    tissues: Terms
    cancer_types: Terms
    cell_lines: Terms
    genes: Terms


def _read(name: str) -> list[dict[str, Any]]:
    """Entries of ``vocab/<name>``, then of ``vocab/<stem>/*.yaml`` (additions filed per curation
    batch, so that curators working in parallel never edit the same file)."""
    root = resources.files("mscatlas.kb").joinpath("data").joinpath("vocab")
    parts = [(name, root.joinpath(name))]
    extra = root.joinpath(name.removesuffix(".yaml"))
    if extra.is_dir():
        parts += sorted(
            ((f"{extra.name}/{p.name}", p) for p in extra.iterdir() if p.name.endswith(".yaml")),
            key=lambda pair: pair[0],
        )
    rows: list[dict[str, Any]] = []
    for label, part in parts:
        data = yaml.safe_load(part.read_text("utf-8")) or []
        if not isinstance(data, list):
            raise ValueError(f"vocab/{label}: expected a list of entries")
        rows.extend(data)
    return rows


def _terms(kind: str, rows: list[dict[str, Any]], name_key: str) -> Terms:
    entries: dict[str, dict[str, Any]] = {}
    aliases: dict[str, str] = {}
    for i, row in enumerate(rows, start=1):
        name = row.get(name_key)
        if not isinstance(name, str):
            raise ValueError(f"vocab {kind} entry {i}: missing '{name_key}'")
        if name in entries:
            raise ValueError(f"vocab {kind}: duplicate entry '{name}'")
        entries[name] = row
        for alias in [name, *row.get("synonyms", [])]:
            key = _key(alias)
            if key in aliases and aliases[key] != name:
                raise ValueError(f"vocab {kind}: '{alias}' names both '{aliases[key]}' and '{name}'")
            aliases[key] = name
    return Terms(kind=kind, entries=entries, aliases=aliases)


@cache
def load_vocabulary() -> Vocabulary:
    """The shipped vocabularies (read once per process)."""
    return Vocabulary(
        tissues=_terms("tissue source", _read("tissues.yaml"), "term"),
        cancer_types=_terms("cancer type", _read("cancer_types.yaml"), "name"),
        cell_lines=_terms("cell line", _read("cell_lines.yaml"), "name"),
        genes=_terms("gene symbol", _read("genes.yaml"), "symbol"),
    )
