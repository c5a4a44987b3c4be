"""The names people type, resolved to the values the knowledge base stores.

One resolver for every place a value is typed (command line, web filters, API, record files):

- ``resolve(MscSource, "bone marrow")`` -> ``"bone_marrow"``: an enum value from its value, its
  label, or a synonym of ``vocab/synonyms.yaml`` (and, for MSC sources, of ``vocab/tissues.yaml``),
  with case, spaces, hyphens, dots and slashes ignored. Nothing found raises
  :class:`~mscatlas.kb.vocab.UnknownTermError` with the nearest values.
- ``cancer_query("pancreas")`` -> the cancer types a word names: a class, a cell line, a type or
  its synonym, the OncoTree tissue node it falls under (tissue -> type, through the OncoTree
  and NCIt codes of ``vocab/cancer_types.yaml``), and the types whose names carry its words.
- ``label(value)``: a value as people read it.

Written by hand rather than with a fuzzy-matching library: a few hundred terms, exact keys plus
``difflib`` suggestions from the standard library, as in :mod:`mscatlas.kb.vocab`.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import yaml

from mscatlas.kb import enums
from mscatlas.kb.vocab import UnknownTermError, load_vocabulary

__all__ = [
    "CancerQuery",
    "UnknownTermError",
    "cancer_query",
    "enum_choices",
    "label",
    "resolve",
    "resolve_value",
]

E = TypeVar("E", bound=StrEnum)

# What an enum is called in messages ("unknown MSC source 'bonemarow'; did you mean ...").
KIND_NAMES: dict[str, str] = {
    "MscSource": "MSC source",
    "MscSpecies": "MSC species",
    "Delivery": "delivery",
    "Setting": "setting",
    "CancerClass": "cancer class",
    "Endpoint": "endpoint",
    "Direction": "direction",
    "EvidenceLevel": "evidence level",
    "CurationStatus": "curation status",
    "Change": "change",
    "MechanismKind": "mechanism kind",
    "Phase": "phase",
    "TrialPurpose": "trial purpose",
    "EngineeringKind": "engineering kind",
}


def _key(term: str) -> str:
    """Case, spaces, underscores, hyphens, dots, slashes and apostrophes do not tell terms apart."""
    return re.sub(r"[\s_\-/.'’]+", "", term).casefold()


@cache
def _synonyms_file() -> dict[str, Any]:
    path = resources.files("mscatlas.kb").joinpath("data", "vocab", "synonyms.yaml")
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError("vocab/synonyms.yaml: expected a mapping with enums, labels, cancer_tissues")
    for section in ("enums", "labels", "cancer_tissues"):
        if not isinstance(data.get(section, {}), dict):
            raise ValueError(f"vocab/synonyms.yaml: '{section}' must be a mapping")
    return data


def _enum_class(name: str) -> type[StrEnum]:
    cls = getattr(enums, name, None)
    if not (isinstance(cls, type) and issubclass(cls, StrEnum)):
        raise ValueError(f"vocab/synonyms.yaml: '{name}' is not an enum of mscatlas.kb.enums")
    return cls


@dataclass(frozen=True)
class _EnumTerms:
    kind: str
    values: tuple[str, ...]
    aliases: dict[str, str]  # _key(word) -> value
    words: dict[str, str]  # every accepted word as written -> value (for suggestions)


@cache
def _enum_terms(cls: type[StrEnum]) -> _EnumTerms:
    data = _synonyms_file()
    listed: dict[str, Any] = data.get("enums", {}).get(cls.__name__, {}) or {}
    labels: dict[str, str] = data.get("labels", {}).get(cls.__name__, {}) or {}
    values = tuple(m.value for m in cls)
    extra: dict[str, list[str]] = {v: [] for v in values}
    for value, words in listed.items():
        if value not in extra:
            raise ValueError(f"vocab/synonyms.yaml: enums.{cls.__name__}: '{value}' is not a value")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"vocab/synonyms.yaml: enums.{cls.__name__}.{value}: expected a list of words")
        extra[value].extend(words)
    if cls is enums.MscSource:
        for name, entry in load_vocabulary().tissues.entries.items():
            if name in extra:
                extra[name].extend(entry.get("synonyms", []))
    aliases: dict[str, str] = {}
    words: dict[str, str] = {}
    # The values and labels first: a synonym never takes a value's own name.
    for value in values:
        for word in (value, value.replace("_", " "), labels.get(value, "")):
            if word:
                aliases.setdefault(_key(word), value)
                words.setdefault(word, value)
    for value in values:
        for word in extra[value]:
            key = _key(word)
            if aliases.get(key, value) != value:
                raise ValueError(
                    f"vocab/synonyms.yaml: {cls.__name__} '{word}' names both '{aliases[key]}' and '{value}'"
                )
            aliases[key] = value
            words.setdefault(word, value)
    return _EnumTerms(KIND_NAMES.get(cls.__name__, cls.__name__), values, aliases, words)


def resolve_value(cls: type[StrEnum], text: str) -> str:
    """The value of enum ``cls`` that ``text`` names (value, label or synonym).

    Raises UnknownTermError (a ValueError) naming the nearest values when nothing matches.
    """
    terms = _enum_terms(cls)
    found = terms.aliases.get(_key(text))
    if found is not None:
        return found
    raise UnknownTermError(terms.kind, text, _suggest(text, terms))


def resolve(cls: type[E], text: str | E) -> E:
    """The member of enum ``cls`` that ``text`` names (see :func:`resolve_value`)."""
    if isinstance(text, cls):
        return text
    return cls(resolve_value(cls, str(text)))


def _suggest(text: str, terms: _EnumTerms) -> list[str]:
    """Up to three values whose name, label or synonym is nearest to ``text``."""
    by_key: dict[str, str] = {}
    for word, value in terms.words.items():
        by_key.setdefault(_key(word), value)
    close = difflib.get_close_matches(_key(text), list(by_key), n=6, cutoff=0.6)
    out: list[str] = []
    for key in close:
        if by_key[key] not in out:
            out.append(by_key[key])
    if not out:  # a word inside a longer value ("marrow" -> bone_marrow)
        needle = _key(text)
        out = [v for v in terms.values if needle and needle in _key(v)]
    return out[:3]


def enum_choices(cls: type[StrEnum]) -> list[str]:
    """The values of an enum (for help texts and error details)."""
    return [m.value for m in cls]


def label(value: Any, kind: type[Enum] | None = None) -> str:
    """A value as people read it: the label of ``vocab/synonyms.yaml`` if it has one, else the
    value with underscores as spaces. Booleans read yes/no and None "not stated"; other text
    (cell lines such as BJAB or SKW6.4, cancer types) keeps its own casing. ``kind`` reads a
    plain string as a value of that enum (``label("wharton_jelly", MscSource)``); a string that
    is not one of its values is shown as text. The one label function of every front end."""
    if kind is not None and isinstance(value, str) and not isinstance(value, Enum):
        with contextlib.suppress(ValueError):
            value = kind(value)
    if value is None:
        return "not stated"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        labels = _synonyms_file().get("labels", {}).get(type(value).__name__, {}) or {}
        text = labels.get(value.value)
        if text:
            return str(text)
        return str(value.value).replace("_", " ")
    return str(value).replace("_", " ")


# ---------------------------------------------------------------- cancer types


_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({"and", "of", "the", "cell", "cells", "cancer", "tumor", "tumour", "human", "model"})


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.casefold()) if w not in _STOP]


def _word_matches(wanted: str, word: str) -> bool:
    """A typed word matches a name's word when equal, or, from 4 letters on, when one starts or
    ends with the other ("carcinoma" in "adenocarcinoma", "leukemia" in "leukemias")."""
    if wanted == word:
        return True
    if len(wanted) < 4 or len(word) < 4:
        return False
    return word.startswith(wanted) or word.endswith(wanted) or wanted.startswith(word)


@dataclass(frozen=True)
class _CancerTissue:
    name: str
    words: tuple[str, ...]
    types: frozenset[str]


@cache
def _cancer_tissues() -> tuple[_CancerTissue, ...]:
    """OncoTree tissue nodes with the vocabulary's cancer types under each (by code)."""
    entries = load_vocabulary().cancer_types.entries
    out = []
    for name, node in (_synonyms_file().get("cancer_tissues") or {}).items():
        oncotree = set(node.get("oncotree", []))
        ncit = set(node.get("ncit", []))
        types = frozenset(
            t
            for t, e in entries.items()
            if (e.get("oncotree") and e["oncotree"] in oncotree) or (e.get("ncit") and e["ncit"] in ncit)
        )
        known_codes = {e.get(k) for e in entries.values() for k in ("oncotree", "ncit")}
        unknown = sorted((oncotree | ncit) - known_codes)
        if unknown:
            raise ValueError(
                f"vocab/synonyms.yaml: cancer_tissues.{name}: codes {unknown} name no cancer type "
                "of vocab/cancer_types.yaml"
            )
        words = tuple(w.casefold() for w in node.get("words", []))
        out.append(_CancerTissue(name, words, types))
    return tuple(out)


