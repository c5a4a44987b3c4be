"""Identifiers to the public pages that describe them: DOI, PubMed, PMC, trial registries, and
the ontology terms the vocabularies use (UBERON, Cellosaurus, OncoTree, NCIt, HGNC).

One table of URL templates, shared by the web pages and the offline report, so an identifier
reads the same everywhere. Each kind has the pattern of its identifiers: a value that does not
have it gets no link (never a link to a page that cannot exist). Registries whose record pages
are keyed by an internal number (ChiCTR, IRCT, UMIN) are reached through the WHO ICTRP record,
which is keyed by the registry id itself. No library maps these identifier kinds to pages, so
the table is written here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from markupsafe import Markup, escape

from mscatlas.kb.trial_dose import REGISTRY_PATTERNS
from mscatlas.kb.vocab import UnknownTermError, load_vocabulary

__all__ = ["KINDS", "anchor", "guess_kind", "term_anchor", "url_for"]


def _ictrp(trial_id: str) -> str:
    return "https://trialsearch.who.int/Trial2.aspx?TrialID=" + quote(trial_id, safe="")


_TRIAL_PAGES: dict[str, Callable[[str], str]] = {
    "ClinicalTrials.gov": lambda i: f"https://clinicaltrials.gov/study/{i}",
    "EudraCT": lambda i: f"https://www.clinicaltrialsregister.eu/ctr-search/search?query={i}",
    "ISRCTN": lambda i: f"https://www.isrctn.com/{i}",
    "ANZCTR": lambda i: f"https://www.anzctr.org.au/{i}.aspx",
    "jRCT": lambda i: f"https://jrct.niph.go.jp/en-latest-detail/{i}",
    "ChiCTR": _ictrp,
    "IRCT": _ictrp,
    "CRIS": _ictrp,
    "UMIN": lambda i: _ictrp(f"JPRN-{i}"),
}

# kind -> (the pattern of its identifiers, the page of one identifier)
KINDS: dict[str, tuple[str, Callable[[str], str]]] = {
    "doi": (r"10\.\d{4,9}/\S+", lambda v: "https://doi.org/" + quote(v, safe="/:;()._-")),
    "pmid": (r"\d{1,9}", lambda v: f"https://pubmed.ncbi.nlm.nih.gov/{v}/"),
    "pmcid": (r"PMC\d{1,9}", lambda v: f"https://pmc.ncbi.nlm.nih.gov/articles/{v}/"),
    "uberon": (r"UBERON:\d{7}", lambda v: "http://purl.obolibrary.org/obo/" + v.replace(":", "_")),
    "cellosaurus": (r"CVCL_[0-9A-Z]{4}", lambda v: f"https://www.cellosaurus.org/{v}"),
    "oncotree": (
        r"[A-Z][A-Z0-9_]{1,15}",
        lambda v: f"https://oncotree.mskcc.org/?version=oncotree_latest_stable&field=CODE&search={v}",
    ),
    "ncit": (r"C\d{1,7}", lambda v: f"https://evsexplore.semantics.cancer.gov/evsexplore/concept/ncit/{v}"),
    "hgnc": (r"HGNC:\d{1,6}", lambda v: f"https://www.genenames.org/data/gene-symbol-report/#!/hgnc_id/{v}"),
}


def _trial_url(value: str) -> str | None:
    for registry, pattern in REGISTRY_PATTERNS.items():
        if re.fullmatch(pattern, value):
            return _TRIAL_PAGES[registry](value)
    return None


def url_for(kind: str, value: object) -> str | None:
    """The public page of identifier ``value`` of ``kind`` (a key of :data:`KINDS`, or ``trial``
    for a registry id of any known registry); None for an unknown kind or a malformed value."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if kind == "trial":
        return _trial_url(text)
    known = KINDS.get(kind)
    if known is None or not re.fullmatch(known[0], text):
        return None
    return known[1](text)


# Kinds whose identifiers say what they are; the bare kinds (pmid, oncotree, ncit) need context.
_SELF_NAMING = ("doi", "pmcid", "uberon", "cellosaurus", "hgnc")


def guess_kind(value: str) -> str | None:
    """The kind of an identifier that names itself (a DOI, PMC id, registry id, UBERON, CVCL_ or
    HGNC id); None for anything else, bare numbers and codes included."""
    for kind in _SELF_NAMING:
        if re.fullmatch(KINDS[kind][0], value):
            return kind
    return "trial" if _trial_url(value) is not None else None


def anchor(value: object, kind: str | None = None, text: object = None) -> Markup:
    """``value`` as an HTML link to its page (``kind`` guessed when not given; a vocabulary name,
    ``cell_line``, ``cancer_type``, ``tissue`` or ``gene``, links a term through its ontology
    identifier), opened apart from the page; the escaped text alone when it has no page."""
    if value is None:
        return Markup("")
    if kind in _VOCABULARIES:  # a vocabulary term: linked through its ontology identifier
        return term_anchor(value, kind, text)
    shown = escape(str(value if text is None else text))
    kind = kind or guess_kind(str(value))
    url = url_for(kind, value) if kind else None
    return Markup(shown) if url is None else _link(url, shown)


def _link(url: str, text: str, title: str | None = None) -> Markup:
    """An outbound link (escaped: the URL's ``&`` becomes ``&amp;`` in the attribute)."""
    if title is None:
        return Markup('<a class="ext" href="{}" rel="external noopener">{}</a>').format(url, text)
    html = '<a class="ext" href="{}" rel="external noopener" title="{}">{}</a>'
    return Markup(html).format(url, title, text)


# vocabulary -> (its attribute on Vocabulary, the identifier kinds of its entries, best first)
_VOCABULARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "cell_line": ("cell_lines", ("cellosaurus",)),
    "cancer_type": ("cancer_types", ("oncotree", "ncit")),
    "tissue": ("tissues", ("uberon",)),
    "gene": ("genes", ("hgnc",)),
}


def term_anchor(term: object, vocabulary: str, text: object = None) -> Markup:
    """A vocabulary term (a cell line, cancer type, MSC tissue source or gene) as a link to the
    page of its ontology identifier; the escaped term when the vocabulary has no identifier."""
    attribute, kinds = _VOCABULARIES[vocabulary]
    shown = str(term if text is None else text)
    try:
        entry = getattr(load_vocabulary(), attribute).get(str(getattr(term, "value", term)))
    except (UnknownTermError, KeyError):
        return Markup(escape(shown))
    for kind in kinds:
        url = url_for(kind, str(entry[kind])) if entry.get(kind) else None
        if url is not None:
            return _link(url, shown, f"{kind} {entry[kind]}")
    return Markup(escape(shown))