@dataclass(frozen=True)
class CancerQuery:
    """What a typed cancer term names; ``matches`` tells whether an evidence item falls under it.

    ``types`` are canonical cancer type names of the vocabulary (usable in SQL ``IN``),
    ``cancer_class`` a CancerClass value when the text names a class, ``cell_line`` the
    Cellosaurus name when it names a cell line. ``how`` says, per matched type, why.
    """

    text: str
    types: frozenset[str]
    cancer_class: str | None
    cell_line: str | None
    how: tuple[tuple[str, str], ...]

    @property
    def empty(self) -> bool:
        return not self.types and self.cancer_class is None and self.cell_line is None

    def matches(self, cancer_type: str, cancer_class: str, cell_lines: Iterable[str] = ()) -> bool:
        if cancer_type in self.types:
            return True
        if self.cancer_class is not None and cancer_class == self.cancer_class:
            return True
        if self.text.casefold() and self.text.casefold() in cancer_type.casefold():
            return True
        wanted = {x.casefold() for x in (self.text, self.cell_line) if x}
        return any(line.casefold() in wanted for line in cell_lines)

    def suggestions(self) -> list[str]:
        """Nearest cancer type names, classes and tissues (for 'nothing found' messages)."""
        names = [*load_vocabulary().cancer_types.entries, *enum_choices(enums.CancerClass)]
        names += [t.name for t in _cancer_tissues()]
        return difflib.get_close_matches(self.text, names, n=3, cutoff=0.5)


@cache
def cancer_query(text: str) -> CancerQuery:
    """The cancer types, class and cell line that ``text`` names (see the module docstring)."""
    text = text.strip()
    vocab = load_vocabulary()
    how: dict[str, str] = {}
    cancer_class: str | None = None
    with contextlib.suppress(UnknownTermError):
        cancer_class = resolve_value(enums.CancerClass, text)
    cell_line: str | None = None
    with contextlib.suppress(UnknownTermError):
        cell_line = vocab.cell_lines.resolve(text)
    with contextlib.suppress(UnknownTermError):
        how[vocab.cancer_types.resolve(text)] = "name or synonym"
    key = text.casefold()
    wanted = _words(text)
    for tissue in _cancer_tissues():
        if key in tissue.words or (wanted and all(any(w == t for t in tissue.words) for w in wanted)):
            for t in tissue.types:
                how.setdefault(t, f"OncoTree tissue {tissue.name}")
    if wanted:
        for name, entry in vocab.cancer_types.entries.items():
            for phrase in (name, *entry.get("synonyms", [])):
                words = _words(phrase)
                if all(any(_word_matches(w, x) for x in words) for w in wanted):
                    how.setdefault(name, f"words of '{phrase}'")
                    break
    return CancerQuery(
        text=text,
        types=frozenset(how),
        cancer_class=cancer_class,
        cell_line=cell_line,
        how=tuple(sorted(how.items())),
    )
